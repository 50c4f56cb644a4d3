//! Prometheus metrics: the registry and its one table of series
//! (docs/architecture.md §9). The writers, the health state and the HTTP
//! endpoint have their own files.
//!
//! # Who writes what
//!
//! - [`ReactorCounters`] (`reactor.rs`) belongs to the reactor thread. Every
//!   hot-path update is a plain integer add into a slot resolved by index
//!   (packet type index, reason index); no label lookup, no atomic, no
//!   lock. The reactor calls [`ReactorCounters::publish`] at most every
//!   publish interval, which adds the accumulated deltas to the shared
//!   collectors and resets them.
//! - [`RpcMetrics`] (`rpc.rs`) is shared by the tokio tasks that run backend
//!   calls. RPC latency is milliseconds, so an atomic update per call is
//!   noise.
//! - [`Metrics`] (here) owns the [`Registry`] and every collector;
//!   [`serve`] (`http.rs`) encodes it for `GET /metrics`.
//! - [`WorldSeries`] (`world.rs`) copies the embedded world's own counters
//!   into their series once a second.
//! - [`Health`] (`health.rs`) is written by the reactor and by start-up and
//!   shutdown code, and read by `GET /healthz`.
//!
//! # Series
//!
//! Every series is one line of the `series!` table below: the [`Metrics`]
//! field it fills, the collector kind, the name, the label names and the
//! HELP text. The struct, its field docs and the registration are generated
//! from that line, so a series is declared once.
//!
//! Every series carries the [`NAMESPACE`] prefix on the metric itself; the
//! registry is unprefixed so that the process collector (Linux) keeps the
//! standard `process_*` names that stock dashboards expect.
//!
//! `type` labels are the protocol name of the packet
//! ([`PacketType::name`](crate::protocol::PacketType::name)) or
//! [`UNKNOWN_TYPE`]; the label set is bounded by the packet table. Reasons
//! are the reactor's own `&'static [&'static str]` tables, so the label set
//! is bounded by code, never by peer input.

mod health;
mod http;
mod reactor;
mod rpc;
mod world;

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use health::{Health, Unhealthy, DEFAULT_STALE_AFTER};
pub use http::{serve, MAX_HTTP_CONNECTIONS};
pub use reactor::{ReactorCounters, UNKNOWN_TYPE};
pub use rpc::{RpcMetrics, RPC_METHODS};
pub use world::WorldSeries;

/// Namespace (prefix) of every series defined here.
pub const NAMESPACE: &str = "packet_service";

/// Short git revision of the source this binary was built from (`build.rs`;
/// `unknown` outside a git checkout without `PACKET_SERVICE_REVISION`).
pub const REVISION: &str = env!("BUILD_REVISION");

/// Upper bounds of `packet_processing_seconds`: 1 µs doubling to ~33 ms.
fn processing_buckets() -> Result<Vec<f64>, prometheus::Error> {
    exponential_buckets(1e-6, 2.0, 16)
}

/// Upper bounds of `rpc_duration_seconds`: 0.5 ms doubling to ~4.1 s.
fn rpc_buckets() -> Result<Vec<f64>, prometheus::Error> {
    exponential_buckets(0.0005, 2.0, 14)
}

/// Generates [`Metrics`] and its registration from the table of series.
///
/// One line per series: `field: Kind = "name" [labels] HELP;`, with
/// `buckets(expr)` before the HELP text for histograms.
macro_rules! series {
    ($(
        $field:ident: $kind:ident = $name:literal [$($label:literal),*]
            $(buckets($buckets:expr))? $help:literal;
    )*) => {
        /// The registry and every collector of the gateway.
        ///
        /// Fields are public so start-up code can set one-off values (for
        /// example `buffer_pool_size`) and tests can read them; hot paths go
        /// through [`ReactorCounters`] and [`RpcMetrics`].
        pub struct Metrics {
            /// Unprefixed registry holding every collector below (and, on
            /// Linux, the process collector).
            pub registry: Registry,
            $(
                #[doc = concat!("`", $name, "`: ", $help)]
                pub $field: $kind,
            )*
        }

        impl Metrics {
            /// Creates every series of the table in `registry`.
            fn with_series(registry: Registry) -> Result<Metrics, prometheus::Error> {
                Ok(Metrics {
                    $($field: register(&registry, Spec {
                        name: $name,
                        help: $help,
                        labels: &[$($label),*],
                        buckets: series!(@buckets $($buckets)?),
                    })?,)*
                    registry,
                })
            }
        }
    };
    (@buckets) => { None };
    (@buckets $buckets:expr) => { Some($buckets?) };
}

