//! Round-trip load: N connections each keeping P requests in flight
//! (closed loop) or sending at a fixed rate (open loop), with one latency
//! sample per reply.
//!
//! The request is the plain-codec STRESS packet (echoed by the gateway
//! itself, docs/protocol.md §9 D3), SCREEN_SHOT_TIME_REQ in the `rose` codec
//! (answered locally in every phase; STRESS cannot be carried there), or
//! Redis's inline `PING`. Replies arrive in order on a connection, so each
//! connection keeps a FIFO of send times.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::{DialectId, PacketType, STRESS_ID};
use packet_service::protocol::packets::ScreenShotTimeReq;
use packet_service::protocol::CodecKind;

use crate::net::{CloseCause, ConnId, Net, NetEvent};
use crate::results::RunResult;
use crate::stats::{si, Latency, ProcSample, Progress};
use crate::wire::{redis_simple_replies, Wire, WireError, REDIS_PING};

/// Tag kind of echo connections (high half of a [`Net`] tag).
pub const TAG_ECHO: usize = 1 << 32;

/// What an echo connection speaks.
#[derive(Copy, Clone, Debug)]
pub enum EchoProto {
    /// The gateway: STRESS (plain codec) or SCREEN_SHOT_TIME (rose codec).
    Gateway(Wire),
    /// Redis inline PING.
    Redis,
}

impl EchoProto {
    /// The gateway in `codec`.
    pub fn gateway(codec: CodecKind) -> EchoProto {
        EchoProto::Gateway(Wire::new(codec, DialectId::Osirose))
    }

    /// The bytes of one request.
    fn request(&self) -> Result<Vec<u8>, WireError> {
        match self {
            EchoProto::Gateway(w) if w.codec() == CodecKind::Plain => w.stress(b"ey"),
            EchoProto::Gateway(w) => w.frame(&ScreenShotTimeReq { count: 1 }),
            EchoProto::Redis => Ok(REDIS_PING.to_vec()),
        }
    }

    /// `packet-service` or `redis`.
    pub fn target(&self) -> &'static str {
        match self {
            EchoProto::Gateway(_) => "packet-service",
            EchoProto::Redis => "redis",
        }
    }
}

/// How requests are paced.
#[derive(Copy, Clone, Debug)]
pub enum Pacing {
    /// Keep `depth` requests in flight per connection; send one per reply.
    Closed {
        /// Pipeline depth P.
        depth: usize,
    },
    /// Send on a schedule regardless of replies: `interval` per connection.
    Open {
        /// Time between two requests of one connection.
        interval: Duration,
    },
}

struct EchoConn {
    id: Option<ConnId>,
    open: bool,
    /// Send times of the requests in flight, oldest first.
    inflight: VecDeque<Instant>,
    /// Open loop: when the next request is due.
    next_due: Instant,
}

/// A set of echo connections inside someone's event loop.
pub struct EchoLoad {
    proto: EchoProto,
    pacing: Pacing,
    request: Vec<u8>,
    batch: Vec<u8>,
    scratch: Vec<u8>,
    conns: Vec<EchoConn>,
    sending: bool,
    recording: bool,
    /// Requests sent.
    pub sent: u64,
    /// Replies received.
    pub received: u64,
    /// Replies received while recording.
    pub recorded: u64,
    /// Round-trip latency of replies received while recording.
    pub rtt: Latency,
    /// Connections that ended, by cause.
    pub failures: BTreeMap<String, u64>,
}

impl EchoLoad {
    /// `connections` connections, not yet connected.
    pub fn new(
        proto: EchoProto,
        pacing: Pacing,
        connections: usize,
    ) -> Result<EchoLoad, WireError> {
        let now = Instant::now();
        let request = proto.request()?;
        Ok(EchoLoad {
            proto,
            pacing,
            request,
            batch: Vec::new(),
            scratch: Vec::new(),
            conns: (0..connections)
                .map(|_| EchoConn {
                    id: None,
                    open: false,
                    inflight: VecDeque::new(),
                    next_due: now,
                })
                .collect(),
            sending: true,
            recording: false,
            sent: 0,
            received: 0,
            recorded: 0,
            rtt: Latency::new(),
            failures: BTreeMap::new(),
        })
    }

