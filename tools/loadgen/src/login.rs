//! The login scenario: B bots, at most C in flight at once (closed loop:
//! a new bot starts when one finishes), each doing login → server select →
//! join → character list with a username of its own (accounts are created
//! by the gateway's `--auto-create-accounts`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

use crate::bots::{run_prefix, BotOpts, Bots, Goal};
use crate::net::{Net, NetEvent};
use crate::results::RunResult;
use crate::stats::{si, ProcSample, Progress};

/// Options of the login scenario.
#[derive(Clone, Debug)]
pub struct LoginOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// B: bots in all.
    pub bots: usize,
    /// C: bots in flight at once.
    pub concurrency: usize,
    /// Stop starting bots after this long (the ones started still finish).
    pub duration: Duration,
    /// One flow's time limit.
    pub flow_timeout: Duration,
    /// Process whose CPU time is measured.
    pub server_pid: Option<u32>,
    /// Progress line on stderr.
    pub progress: bool,
    /// Id of the run in the results file: `login`, or e.g. `login-sqlite`
    /// for the same scenario against another database engine.
    pub run_id: String,
}

/// Runs the login scenario.
pub fn run(opts: &LoginOpts) -> Result<RunResult, String> {
    let mut result = RunResult::new(&opts.run_id, "login", "packet-service");
    result.param("bots", opts.bots);
    result.param("concurrency", opts.concurrency);
    result.param("max_duration_s", opts.duration.as_secs_f64());
    result.param("codec", opts.codec.name());
    let mut net = Net::new(opts.concurrency * 2).map_err(|e| format!("poll: {e}"))?;
    let mut bots = Bots::new(BotOpts {
        addr: opts.addr,
        codec: opts.codec,
        dialect: opts.dialect,
        goal: Goal::CharList,
        prefix: run_prefix('l'),
        flow_timeout: opts.flow_timeout,
    });
    let mut progress = Progress::new("login", opts.progress);
    let mut events = Vec::new();
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let start = Instant::now();
    let stop_starting = start + opts.duration;
    let hard_stop = stop_starting + opts.flow_timeout + Duration::from_secs(1);
    let mut next_timeout_check = start;
    let mut last = (start, 0u64);
    loop {
        let now = Instant::now();
        if now < stop_starting {
            while (bots.started() as usize) < opts.bots
                && (bots.in_flight() as usize) < opts.concurrency
            {
                bots.spawn(&mut net, now);
            }
        }
        let starting_done = bots.started() as usize >= opts.bots || now >= stop_starting;
        if starting_done && bots.in_flight() == 0 {
            break;
        }
        if now >= hard_stop {
            bots.check_timeouts(&mut net, now + opts.flow_timeout);
            break;
        }
        if now >= next_timeout_check {
            bots.check_timeouts(&mut net, now);
            next_timeout_check = now + Duration::from_millis(100);
        }
        net.flush(&mut events);
        net.poll(Some(Duration::from_millis(10)), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.drain(..) {
            dispatch(&mut net, &mut bots, ev);
        }
        progress.tick(Instant::now(), || {
            let now = Instant::now();
            let rate = (bots.completed - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, bots.completed);
            format!(
                "{}/{} done  {}/s  in flight {}  failed {}",
                bots.completed,
                opts.bots,
                si(rate),
                bots.in_flight(),
                bots.failed
            )
        });
    }
    let elapsed = start.elapsed();
    progress.finish();
    let server_after = opts.server_pid.and_then(ProcSample::read);
    bots.close_all(&mut net);
    // Let the closes go out before the next scenario.
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);

    result.figure(
        "logins_per_sec",
        bots.completed as f64 / elapsed.as_secs_f64(),
    );
    result.figure("started", bots.started() as f64);
    result.figure("completed", bots.completed as f64);
    result.figure("failed", bots.failed as f64);
    result.figure("elapsed_s", elapsed.as_secs_f64());
    if let (Some(b), Some(a)) = (server_before, server_after) {
        let cpu = a.since(&b).0;
        result.figure(
            "server_cpu_ms_per_login",
            cpu * 1e3 / bots.completed.max(1) as f64,
        );
        result.figure("server_cpu_util", cpu / elapsed.as_secs_f64());
    }
    result.latency.insert("flow".into(), bots.flow.summary());
    result.failures = bots.failures.clone();
    Ok(result)
}

/// Hands a bot event to the fleet (every connection here is a bot's).
fn dispatch(net: &mut Net, bots: &mut Bots, ev: NetEvent) {
    bots.on_event(net, ev, Instant::now());
}
