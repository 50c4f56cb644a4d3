//! Settings a reload delivers to the running loop: a new [`ReactorConfig`]
//! arrives on a channel (its sender wakes the loop through the waker) and
//! replaces the old one at the start of a pass. Connections keep their
//! state; the new limits, rates and timeouts apply from then on.

use std::sync::mpsc::Receiver;

use super::{Net, Probe, Reactor, ReactorConfig};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Takes new settings from `updates` from now on.
    pub fn take_updates(&mut self, updates: Receiver<ReactorConfig>) {
        self.updates = Some(updates);
    }

    /// Replaces the settings with the newest one delivered, if any.
    pub(super) fn apply_updates(&mut self) {
        let Some(updates) = &self.updates else {
            return;
        };
        if let Some(cfg) = updates.try_iter().last() {
            self.env.cfg = cfg;
        }
    }
}
