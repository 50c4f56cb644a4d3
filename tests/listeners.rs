//! Several reactors on one host: gateways that share the client port with
//! `SO_REUSEPORT`, and the binary serving the listener systemd passes
//! (socket activation, `deploy/packet-service.socket`).

mod util;

use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use packet_service::protocol::CodecKind;
use util::process::Process;
use util::{scrape, start, test_config, Client};

const ACCEPTED: &str = "packet_service_connections_accepted_total";

#[test]
fn gateways_with_reuse_port_share_one_port() {
    let mut config = test_config(CodecKind::Plain);
    config.reuse_port = true;
    config.metrics_enabled = true;
    let first = start(config.clone());
    config.service_port = first.addr().port();
    let second = start(config.clone());
    assert_eq!(second.addr(), first.addr());

    // Without SO_REUSEPORT the port is taken.
    config.reuse_port = false;
    let refused = packet_service::server::Server::build(config).err();
    assert!(
        matches!(
            refused,
            Some(packet_service::server::StartError::Bind { .. })
        ),
        "{refused:?}"
    );

    // The kernel spreads connections over both: with 32 of them, each
    // gateway gets some (all on one has odds of 2^-31).
    const CONNECTIONS: usize = 32;
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(first.addr(), CodecKind::Plain))
        .collect();
    for c in &mut clients {
        assert_eq!(c.accept().result, 2);
    }
    let counts = || (scrape(&first, ACCEPTED), scrape(&second, ACCEPTED));
    util::wait_until("every connection to be counted", || {
        let (a, b) = counts();
        a + b == CONNECTIONS as f64
    });
    let (a, b) = counts();
    assert!(a > 0.0 && b > 0.0, "one gateway got them all: {a} and {b}");

    // One gateway stopping leaves the port to the other.
    drop(second);
    for _ in 0..8 {
        let mut c = Client::connect(first.addr(), CodecKind::Plain);
        assert_eq!(c.accept().result, 2);
    }
}

/// The binary as systemd starts it for a socket unit: `fd` as descriptor 3,
/// `LISTEN_FDS=1`, `LISTEN_PID` its own pid (set by the shell it replaces).
fn activated(fd: RawFd, args: &[&str]) -> Process {
    let binary = env!("CARGO_BIN_EXE_packet-service");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#, binary])
        .args(args)
        .args(["--admin-listen", "127.0.0.1:0"])
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe; between fork and exec
    // they only place the socket at descriptor 3 without close-on-exec
    // (dup2 onto itself would keep the flag, hence the fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Process::collect(cmd)
}

#[test]
fn the_binary_serves_the_socket_systemd_passes() {
    let passed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = passed.local_addr().expect("addr");
    // The settings name a port that is taken: binding it would fail, so
    // serving proves the passed socket is used.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port().to_string();
    let args = [
        "--listen",
        "127.0.0.1",
        "--port",
        &taken_port,
        "--codec",
        "plain",
        "--no-metrics",
    ];
    let gw = activated(passed.as_raw_fd(), &args);
    assert_eq!(gw.addr(), addr, "it listens on the passed socket");
    gw.wait_for_line("socket passed by systemd");
    drop(passed);
    let mut c = Client::connect(addr, CodecKind::Plain);
    assert_eq!(c.accept().result, 2);
}

#[test]
fn the_binary_refuses_a_passed_socket_that_does_not_listen() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut gw = activated(udp.as_raw_fd(), &["--port", "0", "--no-metrics"]);
    let status = gw.wait();
    assert_eq!(status.code(), Some(1), "{:?}", gw.lines());
    gw.wait_for_line("descriptor 3 is not a listening TCP socket");
}
