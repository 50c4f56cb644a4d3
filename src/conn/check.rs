//! Invariants of the connection state machine, checked after every step by
//! the `session` fuzz target, the property tests and the seeded simulation
//! (docs/architecture.md §13.12). Not part of the gateway's API: hidden from the docs and
//! used only by tests.
//!
//! [`Checker`] looks at one [`Session`] from the outside: a snapshot before
//! each [`Session::handle`] call, the actions it pushed and the session
//! after it. [`Op`] (in `check/harness.rs`) is a plain-data model of
//! everything the reactor can feed a session, built from a few numbers and
//! bytes so that `arbitrary` (fuzzing), proptest and a seeded PRNG
//! (simulation) can all drive the same [`Harness`].

mod harness;

use std::time::Instant;

use crate::ids::{RequestId, SessionId};
use crate::protocol::codec::{Codec, CodecKind, HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{DialectId, Direction, Family, PacketType};
use crate::protocol::packets::ServerPacket;

use super::calls::Call;
use super::reason::CloseReason;
use super::state::{Action, Ctx, Disposition, Input, Phase, Session};
pub use harness::{
    client_packet, client_packet_in, client_types, reply, test_ctx, Harness, Op, MAX_BODY,
};

/// What the checker remembers of a session just before a step.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    pending: Option<(RequestId, Instant)>,
    deadline: Option<Instant>,
    closed: bool,
    farewell: Farewell,
}

impl Before {
    /// Snapshot of `session` before it handles an input.
    pub fn of(session: &Session, ctx: &Ctx<'_>) -> Before {
        Before {
            pending: session.pending_request(),
            deadline: session.next_deadline(ctx),
            closed: matches!(session.phase(), Phase::Closing(_)),
            farewell: Farewell::of(session),
        }
    }
}

/// What closing a connection in a phase owes the backends, stated here
/// apart from the state machine so that a slip in one shows against the
/// other. Every close — one the state machine decides, or the reaper's
/// `on_close` — must send exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Farewell {
    /// Nothing: no session, or a login connection, which closes by design
    /// after a server select (the session lives on for the join and expires
    /// by TTL otherwise).
    #[default]
    Nothing,
    /// Exactly one auth Logout: the character-select connection ends the
    /// session (docs/protocol.md §4 step 10). An irose one also stops being
    /// the session's char connection (`paired`: one UnbindCharConn).
    Logout {
        /// irose: one UnbindCharConn.
        paired: bool,
    },
    /// Exactly one world Leave: a player in (or entering) the world leaves it.
    /// An irose player in the world also tells its char connection (`paired`:
    /// one TellCharConn).
    Leave {
        /// irose, in the world: one TellCharConn.
        paired: bool,
    },
    /// An irose game connection closed after its logout or return to
    /// character select (`logged_out`): its world Leave and TellCharConn,
    /// and for a logout its auth Logout, were the answer's own.
    LoggedOut {
        /// A logout (not a return to character select): one Logout.
        logout: bool,
    },
}

impl Farewell {
    fn of(session: &Session) -> Farewell {
        let irose = session.dialect().family() == Family::Irose;
        match session.phase() {
            Phase::CharSelect(_) | Phase::CharPending(..) => Farewell::Logout { paired: irose },
            Phase::WorldJoinPending { .. } => Farewell::Leave { paired: false },
            Phase::InWorld { .. } => Farewell::Leave { paired: irose },
            _ => Farewell::Nothing,
        }
    }

    /// Checks the farewells among `actions`, pushed by a close from a
    /// phase that owes `self`.
    fn check(self, actions: &[Action]) -> Result<(), String> {
        let count = |f: fn(&Call) -> bool| {
            actions
                .iter()
                .filter(|a| matches!(a, Action::Notify(_, c) if f(c)))
                .count()
        };
        let logouts = count(|c| matches!(c, Call::Logout { .. }));
        let leaves = count(|c| matches!(c, Call::WorldLeave { .. }));
        let unbinds = actions
            .iter()
            .filter(|a| matches!(a, Action::UnbindCharConn(_)))
            .count();
        let tells = actions
            .iter()
            .filter(|a| matches!(a, Action::TellCharConn(..)))
            .count();
        let expected = match self {
            Farewell::Nothing => (0, 0, 0, 0),
            Farewell::Logout { paired } => (1, 0, usize::from(paired), 0),
            Farewell::Leave { paired } => (0, 1, 0, usize::from(paired)),
            Farewell::LoggedOut { logout } => (usize::from(logout), 1, 0, 1),
        };
        if (logouts, leaves, unbinds, tells) != expected {
            return Err(format!(
                "a close owing {self:?} sent {logouts} Logout, {leaves} Leave, \
                 {unbinds} UnbindCharConn and {tells} TellCharConn: {actions:?}"
            ));
        }
        Ok(())
    }
}

