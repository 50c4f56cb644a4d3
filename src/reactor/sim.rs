//! A simulated network and virtual clock: the reactor's [`Net`] without a
//! kernel, for the seeded simulation in `tests/simulation.rs`, which runs
//! the production loop over it. Not part of the gateway's API (kept in the
//! library, like `conn::check`, so that it is built and linted with it).
//!
//! One world, shared by the reactor's side ([`SimNet`], [`SimListener`],
//! [`SimStream`]) and the test's side ([`Network`]), holds every simulated
//! connection as two byte queues and the time. It keeps the promises the
//! reactor relies on from epoll in edge-triggered mode: registering reports
//! the current readiness; every arrival of bytes, a FIN or a reset is a new
//! readable edge; the client reading frees room and is a writable edge; a
//! read that leaves bytes behind is followed by another edge. Within those
//! promises it is unkind, from a seeded generator: reads and writes cut
//! short, spurious readiness, reads interrupted by signals, accepts that
//! fail as if descriptors ran out, send windows small enough to block.
//! Closing a socket with unread input resets the connection, destroying
//! what the client had not read yet, as a kernel does. Time moves only when
//! the test moves it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::Token;

use super::net::{Clock, EventList, Listener, Net, Readiness, Stream};
use super::WAKER;
use crate::conn::state::UtcTime;

/// splitmix64: tiny, seedable, good enough to pick actions.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `0..=max` milliseconds.
    pub fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// How unkind the simulated kernel is, in percent of the operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Reads and writes that move fewer bytes than they could.
    pub short_io: u64,
    /// Polls that report readiness for a connection with nothing new.
    pub spurious: u64,
    /// Accepts that fail as if the process ran out of descriptors.
    pub accept_errors: u64,
    /// Reads interrupted by a signal.
    pub interrupts: u64,
}

/// Most bytes a client can have in flight towards the gateway.
const UP_WINDOW: usize = 16 * 1024;
/// Most connections waiting in the listen backlog.
const BACKLOG: usize = 64;
/// Unix time at the simulation's start.
const UNIX_START: u64 = 1_700_000_000;

/// A client connection, as the test names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(usize);

/// What a client sees of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Far {
    /// Not accepted yet.
    Pending,
    /// Open.
    Open,
    /// The gateway closed or half-closed, and everything it sent was read.
    Closed,
    /// Reset (by the client, by a close with unread input, or refused at
    /// shutdown while still in the backlog).
    Reset,
}

/// What the simulated kernel counted (for the summary line).
#[derive(Debug, Clone, Copy, Default)]
pub struct NetStats {
    /// Connections accepted by the gateway.
    pub accepted: u64,
    /// Connections reset by the gateway closing with unread input.
    pub reset_by_gateway: u64,
    /// Bytes the client never read because of such a reset.
    pub bytes_destroyed: u64,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Listener,
    Waker,
    Pipe(usize),
}

#[derive(Default)]
struct Pipe {
    peer: Option<SocketAddr>,
    token: Option<Token>,
    accepted: bool,
    /// Client → gateway bytes not yet read.
    up: VecDeque<u8>,
    /// Gateway → client bytes not yet read.
    down: VecDeque<u8>,
    /// Most bytes `down` holds (the kernel's buffers): a client that does
    /// not read blocks the gateway's writes.
    window: usize,
    client_fin: bool,
    client_reset: bool,
    gateway_fin: bool,
    gateway_closed: bool,
    gateway_reset: bool,
}

struct World {
    rng: Rng,
    faults: Faults,
    start: Instant,
    now: Instant,
    pipes: Vec<Pipe>,
    backlog: VecDeque<usize>,
    listening: bool,
    listener_token: Option<Token>,
    /// Edges since the last poll.
    pending: Vec<(Target, Readiness)>,
    last_timeout: Option<Duration>,
    stats: NetStats,
}

