//! The two wire codecs (docs/protocol.md §1, docs/protocol.md §9 D2):
//! framing, the `rose` cipher and the checksums. No I/O.
//!
//! Decoding is incremental and copy-free. [`Codec::peek`] looks at the first
//! six bytes of a receive buffer and says how long the packet is on the wire
//! (or that more bytes are needed), checking the size before anything else;
//! once that many bytes are present [`Codec::open`] decrypts the body in place,
//! verifies the checksum and leaves the plaintext packet in the buffer.
//! Encoding ([`Codec::seal`]) works in place on a plaintext packet.
//!
//! Parts: `header` (the 40-bit `rose` header and its two on-wire orders),
//! `tables` (generators, fill rule, default and seeded key tables), `seeds`
//! (announced seeds and the table sets prepared for them), `rose` and
//! `plain` (framing of each codec), `trial` (finding the table a new
//! connection uses from its first packet).

mod header;
mod plain;
mod rose;
mod seeds;
mod tables;
mod trial;

use crc::{Crc, Table, CRC_8_MAXIM_DOW};

use super::packet_type::Direction;

pub use rose::{RoseEncoder, RoseParams};
pub use seeds::{PreparedSeeds, Seed, TooManySeeds, ZeroSeed, MAX_PREPARED_SEEDS};
pub use tables::{
    Construction, FullTables, Generator, RoseTables, ROSE_SEED, TABLE_COUNT, TABLE_LEN,
};
pub use trial::{Candidate, Candidates, Chosen, TooManyCandidates, MAX_CANDIDATES};

/// Length of the packet header.
pub const HEADER_LEN: usize = 6;
/// Largest packet, header included (11-bit size field).
pub const MAX_PACKET_SIZE: usize = 2047;

/// Slice-by-16: sixteen independent table lookups per step instead of one
/// chain of byte lookups (a 4 KiB table). Every frame in and out is summed,
/// and in a broadcast every receiver sums it again.
static CRC8: Crc<u8, Table<16>> = Crc::<u8, Table<16>>::new(&CRC_8_MAXIM_DOW);

/// Byte 5 of both codecs: CRC-8 over the 5 logical header bytes, then the
/// plaintext body.
fn checksum(logical: &[u8], body: &[u8]) -> u8 {
    let mut digest = CRC8.digest();
    digest.update(logical);
    digest.update(body);
    digest.finalize()
}

/// Which codec a listener speaks (`--codec`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CodecKind {
    /// The osIROSE cipher with the fixed table (the default).
    Rose,
    /// Header in clear, CRC-8 in byte 5; carries STRESS.
    Plain,
}

impl CodecKind {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Rose => "rose",
            CodecKind::Plain => "plain",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(name: &str) -> Option<CodecKind> {
        match name {
            "rose" => Some(CodecKind::Rose),
            "plain" => Some(CodecKind::Plain),
            _ => None,
        }
    }
}

/// Why a frame was refused. Every variant closes the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size field is below 6 or above 2047.
    #[error("packet size {0} outside 6..=2047")]
    BadSize(usize),
    /// The checksum in byte 5 does not match.
    #[error("checksum mismatch")]
    BadChecksum,
    /// `plain` codec: byte 4 is not zero.
    #[error("header byte 4 is not zero")]
    BadHeader,
    /// `rose` codec: the padding count is larger than the body.
    #[error("padding of {ev} bytes in a {size}-byte packet")]
    BadPadding {
        /// Padding count from the header.
        ev: usize,
        /// Wire size.
        size: usize,
    },
    /// The command does not fit the codec (STRESS in `rose`).
    #[error("command {0:#06x} cannot be encoded by this codec")]
    CommandOutOfRange(u16),
}

/// What [`Codec::peek`] learned from a header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes the packet occupies on the wire (padding included).
    pub wire_len: usize,
    /// Plaintext length (`wire_len` minus padding).
    pub data_len: usize,
    /// The packet id.
    pub command: u16,
    checksum: u8,
    logical: [u8; 5],
    atv: usize,
    eav: usize,
}

/// A codec bound to its key tables. Cheap to copy: the tables are shared,
/// never cloned.
#[derive(Copy, Clone)]
pub struct Codec {
    kind: CodecKind,
    tables: &'static RoseTables,
    encoder: RoseEncoder,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("kind", &self.kind)
            .field("encoder", &self.encoder)
            .finish()
    }
}

impl PartialEq for Codec {
    /// Same kind, encoder and table set (the tables compared by address).
    fn eq(&self, other: &Codec) -> bool {
        self.kind == other.kind
            && self.encoder == other.encoder
            && std::ptr::eq(self.tables, other.tables)
    }
}

impl Eq for Codec {}

