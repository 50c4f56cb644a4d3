//! Unit tests of the settings: precedence, every rule, the error line,
//! `--help`, the summary and the parts built from a configuration.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use log::LevelFilter;

use super::rules::{fmt_secs, parse_decimal_secs, BOOL_EXPECTED};
use super::*;
use crate::backend::BackendConfig;
use crate::conn::wire::PacketIds;
use crate::protocol::{CodecKind, DialectId};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[track_caller]
fn run_with(list: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Config::parse(&args(list), &|name| env.get(name).cloned())? {
        Command::Run(config) => Ok(config),
        other => panic!("expected Run, got {other:?}"),
    }
}

#[track_caller]
fn run(list: &[&str]) -> Config {
    match run_with(list, &[]) {
        Ok(config) => config,
        Err(err) => panic!("{list:?} refused: {err}"),
    }
}

#[track_caller]
fn refused(list: &[&str], env: &[(&str, &str)]) -> String {
    match run_with(list, env) {
        Ok(config) => panic!("{list:?} {env:?} accepted: {config:?}"),
        Err(err) => err.to_string(),
    }
}

/// Whitespace collapsed, so wrapped help lines compare as one.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn defaults() {
    let c = run(&[]);
    assert_eq!(c.listen_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.service_port, 29000);
    assert_eq!(c.metrics_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.metrics_port, 9102);
    assert!(c.metrics_enabled);
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.buffer_pool_size, 4096);
    assert_eq!(c.buffer_size, 4096);
    assert_eq!(c.codec, CodecKind::Rose);
    assert_eq!(c.packet_ids, PacketIds::One(DialectId::Osirose));
    assert_eq!(c.public_addr, Ipv4Addr::LOCALHOST);
    assert_eq!(c.public_port, None);
    assert_eq!(c.handshake_timeout, Duration::from_secs(30));
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
    assert_eq!(c.log_level, LevelFilter::Info);
    assert_eq!(c.rpc_threads, 2);
    assert_eq!(c.rpc_deadline, Duration::from_millis(3000));
    assert_eq!(c.rpc_queue, 4096);
    assert_eq!(c.auth_url, None);
    assert_eq!(c.character_url, None);
    assert_eq!(c.world_url, None);
    assert_eq!(c.backend_listen, None);
    assert_eq!(c.accounts_file, None);
    assert!(c.accounts.is_empty());
    assert!(!c.auto_create_accounts);
    assert_eq!(c.session_ttl, Duration::from_secs(600));
    assert_eq!(c.max_chars_per_account, 5);
    assert_eq!(c.server_name, "packet-service");
    assert_eq!(c.max_packets_per_sec, 200);
    assert_eq!(c.packet_burst, 400);
    assert_eq!(c.max_connections_per_ip, 32);
    assert_eq!(c.frame_timeout, Duration::from_secs(10));
    assert_eq!(c.chat_per_sec, 3);
    assert_eq!(c.chat_max_bytes, 256);
    assert_eq!(c.output_limit, 262_144);
    assert_eq!(c.wrong_state_budget, 16);
    assert_eq!(c.shutdown_grace, Duration::from_secs(5));
    assert!(!c.proxy_protocol);
    assert_eq!(
        c.proxy_trusted,
        vec![
            (IpAddr::V4(Ipv4Addr::LOCALHOST), 32),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)
        ]
    );
}

#[test]
fn for_tests_binds_loopback_on_ephemeral_ports() {
    let c = Config::for_tests();
    assert_eq!(c.listen_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.service_port, 0);
    assert_eq!(c.metrics_port, 0);
    assert_eq!(c.max_connections, 10_000);
}

