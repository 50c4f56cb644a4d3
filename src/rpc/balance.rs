//! One backend service at one URL or several: the channel its calls take.
//!
//! One URL: a lazily connected channel (a backend that is down at start is
//! picked up when it comes back; a call meanwhile fails at once).
//!
//! Several URLs: tonic's balancing channel (power of two choices over the
//! endpoints in its set) fed by one health watcher per endpoint. Each
//! watcher holds a `grpc.health.v1.Health/Watch` stream for the service on
//! a connection of its own, and keeps its endpoint in the set exactly while
//! that stream says SERVING. A backend that dies (the stream breaks with
//! its connection) or is stopping (it says NOT_SERVING first) leaves the
//! set at once, and comes back when a new watch says SERVING (retried with
//! backoff, [`RETRY_MIN`] doubling to [`RETRY_MAX`]). A backend without the
//! health service is judged by whether it answers at all: it stays in the
//! set while it answers UNIMPLEMENTED, asked again every [`RETRY_MAX`].
//! With no endpoint in the set, calls wait for one until their deadline.
//!
//! The number of endpoints in each set is reported to the
//! [`RpcObserver`] (`packet_service_rpc_endpoints_up`) and every change
//! is logged.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};
use tokio::sync::mpsc;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::convert::status_error;
use super::RpcObserver;
use crate::conn::calls::RpcError;

/// First wait before a broken watch is tried again.
pub const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two tries, and between two probes of a backend
/// without the health service.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long opening a watch may take before the endpoint counts as down.
const WATCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before a call is tried on another endpoint: long enough for the
/// watcher of a backend that just died to take it out of the balance.
pub const FAILOVER_PAUSE: Duration = Duration::from_millis(20);
/// Most changes queued to one balancing channel per endpoint. The balancer
/// takes them before routing a call; a watcher waits only when that many
/// are queued without any call (a backend flapping with no traffic).
const CHANGES_PER_ENDPOINT: usize = 64;

/// One failed attempt at a call: what the connection is told, and whether
/// another endpoint may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// What the connection is told if no other attempt succeeds.
    pub error: RpcError,
    /// The backend said UNAVAILABLE, or the call failed in the transport
    /// (no connection, or it broke): no backend answered it.
    pub elsewhere: bool,
}

impl Failure {
    /// The deadline passed.
    pub const DEADLINE: Failure = Failure {
        error: RpcError::DeadlineExceeded,
        elsewhere: false,
    };
    /// A call that cannot be made.
    pub const FAILED: Failure = Failure {
        error: RpcError::Failed,
        elsewhere: false,
    };

    /// The failure a status stands for. A status that comes from the
    /// transport (with a `tonic::transport::Error` as its source: refused,
    /// reset, broken pipe) was never answered by a backend, whatever its
    /// code; one the backend sent has no source.
    pub fn of(status: &tonic::Status) -> Failure {
        let transport = std::error::Error::source(status)
            .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
        Failure {
            error: status_error(status),
            elsewhere: transport || status.code() == tonic::Code::Unavailable,
        }
    }
}

/// How many times a call of each balanced service may be tried again
/// ([`Failure::elsewhere`]): once per endpoint; never for a single URL
/// (there is nowhere else to go, and the failure code is due at once).
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    /// Retries of an auth call.
    pub auth: usize,
    /// Retries of a character call.
    pub character: usize,
}

impl Failover {
    /// The retries of a service at `urls`.
    pub fn retries_for(urls: &[String]) -> usize {
        match urls.len() {
            0 | 1 => 0,
            n => n,
        }
    }

    /// The retries of `service` (`auth`, `character`; others have none).
    pub fn retries(self, service: &str) -> usize {
        match service {
            "auth" => self.auth,
            "character" => self.character,
            _ => 0,
        }
    }
}

/// A backend service: its name for logs and metrics, the name its health
/// status is kept under, and its URLs.
pub struct Service<'a> {
    /// `auth` or `character` (the metrics' `service` label).
    pub label: &'static str,
    /// The gRPC service name (`rose.auth.v1.Auth`).
    pub health_name: &'static str,
    /// At least one URL.
    pub urls: &'a [String],
}

/// The connection settings of every backend endpoint.
pub fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10)))
}

