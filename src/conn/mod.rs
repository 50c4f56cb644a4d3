//! One client connection: its socket, its state machine, its buffers
//! (docs/architecture.md §4). See `LIFECYCLE.md` beside this file for the
//! path of a connection from accept to close.

pub mod calls;
#[doc(hidden)]
pub mod check;
pub mod output;
pub mod proxy;
pub mod reason;
pub mod state;
pub mod wire;

use std::time::Instant;

use mio::net::TcpStream;

use crate::buf::Buffer;
use crate::ids::ConnRef;
use output::OutQueue;
use reason::CloseReason;
use state::Session;
use wire::Wire;

/// A connection owned by the reactor, over a socket of type `S` (mio's in
/// production, the simulated network's in the seeded simulation).
pub struct Conn<S = TcpStream> {
    /// The client socket (registered for readable and writable, edge-triggered).
    pub socket: S,
    /// Slot and generation of this connection.
    pub conn_ref: ConnRef,
    /// The sans-IO state machine.
    pub session: Session,
    /// Codec and dialect; `None` until the first packet decides them
    /// (irose and auto, docs/protocol.md §10.6), then fixed.
    pub wire: Option<Wire>,
    /// Received bytes not yet decoded. `None` whenever it would be empty:
    /// an idle connection holds no buffer.
    pub input: Option<Buffer>,
    /// Encoded replies and shared frames waiting to be written.
    pub output: OutQueue,
    /// Readiness seen and not yet drained to `WouldBlock` (events are edges:
    /// the reactor remembers them in user space).
    pub readable: bool,
    /// The peer half-closed (read returned 0); close once input is handled.
    pub eof: bool,
    /// An event reported the peer's FIN or an error: a short read does not
    /// mean drained, read until EOF or the error.
    pub hup: bool,
    /// Queued on the reactor's ready list (to avoid duplicates).
    pub in_ready: bool,
    /// Queued on the reactor's flush list.
    pub in_dirty: bool,
    /// Queued on the reactor's list of world output written at the next
    /// world flush (`WORLD_FLUSH_MS`).
    pub in_deferred: bool,
    /// The last flush left output the socket did not take: the next
    /// writable edge flushes again.
    pub write_blocked: bool,
    /// Queued on the reactor's list of connections waiting for a buffer.
    pub in_pool_wait: bool,
    /// Set once the connection is to be reaped.
    pub closing: Option<CloseReason>,
    /// The deadline this connection has in the timer heap, if any.
    pub timer_at: Option<Instant>,
    /// When the first bytes of the incomplete frame (or PROXY header) at the
    /// front of `input` arrived; `None` while the front frame is whole or
    /// there is no input.
    pub partial_since: Option<Instant>,
    /// When the connection last made progress (a frame decoded, output
    /// written) or began holding a pooled buffer: under pool pressure the
    /// oldest holders are closed first.
    pub progress_at: Instant,
    /// A PROXY protocol header must come first (`--proxy-protocol`).
    pub awaiting_proxy: bool,
    /// The key (address, or IPv6 /64) this connection counts against in the
    /// per-IP table, once known (at accept, or after the PROXY header).
    pub counted_ip: Option<std::net::IpAddr>,
}

impl<S> Conn<S> {
    /// A freshly accepted connection.
    pub fn new(socket: S, conn_ref: ConnRef, session: Session, now: Instant) -> Conn<S> {
        Conn {
            socket,
            conn_ref,
            session,
            wire: None,
            input: None,
            output: OutQueue::default(),
            readable: false,
            eof: false,
            hup: false,
            in_ready: false,
            in_dirty: false,
            in_deferred: false,
            write_blocked: false,
            in_pool_wait: false,
            closing: None,
            timer_at: None,
            partial_since: None,
            progress_at: now,
            awaiting_proxy: false,
            counted_ip: None,
        }
    }

    /// Pooled buffers held, input and output.
    pub fn buffers_held(&self) -> usize {
        usize::from(self.input.is_some()) + self.output.pooled()
    }

    /// About to take a pooled buffer: one that held none starts holding now
    /// (pool pressure closes the longest holders without progress first).
    pub fn holds_from(&mut self, now: Instant) {
        if self.buffers_held() == 0 {
            self.progress_at = now;
        }
    }
}

/// Log prefix of a connection: id, peer, dialect (`-` until the first
/// packet chose it) and phase (docs/architecture.md §13.10).
pub struct Prefix<'a, S = TcpStream>(pub &'a Conn<S>);

impl<S> std::fmt::Display for Prefix<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dialect = self.0.wire.map_or("-", |w| w.dialect.name());
        write!(
            f,
            "[{} {} {} {}]",
            self.0.conn_ref,
            self.0.session.peer(),
            dialect,
            self.0.session.phase().name()
        )
    }
}

/// How many of `conns` are in the world phase (the reactor's census for
/// the `players_in_world` gauge, one read of each phase per publish).
pub fn players_in_world<'a, S: 'a>(conns: impl IntoIterator<Item = (usize, &'a Conn<S>)>) -> usize {
    conns
        .into_iter()
        .filter(|(_, conn)| conn.session.phase().is_in_world())
        .count()
}

/// The parts of a connection's log prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixFields<'a> {
    /// Slot and generation (`c12.345`); `None` in the `[PEER]` form that
    /// lines about a connection not admitted use.
    pub conn: Option<&'a str>,
    /// Client address.
    pub peer: &'a str,
    /// Dialect name (`-` until the first packet chose it); `None` in the
    /// `[PEER]` form.
    pub dialect: Option<&'a str>,
    /// Phase name; `None` in the `[PEER]` form.
    pub phase: Option<&'a str>,
}

