//! Replaying captured client traffic against a live server.
//!
//! Every connection of the capture becomes a script of steps (open, send
//! the frames one client delivery completed, close), and the steps of all
//! connections run on one timeline in capture order. This keeps the
//! causality between connections: the char connection is opened while the
//! login one is still up, the map connection joins while the char one is
//! open, and a `JOIN_SERVER_REQ` goes out only after the reply that issued its
//! session id came back on another connection.
//!
//! Before a step with capture index `i`, the runner waits (up to
//! `--timeout`) until every open connection has received at least as many
//! server packets as it had in the capture before `i`. A connection that
//! misses that deadline is marked as lagging and no longer waited for, so a
//! divergent server costs one timeout per connection, not one per step.
//!
//! Live server packets are read by one thread per connection and handed to
//! the runner over a channel; the runner alone owns the replay state. Session
//! ids (from `PAKLC_SRV_SELECT_REPLY`, `PAKCC_SWITCH_SERVER` and
//! `PAKSC_JOIN_SERVER_REPLY`) are mapped captured → live as the replies
//! arrive, and client `JOIN_SERVER_REQ`s are rewritten and resealed;
//! every other client packet is sent byte-identical to the capture.
//!
//! irose connections use the tables of the seed the capture announced for
//! them (`wires.rs`). The live server may announce other seeds: they are
//! mapped captured → live from the same two replies, a connection is opened
//! with the live seed's tables, and, when the seeds differ, every one of its
//! client packets is resealed with them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use packet_service::client::irose_codec;
use packet_service::conn::wire::PacketIds;
use packet_service::protocol::packet_type::Dialect;
use packet_service::protocol::packets::{Packet, SrvSelectReply, SwitchServer};
use packet_service::protocol::{Codec, CodecKind, PacketType, HEADER_LEN};

use crate::compare::{compare, rewrite_session_id, session_ids, IdKind, Verdict};
use crate::decode::{packet_type, Frame, StreamDecoder};
use crate::reassembly::{Connection, EventKind, Side};
use crate::wires::{guess, ConnWire};

/// How fast to replay.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Pacing {
    /// Send each step as soon as its causal wait is over (`--topspeed`).
    TopSpeed,
    /// Keep the capture's gaps, divided by this factor (`--speed`).
    Speed(f64),
}

/// Replay settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the live server listens (loopback in tests).
    pub target: SocketAddr,
    /// The codec both the capture and the server speak.
    pub codec: CodecKind,
    /// The packet id numbering, as the server's `--packet-ids`.
    pub ids: PacketIds,
    /// Pacing.
    pub pacing: Pacing,
    /// Cap on concurrently open connections (`--connections`).
    pub max_open: Option<usize>,
    /// Deadline for each wait: connect, replies, writes, the final drain.
    pub timeout: Duration,
}

/// A progress snapshot (reported about once a second).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Connections finished.
    pub done: usize,
    /// Connections in the replay.
    pub total: usize,
    /// Client packets sent plus server packets received so far.
    pub packets: usize,
}

/// The result for one connection.
#[derive(Clone, Debug)]
pub struct ConnectionReport {
    /// Client address in the capture.
    pub client: SocketAddr,
    /// Comparison of the server packets.
    pub verdict: Verdict,
    /// Client packets sent.
    pub sent: usize,
    /// Client packets whose session id was rewritten.
    pub rewritten: usize,
    /// Server packets received live.
    pub received: usize,
    /// Server packets in the capture.
    pub expected: usize,
    /// What went wrong on the way (timeouts, I/O errors), if anything.
    pub notes: Vec<String>,
    /// Could not connect or write: counts as a difference.
    pub failed: bool,
}

impl ConnectionReport {
    /// Matched and nothing failed.
    pub fn is_match(&self) -> bool {
        self.verdict.is_match() && !self.failed
    }
}

/// The result of a replay.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One per connection, in capture order.
    pub connections: Vec<ConnectionReport>,
}

