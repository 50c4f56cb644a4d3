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
