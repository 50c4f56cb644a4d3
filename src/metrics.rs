//! Prometheus metrics, the health state, and the HTTP endpoint serving both
//! (docs/architecture.md §9, §10).
//!
//! # Who writes what
//!
//! - [`ReactorCounters`] belongs to the reactor thread. Every hot-path update
//!   is a plain integer add into a slot resolved by index (packet type index,
//!   reason index); no label lookup, no atomic, no lock. Once per loop pass the
//!   reactor calls [`ReactorCounters::publish`], which adds the accumulated
//!   deltas to the shared collectors and resets them. Label handles are
//!   resolved once, at construction.
//! - [`RpcMetrics`] is shared by the tokio tasks that run backend calls. It
//!   holds one pre-resolved histogram per `(service, method)`; RPC latency is
//!   milliseconds, so an atomic update per call is noise.
//! - [`Metrics`] owns the [`Registry`] and every collector. [`serve`] encodes
//!   it for `GET /metrics`.
//! - [`Health`] is written by the reactor ([`Health::tick_at`] every pass) and
//!   by start-up/shutdown code, and read by `GET /healthz`.
//!
//! # Series
//!
//! Every series carries the `packet_service_` namespace on the metric itself;
//! the registry is unprefixed so that the process collector (Linux) keeps the
//! standard `process_*` names that stock dashboards expect.
//!
//! | series | kind | labels |
//! |---|---|---|
//! | `connections_active` | gauge | |
//! | `connections_accepted_total` | counter | |
//! | `connections_rejected_total` | counter | `reason` |
//! | `connections_closed_total` | counter | `reason` |
//! | `packets_received_total` | counter | `type` |
//! | `packets_sent_total` | counter | `type` |
//! | `bytes_received_total`, `bytes_sent_total` | counter | |
//! | `packet_processing_seconds` | histogram (1 µs … 33 ms) | |
//! | `rpc_duration_seconds` | histogram (0.5 ms … 4.1 s) | `service`, `method` |
//! | `rpc_errors_total` | counter | `service`, `code` |
//! | `rpc_inflight` | gauge | |
//! | `rpc_queue_rejected_total` | counter | |
//! | `rpc_stale_completions_total` | counter | |
//! | `protocol_errors_total` | counter | `reason` |
//! | `buffer_pool_available`, `buffer_pool_size` | gauge | |
//! | `world_link_up` | gauge (0/1) | |
//! | `world_link_reconnects_total` | counter | |
//! | `build_info` | gauge (always 1) | `version` |
//!
//! `type` is the protocol name of the packet ([`PacketType::name`]) or
//! [`UNKNOWN_TYPE`]; the label set is bounded by the packet table. Reasons are
//! the reactor's own `&'static [&'static str]` tables, so the label set is
//! bounded by code, never by peer input.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::local::LocalHistogram;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::protocol::{Direction, PacketType};

/// Namespace (prefix) of every series defined here.
pub const NAMESPACE: &str = "packet_service";

/// `type` label value for packets whose id the dialect does not know.
pub const UNKNOWN_TYPE: &str = "unknown";

/// A `/healthz` probe fails when the reactor's last tick is older than this.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10);

/// Every backend method, as `(service, method)` label values, for
/// [`RpcMetrics::new`]. Method names are those of `proto/*.proto`.
pub const RPC_METHODS: &[(&str, &str)] = &[
    ("auth", "Login"),
    ("auth", "SelectServer"),
    ("auth", "JoinServer"),
    ("auth", "Refresh"),
    ("auth", "Logout"),
    ("auth", "ListServers"),
    ("character", "List"),
    ("character", "Create"),
    ("character", "Delete"),
    ("character", "Select"),
    ("world", "Link"),
];

/// Upper bounds of `packet_processing_seconds`: 1 µs doubling to ~33 ms.
pub fn processing_buckets() -> Result<Vec<f64>, prometheus::Error> {
    exponential_buckets(1e-6, 2.0, 16)
}

/// Upper bounds of `rpc_duration_seconds`: 0.5 ms doubling to ~4.1 s.
pub fn rpc_buckets() -> Result<Vec<f64>, prometheus::Error> {
    exponential_buckets(0.0005, 2.0, 14)
}