impl Report {
    /// Connections that matched.
    pub fn matched(&self) -> usize {
        self.connections.iter().filter(|c| c.is_match()).count()
    }

    /// Connections that differ.
    pub fn differ(&self) -> usize {
        self.connections.len() - self.matched()
    }

    /// Client packets sent plus server packets received.
    pub fn packets(&self) -> usize {
        self.connections.iter().map(|c| c.sent + c.received).sum()
    }

    /// `replayed 3 connections, 42 packets: 3 match, 0 differ`.
    pub fn summary(&self) -> String {
        format!(
            "replayed {} connections, {} packets: {} match, {} differ",
            self.connections.len(),
            self.packets(),
            self.matched(),
            self.differ()
        )
    }
}

/// What one step does.
#[derive(Clone, Debug)]
enum Action {
    /// Connect.
    Open,
    /// Send the client frames this delivery completed.
    Send(Vec<Frame>),
    /// The client finished sending (or reset): shut down our write half.
    Close,
}

#[derive(Clone, Debug)]
struct Step {
    index: u64,
    ts: Duration,
    conn: usize,
    action: Action,
}

/// What the capture says about one connection.
struct Script {
    /// Captured server frames.
    expected: Vec<Frame>,
    /// Capture index of the delivery that completed each expected frame.
    /// Invariant: sorted, same length as `expected`.
    expected_at: Vec<u64>,
    /// The server closed or reset the connection in the capture.
    server_closed: bool,
}

impl Script {
    /// Server packets the capture had delivered before capture index `i`.
    fn expected_before(&self, i: u64) -> usize {
        self.expected_at.partition_point(|&at| at < i)
    }
}

/// Builds the scripts and the merged timeline of all connections, each
/// decoded as `wires` says.
fn plan(conns: &[Connection], wires: &[ConnWire]) -> (Vec<Script>, Vec<Step>) {
    let mut scripts = Vec::with_capacity(conns.len());
    let mut steps = Vec::new();
    for (n, (conn, cw)) in conns.iter().zip(wires).enumerate() {
        let codec = cw.wire.codec;
        let mut client = StreamDecoder::new(codec, Side::Client);
        let mut server = StreamDecoder::new(codec, Side::Server);
        let mut script = Script {
            expected: Vec::new(),
            expected_at: Vec::new(),
            server_closed: false,
        };
        steps.push(Step {
            index: conn.first_index,
            ts: conn.start,
            conn: n,
            action: Action::Open,
        });
        for e in &conn.events {
            match (&e.kind, e.side) {
                (EventKind::Data(d), Side::Client) => {
                    let frames = client.push(d);
                    if !frames.is_empty() {
                        steps.push(Step {
                            index: e.index,
                            ts: e.ts,
                            conn: n,
                            action: Action::Send(frames),
                        });
                    }
                }
                (EventKind::Data(d), Side::Server) => {
                    for f in server.push(d) {
                        script.expected.push(f);
                        script.expected_at.push(e.index);
                    }
                }
                (_, Side::Client) => steps.push(Step {
                    index: e.index,
                    ts: e.ts,
                    conn: n,
                    action: Action::Close,
                }),
                (_, Side::Server) => script.server_closed = true,
            }
        }
        scripts.push(script);
    }
    // Stable: steps of one capture index keep their per-connection order.
    steps.sort_by_key(|s| s.index);
    (scripts, steps)
}

/// Messages from the reader threads.
enum Msg {
    Frame(usize, Frame),
    Eof(usize),
    Error(usize, String),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    NotOpened,
    Open,
    /// Closed by us (or never to be used again).
    Finished,
}

/// The live side of one connection.
struct LiveConn {
    state: State,
    stream: Option<TcpStream>,
    reader: Option<JoinHandle<()>>,
    received: Vec<Frame>,
    /// The reader stopped (EOF or error).
    eof: bool,
    client_closed: bool,
    /// Missed a causal deadline: no longer waited for.
    lagging: bool,
    failed: bool,
    sent: usize,
    rewritten: usize,
    notes: Vec<String>,
    /// Order in which connections were opened (for --connections eviction).
    opened_seq: usize,
    /// The codec it speaks live (the captured one, or the live seed's).
    codec: Option<Codec>,
}