#[test]
fn flag_beats_env() {
    let env = [
        ("SERVICE_PORT", "1000"),
        ("PACKET_CODEC", "rose"),
        ("METRICS_ENABLED", "yes"),
        ("IDLE_TIMEOUT_SECS", "10"),
    ];
    let c = run_with(
        &[
            "--port",
            "2000",
            "--codec=plain",
            "--no-metrics",
            "--idle-timeout",
            "20",
        ],
        &env,
    )
    .unwrap();
    assert_eq!(c.service_port, 2000);
    assert_eq!(c.codec, CodecKind::Plain);
    assert!(!c.metrics_enabled);
    assert_eq!(c.idle_timeout, Duration::from_secs(20));
}

#[test]
fn flag_wins_even_over_an_invalid_env_value() {
    let c = run_with(&["--port", "2000"], &[("SERVICE_PORT", "junk")]).unwrap();
    assert_eq!(c.service_port, 2000);
}

#[test]
fn env_beats_default() {
    let c = run_with(
        &[],
        &[
            ("SERVICE_PORT", "1234"),
            ("PACKET_IDS", "osirose-2021"),
            ("METRICS_ENABLED", "off"),
            ("PROXY_PROTOCOL", "1"),
            ("PROXY_TRUSTED", "10.0.0.0/8, fd00::/8"),
            ("PUBLIC_PORT", "29001"),
            ("AUTH_URL", "https://auth.example:50051"),
            ("BACKEND_LISTEN", "[::1]:29100"),
            ("LOG_LEVEL", "debug"),
        ],
    )
    .unwrap();
    assert_eq!(c.service_port, 1234);
    assert_eq!(c.packet_ids, PacketIds::One(DialectId::Osirose2021));
    assert!(!c.metrics_enabled);
    assert!(c.proxy_protocol);
    assert_eq!(c.proxy_trusted.len(), 2);
    assert_eq!(c.public_port, Some(29001));
    assert_eq!(
        c.auth_url.as_deref(),
        Some(&["https://auth.example:50051".to_owned()][..])
    );
    assert_eq!(c.backend_listen, Some("[::1]:29100".parse().unwrap()));
    assert_eq!(c.log_level, LevelFilter::Debug);
}

#[test]
fn log_filter_and_format_from_flag_or_env() {
    let c = run_with(&[], &[]).unwrap();
    assert_eq!(
        (c.log_filter, c.log_format),
        (None, crate::logging::LogFormat::Text)
    );
    let c = run_with(
        &["--log-format", "json"],
        &[("RUST_LOG", "packet_service::reactor=debug,h2=info")],
    )
    .unwrap();
    assert_eq!(
        c.log_filter.as_deref(),
        Some("packet_service::reactor=debug,h2=info")
    );
    assert_eq!(c.log_format, crate::logging::LogFormat::Json);
    let c = run_with(&["--log-filter", "warn"], &[("RUST_LOG", "debug")]).unwrap();
    assert_eq!(c.log_filter.as_deref(), Some("warn"));
}

#[test]
fn empty_env_counts_as_unset() {
    let c = run_with(&[], &[("SERVICE_PORT", ""), ("AUTH_URL", "")]).unwrap();
    assert_eq!(c.service_port, 29000);
    assert_eq!(c.auth_url, None);
}

