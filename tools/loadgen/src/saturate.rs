//! Fan-out at saturation: the offered deliveries per second are stepped up
//! until the target stops keeping up, and the highest rate it sustained is
//! the result. One driver for both targets ([`Fleet`]: bots on one map of
//! the gateway, SUBSCRIBE/PUBLISH clients of Redis), so that the two are
//! measured the same way in the same run.
//!
//! Each step sends for [`SatOpts::step`] at `offered / (subscribers ×
//! publishers)` messages per second per publisher (open loop, staggered),
//! then drains. A step is **sustained** when its delivery p99 is at most
//! [`SatOpts::max_p99`], the deliveries received during the window are at
//! least [`KEEP_UP`] of those offered, the publishers sent at least
//! [`KEEP_UP`] of their schedule, nothing was lost by the end of the drain
//! and every subscriber is still connected. A step that is not is tried
//! once more (the machine is shared: one stall of another process must
//! not end the run); the second miss ends the stepping, its reason a note.
//! Then [`SatOpts::refine`] steps bisect (geometrically) between the last
//! sustained rate and the first that was not, each tried the same way, so
//! that the result is not the coarse step below the limit.

use std::time::{Duration, Instant};

use crate::results::RunResult;
use crate::stats::{si, Latency, ProcSample, Progress};

/// Share of the offered deliveries (and of the send schedule) a step must
/// reach to count as sustained.
pub const KEEP_UP: f64 = 0.95;
/// Longest wait for the deliveries of a step after its window.
const DRAIN: Duration = Duration::from_secs(2);

/// What the stepper drives: publishers and subscribers on one channel.
pub trait Fleet {
    /// Subscribers still connected (each message is delivered to each).
    fn subscribers(&self) -> usize;
    /// Publishers.
    fn publishers(&self) -> usize;
    /// Publisher `i` sends one message stamped `now`; whether it was sent.
    fn publish(&mut self, i: usize, now: Instant) -> bool;
    /// One pass of the event loop, waiting at most `timeout`.
    fn pump(&mut self, timeout: Duration) -> Result<(), String>;
    /// Deliveries received so far.
    fn delivered(&self) -> u64;
    /// The latency of the deliveries received since the last take
    /// (send stamp → receipt); starts a new histogram.
    fn take_latency(&mut self) -> Latency;
}

/// How the offered rate is stepped.
#[derive(Clone, Debug)]
pub struct SatOpts {
    /// Offered deliveries per second of the first step.
    pub start: f64,
    /// Each step offers this many times the previous one.
    pub factor: f64,
    /// Rates stepped through at most before refining (each tried once
    /// more when missed).
    pub max_steps: usize,
    /// Steps between the last sustained and the first unsustained rate.
    pub refine: usize,
    /// Sending time per step.
    pub step: Duration,
    /// Delivery p99 above which a step is not sustained.
    pub max_p99: Duration,
    /// Process whose CPU time is measured.
    pub server_pid: Option<u32>,
    /// Progress line on stderr.
    pub progress: bool,
}

/// One step's outcome.
pub struct StepResult {
    /// Offered deliveries per second.
    pub offered: f64,
    /// Deliveries received per second during the window.
    pub achieved: f64,
    /// Delivery latency of the step.
    pub latency: Latency,
    /// Server CPU seconds per million deliveries.
    pub cpu_per_million: Option<f64>,
    /// Server CPU utilisation.
    pub server_util: Option<f64>,
    /// This process's CPU utilisation.
    pub client_util: Option<f64>,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries those messages owed (sent × subscribers).
    pub expected: u64,
    /// Why the step was not sustained (`None`: it was).
    pub missed: Option<String>,
}

