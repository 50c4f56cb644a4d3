//! `replay --wireshark-lua`: writes the Wireshark dissector
//! `tools/wireshark/rose.lua` from the project's own tables, so that the
//! dissector cannot drift from the gateway.
//!
//! The output is a generated data block followed by the hand-written
//! dissector ([`TEMPLATE`], `src/wireshark/dissector.lua`). Generated:
//!
//! * the packet names of every id, per dialect and direction, through the
//!   same lookup `--dump` uses ([`crate::decode::packet_type`]);
//! * the names of the result codes (`rose_client::results`);
//! * the 16 × 2048 low bytes of the `rose` key tables, as hex, one string
//!   per table, read from [`RoseTables`]. Embedding them (64 KiB of text,
//!   decoded at load in a few milliseconds) rather than rebuilding them in
//!   Lua keeps a second implementation of the generators — signed 32-bit
//!   arithmetic that Lua 5.2's doubles and Lua 5.4's integers do differently
//!   — out of the dissector: the bytes are the ones the gateway uses;
//! * where each bit of the 40-bit logical `rose` header travels on the
//!   wire, per direction, measured by sealing headers with the codec
//!   ([`header_bits`]);
//! * the CRC-8/MAXIM table the checksums use.

use std::fmt::Write as _;

use crc::{Crc, CRC_8_MAXIM_DOW};
use packet_service::protocol::codec::{RoseParams, RoseTables};
use packet_service::protocol::packet_type::{DialectId, ID_SPACE, STRESS_ID};
use packet_service::protocol::{Codec, CodecKind, Direction, HEADER_LEN, MAX_PACKET_SIZE};

use crate::decode::packet_type;
use crate::reassembly::Side;

/// The hand-written part of the dissector.
pub const TEMPLATE: &str = include_str!("wireshark/dissector.lua");

/// Where the generated file lives, from the repository root.
pub const OUTPUT: &str = "tools/wireshark/rose.lua";

/// The command that regenerates [`OUTPUT`].
pub const REGENERATE: &str = "make wireshark-lua";

/// The gateway's default service port (the dissector's default).
pub const DEFAULT_PORT: u16 = 29000;

/// Every dialect. The match is exhaustive: a new dialect does not compile
/// until it is listed here, so the dissector cannot miss one.
pub fn dialects() -> Vec<DialectId> {
    let all = [DialectId::Osirose, DialectId::Osirose2021, DialectId::Irose];
    for d in all {
        match d {
            DialectId::Osirose | DialectId::Osirose2021 | DialectId::Irose => {}
        }
    }
    all.to_vec()
}

/// The logical `rose` header (docs/protocol.md §1.4): the fields in the order
/// of the 40-bit value the checksum covers, with their widths.
pub const LOGICAL_FIELDS: [(&str, u32); 5] = [
    ("size", 11),
    ("command", 11),
    ("atv", 11),
    ("eav", 4),
    ("ev", 3),
];

/// First logical bit of each field of [`LOGICAL_FIELDS`].
fn field_start(name: &str) -> u32 {
    let mut start = 0;
    for (n, width) in LOGICAL_FIELDS {
        if n == name {
            return start;
        }
        start += width;
    }
    start
}

/// A logical header to seal: (size, command, atv, eav, ev).
#[derive(Copy, Clone)]
struct Logical {
    size: usize,
    command: u16,
    atv: u16,
    eav: u8,
    ev: u8,
}

fn sealed_header(dir: Direction, h: Logical) -> Result<u64, String> {
    let mut packet = vec![0u8; h.size];
    packet[2..4].copy_from_slice(&h.command.to_le_bytes());
    let params = RoseParams {
        atv: h.atv,
        eav: h.eav,
        ev: h.ev,
    };
    Codec::new(CodecKind::Rose)
        .seal_with(dir, &mut packet, params)
        .map_err(|e| format!("sealing a probe header: {e}"))?;
    let mut b = [0u8; 8];
    b[..5].copy_from_slice(&packet[..5]);
    Ok(u64::from_le_bytes(b))
}

