//! The embedded backend: a reference implementation of the Auth, Character
//! and World gRPC services (architecture.md §7), run as one real tonic server
//! inside the process. It serves `make run`, the tests and small setups when
//! no external services are configured; `--backend-listen` can expose it to
//! other gateways.
//!
//! State lives in plain stores, each behind its own `std::sync::Mutex`:
//! [`accounts::AccountStore`], [`sessions::SessionStore`],
//! [`characters::CharacterStore`] and the world's maps ([`world`]). No lock is
//! held across an `.await`, and no code path holds two store locks at once, so
//! there is no lock order to get wrong. Nothing is persisted: a restart
//! forgets auto-created accounts, sessions and characters.

pub mod accounts;
mod auth;
mod character;
pub mod characters;
mod health;
pub mod sessions;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::pb;
use accounts::{AccountStore, SeedPassword, DEFAULT_ACCESS};
use characters::CharacterStore;
use sessions::SessionStore;

/// Settings of the embedded backend.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Seed accounts as (username, plaintext password), access level 1.
    pub accounts: Vec<(String, String)>,
    /// An accounts file to load at start (format: [`accounts::parse_accounts`]).
    pub accounts_file: Option<PathBuf>,
    /// A login for an unknown (valid) username creates the account with the
    /// digest it sent.
    pub auto_create: bool,
    /// How long a session lives after login or its last refresh.
    pub session_ttl: Duration,
    /// Character slots per account.
    pub max_chars_per_account: usize,
    /// Name of the one server in the list (id 1, one channel with id 1).
    pub server_name: String,
}

impl Default for BackendConfig {
    /// The defaults of the settings table
    /// ([`Config::defaults`](crate::config::Config::defaults)), so that each
    /// is written once.
    fn default() -> Self {
        crate::config::Config::defaults().backend_config()
    }
}

/// Why the embedded backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The listen address could not be bound.
    #[error("embedded backend: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The accounts file could not be read.
    #[error("{}: cannot read accounts file: {source}", .path.display())]
    AccountsRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of the accounts file is invalid.
    #[error("{}:{line}: {reason}", .path.display())]
    AccountsParse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A seed account from the configuration is invalid.
    #[error("seed account {username:?}: {source}")]
    SeedAccount {
        /// The username given.
        username: String,
        /// What is wrong with it.
        source: accounts::AccountError,
    },
}

/// The id of the one server in the list.
pub const SERVER_ID: u32 = 1;
/// The id of its one channel.
pub const CHANNEL_ID: u32 = 1;

/// State shared by the three services.
pub(crate) struct Shared {
    /// The settings it was started with.
    config: BackendConfig,
    accounts: Mutex<AccountStore>,
    sessions: Mutex<SessionStore>,
    characters: Mutex<CharacterStore>,
}

impl Shared {
    fn new(config: BackendConfig, accounts: AccountStore) -> Shared {
        Shared {
            sessions: Mutex::new(SessionStore::new(config.session_ttl)),
            characters: Mutex::new(CharacterStore::new(config.max_chars_per_account)),
            accounts: Mutex::new(accounts),
            config,
        }
    }

    /// The server list: one server with one channel.
    fn servers(&self) -> Vec<pb::auth::ServerInfo> {
        vec![pb::auth::ServerInfo {
            id: SERVER_ID,
            name: self.config.server_name.clone(),
            test: false,
            channels: vec![pb::auth::ChannelInfo {
                id: CHANNEL_ID,
                name: format!("{} 1", self.config.server_name),
                low_age: 0,
                high_age: 0,
                capacity_percent: 0,
            }],
        }]
    }
}

