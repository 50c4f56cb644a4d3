//! The seeds a gateway announces and the seeded table sets it prepares for
//! them once, at start-up (docs/protocol.md §10.1.3, §10.2, §10.6.2).
//!
//! A connection never owns tables: it holds a `&'static RoseTables` (inside
//! a [`super::Codec`], which is `Copy`), so a connection costs one pointer
//! whatever its table. The prepared sets live until the process exits, like
//! the default tables.

use std::num::NonZeroU32;

use super::tables::RoseTables;

/// A seed a gateway may announce in 0x70A / 0x711: any u32 except 0, which
/// the client probably treats specially (docs/protocol.md §10.7 item 2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Seed(NonZeroU32);

/// Refused seed: 0 is never announced.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seed 0 cannot be announced")]
pub struct ZeroSeed;

impl Seed {
    /// `None` for 0.
    pub const fn new(value: u32) -> Option<Seed> {
        match NonZeroU32::new(value) {
            Some(v) => Some(Seed(v)),
            None => None,
        }
    }

    /// The u32 sent on the wire.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<u32> for Seed {
    type Error = ZeroSeed;

    fn try_from(value: u32) -> Result<Seed, ZeroSeed> {
        Seed::new(value).ok_or(ZeroSeed)
    }
}

/// Most distinct seeds a gateway prepares: with the default table, one
/// first packet is tried against at most [`super::MAX_CANDIDATES`] tables.
pub const MAX_PREPARED_SEEDS: usize = super::MAX_CANDIDATES - 1;

/// Why [`PreparedSeeds::build`] refused a seed list.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} distinct seeds, at most {MAX_PREPARED_SEEDS}")]
pub struct TooManySeeds(pub usize);

/// A small, fixed set of seeded table sets, looked up by seed.
pub struct PreparedSeeds {
    sets: Vec<(Seed, &'static RoseTables)>,
}

impl std::fmt::Debug for PreparedSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sets.iter().map(|(seed, _)| seed))
            .finish()
    }
}

impl PreparedSeeds {
    /// Builds `init(seed)` for every distinct seed of `seeds` (a repeated
    /// seed, e.g. one seed for both world and game, is built once).
    ///
    /// Blocking: call it at start-up, before the reactor runs, or from any
    /// thread that owns no sockets — never from the reactor thread. It costs
    /// about 1 ms per seed in a release build (16 ms in a debug build), too
    /// little to be worth threads of its own. The tables are leaked on
    /// purpose (they live as long as the process, as the default tables
    /// do), so build the set once per process, not per listener or
    /// connection.
    pub fn build(seeds: &[Seed]) -> Result<PreparedSeeds, TooManySeeds> {
        let mut distinct: Vec<Seed> = Vec::with_capacity(seeds.len());
        for &seed in seeds {
            if !distinct.contains(&seed) {
                distinct.push(seed);
            }
        }
        if distinct.len() > MAX_PREPARED_SEEDS {
            return Err(TooManySeeds(distinct.len()));
        }
        let sets = distinct
            .into_iter()
            .map(|seed| {
                let tables: &'static RoseTables =
                    Box::leak(Box::new(RoseTables::seeded(seed.get())));
                (seed, tables)
            })
            .collect();
        Ok(PreparedSeeds { sets })
    }

    /// A set of tables built elsewhere (a tool that keeps its own per-seed
    /// cache), one per distinct seed, at most [`MAX_PREPARED_SEEDS`].
    pub fn from_tables(
        sets: impl IntoIterator<Item = (Seed, &'static RoseTables)>,
    ) -> Result<PreparedSeeds, TooManySeeds> {
        let mut distinct: Vec<(Seed, &'static RoseTables)> = Vec::new();
        for (seed, tables) in sets {
            if !distinct.iter().any(|(s, _)| *s == seed) {
                distinct.push((seed, tables));
            }
        }
        if distinct.len() > MAX_PREPARED_SEEDS {
            return Err(TooManySeeds(distinct.len()));
        }
        Ok(PreparedSeeds { sets: distinct })
    }

    /// The empty set (a gateway serving no irose client).
    pub fn none() -> &'static PreparedSeeds {
        static NONE: PreparedSeeds = PreparedSeeds { sets: Vec::new() };
        &NONE
    }

    /// The tables of `seed`, if it was prepared.
    pub fn get(&self, seed: Seed) -> Option<&'static RoseTables> {
        self.sets.iter().find(|(s, _)| *s == seed).map(|&(_, t)| t)
    }

    /// Every prepared seed with its tables, in the order first given.
    pub fn iter(&self) -> impl Iterator<Item = (Seed, &'static RoseTables)> + '_ {
        self.sets.iter().copied()
    }

    /// Number of prepared seeds.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// No seed prepared.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}
