//! The core gateway over real TCP (issue: codec, reactor, connection state
//! machine): framing edge cases, bad input, admission, timeouts, shutdown.

mod util;

use std::io::Write;
use std::time::Duration;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{
    AcceptReply, Alive, LoginReq, ScreenShotTimeReply, ScreenShotTimeReq,
};
use packet_service::protocol::CodecKind;
use util::{start, test_config, Client};

const STRESS: u16 = 0x6F6D;

/// A plain-codec STRESS packet with `body`.
fn stress(client: &Client, body: &[u8]) -> Vec<u8> {
    client.raw_frame(STRESS, body)
}

#[test]
fn accept_reply_in_the_rose_codec() {
    let gw = start(test_config(CodecKind::Rose));
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    let reply: AcceptReply = c.accept();
    assert_eq!(reply.result, 2, "ACCEPTED");
    // Screen-shot time is answered locally too.
    c.send(&ScreenShotTimeReq { count: 1 });
    let t: ScreenShotTimeReply = c.recv_as();
    assert!(t.year >= 2024 && (1..=12).contains(&t.month), "{t:?}");
}

#[test]
fn stress_is_echoed_unchanged_in_the_plain_codec() {
    let gw = start(test_config(CodecKind::Plain));
    let mut c = Client::connect(gw.addr(), CodecKind::Plain);
    // docs/protocol.md §9 D3: the benchmark packet.
    let packet = [0x08, 0x00, 0x6d, 0x6f, 0x00, 0xc7, 0x65, 0x79];
    c.send_bytes(&packet);
    let r = c.recv();
    assert_eq!((r.id, r.ptype), (STRESS, None));
    assert_eq!(r.body, b"ey");
}

#[test]
fn a_packet_delivered_one_byte_at_a_time() {
    for codec in [CodecKind::Rose, CodecKind::Plain] {
        let gw = start(test_config(codec));
        let mut c = Client::connect(gw.addr(), codec);
        let frame = c.frame(&packet_service::protocol::packets::AcceptReq);
        for byte in &frame {
            c.send_bytes(std::slice::from_ref(byte));
            c.stream.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(2)); // pacing, not synchronisation
        }
        let reply: AcceptReply = c.recv_as();
        assert_eq!(reply.result, 2);
    }
}

#[test]
fn a_hundred_packets_in_one_write() {
    let gw = start(test_config(CodecKind::Plain));
    let mut c = Client::connect(gw.addr(), CodecKind::Plain);
    let mut batch = Vec::new();
    for i in 0..100u32 {
        batch.extend(stress(&c, &i.to_le_bytes()));
    }
    c.send_bytes(&batch);
    for i in 0..100u32 {
        let r = c.recv();
        assert_eq!(r.id, STRESS);
        assert_eq!(r.body, i.to_le_bytes(), "echo {i} in order");
    }
}

#[test]
fn a_packet_of_the_maximum_size() {
    let gw = start(test_config(CodecKind::Plain));
    let mut c = Client::connect(gw.addr(), CodecKind::Plain);
    let body: Vec<u8> = (0..2041u32).map(|i| (i % 251) as u8).collect();
    c.send_bytes(&stress(&c, &body));
    let r = c.recv();
    assert_eq!(r.body.len() + 6, 2047);
    assert_eq!(r.body, body);
    // rose: a 2047-byte login request (long username) decodes and is answered.
    let gw = start(test_config(CodecKind::Rose));
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    let login = LoginReq {
        digest: util::sha256_hex("x"),
        username: "u".repeat(2047 - 6 - 64 - 1),
    };
    let frame = c.frame(&login);
    assert_eq!(frame.len(), 2047);
    c.send_bytes(&frame);
    let reply: packet_service::protocol::packets::LoginReply = c.recv_as();
    assert_ne!(reply.result, 0, "unknown account");
}

/// Each bad-input class of docs/protocol.md §9 D5 closes only the offender; a
/// bystander connection keeps getting replies.
#[test]
fn bad_input_closes_only_the_offending_connection() {
    let gw = start(test_config(CodecKind::Plain));
    let mut bystander = Client::connect(gw.addr(), CodecKind::Plain);
    let probe = |b: &mut Client| {
        b.send_bytes(&stress(b, b"ok"));
        assert_eq!(b.recv().body, b"ok", "bystander still served");
    };
    probe(&mut bystander);

    type Offender = Box<dyn Fn(&Client) -> Vec<u8>>;
    let offenders: Vec<(&str, Offender)> = vec![
        (
            "size below 6",
            Box::new(|_| vec![0x05, 0x00, 0x00, 0x05, 0x00, 0x00]),
        ),
        (
            "size above 2047",
            Box::new(|_| vec![0x00, 0x08, 0x00, 0x05, 0x00, 0x00]),
        ),
        (
            "bad checksum",
            Box::new(|c| {
                let mut f = c.raw_frame(0x500, &[]);
                f[5] ^= 0xFF;
                f
            }),
        ),
        (
            "byte 4 not zero",
            Box::new(|c| {
                let mut f = c.raw_frame(0x500, &[]);
                f[4] = 1;
                f
            }),
        ),
        (
            "unknown id before the world phase",
            Box::new(|c| c.raw_frame(0x7FE, &[])),
        ),
        ("server-to-client id", Box::new(|c| c.raw_frame(0x5D4, &[]))),
        (
            "malformed body (login without username terminator)",
            Box::new(|c| {
                let mut body = util::sha256_hex("x");
                body.extend_from_slice(b"admin");
                c.raw_frame(c.id(PacketType::PAKCS_LOGIN_REQ), &body)
            }),
        ),
        (
            "wrong-state budget",
            Box::new(|c| {
                // CHAR_LIST_REQ before any join: ignored 16 times, the 17th closes.
                let f = c.raw_frame(c.id(PacketType::PAKCS_CHAR_LIST_REQ), &[]);
                f.repeat(17)
            }),
        ),
    ];
    for (what, make) in offenders {
        let mut bad = Client::connect(gw.addr(), CodecKind::Plain);
        let bytes = make(&bad);
        bad.send_bytes(&bytes);
        eprintln!("offender: {what}");
        bad.expect_closed();
        probe(&mut bystander);
    }
}

