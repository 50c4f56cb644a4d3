//! Where a test can watch the reactor from inside: every step of every
//! connection's state machine, every farewell at reap and every completion
//! counted stale. Production uses [`NoProbe`], whose empty methods compile
//! to nothing; the seeded simulation checks `conn::check`'s invariants here.
//! Not part of the gateway's API.

use std::time::Instant;

use crate::conn::state::{Action, Ctx, Disposition, Input, Session};
use crate::ids::ConnRef;

/// One step of one session, as [`Probe::after`] sees it.
pub struct Step<'a> {
    /// The connection.
    pub conn: ConnRef,
    /// Its session after the step.
    pub session: &'a Session,
    /// The settings the step read.
    pub ctx: &'a Ctx<'a>,
    /// The input.
    pub input: &'a Input<'a>,
    /// The step's time.
    pub now: Instant,
    /// The actions this step pushed.
    pub actions: &'a [Action],
    /// How the session took the input.
    pub disposition: Disposition,
}

/// Observer of the reactor's state machine steps.
pub trait Probe {
    /// A session is about to handle an input.
    fn before(&mut self, _conn: ConnRef, _session: &Session, _ctx: &Ctx<'_>) {}
    /// It handled it.
    fn after(&mut self, _step: &Step<'_>) {}
    /// A connection was reaped; `on_close` pushed `actions`.
    fn closed(&mut self, _conn: ConnRef, _actions: &[Action]) {}
    /// A completion (or a world event) was counted stale.
    fn stale(&mut self, _input: &Input<'_>) {}
}

/// The production probe: observes nothing.
pub struct NoProbe;

impl Probe for NoProbe {}