impl World {
    fn edge(&mut self, target: Target, readable: bool, writable: bool, hup: bool) {
        let readiness = Readiness {
            token: Token(usize::MAX),
            readable,
            writable,
            hup,
        };
        self.pending.push((target, readiness));
    }

    fn token(&self, target: Target) -> Option<Token> {
        match target {
            Target::Listener => self.listener_token,
            Target::Waker => Some(WAKER),
            Target::Pipe(id) => self.pipes[id].token,
        }
    }
}

type Shared = Rc<RefCell<World>>;

/// A fresh simulated network for one seed: the reactor's net and listener,
/// and the test's handle on the same world.
pub fn network(seed: u64, faults: Faults) -> (SimNet, SimListener, Network) {
    let start = Instant::now();
    let world = Rc::new(RefCell::new(World {
        rng: Rng(seed ^ 0x5EED_5EED_5EED),
        faults,
        start,
        now: start,
        pipes: Vec::new(),
        backlog: VecDeque::new(),
        listening: true,
        listener_token: None,
        pending: Vec::new(),
        last_timeout: None,
        stats: NetStats::default(),
    }));
    (
        SimNet {
            world: Rc::clone(&world),
        },
        SimListener {
            world: Rc::clone(&world),
        },
        Network { world },
    )
}

/// The reactor's side: poller and clock.
pub struct SimNet {
    world: Shared,
}

/// The events of one simulated poll.
#[derive(Debug, Default)]
pub struct SimEvents {
    list: Vec<Readiness>,
}

impl EventList for SimEvents {
    fn with_capacity(n: usize) -> Self {
        SimEvents {
            list: Vec::with_capacity(n),
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn readiness(&self) -> impl Iterator<Item = Readiness> + '_ {
        self.list.iter().copied()
    }
}

impl Clock for SimNet {
    fn now(&self) -> Instant {
        self.world.borrow().now
    }

    fn utc(&self) -> UtcTime {
        let w = self.world.borrow();
        UtcTime::from_unix(UNIX_START + w.now.duration_since(w.start).as_secs())
    }
}

impl Net for SimNet {
    type Stream = SimStream;
    type Listener = SimListener;
    type Events = SimEvents;

    /// Never blocks: reports the edges since the last poll (merged per
    /// token, as epoll does) and records the timeout asked for.
    fn poll(&mut self, events: &mut SimEvents, timeout: Option<Duration>) -> io::Result<()> {
        let mut guard = self.world.borrow_mut();
        let w = &mut *guard;
        w.last_timeout = timeout;
        events.list.clear();
        let pending = std::mem::take(&mut w.pending);
        for (target, edge) in pending {
            let Some(token) = w.token(target) else {
                continue; // deregistered since
            };
            match events.list.iter_mut().find(|e| e.token == token) {
                Some(e) => {
                    e.readable |= edge.readable;
                    e.writable |= edge.writable;
                    e.hup |= edge.hup;
                }
                None => events.list.push(Readiness { token, ..edge }),
            }
        }
        if w.rng.chance(w.faults.spurious) && !w.pipes.is_empty() {
            let id = w.rng.below(w.pipes.len() as u64) as usize;
            if let Some(token) = w.pipes[id].token {
                events.list.push(Readiness {
                    token,
                    readable: true,
                    writable: true,
                    hup: false,
                });
            }
        }
        Ok(())
    }

    fn register_listener(&self, _listener: &mut SimListener, token: Token) -> io::Result<()> {
        let mut w = self.world.borrow_mut();
        w.listener_token = Some(token);
        if !w.backlog.is_empty() {
            w.edge(Target::Listener, true, false, false);
        }
        Ok(())
    }

    fn deregister_listener(&self, _listener: &mut SimListener) -> io::Result<()> {
        self.world.borrow_mut().listener_token = None;
        Ok(())
    }

