//! Newtypes for the ids that travel between the reactor, the state machine
//! and the backends, so that a session id is never passed as a user id.

/// A connection slot and the generation it had when the reference was made.
///
/// Slots are reused; the generation is bumped on every reuse, so a stale
/// reference (say, in an RPC completion for a connection that closed) never
/// reaches the connection that took its slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// Index in the connection slab.
    pub index: u32,
    /// Generation of the slot at the time the reference was made.
    pub generation: u32,
}

impl std::fmt::Display for ConnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}.{}", self.index, self.generation)
    }
}

/// A session id issued by the auth service (random, non-zero).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// An account id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);

/// A character id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CharId(pub u64);

/// A per-connection request id, echoed by the completion of an RPC.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub u32);

/// A map keyed by session id with [`IdHasher`].
pub type SessionMap<V> = std::collections::HashMap<SessionId, V, IdHasherBuilder>;

/// Builds [`IdHasher`]s.
pub type IdHasherBuilder = std::hash::BuildHasherDefault<IdHasher>;

/// A multiplicative hash for the ids the services issue. Session ids are
/// random and never chosen by a client, so the map needs no defence
/// against chosen keys (the standard hasher's purpose, at several times
/// the cost: a broadcast looks up one session per target).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

/// 2^64 divided by the golden ratio: spreads consecutive keys apart.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(GOLDEN);
    }

    fn finish(&self) -> u64 {
        // The high bits are the mixed ones; fold them into the low bits the
        // table indexes by.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};

    use super::*;

    #[test]
    fn consecutive_and_aligned_ids_spread_over_the_low_bits() {
        let build = IdHasherBuilder::default();
        for step in [1u32, 256, 1 << 16] {
            let mut buckets = std::collections::HashSet::new();
            for i in 0..1024u32 {
                buckets.insert(build.hash_one(SessionId(i.wrapping_mul(step))) & 1023);
            }
            // A hash that kept the keys' zero low bits would put them all
            // in a few buckets.
            assert!(
                buckets.len() > 600,
                "step {step}: {} buckets",
                buckets.len()
            );
        }
    }

    #[test]
    fn bytes_and_words_both_mix() {
        let mut a = IdHasher::default();
        a.write(&[1, 2, 3]);
        let mut b = IdHasher::default();
        b.write(&[3, 2, 1]);
        assert_ne!(a.finish(), b.finish());
        let mut c = IdHasher::default();
        c.write_u32(7);
        assert_ne!(c.finish(), IdHasher::default().finish());
    }
}
