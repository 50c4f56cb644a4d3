//! `systemd` notifications reach a `NOTIFY_SOCKET` datagram socket.
//!
//! The environment is process-global, so everything that sets `NOTIFY_SOCKET`
//! or `WATCHDOG_*` lives in this one test binary, in one test function.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use packet_service::systemd;

/// Removes the socket file when the test ends, however it ends.
struct TempSocket(PathBuf);

impl Drop for TempSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[track_caller]
fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the read timeout");
    String::from_utf8(buf[..n].to_vec()).expect("utf-8 notification")
}

#[test]
fn notifications_reach_the_notify_socket() {
    let path =
        std::env::temp_dir().join(format!("packet-service-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    let _cleanup = TempSocket(path.clone());
    // A deadline for every expected datagram, not a sleep: notify() sends
    // synchronously, so the datagram is queued before it returns.
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");

    // Without NOTIFY_SOCKET nothing is sent and there is no watchdog.
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::set_var("WATCHDOG_USEC", "2000000");
    systemd::ready("not sent");
    assert_eq!(systemd::watchdog_interval(), None);

    std::env::set_var("NOTIFY_SOCKET", &path);
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    assert_eq!(
        sock.recv(&mut buf).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "nothing may arrive while NOTIFY_SOCKET is unset"
    );
    sock.set_nonblocking(false).expect("blocking");

    systemd::ready("accepting clients on 127.0.0.1:29000");
    let msg = recv(&sock);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(
        msg.lines()
            .any(|l| l == "STATUS=accepting clients on 127.0.0.1:29000"),
        "{msg:?}"
    );

    systemd::status("draining");
    assert_eq!(recv(&sock), "STATUS=draining\n");

    // WATCHDOG_USEC=2 s → ping every second.
    assert_eq!(systemd::watchdog_interval(), Some(Duration::from_secs(1)));
    let t0 = Instant::now();
    let mut watchdog = systemd::Watchdog::from_env(t0);
    assert!(watchdog.poll(t0));
    assert_eq!(recv(&sock), "WATCHDOG=1\n");
    assert!(
        !watchdog.poll(t0),
        "a second ping within the period is not sent"
    );
    systemd::watchdog_ping();
    assert_eq!(recv(&sock), "WATCHDOG=1\n");

    // A watchdog meant for another process is not ours.
    std::env::set_var("WATCHDOG_PID", "1");
    if std::process::id() != 1 {
        assert_eq!(systemd::watchdog_interval(), None);
    }
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    assert_eq!(systemd::watchdog_interval(), Some(Duration::from_secs(1)));
    std::env::set_var("WATCHDOG_USEC", "0");
    assert_eq!(systemd::watchdog_interval(), None);

    systemd::stopping();
    assert_eq!(recv(&sock), "STOPPING=1\n");

    // A socket that went away is logged, not fatal.
    std::env::set_var("NOTIFY_SOCKET", "/nonexistent/packet-service-notify.sock");
    systemd::ready("nobody listens");
    systemd::watchdog_ping();
}
