//! The deployment files say only what the binary understands: every
//! variable the compose file and the Kubernetes manifests set is one that
//! `packet-service --help` lists, and every port they use is the default
//! `--help` gives a port setting, or the port of an address they give a
//! setting. The systemd template unit stays the single unit's twin.

use std::collections::BTreeSet;
use std::process::Command;

/// Every deployment file, with its text.
const MANIFESTS: &[(&str, &str)] = &[
    (
        "deploy/compose.yaml",
        include_str!("../deploy/compose.yaml"),
    ),
    ("deploy/haproxy.cfg", include_str!("../deploy/haproxy.cfg")),
    (
        "deploy/kubernetes/configmap.yaml",
        include_str!("../deploy/kubernetes/configmap.yaml"),
    ),
    (
        "deploy/kubernetes/gateway.yaml",
        include_str!("../deploy/kubernetes/gateway.yaml"),
    ),
    (
        "deploy/kubernetes/backend.yaml",
        include_str!("../deploy/kubernetes/backend.yaml"),
    ),
    (
        "deploy/kubernetes/postgres.yaml",
        include_str!("../deploy/kubernetes/postgres.yaml"),
    ),
    (
        "deploy/kubernetes/kustomization.yaml",
        include_str!("../deploy/kubernetes/kustomization.yaml"),
    ),
];

/// Variables of the PostgreSQL image, not of packet-service.
const POSTGRES_VARIABLES: &[&str] = &[
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "PGDATA",
];
/// Ports of other software: PostgreSQL, Docker's DNS (for HAProxy).
const OTHER_PORTS: &[u16] = &[5432, 53];

/// `--help` with its whitespace collapsed (it wraps lines anywhere).
fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_packet-service"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lines without their comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or(l))
        .filter(|l| !l.trim_start().starts_with('#'))
}

/// An environment variable's name: upper case, digits and `_`, with a `_`.
fn is_variable(word: &str) -> bool {
    word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `(variable, value)` for each `NAME: value` key and each `name: NAME`
/// entry (`- name: X` or `{name: X, …}`) of a YAML file.
fn variables(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in lines(text) {
        let line = line.trim().trim_start_matches("- ").trim_start_matches('{');
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        if is_variable(key.trim()) {
            found.push((key.trim().to_owned(), value));
        } else if key.trim() == "name" {
            let name = value
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches('}');
            if is_variable(name) {
                found.push((name.to_owned(), String::new()));
            }
        }
    }
    found
}

/// The digit runs of `line` that name ports: after `host:` or `:` (an
/// address), after a key with "port" in its name, after HAProxy's
/// `port`, and every number of a compose `expose:` or `ports:` list.
fn ports(line: &str) -> Vec<u16> {
    let trimmed = line.trim().trim_start_matches("- ");
    if trimmed.starts_with("image:") {
        return Vec::new();
    }
    let list = trimmed.starts_with("expose:") || trimmed.starts_with("ports:");
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i < bytes.len() && (bytes[i] == b'.' || bytes[i].is_ascii_alphabetic()) {
            continue; // an IP address part, a duration, a size
        }
        let before = line[..start].trim_end_matches(['"', '{', ' ']);
        let key = before
            .trim_end_matches(':')
            .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or("");
        let address = line[..start].ends_with(':');
        let keyed = before.ends_with(':') && key.to_ascii_lowercase().contains("port");
        let haproxy = before.ends_with(" port");
        if list || address || keyed || haproxy {
            if let Ok(port) = line[start..i].parse() {
                found.push(port);
            }
        }
    }
    found
}

