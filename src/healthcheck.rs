//! The `healthcheck` subcommand: one HTTP/1.0 `GET` of a running gateway's
//! `/healthz`, for a container `HEALTHCHECK` that needs no curl in the image.
//!
//! `packet-service healthcheck [--url URL] [--timeout SECS]` exits 0 when
//! the answer is `200` with the body `ok`, and 1 otherwise (refused, timed
//! out, 503 while starting, stopping or stalled, anything else), with the
//! reason on stderr; a bad command line exits 2. Without `--url` it asks
//! the endpoint the same settings describe: `METRICS_ADDR` (loopback when
//! it is unspecified) and `PACKET_METRICS_PORT`, so a container probes the
//! port its gateway was given.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::{Command, Config, ConfigError};

/// The subcommand's name on the command line.
pub const SUBCOMMAND: &str = "healthcheck";

/// How long the whole check may take unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The most of an answer that is read: `/healthz` says a few words.
const MAX_ANSWER: u64 = 16 * 1024;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Host (name or address) and port to connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Request path, starting with `/`.
    pub path: String,
    /// Connecting, sending and reading together may take this long.
    pub timeout: Duration,
    /// The settings turn the endpoint off (`METRICS_ENABLED=false`) and no
    /// `--url` was given: nothing answers.
    pub disabled: bool,
}

/// Why the gateway is not healthy (or could not be asked).
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// The endpoint is off in the settings.
    #[error("the metrics endpoint is disabled (METRICS_ENABLED=false or --no-metrics): nothing serves /healthz")]
    Disabled,
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Connecting, sending or reading failed.
    #[error("{what} {addr}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The whole check took longer than its timeout.
    #[error("no answer from {0} within the timeout")]
    Timeout(SocketAddr),
    /// The answer was not HTTP.
    #[error("not an HTTP answer: {0:?}")]
    Malformed(String),
    /// An answer other than `200 ok`.
    #[error("status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, trimmed.
        body: String,
    },
}

impl Probe {
    /// Parses the subcommand's arguments (after `healthcheck`); the default
    /// URL comes from the settings in `env`. `--help` gives the usage.
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let mut opts = getopts::Options::new();
        opts.optflag("h", "help", "print this help and exit");
        opts.optopt(
            "",
            "url",
            "the /healthz to ask [default: from METRICS_ADDR and PACKET_METRICS_PORT]",
            "http://HOST:PORT/healthz",
        );
        opts.optopt(
            "",
            "timeout",
            &format!(
                "seconds for the whole check [default: {}]",
                DEFAULT_TIMEOUT.as_secs()
            ),
            "SECS",
        );
        let usage = || {
            opts.usage(
                "Usage: packet-service healthcheck [--url URL] [--timeout SECS]\n\n\
                 Exits 0 when the gateway's /healthz answers 200 ok, else 1.",
            )
        };
        let m = opts
            .parse(args)
            .map_err(|e| ConfigError::Usage(format!("healthcheck: {e}")))?;
        if m.opt_present("help") {
            return Ok(Command::Help(usage()));
        }
        if let Some(free) = m.free.first() {
            return Err(ConfigError::UnexpectedArgument(free.clone()));
        }
        let timeout = match m.opt_str("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(raw) => parse_timeout(&raw).ok_or_else(|| {
                ConfigError::Usage(format!(
                    "healthcheck: --timeout {raw:?}: expected seconds in 0.1..=60"
                ))
            })?,
        };
        let probe = match m.opt_str("url") {
            Some(url) => {
                let (host, port, path) = parse_url(&url).ok_or_else(|| {
                    ConfigError::Usage(format!(
                        "healthcheck: --url {url:?}: expected http://HOST:PORT/PATH"
                    ))
                })?;
                Probe {
                    host,
                    port,
                    path,
                    timeout,
                    disabled: false,
                }
            }
            None => Probe::of_settings(env, timeout)?,
        };
        Ok(Command::Healthcheck(probe))
    }

    /// The `/healthz` of the endpoint the settings in `env` describe.
    fn of_settings(
        env: &dyn Fn(&str) -> Option<String>,
        timeout: Duration,
    ) -> Result<Probe, ConfigError> {
        let config = match Config::parse(&[], env)? {
            Command::Run(config) => config,
            _ => Config::defaults(),
        };
        let ip = match config.metrics_addr {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Probe {
            host: ip.to_string(),
            port: config.metrics_port,
            path: "/healthz".to_owned(),
            timeout,
            disabled: !config.metrics_enabled,
        })
    }

    /// Asks once: `Ok` when the answer is `200 ok`.
    pub fn check(&self) -> Result<(), Unhealthy> {
        if self.disabled {
            return Err(Unhealthy::Disabled);
        }
        let deadline = Instant::now() + self.timeout;
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Unhealthy::Resolve(format!("{}:{}", self.host, self.port)))?;
        // What is left of the timeout; none left is a timeout.
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(Unhealthy::Timeout(addr))
        };
        let io = |what: &'static str| move |source| Unhealthy::Io { what, addr, source };
        let mut stream =
            TcpStream::connect_timeout(&addr, left()?).map_err(io("cannot connect to"))?;
        stream
            .set_write_timeout(Some(left()?))
            .map_err(io("cannot send to"))?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: packet-service-healthcheck\r\n\r\n",
            self.path, self.host, self.port
        );
        stream
            .write_all(request.as_bytes())
            .map_err(io("cannot send to"))?;
        let mut answer = Vec::new();
        let mut limited = (&stream).take(MAX_ANSWER);
        let mut chunk = [0u8; 1024];
        loop {
            stream
                .set_read_timeout(Some(left()?))
                .map_err(io("cannot read from"))?;
            match limited.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Unhealthy::Timeout(addr))
                }
                Err(e) => return Err(io("cannot read from")(e)),
            }
        }
        verdict(&String::from_utf8_lossy(&answer))
    }
}

