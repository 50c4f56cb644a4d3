//! The SQL engines: one [`SqlStore`] over a sqlx `Any` pool, for SQLite and
//! for PostgreSQL, with the schema of `migrations/` applied at open.
//!
//! | file | its job |
//! |---|---|
//! | `mod.rs` | opening the pool, the engine's differences, the [`Store`] impl |
//! | `migrate.rs` | the schema versions and applying them |
//! | `accounts.rs` | accounts: login, seeding, the operator commands |
//! | `characters.rs` | characters and their inventory, the saves |
//! | `sessions.rs` | [`PgSessions`]: sessions shared through PostgreSQL |
//!
//! **Transactions.** Every write that touches more than one row is one
//! transaction. A write transaction on SQLite starts with `BEGIN IMMEDIATE`
//! (it takes the write lock at once, so two writers queue on the busy
//! timeout instead of failing when the second upgrades its read lock); on
//! PostgreSQL it starts with `BEGIN` and locks the account row it works on
//! (`SELECT … FOR UPDATE`) so that two creates for one account cannot both
//! take the last slot. Unique indexes decide races on names: the loser gets
//! NAME_TAKEN (or, for accounts, finds the winner's row).
//!
//! **SQLite** runs in WAL mode (readers never wait for the writer) with
//! `synchronous=NORMAL` and a 5 s busy timeout. In WAL mode NORMAL never
//! corrupts the file and loses nothing when the process crashes or is
//! killed (a commit is in the WAL, in the OS's hands, when it returns); it
//! syncs to disk at checkpoints instead of at every commit, so a power cut
//! or an OS crash may roll back the last transactions — whole, never half.
//! FULL (a sync per commit) cost a third of the login rate of new accounts
//! on the reference machine; deployments that need every commit on disk
//! use PostgreSQL. sqlx runs each connection on its own thread, so the
//! runtime's workers never wait on the file.

mod accounts;
mod characters;
mod migrate;
mod sessions;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

pub use sessions::PgSessions;

use super::credentials::Credentials;
use super::{AccountInfo, CharState, DatabaseUrl, Engine, Seed, Store, StoreError};
use crate::backend::accounts::{AccountError, LoginCheck, PasswordDigest, SeedPassword};
use crate::backend::characters::{Character, CreateError, NewCharacter, NotFound};

/// Connections of a SQLite pool (one writer at a time, readers alongside).
pub const SQLITE_POOL: u32 = 4;
/// Connections of a PostgreSQL pool, per backend process.
pub const POSTGRES_POOL: u32 = 8;
/// Longest wait for a connection from the pool.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accounts and characters in a SQL database.
pub struct SqlStore {
    pool: AnyPool,
    engine: Engine,
    credentials: Credentials,
    max_chars: usize,
}

impl SqlStore {
    /// Connects to `url` (a SQLite file is created, with its directory),
    /// applies the schema and refuses a database newer than this binary.
    pub async fn open(url: &DatabaseUrl, max_chars: usize) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = url.engine();
        if let DatabaseUrl::Sqlite(path) = url {
            create_parent(path).await?;
        }
        let size = match engine {
            Engine::Postgres => POSTGRES_POOL,
            _ => SQLITE_POOL,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url.connect_url())
            .await?;
        if engine == Engine::Sqlite {
            // Persistent in the file; needs no other connection open.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        migrate::apply(&pool, engine).await?;
        Ok(SqlStore {
            pool,
            engine,
            credentials: Credentials::new(),
            max_chars,
        })
    }

    /// The pool (for the shared sessions and tests).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction (see the module docs).
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let begin = match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        };
        Ok(self.pool.begin_with(begin).await?)
    }

    /// On PostgreSQL, locks account `user_id`'s row until the transaction
    /// ends (SQLite's `BEGIN IMMEDIATE` already serialises writers).
    async fn lock_account(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: u32,
    ) -> Result<(), StoreError> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                .bind(i64::from(user_id))
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Closes every connection (tests reopen the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the directory of a SQLite file, off the runtime's threads.
async fn create_parent(path: &std::path::Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let dir = dir.to_owned();
    let made = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || std::fs::create_dir_all(dir)
    })
    .await
    .map_err(|e| StoreError::Runtime(e.to_string()))?;
    made.map_err(|source| StoreError::Directory { path: dir, source })
}

/// Now as Unix seconds.
fn unix_secs() -> i64 {
    unix_millis() / 1000
}

/// Now as Unix milliseconds.
fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A column that must fit type `T` (ids, levels, map numbers).
fn get<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let raw: i64 = row.try_get(column)?;
    T::try_from(raw).map_err(|_| StoreError::Invalid(format!("{column} = {raw}")))
}

/// Whether an error is a unique-index violation (a race on a name).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[tonic::async_trait]
impl Store for SqlStore {
    fn engine(&self) -> Engine {
        self.engine
    }

    async fn account_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        get(&row, "n")
    }

    async fn login(
        &self,
        username: &str,
        digest: &PasswordDigest,
        auto_create: bool,
    ) -> Result<LoginCheck, StoreError> {
        self.check_login(username, digest, auto_create).await
    }

    async fn verify(&self, user_id: u32, digest: &PasswordDigest) -> Result<bool, StoreError> {
        self.verify_user(user_id, digest).await
    }

    async fn seed(&self, seeds: &[Seed]) -> Result<(), StoreError> {
        for seed in seeds {
            self.upsert(seed).await?;
        }
        Ok(())
    }

    async fn add_account(
        &self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<Result<u32, AccountError>, StoreError> {
        self.insert_account(username, password, access).await
    }

    async fn accounts(&self) -> Result<Vec<AccountInfo>, StoreError> {
        self.list_accounts().await
    }

    async fn account_by_name(&self, username: &str) -> Result<Option<AccountInfo>, StoreError> {
        self.find_info(username).await
    }

    async fn account_names(&self, user_ids: &[u32]) -> Result<Vec<(u32, String)>, StoreError> {
        self.names_of(user_ids).await
    }

    async fn set_password(
        &self,
        username: &str,
        password: &SeedPassword,
    ) -> Result<bool, StoreError> {
        self.update_password(username, password).await
    }

    async fn set_access(&self, username: &str, access: u32) -> Result<bool, StoreError> {
        self.set_access_of(username, access).await
    }

    async fn delete_account(&self, username: &str) -> Result<bool, StoreError> {
        // Characters, their inventory and the sessions go with it (cascade).
        let done = sqlx::query("DELETE FROM accounts WHERE name_key = $1")
            .bind(username.to_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn characters(&self, user_id: u32) -> Result<Vec<Character>, StoreError> {
        self.list_characters(user_id).await
    }

    async fn character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<Character, NotFound>, StoreError> {
        self.owned_character(user_id, char_id).await
    }

    async fn create_character(
        &self,
        user_id: u32,
        new: &NewCharacter,
    ) -> Result<Result<u64, CreateError>, StoreError> {
        self.insert_character(user_id, new).await
    }

    async fn delete_character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<String, NotFound>, StoreError> {
        self.remove_character(user_id, char_id).await
    }

    async fn save_characters(&self, states: &[CharState]) -> Result<(), StoreError> {
        self.save_states(states).await
    }
}