/// The `code` label value of a gRPC status (`rpc_errors_total`).
pub fn grpc_code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The registry and every collector of the gateway.
///
/// Fields are public so start-up code can set one-off values (for example
/// `buffer_pool_size`) and tests can read them; hot paths go through
/// [`ReactorCounters`] and [`RpcMetrics`].
pub struct Metrics {
    /// Unprefixed registry holding every collector below (and, on Linux, the
    /// process collector).
    pub registry: Registry,
    /// `connections_active`: client connections currently open.
    pub connections_active: IntGauge,
    /// `connections_accepted_total`: connections admitted.
    pub connections_accepted: IntCounter,
    /// `connections_rejected_total{reason}`: connections refused at admission.
    pub connections_rejected: IntCounterVec,
    /// `connections_closed_total{reason}`: admitted connections closed.
    pub connections_closed: IntCounterVec,
    /// `packets_received_total{type}`: packets decoded from clients.
    pub packets_received: IntCounterVec,
    /// `packets_sent_total{type}`: packets queued to clients.
    pub packets_sent: IntCounterVec,
    /// `bytes_received_total`: bytes read from client sockets.
    pub bytes_received: IntCounter,
    /// `bytes_sent_total`: bytes written to client sockets.
    pub bytes_sent: IntCounter,
    /// `packet_processing_seconds`: time to handle one decoded packet.
    pub packet_processing: Histogram,
    /// `rpc_duration_seconds{service,method}`: backend call latency.
    pub rpc_duration: HistogramVec,
    /// `rpc_errors_total{service,code}`: backend calls that did not succeed.
    pub rpc_errors: IntCounterVec,
    /// `rpc_inflight`: backend calls started and not yet finished.
    pub rpc_inflight: IntGauge,
    /// `rpc_queue_rejected_total`: jobs refused because the bridge was full.
    pub rpc_queue_rejected: IntCounter,
    /// `rpc_stale_completions_total`: completions dropped because their
    /// connection slot was reused or no longer waited for them.
    pub rpc_stale_completions: IntCounter,
    /// `protocol_errors_total{reason}`: malformed or out-of-place input.
    pub protocol_errors: IntCounterVec,
    /// `buffer_pool_available`: pooled buffers not lent out.
    pub buffer_pool_available: IntGauge,
    /// `buffer_pool_size`: buffers in the pool (fixed at start-up).
    pub buffer_pool_size: IntGauge,
    /// `world_link_up`: 1 while the world stream is established, else 0.
    pub world_link_up: IntGauge,
    /// `world_link_reconnects_total`: world stream (re)connection attempts
    /// after the first.
    pub world_link_reconnects: IntCounter,
    /// `build_info{version}`: always 1; carries the crate version.
    pub build_info: IntGaugeVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

fn register<C>(registry: &Registry, collector: C) -> Result<C, prometheus::Error>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// Creates every collector in a fresh registry.
    ///
    /// Errors only on a programming mistake (an invalid or duplicate name).
    pub fn new() -> Result<Arc<Metrics>, prometheus::Error> {
        let r = Registry::new();
        let counter =
            |name: &str, help: &str| register(&r, IntCounter::with_opts(opts(name, help))?);
        let gauge = |name: &str, help: &str| register(&r, IntGauge::with_opts(opts(name, help))?);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&r, IntCounterVec::new(opts(name, help), labels)?)
        };

        let metrics = Metrics {
            connections_active: gauge("connections_active", "Client connections currently open.")?,
            connections_accepted: counter(
                "connections_accepted_total",
                "Client connections admitted.",
            )?,
            connections_rejected: counter_vec(
                "connections_rejected_total",
                "Client connections refused at admission, by reason.",
                &["reason"],
            )?,
            connections_closed: counter_vec(
                "connections_closed_total",
                "Admitted client connections closed, by reason.",
                &["reason"],
            )?,
            packets_received: counter_vec(
                "packets_received_total",
                "Packets decoded from clients, by protocol name.",
                &["type"],
            )?,
            packets_sent: counter_vec(
                "packets_sent_total",
                "Packets queued to clients, by protocol name.",
                &["type"],
            )?,
            bytes_received: counter("bytes_received_total", "Bytes read from client sockets.")?,
            bytes_sent: counter("bytes_sent_total", "Bytes written to client sockets.")?,
            packet_processing: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "packet_processing_seconds",
                        "Time to handle one decoded client packet on the reactor thread.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(processing_buckets()?),
                )?,
            )?,
            rpc_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "rpc_duration_seconds",
                        "Backend call latency, from submission to completion.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(rpc_buckets()?),
                    &["service", "method"],
                )?,
            )?,
            rpc_errors: counter_vec(
                "rpc_errors_total",
                "Backend calls that did not succeed, by gRPC code.",
                &["service", "code"],
            )?,
            rpc_inflight: gauge("rpc_inflight", "Backend calls in flight.")?,
            rpc_queue_rejected: counter(
                "rpc_queue_rejected_total",
                "Backend jobs refused because the reactor-to-runtime queue was full.",
            )?,
            rpc_stale_completions: counter(
                "rpc_stale_completions_total",
                "Backend completions dropped because their connection was gone or no longer waiting.",
            )?,
            protocol_errors: counter_vec(
                "protocol_errors_total",
                "Malformed or out-of-place client input, by reason.",
                &["reason"],
            )?,
            buffer_pool_available: gauge(
                "buffer_pool_available",
                "Pooled I/O buffers not lent to a connection.",
            )?,
            buffer_pool_size: gauge("buffer_pool_size", "Pooled I/O buffers in total.")?,
            world_link_up: gauge(
                "world_link_up",
                "1 while the world service stream is established, else 0.",
            )?,
            world_link_reconnects: counter(
                "world_link_reconnects_total",
                "World service stream reconnection attempts.",
            )?,
            build_info: build_info_gauge(&r)?,
            registry: r.clone(),
        };
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Arc::new(metrics))
    }

    /// The whole registry in the Prometheus text format (version 0.0.4).
    ///
    /// Encoding errors cannot come from our own collectors; if one occurs it
    /// is logged and whatever was encoded so far is returned.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::warn!("metrics: encoding failed: {e}");
        }
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn build_info_gauge(r: &Registry) -> Result<IntGaugeVec, prometheus::Error> {
    register(
        r,
        IntGaugeVec::new(
            opts("build_info", "Build information; the value is always 1."),
            &["version"],
        )?,
    )
}

/// Clamps a count to a gauge value.
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds a pending delta to its counter and clears it.
#[inline]
fn flush(pending: &mut u64, counter: &IntCounter) {
    if *pending != 0 {
        counter.inc_by(*pending);
        *pending = 0;
    }
}

