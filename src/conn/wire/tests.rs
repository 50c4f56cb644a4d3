//! The first packet decides the wire: the vectors of
//! docs/protocol.md §10.3 under `irose` and `auto`, an osIROSE client under `auto`, and
//! first packets no table fits.

use super::*;
use crate::protocol::codec::RoseTables;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn seeds() -> &'static PreparedSeeds {
    static SEEDS: OnceLock<PreparedSeeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let seeds = [0x1234_5678, 0x8765_4321].map(|s| Seed::new(s).expect("non-zero"));
        PreparedSeeds::build(&seeds).expect("two seeds")
    })
}

/// L1: connect on the login connection, default table.
const L1: &str = "42 90 72 43 c7 43";
/// W1: join with token 0x11223344, init(0x12345678).
const W1: &str = "02 51 42 62 42 a6 74 90 d8 de f3 6b c6 50 1e 7c 4c c9 c3 7c a7 54 01 49 64 \
                  88 90 fa b7 ba d3 b6 d4 2b 10 ec 7a 63 a1 04 8e 9c";
/// G3: the 0x753 zone join, init(0x87654321): never a first packet.
const G3: &str = "83 30 6f 71 44 d6 08 77 8c";
/// E1b: osIROSE's ACCEPT_REQ, fixed table (docs/protocol.md §7).
const E1B: &str = "c2 e8 32 92 45 04";

fn decide(first: &FirstPacket, vector: &str) -> Result<Option<(Wire, FrameHeader)>, FrameError> {
    let mut bytes = hex(vector);
    first.decode(&mut bytes)
}

#[test]
fn fixed_dialects_need_no_trial() {
    for d in [DialectId::Osirose, DialectId::Osirose2021] {
        let first = FirstPacket::new(PacketIds::One(d), CodecKind::Rose, seeds());
        assert_eq!(
            first.fixed(),
            Some(Wire {
                codec: Codec::new(CodecKind::Rose),
                dialect: d
            })
        );
        assert_eq!(first.candidates(), 0);
    }
}

#[test]
fn irose_finds_each_connections_table() {
    let first = FirstPacket::new(PacketIds::One(DialectId::Irose), CodecKind::Rose, seeds());
    assert_eq!(first.fixed(), None);
    assert_eq!(first.candidates(), 3, "two seeded tables and the default");
    let (wire, header) = decide(&first, L1).expect("fits").expect("whole");
    assert_eq!(wire.dialect, DialectId::Irose);
    assert_eq!(wire.codec, Codec::irose(RoseTables::default_tables()));
    assert_eq!((header.command, header.data_len), (0x703, 6));

    let mut join = hex(W1);
    let (wire, header) = first.decode(&mut join).expect("fits").expect("whole");
    let world = seeds()
        .get(Seed::new(0x1234_5678).expect("seed"))
        .expect("prepared");
    assert_eq!(wire.codec, Codec::irose(world));
    assert_eq!((header.command, header.data_len), (0x70B, 42));
    assert_eq!(&join[6..10], &[0x44, 0x33, 0x22, 0x11], "decoded in place");

    // The zone join is no connection's first packet; an osIROSE connect
    // is not irose.
    assert_eq!(decide(&first, G3), Err(FrameError::BadChecksum));
    assert_eq!(decide(&first, E1B), Err(FrameError::BadChecksum));
}

#[test]
fn auto_tells_the_families_apart() {
    let first = FirstPacket::new(PacketIds::Auto, CodecKind::Rose, seeds());
    let (wire, _) = decide(&first, E1B).expect("fits").expect("whole");
    assert_eq!(
        wire,
        Wire {
            codec: Codec::new(CodecKind::Rose),
            dialect: DialectId::Osirose
        }
    );
    let (wire, _) = decide(&first, L1).expect("fits").expect("whole");
    assert_eq!(wire.dialect, DialectId::Irose);
    assert_eq!(wire.codec, Codec::irose(RoseTables::default_tables()));
    let (wire, _) = decide(&first, W1).expect("fits").expect("whole");
    assert_eq!(wire.dialect, DialectId::Irose);
    assert_eq!(decide(&first, G3), Err(FrameError::BadChecksum));
}

#[test]
fn partial_and_garbage_first_packets() {
    let first = FirstPacket::new(PacketIds::Auto, CodecKind::Rose, seeds());
    let w1 = hex(W1);
    for n in 0..6 {
        assert_eq!(first.decode(&mut w1[..n].to_vec()), Ok(None), "{n} bytes");
    }
    // Garbage: no table makes an expected first packet of it.
    let mut garbage = vec![0xA5u8; 64];
    assert_eq!(first.decode(&mut garbage), Err(FrameError::BadChecksum));
    // A flipped checksum byte.
    let mut l1 = hex(L1);
    l1[5] ^= 1;
    assert_eq!(first.decode(&mut l1), Err(FrameError::BadChecksum));
}

#[test]
fn plain_codec_decides_by_command() {
    let plain = Codec::new(CodecKind::Plain);
    let packet = |id: u16, len: usize| {
        let mut p = vec![0u8; len];
        crate::protocol::codec::write_plain_header(&mut p, len, id);
        plain.seal(Direction::ClientToServer, &mut p).expect("seal");
        p
    };
    let first = FirstPacket::new(PacketIds::Auto, CodecKind::Plain, seeds());
    let (wire, _) = first
        .decode(&mut packet(0x504, 6))
        .expect("fits")
        .expect("whole");
    assert_eq!(wire.dialect, DialectId::Osirose);
    let (wire, _) = first
        .decode(&mut packet(0x70B, 42))
        .expect("fits")
        .expect("whole");
    assert_eq!((wire.dialect, wire.codec), (DialectId::Irose, plain));
}

#[test]
fn names_and_announced_seeds() {
    for &name in PacketIds::NAMES {
        assert_eq!(PacketIds::from_name(name).map(PacketIds::name), Some(name));
    }
    assert!(PacketIds::Auto.serves_irose());
    assert!(!PacketIds::One(DialectId::Osirose).serves_irose());
    let s = [1, 2, 3].map(|v| Seed::new(v).expect("seed"));
    let a = Announced::of(&s).expect("seeds");
    assert_eq!((a.world.get(), a.game.get()), (1, 3));
    assert_eq!(Announced::of(&[]), None);
}

/// The most seeds a gateway prepares keep a first packet within the
/// candidate bound, under `auto` too (the default table's candidate serves
/// both families).
#[test]
fn seven_seeds_make_eight_candidates_at_most() {
    let seeds: Vec<Seed> = (1..=7).map(|s| Seed::new(s).expect("seed")).collect();
    let prepared = PreparedSeeds::build(&seeds).expect("seven seeds");
    for ids in [PacketIds::One(DialectId::Irose), PacketIds::Auto] {
        let first = FirstPacket::new(ids, CodecKind::Rose, &prepared);
        assert_eq!(first.candidates(), crate::protocol::codec::MAX_CANDIDATES);
        // Garbage is refused, not an error of the list.
        assert_eq!(
            first.decode(&mut [0x5Au8; 48]),
            Err(FrameError::BadChecksum)
        );
    }
    let eight: Vec<Seed> = (1..=8).map(|s| Seed::new(s).expect("seed")).collect();
    assert!(
        PreparedSeeds::build(&eight).is_err(),
        "the eighth is refused"
    );
}
