//! Every setting of the service, read from the command line and the
//! environment.
//!
//! Each setting is declared once, as a `Spec`: its long flag, its
//! environment variable, its default and the rule that validates it. The same
//! declaration drives `--help`, parsing and the error message, so the three
//! cannot drift apart.
//!
//! Precedence is **flag > environment > default**. An environment variable set
//! to the empty string counts as unset (the way `EnvironmentFile=` lines such
//! as `AUTH_URL=` are usually meant). Booleans in the environment are
//! `1/true/yes/on` or `0/false/no/off` (any case); anything else is an error,
//! never "present means true". A bad value fails start-up with one line naming
//! the flag, the variable, the value and what is accepted:
//!
//! ```text
//! invalid --codec / PACKET_CODEC "xyz": expected rose or plain
//! ```
//!
//! Account passwords are the only secrets here; they are masked in `Debug`,
//! in [`Config::summary`] and in error messages.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;

use crate::protocol::{CodecKind, DialectId, MAX_PACKET_SIZE};

/// What the command line asks the process to do.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved straight into main; boxing buys nothing"
)]
pub enum Command {
    /// Run the gateway with this configuration.
    Run(Config),
    /// Print this help text to stdout and exit 0.
    Help(String),
    /// Print this version line to stdout and exit 0.
    Version(String),
}

/// A configuration that cannot be used. `Display` is the one line to print
/// before exiting with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value (from the flag or the environment) is outside what the setting
    /// accepts.
    #[error("invalid --{flag} / {env} {value:?}: expected {expected}")]
    Invalid {
        /// Long flag name, without the dashes.
        flag: &'static str,
        /// Environment variable name.
        env: &'static str,
        /// The offending value, shortened and with passwords masked.
        value: String,
        /// What the setting accepts.
        expected: String,
    },
    /// A setting without a default was required but not given.
    #[error("missing --{flag} / {env}")]
    Missing {
        /// Long flag name, without the dashes.
        flag: &'static str,
        /// Environment variable name.
        env: &'static str,
    },
    /// The command line itself is malformed (unknown flag, missing argument,
    /// a single-valued flag given twice).
    #[error("{0}; see --help")]
    Usage(String),
    /// A positional argument was given; the service takes none.
    #[error("unexpected argument {0:?}; see --help")]
    UnexpectedArgument(String),
    /// An argument or a known environment variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(String),
}

/// The effective settings of one gateway process.
///
/// Built by [`Config::parse`]; every field has been validated against the
/// range documented on it (and shown by `--help`).
#[derive(Clone)]
pub struct Config {
    /// Address the client listener binds (`--listen`, `LISTEN_ADDR`).
    pub listen_addr: IpAddr,
    /// Port the client listener binds; 0 picks an ephemeral port
    /// (`--port`, `SERVICE_PORT`).
    pub service_port: u16,
    /// Address of the Prometheus endpoint (`--metrics-listen`, `METRICS_ADDR`).
    pub metrics_addr: IpAddr,
    /// Port of the Prometheus endpoint; 0 picks an ephemeral port
    /// (`--metrics-port`, `PACKET_METRICS_PORT`).
    pub metrics_port: u16,
    /// Whether the Prometheus endpoint runs (`--no-metrics`, `METRICS_ENABLED`).
    pub metrics_enabled: bool,
    /// Maximum concurrent client connections, 1..=1_000_000
    /// (`--max-connections`, `MAX_CONCURRENT_CONNECTIONS`).
    pub max_connections: usize,
    /// Number of pooled I/O buffers, 16..=1_000_000
    /// (`--buffer-pool-size`, `BUFFER_POOL_SIZE`).
    pub buffer_pool_size: usize,
    /// Bytes per pooled buffer, 2048..=65536; always holds one maximum packet
    /// (`--buffer-size`, `BUFFER_SIZE`).
    pub buffer_size: usize,
    /// Wire codec of the client listener (`--codec`, `PACKET_CODEC`).
    pub codec: CodecKind,
    /// Packet id numbering (`--packet-ids`, `PACKET_IDS`).
    pub packet_ids: DialectId,
    /// Address advertised to clients in SRV_SELECT_REPLY and SWITCH_SERVER;
    /// never unspecified or broadcast (`--public-addr`, `PUBLIC_ADDR`).
    pub public_addr: Ipv4Addr,
    /// Port advertised to clients, 1..=65535; `None` means the port the
    /// listener actually bound (`--public-port`, `PUBLIC_PORT`).
    pub public_port: Option<u16>,
    /// Time a new connection has to deliver its first valid packet,
    /// 0.05..=86400 s (`--handshake-timeout`, `HANDSHAKE_TIMEOUT_SECS`).
    pub handshake_timeout: Duration,
    /// Time without any packet before a connection is closed,
    /// 0.05..=86400 s (`--idle-timeout`, `IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// Maximum log level (`--log-level`, `LOG_LEVEL`).
    pub log_level: LevelFilter,
    /// Worker threads of the RPC runtime, 1..=64 (`--rpc-threads`, `RPC_THREADS`).
    pub rpc_threads: usize,
    /// Deadline of one backend call, 10..=60000 ms
    /// (`--rpc-deadline`, `RPC_DEADLINE_MS`).
    pub rpc_deadline: Duration,
    /// Capacity of the job queue from the reactor to the RPC runtime, and
    /// the most backend calls in flight at once,
    /// 1..=1_000_000 (`--rpc-queue`, `RPC_QUEUE_SIZE`).
    pub rpc_queue: usize,
    /// External auth service; `None` means the embedded one
    /// (`--auth-url`, `AUTH_URL`). Starts with `http://` or `https://`.
    pub auth_url: Option<String>,
    /// External character service; `None` means the embedded one
    /// (`--character-url`, `CHARACTER_URL`). Starts with `http://` or `https://`.
    pub character_url: Option<String>,
    /// External world service; `None` means the embedded one
    /// (`--world-url`, `WORLD_URL`). Starts with `http://` or `https://`.
    pub world_url: Option<String>,
    /// Where to expose the embedded backend to other gateways; `None` keeps
    /// it on an ephemeral loopback port (`--backend-listen`, `BACKEND_LISTEN`).
    pub backend_listen: Option<SocketAddr>,
    /// File of `user:password` lines seeding the embedded auth service
    /// (`--accounts-file`, `ACCOUNTS_FILE`). Read by the backend, not here.
    pub accounts_file: Option<PathBuf>,
    /// Accounts seeding the embedded auth service: `ACCOUNTS` entries first,
    /// then each `--account`. User names are unique (a later entry for the
    /// same user replaces the password in place), 1..=20 bytes.
    pub accounts: Vec<(String, String)>,
    /// Whether an unknown user name creates an account on first login
    /// (`--auto-create-accounts`, `AUTO_CREATE_ACCOUNTS`).
    pub auto_create_accounts: bool,
    /// Lifetime of an unrefreshed session, 1..=86400 s
    /// (`--session-ttl`, `SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// Character slots per account, 1..=32 (`--max-chars`, `MAX_CHARS_PER_ACCOUNT`).
    pub max_chars_per_account: usize,
    /// Server name shown in the server list, 1..=32 bytes without NUL
    /// (`--server-name`, `SERVER_NAME`).
    pub server_name: String,
    /// Packets per second one connection may send; 0 = unlimited
    /// (`--max-packets-per-sec`, `MAX_PACKETS_PER_SEC`).
    pub max_packets_per_sec: u32,
    /// Burst allowance of the per-connection packet rate, 1..=1_000_000
    /// (`--packet-burst`, `PACKET_BURST`).
    pub packet_burst: u32,
    /// Concurrent connections per client address; 0 = unlimited
    /// (`--max-connections-per-ip`, `MAX_CONNECTIONS_PER_IP`).
    pub max_connections_per_ip: usize,
    /// Queued output bytes after which a connection that does not read is
    /// closed, 4096..=64 MiB (`--output-limit`, `OUTPUT_LIMIT_BYTES`).
    pub output_limit: usize,
    /// Known packets in the wrong state tolerated per connection before it is
    /// closed (`--wrong-state-budget`, `WRONG_STATE_BUDGET`).
    pub wrong_state_budget: u32,
    /// Time given to in-flight work on shutdown, 0..=3600 s
    /// (`--shutdown-grace`, `SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: Duration,
    /// Whether every connection must start with a PROXY protocol header
    /// (`--proxy-protocol`, `PROXY_PROTOCOL`).
    pub proxy_protocol: bool,
    /// Networks allowed to send a PROXY header; never empty, no host bits set
    /// (`--proxy-trusted`, `PROXY_TRUSTED`). See [`cidr_contains`].
    pub proxy_trusted: Vec<(IpAddr, u8)>,
}

