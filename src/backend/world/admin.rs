//! What an operator does to the world, for the admin service
//! (`src/backend/admin.rs`): the list of players with the gateway they came
//! through and when they joined, kicks and announcements.
//!
//! A kick removes the player the way a `Leave` does — the others on its map
//! are sent REMOVE_OBJECT (in each family's layout) and its state is queued
//! for saving — and sends `Kick` down the player's link, so its gateway
//! closes the connection as `kicked` (the gateway's `Leave(DISCONNECT)` that
//! follows finds nobody). An announcement is one Broadcast of
//! PAKSW_ANNOUNCE_CHAT per link and family. Every link is sent its own
//! players' share, so both reach players on every gateway of the world.
//!
//! A kick of an account (a ban, or a kick by account name) is also
//! remembered for a while ([`KickedUsers`]): a join of the account that
//! was still loading its character when the kick came is refused once it
//! has loaded, even when nobody of the account was in the world yet.
//!
//! A gateway names itself on its `Link` with `x-gateway` metadata
//! ([`crate::rpc::GATEWAY_METADATA`]); the name is kept per link and shown
//! in the list.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::bodies::same;
use super::inner::{Player, WorldInner};
use super::WorldState;
use crate::backend::store::memory::lock;
use crate::protocol::packets::AnnounceChat;

/// Longest gateway name kept, in bytes; a longer one is cut.
pub const MAX_GATEWAY_NAME: usize = 128;

/// The names the linked gateways gave themselves, by link.
pub(super) type GatewayNames = HashMap<u64, String>;

/// A player in the world, as the admin list shows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Online {
    pub(crate) session_id: u32,
    pub(crate) user_id: u32,
    pub(crate) entity_id: u16,
    /// The character name.
    pub(crate) name: String,
    pub(crate) map: u16,
    pub(crate) x: f32,
    pub(crate) y: f32,
    /// The name of its gateway, or `link N` when it gave none.
    pub(crate) gateway: String,
    /// When it joined the world.
    pub(crate) joined: SystemTime,
}

/// How long a kick of an account is remembered for the joins that were
/// loading when it came: a join's reads take milliseconds, one behind a
/// locked row at most the store's own deadline.
const KICK_MEMORY: Duration = Duration::from_secs(600);

/// Kicks of whole accounts (a ban is one), for the joins already loading
/// when they came: such a join read a session that the kick, or the ban
/// behind it, has since ended, and must not enter after it
/// (`link.rs`). A join that starts after the kick reads the session
/// afresh.
#[derive(Debug, Default)]
pub(super) struct KickedUsers {
    /// Bumped by every kick of an account.
    generation: u64,
    /// Each kicked account's last kick: its generation and when.
    users: HashMap<u32, (u64, Instant)>,
}

impl KickedUsers {
    /// The generation a join that starts loading now has seen.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `user_id` was kicked after generation `seen`.
    pub(super) fn since(&self, user_id: u32, seen: u64) -> bool {
        self.users.get(&user_id).is_some_and(|&(g, _)| g > seen)
    }

    /// Remembers a kick of `user_id`, forgetting those past [`KICK_MEMORY`]
    /// (kicks are an operator's, never a client's, so they are few).
    fn kicked(&mut self, user_id: u32, now: Instant) {
        self.generation += 1;
        self.users
            .retain(|_, &mut (_, at)| now.duration_since(at) < KICK_MEMORY);
        self.users.insert(user_id, (self.generation, now));
    }
}

/// Whom a kick is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// The player with this character name (either case).
    Character(&'a str),
    /// Every player of this account.
    User(u32),
}

