//! End-to-end: record a login → char → map session against a server,
//! write it as a capture, replay it against a fresh server (other session
//! ids, other random values) and expect a match; doctor the capture and
//! expect the difference to be reported.

mod common;

use std::process::{Command, Output};

use common::{doctor, gateway, record_session, to_pcap, wire_id, TempCapture, TestServer};
use packet_service::protocol::{Codec, CodecKind, PacketType};
use packet_service_replay::capture::LinkType;

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .output()
        .expect("run replay")
}

/// Replays `cap` against `target` with more arguments: exit code and output.
fn replay_against(cap: &TempCapture, target: &str, args: &[&str]) -> (Option<i32>, String) {
    let path = cap.0.to_str().expect("path");
    let mut all = vec![path, "--target", target];
    all.extend_from_slice(args);
    let out = replay(&all);
    (out.status.code(), text(&out))
}

/// A session recorded against a server of `kind` (seeded `seed`; with
/// `stress`, a STRESS echo on the login connection), written as the
/// capture `name` with link type `link`.
fn session_capture(
    name: &str,
    kind: CodecKind,
    seed: u32,
    stress: bool,
    link: LinkType,
) -> TempCapture {
    let recorded = TestServer::start(kind, seed);
    let log = record_session(recorded.addr, kind, stress);
    TempCapture::new(name, &to_pcap(&log, link))
}

/// A server frame of a capture decoded: its plaintext (in place, padding
/// included) and its data length; it must be a `expected`.
fn server_plain(codec: Codec, wire: &[u8], expected: PacketType) -> (Vec<u8>, usize) {
    let mut plain = wire.to_vec();
    let h = codec
        .decode(
            packet_service::protocol::Direction::ServerToClient,
            &mut plain,
        )
        .expect("valid")
        .expect("whole");
    assert_eq!(h.command, wire_id(expected));
    (plain, h.data_len)
}

