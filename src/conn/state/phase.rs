//! The phases of a connection and what each holds (`src/conn/LIFECYCLE.md`
//! draws how they follow each other).

use crate::conn::reason::CloseReason;
use crate::ids::{CharId, SessionId, UserId};

/// One character of the last list sent: the slot index is its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSlot {
    /// Backend id.
    pub char_id: CharId,
    /// Name (echoed in DELETE_CHAR_REPLY).
    pub name: String,
}

/// Data of the character-select phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSelect {
    /// Account.
    pub user: UserId,
    /// Session.
    pub session: SessionId,
    /// Slot → character, from the last CHAR_LIST_REPLY sent (empty until then).
    pub chars: Vec<CharSlot>,
}

/// Which character request is in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharOp {
    /// CHAR_LIST_REQ.
    List,
    /// CREATE_CHAR_REQ.
    Create,
    /// DELETE_CHAR_REQ of this character.
    Delete {
        /// Name for the reply.
        name: String,
    },
    /// SELECT_CHAR_REQ.
    Select,
}

/// The player a map-phase connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Player {
    /// Account.
    pub user: UserId,
    /// Session.
    pub session: SessionId,
    /// Selected character.
    pub char_id: CharId,
}

/// The phase of a connection; each variant holds only what is valid in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connected, nothing established yet.
    New,
    /// LOGIN_REQ sent to the auth service.
    LoginPending,
    /// Logged in on the login connection.
    LoggedIn {
        /// Account.
        user: UserId,
        /// Session opened by the login.
        session: SessionId,
    },
    /// SRV_SELECT_REQ sent to the auth service.
    SelectPending {
        /// Account.
        user: UserId,
        /// Session.
        session: SessionId,
    },
    /// Server selected; the client moves to a new connection.
    Transferring {
        /// Session handed to the client.
        session: SessionId,
    },
    /// JOIN_SERVER_REQ sent to the auth service.
    JoinPending {
        /// The session the client presented.
        session: SessionId,
    },
    /// Joined in the char stage: character select.
    CharSelect(CharSelect),
    /// A character request is in flight.
    CharPending(CharSelect, CharOp),
    /// Joined in the map stage; waiting for the world to accept the player.
    WorldJoinPending(Player),
    /// In the world: map-phase packets are forwarded to the world service.
    InWorld {
        /// Who.
        player: Player,
        /// Entity id assigned by the world.
        entity: u32,
    },
    /// Being closed.
    Closing(CloseReason),
}

impl Phase {
    /// Short name for log prefixes.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::LoginPending => "login-pending",
            Phase::LoggedIn { .. } => "logged-in",
            Phase::SelectPending { .. } => "select-pending",
            Phase::Transferring { .. } => "transferring",
            Phase::JoinPending { .. } => "join-pending",
            Phase::CharSelect(_) => "char-select",
            Phase::CharPending(..) => "char-pending",
            Phase::WorldJoinPending(_) => "world-join-pending",
            Phase::InWorld { .. } => "in-world",
            Phase::Closing(_) => "closing",
        }
    }

    /// Joined and playing: what `players_in_world` counts.
    pub fn is_in_world(&self) -> bool {
        matches!(self, Phase::InWorld { .. })
    }

    /// Waiting for a backend answer: input other than ALIVE is not decoded.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Phase::LoginPending
                | Phase::SelectPending { .. }
                | Phase::JoinPending { .. }
                | Phase::CharPending(..)
                | Phase::WorldJoinPending(_)
        )
    }

    /// The session bound to this connection, if any.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Phase::LoggedIn { session, .. }
            | Phase::SelectPending { session, .. }
            | Phase::Transferring { session } => Some(*session),
            Phase::WorldJoinPending(p) | Phase::InWorld { player: p, .. } => Some(p.session),
            Phase::CharSelect(c) | Phase::CharPending(c, _) => Some(c.session),
            _ => None,
        }
    }
}
