//! One link's Upstream messages, in order, with a Join's reads off the
//! loop: a Join checks its session and reads its character (on PostgreSQL
//! a round trip or more) in a task of its own, and the link goes on with
//! its other players' messages meanwhile. When the reads are done the join
//! is applied to the world between two of the link's messages.
//!
//! A player's own messages stay after its join: what comes from a session
//! whose join is loading (packets, a later Join, a Leave for an older
//! join) is held for it, at most [`HELD_MAX`] messages, and applied in
//! order once it has entered; past that bound a message is refused and
//! counted (a refused Join is answered FAILED); a Leave is never
//! refused (a connection sends at most one). A Leave of the loading
//! join itself (same `join_id`, or none given) cancels it: it never
//! enters, the packets held for it are dropped (a held Join or an older
//! player's Leave is still handled, in order), and with reason
//! CHANGE_CHAR the session still goes back to character select. At most
//! [`LOADING_MAX`] joins load at once per link; past that the link reads
//! its gateway's next message only when one is done (counted, and in the
//! world's summary line like the refused messages). A join whose account
//! an operator kicked (or banned) while it loaded is refused when it has
//! loaded (FAILED, counted as cancelled): its session read came before the
//! kick.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::task::{Id, JoinError, JoinSet};

use super::super::characters::Character;
use super::super::sessions::Stage;
use super::super::store::memory::lock;
use super::{failed_join, WorldState};
use crate::pb::world::{self as pb, upstream};

/// Joins of one link loading at once.
pub const LOADING_MAX: usize = 256;
/// Messages held for one loading join.
pub const HELD_MAX: usize = 64;

/// What a join's task gives back: the Join and the character it may enter
/// with (`None`: refused).
type Load = (pb::Join, Option<Character>);

/// A join whose reads are under way.
struct Pending {
    join_id: u64,
    /// The generation of account kicks when it started
    /// ([`super::admin::KickedUsers`]).
    kicks_seen: u64,
    /// The Leave that cancelled it.
    leave: Option<pb::Leave>,
    /// The session's messages since, in order.
    held: VecDeque<pb::Upstream>,
}

/// The joins a link is loading, and what waits for them.
pub(super) struct Loading {
    link: u64,
    pending: HashMap<u32, Pending>,
    tasks: JoinSet<Load>,
    /// The session of each task (a task that panicked gives only its id).
    sessions: HashMap<Id, u32>,
}

impl Loading {
    pub(super) fn new(link: u64) -> Loading {
        Loading {
            link,
            pending: HashMap::new(),
            tasks: JoinSet::new(),
            sessions: HashMap::new(),
        }
    }

    /// Whether no more joins may start: the link waits for one to finish.
    pub(super) fn is_full(&self) -> bool {
        self.tasks.len() >= LOADING_MAX
    }

    /// Whether any join is loading.
    pub(super) fn is_busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The next join whose reads are done (never, while none is loading).
    pub(super) async fn next(&mut self) -> Result<(Id, Load), JoinError> {
        match self.tasks.join_next_with_id().await {
            Some(done) => done,
            None => std::future::pending().await,
        }
    }
}

impl WorldState {
    /// Handles one message of the link, in order with the rest.
    pub(super) async fn dispatch(self: &Arc<Self>, loading: &mut Loading, msg: pb::Upstream) {
        let link = loading.link;
        let session = match &msg.kind {
            Some(upstream::Kind::Join(j)) => j.session_id,
            Some(upstream::Kind::Packet(p)) => p.session_id,
            Some(upstream::Kind::Leave(l)) => l.session_id,
            None => {
                log::debug!("world: empty upstream message from link {link}");
                return;
            }
        };
        if let Some(pending) = loading.pending.get_mut(&session) {
            return self.hold(link, pending, msg);
        }
        match msg.kind {
            Some(upstream::Kind::Join(join)) => {
                let pending = Pending {
                    join_id: join.join_id,
                    kicks_seen: lock(&self.inner).kicked.generation(),
                    leave: None,
                    held: VecDeque::new(),
                };
                loading.pending.insert(session, pending);
                let state = Arc::clone(self);
                let task = loading.tasks.spawn(async move {
                    let found = state.joinable(&join).await;
                    (join, found)
                });
                loading.sessions.insert(task.id(), session);
                if loading.is_full() {
                    log::debug!("world: link {link}: {LOADING_MAX} joins loading, waiting for one");
                    let mut inner = lock(&self.inner);
                    inner.loading_full += 1;
                    inner.summarise();
                }
            }
            Some(upstream::Kind::Packet(p)) => self.packet(link, p),
            Some(upstream::Kind::Leave(l)) => self.leave(link, l).await,
            None => {}
        }
    }

