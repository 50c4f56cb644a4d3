//! irose captures: a session recorded against a gateway serving irose (on
//! the default tables and the tables of the seeds it announced) is listed
//! with every connection's tables found from the replies in the capture,
//! and replays against a fresh gateway — also one announcing other seeds,
//! whose tables the replay then uses.

mod common;

use std::process::{Command, Output};

use common::{gateway_with, record_irose_gateway_session, to_pcap, TempCapture};
use packet_service::conn::wire::PacketIds;
use packet_service::protocol::codec::Seed;
use packet_service::protocol::{CodecKind, DialectId};
use packet_service_replay::capture::LinkType;

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .output()
        .expect("run replay")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn irose_gateway(ids: PacketIds, seeds: &[u32]) -> packet_service::server::ServerHandle {
    let seeds: Vec<Seed> = seeds.iter().filter_map(|&s| Seed::new(s)).collect();
    gateway_with(CodecKind::Rose, move |c| {
        c.packet_ids = ids;
        if !seeds.is_empty() {
            c.irose_seeds = seeds;
        }
    })
}

fn recorded_capture(name: &str) -> TempCapture {
    let recorded = irose_gateway(PacketIds::One(DialectId::Irose), &[]);
    let log = record_irose_gateway_session(recorded.addr());
    recorded.stop().expect("gateway stops");
    TempCapture::new(name, &to_pcap(&log, LinkType::Ethernet))
}

#[test]
fn an_irose_capture_is_listed_with_each_connections_tables() {
    let cap = recorded_capture("irose-dump");
    let file = cap.0.to_str().expect("path");
    let out = replay(&["--dump", file, "--packet-ids", "irose"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        "irose on the default tables",
        "irose on the tables of seed 0x12345678",
        "irose on the tables of seed 0x87654321",
        "PAKLC_LOGIN_REPLY",
        "PAKCC_CHAR_LIST_REPLY",
        "PAKWC_SELECT_CHAR_REPLY",
        "PAKWC_CHANGE_MAP_REPLY",
        "PAKWC_NORMAL_CHAT",
        "PAKWC_LOGOUT_REPLY",
    ] {
        assert!(t.contains(want), "dump lacks {want}:\n{t}");
    }
    assert!(!t.contains("error:"), "{t}");
    // Read as osIROSE, the char and map connections do not decode.
    let out = replay(&["--dump", file]);
    assert!(text(&out).contains("error:"));
}

#[test]
fn an_irose_capture_replays_against_a_fresh_gateway() {
    let cap = recorded_capture("irose-replay");
    let file = cap.0.to_str().expect("path");
    for ids in [PacketIds::One(DialectId::Irose), PacketIds::Auto] {
        let fresh = irose_gateway(ids, &[]);
        let target = fresh.addr().to_string();
        let out = replay(&[
            file,
            "--target",
            &target,
            "--packet-ids",
            ids.name(),
            "--topspeed",
        ]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.contains("3 match, 0 differ"), "{t}");
        assert_eq!(t.matches("rewritten 1,").count(), 2, "both joins: {t}");
    }
}

/// A gateway announcing other seeds: the char and map connections are
/// replayed on its seeds' tables (their joins succeed, the map connection
/// matches); the announcements themselves are reported as differences.
#[test]
fn a_gateway_with_other_seeds_is_replayed_on_its_tables() {
    let cap = recorded_capture("irose-seeds");
    let file = cap.0.to_str().expect("path");
    let fresh = irose_gateway(
        PacketIds::One(DialectId::Irose),
        &[0x0BAD_5EED, 0x00C0_FFEE],
    );
    let target = fresh.addr().to_string();
    let out = replay(&[
        file,
        "--target",
        &target,
        "--packet-ids",
        "irose",
        "--topspeed",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("1 match, 2 differ"), "{t}");
    assert!(
        t.contains("PAKLC_SRV_SELECT_REPLY: crypt_val differs"),
        "{t}"
    );
    assert!(
        t.contains("PAKCC_SWITCH_SERVER: session_seed differs"),
        "{t}"
    );
    assert!(t.contains("connection 3 127.0.0.1:50002: OK"), "{t}");
}
