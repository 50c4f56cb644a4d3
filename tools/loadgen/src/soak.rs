//! The soak scenario: hold many connections with a realistic mix of traffic
//! for minutes and watch the server for slow leaks.
//!
//! One event loop drives five kinds of connections at once:
//!
//! | kind | what it does |
//! |---|---|
//! | idle | ACCEPT_REQ, then ALIVE every `alive_interval` (below the gateway's idle timeout), nothing else |
//! | echo | STRESS (plain codec; SCREEN_SHOT_TIME in `rose`) on an open-loop schedule, `echo_rate`/s in all |
//! | map | bots that went to one map ([`Goal::Map`]) and stay there (char + map connections), ALIVE on both |
//! | chat | `chatters` of the map bots send NORMAL_CHAT at `chat_rate`/s each; every bot receives it |
//! | churn | login flows ([`Goal::CharList`]) started at `churn_rate`/s, at most `churn_slots` at once, each slot reusing one account, each flow two fresh connections closed by the client at the end |
//!
//! Idle connections fill the rest of `connections`, so the total held is
//! constant (± the churn flows in flight). Every `interval` a [`Sample`] is
//! taken: server RSS and open descriptors (from `/proc`, else from the
//! metrics endpoint), buffer pool in use and connections active (metrics
//! endpoint), and the traffic counters. At the end the traffic stops for
//! `quiesce` (in-flight replies drain first), a last sample is taken, every
//! connection is closed and the server is watched going back to zero.
//!
//! The [`Verdict`] compares the samples after warm-up: RSS growth within
//! tolerance, descriptors tracking connections, the buffer pool back near
//! zero once quiet, no close the client did not ask for, and every request
//! answered. It is a leak detector, not a benchmark: no latency target.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{AcceptReq, Alive};
use packet_service::protocol::CodecKind;
use serde::Serialize;

use crate::bots::{run_prefix, BotOpts, Bots, Goal, TAG_BOT};
use crate::echo::{EchoLoad, EchoProto, Pacing, TAG_ECHO};
use crate::net::{raise_nofile_limit, Net, NetEvent};
use crate::results::{utc_now, Machine};
use crate::stats::{Latency, ProcSample, Progress};
use crate::wire::Wire;

/// Tag kind of churn bot connections.
const TAG_CHURN: usize = 3 << 32;
/// Tag kind of idle connections.
const TAG_IDLE: usize = 4 << 32;
const TAG_LOW: usize = (1 << 32) - 1;

/// File descriptors kept free for everything else, per process.
const FD_RESERVE: u64 = 64;

/// Largest metrics response read (the text format of a few hundred series).
const METRICS_MAX: usize = 4 << 20;

/// Options of the soak scenario.
#[derive(Clone, Debug)]
pub struct SoakOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// Connections held in all (idle ones fill what the others leave).
    pub connections: usize,
    /// Time the full mix runs (after setup).
    pub duration: Duration,
    /// Time between two samples.
    pub interval: Duration,
    /// Samples taken earlier than this into the run are warm-up.
    pub warmup: Duration,
    /// Quiet time before the last sample.
    pub quiesce: Duration,
    /// ALIVE period of idle and map connections.
    pub alive_interval: Duration,
    /// Echo connections.
    pub echo_connections: usize,
    /// Echo requests per second, all echo connections together.
    pub echo_rate: f64,
    /// Bots on the map.
    pub map_bots: usize,
    /// Map bots that chat.
    pub chatters: usize,
    /// Messages per second per chatter.
    pub chat_rate: f64,
    /// Login flows started per second.
    pub churn_rate: f64,
    /// Login flows in flight at most (also the number of accounts reused).
    pub churn_slots: usize,
    /// Connects in progress at once while opening the idle connections.
    pub connect_window: usize,
    /// Time allowed to open everything and reach the map.
    pub setup_timeout: Duration,
    /// The server process (RSS, descriptors, CPU).
    pub server_pid: Option<u32>,
    /// The gateway's metrics endpoint (loopback).
    pub metrics: Option<SocketAddr>,
    /// RSS growth tolerated, percent of the reference sample.
    pub rss_tolerance_pct: f64,
    /// RSS growth tolerated, MiB (the larger of the two applies).
    pub rss_tolerance_mib: f64,
    /// Buffers still lent out after the quiet time that are tolerated.
    pub pool_tolerance: u64,
    /// Progress line on stderr.
    pub progress: bool,
}

/// One measurement of the server and of the traffic so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    /// Seconds since the mix started (negative: before it, during setup).
    pub elapsed_s: f64,
    /// `baseline` (before connecting), `run`, `quiesced`, `closed`.
    pub phase: &'static str,
    /// Server resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Server open descriptors.
    pub fds: Option<u64>,
    /// Server CPU seconds (user + system) so far.
    pub cpu_s: Option<f64>,
    /// `packet_service_buffer_pool_size`.
    pub pool_size: Option<u64>,
    /// `packet_service_buffer_pool_available`.
    pub pool_available: Option<u64>,
    /// Size − available.
    pub pool_in_use: Option<u64>,
    /// `packet_service_connections_active`.
    pub connections_active: Option<u64>,
    /// Connections the client holds (connecting or open).
    pub client_connections: u64,
    /// Echo replies received.
    pub echoes: u64,
    /// ALIVE packets sent.
    pub alives: u64,
    /// Login flows completed.
    pub logins: u64,
    /// Chat messages sent.
    pub chats: u64,
    /// Chat deliveries received (all bots).
    pub deliveries: u64,
    /// Closes the client did not ask for, so far.
    pub unexpected_closes: u64,
}

