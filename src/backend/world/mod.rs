//! The World service: a small world of players on maps, reached through one
//! bidirectional `Link` stream per gateway.
//!
//! A gateway sends `Join` when a client whose session reached stage MAP
//! joins; the world checks the session (stage MAP with that character),
//! assigns an entity id (non-zero, unique, u16 range) and answers `Joined`
//! followed by the join burst (SELECT_CHAR_REPLY, INVENTORY_DATA, QUEST_DATA,
//! and for osIROSE clients BILLING_MESSAGE). The session and character
//! reads of a Join run off the link's loop, and what its session sends
//! meanwhile waits for it ([`link`]). Packet types on the stream use
//! the `osirose` numbering and payloads are bodies without the 6-byte header,
//! in the layout of the player's family, given by its `Join`: each player
//! gets what it is sent in its own client's layout (`bodies.rs`), and a
//! broadcast is encoded once per family among its targets.
//!
//! Who sees whom is a grid of cells per map ([`view`]): a player that sends
//! CHANGE_MAP_REQ is *on the map*, placed at the cell of its position, and
//! exchanges spawn packets (PLAYER_CHAR, in each family's layout) with every
//! on-map player in view; moving across cells spawns and removes
//! (REMOVE_OBJECT) as players come into and go out of view.
//!
//! Handled client packets: CHANGE_MAP_REQ (reply to the sender, then the
//! spawns), NORMAL_CHAT (to the on-map players in view of the sender,
//! sender included), SHOUT_CHAT (to every on-map player of the sender's
//! map), WHISPER_CHAT (to the player with that character name on any map;
//! unknown names are dropped silently), MOUSE_CMD (the position becomes
//! the target, then broadcast to the players in view there, mover
//! included) and STOP_MOVING (position updated, spawns and removals but no
//! broadcast). Other types are ignored; bodies that do not decode are
//! ignored and counted.
//!
//! `Leave` (from the connection that joined: same link and `join_id`)
//! removes the player and tells the players that saw it (REMOVE_OBJECT, in
//! each family's layout) and queues its map, position, hit and mana points
//! for saving ([`saver`]); with reason CHANGE_CHAR the session goes back to
//! stage CHAR_SELECT. Players that moved are also queued every
//! `SAVE_INTERVAL_SECS`, and a join enters where the character was saved.
//! When a link's stream ends or fails, every player of that link is removed
//! the same way. Several gateways may link at once: each link only speaks
//! for its own sessions, and a broadcast is split into one message per link
//! holding that link's targets.
//!
//! Downstream messages go through a bounded queue per link
//! ([`LINK_QUEUE_LEN`]); when a link's queue is full the message is dropped
//! for that link and counted, so one slow gateway never blocks the world.

pub(crate) mod admin;
mod bodies;
mod inner;
mod link;
pub(crate) mod saver;
mod service;
mod view;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::characters::Character;
use super::store::memory::lock;
use super::Shared;
use crate::pb::world::{self as pb, downstream};
use crate::protocol::packet_type::{Family, PacketType};
use crate::protocol::packets::{
    ChangeMapReq, MouseCmd, MouseCmdBroadcast, NormalChat, NormalChatBroadcast, Packet, ShoutChat,
    ShoutChatBroadcast, StopMoving, WhisperChat, WhisperChatReply,
};
use bodies::{each, same};
use inner::{dialect, Look, Player, WorldInner};
use saver::Saver;

pub(crate) use service::WorldService;
pub use view::ViewConfig;

/// Capacity of each link's downstream queue, in messages.
pub const LINK_QUEUE_LEN: usize = 4096;

