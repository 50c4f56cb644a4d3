//! The world's players, maps and links, and how a packet reaches the
//! players it is for (who sees whom is `view.rs`): one message per link
//! holding that link's targets,
//! dropped (and counted) when the link's bounded queue is full. Drops,
//! packets too large to encode, messages refused while a join loads and
//! links stopped at their limit of loading joins (`link.rs`) are logged
//! as a summary at most once per [`SUMMARY_INTERVAL`], never a line per
//! message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tonic::Status;

use super::admin::KickedUsers;
use super::bodies::Body;
use super::view::{Grid, ViewConfig};
use crate::backend::store::CharState;
use crate::ids::IdHasherBuilder;
use crate::pb::world::{self as pb, downstream};
use crate::protocol::packet_type::{Dialect, DialectId, Family};

/// Least time between two summary lines of dropped or refused messages.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// The `osirose` dialect: the numbering of the World stream.
pub(super) fn dialect() -> &'static Dialect {
    DialectId::Osirose.dialect()
}

/// One player in the world.
#[derive(Clone, Debug)]
pub(super) struct Player {
    /// The session it joined with (the key of [`WorldInner::players`]).
    pub(super) session_id: u32,
    /// The link (gateway) that speaks for it.
    pub(super) link: u64,
    /// The `join_id` of the Join it entered with (0: not given).
    pub(super) join_id: u64,
    /// The account.
    pub(super) user_id: u32,
    /// The character.
    pub(super) char_id: u64,
    /// Unique non-zero entity id (key of [`WorldInner::entities`]).
    pub(super) entity_id: u16,
    /// Character name (its lowercase is the key of [`WorldInner::names`]).
    pub(super) name: String,
    /// Current map.
    pub(super) map: u16,
    /// Position; on the map it changes only through
    /// [`WorldInner::relocate`], which keeps the grid in step.
    pub(super) x: f32,
    /// Position (as `x`).
    pub(super) y: f32,
    /// Hit points.
    pub(super) hp: u16,
    /// Mana points.
    pub(super) mp: u16,
    /// Whether it sent CHANGE_MAP_REQ; invariant: true iff its session id is
    /// in `maps[map]` and in the grid.
    pub(super) on_map: bool,
    /// Whether its state changed since it was last queued for saving.
    pub(super) dirty: bool,
    /// The layouts its client reads and writes.
    pub(super) family: Family,
    /// How others see it (irose spawn packets).
    pub(super) look: Look,
    /// When it joined (the admin list).
    pub(super) joined: SystemTime,
}

/// What other players see of a player.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Look {
    pub(super) race: u8,
    pub(super) face: u8,
    pub(super) hair: u8,
    /// EquippedItem words.
    pub(super) items: [u32; 8],
    pub(super) job: u16,
    pub(super) level: u16,
}

impl Player {
    /// What is saved of it.
    pub(super) fn state(&self) -> CharState {
        CharState {
            char_id: self.char_id,
            map: self.map,
            x: self.x,
            y: self.y,
            hp: self.hp,
            mp: self.mp,
        }
    }
}

/// Players, maps and links.
///
/// Invariants: `entities`, `names` and the `maps` sets index exactly the
/// players of `players` (see [`Player`]), the grid exactly the on-map
/// ones; every player's link is in `links`.
pub(super) struct WorldInner {
    pub(super) links: HashMap<u64, mpsc::Sender<Result<pb::Downstream, Status>>>,
    /// The names the gateways of `links` gave (`admin.rs`).
    pub(super) gateways: super::admin::GatewayNames,
    /// By session id: random, issued by the auth service, so hashed by
    /// [`IdHasher`](crate::ids::IdHasher) (a broadcast looks up each target).
    pub(super) players: HashMap<u32, Player, IdHasherBuilder>,
    pub(super) entities: HashMap<u16, u32>,
    pub(super) names: HashMap<String, u32>,
    pub(super) maps: HashMap<u16, BTreeSet<u32>>,
    /// The on-map players by cell (`view.rs`).
    pub(super) grid: Grid,
    /// Where the search for a free entity id starts.
    pub(super) next_entity: u16,
    pub(super) dropped: u64,
    /// Packets too large to encode, not sent.
    pub(super) oversized: u64,
    /// Spawn packets sent (one per player shown another).
    pub(super) spawns: u64,
    /// Removal packets sent (one per player told another is gone).
    pub(super) removals: u64,
    /// Messages refused because too many waited for their session's join
    /// to load (`link.rs` `HELD_MAX`).
    pub(super) held_refused: u64,
    /// Times a link stopped reading because `link.rs` `LOADING_MAX` joins
    /// were loading.
    pub(super) loading_full: u64,
    /// Kicks of whole accounts, for joins loading when they came.
    pub(super) kicked: KickedUsers,
    /// `(dropped, oversized, held_refused, loading_full)` at the last
    /// summary line, and its time.
    summarised: ([u64; 4], Option<Instant>),
}

