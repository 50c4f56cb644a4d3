//! The event loop (docs/architecture.md §3): one thread, one `mio::Poll`,
//! every client socket.
//!
//! [`Reactor::run`] repeats one pass, [`Reactor::pass`], which reads as the
//! steps of docs/architecture.md §3 in their order; each step lives in the
//! room for its job:
//!
//! | steps | what | room |
//! |---|---|---|
//! | 1–3 | the poll timeout (the world flush's deadline among them), the poll, socket events: mark connections readable or writable | `poll.rs` |
//! | 3, 7 | accept until `WouldBlock`, admission before allocation, PROXY trust; the accept pause | `admission.rs` |
//! | 1 | take the settings a reload (SIGHUP) delivered | `reload.rs` |
//! | 4, 5 | drain RPC completions, apply the state machine's actions, submit jobs, retry cleanup | `actions.rs` |
//! | 4, 11 | world broadcasts gathered into runs, encoded once and copied to every target; flush queued output; the world flush | `runs.rs`, `output.rs` |
//! | 6, 12–14, 18 | begin a drain, the drain step, reap, linger, close what is left | `close.rs` |
//! | 8, 9 | buffer waiters; when the pool runs short, the world flush early, then close the oldest stalled buffer holders | `input.rs`, `pressure.rs` |
//! | 9 | read and decode ready connections (bounded per pass) | `input.rs` |
//! | 10 | timers | `timers.rs` |
//! | 15, 17, 18 | publish counters, health, the watchdog, the end of a drain | here |
//! | 16 | summarise limits hit | `limit_log.rs` |
//!
//! Readiness is edge-triggered: sockets are registered once for readable
//! and writable, and the reactor remembers "readable, not yet drained" in
//! [`Conn::readable`]. A connection that stops reading for backpressure
//! (waiting for a backend, output too large, no buffer) keeps the flag and
//! is put back on the ready list when the reason goes away.
//!
//! The loop reaches the operating system only through [`net::Net`]: mio in
//! production ([`net::Mio`]), a simulated network and clock in the seeded
//! simulation (`sim.rs`), which thus runs this very loop; its probe
//! (`probe.rs`) sees every state machine step, where production's sees
//! nothing and costs nothing.

mod actions;
mod admission;
mod close;
mod input;
mod limit_log;
pub mod net;
mod output;
mod poll;
mod pressure;
#[doc(hidden)]
pub mod probe;
mod reload;
mod runs;
#[doc(hidden)]
pub mod sim;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Poll, Token};
use slab::Slab;

use crate::buf::BufferPool;
use crate::conn::calls::ServerEntry;
use crate::conn::output::OutQueue;
use crate::conn::state::{Action, Ctx, GameEvent, UtcTime};
use crate::conn::wire::{Announced, FirstPacket, PacketIds};
use crate::conn::Conn;
use crate::ids::{ConnRef, SessionId, SessionMap};
use crate::metrics::{Health, ReactorCounters};
use crate::protocol::codec::PreparedSeeds;
use crate::protocol::Codec;
use crate::rpc::types::Job;
use crate::rpc::Bridge;
use limit_log::LimitLog;
use net::{EventList, Mio, Net};
use probe::{NoProbe, Probe};
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
/// Pooled buffers' worth of queued output memory at which a connection
/// stops decoding until its client reads.
const OUTPUT_PAUSE_BUFFERS: usize = 4;
/// Pooled buffers one connection may hold at once, input and output
/// together, whatever it sends, receives or fails to read. Decoding pauses
/// at `OUTPUT_PAUSE_BUFFERS` of output, so only replies to requests already
/// in flight come near it; a reply past it closes the connection
/// (`output_limit`).
pub const BUFFER_BUDGET: usize = 8;
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
    /// Wire codec (its kind; the tables follow the dialect).
    pub codec: Codec,
    /// Packet id numbering: one dialect, or chosen per connection.
    pub packet_ids: PacketIds,
    /// The irose seeds announced in 0x70A and 0x711.
    pub announced: Announced,
    /// The seeded tables a first packet is tried against (prepared at
    /// start-up, off the reactor thread; empty unless irose is served).
    pub seeds: &'static PreparedSeeds,
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
    /// Time from a frame's first byte to its last (PROXY header included).
    pub frame_timeout: Duration,
    /// Backend deadline.
    pub rpc_deadline: Duration,
    /// Wrong-state budget.
    pub wrong_state_budget: u32,
    /// Packets per second (0 = unlimited).
    pub packets_per_sec: u32,
    /// Packet burst.
    pub packet_burst: u32,
    /// Chat messages per second per player (0 = unlimited).
    pub chat_per_sec: u32,
    /// Bytes of text per chat message.
    pub chat_max_bytes: usize,
    /// How long world output may wait to be written with what follows it
    /// (zero: in the pass it arrives).
    pub world_flush: Duration,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
    /// Expect a PROXY protocol header first (from trusted sources only).
    pub proxy_protocol: bool,
    /// Networks allowed to send a PROXY header.
    pub proxy_trusted: Vec<(IpAddr, u8)>,
}

