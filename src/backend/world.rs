//! The World service: a small world of players on maps, reached through one
//! bidirectional `Link` stream per gateway.
//!
//! A gateway sends `Join` when a client whose session reached stage MAP
//! joins; the world checks the session (stage MAP with that character),
//! assigns an entity id (non-zero, unique, u16 range) and answers `Joined`
//! followed by the join burst (SELECT_CHAR_REPLY, INVENTORY_DATA, QUEST_DATA,
//! BILLING_MESSAGE). Packet types on the stream use the `osirose` numbering
//! and payloads are bodies without the 6-byte header.
//!
//! Handled client packets: CHANGE_MAP_REQ (reply to the sender; the player is
//! then *on the map* and receives map traffic), NORMAL_CHAT and SHOUT_CHAT
//! (to every on-map player of the sender's map, sender included), WHISPER_CHAT
//! (to the player with that character name on any map; unknown names are
//! dropped silently), MOUSE_CMD (broadcast to the map, mover included; the
//! position is updated) and STOP_MOVING (position updated silently). Other
//! types are ignored; bodies that do not decode are ignored and counted.
//!
//! `Leave` removes the player and tells the others on its map
//! (REMOVE_OBJECT); with reason CHANGE_CHAR the session goes back to stage
//! CHAR_SELECT. When a link's stream ends or fails, every player of that link
//! is removed the same way. Several gateways may link at once: each link only
//! speaks for its own sessions, and a broadcast is split into one message per
//! link holding that link's targets.
//!
//! Downstream messages go through a bounded queue per link
//! ([`LINK_QUEUE_LEN`]); when a link's queue is full the message is dropped
//! for that link and counted, so one slow gateway never blocks the world.
//! Drops and packets too large to encode are logged as a summary at most
//! once per [`SUMMARY_INTERVAL`], never a line per message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::characters::Character;
use super::sessions::Stage;
use super::{lock, Shared};
use crate::pb::world::{self as pb, downstream, upstream, world_server::World};
use crate::protocol::codec::{HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{Dialect, DialectId, PacketType};
use crate::protocol::packets::{
    BillingMessage, ChangeMapReply, ChangeMapReq, InventoryData, MouseCmd, MouseCmdBroadcast,
    NormalChat, NormalChatBroadcast, Packet, QuestData, RemoveObject, SelectCharReply, ShoutChat,
    ShoutChatBroadcast, StopMoving, WhisperChat, WhisperChatReply, Writer,
};

/// Capacity of each link's downstream queue, in messages.
pub const LINK_QUEUE_LEN: usize = 4096;

/// Least time between two summary lines of dropped messages.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Hit points of a character entering the world.
const START_HP: u16 = 100;
/// Mana points of a character entering the world.
const START_MP: u16 = 50;
/// Each base stat of a character entering the world.
const START_STAT: u16 = 15;

/// Counters of the world, for tests and logs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldStats {
    /// Players currently joined (on any link).
    pub players: usize,
    /// Gateways currently linked.
    pub links: usize,
    /// Client packets whose body did not decode.
    pub undecodable: u64,
    /// Downstream messages dropped because a link's queue was full or closed.
    pub dropped: u64,
}

/// The `osirose` dialect: the numbering of the World stream.
fn dialect() -> &'static Dialect {
    DialectId::Osirose.dialect()
}

/// Encodes a packet's body (no header) and returns it with its `osirose` id.
fn body_of<P: Packet>(p: &P) -> Option<(u32, Vec<u8>)> {
    let id = dialect().wire_id(P::TYPE)?;
    let mut buf = vec![0u8; MAX_PACKET_SIZE - HEADER_LEN];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    if w.overflowed() {
        log::debug!("world: {} does not fit in a packet", P::TYPE);
        return None;
    }
    let len = w.len();
    buf.truncate(len);
    Some((u32::from(id), buf))
}

