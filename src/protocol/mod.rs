//! The ROSE wire protocol, without I/O: framing and ciphers ([`codec`]), the
//! packet names and dialect tables ([`packet_type`]) and typed packets with
//! paired encode/decode ([`packets`]).

pub mod codec;
pub mod packet_type;
pub mod packets;

pub use codec::{Codec, CodecKind, FrameError, FrameHeader, HEADER_LEN, MAX_PACKET_SIZE};
pub use packet_type::{DialectId, Direction, PacketType};
