//! The fanout scenario: M bots go all the way to the map (same map), then K
//! of them chat at R messages per second each (open loop: sends follow the
//! clock, not the replies). Every message carries its send time, so each
//! delivery to each bot on the map, the speaker included, yields one latency
//! sample. Deliveries per second is what the bots received in the window.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

use crate::bots::{run_prefix, BotOpts, Bots, Goal};
use crate::net::Net;
use crate::results::RunResult;
use crate::stats::{si, ProcSample, Progress};

/// Options of the fanout scenario.
#[derive(Clone, Debug)]
pub struct FanoutOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// M: bots on the map.
    pub bots: usize,
    /// Bots joining at once during setup.
    pub concurrency: usize,
    /// K: bots that chat.
    pub chatters: usize,
    /// R: messages per second per chatter.
    pub rate: f64,
    /// Measured time.
    pub duration: Duration,
    /// Time allowed for all bots to reach the map.
    pub setup_timeout: Duration,
    /// Process whose CPU time is measured.
    pub server_pid: Option<u32>,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Time given to deliveries still under way when the chat stops.
const DRAIN: Duration = Duration::from_secs(3);

/// Runs the fanout scenario.
pub fn run(opts: &FanoutOpts) -> Result<RunResult, String> {
    let mut result = RunResult::new("fanout", "fanout", "packet-service");
    result.param("bots", opts.bots);
    result.param("chatters", opts.chatters);
    result.param("rate_per_chatter", opts.rate);
    result.param("duration_s", opts.duration.as_secs_f64());
    result.param("codec", opts.codec.name());
    let mut net = Net::new(opts.bots * 3).map_err(|e| format!("poll: {e}"))?;
    let mut bots = Bots::new(BotOpts {
        addr: opts.addr,
        codec: opts.codec,
        dialect: opts.dialect,
        goal: Goal::Map,
        prefix: run_prefix('f'),
        flow_timeout: opts.setup_timeout,
    });
    let mut events = Vec::new();
    let mut pump = |net: &mut Net, bots: &mut Bots, timeout: Duration| -> Result<(), String> {
        net.flush(&mut events);
        net.poll(Some(timeout), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.drain(..) {
            bots.on_event(net, ev, Instant::now());
        }
        net.flush(&mut events);
        for ev in events.drain(..) {
            bots.on_event(net, ev, Instant::now());
        }
        Ok(())
    };

    // Setup: everyone to the map.
    let mut progress = Progress::new("fanout", opts.progress);
    let setup_start = Instant::now();
    let setup_deadline = setup_start + opts.setup_timeout + Duration::from_secs(1);
    let mut next_check = setup_start;
    loop {
        let now = Instant::now();
        while (bots.started() as usize) < opts.bots
            && (bots.in_flight() as usize) < opts.concurrency
        {
            bots.spawn(&mut net, now);
        }
        if bots.started() as usize >= opts.bots && bots.in_flight() == 0 {
            break;
        }
        if now >= setup_deadline {
            bots.check_timeouts(&mut net, now + opts.setup_timeout);
            break;
        }
        if now >= next_check {
            bots.check_timeouts(&mut net, now);
            next_check = now + Duration::from_millis(100);
        }
        pump(&mut net, &mut bots, Duration::from_millis(10))?;
        progress.tick(Instant::now(), || {
            format!(
                "setup: {} on the map, {} joining, {} failed",
                bots.completed,
                bots.in_flight(),
                bots.failed
            )
        });
    }
    let setup = setup_start.elapsed();
    let in_map = bots.in_map();
    result.figure("setup_s", setup.as_secs_f64());
    result.figure("bots_on_map", in_map.len() as f64);
    result.latency.insert("join".into(), bots.flow.summary());
    if in_map.is_empty() {
        result.failures = bots.failures.clone();
        bots.close_all(&mut net);
        return Err(format!(
            "no bot reached the map (failures: {:?})",
            result.failures
        ));
    }

    // Chat: K speakers on a staggered schedule.
    let speakers: Vec<usize> = in_map.iter().copied().take(opts.chatters).collect();
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(0.001));
    let chat_start = Instant::now();
    let mut due: Vec<Instant> = (0..speakers.len())
        .map(|i| chat_start + interval.mul_f64(i as f64 / speakers.len() as f64))
        .collect();
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let self_before = ProcSample::read(std::process::id());
    bots.set_recording(true);
    let chat_end = chat_start + opts.duration;
    let mut sent = 0u64;
    let mut last = (chat_start, 0u64);
    loop {
        let now = Instant::now();
        if now >= chat_end {
            break;
        }
        let mut next = chat_end;
        for (i, &b) in speakers.iter().enumerate() {
            let mut n = 0;
            while due[i] <= now && n < 4 {
                if bots.chat(&mut net, b, now) {
                    sent += 1;
                }
                due[i] += interval;
                n += 1;
            }
            if due[i] <= now {
                due[i] = now + interval; // fell behind: skip, do not burst
            }
            next = next.min(due[i]);
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(5));
        pump(&mut net, &mut bots, wait)?;
        progress.tick(Instant::now(), || {
            let now = Instant::now();
            let rate = (bots.delivered - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, bots.delivered);
            format!(
                "{} deliveries/s  p99 {:.1} ms  on map {}",
                si(rate),
                bots.delivery.percentile_us(99.0) / 1000.0,
                bots.in_map().len()
            )
        });
    }
    let window = chat_start.elapsed();
    let delivered_in_window = bots.delivered;
    let server_after = opts.server_pid.and_then(ProcSample::read);
    let self_after = ProcSample::read(std::process::id());
    // Drain: late deliveries still count for loss, not for the rate.
    let drain_until = Instant::now() + DRAIN;
    let still_on_map = bots.in_map().len() as u64;
    let expected = sent * in_map.len() as u64;
    while Instant::now() < drain_until && bots.delivered_total < expected {
        pump(&mut net, &mut bots, Duration::from_millis(10))?;
    }
    bots.set_recording(false);
    progress.finish();

    result.figure(
        "deliveries_per_sec",
        delivered_in_window as f64 / window.as_secs_f64(),
    );
    result.figure("messages_sent", sent as f64);
    result.figure(
        "offered_deliveries_per_sec",
        speakers.len() as f64 * opts.rate * in_map.len() as f64,
    );
    result.figure("deliveries_expected", expected as f64);
    result.figure("deliveries_received", bots.delivered_total as f64);
    result.figure("bots_on_map_at_end", still_on_map as f64);
    if let (Some(b), Some(a)) = (server_before, server_after) {
        let cpu = a.since(&b).0;
        result.figure("server_cpu_util", cpu / window.as_secs_f64());
        result.figure(
            "server_cpu_s_per_million",
            cpu / (delivered_in_window.max(1) as f64 / 1e6),
        );
    }
    if let (Some(b), Some(a)) = (self_before, self_after) {
        result.figure("client_cpu_util", a.since(&b).0 / window.as_secs_f64());
    }
    result
        .latency
        .insert("delivery".into(), bots.delivery.summary());
    result.failures = bots.failures.clone();
    if bots.delivered_total < expected {
        result
            .failures
            .insert("deliveries_missing".into(), expected - bots.delivered_total);
    }
    bots.close_all(&mut net);
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);
    Ok(result)
}
