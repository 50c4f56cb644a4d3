//! The reactor thread's counters: plain integers bumped on the hot path and
//! added to the shared collectors when the reactor publishes them.

use std::fmt;
use std::sync::Arc;

use prometheus::local::LocalHistogram;
use prometheus::{IntCounter, IntCounterVec};

use super::Metrics;
use crate::protocol::{DialectId, Direction, PacketType};

/// `type` label value for packets whose id the dialect does not know.
pub const UNKNOWN_TYPE: &str = "unknown";

/// Generates [`ReactorCounters`] with one public pending count per line of
/// the table, `field => series`: the count is added to the [`Metrics`]
/// field `series` by [`ReactorCounters::publish`].
macro_rules! reactor_counters {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident => $series:ident,
    )*) => {
        /// The reactor thread's counters: plain integers, published in batches.
        ///
        /// Invariant: between two [`publish`](Self::publish) calls every count
        /// holds the delta not yet added to the shared collectors; `publish`
        /// adds and resets them. Gauges hold the latest value and are
        /// published when they change.
        pub struct ReactorCounters {
            $(
                $(#[doc = $doc])*
                pub $field: u64,
            )*
            state: State,
        }

        impl ReactorCounters {
            fn with_state(state: State) -> ReactorCounters {
                ReactorCounters {
                    $($field: 0,)*
                    state,
                }
            }

            /// Adds the pending counts of the table to their counters.
            fn publish_counts(&mut self) {
                let metrics = &self.state.metrics;
                $(
                    if self.$field != 0 {
                        metrics.$series.inc_by(self.$field);
                        self.$field = 0;
                    }
                )*
            }
        }

        impl fmt::Debug for ReactorCounters {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("ReactorCounters")
                    $(.field(stringify!($field), &self.$field))*
                    .field("active", &self.state.active)
                    .field("in_world", &self.state.in_world)
                    .field("pool_available", &self.state.pool_available)
                    .finish_non_exhaustive()
            }
        }
    };
}

reactor_counters! {
    /// Bytes read from client sockets since the last publish.
    bytes_received => bytes_received,
    /// Bytes written to client sockets since the last publish.
    bytes_sent => bytes_sent,
    /// Connections admitted since the last publish.
    accepted => connections_accepted,
    /// Jobs refused by a full reactor-to-runtime queue since the last publish.
    rpc_queue_rejected => rpc_queue_rejected,
    /// Stale completions dropped since the last publish.
    stale_completions => rpc_stale_completions,
    /// World packets too large to send, dropped since the last publish.
    world_oversized => world_oversized,
    /// World flushes run since the last publish.
    world_flushes => world_flushes,
    /// Connections written by world flushes since the last publish.
    world_flush_writes => world_flush_writes,
}

/// Everything of [`ReactorCounters`] but the table's counts.
struct State {
    /// Per rejection reason (index into the `rejected_reasons` table).
    rejected: Labelled,
    /// Per close reason (index into the `closed_reasons` table).
    closed: Labelled,
    /// Per protocol-error reason (index into the `protocol_error_reasons` table).
    protocol_errors: Labelled,
    /// Per dialect (index into [`DialectId::ALL`]).
    dialects: Labelled,
    /// Per chat refusal reason (index into the `chat_refusal_reasons` table).
    chat_refused: Labelled,
    /// Per received packet type: index = [`PacketType::index`], last slot = unknown.
    packets_received: Labelled,
    /// Per sent packet type: index = [`PacketType::index`] (the last slot is unused).
    packets_sent: Labelled,
    active: usize,
    in_world: usize,
    pool_available: usize,
    gauges_dirty: bool,
    processing: LocalHistogram,
    metrics: Arc<Metrics>,
}

/// Pending counts of one labelled counter family, one slot per label.
///
/// The vectors are never resized. A slot's child is resolved at
/// construction when the series should exist (at 0) from the start, and
/// otherwise the first time the slot is published.
struct Labelled {
    family: IntCounterVec,
    labels: Vec<&'static str>,
    pending: Vec<u64>,
    children: Vec<Option<IntCounter>>,
}