    fn fail(&mut self, why: &str) {
        *self.failures.entry(why.to_owned()).or_default() += 1;
    }

    /// Starts every connect.
    pub fn connect_all(&mut self, net: &mut Net, addr: SocketAddr) {
        for i in 0..self.conns.len() {
            match net.connect(addr, TAG_ECHO | i) {
                Ok(id) => self.conns[i].id = Some(id),
                Err(_) => self.fail(CloseCause::ConnectFailed.label()),
            }
        }
    }

    /// Connections whose connect completed and that are still open.
    pub fn open_count(&self) -> usize {
        self.conns.iter().filter(|c| c.open).count()
    }

    /// Connections still pending or open.
    pub fn live_count(&self) -> usize {
        self.conns.iter().filter(|c| c.id.is_some()).count()
    }

    /// Requests without a reply yet.
    pub fn inflight(&self) -> u64 {
        self.sent - self.received
    }

    /// Starts or stops recording latencies.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Stops sending new requests (the ones in flight still count).
    pub fn stop_sending(&mut self) {
        self.sending = false;
    }

    fn send_n(&mut self, net: &mut Net, idx: usize, n: usize, now: Instant) {
        let Some(id) = self.conns[idx].id else { return };
        if n == 0 {
            return;
        }
        self.batch.clear();
        for _ in 0..n {
            self.batch.extend_from_slice(&self.request);
            self.conns[idx].inflight.push_back(now);
        }
        net.send(id, &self.batch);
        self.sent += n as u64;
    }

    /// A [`NetEvent`] for a connection with the echo tag.
    pub fn on_event(&mut self, net: &mut Net, ev: NetEvent, now: Instant) {
        match ev {
            NetEvent::Connected(id) => {
                let idx = net.tag(id) & !TAG_ECHO;
                let Some(c) = self.conns.get_mut(idx) else {
                    return;
                };
                c.open = true;
                if let Pacing::Closed { depth } = self.pacing {
                    if self.sending {
                        self.send_n(net, idx, depth, now);
                    }
                } else {
                    c.next_due = now;
                }
            }
            NetEvent::Input(id) => {
                let idx = net.tag(id) & !TAG_ECHO;
                if let Err(why) = self.on_input(net, id, idx, now) {
                    net.close(id);
                    self.closed(idx, &why);
                }
            }
            NetEvent::Closed(id, cause) => {
                let idx = self
                    .conns
                    .iter()
                    .position(|c| c.id == Some(id))
                    .unwrap_or(usize::MAX);
                self.closed(idx, cause.label());
            }
        }
    }

    fn closed(&mut self, idx: usize, why: &str) {
        if let Some(c) = self.conns.get_mut(idx) {
            c.id = None;
            c.open = false;
            // Requests that will never be answered.
            self.sent -= c.inflight.len() as u64;
            c.inflight.clear();
        }
        self.fail(why);
    }