/// For each of the 40 wire bits of a `rose` header sent in `dir` (bit 0 =
/// LSB of byte 0), the logical bit it carries ([`LOGICAL_FIELDS`] order).
///
/// Measured through the codec: the masks depend on atv alone, so with atv
/// fixed, flipping one logical bit of size, command, eav or ev flips exactly
/// one wire bit; the 11 wire bits left carry atv unmasked, and flipping one
/// atv bit sets exactly one of them.
pub fn header_bits(dir: Direction) -> Result<[u8; 40], String> {
    // Size 0x406: every single-bit flip stays within 6..=2047.
    let base = Logical {
        size: 0x406,
        command: 0,
        atv: 0,
        eav: 0,
        ev: 0,
    };
    let w0 = sealed_header(dir, base)?;
    let mut map = [u8::MAX; 40];
    let mut probes: Vec<(u32, Logical)> = Vec::new();
    for k in 0..11 {
        probes.push((
            field_start("size") + k,
            Logical {
                size: base.size ^ (1 << k),
                ..base
            },
        ));
        probes.push((
            field_start("command") + k,
            Logical {
                command: 1 << k,
                ..base
            },
        ));
    }
    for k in 0..4 {
        probes.push((
            field_start("eav") + k,
            Logical {
                eav: 1 << k,
                ..base
            },
        ));
    }
    for k in 0..3 {
        probes.push((field_start("ev") + k, Logical { ev: 1 << k, ..base }));
    }
    for (logical, probe) in probes {
        place(&mut map, sealed_header(dir, probe)? ^ w0, logical)?;
    }
    let atv_positions: u64 = (0..40)
        .filter(|&p| map[p] == u8::MAX)
        .fold(0, |m, p| m | 1 << p);
    for k in 0..11 {
        let w = sealed_header(
            dir,
            Logical {
                atv: 1 << k,
                ..base
            },
        )?;
        place(&mut map, w & atv_positions, field_start("atv") + k)?;
    }
    Ok(map)
}

/// Records that the single set bit of `wire` carries logical bit `logical`.
fn place(map: &mut [u8; 40], wire: u64, logical: u32) -> Result<(), String> {
    if wire.count_ones() != 1 || wire >= 1 << 40 {
        return Err(format!(
            "logical bit {logical} does not travel in one wire bit"
        ));
    }
    let p = wire.trailing_zeros() as usize;
    if map[p] != u8::MAX {
        return Err(format!("wire bit {p} carries two logical bits"));
    }
    map[p] = logical as u8;
    Ok(())
}

fn lua_str(s: &str) -> String {
    format!("{s:?}")
}

