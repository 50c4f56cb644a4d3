//! The gateway's first-packet rule (`conn::wire::FirstPacket`,
//! docs/protocol.md §10.6) under `--packet-ids irose` and `auto`, on
//! rose-offline's seeds. Byte 0 picks the rule and the mode, the rest is:
//! - bytes: a connection's first bytes. Nothing panics; a decided wire's
//!   codec alone decodes the bytes to the same packet; a prefix never
//!   decides another wire, and errs only if the whole input errs;
//! - sealed: a first packet sealed under one of the tables (command, size,
//!   atv, eav, padding from the input); if it is one a connection starts
//!   with, the rule picks that table and no prefix is refused.
#![no_main]

use std::sync::OnceLock;

use packet_service::conn::wire::{FirstPacket, PacketIds};
use packet_service::protocol::codec::{
    write_plain_header, Codec, CodecKind, PreparedSeeds, RoseParams, RoseTables, Seed,
};
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::{Direction, HEADER_LEN};

fn prepared() -> &'static PreparedSeeds {
    static SEEDS: OnceLock<PreparedSeeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let seeds: Vec<Seed> = [0x1234_5678, 0x8765_4321]
            .iter()
            .filter_map(|&s| Seed::new(s))
            .collect();
        PreparedSeeds::build(&seeds).expect("two seeds")
    })
}

fn rules() -> &'static [FirstPacket; 2] {
    static RULES: OnceLock<[FirstPacket; 2]> = OnceLock::new();
    RULES.get_or_init(|| {
        [PacketIds::One(DialectId::Irose), PacketIds::Auto]
            .map(|ids| FirstPacket::new(ids, CodecKind::Rose, prepared()))
    })
}

fn codecs() -> Vec<Codec> {
    std::iter::once(RoseTables::default_tables())
        .chain(prepared().iter().map(|(_, t)| t))
        .map(Codec::irose)
        .collect()
}

fn bytes_mode(first: &FirstPacket, input: &[u8]) {
    let mut whole = input.to_vec();
    let decided = first.decode(&mut whole);
    if let Ok(Some((wire, header))) = decided {
        let mut alone = input.to_vec();
        let again = wire.codec.decode(Direction::ClientToServer, &mut alone);
        assert_eq!(again, Ok(Some(header)), "the chosen codec alone");
        assert_eq!(&alone[..header.data_len], &whole[..header.data_len]);
    }
    for cut in [1, 5, 6, 7, input.len() / 2] {
        if cut >= input.len() {
            continue;
        }
        let mut part = input[..cut].to_vec();
        match first.decode(&mut part) {
            Err(_) => assert!(decided.is_err(), "a prefix errs, the whole does not"),
            Ok(Some((wire, _))) => {
                if let Ok(Some((w, _))) = decided {
                    assert_eq!(wire, w, "a prefix decides another wire");
                }
            }
            Ok(None) => {}
        }
    }
}

fn sealed_mode(first: &FirstPacket, input: &[u8]) {
    let codecs = codecs();
    let get = |i: usize| input.get(i).copied().unwrap_or(0);
    let which = usize::from(get(0)) % codecs.len();
    let command = u16::from_le_bytes([get(1), get(2)]) & 0x7FF;
    let len = usize::from(get(3)) % 64;
    let params = RoseParams {
        atv: u16::from_le_bytes([get(4), get(5)]) & 0x7FF,
        eav: get(6) & 15,
        ev: get(7) & 7,
    };
    let size = HEADER_LEN + len;
    let mut wire = vec![0u8; size + usize::from(params.ev)];
    write_plain_header(&mut wire, size, command);
    for (i, b) in wire[HEADER_LEN..size].iter_mut().enumerate() {
        *b = get(8 + i);
    }
    if codecs[which]
        .seal_with(Direction::ClientToServer, &mut wire, params)
        .is_err()
    {
        return;
    }
    // Connect (6 bytes) on the login table, the join (42) on a seeded one.
    let expected = if which == 0 { (0x703, 6) } else { (0x70B, 42) };
    let mut buf = wire.clone();
    let decided = first.decode(&mut buf);
    if (command, size) == expected {
        let (w, h) = decided.expect("fits").expect("whole");
        assert_eq!(w.codec, codecs[which]);
        assert_eq!(h.data_len, size);
        for cut in 0..wire.len() {
            assert_eq!(
                first.decode(&mut wire[..cut].to_vec()),
                Ok(None),
                "prefix {cut}"
            );
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let first = &rules()[usize::from(mode & 1)];
    if mode & 2 == 0 {
        bytes_mode(first, input);
    } else {
        sealed_mode(first, input);
    }
});
