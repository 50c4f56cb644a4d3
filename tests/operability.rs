//! What an operator sees: the metrics endpoint counts exactly what happened,
//! /healthz answers, and the binary tells systemd it is ready once its port
//! is bound and stops cleanly on SIGTERM.

mod util;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use packet_service::protocol::CodecKind;
use util::flow::enter_world;
use util::{scrape, start, test_config, Client};

const STRESS: u16 = 0x6F6D;

#[test]
fn counters_move_by_exactly_what_was_done() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    let gw = start(config);
    let series = [
        "packet_service_connections_accepted_total",
        "packet_service_packets_received_total{type=\"STRESS\"}",
        "packet_service_packets_sent_total{type=\"STRESS\"}",
        "packet_service_packets_received_total{type=\"PAKCS_ACCEPT_REQ\"}",
        "packet_service_packets_sent_total{type=\"PAKSS_ACCEPT_REPLY\"}",
        "packet_service_protocol_errors_total{reason=\"bad_checksum\"}",
        "packet_service_connections_closed_total{reason=\"bad_checksum\"}",
        "packet_service_bytes_received_total",
        "packet_service_bytes_sent_total",
    ];
    let before: Vec<f64> = series.iter().map(|s| scrape(&gw, s)).collect();

    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::connect(gw.addr(), CodecKind::Plain))
        .collect();
    for c in &mut clients {
        for i in 0..10u16 {
            c.send_bytes(&c.raw_frame(STRESS, &i.to_le_bytes()));
            assert_eq!(c.recv().body, i.to_le_bytes());
        }
        assert_eq!(c.accept().result, 2);
    }
    let mut bad = Client::connect(gw.addr(), CodecKind::Plain);
    let mut frame = bad.raw_frame(0x500, &[]);
    frame[5] ^= 0x55;
    bad.send_bytes(&frame);
    bad.expect_closed();

    // 3 × (10 STRESS of 8 bytes + 1 ACCEPT_REQ of 6) + one bad 6-byte frame.
    let read = 3 * (10 * 8 + 6) + 6;
    // 3 × (10 echoes of 8 bytes + 1 ACCEPT_REPLY of 11).
    let written = 3 * (10 * 8 + 11);
    let expected = [
        4.0,
        30.0,
        30.0,
        3.0,
        3.0,
        1.0,
        1.0,
        read as f64,
        written as f64,
    ];
    util::wait_until("the counters to be published", || {
        series
            .iter()
            .zip(&before)
            .zip(&expected)
            .all(|((s, b), e)| scrape(&gw, s) - b == *e)
    });
    for ((s, b), e) in series.iter().zip(&before).zip(&expected) {
        assert_eq!(scrape(&gw, s) - b, *e, "{s}");
    }
    assert_eq!(scrape(&gw, "packet_service_connections_active"), 3.0);
    assert!(scrape(&gw, "packet_service_buffer_pool_available") > 0.0);
    assert!(scrape(&gw, "packet_service_packet_processing_seconds_count") >= 1.0);
    let (status, body) = util::http_get(gw.metrics_addr().expect("metrics"), "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
}

#[test]
fn rpc_metrics_count_backend_calls() {
    let mut config = test_config(CodecKind::Rose);
    config.metrics_enabled = true;
    let gw = start(config);
    let series = "packet_service_rpc_duration_seconds_count{method=\"Login\",service=\"auth\"}";
    let before = scrape(&gw, series);
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(c.login("admin", "nope").result, 3);
    assert_eq!(c.login("admin", "admin").result, 0);
    util::wait_until("two logins to be timed", || {
        scrape(&gw, series) - before == 2.0
    });
    util::wait_until("the world link gauge", || {
        scrape(&gw, "packet_service_world_link_up") == 1.0
    });
}

