//! Tests of the lines, the filter and the journal check, each through a
//! subscriber of its own writing into a buffer.

use std::sync::{Arc, Mutex};

use log::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

fn settings(level: LevelFilter, filter: Option<&str>, format: LogFormat) -> LogSettings {
    LogSettings {
        level,
        filter: filter.map(str::to_owned),
        format,
    }
}

/// The lines `emit` logs through a subscriber of `settings` and `line`.
fn logged(settings: &LogSettings, line: Line, emit: impl FnOnce()) -> Vec<String> {
    let buffer = Buffer::default();
    let (subscriber, _) = subscriber(settings, line, buffer.clone()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, emit);
    buffer.lines()
}

const TEXT: Line = Line {
    format: LogFormat::Text,
    journal: false,
    colour: false,
};
const JSON: Line = Line {
    format: LogFormat::Json,
    ..TEXT
};

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn text_lines_keep_time_level_target_and_message() {
    let s = settings(LevelFilter::Info, None, LogFormat::Text);
    let lines = logged(&s, TEXT, || {
        tracing::warn!(target: "packet_service::rpc", "backend auth: Login failed");
        tracing::info!(target: "h2::codec", stream = 3u64, "frame");
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (time, rest) = lines[0].split_once(' ').expect("time");
    assert_eq!(
        rest,
        "[WARN ] packet_service::rpc: backend auth: Login failed"
    );
    // 2026-01-02T03:04:05.123456Z
    assert_eq!(time.len(), 27, "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    assert!(
        lines[1].ends_with("[INFO ] h2::codec: frame stream=3"),
        "{}",
        lines[1]
    );
}

#[test]
fn rfc3339_is_utc_with_microseconds() {
    assert_eq!(line::rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(
        line::rfc3339(1_767_323_045, 123_456),
        "2026-01-02T03:04:05.123456Z"
    );
}

#[test]
fn json_lines_are_objects_with_the_prefix_as_fields() {
    let s = settings(LevelFilter::Debug, None, LogFormat::Json);
    let lines = logged(&s, JSON, || {
        tracing::debug!(
            target: "packet_service::reactor",
            "[c3.17 203.0.113.7:50123 in-world] closed: \"idle\"\ttimeout"
        );
        tracing::info!(target: "packet_service::server", "listening on 127.0.0.1:29000");
        tracing::warn!(target: "tonic::transport", error = "refused", retry = true, message = "x");
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    let closed = json(&lines[0]);
    assert_eq!(closed["level"], "DEBUG");
    assert_eq!(closed["target"], "packet_service::reactor");
    assert_eq!(closed["message"], "closed: \"idle\"\ttimeout");
    assert_eq!(closed["conn"], "c3.17");
    assert_eq!(closed["peer"], "203.0.113.7:50123");
    assert_eq!(closed["phase"], "in-world");
    assert!(closed["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let plain = json(&lines[1]);
    assert_eq!(plain["message"], "listening on 127.0.0.1:29000");
    assert!(plain.get("conn").is_none());

    let library = json(&lines[2]);
    assert_eq!(library["error"], "refused");
    assert_eq!(library["retry"], true);
}

#[test]
fn a_span_is_named_in_both_formats() {
    let s = settings(LevelFilter::Info, None, LogFormat::Json);
    let lines = logged(&s, JSON, || {
        let span = tracing::info_span!("Connection", peer = "Client");
        let _in = span.enter();
        tracing::info!(target: "h2::proto", "closed");
    });
    assert_eq!(json(&lines[0])["spans"], "Connection{peer=\"Client\"}");
}

#[test]
fn the_level_applies_everywhere_and_libraries_stop_at_info() {
    let s = settings(LevelFilter::Debug, None, LogFormat::Text);
    let lines = logged(&s, TEXT, || {
        tracing::debug!(target: "packet_service::reactor", "ours");
        tracing::debug!(target: "h2::codec", "every frame");
        tracing::info!(target: "h2::codec", "a library's info");
        tracing::trace!(target: "packet_service::reactor", "too verbose");
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("ours") && lines[1].ends_with("a library's info"));

    let s = settings(LevelFilter::Warn, None, LogFormat::Text);
    let lines = logged(&s, TEXT, || {
        tracing::info!(target: "h2::codec", "below warn");
        tracing::info!(target: "packet_service::server", "below warn");
    });
    assert!(lines.is_empty(), "the cap never raises a level: {lines:?}");
}

#[test]
fn rust_log_directives_refine_and_override_the_level() {
    let s = settings(
        LevelFilter::Info,
        Some("packet_service::reactor=trace,h2=debug,packet_service::rpc=error"),
        LogFormat::Text,
    );
    let lines = logged(&s, TEXT, || {
        tracing::trace!(target: "packet_service::reactor", "reactor trace");
        tracing::debug!(target: "packet_service::server", "server debug");
        tracing::info!(target: "packet_service::server", "server info");
        tracing::debug!(target: "h2::codec", "h2 debug");
        tracing::warn!(target: "packet_service::rpc", "rpc warn");
    });
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit_once(": ").map_or("", |(_, m)| m))
        .collect();
    assert_eq!(messages, ["reactor trace", "server info", "h2 debug"]);

    // A bare level replaces --log-level, for the libraries too.
    let s = settings(LevelFilter::Info, Some("debug"), LogFormat::Text);
    let lines = logged(&s, TEXT, || {
        tracing::debug!(target: "packet_service::server", "server debug");
        tracing::debug!(target: "h2::codec", "h2 debug");
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    let s = settings(LevelFilter::Debug, Some("warn"), LogFormat::Text);
    assert!(logged(&s, TEXT, || tracing::info!("quiet")).is_empty());
}

#[test]
fn filters_are_checked() {
    assert!(check_filter("info"));
    assert!(check_filter("packet_service::reactor=debug,h2=info"));
    assert!(check_filter(""));
    assert!(!check_filter("packet_service=loud"));
    assert!(!check_filter("a=b=c"));
}

#[test]
fn journal_lines_start_with_their_priority() {
    let s = settings(LevelFilter::Trace, None, LogFormat::Json);
    let line = Line {
        journal: true,
        ..JSON
    };
    let lines = logged(&s, line, || {
        tracing::error!("e");
        tracing::warn!("w");
        tracing::info!("i");
        tracing::debug!("d");
        tracing::trace!("t");
    });
    let priorities: Vec<&str> = lines.iter().map(|l| &l[..3]).collect();
    assert_eq!(priorities, ["<3>", "<4>", "<6>", "<7>", "<7>"]);
    assert_eq!(json(&lines[1][3..])["message"], "w");
}

#[test]
fn journal_stream_must_name_the_device_and_inode() {
    assert!(journal::names(Some("2049:123"), 2049, 123));
    assert!(!journal::names(Some("2049:124"), 2049, 123));
    assert!(!journal::names(Some("2049"), 2049, 123));
    assert!(!journal::names(Some(""), 2049, 123));
    assert!(!journal::names(None, 2049, 123));
}

#[test]
fn second_init_is_refused() {
    // The first call may meet a subscriber another test installed; either
    // way one is in place afterwards and a further call must fail.
    let s = settings(LevelFilter::Warn, None, LogFormat::Text);
    let _ = init(&s);
    assert!(matches!(init(&s), Err(LoggingError::AlreadyInstalled(_))));
    log::warn!(target: "packet_service::logging", "logging test line");
}
