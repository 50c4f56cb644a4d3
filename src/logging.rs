//! Process-wide logging: one line per record on stderr, UTC RFC 3339 time,
//! level and target, no thread names.
//!
//! On a terminal the lines are coloured ([`TermLogger`]); otherwise (systemd,
//! a pipe, a file) they are written plain to stderr, so no escape codes reach
//! the journal and nothing is interleaved with stdout.

use std::io::IsTerminal;

use log::LevelFilter;
use simplelog::{ColorChoice, ConfigBuilder, LevelPadding, TermLogger, TerminalMode, WriteLogger};

/// Logging could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A global logger was already installed in this process.
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(#[from] log::SetLoggerError),
}

/// Installs the global logger at `level`. Call once, before any thread that
/// logs is started.
pub fn init(level: LevelFilter) -> Result<(), LoggingError> {
    let config = ConfigBuilder::new()
        // "At this level and above (more verbose)": Error means every record.
        .set_time_level(LevelFilter::Error)
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Error)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .set_level_padding(LevelPadding::Right)
        .build();
    if std::io::stderr().is_terminal() {
        TermLogger::init(level, config, TerminalMode::Stderr, ColorChoice::Auto)?;
    } else {
        WriteLogger::init(level, config, std::io::stderr())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_is_refused() {
        // The first call may meet a logger another test installed; either way
        // a logger is in place afterwards and a further call must fail.
        let _ = init(LevelFilter::Warn);
        assert!(matches!(
            init(LevelFilter::Warn),
            Err(LoggingError::AlreadyInstalled(_))
        ));
        log::warn!(target: "packet_service::logging", "logging test line");
    }
}
