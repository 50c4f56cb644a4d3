//! Liveness and readiness: the state `/healthz` reports, written by the
//! reactor and by start-up and shutdown code.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A `/healthz` probe fails when the reactor's last tick is older than this.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10);

/// Liveness and readiness, shared by the reactor and the HTTP server.
///
/// The reactor calls [`tick_at`](Self::tick_at) once per loop pass; a probe
/// succeeds when the service is ready, not stopping, and the last tick is
/// younger than the threshold — so a wedged loop fails the probe even though
/// the HTTP server (on other threads) still answers.
#[derive(Debug)]
pub struct Health {
    /// Milliseconds from `epoch` to the reactor's last pass;
    /// [`NEVER_TICKED`](Self::NEVER_TICKED) until the first.
    last_tick: AtomicU64,
    /// Set once the listener is bound and the reactor runs.
    ready: AtomicBool,
    /// Set when shutdown begins; never cleared.
    stopping: AtomicBool,
    epoch: Instant,
    stale_after: Duration,
}

/// Why `/healthz` fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unhealthy {
    /// Start-up has not finished.
    Starting,
    /// Shutdown has begun.
    Stopping,
    /// The reactor has not completed a pass yet.
    NeverTicked,
    /// The reactor's last pass is this long ago.
    Stalled(Duration),
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unhealthy::Starting => f.write_str("starting"),
            Unhealthy::Stopping => f.write_str("stopping"),
            Unhealthy::NeverTicked => f.write_str("reactor has not run yet"),
            Unhealthy::Stalled(age) => {
                write!(f, "reactor stalled: last pass {} ms ago", age.as_millis())
            }
        }
    }
}

impl Health {
    /// `last_tick` value before the first tick.
    const NEVER_TICKED: u64 = u64::MAX;

    /// A health state measured from now; not ready, not stopping, never ticked.
    pub fn new(stale_after: Duration) -> Health {
        Health::with_epoch(Instant::now(), stale_after)
    }

    /// As [`new`](Self::new), with ticks measured from `epoch`.
    pub fn with_epoch(epoch: Instant, stale_after: Duration) -> Health {
        Health {
            last_tick: AtomicU64::new(Self::NEVER_TICKED),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            epoch,
            stale_after,
        }
    }

    /// Records a reactor pass now.
    pub fn tick(&self) {
        self.tick_at(Instant::now());
    }

    /// Records a reactor pass at `now` (the pass's own clock reading).
    pub fn tick_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        let ms = u64::try_from(ms).unwrap_or(Self::NEVER_TICKED - 1);
        self.last_tick.store(ms, Ordering::Relaxed);
    }

    /// Marks start-up as finished (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Marks shutdown as begun.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The probe's verdict now.
    pub fn check(&self) -> Result<(), Unhealthy> {
        self.check_at(Instant::now())
    }

    /// The probe's verdict at `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), Unhealthy> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(Unhealthy::Stopping);
        }
        if !self.ready.load(Ordering::Relaxed) {
            return Err(Unhealthy::Starting);
        }
        let last = self.last_tick.load(Ordering::Relaxed);
        if last == Self::NEVER_TICKED {
            return Err(Unhealthy::NeverTicked);
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .saturating_sub(Duration::from_millis(last));
        if age > self.stale_after {
            return Err(Unhealthy::Stalled(age));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_verdicts() {
        let epoch = Instant::now();
        let h = Health::with_epoch(epoch, Duration::from_secs(10));
        assert_eq!(h.check_at(epoch), Err(Unhealthy::Starting));
        h.set_ready(true);
        assert_eq!(h.check_at(epoch), Err(Unhealthy::NeverTicked));
        h.tick_at(epoch + Duration::from_secs(5));
        assert_eq!(h.check_at(epoch + Duration::from_secs(14)), Ok(()));
        assert_eq!(
            h.check_at(epoch + Duration::from_secs(16)),
            Err(Unhealthy::Stalled(Duration::from_secs(11)))
        );
        h.tick_at(epoch + Duration::from_secs(16));
        assert_eq!(h.check_at(epoch + Duration::from_secs(16)), Ok(()));
        h.set_stopping();
        assert_eq!(
            h.check_at(epoch + Duration::from_secs(16)),
            Err(Unhealthy::Stopping)
        );
    }
}
