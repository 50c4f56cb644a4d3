//! The Wireshark dissector `tools/wireshark/rose.lua`: the committed file is
//! what the generator writes, and `tshark` running it over captures of real
//! sessions names the same packets, as many times, as `replay --dump`.
//!
//! `tshark` comes from the `TSHARK` variable (`.ci/run` installs tshark and
//! sets it). Unset, the tshark tests print one line and pass, except under
//! `CI`, where they fail.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{gateway, rechunk, record_gateway_session, to_pcap, Record, Tcpdump, TempCapture};
use packet_service::protocol::CodecKind;
use packet_service_replay::capture::LinkType;
use packet_service_replay::reassembly::Side;
use packet_service_replay::wireshark::{dissector_lua, OUTPUT, REGENERATE};

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wireshark/rose.lua")
}

#[test]
fn committed_dissector_is_what_the_generator_writes() {
    let fresh = dissector_lua().expect("the dissector generates");
    let path = committed();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != fresh {
        let line = on_disk
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_string(), |n| format!("line {}", n + 1));
        panic!(
            "{OUTPUT} is stale (first difference: {line}); regenerate it with `{REGENERATE}` \
             (replay --wireshark-lua > {OUTPUT}) and commit it"
        );
    }
}

/// The tshark to run, or `None` (with the line printed) when the test is
/// skipped. Under `CI` a missing tshark fails the test.
fn tshark() -> Option<PathBuf> {
    match std::env::var_os("TSHARK") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "TSHARK is not set: under CI tshark is required (.ci/run installs it and exports TSHARK)"
            );
            println!("skipped: TSHARK is not set (e.g. TSHARK=/usr/bin/tshark)");
            None
        }
    }
}

/// How one capture is to be read by both tools.
struct Reading<'a> {
    capture: &'a Path,
    port: u16,
    codec: CodecKind,
    dialect: &'a str,
}

/// Packet names and how often each occurs, from `replay --dump`.
fn dump_counts(r: &Reading<'_>) -> BTreeMap<String, usize> {
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("--dump")
        .arg(r.capture)
        .args(["--port", &r.port.to_string(), "--codec", r.codec.name()])
        .args(["--packet-ids", r.dialect])
        .output()
        .expect("run replay");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay --dump failed: {text}");
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [offset, "C>S" | "S>C", name, ..] = words.as_slice() {
            if offset.starts_with(['+', '-']) && !name.starts_with('(') {
                *counts.entry((*name).to_string()).or_default() += 1;
            }
        }
    }
    counts
}

/// Runs tshark with the dissector over the capture; one row per frame that
/// holds ROSE packets, one column per field (occurrences joined by ',').
fn tshark_fields(tshark: &Path, r: &Reading<'_>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new(tshark);
    cmd.arg("-n")
        .arg("-X")
        .arg(format!("lua_script:{}", committed().display()))
        .args(["-o", &format!("rose.port:{}", r.port)])
        .args(["-o", &format!("rose.codec:{}", r.codec.name())])
        .args(["-o", &format!("rose.dialect:{}", r.dialect)])
        .arg("-r")
        .arg(r.capture)
        .args(["-Y", "rose", "-T", "fields", "-E", "separator=/t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("Lua") && !stdout.contains("Lua Error"),
        "the dissector raised an error: {stderr}{stdout}"
    );
    stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Every value of column `col`, split at ','.
fn values(rows: &[Vec<String>], col: usize) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r.get(col))
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn counts(names: Vec<String>) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for n in names {
        *c.entry(n).or_default() += 1;
    }
    c
}

const FIELDS: &[&str] = &[
    "rose.name",
    "rose.checksum.good",
    "rose.paklc_login_reply.result",
    "rose.pakcs_login_req.username",
    "rose.pakcc_char_list_reply.characters.name",
    "rose.pakcs_create_char_req.name",
    "rose.pakcs_normal_chat.message",
    "rose.paklc_srv_select_reply.ip",
    "rose.pakcc_switch_server.session_id",
];

