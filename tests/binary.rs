//! The binary as an operator runs it: what its signals do, what it logs and
//! in which format, and its `healthcheck` subcommand.

mod util;

use packet_service::protocol::CodecKind;
use util::process::Process;
use util::Client;

#[test]
fn sighup_is_logged_and_the_gateway_keeps_serving() {
    let gw = Process::start(&["--no-metrics"], &[]);
    let addr = gw.addr();
    let mut before = Client::connect(addr, CodecKind::Rose);
    assert_eq!(before.accept().result, 2);

    gw.signal(libc::SIGHUP);
    gw.wait_for_line("reload requested (not yet supported: restart to apply changes)");
    // The connection made before the signal and a new one are both served.
    assert_eq!(before.accept().result, 2);
    let mut after = Client::connect(addr, CodecKind::Rose);
    assert_eq!(after.accept().result, 2);

    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn failing_backend_calls_are_counted_and_warned_about_once_per_interval() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let auth = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let gw = Process::start(&["--auth-url", &auth], &[]);
    let (addr, metrics) = (gw.addr(), gw.metrics_addr());

    // Every service has every error series from the start.
    let (_, text) = util::http_get(metrics, "/metrics");
    for service in ["auth", "character", "world"] {
        for code in ["unavailable", "deadline_exceeded", "failed"] {
            let series =
                format!("packet_service_rpc_errors_total{{code=\"{code}\",service=\"{service}\"}}");
            assert!(text.contains(&series), "no {series}");
        }
    }

    for _ in 0..5 {
        let mut c = Client::connect(addr, CodecKind::Rose);
        assert_eq!(c.login("admin", "admin").result, 1, "FAILED");
    }
    let unavailable = "packet_service_rpc_errors_total{code=\"unavailable\",service=\"auth\"}";
    util::wait_until("five failed logins counted", || {
        let (_, text) = util::http_get(metrics, "/metrics");
        util::metric(&text, unavailable) >= 5.0
    });
    let (_, text) = util::http_get(metrics, "/metrics");
    let failed = "packet_service_logins_total{result=\"failed\"}";
    assert_eq!(util::metric(&text, failed), 5.0, "logins without a verdict");
    let warned = gw.wait_for_line("backend auth: ");
    assert!(warned.contains("WARN"), "{warned}");
    let lines = gw.lines();
    let warnings = lines
        .iter()
        .filter(|l| l.contains("backend auth: "))
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning within the interval:\n{}",
        lines.join("\n")
    );
}

#[test]
fn listening_everywhere_while_advertising_loopback_is_warned_about() {
    let gw = Process::start(&["--listen", "0.0.0.0", "--no-metrics"], &[]);
    let line = gw.wait_for_line("listening on every address (0.0.0.0) but advertising 127.0.0.1");
    assert!(line.contains("WARN"), "{line}");
    drop(gw);

    let gw = Process::start(&["--no-metrics"], &[]);
    gw.addr();
    assert!(
        !gw.lines()
            .iter()
            .any(|l| l.contains("listening on every address")),
        "loopback listener: no warning"
    );
}