/// One check of the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Whether it passed (`None`: not measurable in this run).
    pub ok: Option<bool>,
    /// The figures behind it.
    pub detail: String,
}

/// The verdict: flat or not, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Every check passed (unmeasurable ones do not fail it).
    pub flat: bool,
    /// The checks.
    pub checks: Vec<Check>,
}

/// Everything a soak run produces (the JSON document).
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// `soak`.
    pub scenario: &'static str,
    /// When the run ended (UTC, RFC 3339).
    pub date: String,
    /// Parameters as run.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The samples, in order.
    pub samples: Vec<Sample>,
    /// Summary figures (latencies in µs, counts).
    pub figures: BTreeMap<String, f64>,
    /// Failures and unexpected closes by cause.
    pub failures: BTreeMap<String, u64>,
    /// Server-side closes by reason during the run (metrics delta).
    pub server_closes: BTreeMap<String, u64>,
    /// Anything the reader should know.
    pub notes: Vec<String>,
    /// Where it ran.
    pub machine: Machine,
    /// Flat or not.
    pub verdict: Verdict,
}

/// Where one idle connection is.
#[derive(Copy, Clone, PartialEq, Eq)]
enum IdleState {
    Connecting,
    Waiting,
    Held,
    /// Closed by the client at teardown.
    Closed,
    /// Lost: refused, closed by the server, or answered wrongly.
    Lost,
}

struct IdleConn {
    id: usize,
    state: IdleState,
}

/// The idle connections and their ALIVE schedule.
struct IdleSet {
    conns: Vec<IdleConn>,
    /// (due, index) in due order: every entry is pushed `alive_interval`
    /// after the one it replaces, so pushes keep the queue sorted.
    due: VecDeque<(Instant, usize)>,
    accept: Vec<u8>,
    alive: Vec<u8>,
    wire: Wire,
    scratch: Vec<u8>,
    connecting: usize,
    held: usize,
    alives: u64,
    sending: bool,
}

impl IdleSet {
    fn on_event(
        &mut self,
        net: &mut Net,
        ev: NetEvent,
        now: Instant,
        interval: Duration,
        failures: &mut BTreeMap<String, u64>,
    ) {
        let id = match ev {
            NetEvent::Connected(id) | NetEvent::Input(id) | NetEvent::Closed(id, _) => id,
        };
        let idx = net.tag(id) & TAG_LOW;
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        match ev {
            NetEvent::Connected(_) => {
                if c.state == IdleState::Connecting {
                    c.state = IdleState::Waiting;
                    self.connecting -= 1;
                    net.send(id, &self.accept);
                }
            }
            NetEvent::Input(_) => loop {
                let frame = match self.wire.next_packet(net.input(id), &mut self.scratch) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_) => {
                        *failures.entry("idle_bad_frame".into()).or_default() += 1;
                        net.close(id);
                        self.lose(idx);
                        break;
                    }
                };
                net.consume(id, frame.wire_len);
                let c = &mut self.conns[idx];
                if c.state == IdleState::Waiting
                    && frame.ptype == Some(PacketType::PAKSS_ACCEPT_REPLY)
                {
                    c.state = IdleState::Held;
                    self.held += 1;
                    self.due.push_back((now + interval, idx));
                } else {
                    let what = frame.ptype.map_or("unknown", |p| p.name());
                    *failures
                        .entry(format!("idle_unexpected_packet_{what}"))
                        .or_default() += 1;
                }
            },
            NetEvent::Closed(_, cause) => {
                *failures
                    .entry(format!("idle_{}", cause.label()))
                    .or_default() += 1;
                self.lose(idx);
            }
        }
    }

    fn lose(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        match c.state {
            IdleState::Connecting => self.connecting -= 1,
            IdleState::Held => self.held -= 1,
            _ => {}
        }
        c.state = IdleState::Lost;
    }

    /// Sends the ALIVEs that are due.
    fn on_timer(&mut self, net: &mut Net, now: Instant, interval: Duration) {
        // Bounded by the queue length: each entry is popped once per pass.
        for _ in 0..self.due.len() {
            let Some(&(due, idx)) = self.due.front() else {
                break;
            };
            if due > now {
                break;
            }
            self.due.pop_front();
            let c = &self.conns[idx];
            if c.state != IdleState::Held || !self.sending {
                continue;
            }
            net.send(c.id, &self.alive);
            self.alives += 1;
            self.due.push_back((now + interval, idx));
        }
    }
}

/// A pass of the event loop hands each event to the owner of its tag.
struct Mix {
    idle: IdleSet,
    echo: EchoLoad,
    map: Bots,
    churn: Bots,
    failures: BTreeMap<String, u64>,
    events: Vec<NetEvent>,
    alive_interval: Duration,
    /// ALIVE packets sent by map bots.
    map_alives: u64,
    /// Chat messages sent.
    chats: u64,
}

impl Mix {
    fn pass(&mut self, net: &mut Net, timeout: Duration) -> Result<(), String> {
        net.flush(&mut self.events);
        self.dispatch(net);
        net.poll(Some(timeout), &mut self.events)
            .map_err(|e| format!("poll: {e}"))?;
        self.dispatch(net);
        net.flush(&mut self.events);
        self.dispatch(net);
        Ok(())
    }