/// Names and counts agree with the dump, every checksum is good, and the
/// typed fields of the session show the values it sent.
fn check_session(tshark: &Path, r: &Reading<'_>) {
    let rows = tshark_fields(tshark, r, FIELDS);
    let want = dump_counts(r);
    let got = counts(values(&rows, 0));
    assert!(
        want.values().sum::<usize>() >= 20,
        "a whole session: {want:?}"
    );
    assert_eq!(got, want, "tshark (left) vs replay --dump (right)");
    let checks = values(&rows, 1);
    assert_eq!(checks.len(), got.values().sum::<usize>());
    assert!(
        checks.iter().all(|c| c == "1" || c == "True"),
        "checksums: {checks:?}"
    );
    assert_eq!(values(&rows, 2), ["0"], "login result OK");
    assert_eq!(values(&rows, 3), ["admin"]);
    assert!(values(&rows, 4).contains(&"Raven".to_string()), "{rows:?}");
    assert_eq!(values(&rows, 5), ["Raven"]);
    assert_eq!(values(&rows, 6), ["hello"]);
    assert_eq!(values(&rows, 7), ["127.0.0.1"]);
    assert_eq!(values(&rows, 8).len(), 1);
}

/// A session against the real gateway, captured by tcpdump on loopback.
fn tcpdump_session(codec: CodecKind) -> (TempCapture, u16) {
    let gw = gateway(codec);
    let port = gw.addr().port();
    let path = std::env::temp_dir().join(format!(
        "wireshark-{}-{}.pcap",
        std::process::id(),
        codec.name()
    ));
    let file = TempCapture(path.clone());
    let dump = Tcpdump::start(port, path);
    record_gateway_session(gw.addr(), codec);
    dump.finish(port, 3);
    gw.stop().expect("gateway stops");
    (file, port)
}

#[test]
fn tshark_names_the_packets_of_real_captures_like_replay_dump() {
    let Some(tshark) = tshark() else { return };
    if let Some(why) = common::tcpdump_missing() {
        println!("skipped: {why}");
        return;
    }
    for codec in [CodecKind::Rose, CodecKind::Plain] {
        let (file, port) = tcpdump_session(codec);
        check_session(
            &tshark,
            &Reading {
                capture: &file.0,
                port,
                codec,
                dialect: "osirose",
            },
        );
    }
}

/// Packets split over segments and several in one segment, on the default
/// port; one checksum broken; and the other dialect's names.
#[test]
fn tshark_reassembles_split_and_coalesced_packets() {
    let Some(tshark) = tshark() else { return };
    for codec in [CodecKind::Rose, CodecKind::Plain] {
        let gw = gateway(codec);
        let log = record_gateway_session(gw.addr(), codec);
        gw.stop().expect("gateway stops");
        // 23: most packets span segments; 700: the join burst shares them.
        for chunk in [23, 700] {
            let file = TempCapture::new(
                &format!("wireshark-chunked-{chunk}-{}", codec.name()),
                &to_pcap(&rechunk(&log, chunk), LinkType::Ethernet),
            );
            let r = Reading {
                capture: &file.0,
                port: 29000,
                codec,
                dialect: "osirose",
            };
            check_session(&tshark, &r);
            if chunk == 700 {
                let rows = tshark_fields(&tshark, &r, &["rose.name", "_ws.col.Info"]);
                let shared = rows
                    .iter()
                    .find(|row| row[0].contains(','))
                    .unwrap_or_else(|| panic!("no segment with two packets: {rows:?}"));
                assert_eq!(
                    shared[1],
                    format!("S>C {}", shared[0].replace(',', ", ")),
                    "Info lists every packet of the segment"
                );
            }
        }
        let file = TempCapture::new(
            &format!("wireshark-chunked-{}", codec.name()),
            &to_pcap(&rechunk(&log, 23), LinkType::Ethernet),
        );
        let mut r = Reading {
            capture: &file.0,
            port: 29000,
            codec,
            dialect: "osirose",
        };

        r.dialect = "osirose-2021";
        let rows = tshark_fields(&tshark, &r, &["rose.name"]);
        assert_eq!(counts(values(&rows, 0)), dump_counts(&r), "{}", r.dialect);

        // The first server packet of the login connection with one bit off.
        let mut broken = log.clone();
        if let Some((_, Record::Send(_, _, wire))) = broken
            .iter_mut()
            .find(|(c, rec)| *c == 0 && matches!(rec, Record::Send(_, Side::Server, _)))
        {
            wire[5] ^= 0x01;
        }
        std::fs::write(&file.0, to_pcap(&rechunk(&broken, 23), LinkType::Ethernet)).expect("write");
        r.dialect = "osirose";
        let rows = tshark_fields(&tshark, &r, &["rose.name", "rose.checksum.good"]);
        let bad = values(&rows, 1)
            .iter()
            .filter(|c| *c == "0" || *c == "False")
            .count();
        assert_eq!(bad, 1, "{rows:?}");
        assert_eq!(counts(values(&rows, 0)), dump_counts(&r));
    }
}
