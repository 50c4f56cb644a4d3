//! What crosses the bridge between the reactor and the runtime.
//!
//! These types name no tokio item: the reactor builds [`Job`]s and consumes
//! [`Completion`]s without knowing how they are carried.

use bytes::Bytes;

use crate::ids::{CharId, ConnRef, RequestId, SessionId, UserId};
use crate::pb::{auth, character, world};

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
        kind: auth::DigestKind,
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
        kind: auth::DigestKind,
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
        reason: auth::LogoutReason,
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
        request: character::CreateRequest,
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
    /// World stream: a player enters (answered by [`Completion::Joined`]).
    WorldJoin {
        /// The player's session.
        session: SessionId,
        /// Account.
        user: UserId,
        /// The selected character.
        char_id: CharId,
    },
    /// World stream: a map-phase packet, forwarded uninterpreted.
    WorldPacket {
        /// The sender's session.
        session: SessionId,
        /// Packet id in the `osirose` numbering.
        type_id: u16,
        /// Body without the header.
        payload: Bytes,
    },
    /// World stream: a player leaves.
    WorldLeave {
        /// The player's session.
        session: SessionId,
        /// Why.
        reason: world::LeaveReason,
    },
}

impl Call {
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

/// A call with the connection and request it answers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The asking connection.
    pub conn: ConnRef,
    /// The connection's request id.
    pub request: RequestId,
    /// What to do.
    pub call: Call,
}

/// A successful backend answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `Auth.Login`.
    Login(auth::LoginReply),
    /// `Auth.SelectServer`.
    SelectServer(auth::SelectServerReply),
    /// `Auth.JoinServer`.
    JoinServer(auth::JoinServerReply),
    /// `Auth.Refresh`: whether the session is still alive.
    Refresh(bool),
    /// `Auth.Logout`.
    Logout,
    /// `Character.List`.
    ListChars(character::ListReply),
    /// `Character.Create`.
    CreateChar(character::CreateReply),
    /// `Character.Delete`.
    DeleteChar(character::DeleteReply),
    /// `Character.Select`.
    SelectChar(character::SelectReply),
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

/// Something the runtime hands back to the reactor.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The answer to a [`Job`].
    Rpc {
        /// The connection that asked.
        conn: ConnRef,
        /// The request it answers.
        request: RequestId,
        /// What came back.
        result: Result<Reply, RpcError>,
    },
    /// World: the answer to a join.
    Joined {
        /// The joining session.
        session: SessionId,
        /// Whether the world accepted it.
        ok: bool,
        /// The player's entity id.
        entity_id: u32,
    },
    /// World: one packet for many players (encoded once by the reactor).
    Broadcast {
        /// Target sessions.
        targets: Vec<u32>,
        /// Packet id in the `osirose` numbering.
        type_id: u16,
        /// Body without the header.
        payload: Bytes,
    },
    /// World: disconnect a player.
    Kick {
        /// The player's session.
        session: SessionId,
        /// Why (logged).
        reason: String,
    },
    /// The world stream went down (`false`) or came back (`true`).
    WorldLink(bool),
    /// A fresh copy of the server list (for PAKCS_CHANNEL_LIST_REQ).
    ServerList(Vec<auth::ServerInfo>),
}