struct Runner<'a> {
    opts: &'a Options,
    /// What each captured connection speaks.
    wires: Vec<ConnWire>,
    scripts: Vec<Script>,
    live: Vec<LiveConn>,
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
    /// Captured session id → live session id.
    sessions: HashMap<u32, u32>,
    /// Captured irose seed → the seed the live server announced instead.
    seeds: HashMap<u32, u32>,
    opened: usize,
    progress: &'a mut dyn FnMut(&Progress),
    last_progress: Instant,
}

/// Replays the client side of `conns` against `opts.target` and compares.
pub fn replay(conns: &[Connection], opts: &Options, progress: &mut dyn FnMut(&Progress)) -> Report {
    let wires = guess(conns, opts.ids, opts.codec);
    let (scripts, steps) = plan(conns, &wires);
    let (tx, rx) = channel();
    let live = conns
        .iter()
        .map(|c| LiveConn {
            state: State::NotOpened,
            stream: None,
            reader: None,
            received: Vec::new(),
            eof: false,
            client_closed: false,
            lagging: false,
            failed: false,
            sent: 0,
            rewritten: 0,
            notes: if c.mid_stream {
                vec!["capture starts mid-stream".to_string()]
            } else {
                Vec::new()
            },
            opened_seq: 0,
            codec: None,
        })
        .collect();
    let mut runner = Runner {
        opts,
        wires,
        scripts,
        live,
        rx,
        tx,
        sessions: HashMap::new(),
        seeds: HashMap::new(),
        opened: 0,
        progress,
        last_progress: Instant::now(),
    };
    runner.run(&steps);
    runner.finish(conns)
}

