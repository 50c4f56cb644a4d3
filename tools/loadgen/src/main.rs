//! `loadgen`: runs one scenario against a gateway (or Redis) on loopback,
//! prints a table, and merges the result into a JSON results file; or
//! prints the benchmark summary of such a file and draws its latency chart.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use getopts::{Matches, Options};
use loadgen::echo::{self, EchoOpts, EchoProto};
use loadgen::fanout::{self, FanoutOpts};
use loadgen::idle::{self, IdleOpts, IdleTarget};
use loadgen::isolation::{self, IsolationOpts};
use loadgen::limits;
use loadgen::login::{self, LoginOpts};
use loadgen::net::raise_nofile_limit;
use loadgen::pubsub::{self, PubsubOpts};
use loadgen::report;
use loadgen::results::{ResultsFile, RunResult};
use loadgen::saturate::SatOpts;
use loadgen::soak::{self, SoakOpts};
use loadgen::stats::listen_overflows;
use loadgen::storm::{self, StormOpts};
use loadgen::verdict::{limits_hit, nothing_measured};
use loadgen::walk::{self, WalkOpts};
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

const USAGE: &str = "\
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

fn options() -> Options {
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
    o.optopt("", "steps", "fanout/pubsub: steps at most (14)", "N");
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

fn num<T: std::str::FromStr>(m: &Matches, name: &str, default: T) -> Result<T, String> {
    match m.opt_str(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name}: cannot parse {v:?}")),
    }
}