/// Checks every step of one session. Errors say which invariant broke.
#[derive(Debug, Default, Clone)]
pub struct Checker {
    /// The session has reached `Closing`: nothing may come out of it but
    /// what `on_close` says.
    closed: bool,
    /// What a close owes the backends in the phase after the last step.
    farewell: Farewell,
    /// The session this connection bound for world routing, if any.
    bound: Option<SessionId>,
}

impl Checker {
    /// A checker for a fresh session.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Checks the step `session.handle(ctx, input, now, ..)` that pushed
    /// `actions` and returned `disposition`; `before` was taken just before.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        before: &Before,
        session: &Session,
        ctx: &Ctx<'_>,
        input: &Input<'_>,
        now: Instant,
        actions: &[Action],
        disposition: Disposition,
    ) -> Result<(), String> {
        let phase = session.phase();
        let closing = matches!(phase, Phase::Closing(_));
        if before.closed || self.closed {
            if !actions.is_empty() {
                return Err(format!("closed session acted: {actions:?}"));
            }
            if !closing {
                return Err(format!("closed session reopened as {}", phase.name()));
            }
        }
        if disposition == Disposition::Stale
            && !matches!(input, Input::Completion { .. } | Input::Joined { .. })
        {
            return Err(format!("{input:?} reported stale"));
        }
        // Closing is terminal, within the step too.
        let mut closed_here = false;
        let mut logged_out = false;
        let mut calls = Vec::new();
        for action in actions {
            match action {
                Action::Close(reason) => {
                    if closed_here {
                        return Err(format!("closed twice: {actions:?}"));
                    }
                    closed_here = true;
                    logged_out = *reason == CloseReason::LoggedOut;
                }
                Action::Send(_)
                | Action::Call(..)
                | Action::Echo
                | Action::BindSession(_)
                | Action::BindCharConn(_)
                    if closed_here =>
                {
                    return Err(format!("{action:?} after Close in {actions:?}"));
                }
                _ => {}
            }
            match action {
                Action::BindSession(s) => self.bound = Some(*s),
                Action::Notify(_, call) => self.check_leave(call)?,
                Action::Send(p) => check_send_in(p, session.dialect().family())?,
                Action::Call(id, _) => calls.push(*id),
                Action::Echo if !matches!(input, Input::Packet { ptype, .. } if *ptype == PacketType::STRESS) =>
                {
                    return Err(format!("Echo for {input:?}"));
                }
                _ => {}
            }
        }
        if closed_here != (closing && !before.closed) {
            return Err(format!(
                "Close action ({closed_here}) disagrees with phase {}",
                phase.name()
            ));
        }
        // An irose player's logout or return to character select answers
        // 0x707, leaves the world and closes the game connection as
        // `logged_out` (docs/protocol.md §10.5.14); nothing else closes so.
        // Some(true): a logout; Some(false): a return to character select.
        let leaving = match input {
            Input::Packet { ptype, .. } => match *ptype {
                PacketType::PAKCS_LOGOUT_REQ => Some(true),
                PacketType::PAKCS_CHANGE_CHAR_REQ => Some(false),
                _ => None,
            },
            _ => None,
        };
        let irose_player = before.farewell == (Farewell::Leave { paired: true });
        if logged_out != (irose_player && leaving.is_some()) {
            return Err(format!(
                "logged_out close ({logged_out}) for {input:?} owing {:?}: {actions:?}",
                before.farewell
            ));
        }
        if logged_out {
            let answered = actions
                .iter()
                .any(|a| matches!(a, Action::Send(ServerPacket::LogoutReply(_))));
            let unbound = actions
                .iter()
                .any(|a| matches!(a, Action::UnbindSession(_)));
            if !(answered && unbound) {
                return Err(format!(
                    "a logged_out close without its LOGOUT_REPLY ({answered}) or \
                     UnbindSession ({unbound}): {actions:?}"
                ));
            }
        }
        if closed_here {
            let owed = match leaving.filter(|_| logged_out) {
                Some(logout) => Farewell::LoggedOut { logout },
                None => before.farewell,
            };
            owed.check(actions)?;
        }
        // A second join of the session elsewhere kicks this connection: it
        // closes as `kicked` (docs/protocol.md §9 D15).
        if matches!(input, Input::Kicked)
            && !before.closed
            && !matches!(phase, Phase::Closing(CloseReason::Kicked))
        {
            return Err(format!("Kicked left the session in {}", phase.name()));
        }
        self.closed |= closing;
        self.farewell = Farewell::of(session);
        // At most one backend call pending at a time.
        let pending = session.pending_request();
        if calls.len() > 1 {
            return Err(format!("{} calls in one step: {actions:?}", calls.len()));
        }
        if let Some(&id) = calls.first() {
            if let Some((old, _)) = before.pending {
                let resolved = match input {
                    Input::Completion { request, .. } => *request == old,
                    Input::Tick => true,
                    _ => false,
                };
                if !resolved {
                    return Err(format!("call {id:?} while {old:?} is pending"));
                }
            }
            if !closing && pending.map(|p| p.0) != Some(id) {
                return Err(format!("call {id:?} made but {pending:?} pending"));
            }
        }
        if closing {
            if pending.is_some() {
                return Err(format!("closed with {pending:?} pending"));
            }
            if session.next_deadline(ctx).is_some() {
                return Err("closed session has a deadline".into());
            }
            return Ok(());
        }
        // Every wait has a deadline: no session waits forever.
        if phase.is_waiting() != pending.is_some() {
            return Err(format!(
                "phase {} waiting={} but pending={pending:?}",
                phase.name(),
                phase.is_waiting()
            ));
        }
        if let Some((_, at)) = pending {
            if at > now + ctx.rpc_deadline {
                return Err(format!("pending deadline beyond {:?}", ctx.rpc_deadline));
            }
        }
        // The next deadline is in the future (a Tick at `now` consumed what
        // was due; otherwise only an already overdue deadline may remain).
        let Some(next) = session.next_deadline(ctx) else {
            return Err(format!("open session in {} has no deadline", phase.name()));
        };
        let overdue_before = before.deadline.is_some_and(|b| next >= b);
        if next <= now && (matches!(input, Input::Tick) || !overdue_before) {
            return Err(format!(
                "next deadline {:?} not after now in {} (after {input:?})",
                now.saturating_duration_since(next),
                phase.name()
            ));
        }
        Ok(())
    }

    /// Checks what `Session::on_close` pushed: only farewells to the
    /// backends, exactly those the phase owes (none once the state machine
    /// closed the connection itself: it said them then).
    pub fn closed(&mut self, actions: &[Action]) -> Result<(), String> {
        self.closed = true;
        for action in actions {
            match action {
                Action::Notify(_, call) => self.check_leave(call)?,
                Action::UnbindSession(_) | Action::UnbindCharConn(_) | Action::TellCharConn(..) => {
                }
                _ => return Err(format!("on_close pushed {action:?}")),
            }
        }
        let owed = self.farewell;
        self.farewell = Farewell::Nothing;
        owed.check(actions)
    }
}

