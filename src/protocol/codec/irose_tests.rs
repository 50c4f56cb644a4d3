//! The irose 129en vectors of docs/protocol-irose.md §A.5 byte for byte: the
//! default and seeded table constructions, and the prepared seed set. Each
//! seeded table set is built once per test binary.

use std::sync::OnceLock;

use super::*;
use Generator::{Ac as AC, Bc as BC, My as MY, Vc as VC};

/// The world seed rose-offline announces.
const WORLD: u32 = 0x1234_5678;
/// The game seed rose-offline announces.
const GAME: u32 = 0x8765_4321;

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
