//! What SIGHUP does in the gateway: reads the configuration again the way
//! start-up does (command line, `--config-file`, environment), checks all
//! of it, and applies the settings marked `live` in the settings table —
//! the log filter at once, the reactor's limits, rates and timeouts through
//! [`ReactorReload`] — and asks the embedded backend, if one runs, to read
//! the accounts file again ([`AccountsReload`]). A refused configuration is
//! logged in one line and nothing changes; changed `restart` settings are
//! named and left alone. A reload never stops the service. The standalone
//! `packet-service backend` reloads the same way, without a reactor.

use log::error;

use crate::backend::reload::AccountsReload;
use crate::config::{Command, Config};
use crate::logging::{self, LogSettings};
use crate::server::ReactorReload;

/// The settings in force, and where a reload delivers them.
pub struct Reloader {
    current: Config,
    /// The gateway's reactor and its client port; `None` in the standalone
    /// backend.
    reactor: Option<(ReactorReload, u16)>,
    accounts: Option<AccountsReload>,
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
            reactor: Some((reactor, bound_port)),
            accounts: None,
        }
    }

    /// The standalone backend's: settings it was started with, and its
    /// accounts.
    pub fn backend(current: Config, accounts: AccountsReload) -> Reloader {
        Reloader {
            current,
            reactor: None,
            accounts: Some(accounts),
        }
    }

    /// Also asks `accounts` (the embedded backend's, if it runs) to read
    /// the accounts file again on every reload.
    pub fn with_accounts(mut self, accounts: Option<AccountsReload>) -> Reloader {
        self.accounts = accounts;
        self
    }

    /// Reads the process's configuration again and applies it.
    pub fn reload(&mut self) {
        match Config::from_env_and_args() {
            Ok(Command::Run(new)) if self.reactor.is_some() => self.apply(&new),
            Ok(Command::Backend(new)) if self.reactor.is_none() => self.apply(&new),
            Ok(_) => error!("reload refused, keeping the current settings: not the same command"),
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
        if let Some((reactor, port)) = &self.reactor {
            if changes.applied.iter().any(|c| !LOG_VARS.contains(&c.env)) {
                reactor.send(next.reactor_config(*port));
            }
        }
        changes.log();
        // The file may have changed even when its name did not.
        if let Some(accounts) = &self.accounts {
            accounts.request(next.accounts_file.clone());
        }
        self.current = next;
    }
}

/// The one line for a configuration a reload refused.
fn refused(e: &dyn std::fmt::Display) {
    error!("reload refused, keeping the current settings: {e}");
}
