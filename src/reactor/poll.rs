//! Steps 1 to 3 of a pass (docs/architecture.md §3): the poll timeout,
//! the poll, and the socket events that mark connections readable or
//! writable (and the listener's, which accepts).

use std::io;
use std::time::{Duration, Instant};

use mio::Token;

use super::net::{EventList, Net};
use super::probe::Probe;
use super::{
    push_once, Reactor, CLEANUP_RETRY, FIRST_CONN, LINGER_POLL, LISTENER, PUBLISH_INTERVAL, WAKER,
};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Waits for events until the next deadline; returns the time after.
    pub(super) fn wait(&mut self, events: &mut N::Events) -> io::Result<Instant> {
        let now = self.net.now();
        let mut timeout = self.poll_timeout(now);
        if self.unpublished {
            let due = (self.last_publish + PUBLISH_INTERVAL).saturating_duration_since(now);
            timeout = timeout.map(|t| t.min(due));
        }
        if let Err(e) = self.net.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        self.env.utc = self.net.utc();
        self.unpublished |= !events.is_empty();
        Ok(self.net.now())
    }

    /// Accepts on the listener's event and puts ready connections on the
    /// read and flush lists. Returns whether the waker fired.
    pub(super) fn socket_events(&mut self, events: &N::Events, now: Instant) -> bool {
        let mut wake = false;
        for event in events.readiness() {
            match event.token {
                LISTENER => self.accept(now),
                WAKER => wake = true,
                Token(t) => {
                    let idx = t - FIRST_CONN;
                    let Some(conn) = self.conns.get_mut(idx) else {
                        continue;
                    };
                    if event.hup {
                        // Data and FIN can share one edge: read to the end.
                        conn.hup = true;
                    }
                    if event.readable || conn.hup {
                        conn.readable = true;
                        push_once(&mut self.env.ready, &mut conn.in_ready, idx);
                    }
                    // Output waiting for the world flush waits for it (an
                    // edge reports the socket writable along with any
                    // input), unless the socket had refused some of it.
                    if event.writable
                        && !conn.output.is_empty()
                        && (conn.write_blocked || !conn.in_deferred)
                    {
                        push_once(&mut self.env.dirty, &mut conn.in_dirty, idx);
                    }
                }
            }
        }
        wake
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        // Waiters either resume or make pool pressure close a stalled
        // holder for them next pass.
        let pool_waiters = !self.env.pool_wait.is_empty();
        if !self.env.ready.is_empty()
            || !self.env.next_ready.is_empty()
            || !self.env.told.is_empty()
            || !self.env.dirty.is_empty()
            || self.env.completions_pending
            || pool_waiters
        {
            return Some(Duration::ZERO);
        }
        let mut timeout = Duration::from_secs(1);
        if !self.lingering.is_empty() {
            timeout = LINGER_POLL;
        }
        if !self.env.cleanup.is_empty() {
            timeout = CLEANUP_RETRY;
        }
        if let Some(at) = self.env.timers.next() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.env.world_flush_at {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.env.accept_paused_until {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.env.draining {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(period) = self.watchdog {
            timeout = timeout.min(period);
        }
        Some(timeout)
    }
}
