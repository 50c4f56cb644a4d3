//! The irose 129en vectors of docs/protocol.md §10.3 byte for byte: the
//! default and seeded table constructions, every packet vector in its
//! direction, the decoder's size checks, trial decoding and the prepared
//! seed set. Each seeded table set is built once per test binary.

use std::sync::OnceLock;

use super::header::HeaderFields;
use super::*;
use Direction::{ClientToServer as C2S, ServerToClient as S2C};
use Generator::{Ac as AC, Bc as BC, My as MY, Vc as VC};

/// The world seed rose-offline announces.
const WORLD: u32 = 0x1234_5678;
/// The game seed rose-offline announces.
const GAME: u32 = 0x8765_4321;
/// md5("admin"), as the lowercase hex the client sends.
const MD5_ADMIN: &str = "21232f297a57a5a743894a0e4a801fc3";

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

/// A table set with its full values.
struct Built {
    full: FullTables,
    tables: RoseTables,
}

impl Built {
    fn of(construction: Construction) -> Built {
        let full = construction.fill();
        let tables = RoseTables::from_full(&full);
        Built { full, tables }
    }
}

/// `init(seed)` (or the default set for [`ROSE_SEED`]), built on first use.
fn built(seed: u32) -> &'static Built {
    static SETS: [OnceLock<Built>; 4] = [const { OnceLock::new() }; 4];
    let (slot, construction) = match seed {
        ROSE_SEED => (0, Construction::default_for(ROSE_SEED)),
        WORLD => (1, Construction::seeded(WORLD)),
        GAME => (2, Construction::seeded(GAME)),
        0 => (3, Construction::seeded(0)),
        _ => panic!("no cached table set for {seed:#x}"),
    };
    SETS[slot].get_or_init(|| Built::of(construction))
}

fn codec(seed: u32) -> Codec {
    match seed {
        ROSE_SEED => Codec::irose(RoseTables::default_tables()),
        seed => Codec::irose(&built(seed).tables),
    }
}

// ---- tables ----

struct TableRow {
    construction: Construction,
    seed: u32,
    start: u32,
    generators: [Generator; 16],
    index: Generator,
    table0: [i32; 8],
    table1: [i32; 4],
    masks: &'static str,
}

fn table_rows() -> [TableRow; 4] {
    [
        TableRow {
            construction: Construction::default_for(ROSE_SEED),
            seed: ROSE_SEED,
            start: 0x0042_D266,
            generators: [
                BC, AC, MY, VC, BC, AC, MY, VC, BC, AC, MY, VC, BC, AC, MY, VC,
            ],
            index: AC,
            table0: [14586, -1619, -3009, 8280, -23508, 2866, 15969, -21130],
            table1: [426957223, 308395604, 613667325, 1134145266],
            masks: "fa a7 72 73 cb",
        },
        TableRow {
            construction: Construction::seeded(WORLD),
            seed: WORLD,
            start: 0x0000_0B71,
            generators: [
                VC, BC, AC, AC, AC, AC, AC, MY, MY, AC, BC, BC, MY, VC, MY, MY,
            ],
            index: BC,
            table0: [9603, 32521, 14900, 32683, 8147, 11621, 15230, 10745],
            table1: [-15511, 18027, 21235, -14126],
            masks: "83 69 56 56 56",
        },
        TableRow {
            construction: Construction::seeded(GAME),
            seed: GAME,
            start: 0xFFFF_CD18,
            generators: [
                VC, BC, BC, BC, AC, AC, VC, MY, MY, BC, AC, VC, BC, MY, BC, MY,
            ],
            index: BC,
            table0: [23017, 17687, 31995, 31860, 3657, 22269, 13688, 5812],
            table1: [32256, -20838, -16171, -28713],
            masks: "e9 00 6b 4d 71",
        },
        TableRow {
            construction: Construction::seeded(0),
            seed: 0,
            start: 0,
            generators: [
                BC, BC, MY, BC, MY, MY, AC, VC, VC, BC, MY, BC, BC, VC, MY, AC,
            ],
            index: BC,
            table0: [24111, -14767, 21490, -19813, -10212, -18482, 20096, 10657],
            table1: [-22217, -11874, -16004, 12363],
            masks: "2f 37 00 ca e5",
        },
    ]
}

