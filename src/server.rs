//! Start-up and shutdown of the whole service (docs/architecture.md §10).
//!
//! [`Server::build`] does everything that can fail at start-up — runtime,
//! embedded backend, metrics endpoint, bridge, listener — and reports it as a
//! [`StartError`]; [`Server::run`] then runs the reactor on the calling
//! thread until a shutdown is requested, and tears the rest down.
//! [`Server::spawn`] runs it on a thread of its own (tests and tools).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use log::{info, warn};
use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::backend::EmbeddedBackend;
use crate::config::Config;
use crate::conn::reason::{AuthRefusal, LoginVerdict};
use crate::listener;
use crate::metrics::{Health, Metrics, ReactorCounters, RpcMetrics, RPC_METHODS};
use crate::reactor::{Reactor, ReactorConfig, WAKER};
use crate::rpc::{self, RpcObserver};

/// A start-up failure (distinct from per-connection close reasons).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The tokio runtime could not be built.
    #[error("cannot start the RPC runtime: {0}")]
    Runtime(std::io::Error),
    /// The embedded backend failed.
    #[error("embedded backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// The metrics registry failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Poll or waker creation failed.
    #[error("event loop: {0}")]
    Poll(std::io::Error),
    /// A backend URL is invalid.
    #[error("backend address: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    /// The thread building the irose key tables failed.
    #[error("cannot build the irose key tables")]
    Tables,
}

/// How much lower (in nice levels) the runtime's threads run than the
/// reactor. On a small box the RPC threads, the embedded backend and the
/// reactor compete for the same cores; the reactor is the latency-critical
/// one (every client waits on it), so the scheduler should prefer it.
const RPC_NICENESS: libc::c_int = 5;

/// Lowers the calling runtime thread's priority (Linux: nice is per thread).
/// Raising one's own nice value needs no privilege; failure only logs.
fn yield_to_the_reactor() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and get/setpriority take no pointers and only affect
    // the calling thread's scheduling.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if libc::setpriority(libc::PRIO_PROCESS, tid, current + RPC_NICENESS) != 0 {
            log::debug!("could not lower the priority of an RPC thread");
        }
    }
}

