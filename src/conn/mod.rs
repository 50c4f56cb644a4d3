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
    /// Queued on the reactor's list of connections waiting for a buffer.
    pub in_pool_wait: bool,
    /// Set once the connection is to be reaped.
    pub closing: Option<CloseReason>,
    /// The deadline this connection has in the timer heap, if any.
    pub timer_at: Option<Instant>,
    /// A PROXY protocol header must come first (`--proxy-protocol`).
    pub awaiting_proxy: bool,
    /// The address this connection counts against in the per-IP table, once
    /// known (at accept, or after the PROXY header).
    pub counted_ip: Option<std::net::IpAddr>,
}

impl<S> Conn<S> {
    /// A freshly accepted connection.
    pub fn new(socket: S, conn_ref: ConnRef, session: Session) -> Conn<S> {
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
            in_pool_wait: false,
            closing: None,
            timer_at: None,
            awaiting_proxy: false,
            counted_ip: None,
        }
    }
}

/// Log prefix of a connection: id, peer, dialect (`-` until the first
/// packet chose it) and phase (style rule 10).
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
        let session = Session::new(([127, 0, 0, 1], 1).into(), std::time::Instant::now(), 1);
        let conn_ref = crate::ids::ConnRef {
            index: 0,
            generation: 1,
        };
        let conn = Conn::new((), conn_ref, session);
        assert!(conn.input.is_none() && conn.output.is_empty());
    }
}
