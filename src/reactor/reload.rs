//! Settings a reload delivers to the running loop: a new [`ReactorConfig`]
//! arrives on a channel (its sender wakes the loop through the waker) and
//! replaces the old one at the start of a pass. Connections keep their
//! state; the new limits, rates and timeouts apply from then on.

use std::sync::mpsc::Receiver;
use std::time::Instant;

use super::{Net, Probe, Reactor, ReactorConfig};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Takes new settings from `updates` from now on.
    pub fn take_updates(&mut self, updates: Receiver<ReactorConfig>) {
        self.updates = Some(updates);
    }

    /// Replaces the settings with the newest one delivered, if any. World
    /// output waiting for the world flush waits no longer than the new
    /// interval from now.
    pub(super) fn apply_updates(&mut self, now: Instant) {
        let Some(updates) = &self.updates else {
            return;
        };
        if let Some(cfg) = updates.try_iter().last() {
            let due = now + cfg.world_flush;
            if let Some(at) = &mut self.env.world_flush_at {
                *at = (*at).min(due);
            }
            self.env.cfg = cfg;
        }
    }
}
