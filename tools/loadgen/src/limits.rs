//! Whether the gateway's own limits touched a run: the counters of its
//! /metrics that count a connection closed or refused, a login throttled,
//! a chat line or a world message dropped, read before and after the run.
//! Any increase is recorded as a failure `gateway_<counter>_<reason>` and
//! fails the run ([`crate::verdict`]): a benchmark whose clients the
//! gateway throttled measured the throttle, not the gateway.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use packet_service::conn::reason::CloseReason;

use crate::soak::{metric, metric_by_label, scrape};

/// Prefix of the gateway's metric names.
const NS: &str = "packet_service_";

/// Prefix of the failure keys this module adds.
pub const PREFIX: &str = "gateway_";

/// Close reasons that are the gateway's limits (not the peer's doing nor
/// the end of a session).
const LIMIT_CLOSES: &[CloseReason] = &[
    CloseReason::WrongStateBudget,
    CloseReason::HandshakeTimeout,
    CloseReason::IdleTimeout,
    CloseReason::RateLimited,
    CloseReason::OutputLimit,
    CloseReason::PoolExhausted,
    CloseReason::PerIpLimit,
    CloseReason::FrameTimeout,
    CloseReason::PoolPressure,
    CloseReason::BackendUnavailable,
];

/// Labelled counters every series of which is a limit at work.
const LABELLED: &[(&str, &str, &str)] = &[
    ("connections_rejected_total", "reason", "rejected"),
    ("auth_refused_total", "reason", "auth_refused"),
    ("chat_refused_total", "reason", "chat_refused"),
];

/// The failure key of the embedded world's queue drops: recorded as a
/// figure, not a failure, because a fan-out stepped past saturation must
/// overflow some queue, and its steps already count the lost deliveries.
pub const WORLD_DROPPED: &str = "gateway_world_dropped";

/// Unlabelled counters that are a limit at work.
const PLAIN: &[(&str, &str)] = &[
    ("world_messages_dropped_total", "world_dropped"),
    ("rpc_queue_rejected_total", "rpc_queue_rejected"),
];

/// The limit counters of one scrape, by failure key.
pub fn counters(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (label, v) in metric_by_label(text, &format!("{NS}connections_closed_total"), "reason") {
        if LIMIT_CLOSES.iter().any(|r| r.as_str() == label) {
            out.insert(format!("{PREFIX}closed_{label}"), v);
        }
    }
    for &(name, label, key) in LABELLED {
        for (l, v) in metric_by_label(text, &format!("{NS}{name}"), label) {
            out.insert(format!("{PREFIX}{key}_{l}"), v);
        }
    }
    for &(name, key) in PLAIN {
        if let Some(v) = metric(text, &format!("{NS}{name}")) {
            out.insert(format!("{PREFIX}{key}"), v);
        }
    }
    out
}

/// What grew between two sets of counters (a counter missing before
/// counts from zero).
pub fn grown(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Vec<(String, u64)> {
    after
        .iter()
        .filter_map(|(k, &a)| {
            let d = a - before.get(k).copied().unwrap_or(0.0);
            (d >= 1.0).then(|| (k.clone(), d as u64))
        })
        .collect()
}

/// The limit counters of the gateway at `addr`; `Err` if /metrics cannot
/// be read (a run asked to be judged must be judged).
pub fn read(addr: SocketAddr) -> Result<BTreeMap<String, f64>, String> {
    scrape(addr)
        .map(|t| counters(&t))
        .ok_or_else(|| format!("cannot read the gateway's metrics at {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
packet_service_connections_closed_total{reason=\"peer_closed\"} 10
packet_service_connections_closed_total{reason=\"per_ip_limit\"} 0
packet_service_auth_refused_total{reason=\"autocreate_limit\"} 2
packet_service_world_messages_dropped_total 0
";
    const AFTER: &str = "\
packet_service_connections_closed_total{reason=\"peer_closed\"} 900
packet_service_connections_closed_total{reason=\"per_ip_limit\"} 3
packet_service_auth_refused_total{reason=\"autocreate_limit\"} 2
packet_service_chat_refused_total{reason=\"rate\"} 5
packet_service_world_messages_dropped_total 7
packet_service_rpc_queue_rejected_total 0
";

    #[test]
    fn only_limits_that_grew_are_failures() {
        let g = grown(&counters(BEFORE), &counters(AFTER));
        assert_eq!(
            g,
            vec![
                ("gateway_chat_refused_rate".to_string(), 5),
                ("gateway_closed_per_ip_limit".to_string(), 3),
                ("gateway_world_dropped".to_string(), 7),
            ]
        );
    }
}