series! {
    connections_active: IntGauge = "connections_active" []
        "Client connections currently open.";
    players_in_world: IntGauge = "players_in_world" []
        "Client connections in the world phase: joined and playing.";
    connections_accepted: IntCounter = "connections_accepted_total" []
        "Client connections admitted.";
    connections_rejected: IntCounterVec = "connections_rejected_total" ["reason"]
        "Client connections refused at admission, by reason.";
    connections_closed: IntCounterVec = "connections_closed_total" ["reason"]
        "Admitted client connections closed, by reason.";
    connections_dialect: IntCounterVec = "connections_dialect_total" ["dialect"]
        "Client connections by the dialect they speak, counted once it is known: at accept, or from the first packet (--packet-ids irose or auto).";
    packets_received: IntCounterVec = "packets_received_total" ["type"]
        "Packets decoded from clients, by protocol name.";
    packets_sent: IntCounterVec = "packets_sent_total" ["type"]
        "Packets queued to clients, by protocol name.";
    bytes_received: IntCounter = "bytes_received_total" []
        "Bytes read from client sockets.";
    bytes_sent: IntCounter = "bytes_sent_total" []
        "Bytes written to client sockets.";
    packet_processing: Histogram = "packet_processing_seconds" [] buckets(processing_buckets())
        "Time of one connection's service pass in the reactor: reading, decoding and handling its input.";
    rpc_duration: HistogramVec = "rpc_duration_seconds" ["service", "method"] buckets(rpc_buckets())
        "Backend call latency, from issuing the call to its answer, error or deadline.";
    rpc_errors: IntCounterVec = "rpc_errors_total" ["service", "code"]
        "Backend calls that failed, by service and error kind.";
    logins: IntCounterVec = "logins_total" ["result"]
        "Logins the auth service was asked about, by how they ended.";
    auth_refused: IntCounterVec = "auth_refused_total" ["reason"]
        "Logins and joins the auth service refused before checking their digest, by reason.";
    rpc_inflight: IntGauge = "rpc_inflight" []
        "Backend calls issued and not yet finished.";
    rpc_queue_rejected: IntCounter = "rpc_queue_rejected_total" []
        "Backend jobs refused because the reactor-to-runtime queue was full.";
    rpc_endpoints_up: IntGaugeVec = "rpc_endpoints_up" ["service"]
        "Endpoints of a service with several URLs that its calls are balanced over (serving per their health).";
    rpc_stale_completions: IntCounter = "rpc_stale_completions_total" []
        "Backend completions dropped because their connection was gone or no longer waiting.";
    protocol_errors: IntCounterVec = "protocol_errors_total" ["reason"]
        "Malformed or out-of-place client input, by reason.";
    chat_refused: IntCounterVec = "chat_refused_total" ["reason"]
        "Chat messages dropped by the chat budget instead of forwarded to the world, by reason.";
    world_oversized: IntCounter = "world_oversized_total" []
        "Packets from the world service too large for the protocol, dropped.";
    world_flushes: IntCounter = "world_flushes_total" []
        "World flushes run: writes of the connections whose world output waited (WORLD_FLUSH_MS), when due or early for readers short of buffers.";
    world_flush_writes: IntCounter = "world_flush_connections_total" []
        "Connections written by world flushes (divided by world_flushes_total: connections per flush).";
    admin_actions: IntCounterVec = "admin_actions_total" ["kind", "result"]
        "Calls of the embedded backend's admin service, by kind (list, kick, announce, ban) and result (done, not_found, invalid, unauthenticated, failed).";
    world_dropped: IntCounter = "world_messages_dropped_total" []
        "Messages the embedded world service dropped because a gateway link's queue was full or closed.";
    world_players: IntGaugeVec = "world_players" ["map"]
        "Players on each map of the embedded world (on the map: sent CHANGE_MAP_REQ); maps without players have no series.";
    world_visibility: IntCounterVec = "world_visibility_packets_total" ["kind"]
        "Spawn (PLAYER_CHAR) and removal (REMOVE_OBJECT) packets the embedded world sent, one per player told, by kind (spawn, remove).";
    world_held_refused: IntCounter = "world_held_messages_refused_total" []
        "Player messages the embedded world refused because too many waited for that player's join to load from the store.";
    world_joins_cancelled: IntCounter = "world_joins_cancelled_total" []
        "Joins the embedded world cancelled before they entered: their Leave came before the store reads finished, or their account was kicked (banned) meanwhile.";
    world_loading_full: IntCounter = "world_link_loading_full_total" []
        "Times a gateway link of the embedded world stopped reading because 256 joins were loading from the store (it reads on when one is done).";
    buffer_pool_available: IntGauge = "buffer_pool_available" []
        "Pooled I/O buffers not lent to a connection.";
    buffer_pool_size: IntGauge = "buffer_pool_size" []
        "Pooled I/O buffers in total.";
    world_link_up: IntGauge = "world_link_up" []
        "1 while the world service stream is established, else 0.";
    world_link_reconnects: IntCounter = "world_link_reconnects_total" []
        "World service stream losses: times the established stream went down.";
    build_info: IntGaugeVec = "build_info" ["version", "revision"]
        "Build information: the crate version and the git revision; the value is always 1.";
}