// A buffer must hold one complete packet of the largest size.
const BUFFER_SIZE_MIN: usize = 2048;
const _: () = assert!(BUFFER_SIZE_MIN >= MAX_PACKET_SIZE);

const BOOL_EXPECTED: &str = "1, true, yes, on, 0, false, no or off";

// ---------------------------------------------------------------------------
// The settings.
// ---------------------------------------------------------------------------

mod spec {
    use super::*;

    pub const LISTEN: Spec<Ip> = Spec::value(
        "listen",
        "LISTEN_ADDR",
        "ADDR",
        "client listener address",
        Some("0.0.0.0"),
        Ip,
    );
    pub const PORT: Spec<UInt<u16>> = Spec::value(
        "port",
        "SERVICE_PORT",
        "PORT",
        "client listener port, 0 = ephemeral",
        Some("29000"),
        UInt { min: 0, max: 65535 },
    );
    pub const METRICS_LISTEN: Spec<Ip> = Spec::value(
        "metrics-listen",
        "METRICS_ADDR",
        "ADDR",
        "metrics endpoint address",
        Some("0.0.0.0"),
        Ip,
    );
    pub const METRICS_PORT: Spec<UInt<u16>> = Spec::value(
        "metrics-port",
        "PACKET_METRICS_PORT",
        "PORT",
        "metrics endpoint port, 0 = ephemeral",
        Some("9102"),
        UInt { min: 0, max: 65535 },
    );
    pub const NO_METRICS: Spec<Bool> = Spec::switch(
        "no-metrics",
        "METRICS_ENABLED",
        false,
        "disable the metrics endpoint",
        "true",
    );
    pub const MAX_CONNECTIONS: Spec<UInt<usize>> = Spec::value(
        "max-connections",
        "MAX_CONCURRENT_CONNECTIONS",
        "N",
        "maximum concurrent client connections",
        Some("10000"),
        UInt {
            min: 1,
            max: 1_000_000,
        },
    );
    pub const BUFFER_POOL_SIZE: Spec<UInt<usize>> = Spec::value(
        "buffer-pool-size",
        "BUFFER_POOL_SIZE",
        "N",
        "pooled I/O buffers",
        Some("4096"),
        UInt {
            min: 16,
            max: 1_000_000,
        },
    );
    pub const BUFFER_SIZE: Spec<UInt<usize>> = Spec::value(
        "buffer-size",
        "BUFFER_SIZE",
        "BYTES",
        "bytes per pooled buffer (holds one maximum packet)",
        Some("4096"),
        UInt {
            min: BUFFER_SIZE_MIN,
            max: 65536,
        },
    );
    pub const CODEC: Spec<Choice<CodecKind>> = Spec::value(
        "codec",
        "PACKET_CODEC",
        "NAME",
        "wire codec",
        Some("rose"),
        Choice {
            names: &["rose", "plain"],
            from_name: CodecKind::from_name,
        },
    );
    pub const PACKET_IDS: Spec<Choice<DialectId>> = Spec::value(
        "packet-ids",
        "PACKET_IDS",
        "NAME",
        "packet id dialect",
        Some("osirose"),
        Choice {
            names: &["osirose", "osirose-2021"],
            from_name: DialectId::from_name,
        },
    );
    pub const PUBLIC_ADDR: Spec<PublicIpv4> = Spec::value(
        "public-addr",
        "PUBLIC_ADDR",
        "IPV4",
        "address advertised to clients for server switches",
        Some("127.0.0.1"),
        PublicIpv4,
    );
    pub const PUBLIC_PORT: Spec<UInt<u16>> = Spec::value(
        "public-port",
        "PUBLIC_PORT",
        "PORT",
        "port advertised to clients; unset = the bound service port",
        None,
        UInt { min: 1, max: 65535 },
    );
    pub const HANDSHAKE_TIMEOUT: Spec<Secs> = Spec::value(
        "handshake-timeout",
        "HANDSHAKE_TIMEOUT_SECS",
        "SECS",
        "time to the first valid packet",
        Some("30"),
        Secs {
            min: Duration::from_millis(50),
            max: Duration::from_secs(86400),
        },
    );
    pub const IDLE_TIMEOUT: Spec<Secs> = Spec::value(
        "idle-timeout",
        "IDLE_TIMEOUT_SECS",
        "SECS",
        "time without packets before a connection is closed",
        Some("300"),
        Secs {
            min: Duration::from_millis(50),
            max: Duration::from_secs(86400),
        },
    );
    pub const LOG_LEVEL: Spec<Choice<LevelFilter>> = Spec::value(
        "log-level",
        "LOG_LEVEL",
        "LEVEL",
        "maximum log level",
        Some("info"),
        Choice {
            names: &["off", "error", "warn", "info", "debug", "trace"],
            from_name: level_from_name,
        },
    );
    pub const RPC_THREADS: Spec<UInt<usize>> = Spec::value(
        "rpc-threads",
        "RPC_THREADS",
        "N",
        "worker threads of the RPC runtime",
        Some("2"),
        UInt { min: 1, max: 64 },
    );
    pub const RPC_DEADLINE: Spec<Millis> = Spec::value(
        "rpc-deadline",
        "RPC_DEADLINE_MS",
        "MS",
        "deadline of one backend call in milliseconds",
        Some("3000"),
        Millis {
            min: 10,
            max: 60_000,
        },
    );
    pub const RPC_QUEUE: Spec<UInt<usize>> = Spec::value(
        "rpc-queue",
        "RPC_QUEUE_SIZE",
        "N",
        "backend jobs queued before new requests are refused",
        Some("4096"),
        UInt {
            min: 1,
            max: 1_000_000,
        },
    );
    pub const AUTH_URL: Spec<Url> = Spec::value(
        "auth-url",
        "AUTH_URL",
        "URL",
        "external auth service; unset = embedded",
        None,
        Url,
    );
    pub const CHARACTER_URL: Spec<Url> = Spec::value(
        "character-url",
        "CHARACTER_URL",
        "URL",
        "external character service; unset = embedded",
        None,
        Url,
    );
    pub const WORLD_URL: Spec<Url> = Spec::value(
        "world-url",
        "WORLD_URL",
        "URL",
        "external world service; unset = embedded",
        None,
        Url,
    );
    pub const BACKEND_LISTEN: Spec<Sock> = Spec::value(
        "backend-listen",
        "BACKEND_LISTEN",
        "ADDR",
        "expose the embedded backend on this address",
        None,
        Sock,
    );
    pub const ACCOUNTS_FILE: Spec<FilePath> = Spec::value(
        "accounts-file",
        "ACCOUNTS_FILE",
        "PATH",
        "accounts for the embedded auth service, one `name password [access]` per line",
        None,
        FilePath,
    );
    pub const ACCOUNTS: Spec<Accounts> = Spec {
        long: "account",
        env: "ACCOUNTS",
        hint: "USER:PASSWORD",
        desc: "embedded account, repeatable; env is a comma-separated list, flags add to it",
        default: None,
        form: Form::Repeated,
        rule: Accounts,
    };
    pub const AUTO_CREATE_ACCOUNTS: Spec<Bool> = Spec::switch(
        "auto-create-accounts",
        "AUTO_CREATE_ACCOUNTS",
        true,
        "create unknown accounts on first login (embedded auth)",
        "false",
    );
    pub const SESSION_TTL: Spec<Secs> = Spec::value(
        "session-ttl",
        "SESSION_TTL_SECS",
        "SECS",
        "lifetime of an unrefreshed session (embedded auth)",
        Some("600"),
        Secs {
            min: Duration::from_secs(1),
            max: Duration::from_secs(86400),
        },
    );
    pub const MAX_CHARS: Spec<UInt<usize>> = Spec::value(
        "max-chars",
        "MAX_CHARS_PER_ACCOUNT",
        "N",
        "character slots per account (embedded character)",
        Some("5"),
        UInt { min: 1, max: 32 },
    );
    pub const SERVER_NAME: Spec<Name> = Spec::value(
        "server-name",
        "SERVER_NAME",
        "NAME",
        "name shown in the server list",
        Some("packet-service"),
        Name { max_bytes: 32 },
    );
    pub const MAX_PACKETS_PER_SEC: Spec<UInt<u32>> = Spec::value(
        "max-packets-per-sec",
        "MAX_PACKETS_PER_SEC",
        "N",
        "packets per second per connection, 0 = unlimited",
        Some("200"),
        UInt {
            min: 0,
            max: 1_000_000,
        },
    );
    pub const PACKET_BURST: Spec<UInt<u32>> = Spec::value(
        "packet-burst",
        "PACKET_BURST",
        "N",
        "burst allowance of the packet rate",
        Some("400"),
        UInt {
            min: 1,
            max: 1_000_000,
        },
    );
    pub const MAX_CONNECTIONS_PER_IP: Spec<UInt<usize>> = Spec::value(
        "max-connections-per-ip",
        "MAX_CONNECTIONS_PER_IP",
        "N",
        "concurrent connections per client address, 0 = unlimited",
        Some("0"),
        UInt {
            min: 0,
            max: 1_000_000,
        },
    );
    pub const OUTPUT_LIMIT: Spec<UInt<usize>> = Spec::value(
        "output-limit",
        "OUTPUT_LIMIT_BYTES",
        "BYTES",
        "queued output per connection before it is closed",
        Some("262144"),
        UInt {
            min: 4096,
            max: 64 << 20,
        },
    );
    pub const WRONG_STATE_BUDGET: Spec<UInt<u32>> = Spec::value(
        "wrong-state-budget",
        "WRONG_STATE_BUDGET",
        "N",
        "known packets in the wrong state tolerated per connection",
        Some("16"),
        UInt {
            min: 0,
            max: 1_000_000,
        },
    );
    pub const SHUTDOWN_GRACE: Spec<Secs> = Spec::value(
        "shutdown-grace",
        "SHUTDOWN_GRACE_SECS",
        "SECS",
        "time given to in-flight work on shutdown",
        Some("5"),
        Secs {
            min: Duration::ZERO,
            max: Duration::from_secs(3600),
        },
    );
    pub const PROXY_PROTOCOL: Spec<Bool> = Spec::switch(
        "proxy-protocol",
        "PROXY_PROTOCOL",
        true,
        "require a PROXY protocol header from trusted sources",
        "false",
    );
    pub const PROXY_TRUSTED: Spec<Cidrs> = Spec::value(
        "proxy-trusted",
        "PROXY_TRUSTED",
        "CIDR[,CIDR..]",
        "sources allowed to send a PROXY header",
        Some("127.0.0.1/32,::1/128"),
        Cidrs,
    );