/// Everything but the connection table, so that a connection and the rest
/// of the loop can be borrowed at the same time.
struct Env<P> {
    cfg: ReactorConfig,
    /// How a connection's first packet decides its codec and dialect.
    first: FirstPacket,
    /// Broadcasts to the same targets gathered in this drain (`runs.rs`).
    run: runs::Run,
    /// A run's frames per (dialect, codec) while `end_run` queues it;
    /// empty otherwise, kept for its memory.
    run_frames: Vec<runs::RunFrames>,
    pool: BufferPool,
    /// Buffers kept back for replies: reading stops below this.
    read_reserve: usize,
    bridge: Bridge,
    counters: ReactorCounters,
    timers: Timers,
    /// World routing: session → connection (bound while joining / in world).
    sessions: SessionMap<ConnRef>,
    /// irose sessions' char connections (bound in character select), which
    /// their map connections tell about the game.
    char_conns: SessionMap<ConnRef>,
    /// Game events told this pass, delivered by `relay_game_events`.
    told: Vec<(SessionId, GameEvent)>,
    /// Connections whose session another connection bound since: closed as
    /// `kicked` once the binding step is done (docs/protocol.md §9 D15).
    displaced: Vec<ConnRef>,
    per_ip: HashMap<IpAddr, u32>,
    servers: Vec<ServerEntry>,
    /// Connections with input work for this pass / the next pass.
    ready: Vec<usize>,
    next_ready: Vec<usize>,
    /// Connections waiting for a buffer from the pool, oldest first; each at
    /// most once (`Conn::in_pool_wait`).
    pool_wait: VecDeque<usize>,
    /// Scratch list of buffer holders (last progress, slot) for choosing
    /// whom pool pressure closes; kept between uses.
    holders: Vec<(Instant, usize)>,
    /// Queued output memory above which a connection stops decoding
    /// (backpressure: a client that does not read cannot hold more than a
    /// few buffers).
    output_pause: usize,
    /// Connections with output to flush.
    dirty: Vec<usize>,
    /// Connections whose world output waits for the world flush, written
    /// at `world_flush_at` (each at most once, `Conn::in_deferred`;
    /// docs/architecture.md §3). Their queues may also hold the rest of a
    /// write the socket refused (`Conn::write_blocked`).
    deferred: Vec<usize>,
    /// When the deferred world output is written: `WORLD_FLUSH_MS` after
    /// the first of it was queued; `None` while none waits.
    world_flush_at: Option<Instant>,
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
    cleanup: VecDeque<Job>,
    /// Limits hit since the last summary log line.
    limits: LimitLog,
    /// Watches the state machine's steps (nothing in production).
    probe: P,
}

/// The event loop and everything it owns, over the net `N` (mio in
/// production) with the probe `P` (nothing in production).
pub struct Reactor<N: Net = Mio, P: Probe = NoProbe> {
    net: N,
    listener: Option<N::Listener>,
    conns: Slab<Conn<N::Stream>>,
    env: Env<P>,
    shutdown: Arc<AtomicBool>,
    health: Arc<Health>,
    watchdog: Option<Duration>,
    /// Something may have been counted since the last publish.
    unpublished: bool,
    /// Half-closed sockets waiting for the client's EOF (at most
    /// `LINGER_MAX`, each for at most `LINGER`). Deregistered: polled each
    /// pass while any exist.
    lingering: Vec<(N::Stream, Instant)>,
    /// When the watchdog was last pinged.
    last_ping: Instant,
    /// When the counters were last published.
    last_publish: Instant,
    /// New settings from a reload (see `reload.rs`).
    updates: Option<std::sync::mpsc::Receiver<ReactorConfig>>,
}

impl Reactor {
    /// Builds the loop around a bound listener and allocates the buffer pool
    /// (`pool` = buffer count, buffer size). `poll` must be the `Poll` the
    /// bridge's waker was made from (token [`WAKER`]). The reactor is not
    /// `Send`: build it on the thread that runs it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        listener: TcpListener,
        cfg: ReactorConfig,
        pool: (usize, usize),
        bridge: Bridge,
        counters: ReactorCounters,
        shutdown: Arc<AtomicBool>,
        health: Arc<Health>,
    ) -> io::Result<Reactor> {
        let parts = Parts {
            cfg,
            pool,
            bridge,
            counters,
            shutdown,
            health,
        };
        Reactor::with_net(Mio::new(poll), listener, parts, NoProbe)
    }
}

