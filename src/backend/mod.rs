//! The embedded backend: a reference implementation of the Auth, Character
//! and World gRPC services (docs/architecture.md §7), run as one real tonic server
//! inside the process (or alone: `packet-service backend`). It serves
//! `make run`, the tests and small setups when no external services are
//! configured; `--backend-listen` can expose it to other gateways. Its own
//! gateway calls the same services in-process ([`EmbeddedBackend::local`],
//! `src/rpc/transport.rs`), not over its listener.
//!
//! Accounts and characters live in a [`store::Store`], sessions in a
//! [`store::Sessions`], both picked by `--database` ([`store::DatabaseUrl`]):
//! process memory, one SQLite file (the default of the binary) or a shared
//! PostgreSQL database. The world keeps its players in memory and saves
//! them through [`world::saver`]. The services only await the store; no
//! lock is held across an `.await`.

pub mod accounts;
pub mod accounts_cmd;
pub mod admin;
pub mod admin_cli;
mod auth;
mod character;
pub mod characters;
mod health;
pub mod names;
pub mod reload;
pub mod sessions;
pub mod standalone;
pub mod store;
pub mod throttle;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::pb;
use accounts::{AccountSeed, SeedPassword};
use store::{DatabaseUrl, Seed, Sessions, Store, StoreError, StoreOptions};

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
    /// Where accounts, characters (and with PostgreSQL sessions) are kept.
    pub database: DatabaseUrl,
    /// Bounds on guessing and on auto-creation ([`throttle`]).
    pub limits: throttle::AuthLimitsConfig,
    /// How often the world saves the characters in play that moved.
    pub save_interval: Duration,
    /// Where the admin service listens ([`admin`]).
    pub admin_listen: SocketAddr,
    /// The file holding the token admin calls must present; required when
    /// `admin_listen` is not loopback.
    pub admin_token_file: Option<PathBuf>,
    /// The world's grid: who sees whom (`WORLD_CELL_SIZE`,
    /// `WORLD_VIEW_CELLS`).
    pub view: world::ViewConfig,
}