    fn dispatch(&mut self, net: &mut Net) {
        let now = Instant::now();
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            let id = match ev {
                NetEvent::Connected(id) | NetEvent::Input(id) | NetEvent::Closed(id, _) => id,
            };
            match net.tag(id) & !TAG_LOW {
                TAG_IDLE => {
                    self.idle
                        .on_event(net, ev, now, self.alive_interval, &mut self.failures)
                }
                TAG_ECHO => self.echo.on_event(net, ev, now),
                TAG_BOT => self.map.on_event(net, ev, now),
                TAG_CHURN => self.churn.on_event(net, ev, now),
                _ => {}
            }
        }
        self.events = events;
    }

    /// Closes the client did not ask for, so far.
    fn unexpected_closes(&self) -> u64 {
        let closes = |m: &BTreeMap<String, u64>| -> u64 {
            m.iter().filter(|(k, _)| is_close(k)).map(|(_, v)| v).sum()
        };
        closes(&self.failures)
            + closes(&self.echo.failures)
            + closes(&self.map.failures)
            + closes(&self.churn.failures)
    }
}

/// Whether a failure key names a close (or a refused connect) rather than a
/// wrong answer or a timeout.
fn is_close(key: &str) -> bool {
    ["peer_closed", "io_error", "connect_failed", "closed_"]
        .iter()
        .any(|p| key.contains(p))
}

/// The soft open-files limit of another process, from /proc/PID/limits.
fn process_nofile(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Open descriptors of a process (entries of /proc/PID/fd).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// `GET /metrics` over HTTP/1.0 (no chunking), bounded in time and size.
pub fn scrape(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = Vec::new();
    s.take(METRICS_MAX as u64).read_to_end(&mut body).ok()?;
    let text = String::from_utf8_lossy(&body);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1);
    if !head.starts_with("HTTP/1.") || status != Some("200") {
        return None;
    }
    Some(body.to_owned())
}

/// The value of an unlabelled series in the Prometheus text format.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let v = rest.strip_prefix(' ')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Every series of a labelled metric: (the value of `label`, value).
pub fn metric_by_label(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let key = format!("{label}=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once('}')?;
            let start = labels.find(&key)? + key.len();
            let end = labels[start..].find('"')? + start;
            let v = value.split_whitespace().next()?.parse().ok()?;
            Some((labels[start..end].to_owned(), v))
        })
        .collect()
}

struct Sampler {
    pid: Option<u32>,
    metrics: Option<SocketAddr>,
    start: Instant,
    scrape_failures: u64,
}

impl Sampler {
    fn take(&mut self, phase: &'static str, mix: &Mix, net: &Net) -> (Sample, Option<String>) {
        let text = self.metrics.and_then(scrape);
        if self.metrics.is_some() && text.is_none() {
            self.scrape_failures += 1;
        }
        let m = |name: &str| {
            text.as_deref()
                .and_then(|t| metric(t, name))
                .map(|v| v.max(0.0) as u64)
        };
        let proc = self.pid.and_then(ProcSample::read);
        let rss_kib = proc
            .map(|p| p.rss_kib)
            .or_else(|| m("process_resident_memory_bytes").map(|b| b / 1024));
        let fds = self
            .pid
            .and_then(open_fds)
            .or_else(|| m("process_open_fds"));
        let pool_size = m("packet_service_buffer_pool_size");
        let pool_available = m("packet_service_buffer_pool_available");
        let now = Instant::now();
        let elapsed = if now >= self.start {
            now.duration_since(self.start).as_secs_f64()
        } else {
            -self.start.duration_since(now).as_secs_f64()
        };
        let sample = Sample {
            elapsed_s: (elapsed * 10.0).round() / 10.0,
            phase,
            rss_kib,
            fds,
            cpu_s: proc.map(|p| (p.cpu_secs * 100.0).round() / 100.0),
            pool_size,
            pool_available,
            pool_in_use: pool_size
                .zip(pool_available)
                .map(|(s, a)| s.saturating_sub(a)),
            connections_active: m("packet_service_connections_active"),
            client_connections: net.len() as u64,
            echoes: mix.echo.received,
            alives: mix.idle.alives + mix.map_alives,
            logins: mix.churn.completed,
            chats: mix.chats,
            deliveries: mix.map.delivered_total,
            unexpected_closes: mix.unexpected_closes(),
        };
        (sample, text)
    }
}

/// The header of the sample table.
pub fn sample_header() -> String {
    format!(
        "{:>7} {:<9} {:>8} {:>6} {:>7} {:>6} {:>6} {:>9} {:>7} {:>6} {:>9} {:>5}",
        "t s",
        "phase",
        "RSS MiB",
        "fds",
        "pool",
        "active",
        "held",
        "echoes",
        "logins",
        "chats",
        "delivered",
        "lost"
    )
}

/// One sample as a table row.
pub fn sample_row(s: &Sample) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    format!(
        "{:>7.1} {:<9} {:>8} {:>6} {:>7} {:>6} {:>6} {:>9} {:>7} {:>6} {:>9} {:>5}",
        s.elapsed_s,
        s.phase,
        s.rss_kib
            .map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
        opt(s.fds),
        opt(s.pool_in_use),
        opt(s.connections_active),
        s.client_connections,
        s.echoes,
        s.logins,
        s.chats,
        s.deliveries,
        s.unexpected_closes
    )
}

/// Map bots joining at once during setup.
const MAP_CONCURRENCY: usize = 50;
/// How often flow deadlines and map keepalives are looked at.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Longest wait for replies in flight when the traffic stops.
const DRAIN: Duration = Duration::from_secs(10);
/// Longest wait for the server to see every connection closed.
const TEARDOWN: Duration = Duration::from_secs(10);
/// Sends of one schedule caught up in one pass at most (a stalled loop
/// skips rather than bursts).
const CATCH_UP: u32 = 4;

