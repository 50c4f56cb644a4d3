//! The bridge between the reactor and the tokio runtime (docs/architecture.md §2).
//!
//! Reactor → runtime: a bounded channel of [`Job`]s that the reactor fills
//! with `try_send` ([`Bridge::submit`]); when it is full the job comes back
//! at once and the reactor answers the client with the failure result.
//! Runtime → reactor: a channel of [`Completion`]s plus the loop's
//! `mio::Waker` — push first, then wake; the reactor drains the channel on
//! the waker token, and wakes coalesce.
//!
//! On the runtime side, a dispatcher task turns jobs into tonic calls (one
//! task per call, with a per-call deadline, bounded in number), and the world
//! link task ([`link`]) keeps the single bidirectional world stream up,
//! reconnecting with backoff. A service this process's embedded backend
//! serves is called in-process ([`transport`]); the others over gRPC, on
//! channels that connect lazily, so a backend that is down at start is
//! picked up when it comes back. The auth and character services may
//! each have several URLs: [`balance`] spreads their calls over the
//! endpoints that are serving, and a call that finds one unavailable is
//! tried again (at most once per endpoint, within its deadline) so that a
//! backend that dies costs no request that had not reached it. This module
//! (with the embedded backend and the metrics server) is the only one that
//! names tokio.
//!
//! The connections speak their own types (`src/conn/calls.rs`); [`convert`]
//! is the one place that turns them into protobuf messages and back.

pub mod balance;
pub mod convert;
pub mod failures;
mod link;
pub mod transport;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use log::{debug, warn};
use tokio::sync::{mpsc, Semaphore};

use crate::conn::calls::{Call, Liveness, Reply, RpcError, ServerEntry};
use crate::conn::reason::{AuthRefusal, LoginVerdict};
use crate::pb::auth;
use crate::pb::auth::auth_client::AuthClient;
use crate::pb::character::character_client::CharacterClient;
use balance::{Failover, Failure};
use convert::Request;
use failures::FailureLog;
use transport::{Local, Transport};
use types::{Completion, Job};

pub use convert::GATEWAY_METADATA;
pub use types::Completion as RpcCompletion;

/// Upstream world messages buffered while the link is up.
const WORLD_UPSTREAM: usize = 8192;
/// How often the server list is refreshed.
const SERVER_LIST_INTERVAL: Duration = Duration::from_secs(30);
/// How soon the server list is asked for again while none has come.
pub const SERVER_LIST_RETRY: Duration = Duration::from_secs(1);

/// Something that wakes the reactor (a `mio::Waker` in production).
pub trait Wake: Send + Sync + 'static {
    /// Wake the loop; called after a completion was pushed.
    fn wake(&self);
}

impl Wake for mio::Waker {
    fn wake(&self) {
        if let Err(e) = mio::Waker::wake(self) {
            warn!("waking the reactor failed: {e}");
        }
    }
}

/// Where the three services are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Auth service URLs (`http://host:port`), at least one; calls are
    /// balanced over them.
    pub auth: Vec<String>,
    /// Character service URLs, at least one; calls are balanced over them.
    pub character: Vec<String>,
    /// World service URL: one world per realm.
    pub world: String,
    /// The name this gateway gives itself on its world link (the admin
    /// list shows it); empty: none.
    pub gateway: String,
    /// This process's embedded backend, if it runs: a service whose one
    /// URL is the backend's own is called in-process ([`transport`]).
    pub local: Option<Local>,
}

/// Observer of RPC outcomes (metrics); the default does nothing.
pub trait RpcObserver: Send + Sync + 'static {
    /// A call finished after `seconds`, with an error label if it failed.
    fn observe(
        &self,
        _service: &'static str,
        _method: &'static str,
        _seconds: f64,
        _error: Option<&'static str>,
    ) {
    }
    /// Calls in flight changed by `delta`.
    fn inflight(&self, _delta: i64) {}
    /// A login call ended so.
    fn login(&self, _verdict: LoginVerdict) {}
    /// The auth service refused a login or join unchecked.
    fn auth_refused(&self, _reason: AuthRefusal) {}
    /// The world link went up or down.
    fn world_link(&self, _up: bool) {}
    /// `up` endpoints of a balanced service are serving.
    fn endpoints_up(&self, _service: &'static str, _up: usize) {}
}