/// The label value of a packet slot: the type's name, or [`UNKNOWN_TYPE`]
/// for the slot after the last type.
fn type_label(index: usize) -> &'static str {
    PacketType::ALL
        .get(index)
        .map_or(UNKNOWN_TYPE, |t| t.name())
}

/// One handle per packet slot. Slots for types that normally travel this
/// way are resolved at construction (so their series exist from the start);
/// the others are resolved the first time they are published.
fn packet_handles(
    family: &IntCounterVec,
    expected: impl Fn(usize) -> bool,
) -> Vec<Option<IntCounter>> {
    (0..=PacketType::ALL.len())
        .map(|i| expected(i).then(|| family.with_label_values(&[type_label(i)])))
        .collect()
}

fn flush_packets(pending: &mut [u64], handles: &mut [Option<IntCounter>], family: &IntCounterVec) {
    for (i, (delta, handle)) in pending.iter_mut().zip(handles.iter_mut()).enumerate() {
        if *delta != 0 {
            handle
                .get_or_insert_with(|| family.with_label_values(&[type_label(i)]))
                .inc_by(*delta);
            *delta = 0;
        }
    }
}

fn flush_reasons(pending: &mut [u64], handles: &[IntCounter]) {
    for (delta, handle) in pending.iter_mut().zip(handles) {
        flush(delta, handle);
    }
}

/// Adds one to `slots[index]`; an index outside the table is a bug in the
/// caller's reason table and is ignored in release builds.
#[inline]
fn bump(slots: &mut [u64], index: usize) {
    match slots.get_mut(index) {
        Some(slot) => *slot += 1,
        None => debug_assert!(false, "metrics: reason index {index} out of range"),
    }
}

/// The reactor thread's counters: plain integers, published in batches.
///
/// Invariant: between two [`publish`](Self::publish) calls every field holds
/// the delta not yet added to the shared collectors; `publish` adds and
/// resets them. The vectors are indexed as documented on each field and are
/// never resized. Gauges hold the latest value and are published when they
/// change.
pub struct ReactorCounters {
    /// Bytes read from client sockets since the last publish.
    pub bytes_received: u64,
    /// Bytes written to client sockets since the last publish.
    pub bytes_sent: u64,
    /// Connections admitted since the last publish.
    pub accepted: u64,
    /// Jobs refused by a full reactor-to-runtime queue since the last publish.
    pub rpc_queue_rejected: u64,
    /// Stale completions dropped since the last publish.
    pub stale_completions: u64,
    /// Per rejection reason (index into the `rejected_reasons` table).
    pub rejected: Vec<u64>,
    /// Per close reason (index into the `closed_reasons` table).
    pub closed: Vec<u64>,
    /// Per protocol-error reason (index into the `protocol_error_reasons` table).
    pub protocol_errors: Vec<u64>,
    /// Per received packet type: index = [`PacketType::index`], last slot = unknown.
    pub packets_received: Vec<u64>,
    /// Per sent packet type: index = [`PacketType::index`] (the last slot is unused).
    pub packets_sent: Vec<u64>,
    active: usize,
    pool_available: usize,
    gauges_dirty: bool,
    processing: LocalHistogram,
    handles: ReactorHandles,
}

/// Label children resolved once, at construction.
struct ReactorHandles {
    bytes_received: IntCounter,
    bytes_sent: IntCounter,
    accepted: IntCounter,
    rpc_queue_rejected: IntCounter,
    stale_completions: IntCounter,
    rejected: Vec<IntCounter>,
    closed: Vec<IntCounter>,
    protocol_errors: Vec<IntCounter>,
    packets_received: Vec<Option<IntCounter>>,
    packets_sent: Vec<Option<IntCounter>>,
    packets_received_family: IntCounterVec,
    packets_sent_family: IntCounterVec,
    active: IntGauge,
    pool_available: IntGauge,
}