/// Runs the soak scenario.
pub fn run(opts: &SoakOpts) -> Result<SoakReport, String> {
    let mut notes = Vec::new();
    let mut n = opts.connections;
    let own = raise_nofile_limit();
    if n as u64 + FD_RESERVE > own {
        let lower = own.saturating_sub(FD_RESERVE) as usize;
        notes.push(format!(
            "open-files limit of loadgen is {own}: {n} connections lowered to {lower}"
        ));
        n = lower;
    }
    if let Some(limit) = opts.server_pid.and_then(process_nofile) {
        if n as u64 + FD_RESERVE > limit {
            let lower = limit.saturating_sub(FD_RESERVE) as usize;
            notes.push(format!(
                "open-files limit of the server is {limit}: {n} connections lowered to {lower}"
            ));
            n = lower;
        }
    }
    let chatters = opts.chatters.min(opts.map_bots);
    // Map bots hold two connections (char + map); a churn flow at most two
    // for a moment (the login one is closed before the char one opens, but
    // its slot is released at the next poll).
    let busy = opts.echo_connections + 2 * opts.map_bots + 2 * opts.churn_slots;
    if busy >= n {
        return Err(format!(
            "{n} connections leave no idle ones: echo {} + 2×map {} + 2×churn slots {} = {busy}",
            opts.echo_connections, opts.map_bots, opts.churn_slots
        ));
    }
    let idle_n = n - busy;
    let mut params = BTreeMap::new();
    let mut param = |k: &str, v: serde_json::Value| {
        params.insert(k.to_owned(), v);
    };
    param("connections_requested", opts.connections.into());
    param("connections", n.into());
    param("idle_connections", idle_n.into());
    param("echo_connections", opts.echo_connections.into());
    param("echo_rate", opts.echo_rate.into());
    param("map_bots", opts.map_bots.into());
    param("chatters", chatters.into());
    param("chat_rate", opts.chat_rate.into());
    param("churn_rate", opts.churn_rate.into());
    param("churn_slots", opts.churn_slots.into());
    param("alive_interval_s", opts.alive_interval.as_secs_f64().into());
    param("duration_s", opts.duration.as_secs_f64().into());
    param("interval_s", opts.interval.as_secs_f64().into());
    param("warmup_s", opts.warmup.as_secs_f64().into());
    param("quiesce_s", opts.quiesce.as_secs_f64().into());
    param("codec", opts.codec.name().into());

    let wire = Wire::new(opts.codec, opts.dialect);
    let encode = |e: crate::wire::WireError| e.to_string();
    let proto = EchoProto::Gateway(wire);
    let echo_interval =
        Duration::from_secs_f64(opts.echo_connections.max(1) as f64 / opts.echo_rate.max(0.001));
    let prefix = run_prefix('s');
    let bot_opts = |goal, prefix: String, flow_timeout| BotOpts {
        addr: opts.addr,
        codec: opts.codec,
        dialect: opts.dialect,
        goal,
        prefix,
        flow_timeout,
    };
    let mut mix = Mix {
        idle: IdleSet {
            conns: Vec::with_capacity(idle_n),
            due: VecDeque::with_capacity(idle_n),
            accept: wire.frame(&AcceptReq).map_err(encode)?,
            alive: wire.frame(&Alive).map_err(encode)?,
            wire,
            scratch: Vec::new(),
            connecting: 0,
            held: 0,
            alives: 0,
            sending: true,
        },
        echo: EchoLoad::new(
            proto,
            Pacing::Open {
                interval: echo_interval,
            },
            opts.echo_connections,
        )
        .map_err(encode)?,
        map: Bots::new(bot_opts(
            Goal::Map,
            format!("{prefix}m"),
            opts.setup_timeout,
        )),
        churn: Bots::new(bot_opts(
            Goal::CharList,
            format!("{prefix}c"),
            Duration::from_secs(10),
        ))
        .with_tag(TAG_CHURN),
        failures: BTreeMap::new(),
        events: Vec::new(),
        alive_interval: opts.alive_interval,
        map_alives: 0,
        chats: 0,
    };
    mix.echo.set_recording(true);
    mix.map.set_recording(true);
    let mut net = Net::new(n + 16).map_err(|e| format!("poll: {e}"))?;
    let mut sampler = Sampler {
        pid: opts.server_pid,
        metrics: opts.metrics,
        start: Instant::now(),
        scrape_failures: 0,
    };
    let mut samples = Vec::new();

    // Baseline, before any connection (elapsed is fixed up below).
    let (baseline, baseline_text) = sampler.take("baseline", &mix, &net);
    let closes_before = baseline_text
        .as_deref()
        .map(|t| metric_by_label(t, "packet_service_connections_closed_total", "reason"))
        .unwrap_or_default();
    samples.push(baseline);

    // Setup: echo connections, map bots, then the idle ones in a window.
    let mut progress = Progress::new("soak setup", opts.progress);
    let setup_start = Instant::now();
    let setup_deadline = setup_start + opts.setup_timeout;
    mix.echo.connect_all(&mut net, opts.addr);
    let mut idle_started = 0usize;
    let mut map_alive_due: Vec<Instant> = Vec::new();
    let mut next_housekeeping = setup_start;
    let mut setup_complete = false;
    loop {
        let now = Instant::now();
        while (mix.map.started() as usize) < opts.map_bots
            && (mix.map.in_flight() as usize) < MAP_CONCURRENCY
        {
            mix.map.spawn(&mut net, now);
            map_alive_due.push(now + opts.alive_interval);
        }
        while idle_started < idle_n && mix.idle.connecting < opts.connect_window {
            let idx = mix.idle.conns.len();
            match net.connect(opts.addr, TAG_IDLE | idx) {
                Ok(id) => {
                    mix.idle.conns.push(IdleConn {
                        id,
                        state: IdleState::Connecting,
                    });
                    mix.idle.connecting += 1;
                }
                Err(e) => {
                    mix.idle.conns.push(IdleConn {
                        id: usize::MAX,
                        state: IdleState::Lost,
                    });
                    *mix.failures
                        .entry(format!("idle_connect_error_{:?}", e.kind()))
                        .or_default() += 1;
                }
            }
            idle_started += 1;
        }
        mix.idle.on_timer(&mut net, now, opts.alive_interval);
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            mix.map.check_timeouts(&mut net, now);
            keep_map_alive(&mut mix, &mut net, &mut map_alive_due, now, opts);
        }
        let idle_settled = idle_started == idle_n && mix.idle.connecting == 0 && {
            let waiting = mix
                .idle
                .conns
                .iter()
                .filter(|c| c.state == IdleState::Waiting)
                .count();
            waiting == 0
        };
        let map_settled = mix.map.started() as usize >= opts.map_bots && mix.map.in_flight() == 0;
        let echo_settled = mix.echo.open_count() == mix.echo.live_count();
        if idle_settled && map_settled && echo_settled {
            setup_complete = true;
            break;
        }
        if now >= setup_deadline {
            notes.push(format!(
                "setup timed out after {:.0} s: {} idle held, {} on the map, {} echo open",
                opts.setup_timeout.as_secs_f64(),
                mix.idle.held,
                mix.map.in_map().len(),
                mix.echo.open_count()
            ));
            break;
        }
        mix.pass(&mut net, Duration::from_millis(10))?;
        progress.tick(Instant::now(), || {
            format!(
                "idle {}/{idle_n} held, map {}/{} joined, echo {}/{} open, {} lost",
                mix.idle.held,
                mix.map.completed,
                opts.map_bots,
                mix.echo.open_count(),
                opts.echo_connections,
                mix.unexpected_closes()
            )
        });
    }
    progress.finish();
    let setup_s = setup_start.elapsed().as_secs_f64();
    let on_map = mix.map.in_map();
    let speakers: Vec<usize> = on_map.iter().copied().take(chatters).collect();
    if opts.progress {
        eprintln!(
            "setup {setup_s:.1} s: {} connections held ({} idle, {} echo, {} on the map)",
            net.len(),
            mix.idle.held,
            mix.echo.open_count(),
            on_map.len()
        );
    }

    // The mix: everything at once for `duration`, a sample every `interval`.
    let start = Instant::now();
    sampler.start = start;
    samples[0].elapsed_s = -((setup_s * 10.0).round() / 10.0);
    println!("{}", sample_header());
    println!("{}", sample_row(&samples[0]));
    let first = sampler.take("run", &mix, &net).0;
    println!("{}", sample_row(&first));
    samples.push(first);
    let end = start + opts.duration;
    let mut next_sample = start + opts.interval;
    let chat_interval = Duration::from_secs_f64(1.0 / opts.chat_rate.max(0.001));
    let mut chat_due: Vec<Instant> = (0..speakers.len())
        .map(|i| start + chat_interval.mul_f64(i as f64 / speakers.len() as f64))
        .collect();
    let churn_interval = Duration::from_secs_f64(1.0 / opts.churn_rate.max(0.001));
    let mut churn_due = start;
    let mut churn_slots: Vec<Option<usize>> = vec![None; opts.churn_slots];
    let mut churn_skipped = 0u64;
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let (echo_before, deliveries_before) = (mix.echo.received, mix.map.delivered_total);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut next = end.min(next_sample);
        mix.echo.on_timer(&mut net, now);
        for (i, &bot) in speakers.iter().enumerate() {
            let mut k = 0;
            while chat_due[i] <= now && k < CATCH_UP {
                if mix.map.chat(&mut net, bot, now) {
                    mix.chats += 1;
                }
                chat_due[i] += chat_interval;
                k += 1;
            }
            if chat_due[i] <= now {
                chat_due[i] = now + chat_interval;
            }
            next = next.min(chat_due[i]);
        }
        if opts.churn_rate > 0.0 && !churn_slots.is_empty() {
            let mut k = 0;
            while churn_due <= now && k < CATCH_UP {
                churn_due += churn_interval;
                k += 1;
                let free = churn_slots
                    .iter()
                    .position(|s| s.is_none_or(|idx| mix.churn.is_settled(idx)));
                match free {
                    Some(slot) => {
                        let user = format!("{prefix}c{slot}");
                        churn_slots[slot] = Some(mix.churn.spawn_as(&mut net, now, user));
                    }
                    None => churn_skipped += 1,
                }
            }
            if churn_due <= now {
                churn_due = now + churn_interval;
            }
            next = next.min(churn_due);
        }
        mix.idle.on_timer(&mut net, now, opts.alive_interval);
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            mix.map.check_timeouts(&mut net, now);
            mix.churn.check_timeouts(&mut net, now);
            keep_map_alive(&mut mix, &mut net, &mut map_alive_due, now, opts);
        }
        if now >= next_sample {
            next_sample += opts.interval;
            if next_sample <= now {
                next_sample = now + opts.interval;
            }
            let s = sampler.take("run", &mix, &net).0;
            println!("{}", sample_row(&s));
            samples.push(s);
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(5));
        mix.pass(&mut net, wait)?;
    }
    let run_s = start.elapsed().as_secs_f64();
    let server_after = opts.server_pid.and_then(ProcSample::read);
    let echoes_in_run = mix.echo.received - echo_before;
    let deliveries_in_run = mix.map.delivered_total - deliveries_before;
    let logins_in_run = mix.churn.completed;

    // Quiesce: stop sending, let what is in flight arrive, then stay quiet.
    mix.echo.stop_sending();
    mix.idle.sending = false;
    let on_map_now = mix.map.in_map().len() as u64;
    let deliveries_expected = mix.chats * on_map_now;
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until
        && (mix.echo.inflight() > 0
            || mix.churn.in_flight() > 0
            || mix.map.delivered_total < deliveries_expected)
    {
        mix.churn.check_timeouts(&mut net, Instant::now());
        mix.pass(&mut net, Duration::from_millis(10))?;
    }
    let quiet_until = Instant::now() + opts.quiesce;
    while Instant::now() < quiet_until {
        mix.pass(&mut net, Duration::from_millis(50))?;
    }
    let (quiesced, _) = sampler.take("quiesced", &mix, &net);
    println!("{}", sample_row(&quiesced));
    samples.push(quiesced);
    let unanswered = mix.echo.inflight();
    let unexpected = mix.unexpected_closes();

    // Teardown: close everything (idle ones with a reset: no TIME_WAIT
    // pile-up), wait until the server has let go of them all.
    for i in 0..mix.idle.conns.len() {
        let c = &mut mix.idle.conns[i];
        if matches!(c.state, IdleState::Held | IdleState::Waiting) {
            net.abort(c.id);
            c.state = IdleState::Closed;
        }
    }
    mix.echo.close_all(&mut net);
    mix.map.close_all(&mut net);
    mix.churn.close_all(&mut net);
    let torn_until = Instant::now() + TEARDOWN;
    let mut closed = sampler.take("closed", &mix, &net);
    while Instant::now() < torn_until && closed.0.connections_active.is_some_and(|a| a > 0) {
        let _ = net.poll(Some(Duration::from_millis(200)), &mut mix.events);
        mix.events.clear();
        closed = sampler.take("closed", &mix, &net);
    }
    let (closed, closed_text) = closed;
    println!("{}", sample_row(&closed));
    samples.push(closed);

    // Figures.
    let mut figures = BTreeMap::new();
    let mut fig = |k: &str, v: f64| {
        figures.insert(k.to_owned(), (v * 100.0).round() / 100.0);
    };
    fig("setup_s", setup_s);
    fig("run_s", run_s);
    fig("idle_held", mix.idle.held as f64);
    fig("map_bots_on_map", on_map.len() as f64);
    fig("map_bots_on_map_at_end", on_map_now as f64);
    fig("echoes_per_sec", echoes_in_run as f64 / run_s);
    fig("logins_per_sec", logins_in_run as f64 / run_s);
    fig("logins_completed", logins_in_run as f64);
    fig("churn_skipped_slots_busy", churn_skipped as f64);
    fig("deliveries_per_sec", deliveries_in_run as f64 / run_s);
    fig("chats_sent", mix.chats as f64);
    fig("deliveries_expected", deliveries_expected as f64);
    fig("deliveries_received", mix.map.delivered_total as f64);
    fig("alives_sent", (mix.idle.alives + mix.map_alives) as f64);
    fig("echo_unanswered", unanswered as f64);
    fig("metrics_scrape_failures", sampler.scrape_failures as f64);
    if let (Some(b), Some(a)) = (server_before, server_after) {
        fig("server_cpu_util", a.since(&b).0 / run_s);
    }
    let lat = |fig: &mut dyn FnMut(&str, f64), name: &str, l: &Latency| {
        if l.count() > 0 {
            fig(&format!("{name}_p50_us"), l.percentile_us(50.0));
            fig(&format!("{name}_p99_us"), l.percentile_us(99.0));
            fig(&format!("{name}_max_us"), l.percentile_us(100.0));
        }
    };
    lat(&mut fig, "echo_rtt", &mix.echo.rtt);
    lat(&mut fig, "login_flow", &mix.churn.flow);
    lat(&mut fig, "chat_delivery", &mix.map.delivery);

    let mut failures = BTreeMap::new();
    for (prefix, m) in [
        ("", &mix.failures),
        ("echo_", &mix.echo.failures),
        ("map_", &mix.map.failures),
        ("churn_", &mix.churn.failures),
    ] {
        for (k, v) in m {
            *failures.entry(format!("{prefix}{k}")).or_default() += v;
        }
    }
    if unanswered > 0 {
        failures.insert("echo_unanswered".into(), unanswered);
    }
    if mix.map.delivered_total < deliveries_expected {
        failures.insert(
            "chat_deliveries_missing".into(),
            deliveries_expected - mix.map.delivered_total,
        );
    }
    let server_closes = closed_text
        .as_deref()
        .map(|t| {
            metric_by_label(t, "packet_service_connections_closed_total", "reason")
                .into_iter()
                .filter_map(|(reason, after)| {
                    let before = closes_before
                        .iter()
                        .find(|(r, _)| *r == reason)
                        .map_or(0.0, |(_, v)| *v);
                    let d = (after - before).max(0.0) as u64;
                    (d > 0).then_some((reason, d))
                })
                .collect()
        })
        .unwrap_or_default();

    let verdict = judge(
        opts,
        &samples,
        &Outcome {
            setup_complete,
            unexpected,
            failures: failures
                .iter()
                .filter(|(k, _)| !is_close(k))
                .map(|(_, v)| v)
                .sum(),
        },
    );
    Ok(SoakReport {
        scenario: "soak",
        date: utc_now(),
        params,
        samples,
        figures,
        failures,
        server_closes,
        notes,
        machine: Machine::probe(),
        verdict,
    })
}

