//! Where the embedded backend keeps its accounts, characters and sessions:
//! one [`Store`] interface (accounts and characters) and one [`Sessions`]
//! interface, each with the engines [`DatabaseUrl`] names.
//!
//! | engine | accounts and characters | sessions |
//! |---|---|---|
//! | `memory` | [`memory::MemoryStore`]: process memory, forgotten on exit | [`memory::MemorySessions`] |
//! | `sqlite:PATH` | [`sql::SqlStore`] on one SQLite file | [`memory::MemorySessions`]: one process serves |
//! | `postgres://…` | [`sql::SqlStore`] on a shared database | [`sql::PgSessions`]: any backend process validates any session |
//!
//! Both SQL engines go through sqlx's `Any` driver, so the queries of
//! `sql/` are written once (`$1` placeholders, `RETURNING`, `ON CONFLICT`
//! are common to both); only the schema (`migrations/sqlite`,
//! `migrations/postgres`), the way a write transaction starts and the
//! shared sessions differ. sqlx was chosen because it is async from end to
//! end (the runtime's threads never wait on a database: SQLite runs on
//! sqlx's own worker threads, PostgreSQL is a socket), bundles SQLite (so
//! `make run` needs nothing installed), pools connections, and is the most
//! widely used and maintained SQL toolkit for tokio.
//!
//! Every method's outer `Result` is the database failing ([`StoreError`]);
//! an inner `Result` or enum is the answer (name taken, not found, …).
//! Every write is one transaction. Passwords: the memory engine keeps the
//! client digests as today; the SQL engines keep only an argon2id hash of
//! each ([`credentials`]). `docs/database.md` lists every table, column and
//! index and which RPC reads or writes which.

pub mod credentials;
pub mod memory;
pub mod sql;
pub mod url;

use std::time::Duration;

pub use url::DatabaseUrl;

use super::accounts::{AccountError, LoginCheck, PasswordDigest, SeedPassword};
use super::characters::{Character, CreateError, NewCharacter, NotFound};
use super::sessions::{JoinError, JoinInfo, SessionError, Stage};

/// Most user ids one query of [`Store::account_names`] binds (SQLite
/// allows 32,766 parameters a statement, PostgreSQL 65,535).
pub const ID_BATCH: usize = 500;

/// Which engine a store runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Process memory.
    Memory,
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl Engine {
    /// The name used in logs and in `--database`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Memory => "memory",
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The database failed or holds something this binary cannot use.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query, a connection or the pool failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema failed.
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer packet-service.
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}): \
         run a newer packet-service or restore a backup"
    )]
    TooNew {
        /// Latest version applied to the database.
        found: i64,
        /// Latest version this binary has.
        known: i64,
    },
    /// The SQLite file's directory could not be created.
    #[error("{}: cannot create the database directory: {source}", .path.display())]
    Directory {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A row holds a value outside what its column may hold.
    #[error("database holds an invalid value: {0}")]
    Invalid(String),
    /// Hashing or verifying a password failed (not a mismatch).
    #[error("password hashing: {0}")]
    Hash(String),
    /// A blocking task or a runtime could not run.
    #[error("{0}")]
    Runtime(String),
}

/// One account as the operator commands list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// User id.
    pub user_id: u32,
    /// Name as registered.
    pub username: String,
    /// Access level (0 = banned).
    pub access: u32,
    /// Number of characters.
    pub characters: u32,
}

/// An account to create or update at start-up (`--account`, the accounts
/// file): its password is set; its access only when `access` is `Some`
/// (a new account without one gets [`DEFAULT_ACCESS`](super::accounts::DEFAULT_ACCESS)).
#[derive(Clone, Debug)]
pub struct Seed {
    /// Account name.
    pub username: String,
    /// Its password.
    pub password: SeedPassword,
    /// Its access level, if the seed names one.
    pub access: Option<u32>,
}

/// What the world saves of a character in play.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CharState {
    /// The character.
    pub char_id: u64,
    /// Its map.
    pub map: u16,
    /// Position on the map.
    pub x: f32,
    /// Position on the map.
    pub y: f32,
    /// Hit points.
    pub hp: u16,
    /// Mana points.
    pub mp: u16,
}

impl CharState {
    /// Puts this state on the character it belongs to.
    pub fn apply(&self, c: &mut Character) {
        (c.map, c.x, c.y, c.hp, c.mp) = (self.map, self.x, self.y, self.hp, self.mp);
    }
}

