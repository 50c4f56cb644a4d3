//! Bounds on online guessing and on account creation
//! (docs/protocol.md §9 D17): failed logins and joins counted per key (an account name, a
//! source address keyed by [`crate::cidr::client_key`]) with exponential
//! backoff, and auto-created accounts counted per source and in total per
//! minute.
//!
//! Every table is a fixed-capacity map that forgets its oldest key when a
//! new one does not fit, so a flood of distinct keys costs bounded memory:
//! per key the key itself (an account name is cut to [`MAX_KEY_BYTES`]),
//! a 40-byte entry and its place in the eviction queue, about 120 bytes
//! with the map's overhead; [`CAPACITY`] keys per table. The clock is the
//! caller's (`now`), so the rules are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Keys a table holds before it forgets its oldest.
pub const CAPACITY: usize = 65_536;
/// An account name is keyed by its first bytes (lower-cased).
pub const MAX_KEY_BYTES: usize = 32;
/// The longest backoff: a throttled key is checked again at least once a
/// minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Creations are counted in windows of this length.
pub const WINDOW: Duration = Duration::from_secs(60);
/// A key without a failure for this long is forgiven (longer than
/// [`MAX_BACKOFF`], so a key at the longest backoff stays there).
pub const QUIET: Duration = Duration::from_secs(120);

/// A fixed-capacity map that forgets the key inserted first when full.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Default> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The key's entry, inserted (forgetting the oldest key if full).
    fn entry(&mut self, key: &K) -> &mut V {
        if !self.map.contains_key(key) {
            if self.map.len() >= self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.map.remove(&oldest);
                }
            }
            self.order.push_back(key.clone());
        }
        self.map.entry(key.clone()).or_default()
    }
}

/// Failures of one key.
#[derive(Default)]
struct Failures {
    /// Failures since the key was last forgiven.
    count: u32,
    /// The last failure: a key without failure for [`QUIET`] is forgiven.
    last: Option<Instant>,
    /// Until when the key is refused without a check.
    blocked_until: Option<Instant>,
}

/// Whether a try may be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Check it.
    Open,
    /// Refuse it unchecked, answering the ordinary failure.
    Throttled,
}

/// Failures per key with exponential backoff: from the `threshold`th
/// failure in a row (no gap of [`QUIET`]), each failure refuses the key
/// for 2^n s (n = 0, 1, …) up to [`MAX_BACKOFF`]. A key thus gets at most
/// `threshold` + 6 checks in its first minute and one in each later one.
pub struct FailureThrottle<K> {
    keys: Bounded<K, Failures>,
    threshold: u32,
}

impl<K: Hash + Eq + Clone> FailureThrottle<K> {
    /// A throttle backing off after `threshold` failures (at least 1).
    pub fn new(threshold: u32, capacity: usize) -> Self {
        FailureThrottle {
            keys: Bounded::new(capacity),
            threshold: threshold.max(1),
        }
    }

    /// Whether a try of `key` may be checked at `now`.
    pub fn gate(&self, key: &K, now: Instant) -> Gate {
        match self.keys.get(key).and_then(|f| f.blocked_until) {
            Some(until) if now < until => Gate::Throttled,
            _ => Gate::Open,
        }
    }

    /// A checked try of `key` failed at `now`.
    pub fn fail(&mut self, key: &K, now: Instant) {
        let threshold = self.threshold;
        let f = self.keys.entry(key);
        if f.last
            .is_some_and(|last| now.saturating_duration_since(last) >= QUIET)
        {
            *f = Failures::default();
        }
        f.count = f.count.saturating_add(1);
        f.last = Some(now);
        if f.count >= threshold {
            let exp = (f.count - threshold).min(6);
            let backoff = Duration::from_secs(1 << exp).min(MAX_BACKOFF);
            f.blocked_until = Some(now + backoff);
        }
    }

    /// A checked try of `key` succeeded: its failures are forgiven.
    pub fn forgive(&mut self, key: &K) {
        if let Some(f) = self.keys.map.get_mut(key) {
            *f = Failures::default();
        }
    }
}