impl Default for WorldInner {
    fn default() -> WorldInner {
        WorldInner::new(ViewConfig::default())
    }
}

impl WorldInner {
    /// An empty world whose grid has `view`'s geometry.
    pub(super) fn new(view: ViewConfig) -> WorldInner {
        WorldInner {
            links: HashMap::new(),
            gateways: Default::default(),
            players: HashMap::default(),
            entities: HashMap::new(),
            names: HashMap::new(),
            maps: HashMap::new(),
            grid: Grid::new(view),
            next_entity: 0,
            dropped: 0,
            oversized: 0,
            spawns: 0,
            removals: 0,
            held_refused: 0,
            loading_full: 0,
            kicked: KickedUsers::default(),
            summarised: ([0; 4], None),
        }
    }

    /// Tells `player`'s gateway to close its connection (`kicked`).
    pub(super) fn kick(&mut self, player: &Player, reason: &str) {
        let kick = pb::Kick {
            session_id: player.session_id,
            reason: reason.to_owned(),
        };
        self.send(player.link, downstream::Kind::Kick(kick));
    }

    /// Queues `msg` on `link` without waiting; a full or closed queue drops it.
    pub(super) fn send(&mut self, link: u64, msg: downstream::Kind) {
        let Some(tx) = self.links.get(&link) else {
            self.dropped += 1;
            return;
        };
        if let Err(e) = tx.try_send(Ok(pb::Downstream { kind: Some(msg) })) {
            self.dropped += 1;
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "link closed",
            };
            log::debug!("world: message for link {link} dropped ({why})");
            self.summarise();
        }
    }

    /// Logs what was dropped or refused since the last summary, at most
    /// once per [`SUMMARY_INTERVAL`].
    pub(super) fn summarise(&mut self) {
        let ([dropped, oversized, held, full], at) = self.summarised;
        let now = Instant::now();
        if at.is_some_and(|at| now.duration_since(at) < SUMMARY_INTERVAL) {
            return;
        }
        log::warn!(
            "world: since the last summary: dropped={} (link queue full or closed) oversized={} \
             held_refused={} (too many waited for a loading join) loading_full={} (a link \
             waited for one of its loading joins)",
            self.dropped - dropped,
            self.oversized - oversized,
            self.held_refused - held,
            self.loading_full - full
        );
        let counts = [
            self.dropped,
            self.oversized,
            self.held_refused,
            self.loading_full,
        ];
        self.summarised = (counts, Some(now));
    }

    /// Sends one packet to `targets`: one Broadcast per link and family
    /// holding that link's targets of that family, the body in the
    /// family's layout (`body`, computed once per family; a body too large
    /// to encode is not sent, and counted).
    pub(super) fn broadcast(
        &mut self,
        targets: impl IntoIterator<Item = u32>,
        body: impl Fn(Family) -> Body,
    ) {
        // A few links and families: a list searched from its last entry
        // (consecutive targets mostly share one), in first-seen order.
        let mut by_link: Vec<((Family, u64), Vec<u32>)> = Vec::new();
        for session in targets {
            if let Some(player) = self.players.get(&session) {
                let key = (player.family, player.link);
                match by_link.iter_mut().rev().find(|(k, _)| *k == key) {
                    Some((_, list)) => list.push(session),
                    None => by_link.push((key, vec![session])),
                }
            }
        }
        let mut bodies: BTreeMap<Family, Body> = BTreeMap::new();
        for ((family, link), targets) in by_link {
            let body = bodies.entry(family).or_insert_with(|| {
                let body = body(family);
                if matches!(body, Body::Oversized) {
                    self.oversized += 1;
                }
                body
            });
            let Body::Packet(kind, payload) = body else {
                continue;
            };
            let msg = downstream::Kind::Packet(pb::Broadcast {
                targets,
                r#type: *kind,
                payload: payload.clone(),
                layout: pb::Layout::from(family).into(),
            });
            self.send(link, msg);
        }
        if bodies.values().any(|b| matches!(b, Body::Oversized)) {
            self.summarise();
        }
    }

    /// The on-map players of `map`.
    pub(super) fn on_map(&self, map: u16) -> Vec<u32> {
        self.maps
            .get(&map)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A free entity id, or `None` when all 65535 are taken.
    pub(super) fn allocate_entity(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX {
            self.next_entity = self.next_entity.wrapping_add(1).max(1);
            if !self.entities.contains_key(&self.next_entity) {
                return Some(self.next_entity);
            }
        }
        None
    }

    /// Removes a player from every index, telling nobody.
    pub(super) fn detach(&mut self, session_id: u32) -> Option<Player> {
        let player = self.players.remove(&session_id)?;
        self.entities.remove(&player.entity_id);
        let name = player.name.to_lowercase();
        if self.names.get(&name) == Some(&session_id) {
            self.names.remove(&name);
        }
        if let Some(set) = self.maps.get_mut(&player.map) {
            set.remove(&session_id);
            if set.is_empty() {
                self.maps.remove(&player.map);
            }
        }
        self.leave_grid(&player);
        Some(player)
    }

    /// Removes a player and tells the players that saw it.
    pub(super) fn remove_player(&mut self, session_id: u32) -> Option<Player> {
        let player = self.detach(session_id)?;
        self.announce_removal(&player);
        Some(player)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::bodies::same;
    use super::*;
    use crate::protocol::packets::RemoveObject;

    /// A player of session `session_id` at (0, 0) on map 1, not on it yet.
    pub(in crate::backend::world) fn player(session_id: u32, link: u64, entity_id: u16) -> Player {
        Player {
            session_id,
            link,
            join_id: 0,
            user_id: session_id,
            char_id: u64::from(session_id),
            entity_id,
            name: format!("p{session_id}"),
            map: 1,
            x: 0.0,
            y: 0.0,
            hp: 1,
            mp: 1,
            on_map: false,
            dirty: false,
            family: Family::Osirose,
            look: Look::default(),
            joined: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn entity_ids_are_non_zero_unique_and_wrap() {
        let mut inner = WorldInner {
            next_entity: u16::MAX - 1,
            ..WorldInner::default()
        };
        inner.entities.insert(1, 99);
        assert_eq!(inner.allocate_entity(), Some(u16::MAX));
        inner.entities.insert(u16::MAX, 98);
        // Wraps past 0 and skips the taken 1.
        assert_eq!(inner.allocate_entity(), Some(2));
        for e in 1..=u16::MAX {
            inner.entities.insert(e, 0);
        }
        assert_eq!(inner.allocate_entity(), None);
    }

    #[test]
    fn broadcasts_split_per_link_and_full_queues_drop() {
        let mut inner = WorldInner::default();
        let (tx1, mut rx1) = mpsc::channel(8);
        let (tx2, rx2) = mpsc::channel(1);
        inner.links.insert(1, tx1);
        inner.links.insert(2, tx2);
        for (s, link) in [(10, 1), (11, 1), (20, 2)] {
            inner.players.insert(s, player(s, link, s as u16));
        }
        inner.broadcast([10, 20, 11, 99], same(&RemoveObject { id: 5 }));
        let Ok(Ok(pb::Downstream {
            kind: Some(downstream::Kind::Packet(b)),
        })) = rx1.try_recv()
        else {
            panic!("link 1 got nothing");
        };
        assert_eq!(b.targets, [10, 11]);
        assert_eq!(b.payload, [5, 0]);
        assert!(rx1.try_recv().is_err(), "one message per link");
        assert_eq!(inner.dropped, 0);
        // Link 2's queue (capacity 1) is full now: the next one is dropped.
        inner.broadcast([20], same(&RemoveObject { id: 6 }));
        assert_eq!(inner.dropped, 1);
        drop(rx2);
    }

    #[test]
    fn removal_is_announced_to_the_map_only() {
        let mut inner = WorldInner::default();
        let (tx, mut rx) = mpsc::channel(8);
        inner.links.insert(1, tx);
        for (s, e) in [(1, 11), (2, 12), (3, 13)] {
            inner.players.insert(s, player(s, 1, e));
            inner.entities.insert(e, s);
        }
        inner.players.get_mut(&3).unwrap().map = 2;
        inner.maps.entry(1).or_default().extend([1, 2]);
        inner.maps.entry(2).or_default().insert(3);
        // All on their maps, at one spot.
        for (s, map) in [(1, 1), (2, 1), (3, 2)] {
            inner.players.get_mut(&s).unwrap().on_map = true;
            let cell = inner.grid.cell_of(0.0, 0.0);
            inner.grid.insert(map, cell, s);
        }
        let gone = inner.remove_player(1).unwrap();
        assert_eq!(gone.entity_id, 11);
        assert!(!inner.entities.contains_key(&11));
        let Ok(Ok(pb::Downstream {
            kind: Some(downstream::Kind::Packet(b)),
        })) = rx.try_recv()
        else {
            panic!("no announcement");
        };
        assert_eq!((b.targets, b.payload), (vec![2], vec![11, 0]));
        assert!(rx.try_recv().is_err());
    }
}
