//! The World service: a small world of players on maps, reached through one
//! bidirectional `Link` stream per gateway.
//!
//! A gateway sends `Join` when a client whose session reached stage MAP
//! joins; the world checks the session (stage MAP with that character),
//! assigns an entity id (non-zero, unique, u16 range) and answers `Joined`
//! followed by the join burst (SELECT_CHAR_REPLY, INVENTORY_DATA, QUEST_DATA,
//! and for osIROSE clients BILLING_MESSAGE). Packet types on the stream use
//! the `osirose` numbering and payloads are bodies without the 6-byte header,
//! in the layout of the player's family, given by its `Join`: each player
//! gets what it is sent in its own client's layout (`bodies.rs`), and a
//! broadcast is encoded once per family among its targets.
//!
//! Handled client packets: CHANGE_MAP_REQ (reply to the sender; the player is
//! then *on the map* and receives map traffic; irose players on the map are
//! shown it with a spawn packet, and an irose newcomer is shown everyone
//! there), NORMAL_CHAT and SHOUT_CHAT
//! (to every on-map player of the sender's map, sender included), WHISPER_CHAT
//! (to the player with that character name on any map; unknown names are
//! dropped silently), MOUSE_CMD (broadcast to the map, mover included; the
//! position is updated) and STOP_MOVING (position updated silently). Other
//! types are ignored; bodies that do not decode are ignored and counted.
//!
//! `Leave` removes the player and tells the others on its map
//! (REMOVE_OBJECT, in each family's layout); with reason CHANGE_CHAR the session goes back to stage
//! CHAR_SELECT. When a link's stream ends or fails, every player of that link
//! is removed the same way. Several gateways may link at once: each link only
//! speaks for its own sessions, and a broadcast is split into one message per
//! link holding that link's targets.
//!
//! Downstream messages go through a bounded queue per link
//! ([`LINK_QUEUE_LEN`]); when a link's queue is full the message is dropped
//! for that link and counted, so one slow gateway never blocks the world.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::characters::Character;
use super::sessions::Stage;
use super::{lock, Shared};
use crate::pb::world::{self as pb, downstream, upstream};
use crate::protocol::packet_type::{DialectId, Family, PacketType};
use crate::protocol::packets::{
    ChangeMapReq, MouseCmd, MouseCmdBroadcast, NormalChat, NormalChatBroadcast, Packet, ShoutChat,
    ShoutChatBroadcast, StopMoving, WhisperChat, WhisperChatReply,
};
use bodies::{each, irose_only, same, Body};

mod bodies;
mod service;

pub(crate) use service::WorldService;

/// Capacity of each link's downstream queue, in messages.
pub const LINK_QUEUE_LEN: usize = 4096;

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
    /// The layouts its client reads and writes.
    family: Family,
    /// How others see it (irose spawn packets).
    look: Look,
}

/// What other players see of a player.
#[derive(Clone, Copy, Debug, Default)]
struct Look {
    race: u8,
    face: u8,
    hair: u8,
    /// EquippedItem words.
    items: [u32; 8],
    job: u16,
    level: u16,
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
            log::warn!("world: message for link {link} dropped ({why})");
        }
    }

    /// Sends one packet to `targets`: one Broadcast per link and family
    /// holding that link's targets of that family, the body in the
    /// family's layout (`body`, computed once per family; a family it gives
    /// no body gets nothing).
    fn broadcast(&mut self, targets: impl IntoIterator<Item = u32>, body: impl Fn(Family) -> Body) {
        let mut by_link: BTreeMap<(Family, u64), Vec<u32>> = BTreeMap::new();
        for session in targets {
            if let Some(player) = self.players.get(&session) {
                let key = (player.family, player.link);
                by_link.entry(key).or_default().push(session);
            }
        }
        let mut bodies: BTreeMap<Family, Body> = BTreeMap::new();
        for ((family, link), targets) in by_link {
            let body = bodies.entry(family).or_insert_with(|| body(family));
            let Some((kind, payload)) = body.clone() else {
                continue;
            };
            self.send(
                link,
                downstream::Kind::Packet(pb::Broadcast {
                    targets,
                    r#type: kind,
                    payload,
                    layout: pb::Layout::from(family).into(),
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
        let (osirose, irose) = bodies::removal(player.entity_id);
        self.broadcast(others, each(&osirose, &irose));
    }

    /// A player came onto its map: irose clients there see it, and an irose
    /// newcomer sees who is there (osIROSE clients are sent no spawns).
    fn announce_arrival(&mut self, session: u32) {
        let Some(newcomer) = self.players.get(&session) else {
            return;
        };
        let (map, family, spawn) = (newcomer.map, newcomer.family, bodies::spawn_of(newcomer));
        let others: Vec<u32> = self
            .on_map(map)
            .into_iter()
            .filter(|&s| s != session)
            .collect();
        self.broadcast(others.iter().copied(), irose_only(&spawn));
        if family == Family::Irose {
            let spawns: Vec<_> = others
                .iter()
                .filter_map(|s| self.players.get(s))
                .map(bodies::spawn_of)
                .collect();
            for spawn in &spawns {
                self.broadcast([session], irose_only(spawn));
            }
        }
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
            family: Family::from(join.layout()),
            look: Look {
                race: c.race,
                face: c.face,
                hair: c.hair,
                items: c.items,
                job: c.job,
                level: c.level,
            },
        };
        let family = player.family;
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
        for body in bodies::join_burst(&c, family) {
            inner.broadcast([session_id], |_| body.clone());
        }
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
            .and_then(|id| DialectId::Osirose.dialect().client_packet(id))
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
                let (reply, irose_reply) = bodies::change_map_reply(player);
                let arriving = !player.on_map;
                if let Some(p) = inner.players.get_mut(&session) {
                    p.on_map = true;
                }
                inner.maps.entry(map).or_default().insert(session);
                inner.broadcast([session], each(&reply, &irose_reply));
                if arriving {
                    inner.announce_arrival(session);
                }
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
                inner.broadcast(targets, same(&out));
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
                inner.broadcast(targets, same(&out));
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
                    inner.broadcast([to], same(&out));
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
                inner.broadcast(targets, same(&out));
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

#[cfg(test)]
mod tests;
