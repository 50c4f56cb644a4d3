//! One log line, as text or JSON.
//!
//! Text: `2026-01-02T03:04:05.123456Z [WARN ] packet_service::rpc: message`,
//! then the event's own fields as ` name=value` (tonic, h2 and hyper log
//! with fields; the gateway's `log` records have none) and the spans it
//! happened in as ` span=a{..}:b`.
//!
//! JSON: `{"timestamp":…,"level":"WARN","target":…,"message":…}` plus one
//! member per field (a field named like a member above is written
//! `fields.NAME`) and `spans`. The gateway writes a connection's lines with
//! the prefix `[c12.345 203.0.113.7:50123 irose in-world]` at the start of
//! the message (the reactor formats it; see [`crate::conn::Prefix`]); the
//! JSON line moves it into `conn`, `peer`, `dialect` and `phase` members and
//! drops it from
//! the message. Reading the prefix back, with [`crate::conn::split_prefix`]
//! beside the code that writes it, is one function for every call site,
//! where structured fields would mean changing each of them: the cheapest
//! honest way to get the fields. A message that merely looks like a prefix
//! but does not parse as one stays as it is.
//!
//! In the journal each line starts with its syslog priority (`journal.rs`).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::journal;
use super::LogFormat;
use crate::civil::Civil;

/// Members of the JSON line that an event's field may not take.
const RESERVED: &[&str] = &[
    "timestamp",
    "level",
    "target",
    "message",
    "conn",
    "peer",
    "dialect",
    "phase",
    "spans",
];

/// How each event becomes a line.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// Text or JSON.
    pub format: LogFormat,
    /// Start each line with its syslog priority.
    pub journal: bool,
    /// Colour the level (text on a terminal).
    pub colour: bool,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // `log` records arrive as events of target "log" with the real
        // target in a field; the normalized metadata has it back.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = Record {
            time: utc_now(),
            level: *meta.level(),
            target: meta.target(),
            fields,
            spans: spans(ctx),
        };
        if self.journal {
            write!(w, "<{}>", journal::priority(&record.level))?;
        }
        match self.format {
            LogFormat::Text => record.text(&mut w, self.colour)?,
            LogFormat::Json => record.json(&mut w)?,
        }
        writeln!(w)
    }
}

/// Everything a line says.
struct Record<'a> {
    time: String,
    level: Level,
    target: &'a str,
    fields: Fields,
    spans: Option<String>,
}

impl Record<'_> {
    fn text(&self, w: &mut impl fmt::Write, colour: bool) -> fmt::Result {
        let level = format!("{:<5}", self.level.as_str());
        match colour {
            true => write!(w, "{} [{}{level}\x1b[0m] ", self.time, ansi(&self.level))?,
            false => write!(w, "{} [{level}] ", self.time)?,
        }
        write!(w, "{}: {}", self.target, self.fields.message)?;
        for (name, value) in &self.fields.others {
            write!(w, " {name}={}", value.text())?;
        }
        if let Some(spans) = &self.spans {
            write!(w, " span={spans}")?;
        }
        Ok(())
    }

    fn json(&self, w: &mut impl fmt::Write) -> fmt::Result {
        let message = &self.fields.message;
        let (prefix, message) = match crate::conn::split_prefix(message) {
            Some((prefix, rest)) => (Some(prefix), rest),
            None => (None, message.as_str()),
        };
        write!(
            w,
            "{{\"timestamp\":{},\"level\":{},\"target\":{},\"message\":{}",
            quoted(&self.time),
            quoted(self.level.as_str()),
            quoted(self.target),
            quoted(message)
        )?;
        if let Some(p) = prefix {
            let members = [
                ("conn", p.conn),
                ("peer", Some(p.peer)),
                ("dialect", p.dialect),
                ("phase", p.phase),
            ];
            for (name, value) in members {
                if let Some(value) = value {
                    write!(w, ",\"{name}\":{}", quoted(value))?;
                }
            }
        }
        for (name, value) in &self.fields.others {
            let name = match RESERVED.contains(name) {
                true => format!("fields.{name}"),
                false => (*name).to_owned(),
            };
            write!(w, ",{}:{}", quoted(&name), value.json())?;
        }
        if let Some(spans) = &self.spans {
            write!(w, ",\"spans\":{}", quoted(spans))?;
        }
        w.write_char('}')
    }
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The colour of a level on a terminal.
fn ansi(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

/// The spans an event happened in, outermost first, with their fields:
/// `a{x=1}:b`; `None` outside any span.
fn spans<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let scope = ctx.event_scope()?;
    let mut out = String::new();
    for span in scope.from_root() {
        if !out.is_empty() {
            out.push(':');
        }
        out.push_str(span.name());
        let ext = span.extensions();
        if let Some(fields) = ext.get::<FormattedFields<N>>() {
            if !fields.is_empty() {
                let _ = write!(out, "{{{fields}}}");
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Now, as UTC RFC 3339 with microseconds: `2026-01-02T03:04:05.123456Z`.
fn utc_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_micros())
}

/// Unix seconds and microseconds as UTC RFC 3339.
pub(super) fn rfc3339(secs: u64, micros: u32) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::UInt(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn json(&self) -> String {
        match self {
            Value::Str(s) => quoted(s),
            Value::Int(n) => serde_json::Value::from(*n).to_string(),
            Value::UInt(n) => serde_json::Value::from(*n).to_string(),
            Value::Float(x) => serde_json::Value::from(*x).to_string(),
            Value::Bool(b) => serde_json::Value::from(*b).to_string(),
        }
    }
}

/// The message and the other fields of an event, without the `log.*`
/// fields the `log` bridge adds (target, module, file, line).
#[derive(Debug, Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, Value)>,
}

impl Fields {
    fn add(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => self.message = value.text(),
            name if name.starts_with("log.") => {}
            name => self.others.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field, Value::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, Value::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, Value::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add(field, Value::UInt(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.add(field, Value::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.add(field, Value::Str(value.to_string()));
    }
}