    /// Every setting, in `--help` order.
    pub const ALL: &[&dyn Entry] = &[
        &LISTEN,
        &PORT,
        &PUBLIC_ADDR,
        &PUBLIC_PORT,
        &CODEC,
        &PACKET_IDS,
        &METRICS_LISTEN,
        &METRICS_PORT,
        &NO_METRICS,
        &LOG_LEVEL,
        &MAX_CONNECTIONS,
        &MAX_CONNECTIONS_PER_IP,
        &BUFFER_POOL_SIZE,
        &BUFFER_SIZE,
        &HANDSHAKE_TIMEOUT,
        &IDLE_TIMEOUT,
        &MAX_PACKETS_PER_SEC,
        &PACKET_BURST,
        &OUTPUT_LIMIT,
        &WRONG_STATE_BUDGET,
        &SHUTDOWN_GRACE,
        &PROXY_PROTOCOL,
        &PROXY_TRUSTED,
        &RPC_THREADS,
        &RPC_DEADLINE,
        &RPC_QUEUE,
        &AUTH_URL,
        &CHARACTER_URL,
        &WORLD_URL,
        &BACKEND_LISTEN,
        &ACCOUNTS_FILE,
        &ACCOUNTS,
        &AUTO_CREATE_ACCOUNTS,
        &SESSION_TTL,
        &MAX_CHARS,
        &SERVER_NAME,
    ];
}