/// Sends ALIVE on both connections of every map bot whose turn it is.
fn keep_map_alive(
    mix: &mut Mix,
    net: &mut Net,
    due: &mut [Instant],
    now: Instant,
    opts: &SoakOpts,
) {
    if !mix.idle.sending {
        return;
    }
    for (idx, d) in due.iter_mut().enumerate() {
        if *d <= now {
            *d = now + opts.alive_interval;
            mix.map_alives += mix.map.keepalive(net, idx) as u64;
        }
    }
}

/// What the traffic did, besides the samples.
pub struct Outcome {
    /// Every connection was opened and every map bot joined.
    pub setup_complete: bool,
    /// Closes the client did not ask for (up to the quiesced sample).
    pub unexpected: u64,
    /// Failures that are not closes: wrong answers, timeouts, missing replies.
    pub failures: u64,
}

/// Judges the samples: flat or not.
pub fn judge(opts: &SoakOpts, samples: &[Sample], outcome: &Outcome) -> Verdict {
    let warm = opts.warmup.as_secs_f64();
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| (s.phase == "run" && s.elapsed_s >= warm) || s.phase == "quiesced")
        .collect();
    let quiesced = samples.iter().find(|s| s.phase == "quiesced");
    let closed = samples.iter().find(|s| s.phase == "closed");
    let mut checks = Vec::new();

    // RSS: the quiet end against the first sample after warm-up.
    let rss: Vec<(f64, u64)> = steady
        .iter()
        .filter_map(|s| s.rss_kib.map(|r| (s.elapsed_s, r)))
        .collect();
    checks.push(match (rss.first(), rss.last()) {
        (Some(&(_, first)), Some(&(_, last))) if rss.len() >= 2 => {
            let allowed = (first as f64 * opts.rss_tolerance_pct / 100.0)
                .max(opts.rss_tolerance_mib * 1024.0);
            let growth = last as i64 - first as i64;
            let max = rss.iter().map(|r| r.1).max().unwrap_or(last);
            Check {
                name: "rss",
                ok: Some(growth as f64 <= allowed),
                detail: format!(
                    "{:.1} → {:.1} MiB ({:+.1} MiB, allowed {:.1}; max {:.1}; slope {:+.0} KiB/min)",
                    first as f64 / 1024.0,
                    last as f64 / 1024.0,
                    growth as f64 / 1024.0,
                    allowed / 1024.0,
                    max as f64 / 1024.0,
                    slope_per_min(&rss)
                ),
            }
        }
        _ => unmeasured("rss", "fewer than two samples after warm-up"),
    });

    // Descriptors: the fds beyond the connections stay put, and go back to
    // that level once every connection is closed.
    let tolerance = 2 * opts.churn_slots as i64 + 8;
    let offsets: Vec<i64> = steady
        .iter()
        .filter_map(|s| Some(s.fds? as i64 - s.connections_active? as i64))
        .collect();
    let fds: Vec<u64> = steady.iter().filter_map(|s| s.fds).collect();
    checks.push(if offsets.len() >= 2 {
        let (lo, hi) = min_max(&offsets);
        let (flo, fhi) = min_max(&fds.iter().map(|&f| f as i64).collect::<Vec<_>>());
        let after = closed.and_then(|c| Some((c.fds?, c.connections_active?)));
        let after_ok = after.is_none_or(|(f, a)| a == 0 && (f as i64) <= hi);
        Check {
            name: "fds",
            ok: Some(hi - lo <= tolerance && fhi - flo <= tolerance && after_ok),
            detail: format!(
                "{flo}..{fhi} fds; fds − active {lo}..{hi} (spread allowed {tolerance}); after closing: {}",
                after.map_or("-".to_owned(), |(f, a)| format!("{f} fds, {a} active"))
            ),
        }
    } else {
        unmeasured("fds", "no fd count with connections active")
    });

    // Buffer pool: bounded while busy, back near zero when quiet.
    checks.push(match quiesced.and_then(|q| q.pool_in_use) {
        Some(quiet) => {
            let peak = steady
                .iter()
                .filter_map(|s| s.pool_in_use)
                .max()
                .unwrap_or(0);
            let size = quiesced.and_then(|q| q.pool_size).unwrap_or(0);
            Check {
                name: "pool",
                ok: Some(quiet <= opts.pool_tolerance),
                detail: format!(
                    "in use at most {peak} of {size} while busy, {quiet} when quiet (allowed {})",
                    opts.pool_tolerance
                ),
            }
        }
        None => unmeasured("pool", "no metrics endpoint"),
    });

    checks.push(Check {
        name: "disconnects",
        ok: Some(outcome.unexpected == 0),
        detail: format!("{} closes the client did not ask for", outcome.unexpected),
    });
    checks.push(Check {
        name: "traffic",
        ok: Some(outcome.setup_complete && outcome.failures == 0),
        detail: format!(
            "setup {}; {} failed or unanswered requests",
            if outcome.setup_complete {
                "complete"
            } else {
                "incomplete"
            },
            outcome.failures
        ),
    });
    Verdict {
        flat: checks.iter().all(|c| c.ok != Some(false)),
        checks,
    }
}

