//! What a connection asks of the backends and what they answer, in the
//! connection's own words (docs/architecture.md §4).
//!
//! The state machine pushes [`Call`]s and reads [`Reply`]s and
//! [`RpcError`]s; the bridge (`src/rpc/`) carries them, and
//! `src/rpc/convert.rs` alone maps them to and from the backends' protobuf
//! contracts. Nothing here names a generated type.

use bytes::Bytes;

use crate::ids::{CharId, SessionId, UserId};
use crate::protocol::packet_type::Family;
use crate::protocol::packets::DigestKind;

/// One backend call asked for by a connection's state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `Auth.Login`.
    Login {
        /// Account name.
        username: String,
        /// Password digest as received (never logged).
        digest: Vec<u8>,
        /// Which digest form it is.
        kind: DigestKind,
        /// Client address.
        peer: String,
    },
    /// `Auth.SelectServer`.
    SelectServer {
        /// The session from the login.
        session: SessionId,
        /// 1-based server id.
        server_id: u32,
        /// 1-based channel id.
        channel_id: u32,
    },
    /// `Auth.JoinServer`.
    JoinServer {
        /// Session id presented by the client.
        session: SessionId,
        /// Password digest (never logged).
        digest: Vec<u8>,
        /// Which digest form it is.
        kind: DigestKind,
        /// Client address.
        peer: String,
    },
    /// `Auth.Refresh` (fire and forget; a failed refresh closes the connection).
    Refresh {
        /// Session to extend.
        session: SessionId,
    },
    /// `Auth.Logout` (fire and forget).
    Logout {
        /// Session to end.
        session: SessionId,
        /// Why.
        reason: LogoutReason,
    },
    /// `Character.List`.
    ListChars {
        /// Account.
        user: UserId,
    },
    /// `Character.Create`.
    CreateChar {
        /// Account.
        user: UserId,
        /// Request fields from PAKCS_CREATE_CHAR_REQ.
        request: CreateRequest,
    },
    /// `Character.Delete`.
    DeleteChar {
        /// Account.
        user: UserId,
        /// Character resolved from the slot.
        char_id: CharId,
        /// Delete (true) or cancel a scheduled deletion (false).
        delete: bool,
    },
    /// `Character.Select`.
    SelectChar {
        /// Account.
        user: UserId,
        /// Session to bind the character to.
        session: SessionId,
        /// Character resolved from the slot.
        char_id: CharId,
    },
    /// World stream: a player enters (answered by a `Joined` completion).
    WorldJoin {
        /// The player's session.
        session: SessionId,
        /// Account.
        user: UserId,
        /// The selected character.
        char_id: CharId,
        /// The layouts the player's client reads and writes.
        family: Family,
    },
    /// World stream: a map-phase packet, forwarded uninterpreted.
    WorldPacket {
        /// The sender's session.
        session: SessionId,
        /// Packet id in the `osirose` numbering (the packet's name).
        type_id: u16,
        /// Body without the header, in the layout the player joined with.
        payload: Bytes,
    },
    /// World stream: a player leaves.
    WorldLeave {
        /// The player's session.
        session: SessionId,
        /// Why.
        reason: LeaveReason,
    },
}

impl Call {
    /// World stream traffic (travels on its own queue, in order).
    pub fn is_world(&self) -> bool {
        matches!(
            self,
            Call::WorldJoin { .. } | Call::WorldPacket { .. } | Call::WorldLeave { .. }
        )
    }

    /// `(service, method)` names, for logs and metrics.
    pub fn name(&self) -> (&'static str, &'static str) {
        match self {
            Call::Login { .. } => ("auth", "Login"),
            Call::SelectServer { .. } => ("auth", "SelectServer"),
            Call::JoinServer { .. } => ("auth", "JoinServer"),
            Call::Refresh { .. } => ("auth", "Refresh"),
            Call::Logout { .. } => ("auth", "Logout"),
            Call::ListChars { .. } => ("character", "List"),
            Call::CreateChar { .. } => ("character", "Create"),
            Call::DeleteChar { .. } => ("character", "Delete"),
            Call::SelectChar { .. } => ("character", "Select"),
            Call::WorldJoin { .. } => ("world", "Join"),
            Call::WorldPacket { .. } => ("world", "Packet"),
            Call::WorldLeave { .. } => ("world", "Leave"),
        }
    }
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    /// The player asked to (PAKCS_LOGOUT_REQ).
    Logout,
    /// The connection closed.
    Disconnect,
}

/// Why a player leaves the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// The player logged out.
    Logout,
    /// The connection closed (or the join was given up).
    Disconnect,
    /// The player went back to character select.
    ChangeChar,
}