impl Checker {
    /// A world Leave names the session this connection bound, never
    /// another: with the join id the reactor stamps on it, closing an older
    /// connection of a session cannot remove the newer player
    /// (docs/protocol.md §9 D15).
    fn check_leave(&self, call: &Call) -> Result<(), String> {
        match call {
            Call::WorldLeave { session, .. } if self.bound != Some(*session) => Err(format!(
                "Leave of session {} from a connection bound to {:?}",
                session.0, self.bound
            )),
            _ => Ok(()),
        }
    }
}

/// A reply to an osIROSE client must encode in both osIROSE numberings,
/// fit 2047 bytes and seal in both codecs, or the reactor could not send it.
pub fn check_send(p: &ServerPacket) -> Result<(), String> {
    check_send_in(p, Family::Osirose)
}

/// [`check_send`] for a client of `family`: every dialect of the family.
pub fn check_send_in(p: &ServerPacket, family: Family) -> Result<(), String> {
    let mut buf = [0u8; MAX_PACKET_SIZE];
    let dialects = DialectId::ALL.into_iter().filter(|d| d.family() == family);
    for dialect in dialects {
        let n = p
            .write(dialect.dialect(), &mut buf)
            .map_err(|e| format!("{} does not encode: {e}", p.packet_type()))?;
        if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&n) {
            return Err(format!("{} encodes to {n} bytes", p.packet_type()));
        }
        for kind in [CodecKind::Rose, CodecKind::Plain] {
            let mut frame = buf[..n].to_vec();
            Codec::new(kind)
                .seal(Direction::ServerToClient, &mut frame)
                .map_err(|e| format!("{} does not seal: {e}", p.packet_type()))?;
        }
    }
    Ok(())
}