impl Labelled {
    fn new(
        family: &IntCounterVec,
        labels: Vec<&'static str>,
        eager: impl Fn(usize) -> bool,
    ) -> Labelled {
        let children = labels
            .iter()
            .enumerate()
            .map(|(i, label)| eager(i).then(|| family.with_label_values(&[*label])))
            .collect();
        Labelled {
            family: family.clone(),
            pending: vec![0; labels.len()],
            labels,
            children,
        }
    }

    /// A family whose every label series exists from the start.
    fn reasons(family: &IntCounterVec, reasons: &'static [&'static str]) -> Labelled {
        Labelled::new(family, reasons.to_vec(), |_| true)
    }

    /// A packet family: one slot per packet type plus [`UNKNOWN_TYPE`];
    /// the series of the types that normally travel this way (`expected`)
    /// exist from the start.
    fn packets(family: &IntCounterVec, expected: impl Fn(Option<Direction>) -> bool) -> Labelled {
        let slot_type = |i: usize| PacketType::ALL.get(i).copied();
        let labels = (0..=PacketType::ALL.len())
            .map(|i| slot_type(i).map_or(UNKNOWN_TYPE, PacketType::name))
            .collect();
        Labelled::new(family, labels, |i| {
            expected(slot_type(i).map(PacketType::direction))
        })
    }

    /// Adds one to slot `index`; an index outside the table is a bug in the
    /// caller's reason table and is ignored in release builds.
    #[inline]
    fn bump(&mut self, index: usize) {
        self.bump_by(index, 1);
    }

    /// Adds `n` to slot `index` (as [`Labelled::bump`]).
    #[inline]
    fn bump_by(&mut self, index: usize, n: u64) {
        match self.pending.get_mut(index) {
            Some(slot) => *slot += n,
            None => debug_assert!(false, "metrics: label index {index} out of range"),
        }
    }

    /// Adds the pending counts to their series and clears them.
    fn publish(&mut self) {
        let slots = self.pending.iter_mut().zip(&mut self.children);
        for ((delta, child), label) in slots.zip(&self.labels) {
            if *delta != 0 {
                child
                    .get_or_insert_with(|| self.family.with_label_values(&[*label]))
                    .inc_by(*delta);
                *delta = 0;
            }
        }
    }
}