impl Runner<'_> {
    fn run(&mut self, steps: &[Step]) {
        let started = Instant::now();
        let first_ts = steps.first().map_or(Duration::ZERO, |s| s.ts);
        for step in steps {
            if let Pacing::Speed(speed) = self.opts.pacing {
                let gap = step.ts.saturating_sub(first_ts).as_secs_f64() / speed;
                if gap.is_finite() {
                    let at = started + Duration::from_secs_f64(gap.min(1e9));
                    self.pump_until(at);
                }
            }
            self.wait_causal(step.index);
            self.report_progress();
            let c = step.conn;
            if self.live[c].failed || self.live[c].state == State::Finished {
                continue;
            }
            match &step.action {
                Action::Open => self.open(c),
                Action::Send(frames) => {
                    if self.live[c].state == State::NotOpened {
                        self.open(c);
                    }
                    self.send(c, frames);
                }
                Action::Close => {
                    if let Some(s) = &self.live[c].stream {
                        let _ = s.shutdown(Shutdown::Write);
                    }
                    self.live[c].client_closed = true;
                }
            }
        }
        // Let every connection receive what the capture had, then close.
        let deadline = Instant::now() + self.opts.timeout;
        for c in 0..self.live.len() {
            if self.live[c].state != State::Open {
                continue;
            }
            let want = self.scripts[c].expected.len();
            let expect_close = self.scripts[c].server_closed;
            let done = self.wait(deadline, |r| {
                let l = &r.live[c];
                l.eof || (l.received.len() >= want && !expect_close)
            });
            if !done {
                let l = &mut self.live[c];
                l.notes.push(format!(
                    "timed out waiting for the end: {} of {} server packets",
                    l.received.len(),
                    want
                ));
            }
            self.close(c);
        }
        // Readers end once their sockets are shut down both ways.
        let deadline = Instant::now() + self.opts.timeout;
        self.wait(deadline, |r| {
            r.live.iter().all(|l| l.reader.is_none() || l.eof)
        });
        for l in &mut self.live {
            if let Some(h) = l.reader.take() {
                if l.eof {
                    let _ = h.join();
                }
            }
        }
    }

    /// Waits until every open connection has what the capture had before `i`.
    fn wait_causal(&mut self, i: u64) {
        let behind = |r: &Runner<'_>, c: usize| {
            let l = &r.live[c];
            l.state == State::Open
                && !l.lagging
                && !l.eof
                && l.received.len() < r.scripts[c].expected_before(i)
        };
        let deadline = Instant::now() + self.opts.timeout;
        let ok = self.wait(deadline, |r| (0..r.live.len()).all(|c| !behind(r, c)));
        if !ok {
            for c in 0..self.live.len() {
                if behind(self, c) {
                    let want = self.scripts[c].expected_before(i);
                    let l = &mut self.live[c];
                    l.lagging = true;
                    l.notes.push(format!(
                        "timed out after {:?} waiting for server packet #{} (had {})",
                        self.opts.timeout,
                        want.saturating_sub(1),
                        l.received.len()
                    ));
                }
            }
        }
    }

    fn open(&mut self, c: usize) {
        if let Some(max) = self.opts.max_open {
            self.make_room(max.max(1));
        }
        let stream = match TcpStream::connect_timeout(&self.opts.target, self.opts.timeout) {
            Ok(s) => s,
            Err(e) => {
                let l = &mut self.live[c];
                l.failed = true;
                l.state = State::Finished;
                l.notes
                    .push(format!("connect to {}: {e}", self.opts.target));
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(self.opts.timeout));
        let reader = match stream.try_clone() {
            Ok(r) => r,
            Err(e) => {
                let l = &mut self.live[c];
                l.failed = true;
                l.state = State::Finished;
                l.notes.push(format!("socket clone: {e}"));
                return;
            }
        };
        let tx = self.tx.clone();
        let codec = self.live_codec(c);
        let handle = std::thread::spawn(move || read_loop(c, reader, codec, tx));
        self.opened += 1;
        let l = &mut self.live[c];
        l.stream = Some(stream);
        l.reader = Some(handle);
        l.state = State::Open;
        l.opened_seq = self.opened;
        l.codec = Some(codec);
    }

    /// The dialect connection `c` speaks.
    fn dialect(&self, c: usize) -> &'static Dialect {
        self.wires[c].wire.dialect.dialect()
    }

    /// The codec to open connection `c` with: the captured one, or the
    /// tables of the seed the live server announced instead of the
    /// captured one.
    fn live_codec(&self, c: usize) -> Codec {
        let cw = self.wires[c];
        match cw.seed {
            Some(seed) => {
                let live = self.seeds.get(&seed).copied().unwrap_or(seed);
                irose_codec(self.opts.codec, Some(live))
            }
            None => cw.wire.codec,
        }
    }

    /// With `max` connections open, waits for one to be done, else closes
    /// the oldest.
    fn make_room(&mut self, max: usize) {
        let open = |r: &Runner<'_>| r.live.iter().filter(|l| l.state == State::Open).count();
        if open(self) < max {
            return;
        }
        let done = |r: &Runner<'_>, c: usize| {
            let l = &r.live[c];
            l.state == State::Open
                && l.client_closed
                && (l.eof || l.received.len() >= r.scripts[c].expected.len())
        };
        let deadline = Instant::now() + self.opts.timeout;
        self.wait(deadline, |r| (0..r.live.len()).any(|c| done(r, c)));
        let victim = (0..self.live.len())
            .filter(|&c| self.live[c].state == State::Open)
            .min_by_key(|&c| (!done(self, c), self.live[c].opened_seq));
        if let Some(c) = victim {
            if !done(self, c) {
                self.live[c]
                    .notes
                    .push("closed early to stay within --connections".to_string());
            }
            self.close(c);
        }
    }

    fn close(&mut self, c: usize) {
        let l = &mut self.live[c];
        if let Some(s) = l.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        l.state = State::Finished;
    }

    fn send(&mut self, c: usize, frames: &[Frame]) {
        let mut out = Vec::new();
        let mut rewritten = 0;
        let captured = self.wires[c].wire.codec;
        let codec = self.live[c].codec.unwrap_or(captured);
        // Other tables live than captured: every packet is sealed again.
        let reseal = codec != captured;
        for f in frames {
            let t = f
                .command
                .and_then(|cmd| packet_type(self.dialect(c), Side::Client, cmd));
            let mut sent_as = None;
            if let (Some(t), Ok(plain)) = (t, &f.plain) {
                let mut p = plain.clone();
                let sessions = &self.sessions;
                let changed = rewrite_session_id(t, &mut p, |old| sessions.get(&old).copied());
                if (changed || reseal)
                    && codec
                        .seal(crate::decode::direction(Side::Client), &mut p)
                        .is_ok()
                {
                    sent_as = Some(p);
                    rewritten += usize::from(changed);
                }
            }
            out.extend_from_slice(sent_as.as_deref().unwrap_or(&f.wire));
        }
        let l = &mut self.live[c];
        let Some(stream) = l.stream.as_mut() else {
            return;
        };
        match stream.write_all(&out) {
            Ok(()) => {
                l.sent += frames.len();
                l.rewritten += rewritten;
            }
            Err(e) => {
                l.failed = true;
                l.notes.push(format!("write: {e}"));
                self.close(c);
            }
        }
    }

    /// Handles reader messages until `cond` holds or `deadline` passes.
    fn wait(&mut self, deadline: Instant, cond: impl Fn(&Runner<'_>) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.pump(deadline - now);
        }
    }

    /// Handles reader messages until `at`.
    fn pump_until(&mut self, at: Instant) {
        loop {
            let now = Instant::now();
            if now >= at {
                return;
            }
            self.pump(at - now);
        }
    }

    /// Handles at most one message, waiting up to `max` (and at most a
    /// second, so progress gets reported).
    fn pump(&mut self, max: Duration) {
        self.report_progress();
        match self.rx.recv_timeout(max.min(Duration::from_secs(1))) {
            Ok(Msg::Frame(c, f)) => self.on_frame(c, f),
            Ok(Msg::Eof(c)) => self.live[c].eof = true,
            Ok(Msg::Error(c, e)) => {
                let l = &mut self.live[c];
                l.eof = true;
                if l.state == State::Open {
                    l.notes.push(format!("read: {e}"));
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn on_frame(&mut self, c: usize, f: Frame) {
        let k = self.live[c].received.len();
        let dialect = self.dialect(c);
        if let (Some(exp), Ok(got)) = (self.scripts[c].expected.get(k), &f.plain) {
            let types = (
                exp.command
                    .and_then(|x| packet_type(dialect, Side::Server, x)),
                f.command
                    .and_then(|x| packet_type(dialect, Side::Server, x)),
            );
            if let ((Some(te), Some(tg)), Ok(ep)) = (types, &exp.plain) {
                if te == tg {
                    if let (Some(old), Some(new)) =
                        (announced_seed(te, ep), announced_seed(tg, got))
                    {
                        self.seeds.insert(old, new);
                    }
                    if let (Some((kind, old)), Some((_, new))) =
                        (session_ids(te, ep), session_ids(tg, got))
                    {
                        match kind {
                            IdKind::Session => {
                                self.sessions.insert(old, new);
                            }
                            IdKind::JoinReply => {
                                self.sessions.entry(old).or_insert(new);
                            }
                        }
                    }
                }
            }
        }
        self.live[c].received.push(f);
    }

    fn report_progress(&mut self) {
        if self.last_progress.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_progress = Instant::now();
        let p = Progress {
            done: self
                .live
                .iter()
                .filter(|l| l.state == State::Finished)
                .count(),
            total: self.live.len(),
            packets: self.live.iter().map(|l| l.sent + l.received.len()).sum(),
        };
        (self.progress)(&p);
    }

    fn finish(self, conns: &[Connection]) -> Report {
        let connections = self
            .live
            .into_iter()
            .zip(self.scripts)
            .zip(conns.iter().zip(&self.wires))
            .map(|((l, s), (conn, cw))| ConnectionReport {
                client: conn.client,
                verdict: compare(cw.wire.dialect.dialect(), &s.expected, &l.received),
                sent: l.sent,
                rewritten: l.rewritten,
                received: l.received.len(),
                expected: s.expected.len(),
                notes: l.notes,
                failed: l.failed,
            })
            .collect();
        Report { connections }
    }
}

/// The irose seed a server-select reply or switch-server packet announces
/// for the next connection (0: none).
fn announced_seed(t: PacketType, p: &[u8]) -> Option<u32> {
    let body = p.get(HEADER_LEN..)?;
    let seed = match t {
        PacketType::PAKLC_SRV_SELECT_REPLY => SrvSelectReply::decode(body).ok()?.crypt_val,
        PacketType::PAKCC_SWITCH_SERVER => SwitchServer::decode(body).ok()?.session_seed,
        _ => return None,
    };
    (seed != 0).then_some(seed)
}

/// Reads one connection's server packets until EOF or error.
fn read_loop(c: usize, mut stream: TcpStream, codec: Codec, tx: Sender<Msg>) {
    let mut decoder = StreamDecoder::new(codec, Side::Server);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Msg::Eof(c));
                return;
            }
            Ok(n) => {
                for f in decoder.push(&buf[..n]) {
                    if tx.send(Msg::Frame(c, f)).is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Msg::Error(c, e.to_string()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::TcpSegment;
    use crate::reassembly::reassemble;
    use packet_service::protocol::CodecKind;

    fn seg(index: u64, src: &str, dst: &str, seq: u32, flags: &str, payload: &[u8]) -> TcpSegment {
        TcpSegment {
            index,
            ts: Duration::from_millis(index),
            src: src.parse().expect("addr"),
            dst: dst.parse().expect("addr"),
            seq,
            syn: flags.contains('S'),
            ack: flags.contains('A'),
            fin: flags.contains('F'),
            rst: false,
            payload: payload.to_vec(),
        }
    }

    fn sealed(codec: Codec, side: Side, plain: &[u8]) -> Vec<u8> {
        let mut p = plain.to_vec();
        codec
            .seal(crate::decode::direction(side), &mut p)
            .expect("seal");
        p
    }

    #[test]
    fn plan_merges_connections_and_counts_prior_replies() {
        let codec = Codec::new(CodecKind::Plain);
        let (a, b, s) = ("127.0.0.1:1000", "127.0.0.1:1001", "127.0.0.1:29000");
        let req = sealed(codec, Side::Client, &[6, 0, 4, 5, 0, 0]);
        let reply = sealed(codec, Side::Server, &[11, 0, 0xD4, 5, 0, 0, 2, 1, 2, 3, 4]);
        let segments = vec![
            seg(0, a, s, 0, "S", b""),
            seg(1, a, s, 1, "A", &req),
            seg(2, b, s, 50, "S", b""),
            // The reply comes in two pieces; only the second completes it.
            seg(3, s, a, 700, "A", &reply[..4]),
            seg(4, s, a, 704, "A", &reply[4..]),
            seg(5, b, s, 51, "A", &req),
            seg(6, a, s, 7, "FA", b""),
        ];
        let conns = reassemble(&segments, 29000);
        let osirose = packet_service::protocol::DialectId::Osirose;
        let wires = guess(&conns, PacketIds::One(osirose), CodecKind::Plain);
        let (scripts, steps) = plan(&conns, &wires);
        let order: Vec<(u64, usize, &str)> = steps
            .iter()
            .map(|s| {
                let what = match s.action {
                    Action::Open => "open",
                    Action::Send(_) => "send",
                    Action::Close => "close",
                };
                (s.index, s.conn, what)
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (0, 0, "open"),
                (1, 0, "send"),
                (2, 1, "open"),
                (5, 1, "send"),
                (6, 0, "close")
            ]
        );
        assert_eq!(scripts[0].expected.len(), 1);
        assert_eq!(scripts[0].expected_before(4), 0);
        assert_eq!(scripts[0].expected_before(5), 1);
        assert!(scripts[1].expected.is_empty());
    }
}