/// The generated file: data block and template.
pub fn dissector_lua() -> Result<String, String> {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "-- ROSE Online (packet-service) dissector for Wireshark and tshark.\n\
         --\n\
         -- GENERATED by `replay --wireshark-lua` from packet-service's own tables;\n\
         -- do not edit. Edit tools/replay/src/wireshark/dissector.lua (the\n\
         -- dissector) or the project's tables, then run `{REGENERATE}`.\n\
         -- A test fails while this file differs from what the generator writes.\n\
         --\n\
         -- Use: tshark -X lua_script:{OUTPUT} -r session.pcap\n\
         -- or copy it to Wireshark's personal Lua plugins folder.\n"
    );
    let _ = writeln!(w, "local G = {{}}");
    let _ = writeln!(w, "G.header_len = {HEADER_LEN}");
    let _ = writeln!(w, "G.max_packet_size = {MAX_PACKET_SIZE}");
    let _ = writeln!(w, "G.default_port = {DEFAULT_PORT}");
    let _ = writeln!(w, "G.stress_id = 0x{STRESS_ID:04x}");

    let _ = writeln!(
        w,
        "\n-- Packet names by id, per dialect and direction (as `replay --dump`)."
    );
    let _ = writeln!(w, "G.dialects = {{");
    for d in dialects() {
        let dialect = d.dialect();
        let _ = writeln!(w, "  {{\n    name = {},", lua_str(d.name()));
        for (key, side) in [("client", Side::Client), ("server", Side::Server)] {
            let _ = writeln!(w, "    {key} = {{");
            let ids = (0..ID_SPACE as u16).chain(std::iter::once(STRESS_ID));
            for id in ids {
                if let Some(t) = packet_type(dialect, side, id) {
                    let _ = writeln!(w, "      [0x{id:04x}] = {},", lua_str(t.name()));
                }
            }
            let _ = writeln!(w, "    }},");
        }
        let _ = writeln!(w, "  }},");
    }
    let _ = writeln!(w, "}}");

    let _ = writeln!(w, "\n-- Result code names, by the reply that carries them.");
    let _ = writeln!(w, "G.results = {{");
    for table in rose_client::results::ALL {
        let _ = writeln!(w, "  {} = {{", table.packet.name());
        for (code, name) in table.names {
            let _ = writeln!(w, "    [{code}] = {},", lua_str(name));
        }
        let _ = writeln!(w, "  }},");
    }
    let _ = writeln!(w, "}}");

    let _ = writeln!(
        w,
        "\n-- The logical rose header: field, first bit, width (the checksum covers it)."
    );
    let _ = writeln!(w, "G.logical = {{");
    for (name, width) in LOGICAL_FIELDS {
        let _ = writeln!(
            w,
            "  {{ name = {}, first = {}, width = {width} }},",
            lua_str(name),
            field_start(name)
        );
    }
    let _ = writeln!(w, "}}");
    let _ = writeln!(
        w,
        "\n-- For each wire bit of a rose header (0 = LSB of byte 0), the logical bit."
    );
    let _ = writeln!(w, "G.header_bits = {{");
    for (key, dir) in [
        ("client", Direction::ClientToServer),
        ("server", Direction::ServerToClient),
    ] {
        let bits = header_bits(dir)?;
        let list: Vec<String> = bits.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(w, "  {key} = {{ [0] = {} }},", list.join(", "));
    }
    let _ = writeln!(w, "}}");

    let _ = writeln!(
        w,
        "\n-- CRC-8/MAXIM: crc = crc8[crc XOR byte], starting from 0."
    );
    let crc = Crc::<u8>::new(&CRC_8_MAXIM_DOW);
    let table: Vec<String> = (0..=255u8)
        .map(|b| format!("0x{:02x}", crc.checksum(&[b])))
        .collect();
    let _ = writeln!(w, "G.crc8 = {{ [0] =");
    for row in table.chunks(16) {
        let _ = writeln!(w, "  {},", row.join(", "));
    }
    let _ = writeln!(w, "}}");

    let _ = writeln!(
        w,
        "\n-- Low bytes of the rose key tables (seed 0x{:08x}): 16 tables of 2048,\n\
         -- two hex digits per column.",
        packet_service::protocol::codec::ROSE_SEED
    );
    let tables = RoseTables::default_tables();
    let _ = writeln!(w, "G.masks = {{");
    for t in 0..16 {
        let mut hex = String::with_capacity(4096);
        for col in 0..2048 {
            let _ = write!(hex, "{:02x}", tables.mask(t, col));
        }
        let _ = writeln!(w, "  \"{hex}\",");
    }
    let _ = writeln!(w, "}}\n");
    out.push_str(TEMPLATE);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a sealed header with the measured bit map, the way the
    /// dissector does, and compares with the codec's own reading.
    #[test]
    fn measured_bit_map_decodes_headers_like_the_codec() {
        let tables = RoseTables::default_tables();
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let map = header_bits(dir).expect("bit map");
            let mut seen: Vec<u8> = map.to_vec();
            seen.sort_unstable();
            assert_eq!(seen, (0..40).collect::<Vec<u8>>(), "a permutation");
            for (size, command, atv, eav, ev) in [
                (6, 0x500, 0x100, 4, 0),
                (76, 0x509, 0x7ff, 15, 3),
                (2047, 0x7ff, 0, 0, 7),
                (300, 0x123, 0x2aa, 9, 5),
            ] {
                let wire = sealed_header(
                    dir,
                    Logical {
                        size,
                        command,
                        atv,
                        eav,
                        ev,
                    },
                )
                .expect("seal");
                let bit = |v: u64, p: usize| (v >> p) & 1;
                let is_atv = |l: u8| (22..33).contains(&l);
                let mut logical = 0u64;
                for (p, &l) in map.iter().enumerate() {
                    if is_atv(l) {
                        logical |= bit(wire, p) << l;
                    }
                }
                let got_atv = ((logical >> 22) & 0x7ff) as usize;
                let mut masks = 0u64;
                for k in 0..5 {
                    masks |= u64::from(tables.mask(k, got_atv)) << (8 * k);
                }
                for (p, &l) in map.iter().enumerate() {
                    if !is_atv(l) {
                        logical |= (bit(wire, p) ^ bit(masks, p)) << l;
                    }
                }
                assert_eq!(logical & 0x7ff, size as u64);
                assert_eq!((logical >> 11) & 0x7ff, u64::from(command));
                assert_eq!(got_atv, usize::from(atv));
                assert_eq!((logical >> 33) & 0xf, u64::from(eav));
                assert_eq!(logical >> 37, u64::from(ev));
            }
        }
    }

    #[test]
    fn every_dialect_names_its_packets() {
        let lua = dissector_lua().expect("generates");
        for d in dialects() {
            assert!(lua.contains(&format!("name = \"{}\"", d.name())));
        }
        assert!(lua.contains("[0x0509] = \"PAKCS_LOGIN_REQ\""));
        assert!(lua.contains("[0x6f6d] = \"STRESS\""));
    }
}
