//! What crosses the bridge between the reactor and the runtime.
//!
//! These types name no tokio item and no protobuf type: the reactor builds
//! [`Job`]s from the connections' [`Call`]s and consumes [`Completion`]s
//! without knowing how they are carried.

use bytes::Bytes;

use crate::conn::calls::{Call, Reply, RpcError, ServerEntry};
use crate::ids::{ConnRef, RequestId, SessionId};
use crate::protocol::packet_type::Family;

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
    /// World: one packet for many players (encoded once per dialect and
    /// codec by the reactor).
    Broadcast {
        /// Target sessions.
        targets: Vec<u32>,
        /// Packet id in the `osirose` numbering (the packet's name).
        type_id: u16,
        /// Body without the header.
        payload: Bytes,
        /// The layout of the body: the targets' family.
        family: Family,
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
    ServerList(Vec<ServerEntry>),
}