    /// Keeps `msg` for its session's loading join, or refuses it (counted)
    /// past [`HELD_MAX`]; a Leave of that join cancels it. A cancel drops
    /// only the held packets (they were that join's): a held Join or the
    /// Leave of an older player is still handled, in order.
    fn hold(&self, link: u64, pending: &mut Pending, msg: pb::Upstream) {
        let is_leave = if let Some(upstream::Kind::Leave(l)) = &msg.kind {
            let of_this_join = l.join_id == 0 || l.join_id == pending.join_id;
            if of_this_join && pending.leave.is_none() {
                pending
                    .held
                    .retain(|m| !matches!(m.kind, Some(upstream::Kind::Packet(_))));
                pending.leave = Some(*l);
                return;
            }
            true
        } else {
            false
        };
        // A Leave is never refused: a connection sends at most one, and
        // refusing it would leave its player in the world for good.
        if is_leave || pending.held.len() < HELD_MAX {
            pending.held.push_back(msg);
            return;
        }
        log::debug!("world: link {link}: message refused, {HELD_MAX} wait for a join already");
        let mut inner = lock(&self.inner);
        inner.held_refused += 1;
        inner.summarise();
        if let Some(upstream::Kind::Join(j)) = msg.kind {
            inner.send(link, failed_join(j.session_id));
        }
    }

    /// A join's reads are done: it enters (or is refused, or was
    /// cancelled), then what was held for it is handled in order.
    pub(super) async fn loaded(
        self: &Arc<Self>,
        loading: &mut Loading,
        done: Result<(Id, Load), JoinError>,
    ) {
        let link = loading.link;
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let Some(session) = loading.sessions.remove(&id) else {
            return;
        };
        let Some(pending) = loading.pending.remove(&session) else {
            return;
        };
        match (done, pending.leave) {
            (Ok((_, (join, found))), None) => {
                self.admit(link, join, found, pending.kicks_seen).await
            }
            (Ok((_, (join, found))), Some(leave)) => {
                log::debug!("world: join of user {} left before it loaded", join.user_id);
                self.joins_cancelled.fetch_add(1, Ordering::Relaxed);
                let change_char = leave.reason == i32::from(pb::LeaveReason::ChangeChar);
                if found.is_some() && change_char {
                    self.reset_session(session, join.user_id).await;
                }
            }
            (Err(e), leave) => {
                log::error!("world: join of session {session} failed: {e}");
                if leave.is_none() {
                    lock(&self.inner).send(link, failed_join(session));
                }
            }
        }
        for msg in pending.held {
            self.dispatch(loading, msg).await;
        }
    }

    /// The character a Join may enter with, if the session allows it: as
    /// stored, with what is still waiting to be saved on top.
    async fn joinable(&self, join: &pb::Join) -> Option<Character> {
        let session = match self.shared.sessions.get(join.session_id).await {
            Ok(found) => found.ok()?,
            Err(e) => {
                log::error!("world: join of user {}: {e}", join.user_id);
                return None;
            }
        };
        if session.stage != Stage::Map
            || session.user_id != join.user_id
            || session.char_id != Some(join.char_id)
        {
            return None;
        }
        // Pending first: once it is gone, the store has it (docs in saver).
        let pending = self.saver.latest(join.char_id);
        let mut c = match self
            .shared
            .store
            .character(join.user_id, join.char_id)
            .await
        {
            Ok(found) => found.ok()?,
            Err(e) => {
                log::error!("world: join of user {}: {e}", join.user_id);
                return None;
            }
        };
        if let Some(state) = pending {
            state.apply(&mut c);
        }
        Some(c)
    }

    /// Applies a loaded join: the character enters, or FAILED is answered
    /// (also when its account was kicked since generation `kicks_seen`).
    async fn admit(&self, link: u64, join: pb::Join, found: Option<Character>, kicks_seen: u64) {
        let Some(mut c) = found else {
            log::debug!("world: join of session for user {} refused", join.user_id);
            lock(&self.inner).send(link, failed_join(join.session_id));
            return;
        };
        // Saved meanwhile by a player of the character that left during
        // the reads: newer than what was read.
        if let Some(state) = self.saver.latest(c.char_id) {
            state.apply(&mut c);
        }
        let mut removed = Vec::new();
        let entity_id = self.enter(link, &join, &mut c, &mut removed, kicks_seen);
        if let Some(entity_id) = entity_id {
            log::debug!(
                "world: {:?} (user {}) joined map {} as entity {entity_id}",
                c.name,
                c.user_id,
                c.map
            );
        }
        self.after_removal(&removed, false).await;
    }
}

#[cfg(test)]
mod tests;
