//! The 40-bit logical header of the `rose` cipher, its pieces and the two
//! on-wire bit orders (docs/protocol.md §1.4, §10.1.1).
//!
//! This module knows nothing of the key tables: scrambling takes the five
//! header masks of the packet's column, unscrambling asks for them once it
//! has read the column (atv) from the raw bytes.

use crate::protocol::packet_type::Direction;

/// The logical (unscrambled) `rose` header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct HeaderFields {
    pub(super) size: usize,
    pub(super) command: u16,
    pub(super) atv: usize,
    pub(super) eav: usize,
    pub(super) ev: usize,
}

/// The pieces of the logical header, in the names of docs/protocol.md §1.4.
#[derive(Copy, Clone)]
enum Piece {
    S(u8),
    T(u8),
    R(u8),
}

use Piece::{R, S, T};

/// On-wire order of the pieces, server → client (LSB of byte 0 first).
const SERVER_ORDER: [Piece; 15] = [
    S(2),
    R(1),
    T(3),
    R(7),
    S(3),
    R(3),
    T(2),
    R(4),
    T(1),
    R(5),
    S(4),
    R(6),
    S(1),
    R(2),
    T(4),
];

/// On-wire order of the pieces, client → server.
const CLIENT_ORDER: [Piece; 15] = [
    T(2),
    R(2),
    S(1),
    R(3),
    T(1),
    R(7),
    S(2),
    R(6),
    S(3),
    R(4),
    T(4),
    R(5),
    T(3),
    R(1),
    S(4),
];

/// (width, shift within its value) of each piece.
fn piece_layout(p: Piece) -> (u32, u32) {
    match p {
        // size, command and atv: 3, 3, 3, 2 bits, low bits first.
        S(n) | T(n) | R(n @ 1..=4) => (if n == 4 { 2 } else { 3 }, 3 * u32::from(n - 1)),
        // eav: R5 = bits 0-1, R6 = bits 2-3; ev: R7 = 3 bits.
        R(5) => (2, 0),
        R(6) => (2, 2),
        R(_) => (3, 0),
    }
}

/// Is this piece part of atv (travels unmasked)?
fn is_atv(p: Piece) -> bool {
    matches!(p, R(1..=4))
}

fn order(dir: Direction) -> &'static [Piece; 15] {
    match dir {
        Direction::ServerToClient => &SERVER_ORDER,
        _ => &CLIENT_ORDER,
    }
}

/// Each piece of `dir`'s order with its bit position in the on-wire 40 bits.
fn placed(dir: Direction) -> impl Iterator<Item = (Piece, u32, u32)> {
    order(dir).iter().scan(0u32, |pos, &p| {
        let (width, _) = piece_layout(p);
        let at = *pos;
        *pos += width;
        Some((p, at, width))
    })
}

fn five_to_u64(five: &[u8; 5]) -> u64 {
    u64::from_le_bytes([five[0], five[1], five[2], five[3], five[4], 0, 0, 0])
}

fn u64_to_five(v: u64) -> [u8; 5] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4]]
}

impl HeaderFields {
    /// The 40-bit logical header as 5 little-endian bytes (what the checksum
    /// covers).
    pub(super) fn logical(&self) -> [u8; 5] {
        let v: u64 = (self.size as u64 & 0x7FF)
            | (u64::from(self.command) & 0x7FF) << 11
            | (self.atv as u64 & 0x7FF) << 22
            | (self.eav as u64 & 0xF) << 33
            | (self.ev as u64 & 0x7) << 37;
        u64_to_five(v)
    }

    fn piece(&self, p: Piece) -> u64 {
        let (width, shift) = piece_layout(p);
        let value = match p {
            S(_) => self.size,
            T(_) => usize::from(self.command),
            R(1..=4) => self.atv,
            R(5) | R(6) => self.eav,
            R(_) => self.ev,
        } as u64;
        (value >> shift) & ((1 << width) - 1)
    }

    fn set_piece(&mut self, p: Piece, bits: u64) {
        let (_, shift) = piece_layout(p);
        let bits = (bits as usize) << shift;
        match p {
            S(_) => self.size |= bits,
            T(_) => self.command |= bits as u16,
            R(1..=4) => self.atv |= bits,
            R(5) | R(6) => self.eav |= bits,
            R(_) => self.ev |= bits,
        }
    }

    /// Bytes 0..4 on the wire in direction `dir`: every piece in its place,
    /// XORed with `masks` (the header masks of column `atv`), except the atv
    /// pieces, which travel unmasked.
    pub(super) fn scramble(&self, dir: Direction, masks: [u8; 5]) -> [u8; 5] {
        let mut wire: u64 = 0;
        let mut atv_bits: u64 = 0;
        let mut atv_positions: u64 = 0;
        for (p, at, width) in placed(dir) {
            let bits = self.piece(p) << at;
            if is_atv(p) {
                atv_bits |= bits;
                atv_positions |= ((1u64 << width) - 1) << at;
            } else {
                wire |= bits;
            }
        }
        let masked = (wire ^ five_to_u64(&masks)) & !atv_positions;
        u64_to_five(masked | atv_bits)
    }

    /// Reads the header from bytes 0..4 sent in direction `dir`: atv from its
    /// unmasked pieces, then the rest after XORing with `masks_of(atv)`.
    pub(super) fn unscramble(
        dir: Direction,
        five: &[u8; 5],
        masks_of: impl FnOnce(usize) -> [u8; 5],
    ) -> HeaderFields {
        let raw = five_to_u64(five);
        let mut fields = HeaderFields {
            size: 0,
            command: 0,
            atv: 0,
            eav: 0,
            ev: 0,
        };
        for (p, at, width) in placed(dir).filter(|&(p, _, _)| is_atv(p)) {
            fields.set_piece(p, (raw >> at) & ((1 << width) - 1));
        }
        let clear = raw ^ five_to_u64(&masks_of(fields.atv));
        for (p, at, width) in placed(dir).filter(|&(p, _, _)| !is_atv(p)) {
            fields.set_piece(p, (clear >> at) & ((1 << width) - 1));
        }
        fields
    }
}