// ---------------------------------------------------------------------------
// Parsing.
// ---------------------------------------------------------------------------

impl Config {
    /// Parses `args` (without the program name) over the environment seen
    /// through `env`. `--help` and `--version` win over everything after the
    /// command line itself parsed.
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let matches = options()
            .parse(args)
            .map_err(|fail| ConfigError::Usage(fail.to_string()))?;
        if matches.opt_present("help") {
            return Ok(Command::Help(Self::usage()));
        }
        if matches.opt_present("version") {
            return Ok(Command::Version(version()));
        }
        if let Some(free) = matches.free.first() {
            return Err(ConfigError::UnexpectedArgument(free.clone()));
        }
        Sources {
            matches: Some(&matches),
            env,
        }
        .resolve()
        .map(Command::Run)
    }

    /// Parses the process's arguments and environment.
    pub fn from_env_and_args() -> Result<Command, ConfigError> {
        let mut args = Vec::new();
        for arg in std::env::args_os().skip(1) {
            match arg.into_string() {
                Ok(arg) => args.push(arg),
                Err(arg) => {
                    return Err(ConfigError::NotUnicode(format!(
                        "argument {:?}",
                        arg.to_string_lossy()
                    )))
                }
            }
        }
        for entry in spec::ALL {
            if let Some(value) = std::env::var_os(entry.env()) {
                if value.to_str().is_none() {
                    return Err(ConfigError::NotUnicode(entry.env().to_owned()));
                }
            }
        }
        Self::parse(&args, &|name| std::env::var(name).ok())
    }

    /// The `--help` text: every flag with its environment variable, default
    /// and accepted values.
    pub fn usage() -> String {
        let brief = "Usage: packet-service [options]\n\n\
                     Client-facing gateway for ROSE Online game clients.\n\
                     Each setting is taken from its flag, else from its environment \
                     variable (empty = unset), else from its default.";
        let mut text = options().usage(brief);
        text.push_str(
            "\nBoolean variables take 1, true, yes or on, and 0, false, no or off.\n\
             Backend services without a URL are served by the embedded backend.\n",
        );
        text
    }

    /// Defaults suitable for tests: client listener and metrics endpoint on
    /// 127.0.0.1 with ephemeral ports, everything else default.
    pub fn for_tests() -> Config {
        match (Sources {
            matches: None,
            env: &|_| None,
        })
        .resolve()
        {
            Ok(mut config) => {
                config.listen_addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
                config.service_port = 0;
                config.metrics_addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
                config.metrics_port = 0;
                config
            }
            // The built-in defaults are constants checked by the unit tests.
            Err(err) => panic!("built-in defaults are invalid: {err}"),
        }
    }

    /// The effective settings on one line for the start-up log, passwords
    /// masked.
    pub fn summary(&self) -> String {
        fn or_embedded(url: &Option<String>) -> &str {
            url.as_deref().unwrap_or("embedded")
        }
        fn unlimited(n: u64) -> String {
            if n == 0 {
                "unlimited".to_owned()
            } else {
                n.to_string()
            }
        }
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "listen={} public={}:{} codec={} packet_ids={} metrics={} log_level={} \
             max_connections={} per_ip={} buffers={}x{}B handshake={}s idle={}s \
             packets_per_sec={} burst={} output_limit={}B wrong_state_budget={} grace={}s \
             proxy_protocol={} rpc_threads={} rpc_deadline={}ms rpc_queue={} \
             auth={} character={} world={}",
            SocketAddr::new(self.listen_addr, self.service_port),
            self.public_addr,
            self.public_port
                .map_or_else(|| "<service port>".to_owned(), |p| p.to_string()),
            self.codec.name(),
            self.packet_ids.name(),
            if self.metrics_enabled {
                SocketAddr::new(self.metrics_addr, self.metrics_port).to_string()
            } else {
                "off".to_owned()
            },
            self.log_level.as_str().to_ascii_lowercase(),
            self.max_connections,
            unlimited(self.max_connections_per_ip as u64),
            self.buffer_pool_size,
            self.buffer_size,
            fmt_secs(self.handshake_timeout),
            fmt_secs(self.idle_timeout),
            unlimited(u64::from(self.max_packets_per_sec)),
            self.packet_burst,
            self.output_limit,
            self.wrong_state_budget,
            fmt_secs(self.shutdown_grace),
            if self.proxy_protocol {
                format!("on(trusted={})", fmt_cidrs(&self.proxy_trusted))
            } else {
                "off".to_owned()
            },
            self.rpc_threads,
            self.rpc_deadline.as_millis(),
            self.rpc_queue,
            or_embedded(&self.auth_url),
            or_embedded(&self.character_url),
            or_embedded(&self.world_url),
        );
        let embedded =
            self.auth_url.is_none() || self.character_url.is_none() || self.world_url.is_none();
        if embedded {
            let _ = write!(
                s,
                " backend_listen={} accounts_file={} accounts=[{}] auto_create_accounts={} \
                 session_ttl={}s max_chars={} server_name={:?}",
                self.backend_listen
                    .map_or_else(|| "loopback".to_owned(), |a| a.to_string()),
                self.accounts_file
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |p| p.display().to_string()),
                masked_accounts(&self.accounts),
                self.auto_create_accounts,
                fmt_secs(self.session_ttl),
                self.max_chars_per_account,
                self.server_name,
            );
        } else {
            let _ = write!(s, " server_name={:?}", self.server_name);
        }
        s
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Masked<'a>(&'a [(String, String)]);
        impl fmt::Debug for Masked<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(user, _)| (user, "***")))
                    .finish()
            }
        }
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("service_port", &self.service_port)
            .field("metrics_addr", &self.metrics_addr)
            .field("metrics_port", &self.metrics_port)
            .field("metrics_enabled", &self.metrics_enabled)
            .field("max_connections", &self.max_connections)
            .field("buffer_pool_size", &self.buffer_pool_size)
            .field("buffer_size", &self.buffer_size)
            .field("codec", &self.codec)
            .field("packet_ids", &self.packet_ids)
            .field("public_addr", &self.public_addr)
            .field("public_port", &self.public_port)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("log_level", &self.log_level)
            .field("rpc_threads", &self.rpc_threads)
            .field("rpc_deadline", &self.rpc_deadline)
            .field("rpc_queue", &self.rpc_queue)
            .field("auth_url", &self.auth_url)
            .field("character_url", &self.character_url)
            .field("world_url", &self.world_url)
            .field("backend_listen", &self.backend_listen)
            .field("accounts_file", &self.accounts_file)
            .field("accounts", &Masked(&self.accounts))
            .field("auto_create_accounts", &self.auto_create_accounts)
            .field("session_ttl", &self.session_ttl)
            .field("max_chars_per_account", &self.max_chars_per_account)
            .field("server_name", &self.server_name)
            .field("max_packets_per_sec", &self.max_packets_per_sec)
            .field("packet_burst", &self.packet_burst)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("output_limit", &self.output_limit)
            .field("wrong_state_budget", &self.wrong_state_budget)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("proxy_trusted", &self.proxy_trusted)
            .finish()
    }
}

