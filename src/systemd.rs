//! systemd service notifications (`Type=notify`, `WatchdogSec=`), over
//! sd-notify 0.5.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset (not started by
//! systemd), and never fails: a notification that cannot be sent is logged at
//! debug level and dropped, because a missing notification must not take the
//! gateway down (systemd itself will act on a missing `READY=1` or watchdog
//! ping).
//!
//! The watchdog ping belongs on the **reactor thread**
//! (docs/architecture.md §2, `deploy/packet-service.service`): a ping from a
//! tokio task would keep systemd content while the event loop is wedged. Use
//! [`Watchdog`] there: call [`Watchdog::poll`] each pass and bound the poll
//! timeout by [`Watchdog::next_deadline`].
//!
//! Lifecycle (docs/architecture.md §10): [`ready`] once the listener is bound,
//! [`status`] for human-readable progress (`systemctl status`), [`stopping`]
//! as soon as shutdown begins.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The environment variable naming systemd's notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

fn enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if !enabled() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        log::debug!("systemd: notify {states:?} failed: {e}");
    }
}

/// Tells systemd that start-up finished (`READY=1`), with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd that shutdown began (`STOPPING=1`).
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sets the status line shown by `systemctl status` (`STATUS=…`).
pub fn status(msg: &str) {
    send(&[NotifyState::Status(msg)]);
}

/// Keeps the watchdog happy (`WATCHDOG=1`).
pub fn watchdog_ping() {
    send(&[NotifyState::Watchdog]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, or `None` when
/// there is no watchdog for this process (no `NOTIFY_SOCKET`, no or zero
/// `WATCHDOG_USEC`, or a `WATCHDOG_PID` naming another process).
pub fn watchdog_interval() -> Option<Duration> {
    if !enabled() {
        return None;
    }
    sd_notify::watchdog_enabled().and_then(ping_period)
}

/// The ping period for a watchdog timeout: half of it, as systemd
/// recommends; `None` for a zero timeout (watchdog disabled).
pub fn ping_period(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then(|| timeout / 2)
}

/// Rate-limits watchdog pings for a loop that runs far more often than the
/// ping period.
///
/// Invariant: `next` is `Some` exactly when `period` is.
#[derive(Clone, Copy, Debug)]
pub struct Watchdog {
    period: Option<Duration>,
    next: Option<Instant>,
}

impl Watchdog {
    /// The watchdog of this process, from the environment
    /// ([`watchdog_interval`]); first ping due at `now`.
    pub fn from_env(now: Instant) -> Watchdog {
        Watchdog::with_period(watchdog_interval(), now)
    }

    /// A watchdog pinging every `period` (`None`: never); first ping due at `now`.
    pub fn with_period(period: Option<Duration>, now: Instant) -> Watchdog {
        Watchdog {
            period,
            next: period.map(|_| now),
        }
    }

    /// The ping period, if a watchdog is active.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// When the next ping is due; the loop's poll timeout must not run past it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next
    }

    /// Whether a ping is due at `now`; if so, the next one is scheduled one
    /// period later. Pure bookkeeping: [`poll`](Self::poll) also sends.
    pub fn due(&mut self, now: Instant) -> bool {
        match (self.period, self.next) {
            (Some(period), Some(next)) if now >= next => {
                self.next = Some(now + period);
                true
            }
            _ => false,
        }
    }

    /// Sends `WATCHDOG=1` if a ping is due at `now`; returns whether it did.
    pub fn poll(&mut self, now: Instant) -> bool {
        let due = self.due(now);
        if due {
            watchdog_ping();
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_period_is_half_the_timeout() {
        assert_eq!(
            ping_period(Duration::from_secs(30)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            ping_period(Duration::from_micros(3)),
            Some(Duration::from_nanos(1500))
        );
        assert_eq!(ping_period(Duration::ZERO), None);
    }

    #[test]
    fn watchdog_pings_once_per_period() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = Watchdog::with_period(Some(15 * s), t0);
        assert_eq!(w.next_deadline(), Some(t0));
        assert!(w.due(t0), "first ping at once");
        assert!(!w.due(t0 + s));
        assert!(!w.due(t0 + 14 * s));
        assert_eq!(w.next_deadline(), Some(t0 + 15 * s));
        assert!(w.due(t0 + 16 * s));
        // Scheduled from the actual ping, not the missed deadline.
        assert_eq!(w.next_deadline(), Some(t0 + 31 * s));
        assert!(!w.due(t0 + 30 * s));
    }

    #[test]
    fn no_watchdog_never_pings() {
        let t0 = Instant::now();
        let mut w = Watchdog::with_period(None, t0);
        assert_eq!(w.next_deadline(), None);
        assert!(!w.due(t0));
        assert!(!w.poll(t0 + Duration::from_secs(3600)));
    }
}