impl ReactorCounters {
    /// Resolves every label child once. The reason tables are the reactor's;
    /// the index passed to [`reject`](Self::reject), [`close`](Self::close) and
    /// [`protocol_error`](Self::protocol_error) is an index into them. Every
    /// reason series exists (at 0) from here on.
    pub fn new(
        metrics: &Arc<Metrics>,
        rejected_reasons: &'static [&'static str],
        closed_reasons: &'static [&'static str],
        protocol_error_reasons: &'static [&'static str],
    ) -> ReactorCounters {
        let children = |family: &IntCounterVec, reasons: &[&str]| -> Vec<IntCounter> {
            reasons
                .iter()
                .map(|reason| family.with_label_values(&[*reason]))
                .collect()
        };
        let slots = PacketType::ALL.len() + 1;
        let direction_of = |i: usize| PacketType::ALL.get(i).map(|t| t.direction());
        let handles = ReactorHandles {
            bytes_received: metrics.bytes_received.clone(),
            bytes_sent: metrics.bytes_sent.clone(),
            accepted: metrics.connections_accepted.clone(),
            rpc_queue_rejected: metrics.rpc_queue_rejected.clone(),
            stale_completions: metrics.rpc_stale_completions.clone(),
            rejected: children(&metrics.connections_rejected, rejected_reasons),
            closed: children(&metrics.connections_closed, closed_reasons),
            protocol_errors: children(&metrics.protocol_errors, protocol_error_reasons),
            packets_received: packet_handles(&metrics.packets_received, |i| {
                matches!(direction_of(i), Some(Direction::ClientToServer) | None)
            }),
            packets_sent: packet_handles(&metrics.packets_sent, |i| {
                direction_of(i) == Some(Direction::ServerToClient)
            }),
            packets_received_family: metrics.packets_received.clone(),
            packets_sent_family: metrics.packets_sent.clone(),
            active: metrics.connections_active.clone(),
            pool_available: metrics.buffer_pool_available.clone(),
        };
        ReactorCounters {
            bytes_received: 0,
            bytes_sent: 0,
            accepted: 0,
            rpc_queue_rejected: 0,
            stale_completions: 0,
            rejected: vec![0; rejected_reasons.len()],
            closed: vec![0; closed_reasons.len()],
            protocol_errors: vec![0; protocol_error_reasons.len()],
            packets_received: vec![0; slots],
            packets_sent: vec![0; slots],
            active: 0,
            pool_available: 0,
            gauges_dirty: false,
            processing: metrics.packet_processing.local(),
            handles,
        }
    }

    /// Counts a connection refused at admission.
    #[inline]
    pub fn reject(&mut self, reason_index: usize) {
        bump(&mut self.rejected, reason_index);
    }

    /// Counts an admitted connection being closed.
    #[inline]
    pub fn close(&mut self, reason_index: usize) {
        bump(&mut self.closed, reason_index);
    }

    /// Counts a protocol error.
    #[inline]
    pub fn protocol_error(&mut self, reason_index: usize) {
        bump(&mut self.protocol_errors, reason_index);
    }

    /// Counts a decoded client packet; `None` for an id the dialect does not know.
    #[inline]
    pub fn received(&mut self, t: Option<PacketType>) {
        let slot = t.map_or(PacketType::ALL.len(), PacketType::index);
        bump(&mut self.packets_received, slot);
    }

    /// Counts a packet queued to a client.
    #[inline]
    pub fn sent(&mut self, t: PacketType) {
        bump(&mut self.packets_sent, t.index());
    }

    /// Records the time spent handling one packet, in nanoseconds.
    #[inline]
    pub fn observe_processing(&mut self, nanos: u64) {
        // u64 → f64 loses precision only above 2^53 ns (104 days).
        self.processing.observe(nanos as f64 * 1e-9);
    }

    /// Sets the number of open client connections.
    #[inline]
    pub fn set_active(&mut self, n: usize) {
        if self.active != n {
            self.active = n;
            self.gauges_dirty = true;
        }
    }

    /// Sets the number of pooled buffers not lent out.
    #[inline]
    pub fn set_pool_available(&mut self, n: usize) {
        if self.pool_available != n {
            self.pool_available = n;
            self.gauges_dirty = true;
        }
    }

    /// Adds the accumulated deltas to the shared collectors and resets them.
    ///
    /// Called once per loop pass. With nothing counted it reads the pending
    /// slots (a few hundred integers) and touches no shared state.
    pub fn publish(&mut self) {
        let h = &mut self.handles;
        flush(&mut self.bytes_received, &h.bytes_received);
        flush(&mut self.bytes_sent, &h.bytes_sent);
        flush(&mut self.accepted, &h.accepted);
        flush(&mut self.rpc_queue_rejected, &h.rpc_queue_rejected);
        flush(&mut self.stale_completions, &h.stale_completions);
        flush_reasons(&mut self.rejected, &h.rejected);
        flush_reasons(&mut self.closed, &h.closed);
        flush_reasons(&mut self.protocol_errors, &h.protocol_errors);
        flush_packets(
            &mut self.packets_received,
            &mut h.packets_received,
            &h.packets_received_family,
        );
        flush_packets(
            &mut self.packets_sent,
            &mut h.packets_sent,
            &h.packets_sent_family,
        );
        // No-op when nothing was observed.
        self.processing.flush();
        if self.gauges_dirty {
            h.active.set(gauge_value(self.active));
            h.pool_available.set(gauge_value(self.pool_available));
            self.gauges_dirty = false;
        }
    }
}

impl fmt::Debug for ReactorCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorCounters")
            .field("bytes_received", &self.bytes_received)
            .field("bytes_sent", &self.bytes_sent)
            .field("accepted", &self.accepted)
            .field("active", &self.active)
            .field("pool_available", &self.pool_available)
            .finish_non_exhaustive()
    }
}

/// Metrics written by the tokio side: RPC latency, errors, in-flight calls
/// and the world link. Cheap to clone; share one per runtime.
#[derive(Clone)]
pub struct RpcMetrics {
    metrics: Arc<Metrics>,
    methods: Arc<[MethodHandle]>,
}

struct MethodHandle {
    service: &'static str,
    method: &'static str,
    duration: Histogram,
}

impl RpcMetrics {
    /// Resolves one latency histogram per `(service, method)`; pass
    /// [`RPC_METHODS`] unless a test wants fewer.
    pub fn new(metrics: &Arc<Metrics>, methods: &[(&'static str, &'static str)]) -> RpcMetrics {
        let methods = methods
            .iter()
            .map(|&(service, method)| MethodHandle {
                service,
                method,
                duration: metrics.rpc_duration.with_label_values(&[service, method]),
            })
            .collect();
        RpcMetrics {
            metrics: Arc::clone(metrics),
            methods,
        }
    }