/// Whether the network `cidr` (address, prefix length) contains `addr`.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket
/// reports IPv4 peers) is matched as the IPv4 address. An IPv4 network never
/// contains a native IPv6 address and vice versa. Prefix lengths beyond the
/// address width are treated as the full width.
pub fn cidr_contains(cidr: &(IpAddr, u8), addr: IpAddr) -> bool {
    match (cidr.0, addr.to_canonical()) {
        (IpAddr::V4(net), IpAddr::V4(addr)) => {
            let mask = prefix_mask_v4(cidr.1);
            u32::from(net) & mask == u32::from(addr) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(addr)) => {
            let mask = prefix_mask_v6(cidr.1);
            u128::from(net) & mask == u128::from(addr) & mask
        }
        _ => false,
    }
}

/// Parses one `ADDR/PREFIX` (a bare address is a host: /32 or /128).
///
/// Refuses prefix lengths beyond the address width and addresses with bits
/// set below the prefix (`10.0.0.1/8`), which usually mean a typo.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => width,
        // Digits only: `u8::from_str` would also take "+8".
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
    };
    if prefix > width {
        return None;
    }
    let host_bits_clear = match addr {
        IpAddr::V4(a) => u32::from(a) & !prefix_mask_v4(prefix) == 0,
        IpAddr::V6(a) => u128::from(a) & !prefix_mask_v6(prefix) == 0,
    };
    host_bits_clear.then_some((addr, prefix))
}

fn prefix_mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn prefix_mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

fn version() -> String {
    format!("packet-service {}", env!("CARGO_PKG_VERSION"))
}

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optflag("h", "help", "print this help and exit");
    opts.optflag("V", "version", "print the version and exit");
    for entry in spec::ALL {
        entry.register(&mut opts);
    }
    opts
}