/// One player in the world.
#[derive(Clone, Debug)]
struct Player {
    /// The session it joined with (the key of [`WorldInner::players`]).
    session_id: u32,
    /// The link (gateway) that speaks for it.
    link: u64,
    /// The account.
    user_id: u32,
    /// The character.
    char_id: u64,
    /// Unique non-zero entity id (key of [`WorldInner::entities`]).
    entity_id: u16,
    /// Character name (its lowercase is the key of [`WorldInner::names`]).
    name: String,
    /// Current map.
    map: u16,
    /// Position.
    x: f32,
    /// Position.
    y: f32,
    /// Hit points.
    hp: u16,
    /// Mana points.
    mp: u16,
    /// Whether it sent CHANGE_MAP_REQ; invariant: true iff its session id is
    /// in `maps[map]`.
    on_map: bool,
}

/// Players, maps and links.
///
/// Invariants: `entities`, `names` and the `maps` sets index exactly the
/// players of `players` (see [`Player`]); every player's link is in `links`.
#[derive(Default)]
struct WorldInner {
    links: HashMap<u64, mpsc::Sender<Result<pb::Downstream, Status>>>,
    players: HashMap<u32, Player>,
    entities: HashMap<u16, u32>,
    names: HashMap<String, u32>,
    maps: HashMap<u16, BTreeSet<u32>>,
    /// Where the search for a free entity id starts.
    next_entity: u16,
    dropped: u64,
    /// Packets too large to encode, not sent.
    oversized: u64,
    /// `(dropped, oversized)` at the last summary line, and its time.
    summarised: (u64, u64, Option<Instant>),
}