/// One line of the series table.
struct Spec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: Option<Vec<f64>>,
}

impl Spec {
    fn opts(&self) -> Opts {
        Opts::new(self.name, self.help).namespace(NAMESPACE)
    }

    fn histogram_opts(&self) -> HistogramOpts {
        let opts = HistogramOpts::from(self.opts());
        match &self.buckets {
            Some(buckets) => opts.buckets(buckets.clone()),
            None => opts,
        }
    }

    /// The options of a series without labels; labels on one are a mistake
    /// in the table.
    fn unlabelled(&self) -> Result<Opts, prometheus::Error> {
        if self.labels.is_empty() {
            Ok(self.opts())
        } else {
            Err(prometheus::Error::Msg(format!(
                "{}: a series of this kind has no labels",
                self.name
            )))
        }
    }
}

/// A collector kind the series table can create.
trait Kind: Collector + Clone + Sized + 'static {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error>;
}

impl Kind for IntCounter {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        IntCounter::with_opts(spec.unlabelled()?)
    }
}

impl Kind for IntGauge {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        IntGauge::with_opts(spec.unlabelled()?)
    }
}

impl Kind for Histogram {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        spec.unlabelled()?;
        Histogram::with_opts(spec.histogram_opts())
    }
}

impl Kind for IntCounterVec {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        IntCounterVec::new(spec.opts(), spec.labels)
    }
}

impl Kind for IntGaugeVec {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        IntGaugeVec::new(spec.opts(), spec.labels)
    }
}

impl Kind for HistogramVec {
    fn create(spec: &Spec) -> Result<Self, prometheus::Error> {
        HistogramVec::new(spec.histogram_opts(), spec.labels)
    }
}

/// Creates the collector `spec` describes and adds it to `registry`.
fn register<C: Kind>(registry: &Registry, spec: Spec) -> Result<C, prometheus::Error> {
    let collector = C::create(&spec)?;
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// Creates every collector in a fresh registry.
    ///
    /// Errors only on a programming mistake (an invalid or duplicate name).
    pub fn new() -> Result<Arc<Metrics>, prometheus::Error> {
        let metrics = Metrics::with_series(Registry::new())?;
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), REVISION])
            .set(1);

        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
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

#[cfg(test)]
mod tests;