/// Creations in the current window.
#[derive(Default)]
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    /// Counts one at `now` if fewer than `limit` are counted in the window.
    fn take(&mut self, limit: u32, now: Instant) -> bool {
        if self
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            *self = Window {
                start: Some(now),
                count: 0,
            };
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }

    fn give_back(&mut self) {
        self.count = self.count.saturating_sub(1);
    }
}

/// Why an auto-creation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateGate {
    /// A creation may go ahead (its slot is taken; give it back with
    /// [`CreateLimit::give_back`] if nothing was created).
    Open,
    /// The source or the whole service created its share this minute.
    Limited,
}

/// At most `per_source` auto-created accounts per source and `global` in
/// total per [`WINDOW`] (fixed windows, so up to twice that across a window
/// edge).
pub struct CreateLimit {
    sources: Bounded<IpAddr, Window>,
    global: Window,
    per_source: u32,
    global_limit: u32,
}

impl CreateLimit {
    /// The limits, per source and in total, per minute.
    pub fn new(per_source: u32, global: u32, capacity: usize) -> Self {
        CreateLimit {
            sources: Bounded::new(capacity),
            global: Window::default(),
            per_source,
            global_limit: global,
        }
    }

    /// Takes a creation slot for `source` (unknown: the global cap only).
    pub fn take(&mut self, source: Option<IpAddr>, now: Instant) -> CreateGate {
        if !self.global.take(self.global_limit, now) {
            return CreateGate::Limited;
        }
        if let Some(source) = source {
            if !self.sources.entry(&source).take(self.per_source, now) {
                self.global.give_back();
                return CreateGate::Limited;
            }
        }
        CreateGate::Open
    }

    /// A slot taken by [`take`](Self::take) created nothing.
    pub fn give_back(&mut self, source: Option<IpAddr>) {
        self.global.give_back();
        if let Some(source) = source {
            if let Some(w) = self.sources.map.get_mut(&source) {
                w.give_back();
            }
        }
    }
}

/// The limits of the auth service, for [`AuthLimits::new`].
#[derive(Clone, Copy, Debug)]
pub struct AuthLimitsConfig {
    /// Failed logins of one account before backing off.
    pub failures_per_account: u32,
    /// Failed logins or joins from one source before backing off.
    pub failures_per_source: u32,
    /// Accounts auto-created per source per minute.
    pub autocreate_per_source: u32,
    /// Accounts auto-created per minute in total.
    pub autocreate_per_min: u32,
}

/// Every table the auth service keeps against guessing and creation
/// floods.
pub struct AuthLimits {
    /// Failed logins per account.
    pub accounts: FailureThrottle<Box<[u8]>>,
    /// Failed logins per source.
    pub login_sources: FailureThrottle<IpAddr>,
    /// Failed joins per source.
    pub join_sources: FailureThrottle<IpAddr>,
    /// Auto-created accounts.
    pub creations: CreateLimit,
}

impl AuthLimits {
    /// Empty tables of [`CAPACITY`] keys each.
    pub fn new(c: AuthLimitsConfig) -> Self {
        AuthLimits {
            accounts: FailureThrottle::new(c.failures_per_account, CAPACITY),
            login_sources: FailureThrottle::new(c.failures_per_source, CAPACITY),
            join_sources: FailureThrottle::new(c.failures_per_source, CAPACITY),
            creations: CreateLimit::new(c.autocreate_per_source, c.autocreate_per_min, CAPACITY),
        }
    }
}

/// The source key of a peer written "ip:port" (as the gateway sends it):
/// the address, an IPv6 address by its /64; `None` if it does not parse.
pub fn source_key(peer: &str) -> Option<IpAddr> {
    let ip = match peer.parse::<SocketAddr>() {
        Ok(addr) => addr.ip(),
        Err(_) => peer.parse::<IpAddr>().ok()?,
    };
    Some(crate::cidr::client_key(ip))
}

/// The key of an account name: lower-cased, cut to [`MAX_KEY_BYTES`].
pub fn account_key(username: &str) -> Box<[u8]> {
    let bytes = username.as_bytes();
    bytes[..bytes.len().min(MAX_KEY_BYTES)]
        .to_ascii_lowercase()
        .into_boxed_slice()
}

#[cfg(test)]
mod tests;
