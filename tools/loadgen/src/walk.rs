//! The walk scenario: interest management under movement. M bots go to the
//! map, each walking off to its own starting point on a square map of side
//! S as soon as it is there (so no crowd forms where characters start).
//! Then every bot sends MOUSE_CMD at R moves per second (open loop) in two
//! measured phases of the same run:
//!
//! 1. **walking** — the bots walk across the square in straight lines of
//!    step D, bouncing off the edges: each move reaches only the bots in
//!    view, and crossing cells brings spawns and removals;
//! 2. **one cell** — the bots, gathered (unmeasured) into one cell, step
//!    about inside it, so every move is delivered to every bot: the cost of
//!    broadcasting to everyone, the baseline.
//!
//! Per phase: movement deliveries per second (MOUSE_CMD received by bots in
//! the window), server CPU per delivery and per move, and the players in
//! view of a move (deliveries per move, the mover included, counted after
//! the deliveries in flight have arrived), plus the spawns and removals
//! received. The ratios of walking to one cell are figures too. Bots are
//! sent to their starting points and gathered at [`SPREAD_PER_SEC`], so
//! that the spawns and removals of crowds coming and going stay a trickle.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::MouseCmd;
use packet_service::protocol::CodecKind;

use crate::bots::{run_prefix, BotOpts, Bots, Goal};
use crate::net::{Net, NetEvent};
use crate::results::RunResult;
use crate::stats::{si, ProcSample, Progress};

