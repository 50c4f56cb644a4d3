//! The session store: random session ids with a TTL and the
//! login → char select → map stage of each session (docs/protocol.md §9 D6).
//!
//! Every method that looks at expiry takes `now` from its caller, so expiry
//! is tested without sleeping. Expired sessions are invalid everywhere; they
//! are removed when a lookup meets them and by [`SessionStore::purge_expired`]
//! (run periodically by the backend, a grace period after expiry).
//!
//! **One live session per account.** A new login for an account that already
//! has a session replaces it: the old session id becomes invalid at once.
//! osIROSE answers ALREADY_LOGGEDIN instead, which locks a player out until
//! the old session times out whenever a client or gateway crashes without
//! logging out; replacing keeps the newest login, which is the one a person
//! is actually sitting at.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

use super::accounts::PasswordDigest;

/// Where a session is in the login → char → map sequence.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Logged in, no server selected yet.
    LoggedIn,
    /// Server selected: the next join opens character select.
    CharSelect,
    /// A character was selected: the next join enters the world.
    Map,
}

/// One session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Random, non-zero, unique among live sessions.
    pub id: u32,
    /// The account that logged in.
    pub user_id: u32,
    /// The account's access level at login.
    pub access: u32,
    /// The digest (kind and value) the client logged in with; a join must
    /// present the same one.
    pub digest: PasswordDigest,
    /// Current stage.
    pub stage: Stage,
    /// The selected character. Invariant: `Some` iff `stage == Stage::Map`.
    pub char_id: Option<u64>,
    /// The session is invalid from this instant on.
    pub expires: Instant,
}

/// Why a session lookup failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// No session has this id (never existed, logged out, or replaced).
    Unknown,
    /// The session existed but its TTL ran out (it is now removed).
    Expired,
    /// The session is not in a stage that allows the operation.
    WrongStage,
    /// The session belongs to another account.
    WrongUser,
}

/// Why a join was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// Unknown session id or a digest different from the login digest.
    InvalidPassword,
    /// The session expired.
    TimeOut,
}

/// What a successful join learns about the session.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct JoinInfo {
    /// The account.
    pub user_id: u32,
    /// Its access level.
    pub access: u32,
    /// The session's stage.
    pub stage: Stage,
    /// The selected character (stage MAP only).
    pub char_id: Option<u64>,
}

/// Live sessions.
///
/// Invariant: `by_user[s.user_id] == s.id` for every session `s` in
/// `sessions`, and `by_user` has no other entries (one session per account).
#[derive(Debug)]
pub struct SessionStore {
    sessions: HashMap<u32, Session>,
    by_user: HashMap<u32, u32>,
    ttl: Duration,
}

impl SessionStore {
    /// An empty store whose sessions live `ttl` after login or refresh.
    pub fn new(ttl: Duration) -> SessionStore {
        SessionStore {
            sessions: HashMap::new(),
            by_user: HashMap::new(),
            ttl,
        }
    }

