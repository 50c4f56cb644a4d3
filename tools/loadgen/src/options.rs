//! The command line of `loadgen`: its usage text, its options, and the
//! readers that turn them into each scenario's settings (every number
//! parsed and bounded, every target a loopback address).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use getopts::{Matches, Options};
use loadgen::saturate::SatOpts;
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

pub(crate) const USAGE: &str = "\
Usage: loadgen SCENARIO [options]
       loadgen report RESULTS.json [--svg OUT.svg]

Scenarios (every target must be a loopback address; each run is bounded):
  echo       N connections x pipeline depth P of STRESS round trips (plain
             codec; SCREEN_SHOT_TIME in the rose codec), closed loop
  redis      the same loop speaking inline PING to Redis (the baseline)
  login      B bots: login, server select, join, character list
  idle       N connections held after one round trip; server RSS per connection
  fanout     M bots on one map, K of them chatting, the offered deliveries/s
             stepped up until p99 passes --max-p99-ms or deliveries fall behind
  pubsub     the same steps on Redis: M SUBSCRIBE clients, K PUBLISH clients
  isolation  echo p99 alone vs with C logins in flight on a 50 ms mock backend
  walk       M bots moving R times/s: all in one cell, then walking across a
             map of side S; deliveries/s, server CPU per delivery, in view
  storm      B players with existing accounts log in at once, to the map
             (--prepare first creates them; restart the gateway between)
  soak       N connections held for minutes with mixed traffic (idle ALIVE,
             echo, login churn, chat on one map): RSS, fds, buffer pool over
             time and a verdict, flat or not (exit status 1 if not)
  report     summary of a results file: figures, baselines, ratios, targets";

pub(crate) fn options() -> Options {
    let mut o = Options::new();
    o.optflag("h", "help", "this help");
    o.optflag("V", "version", "print the version");
    o.optopt(
        "a",
        "addr",
        "target (default 127.0.0.1:29000; redis: 127.0.0.1:6379)",
        "HOST:PORT",
    );
    o.optopt(
        "",
        "server-pid",
        "server process: CPU (/proc/PID/stat) and RSS (/proc/PID/status); \
         echo: several, comma-separated, are summed (gateways sharing a port)",
        "PID[,PID..]",
    );
    o.optopt(
        "",
        "json",
        "merge the result into this results file",
        "PATH",
    );
    o.optflag("q", "quiet", "no progress line on stderr");
    o.optopt(
        "",
        "codec",
        "gateway codec: plain (default) or rose",
        "CODEC",
    );
    o.optopt(
        "",
        "packet-ids",
        "gateway packet ids: osirose (default), osirose-2021 or irose (bots of the irose client)",
        "IDS",
    );
    o.optopt(
        "c",
        "connections",
        "echo/redis: N (50); idle: N (15000)",
        "N",
    );
    o.optopt(
        "P",
        "pipeline",
        "echo/redis: requests in flight per connection (1)",
        "P",
    );
    o.optopt(
        "d",
        "duration",
        "measured seconds (echo 10, login max 30, fanout/pubsub 3 per step, isolation 10 per phase)",
        "SECS",
    );
    o.optopt(
        "",
        "warmup",
        "echo/redis: unmeasured seconds first (1)",
        "SECS",
    );
    o.optopt(
        "b",
        "bots",
        "login: B (20000); fanout, walk: M (1000); storm: players (10000)",
        "N",
    );
    o.optopt(
        "",
        "run-id",
        "login/storm: id of the run in the results file (e.g. login-sqlite, storm-sqlite)",
        "ID",
    );
    o.optopt(
        "",
        "concurrency",
        "login/fanout: flows in flight at once (200)",
        "C",
    );
    o.optopt(
        "",
        "flow-timeout",
        "login: seconds allowed for one flow (10; storm 30)",
        "SECS",
    );
    o.optopt("", "target", "idle: gateway (default) or redis", "WHAT");
    o.optopt(
        "",
        "connect-window",
        "idle: connects in progress at once (256)",
        "N",
    );
    o.optopt(
        "",
        "hold",
        "idle: seconds to hold the connections before reading RSS (2)",
        "SECS",
    );
    o.optopt(
        "",
        "setup-timeout",
        "idle/fanout: seconds allowed to connect or join (60)",
        "SECS",
    );
    o.optopt(
        "k",
        "chatters",
        "fanout: K chatters; pubsub: K publishers (50)",
        "K",
    );
    o.optopt(
        "",
        "start-rate",
        "fanout/pubsub: first step's deliveries/s (150000)",
        "N",
    );
    o.optopt(
        "",
        "step-factor",
        "fanout/pubsub: growth per step (1.3)",
        "X",
    );
    o.optopt(
        "",
        "steps",
        "fanout/pubsub: rates stepped through at most, each tried twice if missed (14)",
        "N",
    );
    o.optopt(
        "",
        "refine",
        "fanout/pubsub: steps between the last sustained and the first failed rate (2, at most 8)",
        "N",
    );
    o.optopt(
        "",
        "max-p99-ms",
        "fanout/pubsub: delivery p99 bound of a step (50)",
        "MS",
    );
    o.optopt(
        "r",
        "rate",
        "fanout: messages per second per chatter (10); walk: moves per second per bot (1)",
        "R",
    );
    o.optopt(
        "",
        "map-size",
        "walk: side of the walked square, map units (150000)",
        "S",
    );
    o.optopt("", "step", "walk: length of one step, map units (300)", "D");
    o.optopt(
        "",
        "gateway-bin",
        "isolation: gateway binary to start (default: in-process)",
        "PATH",
    );
    o.optmulti(
        "",
        "gateway-arg",
        "isolation: extra argument for the gateway binary (repeatable)",
        "ARG",
    );
    o.optopt(
        "",
        "backend-latency-ms",
        "isolation: mock backend latency per call (50)",
        "MS",
    );
    o.optopt(
        "",
        "echo-connections",
        "isolation: echo connections (10)",
        "N",
    );
    o.optopt(
        "",
        "echo-rate",
        "isolation: echo requests per second, all connections (2000)",
        "N",
    );
    o.optopt(
        "",
        "logins-in-flight",
        "isolation: login flows kept in flight (200)",
        "C",
    );
    o.optopt("", "svg", "report: write the latency chart here", "PATH");
    o.optopt(
        "",
        "prefix",
        "storm: username prefix of --prepare and the storm",
        "TEXT",
    );
    o.optflag("", "prepare", "storm: create the players first, unmeasured");
    o.optopt(
        "",
        "metrics-addr",
        "the gateway's metrics endpoint (loopback): soak samples it; other \
         scenarios fail when the gateway's limits closed or refused clients",
        "HOST:PORT",
    );
    o.optopt("", "interval", "soak: seconds between samples (10)", "SECS");
    o.optopt(
        "",
        "quiesce",
        "soak: quiet seconds before the last sample (3)",
        "SECS",
    );
    o.optopt(
        "",
        "alive-interval",
        "soak: seconds between ALIVEs of a held connection (10)",
        "SECS",
    );
    o.optopt("", "map-bots", "soak: bots on the map (200)", "N");
    o.optopt(
        "",
        "churn-rate",
        "soak: login flows started per second (20)",
        "R",
    );
    o.optopt(
        "",
        "churn-slots",
        "soak: login flows in flight at most, one account each (20)",
        "N",
    );
    o.optopt(
        "",
        "rss-tolerance-pct",
        "soak: RSS growth tolerated, percent (5)",
        "PCT",
    );
    o.optopt(
        "",
        "rss-tolerance-mib",
        "soak: RSS growth tolerated, MiB; the larger applies (4)",
        "MIB",
    );
    o.optopt(
        "",
        "pool-tolerance",
        "soak: buffers still lent out when quiet that are tolerated (16)",
        "N",
    );
    o
}

