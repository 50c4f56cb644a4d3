//! The two wire codecs (docs/protocol.md §1, §9 D2): framing, the `rose` cipher and
//! the checksums. No I/O.
//!
//! Decoding is incremental and copy-free. [`Codec::peek`] looks at the first
//! six bytes of a receive buffer and says how long the packet is on the wire
//! (or that more bytes are needed), checking the size before anything else;
//! once that many bytes are present [`Codec::open`] decrypts the body in place,
//! verifies the checksum and leaves the plaintext packet in the buffer.
//! Encoding ([`Codec::seal`]) works in place on a plaintext packet.

use std::sync::OnceLock;

use crc::{Crc, CRC_8_MAXIM_DOW};

use super::packet_type::Direction;

/// Length of the packet header.
pub const HEADER_LEN: usize = 6;
/// Largest packet, header included (11-bit size field).
pub const MAX_PACKET_SIZE: usize = 2047;
/// The fixed seed of the osIROSE key tables.
pub const ROSE_SEED: u32 = 0x0042_D266;

const CRC8: Crc<u8> = Crc::<u8>::new(&CRC_8_MAXIM_DOW);

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
}

/// A codec bound to its key tables. Cheap to copy.
#[derive(Copy, Clone)]
pub struct Codec {
    kind: CodecKind,
    tables: &'static RoseTables,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("kind", &self.kind).finish()
    }
}

impl Codec {
    /// A codec of `kind` (the `rose` tables are built once per process).
    pub fn new(kind: CodecKind) -> Codec {
        Codec {
            kind,
            tables: RoseTables::default_tables(),
        }
    }

    /// Which codec this is.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Reads the header at the start of `bytes` (sent in direction `dir`).
    ///
    /// `Ok(None)`: fewer than 6 bytes, read more. The size is validated here,
    /// before the caller waits for or copies the body.
    pub fn peek(&self, dir: Direction, bytes: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
        let Some(head) = bytes.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let header = match self.kind {
            CodecKind::Plain => {
                let size = usize::from(u16::from_le_bytes([head[0], head[1]]));
                if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&size) {
                    return Err(FrameError::BadSize(size));
                }
                if head[4] != 0 {
                    return Err(FrameError::BadHeader);
                }
                FrameHeader {
                    wire_len: size,
                    data_len: size,
                    command: u16::from_le_bytes([head[2], head[3]]),
                    checksum: head[5],
                    logical: [head[0], head[1], head[2], head[3], 0],
                    atv: 0,
                    eav: 0,
                }
            }
            CodecKind::Rose => {
                let mut five = [head[0], head[1], head[2], head[3], head[4]];
                let fields = self.tables.unscramble(dir, &mut five);
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
                FrameHeader {
                    wire_len: size,
                    data_len: size - fields.ev,
                    command: fields.command,
                    checksum: head[5],
                    logical: fields.logical(),
                    atv: fields.atv,
                    eav: fields.eav,
                }
            }
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
        let sum = match self.kind {
            CodecKind::Plain => {
                let mut digest = CRC8.digest();
                digest.update(&header.logical);
                digest.update(&packet[HEADER_LEN..data_len]);
                digest.finalize()
            }
            CodecKind::Rose => {
                self.tables
                    .apply_body(header.atv, header.eav, &mut packet[HEADER_LEN..]);
                let mut digest = CRC8.digest();
                digest.update(&header.logical);
                digest.update(&packet[HEADER_LEN..data_len]);
                digest.finalize()
            }
        };
        if sum != header.checksum {
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

    /// Encodes, in place, a plaintext packet travelling in direction `dir`.
    ///
    /// `packet` is the whole plaintext packet: its length is the size, the
    /// command is read from bytes 2–3 and the body from byte 6 on.
    pub fn seal(&self, dir: Direction, packet: &mut [u8]) -> Result<(), FrameError> {
        self.seal_with(dir, packet, RoseParams::DEFAULT)
    }

    /// [`Codec::seal`] with explicit cipher parameters (ignored by `plain`).
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
            CodecKind::Plain => {
                write_plain_header(packet, size, command);
                let mut digest = CRC8.digest();
                digest.update(&packet[..5]);
                digest.update(&packet[HEADER_LEN..]);
                packet[5] = digest.finalize();
            }
            CodecKind::Rose => {
                if usize::from(command) >= super::packet_type::ID_SPACE {
                    return Err(FrameError::CommandOutOfRange(command));
                }
                let fields = HeaderFields {
                    size,
                    command,
                    atv: usize::from(params.atv) & 0x7FF,
                    eav: usize::from(params.eav) & 0xF,
                    ev: usize::from(params.ev) & 0x7,
                };
                let data_len = size.saturating_sub(fields.ev).max(HEADER_LEN);
                let mut digest = CRC8.digest();
                digest.update(&fields.logical());
                digest.update(&packet[HEADER_LEN..data_len]);
                let sum = digest.finalize();
                self.tables
                    .apply_body(fields.atv, fields.eav, &mut packet[HEADER_LEN..]);
                let five = self.tables.scramble(dir, &fields);
                packet[..5].copy_from_slice(&five);
                packet[5] = sum;
            }
        }
        Ok(())
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

/// The logical (unscrambled) `rose` header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct HeaderFields {
    size: usize,
    command: u16,
    atv: usize,
    eav: usize,
    ev: usize,
}

impl HeaderFields {
    /// The 40-bit logical header as 5 little-endian bytes.
    fn logical(&self) -> [u8; 5] {
        let v: u64 = (self.size as u64 & 0x7FF)
            | (u64::from(self.command) & 0x7FF) << 11
            | (self.atv as u64 & 0x7FF) << 22
            | (self.eav as u64 & 0xF) << 33
            | (self.ev as u64 & 0x7) << 37;
        let b = v.to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4]]
    }
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

