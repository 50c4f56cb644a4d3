//! The event loop (docs/architecture.md §3): one thread, one `mio::Poll`,
//! every client socket.
//!
//! One pass: poll with a timeout equal to the next timer deadline → accept
//! until `WouldBlock` with admission before allocation → read and decode
//! ready connections (bounded per pass for fairness) → drain RPC
//! completions → flush every connection with queued output (one direct
//! write first; only a short write leaves it to a writable event) → timers
//! → reap closed connections → publish counters.
//!
//! Readiness is edge-triggered: sockets are registered once for readable
//! and writable, and the reactor remembers "readable, not yet drained" in
//! [`Conn::readable`]. A connection that stops reading for backpressure
//! (waiting for a backend, output too large, no buffer) keeps the flag and
//! is put back on the ready list when the reason goes away.

mod timers;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use log::{debug, info, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::buf::BufferPool;
use crate::conn::output::EncodeFailure;
use crate::conn::proxy::ProxyHeader;
use crate::conn::reason::{CloseReason, ProtocolError, RejectReason};
use crate::conn::state::{Action, Ctx, Disposition, Input, Session, UtcTime};
use crate::conn::{Conn, Prefix};
use crate::ids::RequestId;
use crate::ids::{ConnRef, SessionId};
use crate::metrics::{Health, ReactorCounters};
use crate::pb::auth;
use crate::protocol::packet_type::{Dialect, DialectId, Direction, PacketType};
use crate::protocol::{Codec, FrameError, HEADER_LEN, MAX_PACKET_SIZE};
use crate::rpc::types::{Call, Completion, Job, RpcError};
use crate::rpc::Bridge;
use timers::Timers;

/// Token of the listening socket.
const LISTENER: Token = Token(0);
/// Token of the waker (RPC completions, shutdown).
pub const WAKER: Token = Token(1);
/// Connection `i` has token `i + FIRST_CONN`.
const FIRST_CONN: usize = 2;
/// Reads per connection per pass before others get their turn.
const READS_PER_PASS: usize = 8;
/// Completions handled per pass before sockets get their turn.
const COMPLETIONS_PER_PASS: usize = 4096;
/// Minimum time between session refreshes on ALIVE (docs/protocol.md §9 D6).
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a gracefully closed socket waits for the client's EOF.
const LINGER: Duration = Duration::from_secs(2);
/// Most sockets lingering at once; past that, closes are immediate.
const LINGER_MAX: usize = 4096;
/// How often lingering sockets are read while any exist.
const LINGER_POLL: Duration = Duration::from_millis(20);
/// Pooled buffers' worth of queued output at which a connection stops
/// decoding until its client reads.
const OUTPUT_PAUSE_BUFFERS: usize = 4;
/// How often refusals and abnormal closes are summarised in the log.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// How soon cleanup refused by a full job queue is tried again.
const CLEANUP_RETRY: Duration = Duration::from_millis(10);
/// How often the reactor's counters are published to the registry.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
/// How long accept pauses after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The settings the loop needs (derived from [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// MAX_CONCURRENT_CONNECTIONS.
    pub max_connections: usize,
    /// Per source address (0 = unlimited).
    pub max_connections_per_ip: usize,
    /// Wire codec.
    pub codec: Codec,
    /// Packet id numbering.
    pub dialect: DialectId,
    /// Output queue cap per connection, in bytes.
    pub output_limit: usize,
    /// Advertised address.
    pub public_addr: String,
    /// Advertised port.
    pub public_port: u16,
    /// Handshake timeout.
    pub handshake_timeout: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Backend deadline.
    pub rpc_deadline: Duration,
    /// Wrong-state budget.
    pub wrong_state_budget: u32,
    /// Packets per second (0 = unlimited).
    pub packets_per_sec: u32,
    /// Packet burst.
    pub packet_burst: u32,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
    /// Expect a PROXY protocol header first (from trusted sources only).
    pub proxy_protocol: bool,
    /// Networks allowed to send a PROXY header.
    pub proxy_trusted: Vec<(IpAddr, u8)>,
}

/// Everything but the connection table, so that a connection and the rest
/// of the loop can be borrowed at the same time.
struct Env {
    cfg: ReactorConfig,
    codec: Codec,
    dialect: &'static Dialect,
    pool: BufferPool,
    /// Buffers kept back for replies: reading stops below this.
    read_reserve: usize,
    bridge: Bridge,
    counters: ReactorCounters,
    timers: Timers,
    /// World routing: session → connection (bound while joining / in world).
    sessions: HashMap<SessionId, ConnRef>,
    per_ip: HashMap<IpAddr, u32>,
    servers: Vec<auth::ServerInfo>,
    /// Connections with input work for this pass / the next pass.
    ready: Vec<usize>,
    next_ready: Vec<usize>,
    /// Connections waiting for a buffer from the pool, oldest first; each at
    /// most once (`Conn::in_pool_wait`).
    pool_wait: std::collections::VecDeque<usize>,
    /// Queued output above which a connection stops decoding (backpressure:
    /// a client that does not read cannot hold more than a few buffers).
    output_pause: usize,
    /// Connections with output to flush.
    dirty: Vec<usize>,
    /// Connections to reap.
    closing: Vec<usize>,
    actions: Vec<Action>,
    next_generation: u32,
    utc: UtcTime,
    draining: Option<Instant>,
    accept_paused_until: Option<Instant>,
    /// The completion channel may hold more than one pass took.
    completions_pending: bool,
    /// Cleanup jobs refused by a full queue, retried every pass. Bounded:
    /// each connection produces at most one Leave and one Logout.
    cleanup: std::collections::VecDeque<Job>,
    /// Limits hit since the last summary log line.
    limits: LimitLog,
}

