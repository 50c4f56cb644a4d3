//! The token bucket of the packets-per-second limit (`MAX_PACKETS_PER_SEC`,
//! `PACKET_BURST`) and of the chat budget (`CHAT_MESSAGES_PER_SEC`).

use std::time::Instant;

/// A token bucket for a per-second limit.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket holding a full burst at `now`.
    pub(super) fn full(now: Instant, burst: u32) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// A bucket that is full whatever its burst turns out to be (clamped
    /// at the first take).
    pub(super) fn brimming(now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::INFINITY,
            last: now,
        }
    }

    /// Takes one token if there is one; `rate` 0 is unlimited.
    pub(super) fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
