//! The once-a-minute summary of limits hit: refusals, abnormal closes,
//! chat messages dropped by the chat budget and oversized world packets
//! are counted as they happen and logged as one line per interval.

use std::time::Instant;

use log::warn;

use super::LIMIT_LOG_INTERVAL;
use crate::conn::reason::{ChatRefusal, CloseReason, RejectReason};

/// Counts of refusals and closes for the periodic log summary: limits are
/// logged when hit, without a line per connection that a flood could use to
/// flood the log.
pub(super) struct LimitLog {
    pub(super) rejected: Vec<u64>,
    pub(super) closed: Vec<u64>,
    pub(super) chat_refused: Vec<u64>,
    pub(super) world_oversized: u64,
    since: Instant,
}

impl LimitLog {
    pub(super) fn new(now: Instant) -> LimitLog {
        LimitLog {
            rejected: vec![0; RejectReason::LABELS.len()],
            closed: vec![0; CloseReason::LABELS.len()],
            chat_refused: vec![0; ChatRefusal::LABELS.len()],
            world_oversized: 0,
            since: now,
        }
    }

    /// Logs one line if anything abnormal happened in the interval.
    pub(super) fn report(&mut self, now: Instant) {
        if now.duration_since(self.since) < LIMIT_LOG_INTERVAL {
            return;
        }
        let normal = [
            CloseReason::PeerClosed.index(),
            CloseReason::Shutdown.index(),
        ];
        let mut line = String::new();
        for (label, n) in RejectReason::LABELS.iter().zip(&self.rejected) {
            if *n > 0 {
                line.push_str(&format!(" refused:{label}={n}"));
            }
        }
        for (i, (label, n)) in CloseReason::LABELS.iter().zip(&self.closed).enumerate() {
            if *n > 0 && !normal.contains(&i) {
                line.push_str(&format!(" closed:{label}={n}"));
            }
        }
        for (label, n) in ChatRefusal::LABELS.iter().zip(&self.chat_refused) {
            if *n > 0 {
                line.push_str(&format!(" chat_dropped:{label}={n}"));
            }
        }
        if self.world_oversized > 0 {
            line.push_str(&format!(" world_oversized={}", self.world_oversized));
        }
        if !line.is_empty() {
            warn!(
                "in the last {}s:{line}",
                now.duration_since(self.since).as_secs()
            );
        }
        self.rejected.iter_mut().for_each(|n| *n = 0);
        self.closed.iter_mut().for_each(|n| *n = 0);
        self.chat_refused.iter_mut().for_each(|n| *n = 0);
        self.world_oversized = 0;
        self.since = now;
    }
}