#[test]
fn logins_are_counted_by_how_they_ended() {
    let dir = std::env::temp_dir().join(format!("packet-service-logins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let accounts = dir.join("accounts");
    std::fs::write(&accounts, "blocked secret 0\n").expect("accounts file");
    let mut config = test_config(CodecKind::Rose);
    config.metrics_enabled = true;
    config.auto_create_accounts = false;
    config.accounts_file = Some(accounts);
    let gw = start(config);
    let logins = |result: &str| {
        scrape(
            &gw,
            &format!("packet_service_logins_total{{result=\"{result}\"}}"),
        )
    };
    let results = [
        "ok",
        "wrong_password",
        "unknown_account",
        "refused",
        "failed",
    ];
    // Every result's series is there before the first login.
    let (_, text) = util::http_get(gw.metrics_addr().expect("metrics"), "/metrics");
    for result in results {
        let series = format!("packet_service_logins_total{{result=\"{result}\"}} 0");
        assert!(text.contains(&series), "no {series}");
    }

    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(c.login("admin", "nope").result, 3, "INVALID_PASSWORD");
    assert_eq!(c.login("admin", "nope").result, 3, "INVALID_PASSWORD");
    // An unknown account is answered as a wrong password (docs/protocol.md §9 D17).
    assert_eq!(c.login("nobody", "x").result, 3, "INVALID_PASSWORD");
    assert_eq!(c.login("admin", "admin").result, 0, "OK");
    let mut blocked = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(
        blocked.login("blocked", "secret").result,
        7,
        "NO_RIGHT_TO_CONNECT"
    );
    blocked.expect_closed();

    let expected = [1.0, 2.0, 1.0, 1.0, 0.0];
    util::wait_until("the logins to be counted", || {
        results.iter().zip(expected).all(|(r, n)| logins(r) == n)
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn players_in_world_counts_the_joined_connections() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.auto_create_accounts = true;
    let gw = start(config);
    let in_world = |n: f64| {
        util::wait_until(&format!("{n} players in the world"), || {
            scrape(&gw, "packet_service_players_in_world") == n
        })
    };
    let first = enter_world(gw.addr(), CodecKind::Plain, "first", "First");
    in_world(1.0);
    let second = enter_world(gw.addr(), CodecKind::Plain, "second", "Second");
    in_world(2.0);
    // Each player also holds its character connection: only the map
    // connections count.
    drop(first);
    in_world(1.0);
    drop(second);
    in_world(0.0);
}

#[test]
fn build_info_names_the_version_and_the_git_revision() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    let gw = start(config);
    let (_, text) = util::http_get(gw.metrics_addr().expect("metrics"), "/metrics");
    let line = text
        .lines()
        .find(|l| l.starts_with("packet_service_build_info{"))
        .unwrap_or_else(|| panic!("no build_info in\n{text}"));
    let label = |name: &str| {
        let start = format!("{name}=\"");
        let rest = line.split_once(&start).map(|(_, r)| r).unwrap_or("");
        rest.split('"').next().unwrap_or("").to_owned()
    };
    assert_eq!(label("version"), env!("CARGO_PKG_VERSION"), "{line}");
    let revision = label("revision");
    assert!(
        !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{line}"
    );
    assert_eq!(revision, packet_service::metrics::REVISION);
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn the_binary_notifies_systemd_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("packet-service-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(util::DEADLINE))
        .expect("timeout");

    let mut child = Command::new(env!("CARGO_BIN_EXE_packet-service"))
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--no-metrics",
            "--admin-listen",
            "127.0.0.1:0",
            "--database",
            "memory",
            "--log-level",
            "warn",
        ])
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the binary");

    // READY=1 comes once the listener is bound; its status names the address.
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY within the deadline");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.contains("READY=1"), "{ready}");
    let addr: std::net::SocketAddr = ready
        .rsplit(' ')
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {ready:?}"));
    let mut c = Client::connect(addr, CodecKind::Rose);
    assert_eq!(c.accept().result, 2, "serving as soon as it said ready");

    // SIGTERM: STOPPING=1, the client is closed, exit status 0.
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let until = Instant::now() + util::DEADLINE;
    let mut stopping = false;
    while !stopping && Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            stopping = String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
        }
    }
    assert!(stopping, "STOPPING=1 sent");
    c.expect_closed();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < until, "the binary did not exit");
        std::thread::sleep(Duration::from_millis(10)); // polling a child's exit
    };
    assert!(status.success(), "exit status {status:?}");
    let _ = std::io::stderr().flush();
    let _ = std::fs::remove_dir_all(&dir);
}
