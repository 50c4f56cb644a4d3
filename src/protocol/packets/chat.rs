//! Chat (docs/protocol.md §3.13): what clients send and what they receive.

use super::{BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// Declares a packet whose body is a list of fields read and written in
/// order (`cstr` → `String`, integers by name).
macro_rules! chat_packet {
    (
        $(#[$meta:meta])*
        $name:ident = $ty:ident { $($(#[$fmeta:meta])* $field:ident: $kind:ident,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: chat_packet!(@type $kind),)*
        }

        impl Packet for $name {
            const TYPE: PacketType = PacketType::$ty;

            fn decode(body: &[u8]) -> Result<Self, BodyError> {
                let mut r = Reader::new(body);
                Ok($name { $($field: r.$kind()?,)* })
            }

            fn encode(&self, w: &mut Writer<'_>) {
                $(w.$kind(chat_packet!(@arg self.$field, $kind));)*
            }
        }
    };
    (@type cstr) => { String };
    (@type u16) => { u16 };
    (@arg $e:expr, cstr) => { &$e };
    (@arg $e:expr, u16) => { $e };
}

chat_packet! {
    /// PAKCS_NORMAL_CHAT: say something to nearby players.
    NormalChat = PAKCS_NORMAL_CHAT {
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKWC_NORMAL_CHAT: what a nearby player said.
    NormalChatBroadcast = PAKWC_NORMAL_CHAT {
        /// The speaker's entity id.
        char_id: u16,
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKCS_WHISPER_CHAT: a private message to a named player.
    WhisperChat = PAKCS_WHISPER_CHAT {
        /// Recipient's character name.
        target: cstr,
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKWC_WHISPER_CHAT: a private message delivered (server notices come
    /// from "server msg").
    WhisperChatReply = PAKWC_WHISPER_CHAT {
        /// Sender's character name.
        sender: cstr,
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKCS_SHOUT_CHAT: a message to the whole map.
    ShoutChat = PAKCS_SHOUT_CHAT {
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKWC_SHOUT_CHAT: a shout delivered.
    ShoutChatBroadcast = PAKWC_SHOUT_CHAT {
        /// Sender's character name.
        sender: cstr,
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKCS_PARTY_CHAT: a message to the party.
    PartyChat = PAKCS_PARTY_CHAT {
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKWC_PARTY_CHAT: a party message delivered.
    PartyChatBroadcast = PAKWC_PARTY_CHAT {
        /// The speaker's entity id.
        char_id: u16,
        /// The text.
        message: cstr,
    }
}

chat_packet! {
    /// PAKSW_ANNOUNCE_CHAT: a server-wide announcement.
    AnnounceChat = PAKSW_ANNOUNCE_CHAT {
        /// The text.
        message: cstr,
        /// Who announces it (may be empty).
        name: cstr,
    }
}
