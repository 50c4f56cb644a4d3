//! The client side event loop: one `mio::Poll`, every connection of a
//! scenario, no threads.
//!
//! [`Net`] owns the sockets. Scenarios ask it to [`Net::connect`], queue
//! bytes with [`Net::send`], and call [`Net::poll`], which waits for
//! readiness, reads everything the kernel has (until `WouldBlock`, as mio's
//! edge-triggered contract requires), finishes pending writes and reports
//! what happened as [`NetEvent`]s. The scenario then looks at each
//! connection's input ([`Net::input`], [`Net::consume`]) and calls
//! [`Net::flush`], which makes one direct write attempt per connection with
//! queued output; only a short write waits for a writable event.
//!
//! Sockets are registered once for both directions (edge-triggered), so the
//! steady state costs one `read` and one `write` per connection per pass and
//! no `epoll_ctl`. A closed slot is not reused before the next
//! [`Net::poll`], so an id in a batch of events never names a newer
//! connection than the one the event was about.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Index of a connection in [`Net`]; valid until the connection is closed.
pub type ConnId = usize;

/// A connection's input buffer when it first reads (a storm holds 20,000
/// connections); it doubles while a read would find less than
/// [`READ_ROOM`] free after compaction.
const INPUT_INITIAL: usize = 4 * 1024;

/// Free room a read is given at least (the socket is read straight into
/// the connection's input buffer; unconsumed input is moved to its front
/// only then, not as it is consumed).
const READ_ROOM: usize = 2 * 1024;

/// Why a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The connect failed (refused, reset, no route).
    ConnectFailed,
    /// The peer closed the connection (EOF).
    PeerClosed,
    /// Reading or writing failed (typically a reset).
    Error,
}

impl CloseCause {
    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            CloseCause::ConnectFailed => "connect_failed",
            CloseCause::PeerClosed => "peer_closed",
            CloseCause::Error => "io_error",
        }
    }
}

/// Something that happened to a connection during [`Net::poll`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// The non-blocking connect completed.
    Connected(ConnId),
    /// New input is available in [`Net::input`].
    Input(ConnId),
    /// The connection is gone; its slot is already released. Any input it
    /// had was reported first as [`NetEvent::Input`] in the same batch.
    Closed(ConnId, CloseCause),
}

/// What an event said about a connection.
#[derive(Copy, Clone)]
struct Ready {
    readable: bool,
    writable: bool,
    /// The peer hung up (or the socket has an error).
    hup: bool,
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// The connect completed.
    open: bool,
    /// Received bytes: `input[start..end]` is not consumed yet; the rest
    /// of the (zero-filled) buffer is room for the next read.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes queued for sending; `output[sent..]` is not written yet.
    output: Vec<u8>,
    sent: usize,
    /// Listed in `Net::dirty` (has output waiting for the next flush).
    dirty: bool,
    /// Closed and deregistered; the slot (and its input) is released at the
    /// next poll.
    closed: bool,
    /// The scenario's own tag (a bot index, say).
    tag: usize,
}

impl Conn {
    /// Moves the unconsumed input to the start of the buffer.
    fn compact(&mut self) {
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Makes the free end of the input buffer at least [`READ_ROOM`] long
    /// (compacted, else grown).
    fn make_room(&mut self) {
        if self.input.len() - self.end < READ_ROOM && self.start > 0 {
            self.compact();
        }
        if self.input.len() - self.end < READ_ROOM {
            let grown = (2 * self.input.len()).max(INPUT_INITIAL);
            self.input.resize(grown, 0);
        }
    }
}

/// Counters of the client loop itself.
#[derive(Copy, Clone, Debug, Default)]
pub struct NetCounters {
    /// `read` calls that returned data.
    pub reads: u64,
    /// `write` calls that wrote data.
    pub writes: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Connections opened.
    pub connects: u64,
}

/// All the connections of a scenario, driven by one `mio::Poll`.
pub struct Net {
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    /// Slots reusable now.
    free: Vec<ConnId>,
    /// Slots closed since the last poll (reusable after it).
    freed: Vec<ConnId>,
    /// Connections with queued output, each listed once.
    dirty: Vec<ConnId>,
    open: usize,
    /// Loopback source addresses connections are spread over (0: the
    /// kernel's choice, 127.0.0.1), see [`Net::spread_sources`].
    sources: u8,
    /// Counters since creation.
    pub counters: NetCounters,
}

impl Net {
    /// An empty loop that can hold about `capacity` connections without
    /// reallocating.
    pub fn new(capacity: usize) -> io::Result<Net> {
        Ok(Net {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Vec::with_capacity(capacity),
            free: Vec::new(),
            freed: Vec::new(),
            dirty: Vec::new(),
            open: 0,
            sources: 0,
            counters: NetCounters::default(),
        })
    }