    /// Records one finished call: its latency and, when `code` is `Some`
    /// (see [`grpc_code_label`]; the gateway may add its own such as
    /// `"deadline"`), an error. A pair not given to [`new`](Self::new) is
    /// resolved on the spot.
    pub fn observe(
        &self,
        service: &'static str,
        method: &'static str,
        seconds: f64,
        code: Option<&'static str>,
    ) {
        match self
            .methods
            .iter()
            .find(|m| m.service == service && m.method == method)
        {
            Some(m) => m.duration.observe(seconds),
            None => self
                .metrics
                .rpc_duration
                .with_label_values(&[service, method])
                .observe(seconds),
        }
        if let Some(code) = code {
            self.metrics
                .rpc_errors
                .with_label_values(&[service, code])
                .inc();
        }
    }

    /// Marks a call as in flight until the returned guard is dropped (also
    /// when the call's future is cancelled).
    pub fn start(&self) -> InflightGuard {
        self.inflight_inc();
        InflightGuard {
            gauge: self.metrics.rpc_inflight.clone(),
        }
    }

    /// One more call in flight (pair with [`inflight_dec`](Self::inflight_dec),
    /// or use [`start`](Self::start)).
    pub fn inflight_inc(&self) {
        self.metrics.rpc_inflight.inc();
    }

    /// One call fewer in flight.
    pub fn inflight_dec(&self) {
        self.metrics.rpc_inflight.dec();
    }

    /// Changes the in-flight count by `delta` (for observers that report
    /// deltas rather than pairs).
    pub fn inflight_add(&self, delta: i64) {
        self.metrics.rpc_inflight.add(delta);
    }

    /// Counts a job refused because the bridge queue was full.
    pub fn queue_rejected(&self) {
        self.metrics.rpc_queue_rejected.inc();
    }

    /// Counts a stale completion.
    pub fn stale(&self) {
        self.metrics.rpc_stale_completions.inc();
    }

    /// Sets `world_link_up`.
    pub fn set_world_link_up(&self, up: bool) {
        self.metrics.world_link_up.set(i64::from(up));
    }

    /// Counts a world link reconnection attempt.
    pub fn world_link_reconnect(&self) {
        self.metrics.world_link_reconnects.inc();
    }
}

/// Decrements `rpc_inflight` when dropped.
#[must_use = "the call counts as in flight only while the guard lives"]
pub struct InflightGuard {
    gauge: IntGauge,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Liveness and readiness, shared by the reactor and the HTTP server.
///
/// The reactor calls [`tick_at`](Self::tick_at) once per loop pass; a probe
/// succeeds when the service is ready, not stopping, and the last tick is
/// younger than the threshold — so a wedged loop fails the probe even though
/// the HTTP server (on other threads) still answers.
#[derive(Debug)]
pub struct Health {
    /// Milliseconds from `epoch` to the reactor's last pass;
    /// [`NEVER_TICKED`](Self::NEVER_TICKED) until the first.
    pub last_tick: AtomicU64,
    /// Set once the listener is bound and the reactor runs.
    pub ready: AtomicBool,
    /// Set when shutdown begins; never cleared.
    pub stopping: AtomicBool,
    epoch: Instant,
    stale_after: Duration,
}

/// Why `/healthz` fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unhealthy {
    /// Start-up has not finished.
    Starting,
    /// Shutdown has begun.
    Stopping,
    /// The reactor has not completed a pass yet.
    NeverTicked,
    /// The reactor's last pass is this long ago.
    Stalled(Duration),
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unhealthy::Starting => f.write_str("starting"),
            Unhealthy::Stopping => f.write_str("stopping"),
            Unhealthy::NeverTicked => f.write_str("reactor has not run yet"),
            Unhealthy::Stalled(age) => {
                write!(f, "reactor stalled: last pass {} ms ago", age.as_millis())
            }
        }
    }
}

impl Health {
    /// `last_tick` value before the first tick.
    pub const NEVER_TICKED: u64 = u64::MAX;

    /// A health state measured from now; not ready, not stopping, never ticked.
    pub fn new(stale_after: Duration) -> Health {
        Health::with_epoch(Instant::now(), stale_after)
    }

    /// As [`new`](Self::new), with ticks measured from `epoch`.
    pub fn with_epoch(epoch: Instant, stale_after: Duration) -> Health {
        Health {
            last_tick: AtomicU64::new(Self::NEVER_TICKED),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            epoch,
            stale_after,
        }
    }

    /// Records a reactor pass now.
    pub fn tick(&self) {
        self.tick_at(Instant::now());
    }

    /// Records a reactor pass at `now` (the pass's own clock reading).
    pub fn tick_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        let ms = u64::try_from(ms).unwrap_or(Self::NEVER_TICKED - 1);
        self.last_tick.store(ms, Ordering::Relaxed);
    }

    /// Marks start-up as finished (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Marks shutdown as begun.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The probe's verdict now.
    pub fn check(&self) -> Result<(), Unhealthy> {
        self.check_at(Instant::now())
    }

    /// The probe's verdict at `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), Unhealthy> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(Unhealthy::Stopping);
        }
        if !self.ready.load(Ordering::Relaxed) {
            return Err(Unhealthy::Starting);
        }
        let last = self.last_tick.load(Ordering::Relaxed);
        if last == Self::NEVER_TICKED {
            return Err(Unhealthy::NeverTicked);
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .saturating_sub(Duration::from_millis(last));
        if age > self.stale_after {
            return Err(Unhealthy::Stalled(age));
        }
        Ok(())
    }
}