/// Options of the walk scenario.
#[derive(Clone, Debug)]
pub struct WalkOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// M: bots.
    pub bots: usize,
    /// Bots joining at once during setup.
    pub concurrency: usize,
    /// R: moves per second per bot.
    pub rate: f64,
    /// S: side of the walked square, in map units.
    pub map_size: f32,
    /// D: length of one step, in map units.
    pub step: f32,
    /// Measured time of each phase.
    pub duration: Duration,
    /// Time allowed for all bots to reach the map.
    pub setup_timeout: Duration,
    /// Process whose CPU time is measured.
    pub server_pid: Option<u32>,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Where new characters stand (the embedded backend's default position),
/// the corner of a 1000-unit cell: the one-cell phase stays inside it.
const HOME: f32 = 520_000.0;
/// Side of the cell the one-cell phase stays in.
const CELL: u32 = 1_000;
/// Longest wait for deliveries still under way after a phase.
const DRAIN: Duration = Duration::from_secs(5);
/// A drain ends when nothing arrived for this long.
const QUIET: Duration = Duration::from_millis(300);
/// Bots gathered into the one cell per second (each newcomer there is
/// shown everyone already in it, and they it).
const SPREAD_PER_SEC: f64 = 100.0;

/// The bots, their event loop, and where each one is going.
struct Fleet {
    net: Net,
    bots: Bots,
    events: Vec<NetEvent>,
}

impl Fleet {
    /// Runs the event loop once, waiting at most `timeout`.
    fn turn(&mut self, timeout: Duration) -> Result<(), String> {
        self.net.flush(&mut self.events);
        self.net
            .poll(Some(timeout), &mut self.events)
            .map_err(|e| format!("poll: {e}"))?;
        self.handle();
        self.net.flush(&mut self.events);
        self.handle();
        Ok(())
    }

    fn handle(&mut self) {
        let now = Instant::now();
        for ev in self.events.drain(..) {
            self.bots.on_event(&mut self.net, ev, now);
        }
    }

    fn count(&self, t: PacketType) -> u64 {
        self.bots.received.get(&t).copied().unwrap_or(0)
    }

    /// Everything received on the map so far.
    fn received(&self) -> u64 {
        self.bots.received.values().sum()
    }

    /// Turns the loop until `done` holds or [`DRAIN`] has passed.
    fn drain_until(&mut self, done: impl Fn(&Fleet) -> bool) -> Result<(), String> {
        let until = Instant::now() + DRAIN;
        while !done(self) && Instant::now() < until {
            self.turn(Duration::from_millis(10))?;
        }
        Ok(())
    }

    /// Turns the loop until nothing arrives for [`QUIET`] (or [`DRAIN`]):
    /// for traffic whose amount is not known beforehand.
    fn drain(&mut self) -> Result<(), String> {
        let until = Instant::now() + DRAIN;
        let mut last = (self.received(), Instant::now());
        while Instant::now() < until && last.1.elapsed() < QUIET {
            self.turn(Duration::from_millis(10))?;
            if self.received() != last.0 {
                last = (self.received(), Instant::now());
            }
        }
        Ok(())
    }
}

/// Whom a move of a measured phase reaches: what its drain waits for.
#[derive(Clone, Copy)]
enum Reach {
    /// Every one of this many bots (all in one cell): the drain ends when
    /// each move has reached each of them.
    Everyone(u64),
    /// The bots in view, the mover among them, a number not known
    /// beforehand: the drain waits until the fleet has received at least
    /// as many MOUSE_CMD as moves were sent (one per move, whoever got
    /// it; not that each mover saw its own), then for [`QUIET`].
    InView,
}

/// What one measured phase counted.
#[derive(Default)]
struct Phase {
    window: Duration,
    moves: u64,
    in_window: u64,
    delivered: u64,
    spawns: u64,
    removes: u64,
    cpu_s: Option<f64>,
    /// Bots that lost their connection during the phase.
    lost: u64,
}

impl Phase {
    fn report(&self, r: &mut RunResult, name: &str) {
        let per_s = self.window.as_secs_f64().max(1e-9);
        r.figure(&format!("{name}_moves_sent"), self.moves as f64);
        r.figure(
            &format!("{name}_deliveries_per_sec"),
            self.in_window as f64 / per_s,
        );
        r.figure(&format!("{name}_deliveries"), self.delivered as f64);
        r.figure(&format!("{name}_in_view"), self.in_view());
        r.figure(&format!("{name}_spawns"), self.spawns as f64);
        r.figure(&format!("{name}_removes"), self.removes as f64);
        r.figure(&format!("{name}_bots_lost"), self.lost as f64);
        if let Some(cpu) = self.cpu_s {
            r.figure(&format!("{name}_server_cpu_util"), cpu / per_s);
            r.figure(
                &format!("{name}_server_cpu_us_per_delivery"),
                cpu * 1e6 / self.in_window.max(1) as f64,
            );
            r.figure(
                &format!("{name}_server_cpu_us_per_move"),
                cpu * 1e6 / self.moves.max(1) as f64,
            );
        }
    }

    /// Players a move reached, the mover included.
    fn in_view(&self) -> f64 {
        self.delivered as f64 / self.moves.max(1) as f64
    }
}

/// A bot's walk: where it is and where it heads per step.
#[derive(Clone, Copy)]
struct Walker {
    x: f32,
    y: f32,
    dx: f32,
    dy: f32,
}

/// A well-mixed fraction in [0, 1) for `n` (splitmix64): start points and
/// headings reproducible run to run.
fn fraction(n: u64) -> f32 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
}

impl Walker {
    fn new(i: usize, opts: &WalkOpts) -> Walker {
        let i = i as u64;
        let origin = HOME - opts.map_size / 2.0;
        let angle = fraction(3 * i + 2) * std::f32::consts::TAU;
        Walker {
            x: origin + fraction(3 * i) * opts.map_size,
            y: origin + fraction(3 * i + 1) * opts.map_size,
            dx: angle.cos() * opts.step,
            dy: angle.sin() * opts.step,
        }
    }

    /// One step, bouncing off the square's edges.
    fn step(&mut self, opts: &WalkOpts) -> (f32, f32) {
        let (lo, hi) = (HOME - opts.map_size / 2.0, HOME + opts.map_size / 2.0);
        for (v, d) in [(&mut self.x, &mut self.dx), (&mut self.y, &mut self.dy)] {
            if !(lo..=hi).contains(&(*v + *d)) {
                *d = -*d;
            }
            *v = (*v + *d).clamp(lo, hi);
        }
        (self.x, self.y)
    }
}

/// A MOUSE_CMD to (x, y) on the ground.
pub fn mouse(x: f32, y: f32) -> MouseCmd {
    MouseCmd {
        target_id: 0,
        x,
        y,
        z: 0,
    }
}