/// Runs one step at `offered` deliveries per second.
fn step<F: Fleet>(fleet: &mut F, opts: &SatOpts, offered: f64) -> Result<StepResult, String> {
    let subs = fleet.subscribers();
    let pubs = fleet.publishers().max(1);
    let per_pub = offered / (subs.max(1) * pubs) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_pub.max(0.001));
    let _ = fleet.take_latency();
    let d0 = fleet.delivered();
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let self_before = ProcSample::read(std::process::id());
    let start = Instant::now();
    let end = start + opts.step;
    let mut due: Vec<Instant> = (0..pubs)
        .map(|i| start + interval.mul_f64(i as f64 / pubs as f64))
        .collect();
    let mut sent = 0u64;
    let mut skipped = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut next = end;
        for (i, d) in due.iter_mut().enumerate() {
            let mut n = 0;
            while *d <= now && n < 4 {
                if fleet.publish(i, now) {
                    sent += 1;
                }
                *d += interval;
                n += 1;
            }
            while *d <= now {
                skipped += 1; // fell behind: skip, do not burst
                *d += interval;
            }
            next = next.min(*d);
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(5));
        fleet.pump(wait)?;
    }
    let window = start.elapsed().as_secs_f64();
    let in_window = fleet.delivered() - d0;
    let server_after = opts.server_pid.and_then(ProcSample::read);
    let self_after = ProcSample::read(std::process::id());
    let expected = sent * subs as u64;
    let drain_until = Instant::now() + DRAIN;
    while fleet.delivered() - d0 < expected && Instant::now() < drain_until {
        fleet.pump(Duration::from_millis(5))?;
    }
    let received = fleet.delivered() - d0;
    let latency = fleet.take_latency();
    let achieved = in_window as f64 / window;
    let server_cpu = match (server_before, server_after) {
        (Some(b), Some(a)) => Some(a.since(&b).0),
        _ => None,
    };
    let client_util = match (self_before, self_after) {
        (Some(b), Some(a)) => Some(a.since(&b).0 / window),
        _ => None,
    };
    let p99 = latency.percentile_us(99.0) / 1000.0;
    let planned = sent + skipped;
    let missed = if fleet.subscribers() < subs {
        Some(format!(
            "{} of {subs} subscribers lost",
            subs - fleet.subscribers()
        ))
    } else if received < expected {
        Some(format!("{} deliveries lost", expected - received))
    } else if (sent as f64) < KEEP_UP * planned as f64 {
        Some(format!(
            "publishers sent {sent} of {planned} messages (the generator fell behind)"
        ))
    } else if achieved < KEEP_UP * offered {
        Some(format!(
            "{} deliveries/s received of {} offered",
            si(achieved),
            si(offered)
        ))
    } else if latency.count() == 0 {
        Some("nothing delivered".into())
    } else if p99 > opts.max_p99.as_secs_f64() * 1e3 {
        Some(format!(
            "delivery p99 {p99:.1} ms > {} ms",
            opts.max_p99.as_millis()
        ))
    } else {
        None
    };
    Ok(StepResult {
        offered,
        achieved,
        cpu_per_million: server_cpu.map(|c| c / (in_window.max(1) as f64 / 1e6)),
        server_util: server_cpu.map(|c| c / window),
        client_util,
        latency,
        sent,
        expected,
        missed,
    })
}

/// The steps of one run: each attempt is noted, and tried once more when
/// it is not sustained.
struct Steps<'a, F> {
    fleet: &'a mut F,
    opts: &'a SatOpts,
    progress: &'a mut Progress,
    n: usize,
    sent: u64,
    expected: u64,
}

impl<F: Fleet> Steps<'_, F> {
    /// A step at `offered`, and once more if it was not sustained but
    /// lost no subscriber (a smaller fleet would judge the retry against
    /// fewer receivers); the last of them.
    fn attempt(&mut self, offered: f64, result: &mut RunResult) -> Result<StepResult, String> {
        let subscribers = self.fleet.subscribers();
        let s = self.one(offered, result)?;
        if s.missed.is_some() && self.fleet.subscribers() == subscribers {
            return self.one(offered, result);
        }
        Ok(s)
    }

    fn one(&mut self, offered: f64, result: &mut RunResult) -> Result<StepResult, String> {
        let s = step(self.fleet, self.opts, offered)?;
        let n = self.n;
        self.n += 1;
        self.sent += s.sent;
        self.expected += s.expected;
        self.progress.tick(Instant::now(), || {
            format!(
                "step {n}: {} offered, {} delivered/s, p99 {:.1} ms",
                si(s.offered),
                si(s.achieved),
                s.latency.percentile_us(99.0) / 1000.0
            )
        });
        result.notes.push(format!(
            "step {n}: offered {} deliveries/s, received {}/s, p99 {:.1} ms, server CPU {} s per 1M, \
             server {:.0}% client {:.0}% of a core: {}",
            si(s.offered),
            si(s.achieved),
            s.latency.percentile_us(99.0) / 1000.0,
            s.cpu_per_million.map_or("?".into(), |c| format!("{c:.2}")),
            s.server_util.unwrap_or(0.0) * 100.0,
            s.client_util.unwrap_or(0.0) * 100.0,
            s.missed.as_deref().unwrap_or("sustained")
        ));
        Ok(s)
    }
}

