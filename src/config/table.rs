//! The settings table: one row per setting, in `--help` order. Each row
//! names the [`Config`] field it fills and its type, its long flag, its
//! environment variable, the value hint, the form and rule (range or
//! choice), the default, the help line, its part of the start-up summary
//! and how `Debug` shows it. `declare.rs` says what a row expands to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use super::declare::{settings, Form, Reload, Setting};
use super::parse::Sources;
use super::reload::{Change, Reloaded};
use super::rules::{
    level_from_name, Accounts, Bool, Choice, Cidrs, Database, FilePath, Ip, LogFilter, Millis,
    Name, PublicIpv4, Secs, Seeds, Sock, UInt, Url, Urls, BUFFER_SIZE_MIN, TIMEOUT,
};
use super::text::{self, or_unset, seconds, unlimited, Summary};
use super::ConfigError;
use crate::backend::store::DatabaseUrl;
use crate::conn::wire::PacketIds;
use crate::logging::LogFormat;
use crate::protocol::codec::Seed;
use crate::protocol::CodecKind;

settings! {
    /// Address the client listener binds.
    listen_addr: IpAddr {
        flag: "listen", env: "LISTEN_ADDR", hint: "ADDR",
        form: value, rule: Ip, default: Some("0.0.0.0"),
        help: "client listener address",
        summary: always("listen", |c| SocketAddr::new(c.listen_addr, c.service_port)),
        debug: plain,
        reload: restart,
    }
    /// Port the client listener binds; 0 picks an ephemeral port.
    service_port: u16 {
        flag: "port", env: "SERVICE_PORT", hint: "PORT",
        form: value, rule: UInt { min: 0, max: 65535 }, default: Some("29000"),
        help: "client listener port, 0 = ephemeral",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Whether the client listener is bound with `SO_REUSEPORT`, so that
    /// several gateway processes on this host share its port.
    reuse_port: bool {
        flag: "reuse-port", env: "REUSE_PORT", hint: "",
        form: switch(true), rule: Bool, default: Some("false"),
        help: "bind the client port with SO_REUSEPORT so that several gateways share it",
        summary: always("reuse_port", |c| c.reuse_port),
        debug: plain,
        reload: restart,
    }
    /// Length of the client listener's accept queue: connections the
    /// kernel completes before the reactor accepts them. After a restart
    /// every player reconnects at once; a queue shorter than that burst
    /// drops SYNs, and each dropped client waits a retransmission (1 s,
    /// then 3 s, 7 s...). The kernel caps it at `net.core.somaxconn`. A
    /// socket passed by systemd keeps the unit's `Backlog=`.
    listen_backlog: u32 {
        flag: "listen-backlog", env: "LISTEN_BACKLOG", hint: "N",
        form: value, rule: UInt { min: 1, max: 65535 }, default: Some("4096"),
        help: "accept queue of the client listener (the kernel caps it at net.core.somaxconn)",
        summary: always("backlog", |c| c.listen_backlog),
        debug: plain,
        reload: restart,
    }
    /// Address advertised to clients in SRV_SELECT_REPLY and SWITCH_SERVER;
    /// never unspecified or broadcast.
    public_addr: Ipv4Addr {
        flag: "public-addr", env: "PUBLIC_ADDR", hint: "IPV4",
        form: value, rule: PublicIpv4, default: Some("127.0.0.1"),
        help: "address advertised to clients for server switches",
        summary: always("public", |c| {
            format!("{}:{}", c.public_addr, or_unset(c.public_port, "<service port>"))
        }),
        debug: plain,
        reload: restart,
    }
    /// Port advertised to clients, 1..=65535; `None` means the port the
    /// listener actually bound.
    public_port: Option<u16> {
        flag: "public-port", env: "PUBLIC_PORT", hint: "PORT",
        form: optional, rule: UInt { min: 1, max: 65535 }, default: None,
        help: "port advertised to clients; unset = the bound service port",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Wire codec of the client listener.
    codec: CodecKind {
        flag: "codec", env: "PACKET_CODEC", hint: "NAME",
        form: value,
        rule: Choice { names: &["rose", "plain"], from_name: CodecKind::from_name },
        default: Some("rose"),
        help: "wire codec",
        summary: always("codec", |c| c.codec.name()),
        debug: plain,
        reload: restart,
    }
    /// Packet id numbering: one dialect, or `auto` (irose or osIROSE, per
    /// connection, from its first packet; docs/protocol.md §10.6).
    packet_ids: PacketIds {
        flag: "packet-ids", env: "PACKET_IDS", hint: "NAME",
        form: value,
        rule: Choice { names: PacketIds::NAMES, from_name: PacketIds::from_name },
        default: Some("osirose"),
        help: "packet id dialect; auto = irose or osirose per connection",
        summary: always("packet_ids", |c| c.packet_ids.name()),
        debug: plain,
        reload: restart,
    }
    /// Seeds of the irose key tables (docs/protocol.md §10.2): the first is
    /// announced for the char connection (0x70A), the last for the map
    /// connection (0x711); every one is accepted on a first packet, so
    /// gateways sharing sessions list each other's. Never 0; at most 7, each
    /// table built once at start-up.
    irose_seeds: Vec<Seed> {
        flag: "irose-seeds", env: "IROSE_SEEDS", hint: "SEED[,SEED..]",
        form: value, rule: Seeds, default: Some("0x12345678,0x87654321"),
        help: "irose table seeds: first announced to char, last to map connections",
        summary: always("irose_seeds", |c| if c.packet_ids.serves_irose() {
            text::seeds(&c.irose_seeds)
        } else {
            "off".to_owned()
        }),
        debug: plain,
        reload: restart,
    }
    /// Address of the Prometheus endpoint.
    metrics_addr: IpAddr {
        flag: "metrics-listen", env: "METRICS_ADDR", hint: "ADDR",
        form: value, rule: Ip, default: Some("0.0.0.0"),
        help: "metrics endpoint address",
        summary: always("metrics", |c| if c.metrics_enabled {
            SocketAddr::new(c.metrics_addr, c.metrics_port).to_string()
        } else {
            "off".to_owned()
        }),
        debug: plain,
        reload: restart,
    }
    /// Port of the Prometheus endpoint; 0 picks an ephemeral port.
    metrics_port: u16 {
        flag: "metrics-port", env: "PACKET_METRICS_PORT", hint: "PORT",
        form: value, rule: UInt { min: 0, max: 65535 }, default: Some("9102"),
        help: "metrics endpoint port, 0 = ephemeral",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Whether the Prometheus endpoint runs; the flag turns it off.
    metrics_enabled: bool {
        flag: "no-metrics", env: "METRICS_ENABLED", hint: "",
        form: switch(false), rule: Bool, default: Some("true"),
        help: "disable the metrics endpoint",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Maximum log level.
    log_level: LevelFilter {
        flag: "log-level", env: "LOG_LEVEL", hint: "LEVEL",
        form: value,
        rule: Choice {
            names: &["off", "error", "warn", "info", "debug", "trace"],
            from_name: level_from_name,
        },
        default: Some("info"),
        help: "maximum log level",
        summary: always("log_level", |c| c.log_level.as_str().to_ascii_lowercase()),
        debug: plain,
        reload: live,
    }
    /// Per-target log directives in the `RUST_LOG` syntax, applied after
    /// the level (see [`crate::logging`]).
    log_filter: Option<String> {
        flag: "log-filter", env: "RUST_LOG", hint: "DIRECTIVES",
        form: optional, rule: LogFilter, default: None,
        help: "per-target log levels, e.g. packet_service::reactor=debug; override --log-level",
        summary: always("log_filter", |c| or_unset(c.log_filter.as_ref(), "-")),
        debug: plain,
        reload: live,
    }
    /// How log lines are written.
    log_format: LogFormat {
        flag: "log-format", env: "LOG_FORMAT", hint: "NAME",
        form: value,
        rule: Choice { names: &["text", "json"], from_name: LogFormat::from_name },
        default: Some("text"),
        help: "log line format: text, or one JSON object per line",
        summary: always("log_format", |c| c.log_format.name()),
        debug: plain,
        reload: restart,
    }
    /// Maximum concurrent client connections.
    max_connections: usize {
        flag: "max-connections", env: "MAX_CONCURRENT_CONNECTIONS", hint: "N",
        form: value, rule: UInt { min: 1, max: 1_000_000 }, default: Some("10000"),
        help: "maximum concurrent client connections",
        summary: always("max_connections", |c| c.max_connections),
        debug: plain,
        reload: live,
    }
    /// Concurrent connections per client address (IPv6: per /64); 0 =
    /// unlimited.
    max_connections_per_ip: usize {
        flag: "max-connections-per-ip", env: "MAX_CONNECTIONS_PER_IP", hint: "N",
        form: value, rule: UInt { min: 0, max: 1_000_000 }, default: Some("32"),
        help: "concurrent connections per client address (IPv6 /64), 0 = unlimited",
        summary: always("per_ip", |c| unlimited(c.max_connections_per_ip)),
        debug: plain,
        reload: live,
    }
    /// Number of pooled I/O buffers.
    buffer_pool_size: usize {
        flag: "buffer-pool-size", env: "BUFFER_POOL_SIZE", hint: "N",
        form: value, rule: UInt { min: 16, max: 1_000_000 }, default: Some("4096"),
        help: "pooled I/O buffers",
        summary: always("buffers", |c| format!("{}x{}B", c.buffer_pool_size, c.buffer_size)),
        debug: plain,
        reload: restart,
    }
    /// Bytes per pooled buffer; always holds one maximum packet.
    buffer_size: usize {
        flag: "buffer-size", env: "BUFFER_SIZE", hint: "BYTES",
        form: value, rule: UInt { min: BUFFER_SIZE_MIN, max: 65536 }, default: Some("4096"),
        help: "bytes per pooled buffer (holds one maximum packet)",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Time a new connection has to deliver its first valid packet.
    handshake_timeout: Duration {
        flag: "handshake-timeout", env: "HANDSHAKE_TIMEOUT_SECS", hint: "SECS",
        form: value, rule: TIMEOUT, default: Some("30"),
        help: "time to the first valid packet",
        summary: always("handshake", |c| seconds(c.handshake_timeout)),
        debug: plain,
        reload: live,
    }
    /// Time without any packet before a connection is closed.
    idle_timeout: Duration {
        flag: "idle-timeout", env: "IDLE_TIMEOUT_SECS", hint: "SECS",
        form: value, rule: TIMEOUT, default: Some("300"),
        help: "time without packets before a connection is closed",
        summary: always("idle", |c| seconds(c.idle_timeout)),
        debug: plain,
        reload: live,
    }
    /// Time a frame (or a PROXY header) whose first bytes arrived has to
    /// arrive whole.
    frame_timeout: Duration {
        flag: "frame-timeout", env: "FRAME_TIMEOUT_SECS", hint: "SECS",
        form: value, rule: TIMEOUT, default: Some("10"),
        help: "time from a frame's first byte to its last",
        summary: always("frame", |c| seconds(c.frame_timeout)),
        debug: plain,
        reload: live,
    }
    /// Packets per second one connection may send; 0 = unlimited.
    max_packets_per_sec: u32 {
        flag: "max-packets-per-sec", env: "MAX_PACKETS_PER_SEC", hint: "N",
        form: value, rule: UInt { min: 0, max: 1_000_000 }, default: Some("200"),
        help: "packets per second per connection, 0 = unlimited",
        summary: always("packets_per_sec", |c| unlimited(c.max_packets_per_sec)),
        debug: plain,
        reload: live,
    }
    /// Burst allowance of the per-connection packet rate.
    packet_burst: u32 {
        flag: "packet-burst", env: "PACKET_BURST", hint: "N",
        form: value, rule: UInt { min: 1, max: 1_000_000 }, default: Some("400"),
        help: "burst allowance of the packet rate",
        summary: always("burst", |c| c.packet_burst),
        debug: plain,
        reload: live,
    }
    /// Queued output bytes after which a connection that does not read is
    /// closed.
    output_limit: usize {
        flag: "output-limit", env: "OUTPUT_LIMIT_BYTES", hint: "BYTES",
        form: value, rule: UInt { min: 4096, max: 64 << 20 }, default: Some("262144"),
        help: "queued output per connection before it is closed",
        summary: always("output_limit", |c| format!("{}B", c.output_limit)),
        debug: plain,
        reload: live,
    }
    /// How long world output (other players' moves, chat, spawns) may wait
    /// so that one write per connection carries all that came meanwhile;
    /// 0 writes it in the pass it arrives. Replies to a client's own
    /// requests are never held.
    world_flush: Duration {
        flag: "world-flush-ms", env: "WORLD_FLUSH_MS", hint: "MS",
        form: value, rule: Millis { min: 0, max: 250 }, default: Some("10"),
        help: "milliseconds world packets may wait to share a write, 0 = none",
        summary: always("world_flush", |c| format!("{}ms", c.world_flush.as_millis())),
        debug: plain,
        reload: live,
    }
    /// Chat messages per second one player may send (a burst of twice as
    /// many); 0 = unlimited. Messages over the budget are dropped, counted.
    chat_per_sec: u32 {
        flag: "chat-per-sec", env: "CHAT_MESSAGES_PER_SEC", hint: "N",
        form: value, rule: UInt { min: 0, max: 1000 }, default: Some("3"),
        help: "chat messages per second per player (burst twice that), 0 = unlimited",
        summary: always("chat_per_sec", |c| unlimited(c.chat_per_sec)),
        debug: plain,
        reload: live,
    }
    /// Bytes of text one chat message may carry; longer ones are dropped,
    /// counted.
    chat_max_bytes: usize {
        flag: "chat-max-bytes", env: "CHAT_MAX_BYTES", hint: "BYTES",
        form: value, rule: UInt { min: 1, max: 2000 }, default: Some("256"),
        help: "bytes of text per chat message",
        summary: always("chat_max", |c| format!("{}B", c.chat_max_bytes)),
        debug: plain,
        reload: live,
    }
    /// Known packets in the wrong state tolerated per connection before it
    /// is closed.
    wrong_state_budget: u32 {
        flag: "wrong-state-budget", env: "WRONG_STATE_BUDGET", hint: "N",
        form: value, rule: UInt { min: 0, max: 1_000_000 }, default: Some("16"),
        help: "known packets in the wrong state tolerated per connection",
        summary: always("wrong_state_budget", |c| c.wrong_state_budget),
        debug: plain,
        reload: live,
    }
    /// Time given to in-flight work on shutdown.
    shutdown_grace: Duration {
        flag: "shutdown-grace", env: "SHUTDOWN_GRACE_SECS", hint: "SECS",
        form: value,
        rule: Secs { min: Duration::ZERO, max: Duration::from_secs(3600) },
        default: Some("5"),
        help: "time given to in-flight work on shutdown",
        summary: always("grace", |c| seconds(c.shutdown_grace)),
        debug: plain,
        reload: restart,
    }
    /// Whether every connection must start with a PROXY protocol header.
    proxy_protocol: bool {
        flag: "proxy-protocol", env: "PROXY_PROTOCOL", hint: "",
        form: switch(true), rule: Bool, default: Some("false"),
        help: "require a PROXY protocol header from trusted sources",
        summary: always("proxy_protocol", |c| if c.proxy_protocol {
            format!("on(trusted={})", crate::cidr::list(&c.proxy_trusted))
        } else {
            "off".to_owned()
        }),
        debug: plain,
        reload: restart,
    }
    /// Networks allowed to send a PROXY header; never empty, no host bits
    /// set. See [`crate::cidr::contains`].
    proxy_trusted: Vec<(IpAddr, u8)> {
        flag: "proxy-trusted", env: "PROXY_TRUSTED", hint: "CIDR[,CIDR..]",
        form: value, rule: Cidrs, default: Some("127.0.0.1/32,::1/128"),
        help: "sources allowed to send a PROXY header",
        summary: none,
        debug: plain,
        reload: restart,
    }
    /// Worker threads of the RPC runtime.
    rpc_threads: usize {
        flag: "rpc-threads", env: "RPC_THREADS", hint: "N",
        form: value, rule: UInt { min: 1, max: 64 }, default: Some("2"),
        help: "worker threads of the RPC runtime",
        summary: always("rpc_threads", |c| c.rpc_threads),
        debug: plain,
        reload: restart,
    }
    /// Deadline of one backend call.
    rpc_deadline: Duration {
        flag: "rpc-deadline", env: "RPC_DEADLINE_MS", hint: "MS",
        form: value, rule: Millis { min: 10, max: 60_000 }, default: Some("3000"),
        help: "deadline of one backend call in milliseconds",
        summary: always("rpc_deadline", |c| format!("{}ms", c.rpc_deadline.as_millis())),
        debug: plain,
        reload: restart,
    }
    /// Capacity of the job queue from the reactor to the RPC runtime, and
    /// the most backend calls in flight at once.
    rpc_queue: usize {
        flag: "rpc-queue", env: "RPC_QUEUE_SIZE", hint: "N",
        form: value, rule: UInt { min: 1, max: 1_000_000 }, default: Some("4096"),
        help: "backend jobs queued before new requests are refused",
        summary: always("rpc_queue", |c| c.rpc_queue),
        debug: plain,
        reload: restart,
    }
    /// External auth service endpoints, each starting with `http://` or
    /// `https://`, calls balanced over those serving; `None` means the
    /// embedded one.
    auth_url: Option<Vec<String>> {
        flag: "auth-url", env: "AUTH_URL", hint: "URL[,URL..]",
        form: optional, rule: Urls, default: None,
        help: "external auth service, calls balanced over several; unset = embedded",
        summary: always("auth", |c| or_unset(c.auth_url.as_ref().map(|u| u.join(",")), "embedded")),
        debug: plain,
        reload: restart,
    }
    /// External character service endpoints, each starting with `http://`
    /// or `https://`, calls balanced over those serving; `None` means the
    /// embedded one.
    character_url: Option<Vec<String>> {
        flag: "character-url", env: "CHARACTER_URL", hint: "URL[,URL..]",
        form: optional, rule: Urls, default: None,
        help: "external character service, calls balanced over several; unset = embedded",
        summary: always("character", |c| {
            or_unset(c.character_url.as_ref().map(|u| u.join(",")), "embedded")
        }),
        debug: plain,
        reload: restart,
    }
    /// External world service, starting with `http://` or `https://`; `None`
    /// means the embedded one. One only: a realm has one world.
    world_url: Option<String> {
        flag: "world-url", env: "WORLD_URL", hint: "URL",
        form: optional, rule: Url, default: None,
        help: "external world service (one per realm); unset = embedded",
        summary: always("world", |c| or_unset(c.world_url.as_ref(), "embedded")),
        debug: plain,
        reload: restart,
    }
    /// Where to expose the embedded backend to other gateways; `None` keeps
    /// it on an ephemeral loopback port.
    backend_listen: Option<SocketAddr> {
        flag: "backend-listen", env: "BACKEND_LISTEN", hint: "ADDR",
        form: optional, rule: Sock, default: None,
        help: "expose the embedded backend on this address",
        summary: embedded("backend_listen", |c| or_unset(c.backend_listen, "loopback")),
        debug: plain,
        reload: restart,
    }
    /// Where the admin service (`proto/admin.proto`) of the embedded
    /// backend listens; loopback by default, port 0 picks an ephemeral
    /// port. Any other address needs `admin_token_file` (checked when the
    /// backend starts). `packet-service admin` connects here.
    admin_listen: SocketAddr {
        flag: "admin-listen", env: "ADMIN_LISTEN", hint: "ADDR",
        form: value, rule: Sock, default: Some("127.0.0.1:29200"),
        help: "admin service address (embedded backend); off loopback it needs --admin-token-file",
        summary: embedded("admin", |c| c.admin_listen),
        debug: plain,
        reload: restart,
    }
    /// File whose first line is the token every admin call must present;
    /// `None`: no token (allowed on loopback only). Read by the backend at
    /// start and by `packet-service admin`, never logged.
    admin_token_file: Option<PathBuf> {
        flag: "admin-token-file", env: "ADMIN_TOKEN_FILE", hint: "PATH",
        form: optional, rule: FilePath, default: None,
        help: "file holding the admin token (first line); required when --admin-listen is not loopback",
        summary: embedded("admin_token", |c| if c.admin_token_file.is_some() { "file" } else { "none" }),
        debug: plain,
        reload: restart,
    }
    /// File of accounts seeding the embedded auth service. Read by the
    /// backend, not here: at start, and again on every reload (the
    /// backend applies the lines that changed, `src/backend/reload.rs`).
    accounts_file: Option<PathBuf> {
        flag: "accounts-file", env: "ACCOUNTS_FILE", hint: "PATH",
        form: optional, rule: FilePath, default: None,
        help: "accounts for the embedded auth service, one `name password [access]` per line",
        summary: embedded("accounts_file", |c| {
            or_unset(c.accounts_file.as_ref().map(|p| p.display()), "-")
        }),
        debug: plain,
        reload: live,
    }
    /// Accounts seeding the embedded auth service: `ACCOUNTS` entries first,
    /// then each `--account`. User names are unique (a later entry for the
    /// same user replaces the password in place), 1..=20 bytes. The
    /// passwords are masked in `Debug`, in the summary and in errors.
    accounts: Vec<(String, String)> {
        flag: "account", env: "ACCOUNTS", hint: "USER:PASSWORD",
        form: repeated, rule: Accounts, default: None,
        help: "embedded account, repeatable; env is a comma-separated list, flags add to it",
        summary: embedded("accounts", |c| format!("[{}]", text::masked_accounts(&c.accounts))),
        debug: masked,
        reload: restart,
    }
    /// Whether an unknown user name creates an account on first login.
    auto_create_accounts: bool {
        flag: "auto-create-accounts", env: "AUTO_CREATE_ACCOUNTS", hint: "",
        form: switch(true), rule: Bool, default: Some("false"),
        help: "create unknown accounts on first login (embedded auth)",
        summary: embedded("auto_create_accounts", |c| c.auto_create_accounts),
        debug: plain,
        reload: restart,
    }
    /// Failed logins of one account before the embedded auth service backs
    /// off (docs/protocol.md §9 D17).
    auth_failures_per_account: u32 {
        flag: "auth-failures-per-account", env: "AUTH_FAILURES_PER_ACCOUNT", hint: "N",
        form: value, rule: UInt { min: 1, max: 1000 }, default: Some("5"),
        help: "failed logins of one account before backing off 1 s, 2 s, … 60 s (embedded auth)",
        summary: embedded("auth_failures_per_account", |c| c.auth_failures_per_account),
        debug: plain,
        reload: restart,
    }
    /// Failed logins (or joins) from one source before the embedded auth
    /// service backs off.
    auth_failures_per_source: u32 {
        flag: "auth-failures-per-source", env: "AUTH_FAILURES_PER_SOURCE", hint: "N",
        form: value, rule: UInt { min: 1, max: 100000 }, default: Some("20"),
        help: "failed logins or joins from one address (IPv6: /64) before backing off (embedded auth)",
        summary: embedded("auth_failures_per_source", |c| c.auth_failures_per_source),
        debug: plain,
        reload: restart,
    }
    /// Accounts auto-created per source per minute.
    autocreate_per_source: u32 {
        flag: "autocreate-per-source", env: "AUTOCREATE_PER_SOURCE_PER_MIN", hint: "N",
        form: value, rule: UInt { min: 0, max: 100000 }, default: Some("5"),
        help: "accounts auto-created per address (IPv6: /64) per minute (embedded auth)",
        summary: embedded("autocreate_per_source", |c| c.autocreate_per_source),
        debug: plain,
        reload: restart,
    }
    /// Accounts auto-created per minute in total.
    autocreate_per_min: u32 {
        flag: "autocreate-per-min", env: "AUTOCREATE_PER_MIN", hint: "N",
        form: value, rule: UInt { min: 0, max: 1000000 }, default: Some("100"),
        help: "accounts auto-created per minute in total (embedded auth)",
        summary: embedded("autocreate_per_min", |c| c.autocreate_per_min),
        debug: plain,
        reload: restart,
    }
    /// Lifetime of an unrefreshed session.
    session_ttl: Duration {
        flag: "session-ttl", env: "SESSION_TTL_SECS", hint: "SECS",
        form: value,
        rule: Secs { min: Duration::from_secs(1), max: Duration::from_secs(86400) },
        default: Some("600"),
        help: "lifetime of an unrefreshed session (embedded auth)",
        summary: embedded("session_ttl", |c| seconds(c.session_ttl)),
        debug: plain,
        reload: restart,
    }
    /// Character slots per account.
    max_chars_per_account: usize {
        flag: "max-chars", env: "MAX_CHARS_PER_ACCOUNT", hint: "N",
        form: value, rule: UInt { min: 1, max: 32 }, default: Some("5"),
        help: "character slots per account (embedded character)",
        summary: embedded("max_chars", |c| c.max_chars_per_account),
        debug: plain,
        reload: restart,
    }
    /// Where the embedded backend keeps accounts and characters (and, with
    /// PostgreSQL, sessions): `memory`, `sqlite:PATH` (relative to the
    /// working directory, created on first start) or `postgres://…`. The
    /// password of a URL is masked in `Debug`, the summary and errors.
    database: DatabaseUrl {
        flag: "database", env: "DATABASE_URL", hint: "URL",
        form: value, rule: Database, default: Some("sqlite:data/packet-service.db"),
        help: "embedded backend's database: memory, sqlite:PATH or postgres://…",
        summary: embedded("database", |c| &c.database),
        debug: plain,
        reload: restart,
    }
    /// How often the world saves the characters in play that moved (they
    /// are also saved when they leave).
    save_interval: Duration {
        flag: "save-interval", env: "SAVE_INTERVAL_SECS", hint: "SECS",
        form: value,
        rule: Secs { min: Duration::from_secs(1), max: Duration::from_secs(3600) },
        default: Some("60"),
        help: "how often characters in play are saved (embedded world)",
        summary: embedded("save_interval", |c| seconds(c.save_interval)),
        debug: plain,
        reload: restart,
    }
    /// Side of a cell of the embedded world's grid, in map units
    /// (centimetres): players are placed in the cell of their position.
    world_cell_size: u32 {
        flag: "world-cell-size", env: "WORLD_CELL_SIZE", hint: "UNITS",
        form: value, rule: UInt { min: 100, max: 1_000_000 }, default: Some("1000"),
        help: "side of a world grid cell, in map units (embedded world)",
        summary: embedded("world_cell_size", |c| c.world_cell_size),
        debug: plain,
        reload: restart,
    }
    /// How many cells away, in x and in y, a player of the embedded world
    /// still sees another (spawns, movement, normal chat).
    world_view_cells: u32 {
        flag: "world-view-cells", env: "WORLD_VIEW_CELLS", hint: "N",
        form: value, rule: UInt { min: 1, max: 64 }, default: Some("10"),
        help: "view radius in world grid cells (embedded world)",
        summary: embedded("world_view_cells", |c| c.world_view_cells),
        debug: plain,
        reload: restart,
    }
    /// Server name shown in the server list, without NUL.
    server_name: String {
        flag: "server-name", env: "SERVER_NAME", hint: "NAME",
        form: value, rule: Name { max_bytes: 32 }, default: Some("packet-service"),
        help: "name shown in the server list",
        summary: always("server_name", |c| format!("{:?}", c.server_name)),
        debug: plain,
        reload: restart,
    }
}