    /// Number of sessions held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Opens a session for `user_id` in stage LOGGED_IN and returns its id.
    /// A session the account already had is removed (see the module docs).
    pub fn create(
        &mut self,
        user_id: u32,
        access: u32,
        digest: PasswordDigest,
        now: Instant,
        rng: &mut impl Rng,
    ) -> u32 {
        if let Some(old) = self.by_user.remove(&user_id) {
            self.sessions.remove(&old);
        }
        let id = loop {
            let id: u32 = rng.random();
            if id != 0 && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        self.sessions.insert(
            id,
            Session {
                id,
                user_id,
                access,
                digest,
                stage: Stage::LoggedIn,
                char_id: None,
                expires: now + self.ttl,
            },
        );
        self.by_user.insert(user_id, id);
        id
    }

    /// The live session `id`. An expired one is removed and reported.
    pub fn get(&mut self, id: u32, now: Instant) -> Result<&mut Session, SessionError> {
        let expired = match self.sessions.get(&id) {
            None => return Err(SessionError::Unknown),
            Some(s) => now >= s.expires,
        };
        if expired {
            self.remove(id);
            return Err(SessionError::Expired);
        }
        self.sessions.get_mut(&id).ok_or(SessionError::Unknown)
    }

    /// Server select: LOGGED_IN or CHAR_SELECT → CHAR_SELECT.
    pub fn select_server(&mut self, id: u32, now: Instant) -> Result<(), SessionError> {
        let s = self.get(id, now)?;
        match s.stage {
            Stage::LoggedIn | Stage::CharSelect => {
                s.stage = Stage::CharSelect;
                Ok(())
            }
            Stage::Map => Err(SessionError::WrongStage),
        }
    }

    /// A connection presents `id` and a digest: valid iff the session is live
    /// and the digest equals (constant time) the one used at login.
    pub fn join(
        &mut self,
        id: u32,
        digest: &PasswordDigest,
        now: Instant,
    ) -> Result<JoinInfo, JoinError> {
        let s = match self.get(id, now) {
            Ok(s) => s,
            Err(SessionError::Expired) => return Err(JoinError::TimeOut),
            Err(_) => return Err(JoinError::InvalidPassword),
        };
        if !s.digest.ct_matches(digest) {
            return Err(JoinError::InvalidPassword);
        }
        Ok(JoinInfo {
            user_id: s.user_id,
            access: s.access,
            stage: s.stage,
            char_id: s.char_id,
        })
    }

    /// Extends the session's expiry to `now + ttl`; false when unknown or expired.
    pub fn refresh(&mut self, id: u32, now: Instant) -> bool {
        let ttl = self.ttl;
        match self.get(id, now) {
            Ok(s) => {
                s.expires = now + ttl;
                true
            }
            Err(_) => false,
        }
    }

    /// Character select: binds `char_id` to the session of `user_id`
    /// (stage CHAR_SELECT, or MAP to pick again) and moves it to MAP.
    pub fn select_char(
        &mut self,
        id: u32,
        user_id: u32,
        char_id: u64,
        now: Instant,
    ) -> Result<(), SessionError> {
        let s = self.get(id, now)?;
        if s.user_id != user_id {
            return Err(SessionError::WrongUser);
        }
        match s.stage {
            Stage::CharSelect | Stage::Map => {
                s.stage = Stage::Map;
                s.char_id = Some(char_id);
                Ok(())
            }
            Stage::LoggedIn => Err(SessionError::WrongStage),
        }
    }

    /// Back to character select (change character): MAP → CHAR_SELECT, the
    /// character is cleared.
    pub fn back_to_char_select(&mut self, id: u32, now: Instant) -> Result<(), SessionError> {
        let s = self.get(id, now)?;
        if s.stage != Stage::Map {
            return Err(SessionError::WrongStage);
        }
        s.stage = Stage::CharSelect;
        s.char_id = None;
        Ok(())
    }

    /// Ends a session; returns it if it existed.
    pub fn remove(&mut self, id: u32) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        if self.by_user.get(&s.user_id) == Some(&id) {
            self.by_user.remove(&s.user_id);
        }
        Some(s)
    }

    /// Ends the session of account `user_id`; its id, if it had one.
    pub fn remove_account(&mut self, user_id: u32) -> Option<u32> {
        let id = *self.by_user.get(&user_id)?;
        self.remove(id).map(|_| id)
    }