/// Where raw values come from. `matches` is `None` for the built-in defaults.
struct Sources<'a> {
    matches: Option<&'a getopts::Matches>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    fn flag_values(&self, long: &str) -> Vec<String> {
        match self.matches {
            Some(m) if m.opt_defined(long) => m.opt_strs(long),
            _ => Vec::new(),
        }
    }

    fn flag_present(&self, long: &str) -> bool {
        matches!(self.matches, Some(m) if m.opt_defined(long) && m.opt_present(long))
    }

    fn env_value(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// Flag > non-empty env > default.
    fn raw<R: Rule>(&self, spec: &Spec<R>) -> Option<String> {
        self.flag_values(spec.long)
            .pop()
            .or_else(|| self.env_value(spec.env))
            .or_else(|| spec.default.map(str::to_owned))
    }

    fn optional<R: Rule>(&self, spec: &Spec<R>) -> Result<Option<R::Out>, ConfigError> {
        match self.raw(spec) {
            None => Ok(None),
            Some(raw) => spec
                .rule
                .parse(&raw)
                .map(Some)
                .ok_or_else(|| spec.invalid(&raw)),
        }
    }

    fn required<R: Rule>(&self, spec: &Spec<R>) -> Result<R::Out, ConfigError> {
        self.optional(spec)?.ok_or(ConfigError::Missing {
            flag: spec.long,
            env: spec.env,
        })
    }

    /// A switch flag sets its value; without it, the env (a boolean) or the
    /// default decides.
    fn switch(&self, spec: &Spec<Bool>) -> Result<bool, ConfigError> {
        match spec.form {
            Form::Switch { sets } if self.flag_present(spec.long) => Ok(sets),
            _ => self.required(spec),
        }
    }

    /// `ACCOUNTS` entries, then each `--account`; a later entry for a user
    /// already listed replaces its password.
    fn accounts(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let spec = &spec::ACCOUNTS;
        let mut entries = Vec::new();
        if let Some(raw) = self.env_value(spec.env) {
            entries.extend(spec.rule.parse(&raw).ok_or_else(|| spec.invalid(&raw))?);
        }
        for raw in self.flag_values(spec.long) {
            entries.push(parse_account(&raw).ok_or_else(|| spec.invalid(&raw))?);
        }
        let mut accounts: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (user, password) in entries {
            match accounts.iter_mut().find(|(known, _)| *known == user) {
                Some(existing) => existing.1 = password,
                None => accounts.push((user, password)),
            }
        }
        Ok(accounts)
    }

    fn resolve(&self) -> Result<Config, ConfigError> {
        use spec::*;
        Ok(Config {
            listen_addr: self.required(&LISTEN)?,
            service_port: self.required(&PORT)?,
            metrics_addr: self.required(&METRICS_LISTEN)?,
            metrics_port: self.required(&METRICS_PORT)?,
            metrics_enabled: self.switch(&NO_METRICS)?,
            max_connections: self.required(&MAX_CONNECTIONS)?,
            buffer_pool_size: self.required(&BUFFER_POOL_SIZE)?,
            buffer_size: self.required(&BUFFER_SIZE)?,
            codec: self.required(&CODEC)?,
            packet_ids: self.required(&PACKET_IDS)?,
            public_addr: self.required(&PUBLIC_ADDR)?,
            public_port: self.optional(&PUBLIC_PORT)?,
            handshake_timeout: self.required(&HANDSHAKE_TIMEOUT)?,
            idle_timeout: self.required(&IDLE_TIMEOUT)?,
            log_level: self.required(&LOG_LEVEL)?,
            rpc_threads: self.required(&RPC_THREADS)?,
            rpc_deadline: self.required(&RPC_DEADLINE)?,
            rpc_queue: self.required(&RPC_QUEUE)?,
            auth_url: self.optional(&AUTH_URL)?,
            character_url: self.optional(&CHARACTER_URL)?,
            world_url: self.optional(&WORLD_URL)?,
            backend_listen: self.optional(&BACKEND_LISTEN)?,
            accounts_file: self.optional(&ACCOUNTS_FILE)?,
            accounts: self.accounts()?,
            auto_create_accounts: self.switch(&AUTO_CREATE_ACCOUNTS)?,
            session_ttl: self.required(&SESSION_TTL)?,
            max_chars_per_account: self.required(&MAX_CHARS)?,
            server_name: self.required(&SERVER_NAME)?,
            max_packets_per_sec: self.required(&MAX_PACKETS_PER_SEC)?,
            packet_burst: self.required(&PACKET_BURST)?,
            max_connections_per_ip: self.required(&MAX_CONNECTIONS_PER_IP)?,
            output_limit: self.required(&OUTPUT_LIMIT)?,
            wrong_state_budget: self.required(&WRONG_STATE_BUDGET)?,
            shutdown_grace: self.required(&SHUTDOWN_GRACE)?,
            proxy_protocol: self.switch(&PROXY_PROTOCOL)?,
            proxy_trusted: self.required(&PROXY_TRUSTED)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Setting declarations and rules.
// ---------------------------------------------------------------------------

/// How a setting appears on the command line.
#[derive(Clone, Copy)]
enum Form {
    /// `--flag VALUE`, at most once.
    Value,
    /// `--flag VALUE`, any number of times.
    Repeated,
    /// `--flag` without a value; its presence sets the setting to `sets`.
    Switch { sets: bool },
}

/// One setting: names, help, default and validation rule.
struct Spec<R> {
    long: &'static str,
    env: &'static str,
    hint: &'static str,
    desc: &'static str,
    /// Raw default, parsed by `rule` like any other value; `None` = unset.
    default: Option<&'static str>,
    form: Form,
    rule: R,
}

impl<R: Rule> Spec<R> {
    const fn value(
        long: &'static str,
        env: &'static str,
        hint: &'static str,
        desc: &'static str,
        default: Option<&'static str>,
        rule: R,
    ) -> Self {
        Spec {
            long,
            env,
            hint,
            desc,
            default,
            form: Form::Value,
            rule,
        }
    }

    fn invalid(&self, raw: &str) -> ConfigError {
        ConfigError::Invalid {
            flag: self.long,
            env: self.env,
            value: shorten(&self.rule.shown(raw)),
            expected: self.rule.expected(),
        }
    }
}

impl Spec<Bool> {
    const fn switch(
        long: &'static str,
        env: &'static str,
        sets: bool,
        desc: &'static str,
        default: &'static str,
    ) -> Self {
        Spec {
            long,
            env,
            hint: "",
            desc,
            default: Some(default),
            form: Form::Switch { sets },
            rule: Bool,
        }
    }
}

/// The type-erased face of a [`Spec`], for `--help` and registration.
trait Entry: Sync {
    fn env(&self) -> &'static str;
    #[cfg(test)]
    fn long(&self) -> &'static str;
    fn register(&self, opts: &mut getopts::Options);
}

impl<R: Rule + Sync> Entry for Spec<R> {
    fn env(&self) -> &'static str {
        self.env
    }

    #[cfg(test)]
    fn long(&self) -> &'static str {
        self.long
    }

    fn register(&self, opts: &mut getopts::Options) {
        let mut desc = format!("{} [env {}", self.desc, self.env);
        if let Form::Switch { .. } = self.form {
            // The default belongs to the variable, not to the flag.
            let default = self.default.unwrap_or("false");
            let _ = write!(desc, ", boolean, default {default}]");
            opts.optflag("", self.long, &desc);
            return;
        }
        desc.push(']');
        let accepted = self.rule.accepted();
        match (self.default, accepted.is_empty()) {
            (Some(default), false) => {
                let _ = write!(desc, " (default {default}, {accepted})");
            }
            (Some(default), true) => {
                let _ = write!(desc, " (default {default})");
            }
            (None, false) => {
                let _ = write!(desc, " ({accepted})");
            }
            (None, true) => {}
        }
        if let Form::Repeated = self.form {
            opts.optmulti("", self.long, &desc, self.hint);
        } else {
            opts.optopt("", self.long, &desc, self.hint);
        }
    }
}

/// Validation of one raw value.
trait Rule {
    type Out;
    /// The typed value, or `None` when `raw` is not accepted.
    fn parse(&self, raw: &str) -> Option<Self::Out>;
    /// Completes "expected …" in the error line.
    fn expected(&self) -> String;
    /// Short form for `--help`; empty when the hint says it all.
    fn accepted(&self) -> String {
        String::new()
    }
    /// `raw` as it may be shown in an error line.
    fn shown(&self, raw: &str) -> String {
        raw.to_owned()
    }
}

/// An unsigned integer in `min..=max`, decimal digits only.
struct UInt<T> {
    min: T,
    max: T,
}

impl<T: FromStr + PartialOrd + fmt::Display + Copy> Rule for UInt<T> {
    type Out = T;
    fn parse(&self, raw: &str) -> Option<T> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: T = raw.parse().ok()?;
        (self.min <= n && n <= self.max).then_some(n)
    }
    fn expected(&self) -> String {
        format!("an integer in {}..={}", self.min, self.max)
    }
    fn accepted(&self) -> String {
        format!("{}..={}", self.min, self.max)
    }
}

/// Decimal seconds (`30`, `0.5`; at most 9 decimals) in `min..=max`.
struct Secs {
    min: Duration,
    max: Duration,
}

impl Rule for Secs {
    type Out = Duration;
    fn parse(&self, raw: &str) -> Option<Duration> {
        let d = parse_decimal_secs(raw)?;
        (self.min <= d && d <= self.max).then_some(d)
    }
    fn expected(&self) -> String {
        format!("seconds in {} (decimals allowed)", self.accepted())
    }
    fn accepted(&self) -> String {
        format!("{}..={}", fmt_secs(self.min), fmt_secs(self.max))
    }
}

/// Whole milliseconds in `min..=max`.
struct Millis {
    min: u64,
    max: u64,
}

impl Rule for Millis {
    type Out = Duration;
    fn parse(&self, raw: &str) -> Option<Duration> {
        UInt {
            min: self.min,
            max: self.max,
        }
        .parse(raw)
        .map(Duration::from_millis)
    }
    fn expected(&self) -> String {
        format!("milliseconds in {}..={}", self.min, self.max)
    }
    fn accepted(&self) -> String {
        format!("{}..={}", self.min, self.max)
    }
}

/// One of a fixed list of names.
struct Choice<T: 'static> {
    names: &'static [&'static str],
    from_name: fn(&str) -> Option<T>,
}