/// Steps the offered rate up until a step is not sustained, then refines
/// between the last sustained and the first unsustained rate; writes the
/// highest sustained step into `result` (figures `deliveries_per_sec`,
/// `server_cpu_s_per_million`, latency `delivery`) and every step as a note.
pub fn run<F: Fleet>(fleet: &mut F, opts: &SatOpts, result: &mut RunResult) -> Result<(), String> {
    result.param("step_s", opts.step.as_secs_f64());
    result.param("start_offered_per_sec", opts.start);
    result.param("step_factor", opts.factor);
    result.param("refine_steps", opts.refine as f64);
    result.param("max_p99_ms", opts.max_p99.as_secs_f64() * 1e3);
    let mut progress = Progress::new("saturate", opts.progress);
    let mut steps = Steps {
        fleet,
        opts,
        progress: &mut progress,
        n: 0,
        sent: 0,
        expected: 0,
    };
    let subscribers = steps.fleet.subscribers();
    let mut best: Option<StepResult> = None;
    let mut failed_at = None;
    let mut offered = opts.start;
    for _ in 0..opts.max_steps {
        let s = steps.attempt(offered, result)?;
        if s.missed.is_some() {
            failed_at = Some(s.offered);
            break;
        }
        best = Some(s);
        offered *= opts.factor;
    }
    if let (Some(mut hi), Some(mut lo)) = (failed_at, best.as_ref().map(|b| b.offered)) {
        for _ in 0..opts.refine {
            // Only the whole fleet judges a rate.
            if steps.fleet.subscribers() < subscribers {
                break;
            }
            let s = steps.attempt((lo * hi).sqrt(), result)?;
            if s.missed.is_some() {
                hi = s.offered;
            } else {
                lo = s.offered;
                best = Some(s);
            }
        }
        failed_at = Some(hi);
    }
    if let Some(hi) = failed_at {
        result.figure("first_unsustained_offered_per_sec", hi);
    }
    let Steps {
        fleet,
        progress,
        sent,
        expected,
        ..
    } = steps;
    progress.finish();
    result.figure("messages_sent", sent as f64);
    result.figure("deliveries_expected", expected as f64);
    result.figure("subscribers_at_end", fleet.subscribers() as f64);
    let Some(b) = best else {
        result.figure("deliveries_per_sec", 0.0);
        return Ok(());
    };
    result.figure("deliveries_per_sec", b.achieved);
    result.figure("offered_deliveries_per_sec", b.offered);
    if let Some(c) = b.cpu_per_million {
        result.figure("server_cpu_s_per_million", c);
    }
    if let Some(u) = b.server_util {
        result.figure("server_cpu_util", u);
    }
    if let Some(u) = b.client_util {
        result.figure("client_cpu_util", u);
    }
    result
        .latency
        .insert("delivery".into(), b.latency.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers every message to `subs` subscribers at once, up to
    /// `capacity` deliveries per second of its clock; more are dropped.
    struct Ideal {
        subs: usize,
        capacity: f64,
        started: Option<Instant>,
        delivered: u64,
        /// Deliveries before the current step.
        base: u64,
        latency: Latency,
    }

    impl Fleet for Ideal {
        fn subscribers(&self) -> usize {
            self.subs
        }
        fn publishers(&self) -> usize {
            4
        }
        fn publish(&mut self, _i: usize, now: Instant) -> bool {
            let t0 = *self.started.get_or_insert(now);
            let allowed = self.capacity * (now - t0).as_secs_f64() + self.subs as f64;
            if ((self.delivered - self.base) as f64) < allowed {
                self.delivered += self.subs as u64;
                for _ in 0..self.subs {
                    self.latency.record(Duration::from_micros(100));
                }
            }
            true
        }
        fn pump(&mut self, timeout: Duration) -> Result<(), String> {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            Ok(())
        }
        fn delivered(&self) -> u64 {
            self.delivered
        }
        fn take_latency(&mut self) -> Latency {
            self.started = None;
            self.base = self.delivered;
            std::mem::take(&mut self.latency)
        }
    }

    impl Ideal {
        /// Ten subscribers, `capacity` deliveries per second.
        fn of_capacity(capacity: f64) -> Ideal {
            Ideal {
                subs: 10,
                capacity,
                started: None,
                delivered: 0,
                base: 0,
                latency: Latency::new(),
            }
        }
    }

    /// A run stepping from 1,000 doubling, 300 ms each, with `refine`
    /// refining steps, against a capacity of 3,000 deliveries per second.
    fn doubling_against_3000(refine: usize) -> RunResult {
        let mut fleet = Ideal::of_capacity(3_000.0);
        let opts = SatOpts {
            start: 1_000.0,
            factor: 2.0,
            max_steps: 6,
            refine,
            step: Duration::from_millis(300),
            max_p99: Duration::from_millis(50),
            server_pid: None,
            progress: false,
        };
        let mut r = RunResult::new("pubsub", "pubsub", "test");
        run(&mut fleet, &opts, &mut r).expect("runs");
        r
    }

    #[test]
    fn the_step_past_capacity_ends_the_run() {
        let r = doubling_against_3000(0);
        // 1000 and 2000 are sustained, 4000 is not (twice).
        assert_eq!(
            r.get("offered_deliveries_per_sec"),
            Some(2_000.0),
            "{:?}",
            r.notes
        );
        assert_eq!(r.get("first_unsustained_offered_per_sec"), Some(4_000.0));
        assert_eq!(r.notes.len(), 4, "{:?}", r.notes);
        assert!(r.notes[3].contains("lost"), "{:?}", r.notes);
    }

    #[test]
    fn refining_finds_the_limit_between_two_steps() {
        let r = doubling_against_3000(2);
        // 2000 sustained, 4000 not: 2828 (their geometric middle) is
        // within the capacity of 3000, 3364 is not.
        let best = r.get("offered_deliveries_per_sec").expect("a best step");
        assert!((best - 2_828.4).abs() < 1.0, "{best} {:?}", r.notes);
        let failed = r.get("first_unsustained_offered_per_sec").expect("failed");
        assert!((failed - 3_363.6).abs() < 1.0, "{failed} {:?}", r.notes);
        // 1000, 2000, 4000 twice, 2828, 3364 twice.
        assert_eq!(r.notes.len(), 7, "{:?}", r.notes);
    }
}