impl HeaderFields {
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
}

fn order(dir: Direction) -> &'static [Piece; 15] {
    match dir {
        Direction::ServerToClient => &SERVER_ORDER,
        _ => &CLIENT_ORDER,
    }
}

/// The 16 × 2048 key tables of the `rose` cipher (low bytes only are used).
pub struct RoseTables {
    masks: Box<[[u8; 2048]; 16]>,
}

impl RoseTables {
    /// The tables for the fixed osIROSE seed, built on first use.
    pub fn default_tables() -> &'static RoseTables {
        static TABLES: OnceLock<RoseTables> = OnceLock::new();
        TABLES.get_or_init(|| RoseTables::build(ROSE_SEED))
    }

    /// Builds the tables for `seed` (docs/protocol.md §1.4, "Key tables").
    pub fn build(seed: u32) -> RoseTables {
        let full = build_full_tables(seed);
        let mut masks = Box::new([[0u8; 2048]; 16]);
        for (t, table) in full.iter().enumerate() {
            for (j, &v) in table.iter().enumerate() {
                masks[t][j] = v as u8;
            }
        }
        RoseTables { masks }
    }

    /// Low byte of `table[t][column]`.
    pub fn mask(&self, t: usize, column: usize) -> u8 {
        self.masks[t & 15][column & 0x7FF]
    }

    /// XORs the body (which starts at packet offset 6) with its masks.
    fn apply_body(&self, atv: usize, eav: usize, body: &mut [u8]) {
        for (k, b) in body.iter_mut().enumerate() {
            let i = k + HEADER_LEN;
            *b ^= self.mask((eav + i) & 15, (atv + i) & 0x7FF);
        }
    }

    fn scramble(&self, dir: Direction, fields: &HeaderFields) -> [u8; 5] {
        let mut wire: u64 = 0;
        let mut atv_bits: u64 = 0;
        let mut pos = 0;
        for &p in order(dir) {
            let (width, _) = piece_layout(p);
            let bits = fields.piece(p) << pos;
            if is_atv(p) {
                atv_bits |= bits;
            } else {
                wire |= bits;
            }
            pos += width;
        }
        let mut out = [0u8; 5];
        for (k, o) in out.iter_mut().enumerate() {
            *o = (wire >> (8 * k)) as u8 ^ self.mask(k, fields.atv);
            *o |= (atv_bits >> (8 * k)) as u8;
        }
        // atv positions were zero before masking; clear the mask bits there
        // and put atv in, unmasked.
        let atv_positions = atv_mask(dir);
        for (k, o) in out.iter_mut().enumerate() {
            let pos_mask = (atv_positions >> (8 * k)) as u8;
            *o = (*o & !pos_mask) | ((atv_bits >> (8 * k)) as u8 & pos_mask);
        }
        out
    }

    fn unscramble(&self, dir: Direction, five: &mut [u8; 5]) -> HeaderFields {
        let raw = five_to_u64(five);
        let mut fields = HeaderFields {
            size: 0,
            command: 0,
            atv: 0,
            eav: 0,
            ev: 0,
        };
        let mut pos = 0;
        for &p in order(dir) {
            let (width, _) = piece_layout(p);
            if is_atv(p) {
                fields.set_piece(p, (raw >> pos) & ((1 << width) - 1));
            }
            pos += width;
        }
        for (k, b) in five.iter_mut().enumerate() {
            *b ^= self.mask(k, fields.atv);
        }
        let clear = five_to_u64(five);
        let mut pos = 0;
        for &p in order(dir) {
            let (width, _) = piece_layout(p);
            if !is_atv(p) {
                fields.set_piece(p, (clear >> pos) & ((1 << width) - 1));
            }
            pos += width;
        }
        fields
    }
}

