//! The two connections of one irose game session
//! (docs/protocol.md §10.6): the char connection stays open while the map
//! connection plays,
//! the return to character select is answered on it (0x71C), and it must
//! not time out idle meanwhile, since the client sends nothing there.
//!
//! The map connection tells the session's char connection what happens to
//! the player ([`GameEvent`], through the reactor: `Action::TellCharConn`
//! becomes `Input::Game` of the connection that bound itself with
//! `Action::BindCharConn`). osIROSE sessions never bind nor tell: their
//! behaviour is unchanged.

use std::time::Instant;

use crate::conn::calls::LeaveReason;
use crate::ids::SessionId;
use crate::protocol::packet_type::Family;

use super::{replies, Action, Common, Phase, Turn};

/// What a session's map connection tells its char connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameEvent {
    /// The player entered the world.
    Entered,
    /// The player left the world, for this reason.
    Left(LeaveReason),
}

/// Whether a char connection's session has a map connection in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GameConn {
    /// No: the char connection times out idle like any other.
    #[default]
    Closed,
    /// Yes: its idle deadline is pushed back instead of closing it.
    Open,
}

/// Tells the session's char connection, for an irose session.
pub(super) fn tell(common: &Common, session: SessionId, event: GameEvent, out: &mut Vec<Action>) {
    if common.dialect.family() == Family::Irose {
        out.push(Action::TellCharConn(session, event));
    }
}

/// The char connection of an irose session learns what its map
/// connection's player did. Outside character select it concerns nothing.
pub(super) fn on_event(t: &mut Turn<'_, '_>, phase: Phase, event: GameEvent) -> Phase {
    if !matches!(phase, Phase::CharSelect(_) | Phase::CharPending(..)) {
        return phase;
    }
    match event {
        GameEvent::Entered => t.common.game = GameConn::Open,
        GameEvent::Left(reason) => {
            t.common.game = GameConn::Closed;
            // The idle timeout starts over from the end of the game.
            t.common.last_packet = Some(t.now);
            if reason == LeaveReason::ChangeChar {
                t.send(replies::change_char());
            }
        }
    }
    phase
}

/// Whether an expired idle deadline is pushed back rather than closing:
/// the char connection of a session whose player is in the world.
pub(super) fn keeps_alive(common: &mut Common, now: Instant) -> bool {
    if common.game == GameConn::Open {
        common.last_packet = Some(now);
        return true;
    }
    false
}