    fn on_input(
        &mut self,
        net: &mut Net,
        id: ConnId,
        idx: usize,
        now: Instant,
    ) -> Result<(), String> {
        let mut replies = 0usize;
        match self.proto {
            EchoProto::Redis => {
                let (n, used) = redis_simple_replies(net.input(id))?;
                net.consume(id, used);
                replies = n;
            }
            EchoProto::Gateway(wire) => loop {
                let frame = wire
                    .next_packet(net.input(id), &mut self.scratch)
                    .map_err(|e| format!("bad_frame: {e}"))?;
                let Some(f) = frame else { break };
                net.consume(id, f.wire_len);
                let expected = if wire.codec() == CodecKind::Plain {
                    f.command == STRESS_ID
                } else {
                    f.ptype == Some(PacketType::PAKSC_SCREEN_SHOT_TIME_REPLY)
                };
                if !expected {
                    return Err("unexpected_packet".into());
                }
                replies += 1;
            },
        }
        let c = &mut self.conns[idx];
        for _ in 0..replies {
            let Some(sent_at) = c.inflight.pop_front() else {
                return Err("reply_without_request".into());
            };
            if self.recording {
                self.rtt.record(now.saturating_duration_since(sent_at));
                self.recorded += 1;
            }
        }
        self.received += replies as u64;
        if self.sending {
            if let Pacing::Closed { .. } = self.pacing {
                self.send_n(net, idx, replies, now);
            }
        }
        Ok(())
    }

    /// Open loop: sends what is due; returns when the next request is due.
    pub fn on_timer(&mut self, net: &mut Net, now: Instant) -> Option<Instant> {
        let Pacing::Open { interval } = self.pacing else {
            return None;
        };
        if !self.sending {
            return None;
        }
        let mut next: Option<Instant> = None;
        for idx in 0..self.conns.len() {
            if !self.conns[idx].open {
                continue;
            }
            let mut due = 0;
            // Catch up at most a few requests: a stalled client loop must
            // not turn into a burst that measures itself.
            while self.conns[idx].next_due <= now && due < 4 {
                self.conns[idx].next_due += interval;
                due += 1;
            }
            if self.conns[idx].next_due <= now {
                self.conns[idx].next_due = now + interval;
            }
            self.send_n(net, idx, due, now);
            let d = self.conns[idx].next_due;
            next = Some(next.map_or(d, |n: Instant| n.min(d)));
        }
        next
    }

    /// Closes every connection.
    pub fn close_all(&mut self, net: &mut Net) {
        for c in &mut self.conns {
            if let Some(id) = c.id.take() {
                net.close(id);
            }
            c.open = false;
        }
    }
}