/// At most this many metrics/health connections are served at once; more
/// are closed at accept.
pub const MAX_HTTP_CONNECTIONS: usize = 64;

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `GET /metrics` and `GET /healthz` until `shutdown` becomes `true`
/// (or its sender is dropped).
///
/// One task per connection, HTTP/1.1 with keep-alive; at most
/// [`MAX_HTTP_CONNECTIONS`] at once. On shutdown the accept loop stops and
/// open connections finish their current request and close.
///
/// Routes: `/metrics` → 200 with the text format; `/healthz` → 200 `ok` or
/// 503 with the reason; a known path with another method → 405; anything
/// else → 404.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            log::debug!("metrics: {peer}: refused, {MAX_HTTP_CONNECTIONS} connections open");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let health = Arc::clone(&health);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: Request<Incoming>| {
                let response = respond(&metrics, &health, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                log::debug!("metrics: {peer}: {e}");
            }
        });
    }
    log::debug!("metrics: endpoint stopped");
}

/// Resolves once shutdown is requested or the sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Err: the sender was dropped; nobody can ask us to stop any more, so stop.
    let _ = shutdown.wait_for(|&stop| stop).await;
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn respond(
    metrics: &Metrics,
    health: &Health,
    method: &Method,
    path: &str,
) -> Response<Full<Bytes>> {
    let known = matches!(path, "/metrics" | "/healthz");
    if !known {
        return text(StatusCode::NOT_FOUND, PLAIN, "not found\n");
    }
    if method != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => text(StatusCode::OK, prometheus::TEXT_FORMAT, metrics.encode()),
        _ => match health.check() {
            Ok(()) => text(StatusCode::OK, PLAIN, "ok\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::MetricFamily;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const REJECTED: &[&str] = &["max_connections", "buffer_pool"];
    const CLOSED: &[&str] = &["eof", "idle", "checksum"];
    const PROTOCOL: &[&str] = &["bad_size", "wrong_state"];

    fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    /// The value of one counter or gauge series, or `None` if it does not exist.
    #[track_caller]
    fn value(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let families = metrics.registry.gather();
        let f = family(&families, name);
        f.get_metric()
            .iter()
            .find(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| match f.get_field_type() {
                prometheus::proto::MetricType::GAUGE => m.get_gauge().get_value(),
                _ => m.get_counter().get_value(),
            })
    }

    fn counters(metrics: &Arc<Metrics>) -> ReactorCounters {
        ReactorCounters::new(metrics, REJECTED, CLOSED, PROTOCOL)
    }

    #[test]
    fn publish_adds_deltas_and_resets_them() {
        let m = Metrics::new().expect("metrics");
        let mut c = counters(&m);
        let name = |s: &str| format!("{NAMESPACE}_{s}");

        c.accepted += 3;
        c.bytes_received += 100;
        c.bytes_sent += 40;
        c.rpc_queue_rejected += 2;
        c.stale_completions += 1;
        c.reject(1);
        c.close(0);
        c.close(0);
        c.close(2);
        c.protocol_error(1);
        c.received(Some(PacketType::PAKCS_ALIVE));
        c.received(Some(PacketType::PAKCS_ALIVE));
        c.received(None);
        c.sent(PacketType::PAKSS_ACCEPT_REPLY);
        c.observe_processing(1_500);
        c.observe_processing(3_000_000);
        c.set_active(4);
        c.set_pool_available(10);

        // Nothing is visible before publish.
        assert_eq!(
            value(&m, &name("connections_accepted_total"), &[]),
            Some(0.0)
        );
        assert_eq!(value(&m, &name("connections_active"), &[]), Some(0.0));

        c.publish();
        let check = |n: &str, labels: &[(&str, &str)], want: f64| {
            assert_eq!(value(&m, &name(n), labels), Some(want), "{n} {labels:?}");
        };
        check("connections_accepted_total", &[], 3.0);
        check("bytes_received_total", &[], 100.0);
        check("bytes_sent_total", &[], 40.0);
        check("rpc_queue_rejected_total", &[], 2.0);
        check("rpc_stale_completions_total", &[], 1.0);
        check(
            "connections_rejected_total",
            &[("reason", "max_connections")],
            0.0,
        );
        check(
            "connections_rejected_total",
            &[("reason", "buffer_pool")],
            1.0,
        );
        check("connections_closed_total", &[("reason", "eof")], 2.0);
        check("connections_closed_total", &[("reason", "idle")], 0.0);
        check("connections_closed_total", &[("reason", "checksum")], 1.0);
        check("protocol_errors_total", &[("reason", "wrong_state")], 1.0);
        check("packets_received_total", &[("type", "PAKCS_ALIVE")], 2.0);
        check("packets_received_total", &[("type", UNKNOWN_TYPE)], 1.0);
        check("packets_sent_total", &[("type", "PAKSS_ACCEPT_REPLY")], 1.0);
        check("connections_active", &[], 4.0);
        check("buffer_pool_available", &[], 10.0);
        assert_eq!(m.packet_processing.get_sample_count(), 2);
        assert!((m.packet_processing.get_sample_sum() - 0.0030015).abs() < 1e-9);

        // Deltas were reset: a second publish changes nothing.
        assert_eq!(c.accepted, 0);
        assert!(c.packets_received.iter().all(|&n| n == 0));
        c.publish();
        check("connections_accepted_total", &[], 3.0);
        check("packets_received_total", &[("type", "PAKCS_ALIVE")], 2.0);
        check("connections_closed_total", &[("reason", "eof")], 2.0);
        assert_eq!(m.packet_processing.get_sample_count(), 2);

        // And later deltas add up.
        c.accepted += 1;
        c.close(0);
        c.set_active(3);
        c.publish();
        check("connections_accepted_total", &[], 4.0);
        check("connections_closed_total", &[("reason", "eof")], 3.0);
        check("connections_active", &[], 3.0);
    }

    #[test]
    fn thousand_packets_add_exactly_thousand_to_their_label() {
        let m = Metrics::new().expect("metrics");
        let mut c = counters(&m);
        let series = "packet_service_packets_received_total";
        for _ in 0..1000 {
            c.received(Some(PacketType::PAKCS_NORMAL_CHAT));
        }
        assert_eq!(
            value(&m, series, &[("type", "PAKCS_NORMAL_CHAT")]),
            Some(0.0)
        );
        c.publish();
        assert_eq!(
            value(&m, series, &[("type", "PAKCS_NORMAL_CHAT")]),
            Some(1000.0)
        );
        assert_eq!(value(&m, series, &[("type", "PAKCS_ALIVE")]), Some(0.0));
        assert_eq!(value(&m, series, &[("type", UNKNOWN_TYPE)]), Some(0.0));
        let total: f64 = family(&m.registry.gather(), series)
            .get_metric()
            .iter()
            .map(|x| x.get_counter().get_value())
            .sum();
        assert_eq!(total, 1000.0);
    }

    #[test]
    fn series_exist_per_direction_and_others_appear_on_first_use() {
        let m = Metrics::new().expect("metrics");
        let mut c = counters(&m);
        let sent = "packet_service_packets_sent_total";
        let received = "packet_service_packets_received_total";
        assert_eq!(value(&m, sent, &[("type", "PAKWC_NORMAL_CHAT")]), Some(0.0));
        assert_eq!(value(&m, sent, &[("type", "PAKCS_ALIVE")]), None);
        assert_eq!(value(&m, received, &[("type", "STRESS")]), Some(0.0));
        assert_eq!(value(&m, received, &[("type", "ISC_ALIVE")]), None);
        // The plain codec echoes STRESS back: a client-direction type sent.
        c.sent(PacketType::STRESS);
        c.publish();
        assert_eq!(value(&m, sent, &[("type", "STRESS")]), Some(1.0));
    }

    #[test]
    fn text_output_names() {
        let m = Metrics::new().expect("metrics");
        let text = m.encode();
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!(
            "packet_service_build_info{{version=\"{version}\"}} 1"
        )));
        for name in [
            "packet_service_connections_active",
            "packet_service_connections_accepted_total",
            "packet_service_bytes_received_total",
            "packet_service_bytes_sent_total",
            "packet_service_packet_processing_seconds_bucket{le=\"0.000001\"}",
            "packet_service_rpc_inflight",
            "packet_service_rpc_queue_rejected_total",
            "packet_service_rpc_stale_completions_total",
            "packet_service_buffer_pool_available",
            "packet_service_buffer_pool_size",
            "packet_service_world_link_up",
            "packet_service_world_link_reconnects_total",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("\nprocess_open_fds "), "process collector");
        assert!(!text.contains("packet_service_process_"));
    }

    /// Every series the Grafana dashboard queries is one this module exports.
    #[test]
    fn dashboard_queries_existing_series() {
        let dashboard = include_str!("../deploy/grafana-dashboard.json");
        let m = Metrics::new().expect("metrics");
        // Families without children are not exported: give each one a child.
        let rpc = RpcMetrics::new(&m, RPC_METHODS);
        rpc.observe("auth", "Login", 0.001, Some("unavailable"));
        let mut c = counters(&m);
        c.observe_processing(1);
        c.publish();
        let exported: Vec<String> = m
            .encode()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect();
        let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        let mut checked = 0;
        for prefix in ["packet_service_", "process_"] {
            for (at, _) in dashboard.match_indices(prefix) {
                if dashboard[..at].ends_with(is_name) {
                    continue; // inside a longer word
                }
                let name: String = dashboard[at..]
                    .chars()
                    .take_while(|&c| is_name(c))
                    .collect();
                assert!(
                    exported.contains(&name),
                    "dashboard queries unknown series {name}"
                );
                checked += 1;
            }
        }
        assert!(checked > 30, "only {checked} series references found");
    }

    #[test]
    fn buckets_cover_the_intended_ranges() {
        let p = processing_buckets().expect("buckets");
        assert_eq!(p.first().copied(), Some(1e-6));
        assert!(p.last().is_some_and(|&b| b > 0.03 && b < 0.04));
        let r = rpc_buckets().expect("buckets");
        assert_eq!(r.first().copied(), Some(0.0005));
        assert!(r.last().is_some_and(|&b| (b - 4.096).abs() < 1e-9));
    }

    #[test]
    fn rpc_metrics_observe_errors_and_inflight() {
        let m = Metrics::new().expect("metrics");
        let rpc = RpcMetrics::new(&m, RPC_METHODS);
        rpc.observe("auth", "Login", 0.002, None);
        rpc.observe(
            "auth",
            "Login",
            0.004,
            Some(grpc_code_label(tonic::Code::Unavailable)),
        );
        rpc.observe("test", "Unlisted", 0.1, Some("deadline"));
        let login = m.rpc_duration.with_label_values(&["auth", "Login"]);
        assert_eq!(login.get_sample_count(), 2);
        let unlisted = m.rpc_duration.with_label_values(&["test", "Unlisted"]);
        assert_eq!(unlisted.get_sample_count(), 1);
        let errors = "packet_service_rpc_errors_total";
        assert_eq!(
            value(&m, errors, &[("service", "auth"), ("code", "unavailable")]),
            Some(1.0)
        );
        assert_eq!(
            value(&m, errors, &[("service", "test"), ("code", "deadline")]),
            Some(1.0)
        );

        let a = rpc.start();
        let b = rpc.start();
        assert_eq!(m.rpc_inflight.get(), 2);
        drop(a);
        assert_eq!(m.rpc_inflight.get(), 1);
        drop(b);
        assert_eq!(m.rpc_inflight.get(), 0);
        rpc.inflight_add(3);
        rpc.inflight_add(-2);
        assert_eq!(m.rpc_inflight.get(), 1);

        rpc.queue_rejected();
        rpc.stale();
        rpc.set_world_link_up(true);
        rpc.world_link_reconnect();
        assert_eq!(m.rpc_queue_rejected.get(), 1);
        assert_eq!(m.rpc_stale_completions.get(), 1);
        assert_eq!(m.world_link_up.get(), 1);
        assert_eq!(m.world_link_reconnects.get(), 1);
        rpc.set_world_link_up(false);
        assert_eq!(m.world_link_up.get(), 0);
    }

    #[test]
    fn health_verdicts() {
        let epoch = Instant::now();
        let h = Health::with_epoch(epoch, Duration::from_secs(10));
        assert_eq!(h.check_at(epoch), Err(Unhealthy::Starting));
        h.set_ready(true);
        assert_eq!(h.check_at(epoch), Err(Unhealthy::NeverTicked));
        h.tick_at(epoch + Duration::from_secs(5));
        assert_eq!(h.check_at(epoch + Duration::from_secs(14)), Ok(()));
        assert_eq!(
            h.check_at(epoch + Duration::from_secs(16)),
            Err(Unhealthy::Stalled(Duration::from_secs(11)))
        );
        h.tick_at(epoch + Duration::from_secs(16));
        assert_eq!(h.check_at(epoch + Duration::from_secs(16)), Ok(()));
        h.set_stopping();
        assert_eq!(
            h.check_at(epoch + Duration::from_secs(16)),
            Err(Unhealthy::Stopping)
        );
    }

    /// A minimal HTTP/1.1 client: one request, `Connection: close`, returns
    /// (status, head, body).
    async fn request(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
    ) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let raw = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    struct Server {
        addr: std::net::SocketAddr,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(metrics: Arc<Metrics>, health: Arc<Health>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, metrics, health, rx));
        Server { addr, stop, task }
    }

    async fn stop(server: Server) {
        server.stop.send(true).expect("server alive");
        tokio::time::timeout(Duration::from_secs(10), server.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
    }

    #[tokio::test]
    async fn http_metrics_and_health() {
        let m = Metrics::new().expect("metrics");
        let health = Arc::new(Health::new(DEFAULT_STALE_AFTER));
        let mut c = counters(&m);
        c.received(Some(PacketType::PAKCS_LOGIN_REQ));
        c.publish();
        // Resolving the method handles makes the RPC histograms visible at 0.
        let _rpc = RpcMetrics::new(&m, RPC_METHODS);
        let server = start(Arc::clone(&m), Arc::clone(&health)).await;

        let (status, head, body) = request(server.addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(body.contains("packet_service_packets_received_total{type=\"PAKCS_LOGIN_REQ\"} 1"));
        assert!(body.contains("# TYPE packet_service_rpc_duration_seconds histogram"));

        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (503, "starting\n"));
        health.set_ready(true);
        health.tick();
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));

        let (status, head, _) = request(server.addr, "POST", "/metrics").await;
        assert_eq!(status, 405);
        assert!(head.contains("allow: get"));
        assert_eq!(request(server.addr, "GET", "/").await.0, 404);
        assert_eq!(request(server.addr, "GET", "/metricsx").await.0, 404);
        // A query string does not change the route.
        assert_eq!(
            request(server.addr, "GET", "/healthz?verbose=1").await.0,
            200
        );

        health.set_stopping();
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (503, "stopping\n"));
        stop(server).await;
    }

    #[tokio::test]
    async fn http_health_fails_when_reactor_stalls() {
        let m = Metrics::new().expect("metrics");
        // Epoch a second ago, last pass at the epoch, threshold 1 ms: stale.
        let epoch = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("monotonic clock older than a second");
        let health = Arc::new(Health::with_epoch(epoch, Duration::from_millis(1)));
        health.set_ready(true);
        health.tick_at(epoch);
        let server = start(m, Arc::clone(&health)).await;
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("reactor stalled: last pass "), "{body}");
        stop(server).await;
    }

    #[tokio::test]
    async fn keep_alive_connection_is_closed_on_shutdown() {
        let m = Metrics::new().expect("metrics");
        let health = Arc::new(Health::new(DEFAULT_STALE_AFTER));
        let server = start(m, health).await;
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("write");
        // Read the first response completely (head, then Content-Length bytes).
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let response_len = loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the response");
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
            let Some(head_end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if raw.len() >= head_end + 4 + length {
                break head_end + 4 + length;
            }
        };
        assert_eq!(raw.len(), response_len, "nothing after the response");
        stop(server).await;
        // The idle keep-alive connection is closed by the graceful shutdown.
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("connection closed after shutdown")
            .expect("read");
        assert_eq!(n, 0);
    }
}
