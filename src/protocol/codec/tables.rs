//! The key tables of the `rose` cipher: the four generators, the one fill
//! rule, and the two constructions built on them — the default one (every
//! generator seeded alike, docs/protocol.md §1.4) and the seeded one of the
//! irose 129en client (docs/protocol.md §10.1.3).
//!
//! Building a table set draws 16 × 2048 values, each checked against up to
//! 2047 earlier ones. A hash map of table 0's values makes each check one
//! lookup: about 1 ms per set in a release build (16 ms in a debug build).
//! Still, build each set once per process and share it read-only
//! ([`RoseTables::default_tables`], [`super::PreparedSeeds`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::HEADER_LEN;

/// The fixed seed of the osIROSE key tables (also the irose login table).
pub const ROSE_SEED: u32 = 0x0042_D266;
/// Number of key tables (rows).
pub const TABLE_COUNT: usize = 16;
/// Entries per key table (columns).
pub const TABLE_LEN: usize = 2048;

/// The full signed values of a table set; only their low bytes are masks.
pub type FullTables = Box<[[i32; TABLE_LEN]; TABLE_COUNT]>;

/// One of the four generators (docs/protocol.md §10.1.1, "Generators").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Generator {
    /// s = s·0x08088405 + 1; output s / 65536.
    Bc,
    /// s = (s·0x41C64E6D + 12345) & 0x7FFFFFFF; output s.
    Ac,
    /// s = s·0x41C64E6D + 12345; output s / 65536.
    My,
    /// s = (s·0x343FD + 0x269EC3) & 0x7FFFFFFF; output s / 65536.
    Vc,
}

impl Generator {
    /// Generator code `k`: `[BC, AC, MY, VC][k & 3]`.
    pub fn from_code(k: u32) -> Generator {
        match k & 3 {
            0 => Generator::Bc,
            1 => Generator::Ac,
            2 => Generator::My,
            _ => Generator::Vc,
        }
    }

    fn slot(self) -> usize {
        match self {
            Generator::Bc => 0,
            Generator::Ac => 1,
            Generator::My => 2,
            Generator::Vc => 3,
        }
    }
}

/// The four generator states (signed, wrapping; `/` truncates toward zero).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct States([i32; 4]);

impl States {
    /// Every state equal to `start` (the bits of the u32, as i32).
    fn new(start: u32) -> States {
        States([start as i32; 4])
    }

    /// Advances generator `g` and returns its output.
    fn next(&mut self, g: Generator) -> i32 {
        let s = &mut self.0[g.slot()];
        match g {
            Generator::Bc => {
                *s = s.wrapping_mul(0x0808_8405).wrapping_add(1);
                *s / 65536
            }
            Generator::Ac => {
                *s = s.wrapping_mul(0x41C6_4E6D).wrapping_add(12345) & 0x7FFF_FFFF;
                *s
            }
            Generator::My => {
                *s = s.wrapping_mul(0x41C6_4E6D).wrapping_add(12345);
                *s / 65536
            }
            Generator::Vc => {
                *s = s.wrapping_mul(0x343FD).wrapping_add(0x0026_9EC3) & 0x7FFF_FFFF;
                *s / 65536
            }
        }
    }
}

/// How a table set is built: where the generators start and which one fills
/// each table. Both constructions end in the same fill rule ([`Construction::fill`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Construction {
    /// The value every generator state starts from.
    pub start: u32,
    /// The generator of tables 0..15.
    pub generators: [Generator; TABLE_COUNT],
    /// The generator of the 512-entry index table. That table is never used
    /// by encode or decode, so it is not built (docs/protocol.md §10.1.1).
    pub index: Generator,
    /// The states when the fill begins.
    states: States,
}

impl Construction {
    /// The default construction from `seed` (osIROSE uses [`ROSE_SEED`]):
    /// every state = seed, table t from generator code `t & 3`, index from AC.
    pub fn default_for(seed: u32) -> Construction {
        Construction {
            start: seed,
            generators: std::array::from_fn(|t| Generator::from_code(t as u32)),
            index: Generator::Ac,
            states: States::new(seed),
        }
    }

