//! Framing of the `rose` cipher on any table set (docs/protocol.md §1.4,
//! docs/protocol.md §10.1.1–§10.1.2): the per-packet parameters, the two
//! encoders' conventions, and the header checks done before a body is read.
//!
//! One decoder serves both encoders: it always subtracts ev as padding,
//! accepts any atv / eav / ev, and refuses size < 6, size < 6 + ev and
//! (by the 11-bit field) size > 2047.

use super::header::HeaderFields;
use super::tables::RoseTables;
use super::{checksum, FrameError, FrameHeader, HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{Direction, ID_SPACE};

/// The `rose` cipher's per-packet parameters (docs/protocol.md §1.4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RoseParams {
    /// Table column, 0..2048.
    pub atv: u16,
    /// Table row offset, 0..16.
    pub eav: u8,
    /// Padding count, 0..8 (header only: the caller supplies the padding bytes).
    pub ev: u8,
}

impl RoseParams {
    /// What packet-service sends: osIROSE's column and row, no padding.
    pub const DEFAULT: RoseParams = RoseParams {
        atv: 0x100,
        eav: 4,
        ev: 0,
    };

    /// What the irose 129en encoder (rose-offline) sends in both directions:
    /// column 0, row 0, no padding (docs/protocol.md §10.1.2).
    pub const IROSE: RoseParams = RoseParams {
        atv: 0,
        eav: 0,
        ev: 0,
    };
}

/// Whose conventions a `rose` encoder follows. Decoding is the same for both.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RoseEncoder {
    /// osIROSE: [`RoseParams::DEFAULT`]; the last ev bytes are masked like
    /// the rest of the body (osIROSE declares ev without appending padding,
    /// so those bytes are data), and an ev larger than the body is not
    /// refused.
    Osirose,
    /// irose 129en: [`RoseParams::IROSE`]; ev is the number of padding bytes
    /// actually appended, which travel raw (neither masked nor checksummed);
    /// an ev larger than the body is refused.
    Irose,
}

impl RoseEncoder {
    /// The parameters [`super::Codec::seal`] uses.
    pub fn params(self) -> RoseParams {
        match self {
            RoseEncoder::Osirose => RoseParams::DEFAULT,
            RoseEncoder::Irose => RoseParams::IROSE,
        }
    }
}

/// Reads a `rose` header and checks its size and padding.
pub(super) fn peek(
    tables: &RoseTables,
    dir: Direction,
    head: &[u8; HEADER_LEN],
) -> Result<FrameHeader, FrameError> {
    let five = [head[0], head[1], head[2], head[3], head[4]];
    let fields = HeaderFields::unscramble(dir, &five, |atv| tables.header_masks(atv));
    let size = fields.size;
    if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&size) {
        return Err(FrameError::BadSize(size));
    }
    if fields.ev > size - HEADER_LEN {
        return Err(FrameError::BadPadding {
            ev: fields.ev,
            size,
        });
    }
    Ok(FrameHeader {
        wire_len: size,
        data_len: size - fields.ev,
        command: fields.command,
        checksum: head[5],
        logical: fields.logical(),
        atv: fields.atv,
        eav: fields.eav,
    })
}

/// Seals a plaintext packet (padding included) whose size the caller has
/// checked.
pub(super) fn seal(
    tables: &RoseTables,
    encoder: RoseEncoder,
    dir: Direction,
    packet: &mut [u8],
    command: u16,
    params: RoseParams,
) -> Result<(), FrameError> {
    if usize::from(command) >= ID_SPACE {
        return Err(FrameError::CommandOutOfRange(command));
    }
    let size = packet.len();
    let fields = HeaderFields {
        size,
        command,
        atv: usize::from(params.atv) & 0x7FF,
        eav: usize::from(params.eav) & 0xF,
        ev: usize::from(params.ev) & 0x7,
    };
    // (data_len, end of the masked part)
    let (data_len, masked_end) = match encoder {
        RoseEncoder::Osirose => (size.saturating_sub(fields.ev).max(HEADER_LEN), size),
        RoseEncoder::Irose => {
            if fields.ev > size - HEADER_LEN {
                return Err(FrameError::BadPadding {
                    ev: fields.ev,
                    size,
                });
            }
            (size - fields.ev, size - fields.ev)
        }
    };
    let sum = checksum(&fields.logical(), &packet[HEADER_LEN..data_len]);
    tables.apply_body(fields.atv, fields.eav, &mut packet[HEADER_LEN..masked_end]);
    let five = fields.scramble(dir, tables.header_masks(fields.atv));
    packet[..5].copy_from_slice(&five);
    packet[5] = sum;
    Ok(())
}
