//! loadgen as a user runs it: its version, and a non-zero exit when a
//! scenario measured nothing.

use std::process::{Command, Output};

use packet_service::config::Config;
use packet_service::protocol::CodecKind;
use packet_service::server::Server;

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen")
}

#[test]
fn version_prints_name_and_version() {
    let out = loadgen(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("loadgen {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A gateway that closes a connection at its second packet: the echo
/// connections die in the warm-up, nothing is measured, and loadgen says so.
#[test]
fn echo_against_a_rate_limiting_gateway_fails() {
    let mut config = Config::for_tests();
    config.codec = CodecKind::Plain;
    config.metrics_enabled = false;
    config.max_packets_per_sec = 1;
    config.packet_burst = 1;
    let gw = Server::build(config).expect("gateway starts").spawn();
    let addr = gw.addr().to_string();
    let out = loadgen(&[
        "echo", "--addr", &addr, "-c", "2", "-d", "0.5", "--warmup", "0.5", "-q",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{err}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line of reason: {err}");
    assert!(lines[0].starts_with("loadgen echo: "), "{err}");
    gw.stop().expect("gateway stops");
}