/// (flag, env, a value the setting refuses). Switches are refused only
/// through their boolean environment variable.
const INVALID: &[(&str, &str, &str)] = &[
    ("listen", "LISTEN_ADDR", "0.0.0.0:80"),
    ("port", "SERVICE_PORT", "65536"),
    ("reuse-port", "REUSE_PORT", "sometimes"),
    ("listen-backlog", "LISTEN_BACKLOG", "0"),
    ("metrics-listen", "METRICS_ADDR", "localhost"),
    ("metrics-port", "PACKET_METRICS_PORT", "-1"),
    ("no-metrics", "METRICS_ENABLED", "maybe"),
    ("max-connections", "MAX_CONCURRENT_CONNECTIONS", "0"),
    ("buffer-pool-size", "BUFFER_POOL_SIZE", "15"),
    ("buffer-size", "BUFFER_SIZE", "2047"),
    ("codec", "PACKET_CODEC", "xyz"),
    ("packet-ids", "PACKET_IDS", "irose-129"),
    ("irose-seeds", "IROSE_SEEDS", "0x12345678,0"),
    ("public-addr", "PUBLIC_ADDR", "0.0.0.0"),
    ("public-port", "PUBLIC_PORT", "0"),
    ("handshake-timeout", "HANDSHAKE_TIMEOUT_SECS", "0.01"),
    ("idle-timeout", "IDLE_TIMEOUT_SECS", "86401"),
    ("log-level", "LOG_LEVEL", "verbose"),
    ("log-filter", "RUST_LOG", "packet_service=loud"),
    ("log-format", "LOG_FORMAT", "xml"),
    ("rpc-threads", "RPC_THREADS", "65"),
    ("rpc-deadline", "RPC_DEADLINE_MS", "9"),
    ("rpc-queue", "RPC_QUEUE_SIZE", "1000001"),
    ("auth-url", "AUTH_URL", "auth:50051"),
    ("character-url", "CHARACTER_URL", "ftp://x"),
    ("world-url", "WORLD_URL", "http://"),
    ("backend-listen", "BACKEND_LISTEN", "127.0.0.1"),
    ("admin-listen", "ADMIN_LISTEN", "localhost:29200"),
    ("admin-token-file", "ADMIN_TOKEN_FILE", "a\0b"),
    ("accounts-file", "ACCOUNTS_FILE", "a\0b"),
    ("account", "ACCOUNTS", "alice"),
    ("auto-create-accounts", "AUTO_CREATE_ACCOUNTS", "2"),
    (
        "auth-failures-per-account",
        "AUTH_FAILURES_PER_ACCOUNT",
        "0",
    ),
    ("auth-failures-per-source", "AUTH_FAILURES_PER_SOURCE", "0"),
    (
        "autocreate-per-source",
        "AUTOCREATE_PER_SOURCE_PER_MIN",
        "-1",
    ),
    ("autocreate-per-min", "AUTOCREATE_PER_MIN", "1000001"),
    ("session-ttl", "SESSION_TTL_SECS", "0.5"),
    ("max-chars", "MAX_CHARS_PER_ACCOUNT", "33"),
    ("database", "DATABASE_URL", "mysql://db/ps"),
    ("save-interval", "SAVE_INTERVAL_SECS", "0.5"),
    ("world-cell-size", "WORLD_CELL_SIZE", "99"),
    ("world-view-cells", "WORLD_VIEW_CELLS", "65"),
    (
        "server-name",
        "SERVER_NAME",
        "a-name-that-is-longer-than-32-bytes",
    ),
    ("max-packets-per-sec", "MAX_PACKETS_PER_SEC", "1000001"),
    ("packet-burst", "PACKET_BURST", "0"),
    ("max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", "1e3"),
    ("output-limit", "OUTPUT_LIMIT_BYTES", "4095"),
    ("world-flush-ms", "WORLD_FLUSH_MS", "251"),
    ("frame-timeout", "FRAME_TIMEOUT_SECS", "0.01"),
    ("chat-per-sec", "CHAT_MESSAGES_PER_SEC", "1001"),
    ("chat-max-bytes", "CHAT_MAX_BYTES", "0"),
    ("wrong-state-budget", "WRONG_STATE_BUDGET", "many"),
    ("shutdown-grace", "SHUTDOWN_GRACE_SECS", "3600.5"),
    ("proxy-protocol", "PROXY_PROTOCOL", "enabled"),
    ("proxy-trusted", "PROXY_TRUSTED", "10.0.0.1/8"),
];

