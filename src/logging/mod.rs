//! Process-wide logging: one subscriber (`tracing-subscriber`) for the
//! gateway's own `log` records and the `tracing` events of tonic, h2, hyper
//! and tower, one line per record on stderr.
//!
//! - **Format** (`--log-format`): `text` keeps the classic line — UTC
//!   RFC 3339 time, `[LEVEL]`, target, message — coloured on a terminal;
//!   `json` writes one object per line with `timestamp`, `level`, `target`,
//!   `message`, the event's own fields and, for a line about a connection,
//!   `conn`, `peer` and `phase` taken from its prefix (see `line.rs`).
//! - **Filter**: `--log-level` is the level of every target, with the
//!   libraries (h2, hyper, tower, tonic) capped at `info` so that `debug`
//!   stays readable; `RUST_LOG` directives (`--log-filter`) come after it and
//!   win: `RUST_LOG=packet_service::reactor=trace,h2=debug`. A bare level
//!   in `RUST_LOG` replaces `--log-level` for everything, libraries included.
//! - **Journal**: when stderr is the systemd journal (`JOURNAL_STREAM`),
//!   each line starts with its syslog priority (`<4>` for warn), so that
//!   `journalctl -p warning` selects by level (`journal.rs`).
//!
//! | file | its job |
//! |---|---|
//! | `mod.rs` | the settings, the filter, installing the subscriber |
//! | `line.rs` | the text and JSON lines |
//! | `journal.rs` | telling the journal from other stderr, priorities |

mod journal;
mod line;
#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::sync::OnceLock;

use log::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::Config;
pub use line::Line;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Time, `[LEVEL]`, target, message.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format a `--log-format` name stands for.
    pub fn from_name(name: &str) -> Option<LogFormat> {
        match name {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// The name `--log-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Libraries whose `debug` and `trace` events (every HTTP/2 frame) are left
/// out unless a `RUST_LOG` directive names them or sets a bare level.
const CHATTY: &[&str] = &["h2", "hyper", "hyper_util", "tower", "tonic"];

/// Logging could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A global logger or subscriber was already installed in this process.
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
    /// The filter does not parse (the settings check it first, so only a
    /// caller that skipped them sees this).
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A reload before [`init`], or the subscriber is gone.
    #[error("cannot change the log filter: {0}")]
    Reload(String),
}

/// The installed subscriber's filter, which a reload replaces.
type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// The handle [`init`] keeps for [`set_filter`].
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Replaces the installed subscriber's level and `RUST_LOG` directives with
/// those of `settings` (its format stays: that needs a restart).
pub fn set_filter(settings: &LogSettings) -> Result<(), LoggingError> {
    let filter = settings.env_filter()?;
    let most =
        filter
            .max_level_hint()
            .map_or(LevelFilter::Trace, |level| match level.into_level() {
                None => LevelFilter::Off,
                Some(tracing::Level::ERROR) => LevelFilter::Error,
                Some(tracing::Level::WARN) => LevelFilter::Warn,
                Some(tracing::Level::INFO) => LevelFilter::Info,
                Some(tracing::Level::DEBUG) => LevelFilter::Debug,
                Some(tracing::Level::TRACE) => LevelFilter::Trace,
            });
    let handle = FILTER
        .get()
        .ok_or_else(|| LoggingError::Reload("logging is not installed".to_owned()))?;
    handle
        .reload(filter)
        .map_err(|e| LoggingError::Reload(e.to_string()))?;
    // The `log` bridge drops records above its own maximum before tracing
    // sees them.
    log::set_max_level(most);
    Ok(())
}

/// What logging is set up from.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `--log-level`.
    pub level: LevelFilter,
    /// `RUST_LOG` directives, applied after the level.
    pub filter: Option<String>,
    /// `--log-format`.
    pub format: LogFormat,
}

impl LogSettings {
    /// The logging settings of `config`.
    pub fn of(config: &Config) -> LogSettings {
        LogSettings {
            level: config.log_level,
            filter: config.log_filter.clone(),
            format: config.log_format,
        }
    }

    /// The directives: the level, the library caps, then `RUST_LOG`.
    pub fn directives(&self) -> String {
        let level = self.level.as_str().to_ascii_lowercase();
        let cap = self
            .level
            .min(LevelFilter::Info)
            .as_str()
            .to_ascii_lowercase();
        let mut directives = level;
        let user = self.filter.as_deref().unwrap_or("");
        if !user.split(',').any(is_bare_level) {
            for target in CHATTY {
                directives.push_str(&format!(",{target}={cap}"));
            }
        }
        if !user.trim().is_empty() {
            directives.push(',');
            directives.push_str(user);
        }
        directives
    }

    /// The filter of [`directives`](Self::directives).
    pub fn env_filter(&self) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
        EnvFilter::builder().parse(self.directives())
    }
}

/// Whether one directive is a level alone (`debug`), not a target's.
fn is_bare_level(directive: &str) -> bool {
    let directive = directive.trim();
    // An empty string parses as a level too.
    !directive.is_empty()
        && directive
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_ok()
}

/// Checks `RUST_LOG` directives (the settings' rule).
pub fn check_filter(directives: &str) -> bool {
    EnvFilter::builder().parse(directives).is_ok()
}

/// Installs the global subscriber writing to stderr, and routes `log`
/// records to it. Call once, before any thread that logs is started.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let stderr = std::io::stderr();
    let journal = journal::is_journal(&stderr);
    let colour = !journal
        && settings.format == LogFormat::Text
        && stderr.is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let line = Line {
        format: settings.format,
        journal,
        colour,
    };
    install(settings, line, std::io::stderr)
}

/// Installs the subscriber writing `line`s to `writer` (tests pass a
/// buffer). With the `tracing-log` feature this also installs the `log`
/// bridge, at the filter's most verbose level.
fn install<W>(settings: &LogSettings, line: Line, writer: W) -> Result<(), LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (subscriber, handle) = subscriber(settings, line, writer)?;
    subscriber.try_init()?;
    let _ = FILTER.set(handle);
    Ok(())
}

/// The subscriber of [`init`], without installing it, and the handle
/// that changes its filter.
fn subscriber<W>(
    settings: &LogSettings,
    line: Line,
    writer: W,
) -> Result<(impl tracing::Subscriber + Send + Sync, FilterHandle), LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .event_format(line)
        .with_writer(writer);
    let (filter, handle) = reload::Layer::new(settings.env_filter()?);
    Ok((
        tracing_subscriber::registry().with(filter).with(layer),
        handle,
    ))
}