/// The gateway name a link's metadata gave: printable ASCII (anything else
/// replaced by `?`), at most [`MAX_GATEWAY_NAME`] bytes; `None` if absent
/// or empty.
pub(super) fn gateway_name(raw: Option<&[u8]>) -> Option<String> {
    let raw = raw?;
    let name: String = raw
        .iter()
        .take(MAX_GATEWAY_NAME)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

impl WorldInner {
    /// What the list shows of a player.
    fn online(&self, p: &Player) -> Online {
        Online {
            session_id: p.session_id,
            user_id: p.user_id,
            entity_id: p.entity_id,
            name: p.name.clone(),
            map: p.map,
            x: p.x,
            y: p.y,
            gateway: self
                .gateways
                .get(&p.link)
                .cloned()
                .unwrap_or_else(|| format!("link {}", p.link)),
            joined: p.joined,
        }
    }

    /// The sessions a kick of `target` is for.
    fn sessions_of(&self, target: Target<'_>) -> Vec<u32> {
        match target {
            Target::Character(name) => self
                .names
                .get(&name.to_lowercase())
                .copied()
                .into_iter()
                .collect(),
            Target::User(user_id) => self
                .players
                .values()
                .filter(|p| p.user_id == user_id)
                .map(|p| p.session_id)
                .collect(),
        }
    }
}

impl WorldState {
    /// Every player in the world, by join time.
    pub(crate) fn online(&self) -> Vec<Online> {
        let inner = lock(&self.inner);
        let mut list: Vec<Online> = inner.players.values().map(|p| inner.online(p)).collect();
        list.sort_by(|a, b| a.joined.cmp(&b.joined).then(a.name.cmp(&b.name)));
        list
    }

    /// Removes the players `target` names (telling the others on their
    /// maps), sends each one's gateway `Kick` with `reason` and queues their
    /// state for saving; a join of a kicked account that is still loading
    /// is refused when it has loaded ([`KickedUsers`]). What was kicked:
    /// empty when nobody matched.
    pub(crate) async fn kick(&self, target: Target<'_>, reason: &str) -> Vec<Online> {
        let (kicked, removed) = {
            let mut inner = lock(&self.inner);
            if let Target::User(user_id) = target {
                // Also for a join of the account still loading.
                inner.kicked.kicked(user_id, Instant::now());
            }
            let mut kicked = Vec::new();
            let mut removed = Vec::new();
            for session in inner.sessions_of(target) {
                let Some(seen) = inner.players.get(&session).map(|p| inner.online(p)) else {
                    continue;
                };
                let Some(p) = inner.remove_player(session) else {
                    continue;
                };
                inner.kick(&p, reason);
                kicked.push(seen);
                removed.push(p);
            }
            (kicked, removed)
        };
        for p in &kicked {
            log::info!("world: {:?} (user {}) kicked: {reason}", p.name, p.user_id);
        }
        self.after_removal(&removed, false).await;
        kicked
    }

    /// Sends PAKSW_ANNOUNCE_CHAT (`text`, from `from`) to every player, or
    /// to those of `map`; how many it was sent to.
    pub(crate) fn announce(&self, text: &str, from: &str, map: Option<u16>) -> usize {
        let packet = AnnounceChat {
            message: text.to_owned(),
            name: from.to_owned(),
        };
        let mut inner = lock(&self.inner);
        let targets: Vec<u32> = inner
            .players
            .values()
            .filter(|p| map.is_none_or(|m| p.map == m))
            .map(|p| p.session_id)
            .collect();
        let reached = targets.len();
        inner.broadcast(targets, same(&packet));
        reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kick_counts_for_joins_that_started_before_it_for_a_while() {
        let mut kicks = KickedUsers::default();
        let t0 = Instant::now();
        let before = kicks.generation();
        kicks.kicked(5, t0);
        assert!(kicks.since(5, before), "a join loading during the kick");
        assert!(
            !kicks.since(5, kicks.generation()),
            "a join started after it"
        );
        assert!(!kicks.since(6, before), "another account");
        // Another kick later forgets the ones past the memory.
        kicks.kicked(6, t0 + KICK_MEMORY);
        assert!(!kicks.since(5, before));
        assert!(kicks.since(6, before));
        assert_eq!(kicks.users.len(), 1);
    }

    #[test]
    fn gateway_names_are_bounded_and_printable() {
        assert_eq!(gateway_name(None), None);
        assert_eq!(gateway_name(Some(b"  ")), None);
        assert_eq!(
            gateway_name(Some(b"10.0.0.1:29000 gw1/42")).as_deref(),
            Some("10.0.0.1:29000 gw1/42")
        );
        assert_eq!(gateway_name(Some(b"a\nb\xff")).as_deref(), Some("a?b?"));
        let long = vec![b'x'; 1000];
        assert_eq!(
            gateway_name(Some(&long)).map(|n| n.len()),
            Some(MAX_GATEWAY_NAME)
        );
    }
}