/// Accounts and characters.
#[tonic::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which engine this is.
    fn engine(&self) -> Engine;

    /// Number of accounts.
    async fn account_count(&self) -> Result<u64, StoreError>;

    /// Checks a login ([`LoginCheck`]); with `auto_create`, an unknown valid
    /// username is created with the digest it sent.
    async fn login(
        &self,
        username: &str,
        digest: &PasswordDigest,
        auto_create: bool,
    ) -> Result<LoginCheck, StoreError>;

    /// Whether `digest` is the stored password of account `user_id` (false
    /// for an unknown account or a kind not stored).
    async fn verify(&self, user_id: u32, digest: &PasswordDigest) -> Result<bool, StoreError>;

    /// Creates or updates each seed (names already checked: valid, unique).
    async fn seed(&self, seeds: &[Seed]) -> Result<(), StoreError>;

    /// Creates an account; its user id, or why not.
    async fn add_account(
        &self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<Result<u32, AccountError>, StoreError>;

    /// Every account, by user id.
    async fn accounts(&self) -> Result<Vec<AccountInfo>, StoreError>;

    /// The account named `username` (either case), found through the name
    /// index: an operator command names one account and reads one.
    async fn account_by_name(&self, username: &str) -> Result<Option<AccountInfo>, StoreError>;

    /// `(user id, name)` of each account among `user_ids` that exists, by
    /// user id, found through the primary key (in batches of at most
    /// [`ID_BATCH`] ids a query): the names of the players online.
    async fn account_names(&self, user_ids: &[u32]) -> Result<Vec<(u32, String)>, StoreError>;

    /// Replaces an account's password; false when there is no such account.
    async fn set_password(
        &self,
        username: &str,
        password: &SeedPassword,
    ) -> Result<bool, StoreError>;

    /// Sets an account's access level; false when there is no such account.
    async fn set_access(&self, username: &str, access: u32) -> Result<bool, StoreError>;

    /// Deletes an account with its characters; false when there is none.
    async fn delete_account(&self, username: &str) -> Result<bool, StoreError>;

    /// The characters of `user_id` in slot order.
    async fn characters(&self, user_id: u32) -> Result<Vec<Character>, StoreError>;

    /// A character of `user_id`.
    async fn character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<Character, NotFound>, StoreError>;

    /// Creates a character in the next free slot of `user_id`.
    async fn create_character(
        &self,
        user_id: u32,
        new: &NewCharacter,
    ) -> Result<Result<u64, CreateError>, StoreError>;

    /// Deletes a character of `user_id` with its inventory; its name. Later
    /// characters move up one slot.
    async fn delete_character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<String, NotFound>, StoreError>;

    /// Saves the state of characters in play, all in one transaction
    /// (characters deleted meanwhile are skipped).
    async fn save_characters(&self, states: &[CharState]) -> Result<(), StoreError>;
}

/// What a session lookup sees.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The account.
    pub user_id: u32,
    /// Its access level at login.
    pub access: u32,
    /// The stage.
    pub stage: Stage,
    /// The selected character (stage MAP only).
    pub char_id: Option<u64>,
}

/// Sessions: the login → char select → map stage of each (docs/protocol.md §9
/// D6), with the semantics of [`super::sessions`] (one live session per
/// account, a TTL, expired sessions answered TIME_OUT for a while).
#[tonic::async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Opens a session in stage LOGGED_IN, replacing the account's old one.
    async fn create(
        &self,
        user_id: u32,
        access: u32,
        digest: &PasswordDigest,
    ) -> Result<u32, StoreError>;

    /// The live session `id`.
    async fn get(&self, id: u32) -> Result<Result<SessionView, SessionError>, StoreError>;

    /// Server select: LOGGED_IN or CHAR_SELECT → CHAR_SELECT.
    async fn select_server(&self, id: u32) -> Result<Result<(), SessionError>, StoreError>;

    /// A connection presents `id` and the login digest.
    async fn join(
        &self,
        id: u32,
        digest: &PasswordDigest,
    ) -> Result<Result<JoinInfo, JoinError>, StoreError>;

    /// Extends the session's life; false when unknown or expired.
    async fn refresh(&self, id: u32) -> Result<bool, StoreError>;

    /// Character select: the session of `user_id` moves to MAP with `char_id`.
    async fn select_char(
        &self,
        id: u32,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<(), SessionError>, StoreError>;

    /// Back to character select: MAP → CHAR_SELECT.
    async fn back_to_char_select(&self, id: u32) -> Result<Result<(), SessionError>, StoreError>;

    /// Ends a session; the account it belonged to, if it existed.
    async fn remove(&self, id: u32) -> Result<Option<u32>, StoreError>;

    /// Ends the session of account `user_id` (one per account), whatever its
    /// stage; its id, if it had one. A gateway holding it learns at its next
    /// refresh, answered expired.
    async fn remove_account(&self, user_id: u32) -> Result<Option<u32>, StoreError>;

    /// Removes sessions expired for at least `grace`; how many.
    async fn purge_expired(&self, grace: Duration) -> Result<usize, StoreError>;
}

/// What [`open`] gives: the store and the sessions that go with it.
pub struct Opened {
    /// Accounts and characters.
    pub store: std::sync::Arc<dyn Store>,
    /// Sessions.
    pub sessions: std::sync::Arc<dyn Sessions>,
}

/// Settings of a store that do not come from the URL.
#[derive(Copy, Clone, Debug)]
pub struct StoreOptions {
    /// Character slots per account.
    pub max_chars_per_account: usize,
    /// Lifetime of an unrefreshed session.
    pub session_ttl: Duration,
}

/// Opens the database `url` names (creating and migrating it as needed)
/// with the sessions that suit it.
pub async fn open(url: &DatabaseUrl, options: StoreOptions) -> Result<Opened, StoreError> {
    use std::sync::Arc;
    match url {
        DatabaseUrl::Memory => Ok(Opened {
            store: Arc::new(memory::MemoryStore::new(options.max_chars_per_account)),
            sessions: Arc::new(memory::MemorySessions::new(options.session_ttl)),
        }),
        DatabaseUrl::Sqlite(_) => Ok(Opened {
            store: Arc::new(sql::SqlStore::open(url, options.max_chars_per_account).await?),
            sessions: Arc::new(memory::MemorySessions::new(options.session_ttl)),
        }),
        DatabaseUrl::Postgres(_) => {
            let store = Arc::new(sql::SqlStore::open(url, options.max_chars_per_account).await?);
            let sessions = Arc::new(sql::PgSessions::new(store.clone(), options.session_ttl));
            Ok(Opened { store, sessions })
        }
    }
}
