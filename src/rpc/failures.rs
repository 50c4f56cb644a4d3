//! Warnings for failing backend calls, at most one line per service every
//! [`WARN_EVERY`], each saying how many failures went unlogged since the
//! previous one: a backend that is down is visible in the log at once
//! without a line per call. Every failure is counted in `rpc_errors_total`
//! all the same.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::conn::calls::RpcError;

/// The shortest time between two warnings about one service.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The last warning and the failures not logged since, per service.
#[derive(Debug, Default)]
pub struct FailureLog {
    services: Mutex<Vec<Service>>,
}

#[derive(Debug)]
struct Service {
    name: &'static str,
    last_warned: Instant,
    unlogged: u64,
}

impl FailureLog {
    /// Notes that `service`.`method` failed with `error` at `now`; returns
    /// the warning to log when one is due for that service.
    pub fn note(
        &self,
        service: &'static str,
        method: &'static str,
        error: RpcError,
        now: Instant,
    ) -> Option<String> {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(s) = services.iter_mut().find(|s| s.name == service) else {
            services.push(Service {
                name: service,
                last_warned: now,
                unlogged: 0,
            });
            return Some(line(service, method, error, 0));
        };
        if now.saturating_duration_since(s.last_warned) < WARN_EVERY {
            s.unlogged += 1;
            return None;
        }
        let unlogged = std::mem::take(&mut s.unlogged);
        s.last_warned = now;
        Some(line(service, method, error, unlogged))
    }
}

/// The warning for one failure, after `unlogged` others.
fn line(service: &str, method: &str, error: RpcError, unlogged: u64) -> String {
    let mut line = format!("backend {service}: {method} failed: {}", error.as_str());
    if unlogged > 0 {
        line.push_str(&format!(
            " ({service} failures not logged since the last warning: {unlogged})"
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_service_per_interval_with_the_unlogged_count() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let down = RpcError::Unavailable;
        assert_eq!(
            log.note("auth", "Login", down, at(0)).as_deref(),
            Some("backend auth: Login failed: unavailable")
        );
        assert_eq!(log.note("auth", "Login", down, at(1)), None);
        assert_eq!(log.note("auth", "Refresh", down, at(9_999)), None);
        // Another service has its own interval.
        assert!(log.note("character", "List", down, at(2)).is_some());
        assert_eq!(
            log.note("auth", "Login", RpcError::DeadlineExceeded, at(10_000))
                .as_deref(),
            Some(
                "backend auth: Login failed: deadline_exceeded \
                 (auth failures not logged since the last warning: 2)"
            )
        );
        // The count starts again after each warning.
        assert_eq!(log.note("auth", "Login", down, at(10_001)), None);
        assert_eq!(
            log.note("auth", "Login", down, at(20_000)).as_deref(),
            Some(
                "backend auth: Login failed: unavailable \
                 (auth failures not logged since the last warning: 1)"
            )
        );
        assert!(log
            .note("auth", "Login", down, at(30_000))
            .is_some_and(|l| !l.contains('(')));
    }
}
