//! The binary as an operator runs it: what its signals do, what it logs and
//! in which format, and its `healthcheck` subcommand.

mod util;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{LoginResult, NormalChat, NormalChatBroadcast};
use packet_service::protocol::CodecKind;
use util::flow::{enter_world, recv_skipping, Player};
use util::process::Process;
use util::Client;

#[test]
fn sighup_is_logged_and_the_gateway_keeps_serving() {
    let gw = Process::start(&["--no-metrics"], &[]);
    let addr = gw.addr();
    let mut before = Client::connect(addr, CodecKind::Rose);
    assert_eq!(before.accept().result, 2);

    gw.signal(libc::SIGHUP);
    gw.wait_for_line("reload: no setting changed");
    // The connection made before the signal and a new one are both served.
    assert_eq!(before.accept().result, 2);
    let mut after = Client::connect(addr, CodecKind::Rose);
    assert_eq!(after.accept().result, 2);

    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

/// A configuration file of its own for one test, removed when dropped.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path =
            std::env::temp_dir().join(format!("packet-service-{}-{name}.env", std::process::id()));
        let file = ConfigFile(path);
        file.write(text);
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("write the config file");
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sighup_applies_a_new_limit_from_the_config_file_and_keeps_the_old_on_a_bad_one() {
    let file = ConfigFile::new("limit", "# limits\nMAX_CONNECTIONS_PER_IP=4\n");
    let gw = Process::start(&["--no-metrics", "--config-file", file.path()], &[]);
    let addr = gw.addr();
    let mut before = Client::connect(addr, CodecKind::Rose);
    assert_eq!(before.accept().result, 2);

    // A bad value is refused in one line and nothing changes.
    file.write("MAX_CONNECTIONS_PER_IP=many\nMAX_PACKETS_PER_SEC=50\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_line(
        "reload refused, keeping the current settings: invalid --max-connections-per-ip",
    );
    let mut second = Client::connect(addr, CodecKind::Rose);
    assert_eq!(second.accept().result, 2);
    drop(second);

    // The new limit applies to new connections; the existing one is served.
    file.write("MAX_CONNECTIONS_PER_IP=1\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_line("reload: MAX_CONNECTIONS_PER_IP 4 -> 1");
    assert!(
        !gw.lines().iter().any(|l| l.contains("MAX_PACKETS_PER_SEC")),
        "the refused reload applied nothing"
    );
    Client::connect(addr, CodecKind::Rose).expect_closed();
    assert_eq!(before.accept().result, 2);

    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sighup_names_restart_only_changes_and_never_stops_the_service() {
    let file = ConfigFile::new("restart", "LOG_FORMAT=text\n");
    let gw = Process::start(&["--no-metrics", "--config-file", file.path()], &[]);
    let addr = gw.addr();

    file.write("LOG_FORMAT=json\nLOG_LEVEL=debug\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_line("reload: LOG_LEVEL Info -> Debug");
    gw.wait_for_line("need a restart: LOG_FORMAT");
    for _ in 0..3 {
        gw.signal(libc::SIGHUP);
    }
    let mut after = Client::connect(addr, CodecKind::Rose);
    assert_eq!(after.accept().result, 2);

    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

/// The result code of a login on a connection of its own.
fn login(addr: std::net::SocketAddr, user: &str, password: &str) -> u8 {
    util::login_result(addr, CodecKind::Rose, user, password)
}

/// Chat goes out and comes back: the map connection is served.
fn served(player: &mut Player, message: &str) {
    player.map.send(&NormalChat {
        message: message.into(),
    });
    let chat: NormalChatBroadcast = recv_skipping(&mut player.map, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("decodes");
    assert_eq!(
        (chat.char_id, chat.message.as_str()),
        (player.entity, message)
    );
}

#[test]
fn sighup_rereads_the_accounts_file_while_a_player_stays_in_the_world() {
    const OK: u8 = LoginResult::Ok as u8;
    const INVALID_PASSWORD: u8 = LoginResult::InvalidPassword as u8;
    let accounts = ConfigFile::new("accounts", "alice pw\nbob Old0pw\ndave Dave0pw\n");
    let gw = Process::start(
        &[
            "--no-metrics",
            "--database",
            "memory",
            "--accounts-file",
            accounts.path(),
        ],
        &[],
    );
    let addr = gw.addr();
    let mut alice = enter_world(addr, CodecKind::Rose, "alice", "Alice");
    assert_eq!(login(addr, "carol", "Carol0pw"), INVALID_PASSWORD);

    // A new account, a changed password and level; dave's line goes, his
    // account stays.
    accounts.write("alice pw\nbob New0pw 2\ncarol Carol0pw\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_line(&format!(
        "accounts file {} reloaded: 1 added (carol), 1 password changed (bob), \
         1 access changed (bob), 1 no longer listed, kept (dave), 1 unchanged",
        accounts.path()
    ));
    served(&mut alice, "still here");
    assert_eq!(login(addr, "carol", "Carol0pw"), OK);
    assert_eq!(login(addr, "bob", "Old0pw"), INVALID_PASSWORD);
    assert_eq!(login(addr, "bob", "New0pw"), OK);
    assert_eq!(login(addr, "dave", "Dave0pw"), OK);

    // A broken line refuses the whole file: nothing of it applies.
    accounts.write("alice pw\nbob Newer0pw\ncarol\n");
    gw.signal(libc::SIGHUP);
    let refused = gw.wait_for_line("accounts reload refused, keeping the current accounts: ");
    assert!(
        refused.contains(&format!("{}:3: ", accounts.path())),
        "names the file and line: {refused}"
    );
    served(&mut alice, "and still");
    assert_eq!(login(addr, "bob", "Newer0pw"), INVALID_PASSWORD);
    assert_eq!(login(addr, "bob", "New0pw"), OK);
    assert_eq!(login(addr, "carol", "Carol0pw"), OK);

    let lines = gw.lines();
    for secret in ["Old0pw", "New0pw", "Newer0pw", "Carol0pw", "Dave0pw"] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "a password in the log:\n{}",
            lines.join("\n")
        );
    }
    drop(alice);
    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn the_standalone_backend_rereads_its_accounts_file_on_sighup() {
    let accounts = ConfigFile::new("backend-accounts", "alice Alice0pw\n");
    let listen = util::free_addr();
    let backend = Process::backend_with(
        listen,
        &["--database", "memory", "--accounts-file", accounts.path()],
    );
    let gw = Process::gateway_on(&format!("http://{listen}"), &["--no-metrics"]);
    let addr = gw.addr();
    assert_eq!(
        login(addr, "bob", "Bob0pw"),
        LoginResult::InvalidPassword as u8
    );

    accounts.write("alice Alice0pw\nbob Bob0pw\n");
    backend.signal(libc::SIGHUP);
    backend.wait_for_line("reloaded: 1 added (bob), 0 password changed");
    assert_eq!(login(addr, "bob", "Bob0pw"), LoginResult::Ok as u8);
    assert_eq!(login(addr, "alice", "Alice0pw"), LoginResult::Ok as u8);

    let status = backend.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn failing_backend_calls_are_counted_and_warned_about_once_per_interval() {
    let auth = format!("http://{}", util::free_addr());
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

/// Opens a connection and sends a frame with a bad checksum: the gateway
/// closes it and logs the close at debug, with the connection's prefix.
fn bad_frame(addr: std::net::SocketAddr) {
    let mut c = Client::connect(addr, CodecKind::Plain);
    let mut frame = c.raw_frame(0x500, &[]);
    frame[5] ^= 0x55;
    c.send_bytes(&frame);
    c.expect_closed();
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn json_logs_are_one_object_per_line_with_the_connection_as_fields() {
    let gw = Process::start(
        &["--codec", "plain", "--no-metrics", "--log-level", "debug"],
        &[("LOG_FORMAT", "json")],
    );
    bad_frame(gw.addr());
    let closed = json(&gw.wait_for_line("closed: bad_checksum"));
    assert_eq!(closed["level"], "DEBUG");
    assert_eq!(closed["target"], "packet_service::reactor::close");
    assert_eq!(closed["message"], "closed: bad_checksum");
    assert_eq!(closed["phase"], "new");
    let conn = closed["conn"].as_str().expect("conn");
    assert!(conn.starts_with('c') && conn.contains('.'), "{conn}");
    let peer: std::net::SocketAddr = closed["peer"]
        .as_str()
        .expect("peer")
        .parse()
        .expect("addr");
    assert!(peer.ip().is_loopback());

    // Every line is an object with the four members.
    let lines = gw.lines();
    assert!(lines.len() > 3, "{lines:?}");
    for line in &lines {
        let object = json(line);
        for member in ["timestamp", "level", "target", "message"] {
            assert!(object[member].is_string(), "{member} in {line}");
        }
    }
    let status = gw.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn rust_log_sets_levels_per_target_over_the_log_level() {
    let gw = Process::start(
        &["--codec", "plain", "--no-metrics", "--log-level", "info"],
        &[(
            "RUST_LOG",
            "packet_service::backend=warn,packet_service::reactor=debug",
        )],
    );
    bad_frame(gw.addr());
    gw.wait_for_line("[DEBUG] packet_service::reactor::close: [c");
    let lines = gw.lines();
    // Logged before the listener line, so it would be there by now.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("embedded backend listening on")),
        "packet_service::backend is at warn: {lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("[INFO ] packet_service::server: listening on")));

    // An invalid filter is refused at start like any other setting.
    let out = Process::command(&["--log-filter", "packet_service=loud"], &[])
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid --log-filter / RUST_LOG \"packet_service=loud\""),
        "{err}"
    );
}

#[test]
fn lines_carry_syslog_priorities_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;

    let dir = std::env::temp_dir().join(format!("packet-service-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |name: &str, journal_stream: &dyn Fn(&std::fs::Metadata) -> String| {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).expect("log file");
        let stream = journal_stream(&file.metadata().expect("metadata"));
        let mut command = Process::command(
            &["--listen", "0.0.0.0", "--no-metrics"],
            &[("JOURNAL_STREAM", &stream)],
        );
        let mut child = command.stderr(file).spawn().expect("start the binary");
        util::wait_until("the listener line", || {
            std::fs::read_to_string(&path).is_ok_and(|t| t.contains("(codec "))
        });
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert!(child.wait().expect("wait").success());
        std::fs::read_to_string(&path).expect("log")
    };

    let journal = run("journal", &|m| format!("{}:{}", m.dev(), m.ino()));
    let lines: Vec<&str> = journal.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with('<')), "{journal}");
    let warned = lines
        .iter()
        .find(|l| l.contains("listening on every address"))
        .expect("warning");
    assert!(
        warned.starts_with("<4>") && warned.contains("[WARN ]"),
        "{warned}"
    );
    let info = lines
        .iter()
        .find(|l| l.contains("(codec "))
        .expect("listener line");
    assert!(info.starts_with("<6>"), "{info}");

    // JOURNAL_STREAM inherited from a parent whose stderr was the journal
    // names another stream: no priorities.
    let elsewhere = run("elsewhere", &|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(
        elsewhere.lines().all(|l| !l.starts_with('<')),
        "{elsewhere}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `packet-service healthcheck ARGS` with `env` and returns its exit
/// code and stderr.
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_packet-service"))
        .arg("healthcheck")
        .args(args)
        .env_remove("METRICS_ADDR")
        .env_remove("PACKET_METRICS_PORT")
        .env_remove("METRICS_ENABLED")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run healthcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn healthcheck_exits_0_for_a_healthy_gateway_and_1_otherwise() {
    let gw = Process::start(&[], &[]);
    let metrics = gw.metrics_addr();
    gw.addr();
    let url = format!("http://{metrics}/healthz");
    // 503 "starting" until the reactor runs.
    util::wait_until("a healthy gateway", || {
        healthcheck(&["--url", &url], &[]).0 == Some(0)
    });
    // Without --url it asks where the settings put the endpoint.
    let port = metrics.port().to_string();
    let env = [
        ("METRICS_ADDR", "0.0.0.0"),
        ("PACKET_METRICS_PORT", port.as_str()),
    ];
    assert_eq!(healthcheck(&[], &env).0, Some(0));

    // Nothing listens on a port just closed.
    let nowhere = format!("http://{}/healthz", util::free_addr());
    let (code, err) = healthcheck(&["--url", &nowhere, "--timeout", "1"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unhealthy: cannot connect"), "{err}");
    // A path that is not /healthz answers 404.
    let wrong = format!("http://{metrics}/nothing");
    let (code, err) = healthcheck(&["--url", &wrong], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("status 404"), "{err}");
    // A gateway without the endpoint cannot be healthy by this check.
    let (code, err) = healthcheck(&[], &[("METRICS_ENABLED", "false")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("disabled"), "{err}");
    // A bad command line is a usage error.
    assert_eq!(healthcheck(&["--url", "ftp://x"], &[]).0, Some(2));

    // A stopped gateway does not answer.
    let status = gw.stop();
    assert!(status.success());
    assert_eq!(
        healthcheck(&["--url", &url, "--timeout", "1"], &[]).0,
        Some(1)
    );
}

#[test]
fn healthcheck_times_out_on_a_silent_endpoint() {
    // A listener that accepts (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/healthz", silent.local_addr().expect("addr"));
    let started = std::time::Instant::now();
    let (code, err) = healthcheck(&["--url", &url, "--timeout", "0.3"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("within the timeout"), "{err}");
    assert!(started.elapsed() < util::DEADLINE);
}