    /// Connections to an IPv4 loopback target come from `n` source
    /// addresses, 127.0.0.1 to 127.0.0.n (at most 250), chosen by the low
    /// half of the tag: the connections of one bot share one. With tens of thousands of
    /// connections from one address, the kernel's search for a free
    /// ephemeral port in `connect` takes most of the load generator's time
    /// (`__inet_hash_connect`); real players come from many addresses.
    /// The port is chosen at connect (`IP_BIND_ADDRESS_NO_PORT`), for the
    /// whole 4-tuple.
    pub fn spread_sources(&mut self, n: u8) {
        self.sources = n.min(250);
    }

    /// Connections currently held (connecting or open).
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Starts a non-blocking connect; [`NetEvent::Connected`] or
    /// [`NetEvent::Closed`] follows. `tag` is returned by [`Net::tag`].
    pub fn connect(&mut self, addr: SocketAddr, tag: usize) -> io::Result<ConnId> {
        let mut stream = match addr {
            SocketAddr::V4(v4) if self.sources > 1 && v4.ip().is_loopback() => {
                // The low half of a tag is the bot's index; the high half
                // its kind.
                let index = tag & 0xFFFF_FFFF;
                let host = 1 + (index % usize::from(self.sources)) as u8;
                connect_from(addr, std::net::Ipv4Addr::new(127, 0, 0, host))?
            }
            _ => TcpStream::connect(addr)?,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(id);
            return Err(e);
        }
        self.conns[id] = Some(Conn {
            stream,
            open: false,
            input: Vec::new(),
            start: 0,
            end: 0,
            output: Vec::new(),
            sent: 0,
            dirty: false,
            closed: false,
            tag,
        });
        self.open += 1;
        self.counters.connects += 1;
        Ok(id)
    }

    /// Whether `id` names a live connection.
    pub fn is_live(&self, id: ConnId) -> bool {
        matches!(self.conns.get(id), Some(Some(c)) if !c.closed)
    }

    /// The tag given at connect (0 for an unknown id; kept for a connection
    /// closed since the last poll).
    pub fn tag(&self, id: ConnId) -> usize {
        self.conn(id).map_or(0, |c| c.tag)
    }

