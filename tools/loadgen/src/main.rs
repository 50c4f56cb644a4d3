//! `loadgen`: runs one scenario against a gateway (or Redis) on loopback,
//! prints a table, and merges the result into a JSON results file; or
//! prints the benchmark summary of such a file and draws its latency chart.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod options;

use options::{
    addr, codec, dialect, metrics_addr, num, options, positive, sat_opts, secs, server_pid,
    server_pids, USAGE,
};

use getopts::Matches;
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
use loadgen::soak::{self, SoakOpts};
use loadgen::stats::listen_overflows;
use loadgen::storm::{self, StormOpts};
use loadgen::verdict::{limits_hit, nothing_measured};
use loadgen::walk::{self, WalkOpts};

/// The soak scenario: its own JSON document (samples and verdict) and an
/// exit status that says whether the server stayed flat.
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