    /// Removes every session that expired at least `grace` ago; returns how
    /// many. (Until then a join with it is answered TIME_OUT rather than
    /// INVALID_PASSWORD; either way it is invalid.)
    pub fn purge_expired(&mut self, now: Instant, grace: Duration) -> usize {
        let expired: Vec<u32> = self
            .sessions
            .values()
            .filter(|s| now >= s.expires + grace)
            .map(|s| s.id)
            .collect();
        for id in &expired {
            self.remove(*id);
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packets::DigestKind;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const TTL: Duration = Duration::from_secs(600);

    fn digest(p: &str) -> PasswordDigest {
        PasswordDigest::of_plaintext(DigestKind::Sha256Hex, p)
    }

    fn setup() -> (SessionStore, Instant, StdRng) {
        (
            SessionStore::new(TTL),
            Instant::now(),
            StdRng::seed_from_u64(7),
        )
    }

    #[test]
    fn ids_are_random_non_zero_and_unique() {
        let (mut store, now, mut rng) = setup();
        let mut seen = std::collections::HashSet::new();
        for user in 1..=500 {
            let id = store.create(user, 1, digest("p"), now, &mut rng);
            assert_ne!(id, 0);
            assert!(seen.insert(id));
        }
        assert_eq!(store.len(), 500);
    }

    #[test]
    fn join_needs_the_login_digest() {
        let (mut store, now, mut rng) = setup();
        let id = store.create(9, 2, digest("pw"), now, &mut rng);
        let info = store.join(id, &digest("pw"), now).unwrap();
        assert_eq!(
            info,
            JoinInfo {
                user_id: 9,
                access: 2,
                stage: Stage::LoggedIn,
                char_id: None
            }
        );
        assert_eq!(
            store.join(id, &digest("other"), now),
            Err(JoinError::InvalidPassword)
        );
        let md5 = PasswordDigest::of_plaintext(DigestKind::Md5Hex, "pw");
        assert_eq!(store.join(id, &md5, now), Err(JoinError::InvalidPassword));
        assert_eq!(
            store.join(id.wrapping_add(1), &digest("pw"), now),
            Err(JoinError::InvalidPassword)
        );
    }

    #[test]
    fn sessions_expire_and_refresh_extends_them() {
        let (mut store, t0, mut rng) = setup();
        let id = store.create(1, 1, digest("pw"), t0, &mut rng);
        let almost = t0 + TTL - Duration::from_secs(1);
        assert!(store.join(id, &digest("pw"), almost).is_ok());
        assert!(store.refresh(id, almost));
        // Past the first expiry, but within the refreshed one.
        let later = t0 + TTL + Duration::from_secs(10);
        assert!(store.join(id, &digest("pw"), later).is_ok());
        let expired = almost + TTL;
        assert_eq!(
            store.join(id, &digest("pw"), expired),
            Err(JoinError::TimeOut)
        );
        // Removed on that lookup: now simply unknown.
        assert_eq!(
            store.join(id, &digest("pw"), expired),
            Err(JoinError::InvalidPassword)
        );
        assert!(!store.refresh(id, expired));
        assert!(store.is_empty());
    }

    #[test]
    fn purge_removes_only_expired_sessions() {
        let (mut store, t0, mut rng) = setup();
        let old = store.create(1, 1, digest("a"), t0, &mut rng);
        let young = store.create(2, 1, digest("b"), t0 + TTL / 2, &mut rng);
        assert_eq!(store.purge_expired(t0 + TTL, Duration::from_secs(1)), 0);
        assert_eq!(store.purge_expired(t0 + TTL, Duration::ZERO), 1);
        assert!(store.get(old, t0 + TTL).is_err());
        assert!(store.get(young, t0 + TTL).is_ok());
        // The account of the purged session can log in again.
        store.create(1, 1, digest("a"), t0 + TTL, &mut rng);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn relogin_replaces_the_old_session() {
        let (mut store, now, mut rng) = setup();
        let first = store.create(5, 1, digest("pw"), now, &mut rng);
        let second = store.create(5, 1, digest("pw"), now, &mut rng);
        assert_ne!(first, second);
        assert_eq!(
            store.join(first, &digest("pw"), now),
            Err(JoinError::InvalidPassword)
        );
        assert!(store.join(second, &digest("pw"), now).is_ok());
        assert_eq!(store.len(), 1);
        // Removing the stale id is harmless to the new session.
        assert!(store.remove(first).is_none());
        assert!(store.get(second, now).is_ok());
    }

    #[test]
    fn stages_follow_login_char_map() {
        let (mut store, now, mut rng) = setup();
        let id = store.create(3, 1, digest("pw"), now, &mut rng);
        assert_eq!(
            store.select_char(id, 3, 10, now),
            Err(SessionError::WrongStage)
        );
        assert_eq!(
            store.back_to_char_select(id, now),
            Err(SessionError::WrongStage)
        );
        store.select_server(id, now).unwrap();
        assert_eq!(
            store.join(id, &digest("pw"), now).unwrap().stage,
            Stage::CharSelect
        );
        assert_eq!(
            store.select_char(id, 4, 10, now),
            Err(SessionError::WrongUser)
        );
        store.select_char(id, 3, 10, now).unwrap();
        let info = store.join(id, &digest("pw"), now).unwrap();
        assert_eq!((info.stage, info.char_id), (Stage::Map, Some(10)));
        assert_eq!(store.select_server(id, now), Err(SessionError::WrongStage));
        store.back_to_char_select(id, now).unwrap();
        let info = store.join(id, &digest("pw"), now).unwrap();
        assert_eq!((info.stage, info.char_id), (Stage::CharSelect, None));
        assert!(store.remove(id).is_some());
        assert_eq!(store.select_server(id, now), Err(SessionError::Unknown));
    }
}