/// Counts of refusals and closes for the periodic log summary: limits are
/// logged when hit, without a line per connection that a flood could use to
/// flood the log.
struct LimitLog {
    rejected: Vec<u64>,
    closed: Vec<u64>,
    since: Instant,
}

impl LimitLog {
    fn new(now: Instant) -> LimitLog {
        LimitLog {
            rejected: vec![0; RejectReason::LABELS.len()],
            closed: vec![0; CloseReason::LABELS.len()],
            since: now,
        }
    }

    /// Logs one line if anything abnormal happened in the interval.
    fn report(&mut self, now: Instant) {
        if now.duration_since(self.since) < LIMIT_LOG_INTERVAL {
            return;
        }
        let normal = [
            CloseReason::PeerClosed.index(),
            CloseReason::Shutdown.index(),
        ];
        let mut line = String::new();
        for (label, n) in RejectReason::LABELS.iter().zip(&self.rejected) {
            if *n > 0 {
                line.push_str(&format!(" refused:{label}={n}"));
            }
        }
        for (i, (label, n)) in CloseReason::LABELS.iter().zip(&self.closed).enumerate() {
            if *n > 0 && !normal.contains(&i) {
                line.push_str(&format!(" closed:{label}={n}"));
            }
        }
        if !line.is_empty() {
            warn!(
                "in the last {}s:{line}",
                now.duration_since(self.since).as_secs()
            );
        }
        self.rejected.iter_mut().for_each(|n| *n = 0);
        self.closed.iter_mut().for_each(|n| *n = 0);
        self.since = now;
    }
}

/// The event loop and everything it owns.
pub struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    env: Env,
    shutdown: Arc<AtomicBool>,
    health: Arc<Health>,
    watchdog: Option<Duration>,
    /// Something may have been counted since the last publish.
    unpublished: bool,
    /// Half-closed sockets waiting for the client's EOF (at most
    /// `LINGER_MAX`, each for at most `LINGER`). Deregistered: polled each
    /// pass while any exist.
    lingering: Vec<(TcpStream, Instant)>,
}