#[test]
fn every_invalid_value_names_flag_env_and_value() {
    for &(flag, env, bad) in INVALID {
        let mut cases = vec![refused(&[], &[(env, bad)])];
        let flag_takes_value = SETTINGS
            .iter()
            .any(|row| row.long == flag && !matches!(row.form, Form::Switch { .. }));
        if flag_takes_value {
            cases.push(refused(&[&format!("--{flag}={bad}")], &[]));
        }
        for message in cases {
            assert!(
                message.starts_with(&format!("invalid --{flag} / {env} ")),
                "{message}"
            );
            assert!(message.contains("expected "), "{message}");
            assert!(!message.contains('\n'), "{message}");
            if flag != "account" {
                assert!(message.contains(&format!("{bad:?}")), "{message}");
            }
        }
    }
}

#[test]
fn a_database_password_never_shows() {
    let url = "postgres://ps:s3cret@db/ps";
    let c = run(&["--database", url]);
    assert!(!format!("{c:?}").contains("s3cret"));
    assert!(!c.summary().contains("s3cret"), "{}", c.summary());
    assert!(c.summary().contains("database=postgres://ps:***@db/ps"));
    let refused = refused(&["--database", "postgres://ps:s3cret@db/p s"], &[]);
    assert!(!refused.contains("s3cret"), "{refused}");
    assert_eq!(
        Config::for_tests().database,
        crate::backend::store::DatabaseUrl::Memory
    );
}

#[test]
fn the_invalid_table_covers_every_setting() {
    for entry in SETTINGS {
        assert!(
            INVALID
                .iter()
                .any(|(flag, env, _)| *flag == entry.long && *env == entry.env),
            "no invalid case for --{} / {}",
            entry.long,
            entry.env
        );
    }
    assert_eq!(INVALID.len(), SETTINGS.len());
}

#[test]
fn error_line_matches_the_documented_form() {
    assert_eq!(
        refused(&["--codec", "xyz"], &[]),
        r#"invalid --codec / PACKET_CODEC "xyz": expected rose or plain"#
    );
    assert_eq!(
        refused(&[], &[("MAX_CONCURRENT_CONNECTIONS", "0")]),
        "invalid --max-connections / MAX_CONCURRENT_CONNECTIONS \"0\": \
         expected an integer in 1..=1000000"
    );
}

#[test]
fn decimal_seconds() {
    let c = run(&["--handshake-timeout", "0.5", "--idle-timeout", "0.05"]);
    assert_eq!(c.handshake_timeout, Duration::from_millis(500));
    assert_eq!(c.idle_timeout, Duration::from_millis(50));
    let c = run(&["--session-ttl", "1.25", "--shutdown-grace", "0"]);
    assert_eq!(c.session_ttl, Duration::from_millis(1250));
    assert_eq!(c.shutdown_grace, Duration::ZERO);
    assert_eq!(
        run(&["--idle-timeout", "86400"]).idle_timeout.as_secs(),
        86400
    );
    assert_eq!(parse_decimal_secs("1.000000001"), Some(Duration::new(1, 1)));
    for bad in [
        "",
        ".5",
        "1.",
        "1.0000000001",
        "-1",
        "+1",
        "1e3",
        "inf",
        "NaN",
        "0x10",
        " 1",
        "1,5",
        "1.2.3",
        "99999999999999999999",
    ] {
        assert_eq!(parse_decimal_secs(bad), None, "{bad:?}");
    }
    for bad in ["0.049999999", "86400.000000001"] {
        let message = refused(&["--idle-timeout", bad], &[]);
        assert!(message.contains("0.05..=86400"), "{message}");
    }
}

#[test]
fn bool_env_values() {
    for yes in ["1", "true", "yes", "on", "TRUE", "Yes", "ON"] {
        let c = run_with(&[], &[("PROXY_PROTOCOL", yes), ("METRICS_ENABLED", yes)]).unwrap();
        assert!(c.proxy_protocol && c.metrics_enabled, "{yes}");
    }
    for no in ["0", "false", "no", "off", "False", "NO", "Off"] {
        let c = run_with(&[], &[("PROXY_PROTOCOL", no), ("METRICS_ENABLED", no)]).unwrap();
        assert!(!c.proxy_protocol && !c.metrics_enabled, "{no}");
    }
    for bad in ["2", "y", "n", "enable", "truee", " 1"] {
        let message = refused(&[], &[("AUTO_CREATE_ACCOUNTS", bad)]);
        assert!(message.ends_with(BOOL_EXPECTED), "{message}");
    }
    assert!(run(&["--auto-create-accounts"]).auto_create_accounts);
}