/// Whether an HTTP answer says `200` with the body `ok`.
fn verdict(answer: &str) -> Result<(), Unhealthy> {
    let status = answer
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Unhealthy::Malformed(answer.chars().take(80).collect()))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
    match (status, body) {
        (200, "ok") => Ok(()),
        _ => Err(Unhealthy::Status {
            status,
            body: body.chars().take(200).collect(),
        }),
    }
}

/// `http://HOST:PORT[/PATH]` (IPv6 hosts in brackets) as host, port and
/// path (`/healthz` when none is given).
fn parse_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/healthz"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    let bracketed = host.starts_with('[') == host.ends_with(']');
    let bad = |c: char| c.is_whitespace() || c.is_control();
    if host.is_empty() || !bracketed || url.chars().any(bad) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((host.to_owned(), port, path.to_owned()))
}

/// Seconds, decimals allowed, in 0.1..=60.
fn parse_timeout(raw: &str) -> Option<Duration> {
    let secs: f64 = raw.parse().ok()?;
    (0.1..=60.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn probe(list: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Probe {
        match Probe::parse(&args(list), env) {
            Ok(Command::Healthcheck(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_default_url_follows_the_metrics_settings() {
        let p = probe(&[], &|_| None);
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("127.0.0.1", 9102, "/healthz")
        );
        assert_eq!((p.timeout, p.disabled), (DEFAULT_TIMEOUT, false));
        let env = |name: &str| match name {
            "METRICS_ADDR" => Some("::".to_owned()),
            "PACKET_METRICS_PORT" => Some("9200".to_owned()),
            _ => None,
        };
        let p = probe(&["--timeout", "0.5"], &env);
        assert_eq!((p.host.as_str(), p.port), ("::1", 9200));
        assert_eq!(p.timeout, Duration::from_millis(500));
        let off = |name: &str| (name == "METRICS_ENABLED").then(|| "false".to_owned());
        assert!(probe(&[], &off).disabled);
        assert!(matches!(probe(&[], &off).check(), Err(Unhealthy::Disabled)));
    }

    #[test]
    fn urls_and_timeouts_are_checked() {
        let p = probe(&["--url", "http://10.1.2.3:9300/healthz"], &|_| None);
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("10.1.2.3", 9300, "/healthz")
        );
        let p = probe(&["--url", "http://[::1]:9102"], &|_| None);
        assert_eq!((p.host.as_str(), p.path.as_str()), ("[::1]", "/healthz"));
        for bad in [
            &["--url", "https://127.0.0.1:9102/healthz"][..],
            &["--url", "http://127.0.0.1/healthz"],
            &["--url", "http://127.0.0.1:0/healthz"],
            &["--url", "http://:9102/"],
            &["--timeout", "0"],
            &["--timeout", "soon"],
            &["--port", "1"],
            &["extra"],
        ] {
            assert!(Probe::parse(&args(bad), &|_| None).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Probe::parse(&args(&["--help"]), &|_| None),
            Ok(Command::Help(text)) if text.contains("healthcheck [--url URL]")
        ));
    }

    #[test]
    fn only_200_ok_is_healthy() {
        assert!(verdict("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n").is_ok());
        assert!(matches!(
            verdict("HTTP/1.1 503 Service Unavailable\r\n\r\nstopping\n"),
            Err(Unhealthy::Status { status: 503, body }) if body == "stopping"
        ));
        assert!(matches!(
            verdict("HTTP/1.0 200 OK\r\n\r\nnot ok"),
            Err(Unhealthy::Status { status: 200, .. })
        ));
        assert!(matches!(
            verdict("SSH-2.0-OpenSSH"),
            Err(Unhealthy::Malformed(_))
        ));
        assert!(matches!(verdict(""), Err(Unhealthy::Malformed(_))));
    }
}