#[test]
fn a_few_wrong_state_packets_are_ignored() {
    let gw = start(test_config(CodecKind::Rose));
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    let f = c.raw_frame(c.id(PacketType::PAKCS_CHAR_LIST_REQ), &[]);
    c.send_bytes(&f.repeat(16));
    c.send(&Alive);
    let reply: AcceptReply = c.accept();
    assert_eq!(reply.result, 2, "still served after 16 ignored packets");
}

#[test]
fn max_connections_admission() {
    let mut config = test_config(CodecKind::Plain);
    config.max_connections = 3;
    let gw = start(config);
    let mut held: Vec<Client> = (0..3)
        .map(|_| Client::connect(gw.addr(), CodecKind::Plain))
        .collect();
    for c in &mut held {
        c.accept();
    }
    let mut over = Client::connect(gw.addr(), CodecKind::Plain);
    over.expect_closed();
    for c in &mut held {
        assert_eq!(c.accept().result, 2, "admitted connections unaffected");
    }
    drop(held.pop());
    // A slot freed: a new connection is admitted again.
    util::wait_until("a slot to free up", || {
        let mut c = Client::connect(gw.addr(), CodecKind::Plain);
        c.send(&packet_service::protocol::packets::AcceptReq);
        c.try_recv().is_ok()
    });
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let mut config = test_config(CodecKind::Rose);
    config.handshake_timeout = Duration::from_millis(200);
    config.idle_timeout = Duration::from_secs(60);
    let gw = start(config);
    let started = std::time::Instant::now();
    let mut silent = Client::connect(gw.addr(), CodecKind::Rose);
    let mut active = Client::connect(gw.addr(), CodecKind::Rose);
    active.accept();
    silent.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The one that spoke is governed by the idle timeout instead.
    assert_eq!(active.accept().result, 2);
}

#[test]
fn idle_timeout_closes_quiet_connections() {
    let mut config = test_config(CodecKind::Rose);
    config.handshake_timeout = Duration::from_secs(60);
    config.idle_timeout = Duration::from_millis(300);
    let gw = start(config);
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    let started = std::time::Instant::now();
    c.accept();
    c.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn shutdown_flushes_replies_already_produced() {
    let mut config = test_config(CodecKind::Plain);
    config.max_packets_per_sec = 0;
    let mut gw = start(config);
    let metrics = gw.metrics();
    let mut c = Client::connect(gw.addr(), CodecKind::Plain);
    // Far more echo than the socket buffers hold while the client does not
    // read: the gateway queues replies, then stops decoding (backpressure).
    let frame = stress(&c, &[0xAB; 2041]);
    let writer = {
        let mut s = c.stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            for _ in 0..10_000 {
                if s.write_all(&frame).is_err() {
                    return; // closed by the shutdown
                }
            }
        })
    };
    let decoded = "packet_service_packets_received_total{type=\"STRESS\"}";
    util::wait_until("the gateway to decode a good part of it", || {
        util::metric(&metrics.encode(), decoded) >= 500.0
    });
    gw.trigger().request();
    // The client reads again: everything queued drains, then EOF.
    let mut echoes = 0;
    loop {
        match c.try_recv() {
            Ok(r) => {
                assert_eq!(r.body.len(), 2041, "echo {echoes}");
                echoes += 1;
            }
            Err(e) if e.contains("closed") => break,
            Err(e) => panic!("after {echoes} echoes: {e}"),
        }
    }
    gw.stop_and_wait().expect("clean stop");
    writer.join().expect("writer");
    let text = metrics.encode();
    let produced =
        util::metric(&text, "packet_service_packets_sent_total{type=\"STRESS\"}") as usize;
    assert_eq!(
        produced,
        util::metric(&text, decoded) as usize,
        "every decoded packet answered"
    );
    assert_eq!(echoes, produced, "every reply produced reached the client");
    assert_eq!(
        util::metric(
            &text,
            "packet_service_connections_closed_total{reason=\"shutdown\"}"
        ),
        1.0
    );
}
