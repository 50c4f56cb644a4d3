//! Tests of the registry and its text output, and the helpers the tests
//! of the other metrics files share.

use std::sync::Arc;

use prometheus::proto::MetricFamily;

use super::*;

const REJECTED: &[&str] = &["max_connections", "buffer_pool"];
const CLOSED: &[&str] = &["eof", "idle", "checksum"];
const PROTOCOL: &[&str] = &["bad_size", "wrong_state"];
const CHAT: &[&str] = &["rate", "size"];

pub(super) fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of one counter or gauge series, or `None` if it does not exist.
#[track_caller]
pub(super) fn value(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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

/// Reactor counters over small reason tables of their own.
pub(super) fn counters(metrics: &Arc<Metrics>) -> ReactorCounters {
    ReactorCounters::new(metrics, REJECTED, CLOSED, PROTOCOL, CHAT)
}

#[test]
fn text_output_names() {
    let m = Metrics::new().expect("metrics");
    let text = m.encode();
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.contains(&format!(
        "packet_service_build_info{{revision=\"{REVISION}\",version=\"{version}\"}} 1"
    )));
    assert!(!REVISION.is_empty());
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
    let dashboard = include_str!("../../deploy/grafana-dashboard.json");
    let m = Metrics::new().expect("metrics");
    // Families without children are not exported: give each one a child.
    let rpc = RpcMetrics::new(&m, RPC_METHODS);
    rpc.observe("auth", "Login", 0.001, Some("unavailable"));
    rpc.set_endpoints_up("auth", 1);
    m.admin_actions.with_label_values(&["list", "done"]).inc();
    let mut c = counters(&m);
    c.observe_processing(1);
    c.publish();
    m.world_players.with_label_values(&["1"]).set(1);
    m.world_visibility.with_label_values(&["spawn"]).inc();
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

/// The other way round: every series of the `series!` table has a panel
/// on the Grafana dashboard, so a new series is not forgotten there.
#[test]
fn every_series_is_on_the_dashboard() {
    let dashboard = include_str!("../../deploy/grafana-dashboard.json");
    let source = include_str!("mod.rs");
    let table = source
        .split_once("\nseries! {\n")
        .and_then(|(_, rest)| rest.split_once("\n}\n"))
        .map(|(table, _)| table)
        .expect("the series! table");
    let names: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_once(" = \"")?.1.split_once('"'))
        .map(|(name, _)| name)
        .collect();
    assert!(names.len() > 25, "only {} series in the table", names.len());
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    for name in names {
        let full = format!("{NAMESPACE}_{name}");
        let queried = dashboard.match_indices(&full).any(|(at, _)| {
            let rest = &dashboard[at + full.len()..];
            !rest.starts_with(is_name) || rest.starts_with("_bucket") || rest.starts_with("_sum")
        });
        assert!(queried, "no dashboard panel queries {full}");
    }
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
