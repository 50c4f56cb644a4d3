//! Pool pressure: when connections wait for a buffer and the pool is down to
//! its reserve, the connections that have held buffers longest without
//! progress (no frame decoded, nothing written) are closed
//! (`pool_pressure`) and their buffers taken back at once, so that holders
//! that stall cannot starve everyone else (sozu's pool works the same way:
//! a failed checkout is answered, never waited out forever). World output
//! waiting for the world flush is written first: its holders are not
//! stalled, only early.

use std::time::Instant;

use log::debug;

use super::net::Net;
use super::probe::Probe;
use super::Reactor;
use crate::conn::reason::CloseReason;
use crate::conn::Prefix;

/// Most connections closed for pool pressure in one pass.
const EVICTIONS_PER_PASS: usize = 64;

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Closes the oldest stalled holders (at most [`EVICTIONS_PER_PASS`])
    /// until every waiting reader can have a buffer above the reserve, if
    /// the pool is at its reserve.
    pub(super) fn relieve_pool_pressure(&mut self, now: Instant) {
        let env = &mut self.env;
        if env.pool_wait.is_empty() || env.pool.available() > env.read_reserve {
            return;
        }
        // Waiters that closed meanwhile need nothing.
        let conns = &self.conns;
        env.pool_wait.retain(|&idx| {
            conns
                .get(idx)
                .is_some_and(|c| c.in_pool_wait && c.closing.is_none())
        });
        if env.pool_wait.is_empty() {
            return;
        }
        if env.world_flush_at.is_some() {
            // World output waiting for its flush holds buffers: written now,
            // they come back without closing anyone.
            self.world_flush(now);
            if self.env.pool.available() > self.env.read_reserve {
                return;
            }
        }
        let env = &mut self.env;
        let waiting = env.pool_wait.len();
        let mut wanted = (env.read_reserve + waiting).saturating_sub(env.pool.available());
        let mut holders = std::mem::take(&mut env.holders);
        holders.clear();
        holders.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.closing.is_none() && c.buffers_held() > 0)
                .map(|(idx, c)| (c.progress_at, idx)),
        );
        let victims = wanted.min(EVICTIONS_PER_PASS).min(holders.len());
        if victims > 0 && victims < holders.len() {
            holders.select_nth_unstable(victims - 1);
        }
        holders[..victims].sort_unstable();
        for &(since, idx) in &holders[..victims] {
            if wanted == 0 {
                break;
            }
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            wanted = wanted.saturating_sub(conn.buffers_held());
            debug!(
                "{} held {} buffers for {:?} without progress: closing",
                Prefix(conn),
                conn.buffers_held(),
                now.saturating_duration_since(since)
            );
            // Taken back now, not at the reap: the waiters read this pass.
            conn.input = None;
            conn.partial_since = None;
            conn.output.clear();
            env.close(idx, conn, CloseReason::PoolPressure);
        }
        env.holders = holders;
    }
}