impl Codec {
    /// A codec of `kind` with the osIROSE conventions (the `rose` tables are
    /// built once per process).
    pub fn new(kind: CodecKind) -> Codec {
        Codec {
            kind,
            tables: RoseTables::default_tables(),
            encoder: RoseEncoder::Osirose,
        }
    }

    /// A `rose` codec with the irose 129en conventions on `tables`: the
    /// default tables on a login connection, a seeded set on world and game
    /// connections (docs/protocol.md §10.2).
    pub fn irose(tables: &'static RoseTables) -> Codec {
        Codec {
            kind: CodecKind::Rose,
            tables,
            encoder: RoseEncoder::Irose,
        }
    }

    /// Which codec this is.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Whose encoder conventions [`Codec::seal`] follows.
    pub fn encoder(&self) -> RoseEncoder {
        self.encoder
    }

    /// The key tables (unused by `plain`).
    pub fn tables(&self) -> &'static RoseTables {
        self.tables
    }

    /// Reads the header at the start of `bytes` (sent in direction `dir`).
    ///
    /// `Ok(None)`: fewer than 6 bytes, read more. The size is validated here,
    /// before the caller waits for or copies the body.
    pub fn peek(&self, dir: Direction, bytes: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
        let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = match self.kind {
            CodecKind::Plain => plain::peek(head)?,
            CodecKind::Rose => rose::peek(self.tables, dir, head)?,
        };
        Ok(Some(header))
    }

    /// Decrypts and verifies the packet `header` describes, in place.
    ///
    /// `bytes` must hold at least `header.wire_len` bytes. On success
    /// `bytes[..header.data_len]` is the plaintext packet with a clean header
    /// (size = data length, command, bytes 4–5 zero).
    pub fn open(&self, header: &FrameHeader, bytes: &mut [u8]) -> Result<(), FrameError> {
        let packet = bytes
            .get_mut(..header.wire_len)
            .ok_or(FrameError::BadSize(header.wire_len))?;
        let data_len = header.data_len;
        if self.kind == CodecKind::Rose {
            self.tables
                .apply_body(header.atv, header.eav, &mut packet[HEADER_LEN..]);
        }
        if checksum(&header.logical, &packet[HEADER_LEN..data_len]) != header.checksum {
            return Err(FrameError::BadChecksum);
        }
        write_plain_header(packet, data_len, header.command);
        Ok(())
    }

    /// Decodes one whole frame in place: peek + open. Returns the header on
    /// success, `Ok(None)` if `bytes` does not yet hold a whole frame.
    pub fn decode(
        &self,
        dir: Direction,
        bytes: &mut [u8],
    ) -> Result<Option<FrameHeader>, FrameError> {
        match self.peek(dir, bytes)? {
            Some(h) if bytes.len() >= h.wire_len => {
                self.open(&h, bytes)?;
                Ok(Some(h))
            }
            _ => Ok(None),
        }
    }

    /// Encodes, in place, a plaintext packet travelling in direction `dir`,
    /// with the cipher parameters of this codec's encoder
    /// ([`RoseEncoder::params`]).
    ///
    /// `packet` is the whole plaintext packet: its length is the size, the
    /// command is read from bytes 2–3 and the body from byte 6 on.
    pub fn seal(&self, dir: Direction, packet: &mut [u8]) -> Result<(), FrameError> {
        self.seal_with(dir, packet, self.encoder.params())
    }

    /// [`Codec::seal`] with explicit cipher parameters (ignored by `plain`).
    /// With `params.ev` > 0 the last `ev` bytes of `packet` are the padding
    /// the caller appended (see [`RoseEncoder`] for how each encoder treats
    /// them).
    pub fn seal_with(
        &self,
        dir: Direction,
        packet: &mut [u8],
        params: RoseParams,
    ) -> Result<(), FrameError> {
        let size = packet.len();
        if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&size) {
            return Err(FrameError::BadSize(size));
        }
        let command = u16::from_le_bytes([packet[2], packet[3]]);
        match self.kind {
            CodecKind::Plain => plain::seal(packet, command),
            CodecKind::Rose => rose::seal(self.tables, self.encoder, dir, packet, command, params),
        }
    }
}

/// Writes `[size, command, 0, 0]` into the first six bytes.
pub fn write_plain_header(packet: &mut [u8], size: usize, command: u16) {
    // size ≤ MAX_PACKET_SIZE by every caller's check, so it fits in u16.
    let size = size.min(MAX_PACKET_SIZE) as u16;
    packet[0..2].copy_from_slice(&size.to_le_bytes());
    packet[2..4].copy_from_slice(&command.to_le_bytes());
    packet[4] = 0;
    packet[5] = 0;
}

#[cfg(test)]
mod irose_tests;
#[cfg(test)]
mod tests;
