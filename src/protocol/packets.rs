//! Typed packets with paired encode/decode
//! (docs/protocol.md §3, §7, §9 D4/D5/D9/D10).
//!
//! Each packet the gateway reads or writes is a plain struct implementing
//! [`Packet`]: `decode` takes the body (the bytes after the 6-byte header) and
//! `encode` writes the body into a [`Writer`]. [`write_packet`] adds the
//! plaintext header for a [`Dialect`]; the caller then seals the packet with
//! its [`Codec`](super::codec::Codec). No I/O happens here.
//!
//! Decoding follows docs/protocol.md §9 D5: a body shorter than its layout's fixed part
//! ([`BodyError::Short`]), a string without its terminator
//! ([`BodyError::NoTerminator`]) or a count that runs past the end
//! ([`BodyError::CountOverrun`]) is malformed and closes the connection;
//! bytes after the layout are ignored. The exceptions are layouts whose last
//! field runs to the end of the packet (`T[*]` lists, the join digest), where
//! there is no "after". Password digests follow docs/protocol.md §9 D4
//! ([`BodyError::BadDigest`]).
//!
//! Text is raw 8-bit on the wire; decoding uses
//! [`String::from_utf8_lossy`], so non-UTF-8 bytes become U+FFFD and do not
//! survive a round trip byte for byte. Plain ASCII always does.
//!
//! Packets by flow: [`handshake`] (accept, keepalive, logout, screen-shot
//! time), [`login`] (login, channel list, server select, join),
//! [`character`] (list, create, delete, select, switch server), [`record`]
//! (the selected character), [`map`] (the rest of the join burst),
//! [`chat`], [`movement`] and [`spawn`] (players coming into view). Every
//! struct is re-exported here.
//! The irose dialect's own layouts are in [`irose`]
//! (docs/protocol.md §10.5); [`ServerPacket::write`] picks the layout by the
//! dialect's family.

/// Declares a packet with an empty body: decoding accepts any body (trailing
/// bytes are ignored), encoding writes nothing.
macro_rules! empty_packet {
    ($(#[$meta:meta])* $name:ident = $ty:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl $crate::protocol::packets::Packet for $name {
            const TYPE: $crate::protocol::packet_type::PacketType =
                $crate::protocol::packet_type::PacketType::$ty;

            fn decode(_body: &[u8]) -> Result<Self, $crate::protocol::packets::BodyError> {
                Ok($name)
            }

            fn encode(&self, _w: &mut $crate::protocol::packets::Writer<'_>) {}
        }
    };
}

pub mod character;
pub mod chat;
pub mod handshake;
pub mod irose;
pub mod login;
pub mod map;
pub mod movement;
pub mod record;
pub mod spawn;

#[cfg(test)]
mod tests;

pub use character::*;
pub use chat::*;
pub use handshake::*;
pub use login::*;
pub use map::*;
pub use movement::*;
pub use record::*;
pub use spawn::*;

use super::codec::{write_plain_header, HEADER_LEN, MAX_PACKET_SIZE};
use super::packet_type::{Dialect, Family, PacketType};

/// Why a body could not be decoded. Every variant closes the connection
/// (docs/protocol.md §9 D5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is shorter than the layout's fixed part.
    #[error("body shorter than its layout")]
    Short,
    /// A `cstr` field has no 0 terminator before the end of the body.
    #[error("string without terminator")]
    NoTerminator,
    /// A count prefix announces more elements than the body holds.
    #[error("count runs past the end of the body")]
    CountOverrun,
    /// A password digest breaks the docs/protocol.md §9 D4 rules (length or
    /// hex digits).
    #[error("password digest is not 32 or 64 hex digits")]
    BadDigest,
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet is larger than [`MAX_PACKET_SIZE`] or than the output buffer.
    #[error("packet larger than 2047 bytes or than the output buffer")]
    TooLarge,
    /// The dialect has no id for this packet type.
    #[error("dialect has no id for {0}")]
    NoId(PacketType),
    /// The dialect's family lays this packet out in a way the value has no
    /// counterpart for (osIROSE's opaque quest data in irose).
    #[error("{0} has no layout in this dialect's family")]
    NoLayout(PacketType),
}

/// A bounds-checked little-endian reader over a packet body.
///
/// Every read either returns a value and advances or returns an error and
/// leaves the position unchanged; nothing panics, whatever the bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The bytes not yet read.
    rest: &'a [u8],
}

