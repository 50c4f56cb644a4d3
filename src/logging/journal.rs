//! Whether stderr is the systemd journal, and the syslog priority a line
//! is prefixed with there (sd-daemon(3): `<4>` for a warning), so that the
//! journal records each line's level and `journalctl -p` selects by it.
//!
//! systemd sets `JOURNAL_STREAM=DEV:INODE` to the stream it connected to
//! stdout and stderr; the variable is inherited by children whose stderr
//! may be something else, so only a stderr with that device and inode is
//! the journal.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::Level;

/// Whether `stderr` is the stream `JOURNAL_STREAM` names.
pub(super) fn is_journal(stderr: &impl AsFd) -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = stderr.as_fd().try_clone_to_owned() else {
        return false;
    };
    match File::from(fd).metadata() {
        Ok(meta) => names(stream.to_str(), meta.dev(), meta.ino()),
        Err(_) => false,
    }
}

/// Whether a `JOURNAL_STREAM` value is `dev:ino` (decimal).
pub(super) fn names(value: Option<&str>, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.and_then(|v| v.split_once(':')) else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// The syslog priority of a level: err 3, warning 4, info 6, debug 7.
pub(super) fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}