pub(crate) fn num<T: std::str::FromStr>(m: &Matches, name: &str, default: T) -> Result<T, String> {
    match m.opt_str(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name}: cannot parse {v:?}")),
    }
}

pub(crate) fn secs(m: &Matches, name: &str, default: f64) -> Result<Duration, String> {
    let v: f64 = num(m, name, default)?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("--{name}: {v} is outside 0..=3600 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

pub(crate) fn positive(
    m: &Matches,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    let v: usize = num(m, name, default)?;
    if v == 0 || v > max {
        return Err(format!("--{name}: {v} is outside 1..={max}"));
    }
    Ok(v)
}

pub(crate) fn addr(m: &Matches, default: &str) -> Result<SocketAddr, String> {
    let text = m.opt_str("addr").unwrap_or_else(|| default.to_owned());
    let addr = text
        .to_socket_addrs()
        .map_err(|e| format!("--addr {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {text}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--addr {addr}: only loopback targets are allowed (127.0.0.0/8, ::1)"
        ));
    }
    Ok(addr)
}

pub(crate) fn codec(m: &Matches) -> Result<CodecKind, String> {
    let name = m.opt_str("codec").unwrap_or_else(|| "plain".into());
    CodecKind::from_name(&name).ok_or_else(|| format!("--codec: unknown codec {name:?}"))
}

pub(crate) fn dialect(m: &Matches) -> Result<DialectId, String> {
    let name = m.opt_str("packet-ids").unwrap_or_else(|| "osirose".into());
    DialectId::from_name(&name).ok_or_else(|| format!("--packet-ids: unknown numbering {name:?}"))
}

/// Every process of `--server-pid` (echo sums them).
pub(crate) fn server_pids(m: &Matches) -> Result<Vec<u32>, String> {
    match m.opt_str("server-pid") {
        None => Ok(Vec::new()),
        Some(v) => v
            .split(',')
            .map(|pid| {
                pid.trim()
                    .parse()
                    .map_err(|_| format!("--server-pid: {v:?}"))
            })
            .collect(),
    }
}

/// The one process of `--server-pid` of a scenario that measures one.
pub(crate) fn server_pid(m: &Matches) -> Result<Option<u32>, String> {
    match server_pids(m)?.as_slice() {
        [] => Ok(None),
        [pid] => Ok(Some(*pid)),
        _ => Err("--server-pid: only echo measures several processes".into()),
    }
}

/// The steps of the fanout and pubsub scenarios.
pub(crate) fn sat_opts(
    m: &Matches,
    server_pid: Option<u32>,
    progress: bool,
) -> Result<SatOpts, String> {
    Ok(SatOpts {
        start: num(m, "start-rate", 150_000.0)?,
        factor: num::<f64>(m, "step-factor", 1.3)?.max(1.01),
        max_steps: positive(m, "steps", 14, 100)?,
        refine: num(m, "refine", 2usize)?.min(8),
        step: secs(m, "duration", 3.0)?,
        max_p99: Duration::from_millis(num(m, "max-p99-ms", 50)?),
        server_pid,
        progress,
    })
}

/// `--metrics-addr`: the gateway's metrics endpoint, loopback only.
pub(crate) fn metrics_addr(m: &Matches) -> Result<Option<SocketAddr>, String> {
    let Some(text) = m.opt_str("metrics-addr") else {
        return Ok(None);
    };
    let a = text
        .to_socket_addrs()
        .map_err(|e| format!("--metrics-addr {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("--metrics-addr {text}: no address"))?;
    if !a.ip().is_loopback() {
        return Err(format!("--metrics-addr {a}: only loopback is allowed"));
    }
    Ok(Some(a))
}