    fn register(&self, stream: &mut SimStream, token: Token) -> io::Result<()> {
        let mut w = self.world.borrow_mut();
        let pipe = &mut w.pipes[stream.id];
        pipe.token = Some(token);
        let hup = pipe.client_fin || pipe.client_reset;
        let readable = hup || !pipe.up.is_empty();
        w.edge(Target::Pipe(stream.id), readable, true, hup);
        Ok(())
    }

    fn deregister(&self, stream: &mut SimStream) -> io::Result<()> {
        self.world.borrow_mut().pipes[stream.id].token = None;
        Ok(())
    }
}

/// The reactor's side of the listening socket.
pub struct SimListener {
    world: Shared,
}

impl Listener for SimListener {
    type Stream = SimStream;

    fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        let mut w = self.world.borrow_mut();
        let accept_errors = w.faults.accept_errors;
        if !w.backlog.is_empty() && w.rng.chance(accept_errors) {
            return Err(io::Error::other("simulated: too many open files"));
        }
        let Some(id) = w.backlog.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let pipe = &mut w.pipes[id];
        pipe.accepted = true;
        let peer = pipe
            .peer
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        w.stats.accepted += 1;
        Ok((
            SimStream {
                id,
                world: Rc::clone(&self.world),
            },
            peer,
        ))
    }
}

impl Drop for SimListener {
    /// Closing the listener refuses whatever waits in the backlog.
    fn drop(&mut self) {
        let mut w = self.world.borrow_mut();
        w.listening = false;
        while let Some(id) = w.backlog.pop_front() {
            w.pipes[id].gateway_reset = true;
        }
    }
}