/// Clamps a count to a gauge value.
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl ReactorCounters {
    /// The counters with the reactor's own reasons (`src/conn/reason.rs`):
    /// what the gateway and the simulations count with.
    pub fn for_reasons(metrics: &Arc<Metrics>) -> ReactorCounters {
        use crate::conn::reason::{ChatRefusal, CloseReason, ProtocolError, RejectReason};
        ReactorCounters::new(
            metrics,
            RejectReason::LABELS,
            CloseReason::LABELS,
            ProtocolError::LABELS,
            ChatRefusal::LABELS,
        )
    }

    /// Resolves every label child once. The reason tables are the reactor's;
    /// the index passed to [`reject`](Self::reject), [`close`](Self::close) and
    /// [`protocol_error`](Self::protocol_error) is an index into them. Every
    /// reason series exists (at 0) from here on.
    pub fn new(
        metrics: &Arc<Metrics>,
        rejected_reasons: &'static [&'static str],
        closed_reasons: &'static [&'static str],
        protocol_error_reasons: &'static [&'static str],
        chat_refusal_reasons: &'static [&'static str],
    ) -> ReactorCounters {
        ReactorCounters::with_state(State {
            rejected: Labelled::reasons(&metrics.connections_rejected, rejected_reasons),
            closed: Labelled::reasons(&metrics.connections_closed, closed_reasons),
            protocol_errors: Labelled::reasons(&metrics.protocol_errors, protocol_error_reasons),
            dialects: Labelled::new(
                &metrics.connections_dialect,
                DialectId::ALL.iter().map(|d| d.name()).collect(),
                |_| true,
            ),
            chat_refused: Labelled::reasons(&metrics.chat_refused, chat_refusal_reasons),
            // Unknown ids (no direction) arrive from clients too.
            packets_received: Labelled::packets(&metrics.packets_received, |d| {
                matches!(d, Some(Direction::ClientToServer) | None)
            }),
            packets_sent: Labelled::packets(&metrics.packets_sent, |d| {
                d == Some(Direction::ServerToClient)
            }),
            active: 0,
            in_world: 0,
            pool_available: 0,
            gauges_dirty: false,
            processing: metrics.packet_processing.local(),
            metrics: Arc::clone(metrics),
        })
    }

    /// Counts a connection refused at admission.
    #[inline]
    pub fn reject(&mut self, reason_index: usize) {
        self.state.rejected.bump(reason_index);
    }

    /// Counts an admitted connection being closed.
    #[inline]
    pub fn close(&mut self, reason_index: usize) {
        self.state.closed.bump(reason_index);
    }

    /// Counts a protocol error.
    #[inline]
    pub fn protocol_error(&mut self, reason_index: usize) {
        self.state.protocol_errors.bump(reason_index);
    }

    /// Counts a connection whose dialect became known.
    #[inline]
    pub fn dialect(&mut self, d: DialectId) {
        if let Some(i) = DialectId::ALL.iter().position(|&x| x == d) {
            self.state.dialects.bump(i);
        }
    }

    /// Counts a chat message dropped by the chat budget.
    #[inline]
    pub fn chat_refused(&mut self, reason_index: usize) {
        self.state.chat_refused.bump(reason_index);
    }

    /// Counts a decoded client packet; `None` for an id the dialect does not know.
    #[inline]
    pub fn received(&mut self, t: Option<PacketType>) {
        let slot = t.map_or(PacketType::ALL.len(), PacketType::index);
        self.state.packets_received.bump(slot);
    }

    /// Counts a packet queued to a client.
    #[inline]
    pub fn sent(&mut self, t: PacketType) {
        self.state.packets_sent.bump(t.index());
    }

    /// Counts `n` sent packets of type `t` (a run's packet, once per
    /// target).
    #[inline]
    pub fn sent_n(&mut self, t: PacketType, n: u64) {
        self.state.packets_sent.bump_by(t.index(), n);
    }

    /// Records the time of one connection's service pass, in nanoseconds.
    #[inline]
    pub fn observe_processing(&mut self, nanos: u64) {
        // u64 → f64 loses precision only above 2^53 ns (104 days).
        self.state.processing.observe(nanos as f64 * 1e-9);
    }

    /// Sets the number of open client connections.
    #[inline]
    pub fn set_active(&mut self, n: usize) {
        if self.state.active != n {
            self.state.active = n;
            self.state.gauges_dirty = true;
        }
    }

    /// Sets the number of connections in the world phase.
    #[inline]
    pub fn set_in_world(&mut self, n: usize) {
        if self.state.in_world != n {
            self.state.in_world = n;
            self.state.gauges_dirty = true;
        }
    }

    /// Sets the number of pooled buffers not lent out.
    #[inline]
    pub fn set_pool_available(&mut self, n: usize) {
        if self.state.pool_available != n {
            self.state.pool_available = n;
            self.state.gauges_dirty = true;
        }
    }

    /// Adds the accumulated deltas to the shared collectors and resets them.
    ///
    /// With nothing counted it reads the pending slots (a few hundred
    /// integers) and touches no shared state.
    pub fn publish(&mut self) {
        self.publish_counts();
        let s = &mut self.state;
        s.rejected.publish();
        s.closed.publish();
        s.protocol_errors.publish();
        s.dialects.publish();
        s.chat_refused.publish();
        s.packets_received.publish();
        s.packets_sent.publish();
        // No-op when nothing was observed.
        s.processing.flush();
        if s.gauges_dirty {
            s.metrics.connections_active.set(gauge_value(s.active));
            s.metrics.players_in_world.set(gauge_value(s.in_world));
            s.metrics
                .buffer_pool_available
                .set(gauge_value(s.pool_available));
            s.gauges_dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{counters, family, value};
    use super::super::NAMESPACE;
    use super::*;

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
        c.set_in_world(2);
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
        check("players_in_world", &[], 2.0);
        check("buffer_pool_available", &[], 10.0);
        assert_eq!(m.packet_processing.get_sample_count(), 2);
        assert!((m.packet_processing.get_sample_sum() - 0.0030015).abs() < 1e-9);

        // Deltas were reset: a second publish changes nothing.
        assert_eq!(c.accepted, 0);
        assert!(c.state.packets_received.pending.iter().all(|&n| n == 0));
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
}