/// The little-endian scalars of the layouts, listed once for both
/// [`Reader`] and [`Writer`]: `le_scalars!(m)` calls `m! { name: type, .. }`.
macro_rules! le_scalars {
    ($m:ident) => {
        $m! {
            u8: u8,
            u16: u16,
            u32: u32,
            u64: u64,
            i16: i16,
            i32: i32,
            i64: i64,
            f32: f32,
        }
    };
}

macro_rules! reader_ints {
    ($($name:ident: $ty:ty,)*) => {
        $(
            #[doc = concat!("Reads a little-endian `", stringify!($ty), "`.")]
            pub fn $name(&mut self) -> Result<$ty, BodyError> {
                Ok(<$ty>::from_le_bytes(self.array()?))
            }
        )*
    };
}

impl<'a> Reader<'a> {
    /// A reader at the start of `body`.
    pub fn new(body: &'a [u8]) -> Reader<'a> {
        Reader { rest: body }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Reads exactly `n` bytes ([`BodyError::Short`] if fewer are left).
    pub fn fixed(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        if n > self.rest.len() {
            return Err(BodyError::Short);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads `N` bytes into an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], BodyError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.fixed(N)?);
        Ok(out)
    }

    /// Takes every byte left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Reads a 0-terminated string (the terminator is consumed, not
    /// returned). Raw 8-bit text is decoded with [`String::from_utf8_lossy`].
    pub fn cstr(&mut self) -> Result<String, BodyError> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(BodyError::NoTerminator)?;
        let text = String::from_utf8_lossy(&self.rest[..end]).into_owned();
        self.rest = &self.rest[end + 1..];
        Ok(text)
    }

    le_scalars!(reader_ints);