impl Default for BackendConfig {
    /// The defaults of the settings table
    /// ([`Config::defaults`](crate::config::Config::defaults)), so that each
    /// is written once — except the database, `memory` here: a library
    /// default never creates files (the binary's default is the row's) —
    /// and the admin service's port, ephemeral here: a library default
    /// never claims a fixed port.
    fn default() -> Self {
        BackendConfig {
            database: DatabaseUrl::Memory,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..crate::config::Config::defaults().backend_config()
        }
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
    /// The database could not be opened or used.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The admin service would listen off loopback without a token.
    #[error("the admin service on {addr} is not on loopback: give --admin-token-file / ADMIN_TOKEN_FILE, or --admin-listen 127.0.0.1:PORT")]
    AdminExposed {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The admin token file is unusable.
    #[error("admin token file {}: {reason}", .path.display())]
    AdminToken {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
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
    /// Accounts and characters.
    store: Arc<dyn Store>,
    /// Sessions.
    sessions: Arc<dyn Sessions>,
}

impl Shared {
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

/// The database failed during a call: logged, and answered with an
/// INTERNAL status (the gateway replies with the protocol's failure code).
pub(crate) fn database_failed(what: &str, e: StoreError) -> tonic::Status {
    log::error!("{what}: {e}");
    tonic::Status::internal("database error")
}

/// The seed accounts of `config` (`--account` entries, then the accounts
/// file), checked as one list: valid names, no name twice (ignoring case).
/// Errors name the entry, or the file and line.
pub fn seeds(config: &BackendConfig) -> Result<Vec<Seed>, BackendError> {
    seeds_and_lines(config).map(|(seeds, _)| seeds)
}

/// [`seeds`], and the accounts file's lines among them.
fn seeds_and_lines(config: &BackendConfig) -> Result<(Vec<Seed>, Vec<AccountSeed>), BackendError> {
    let lines = reload::checked_file(&config.accounts, config.accounts_file.as_deref())?;
    let mut seeds: Vec<Seed> = config
        .accounts
        .iter()
        .map(|(username, password)| Seed {
            username: username.clone(),
            password: SeedPassword::Plaintext(password.clone()),
            access: None,
        })
        .collect();
    seeds.extend(seed_list(&lines));
    Ok((seeds, lines))
}

/// The seeds of accounts-file lines (a line without an access level
/// leaves an existing account's level as it is).
pub(crate) fn seed_list(lines: &[AccountSeed]) -> Vec<Seed> {
    lines
        .iter()
        .map(|l| Seed {
            access: l.access_given.then_some(l.access),
            username: l.username.clone(),
            password: l.password.clone(),
        })
        .collect()
}

/// A running embedded backend. Dropping it without [`shutdown`](Self::shutdown)
/// stops accepting calls in the background but leaves open world links (and
/// so their connections) running until the gateway closes them.
pub struct EmbeddedBackend {
    addr: SocketAddr,
    routes: tonic::service::Routes,
    health: tonic_health::server::HealthReporter,
    stop: watch::Sender<bool>,
    world: Arc<world::WorldState>,
    server: JoinHandle<()>,
    admin: admin::AdminServer,
    purge: JoinHandle<()>,
    saves: JoinHandle<()>,
    saver: JoinHandle<()>,
    saver_stop: watch::Sender<bool>,
    accounts_reload: reload::AccountsReload,
    accounts_task: JoinHandle<()>,
}

/// HTTP/2 connection window of the backend's server, which also sizes h2's
/// budget for small DATA frames received and not yet read (half the
/// window): every unary call is one such frame, and past the budget h2
/// ends the whole connection (GOAWAY `ENHANCE_YOUR_CALM`,
/// "too_many_data_frames"), failing every call on it. At the 1 MiB default
/// a reconnect storm (thousands of logins queued for the password hashes)
/// tripped it; 16 MiB covers the whole job queue of a gateway that calls
/// over gRPC (`RPC_QUEUE_SIZE` calls of a few hundred bytes).
const CONNECTION_WINDOW: u32 = 16 << 20;

/// How often the backend pings each gateway's connection, and how long it
/// waits for the answer before it drops the connection (and so the
/// gateway's world link and players).
const GATEWAY_PING: Duration = Duration::from_secs(10);

/// How long [`EmbeddedBackend::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl EmbeddedBackend {
    /// Inside a tokio runtime: opens the database (creating and migrating
    /// it as needed), seeds the configured accounts, binds `listen` (e.g.
    /// `127.0.0.1:0`) and serves Auth, Character and World on it.
    pub async fn start(
        config: BackendConfig,
        listen: SocketAddr,
    ) -> Result<EmbeddedBackend, BackendError> {
        let (seeds, lines) = seeds_and_lines(&config)?;
        // Refused before anything is opened or bound.
        let admin_token = admin::token_of(&config)?;
        let opened = store::open(
            &config.database,
            StoreOptions {
                max_chars_per_account: config.max_chars_per_account,
                session_ttl: config.session_ttl,
            },
        )
        .await?;
        opened.store.seed(&seeds).await?;
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
        let save_interval = config.save_interval;
        let accounts = opened.store.account_count().await?;
        log::info!(
            "embedded backend listening on {addr} (database {}, {accounts} accounts)",
            config.database
        );
        let reloading = reload::Reloading {
            store: Arc::clone(&opened.store),
            fixed: config.accounts.clone(),
            applied: reload::applied(&lines),
        };
        let shared = Arc::new(Shared {
            config,
            store: opened.store,
            sessions: opened.sessions,
        });
        let world = Arc::new(world::WorldState::new(shared.clone()));

        let (stop, stopped) = watch::channel(false);
        let mut server_stop = stopped.clone();
        let (health, health_service) = health::serving().await;
        // One set of routes: served on the listener, and called in-process
        // by this process's gateway (`EmbeddedBackend::local`).
        let routes = tonic::service::Routes::new(health_service)
            .add_service(pb::auth::auth_server::AuthServer::new(auth::AuthService {
                limits: std::sync::Mutex::new(throttle::AuthLimits::new(shared.config.limits)),
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
            ))
            .prepare();
        let router = tonic::transport::Server::builder()
            // A gateway whose host vanishes sends no FIN: the ping finds
            // out, its world link ends and its players leave the world.
            .http2_keepalive_interval(Some(GATEWAY_PING))
            .http2_keepalive_timeout(Some(GATEWAY_PING))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
            .add_routes(routes.clone());
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = server_stop.wait_for(|&s| s).await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
                log::error!("embedded backend server failed: {e}");
            }
        });
        let admin = admin::serve(
            shared.config.admin_listen,
            admin_token,
            world.clone(),
            shared.clone(),
            stopped.clone(),
        )
        .await?;
        let purge = tokio::spawn(purge_sessions(shared, ttl, stopped.clone()));
        let saves = tokio::spawn(save_periodically(
            world.clone(),
            save_interval,
            stopped.clone(),
        ));
        // The saver stops on its own signal, sent once the links are closed
        // and their players queued.
        let (saver_stop, saver_stopped) = watch::channel(false);
        let saver = tokio::spawn(world.saver().run(saver_stopped));
        let (accounts_reload, accounts_task) = reload::spawn(reloading, stopped.clone());
        Ok(EmbeddedBackend {
            addr,
            routes,
            health,
            stop,
            world,
            server,
            admin,
            purge,
            saves,
            saver,
            saver_stop,
            accounts_reload,
            accounts_task,
        })
    }

    /// Counters of the world service.
    pub fn world_stats(&self) -> world::WorldStats {
        self.world.stats()
    }

    /// The world service's state, for reading its counters from elsewhere
    /// (the metrics).
    pub fn world(&self) -> Arc<world::WorldState> {
        Arc::clone(&self.world)
    }

    /// Where a reload asks for the accounts file to be read again.
    pub fn accounts_reload(&self) -> reload::AccountsReload {
        self.accounts_reload.clone()
    }

    /// The services, for this process's gateway to call in-process
    /// ([`crate::rpc::transport`]), the world link handed to the world
    /// directly; refused once the backend is stopping.
    pub fn local(&self) -> crate::rpc::transport::Local {
        let world = world::WorldService {
            state: Arc::clone(&self.world),
        };
        crate::rpc::transport::Local::new(self.addr, self.routes.clone(), self.stop.subscribe())
            .with_world(Arc::new(world))
    }

    /// The address the services are served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the admin service is served on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    /// Counts the admin service's calls in `counter` (labels `kind`,
    /// `result`; every pair created at 0) from now on; the first counter
    /// given stays.
    pub fn count_admin_actions(&self, counter: prometheus::IntCounterVec) {
        admin::every_label(&counter);
        let _ = self.admin.counter.set(counter);
    }

    /// Stops serving: says NOT_SERVING to health watchers, refuses new
    /// calls, ends every world link, saves every character that was in
    /// play, and waits (up to a few seconds) for open connections to finish.
    pub async fn shutdown(self) {
        health::stopping(self.health.clone()).await;
        let _ = self.stop.send(true);
        self.world.close_all_links().await;
        let _ = self.saves.await;
        // Every player is queued now: the saver writes the rest and ends.
        let _ = self.saver_stop.send(true);
        if self.saver.await.is_err() {
            log::error!("embedded backend: the character saver failed");
        }
        let mut server = self.server;
        let mut admin = self.admin.task;
        let both = async { tokio::join!(&mut server, &mut admin) };
        if tokio::time::timeout(SHUTDOWN_GRACE, both).await.is_err() {
            log::warn!("embedded backend: connections still open after the grace period");
            server.abort();
            admin.abort();
        }
        let _ = self.purge.await;
        let _ = self.accounts_task.await;
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
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = stopped.wait_for(|&s| s) => true,
        };
        if stop {
            return;
        }
        match shared.sessions.purge_expired(EXPIRED_SESSION_GRACE).await {
            Ok(0) => {}
            Ok(n) => log::debug!("embedded backend: purged {n} expired sessions"),
            Err(e) => log::error!("embedded backend: purging sessions: {e}"),
        }
    }
}

/// Queues the characters in play that moved, every `period`, until stopped.
async fn save_periodically(
    world: Arc<world::WorldState>,
    period: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = world.save_changed();
                if n > 0 {
                    log::debug!("world: {n} characters queued for the periodic save");
                }
            }
            _ = stopped.wait_for(|&s| s) => return,
        }
    }
}