fn unmeasured(name: &'static str, why: &str) -> Check {
    Check {
        name,
        ok: None,
        detail: format!("not measured: {why}"),
    }
}

fn min_max(v: &[i64]) -> (i64, i64) {
    v.iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Least-squares slope of (seconds, KiB) points, in KiB per minute.
pub fn slope_per_min(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx * 60.0
    }
}

impl SoakReport {
    /// Prints the verdict and the summary figures on stdout.
    pub fn print(&self) {
        println!("== soak");
        for (k, v) in &self.figures {
            println!("   {k:<34} {v}");
        }
        if !self.failures.is_empty() {
            println!("   failures: {:?}", self.failures);
        }
        if !self.server_closes.is_empty() {
            println!("   server closes by reason: {:?}", self.server_closes);
        }
        for n in &self.notes {
            println!("   note: {n}");
        }
        for c in &self.verdict.checks {
            let mark = match c.ok {
                Some(true) => "ok  ",
                Some(false) => "FAIL",
                None => "n/a ",
            };
            println!("   {mark} {:<12} {}", c.name, c.detail);
        }
        println!(
            "verdict: {}",
            if self.verdict.flat {
                "FLAT"
            } else {
                "NOT FLAT"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        packet_service_buffer_pool_size 8192\n\
        packet_service_buffer_pool_available 8190\n\
        packet_service_connections_closed_total{reason=\"peer_closed\"} 12\n\
        packet_service_connections_closed_total{reason=\"idle_timeout\"} 3\n\
        process_open_fds 15023\n";

    #[test]
    fn metrics_are_read_by_exact_name() {
        assert_eq!(
            metric(TEXT, "packet_service_buffer_pool_size"),
            Some(8192.0)
        );
        assert_eq!(metric(TEXT, "packet_service_buffer_pool"), None);
        assert_eq!(metric(TEXT, "process_open_fds"), Some(15023.0));
        assert_eq!(
            metric_by_label(TEXT, "packet_service_connections_closed_total", "reason"),
            vec![("peer_closed".into(), 12.0), ("idle_timeout".into(), 3.0)]
        );
    }

    fn opts() -> SoakOpts {
        SoakOpts {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            codec: CodecKind::Plain,
            dialect: DialectId::Osirose,
            connections: 100,
            duration: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            warmup: Duration::from_secs(10),
            quiesce: Duration::from_secs(3),
            alive_interval: Duration::from_secs(10),
            echo_connections: 1,
            echo_rate: 1.0,
            map_bots: 1,
            chatters: 1,
            chat_rate: 1.0,
            churn_rate: 1.0,
            churn_slots: 2,
            connect_window: 8,
            setup_timeout: Duration::from_secs(10),
            server_pid: None,
            metrics: None,
            rss_tolerance_pct: 5.0,
            rss_tolerance_mib: 4.0,
            pool_tolerance: 16,
            progress: false,
        }
    }

    /// Samples at 0, 10, … 60 s with RSS growing by `kib_per_sample`, then
    /// a quiesced sample with `quiet_pool` buffers lent out and a closed one.
    fn samples(kib_per_sample: u64, quiet_pool: u64) -> Vec<Sample> {
        let s = |t: f64, phase, rss, fds, active, pool| Sample {
            elapsed_s: t,
            phase,
            rss_kib: Some(rss),
            fds: Some(fds),
            pool_size: Some(4096),
            pool_in_use: Some(pool),
            connections_active: Some(active),
            ..Sample::default()
        };
        let mut v = vec![s(-5.0, "baseline", 20_000, 20, 0, 0)];
        for i in 0..=6u64 {
            let rss = 60_000 + i * kib_per_sample;
            v.push(s(i as f64 * 10.0, "run", rss, 15_030 + i % 2, 15_000, 40));
        }
        v.push(s(
            63.0,
            "quiesced",
            60_000 + 7 * kib_per_sample,
            15_030,
            15_000,
            quiet_pool,
        ));
        v.push(s(64.0, "closed", 60_000, 30, 0, 0));
        v
    }

    fn verdict(samples: &[Sample], unexpected: u64) -> Verdict {
        let outcome = Outcome {
            setup_complete: true,
            unexpected,
            failures: 0,
        };
        judge(&opts(), samples, &outcome)
    }

    fn failed(v: &Verdict) -> Vec<&'static str> {
        v.checks
            .iter()
            .filter(|c| c.ok == Some(false))
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn steady_samples_are_flat() {
        let v = verdict(&samples(100, 0), 0);
        assert!(v.flat, "{v:?}");
        assert!(v.checks.iter().all(|c| c.ok == Some(true)), "{v:?}");
    }

    #[test]
    fn growing_rss_is_not_flat() {
        // 1 MiB per sample: 7 MiB over the run, above the 4 MiB allowed.
        let v = verdict(&samples(1024, 0), 0);
        assert_eq!(failed(&v), ["rss"]);
    }

    #[test]
    fn warm_up_growth_is_forgiven() {
        let mut s = samples(0, 0);
        s[1].rss_kib = Some(10_000); // the t = 0 sample, before warm-up
        assert!(verdict(&s, 0).flat);
    }

    #[test]
    fn buffers_kept_after_the_traffic_stops_are_not_flat() {
        let v = verdict(&samples(0, 500), 0);
        assert_eq!(failed(&v), ["pool"]);
    }

    #[test]
    fn fds_left_after_closing_are_not_flat() {
        let mut s = samples(0, 0);
        if let Some(c) = s.last_mut() {
            c.fds = Some(5_000);
        }
        assert_eq!(failed(&verdict(&s, 0)), ["fds"]);
    }

    #[test]
    fn a_close_the_client_did_not_ask_for_is_not_flat() {
        assert_eq!(failed(&verdict(&samples(0, 0), 1)), ["disconnects"]);
    }

    #[test]
    fn without_measurements_nothing_is_claimed() {
        let mut s = samples(0, 0);
        for x in &mut s {
            *x = Sample {
                elapsed_s: x.elapsed_s,
                phase: x.phase,
                ..Sample::default()
            };
        }
        let v = verdict(&s, 0);
        assert!(v.flat);
        assert_eq!(
            v.checks.iter().filter(|c| c.ok.is_none()).count(),
            3,
            "{v:?}"
        );
    }

    #[test]
    fn slope_of_a_line() {
        let pts = [(0.0, 100), (30.0, 130), (60.0, 160)];
        assert!((slope_per_min(&pts) - 60.0).abs() < 1e-9);
        assert_eq!(slope_per_min(&pts[..1]), 0.0);
    }
}
