//! The settings as people read them: `--help`, the version line, the
//! one-line start-up summary and the pieces `Debug` uses, with account
//! passwords always masked.

use std::fmt::{self, Display, Write as _};
use std::time::Duration;

use super::declare::{Form, Setting};
use super::rules::fmt_secs;
use super::{parse, Config};

impl Config {
    /// The `--help` text: every flag with its environment variable, default
    /// and accepted values.
    pub fn usage() -> String {
        let brief = "Usage: packet-service [options]\n       \
                     packet-service healthcheck [--url URL] [--timeout SECS]\n\n\
                     Client-facing gateway for ROSE Online game clients.\n\
                     Each setting is taken from its flag, else from its environment \
                     variable (empty = unset), else from its default.";
        let mut text = parse::options().usage(brief);
        text.push_str(
            "\nBoolean variables take 1, true, yes or on, and 0, false, no or off.\n\
             Backend services without a URL are served by the embedded backend.\n\
             Subcommands: `packet-service backend --help` (the embedded backend alone),\n\
             `packet-service accounts --help` (account commands on the database),\n\
             `packet-service admin --help` (players, kick, announce, ban on a running backend).\n",
        );
        text
    }

    /// The effective settings on one line for the start-up log, passwords
    /// masked. The embedded backend's settings are shown only when it runs.
    pub fn summary(&self) -> String {
        let mut line = Summary {
            config: self,
            embedded: self.needs_embedded_backend(),
            line: String::new(),
        };
        self.summary_parts(&mut line);
        line.line
    }
}

/// The version line.
pub(super) fn version() -> String {
    format!("packet-service {}", env!("CARGO_PKG_VERSION"))
}

/// The `--help` description of one row: help, variable, default, range.
pub(super) fn describe(row: &Setting) -> String {
    let mut desc = format!("{} [env {}", row.help, row.env);
    if let Form::Switch { .. } = row.form {
        // The default belongs to the variable, not to the flag.
        let default = row.default.unwrap_or("false");
        let _ = write!(desc, ", boolean, default {default}]");
        return desc;
    }
    desc.push(']');
    let accepted = row.accepted();
    // Writing to a String cannot fail.
    let _ = match (row.default, accepted.is_empty()) {
        (Some(default), false) => write!(desc, " (default {default}, {accepted})"),
        (Some(default), true) => write!(desc, " (default {default})"),
        (None, false) => write!(desc, " ({accepted})"),
        (None, true) => Ok(()),
    };
    desc
}

/// The start-up summary being written, `key=value` separated by spaces.
pub(super) struct Summary<'c> {
    config: &'c Config,
    /// Whether the embedded backend runs, so its settings matter.
    embedded: bool,
    line: String,
}

impl<'c> Summary<'c> {
    /// Adds `key=` what `show` makes of the configuration.
    pub(super) fn always<T: Display>(&mut self, key: &str, show: impl FnOnce(&'c Config) -> T) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        let _ = write!(self.line, "{key}={}", show(self.config));
    }

    /// Like [`always`](Self::always), only when the embedded backend runs.
    pub(super) fn embedded<T: Display>(&mut self, key: &str, show: impl FnOnce(&'c Config) -> T) {
        if self.embedded {
            self.always(key, show);
        }
    }
}

/// The value, or `unset` when there is none.
pub(super) fn or_unset<T: Display>(value: Option<T>, unset: &str) -> String {
    value.map_or_else(|| unset.to_owned(), |v| v.to_string())
}

/// The number, or `unlimited` for 0.
pub(super) fn unlimited<T: Display + Default + PartialEq>(n: T) -> String {
    if n == T::default() {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

/// Seconds with their unit: `30s`, `0.05s`.
pub(super) fn seconds(d: Duration) -> String {
    format!("{}s", fmt_secs(d))
}

/// Seeds in hex, comma-separated.
pub(super) fn seeds(seeds: &[crate::protocol::codec::Seed]) -> String {
    seeds
        .iter()
        .map(|s| format!("{:#010x}", s.get()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `user:***` for each account.
pub(super) fn masked_accounts(accounts: &[(String, String)]) -> String {
    accounts
        .iter()
        .map(|(user, _)| format!("{user}:***"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Debug` of a field as it is.
pub(super) fn plain<T: fmt::Debug>(value: &T) -> &T {
    value
}

/// `Debug` of accounts without their passwords.
pub(super) fn masked(accounts: &[(String, String)]) -> Masked<'_> {
    Masked(accounts)
}

/// Accounts shown as `[("user", "***"), …]`.
pub(super) struct Masked<'a>(&'a [(String, String)]);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(user, _)| (user, "***")))
            .finish()
    }
}
