//! The reconnect storm: N players whose accounts and characters exist log
//! in at the same moment (as after a server restart), each through the
//! whole flow to the map join (login → server select → char join → list →
//! select → map join → change map). Reports the time until every player is
//! in the world, the flow's p50/p99 and the failures by reason.
//!
//! `--prepare` first creates the accounts and characters (closed loop, C in
//! flight; unmeasured), so that the gateway can be restarted between the
//! two runs and the storm meets a cold server. Each prepared player walks to
//! its own spot of a square of [`SPREAD`] map units around the spawn point
//! and leaves, so that the world saves it there: after a restart players
//! enter where they were, spread over the map, each in view of about a
//! hundred others, not all of them on one spot. Each player holds two
//! connections on the map (char and map), on both sides: the player count
//! is capped by the open-files limits of this process and of the server,
//! and the result says so.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

use crate::bots::{BotOpts, Bots, Goal};
use crate::net::{raise_nofile_limit, Net};
use crate::results::RunResult;
use crate::stats::{si, ProcSample, Progress};

/// Options of the storm scenario.
#[derive(Clone, Debug)]
pub struct StormOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// N: players asked for (capped by the open-files limits).
    pub players: usize,
    /// Usernames are `prefix` + index, the same in both runs.
    pub prefix: String,
    /// Create the accounts and characters instead of storming.
    pub prepare: bool,
    /// Flows in flight during `--prepare`.
    pub concurrency: usize,
    /// One flow's time limit.
    pub flow_timeout: Duration,
    /// Process whose CPU time and open-files limit count.
    pub server_pid: Option<u32>,
    /// Id of the run in the results file (`storm-sqlite`, …).
    pub run_id: String,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Loopback addresses the players connect from (see
/// [`Net::spread_sources`]): a storm's 30,000 connections from one address
/// spend the load generator's time searching for free ports.
const SOURCES: u8 = 64;

/// Side of the square the prepared players are spread over, in map units
/// (2 km: a zone of the classic maps).
pub const SPREAD: f32 = 200_000.0;
/// The spawn point of a new character (the square's centre).
const SPAWN: (f32, f32) = (520_000.0, 520_000.0);

/// Where prepared player `idx` of `players` stands: the points of an even
/// grid over the [`SPREAD`] square, one per player.
pub fn spot(idx: usize, players: usize) -> (f32, f32) {
    let side = (players as f64).sqrt().ceil().max(1.0) as usize;
    let step = SPREAD / side as f32;
    let (col, row) = (idx % side, idx / side);
    (
        SPAWN.0 - SPREAD / 2.0 + step * (col as f32 + 0.5),
        SPAWN.1 - SPREAD / 2.0 + step * (row as f32 + 0.5),
    )
}

/// Descriptors one player holds on each side while on the map.
const FDS_PER_PLAYER: u64 = 2;
/// Descriptors kept aside on each side (listeners, backend, database, logs).
const FD_RESERVE: u64 = 600;

/// The soft open-files limit of a process (/proc/PID/limits).
fn nofile_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many players fit: the requested number or what the tighter of the
/// two open-files limits allows; with the limit that capped it.
pub fn player_cap(requested: usize, own: u64, server: Option<u64>) -> (usize, u64) {
    let limit = server.map_or(own, |s| s.min(own));
    let fit = limit.saturating_sub(FD_RESERVE) / FDS_PER_PLAYER;
    (requested.min(fit as usize), limit)
}

/// Runs the storm (or, with `prepare`, creates its players).
pub fn run(opts: &StormOpts) -> Result<RunResult, String> {
    let own = raise_nofile_limit();
    let server = opts.server_pid.and_then(nofile_of);
    let (players, limit) = player_cap(opts.players, own, server);
    if players == 0 {
        return Err(format!(
            "open-files limit {limit} leaves room for no player"
        ));
    }
    let id = if opts.prepare {
        format!("{}-prepare", opts.run_id)
    } else {
        opts.run_id.clone()
    };
    let mut result = RunResult::new(&id, "storm", "packet-service");
    result.param("players_requested", opts.players);
    result.param("players", players);
    result.param("open_files_limit", limit);
    result.param("source_addresses", f64::from(SOURCES));
    result.param("codec", opts.codec.name());
    if players < opts.players {
        result.notes.push(format!(
            "{players} players instead of {}: the open-files limit is {limit} and each \
             player holds {FDS_PER_PLAYER} connections on each side",
            opts.players
        ));
    }
    let mut net = Net::new(players * 3).map_err(|e| format!("poll: {e}"))?;
    net.spread_sources(SOURCES);
    let mut bots = Bots::new(BotOpts {
        addr: opts.addr,
        codec: opts.codec,
        dialect: opts.dialect,
        goal: Goal::Map,
        prefix: opts.prefix.clone(),
        flow_timeout: opts.flow_timeout,
    });
    let window = if opts.prepare {
        opts.concurrency
    } else {
        players
    };
    let mut progress = Progress::new("storm", opts.progress);
    let mut events = Vec::new();
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let client_before = ProcSample::read(std::process::id());
    let start = Instant::now();
    let hard_stop =
        start + opts.flow_timeout + Duration::from_secs(if opts.prepare { 600 } else { 1 });
    let mut next_check = start;
    let (mut moved, mut leaving) = (vec![false; players], Vec::new());
    let mut last_in = start;
    let mut last = (start, 0u64);
    loop {
        let now = Instant::now();
        while (bots.started() as usize) < players && (bots.in_flight() as usize) < window {
            bots.spawn(&mut net, now);
        }
        if bots.started() as usize >= players && bots.in_flight() == 0 {
            break;
        }
        if now >= hard_stop {
            bots.check_timeouts(&mut net, now + opts.flow_timeout);
            break;
        }
        if now >= next_check {
            bots.check_timeouts(&mut net, now);
            next_check = now + Duration::from_millis(100);
        }
        net.flush(&mut events);
        for idx in leaving.drain(..) {
            bots.close(&mut net, idx);
        }
        net.poll(Some(Duration::from_millis(10)), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        let before = bots.completed;
        let now = Instant::now();
        for ev in events.drain(..) {
            bots.on_event(&mut net, ev, now);
        }
        if opts.prepare {
            // On the map: walk to its spot, and leave once the move is
            // written (a close drops what is not), to be saved there.
            for idx in bots.in_map() {
                let (x, y) = spot(idx, players);
                if !moved[idx] && bots.send_map(&mut net, idx, &crate::walk::mouse(x, y)) {
                    moved[idx] = true;
                    leaving.push(idx);
                }
            }
        }
        if bots.completed > before {
            last_in = now;
        }
        progress.tick(Instant::now(), || {
            let now = Instant::now();
            let rate = (bots.completed - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, bots.completed);
            format!(
                "{}/{players} in the world  {}/s  in flight {}  failed {}",
                bots.completed,
                si(rate),
                bots.in_flight(),
                bots.failed
            )
        });
    }
    progress.finish();
    let server_after = opts.server_pid.and_then(ProcSample::read);
    if let (Some(b), Some(a)) = (client_before, ProcSample::read(std::process::id())) {
        // The load generator's own CPU: on a shared machine it competes
        // with the server's.
        result.figure("client_cpu_s", a.since(&b).0);
    }
    let in_world = bots.in_map().len();
    result.figure("in_world", in_world as f64);
    result.figure("completed", bots.completed as f64);
    result.figure("failed", bots.failed as f64);
    let all_in = last_in.duration_since(start).as_secs_f64();
    result.figure("seconds_to_last_in_world", all_in);
    if in_world == players {
        result.figure("seconds_to_all_in_world", all_in);
    }
    result.figure("logins_per_sec", in_world as f64 / all_in.max(1e-3));
    if let (Some(b), Some(a)) = (server_before, server_after) {
        let cpu = a.since(&b).0;
        result.figure("server_cpu_s", cpu);
        result.figure(
            "server_cpu_ms_per_login",
            cpu * 1e3 / bots.completed.max(1) as f64,
        );
    }
    result.latency.insert("flow".into(), bots.flow.summary());
    result.failures = bots.failures.clone();
    bots.close_all(&mut net);
    // Let the closes go out before the next scenario.
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spots_are_distinct_and_inside_the_square() {
        let n = 9_700;
        let spots: std::collections::BTreeSet<(i64, i64)> = (0..n)
            .map(|i| {
                let (x, y) = spot(i, n);
                assert!((x - SPAWN.0).abs() < SPREAD / 2.0 && (y - SPAWN.1).abs() < SPREAD / 2.0);
                (x as i64, y as i64)
            })
            .collect();
        assert_eq!(spots.len(), n);
    }

    #[test]
    fn the_tighter_open_files_limit_caps_the_players() {
        assert_eq!(player_cap(10_000, 1_000_000, None), (10_000, 1_000_000));
        assert_eq!(player_cap(10_000, 20_000, Some(30_000)), (9_700, 20_000));
        assert_eq!(player_cap(10_000, 50_000, Some(4_600)), (2_000, 4_600));
        assert_eq!(player_cap(10, 100, None).0, 0);
    }
}