/// What a reactor is built from besides its net, listener and probe.
#[doc(hidden)]
pub struct Parts {
    /// The settings.
    pub cfg: ReactorConfig,
    /// Buffer count and buffer size of the pool.
    pub pool: (usize, usize),
    /// The reactor's end of the bridge.
    pub bridge: Bridge,
    /// Where the counters are published.
    pub counters: ReactorCounters,
    /// Set to request a graceful shutdown.
    pub shutdown: Arc<AtomicBool>,
    /// The health probe's view of the loop.
    pub health: Arc<Health>,
}

impl<N: Net, P: Probe> Reactor<N, P> {
    /// [`Reactor::new`] over any net, with a probe: how the seeded
    /// simulation builds the production loop over its simulated network.
    #[doc(hidden)]
    pub fn with_net(
        net: N,
        mut listener: N::Listener,
        parts: Parts,
        probe: P,
    ) -> io::Result<Reactor<N, P>> {
        net.register_listener(&mut listener, LISTENER)?;
        let cfg = parts.cfg;
        let pool = BufferPool::new(parts.pool.0, parts.pool.1);
        let output_pause = OUTPUT_PAUSE_BUFFERS * pool.buffer_size();
        let read_reserve = (pool.total() / 16).clamp(1, 256);
        let first = FirstPacket::new(cfg.packet_ids, cfg.codec.kind(), cfg.seeds);
        let now = net.now();
        Ok(Reactor {
            listener: Some(listener),
            conns: Slab::with_capacity(cfg.max_connections.min(1 << 16)),
            env: Env {
                first,
                run: runs::Run::default(),
                run_frames: Vec::new(),
                pool,
                read_reserve,
                output_pause,
                bridge: parts.bridge,
                counters: parts.counters,
                timers: Timers::default(),
                sessions: SessionMap::default(),
                char_conns: SessionMap::default(),
                told: Vec::new(),
                displaced: Vec::new(),
                per_ip: HashMap::new(),
                servers: Vec::new(),
                ready: Vec::new(),
                next_ready: Vec::new(),
                pool_wait: VecDeque::new(),
                holders: Vec::new(),
                dirty: Vec::new(),
                deferred: Vec::new(),
                world_flush_at: None,
                closing: Vec::new(),
                actions: Vec::with_capacity(8),
                next_generation: 0,
                utc: UtcTime::default(),
                draining: None,
                accept_paused_until: None,
                completions_pending: false,
                cleanup: VecDeque::new(),
                limits: LimitLog::new(now),
                probe,
                cfg,
            },
            shutdown: parts.shutdown,
            health: parts.health,
            watchdog: crate::systemd::watchdog_interval(),
            unpublished: true,
            lingering: Vec::new(),
            last_ping: now,
            last_publish: now,
            updates: None,
            net,
        })
    }

