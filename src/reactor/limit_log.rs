//! The once-a-minute summary of limits hit: refusals, abnormal closes,
//! chat messages dropped by the chat budget, oversized world packets and
//! failed accepts are counted as they happen and logged as one line per
//! interval.

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
    /// Accepts that failed (out of descriptors): the first of an interval
    /// is logged when it happens, the count here.
    pub(super) accept_errors: u64,
    since: Instant,
}

impl LimitLog {
    pub(super) fn new(now: Instant) -> LimitLog {
        LimitLog {
            rejected: vec![0; RejectReason::LABELS.len()],
            closed: vec![0; CloseReason::LABELS.len()],
            chat_refused: vec![0; ChatRefusal::LABELS.len()],
            world_oversized: 0,
            accept_errors: 0,
            since: now,
        }
    }

    /// Logs one line if anything abnormal happened in the interval.
    pub(super) fn report(&mut self, now: Instant) {
        if now.duration_since(self.since) < LIMIT_LOG_INTERVAL {
            return;
        }
        let line = self.line();
        if !line.is_empty() {
            warn!(
                "in the last {}s:{line}",
                now.duration_since(self.since).as_secs()
            );
        }
        *self = LimitLog::new(now);
    }

    /// What the interval's line says after its time: ` kind:label=n` for
    /// every count above 0, normal closes left out.
    pub(super) fn line(&self) -> String {
        let normal = CloseReason::NORMAL.map(CloseReason::index);
        let labelled = [
            ("refused", RejectReason::LABELS, &self.rejected),
            ("closed", CloseReason::LABELS, &self.closed),
            ("chat_dropped", ChatRefusal::LABELS, &self.chat_refused),
        ];
        let mut line = String::new();
        for (kind, labels, counts) in labelled {
            for (i, (label, n)) in labels.iter().zip(counts).enumerate() {
                if *n > 0 && !(kind == "closed" && normal.contains(&i)) {
                    line.push_str(&format!(" {kind}:{label}={n}"));
                }
            }
        }
        let single = [
            ("world_oversized", self.world_oversized),
            ("accept_failed", self.accept_errors),
        ];
        for (label, n) in single {
            if n > 0 {
                line.push_str(&format!(" {label}={n}"));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sums_up_every_kind_and_skips_normal_closes() {
        let mut log = LimitLog::new(Instant::now());
        assert_eq!(log.line(), "");
        log.rejected[RejectReason::PerIpLimit.index()] = 12;
        log.closed[CloseReason::PeerClosed.index()] = 100;
        log.closed[CloseReason::FrameTimeout.index()] = 3;
        log.chat_refused[ChatRefusal::Size.index()] = 190;
        log.world_oversized = 2;
        log.accept_errors = 5;
        assert_eq!(
            log.line(),
            " refused:per_ip_limit=12 closed:frame_timeout=3 chat_dropped:size=190 \
             world_oversized=2 accept_failed=5"
        );
    }
}