/// An observer that records nothing.
pub struct NoObserver;
impl RpcObserver for NoObserver {}

/// The reactor's end of the bridge.
///
/// Backend calls and world traffic travel on separate bounded queues, so
/// slow auth or character calls never hold up the world stream.
pub struct Bridge {
    jobs: mpsc::Sender<Job>,
    world: mpsc::Sender<Job>,
    completions: mpsc::Receiver<Completion>,
}

impl Bridge {
    /// Hands a job to the runtime without waiting. `Err` gives the job back
    /// when its queue is full (or the runtime is gone).
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let queue = if job.call.is_world() {
            &self.world
        } else {
            &self.jobs
        };
        queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        })
    }

    /// Takes one completion if there is one (never waits).
    pub fn try_complete(&mut self) -> Option<Completion> {
        self.completions.try_recv().ok()
    }

    /// A bridge whose queues hold `jobs`, `world` and `completions` items
    /// (each at least one), with the runtime's ends of its channels. No
    /// runtime is needed to use them (`try_send` / `try_recv`): the seeded
    /// simulation plays the backends through them.
    #[doc(hidden)]
    pub fn with_capacity(jobs: usize, world: usize, completions: usize) -> (Bridge, RuntimeEnds) {
        let (job_tx, job_rx) = mpsc::channel(jobs);
        let (world_tx, world_rx) = mpsc::channel(world);
        let (done_tx, done_rx) = mpsc::channel(completions);
        let bridge = Bridge {
            jobs: job_tx,
            world: world_tx,
            completions: done_rx,
        };
        let ends = RuntimeEnds {
            jobs: job_rx,
            world: world_rx,
            completions: done_tx,
        };
        (bridge, ends)
    }
}

/// The runtime's ends of a [`Bridge`]: where jobs arrive, where
/// completions go.
#[doc(hidden)]
pub struct RuntimeEnds {
    /// Auth and character calls.
    pub jobs: mpsc::Receiver<Job>,
    /// World stream traffic.
    pub world: mpsc::Receiver<Job>,
    /// Answers and world events for the reactor (wake it after a push).
    pub completions: mpsc::Sender<Completion>,
}

/// Pushes completions and wakes the reactor.
#[derive(Clone)]
struct Completer {
    tx: mpsc::Sender<Completion>,
    waker: Arc<dyn Wake>,
}

impl Completer {
    async fn send(&self, c: Completion) {
        // Backpressure: if the reactor lags, the world stream waits here
        // and the world service's queue for this link fills (over HTTP/2
        // through flow control; in-process the stream is read no more).
        if self.tx.send(c).await.is_ok() {
            self.waker.wake();
        }
    }
}

/// The first server-list fetch of [`start`] ended (with a list or without).
pub struct FirstServerList(tokio::sync::oneshot::Receiver<bool>);

impl FirstServerList {
    /// Waits at most `most` for the first fetch: whether a list came (and is
    /// then in the completion channel, ahead of any client's login).
    pub fn wait(self, rt: &tokio::runtime::Handle, most: Duration) -> bool {
        rt.block_on(async { matches!(tokio::time::timeout(most, self.0).await, Ok(Ok(true))) })
    }
}