/// Locks a store. A panic while a store was locked leaves it consistent
/// enough for a reference backend (every mutation is a few field writes), so
/// poisoning is ignored rather than turned into a panic of every later call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running embedded backend. Dropping it without [`shutdown`](Self::shutdown)
/// stops accepting calls in the background but leaves open world links (and
/// so their connections) running until the gateway closes them.
pub struct EmbeddedBackend {
    addr: SocketAddr,
    health: tonic_health::server::HealthReporter,
    stop: watch::Sender<bool>,
    world: Arc<world::WorldState>,
    server: JoinHandle<()>,
    purge: JoinHandle<()>,
}

/// How long [`EmbeddedBackend::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl EmbeddedBackend {
    /// Inside a tokio runtime: loads the seed accounts, binds `listen` (e.g.
    /// `127.0.0.1:0`) and serves Auth, Character and World on it.
    pub async fn start(
        config: BackendConfig,
        listen: SocketAddr,
    ) -> Result<EmbeddedBackend, BackendError> {
        let mut accounts = AccountStore::new();
        for (username, password) in &config.accounts {
            accounts
                .add(
                    username,
                    &SeedPassword::Plaintext(password.clone()),
                    DEFAULT_ACCESS,
                )
                .map_err(|source| BackendError::SeedAccount {
                    username: username.clone(),
                    source,
                })?;
        }
        if let Some(path) = &config.accounts_file {
            let seeds = accounts::read_accounts_file(path)?;
            accounts.add_seeds(path, &seeds)?;
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| BackendError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BackendError::Bind {
            addr: listen,
            source,
        })?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let ttl = config.session_ttl;
        let shared = Arc::new(Shared::new(config, accounts));
        let world = Arc::new(world::WorldState::new(shared.clone()));
        log::info!(
            "embedded backend listening on {addr} ({} accounts)",
            lock(&shared.accounts).len()
        );

        let (stop, stopped) = watch::channel(false);
        let mut server_stop = stopped.clone();
        let (health, health_service) = health::serving().await;
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(pb::auth::auth_server::AuthServer::new(auth::AuthService {
                shared: shared.clone(),
            }))
            .add_service(pb::character::character_server::CharacterServer::new(
                character::CharacterService {
                    shared: shared.clone(),
                },
            ))
            .add_service(pb::world::world_server::WorldServer::new(
                world::WorldService {
                    state: world.clone(),
                },
            ));
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = server_stop.wait_for(|&s| s).await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
                log::error!("embedded backend server failed: {e}");
            }
        });
        let purge = tokio::spawn(purge_sessions(shared, ttl, stopped));
        Ok(EmbeddedBackend {
            addr,
            health,
            stop,
            world,
            server,
            purge,
        })
    }

    /// Counters of the world service.
    pub fn world_stats(&self) -> world::WorldStats {
        self.world.stats()
    }

    /// The address the services are served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: says NOT_SERVING to health watchers, refuses new
    /// calls, ends every world link, and waits (up to a few seconds) for
    /// open connections to finish.
    pub async fn shutdown(self) {
        health::stopping(self.health.clone()).await;
        let _ = self.stop.send(true);
        self.world.close_all_links();
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
        {
            log::warn!("embedded backend: connections still open after the grace period");
            server.abort();
        }
        let _ = self.purge.await;
        log::info!("embedded backend on {} stopped", self.addr);
    }
}

/// How long an expired session is kept so that a join with it is answered
/// TIME_OUT (after that: INVALID_PASSWORD, as for any unknown id).
const EXPIRED_SESSION_GRACE: Duration = Duration::from_secs(60);

/// Removes sessions expired for longer than [`EXPIRED_SESSION_GRACE`], every
/// half TTL (between 1 s and 60 s), until stopped.
async fn purge_sessions(shared: Arc<Shared>, ttl: Duration, mut stopped: watch::Receiver<bool>) {
    let period = (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = lock(&shared.sessions).purge_expired(Instant::now(), EXPIRED_SESSION_GRACE);
                if n > 0 {
                    log::debug!("embedded backend: purged {n} expired sessions");
                }
            }
            _ = stopped.wait_for(|&s| s) => return,
        }
    }
}