#[test]
fn table_vectors() {
    for row in table_rows() {
        let c = row.construction;
        let name = format!("{:#010x}", row.seed);
        assert_eq!(c.start, row.start, "start of {name}");
        assert_eq!(c.generators, row.generators, "generators of {name}");
        assert_eq!(c.index, row.index, "index generator of {name}");
        let set = built(row.seed);
        assert_eq!(set.full[0][..8], row.table0, "table0 of {name}");
        assert_eq!(set.full[1][..4], row.table1, "table1 of {name}");
        let masks: Vec<u8> = (0..5).map(|k| set.tables.mask(k, 0)).collect();
        assert_eq!(masks, hex(row.masks), "mask(k, 0) of {name}");
    }
}

#[test]
fn table_vectors_in_hex() {
    for (seed, words) in [
        (
            ROSE_SEED,
            "000038fa fffff9ad fffff43f 00002058 ffffa42c 00000b32 00003e61 ffffad76",
        ),
        (
            WORLD,
            "00002583 00007f09 00003a34 00007fab 00001fd3 00002d65 00003b7e 000029f9",
        ),
        (
            GAME,
            "000059e9 00004517 00007cfb 00007c74 00000e49 000056fd 00003578 000016b4",
        ),
    ] {
        let got: Vec<String> = built(seed).full[0][..8]
            .iter()
            .map(|&v| format!("{:08x}", v as u32))
            .collect();
        assert_eq!(got.join(" "), words, "table0 of {seed:#010x}");
    }
}

#[test]
fn the_default_construction_is_the_osirose_table() {
    let shared = RoseTables::default_tables();
    let full = &built(ROSE_SEED).full;
    for (t, row) in full.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(shared.mask(t, j), v as u8, "table {t} column {j}");
        }
    }
}

#[test]
fn start_of_other_seeds() {
    for (seed, start) in [
        (1, 0x0000_41C6),
        (0xFFFF_FFFF, 0xFFFF_BE3A),
        (0x8000_0000, 0xFFFF_8001),
        (0xDEAD_BEEF, 0x0000_1C01),
        (WORLD, 0x0000_0B71),
        (GAME, 0xFFFF_CD18),
        (0, 0),
    ] {
        assert_eq!(Construction::seeded(seed).start, start, "init({seed:#x})");
    }
}

// ---- packets ----

struct PacketVector {
    name: &'static str,
    seed: u32,
    dir: Direction,
    params: RoseParams,
    plain: Vec<u8>,
    padding: Vec<u8>,
    wire: &'static str,
}

