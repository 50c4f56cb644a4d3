//! Fault tests: a backend killed in the middle of a request, shutdown under
//! load, and thousands of half-open connections while echo traffic goes on.

mod util;

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use packet_service::protocol::packets::{LoginReply, LoginReq};
use packet_service::protocol::{Codec, CodecKind, Direction};
use util::backends::{Knobs, TestBackend};
use util::{metric, start, test_config, Client};

const STRESS: u16 = 0x6F6D;

#[test]
fn a_backend_killed_mid_request_and_restarted() {
    let knobs = Arc::new(Knobs::default());
    knobs.latency_ms.store(5_000, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let addr = backend.addr;
    let mut config = test_config(CodecKind::Rose);
    config.auth_url = Some(backend.url());
    config.character_url = Some(backend.url());
    config.world_url = Some(backend.url());
    config.rpc_deadline = Duration::from_secs(20);
    let gw = start(config);
    let login = LoginReq {
        digest: util::sha256_hex("pw"),
        username: "u".into(),
    };
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    c.send(&login);
    util::wait_until("the login to reach the backend", || {
        knobs.logins.load(Ordering::SeqCst) == 1
    });
    backend.stop(); // the process dies with the call in flight
    assert_eq!(
        c.recv_as::<LoginReply>().result,
        1,
        "FAILED, long before the deadline"
    );
    knobs.latency_ms.store(0, Ordering::SeqCst);
    let _backend = TestBackend::start(addr, knobs);
    util::wait_until("logins to work again", || {
        let mut c = Client::connect(gw.addr(), CodecKind::Rose);
        c.send(&login);
        c.recv_as::<LoginReply>().result == 0
    });
}

/// Reads a plain-codec stream to EOF; returns the number of whole STRESS
/// frames and the bytes left over (a cut frame).
fn drain_echoes(mut s: TcpStream) -> (usize, usize) {
    let codec = Codec::new(CodecKind::Plain);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut frames = 0;
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
        while let Ok(Some(h)) = codec.decode(Direction::ServerToClient, &mut buf) {
            assert_eq!(h.command, STRESS);
            buf.drain(..h.wire_len);
            frames += 1;
        }
    }
    (frames, buf.len())
}

#[test]
fn shutdown_under_load_loses_no_reply_and_closes_every_connection() {
    let mut config = test_config(CodecKind::Plain);
    config.max_packets_per_sec = 0;
    config.output_limit = 64 << 20;
    config.max_connections_per_ip = 0; // every client is on loopback
    let mut gw = start(config);
    const CLIENTS: usize = 50;
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for i in 0..CLIENTS {
        let c = Client::connect(gw.addr(), CodecKind::Plain);
        let frame = c.raw_frame(STRESS, &[i as u8; 200]);
        let mut w = c.stream.try_clone().expect("clone");
        writers.push(std::thread::spawn(move || {
            use std::io::Write;
            // Keep sending until the gateway closes the connection.
            for _ in 0..200_000 {
                if w.write_all(&frame).is_err() {
                    return;
                }
            }
        }));
        let r = c.stream.try_clone().expect("clone");
        readers.push(std::thread::spawn(move || drain_echoes(r)));
    }
    let metrics = gw.metrics();
    let received = "packet_service_packets_received_total{type=\"STRESS\"}";
    util::wait_until("traffic to flow on every connection", || {
        metric(&metrics.encode(), received) > 2000.0
    });
    gw.stop_and_wait().expect("clean stop");

    let text = metrics.encode();
    let mut echoes = 0;
    for r in readers {
        let (frames, leftover) = r.join().expect("reader");
        assert_eq!(leftover, 0, "a connection ended in the middle of a frame");
        echoes += frames;
    }
    for w in writers {
        w.join().expect("writer");
    }
    let decoded = metric(&text, received) as usize;
    let sent = metric(&text, "packet_service_packets_sent_total{type=\"STRESS\"}") as usize;
    assert_eq!(decoded, sent, "every decoded packet produced an echo");
    assert_eq!(echoes, sent, "every echo produced reached its client");
    assert_eq!(
        metric(
            &text,
            "packet_service_connections_closed_total{reason=\"shutdown\"}"
        ) as usize,
        CLIENTS,
        "every connection closed by the shutdown"
    );
    assert_eq!(metric(&text, "packet_service_connections_active"), 0.0);
}

#[test]
fn five_thousand_half_open_connections_time_out_while_echo_goes_on() {
    let mut config = test_config(CodecKind::Plain);
    config.handshake_timeout = Duration::from_secs(2);
    config.max_packets_per_sec = 0;
    config.max_connections_per_ip = 0; // every client is on loopback
    let gw = start(config);
    let metrics = gw.metrics();
    let mut echo = Client::connect(gw.addr(), CodecKind::Plain);
    echo.accept();
    const SILENT: usize = 5_000;
    let silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| TcpStream::connect(gw.addr()).expect("connect"))
        .collect();
    util::wait_until("every silent connection to be admitted", || {
        metric(
            &metrics.encode(),
            "packet_service_connections_accepted_total",
        ) as usize
            == SILENT + 1
    });
    // Echo keeps working while they are held and while they are reaped.
    let closed = "packet_service_connections_closed_total{reason=\"handshake_timeout\"}";
    let mut round_trips = 0u32;
    while (metric(&metrics.encode(), closed) as usize) < SILENT {
        echo.send_bytes(&echo.raw_frame(STRESS, &round_trips.to_le_bytes()));
        assert_eq!(echo.recv().body, round_trips.to_le_bytes());
        round_trips += 1;
        assert!(
            round_trips < 2_000_000,
            "the silent connections were never closed"
        );
    }
    assert!(round_trips > 0);
    // Each of them sees the close.
    for mut s in silent {
        s.set_read_timeout(Some(util::DEADLINE)).expect("timeout");
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected a close, got {other:?}"),
        }
    }
    echo.send_bytes(&echo.raw_frame(STRESS, b"after"));
    assert_eq!(
        echo.recv().body,
        b"after",
        "the echo client outlived them (it spoke first)"
    );
}