    /// The seeded construction `init(seed)` (docs/protocol.md §10.1.3):
    /// `start` = one MY step from `seed`; every state = start; 17 BC draws
    /// choose the generators of tables 0..15 and of the index table (BC
    /// continues after them, the others start fresh from `start`).
    pub fn seeded(seed: u32) -> Construction {
        let start = States::new(seed).next(Generator::My) as u32;
        let mut states = States::new(start);
        let mut choose = || Generator::from_code(states.next(Generator::Bc) as u32);
        let generators = std::array::from_fn(|_| choose());
        // The 17th draw still has to happen: it advances BC's state.
        let index = choose();
        Construction {
            start,
            generators,
            index,
            states,
        }
    }

    /// The fill rule shared by both constructions: table t, entry j takes the
    /// next output of its generator that equals none of `table0[0..j)` (the
    /// prefix of table **0**, for every t); generators keep their state
    /// across tables.
    pub fn fill(&self) -> FullTables {
        let mut states = self.states;
        let mut tables: FullTables = Box::new([[0; TABLE_LEN]; TABLE_COUNT]);
        // Position of each value of table 0. The rule makes table 0's values
        // distinct, so "v equals one of table0[0..j)" is "v is in table 0 at
        // an index below j" — for table 0 itself too, whose map only holds
        // indices below j while entry j is drawn.
        let mut position: HashMap<i32, usize> = HashMap::with_capacity(TABLE_LEN);
        for (t, table) in tables.iter_mut().enumerate() {
            let generator = self.generators[t];
            for (j, entry) in table.iter_mut().enumerate() {
                let v = loop {
                    let v = states.next(generator);
                    if position.get(&v).is_none_or(|&i| i >= j) {
                        break v;
                    }
                };
                if t == 0 {
                    position.insert(v, j);
                }
                *entry = v;
            }
        }
        tables
    }
}

/// The 16 × 2048 key tables of the `rose` cipher (low bytes only are kept:
/// 32 KiB). Read-only once built; connections hold `&'static` references.
pub struct RoseTables {
    masks: Box<[[u8; TABLE_LEN]; TABLE_COUNT]>,
}

impl RoseTables {
    /// The tables for the fixed osIROSE seed, built on first use.
    pub fn default_tables() -> &'static RoseTables {
        static TABLES: OnceLock<RoseTables> = OnceLock::new();
        TABLES.get_or_init(|| RoseTables::build(ROSE_SEED))
    }

    /// The default construction for `seed` (docs/protocol.md §1.4, "Key
    /// tables").
    pub fn build(seed: u32) -> RoseTables {
        RoseTables::from_full(&Construction::default_for(seed).fill())
    }

    /// The seeded construction `init(seed)` of the irose 129en client
    /// (docs/protocol.md §10.1.3). Any u32 is a valid input, 0 included; a
    /// gateway only ever announces a [`super::Seed`].
    pub fn seeded(seed: u32) -> RoseTables {
        RoseTables::from_full(&Construction::seeded(seed).fill())
    }

    /// Keeps the low byte of every entry.
    pub fn from_full(full: &FullTables) -> RoseTables {
        let mut masks = Box::new([[0u8; TABLE_LEN]; TABLE_COUNT]);
        for (row, table) in masks.iter_mut().zip(full.iter()) {
            for (m, &v) in row.iter_mut().zip(table.iter()) {
                *m = v as u8;
            }
        }
        RoseTables { masks }
    }

    /// Low byte of `table[t & 15][column & 0x7FF]`.
    pub fn mask(&self, t: usize, column: usize) -> u8 {
        self.masks[t & 15][column & 0x7FF]
    }

    /// The masks of header bytes 0..4 for column `atv`: `mask(k, atv)`.
    pub(super) fn header_masks(&self, atv: usize) -> [u8; 5] {
        std::array::from_fn(|k| self.mask(k, atv))
    }

    /// XORs the body (which starts at packet offset 6) with its masks.
    pub(super) fn apply_body(&self, atv: usize, eav: usize, body: &mut [u8]) {
        for (k, b) in body.iter_mut().enumerate() {
            let i = k + HEADER_LEN;
            *b ^= self.mask(eav + i, atv + i);
        }
    }
}