/// Asks a running server to stop (cheap to clone; usable from a signal handler).
#[derive(Clone)]
pub struct ShutdownTrigger {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownTrigger {
    /// Requests a graceful shutdown.
    pub fn request(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// Whether a shutdown was already requested.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// Hands settings from a reload to the running reactor (cheap to clone):
/// sends them on its channel and wakes it; it applies them at the start
/// of its next pass.
#[derive(Clone)]
pub struct ReactorReload {
    tx: std::sync::mpsc::Sender<ReactorConfig>,
    waker: Arc<Waker>,
}

impl ReactorReload {
    /// Delivers `cfg`; a stopped reactor just never reads it.
    pub fn send(&self, cfg: ReactorConfig) {
        if self.tx.send(cfg).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// What the reactor is built from on the thread that runs it (the
/// reactor itself is not `Send`: its buffer pool is thread-local).
struct ReactorParts {
    poll: Poll,
    listener: TcpListener,
    config: ReactorConfig,
    pool: (usize, usize),
    bridge: rpc::Bridge,
    counters: ReactorCounters,
    shutdown: Arc<AtomicBool>,
    updates: std::sync::mpsc::Receiver<ReactorConfig>,
}

/// A built, not yet running server.
pub struct Server {
    reactor: ReactorParts,
    runtime: tokio::runtime::Runtime,
    backend: Option<EmbeddedBackend>,
    metrics_stop: Option<tokio::sync::watch::Sender<bool>>,
    trigger: ShutdownTrigger,
    reload: ReactorReload,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    backend_addr: Option<SocketAddr>,
    accounts_reload: Option<crate::backend::reload::AccountsReload>,
    admin_addr: Option<SocketAddr>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    grace: Duration,
}

struct Observer(RpcMetrics);

impl RpcObserver for Observer {
    fn observe(
        &self,
        service: &'static str,
        method: &'static str,
        seconds: f64,
        error: Option<&'static str>,
    ) {
        self.0.observe(service, method, seconds, error);
    }
    fn inflight(&self, delta: i64) {
        if delta > 0 {
            self.0.inflight_inc();
        } else {
            self.0.inflight_dec();
        }
    }
    fn login(&self, verdict: LoginVerdict) {
        self.0.login(verdict);
    }
    fn auth_refused(&self, reason: AuthRefusal) {
        self.0.auth_refused(reason);
    }
    fn world_link(&self, up: bool) {
        self.0.set_world_link_up(up);
        if !up {
            self.0.world_link_reconnect();
        }
    }
    fn endpoints_up(&self, service: &'static str, up: usize) {
        self.0.set_endpoints_up(service, up);
    }
}

impl Server {
    /// Starts everything but the reactor loop, binding the client listener.
    pub fn build(config: Config) -> Result<Server, StartError> {
        Server::build_with(config, None)
    }

    /// Starts everything but the reactor loop, on `activated` (the
    /// listener systemd passed, from [`listener::take_activated`]) if
    /// given, else on a listener bound as the settings say.
    pub fn build_with(
        config: Config,
        activated: Option<std::net::TcpListener>,
    ) -> Result<Server, StartError> {
        for line in config.warnings() {
            warn!("{line}");
        }
        // The seeded irose tables cost a few milliseconds each: built on a
        // thread of their own while the rest starts, never on the reactor's.
        let tables = {
            let config = config.clone();
            std::thread::Builder::new()
                .name("irose-tables".into())
                .spawn(move || config.prepare_seeds())
                .map_err(|_| StartError::Tables)?
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.rpc_threads)
            .thread_name("rpc")
            .on_thread_start(yield_to_the_reactor)
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let metrics = Metrics::new()?;
        let health = Arc::new(Health::new(crate::metrics::DEFAULT_STALE_AFTER));

        // Embedded backend for every service without an external address.
        let backend = match config.embedded_backend_listen() {
            Some(listen) => {
                let backend =
                    runtime.block_on(EmbeddedBackend::start(config.backend_config(), listen))?;
                info!(
                    "embedded backend serving auth, character and world on {}",
                    backend.addr()
                );
                Some(backend)
            }
            None => None,
        };
        if let Some(backend) = &backend {
            backend.count_admin_actions(metrics.admin_actions.clone());
            runtime.spawn(export_world(
                Arc::downgrade(&backend.world()),
                crate::metrics::WorldSeries::new(&metrics),
            ));
        }
        let backend_addr = backend.as_ref().map(|b| b.addr());
        let accounts_reload = backend.as_ref().map(|b| b.accounts_reload());
        let admin_addr = backend.as_ref().map(|b| b.admin_addr());
        // Bound before the world link opens: the link names the gateway by
        // the port it serves.
        let addr = SocketAddr::new(config.listen_addr, config.service_port);
        let binding = listener::Binding {
            reuse_port: config.reuse_port,
            backlog: config.listen_backlog,
        };
        let (listener, origin) = listener::client(activated, addr, binding)
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let mut endpoints = config.endpoints(backend_addr);
        endpoints.gateway = config.gateway_name(bound.port());
        endpoints.local = backend.as_ref().map(EmbeddedBackend::local);

        let (metrics_addr, metrics_stop) = if config.metrics_enabled {
            let addr = SocketAddr::new(config.metrics_addr, config.metrics_port);
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(addr))
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            runtime.spawn(crate::metrics::serve(
                listener,
                Arc::clone(&metrics),
                Arc::clone(&health),
                rx,
            ));
            info!("metrics on http://{bound}/metrics");
            (Some(bound), Some(tx))
        } else {
            (None, None)
        };

        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?);
        let observer = Arc::new(Observer(RpcMetrics::new(&metrics, RPC_METHODS)));
        let (bridge, first_list) = rpc::start(
            runtime.handle(),
            endpoints,
            config.rpc_deadline,
            config.rpc_queue,
            Arc::clone(&waker) as Arc<dyn rpc::Wake>,
            observer,
        )?;
        // Clients are served once the server list is in: a login answered
        // before it would be shown no server and no channel. A backend that
        // is down delays the start by one deadline at most.
        if !first_list.wait(runtime.handle(), config.rpc_deadline) {
            warn!(
                "no server list from the auth service yet: logins list no channels \
                 until it comes (asked again every {:?})",
                rpc::SERVER_LIST_RETRY
            );
        }

        metrics.buffer_pool_size.set(config.buffer_pool_size as i64);
        let counters = ReactorCounters::for_reasons(&metrics);
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut reactor_config = config.reactor_config(bound.port());
        reactor_config.seeds = tables.join().map_err(|_| StartError::Tables)?;
        let (updates_tx, updates) = std::sync::mpsc::channel();
        let reactor = ReactorParts {
            poll,
            listener,
            config: reactor_config,
            pool: (config.buffer_pool_size, config.buffer_size),
            bridge,
            counters,
            shutdown: Arc::clone(&shutdown),
            updates,
        };
        info!(
            "listening on {bound} (codec {}, packet ids {}, {})",
            config.codec.name(),
            config.packet_ids.name(),
            origin.describe()
        );
        if origin != listener::Origin::Activated {
            warn_capped_backlog(config.listen_backlog, listener::somaxconn());
        }
        Ok(Server {
            reactor,
            runtime,
            backend,
            metrics_stop,
            reload: ReactorReload {
                tx: updates_tx,
                waker: Arc::clone(&waker),
            },
            trigger: ShutdownTrigger {
                flag: shutdown,
                waker,
            },
            addr: bound,
            metrics_addr,
            backend_addr,
            accounts_reload,
            admin_addr,
            health,
            metrics,
            grace: config.shutdown_grace,
        })
    }

    /// The bound client port.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound metrics endpoint, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The embedded backend's address, if it runs.
    pub fn backend_addr(&self) -> Option<SocketAddr> {
        self.backend_addr
    }

    /// The admin service's address, if the embedded backend runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The metrics registry (readable after the server stopped).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// A handle that stops the server.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// A handle that delivers reloaded settings to the reactor.
    pub fn reactor_reload(&self) -> ReactorReload {
        self.reload.clone()
    }

    /// Where a reload asks the embedded backend (if it runs) to read the
    /// accounts file again.
    pub fn accounts_reload(&self) -> Option<crate::backend::reload::AccountsReload> {
        self.accounts_reload.clone()
    }

    /// Runs the reactor on this thread until shutdown, then stops the rest.
    pub fn run(self) -> std::io::Result<()> {
        let Server {
            reactor,
            runtime,
            backend,
            metrics_stop,
            health,
            grace,
            addr,
            ..
        } = self;
        let updates = reactor.updates;
        let result = Reactor::new(
            reactor.poll,
            reactor.listener,
            reactor.config,
            reactor.pool,
            reactor.bridge,
            reactor.counters,
            reactor.shutdown,
            Arc::clone(&health),
        )
        .and_then(|mut reactor| {
            reactor.take_updates(updates);
            health.set_ready(true);
            crate::systemd::ready(&format!("accepting clients on {addr}"));
            reactor.run()
        });
        if let Some(stop) = metrics_stop {
            let _ = stop.send(true);
        }
        if let Some(backend) = backend {
            if runtime
                .block_on(async { tokio::time::timeout(grace, backend.shutdown()).await })
                .is_err()
            {
                warn!("embedded backend did not stop within {grace:?}");
            }
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        info!("stopped");
        result
    }

    /// Runs the server on a thread of its own.
    pub fn spawn(self) -> ServerHandle {
        let mut handle = ServerHandle {
            addr: self.addr,
            metrics_addr: self.metrics_addr,
            backend_addr: self.backend_addr,
            admin_addr: self.admin_addr,
            trigger: self.trigger.clone(),
            metrics: Arc::clone(&self.metrics),
            thread: None,
        };
        match std::thread::Builder::new()
            .name("reactor".into())
            .spawn(move || self.run())
        {
            Ok(t) => handle.thread = Some(t),
            Err(e) => warn!("cannot spawn the reactor thread: {e}"),
        }
        handle
    }
}

/// A server running on its own thread. Dropping it stops the server.
pub struct ServerHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    backend_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    trigger: ShutdownTrigger,
    metrics: Arc<Metrics>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The client port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics endpoint, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The embedded backend, if it runs.
    pub fn backend_addr(&self) -> Option<SocketAddr> {
        self.backend_addr
    }

    /// The embedded backend's admin service, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// A trigger for a graceful shutdown.
    pub fn trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// The metrics registry; it stays readable after the server stopped.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Requests shutdown and waits, keeping the handle (to read metrics).
    pub fn stop_and_wait(&mut self) -> std::io::Result<()> {
        self.trigger.request();
        self.join_inner()
    }

    /// Requests shutdown and waits for the server to stop.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.trigger.request();
        self.join_inner()
    }

    fn join_inner(&mut self) -> std::io::Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("reactor thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.trigger.request();
        let _ = self.join_inner();
    }
}

/// Exports the embedded world's counters to their series every second,
/// until the world is gone.
async fn export_world(
    world: std::sync::Weak<crate::backend::world::WorldState>,
    mut series: crate::metrics::WorldSeries,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        let Some(world) = world.upgrade() else {
            return;
        };
        series.export(&world);
    }
}

/// Says so when the kernel shortens the listener's backlog: a restart
/// storm then overflows it, and its dropped SYNs cost clients seconds.
fn warn_capped_backlog(backlog: u32, somaxconn: Option<u32>) {
    if let Some(cap) = somaxconn.filter(|&cap| cap < backlog) {
        warn!(
            "listen backlog {backlog} is capped at {cap} by net.core.somaxconn; \
             raise it (sysctl net.core.somaxconn={backlog}) so that a reconnect \
             storm is not dropped"
        );
    }
}