/// The fields of PAKCS_CREATE_CHAR_REQ the character service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// Character name.
    pub name: String,
    /// Race (sex).
    pub race: u8,
    /// Birth stone.
    pub stone: u8,
    /// Hair style.
    pub hair: u8,
    /// Face.
    pub face: u8,
    /// Starting weapon.
    pub weapon: u8,
    /// Starting zone.
    pub zone: u16,
}

/// A successful backend answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `Auth.Login`.
    Login(LoginReply),
    /// `Auth.SelectServer`.
    SelectServer(SelectServerReply),
    /// `Auth.JoinServer`.
    JoinServer(JoinServerReply),
    /// `Auth.Refresh`.
    Refresh(Liveness),
    /// `Auth.Logout`.
    Logout,
    /// `Character.List`: the account's characters, in slot order.
    ListChars(Vec<CharSummary>),
    /// `Character.Create`.
    CreateChar(Outcome),
    /// `Character.Delete`.
    DeleteChar(DeleteReply),
    /// `Character.Select`.
    SelectChar(Outcome),
}

/// A backend's verdict, numbered as the reply packet that carries it to the
/// client numbers its results (the backend contracts use the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: result 0.
    Ok,
    /// Refused with this result code (never 0; a code no packet can carry
    /// arrives as 1, FAILED).
    Refused(u8),
}

impl Outcome {
    /// The result code for the reply packet.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Refused(code) => code,
        }
    }
}

/// Whether a refreshed session is still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Valid, its expiry extended.
    Alive,
    /// Unknown or expired: the connection must close.
    Expired,
}

/// The answer to `Auth.Login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginReply {
    /// Verdict (a LOGIN_REPLY result code).
    pub outcome: Outcome,
    /// Account, when accepted.
    pub user: UserId,
    /// Access level, when accepted.
    pub access: u32,
    /// The new session, when accepted.
    pub session: SessionId,
    /// The server list, when accepted.
    pub servers: Vec<ServerEntry>,
}

/// The answer to `Auth.SelectServer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectServerReply {
    /// Verdict (a SRV_SELECT_REPLY result code).
    pub outcome: Outcome,
    /// The session to hand the client, if the service issued a new one.
    pub session: Option<SessionId>,
}

/// The answer to `Auth.JoinServer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinServerReply {
    /// Verdict (a JOIN_SERVER_REPLY result code).
    pub outcome: Outcome,
    /// The session's account.
    pub user: UserId,
    /// How far the session got.
    pub stage: Stage,
    /// The selected character (stage [`Stage::Map`]).
    pub char_id: CharId,
}

/// How far a session got, as the auth service records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Logged in, no server selected (or a stage the gateway does not know):
    /// nothing to join.
    LoggedIn,
    /// Server selected: the joining connection is character select.
    CharSelect,
    /// Character selected: the joining connection enters the world.
    Map,
}

/// The answer to `Character.Delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteReply {
    /// Verdict.
    pub outcome: Outcome,
    /// Seconds until the character is deleted, when accepted.
    pub remaining_secs: u32,
}

/// One server of the list (LOGIN_REPLY, CHANNEL_LIST_REPLY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// 1-based server id.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// A test server.
    pub test: bool,
    /// Its channels.
    pub channels: Vec<ChannelEntry>,
}

/// One channel of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEntry {
    /// 1-based channel id.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Lowest age allowed.
    pub low_age: u32,
    /// Highest age allowed.
    pub high_age: u32,
    /// Load in percent.
    pub capacity_percent: u32,
}

/// One character of an account (CHAR_LIST_REPLY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSummary {
    /// Backend id.
    pub char_id: CharId,
    /// Name.
    pub name: String,
    /// Race.
    pub race: u32,
    /// Level.
    pub level: u32,
    /// Job.
    pub job: u32,
    /// Seconds until a scheduled deletion (0: none).
    pub remain_secs_until_delete: u32,
    /// Face.
    pub face: u32,
    /// Hair.
    pub hair: u32,
    /// Equipped item words, by equipment slot (at most 8 are shown).
    pub equipped_items: Vec<u32>,
}

/// Why a backend call failed (the client gets the protocol's failure code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcError {
    /// The service could not be reached.
    Unavailable,
    /// No answer within the deadline.
    DeadlineExceeded,
    /// The job queue was full: the call was never made.
    Busy,
    /// Any other gRPC status.
    Failed,
}

impl RpcError {
    /// The errors a call that was made can end with: every one but
    /// [`RpcError::Busy`], which the reactor answers without a call.
    pub const CALLED: &'static [RpcError] = &[
        RpcError::Unavailable,
        RpcError::DeadlineExceeded,
        RpcError::Failed,
    ];

    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RpcError::Unavailable => "unavailable",
            RpcError::DeadlineExceeded => "deadline_exceeded",
            RpcError::Busy => "busy",
            RpcError::Failed => "failed",
        }
    }
}