/// Options of the closed-loop echo scenario.
#[derive(Clone, Debug)]
pub struct EchoOpts {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Gateway or Redis.
    pub proto: EchoProto,
    /// N.
    pub connections: usize,
    /// P.
    pub pipeline: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Process whose CPU time is measured.
    pub server_pid: Option<u32>,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Time allowed for all connects, and for the replies in flight at the end.
const SETTLE: Duration = Duration::from_secs(10);

/// Runs the closed-loop echo scenario.
pub fn run(opts: &EchoOpts) -> Result<RunResult, String> {
    let target = opts.proto.target();
    let short = if matches!(opts.proto, EchoProto::Redis) {
        "redis"
    } else {
        "gateway"
    };
    let scenario = if matches!(opts.proto, EchoProto::Redis) {
        "redis"
    } else {
        "echo"
    };
    let mut result = RunResult::new(
        &format!("echo-p{}-{short}", opts.pipeline),
        scenario,
        target,
    );
    result.param("connections", opts.connections);
    result.param("pipeline", opts.pipeline);
    result.param("duration_s", opts.duration.as_secs_f64());
    result.param("warmup_s", opts.warmup.as_secs_f64());
    if let EchoProto::Gateway(w) = opts.proto {
        result.param("codec", w.codec().name());
    }

    let mut net = Net::new(opts.connections).map_err(|e| format!("poll: {e}"))?;
    let mut load = EchoLoad::new(
        opts.proto,
        Pacing::Closed {
            depth: opts.pipeline.max(1),
        },
        opts.connections,
    )
    .map_err(|e| e.to_string())?;
    let mut progress = Progress::new(&result.id, opts.progress);
    let mut events = Vec::new();

    let start = Instant::now();
    load.connect_all(&mut net, opts.addr);
    // Connect.
    let connected_by = start + SETTLE;
    while load.open_count() < load.live_count() && Instant::now() < connected_by {
        step(&mut net, &mut load, &mut events, Duration::from_millis(10))?;
    }
    if load.open_count() == 0 {
        return Err(format!("no connection to {} could be opened", opts.addr));
    }
    // Warm up, then measure.
    let warm_until = Instant::now() + opts.warmup;
    while Instant::now() < warm_until && load.open_count() > 0 {
        step(&mut net, &mut load, &mut events, Duration::from_millis(10))?;
        progress.tick(Instant::now(), || {
            format!("warmup, {} replies", si(load.received as f64))
        });
    }
    let server_before = opts.server_pid.and_then(ProcSample::read);
    let self_before = ProcSample::read(std::process::id());
    let measure_start = Instant::now();
    let received_before = load.received;
    load.set_recording(true);
    let measure_end = measure_start + opts.duration;
    let mut last = (measure_start, load.received);
    while Instant::now() < measure_end && load.open_count() > 0 {
        step(&mut net, &mut load, &mut events, Duration::from_millis(10))?;
        let now = Instant::now();
        progress.tick(now, || {
            let rate = (load.received - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, load.received);
            format!(
                "{}/s  p99 {:.0} µs  conns {}",
                si(rate),
                load.rtt.percentile_us(99.0),
                load.open_count()
            )
        });
    }
    let elapsed = measure_start.elapsed();
    // 0: every connection failed before the measurement was over.
    let open_at_end = load.open_count();
    let replies = load.received - received_before;
    let server_after = opts.server_pid.and_then(ProcSample::read);
    let self_after = ProcSample::read(std::process::id());
    load.set_recording(false);
    load.stop_sending();
    // Drain what is in flight so requests and replies can be matched.
    let drain_until = Instant::now() + SETTLE;
    while load.inflight() > 0 && load.open_count() > 0 && Instant::now() < drain_until {
        step(&mut net, &mut load, &mut events, Duration::from_millis(10))?;
    }
    progress.finish();
    let unanswered = load.inflight();
    load.close_all(&mut net);

    let rate = replies as f64 / elapsed.as_secs_f64();
    result.figure("replies_per_sec", rate);
    result.figure("requests", load.sent as f64);
    result.figure("replies", load.received as f64);
    result.figure("unanswered", unanswered as f64);
    result.figure("measured_s", elapsed.as_secs_f64());
    result.figure("connections_open_at_end", open_at_end as f64);
    if let (Some(b), Some(a)) = (server_before, server_after) {
        let cpu = a.since(&b).0;
        result.figure("server_cpu_s", cpu);
        result.figure(
            "server_cpu_s_per_million",
            cpu / (replies.max(1) as f64 / 1e6),
        );
        result.figure("server_cpu_util", cpu / elapsed.as_secs_f64());
        result.figure("server_rss_kib", a.rss_kib as f64);
    } else if let Some(pid) = opts.server_pid {
        result.notes.push(format!(
            "server pid {pid}: /proc not readable, CPU not measured"
        ));
    }
    if let (Some(b), Some(a)) = (self_before, self_after) {
        let cpu = a.since(&b).0;
        result.figure(
            "client_cpu_s_per_million",
            cpu / (replies.max(1) as f64 / 1e6),
        );
    }
    result.latency.insert("rtt".into(), load.rtt.summary());
    result.failures = load.failures.clone();
    if unanswered > 0 {
        *result.failures.entry("unanswered".into()).or_default() += unanswered;
    }
    Ok(result)
}

/// One pass: flush, poll, dispatch.
fn step(
    net: &mut Net,
    load: &mut EchoLoad,
    events: &mut Vec<NetEvent>,
    timeout: Duration,
) -> Result<(), String> {
    net.flush(events);
    net.poll(Some(timeout), events)
        .map_err(|e| format!("poll: {e}"))?;
    for ev in events.drain(..) {
        load.on_event(net, ev, Instant::now());
    }
    Ok(())
}