#[test]
fn proxy_trusted_lists() {
    let c = run(&["--proxy-trusted", "10.0.0.0/8,192.168.1.0/24,fd00::/8"]);
    assert_eq!(c.proxy_trusted.len(), 3);
    for bad in ["", "10.0.0.0/8,", "10.0.0.0/8,,::1"] {
        refused(&["--proxy-trusted", bad], &[]);
    }
}

#[test]
fn accounts_from_env_plus_flags() {
    let c = run_with(
        &["--account", "carol:p,w:x", "--account", "alice:new"],
        &[("ACCOUNTS", "alice:old,bob:b:c")],
    )
    .unwrap();
    assert_eq!(
        c.accounts,
        vec![
            ("alice".to_owned(), "new".to_owned()),
            ("bob".to_owned(), "b:c".to_owned()),
            ("carol".to_owned(), "p,w:x".to_owned()),
        ]
    );
    for bad in ["alice", ":pw", "alice:", "a-user-name-longer-than-20:pw"] {
        refused(&["--account", bad], &[]);
    }
    refused(&[], &[("ACCOUNTS", "alice:pw,")]);
}

#[test]
fn passwords_never_shown() {
    let c = run_with(
        &["--account", "alice:hunter2"],
        &[("ACCOUNTS", "bob:swordfish")],
    )
    .unwrap();
    for text in [format!("{c:?}"), c.summary()] {
        assert!(text.contains("alice") && text.contains("bob"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("swordfish"),
            "{text}"
        );
    }
    let message = refused(&[], &[("ACCOUNTS", "bob:swordfish,hunter2")]);
    assert!(message.contains("\"bob:***,***\""), "{message}");
    assert!(!message.contains("swordfish") && !message.contains("hunter2"));
}

#[test]
fn help_mentions_every_env_var_and_flag() {
    let help = match Config::parse(&args(&["--help"]), &|_| None).unwrap() {
        Command::Help(text) => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(help, Config::usage());
    for env in [
        "LISTEN_ADDR",
        "SERVICE_PORT",
        "METRICS_ADDR",
        "PACKET_METRICS_PORT",
        "METRICS_ENABLED",
        "MAX_CONCURRENT_CONNECTIONS",
        "BUFFER_POOL_SIZE",
        "BUFFER_SIZE",
        "PACKET_CODEC",
        "PACKET_IDS",
        "PUBLIC_ADDR",
        "PUBLIC_PORT",
        "HANDSHAKE_TIMEOUT_SECS",
        "IDLE_TIMEOUT_SECS",
        "LOG_LEVEL",
        "RPC_THREADS",
        "RPC_DEADLINE_MS",
        "RPC_QUEUE_SIZE",
        "AUTH_URL",
        "CHARACTER_URL",
        "WORLD_URL",
        "BACKEND_LISTEN",
        "ACCOUNTS_FILE",
        "ACCOUNTS",
        "AUTO_CREATE_ACCOUNTS",
        "AUTH_FAILURES_PER_ACCOUNT",
        "AUTH_FAILURES_PER_SOURCE",
        "AUTOCREATE_PER_SOURCE_PER_MIN",
        "AUTOCREATE_PER_MIN",
        "SESSION_TTL_SECS",
        "MAX_CHARS_PER_ACCOUNT",
        "SERVER_NAME",
        "MAX_PACKETS_PER_SEC",
        "PACKET_BURST",
        "MAX_CONNECTIONS_PER_IP",
        "OUTPUT_LIMIT_BYTES",
        "WORLD_FLUSH_MS",
        "FRAME_TIMEOUT_SECS",
        "CHAT_MESSAGES_PER_SEC",
        "CHAT_MAX_BYTES",
        "WRONG_STATE_BUDGET",
        "SHUTDOWN_GRACE_SECS",
        "PROXY_PROTOCOL",
        "PROXY_TRUSTED",
    ] {
        assert!(
            flat(&help).contains(&format!("[env {env}")),
            "help lacks {env}"
        );
    }
    for entry in SETTINGS {
        assert!(
            help.contains(&format!("--{} ", entry.long)),
            "help lacks --{}",
            entry.long
        );
    }
    let help = flat(&help);
    assert!(help.contains(
        "--max-connections N maximum concurrent client connections \
         [env MAX_CONCURRENT_CONNECTIONS] (default 10000, 1..=1000000)"
    ));
    assert!(help.contains("(default 30, 0.05..=86400)"));
    assert!(help.contains(
        "--no-metrics disable the metrics endpoint [env METRICS_ENABLED, boolean, default true]"
    ));
    assert!(help.contains("-h, --help") && help.contains("-V, --version"));
}

#[test]
fn version_and_help_short_flags() {
    match Config::parse(&args(&["-V"]), &|_| None).unwrap() {
        Command::Version(v) => {
            assert_eq!(v, format!("packet-service {}", env!("CARGO_PKG_VERSION")))
        }
        other => panic!("{other:?}"),
    }
    // Help does not validate the rest.
    let env = |_: &str| Some("junk".to_owned());
    assert!(matches!(
        Config::parse(&args(&["-h"]), &env),
        Ok(Command::Help(_))
    ));
}

#[test]
fn unknown_flag_and_stray_arguments_are_errors() {
    let message = refused(&["--bogus"], &[]);
    assert!(
        message.contains("bogus") && message.ends_with("see --help"),
        "{message}"
    );
    assert!(matches!(
        run_with(&["--bogus"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        run_with(&["extra"], &[]),
        Err(ConfigError::UnexpectedArgument(a)) if a == "extra"
    ));
    assert!(matches!(
        run_with(&["--port"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        run_with(&["--port", "1", "--port", "2"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        run_with(&["--no-metrics=1"], &[]),
        Err(ConfigError::Usage(_))
    ));
}

#[test]
fn long_values_are_shortened_in_errors() {
    let long = "x".repeat(500);
    let message = refused(&["--codec", &long], &[]);
    assert!(message.len() < 200, "{message}");
    assert!(message.contains('…'));
}

#[test]
fn summary_is_one_line_with_the_effective_values() {
    let c = run(&["--port", "29001", "--codec", "plain", "--proxy-protocol"]);
    let s = c.summary();
    assert!(!s.contains('\n'));
    assert!(s.contains("listen=0.0.0.0:29001"), "{s}");
    assert!(s.contains("codec=plain"), "{s}");
    assert!(
        s.contains("proxy_protocol=on(trusted=127.0.0.1/32,::1/128)"),
        "{s}"
    );
    assert!(s.contains("auth=embedded"), "{s}");
    assert!(s.contains("handshake=30s"), "{s}");
}

#[test]
fn secs_formatting() {
    assert_eq!(fmt_secs(Duration::from_secs(30)), "30");
    assert_eq!(fmt_secs(Duration::from_millis(50)), "0.05");
    assert_eq!(fmt_secs(Duration::new(1, 1)), "1.000000001");
}

#[test]
fn parts_are_built_from_the_settings() {
    let c = run(&["--public-addr", "192.0.2.1", "--max-packets-per-sec", "7"]);
    let reactor = c.reactor_config(29005);
    assert_eq!(reactor.public_addr, "192.0.2.1");
    assert_eq!(reactor.public_port, 29005);
    assert_eq!(reactor.packets_per_sec, 7);
    assert_eq!(reactor.packet_ids, PacketIds::One(DialectId::Osirose));
    assert_eq!(reactor.proxy_trusted, c.proxy_trusted);
    let c = run(&["--public-port", "29100"]);
    assert_eq!(c.reactor_config(29005).public_port, 29100);

    let backend = BackendConfig::default();
    let defaults = Config::defaults();
    assert_eq!(backend.session_ttl, defaults.session_ttl);
    assert_eq!(
        backend.max_chars_per_account,
        defaults.max_chars_per_account
    );
    assert_eq!(backend.server_name, defaults.server_name);
    assert_eq!(backend.auto_create, defaults.auto_create_accounts);
}

#[test]
fn the_embedded_backend_runs_for_a_service_without_url() {
    let loopback = Some("127.0.0.1:0".parse().unwrap());
    let embedded = "127.0.0.1:29010".parse().ok();
    let c = run(&["--auth-url", "http://auth:1"]);
    assert!(c.needs_embedded_backend());
    assert_eq!(c.embedded_backend_listen(), loopback);
    let endpoints = c.endpoints(embedded);
    assert_eq!(endpoints.auth, ["http://auth:1"]);
    assert_eq!(endpoints.character, ["http://127.0.0.1:29010"]);
    assert_eq!(endpoints.world, "http://127.0.0.1:29010");

    let external = [
        "--auth-url",
        "http://a:1",
        "--character-url",
        "http://c:1",
        "--world-url",
        "http://w:1",
    ];
    let c = run(&external);
    assert!(!c.needs_embedded_backend());
    assert_eq!(c.embedded_backend_listen(), None);
    assert_eq!(c.endpoints(None).world, "http://w:1");
    let c = run(&[&external[..], &["--backend-listen", "127.0.0.1:29010"]].concat());
    assert_eq!(c.embedded_backend_listen(), embedded);
}

#[test]
fn every_row_fills_its_own_field_once() {
    let debug = format!("{:?}", Config::defaults());
    let mut seen = [(); 3].map(|()| std::collections::HashSet::new());
    for row in SETTINGS {
        assert!(seen[0].insert(row.field), "{} twice", row.field);
        assert!(seen[1].insert(row.long), "--{} twice", row.long);
        assert!(seen[2].insert(row.env), "{} twice", row.env);
        assert!(debug.contains(&format!(" {}: ", row.field)), "{debug}");
        assert_eq!(row.hint.is_empty(), matches!(row.form, Form::Switch { .. }));
    }
}

#[test]
fn irose_seeds_and_packet_ids() {
    let c = run(&[
        "--packet-ids",
        "auto",
        "--irose-seeds",
        "0x0BAD5EED, 42,0XFF",
    ]);
    assert_eq!(c.packet_ids, PacketIds::Auto);
    let seeds: Vec<u32> = c.irose_seeds.iter().map(|s| s.get()).collect();
    assert_eq!(seeds, [0x0BAD_5EED, 42, 0xFF]);
    assert!(c
        .summary()
        .contains("irose_seeds=0x0bad5eed,0x0000002a,0x000000ff"));
    let reactor = c.reactor_config(29000);
    assert_eq!(
        (reactor.announced.world.get(), reactor.announced.game.get()),
        (0x0BAD_5EED, 0xFF),
        "first for the char connection, last for the map connection"
    );
    // One seed for both; repeats count once.
    let c = run(&["--packet-ids", "irose", "--irose-seeds", "7,7,7,7,7,7,7,7"]);
    assert_eq!(c.reactor_config(1).announced.game.get(), 7);
    assert_eq!(c.prepare_seeds().len(), 1);
    // Only irose needs tables.
    assert!(run(&[]).prepare_seeds().is_empty());
    assert!(run(&[]).summary().contains("irose_seeds=off"));
    for bad in ["0", "1,2,3,4,5,6,7,8", "0x", "-1", "4294967296", ""] {
        let err = refused(&["--irose-seeds", bad], &[]);
        assert!(err.contains("--irose-seeds / IROSE_SEEDS"), "{bad}: {err}");
    }
}