    /// Reads `count` elements with `element`, for a `T[n]` field whose count
    /// came from the body: running out of bytes inside the list is
    /// [`BodyError::CountOverrun`]. `min_size` is the smallest encoded
    /// element (≥ 1); it bounds the allocation by the bytes actually present.
    pub fn counted<T>(
        &mut self,
        count: usize,
        min_size: usize,
        mut element: impl FnMut(&mut Reader<'a>) -> Result<T, BodyError>,
    ) -> Result<Vec<T>, BodyError> {
        let fits = self.rest.len() / min_size.max(1);
        if count > fits {
            return Err(BodyError::CountOverrun);
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            match element(self) {
                Ok(v) => out.push(v),
                Err(BodyError::Short) => return Err(BodyError::CountOverrun),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Reads elements until the body ends, for a `T[*]` field. A partial
    /// last element is an error (whatever `element` returns).
    pub fn until_end<T>(
        &mut self,
        mut element: impl FnMut(&mut Reader<'a>) -> Result<T, BodyError>,
    ) -> Result<Vec<T>, BodyError> {
        let mut out = Vec::new();
        while !self.rest.is_empty() {
            out.push(element(self)?);
        }
        Ok(out)
    }
}

/// A little-endian writer over a fixed buffer.
///
/// Writes that do not fit set a sticky overflow flag and write nothing
/// (neither that value nor anything after it), so encoding never panics;
/// [`write_packet`] turns the flag into [`EncodeError::TooLarge`].
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    /// Bytes written so far; `pos <= buf.len()`.
    pos: usize,
    overflowed: bool,
}

macro_rules! writer_ints {
    ($($name:ident: $ty:ty,)*) => {
        $(
            #[doc = concat!("Writes a little-endian `", stringify!($ty), "`.")]
            pub fn $name(&mut self, v: $ty) {
                self.bytes(&v.to_le_bytes());
            }
        )*
    };
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer {
            buf,
            pos: 0,
            overflowed: false,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Whether some write did not fit (and was dropped).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Writes raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        if self.overflowed {
            return;
        }
        match self.buf.get_mut(self.pos..self.pos + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.pos += b.len();
            }
            None => self.overflowed = true,
        }
    }

    /// Writes `s` and a 0 terminator. The wire cannot carry a 0 inside a
    /// string, so `s` is cut at its first 0 byte, if any.
    pub fn cstr(&mut self, s: &str) {
        let b = s.as_bytes();
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        self.bytes(&b[..end]);
        self.u8(0);
    }

    le_scalars!(writer_ints);
}

/// One element of a list field, which each family may lay out its own way
/// (a server of the login reply, a character of the character list).
pub trait Element: Sized {
    /// Smallest encoded element (≥ 1), for a counted list's bound.
    const MIN_SIZE: usize = 1;

    /// Reads one element.
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError>;

    /// Writes one element.
    fn encode(&self, w: &mut Writer<'_>);
}

/// A typed packet: its protocol name and its body layout.
pub trait Packet: Sized {
    /// The protocol name; the dialect gives the wire id.
    const TYPE: PacketType;

    /// Decodes a body (the bytes after the 6-byte header). Trailing bytes
    /// after the layout are ignored (docs/protocol.md §9 D5).
    fn decode(body: &[u8]) -> Result<Self, BodyError>;

    /// Encodes the body. Overflow is recorded by the writer.
    fn encode(&self, w: &mut Writer<'_>);
}

/// Writes the plaintext packet (header with size and command, bytes 4–5 zero,
/// then the body) into `out` and returns its size. The caller seals it with
/// the codec.
pub fn write_packet<P: Packet>(
    dialect: &Dialect,
    p: &P,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let command = dialect.wire_id(P::TYPE).ok_or(EncodeError::NoId(P::TYPE))?;
    let limit = out.len().min(MAX_PACKET_SIZE);
    let body = out
        .get_mut(HEADER_LEN..limit)
        .ok_or(EncodeError::TooLarge)?;
    let mut w = Writer::new(body);
    p.encode(&mut w);
    if w.overflowed() {
        return Err(EncodeError::TooLarge);
    }
    let size = HEADER_LEN + w.len();
    write_plain_header(out, size, command);
    Ok(size)
}

/// [`write_packet`] into a new vector of exactly the packet's size.
pub fn packet_to_vec<P: Packet>(dialect: &Dialect, p: &P) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0u8; MAX_PACKET_SIZE];
    let size = write_packet(dialect, p, &mut out)?;
    out.truncate(size);
    Ok(out)
}

/// `v` as a u16 field, saturated at `u16::MAX` when it does not fit.
pub(crate) fn clamp_u16<T: TryInto<u16>>(v: T) -> u16 {
    v.try_into().unwrap_or(u16::MAX)
}

/// Decodes `N` back-to-back elements (a `T[N]` field) into an array.
fn read_array<'a, T: Copy + Default, const N: usize>(
    r: &mut Reader<'a>,
    mut element: impl FnMut(&mut Reader<'a>) -> Result<T, BodyError>,
) -> Result<[T; N], BodyError> {
    let mut out = [T::default(); N];
    for slot in out.iter_mut() {
        *slot = element(r)?;
    }
    Ok(out)
}

/// Writes a u8 count and at most 255 elements (the count cannot say more).
fn write_counted<T>(w: &mut Writer<'_>, items: &[T], mut element: impl FnMut(&mut Writer<'_>, &T)) {
    let items = &items[..items.len().min(usize::from(u8::MAX))];
    w.u8(items.len() as u8);
    for item in items {
        element(w, item);
    }
}

macro_rules! server_packets {
    (
        plain { $($variant:ident,)* }
        boxed { $($bvariant:ident,)* }
    ) => {
        /// Every server → client packet the gateway writes; the connection
        /// state machine returns these as replies. The three big join-burst
        /// packets are boxed; `From` impls build any variant from its struct
        /// (`ServerPacket::from(reply)` or `reply.into()`).
        #[derive(Debug, Clone, PartialEq)]
        pub enum ServerPacket {
            $(
                #[doc = concat!("[`", stringify!($variant), "`].")]
                $variant($variant),
            )*
            $(
                #[doc = concat!("[`", stringify!($bvariant), "`], boxed.")]
                $bvariant(Box<$bvariant>),
            )*
        }

        impl ServerPacket {
            /// The protocol name of the packet.
            pub fn packet_type(&self) -> PacketType {
                match self {
                    $(ServerPacket::$variant(_) => <$variant as Packet>::TYPE,)*
                    $(ServerPacket::$bvariant(_) => <$bvariant as Packet>::TYPE,)*
                }
            }

            /// [`write_packet`] for the packet inside, in the layout of
            /// the dialect's family (for irose, converted where the layouts differ:
            /// `irose/mod.rs`).
            pub fn write(&self, dialect: &Dialect, out: &mut [u8]) -> Result<usize, EncodeError> {
                match dialect.family() {
                    Family::Osirose => self.write_as_is(dialect, out),
                    Family::Irose => irose::write(self, dialect, out),
                }
            }

            /// [`write_packet`] for the packet inside, in its own (osIROSE)
            /// layout.
            fn write_as_is(&self, dialect: &Dialect, out: &mut [u8]) -> Result<usize, EncodeError> {
                match self {
                    $(ServerPacket::$variant(p) => write_packet(dialect, p, out),)*
                    $(ServerPacket::$bvariant(p) => write_packet(dialect, &**p, out),)*
                }
            }

            /// [`ServerPacket::write`] into a new vector of exactly the
            /// packet's size.
            pub fn to_vec(&self, dialect: &Dialect) -> Result<Vec<u8>, EncodeError> {
                let mut out = vec![0u8; MAX_PACKET_SIZE];
                let size = self.write(dialect, &mut out)?;
                out.truncate(size);
                Ok(out)
            }
        }

        $(
            impl From<$variant> for ServerPacket {
                fn from(p: $variant) -> ServerPacket {
                    ServerPacket::$variant(p)
                }
            }
        )*
        $(
            impl From<$bvariant> for ServerPacket {
                fn from(p: $bvariant) -> ServerPacket {
                    ServerPacket::$bvariant(Box::new(p))
                }
            }
        )*
    };
}

server_packets! {
    plain {
        AcceptReply,
        LogoutReply,
        ChanCharReply,
        ScreenShotTimeReply,
        LoginReply,
        ChannelListReply,
        SrvSelectReply,
        JoinServerReply,
        CharListReply,
        CreateCharReply,
        DeleteCharReply,
        SwitchServer,
        ChangeMapReply,
        BillingMessage,
        TeleportReply,
        NormalChatBroadcast,
        WhisperChatReply,
        ShoutChatBroadcast,
        PartyChatBroadcast,
        AnnounceChat,
        MouseCmdBroadcast,
        MoveBroadcast,
        StopBroadcast,
        StopMovingBroadcast,
        SetPositionBroadcast,
        RemoveObject,
    }
    boxed {
        SelectCharReply,
        InventoryData,
        QuestData,
    }
}

/// Expands `$m!(args…, P1, P2, …)` with every typed packet of this module
/// (full paths), for code that must cover them all: fuzz targets, property
/// tests.
#[doc(hidden)]
#[macro_export]
macro_rules! with_every_packet {
    ($m:ident $(, $arg:expr)* $(,)?) => {
        $m!($($arg,)* $crate::protocol::packets::AcceptReq, $crate::protocol::packets::AcceptReply, $crate::protocol::packets::Alive, $crate::protocol::packets::LogoutReq, $crate::protocol::packets::LogoutReply, $crate::protocol::packets::ChangeCharReq, $crate::protocol::packets::ChanCharReply, $crate::protocol::packets::ScreenShotTimeReq, $crate::protocol::packets::ScreenShotTimeReply, $crate::protocol::packets::LoginReq, $crate::protocol::packets::LoginReply, $crate::protocol::packets::ChannelListReq, $crate::protocol::packets::ChannelListReply, $crate::protocol::packets::SrvSelectReq, $crate::protocol::packets::SrvSelectReply, $crate::protocol::packets::JoinServerReq, $crate::protocol::packets::JoinServerReply, $crate::protocol::packets::CharListReq, $crate::protocol::packets::CharListReply, $crate::protocol::packets::CreateCharReq, $crate::protocol::packets::CreateCharReply, $crate::protocol::packets::DeleteCharReq, $crate::protocol::packets::DeleteCharReply, $crate::protocol::packets::SelectCharReq, $crate::protocol::packets::SwitchServer, $crate::protocol::packets::SelectCharReply, $crate::protocol::packets::ChangeMapReq, $crate::protocol::packets::ChangeMapReply, $crate::protocol::packets::InventoryData, $crate::protocol::packets::QuestData, $crate::protocol::packets::BillingMessage, $crate::protocol::packets::TeleportReply, $crate::protocol::packets::NormalChat, $crate::protocol::packets::NormalChatBroadcast, $crate::protocol::packets::WhisperChat, $crate::protocol::packets::WhisperChatReply, $crate::protocol::packets::ShoutChat, $crate::protocol::packets::ShoutChatBroadcast, $crate::protocol::packets::PartyChat, $crate::protocol::packets::PartyChatBroadcast, $crate::protocol::packets::AnnounceChat, $crate::protocol::packets::MouseCmd, $crate::protocol::packets::MouseCmdBroadcast, $crate::protocol::packets::MoveBroadcast, $crate::protocol::packets::Stop, $crate::protocol::packets::StopBroadcast, $crate::protocol::packets::StopMoving, $crate::protocol::packets::StopMovingBroadcast, $crate::protocol::packets::SetPosition, $crate::protocol::packets::SetPositionBroadcast, $crate::protocol::packets::RemoveObject)
    };
}