    /// Runs until shutdown is requested and the connections are drained.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = N::Events::with_capacity(1024);
        let start = self.net.now();
        self.last_ping = start;
        self.last_publish = start;
        self.health.tick();
        loop {
            if self.pass(&mut events)? == Pass::Stopped {
                return Ok(());
            }
        }
    }

    /// One pass of the loop. The numbered steps are those of
    /// docs/architecture.md §3; timers run before the flush so that what
    /// they queue goes out in the same pass. Public for the seeded
    /// simulation, which runs the loop pass by pass.
    #[doc(hidden)]
    pub fn pass(&mut self, events: &mut N::Events) -> io::Result<Pass> {
        // 1. and 2. Poll, with a timeout equal to the next deadline.
        let now = self.wait(events)?;
        self.apply_updates(now);
        // 3. The listener accepts; sockets become ready.
        let wake = self.socket_events(events, now);
        // 4. Completions become inputs to their connections.
        if wake || self.env.completions_pending {
            self.complete(now);
        }
        // 5. Cleanup a full queue refused is tried again.
        if !self.env.cleanup.is_empty() {
            self.env.retry_cleanup();
        }
        // 6. A shutdown request stops accepting.
        if self.shutdown.load(Ordering::Acquire) && self.env.draining.is_none() {
            self.begin_drain(now);
        }
        // 7. A pause after running out of descriptors ends.
        self.resume_accept(now);
        // 8. and 9. Buffer waiters (closing the oldest stalled buffer holders
        // when the pool runs short), then read and decode the ready connections.
        self.relieve_pool_pressure(now);
        self.resume_pool_waiters();
        self.service_ready(now);
        // 10. Timers.
        self.expire_timers(now);
        // What irose map connections told their char connections.
        self.relay_game_events(now);
        // 11. Flush queued output.
        self.flush_dirty(now);
        // 12. to 14. Drain at shutdown, reap, linger.
        if self.env.draining.is_some() {
            self.drain_step(now);
        }
        self.reap(now);
        // Farewells of reaped map connections (flushed next pass).
        self.relay_game_events(now);
        if !self.lingering.is_empty() {
            self.linger(now);
        }
        // 15. to 17. Counters, the limit summary, health and the watchdog.
        self.publish(now);
        self.env.limits.report(now);
        self.health.tick_at(now);
        self.watchdog(now);
        // 18. The end of a drain.
        Ok(self.stop_if_drained(now))
    }

    /// Counters are plain integers; they reach the registry at most every
    /// `PUBLISH_INTERVAL`, not on every pass.
    fn publish(&mut self, now: Instant) {
        if self.unpublished && now.duration_since(self.last_publish) >= PUBLISH_INTERVAL {
            self.env.counters.set_active(self.conns.len());
            self.env
                .counters
                .set_in_world(crate::conn::players_in_world(&self.conns));
            self.env
                .counters
                .set_pool_available(self.env.pool.available());
            self.env.counters.publish();
            self.unpublished = false;
            self.last_publish = now;
        }
    }

    fn watchdog(&mut self, now: Instant) {
        if let Some(period) = self.watchdog {
            if now.duration_since(self.last_ping) >= period {
                crate::systemd::watchdog_ping();
                self.last_ping = now;
            }
        }
    }

    /// Ends the loop once a drain finished or its grace ran out.
    fn stop_if_drained(&mut self, now: Instant) -> Pass {
        if let Some(deadline) = self.env.draining {
            let drained = self.conns.is_empty() && self.lingering.is_empty();
            if drained || now >= deadline {
                self.close_all();
                return Pass::Stopped;
            }
        }
        Pass::Running
    }

    /// The probe, for the seeded simulation to read what it saw.
    #[doc(hidden)]
    pub fn probe(&mut self) -> &mut P {
        &mut self.env.probe
    }

    /// The connections in the table, for the seeded simulation's checks.
    #[doc(hidden)]
    pub fn connections(&self) -> impl Iterator<Item = &Conn<N::Stream>> + '_ {
        self.conns.iter().map(|(_, conn)| conn)
    }

    /// The world routes (session → connection), for the same checks.
    #[doc(hidden)]
    pub fn routes(&self) -> impl Iterator<Item = (SessionId, ConnRef)> + '_ {
        self.env.sessions.iter().map(|(s, c)| (*s, *c))
    }
}

/// How a pass ended.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The loop goes on.
    Running,
    /// Drained: the loop is over.
    Stopped,
}

impl<P> Env<P> {
    fn ctx(&self) -> Ctx<'_> {
        context(&self.cfg, &self.servers, self.utc)
    }

    /// The client is not reading its replies: decode nothing more for it.
    fn output_paused(&self, output: &OutQueue) -> bool {
        output.memory() >= self.output_pause
    }
}

/// Pooled buffers the output queue of `conn` may hold: the budget less the
/// input buffer.
fn output_budget<S>(conn: &Conn<S>) -> usize {
    BUFFER_BUDGET - usize::from(conn.input.is_some())
}

/// The state machine's settings (a function of the fields it reads, so that
/// a step can borrow them next to the probe).
fn context<'a>(cfg: &'a ReactorConfig, servers: &'a [ServerEntry], utc: UtcTime) -> Ctx<'a> {
    cfg.session_ctx(servers, utc)
}

impl ReactorConfig {
    /// The state machine's view of these settings, with the server list
    /// and the time of this pass. The one place a [`Ctx`] is built: tests
    /// start from `Config::defaults().reactor_config(..).session_ctx(..)`
    /// and override only what they vary.
    pub fn session_ctx<'a>(&'a self, servers: &'a [ServerEntry], utc: UtcTime) -> Ctx<'a> {
        Ctx {
            public_addr: &self.public_addr,
            public_port: self.public_port,
            servers,
            wrong_state_budget: self.wrong_state_budget,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            rpc_deadline: self.rpc_deadline,
            refresh_interval: REFRESH_INTERVAL,
            packets_per_sec: self.packets_per_sec,
            packet_burst: self.packet_burst,
            chat_per_sec: self.chat_per_sec,
            chat_max_bytes: self.chat_max_bytes,
            announced: self.announced,
            utc,
        }
    }

    /// The settings of an empty command line and environment, advertising
    /// port 29000: what tests build contexts from.
    #[doc(hidden)]
    pub fn defaults() -> &'static ReactorConfig {
        static DEFAULTS: std::sync::OnceLock<ReactorConfig> = std::sync::OnceLock::new();
        DEFAULTS.get_or_init(|| crate::config::Config::defaults().reactor_config(29000))
    }
}

fn push_once(list: &mut Vec<usize>, flag: &mut bool, idx: usize) {
    if !*flag {
        *flag = true;
        list.push(idx);
    }
}
