//! What SIGHUP does in the gateway: reads the configuration again the way
//! start-up does (command line, `--config-file`, environment), checks all
//! of it, and applies the settings marked `live` in the settings table —
//! the log filter at once, the reactor's limits, rates and timeouts through
//! [`ReactorReload`]. A refused configuration is logged in one line and
//! nothing changes; changed `restart` settings are named and left alone.
//! A reload never stops the service.

use log::error;

use crate::config::{Command, Config};
use crate::logging::{self, LogSettings};
use crate::server::ReactorReload;

/// The settings in force, and where a reload delivers them.
pub struct Reloader {
    current: Config,
    reactor: ReactorReload,
    bound_port: u16,
}

/// The log settings' variables: a change to one of them re-installs the
/// filter.
const LOG_VARS: &[&str] = &["LOG_LEVEL", "RUST_LOG"];

impl Reloader {
    /// Starts from the settings the server was built with; `bound_port`
    /// is the client listener's actual port.
    pub fn new(current: Config, reactor: ReactorReload, bound_port: u16) -> Reloader {
        Reloader {
            current,
            reactor,
            bound_port,
        }
    }

    /// Reads the process's configuration again and applies it.
    pub fn reload(&mut self) {
        match Config::from_env_and_args() {
            Ok(Command::Run(new)) => self.apply(&new),
            Ok(_) => error!("reload refused, keeping the current settings: not a gateway command"),
            Err(e) => refused(&e),
        }
    }

    /// Applies the `live` settings of `new`, logging what changed.
    pub fn apply(&mut self, new: &Config) {
        let mut next = self.current.clone();
        let changes = next.reload_from(new);
        if changes.any_applied(LOG_VARS) {
            if let Err(e) = logging::set_filter(&LogSettings::of(&next)) {
                refused(&e);
                return;
            }
        }
        if changes.applied.iter().any(|c| !LOG_VARS.contains(&c.env)) {
            self.reactor.send(next.reactor_config(self.bound_port));
        }
        changes.log();
        self.current = next;
    }
}

/// The one line for a configuration a reload refused.
fn refused(e: &dyn std::fmt::Display) {
    error!("reload refused, keeping the current settings: {e}");
}
