//! The isolation scenario: does a slow backend leak into the latency of
//! traffic the gateway answers itself?
//!
//! A [`MockBackend`] with 50 ms per call is started here and a gateway is
//! pointed at it. Open-loop STRESS echo on a few connections is measured
//! twice: alone, then while C login flows (default 200) are kept in flight
//! against the slow backend. The figure is the ratio of the two p99s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

use crate::bots::{run_prefix, BotOpts, Bots, Goal, TAG_BOT};
use crate::echo::{EchoLoad, EchoProto, Pacing, TAG_ECHO};
use crate::gateway::{BackendUrls, Gateway};
use crate::mock::MockBackend;
use crate::net::{Net, NetEvent};
use crate::results::RunResult;
use crate::stats::{si, Latency, Progress, SchedStat};

/// Options of the isolation scenario.
#[derive(Clone, Debug)]
pub struct IsolationOpts {
    /// The gateway binary; `None` runs the library on a thread.
    pub gateway_bin: Option<PathBuf>,
    /// Extra arguments for the gateway binary.
    pub gateway_args: Vec<String>,
    /// Latency of every backend call.
    pub backend_latency: Duration,
    /// Echo connections.
    pub echo_connections: usize,
    /// Echo requests per second, all connections together.
    pub echo_rate: f64,
    /// Login flows kept in flight during the loaded phase.
    pub logins_in_flight: usize,
    /// Length of each phase.
    pub duration: Duration,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Runs the isolation scenario.
pub fn run(opts: &IsolationOpts) -> Result<RunResult, String> {
    let mut result = RunResult::new("isolation", "isolation", "packet-service");
    result.param(
        "backend_latency_ms",
        opts.backend_latency.as_millis() as u64,
    );
    result.param("echo_connections", opts.echo_connections);
    result.param("echo_rate", opts.echo_rate);
    result.param("logins_in_flight", opts.logins_in_flight);
    result.param("phase_s", opts.duration.as_secs_f64());
    let backend =
        MockBackend::start(opts.backend_latency).map_err(|e| format!("mock backend: {e}"))?;
    let urls = BackendUrls { url: backend.url() };
    let gateway = match &opts.gateway_bin {
        Some(bin) => Gateway::spawn_process(bin, &urls, &opts.gateway_args)?,
        None => Gateway::spawn_in_process(&urls)?,
    };
    if !opts.gateway_args.is_empty() {
        result.param("gateway_args", opts.gateway_args.join(" "));
    }
    result.param(
        "gateway",
        if opts.gateway_bin.is_some() {
            "process"
        } else {
            "in-process"
        },
    );
    let addr = gateway.addr();
    let conns = opts.echo_connections.max(1);
    let interval = Duration::from_secs_f64(conns as f64 / opts.echo_rate.max(1.0));
    let mut net = Net::new(conns + opts.logins_in_flight * 2).map_err(|e| format!("poll: {e}"))?;
    let mut echo = EchoLoad::new(
        EchoProto::gateway(CodecKind::Plain),
        Pacing::Open { interval },
        conns,
    )
    .map_err(|e| e.to_string())?;
    let mut bots = Bots::new(BotOpts {
        addr,
        codec: CodecKind::Plain,
        dialect: DialectId::Osirose,
        goal: Goal::CharList,
        prefix: run_prefix('i'),
        flow_timeout: Duration::from_secs(10),
    });
    let mut events = Vec::new();
    let mut progress = Progress::new("isolation", opts.progress);
    echo.connect_all(&mut net, addr);

    // One loop for every phase: `logins` says whether to keep bots in flight.
    // How long the client's own passes take (event handling between two
    // polls): if this stays small, echo delays are not the client's.
    let mut pass = Latency::new();
    let mut run_phase = |net: &mut Net,
                         echo: &mut EchoLoad,
                         bots: &mut Bots,
                         pass: &mut Latency,
                         until: Instant,
                         logins: usize,
                         label: &str,
                         record: bool|
     -> Result<(), String> {
        echo.set_recording(record);
        let mut next_check = Instant::now();
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            while (bots.in_flight() as usize) < logins {
                bots.spawn(net, now);
            }
            if now >= next_check {
                bots.check_timeouts(net, now);
                next_check = now + Duration::from_millis(100);
            }
            let next_due = echo.on_timer(net, now).unwrap_or(until);
            net.flush(&mut events);
            let wait = next_due
                .min(until)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(5));
            net.poll(Some(wait), &mut events)
                .map_err(|e| format!("poll: {e}"))?;
            let polled = Instant::now();
            for ev in events.drain(..) {
                let id = match ev {
                    NetEvent::Connected(id) | NetEvent::Input(id) | NetEvent::Closed(id, _) => id,
                };
                let tag = net.tag(id);
                if tag & TAG_BOT == TAG_BOT {
                    bots.on_event(net, ev, Instant::now());
                } else if tag & TAG_ECHO == TAG_ECHO {
                    echo.on_event(net, ev, Instant::now());
                }
            }
            if record {
                pass.record(polled.elapsed());
            }
            progress.tick(Instant::now(), || {
                format!(
                    "{label}: echo p99 {:.0} µs, logins done {} in flight {} failed {}",
                    echo.rtt.percentile_us(99.0),
                    si(bots.completed as f64),
                    bots.in_flight(),
                    bots.failed
                )
            });
        }
    };

    // Connect and warm up (1 s), unloaded phase, warm-up of the loaded
    // phase (1 s, the login pipeline fills), loaded phase.
    let warm = Duration::from_secs(1);
    let pid = match &gateway {
        Gateway::Process { .. } => Some(gateway.pid()),
        Gateway::InProcess(_) => None,
    };
    let sched = || pid.and_then(SchedStat::read_main_thread);
    run_phase(
        &mut net,
        &mut echo,
        &mut bots,
        &mut pass,
        Instant::now() + warm,
        0,
        "warmup",
        false,
    )?;
    if echo.open_count() == 0 {
        return Err(format!("no echo connection to the gateway at {addr}"));
    }
    let s0 = sched();
    run_phase(
        &mut net,
        &mut echo,
        &mut bots,
        &mut pass,
        Instant::now() + opts.duration,
        0,
        "unloaded",
        true,
    )?;
    let s1 = sched();
    let unloaded = std::mem::take(&mut echo.rtt);
    let unloaded_pass = std::mem::take(&mut pass);
    let unloaded_n = echo.recorded;
    let before_logins = bots.completed;
    run_phase(
        &mut net,
        &mut echo,
        &mut bots,
        &mut pass,
        Instant::now() + warm,
        opts.logins_in_flight,
        "fill",
        false,
    )?;
    let logins_start = (Instant::now(), bots.completed);
    let s2 = sched();
    run_phase(
        &mut net,
        &mut echo,
        &mut bots,
        &mut pass,
        Instant::now() + opts.duration,
        opts.logins_in_flight,
        "loaded",
        true,
    )?;
    let s3 = sched();
    let loaded = std::mem::take(&mut echo.rtt);
    let logins_done = bots.completed - logins_start.1;
    let logins_secs = logins_start.0.elapsed().as_secs_f64();
    // The reactor thread: share of the phase spent running, and spent
    // runnable but waiting for a CPU (other threads and processes).
    let secs = opts.duration.as_secs_f64();
    for (name, a, b) in [("unloaded", s0, s1), ("loaded", s2, s3)] {
        if let (Some(a), Some(b)) = (a, b) {
            result.figure(
                &format!("reactor_cpu_util_{name}"),
                (b.run_ns - a.run_ns) as f64 / 1e9 / secs,
            );
            result.figure(
                &format!("reactor_runqueue_wait_ms_per_s_{name}"),
                (b.wait_ns - a.wait_ns) as f64 / 1e6 / secs,
            );
        }
    }
    result.figure(
        "client_pass_p99_us_unloaded",
        unloaded_pass.percentile_us(99.0),
    );
    result.figure("client_pass_p99_us_loaded", pass.percentile_us(99.0));
    progress.finish();
    echo.stop_sending();
    echo.close_all(&mut net);
    bots.close_all(&mut net);
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);

    let p99_unloaded = unloaded.percentile_us(99.0);
    let p99_loaded = loaded.percentile_us(99.0);
    result.figure("echo_p99_unloaded_us", p99_unloaded);
    result.figure("echo_p99_loaded_us", p99_loaded);
    result.figure("p99_ratio", p99_loaded / p99_unloaded.max(0.001));
    result.figure("echo_samples_unloaded", unloaded_n as f64);
    result.figure("logins_per_sec_loaded", logins_done as f64 / logins_secs);
    result.figure("logins_completed", (bots.completed - before_logins) as f64);
    result.latency.insert("unloaded".into(), unloaded.summary());
    result.latency.insert("loaded".into(), loaded.summary());
    result.failures = bots.failures.clone();
    for (k, v) in &echo.failures {
        *result.failures.entry(format!("echo_{k}")).or_default() += v;
    }
    drop(gateway);
    drop(backend);
    Ok(result)
}