    /// Changes the tag of a connection.
    pub fn set_tag(&mut self, id: ConnId, tag: usize) {
        if let Some(c) = self.conn_mut(id) {
            c.tag = tag;
        }
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id).and_then(Option::as_ref)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id).and_then(Option::as_mut)
    }

    /// The unconsumed input of a connection (empty for an unknown id; kept
    /// for a connection closed since the last poll).
    pub fn input(&self, id: ConnId) -> &[u8] {
        self.conn(id).map_or(&[][..], |c| &c.input[c.start..c.end])
    }

    /// [`Net::input`], to be decoded in place.
    pub fn input_mut(&mut self, id: ConnId) -> &mut [u8] {
        self.conn_mut(id)
            .map_or(&mut [][..], |c| &mut c.input[c.start..c.end])
    }

    /// Marks `n` bytes of input as consumed.
    pub fn consume(&mut self, id: ConnId, n: usize) {
        if let Some(c) = self.conn_mut(id) {
            c.start = (c.start + n).min(c.end);
            if c.start == c.end {
                c.start = 0;
                c.end = 0;
            }
        }
    }

    /// Queues bytes; they are written by the next [`Net::flush`] (or the
    /// writable event after a short write).
    pub fn send(&mut self, id: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if c.closed {
            return;
        }
        c.output.extend_from_slice(bytes);
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Closes a connection now (queued output is dropped). No event follows.
    /// Input already received stays readable until the next [`Net::poll`].
    pub fn close(&mut self, id: ConnId) {
        if let Some(Some(c)) = self.conns.get_mut(id) {
            if c.closed {
                return;
            }
            c.closed = true;
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.open -= 1;
            self.freed.push(id);
        }
    }

    /// Closes a connection with a reset instead of a FIN (no TIME_WAIT left
    /// behind on the client side; for mass teardown).
    pub fn abort(&mut self, id: ConnId) {
        if let Some(Some(c)) = self.conns.get(id) {
            set_linger_zero(&c.stream);
        }
        self.close(id);
    }

    /// Live connection ids (for teardown).
    pub fn ids(&self) -> Vec<ConnId> {
        (0..self.conns.len()).filter(|&i| self.is_live(i)).collect()
    }

    /// Waits up to `timeout` for readiness, performs the reads and pending
    /// writes, and appends what happened to `out`.
    pub fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<NetEvent>) -> io::Result<()> {
        for id in self.freed.drain(..) {
            self.conns[id] = None; // drops (closes) the socket
            self.free.push(id);
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        // Collect first: handling needs `&mut self`.
        let ready: Vec<(usize, Ready)> = self
            .events
            .iter()
            .map(|e| {
                let hup = e.is_read_closed() || e.is_error();
                let ready = Ready {
                    readable: e.is_readable() || hup,
                    writable: e.is_writable() || e.is_write_closed() || e.is_error(),
                    hup,
                };
                (e.token().0, ready)
            })
            .collect();
        for (id, ready) in ready {
            self.handle_ready(id, ready, out);
        }
        Ok(())
    }

    fn handle_ready(&mut self, id: ConnId, ready: Ready, out: &mut Vec<NetEvent>) {
        let Some(c) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if c.closed {
            return; // closed earlier in this batch
        }
        if !c.open {
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => {
                    self.close(id);
                    out.push(NetEvent::Closed(id, CloseCause::ConnectFailed));
                    return;
                }
            }
            match c.stream.peer_addr() {
                Ok(_) => {
                    c.open = true;
                    let _ = c.stream.set_nodelay(true);
                    out.push(NetEvent::Connected(id));
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => return, // spurious
                Err(_) => {
                    self.close(id);
                    out.push(NetEvent::Closed(id, CloseCause::ConnectFailed));
                    return;
                }
            }
        }
        let mut cause = None;
        if ready.readable {
            cause = self.read_all(id, ready.hup, out);
        }
        if cause.is_none() && ready.writable {
            cause = self.write_pending(id).err();
        }
        if let Some(cause) = cause {
            self.close(id);
            out.push(NetEvent::Closed(id, cause));
        }
    }

    /// Reads until `WouldBlock`; reports input; returns why the connection
    /// ended, if it did.
    fn read_all(&mut self, id: ConnId, hup: bool, out: &mut Vec<NetEvent>) -> Option<CloseCause> {
        let c = self.conns.get_mut(id).and_then(Option::as_mut)?;
        let mut got = false;
        let mut cause = None;
        // Bounded: a peer that streams faster than we read cannot pin us here.
        for _ in 0..64 {
            c.make_room();
            match c.stream.read(&mut c.input[c.end..]) {
                Ok(0) => {
                    cause = Some(CloseCause::PeerClosed);
                    break;
                }
                Ok(n) => {
                    let short = n < c.input.len() - c.end;
                    c.end += n;
                    self.counters.reads += 1;
                    self.counters.bytes_in += n as u64;
                    got = true;
                    if short && !hup {
                        // Short read: the kernel buffer is empty; new data
                        // raises a new edge. (After a hang-up no edge
                        // follows, so read on to the EOF.)
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    cause = Some(CloseCause::Error);
                    break;
                }
            }
        }
        if got {
            out.push(NetEvent::Input(id));
        }
        cause
    }

    /// Writes queued output until done or `WouldBlock`.
    fn write_pending(&mut self, id: ConnId) -> Result<(), CloseCause> {
        let Some(c) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return Ok(());
        };
        if !c.open || c.closed {
            return Ok(()); // flushed on connect, or gone
        }
        while c.sent < c.output.len() {
            match c.stream.write(&c.output[c.sent..]) {
                Ok(0) => return Err(CloseCause::Error),
                Ok(n) => {
                    c.sent += n;
                    self.counters.writes += 1;
                    self.counters.bytes_out += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(CloseCause::Error),
            }
        }
        c.output.clear();
        c.sent = 0;
        Ok(())
    }

    /// One direct write attempt for every connection with queued output.
    /// Connections that fail are closed and reported in `out`.
    pub fn flush(&mut self, out: &mut Vec<NetEvent>) {
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(c) = self.conns.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            c.dirty = false;
            if let Err(cause) = self.write_pending(id) {
                self.close(id);
                out.push(NetEvent::Closed(id, cause));
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty; // keep the allocation
        }
    }

    /// Whether any output is queued and not yet written.
    pub fn has_pending_output(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.sent < c.output.len())
    }
}