impl<T> Rule for Choice<T> {
    type Out = T;
    fn parse(&self, raw: &str) -> Option<T> {
        (self.from_name)(raw)
    }
    fn expected(&self) -> String {
        match self.names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
    fn accepted(&self) -> String {
        self.names.join("|")
    }
}

fn level_from_name(name: &str) -> Option<LevelFilter> {
    LevelFilter::from_str(name).ok()
}

/// `1/true/yes/on` or `0/false/no/off`, any case.
struct Bool;

impl Rule for Bool {
    type Out = bool;
    fn parse(&self, raw: &str) -> Option<bool> {
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        }
    }
    fn expected(&self) -> String {
        BOOL_EXPECTED.to_owned()
    }
}

/// An IPv4 or IPv6 address.
struct Ip;

impl Rule for Ip {
    type Out = IpAddr;
    fn parse(&self, raw: &str) -> Option<IpAddr> {
        raw.parse().ok()
    }
    fn expected(&self) -> String {
        "an IPv4 or IPv6 address".to_owned()
    }
}

/// An IPv4 address a client can connect to (not 0.0.0.0, not broadcast).
struct PublicIpv4;

impl Rule for PublicIpv4 {
    type Out = Ipv4Addr;
    fn parse(&self, raw: &str) -> Option<Ipv4Addr> {
        let addr: Ipv4Addr = raw.parse().ok()?;
        (!addr.is_unspecified() && !addr.is_broadcast()).then_some(addr)
    }
    fn expected(&self) -> String {
        "an IPv4 address clients can reach (not 0.0.0.0 or 255.255.255.255)".to_owned()
    }
}

/// `ADDR:PORT` (`[v6]:PORT` for IPv6).
struct Sock;

impl Rule for Sock {
    type Out = SocketAddr;
    fn parse(&self, raw: &str) -> Option<SocketAddr> {
        raw.parse().ok()
    }
    fn expected(&self) -> String {
        "ADDR:PORT, e.g. 127.0.0.1:29100 or [::1]:29100".to_owned()
    }
}

/// A gRPC endpoint URL.
struct Url;

impl Rule for Url {
    type Out = String;
    fn parse(&self, raw: &str) -> Option<String> {
        let lower = raw.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))?;
        let well_formed = !rest.is_empty()
            && !rest.starts_with('/')
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        well_formed.then(|| raw.to_owned())
    }
    fn expected(&self) -> String {
        "a URL starting with http:// or https://, e.g. http://127.0.0.1:50051".to_owned()
    }
}

/// A file path (not checked for existence here).
struct FilePath;

impl Rule for FilePath {
    type Out = PathBuf;
    fn parse(&self, raw: &str) -> Option<PathBuf> {
        (!raw.is_empty() && !raw.contains('\0')).then(|| PathBuf::from(raw))
    }
    fn expected(&self) -> String {
        "a file path".to_owned()
    }
}

/// Text of `1..=max_bytes` bytes without NUL.
struct Name {
    max_bytes: usize,
}

impl Rule for Name {
    type Out = String;
    fn parse(&self, raw: &str) -> Option<String> {
        let fits = (1..=self.max_bytes).contains(&raw.len()) && !raw.contains('\0');
        fits.then(|| raw.to_owned())
    }
    fn expected(&self) -> String {
        format!("1..={} bytes without NUL", self.max_bytes)
    }
    fn accepted(&self) -> String {
        format!("1..={} bytes", self.max_bytes)
    }
}

/// A comma-separated list of [`parse_cidr`] networks, at least one.
struct Cidrs;

impl Rule for Cidrs {
    type Out = Vec<(IpAddr, u8)>;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        raw.split(',').map(|part| parse_cidr(part.trim())).collect()
    }
    fn expected(&self) -> String {
        "a comma-separated list of ADDR/PREFIX, e.g. 10.0.0.0/8,::1/128 \
         (prefix at most 32 for IPv4 and 128 for IPv6, no bits set after the prefix)"
            .to_owned()
    }
}

/// Comma-separated `USER:PASSWORD` entries (the environment form).
struct Accounts;

/// Longest user name a LOGIN_REQ can carry (docs/protocol.md §9 D4).
const MAX_USER_BYTES: usize = 20;