/// Splits a log message that starts with a [`Prefix`] (or the `[PEER]`
/// form) and a space into the prefix's parts and the rest; `None` when the
/// message does not start so. The JSON log lines use it to turn the prefix
/// into fields.
pub fn split_prefix(message: &str) -> Option<(PrefixFields<'_>, &str)> {
    let inner = message.strip_prefix('[')?;
    let (inside, rest) = inner.split_once("] ")?;
    let parts: Vec<&str> = inside.split(' ').collect();
    let fields = match parts[..] {
        [conn, peer, dialect, phase]
            if is_conn_ref(conn) && is_dialect(dialect) && is_phase(phase) =>
        {
            PrefixFields {
                conn: Some(conn),
                peer,
                dialect: Some(dialect),
                phase: Some(phase),
            }
        }
        [conn, peer, phase] if is_conn_ref(conn) && is_phase(phase) => PrefixFields {
            conn: Some(conn),
            peer,
            dialect: None,
            phase: Some(phase),
        },
        [peer] => PrefixFields {
            conn: None,
            peer,
            dialect: None,
            phase: None,
        },
        _ => return None,
    };
    fields.peer.parse::<std::net::SocketAddr>().ok()?;
    Some((fields, rest))
}

/// `c<slot>.<generation>`, as [`ConnRef`] displays.
fn is_conn_ref(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    s.strip_prefix('c')
        .and_then(|t| t.split_once('.'))
        .is_some_and(|(slot, generation)| digits(slot) && digits(generation))
}

/// A dialect name (lowercase words and digits joined by `-`), or `-`.
fn is_dialect(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A phase name: lowercase words joined by `-`.
fn is_phase(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection — whatever its codec and dialect, irose's seeded
    /// tables included — costs its slot and nothing on the heap: the key
    /// tables are shared, a connection holds a reference
    /// (docs/protocol.md §10.2).
    #[test]
    fn an_idle_connection_stays_under_a_kibibyte() {
        let size = std::mem::size_of::<Conn<TcpStream>>();
        assert!(size < 1024, "{size} bytes");
        assert_eq!(
            std::mem::size_of::<Option<Wire>>(),
            std::mem::size_of::<Wire>(),
            "a wire is a reference and two tags"
        );
        assert!(std::mem::size_of::<Wire>() <= 24);
        let now = std::time::Instant::now();
        let session = Session::new(([127, 0, 0, 1], 1).into(), now, 1);
        let conn_ref = crate::ids::ConnRef {
            index: 0,
            generation: 1,
        };
        let conn = Conn::new((), conn_ref, session, now);
        assert!(conn.input.is_none() && conn.output.is_empty());
    }

    #[test]
    fn a_prefix_splits_into_its_fields() {
        let (fields, rest) =
            split_prefix("[c12.345 203.0.113.7:50123 in-world] closed: idle_timeout")
                .expect("prefix");
        assert_eq!(
            fields,
            PrefixFields {
                conn: Some("c12.345"),
                peer: "203.0.113.7:50123",
                dialect: None,
                phase: Some("in-world"),
            }
        );
        assert_eq!(rest, "closed: idle_timeout");
        let (fields, rest) = split_prefix("[c0.1 [2001:db8::1]:5000 new] bad frame").expect("v6");
        assert_eq!(fields.peer, "[2001:db8::1]:5000");
        assert_eq!(rest, "bad frame");
        let (fields, rest) =
            split_prefix("[198.51.100.2:4000] rejected: per_ip_limit").expect("peer");
        assert_eq!(
            (fields.conn, fields.peer, fields.phase),
            (None, "198.51.100.2:4000", None)
        );
        assert_eq!(rest, "rejected: per_ip_limit");
    }

    #[test]
    fn what_prefix_writes_split_prefix_reads() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let peer: std::net::SocketAddr = "203.0.113.7:50123".parse().expect("peer");
        let now = Instant::now();
        let conn = Conn::new(
            TcpStream::from_std(client),
            ConnRef {
                index: 12,
                generation: 345,
            },
            Session::new(peer, now, 10),
            now,
        );
        let line = format!("{} closed: eof", Prefix(&conn));
        let (fields, rest) = split_prefix(&line).expect("a prefix");
        assert_eq!(fields.conn, Some(conn.conn_ref.to_string().as_str()));
        assert_eq!(fields.peer, peer.to_string());
        assert_eq!(fields.dialect, Some("-"));
        assert_eq!(fields.phase, Some(conn.session.phase().name()));
        assert_eq!(rest, "closed: eof");
    }

    #[test]
    fn messages_without_a_prefix_stay_whole() {
        for message in [
            "listening on 127.0.0.1:29000",
            "[not a prefix] at all",
            "[c1.2 nowhere in-world] peer is no address",
            "[x1.2 127.0.0.1:1 new] not a connection id",
            "[c1.2 127.0.0.1:1 New] not a phase",
            "[c1.2 127.0.0.1:1 new]no space",
            "[]",
        ] {
            assert_eq!(split_prefix(message), None, "{message}");
        }
    }
}