fn params(atv: u16, eav: u8, ev: u8) -> RoseParams {
    RoseParams { atv, eav, ev }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn packet_vectors() -> Vec<PacketVector> {
    let none = RoseParams::IROSE;
    vec![
        PacketVector {
            name: "L1",
            seed: ROSE_SEED,
            dir: C2S,
            params: none,
            plain: hex("06 00 03 07 00 00"),
            padding: vec![],
            wire: "42 90 72 43 c7 43",
        },
        PacketVector {
            name: "L2",
            seed: ROSE_SEED,
            dir: S2C,
            params: none,
            plain: cat(&[&hex("23 00 ff 07 00 00 02 7b"), &[0; 27]]),
            padding: vec![],
            wire: "06 26 8c 70 00 0b fb 0b 47 ec e1 d1 c3 d8 50 4b 66 84 e2 93 3e f0 2b 3c
                30 1c 87 84 4c 08 84 17 ee b4 87",
        },
        PacketVector {
            name: "L3",
            seed: ROSE_SEED,
            dir: C2S,
            params: none,
            plain: cat(&[
                &hex("2c 00 08 07 00 00"),
                MD5_ADMIN.as_bytes(),
                &hex("61 64 6d 69 6e 00"),
            ]),
            padding: vec![],
            wire: "c3 a0 66 43 c7 69 cb 41 75 df d3 b7 f1 e1 67 2a 53 b3 83 a6 5f c7 1f 0f
                08 25 b3 e5 7c 6d b0 76 d6 84 b6 ba 25 13 45 fa ae 25 55 5e",
        },
        PacketVector {
            name: "W1",
            seed: WORLD,
            dir: C2S,
            params: none,
            plain: w1_plain(),
            padding: vec![],
            wire: W1_WIRE,
        },
        PacketVector {
            name: "W2",
            seed: WORLD,
            dir: S2C,
            params: none,
            plain: hex("0f 00 0c 07 00 00 00 7b 00 00 00 ff 00 00 00"),
            padding: vec![],
            wire: "82 68 10 54 81 13 30 d8 fa cf c1 a5 f4 63 2c",
        },
        PacketVector {
            name: "G1",
            seed: GAME,
            dir: C2S,
            params: params(0x123, 5, 0),
            plain: hex("0c 00 83 07 00 00 68 65 6c 6c 6f 00"),
            padding: vec![],
            wire: "e2 e8 16 f0 1a 23 67 dc b5 65 27 04",
        },
        PacketVector {
            name: "G2",
            seed: GAME,
            dir: S2C,
            params: params(0x2AB, 9, 3),
            plain: hex("0e 00 83 07 00 00 01 00 68 65 6c 6c 6f 00"),
            padding: hex("00 00 00"),
            wire: "9d 09 3d 41 ed f6 d9 9b ea 84 86 af 2f 1b 00 00 00",
        },
        PacketVector {
            name: "G3",
            seed: GAME,
            dir: C2S,
            params: none,
            plain: hex("09 00 53 07 00 00 00 00 00"),
            padding: vec![],
            wire: "83 30 6f 71 44 d6 08 77 8c",
        },
        PacketVector {
            name: "G4",
            seed: GAME,
            dir: C2S,
            params: params(0x7FF, 15, 7),
            plain: hex("06 00 07 07 00 00"),
            padding: hex("01 02 03 04 05 06 07"),
            wire: "3a 4e 4c 0c 3c a4 01 02 03 04 05 06 07",
        },
    ]
}

const W1_WIRE: &str = "02 51 42 62 42 a6 74 90 d8 de f3 6b c6 50 1e 7c 4c c9 c3 7c a7 54 01
    49 64 88 90 fa b7 ba d3 b6 d4 2b 10 ec 7a 63 a1 04 8e 9c";
const L1_WIRE: &str = "42 90 72 43 c7 43";

fn w1_plain() -> Vec<u8> {
    cat(&[&hex("2a 00 0b 07 00 00 44 33 22 11"), MD5_ADMIN.as_bytes()])
}

fn other(dir: Direction) -> Direction {
    match dir {
        C2S => S2C,
        _ => C2S,
    }
}

#[test]
fn packet_vectors_encode() {
    for v in packet_vectors() {
        let c = codec(v.seed);
        let mut frame = cat(&[&v.plain, &v.padding]);
        if v.params == RoseParams::IROSE {
            // What the irose encoder sends unasked.
            c.seal(v.dir, &mut frame).expect("seal");
        } else {
            c.seal_with(v.dir, &mut frame, v.params).expect("seal");
        }
        assert_eq!(frame, hex(v.wire), "encoding {}", v.name);
    }
}

#[test]
fn packet_vectors_decode() {
    for v in packet_vectors() {
        let mut wire = hex(v.wire);
        let h = codec(v.seed)
            .decode(v.dir, &mut wire)
            .expect("valid")
            .expect("whole");
        assert_eq!(h.wire_len, v.plain.len() + v.padding.len(), "{}", v.name);
        assert_eq!(h.data_len, v.plain.len(), "{}", v.name);
        assert_eq!(&wire[..h.data_len], &v.plain[..], "decoding {}", v.name);
    }
}

#[test]
fn g2_and_g4_decode_to_their_data() {
    let mut g2 = hex("9d 09 3d 41 ed f6 d9 9b ea 84 86 af 2f 1b 00 00 00");
    let h = codec(GAME)
        .decode(S2C, &mut g2)
        .expect("valid")
        .expect("whole");
    assert_eq!((h.wire_len, h.data_len), (17, 14));
    assert_eq!(&g2[6..14], &hex("01 00 68 65 6c 6c 6f 00")[..]);
    let mut g4 = hex("3a 4e 4c 0c 3c a4 01 02 03 04 05 06 07");
    let h = codec(GAME)
        .decode(C2S, &mut g4)
        .expect("valid")
        .expect("whole");
    assert_eq!((h.wire_len, h.data_len, h.command), (13, 6, 0x707));
}

#[test]
fn the_wrong_direction_yields_garbage() {
    for v in packet_vectors() {
        let mut wire = hex(v.wire);
        let decoded = codec(v.seed).decode(other(v.dir), &mut wire);
        if let Ok(Some(h)) = decoded {
            assert_ne!(&wire[..h.data_len], &v.plain[..], "{}", v.name);
        }
    }
    // L1 read with the server → client layout claims 1003 bytes.
    let h = codec(ROSE_SEED)
        .peek(S2C, &hex(L1_WIRE))
        .expect("a size in range")
        .expect("a whole header");
    assert_eq!(h.wire_len, 1003);
}

#[test]
fn w1_under_the_wrong_tables() {
    let wire = hex(W1_WIRE);
    let h = codec(ROSE_SEED)
        .peek(C2S, &wire)
        .expect("in range")
        .expect("whole");
    assert_eq!((h.wire_len, h.wire_len - h.data_len), (1187, 1), "default");
    let h = codec(GAME)
        .peek(C2S, &wire)
        .expect("in range")
        .expect("whole");
    assert_eq!(h.wire_len, 407, "init(0x87654321)");
}

// ---- the irose decoder's and encoder's limits ----

fn header_under(seed: u32, dir: Direction, size: usize, ev: usize) -> Vec<u8> {
    let fields = HeaderFields {
        size,
        command: 0x70B,
        atv: 0x321,
        eav: 6,
        ev,
    };
    let masks = codec(seed).tables().header_masks(fields.atv);
    let mut head = fields.scramble(dir, masks).to_vec();
    head.push(0);
    head
}

#[test]
fn decoder_refuses_short_sizes_and_excess_padding() {
    for dir in [C2S, S2C] {
        let c = codec(WORLD);
        let peek = |size, ev| c.peek(dir, &header_under(WORLD, dir, size, ev));
        assert_eq!(peek(5, 0), Err(FrameError::BadSize(5)));
        assert_eq!(peek(0, 0), Err(FrameError::BadSize(0)));
        assert_eq!(peek(8, 3), Err(FrameError::BadPadding { ev: 3, size: 8 }));
        let h = peek(9, 3).expect("valid").expect("whole");
        assert_eq!((h.wire_len, h.data_len, h.command), (9, 6, 0x70B));
        let h = peek(MAX_PACKET_SIZE, 7).expect("valid").expect("whole");
        assert_eq!((h.wire_len, h.data_len), (2047, 2040));
    }
}

#[test]
fn irose_encoder_refuses_padding_it_was_not_given() {
    let mut p = hex("06 00 07 07 00 00");
    assert_eq!(
        codec(GAME).seal_with(C2S, &mut p, params(0, 0, 1)),
        Err(FrameError::BadPadding { ev: 1, size: 6 })
    );
    assert_eq!(
        Codec::irose(RoseTables::default_tables()).encoder(),
        RoseEncoder::Irose
    );
    assert_eq!(RoseEncoder::Irose.params(), params(0, 0, 0));
}

#[test]
fn a_connection_holds_a_reference_not_tables() {
    assert!(std::mem::size_of::<Codec>() <= 2 * std::mem::size_of::<usize>());
    let a = codec(WORLD);
    let b = codec(WORLD);
    assert!(std::ptr::eq(a.tables(), b.tables()));
    assert_eq!(a, b);
    assert_ne!(a, codec(GAME));
}

// ---- trial decoding ----

const CONNECT: &[u16] = &[0x703];
const JOIN: &[u16] = &[0x70B];

fn connect_under(seed: u32) -> Candidate<'static> {
    Candidate {
        codec: codec(seed),
        commands: CONNECT,
        data_len: 6..=6,
    }
}

