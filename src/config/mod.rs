//! Every setting of the service, read from the command line and the
//! environment.
//!
//! Each setting is declared once, as one row of the table in `table.rs`:
//! the [`Config`] field it fills, its long flag, its environment variable,
//! its default, the rule that validates it (a range or a list of names), its
//! help line and how the start-up summary and `Debug` show it. The struct,
//! parsing, the error lines, `--help`, [`Config::summary`], `Debug` and the
//! list [`SETTINGS`] (which the README test reads) are all derived from that
//! row, so they cannot drift apart.
//!
//! Precedence is **flag > config file > environment > default** (the
//! file is optional, see `file.rs`). An environment variable set
//! to the empty string counts as unset (the way `EnvironmentFile=` lines such
//! as `AUTH_URL=` are usually meant). Booleans in the environment are
//! `1/true/yes/on` or `0/false/no/off` (any case); anything else is an error,
//! never "present means true". A bad value fails start-up with one line naming
//! the flag, the variable, the value and what is accepted:
//!
//! ```text
//! invalid --codec / PACKET_CODEC "xyz": expected rose or plain
//! ```
//!
//! Account passwords and the password of a database URL are the only
//! secrets here; they are masked in `Debug`, in [`Config::summary`] and in
//! error messages.
//!
//! | file | its job |
//! |---|---|
//! | `mod.rs` | [`Command`], [`ConfigError`], test defaults |
//! | `declare.rs` | what a row is ([`Setting`], [`Form`]) and what it expands to |
//! | `table.rs` | the rows |
//! | `rules.rs` | the kinds of value: checking, `--help` and error wording |
//! | `file.rs` | the optional `--config-file`, re-read on SIGHUP |
//! | `parse.rs` | the sources and their precedence, `--help`/`--version` |
//! | `commands.rs` | the `backend`, `accounts` and `admin` subcommands |
//! | `text.rs` | `--help`, the summary line, masked `Debug` |
//! | `parts.rs` | the reactor's and the embedded backend's settings, the endpoints |
//! | `advice.rs` | valid but doubtful combinations, warned about at start |
//! | `reload.rs` | what a reload (SIGHUP) changed, and its log lines |

mod advice;
mod commands;
mod declare;
mod file;
mod parse;
mod parts;
mod reload;
mod rules;
mod table;
#[cfg(test)]
mod tests;
mod text;

use std::net::{IpAddr, Ipv4Addr};

pub use commands::{AccountAction, AccountsCommand, AdminAction, AdminCommand};
pub use declare::{Form, Reload, Setting};
pub use reload::{Change, Reloaded};
pub use table::{Config, SETTINGS};

/// What the command line asks the process to do.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved straight into main; boxing buys nothing"
)]
pub enum Command {
    /// Run the gateway with this configuration.
    Run(Config),
    /// `packet-service backend`: run the embedded backend alone.
    Backend(Config),
    /// `packet-service accounts …`: an operator command on the database.
    Accounts(AccountsCommand),
    /// `packet-service admin …`: a call of a running backend's admin service.
    Admin(AdminCommand),
    /// Print this help text to stdout and exit 0.
    Help(String),
    /// Print this version line to stdout and exit 0.
    Version(String),
    /// Ask a running gateway's `/healthz` and exit 0 or 1.
    Healthcheck(crate::healthcheck::Probe),
}

/// A configuration that cannot be used. `Display` is the one line to print
/// before exiting with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value (from the flag or the environment) is outside what the setting
    /// accepts.
    #[error("invalid --{flag} / {env} {value:?}: expected {expected}")]
    Invalid {
        /// Long flag name, without the dashes.
        flag: &'static str,
        /// Environment variable name.
        env: &'static str,
        /// The offending value, shortened and with passwords masked.
        value: String,
        /// What the setting accepts.
        expected: String,
    },
    /// A setting without a default was required but not given.
    #[error("missing --{flag} / {env}")]
    Missing {
        /// Long flag name, without the dashes.
        flag: &'static str,
        /// Environment variable name.
        env: &'static str,
    },
    /// The command line itself is malformed (unknown flag, missing argument,
    /// a single-valued flag given twice).
    #[error("{0}; see --help")]
    Usage(String),
    /// A positional argument was given; the service takes none.
    #[error("unexpected argument {0:?}; see --help")]
    UnexpectedArgument(String),
    /// The configuration file cannot be read or has a malformed line.
    #[error("config file {path}: {reason}")]
    File {
        /// The file named by `--config-file` / `CONFIG_FILE`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An argument or a known environment variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(String),
}

impl Config {
    /// Defaults suitable for tests: client listener, metrics endpoint and
    /// admin service on 127.0.0.1 with ephemeral ports, the `memory`
    /// database (a test that wants persistence names its own file),
    /// everything else default.
    pub fn for_tests() -> Config {
        Config {
            listen_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            service_port: 0,
            metrics_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            metrics_port: 0,
            admin_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            database: crate::backend::store::DatabaseUrl::Memory,
            ..Config::defaults()
        }
    }
}
