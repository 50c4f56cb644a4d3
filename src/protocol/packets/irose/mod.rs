//! Typed packets of the irose 129en dialect with paired encode/decode
//! (docs/protocol.md §10.5), where their layouts differ from osIROSE's:
//! [`login`] (accept reply, MD5 login and join, the server list without
//! test bytes), [`characters`] (the character list), [`zone`] (the join
//! burst and the 0x753 reply) and [`entities`] (player spawn, removal).
//!
//! Packets whose layout is osIROSE's are re-exported here under the same
//! names, so a tool speaking irose finds every packet of its flow in one
//! place. They differ in meaning only: the server-select reply and the
//! switch-server packet carry the seed the next connection's table is
//! built from (docs/protocol.md §10.2), and the join reply carries a
//! sequence id and pay flags instead of an entity id.
//!
//! [`write`] encodes a [`ServerPacket`] — the dialect-neutral reply the
//! connection state machine builds — in the irose layout: the packets
//! that differ are converted (`From` impls beside each packet), the others
//! are written as they are.

pub mod characters;
pub mod entities;
pub mod login;
pub mod zone;

#[cfg(test)]
mod tests;

pub use super::{
    AcceptReq, Alive, AnnounceChat, ChanCharReply, ChangeCharReq, ChangeMapReq, ChannelInfo,
    ChannelListReply, ChannelListReq, CharListReq, CreateCharReply, CreateCharReq, DeleteCharReply,
    DeleteCharReq, JoinServerReply, LogoutReply, LogoutReq, MouseCmd, MouseCmdBroadcast,
    MoveBroadcast, NormalChat, NormalChatBroadcast, SelectCharReq, SetPositionBroadcast, ShoutChat,
    ShoutChatBroadcast, SrvSelectReply, SrvSelectReq, Stop, StopBroadcast, StopMoving,
    SwitchServer, WhisperChat, WhisperChatReply,
};
pub use characters::{CharInfo, CharListReply, ListItem};
pub use entities::{CommandState, EntityHeader, PlayerSpawn, RemoveEntities, SpawnClan, Store};
pub use login::{AcceptReply, JoinServerReq, LoginReply, LoginReq, ServerInfo};
pub use zone::{ActiveQuest, ChangeMapReply, InventoryData, QuestData, SelectCharReply};

use super::{write_packet, EncodeError, ServerPacket};
use crate::protocol::packet_type::Dialect;

/// [`ServerPacket::write`] for an irose dialect: the packet in its irose
/// layout.
pub(super) fn write(
    p: &ServerPacket,
    dialect: &Dialect,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    match p {
        ServerPacket::AcceptReply(r) => write_packet(dialect, &AcceptReply::from(r), out),
        ServerPacket::LoginReply(r) => write_packet(dialect, &LoginReply::from(r), out),
        ServerPacket::CharListReply(r) => write_packet(dialect, &CharListReply::from(r), out),
        ServerPacket::ChangeMapReply(r) => write_packet(dialect, &ChangeMapReply::from(r), out),
        ServerPacket::SelectCharReply(r) => {
            write_packet(dialect, &SelectCharReply::from(&**r), out)
        }
        ServerPacket::InventoryData(r) => write_packet(dialect, &InventoryData::from(&**r), out),
        // osIROSE's quest data is opaque: it has no irose counterpart.
        ServerPacket::QuestData(_) => Err(EncodeError::NoLayout(p.packet_type())),
        // Among these, a removal of one entity: osIROSE's layout (one u16)
        // is 0x794's with one id, so it is written with no list to allocate.
        same => same.write_as_is(dialect, out),
    }
}

/// Expands `$m!(args…, P1, P2, …)` with every irose packet of this module
/// whose layout is its own (full paths), for code that must cover them all.
#[doc(hidden)]
#[macro_export]
macro_rules! with_every_irose_packet {
    ($m:ident $(, $arg:expr)* $(,)?) => {
        $m!($($arg,)* $crate::protocol::packets::irose::AcceptReply, $crate::protocol::packets::irose::LoginReq, $crate::protocol::packets::irose::LoginReply, $crate::protocol::packets::irose::JoinServerReq, $crate::protocol::packets::irose::CharListReply, $crate::protocol::packets::irose::SelectCharReply, $crate::protocol::packets::irose::InventoryData, $crate::protocol::packets::irose::QuestData, $crate::protocol::packets::irose::ChangeMapReply, $crate::protocol::packets::irose::PlayerSpawn, $crate::protocol::packets::irose::RemoveEntities)
    };
}