/// The reactor's side of one connection.
pub struct SimStream {
    id: usize,
    world: Shared,
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut guard = self.world.borrow_mut();
        let w = &mut *guard;
        if w.rng.chance(w.faults.interrupts) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let pipe = &mut w.pipes[self.id];
        if pipe.client_reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.up.is_empty() {
            return if pipe.client_fin {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let mut n = buf.len().min(pipe.up.len());
        if n > 1 && w.rng.chance(w.faults.short_io) {
            n = 1 + w.rng.below(n as u64 - 1) as usize;
        }
        for (to, from) in buf.iter_mut().zip(pipe.up.drain(..n)) {
            *to = from;
        }
        // What a short read left behind arrives "later": a new edge.
        let left = !pipe.up.is_empty() && n < buf.len();
        if left {
            w.edge(Target::Pipe(self.id), true, false, false);
        }
        Ok(n)
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut guard = self.world.borrow_mut();
        let w = &mut *guard;
        let pipe = &mut w.pipes[self.id];
        if pipe.client_reset || pipe.gateway_fin {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let room = pipe.window.saturating_sub(pipe.down.len());
        if total > 0 && room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = total.min(room);
        if n > 1 && w.rng.chance(w.faults.short_io) {
            n = 1 + w.rng.below(n as u64 - 1) as usize;
        }
        let mut left = n;
        for b in bufs {
            let take = left.min(b.len());
            pipe.down.extend(&b[..take]);
            left -= take;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for SimStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.world.borrow_mut().pipes[self.id].gateway_fin = true;
        Ok(())
    }

    fn set_nodelay(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let mut guard = self.world.borrow_mut();
        let w = &mut *guard;
        let pipe = &mut w.pipes[self.id];
        pipe.gateway_closed = true;
        pipe.token = None;
        if !pipe.up.is_empty() && !pipe.client_reset {
            // Unread input at close: the kernel answers with a reset, and
            // the client loses what it had not read.
            pipe.gateway_reset = true;
            w.stats.reset_by_gateway += 1;
            w.stats.bytes_destroyed += pipe.down.len() as u64;
            pipe.down.clear();
        }
    }
}

/// The test's side: clients, the clock, the waker.
#[derive(Clone)]
pub struct Network {
    world: Shared,
}

impl Network {
    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.world.borrow().now
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        self.world.borrow_mut().now += by;
    }

    /// The timeout the reactor's last poll asked for.
    pub fn last_timeout(&self) -> Option<Duration> {
        self.world.borrow().last_timeout
    }

    /// Wakes the reactor (after pushing completions), as the mio waker does.
    pub fn wake(&self) {
        self.world
            .borrow_mut()
            .edge(Target::Waker, true, false, false);
    }

    /// A client connects from `peer`; `None` if refused (no listener, or
    /// the backlog is full). The gateway's send window is chosen at random,
    /// often small enough that a client that stops reading blocks it.
    pub fn connect(&self, peer: SocketAddr) -> Option<ClientId> {
        let mut w = self.world.borrow_mut();
        if !w.listening || w.backlog.len() >= BACKLOG {
            return None;
        }
        let window = if w.rng.chance(30) {
            64 + w.rng.below(256) as usize
        } else {
            64 + w.rng.below(8 * 1024) as usize
        };
        let id = w.pipes.len();
        w.pipes.push(Pipe {
            peer: Some(peer),
            window,
            ..Pipe::default()
        });
        w.backlog.push_back(id);
        w.edge(Target::Listener, true, false, false);
        Some(ClientId(id))
    }

    /// The client sends; returns how many bytes its socket took (fewer when
    /// the gateway has not read for a while, none once closed or reset).
    pub fn send(&self, client: ClientId, bytes: &[u8]) -> usize {
        let mut w = self.world.borrow_mut();
        let pipe = &mut w.pipes[client.0];
        if pipe.client_fin || pipe.client_reset || pipe.gateway_closed || pipe.gateway_reset {
            return 0;
        }
        let n = bytes.len().min(UP_WINDOW.saturating_sub(pipe.up.len()));
        pipe.up.extend(&bytes[..n]);
        if n > 0 {
            w.edge(Target::Pipe(client.0), true, false, false);
        }
        n
    }

    /// The client reads at most `max` bytes into `into`; returns how many.
    pub fn recv(&self, client: ClientId, into: &mut Vec<u8>, max: usize) -> usize {
        let mut w = self.world.borrow_mut();
        let pipe = &mut w.pipes[client.0];
        let n = max.min(pipe.down.len());
        into.extend(pipe.down.drain(..n));
        if n > 0 {
            w.edge(Target::Pipe(client.0), false, true, false);
        }
        n
    }

    /// The client half-closes (the gateway reads EOF after its bytes).
    pub fn shutdown(&self, client: ClientId) {
        let mut w = self.world.borrow_mut();
        let pipe = &mut w.pipes[client.0];
        if !pipe.client_fin && !pipe.client_reset {
            pipe.client_fin = true;
            w.edge(Target::Pipe(client.0), true, false, true);
        }
    }

    /// The client resets the connection.
    pub fn reset(&self, client: ClientId) {
        let mut w = self.world.borrow_mut();
        let pipe = &mut w.pipes[client.0];
        if !pipe.client_reset {
            pipe.client_reset = true;
            pipe.up.clear();
            pipe.down.clear();
            w.edge(Target::Pipe(client.0), true, true, true);
        }
    }

    /// What the client sees of its connection.
    pub fn far(&self, client: ClientId) -> Far {
        let w = self.world.borrow();
        let pipe = &w.pipes[client.0];
        if pipe.client_reset || pipe.gateway_reset {
            Far::Reset
        } else if (pipe.gateway_fin || pipe.gateway_closed) && pipe.down.is_empty() {
            Far::Closed
        } else if pipe.accepted {
            Far::Open
        } else {
            Far::Pending
        }
    }

    /// Connections the gateway accepted and has not closed yet.
    pub fn open_sockets(&self) -> usize {
        let w = self.world.borrow();
        w.pipes
            .iter()
            .filter(|p| p.accepted && !p.gateway_closed)
            .count()
    }

    /// Connections waiting in the backlog.
    pub fn backlog(&self) -> usize {
        self.world.borrow().backlog.len()
    }

    /// What the simulated kernel counted.
    pub fn stats(&self) -> NetStats {
        self.world.borrow().stats
    }
}