/// A non-blocking connect to `addr` from `source`, its port chosen by the
/// connect for the whole 4-tuple (on Linux; elsewhere by the bind).
fn connect_from(addr: SocketAddr, source: std::net::Ipv4Addr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &on,
        )?;
    }
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// `SO_LINGER {on, 0}`: close sends a reset.
fn set_linger_zero(stream: &TcpStream) {
    // A socket that keeps its linger closes with a FIN instead: no harm.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// `setsockopt(fd, level, name, value)` for a plain-data `value` (an
/// option socket2 does not name).
#[cfg(target_os = "linux")]
fn setsockopt<T>(fd: std::os::fd::RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, correctly sized value of the option's
    // type, and the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft open-files limit to the hard limit; returns the soft
/// limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    #[test]
    fn spread_connections_come_from_their_tags_loopback_address() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut net = Net::new(8).expect("poll");
        net.spread_sources(3);
        let tags = [0usize, 1, 2, 3, 4, (1 << 32) | 5];
        for &tag in &tags {
            net.connect(addr, tag).expect("connect");
        }
        // The kernel completes loopback connects into the backlog; a
        // connect that failed would never be accepted: a deadline.
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(10);
        let mut from: Vec<std::net::IpAddr> = Vec::new();
        while from.len() < tags.len() {
            assert!(Instant::now() < until, "accepted only {from:?}");
            match listener.accept() {
                Ok((_, peer)) => from.push(peer.ip()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    net.poll(Some(Duration::from_millis(10)), &mut Vec::new())
                        .expect("poll");
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        from.sort();
        let want: Vec<std::net::IpAddr> = [1, 1, 2, 2, 3, 3]
            .iter()
            .map(|&h| std::net::Ipv4Addr::new(127, 0, 0, h).into())
            .collect();
        assert_eq!(
            from, want,
            "the tag's low half % 3 picks 127.0.0.(1 + that)"
        );
    }

    #[test]
    fn connects_sends_reads_and_sees_the_close() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A one-shot peer: read "ping", answer "pong", close.
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).expect("read");
            s.write_all(b"pong").expect("write");
            buf
        });
        let mut net = Net::new(4).expect("poll");
        let id = net.connect(addr, 7).expect("connect");
        assert_eq!(net.tag(id), 7);
        net.send(id, b"ping");
        let mut events = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        let mut closed = false;
        while !closed {
            assert!(Instant::now() < until, "timed out");
            net.flush(&mut events);
            net.poll(Some(Duration::from_millis(100)), &mut events)
                .expect("poll");
            for ev in events.drain(..) {
                match ev {
                    NetEvent::Input(i) => {
                        got.extend_from_slice(net.input(i));
                        let n = net.input(i).len();
                        net.consume(i, n);
                    }
                    NetEvent::Closed(i, cause) => {
                        assert_eq!((i, cause), (id, CloseCause::PeerClosed));
                        closed = true;
                    }
                    NetEvent::Connected(_) => {}
                }
            }
        }
        assert_eq!(&peer.join().expect("peer"), b"ping");
        assert_eq!(got, b"pong");
        assert!(net.is_empty());
        assert!(!net.is_live(id));
    }

    #[test]
    fn input_consumed_in_pieces_arrives_whole_and_in_order() {
        // More than the buffer holds at first, consumed in odd-sized
        // pieces whose remainders wait for the next read.
        const PIECE: usize = 997;
        let sent: Vec<u8> = (0..PIECE * 263).map(|i| (i % 251) as u8).collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bytes = sent.clone();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(&bytes).expect("write");
        });
        let mut net = Net::new(4).expect("poll");
        let id = net.connect(addr, 1).expect("connect");
        let mut events = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        let mut closed = false;
        while !closed {
            assert!(Instant::now() < until, "timed out with {} bytes", got.len());
            net.poll(Some(Duration::from_millis(100)), &mut events)
                .expect("poll");
            for ev in events.drain(..) {
                match ev {
                    NetEvent::Input(i) => {
                        while net.input(i).len() >= PIECE {
                            got.extend_from_slice(&net.input(i)[..PIECE]);
                            net.consume(i, PIECE);
                        }
                    }
                    NetEvent::Closed(i, _) => closed = i == id,
                    NetEvent::Connected(_) => {}
                }
            }
        }
        peer.join().expect("peer");
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the bytes arrived changed or out of order");
    }
}
