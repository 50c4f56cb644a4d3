//! Metrics written by the tokio side: backend call latency and errors, calls
//! in flight, and the world link.

use std::sync::Arc;

use prometheus::{Histogram, IntCounter};

use super::Metrics;
use crate::conn::calls::RpcError;
use crate::conn::reason::{AuthRefusal, LoginVerdict};

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

/// Metrics written by the tokio side: RPC latency, errors, in-flight calls
/// and the world link. Cheap to clone; share one per runtime.
#[derive(Clone)]
pub struct RpcMetrics {
    metrics: Arc<Metrics>,
    methods: Arc<[MethodHandle]>,
    /// One per [`LoginVerdict`], by its index.
    logins: Arc<[IntCounter]>,
    /// One per [`AuthRefusal`], by its index.
    refusals: Arc<[IntCounter]>,
}

struct MethodHandle {
    service: &'static str,
    method: &'static str,
    duration: Histogram,
}

impl RpcMetrics {
    /// Resolves one latency histogram per `(service, method)`, one login
    /// counter per [`LoginVerdict`] and one per [`AuthRefusal`], and creates the `rpc_errors_total`
    /// series of each of their services for every [`RpcError::CALLED`]
    /// code, at 0; pass [`RPC_METHODS`] unless a test wants fewer.
    pub fn new(metrics: &Arc<Metrics>, methods: &[(&'static str, &'static str)]) -> RpcMetrics {
        for (i, &(service, _)) in methods.iter().enumerate() {
            if methods[..i].iter().all(|&(seen, _)| seen != service) {
                for error in RpcError::CALLED {
                    metrics
                        .rpc_errors
                        .with_label_values(&[service, error.as_str()]);
                }
            }
        }
        let methods = methods
            .iter()
            .map(|&(service, method)| MethodHandle {
                service,
                method,
                duration: metrics.rpc_duration.with_label_values(&[service, method]),
            })
            .collect();
        let logins = LoginVerdict::LABELS
            .iter()
            .map(|result| metrics.logins.with_label_values(&[*result]))
            .collect();
        let refusals = AuthRefusal::LABELS
            .iter()
            .map(|reason| metrics.auth_refused.with_label_values(&[*reason]))
            .collect();
        RpcMetrics {
            metrics: Arc::clone(metrics),
            methods,
            logins,
            refusals,
        }
    }

    /// Records one finished call: its latency and, when `code` is `Some`
    /// (the label of the call's [`RpcError`](crate::conn::calls::RpcError)), an
    /// error. A pair not given to [`new`](Self::new) is resolved on the spot.
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

    /// Counts a login that ended so.
    pub fn login(&self, verdict: LoginVerdict) {
        if let Some(counter) = self.logins.get(verdict.index()) {
            counter.inc();
        }
    }

    /// Counts a login or join the auth service refused unchecked.
    pub fn auth_refused(&self, reason: AuthRefusal) {
        if let Some(counter) = self.refusals.get(reason.index()) {
            counter.inc();
        }
    }

    /// One more call in flight (pair with [`inflight_dec`](Self::inflight_dec)).
    pub fn inflight_inc(&self) {
        self.metrics.rpc_inflight.inc();
    }

    /// One call fewer in flight.
    pub fn inflight_dec(&self) {
        self.metrics.rpc_inflight.dec();
    }

    /// Sets `world_link_up`.
    pub fn set_world_link_up(&self, up: bool) {
        self.metrics.world_link_up.set(i64::from(up));
    }

    /// Counts a loss of the world stream (the established link went down).
    pub fn world_link_reconnect(&self) {
        self.metrics.world_link_reconnects.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::value;
    use super::*;
    use crate::conn::calls::RpcError;

    #[test]
    fn rpc_metrics_observe_errors_and_inflight() {
        let m = Metrics::new().expect("metrics");
        let rpc = RpcMetrics::new(&m, RPC_METHODS);
        rpc.observe("auth", "Login", 0.002, None);
        rpc.observe("auth", "Login", 0.004, Some(RpcError::Unavailable.as_str()));
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

        rpc.inflight_inc();
        rpc.inflight_inc();
        assert_eq!(m.rpc_inflight.get(), 2);
        rpc.inflight_dec();
        assert_eq!(m.rpc_inflight.get(), 1);
        rpc.inflight_dec();
        assert_eq!(m.rpc_inflight.get(), 0);

        rpc.set_world_link_up(true);
        rpc.world_link_reconnect();
        assert_eq!(m.world_link_up.get(), 1);
        assert_eq!(m.world_link_reconnects.get(), 1);
        rpc.set_world_link_up(false);
        assert_eq!(m.world_link_up.get(), 0);
    }

    #[test]
    fn every_service_has_every_error_series_from_the_start() {
        let m = Metrics::new().expect("metrics");
        let _rpc = RpcMetrics::new(&m, RPC_METHODS);
        let errors = "packet_service_rpc_errors_total";
        for service in ["auth", "character", "world"] {
            for code in ["unavailable", "deadline_exceeded", "failed"] {
                let labels = [("service", service), ("code", code)];
                assert_eq!(value(&m, errors, &labels), Some(0.0), "{labels:?}");
            }
        }
        assert_eq!(
            value(&m, errors, &[("service", "auth"), ("code", "busy")]),
            None
        );
    }

    #[test]
    fn logins_are_counted_by_verdict_from_zero() {
        let m = Metrics::new().expect("metrics");
        let rpc = RpcMetrics::new(&m, RPC_METHODS);
        let logins = "packet_service_logins_total";
        for result in LoginVerdict::LABELS {
            assert_eq!(value(&m, logins, &[("result", result)]), Some(0.0));
        }
        rpc.login(LoginVerdict::WrongPassword);
        rpc.login(LoginVerdict::WrongPassword);
        rpc.login(LoginVerdict::Ok);
        assert_eq!(
            value(&m, logins, &[("result", "wrong_password")]),
            Some(2.0)
        );
        assert_eq!(value(&m, logins, &[("result", "ok")]), Some(1.0));
        assert_eq!(value(&m, logins, &[("result", "failed")]), Some(0.0));
    }
}
