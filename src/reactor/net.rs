//! The seam between the loop and the operating system: what the reactor
//! needs from its poller, its sockets and its clock.
//!
//! The reactor is generic over [`Net`], so production code is compiled for
//! [`Mio`] alone (every socket operation a direct call, no `dyn`), and the
//! seeded simulation (`tests/simulation.rs`) runs the same reactor over the
//! simulated network and virtual clock of `sim.rs`.
//!
//! What the loop asks for: poll for readiness with a timeout; register a
//! socket once, edge-triggered, for readable and writable (the listener for
//! readable) and deregister it; accept with the peer's address; read, write
//! (vectored) and half-close a connection; the time, as an `Instant` for
//! deadlines and as UTC for SCREEN_SHOT_TIME_REPLY.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};

use crate::conn::state::UtcTime;

/// Readiness of one registered source, as the loop reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The source's token.
    pub token: Token,
    /// Bytes (or the peer's FIN) may be read.
    pub readable: bool,
    /// Output may be written.
    pub writable: bool,
    /// The peer half-closed or the socket failed: read on to EOF or error.
    pub hup: bool,
}

/// A connected client socket (non-blocking).
pub trait Stream: Read + Write {
    /// Half-closes: the peer reads EOF after the bytes already written.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Sends small replies at once (no Nagle delay).
    fn set_nodelay(&self) -> io::Result<()>;
}

/// The listening socket (non-blocking).
pub trait Listener {
    /// Its connections.
    type Stream: Stream;
    /// The next pending connection and its peer, or `WouldBlock`.
    fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)>;
}

/// The events one poll returned.
pub trait EventList {
    /// Room for `n` events per poll.
    fn with_capacity(n: usize) -> Self;
    /// No event came.
    fn is_empty(&self) -> bool;
    /// The events, in the order they came.
    fn readiness(&self) -> impl Iterator<Item = Readiness> + '_;
}

/// The loop's clock.
pub trait Clock {
    /// Now, for deadlines.
    fn now(&self) -> Instant;
    /// Now in UTC (read once per pass).
    fn utc(&self) -> UtcTime;
}

/// The poller and its sockets; a net brings its clock (the simulated
/// network's events happen in its virtual time).
pub trait Net: Clock {
    /// Client connections.
    type Stream: Stream;
    /// The listener.
    type Listener: Listener<Stream = Self::Stream>;
    /// What a poll fills.
    type Events: EventList;
    /// Waits at most `timeout` (forever if `None`) for readiness.
    fn poll(&mut self, events: &mut Self::Events, timeout: Option<Duration>) -> io::Result<()>;
    /// Registers the listener for readable, edge-triggered.
    fn register_listener(&self, listener: &mut Self::Listener, token: Token) -> io::Result<()>;
    /// Stops polling the listener.
    fn deregister_listener(&self, listener: &mut Self::Listener) -> io::Result<()>;
    /// Registers a connection once for readable and writable, edge-triggered.
    fn register(&self, stream: &mut Self::Stream, token: Token) -> io::Result<()>;
    /// Stops polling a connection.
    fn deregister(&self, stream: &mut Self::Stream) -> io::Result<()>;
}

/// The production net: a `mio::Poll`, mio's TCP sockets, the system clock.
pub struct Mio {
    poll: Poll,
}

impl Mio {
    /// Wraps the poll the bridge's waker was made from.
    pub fn new(poll: Poll) -> Mio {
        Mio { poll }
    }
}

impl Clock for Mio {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn utc(&self) -> UtcTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UtcTime::from_unix(secs)
    }
}

impl Net for Mio {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Events = mio::Events;

    fn poll(&mut self, events: &mut mio::Events, timeout: Option<Duration>) -> io::Result<()> {
        self.poll.poll(events, timeout)
    }

    fn register_listener(&self, listener: &mut TcpListener, token: Token) -> io::Result<()> {
        self.poll
            .registry()
            .register(listener, token, Interest::READABLE)
    }

    fn deregister_listener(&self, listener: &mut TcpListener) -> io::Result<()> {
        self.poll.registry().deregister(listener)
    }

    fn register(&self, stream: &mut TcpStream, token: Token) -> io::Result<()> {
        self.poll
            .registry()
            .register(stream, token, Interest::READABLE | Interest::WRITABLE)
    }

    fn deregister(&self, stream: &mut TcpStream) -> io::Result<()> {
        self.poll.registry().deregister(stream)
    }
}

impl Stream for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        TcpStream::set_nodelay(self, true)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self)
    }
}

impl EventList for mio::Events {
    fn with_capacity(n: usize) -> Self {
        mio::Events::with_capacity(n)
    }

    fn is_empty(&self) -> bool {
        mio::Events::is_empty(self)
    }

    fn readiness(&self) -> impl Iterator<Item = Readiness> + '_ {
        self.iter().map(|e| Readiness {
            token: e.token(),
            readable: e.is_readable(),
            writable: e.is_writable(),
            hup: e.is_read_closed() || e.is_error(),
        })
    }
}
