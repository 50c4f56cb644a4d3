//! Whether a run measured anything. A scenario that completed no operation,
//! measured for no time, or lost every connection has no figures worth
//! reading: `loadgen` then exits non-zero with the reason on stderr instead
//! of printing a table of zeros as a result (and does not merge it into a
//! results file).
//!
//! One table, [`RULES`]: per scenario, what must be above zero.

use crate::results::RunResult;

/// Something a run must have measured.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A figure above zero.
    Figure(&'static str),
    /// A latency distribution with at least one sample.
    Samples(&'static str),
}

/// What one scenario must have measured, and what it means when it did not.
#[derive(Copy, Clone, Debug)]
pub struct Rule {
    /// Scenario name ([`RunResult::scenario`]).
    pub scenario: &'static str,
    /// Each need with the reason given when it is not met.
    pub needs: &'static [(Need, &'static str)],
}

const ECHO: &[(Need, &str)] = &[
    (
        Need::Figure("connections_open_at_end"),
        "every connection failed",
    ),
    (Need::Figure("measured_s"), "measured for 0 s"),
    (Need::Samples("rtt"), "no reply was measured"),
];

/// The rules, one per scenario (soak has its own verdict, flat or not).
pub const RULES: &[Rule] = &[
    Rule {
        scenario: "echo",
        needs: ECHO,
    },
    Rule {
        scenario: "redis",
        needs: ECHO,
    },
    Rule {
        scenario: "login",
        needs: &[(
            Need::Figure("completed"),
            "no login flow completed (every one failed)",
        )],
    },
    Rule {
        scenario: "idle",
        needs: &[
            (Need::Figure("connections_held"), "every connection failed"),
            (Need::Figure("answered"), "no connection was answered"),
        ],
    },
    Rule {
        scenario: "fanout",
        needs: &[
            (
                Need::Figure("bots_on_map_at_end"),
                "every bot lost its connection",
            ),
            (Need::Figure("messages_sent"), "no chat line was sent"),
            (
                Need::Figure("deliveries_received"),
                "no chat line was delivered",
            ),
            (
                Need::Figure("deliveries_per_sec"),
                "not even the first step was sustained",
            ),
        ],
    },
    Rule {
        scenario: "walk",
        needs: &[
            (
                Need::Figure("bots_on_map_at_end"),
                "every bot lost its connection",
            ),
            (
                Need::Figure("one_cell_moves_sent"),
                "no move was sent in one cell",
            ),
            (
                Need::Figure("one_cell_deliveries"),
                "no move was delivered in one cell",
            ),
            (
                Need::Figure("walking_moves_sent"),
                "no move was sent walking",
            ),
            (
                Need::Figure("walking_deliveries"),
                "no move was delivered walking",
            ),
        ],
    },
    Rule {
        scenario: "pubsub",
        needs: &[
            (
                Need::Figure("subscribers_at_end"),
                "every subscriber lost its connection",
            ),
            (Need::Figure("messages_sent"), "no message was published"),
            (
                Need::Figure("deliveries_per_sec"),
                "not even the first step was sustained",
            ),
        ],
    },
    Rule {
        scenario: "storm",
        needs: &[(Need::Figure("in_world"), "no player reached the world")],
    },
    Rule {
        scenario: "isolation",
        needs: &[
            (
                Need::Figure("echo_samples_unloaded"),
                "no echo reply was measured unloaded",
            ),
            (Need::Samples("loaded"), "no echo reply was measured loaded"),
            (Need::Figure("logins_completed"), "no login completed"),
        ],
    },
];

/// `None` if the gateway's own limits left the run alone; else one line
/// naming the limit counters that grew ([`crate::limits`]): the clients
/// measured a throttle, so the run fails instead of printing a ratio.
pub fn limits_hit(r: &RunResult) -> Option<String> {
    let hit: Vec<String> = r
        .failures
        .iter()
        .filter(|(k, _)| k.starts_with(crate::limits::PREFIX))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!hit.is_empty()).then(|| {
        format!(
            "the gateway's own limits closed or refused clients: {} \
             (configure the gateway for the benchmark)",
            hit.join(" ")
        )
    })
}

fn met(r: &RunResult, need: Need) -> bool {
    match need {
        Need::Figure(k) => r.get(k).is_some_and(|v| v > 0.0),
        Need::Samples(k) => r.latency.get(k).is_some_and(|l| l.count > 0),
    }
}

/// `None` if the run measured what its scenario must; else one line saying
/// what is missing, with the failures seen.
pub fn nothing_measured(r: &RunResult) -> Option<String> {
    let rule = RULES.iter().find(|rule| rule.scenario == r.scenario)?;
    let missing: Vec<&str> = rule
        .needs
        .iter()
        .filter(|(need, _)| !met(r, *need))
        .map(|(_, why)| *why)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let failures = if r.failures.is_empty() {
        "none".to_string()
    } else {
        r.failures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "measured nothing: {} (failures: {failures})",
        missing.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Latency;

    fn echo(open: f64, measured: f64, samples: u64) -> RunResult {
        let mut r = RunResult::new("echo-p1-gateway", "echo", "packet-service");
        r.figure("connections_open_at_end", open);
        r.figure("measured_s", measured);
        let mut l = Latency::new();
        for _ in 0..samples {
            l.record(std::time::Duration::from_micros(50));
        }
        r.latency.insert("rtt".into(), l.summary());
        r
    }

    #[test]
    fn a_run_that_measured_is_fine() {
        assert_eq!(nothing_measured(&echo(4.0, 1.0, 10)), None);
    }

    #[test]
    fn every_reason_is_given() {
        let mut r = echo(0.0, 0.0, 0);
        r.failures.insert("rate_limited".into(), 4);
        assert_eq!(
            nothing_measured(&r).as_deref(),
            Some(
                "measured nothing: every connection failed; measured for 0 s; \
                 no reply was measured (failures: rate_limited=4)"
            )
        );
        let mut login = RunResult::new("login", "login", "packet-service");
        login.figure("completed", 0.0);
        assert!(nothing_measured(&login).is_some());
    }

    #[test]
    fn a_run_the_gateway_throttled_fails() {
        let mut r = echo(4.0, 1.0, 10);
        r.failures.insert("closed_peer_closed_at_login".into(), 1);
        assert_eq!(limits_hit(&r), None);
        r.failures.insert("gateway_closed_per_ip_limit".into(), 3);
        let why = limits_hit(&r).expect("judged");
        assert!(why.contains("gateway_closed_per_ip_limit=3"), "{why}");
    }

    #[test]
    fn every_scenario_has_one_rule() {
        for s in [
            "echo",
            "redis",
            "login",
            "idle",
            "fanout",
            "isolation",
            "walk",
            "storm",
            "pubsub",
        ] {
            assert_eq!(RULES.iter().filter(|r| r.scenario == s).count(), 1, "{s}");
        }
    }
}