/// The channel for `service`'s calls. Inside a tokio runtime: with several
/// URLs it spawns one health watcher per endpoint.
pub fn channel(
    service: &Service<'_>,
    observer: &Arc<dyn RpcObserver>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoints = service
        .urls
        .iter()
        .map(|url| endpoint(url))
        .collect::<Result<Vec<_>, _>>()?;
    if let [one] = endpoints.as_slice() {
        return Ok(one.connect_lazy());
    }
    let (channel, changes) = Channel::balance_channel(endpoints.len() * CHANGES_PER_ENDPOINT);
    let up = Arc::new(AtomicUsize::new(0));
    observer.endpoints_up(service.label, 0);
    for (key, endpoint) in endpoints.into_iter().enumerate() {
        tokio::spawn(watch(Member {
            key,
            label: service.label,
            health_name: service.health_name,
            total: service.urls.len(),
            endpoint,
            changes: changes.clone(),
            up: Arc::clone(&up),
            observer: Arc::clone(observer),
            serving: false,
        }));
    }
    Ok(channel)
}

/// One endpoint of a balanced service and whether it is in the set.
struct Member {
    key: usize,
    label: &'static str,
    health_name: &'static str,
    total: usize,
    endpoint: Endpoint,
    changes: mpsc::Sender<Change<usize, Endpoint>>,
    up: Arc<AtomicUsize>,
    observer: Arc<dyn RpcObserver>,
    serving: bool,
}

/// What one watch came to.
enum Verdict {
    /// The stream broke or never opened: down, try again after a backoff.
    Broken {
        /// Why, for the log.
        why: String,
        /// Whether the stream had opened (the backend was there).
        opened: bool,
    },
    /// No health service there, but the backend answers.
    NoHealthService,
}

impl Member {
    /// Puts the endpoint in the set or takes it out. False when the
    /// balancer is gone (the gateway is stopping).
    async fn set(&mut self, serving: bool, why: &str) -> bool {
        if serving == self.serving {
            return true;
        }
        self.serving = serving;
        // Counted and logged as the health says; the balancer applies the
        // change before it routes its next call.
        let up = if serving {
            self.up.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.up.fetch_sub(1, Ordering::AcqRel) - 1
        };
        self.observer.endpoints_up(self.label, up);
        let uri = self.endpoint.uri();
        if serving {
            info!(
                "{} backend {uri} serving ({up} of {})",
                self.label, self.total
            );
        } else {
            warn!(
                "{} backend {uri} out of the balance: {why} ({up} of {} serving)",
                self.label, self.total
            );
        }
        let change = if serving {
            Change::Insert(self.key, self.endpoint.clone())
        } else {
            Change::Remove(self.key)
        };
        self.changes.send(change).await.is_ok()
    }

    /// Follows one watch stream until it ends; `None` when the balancer
    /// is gone.
    async fn follow(&mut self, client: &mut HealthClient<Channel>) -> Option<Verdict> {
        let request = HealthCheckRequest {
            service: self.health_name.to_owned(),
        };
        let broken = |why: String| Some(Verdict::Broken { why, opened: false });
        let mut stream = match tokio::time::timeout(WATCH_TIMEOUT, client.watch(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                return Some(Verdict::NoHealthService)
            }
            Ok(Err(status)) => return broken(format!("health: {}", status.code())),
            Err(_) => return broken("health watch timed out".to_owned()),
        };
        loop {
            let why = match stream.message().await {
                Ok(Some(reply)) => {
                    let status = ServingStatus::try_from(reply.status)
                        .map_or("an invalid status", |s| s.as_str_name());
                    let serving = reply.status == ServingStatus::Serving as i32;
                    if !self.set(serving, &format!("health says {status}")).await {
                        return None;
                    }
                    continue;
                }
                Ok(None) => "health stream ended".to_owned(),
                Err(status) => format!("health stream: {}", status.code()),
            };
            return Some(Verdict::Broken { why, opened: true });
        }
    }
}

/// Keeps one endpoint's membership in step with its health, until the
/// balancer is gone.
async fn watch(mut member: Member) {
    let mut client = HealthClient::new(member.endpoint.connect_lazy());
    let mut backoff = RETRY_MIN;
    loop {
        let wait = match member.follow(&mut client).await {
            None => return,
            Some(Verdict::NoHealthService) => {
                if !member.set(true, "").await {
                    return;
                }
                backoff = RETRY_MIN;
                RETRY_MAX
            }
            Some(Verdict::Broken { why, opened }) => {
                if !member.set(false, &why).await {
                    return;
                }
                // A backend that was there and went away is asked again
                // soon: one that restarts is back within RETRY_MIN.
                if opened {
                    backoff = RETRY_MIN;
                }
                let wait = backoff;
                backoff = (backoff * 2).min(RETRY_MAX);
                wait
            }
        };
        tokio::time::sleep(wait).await;
        if member.changes.is_closed() {
            return;
        }
    }
}