fn five_to_u64(five: &[u8; 5]) -> u64 {
    u64::from_le_bytes([five[0], five[1], five[2], five[3], five[4], 0, 0, 0])
}

/// Bit positions of the atv pieces in the on-wire 40 bits of `dir`.
fn atv_mask(dir: Direction) -> u64 {
    let mut mask = 0;
    let mut pos = 0;
    for &p in order(dir) {
        let (width, _) = piece_layout(p);
        if is_atv(p) {
            mask |= ((1u64 << width) - 1) << pos;
        }
        pos += width;
    }
    mask
}

/// The full signed tables (tests check them against protocol.md's values).
fn build_full_tables(seed: u32) -> Vec<[i32; 2048]> {
    // Generator states: BC, AC, MY, VC, each starting at the seed.
    let mut states = [seed as i32; 4];
    let mut draw = |g: usize| -> i32 {
        let s = &mut states[g];
        match g {
            0 => {
                *s = s.wrapping_mul(0x0808_8405).wrapping_add(1);
                *s / 65536
            }
            1 => {
                *s = s.wrapping_mul(0x41C6_4E6D).wrapping_add(12345) & 0x7FFF_FFFF;
                *s
            }
            2 => {
                *s = s.wrapping_mul(0x41C6_4E6D).wrapping_add(12345);
                *s / 65536
            }
            _ => {
                *s = s.wrapping_mul(0x343FD).wrapping_add(0x0026_9EC3) & 0x7FFF_FFFF;
                *s / 65536
            }
        }
    };
    let mut tables: Vec<[i32; 2048]> = Vec::with_capacity(16);
    for t in 0..16 {
        let mut table = [0i32; 2048];
        // Values of table 0's prefix [0..j): a draw must not repeat one of them.
        let mut seen = std::collections::HashSet::with_capacity(2048);
        for j in 0..2048 {
            if j > 0 {
                let prev = if t == 0 {
                    table[j - 1]
                } else {
                    tables[0][j - 1]
                };
                seen.insert(prev);
            }
            let v = loop {
                let v = draw(t % 4);
                if !seen.contains(&v) {
                    break v;
                }
            };
            table[j] = v;
        }
        tables.push(table);
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
            .collect()
    }

    const P1_ALIVE: &str = "06 00 00 05 00 00";
    const P2_ACCEPT_REQ: &str = "06 00 04 05 00 00";
    const P3_ACCEPT_REPLY: &str = "0b 00 d4 05 00 00 02 78 56 34 12";
    const P4_LOGIN_REQ: &str = "4c 00 09 05 00 00 38 63 36 39 37 36 65 35 62 35
        34 31 30 34 31 35 62 64 65 39 30 38 62 64 34 64
        65 65 31 35 64 66 62 31 36 37 61 39 63 38 37 33
        66 63 34 62 62 38 61 38 31 66 36 66 32 61 62 34
        34 38 61 39 31 38 61 64 6d 69 6e 00";
    const P13_NORMAL_CHAT: &str = "09 00 47 05 00 00 68 69 00";
    const E5: &str = "43 b8 b6 92 45 79 9e ad 9b d5 9a 1c 77 ed 7c b0
        0f b5 e8 77 38 c5 53 b9 9e 25 8e 4f 61 6c b3 17
        fe d1 ef f8 0f 46 39 50 80 7b b8 07 84 00 91 b5
        36 87 7d e7 2e 68 e1 31 83 1a 71 4a dd 09 f0 1c
        55 2c 68 73 ee b8 e7 a5 96 c5 60 40";

    #[test]
    fn key_tables_match_check_values() {
        let full = build_full_tables(ROSE_SEED);
        assert_eq!(&full[0][..4], &[14586, -1619, -3009, 8280]);
        let low: Vec<u8> = (0..5).map(|t| full[t][0x100] as u8).collect();
        assert_eq!(low, vec![0x42, 0xa7, 0x12, 0xbe, 0x71]);
    }

    #[test]
    fn body_masks_of_e5() {
        let t = RoseTables::default_tables();
        let masks: Vec<u8> = (6..16).map(|i| t.mask((4 + i) & 15, 0x100 + i)).collect();
        assert_eq!(masks, hex("a6 ce ad ec ad 2a 12 d8 1e 85"));
    }

    fn rose() -> Codec {
        Codec::new(CodecKind::Rose)
    }

    fn check_encrypt(plain: &str, dir: Direction, params: RoseParams, wire: &str) {
        let mut p = hex(plain);
        rose().seal_with(dir, &mut p, params).expect("seal");
        assert_eq!(p, hex(wire), "encrypting {plain}");
    }

    fn check_decrypt(wire: &str, dir: Direction, plain: &str) {
        let mut w = hex(wire);
        let h = rose()
            .decode(dir, &mut w)
            .expect("valid")
            .expect("complete");
        assert_eq!(&w[..h.data_len], &hex(plain)[..], "decrypting {wire}");
    }

    #[test]
    fn vector_e1_alive_both_ways() {
        check_encrypt(P1_ALIVE, C2S, RoseParams::DEFAULT, "c2 a8 32 92 45 74");
        check_decrypt("c2 a8 32 92 45 74", C2S, P1_ALIVE);
    }

    #[test]
    fn vector_e1b_accept_req() {
        check_encrypt(P2_ACCEPT_REQ, C2S, RoseParams::DEFAULT, "c2 e8 32 92 45 04");
        check_decrypt("c2 e8 32 92 45 04", C2S, P2_ACCEPT_REQ);
    }

    #[test]
    fn vector_e2_osirose_server_padding_quirk() {
        let quirk = RoseParams {
            atv: 0x100,
            eav: 4,
            ev: 4,
        };
        // osIROSE declares 4 bytes of padding without adding any. Its checksum
        // covers the whole body; ours (subtracting ev) covers 4 bytes less.
        let wire = "83 2e 1a fc c2 9a a4 b6 fb d8 bf";
        let mut p = hex(P3_ACCEPT_REPLY);
        let mut osirose_sum = CRC8.digest();
        let fields = HeaderFields {
            size: 11,
            command: 0x5d4,
            atv: 0x100,
            eav: 4,
            ev: 4,
        };
        osirose_sum.update(&fields.logical());
        osirose_sum.update(&p[6..]);
        rose().seal_with(S2C, &mut p, quirk).expect("seal");
        p[5] = osirose_sum.finalize();
        assert_eq!(p, hex(wire));
        let mut w = hex(wire);
        assert_eq!(rose().decode(S2C, &mut w), Err(FrameError::BadChecksum));
        let mut p2021 = hex(P3_ACCEPT_REPLY);
        p2021[2] = 0xd2;
        let mut w = p2021.clone();
        let fields = HeaderFields {
            command: 0x5d2,
            ..fields
        };
        let mut sum = CRC8.digest();
        sum.update(&fields.logical());
        sum.update(&w[6..]);
        rose().seal_with(S2C, &mut w, quirk).expect("seal");
        w[5] = sum.finalize();
        assert_eq!(w, hex("83 2e 1a ff c2 4d a4 b6 fb d8 bf"), "E2b");
    }

    #[test]
    fn vector_e3_accept_reply_recommended() {
        check_encrypt(
            P3_ACCEPT_REPLY,
            S2C,
            RoseParams::DEFAULT,
            "83 26 1a fc c2 70 a4 b6 fb d8 bf",
        );
        check_decrypt("83 26 1a fc c2 70 a4 b6 fb d8 bf", S2C, P3_ACCEPT_REPLY);
    }

    #[test]
    fn vector_e4_normal_chat() {
        check_encrypt(
            P13_NORMAL_CHAT,
            C2S,
            RoseParams::DEFAULT,
            "02 d9 36 92 44 68 ce a7 ad",
        );
        check_decrypt("02 d9 36 92 44 68 ce a7 ad", C2S, P13_NORMAL_CHAT);
    }

    #[test]
    fn vector_e5_login_req() {
        check_encrypt(P4_LOGIN_REQ, C2S, RoseParams::DEFAULT, E5);
        check_decrypt(E5, C2S, P4_LOGIN_REQ);
    }

    #[test]
    fn plain_vectors() {
        let plain = Codec::new(CodecKind::Plain);
        for (p, wire) in [
            (P1_ALIVE, "06 00 00 05 00 63"),
            (P2_ACCEPT_REQ, "06 00 04 05 00 fd"),
            (P3_ACCEPT_REPLY, "0b 00 d4 05 00 94 02 78 56 34 12"),
            ("08 00 6d 6f 00 00 65 79", "08 00 6d 6f 00 c7 65 79"),
        ] {
            let mut b = hex(p);
            plain.seal(S2C, &mut b).expect("seal");
            assert_eq!(b, hex(wire));
            let h = plain.decode(C2S, &mut b).expect("valid").expect("whole");
            assert_eq!(&b[..h.data_len], &hex(p)[..]);
        }
        assert_eq!(CRC8.checksum(b"123456789"), 0xA1);
    }

    #[test]
    fn incomplete_is_not_an_error() {
        for codec in [rose(), Codec::new(CodecKind::Plain)] {
            let mut w = hex(P4_LOGIN_REQ);
            codec.seal(C2S, &mut w).expect("seal");
            for cut in 0..w.len() {
                let mut part = w[..cut].to_vec();
                assert_eq!(codec.decode(C2S, &mut part), Ok(None), "cut {cut}");
            }
        }
    }

    #[test]
    fn bad_sizes_are_refused_before_the_body() {
        let plain = Codec::new(CodecKind::Plain);
        assert_eq!(
            plain.peek(C2S, &hex("05 00 00 05 00 00")),
            Err(FrameError::BadSize(5))
        );
        assert_eq!(
            plain.peek(C2S, &hex("00 08 00 05 00 00")),
            Err(FrameError::BadSize(2048))
        );
        assert_eq!(
            plain.peek(C2S, &hex("06 00 00 05 01 00")),
            Err(FrameError::BadHeader)
        );
        // rose: a header that decodes to size 0.
        let mut zero = hex("00 00 00 00 00 00");
        let t = RoseTables::default_tables();
        let fields = HeaderFields {
            size: 3,
            command: 0x500,
            atv: 0x100,
            eav: 4,
            ev: 0,
        };
        zero[..5].copy_from_slice(&t.scramble(C2S, &fields));
        assert_eq!(rose().peek(C2S, &zero), Err(FrameError::BadSize(3)));
    }

    #[test]
    fn checksum_mismatch_is_detected() {
        let mut w = hex("c2 a8 32 92 45 75");
        assert_eq!(rose().decode(C2S, &mut w), Err(FrameError::BadChecksum));
        let mut w = hex("06 00 00 05 00 64");
        assert_eq!(
            Codec::new(CodecKind::Plain).decode(C2S, &mut w),
            Err(FrameError::BadChecksum)
        );
    }

    #[test]
    fn rose_padding_is_discarded() {
        // A client that pads: 4 extra bytes, ev = 4.
        let mut w = hex(P13_NORMAL_CHAT);
        w.extend_from_slice(&[0xAA; 4]);
        let size = w.len() as u16;
        w[0..2].copy_from_slice(&size.to_le_bytes());
        let params = RoseParams {
            atv: 0x123,
            eav: 7,
            ev: 4,
        };
        rose().seal_with(C2S, &mut w, params).expect("seal");
        let h = rose().decode(C2S, &mut w).expect("valid").expect("whole");
        assert_eq!((h.wire_len, h.data_len), (13, 9));
        assert_eq!(&w[..9], &hex(P13_NORMAL_CHAT)[..]);
    }

    #[test]
    fn stress_does_not_fit_rose() {
        let mut p = hex("08 00 6d 6f 00 00 65 79");
        assert_eq!(
            rose().seal(C2S, &mut p),
            Err(FrameError::CommandOutOfRange(0x6f6d))
        );
    }

    #[test]
    fn round_trip_all_params() {
        let mut body = hex(P4_LOGIN_REQ);
        body.truncate(40);
        body[0] = 40;
        for dir in [C2S, S2C] {
            for atv in [0u16, 1, 0x7FF, 0x400] {
                for eav in [0u8, 15] {
                    let mut w = body.clone();
                    rose()
                        .seal_with(dir, &mut w, RoseParams { atv, eav, ev: 0 })
                        .expect("seal");
                    let h = rose().decode(dir, &mut w).expect("ok").expect("whole");
                    assert_eq!(&w[..h.data_len], &body[..]);
                }
            }
        }
    }
}