/// Runs the walk scenario.
pub fn run(opts: &WalkOpts) -> Result<RunResult, String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(opts.rate)
        || !positive(f64::from(opts.map_size))
        || !positive(f64::from(opts.step))
    {
        return Err("walk: --rate, --map-size and --step must be above 0".into());
    }
    let mut result = RunResult::new("walk", "walk", "packet-service");
    result.param("bots", opts.bots);
    result.param("rate_per_bot", opts.rate);
    result.param("map_size", f64::from(opts.map_size));
    result.param("step", f64::from(opts.step));
    result.param("duration_s", opts.duration.as_secs_f64());
    result.param("codec", opts.codec.name());
    let mut fleet = Fleet {
        net: Net::new(opts.bots * 3).map_err(|e| format!("poll: {e}"))?,
        bots: Bots::new(BotOpts {
            addr: opts.addr,
            codec: opts.codec,
            dialect: opts.dialect,
            goal: Goal::Map,
            prefix: run_prefix('w'),
            flow_timeout: opts.setup_timeout,
        }),
        events: Vec::new(),
    };
    let mut progress = Progress::new("walk", opts.progress);
    let mut walkers: Vec<Walker> = (0..opts.bots).map(|i| Walker::new(i, opts)).collect();
    let setup = Instant::now();
    enter(&mut fleet, opts, &walkers, &mut progress)?;
    let in_map = fleet.bots.in_map();
    result.figure("setup_s", setup.elapsed().as_secs_f64());
    result.figure("bots_on_map", in_map.len() as f64);
    if in_map.is_empty() {
        result.failures = fleet.bots.failures.clone();
        fleet.bots.close_all(&mut fleet.net);
        return Err(format!(
            "no bot reached the map (failures: {:?})",
            result.failures
        ));
    }
    // What the setup sent arrives before anything is counted.
    fleet.bots.set_recording(true);
    fleet.drain()?;

    let reach = Reach::InView;
    let walking = measure(&mut fleet, opts, &in_map, reach, &mut progress, |b, _| {
        walkers[b].step(opts)
    })?;

    // Gather into one cell (unmeasured), then step about in it.
    let spot = |n: usize| (n % CELL as usize) as f32;
    let in_cell =
        |b: usize, k: usize| (HOME + spot(b * 37 + k * 101), HOME + spot(b * 53 + k * 211));
    let pace = Duration::from_secs_f64(1.0 / SPREAD_PER_SEC);
    let failed = fleet.bots.failed;
    for &b in &in_map {
        let (x, y) = in_cell(b, 0);
        fleet.bots.send_map(&mut fleet.net, b, &mouse(x, y));
        let next = Instant::now() + pace;
        while Instant::now() < next {
            fleet.turn(next.saturating_duration_since(Instant::now()))?;
        }
    }
    fleet.drain()?;
    result.figure("gather_bots_lost", (fleet.bots.failed - failed) as f64);
    let reach = Reach::Everyone(in_map.len() as u64);
    let one_cell = measure(&mut fleet, opts, &in_map, reach, &mut progress, |b, k| {
        in_cell(b, k + 1)
    })?;
    progress.finish();

    one_cell.report(&mut result, "one_cell");
    walking.report(&mut result, "walking");
    result.figure("bots_on_map_at_end", fleet.bots.in_map().len() as f64);
    if let (Some(w), Some(o)) = (
        result.get("walking_server_cpu_us_per_move"),
        result.get("one_cell_server_cpu_us_per_move"),
    ) {
        result.figure("walking_vs_one_cell_cpu_per_move", w / o.max(1e-9));
    }
    result.figure(
        "walking_vs_one_cell_in_view",
        walking.in_view() / one_cell.in_view().max(1e-9),
    );
    result.failures = fleet.bots.failures.clone();
    fleet.bots.close_all(&mut fleet.net);
    let _ = fleet.turn(Duration::from_millis(1));
    Ok(result)
}