/// The `--help` default of every `…_PORT` variable.
fn default_ports(help: &str) -> BTreeSet<u16> {
    help.split("[env ")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(']')?;
            let default = rest.trim().strip_prefix("(default ")?;
            let value = default.split([',', ')']).next()?;
            name.ends_with("_PORT")
                .then(|| value.parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn manifests_set_only_variables_that_help_lists() {
    let help = help();
    let known: BTreeSet<&str> = help
        .split("[env ")
        .skip(1)
        .filter_map(|rest| rest.split([']', ',']).next())
        .collect();
    assert!(
        known.contains("AUTH_URL") && known.contains("REUSE_PORT"),
        "{known:?}"
    );
    let mut seen = 0;
    for (file, text) in MANIFESTS {
        for (name, _) in variables(text) {
            seen += 1;
            assert!(
                known.contains(name.as_str()) || POSTGRES_VARIABLES.contains(&name.as_str()),
                "{file} sets {name}, which `packet-service --help` does not list"
            );
        }
    }
    assert!(seen > 20, "only {seen} variables found: the scan is broken");
}

#[test]
fn manifests_use_only_ports_that_settings_give() {
    let defaults = default_ports(&help());
    assert_eq!(
        defaults,
        [9102, 29000].into(),
        "the port defaults of --help"
    );
    // Ports the manifests give a listening setting (BACKEND_LISTEN=…:29100).
    let given: BTreeSet<u16> = MANIFESTS
        .iter()
        .flat_map(|(_, text)| variables(text))
        .filter(|(name, _)| name.ends_with("_LISTEN"))
        .flat_map(|(_, value)| ports(&value))
        .collect();
    assert!(!given.is_empty(), "no listen address in the manifests");
    let mut seen = BTreeSet::new();
    for (file, text) in MANIFESTS {
        for line in lines(text) {
            for port in ports(line) {
                seen.insert(port);
                assert!(
                    defaults.contains(&port)
                        || given.contains(&port)
                        || OTHER_PORTS.contains(&port),
                    "{file} uses port {port}, which no setting gives: {line:?}"
                );
            }
        }
    }
    for port in defaults.iter().chain(&given) {
        assert!(
            seen.contains(port),
            "port {port} found nowhere: the scan is broken"
        );
    }
}

#[test]
fn the_port_scan_finds_what_it_should() {
    assert_eq!(
        ports("  server g gateway-1:29000 send-proxy-v2 check port 9102 inter 1s"),
        [29000, 9102]
    );
    assert_eq!(ports("    expose: [\"29000\", \"9102\"]"), [29000, 9102]);
    assert_eq!(ports("  AUTH_URL: \"http://backend:29100\""), [29100]);
    assert_eq!(ports("  - {name: game, containerPort: 29000}"), [29000]);
    assert_eq!(ports("  grpc: {port: 29100}"), [29100]);
    assert_eq!(ports("  bind :29000"), [29000]);
    assert!(ports("  image: postgres:16").is_empty());
    assert!(ports("  PROXY_TRUSTED: \"172.28.0.2/32\"").is_empty());
    assert!(ports("  periodSeconds: 5").is_empty());
    assert!(ports("  timeout connect 5s").is_empty());
}

/// The lines of a unit's `[Service]` section and after, comments dropped.
fn service_section(unit: &str) -> Vec<&str> {
    unit.lines()
        .skip_while(|l| *l != "[Service]")
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

/// The `[Service]` lines `unit` has that packet-service.service has not,
/// and those it lacks.
fn differences(unit: &str) -> (Vec<&str>, Vec<&str>) {
    let single = service_section(include_str!("../deploy/packet-service.service"));
    let other = service_section(unit);
    let extra = other
        .iter()
        .filter(|l| !single.contains(l))
        .copied()
        .collect();
    let missing = single
        .iter()
        .filter(|l| !other.contains(l))
        .copied()
        .collect();
    (extra, missing)
}

#[test]
fn the_other_units_are_the_single_units_twins() {
    let (extra, missing) = differences(include_str!("../deploy/packet-service@.service"));
    assert_eq!(
        extra,
        [
            "ExecStart=/usr/local/bin/packet-service --reuse-port",
            "EnvironmentFile=/etc/packet-service/packet-service@%i.env",
            "User=packet-service",
        ],
        "the template differs from packet-service.service by more than its port sharing, \
         its own environment file and its shared user"
    );
    assert_eq!(missing, ["ExecStart=/usr/local/bin/packet-service"]);

    let (extra, missing) = differences(include_str!("../deploy/packet-service-backend.service"));
    assert_eq!(
        extra,
        [
            "ExecStart=/usr/local/bin/packet-service backend",
            "EnvironmentFile=/etc/packet-service/backend.env",
            "User=packet-service",
        ],
        "the backend unit differs from packet-service.service by more than its command, \
         its own environment file and its shared user"
    );
    assert_eq!(
        missing,
        [
            "ExecStart=/usr/local/bin/packet-service",
            "Environment=CONFIG_FILE=/etc/packet-service/packet-service.env",
            "WatchdogSec=30s",
        ],
        "the backend reads no config file and pings no watchdog"
    );

    let socket = include_str!("../deploy/packet-service.socket");
    let listens: Vec<&str> = socket
        .lines()
        .filter(|l| l.starts_with("ListenStream="))
        .collect();
    assert_eq!(
        listens,
        ["ListenStream=0.0.0.0:29000"],
        "one socket, the default port"
    );
    assert!(socket.contains("Service=packet-service.service"));
    // A passed socket keeps the unit's backlog: the same as a bound one's.
    let backlog = packet_service::config::Config::defaults().listen_backlog;
    assert!(
        socket.lines().any(|l| l == format!("Backlog={backlog}")),
        "the socket unit's Backlog= is LISTEN_BACKLOG's default ({backlog})"
    );
}
