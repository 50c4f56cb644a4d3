//! `--dump`: a readable listing of every connection and its packets.

use std::io::{self, Write};
use std::time::Duration;

use packet_service::protocol::DialectId;

use crate::compare::hex;
use crate::decode::decode_connection;
use crate::reassembly::{Connection, EventKind, Side};
use crate::wires::ConnWire;

/// Body bytes shown per packet.
pub const BODY_PREVIEW: usize = 16;

/// `YYYY-MM-DD HH:MM:SS.ffffff UTC` for a time since the Unix epoch.
pub fn utc(ts: Duration) -> String {
    let c = packet_service::civil::Civil::from_unix(ts.as_secs());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06} UTC",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ts.subsec_micros()
    )
}

/// Seconds since `start`, signed, with microseconds.
fn offset(ts: Duration, start: Duration) -> String {
    if ts >= start {
        let d = ts - start;
        format!("+{}.{:06}", d.as_secs(), d.subsec_micros())
    } else {
        let d = start - ts;
        format!("-{}.{:06}", d.as_secs(), d.subsec_micros())
    }
}

fn arrow(side: Side) -> &'static str {
    match side {
        Side::Client => "C>S",
        Side::Server => "S>C",
    }
}

/// Writes the listing of `conns`, each decoded as `wires` says (see
/// [`crate::wires::guess`]). A connection whose wire was chosen from its
/// first packet names its dialect and the seed of its tables.
pub fn dump<W: Write>(out: &mut W, conns: &[Connection], wires: &[ConnWire]) -> io::Result<()> {
    for (n, (conn, cw)) in conns.iter().zip(wires).enumerate() {
        let dialect = cw.wire.dialect.dialect();
        writeln!(
            out,
            "connection {}: client {} -> server {}, start {}, client {} bytes, server {} bytes{}{}",
            n + 1,
            conn.client,
            conn.server,
            utc(conn.start),
            conn.bytes(Side::Client),
            conn.bytes(Side::Server),
            if conn.mid_stream {
                " (capture starts mid-stream)"
            } else {
                ""
            },
            tables(cw)
        )?;
        let decoded = decode_connection(conn, cw.wire.codec);
        let mut closes = conn
            .events
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::Data(_)))
            .peekable();
        for p in &decoded.packets {
            while let Some(c) = closes.next_if(|c| c.index < p.index) {
                write_close(out, conn, c.side, &c.kind, c.ts)?;
            }
            let f = &p.frame;
            let name = f.name(dialect, p.side);
            let what = match (&f.plain, f.body()) {
                (Ok(_), Some(body)) => preview(body),
                (Ok(_), None) => String::new(),
                (Err(e), _) => format!("error: {e} ({})", preview(&f.wire)),
            };
            writeln!(
                out,
                "  {:>12}  {}  {:<30} {:>5}  {}",
                offset(p.ts, conn.start),
                arrow(p.side),
                name,
                f.wire.len(),
                what
            )?;
        }
        for c in closes {
            write_close(out, conn, c.side, &c.kind, c.ts)?;
        }
        for (side, n) in [
            (Side::Client, decoded.trailing[0]),
            (Side::Server, decoded.trailing[1]),
        ] {
            if n > 0 {
                writeln!(
                    out,
                    "  {}: {n} bytes of an incomplete packet at the end",
                    arrow(side)
                )?;
            }
        }
        for (side, n) in [
            (Side::Client, conn.missing[0]),
            (Side::Server, conn.missing[1]),
        ] {
            if n > 0 {
                writeln!(
                    out,
                    "  {}: {n} bytes not delivered (hole in the capture)",
                    arrow(side)
                )?;
            }
        }
    }
    Ok(())
}

/// `, irose on the tables of seed 0x12345678` for a connection whose first
/// packet chose its wire; nothing for one fixed dialect.
fn tables(cw: &ConnWire) -> String {
    match (cw.wire.dialect, cw.seed) {
        (DialectId::Irose, Some(seed)) => format!(", irose on the tables of seed {seed:#010x}"),
        (DialectId::Irose, None) => ", irose on the default tables".to_string(),
        _ => String::new(),
    }
}

fn write_close<W: Write>(
    out: &mut W,
    conn: &Connection,
    side: Side,
    kind: &EventKind,
    ts: Duration,
) -> io::Result<()> {
    let what = match kind {
        EventKind::Reset => "reset",
        _ => "closed",
    };
    writeln!(
        out,
        "  {:>12}  {}  ({what})",
        offset(ts, conn.start),
        arrow(side)
    )
}

/// Hex of at most [`BODY_PREVIEW`] bytes, with a count of the rest.
pub fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(BODY_PREVIEW)];
    let more = bytes.len() - shown.len();
    if more > 0 {
        format!("{} …(+{more})", hex(shown))
    } else {
        hex(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(Duration::ZERO), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(
            utc(Duration::new(1_700_000_000, 123_456_000)),
            "2023-11-14 22:13:20.123456 UTC"
        );
        assert_eq!(
            utc(Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00.000000 UTC"
        );
    }

    #[test]
    fn preview_is_bounded() {
        assert_eq!(preview(&[1, 2]), "01 02");
        let long = [0xABu8; 40];
        assert!(preview(&long).ends_with("…(+24)"));
    }
}