/// The `Joined` of a join the world refused.
fn failed_join(session_id: u32) -> downstream::Kind {
    downstream::Kind::Joined(pb::Joined {
        session_id,
        result: pb::JoinResult::Failed.into(),
        entity_id: 0,
    })
}

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
    /// Spawn packets sent: one per player shown another coming into view.
    pub spawns: u64,
    /// Removal packets sent: one per player told another left its view.
    pub removals: u64,
    /// Messages refused because too many waited for their session's join
    /// to load (`link.rs`).
    pub refused_while_loading: u64,
    /// Times a link stopped reading because `link.rs` `LOADING_MAX` joins
    /// were loading (it reads on when one is done).
    pub loading_full: u64,
    /// Joins cancelled by their Leave before they loaded.
    pub joins_cancelled: u64,
}
/// The world's state, shared by every link.
pub struct WorldState {
    shared: Arc<Shared>,
    inner: Mutex<WorldInner>,
    /// Write-behind saving of characters in play.
    saver: Arc<Saver>,
    next_link: AtomicU64,
    undecodable: AtomicU64,
    joins_cancelled: AtomicU64,
    /// Set to true to end every link (backend shutdown).
    closing: watch::Sender<bool>,
    /// The tasks serving links, awaited on shutdown (finished ones are
    /// dropped whenever a link opens).
    link_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl WorldState {
    pub(crate) fn new(shared: Arc<Shared>) -> WorldState {
        WorldState {
            saver: Arc::new(Saver::new(shared.store.clone())),
            inner: Mutex::new(WorldInner::new(shared.config.view)),
            shared,

            next_link: AtomicU64::new(1),
            undecodable: AtomicU64::new(0),
            joins_cancelled: AtomicU64::new(0),
            closing: watch::channel(false).0,
            link_tasks: Mutex::new(Vec::new()),
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
            spawns: inner.spawns,
            removals: inner.removals,
            refused_while_loading: inner.held_refused,
            loading_full: inner.loading_full,
            joins_cancelled: self.joins_cancelled.load(Ordering::Relaxed),
        }
    }

    /// The number of on-map players of each map that has any, by map id.
    pub fn players_per_map(&self) -> Vec<(u16, usize)> {
        let inner = lock(&self.inner);
        let mut maps: Vec<_> = inner.maps.iter().map(|(&m, s)| (m, s.len())).collect();
        maps.sort_unstable();
        maps
    }

    /// The saver, whose task the backend runs.
    pub(crate) fn saver(&self) -> Arc<Saver> {
        self.saver.clone()
    }

    /// Queues the state of every player that changed since the last call
    /// (the periodic save, every `SAVE_INTERVAL_SECS`); how many.
    pub(crate) fn save_changed(&self) -> usize {
        let changed: Vec<_> = lock(&self.inner)
            .players
            .values_mut()
            .filter(|p| p.dirty)
            .map(|p| {
                p.dirty = false;
                p.state()
            })
            .collect();
        let n = changed.len();
        self.saver.queue(changed);
        n
    }

    /// Ends every link: their downstream streams finish and their players
    /// are removed (and queued for saving). Returns once every link task
    /// has ended.
    pub(crate) async fn close_all_links(&self) {
        self.closing.send_replace(true);
        {
            let mut inner = lock(&self.inner);
            inner.links.clear();
            inner.gateways.clear();
        }
        let tasks = std::mem::take(&mut *lock(&self.link_tasks));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Queues removed players for saving and, for a change of character,
    /// moves their session back to character select. Called without the
    /// world lock.
    async fn after_removal(&self, removed: &[Player], change_char: bool) {
        self.saver.queue(removed.iter().map(Player::state));
        if change_char {
            for p in removed {
                self.reset_session(p.session_id, p.user_id).await;
            }
        }
    }

    /// Moves a session back to character select (a change of character).
    async fn reset_session(&self, session_id: u32, user_id: u32) {
        match self.shared.sessions.back_to_char_select(session_id).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("world: session of user {user_id} not reset: {e:?}"),
            Err(e) => log::error!("world: session of user {user_id} not reset: {e}"),
        }
    }

    /// Puts the character in the world under the world lock: replaces any
    /// older player of the session or the character (into `removed`),
    /// answers Joined and sends the join burst. Its entity id, or `None`
    /// (answered FAILED) when none is left or the account was kicked since
    /// generation `kicks_seen` (a ban while the join loaded).
    fn enter(
        &self,
        link: u64,
        join: &pb::Join,
        c: &mut Character,
        removed: &mut Vec<Player>,
        kicks_seen: u64,
    ) -> Option<u16> {
        let session_id = join.session_id;
        let mut inner = lock(&self.inner);
        // Under the lock that inserts the player: a kick of the account
        // since the join began loading (a ban) is not outrun.
        if inner.kicked.since(join.user_id, kicks_seen) {
            log::debug!(
                "world: join of user {} loaded after its account was kicked; refused",
                join.user_id
            );
            self.joins_cancelled.fetch_add(1, Ordering::Relaxed);
            inner.send(link, failed_join(session_id));
            return None;
        }
        // A session joining again, or the same character joining through a
        // newer session, replaces the old player (whose state is the newest).
        let stale_by_name = inner.names.get(&c.name.to_lowercase()).copied();
        for old in [Some(session_id), stale_by_name].into_iter().flatten() {
            if let Some(p) = inner.remove_player(old) {
                if p.link != link || p.session_id != session_id {
                    inner.kick(&p, "joined again elsewhere");
                }
                if p.char_id == c.char_id {
                    p.state().apply(c);
                }
                removed.push(p);
            }
        }
        let Some(entity_id) = inner.allocate_entity() else {
            log::warn!("world: no entity id left");
            inner.send(link, failed_join(session_id));
            return None;
        };
        let player = Player {
            session_id,
            link,
            join_id: join.join_id,
            user_id: c.user_id,
            char_id: c.char_id,
            entity_id,
            name: c.name.clone(),
            map: c.map,
            x: c.x,
            y: c.y,
            hp: c.hp,
            mp: c.mp,
            on_map: false,
            dirty: false,
            family: Family::from(join.layout()),
            look: Look {
                race: c.race,
                face: c.face,
                hair: c.hair,
                items: c.items,
                job: c.job,
                level: c.level,
            },
            joined: std::time::SystemTime::now(),
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
        for body in bodies::join_burst(c, family) {
            inner.broadcast([session_id], |_| body.clone());
        }
        Some(entity_id)
    }

    async fn leave(&self, link: u64, leave: pb::Leave) {
        let removed = {
            let mut inner = lock(&self.inner);
            match inner.players.get(&leave.session_id) {
                // A late Leave of an older connection of the session leaves
                // the newer player alone (docs/protocol.md §9 D15).
                Some(p) if p.link == link && (leave.join_id == 0 || leave.join_id == p.join_id) => {
                    inner.remove_player(leave.session_id)
                }
                _ => None,
            }
        };
        let Some(p) = removed else { return };
        log::debug!("world: {:?} left", p.name);
        let change_char = leave.reason == i32::from(pb::LeaveReason::ChangeChar);
        self.after_removal(&[p], change_char).await;
    }

    /// Removes every player of a link that ended.
    async fn drop_link(&self, link: u64) {
        let removed: Vec<Player> = {
            let mut inner = lock(&self.inner);
            inner.links.remove(&link);
            inner.gateways.remove(&link);
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
        self.after_removal(&removed, false).await;
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
        let (entity_id, map) = (player.entity_id, player.map);
        let (x, y) = (player.x, player.y);
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
                    inner.enter_view(session);
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
                let targets = inner.in_view(map, x, y);
                inner.broadcast(targets, same(&out));
            }
            PacketType::PAKCS_SHOUT_CHAT => {
                let Ok(chat) = ShoutChat::decode(body) else {
                    return self.undecodable(t);
                };
                // The name is copied for the chat that carries it only.
                let Some(name) = inner.players.get(&session).map(|p| p.name.clone()) else {
                    return;
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
                // The name is copied for the chat that carries it only.
                let Some(name) = inner.players.get(&session).map(|p| p.name.clone()) else {
                    return;
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
                inner.relocate(session, cmd.x, cmd.y);
                let out = MouseCmdBroadcast {
                    id: entity_id,
                    target_id: cmd.target_id,
                    distance: 0,
                    x: cmd.x,
                    y: cmd.y,
                    z: 0,
                };
                let targets = inner.in_view(map, cmd.x, cmd.y);
                inner.broadcast(targets, same(&out));
            }
            PacketType::PAKCS_STOP_MOVING => {
                let Ok(stop) = StopMoving::decode(body) else {
                    return self.undecodable(t);
                };
                inner.relocate(session, stop.x, stop.y);
            }
            other => log::trace!("world: {other} not handled"),
        }
    }
}
