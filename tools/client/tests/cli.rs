//! rose-client as a user runs it: its version, the address it could not
//! reach, and a refused login by the name of its result code.

use std::process::{Command, Output};

use packet_service::config::Config;
use packet_service::server::Server;

fn client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rose-client"))
        .args(args)
        .output()
        .expect("run rose-client")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_prints_name_and_version() {
    let out = client(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("rose-client {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unreachable_gateway_is_named() {
    // A port nobody listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let out = client(&["--addr", &addr.to_string(), "--listen", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the gateway at {addr}")),
        "{err}"
    );
}

#[test]
fn a_refused_login_names_its_result() {
    let mut config = Config::for_tests();
    config.metrics_enabled = false;
    config.accounts = vec![("admin".into(), "admin".into())];
    let gw = Server::build(config).expect("gateway starts").spawn();
    let addr = gw.addr().to_string();
    let out = client(&["--addr", &addr, "--password", "wrong", "--listen", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("login failed: result 3 (invalid password)"),
        "{err}"
    );
    gw.stop().expect("gateway stops");
}

#[test]
fn walks_the_irose_flow_on_an_auto_gateway() {
    let mut config = Config::for_tests();
    config.metrics_enabled = false;
    config.packet_ids = packet_service::conn::wire::PacketIds::Auto;
    config.accounts = vec![("admin".into(), "admin".into())];
    let gw = Server::build(config).expect("gateway starts").spawn();
    let addr = gw.addr().to_string();
    let out = client(&[
        "--addr",
        &addr,
        "--packet-ids",
        "irose",
        "--say",
        "hello",
        "--listen",
        "0.5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", stderr(&out));
    for line in [
        "char connection seed 0x12345678",
        "map connection seed 0x87654321",
        "created character Hero",
        "in the world as entity",
        "heard entity",
        "logged out (wait 0 s)",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    gw.stop().expect("gateway stops");
}