/// A copy of `cap`, named `name`, whose server frame `original` is
/// replaced by `plain` sealed again (same length: the capture stays valid).
fn doctored_capture(
    name: &str,
    cap: &TempCapture,
    codec: Codec,
    original: &[u8],
    plain: &[u8],
) -> TempCapture {
    let doctored = common::seal(
        codec,
        packet_service::protocol::Direction::ServerToClient,
        plain,
    );
    let mut bytes = std::fs::read(&cap.0).expect("read capture");
    assert_eq!(common::replace_bytes(&mut bytes, original, &doctored), 1);
    TempCapture::new(name, &bytes)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn plain_session_replays_against_a_fresh_server() {
    let cap = session_capture("plain", CodecKind::Plain, 1, true, LinkType::Ethernet);
    let fresh = TestServer::start(CodecKind::Plain, 2);
    let target = fresh.addr.to_string();
    let (code, t) = replay_against(&cap, &target, &["--codec", "plain", "--topspeed"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(
        t.contains("replayed 3 connections, 19 packets: 3 match, 0 differ"),
        "{t}"
    );
    // The char and map joins carried the fresh server's session ids.
    assert_eq!(t.matches("rewritten 1,").count(), 2, "{t}");
}

#[test]
fn rose_session_replays_paced_and_capped() {
    let cap = session_capture("rose", CodecKind::Rose, 3, false, LinkType::LinuxSll2);
    let fresh = TestServer::start(CodecKind::Rose, 4);
    let target = fresh.addr.to_string();
    let (code, t) = replay_against(&cap, &target, &["--speed", "4", "--connections", "2"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(t.contains("3 match, 0 differ"), "{t}");
    assert!(
        !t.contains("closed early"),
        "the login connection was done: {t}"
    );
}

#[test]
fn doctored_replies_are_reported() {
    let codec = Codec::new(CodecKind::Plain);
    let recorded = TestServer::start(CodecKind::Plain, 5);
    let mut log = record_session(recorded.addr, CodecKind::Plain, false);
    // Map join: the capture says INVALID_PASSWORD (3) where the server says OK.
    doctor(
        &mut log,
        codec,
        2,
        wire_id(PacketType::PAKSC_JOIN_SERVER_REPLY),
        |p| p[6] = 3,
    );
    // Login: the capture has a different packet type where the accept reply was.
    doctor(
        &mut log,
        codec,
        0,
        wire_id(PacketType::PAKSS_ACCEPT_REPLY),
        |p| p[2..4].copy_from_slice(&wire_id(PacketType::PAKWC_GLOBAL_VARS).to_le_bytes()),
    );
    let cap = TempCapture::new("doctored", &to_pcap(&log, LinkType::Ethernet));
    let fresh = TestServer::start(CodecKind::Plain, 6);
    let target = fresh.addr.to_string();
    let (code, t) = replay_against(
        &cap,
        &target,
        &["--codec", "plain", "--topspeed", "--timeout", "2"],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("1 match, 2 differ"), "{t}");
    assert!(
        t.contains("connection 1 127.0.0.1:50000: DIFFER server packet #0: expected PAKWC_GLOBAL_VARS got PAKSS_ACCEPT_REPLY"),
        "{t}"
    );
    assert!(
        t.contains("connection 3 127.0.0.1:50002: DIFFER server packet #1 PAKSC_JOIN_SERVER_REPLY: result differs: expected [03] got [00]"),
        "{t}"
    );
}

#[test]
fn dump_lists_connections_packets_and_errors() {
    let recorded = TestServer::start(CodecKind::Rose, 7);
    let mut log = record_session(recorded.addr, CodecKind::Rose, false);
    // Break the checksum of the map connection's accept reply.
    for (conn, r) in log.iter_mut() {
        if let (2, common::Record::Send(_, packet_service_replay::reassembly::Side::Server, wire)) =
            (*conn, r)
        {
            wire[5] ^= 0xFF;
            break;
        }
    }
    let cap = TempCapture::new("dump", &to_pcap(&log, LinkType::LinuxSll));
    let out = replay(&["--dump", cap.0.to_str().expect("path")]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        "connection 1: client 127.0.0.1:50000 -> server 127.0.0.1:29000",
        "connection 3: client 127.0.0.1:50002",
        "C>S  PAKCS_ACCEPT_REQ",
        "S>C  PAKLC_SRV_SELECT_REPLY",
        "C>S  PAKCS_JOIN_SERVER_REQ",
        "S>C  PAKCC_SWITCH_SERVER",
        "error: checksum mismatch",
        "(closed)",
    ] {
        assert!(t.contains(want), "missing {want:?}\n{t}");
    }
    // Decrypted bodies are shown: the SRV_SELECT_REPLY advertises 127.0.0.1.
    assert!(t.contains("31 32 37 2e 30 2e 30 …"), "{t}");
}

#[test]
fn usage_and_capture_errors_exit_2() {
    assert_eq!(replay(&[]).status.code(), Some(2));
    assert_eq!(replay(&["--bogus"]).status.code(), Some(2));
    assert_eq!(
        replay(&["/nonexistent/capture.pcap", "--dump"])
            .status
            .code(),
        Some(2)
    );
    let garbage = TempCapture::new("garbage", b"this is not a capture file");
    let out = replay(&[garbage.0.to_str().expect("path"), "--dump"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let empty = TempCapture::new("empty", &to_pcap(&[], LinkType::Ethernet));
    let out = replay(&[empty.0.to_str().expect("path"), "--target", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = replay(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("replay {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = replay(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--topspeed"));
}

#[test]
fn tcpdump_capture_replays_and_doctored_copy_differs() {
    if let Some(why) = common::tcpdump_missing() {
        println!("skipped: {why}");
        return;
    }
    let codec = Codec::new(CodecKind::Plain);
    let recorded = TestServer::start(CodecKind::Plain, 11);
    let port = recorded.addr.port();
    let path = std::env::temp_dir().join(format!("replay-{}-tcpdump.pcap", std::process::id()));
    let cap = TempCapture(path.clone());
    let dump = common::Tcpdump::start(port, path);
    let log = record_session(recorded.addr, CodecKind::Plain, true);
    dump.finish(port, 3);

    let fresh = TestServer::start(CodecKind::Plain, 12);
    let target = fresh.addr.to_string();
    let port_arg = port.to_string();
    let file = cap.0.to_str().expect("path");
    let args = [
        file,
        "--target",
        &target,
        "--port",
        &port_arg,
        "--codec",
        "plain",
        "--topspeed",
    ];
    let out = replay(&args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("3 match, 0 differ"), "{t}");

    // Doctor the map join reply in the real capture: same length, resealed.
    let join_reply = log
        .iter()
        .filter_map(|(c, r)| match r {
            common::Record::Send(_, packet_service_replay::reassembly::Side::Server, w)
                if *c == 2 =>
            {
                Some(w.clone())
            }
            _ => None,
        })
        .nth(1)
        .expect("map join reply");
    let (mut plain, _) = server_plain(codec, &join_reply, PacketType::PAKSC_JOIN_SERVER_REPLY);
    plain[6] = 4;
    let doctored_cap = doctored_capture("tcpdump-doctored", &cap, codec, &join_reply, &plain);
    let (code, t) = replay_against(
        &doctored_cap,
        &target,
        &["--port", &port_arg, "--codec", "plain", "--topspeed"],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("2 match, 1 differ"), "{t}");
    assert!(
        t.contains("PAKSC_JOIN_SERVER_REPLY: result differs: expected [04] got [00]"),
        "{t}"
    );
}

/// A server that reads everything and never answers.
fn silent_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s, &mut std::io::sink());
            });
        }
    });
    addr
}

#[test]
fn a_silent_server_costs_bounded_timeouts() {
    let cap = session_capture("silent", CodecKind::Plain, 13, false, LinkType::Ethernet);
    let target = silent_server().to_string();
    let (code, t) = replay_against(
        &cap,
        &target,
        &["--codec", "plain", "--topspeed", "--timeout", "0.3"],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("0 match, 3 differ"), "{t}");
    assert!(t.contains("expected PAKSS_ACCEPT_REPLY got nothing"), "{t}");
    assert!(t.contains("note: timed out after"), "{t}");
    // One causal timeout per connection plus the final drain, not one per step.
    let timeouts = t.matches("timed out after").count();
    assert!((1..=4).contains(&timeouts), "{timeouts} timeouts: {t}");
}

#[test]
fn a_server_speaking_the_other_codec_is_reported() {
    let cap = session_capture("codec", CodecKind::Rose, 14, false, LinkType::Ethernet);
    let plain = TestServer::start(CodecKind::Plain, 15);
    let target = plain.addr.to_string();
    let (code, t) = replay_against(&cap, &target, &["--topspeed", "--timeout", "2"]);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("0 match, 3 differ"), "{t}");
}

/// The acceptance test of the tool: a session against the real gateway,
/// captured by tcpdump on loopback, replayed against a fresh gateway (new
/// session ids, new random values, another port) must match; the same
/// capture with one reply doctored must not.
#[test]
fn tcpdump_capture_of_the_gateway_replays_against_a_fresh_one() {
    if let Some(why) = common::tcpdump_missing() {
        println!("skipped: {why}");
        return;
    }
    let codec = Codec::new(CodecKind::Rose);
    let first = gateway(CodecKind::Rose);
    let port = first.addr().port();
    let path = std::env::temp_dir().join(format!("replay-{}-gateway.pcap", std::process::id()));
    let cap = TempCapture(path.clone());
    let dump = common::Tcpdump::start(port, path);
    let log = common::record_gateway_session(first.addr(), CodecKind::Rose);
    dump.finish(port, 3);
    first.stop().expect("first gateway stops");

    let file = cap.0.to_str().expect("path");
    let port_arg = port.to_string();
    let listing = replay(&["--dump", file, "--port", &port_arg]);
    let t = text(&listing);
    assert_eq!(listing.status.code(), Some(0), "{t}");
    for want in [
        "PAKLC_LOGIN_REPLY",
        "PAKCC_CHAR_LIST_REPLY",
        "PAKWC_SELECT_CHAR_REPLY",
        "PAKWC_LOGOUT_REPLY",
    ] {
        assert!(t.contains(want), "dump lacks {want}:\n{t}");
    }
    assert!(!t.contains("error:"), "{t}");

    let fresh = gateway(CodecKind::Rose);
    let target = fresh.addr().to_string();
    let out = replay(&[file, "--target", &target, "--port", &port_arg, "--topspeed"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("replayed 3 connections"), "{t}");
    assert!(t.contains("3 match, 0 differ"), "{t}");

    // Doctor the second character list (after the create): rename the
    // character in the capture, resealed so only the name differs.
    let list = common::server_frame(&log, 1, 4);
    let (mut plain, data_len) = server_plain(codec, &list, PacketType::PAKCC_CHAR_LIST_REPLY);
    plain.truncate(data_len);
    let at = plain
        .windows(5)
        .position(|w| w == b"Raven")
        .expect("name in list");
    plain[at + 1] = b'o';
    let doctored_cap = doctored_capture("gateway-doctored", &cap, codec, &list, &plain);
    let fresh = gateway(CodecKind::Rose);
    let target = fresh.addr().to_string();
    let (code, t) = replay_against(&doctored_cap, &target, &["--port", &port_arg, "--topspeed"]);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("2 match, 1 differ"), "{t}");
    assert!(
        t.contains(&format!(
            "DIFFER server packet #4 PAKCC_CHAR_LIST_REPLY: byte {} differs",
            at + 1
        )),
        "{t}"
    );
}