impl Rule for Accounts {
    type Out = Vec<(String, String)>;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        raw.split(',').map(parse_account).collect()
    }
    fn expected(&self) -> String {
        format!(
            "USER:PASSWORD entries separated by commas, the user 1..={MAX_USER_BYTES} bytes \
             without ':', ',' or control characters, the password not empty"
        )
    }
    fn shown(&self, raw: &str) -> String {
        raw.split(',')
            .map(|entry| match entry.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                // Without a separator the entry may well be a password.
                None => "***".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_account(entry: &str) -> Option<(String, String)> {
    let (user, password) = entry.split_once(':')?;
    let user_ok = (1..=MAX_USER_BYTES).contains(&user.len())
        && !user.chars().any(|c| c.is_control() || c == ',');
    let password_ok = !password.is_empty() && !password.contains('\0');
    (user_ok && password_ok).then(|| (user.to_owned(), password.to_owned()))
}

/// `digits[.digits]`, at most 9 decimals; no sign, no exponent.
fn parse_decimal_secs(raw: &str) -> Option<Duration> {
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (raw, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = !raw.contains('.') || (1..=9).contains(&fraction.len());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || !fraction_ok {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut nanos = 0u32;
    for i in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(Duration::new(secs, nanos))
}

/// Seconds with only the decimals needed: `30`, `0.05`.
fn fmt_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let fraction = format!("{:09}", d.subsec_nanos());
    format!("{}.{}", d.as_secs(), fraction.trim_end_matches('0'))
}

fn fmt_cidrs(cidrs: &[(IpAddr, u8)]) -> String {
    cidrs
        .iter()
        .map(|(addr, prefix)| format!("{addr}/{prefix}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn masked_accounts(accounts: &[(String, String)]) -> String {
    accounts
        .iter()
        .map(|(user, _)| format!("{user}:***"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Caps a value echoed in an error line.
fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    match value.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv6Addr;

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
        assert_eq!(c.packet_ids, DialectId::Osirose);
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
        assert_eq!(c.max_connections_per_ip, 0);
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
        assert_eq!(c.packet_ids, DialectId::Osirose2021);
        assert!(!c.metrics_enabled);
        assert!(c.proxy_protocol);
        assert_eq!(c.proxy_trusted.len(), 2);
        assert_eq!(c.public_port, Some(29001));
        assert_eq!(c.auth_url.as_deref(), Some("https://auth.example:50051"));
        assert_eq!(c.backend_listen, Some("[::1]:29100".parse().unwrap()));
        assert_eq!(c.log_level, LevelFilter::Debug);
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
        ("metrics-listen", "METRICS_ADDR", "localhost"),
        ("metrics-port", "PACKET_METRICS_PORT", "-1"),
        ("no-metrics", "METRICS_ENABLED", "maybe"),
        ("max-connections", "MAX_CONCURRENT_CONNECTIONS", "0"),
        ("buffer-pool-size", "BUFFER_POOL_SIZE", "15"),
        ("buffer-size", "BUFFER_SIZE", "2047"),
        ("codec", "PACKET_CODEC", "xyz"),
        ("packet-ids", "PACKET_IDS", "irose"),
        ("public-addr", "PUBLIC_ADDR", "0.0.0.0"),
        ("public-port", "PUBLIC_PORT", "0"),
        ("handshake-timeout", "HANDSHAKE_TIMEOUT_SECS", "0.01"),
        ("idle-timeout", "IDLE_TIMEOUT_SECS", "86401"),
        ("log-level", "LOG_LEVEL", "verbose"),
        ("rpc-threads", "RPC_THREADS", "65"),
        ("rpc-deadline", "RPC_DEADLINE_MS", "9"),
        ("rpc-queue", "RPC_QUEUE_SIZE", "1000001"),
        ("auth-url", "AUTH_URL", "auth:50051"),
        ("character-url", "CHARACTER_URL", "ftp://x"),
        ("world-url", "WORLD_URL", "http://"),
        ("backend-listen", "BACKEND_LISTEN", "127.0.0.1"),
        ("accounts-file", "ACCOUNTS_FILE", "a\0b"),
        ("account", "ACCOUNTS", "alice"),
        ("auto-create-accounts", "AUTO_CREATE_ACCOUNTS", "2"),
        ("session-ttl", "SESSION_TTL_SECS", "0.5"),
        ("max-chars", "MAX_CHARS_PER_ACCOUNT", "33"),
        (
            "server-name",
            "SERVER_NAME",
            "a-name-that-is-longer-than-32-bytes",
        ),
        ("max-packets-per-sec", "MAX_PACKETS_PER_SEC", "1000001"),
        ("packet-burst", "PACKET_BURST", "0"),
        ("max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", "1e3"),
        ("output-limit", "OUTPUT_LIMIT_BYTES", "4095"),
        ("wrong-state-budget", "WRONG_STATE_BUDGET", "many"),
        ("shutdown-grace", "SHUTDOWN_GRACE_SECS", "3600.5"),
        ("proxy-protocol", "PROXY_PROTOCOL", "enabled"),
        ("proxy-trusted", "PROXY_TRUSTED", "10.0.0.1/8"),
    ];

    #[test]
    fn every_invalid_value_names_flag_env_and_value() {
        for &(flag, env, bad) in INVALID {
            let mut cases = vec![refused(&[], &[(env, bad)])];
            let flag_takes_value = !matches!(
                flag,
                "no-metrics" | "auto-create-accounts" | "proxy-protocol"
            );
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
    fn the_invalid_table_covers_every_setting() {
        for entry in spec::ALL {
            assert!(
                INVALID
                    .iter()
                    .any(|(flag, env, _)| *flag == entry.long() && *env == entry.env()),
                "no invalid case for --{} / {}",
                entry.long(),
                entry.env()
            );
        }
        assert_eq!(INVALID.len(), spec::ALL.len());
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
    fn cidr_parsing() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert_eq!(parse_cidr("10.0.0.0/8"), Some((v4("10.0.0.0"), 8)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((v4("0.0.0.0"), 0)));
        assert_eq!(parse_cidr("192.0.2.7"), Some((v4("192.0.2.7"), 32)));
        assert_eq!(parse_cidr("fd00::/8"), Some((v6("fd00::"), 8)));
        assert_eq!(parse_cidr("::1"), Some((v6("::1"), 128)));
        assert_eq!(parse_cidr("::/0"), Some((v6("::"), 0)));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "fd00::1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0/8",
            "/8",
            "",
            "host/8",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(parse_cidr(bad), None, "{bad:?}");
        }
        let c = run(&["--proxy-trusted", "10.0.0.0/8,192.168.1.0/24,fd00::/8"]);
        assert_eq!(c.proxy_trusted.len(), 3);
        for bad in ["", "10.0.0.0/8,", "10.0.0.0/8,,::1"] {
            refused(&["--proxy-trusted", bad], &[]);
        }
    }

    #[test]
    fn cidr_containment() {
        let net = |s: &str| parse_cidr(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains(&net("10.0.0.0/8"), ip("10.255.1.2")));
        assert!(!cidr_contains(&net("10.0.0.0/8"), ip("11.0.0.0")));
        assert!(cidr_contains(&net("192.168.1.0/24"), ip("192.168.1.255")));
        assert!(!cidr_contains(&net("192.168.1.0/24"), ip("192.168.2.0")));
        assert!(cidr_contains(&net("127.0.0.1/32"), ip("127.0.0.1")));
        assert!(!cidr_contains(&net("127.0.0.1/32"), ip("127.0.0.2")));
        assert!(cidr_contains(&net("0.0.0.0/0"), ip("203.0.113.9")));
        assert!(cidr_contains(&net("fd00::/8"), ip("fdff:1::2")));
        assert!(!cidr_contains(&net("fd00::/8"), ip("fe80::1")));
        assert!(cidr_contains(&net("::1/128"), ip("::1")));
        assert!(!cidr_contains(&net("::1/128"), ip("::2")));
        assert!(cidr_contains(&net("2001:db8::/32"), ip("2001:db8:ffff::1")));
        assert!(cidr_contains(&net("::/0"), ip("2001:db8::1")));
        // Families do not mix, except IPv4-mapped IPv6 peers.
        assert!(!cidr_contains(&net("::/0"), ip("10.0.0.1")));
        assert!(!cidr_contains(&net("0.0.0.0/0"), ip("2001:db8::1")));
        assert!(cidr_contains(&net("127.0.0.1/32"), ip("::ffff:127.0.0.1")));
        assert!(!cidr_contains(&net("127.0.0.1/32"), ip("::ffff:127.0.0.2")));
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
            "SESSION_TTL_SECS",
            "MAX_CHARS_PER_ACCOUNT",
            "SERVER_NAME",
            "MAX_PACKETS_PER_SEC",
            "PACKET_BURST",
            "MAX_CONNECTIONS_PER_IP",
            "OUTPUT_LIMIT_BYTES",
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
        for entry in spec::ALL {
            assert!(
                help.contains(&format!("--{} ", entry.long())),
                "help lacks --{}",
                entry.long()
            );
        }
        let help = flat(&help);
        assert!(help.contains(
            "--max-connections N maximum concurrent client connections \
             [env MAX_CONCURRENT_CONNECTIONS] (default 10000, 1..=1000000)"
        ));
        assert!(help.contains("(default 30, 0.05..=86400)"));
        assert!(help.contains("--no-metrics disable the metrics endpoint [env METRICS_ENABLED, boolean, default true]"));
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
}