impl Reactor {
    /// Builds the loop around a bound listener and allocates the buffer pool
    /// (`pool` = buffer count, buffer size). `poll` must be the `Poll` the
    /// bridge's waker was made from (token [`WAKER`]). The reactor is not
    /// `Send`: build it on the thread that runs it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        cfg: ReactorConfig,
        pool: (usize, usize),
        bridge: Bridge,
        counters: ReactorCounters,
        shutdown: Arc<AtomicBool>,
        health: Arc<Health>,
    ) -> io::Result<Reactor> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let pool = BufferPool::new(pool.0, pool.1);
        let output_pause = OUTPUT_PAUSE_BUFFERS * pool.buffer_size();
        let read_reserve = (pool.total() / 16).clamp(1, 256);
        let codec = cfg.codec;
        let dialect = cfg.dialect.dialect();
        Ok(Reactor {
            poll,
            listener: Some(listener),
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 16)),
            env: Env {
                codec,
                dialect,
                pool,
                read_reserve,
                output_pause,
                bridge,
                counters,
                timers: Timers::default(),
                sessions: HashMap::new(),
                per_ip: HashMap::new(),
                servers: Vec::new(),
                ready: Vec::new(),
                next_ready: Vec::new(),
                pool_wait: std::collections::VecDeque::new(),
                dirty: Vec::new(),
                closing: Vec::new(),
                actions: Vec::with_capacity(8),
                next_generation: 0,
                utc: UtcTime::default(),
                draining: None,
                accept_paused_until: None,
                completions_pending: false,
                cleanup: std::collections::VecDeque::new(),
                limits: LimitLog::new(Instant::now()),
                cfg,
            },
            shutdown,
            health,
            watchdog: crate::systemd::watchdog_interval(),
            unpublished: true,
            lingering: Vec::new(),
        })
    }

    /// Runs until shutdown is requested and the connections are drained.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_ping = Instant::now();
        let mut last_publish = Instant::now();
        self.health.tick();
        loop {
            let now = Instant::now();
            let mut timeout = self.poll_timeout(now);
            if self.unpublished {
                let due = (last_publish + PUBLISH_INTERVAL).saturating_duration_since(now);
                timeout = timeout.map(|t| t.min(due));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            self.env.utc = utc_now();
            self.unpublished |= !events.is_empty();
            let mut wake = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => wake = true,
                    Token(t) => {
                        let idx = t - FIRST_CONN;
                        let Some(conn) = self.conns.get_mut(idx) else {
                            continue;
                        };
                        if event.is_read_closed() || event.is_error() {
                            // Data and FIN can share one edge: read to the end.
                            conn.hup = true;
                        }
                        if event.is_readable() || conn.hup {
                            conn.readable = true;
                            push_once(&mut self.env.ready, &mut conn.in_ready, idx);
                        }
                        if event.is_writable() && !conn.output.is_empty() {
                            push_once(&mut self.env.dirty, &mut conn.in_dirty, idx);
                        }
                    }
                }
            }
            if wake || self.env.completions_pending {
                self.complete(now);
            }
            if !self.env.cleanup.is_empty() {
                self.env.retry_cleanup();
            }
            if self.shutdown.load(Ordering::Acquire) && self.env.draining.is_none() {
                self.begin_drain(now);
            }
            if let Some(until) = self.env.accept_paused_until {
                if now >= until {
                    self.env.accept_paused_until = None;
                    self.accept(now);
                }
            }
            self.resume_pool_waiters();
            self.service_ready(now);
            self.expire_timers(now);
            self.flush_dirty();
            if self.env.draining.is_some() {
                self.drain_step(now);
            }
            self.reap(now);
            if !self.lingering.is_empty() {
                self.linger(now);
            }
            // Counters are plain integers; they reach the registry at most
            // every PUBLISH_INTERVAL, not on every pass.
            if self.unpublished && now.duration_since(last_publish) >= PUBLISH_INTERVAL {
                self.env.counters.set_active(self.conns.len());
                self.env
                    .counters
                    .set_pool_available(self.env.pool.available());
                self.env.counters.publish();
                self.unpublished = false;
                last_publish = now;
            }
            self.env.limits.report(now);
            self.health.tick_at(now);
            if let Some(period) = self.watchdog {
                if now.duration_since(last_ping) >= period {
                    crate::systemd::watchdog_ping();
                    last_ping = now;
                }
            }
            if let Some(deadline) = self.env.draining {
                let drained = self.conns.is_empty() && self.lingering.is_empty();
                if drained || now >= deadline {
                    self.close_all();
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let pool_waiters =
            !self.env.pool_wait.is_empty() && self.env.pool.available() > self.env.read_reserve;
        if !self.env.ready.is_empty()
            || !self.env.next_ready.is_empty()
            || !self.env.dirty.is_empty()
            || self.env.completions_pending
            || pool_waiters
        {
            return Some(Duration::ZERO);
        }
        let mut timeout = Duration::from_secs(1);
        if !self.lingering.is_empty() {
            timeout = LINGER_POLL;
        }
        if !self.env.cleanup.is_empty() {
            timeout = CLEANUP_RETRY;
        }
        if let Some(at) = self.env.timers.next() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.env.accept_paused_until {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.env.draining {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(period) = self.watchdog {
            timeout = timeout.min(period);
        }
        Some(timeout)
    }

    // ---- accept and admission -------------------------------------------

    fn accept(&mut self, now: Instant) {
        if self.env.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE / ENFILE / ENOBUFS: the backlog keeps the
                    // connection; try again shortly instead of spinning.
                    warn!("accept failed: {e}; pausing accept for {ACCEPT_BACKOFF:?}");
                    self.env.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Instant) {
        let env = &mut self.env;
        let proxied = env.cfg.proxy_protocol;
        let reject = if env.draining.is_some() {
            Some(RejectReason::ShuttingDown)
        } else if self.conns.len() >= env.cfg.max_connections {
            Some(RejectReason::MaxConnections)
        } else if proxied
            && !env
                .cfg
                .proxy_trusted
                .iter()
                .any(|net| crate::config::cidr_contains(net, peer.ip()))
        {
            Some(RejectReason::ProxyProtocol)
        } else if !proxied && env.over_ip_limit(peer.ip()) {
            // Behind a balancer the limit applies to the real client, once
            // its PROXY header is read.
            Some(RejectReason::PerIpLimit)
        } else {
            None
        };
        if let Some(reason) = reject {
            env.counters.reject(reason.index());
            env.limits.rejected[reason.index()] += 1;
            debug!("[{peer}] rejected: {}", reason.as_str());
            return; // dropping the socket closes it
        }
        let entry = self.conns.vacant_entry();
        let idx = entry.key();
        let Ok(index) = u32::try_from(idx) else {
            env.counters.reject(RejectReason::MaxConnections.index());
            return;
        };
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            Token(idx + FIRST_CONN),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("[{peer}] register failed: {e}");
            env.counters.reject(RejectReason::MaxConnections.index());
            return;
        }
        let _ = socket.set_nodelay(true);
        env.next_generation = env.next_generation.wrapping_add(1);
        let conn_ref = ConnRef {
            index,
            generation: env.next_generation,
        };
        let session = Session::new(peer, now, env.cfg.packet_burst);
        let conn = entry.insert(Conn::new(socket, conn_ref, session));
        conn.awaiting_proxy = proxied;
        if !proxied {
            env.count_ip(conn, peer.ip());
        }
        env.counters.accepted += 1;
        env.schedule(idx, conn);
        trace!("{} accepted", Prefix(conn));
    }

    // ---- reading and decoding --------------------------------------------

    fn service_ready(&mut self, now: Instant) {
        let mut ready = std::mem::take(&mut self.env.ready);
        ready.append(&mut self.env.next_ready);
        for idx in ready.drain(..) {
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            conn.in_ready = false;
            if conn.closing.is_none() {
                let started = Instant::now();
                self.env.service(idx, conn, now);
                let nanos = started.elapsed().as_nanos();
                self.env.counters.observe_processing(nanos as u64);
            }
        }
        // Keep the allocation for the next pass.
        self.env.ready = ready;
    }

    fn resume_pool_waiters(&mut self) {
        while self.env.pool.available() > self.env.read_reserve {
            let Some(idx) = self.env.pool_wait.pop_front() else {
                return;
            };
            if let Some(conn) = self.conns.get_mut(idx) {
                if conn.in_pool_wait {
                    conn.in_pool_wait = false;
                    push_once(&mut self.env.ready, &mut conn.in_ready, idx);
                }
            }
        }
    }

    // ---- completions ------------------------------------------------------

    fn complete(&mut self, now: Instant) {
        // Wakes coalesce: drain what is there, bounded so that sockets get
        // their turn; the rest is taken next pass without sleeping.
        self.env.completions_pending = true;
        for _ in 0..COMPLETIONS_PER_PASS {
            let Some(completion) = self.env.bridge.try_complete() else {
                self.env.completions_pending = false;
                return;
            };
            match completion {
                Completion::Rpc {
                    conn,
                    request,
                    result,
                } => {
                    let input = Input::Completion {
                        request,
                        result: &result,
                    };
                    self.deliver(conn, input, now);
                }
                Completion::Joined {
                    session,
                    ok,
                    entity_id,
                } => {
                    if let Some(&conn) = self.env.sessions.get(&session) {
                        self.deliver(conn, Input::Joined { ok, entity_id }, now);
                    } else {
                        self.env.counters.stale_completions += 1;
                    }
                }
                Completion::Kick { session, reason } => {
                    if let Some(&conn) = self.env.sessions.get(&session) {
                        info!("session {} kicked by the world: {reason}", session.0);
                        self.deliver(conn, Input::Kicked, now);
                    }
                }
                Completion::Broadcast {
                    targets,
                    type_id,
                    payload,
                } => self.broadcast(&targets, type_id, &payload),
                Completion::WorldLink(up) => {
                    if !up {
                        let bound: Vec<ConnRef> = self.env.sessions.values().copied().collect();
                        for conn in bound {
                            self.deliver(conn, Input::WorldDown, now);
                        }
                    }
                }
                Completion::ServerList(servers) => self.env.servers = servers,
            }
        }
    }

    /// Feeds an input to the connection `conn` refers to, if it still exists.
    fn deliver(&mut self, conn_ref: ConnRef, input: Input<'_>, now: Instant) {
        let idx = conn_ref.index as usize;
        let Some(conn) = self.conns.get_mut(idx) else {
            self.env.counters.stale_completions += 1;
            return;
        };
        if conn.conn_ref != conn_ref || conn.closing.is_some() {
            self.env.counters.stale_completions += 1;
            return;
        }
        let env = &mut self.env;
        let mut actions = std::mem::take(&mut env.actions);
        let disposition = conn.session.handle(&env.ctx(), input, now, &mut actions);
        if disposition == Disposition::Stale {
            env.counters.stale_completions += 1;
        }
        env.apply(idx, conn, &mut actions, now);
        env.actions = actions;
        env.schedule(idx, conn);
        env.resume_input(idx, conn);
    }

    fn broadcast(&mut self, targets: &[u32], type_id: u16, payload: &[u8]) {
        let env = &mut self.env;
        let Some(ptype) = DialectId::Osirose.dialect().server_packet(type_id) else {
            debug!("world sent unknown packet type {type_id:#x}; dropped");
            return;
        };
        let Some(wire_id) = env.dialect.wire_id(ptype) else {
            debug!("{ptype} has no id in {}; dropped", env.dialect.id().name());
            return;
        };
        let size = HEADER_LEN + payload.len();
        if size > MAX_PACKET_SIZE {
            warn!("world sent an oversized {ptype} ({size} bytes); dropped");
            return;
        }
        // Encoded once; every target queues the same frame.
        let mut frame = BytesMut::zeroed(size);
        crate::protocol::codec::write_plain_header(&mut frame, size, wire_id);
        frame[HEADER_LEN..].copy_from_slice(payload);
        if env
            .codec
            .seal(Direction::ServerToClient, &mut frame)
            .is_err()
        {
            return;
        }
        let frame = frame.freeze();
        for &target in targets {
            let Some(&conn_ref) = env.sessions.get(&SessionId(target)) else {
                continue;
            };
            let idx = conn_ref.index as usize;
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            if conn.conn_ref != conn_ref || conn.closing.is_some() {
                continue;
            }
            conn.output.push_shared(frame.clone());
            env.counters.sent(ptype);
            env.queued(idx, conn);
        }
    }

    // ---- output -------------------------------------------------------------

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.env.dirty);
        for idx in dirty.drain(..) {
            if let Some(conn) = self.conns.get_mut(idx) {
                conn.in_dirty = false;
                self.env.flush(idx, conn);
            }
        }
        self.env.dirty = dirty;
    }

    // ---- timers ---------------------------------------------------------------

    fn expire_timers(&mut self, now: Instant) {
        while let Some((at, conn_ref)) = self.env.timers.pop_due(now) {
            let idx = conn_ref.index as usize;
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            if conn.conn_ref != conn_ref || conn.timer_at != Some(at) {
                continue; // superseded
            }
            conn.timer_at = None;
            let env = &mut self.env;
            let mut actions = std::mem::take(&mut env.actions);
            conn.session
                .handle(&env.ctx(), Input::Tick, now, &mut actions);
            env.apply(idx, conn, &mut actions, now);
            env.actions = actions;
            env.schedule(idx, conn);
        }
    }

    // ---- shutdown ---------------------------------------------------------------

    fn begin_drain(&mut self, now: Instant) {
        info!(
            "shutting down: no longer accepting; draining {} connections (grace {:?})",
            self.conns.len(),
            self.env.cfg.shutdown_grace
        );
        crate::systemd::stopping();
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.env.draining = Some(now + self.env.cfg.shutdown_grace);
        self.health.set_stopping();
    }

    /// Closes every connection that has nothing left in flight.
    fn drain_step(&mut self, _now: Instant) {
        for (idx, conn) in self.conns.iter_mut() {
            if conn.closing.is_none()
                && conn.output.is_empty()
                && !conn.session.phase().is_waiting()
            {
                conn.closing = Some(CloseReason::Shutdown);
                self.env.closing.push(idx);
            }
        }
    }

    fn close_all(&mut self) {
        let left: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for idx in left {
            if let Some(conn) = self.conns.get_mut(idx) {
                if conn.closing.is_none() {
                    conn.closing = Some(CloseReason::Shutdown);
                    self.env.closing.push(idx);
                }
            }
        }
        self.reap(Instant::now());
        self.env.retry_cleanup();
        if !self.env.cleanup.is_empty() {
            warn!(
                "{} world leaves / logouts could not be queued before exit",
                self.env.cleanup.len()
            );
        }
        self.env.counters.set_active(0);
        self.env.counters.publish();
        info!("all connections closed");
    }

    // ---- reaping ------------------------------------------------------------

    fn reap(&mut self, now: Instant) {
        let mut closing = std::mem::take(&mut self.env.closing);
        for idx in closing.drain(..) {
            let Some(conn) = self.conns.get(idx) else {
                continue;
            };
            if conn.closing.is_none() {
                continue;
            }
            let mut conn = self.conns.remove(idx);
            let reason = conn.closing.unwrap_or(CloseReason::PeerClosed);
            // Best effort: replies queued before the close (a refused login,
            // a shutdown) get one last write.
            if !conn.output.is_empty() {
                if let Ok(n) = conn.output.write_to(&mut conn.socket) {
                    self.env.counters.bytes_sent += n as u64;
                }
            }
            let mut actions = std::mem::take(&mut self.env.actions);
            conn.session.on_close(&mut actions);
            for action in actions.drain(..) {
                match action {
                    Action::Notify(request, call) => {
                        self.env.submit(&conn, request, call);
                    }
                    Action::UnbindSession(s) => self.env.unbind(s, conn.conn_ref),
                    _ => {}
                }
            }
            self.env.actions = actions;
            let _ = self.poll.registry().deregister(&mut conn.socket);
            if let Some(ip) = conn.counted_ip {
                if let Some(n) = self.env.per_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        self.env.per_ip.remove(&ip);
                    }
                }
            }
            self.env.counters.close(reason.index());
            self.env.limits.closed[reason.index()] += 1;
            match reason {
                CloseReason::PeerClosed | CloseReason::Shutdown => {
                    trace!("{} closed: {reason}", Prefix(&conn))
                }
                _ => debug!("{} closed: {reason}", Prefix(&conn)),
            }
            let graceful = matches!(
                reason,
                CloseReason::Shutdown
                    | CloseReason::LoginRefused
                    | CloseReason::SelectRefused
                    | CloseReason::Kicked
                    | CloseReason::WorldLinkLost
                    | CloseReason::SessionExpired
            );
            if graceful && !conn.eof && self.lingering.len() < LINGER_MAX {
                // Half-close: the FIN follows the last reply, and what the
                // client still sends is read and dropped until it closes too.
                // Closing with unread input would send a reset that can
                // destroy replies the client has not read yet.
                let _ = conn.socket.shutdown(std::net::Shutdown::Write);
                self.lingering.push((conn.socket, now + LINGER));
            } else {
                discard_unread(&mut conn.socket);
            }
        }
        self.env.closing = closing;
    }

    /// Half-closed sockets: drop what the client sends; close on its EOF or
    /// at the linger deadline.
    fn linger(&mut self, now: Instant) {
        self.lingering.retain_mut(|(socket, deadline)| {
            if now >= *deadline {
                return false;
            }
            let mut sink = [0u8; 4096];
            for _ in 0..16 {
                match socket.read(&mut sink) {
                    Ok(0) => return false,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            true
        });
    }
}

impl Env {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            public_addr: &self.cfg.public_addr,
            public_port: self.cfg.public_port,
            servers: &self.servers,
            wrong_state_budget: self.cfg.wrong_state_budget,
            handshake_timeout: self.cfg.handshake_timeout,
            idle_timeout: self.cfg.idle_timeout,
            rpc_deadline: self.cfg.rpc_deadline,
            refresh_interval: REFRESH_INTERVAL,
            packets_per_sec: self.cfg.packets_per_sec,
            packet_burst: self.cfg.packet_burst,
            utc: self.utc,
        }
    }

    /// Puts the connection's next deadline in the timer heap if it is
    /// earlier than the one already there.
    fn schedule(&mut self, _idx: usize, conn: &mut Conn) {
        if conn.closing.is_some() {
            return;
        }
        let Some(at) = conn.session.next_deadline(&self.ctx()) else {
            return;
        };
        if conn.timer_at.is_none_or(|t| at < t) {
            conn.timer_at = Some(at);
            self.timers.push(at, conn.conn_ref);
        }
    }

    /// Puts a connection back on the ready list if it may decode or read
    /// again: input waits in its buffer or the socket was not drained, and
    /// nothing (a backend call, a full output queue) holds it back. Whoever
    /// changes a connection's state outside `service` calls this, since no
    /// new readiness edge will come for bytes already there.
    fn resume_input(&mut self, idx: usize, conn: &mut Conn) {
        let has_input = conn.readable || conn.eof || conn.input.is_some();
        if has_input
            && conn.closing.is_none()
            && !conn.session.phase().is_waiting()
            && conn.output.len() < self.output_pause
        {
            push_once(&mut self.ready, &mut conn.in_ready, idx);
        }
    }

    fn over_ip_limit(&self, ip: IpAddr) -> bool {
        self.cfg.max_connections_per_ip > 0
            && self.per_ip.get(&ip).copied().unwrap_or(0) as usize
                >= self.cfg.max_connections_per_ip
    }

    fn count_ip(&mut self, conn: &mut Conn, ip: IpAddr) {
        *self.per_ip.entry(ip).or_insert(0) += 1;
        conn.counted_ip = Some(ip);
    }

    /// Reads the PROXY header at the start of the input. Returns false if
    /// the connection cannot go on (yet).
    fn proxy_header(&mut self, idx: usize, conn: &mut Conn) -> bool {
        let Some(buf) = conn.input.as_mut() else {
            return false;
        };
        match crate::conn::proxy::parse(buf.filled()) {
            ProxyHeader::Incomplete => false,
            ProxyHeader::Invalid => {
                if log::log_enabled!(log::Level::Debug) {
                    let dump = hex_prefix(buf.filled());
                    debug!("{} no valid PROXY header: {dump}", Prefix(conn));
                }
                self.counters
                    .protocol_error(ProtocolError::BadProxyHeader.index());
                self.close(
                    idx,
                    conn,
                    CloseReason::Protocol(ProtocolError::BadProxyHeader),
                );
                false
            }
            ProxyHeader::Parsed { len, source } => {
                buf.consume(len);
                conn.awaiting_proxy = false;
                let real = source.unwrap_or(conn.session.peer());
                conn.session.set_peer(real);
                if self.over_ip_limit(real.ip()) {
                    self.counters.reject(RejectReason::PerIpLimit.index());
                    self.limits.rejected[RejectReason::PerIpLimit.index()] += 1;
                    self.close(idx, conn, CloseReason::PerIpLimit);
                    return false;
                }
                self.count_ip(conn, real.ip());
                trace!("{} PROXY header: client {real}", Prefix(conn));
                true
            }
        }
    }

    fn close(&mut self, idx: usize, conn: &mut Conn, reason: CloseReason) {
        if conn.closing.is_none() {
            conn.closing = Some(reason);
            self.closing.push(idx);
        }
    }

    fn unbind(&mut self, session: SessionId, conn_ref: ConnRef) {
        if self.sessions.get(&session) == Some(&conn_ref) {
            self.sessions.remove(&session);
        }
    }

    /// Output was queued: flush it this pass, or close a client that does
    /// not read.
    fn queued(&mut self, idx: usize, conn: &mut Conn) {
        if conn.output.len() > self.cfg.output_limit {
            debug!(
                "{} output queue {} bytes exceeds {}: closing",
                Prefix(conn),
                conn.output.len(),
                self.cfg.output_limit
            );
            self.close(idx, conn, CloseReason::OutputLimit);
        } else if !conn.output.is_empty() {
            push_once(&mut self.dirty, &mut conn.in_dirty, idx);
        }
    }

    /// Reads and decodes for one connection, within the per-pass budget.
    fn service(&mut self, idx: usize, conn: &mut Conn, now: Instant) {
        let mut reads = 0;
        loop {
            if !self.decode(idx, conn, now) || conn.closing.is_some() {
                return;
            }
            if conn.eof {
                // Everything decodable was handled; the peer is gone.
                self.close(idx, conn, CloseReason::PeerClosed);
                return;
            }
            if !conn.readable || self.draining.is_some() {
                return;
            }
            if reads == READS_PER_PASS {
                push_once(&mut self.next_ready, &mut conn.in_ready, idx);
                return;
            }
            reads += 1;
            if conn.input.is_none() {
                if self.pool.available() <= self.read_reserve {
                    // No buffer to read into: stop reading (never allocate),
                    // resume when buffers come back.
                    push_once_deque(&mut self.pool_wait, &mut conn.in_pool_wait, idx);
                    return;
                }
                conn.input = self.pool.checkout();
            }
            let Some(buf) = conn.input.as_mut() else {
                return;
            };
            if buf.spare_len() == 0 {
                buf.compact();
                if buf.spare_len() == 0 {
                    return; // full of undecodable-yet input: backpressure
                }
            }
            let spare = buf.spare_len();
            match conn.socket.read(buf.spare()) {
                Ok(0) => {
                    conn.readable = false;
                    conn.eof = true;
                }
                Ok(n) => {
                    buf.commit(n);
                    self.counters.bytes_received += n as u64;
                    if n < spare && !conn.hup {
                        // A short read drained the socket; the next arrival
                        // (data or FIN) is a new edge. A FIN that came with
                        // this edge was flagged (`hup`): then read on to EOF.
                        conn.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("{} read failed: {e}", Prefix(conn));
                    self.close(idx, conn, CloseReason::IoError);
                    return;
                }
            }
            if conn.input.as_ref().is_some_and(|b| b.is_empty()) {
                conn.input = None;
            }
        }
    }

    /// Decodes every whole packet in the input buffer. Returns false when
    /// the connection must not read more now (waiting for a backend).
    fn decode(&mut self, idx: usize, conn: &mut Conn, now: Instant) -> bool {
        let alive = self.dialect.wire_id(PacketType::PAKCS_ALIVE);
        if conn.awaiting_proxy && !self.proxy_header(idx, conn) {
            return conn.closing.is_none();
        }
        loop {
            if conn.closing.is_some() {
                return false;
            }
            let Some(buf) = conn.input.as_mut() else {
                return true;
            };
            if buf.is_empty() {
                conn.input = None; // an idle connection holds no buffer
                return true;
            }
            let header = match self.codec.peek(Direction::ClientToServer, buf.filled()) {
                Ok(Some(h)) => h,
                Ok(None) => return true,
                Err(e) => {
                    let error = frame_error(e);
                    if log::log_enabled!(log::Level::Debug) {
                        let dump = hex_prefix(buf.filled());
                        debug!("{} bad frame: {e}; {dump}", Prefix(conn));
                    }
                    self.counters.protocol_error(error.index());
                    self.close(idx, conn, CloseReason::Protocol(error));
                    return false;
                }
            };
            if buf.len() < header.wire_len {
                if buf.spare_len() < header.wire_len - buf.len() {
                    buf.compact();
                }
                return true;
            }
            if self.draining.is_some() || conn.output.len() >= self.output_pause {
                // Shutting down, or the client is not reading its replies:
                // decode nothing more (bytes wait here, then in the kernel).
                return false;
            }
            if conn.session.phase().is_waiting() && Some(header.command) != alive {
                // Backpressure: the packet waits in the buffer (and then in
                // the kernel) until the backend answers.
                return false;
            }
            if let Err(e) = self.codec.open(&header, buf.filled_mut()) {
                let error = frame_error(e);
                debug!("{} bad frame: {e}", Prefix(conn));
                self.counters.protocol_error(error.index());
                self.close(idx, conn, CloseReason::Protocol(error));
                return false;
            }
            let ptype = self.dialect.client_packet(header.command);
            self.counters.received(ptype);
            let packet = &buf.filled()[..header.data_len];
            let input = match ptype {
                Some(ptype) => Input::Packet {
                    ptype,
                    body: &packet[HEADER_LEN..],
                },
                None => Input::Unknown { id: header.command },
            };
            trace!("{} received {:?}", conn.conn_ref, ptype);
            let mut actions = std::mem::take(&mut self.actions);
            conn.session.handle(&self.ctx(), input, now, &mut actions);
            if actions.first() == Some(&Action::Echo) {
                let codec = self.codec;
                let echoed = conn.output.encode(&self.pool, packet.len(), |space| {
                    let frame = &mut space[..packet.len()];
                    frame.copy_from_slice(packet);
                    codec
                        .seal(Direction::ServerToClient, frame)
                        .map(|()| frame.len())
                });
                match echoed {
                    Ok(_) => self.counters.sent(PacketType::STRESS),
                    Err(_) => actions.push(Action::Close(CloseReason::PoolExhausted)),
                }
                actions.remove(0);
            }
            buf.consume(header.wire_len);
            self.apply(idx, conn, &mut actions, now);
            self.actions = actions;
            self.schedule(idx, conn);
        }
    }

    /// Carries out the state machine's actions for one connection.
    fn apply(&mut self, idx: usize, conn: &mut Conn, actions: &mut Vec<Action>, now: Instant) {
        let mut i = 0;
        while i < actions.len() {
            let action = std::mem::replace(&mut actions[i], Action::Echo);
            i += 1;
            match action {
                Action::Send(packet) => {
                    let (codec, dialect) = (self.codec, self.dialect);
                    let result = conn.output.encode(&self.pool, MAX_PACKET_SIZE, |space| {
                        let n = packet.write(dialect, space)?;
                        codec
                            .seal(Direction::ServerToClient, &mut space[..n])
                            .map_err(|_| crate::protocol::packets::EncodeError::TooLarge)?;
                        Ok::<usize, crate::protocol::packets::EncodeError>(n)
                    });
                    match result {
                        Ok(_) => self.counters.sent(packet.packet_type()),
                        Err(EncodeFailure::NoBuffer) => {
                            debug!("{} no buffer for a reply: closing", Prefix(conn));
                            self.close(idx, conn, CloseReason::PoolExhausted);
                        }
                        Err(EncodeFailure::Encoder) => {
                            // A backend answer too large for the protocol:
                            // the client would wait forever for it.
                            warn!(
                                "{} cannot encode {}: closing",
                                Prefix(conn),
                                packet.packet_type()
                            );
                            self.close(idx, conn, CloseReason::BackendUnavailable);
                        }
                    }
                }
                Action::Echo => {}
                Action::Call(request, call) => {
                    if !self.submit(conn, request, call) {
                        // Queue full: answer at once with the failure result.
                        let busy = Err(RpcError::Busy);
                        let input = Input::Completion {
                            request,
                            result: &busy,
                        };
                        let ctx = self.ctx();
                        conn.session.handle(&ctx, input, now, actions);
                    }
                }
                Action::Notify(request, call) => {
                    let joining = matches!(call, Call::WorldJoin { .. });
                    if !self.submit(conn, request, call) && joining {
                        let input = Input::Joined {
                            ok: false,
                            entity_id: 0,
                        };
                        let ctx = self.ctx();
                        conn.session.handle(&ctx, input, now, actions);
                    }
                }
                Action::BindSession(s) => {
                    if let Some(old) = self.sessions.insert(s, conn.conn_ref) {
                        if old != conn.conn_ref {
                            debug!("session {} moved from {old} to {}", s.0, conn.conn_ref);
                        }
                    }
                }
                Action::UnbindSession(s) => self.unbind(s, conn.conn_ref),
                Action::ProtocolError(e) => self.counters.protocol_error(e.index()),
                Action::Close(reason) => self.close(idx, conn, reason),
            }
        }
        actions.clear();
        self.queued(idx, conn);
    }

    /// Hands a job to the runtime; false (counted) when the queue is full.
    /// Cleanup (a world Leave, an auth Logout) is never dropped: it waits in
    /// `cleanup` and is retried every pass, so a full queue cannot leave a
    /// ghost player in the world or a session open.
    fn submit(&mut self, conn: &Conn, request: RequestId, call: Call) -> bool {
        let job = Job {
            conn: conn.conn_ref,
            request,
            call,
        };
        match self.bridge.submit(job) {
            Ok(()) => true,
            Err(job) => {
                self.counters.rpc_queue_rejected += 1;
                if matches!(job.call, Call::WorldLeave { .. } | Call::Logout { .. }) {
                    self.cleanup.push_back(job);
                }
                false
            }
        }
    }

    /// Retries cleanup jobs that found the queue full, oldest first.
    fn retry_cleanup(&mut self) {
        while let Some(job) = self.cleanup.pop_front() {
            if let Err(job) = self.bridge.submit(job) {
                self.cleanup.push_front(job);
                return;
            }
        }
    }

    /// Writes as much queued output as the socket takes. A short write
    /// leaves the rest to the next writable event (registered once).
    fn flush(&mut self, idx: usize, conn: &mut Conn) {
        let paused = conn.output.len() >= self.output_pause;
        while !conn.output.is_empty() {
            match conn.output.write_to(&mut conn.socket) {
                Ok(0) => break,
                Ok(n) => self.counters.bytes_sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("{} write failed: {e}", Prefix(conn));
                    self.close(idx, conn, CloseReason::IoError);
                    return;
                }
            }
        }
        if paused {
            // The client read: decoding may go on.
            self.resume_input(idx, conn);
        }
    }
}