fn secs(m: &Matches, name: &str, default: f64) -> Result<Duration, String> {
    let v: f64 = num(m, name, default)?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("--{name}: {v} is outside 0..=3600 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn positive(m: &Matches, name: &str, default: usize, max: usize) -> Result<usize, String> {
    let v: usize = num(m, name, default)?;
    if v == 0 || v > max {
        return Err(format!("--{name}: {v} is outside 1..={max}"));
    }
    Ok(v)
}

fn addr(m: &Matches, default: &str) -> Result<SocketAddr, String> {
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

fn codec(m: &Matches) -> Result<CodecKind, String> {
    let name = m.opt_str("codec").unwrap_or_else(|| "plain".into());
    CodecKind::from_name(&name).ok_or_else(|| format!("--codec: unknown codec {name:?}"))
}

fn dialect(m: &Matches) -> Result<DialectId, String> {
    let name = m.opt_str("packet-ids").unwrap_or_else(|| "osirose".into());
    DialectId::from_name(&name).ok_or_else(|| format!("--packet-ids: unknown numbering {name:?}"))
}

/// Every process of `--server-pid` (echo sums them).
fn server_pids(m: &Matches) -> Result<Vec<u32>, String> {
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
fn server_pid(m: &Matches) -> Result<Option<u32>, String> {
    match server_pids(m)?.as_slice() {
        [] => Ok(None),
        [pid] => Ok(Some(*pid)),
        _ => Err("--server-pid: only echo measures several processes".into()),
    }
}

/// The steps of the fanout and pubsub scenarios.
fn sat_opts(m: &Matches, server_pid: Option<u32>, progress: bool) -> Result<SatOpts, String> {
    Ok(SatOpts {
        start: num(m, "start-rate", 150_000.0)?,
        factor: num::<f64>(m, "step-factor", 1.3)?.max(1.01),
        max_steps: positive(m, "steps", 14, 100)?,
        step: secs(m, "duration", 3.0)?,
        max_p99: Duration::from_millis(num(m, "max-p99-ms", 50)?),
        server_pid,
        progress,
    })
}

/// The soak scenario: its own JSON document (samples and verdict) and an
/// exit status that says whether the server stayed flat.
fn metrics_addr(m: &Matches) -> Result<Option<SocketAddr>, String> {
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

fn run_soak(m: &Matches) -> Result<bool, String> {
    let metrics = metrics_addr(m)?;
    let interval = secs(m, "interval", 10.0)?.max(Duration::from_millis(500));
    let opts = SoakOpts {
        addr: addr(m, "127.0.0.1:29000")?,
        codec: codec(m)?,
        dialect: dialect(m)?,
        connections: positive(m, "connections", 15_000, 1_000_000)?,
        duration: secs(m, "duration", 300.0)?,
        interval,
        warmup: m
            .opt_str("warmup")
            .map_or(Ok(interval), |_| secs(m, "warmup", 10.0))?,
        quiesce: secs(m, "quiesce", 3.0)?,
        alive_interval: secs(m, "alive-interval", 10.0)?.max(Duration::from_millis(100)),
        echo_connections: positive(m, "echo-connections", 100, 10_000)?,
        echo_rate: num(m, "echo-rate", 1000.0)?,
        map_bots: positive(m, "map-bots", 200, 10_000)?,
        chatters: num(m, "chatters", 10)?,
        chat_rate: num(m, "rate", 1.0)?,
        churn_rate: num(m, "churn-rate", 20.0)?,
        churn_slots: num(m, "churn-slots", 20)?,
        connect_window: positive(m, "connect-window", 256, 10_000)?,
        setup_timeout: secs(m, "setup-timeout", 120.0)?,
        server_pid: server_pid(m)?,
        metrics,
        rss_tolerance_pct: num(m, "rss-tolerance-pct", 5.0)?,
        rss_tolerance_mib: num(m, "rss-tolerance-mib", 4.0)?,
        pool_tolerance: num(m, "pool-tolerance", 16)?,
        progress: !m.opt_present("quiet"),
    };
    let report = soak::run(&opts)?;
    report.print();
    if let Some(path) = m.opt_str("json") {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("{path}: {e}"))?;
        println!("samples: {path}");
    }
    if !report.verdict.flat {
        let failed: Vec<&str> = report
            .verdict
            .checks
            .iter()
            .filter(|c| c.ok == Some(false))
            .map(|c| c.name)
            .collect();
        eprintln!("loadgen soak: not flat: {} failed", failed.join(", "));
    }
    Ok(report.verdict.flat)
}

fn run_scenario(scenario: &str, m: &Matches) -> Result<Option<RunResult>, String> {
    let progress = !m.opt_present("quiet");
    let pid = match scenario {
        "echo" => None,
        _ => server_pid(m)?,
    };
    raise_nofile_limit();
    let overflows_before = listen_overflows();
    let metrics = metrics_addr(m)?;
    let limits_before = metrics.map(limits::read).transpose()?;
    let mut result = match scenario {
        "echo" | "redis" => {
            let proto = if scenario == "redis" {
                EchoProto::Redis
            } else {
                EchoProto::gateway(codec(m)?)
            };
            let default = if scenario == "redis" {
                "127.0.0.1:6379"
            } else {
                "127.0.0.1:29000"
            };
            echo::run(&EchoOpts {
                addr: addr(m, default)?,
                proto,
                connections: positive(m, "connections", 50, 15_000)?,
                pipeline: positive(m, "pipeline", 1, 1024)?,
                duration: secs(m, "duration", 10.0)?,
                warmup: secs(m, "warmup", 1.0)?,
                server_pids: server_pids(m)?,
                progress,
            })?
        }
        "login" => login::run(&LoginOpts {
            addr: addr(m, "127.0.0.1:29000")?,
            codec: codec(m)?,
            dialect: dialect(m)?,
            bots: positive(m, "bots", 20_000, 10_000_000)?,
            concurrency: positive(m, "concurrency", 200, 5_000)?,
            duration: secs(m, "duration", 30.0)?,
            flow_timeout: secs(m, "flow-timeout", 10.0)?,
            server_pid: pid,
            progress,
            run_id: m.opt_str("run-id").unwrap_or_else(|| "login".to_owned()),
        })?,
        "idle" => {
            let target = match m.opt_str("target").as_deref() {
                None | Some("gateway") => IdleTarget::Gateway(codec(m)?),
                Some("redis") => IdleTarget::Redis,
                Some(other) => return Err(format!("--target: {other:?} is not gateway or redis")),
            };
            let default = match target {
                IdleTarget::Redis => "127.0.0.1:6379",
                IdleTarget::Gateway(_) => "127.0.0.1:29000",
            };
            idle::run(&IdleOpts {
                addr: addr(m, default)?,
                target,
                connections: positive(m, "connections", 15_000, 1_000_000)?,
                connect_window: positive(m, "connect-window", 256, 10_000)?,
                hold: secs(m, "hold", 2.0)?,
                server_pid: pid,
                setup_timeout: secs(m, "setup-timeout", 60.0)?,
                progress,
            })?
        }
        "fanout" => fanout::run(&FanoutOpts {
            addr: addr(m, "127.0.0.1:29000")?,
            codec: codec(m)?,
            dialect: dialect(m)?,
            bots: positive(m, "bots", 1_000, 100_000)?,
            concurrency: positive(m, "concurrency", 200, 5_000)?,
            chatters: positive(m, "chatters", 50, 100_000)?,
            setup_timeout: secs(m, "setup-timeout", 60.0)?,
            sat: sat_opts(m, pid, progress)?,
        })?,
        "pubsub" => pubsub::run(&PubsubOpts {
            addr: addr(m, "127.0.0.1:6379")?,
            subscribers: positive(m, "bots", 1_000, 100_000)?,
            publishers: positive(m, "chatters", 50, 100_000)?,
            setup_timeout: secs(m, "setup-timeout", 60.0)?,
            sat: sat_opts(m, pid, progress)?,
        })?,
        "storm" => storm::run(&StormOpts {
            addr: addr(m, "127.0.0.1:29000")?,
            codec: codec(m)?,
            dialect: dialect(m)?,
            players: positive(m, "bots", 10_000, 1_000_000)?,
            prefix: m.opt_str("prefix").unwrap_or_else(|| "storm".into()),
            prepare: m.opt_present("prepare"),
            concurrency: positive(m, "concurrency", 200, 5_000)?,
            flow_timeout: secs(m, "flow-timeout", 30.0)?,
            server_pid: pid,
            run_id: m.opt_str("run-id").unwrap_or_else(|| "storm".to_owned()),
            progress,
        })?,
        "walk" => walk::run(&WalkOpts {
            addr: addr(m, "127.0.0.1:29000")?,
            codec: codec(m)?,
            dialect: dialect(m)?,
            bots: positive(m, "bots", 1_000, 100_000)?,
            concurrency: positive(m, "concurrency", 200, 5_000)?,
            rate: num(m, "rate", 1.0)?,
            map_size: num(m, "map-size", 150_000.0)?,
            step: num(m, "step", 300.0)?,
            duration: secs(m, "duration", 10.0)?,
            setup_timeout: secs(m, "setup-timeout", 60.0)?,
            server_pid: pid,
            progress,
        })?,
        "isolation" => isolation::run(&IsolationOpts {
            gateway_bin: m.opt_str("gateway-bin").map(PathBuf::from),
            gateway_args: m.opt_strs("gateway-arg"),
            backend_latency: Duration::from_millis(num(m, "backend-latency-ms", 50)?),
            echo_connections: positive(m, "echo-connections", 10, 1_000)?,
            echo_rate: num(m, "echo-rate", 2000.0)?,
            logins_in_flight: positive(m, "logins-in-flight", 200, 5_000)?,
            duration: secs(m, "duration", 10.0)?,
            progress,
        })?,
        "report" => {
            let Some(path) = m.free.get(1) else {
                return Err("report: which results file?".into());
            };
            let file = ResultsFile::load(std::path::Path::new(path))?;
            print!("{}", report::table(&file));
            if let Some(out) = m.opt_str("svg") {
                std::fs::write(&out, report::svg(&file)).map_err(|e| format!("{out}: {e}"))?;
                println!("latency chart: {out}");
            }
            return Ok(None);
        }
        other => return Err(format!("unknown scenario {other:?}\n\n{USAGE}")),
    };
    // Connects the kernel dropped at a full listen queue during the run
    // (system-wide: other listeners on the machine count too).
    if let (Some(a), Some(b)) = (overflows_before, listen_overflows()) {
        result.figure("kernel_listen_overflows", b.saturating_sub(a) as f64);
    }
    if let (Some(addr), Some(before)) = (metrics, limits_before) {
        for (key, n) in limits::grown(&before, &limits::read(addr)?) {
            if key == limits::WORLD_DROPPED {
                result.figure(&key, n as f64);
            } else {
                *result.failures.entry(key).or_default() += n;
            }
        }
    }
    Ok(Some(result))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = options();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("loadgen: {e}\n{}", opts.usage(USAGE));
            return ExitCode::from(2);
        }
    };
    if m.opt_present("version") {
        println!("loadgen {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(scenario) = m.free.first().cloned() else {
        print!("{}", opts.usage(USAGE));
        return if m.opt_present("help") {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    };
    if m.opt_present("help") {
        print!("{}", opts.usage(USAGE));
        return ExitCode::SUCCESS;
    }
    if scenario == "soak" {
        return match run_soak(&m) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("loadgen soak: {e}");
                ExitCode::from(2)
            }
        };
    }
    match run_scenario(&scenario, &m) {
        Ok(Some(result)) => {
            result.print();
            if let Some(why) = nothing_measured(&result).or_else(|| limits_hit(&result)) {
                eprintln!("loadgen {scenario}: {why}");
                return ExitCode::FAILURE;
            }
            if let Some(path) = m.opt_str("json") {
                if let Err(e) = ResultsFile::merge_into(std::path::Path::new(&path), &result) {
                    eprintln!("loadgen: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen {scenario}: {e}");
            ExitCode::FAILURE
        }
    }
}