/// Brings every bot to the map, `concurrency` at a time, and sends each
/// to its walker's starting point as soon as it is there.
fn enter(
    fleet: &mut Fleet,
    opts: &WalkOpts,
    walkers: &[Walker],
    progress: &mut Progress,
) -> Result<(), String> {
    let deadline = Instant::now() + opts.setup_timeout + Duration::from_secs(1);
    let mut next_check = Instant::now();
    let mut away = vec![false; opts.bots];
    loop {
        for b in fleet.bots.in_map() {
            if let (Some(false), Some(w)) = (away.get(b).copied(), walkers.get(b)) {
                away[b] = fleet.bots.send_map(&mut fleet.net, b, &mouse(w.x, w.y));
            }
        }
        let now = Instant::now();
        let bots = &mut fleet.bots;
        while (bots.started() as usize) < opts.bots
            && (bots.in_flight() as usize) < opts.concurrency
        {
            bots.spawn(&mut fleet.net, now);
        }
        if bots.started() as usize >= opts.bots && bots.in_flight() == 0 {
            return Ok(());
        }
        if now >= deadline {
            bots.check_timeouts(&mut fleet.net, now + opts.setup_timeout);
            return Ok(());
        }
        if now >= next_check {
            bots.check_timeouts(&mut fleet.net, now);
            next_check = now + Duration::from_millis(100);
        }
        fleet.turn(Duration::from_millis(10))?;
        let b = &fleet.bots;
        progress.tick(Instant::now(), || {
            format!(
                "setup: {} on the map, {} joining, {} failed",
                b.completed,
                b.in_flight(),
                b.failed
            )
        });
    }
}

/// One measured phase: every bot of `in_map` moves to `target(bot, k)` for
/// its k-th move (`bot` its index), R times a second on a staggered
/// schedule; then drains as `reach` says.
fn measure(
    fleet: &mut Fleet,
    opts: &WalkOpts,
    in_map: &[usize],
    reach: Reach,
    progress: &mut Progress,
    mut target: impl FnMut(usize, usize) -> (f32, f32),
) -> Result<Phase, String> {
    let before = (
        fleet.count(PacketType::PAKWC_MOUSE_CMD),
        fleet.count(PacketType::PAKWC_PLAYER_CHAR),
        fleet.count(PacketType::PAKWC_REMOVE_OBJECT),
    );
    let failed = fleet.bots.failed;
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(0.001));
    let start = Instant::now();
    let end = start + opts.duration;
    let n = in_map.len();
    let mut due: Vec<Instant> = (0..n)
        .map(|i| start + interval.mul_f64(i as f64 / n as f64))
        .collect();
    let mut moves = vec![0usize; n];
    let mut sent = 0u64;
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let mut last = (start, before.0);
    while Instant::now() < end {
        let now = Instant::now();
        let mut next = end;
        for i in 0..n {
            if due[i] <= now {
                let (x, y) = target(in_map[i], moves[i]);
                if fleet.bots.send_map(&mut fleet.net, in_map[i], &mouse(x, y)) {
                    sent += 1;
                }
                moves[i] += 1;
                due[i] = (due[i] + interval).max(now); // behind: no burst
            }
            next = next.min(due[i]);
        }
        fleet.turn(
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(5)),
        )?;
        let delivered = fleet.count(PacketType::PAKWC_MOUSE_CMD);
        progress.tick(Instant::now(), || {
            let now = Instant::now();
            let rate = (delivered - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, delivered);
            format!("{} move deliveries/s, {sent} moves", si(rate))
        });
    }
    let window = start.elapsed();
    let in_window = fleet.count(PacketType::PAKWC_MOUSE_CMD) - before.0;
    let server_after = opts.server_pid.and_then(ProcSample::read);
    let per_move = match reach {
        Reach::Everyone(bots) => bots,
        Reach::InView => 1,
    };
    let owed = sent * per_move;
    fleet.drain_until(|f| f.count(PacketType::PAKWC_MOUSE_CMD) - before.0 >= owed)?;
    if let Reach::InView = reach {
        fleet.drain()?;
    }
    Ok(Phase {
        window,
        moves: sent,
        in_window,
        delivered: fleet.count(PacketType::PAKWC_MOUSE_CMD) - before.0,
        spawns: fleet.count(PacketType::PAKWC_PLAYER_CHAR) - before.1,
        removes: fleet.count(PacketType::PAKWC_REMOVE_OBJECT) - before.2,
        cpu_s: server_before.zip(server_after).map(|(b, a)| a.since(&b).0),
        lost: fleet.bots.failed - failed,
    })
}