impl WorldInner {
    /// Queues `msg` on `link` without waiting; a full or closed queue drops it.
    fn send(&mut self, link: u64, msg: downstream::Kind) {
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

    /// Logs what was dropped since the last summary, at most once per
    /// [`SUMMARY_INTERVAL`].
    fn summarise(&mut self) {
        let (dropped, oversized, at) = self.summarised;
        let now = Instant::now();
        if at.is_some_and(|at| now.duration_since(at) < SUMMARY_INTERVAL) {
            return;
        }
        log::warn!(
            "world: since the last summary: dropped={} (link queue full or closed) oversized={}",
            self.dropped - dropped,
            self.oversized - oversized
        );
        self.summarised = (self.dropped, self.oversized, Some(now));
    }

    /// Sends one packet to `targets`: one Broadcast per link holding that
    /// link's targets.
    fn broadcast<P: Packet>(&mut self, targets: impl IntoIterator<Item = u32>, p: &P) {
        let Some((kind, payload)) = body_of(p) else {
            self.oversized += 1;
            self.summarise();
            return;
        };
        let mut by_link: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for session in targets {
            if let Some(player) = self.players.get(&session) {
                by_link.entry(player.link).or_default().push(session);
            }
        }
        for (link, targets) in by_link {
            self.send(
                link,
                downstream::Kind::Packet(pb::Broadcast {
                    targets,
                    r#type: kind,
                    payload: payload.clone(),
                }),
            );
        }
    }

    /// The on-map players of `map`.
    fn on_map(&self, map: u16) -> Vec<u32> {
        self.maps
            .get(&map)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A free entity id, or `None` when all 65535 are taken.
    fn allocate_entity(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX {
            self.next_entity = self.next_entity.wrapping_add(1).max(1);
            if !self.entities.contains_key(&self.next_entity) {
                return Some(self.next_entity);
            }
        }
        None
    }

    /// Removes a player from every index, telling nobody.
    fn detach(&mut self, session_id: u32) -> Option<Player> {
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
        Some(player)
    }

    /// Tells the on-map players of a removed player's map that it is gone.
    fn announce_removal(&mut self, player: &Player) {
        let others = self.on_map(player.map);
        self.broadcast(
            others,
            &RemoveObject {
                id: player.entity_id,
            },
        );
    }

    /// Removes a player and tells the other on-map players of its map.
    fn remove_player(&mut self, session_id: u32) -> Option<Player> {
        let player = self.detach(session_id)?;
        self.announce_removal(&player);
        Some(player)
    }
}

/// The world's state, shared by every link.
pub struct WorldState {
    shared: Arc<Shared>,
    inner: Mutex<WorldInner>,
    next_link: AtomicU64,
    undecodable: AtomicU64,
    /// Set to true to end every link (backend shutdown).
    closing: watch::Sender<bool>,
}

impl WorldState {
    pub(crate) fn new(shared: Arc<Shared>) -> WorldState {
        WorldState {
            shared,
            inner: Mutex::new(WorldInner::default()),
            next_link: AtomicU64::new(1),
            undecodable: AtomicU64::new(0),
            closing: watch::channel(false).0,
        }
    }

    /// Current counters.
    pub fn stats(&self) -> WorldStats {
        let inner = lock(&self.inner);
        WorldStats {
            players: inner.players.len(),
            links: inner.links.len(),
            undecodable: self.undecodable.load(Ordering::Relaxed),
            dropped: inner.dropped,
        }
    }

    /// Ends every link: their downstream streams finish and their players
    /// are removed.
    pub(crate) fn close_all_links(&self) {
        self.closing.send_replace(true);
        lock(&self.inner).links.clear();
    }

    /// Saves where removed players were and, for a change of character,
    /// moves their session back to character select. Called without the
    /// world lock.
    fn after_removal(&self, removed: &[Player], change_char: bool) {
        {
            let mut chars = lock(&self.shared.characters);
            for p in removed {
                chars.set_position(p.char_id, p.map, p.x, p.y);
            }
        }
        if change_char {
            let now = Instant::now();
            let mut sessions = lock(&self.shared.sessions);
            for p in removed {
                if let Err(e) = sessions.back_to_char_select(p.session_id, now) {
                    log::debug!("world: session of user {} not reset: {e:?}", p.user_id);
                }
            }
        }
    }

    /// The character a Join may enter with, if the session allows it.
    fn joinable(&self, join: &pb::Join) -> Option<Character> {
        {
            let mut sessions = lock(&self.shared.sessions);
            let session = sessions.get(join.session_id, Instant::now()).ok()?;
            if session.stage != Stage::Map
                || session.user_id != join.user_id
                || session.char_id != Some(join.char_id)
            {
                return None;
            }
        }
        lock(&self.shared.characters)
            .get_owned(join.user_id, join.char_id)
            .ok()
            .cloned()
    }

    fn join(&self, link: u64, join: pb::Join) {
        let session_id = join.session_id;
        let failed = pb::Joined {
            session_id,
            result: pb::JoinResult::Failed.into(),
            entity_id: 0,
        };
        let Some(c) = self.joinable(&join) else {
            log::debug!("world: join of session for user {} refused", join.user_id);
            lock(&self.inner).send(link, downstream::Kind::Joined(failed));
            return;
        };
        let mut removed = Vec::new();
        let mut inner = lock(&self.inner);
        // A session joining again, or the same character joining through a
        // newer session, replaces the old player.
        let stale_by_name = inner.names.get(&c.name.to_lowercase()).copied();
        for old in [Some(session_id), stale_by_name].into_iter().flatten() {
            if let Some(p) = inner.remove_player(old) {
                if p.link != link || p.session_id != session_id {
                    inner.send(
                        p.link,
                        downstream::Kind::Kick(pb::Kick {
                            session_id: p.session_id,
                            reason: "joined again elsewhere".into(),
                        }),
                    );
                }
                removed.push(p);
            }
        }
        let Some(entity_id) = inner.allocate_entity() else {
            log::warn!("world: no entity id left");
            inner.send(link, downstream::Kind::Joined(failed));
            drop(inner);
            self.after_removal(&removed, false);
            return;
        };
        let player = Player {
            session_id,
            link,
            user_id: c.user_id,
            char_id: c.char_id,
            entity_id,
            name: c.name.clone(),
            map: c.map,
            x: c.x,
            y: c.y,
            hp: START_HP,
            mp: START_MP,
            on_map: false,
        };
        inner.entities.insert(entity_id, session_id);
        inner.names.insert(c.name.to_lowercase(), session_id);
        inner.players.insert(session_id, player);
        inner.send(
            link,
            downstream::Kind::Joined(pb::Joined {
                session_id,
                result: pb::JoinResult::Ok.into(),
                entity_id: entity_id.into(),
            }),
        );
        let target = [session_id];
        inner.broadcast(target, &select_char_reply(&c));
        inner.broadcast(target, &InventoryData::default());
        inner.broadcast(target, &QuestData::default());
        inner.broadcast(
            target,
            &BillingMessage {
                function_type: 0x1001,
                pay_flag: 2,
            },
        );
        drop(inner);
        log::debug!(
            "world: {:?} (user {}) joined map {} as entity {entity_id}",
            c.name,
            c.user_id,
            c.map
        );
        self.after_removal(&removed, false);
    }

    fn leave(&self, link: u64, leave: pb::Leave) {
        let removed = {
            let mut inner = lock(&self.inner);
            match inner.players.get(&leave.session_id) {
                Some(p) if p.link == link => inner.remove_player(leave.session_id),
                _ => None,
            }
        };
        let Some(p) = removed else { return };
        log::debug!("world: {:?} left", p.name);
        let change_char = leave.reason == i32::from(pb::LeaveReason::ChangeChar);
        self.after_removal(&[p], change_char);
    }

    /// Removes every player of a link that ended.
    fn drop_link(&self, link: u64) {
        let removed: Vec<Player> = {
            let mut inner = lock(&self.inner);
            inner.links.remove(&link);
            let sessions: Vec<u32> = inner
                .players
                .values()
                .filter(|p| p.link == link)
                .map(|p| p.session_id)
                .collect();
            // Detach them all first, so no removal is announced to a player
            // of the dead link.
            let removed: Vec<Player> = sessions
                .into_iter()
                .filter_map(|s| inner.detach(s))
                .collect();
            for p in &removed {
                inner.announce_removal(p);
            }
            removed
        };
        log::info!(
            "world: link {link} closed, {} players removed",
            removed.len()
        );
        self.after_removal(&removed, false);
    }

    fn undecodable(&self, t: PacketType) {
        self.undecodable.fetch_add(1, Ordering::Relaxed);
        log::debug!("world: undecodable {t} ignored");
    }

    fn packet(&self, link: u64, packet: pb::Packet) {
        let Some(t) = u16::try_from(packet.r#type)
            .ok()
            .and_then(|id| dialect().client_packet(id))
        else {
            log::debug!("world: unknown packet type {:#x} ignored", packet.r#type);
            return;
        };
        let session = packet.session_id;
        let mut inner = lock(&self.inner);
        let Some(player) = inner.players.get(&session).filter(|p| p.link == link) else {
            return;
        };
        let (entity_id, map, name) = (player.entity_id, player.map, player.name.clone());
        let body = packet.payload.as_slice();
        match t {
            PacketType::PAKCS_CHANGE_MAP_REQ => {
                if ChangeMapReq::decode(body).is_err() {
                    return self.undecodable(t);
                }
                let reply = ChangeMapReply {
                    object_index: entity_id,
                    hp: player.hp,
                    mp: player.mp,
                    world_rate: 100,
                    town_rate: 100,
                    ..Default::default()
                };
                if let Some(p) = inner.players.get_mut(&session) {
                    p.on_map = true;
                }
                inner.maps.entry(map).or_default().insert(session);
                inner.broadcast([session], &reply);
            }
            PacketType::PAKCS_NORMAL_CHAT => {
                let Ok(chat) = NormalChat::decode(body) else {
                    return self.undecodable(t);
                };
                let out = NormalChatBroadcast {
                    char_id: entity_id,
                    message: chat.message,
                };
                let targets = inner.on_map(map);
                inner.broadcast(targets, &out);
            }
            PacketType::PAKCS_SHOUT_CHAT => {
                let Ok(chat) = ShoutChat::decode(body) else {
                    return self.undecodable(t);
                };
                let out = ShoutChatBroadcast {
                    sender: name,
                    message: chat.message,
                };
                let targets = inner.on_map(map);
                inner.broadcast(targets, &out);
            }
            PacketType::PAKCS_WHISPER_CHAT => {
                let Ok(chat) = WhisperChat::decode(body) else {
                    return self.undecodable(t);
                };
                let out = WhisperChatReply {
                    sender: name,
                    message: chat.message,
                };
                if let Some(&to) = inner.names.get(&chat.target.to_lowercase()) {
                    inner.broadcast([to], &out);
                }
            }
            PacketType::PAKCS_MOUSE_CMD => {
                let Ok(cmd) = MouseCmd::decode(body) else {
                    return self.undecodable(t);
                };
                if let Some(p) = inner.players.get_mut(&session) {
                    (p.x, p.y) = (cmd.x, cmd.y);
                }
                let out = MouseCmdBroadcast {
                    id: entity_id,
                    target_id: cmd.target_id,
                    distance: 0,
                    x: cmd.x,
                    y: cmd.y,
                    z: 0,
                };
                let targets = inner.on_map(map);
                inner.broadcast(targets, &out);
            }
            PacketType::PAKCS_STOP_MOVING => {
                let Ok(stop) = StopMoving::decode(body) else {
                    return self.undecodable(t);
                };
                if let Some(p) = inner.players.get_mut(&session) {
                    (p.x, p.y) = (stop.x, stop.y);
                }
            }
            other => log::trace!("world: {other} not handled"),
        }
    }

    fn handle(&self, link: u64, msg: pb::Upstream) {
        match msg.kind {
            Some(upstream::Kind::Join(j)) => self.join(link, j),
            Some(upstream::Kind::Packet(p)) => self.packet(link, p),
            Some(upstream::Kind::Leave(l)) => self.leave(link, l),
            None => log::debug!("world: empty upstream message from link {link}"),
        }
    }
}

/// PAKWC_SELECT_CHAR_REPLY for a character entering the world.
fn select_char_reply(c: &Character) -> SelectCharReply {
    SelectCharReply {
        race: c.race,
        map: c.map,
        x: c.x,
        y: c.y,
        body_face: c.face.into(),
        body_hair: c.hair.into(),
        equipped_items: c.items,
        stone: c.stone,
        face: c.face,
        hair: c.hair,
        job: c.job,
        str: START_STAT,
        dex: START_STAT,
        int: START_STAT,
        con: START_STAT,
        charm: START_STAT,
        sense: START_STAT,
        hp: START_HP.into(),
        mp: START_MP.into(),
        level: c.level,
        stamina: 5000,
        name: c.name.clone(),
        ..Default::default()
    }
}

/// The World gRPC service over a [`WorldState`].
pub(crate) struct WorldService {
    /// The world all links share.
    pub(crate) state: Arc<WorldState>,
}

#[tonic::async_trait]
impl World for WorldService {
    type LinkStream = ReceiverStream<Result<pb::Downstream, Status>>;

    async fn link(
        &self,
        request: Request<Streaming<pb::Upstream>>,
    ) -> Result<Response<Self::LinkStream>, Status> {
        let mut upstream = request.into_inner();
        let (tx, rx) = mpsc::channel(LINK_QUEUE_LEN);
        let state = self.state.clone();
        let mut closing = state.closing.subscribe();
        if *closing.borrow() {
            return Err(Status::unavailable("backend shutting down"));
        }
        let link = state.next_link.fetch_add(1, Ordering::Relaxed);
        lock(&state.inner).links.insert(link, tx);
        log::info!("world: link {link} opened");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = upstream.message() => match msg {
                        Ok(Some(msg)) => state.handle(link, msg),
                        Ok(None) => break,
                        Err(status) => {
                            log::debug!("world: link {link} failed: {status}");
                            break;
                        }
                    },
                    _ = closing.wait_for(|&c| c) => break,
                }
            }
            state.drop_link(link);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(session_id: u32, link: u64, entity_id: u16) -> Player {
        Player {
            session_id,
            link,
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
        inner.broadcast([10, 20, 11, 99], &RemoveObject { id: 5 });
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
        inner.broadcast([20], &RemoveObject { id: 6 });
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
