//! Connection deadlines: a min-heap with lazy invalidation.
//!
//! Each connection has at most one live entry (the one equal to its
//! `timer_at`); entries superseded by an earlier deadline, or left behind by
//! a closed connection, are skipped when they come up. A deadline that moves
//! later (the idle timer on every packet) is not pushed at all: when the old
//! entry fires, the state machine finds nothing due and the next deadline is
//! scheduled then. So the heap costs nothing per packet.
//!
//! Also the two ends of it in the loop: scheduling a connection's next
//! deadline (its session's, or the frame deadline of an incomplete frame at
//! the front of its input), and firing the due ones: a frame past its
//! deadline closes the connection (`frame_timeout`), anything else is a
//! `Tick` input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::net::Net;
use super::probe::Probe;
use super::{Env, Reactor};
use log::debug;

use crate::conn::reason::CloseReason;
use crate::conn::state::Input;
use crate::conn::{Conn, Prefix};
use crate::ids::ConnRef;

/// The reactor's timer heap.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Timers {
    /// Adds a deadline for a connection.
    pub fn push(&mut self, at: Instant, conn: ConnRef) {
        self.heap.push(Reverse((at, conn.index, conn.generation)));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns an entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnRef)> {
        let Reverse((at, index, generation)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some((at, ConnRef { index, generation }))
    }
}

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Feeds a `Tick` to every connection whose deadline is due.
    pub(super) fn expire_timers(&mut self, now: Instant) {
        while let Some((at, conn_ref)) = self.env.timers.pop_due(now) {
            let idx = conn_ref.index as usize;
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            if conn.conn_ref != conn_ref || conn.timer_at != Some(at) {
                continue; // superseded
            }
            conn.timer_at = None;
            let env = &mut self.env;
            if conn
                .partial_since
                .is_some_and(|t| now >= t + env.cfg.frame_timeout)
            {
                debug!(
                    "{} frame incomplete after {:?}",
                    Prefix(conn),
                    env.cfg.frame_timeout
                );
                env.close(idx, conn, CloseReason::FrameTimeout);
                continue;
            }
            let mut actions = std::mem::take(&mut env.actions);
            env.step(
                conn.conn_ref,
                &mut conn.session,
                Input::Tick,
                now,
                &mut actions,
            );
            env.apply(idx, conn, &mut actions, now);
            env.actions = actions;
            env.schedule(idx, conn);
        }
    }
}

impl<P> Env<P> {
    /// Puts the connection's next deadline in the timer heap if it is
    /// earlier than the one already there.
    pub(super) fn schedule<S>(&mut self, _idx: usize, conn: &mut Conn<S>) {
        if conn.closing.is_some() {
            return;
        }
        let frame = conn.partial_since.map(|t| t + self.cfg.frame_timeout);
        let session = conn.session.next_deadline(&self.ctx());
        let Some(at) = [frame, session].into_iter().flatten().min() else {
            return;
        };
        if conn.timer_at.is_none_or(|t| at < t) {
            conn.timer_at = Some(at);
            self.timers.push(at, conn.conn_ref);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let c = |i| ConnRef {
            index: i,
            generation: 1,
        };
        timers.push(t0 + Duration::from_secs(3), c(3));
        timers.push(t0 + Duration::from_secs(1), c(1));
        timers.push(t0 + Duration::from_secs(2), c(2));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let due: Vec<u32> = std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(2)))
            .map(|(_, r)| r.index)
            .collect();
        assert_eq!(due, vec![1, 2]);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(3)));
    }
}