fn join_under(seed: u32) -> Candidate<'static> {
    Candidate {
        codec: codec(seed),
        commands: JOIN,
        data_len: 42..=42,
    }
}

/// The one-port set of docs/protocol.md §10.6.2 for rose-offline's
/// seeds: 0x703 under the default table; 0x70B (or a stray 0x703) under the
/// world and game tables.
fn one_port() -> [Candidate<'static>; 5] {
    [
        connect_under(ROSE_SEED),
        join_under(WORLD),
        join_under(GAME),
        connect_under(WORLD),
        connect_under(GAME),
    ]
}

fn trial(list: &[Candidate<'_>], dir: Direction, wire: &str) -> Result<Option<Chosen>, FrameError> {
    let mut bytes = hex(wire);
    Candidates::new(list).expect("few").decode(dir, &mut bytes)
}

#[test]
fn w1_is_recognised_only_with_the_world_table() {
    let chosen = {
        let list = one_port();
        let mut bytes = hex(W1_WIRE);
        let chosen = Candidates::new(&list)
            .expect("few")
            .decode(C2S, &mut bytes)
            .expect("a candidate")
            .expect("whole");
        assert_eq!(&bytes[..chosen.header.data_len], &w1_plain()[..]);
        chosen
    };
    assert_eq!((chosen.index, chosen.header.command), (1, 0x70B));
    assert_eq!(chosen.codec, codec(WORLD));
    for wrong in [ROSE_SEED, GAME] {
        let list = [join_under(wrong), connect_under(wrong)];
        assert_eq!(
            trial(&list, C2S, W1_WIRE),
            Err(FrameError::BadChecksum),
            "{wrong:#x}"
        );
    }
}

#[test]
fn l1_is_recognised_only_with_the_default_table() {
    let chosen = trial(&one_port(), C2S, L1_WIRE)
        .expect("ok")
        .expect("whole");
    assert_eq!((chosen.index, chosen.header.command), (0, 0x703));
    for wrong in [WORLD, GAME] {
        let list = [join_under(wrong), connect_under(wrong)];
        assert_eq!(
            trial(&list, C2S, L1_WIRE),
            Err(FrameError::BadChecksum),
            "{wrong:#x}"
        );
    }
    // The server → client layout reads size 1003: no candidate.
    assert_eq!(
        trial(&one_port(), S2C, L1_WIRE),
        Err(FrameError::BadChecksum)
    );
}

#[test]
fn trial_waits_for_the_header_and_the_plausible_packet() {
    let w1 = hex(W1_WIRE);
    let list = one_port();
    let set = Candidates::new(&list).expect("few");
    for cut in 0..w1.len() {
        let mut part = w1[..cut].to_vec();
        assert_eq!(set.decode(C2S, &mut part), Ok(None), "cut {cut}");
    }
}

#[test]
fn a_pending_candidate_does_not_hold_up_one_that_passed() {
    // Find a column under which G3 (game table) reads, under the world
    // table, as a valid header longer than G3 itself.
    let plain = hex("09 00 53 07 00 00 00 00 00");
    let (wire, decoy) = (0..0x800u16)
        .find_map(|atv| {
            let mut wire = plain.clone();
            codec(GAME)
                .seal_with(C2S, &mut wire, params(atv, 0, 0))
                .expect("seal");
            match codec(WORLD).peek(C2S, &wire) {
                Ok(Some(h)) if h.wire_len > wire.len() => Some((wire, h)),
                _ => None,
            }
        })
        .expect("some column gives a long decoy");
    let decoy_codes = [decoy.command];
    let pending = Candidate {
        codec: codec(WORLD),
        commands: &decoy_codes,
        data_len: decoy.data_len..=decoy.data_len,
    };
    let real = Candidate {
        codec: codec(GAME),
        commands: &[0x753],
        data_len: 9..=9,
    };
    let mut bytes = wire.clone();
    let list = [pending.clone(), real];
    let chosen = Candidates::new(&list)
        .expect("few")
        .decode(C2S, &mut bytes)
        .expect("ok")
        .expect("decided");
    assert_eq!(chosen.index, 1);
    assert_eq!(&bytes[..9], &plain[..]);
    // Alone, the decoy waits for bytes that never come.
    let mut bytes = wire;
    let list = [pending];
    assert_eq!(
        Candidates::new(&list).expect("few").decode(C2S, &mut bytes),
        Ok(None)
    );
}

#[test]
fn candidates_are_bounded() {
    let list: Vec<Candidate<'static>> = (0..=MAX_CANDIDATES)
        .map(|_| connect_under(ROSE_SEED))
        .collect();
    assert_eq!(
        Candidates::new(&list).map(|c| c.list().len()),
        Err(TooManyCandidates(MAX_CANDIDATES + 1))
    );
    assert_eq!(
        Candidates::new(&list[..MAX_CANDIDATES]).map(|c| c.list().len()),
        Ok(MAX_CANDIDATES)
    );
}

// ---- seeds ----

#[test]
fn seed_zero_is_refused() {
    assert_eq!(Seed::new(0), None);
    assert_eq!(Seed::try_from(0), Err(ZeroSeed));
    assert_eq!(Seed::new(WORLD).map(Seed::get), Some(WORLD));
}

#[test]
fn prepared_seeds_are_built_once_per_seed_and_found_by_seed() {
    let seed = |v| Seed::new(v).expect("non-zero");
    let prepared = PreparedSeeds::build(&[seed(WORLD), seed(GAME), seed(WORLD)]).expect("few");
    assert_eq!(prepared.len(), 2);
    let seeds: Vec<u32> = prepared.iter().map(|(s, _)| s.get()).collect();
    assert_eq!(seeds, vec![WORLD, GAME]);
    for s in [WORLD, GAME] {
        let tables = prepared.get(seed(s)).expect("prepared");
        for t in 0..TABLE_COUNT {
            for j in 0..TABLE_LEN {
                assert_eq!(tables.mask(t, j), built(s).tables.mask(t, j));
            }
        }
    }
    assert!(prepared.get(seed(1)).is_none());
    let many: Vec<Seed> = (1..=MAX_PREPARED_SEEDS as u32 + 1).map(seed).collect();
    assert_eq!(
        PreparedSeeds::build(&many).map(|p| p.len()),
        Err(TooManySeeds(MAX_PREPARED_SEEDS + 1))
    );
}
