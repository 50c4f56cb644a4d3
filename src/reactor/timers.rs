//! Connection deadlines: a min-heap with lazy invalidation.
//!
//! Each connection has at most one live entry (the one equal to its
//! `timer_at`); entries superseded by an earlier deadline, or left behind by
//! a closed connection, are skipped when they come up. A deadline that moves
//! later (the idle timer on every packet) is not pushed at all: when the old
//! entry fires, the state machine finds nothing due and the next deadline is
//! scheduled then. So the heap costs nothing per packet.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

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