/// Reads and drops what the client sent but was not decoded (bounded).
/// Closing a socket with unread input makes the kernel send a reset, which
/// can destroy replies still in flight to the client; an empty receive
/// queue gives a clean FIN after the last reply.
fn discard_unread(socket: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match socket.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

fn push_once_deque(list: &mut std::collections::VecDeque<usize>, flag: &mut bool, idx: usize) {
    if !*flag {
        *flag = true;
        list.push_back(idx);
    }
}

fn push_once(list: &mut Vec<usize>, flag: &mut bool, idx: usize) {
    if !*flag {
        *flag = true;
        list.push(idx);
    }
}

fn frame_error(e: FrameError) -> ProtocolError {
    match e {
        FrameError::BadSize(_) => ProtocolError::BadSize,
        FrameError::BadChecksum => ProtocolError::BadChecksum,
        FrameError::BadHeader
        | FrameError::BadPadding { .. }
        | FrameError::CommandOutOfRange(_) => ProtocolError::BadHeader,
    }
}

/// At most 32 bytes of hex, for debug logs of bad input.
fn hex_prefix(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(100);
    for b in bytes.iter().take(32) {
        let _ = write!(s, "{b:02x} ");
    }
    if bytes.len() > 32 {
        s.push('…');
    }
    s
}

fn utc_now() -> UtcTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UtcTime::from_unix(secs)
}