/// Starts the dispatcher, the world link and the server-list refresher on
/// `rt`, returning the reactor's end of the bridge and the first server
/// list's arrival (a login answered before it would list no channels).
pub fn start(
    rt: &tokio::runtime::Handle,
    endpoints: Endpoints,
    deadline: Duration,
    queue: usize,
    waker: Arc<dyn Wake>,
    observer: Arc<dyn RpcObserver>,
) -> Result<(Bridge, FirstServerList), tonic::transport::Error> {
    let _guard = rt.enter();
    let auth = balance::Service {
        label: "auth",
        health_name: crate::pb::auth::auth_server::SERVICE_NAME,
        urls: &endpoints.auth,
    };
    let character = balance::Service {
        label: "character",
        health_name: crate::pb::character::character_server::SERVICE_NAME,
        urls: &endpoints.character,
    };
    let failed = Failed {
        observer: Arc::clone(&observer),
        failures: Arc::new(FailureLog::default()),
    };
    let clients = Clients {
        auth: AuthClient::new(Transport::to(
            endpoints.local.as_ref(),
            &endpoints.auth,
            || balance::channel(&auth, &observer),
        )?),
        character: CharacterClient::new(Transport::to(
            endpoints.local.as_ref(),
            &endpoints.character,
            || balance::channel(&character, &observer),
        )?),
        failover: Failover {
            auth: Failover::retries_for(&endpoints.auth),
            character: Failover::retries_for(&endpoints.character),
        },
        deadline,
        failed: failed.clone(),
    };
    let world = std::slice::from_ref(&endpoints.world);
    let world_channel = Transport::to(endpoints.local.as_ref(), world, || {
        Ok(balance::endpoint(&endpoints.world)?.connect_lazy())
    })?;
    let (bridge, ends) = Bridge::with_capacity(queue.max(1), WORLD_UPSTREAM, queue.max(1024));
    let completer = Completer {
        tx: ends.completions,
        waker,
    };
    rt.spawn(dispatch(
        ends.jobs,
        queue.max(1),
        clients.clone(),
        completer.clone(),
    ));
    rt.spawn(link::world_link(
        world_channel,
        convert::gateway_metadata(&endpoints.gateway),
        ends.world,
        completer.clone(),
        failed,
    ));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    rt.spawn(refresh_servers(clients, completer, first_tx));
    Ok((bridge, FirstServerList(first_rx)))
}

#[derive(Clone)]
struct Clients {
    auth: AuthClient<Transport>,
    character: CharacterClient<Transport>,
    failover: Failover,
    deadline: Duration,
    failed: Failed,
}

/// Where a finished call is reported: the metrics observer, and for a
/// failure the rate-limited warning.
#[derive(Clone)]
struct Failed {
    observer: Arc<dyn RpcObserver>,
    failures: Arc<FailureLog>,
}

impl Failed {
    /// Records a finished call that took `seconds`; a failure is also
    /// noted for the warning.
    fn observe(
        &self,
        service: &'static str,
        method: &'static str,
        seconds: f64,
        error: Option<RpcError>,
    ) {
        self.observer
            .observe(service, method, seconds, error.map(RpcError::as_str));
        let Some(error) = error else { return };
        let now = std::time::Instant::now();
        if let Some(line) = self.failures.note(service, method, error, now) {
            warn!("{line}");
        }
    }
}

/// Turns jobs into calls. At most `max_inflight` calls run at once (the
/// job queue's size): past that the dispatcher stops taking jobs, the queue
/// fills, and the reactor answers new requests with the busy result.
async fn dispatch(
    mut jobs: mpsc::Receiver<Job>,
    max_inflight: usize,
    clients: Clients,
    done: Completer,
) {
    let permits = Arc::new(Semaphore::new(max_inflight));
    while let Some(Job {
        conn,
        request,
        call,
    }) = jobs.recv().await
    {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let clients = clients.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let fire_and_forget = matches!(call, Call::Refresh { .. } | Call::Logout { .. });
            let result = clients.call(call).await;
            drop(permit);
            let report = match (&result, fire_and_forget) {
                (_, false) => true,
                // Only a refused refresh matters to the connection.
                (Ok(Reply::Refresh(Liveness::Expired)), true) => true,
                _ => false,
            };
            if report {
                done.send(Completion::Rpc {
                    conn,
                    request,
                    result,
                })
                .await;
            }
        });
    }
}

