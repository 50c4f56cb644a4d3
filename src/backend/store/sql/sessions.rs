//! Sessions in PostgreSQL's `sessions` table, so that every backend
//! process sharing the database validates every session: a login through
//! one backend is joinable through another. Same answers as the memory
//! sessions ([`crate::backend::sessions`]); times are Unix milliseconds of
//! the process clock (backends sharing a database keep their clocks in
//! step, e.g. with NTP; a skew only moves expiry by as much).
//!
//! **Join digests.** The table holds no digest (a session row would
//! otherwise be a password equivalent at rest). A join is checked against
//! the digest this process saw at login or at an earlier join of the same
//! session (kept in memory, like the memory sessions do); a session this
//! process has not seen is checked once against the account's argon2 hash
//! and then remembered. Remembered digests are dropped after one TTL.
//!
//! **Refresh.** A refresh writes the new expiry only when it moves the
//! stored one by at least a tenth of the TTL (at most [`MAX_REFRESH_GAP`]):
//! refreshes come with ALIVE packets, and a write per packet per player
//! would be most of the database's work. The stored expiry may so be up to
//! that gap earlier than the memory engine's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::Row;

use super::{get, is_unique_violation, unix_millis, SqlStore};
use crate::backend::accounts::PasswordDigest;
use crate::backend::sessions::{JoinError, JoinInfo, SessionError, Stage};
use crate::backend::store::memory::lock;
use crate::backend::store::{SessionView, Sessions, Store, StoreError};
use crate::protocol::packets::DigestKind;

/// Largest change of a session's stored expiry that a refresh skips.
pub const MAX_REFRESH_GAP: Duration = Duration::from_secs(60);
/// Attempts at a random session id before giving up (ids collide only
/// when billions of sessions are live).
const ID_ATTEMPTS: usize = 8;

/// Sessions shared through PostgreSQL.
pub struct PgSessions {
    store: Arc<SqlStore>,
    ttl: Duration,
    /// Digests verified for a session by this process, with when.
    verified: Mutex<HashMap<u32, (PasswordDigest, Instant)>>,
    /// Refreshes that wrote to the database.
    refresh_writes: AtomicU64,
}

/// A session row.
struct SessionRow {
    view: SessionView,
    kind: i64,
    expires_at: i64,
}

fn stage_code(stage: Stage) -> i64 {
    match stage {
        Stage::LoggedIn => 0,
        Stage::CharSelect => 1,
        Stage::Map => 2,
    }
}

fn stage_of(code: i64) -> Result<Stage, StoreError> {
    match code {
        0 => Ok(Stage::LoggedIn),
        1 => Ok(Stage::CharSelect),
        2 => Ok(Stage::Map),
        other => Err(StoreError::Invalid(format!("sessions.stage = {other}"))),
    }
}

fn kind_code(kind: DigestKind) -> i64 {
    match kind {
        DigestKind::Sha256Hex => 1,
        DigestKind::Md5Hex => 2,
    }
}

impl PgSessions {
    /// Sessions in `store`'s database, each living `ttl` after login or
    /// refresh.
    pub fn new(store: Arc<SqlStore>, ttl: Duration) -> PgSessions {
        PgSessions {
            store,
            ttl,
            verified: Mutex::new(HashMap::new()),
            refresh_writes: AtomicU64::new(0),
        }
    }

