//! What a reload changed: the settings SIGHUP applied (one log line each)
//! and the changed settings it left alone because they need a restart.
//! Which is which is the `reload` column of the settings table.

/// One applied change, as `Debug` shows the values (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The setting's environment variable.
    pub env: &'static str,
    /// The value before.
    pub was: String,
    /// The value now.
    pub now: String,
}

/// The outcome of [`Config::reload_from`](super::Config::reload_from).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Live settings that changed and were taken.
    pub applied: Vec<Change>,
    /// Restart-only settings that changed and were left as they were.
    pub ignored: Vec<&'static str>,
}

impl Reloaded {
    /// Logs one line per applied change and one line naming the ignored
    /// settings; one line when nothing changed.
    pub fn log(&self) {
        for change in &self.applied {
            log::info!("reload: {} {} -> {}", change.env, change.was, change.now);
        }
        if !self.ignored.is_empty() {
            log::warn!(
                "reload: changed settings ignored, they need a restart: {}",
                self.ignored.join(", ")
            );
        }
        if self.applied.is_empty() && self.ignored.is_empty() {
            log::info!("reload: no setting changed");
        }
    }

    /// Whether any live setting changed.
    pub fn any_applied(&self, env: &[&str]) -> bool {
        self.applied.iter().any(|c| env.contains(&c.env))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::Change;

    #[test]
    fn live_changes_are_taken_and_restart_ones_only_named() {
        let mut current = Config::defaults();
        let mut new = Config::defaults();
        new.max_connections_per_ip = 1;
        new.service_port = 1234;
        let changes = current.reload_from(&new);
        assert_eq!(
            changes.applied,
            vec![Change {
                env: "MAX_CONNECTIONS_PER_IP",
                was: "32".to_owned(),
                now: "1".to_owned(),
            }]
        );
        assert_eq!(changes.ignored, vec!["SERVICE_PORT"]);
        assert_eq!(current.max_connections_per_ip, 1);
        assert_eq!(current.service_port, 29000);
    }
}