impl Clients {
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.deadline);
        r
    }

    async fn timed<T, F>(
        &self,
        service: &'static str,
        method: &'static str,
        fut: F,
    ) -> Result<T, Failure>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = std::time::Instant::now();
        self.failed.observer.inflight(1);
        let result = match tokio::time::timeout(self.deadline, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => {
                debug!("{service}.{method} failed: {}", status.code());
                Err(Failure::of(&status))
            }
            Err(_) => Err(Failure::DEADLINE),
        };
        self.failed.observer.inflight(-1);
        let error = result.as_ref().err().map(|f| f.error);
        self.failed
            .observe(service, method, start.elapsed().as_secs_f64(), error);
        result
    }

    /// A timed call whose answer becomes the connection's [`Reply`].
    async fn ask<T, F>(
        &self,
        service: &'static str,
        method: &'static str,
        fut: F,
    ) -> Result<Reply, Failure>
    where
        T: Into<Reply>,
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.timed(service, method, fut).await.map(Into::into)
    }

    /// Makes `call`; while an attempt fails in a way another endpoint may
    /// not, retries are left and the deadline is not past, tries again.
    async fn call(&self, call: Call) -> Result<Reply, RpcError> {
        let (service, _) = call.name();
        let mut retries = self.failover.retries(service);
        let until = tokio::time::Instant::now() + self.deadline;
        let mut attempt = self.clone();
        loop {
            let failure = match attempt.call_once(call.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match left.checked_sub(balance::FAILOVER_PAUSE) {
                Some(left) if failure.elsewhere && retries > 0 && !left.is_zero() => {
                    retries -= 1;
                    debug!("{service}: trying another endpoint");
                    tokio::time::sleep(balance::FAILOVER_PAUSE).await;
                    attempt.deadline = left;
                }
                _ => {
                    if failure.elsewhere && matches!(call, Call::Login { .. }) {
                        // Its attempts were not counted (see `call_once`).
                        self.failed.observer.login(LoginVerdict::Failed);
                    }
                    return Err(failure.error);
                }
            }
        }
    }

    async fn call_once(&self, call: Call) -> Result<Reply, Failure> {
        let (service, method) = call.name();
        let mut auth = self.auth.clone();
        let mut chars = self.character.clone();
        match Request::from(call) {
            Request::Login(m) => {
                let reply = self
                    .timed(service, method, auth.login(self.request(m)))
                    .await;
                // An attempt that may be made again elsewhere is counted
                // by `call` if it is the last.
                if !reply.as_ref().is_err_and(|f| f.elsewhere) {
                    let verdict = convert::login_verdict(reply.as_ref().map_err(|f| f.error));
                    self.failed.observer.login(verdict);
                }
                if let Some(reason) = reply
                    .as_ref()
                    .ok()
                    .and_then(|r| convert::refusal(r.refusal))
                {
                    self.failed.observer.auth_refused(reason);
                }
                reply.map(Into::into)
            }
            Request::SelectServer(m) => {
                self.ask(service, method, auth.select_server(self.request(m)))
                    .await
            }
            Request::JoinServer(m) => {
                let reply = self
                    .timed(service, method, auth.join_server(self.request(m)))
                    .await;
                if let Some(reason) = reply
                    .as_ref()
                    .ok()
                    .and_then(|r| convert::refusal(r.refusal))
                {
                    self.failed.observer.auth_refused(reason);
                }
                reply.map(Into::into)
            }
            Request::Refresh(m) => {
                self.ask(service, method, auth.refresh(self.request(m)))
                    .await
            }
            Request::Logout(m) => {
                self.ask(service, method, auth.logout(self.request(m)))
                    .await
            }
            Request::ListChars(m) => self.ask(service, method, chars.list(self.request(m))).await,
            Request::CreateChar(m) => {
                self.ask(service, method, chars.create(self.request(m)))
                    .await
            }
            Request::DeleteChar(m) => {
                self.ask(service, method, chars.delete(self.request(m)))
                    .await
            }
            Request::SelectChar(m) => {
                self.ask(service, method, chars.select(self.request(m)))
                    .await
            }
            Request::World(_) => Err(Failure::FAILED),
        }
    }
}

async fn refresh_servers(
    clients: Clients,
    done: Completer,
    first: tokio::sync::oneshot::Sender<bool>,
) {
    let mut auth = clients.auth.clone();
    let mut first = Some(first);
    let mut listed = false;
    loop {
        let req = clients.request(auth::ListServersRequest {});
        match clients
            .timed("auth", "ListServers", auth.list_servers(req))
            .await
            .map_err(|f| f.error)
        {
            Ok(list) => {
                let servers = list.servers.into_iter().map(ServerEntry::from).collect();
                done.send(Completion::ServerList(servers)).await;
                listed = true;
            }
            Err(e) => debug!("server list refresh failed: {}", e.as_str()),
        }
        if let Some(first) = first.take() {
            let _ = first.send(listed);
        }
        if done.tx.is_closed() {
            return;
        }
        // Until a first list came, logins list no channels: ask again soon.
        let interval = if listed {
            SERVER_LIST_INTERVAL
        } else {
            SERVER_LIST_RETRY
        };
        tokio::time::sleep(interval).await;
    }
}