    /// How many refreshes wrote to the database.
    pub fn refresh_writes(&self) -> u64 {
        self.refresh_writes.load(Ordering::Relaxed)
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    fn remember(&self, id: u32, digest: &PasswordDigest) {
        lock(&self.verified).insert(id, (digest.clone(), Instant::now()));
    }

    /// The row of session `id`, if any (expired or not).
    async fn row(&self, id: u32) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, access, stage, character_id, digest_kind, expires_at \
             FROM sessions WHERE id = $1",
        )
        .bind(i64::from(id))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stage = stage_of(row.try_get("stage")?)?;
        let char_id: Option<i64> = row.try_get("character_id")?;
        Ok(Some(SessionRow {
            view: SessionView {
                user_id: get(&row, "account_id")?,
                access: get(&row, "access")?,
                stage,
                char_id: char_id.and_then(|c| u64::try_from(c).ok()),
            },
            kind: row.try_get("digest_kind")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// The live session `id`; an expired one is removed and reported.
    async fn live(&self, id: u32) -> Result<Result<SessionRow, SessionError>, StoreError> {
        let Some(row) = self.row(id).await? else {
            return Ok(Err(SessionError::Unknown));
        };
        if unix_millis() >= row.expires_at {
            self.remove(id).await?;
            return Ok(Err(SessionError::Expired));
        }
        Ok(Ok(row))
    }

    /// Sets the stage (and character) of session `id`.
    async fn set_stage(
        &self,
        id: u32,
        stage: Stage,
        char_id: Option<u64>,
    ) -> Result<(), StoreError> {
        let char_id = char_id.and_then(|c| i64::try_from(c).ok());
        sqlx::query("UPDATE sessions SET stage = $1, character_id = $2 WHERE id = $3")
            .bind(stage_code(stage))
            .bind(char_id)
            .bind(i64::from(id))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl Sessions for PgSessions {
    async fn create(
        &self,
        user_id: u32,
        access: u32,
        digest: &PasswordDigest,
    ) -> Result<u32, StoreError> {
        let expires_at = unix_millis().saturating_add(self.ttl_ms());
        let mut last = None;
        for _ in 0..ID_ATTEMPTS {
            let id: u32 = rand::rng().random_range(1..=u32::MAX);
            // One row per account: a new login replaces the old session.
            let done = sqlx::query(
                "INSERT INTO sessions (id, account_id, access, digest_kind, stage, \
                 character_id, expires_at) VALUES ($1, $2, $3, $4, 0, NULL, $5) \
                 ON CONFLICT (account_id) DO UPDATE SET id = excluded.id, \
                 access = excluded.access, digest_kind = excluded.digest_kind, stage = 0, \
                 character_id = NULL, expires_at = excluded.expires_at",
            )
            .bind(i64::from(id))
            .bind(i64::from(user_id))
            .bind(i64::from(access))
            .bind(kind_code(digest.kind()))
            .bind(expires_at)
            .execute(self.store.pool())
            .await;
            match done {
                Ok(_) => {
                    self.remember(id, digest);
                    return Ok(id);
                }
                Err(e) if is_unique_violation(&e) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(
            || StoreError::Invalid("no session id".into()),
            StoreError::from,
        ))
    }

    async fn get(&self, id: u32) -> Result<Result<SessionView, SessionError>, StoreError> {
        Ok(self.live(id).await?.map(|row| row.view))
    }

    async fn select_server(&self, id: u32) -> Result<Result<(), SessionError>, StoreError> {
        let row = match self.live(id).await? {
            Ok(row) => row,
            Err(e) => return Ok(Err(e)),
        };
        if row.view.stage == Stage::Map {
            return Ok(Err(SessionError::WrongStage));
        }
        self.set_stage(id, Stage::CharSelect, None).await?;
        Ok(Ok(()))
    }

    async fn join(
        &self,
        id: u32,
        digest: &PasswordDigest,
    ) -> Result<Result<JoinInfo, JoinError>, StoreError> {
        let row = match self.live(id).await? {
            Ok(row) => row,
            Err(SessionError::Expired) => return Ok(Err(JoinError::TimeOut)),
            Err(_) => return Ok(Err(JoinError::InvalidPassword)),
        };
        if row.kind != kind_code(digest.kind()) {
            return Ok(Err(JoinError::InvalidPassword));
        }
        let known = lock(&self.verified).get(&id).map(|(d, _)| d.clone());
        let matches = match known {
            Some(known) => known.ct_matches(digest),
            None => {
                let ok = self.store.verify(row.view.user_id, digest).await?;
                if ok {
                    self.remember(id, digest);
                }
                ok
            }
        };
        if !matches {
            return Ok(Err(JoinError::InvalidPassword));
        }
        Ok(Ok(JoinInfo {
            user_id: row.view.user_id,
            access: row.view.access,
            stage: row.view.stage,
            char_id: row.view.char_id,
        }))
    }

    async fn refresh(&self, id: u32) -> Result<bool, StoreError> {
        let now = unix_millis();
        let ttl = self.ttl_ms();
        let gap =
            i64::try_from((self.ttl / 10).min(MAX_REFRESH_GAP).as_millis()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        let written = sqlx::query(
            "UPDATE sessions SET expires_at = $1 WHERE id = $2 AND expires_at > $3 \
             AND expires_at <= $4",
        )
        .bind(expires_at)
        .bind(i64::from(id))
        .bind(now)
        .bind(expires_at.saturating_sub(gap))
        .execute(self.store.pool())
        .await?;
        if written.rows_affected() == 1 {
            self.refresh_writes.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        let live = sqlx::query("SELECT id FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(i64::from(id))
            .bind(now)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(live.is_some())
    }

    async fn select_char(
        &self,
        id: u32,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<(), SessionError>, StoreError> {
        let row = match self.live(id).await? {
            Ok(row) => row,
            Err(e) => return Ok(Err(e)),
        };
        if row.view.user_id != user_id {
            return Ok(Err(SessionError::WrongUser));
        }
        if row.view.stage == Stage::LoggedIn {
            return Ok(Err(SessionError::WrongStage));
        }
        self.set_stage(id, Stage::Map, Some(char_id)).await?;
        Ok(Ok(()))
    }

    async fn back_to_char_select(&self, id: u32) -> Result<Result<(), SessionError>, StoreError> {
        let row = match self.live(id).await? {
            Ok(row) => row,
            Err(e) => return Ok(Err(e)),
        };
        if row.view.stage != Stage::Map {
            return Ok(Err(SessionError::WrongStage));
        }
        self.set_stage(id, Stage::CharSelect, None).await?;
        Ok(Ok(()))
    }

    async fn remove(&self, id: u32) -> Result<Option<u32>, StoreError> {
        lock(&self.verified).remove(&id);
        let row = sqlx::query("DELETE FROM sessions WHERE id = $1 RETURNING account_id")
            .bind(i64::from(id))
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|r| get(&r, "account_id")).transpose()
    }

    async fn remove_account(&self, user_id: u32) -> Result<Option<u32>, StoreError> {
        let row = sqlx::query("DELETE FROM sessions WHERE account_id = $1 RETURNING id")
            .bind(i64::from(user_id))
            .fetch_optional(self.store.pool())
            .await?;
        let id = row.map(|r| get(&r, "id")).transpose()?;
        if let Some(id) = id {
            lock(&self.verified).remove(&id);
        }
        Ok(id)
    }

    async fn purge_expired(&self, grace: Duration) -> Result<usize, StoreError> {
        let ttl = self.ttl;
        lock(&self.verified).retain(|_, (_, at)| at.elapsed() < ttl);
        let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(unix_millis().saturating_sub(grace))
            .execute(self.store.pool())
            .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }
}
