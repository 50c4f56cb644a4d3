//! The world flush and broadcast copies over the simulated net and clock.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::wire::Wire;
use crate::ids::SessionId;
use crate::metrics::{Health, Metrics, ReactorCounters};
use crate::protocol::packet_type::{DialectId, Direction, Family};
use crate::protocol::{Codec, CodecKind, HEADER_LEN};
use crate::reactor::net::EventList as _;
use crate::reactor::probe::NoProbe;
use crate::reactor::sim::{self, ClientId, Faults, Network, SimEvents, SimNet};
use crate::reactor::{Parts, Reactor, ReactorConfig};
use crate::rpc::{Bridge, RuntimeEnds};

const FLUSH: Duration = Duration::from_millis(10);
/// PAKWC_NORMAL_CHAT in the osIROSE ids (the world speaks them).
const CHAT: u16 = 0x548;
/// The session of the one player; the others named are not connected.
const PLAYER: u32 = 7;
/// More targets than are encoded one by one: the shared-frame path.
const CROWD: [u32; 6] = [PLAYER, 1, 2, 3, 4, 5];

struct World {
    reactor: Reactor<SimNet, NoProbe>,
    network: Network,
    client: ClientId,
    /// Every client in the world, `client` first; the `i`th is session
    /// `PLAYER + i`.
    players: Vec<ClientId>,
    events: SimEvents,
    metrics: Arc<Metrics>,
    _ends: RuntimeEnds,
}

/// The chat lines in `bytes`, whole frames from the start, in order.
fn lines_in(mut bytes: Vec<u8>) -> Vec<Vec<u8>> {
    let codec = Codec::new(CodecKind::Plain);
    let mut lines = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = codec
            .decode(Direction::ServerToClient, &mut bytes[at..])
            .expect("a valid frame")
            .expect("a whole frame");
        assert_eq!(h.command, CHAT);
        lines.push(bytes[at + HEADER_LEN..at + h.data_len].to_vec());
        at += h.wire_len;
    }
    lines
}

/// A reactor (pool of 16 buffers of 2 KiB) with one connection in the
/// world as session `PLAYER`, world output held for `world_flush`.
fn world(world_flush: Duration) -> World {
    world_of(1, world_flush)
}

/// The same with `n` connections in the world.
fn world_of(n: u32, world_flush: Duration) -> World {
    let (net, listener, network) = sim::network(11, Faults::default());
    let cfg = ReactorConfig {
        world_flush,
        ..ReactorConfig::defaults().clone()
    };
    let metrics = Metrics::new().expect("metrics");
    let (bridge, ends) = Bridge::with_capacity(8, 8, 64);
    let parts = Parts {
        cfg,
        pool: (16, 2048),
        bridge,
        counters: ReactorCounters::for_reasons(&metrics),
        shutdown: Arc::new(AtomicBool::new(false)),
        health: Arc::new(Health::new(Duration::from_secs(10))),
    };
    let mut reactor = Reactor::with_net(net, listener, parts, NoProbe).expect("reactor");
    let players: Vec<ClientId> = (0..n)
        .map(|i| {
            let peer = SocketAddr::from(([127, 0, 0, 1], 4000 + i as u16));
            network.connect(peer).expect("backlog")
        })
        .collect();
    let mut events = SimEvents::with_capacity(64);
    reactor.pass(&mut events).expect("pass");
    assert_eq!(reactor.conns.len(), n as usize, "all accepted");
    for (idx, conn) in reactor.conns.iter_mut() {
        conn.wire = Some(Wire {
            codec: Codec::new(CodecKind::Plain),
            dialect: DialectId::Osirose,
        });
        let session = SessionId(PLAYER + idx as u32);
        reactor.env.sessions.insert(session, conn.conn_ref);
    }
    World {
        reactor,
        network,
        client: players[0],
        players,
        events,
        metrics,
        _ends: ends,
    }
}

impl World {
    /// One chat line, as a drain of the completion channel holding only it.
    fn chat(&mut self, targets: &[u32], payload: &[u8]) {
        self.gather(targets, payload);
        self.end_drain();
    }

    /// One chat line among others in a drain.
    fn gather(&mut self, targets: &[u32], payload: &[u8]) {
        let now = self.network.now();
        let payload = bytes::Bytes::copy_from_slice(payload);
        self.reactor
            .world_packet(targets.to_vec(), CHAT, payload, Family::Osirose, now);
    }

    /// The end of a drain: the run gathered is queued.
    fn end_drain(&mut self) {
        let now = self.network.now();
        self.reactor.end_run(now);
    }

    /// The chat lines `client` received since the last call, in order.
    fn lines(&mut self, client: ClientId) -> Vec<Vec<u8>> {
        let mut bytes = Vec::new();
        self.network.recv(client, &mut bytes, 1 << 20);
        lines_in(bytes)
    }

    /// NORMAL_CHAT packets counted as sent.
    fn chats_sent(&mut self) -> u64 {
        self.reactor.env.counters.publish();
        self.metrics
            .packets_sent
            .with_label_values(&["PAKWC_NORMAL_CHAT"])
            .get()
    }

    fn pass(&mut self) {
        self.reactor.pass(&mut self.events).expect("pass");
    }

    /// Bytes the client has received since the last call.
    fn received(&mut self) -> usize {
        self.received_by(self.client)
    }

    fn received_by(&mut self, client: ClientId) -> usize {
        let mut into = Vec::new();
        self.network.recv(client, &mut into, 1 << 20)
    }

    /// The sessions of every player.
    fn everyone(&self) -> Vec<u32> {
        (0..self.players.len() as u32).map(|i| PLAYER + i).collect()
    }

    /// Whether every client's connection is still open.
    fn all_open(&self) -> bool {
        self.players
            .iter()
            .all(|&c| self.network.far(c) == sim::Far::Open)
    }
}

#[test]
fn world_output_waits_only_while_a_quarter_of_the_pool_is_free() {
    // 14 players, a pool of 16: each waiting queue holds one buffer.
    let mut w = world_of(14, FLUSH);
    let everyone = w.everyone();
    w.chat(&everyone, b"crowd\0");
    w.pass();
    // The 11th copy leaves 5 of 16 free; the 12th would leave a quarter:
    // from there on each is written in the pass and its buffer returns.
    assert_eq!(w.reactor.env.pool.available(), 5, "11 held");
    let early = w.players.clone();
    let early = early.into_iter().filter(|&c| w.received_by(c) > 0).count();
    assert_eq!(early, 3, "those past the quarter are written in the pass");
    w.network.advance(FLUSH);
    w.pass();
    let late = w.players.clone();
    let late = late.into_iter().filter(|&c| w.received_by(c) > 0).count();
    assert_eq!(early + late, 14, "everyone got the line once");
    assert_eq!(w.reactor.env.pool.available(), 16, "every buffer back");
}

#[test]
fn readers_short_of_buffers_get_the_world_flush_not_a_close() {
    // 10 players' waiting output holds 10 of the 16 buffers.
    let mut w = world_of(10, FLUSH);
    let everyone = w.everyone();
    w.chat(&everyone, b"held\0");
    assert_eq!(w.reactor.env.pool.available(), 6);
    w.pass();
    assert_eq!(w.received(), 0, "all waiting");
    // Newcomers each hold a buffer with half a header, until one finds
    // the pool at its reserve and waits for a buffer.
    let newcomers: Vec<ClientId> = (0..6u16)
        .map(|i| {
            let peer = SocketAddr::from(([127, 0, 0, 1], 5000 + i));
            w.network.connect(peer).expect("backlog")
        })
        .collect();
    w.pass();
    for &c in &newcomers {
        assert_eq!(w.network.send(c, &[0x10, 0x00]), 2);
    }
    for _ in 0..4 {
        w.pass();
    }
    // The clock has not moved: the world flush came early, for them.
    assert!(w.all_open(), "no player closed for pool pressure");
    assert!(newcomers
        .iter()
        .all(|&c| w.network.far(c) == sim::Far::Open));
    let players = w.players.clone();
    for c in players {
        assert_eq!(w.received_by(c), HEADER_LEN + 5, "written early");
    }
    let pressure = crate::conn::reason::CloseReason::PoolPressure.index();
    assert_eq!(w.reactor.env.limits.closed[pressure], 0);
}

#[test]
fn world_output_waits_for_the_world_flush_then_goes_in_one_write() {
    let mut w = world(FLUSH);
    w.chat(&[PLAYER], b"one\0");
    w.chat(&CROWD, b"two\0");
    w.pass();
    assert_eq!(w.received(), 0, "held until the world flush");
    assert!(
        w.network.last_timeout().is_some_and(|t| t <= FLUSH),
        "the loop wakes for the flush: {:?}",
        w.network.last_timeout()
    );
    w.network.advance(FLUSH);
    w.pass();
    assert_eq!(w.received(), 2 * (HEADER_LEN + 4), "both, at the flush");
    let counters = &w.reactor.env.counters;
    assert_eq!(
        (counters.world_flushes, counters.world_flush_writes),
        (1, 1)
    );
    assert!(w.reactor.env.deferred.is_empty());
    assert!(w.reactor.env.world_flush_at.is_none());
}

#[test]
fn a_reload_to_a_shorter_world_flush_shortens_the_wait() {
    let mut w = world(Duration::from_millis(250));
    w.chat(&CROWD, b"slow\0");
    let (reload, updates) = std::sync::mpsc::channel();
    w.reactor.take_updates(updates);
    let shorter = ReactorConfig {
        world_flush: FLUSH,
        ..w.reactor.env.cfg.clone()
    };
    reload.send(shorter).expect("the loop takes updates");
    w.pass();
    w.chat(&CROWD, b"fast\0");
    w.network.advance(FLUSH);
    w.pass();
    assert_eq!(
        w.received(),
        2 * (HEADER_LEN + 5),
        "both at the new interval"
    );
}

#[test]
fn without_a_world_flush_world_output_goes_in_its_pass() {
    let mut w = world(Duration::ZERO);
    w.chat(&CROWD, b"now\0");
    w.pass();
    assert_eq!(w.received(), HEADER_LEN + 4);
}

#[test]
fn a_full_write_of_world_output_does_not_wait() {
    let mut w = world(FLUSH);
    let line = [b'x'; 500];
    for _ in 0..5 {
        // 2,530 bytes: more than the 2 KiB of one pooled buffer.
        w.chat(&CROWD, &line);
    }
    // The clock stands still: every byte goes as fast as the client's
    // window lets it, none waits for the flush.
    let mut got = 0;
    for _ in 0..100 {
        w.pass();
        got += w.received();
    }
    assert_eq!(got, 5 * (HEADER_LEN + line.len()));
}

#[test]
fn a_reply_takes_the_waiting_world_output_with_it() {
    let mut w = world(FLUSH);
    w.chat(&CROWD, b"world\0");
    let reactor = &mut w.reactor;
    let conn = reactor.conns.get_mut(0).expect("conn");
    // A reply of the connection's own (any frame queued outside the
    // world path): due this pass.
    conn.output
        .push_shared(bytes::Bytes::from_static(b"reply!"));
    reactor.env.queued(0, conn);
    w.pass();
    assert_eq!(
        w.received(),
        HEADER_LEN + 6 + 6,
        "world frame, then the reply"
    );
}

#[test]
fn broadcasts_to_the_same_crowd_are_queued_as_one_run_in_order() {
    // Six: more than are encoded one by one.
    let mut w = world_of(6, FLUSH);
    let everyone = w.everyone();
    w.gather(&everyone, b"a\0");
    w.gather(&everyone, b"b\0");
    assert_eq!(w.reactor.env.pool.available(), 16, "gathered, not queued");
    // A packet for one player (encoded directly) ends the run first; so
    // does a broadcast to other targets.
    w.gather(&[PLAYER], b"c\0");
    w.gather(&everyone, b"d\0");
    w.gather(&everyone[1..], b"e\0");
    w.end_drain();
    w.network.advance(FLUSH);
    w.pass();
    let line = |s: &[u8]| s.to_vec();
    let players = w.players.clone();
    assert_eq!(
        w.lines(players[0]),
        [line(b"a\0"), line(b"b\0"), line(b"c\0"), line(b"d\0")]
    );
    for &other in &players[1..] {
        assert_eq!(
            w.lines(other),
            [line(b"a\0"), line(b"b\0"), line(b"d\0"), line(b"e\0")]
        );
    }
    assert_eq!(w.chats_sent(), 3 * 6 + 1 + 5, "each line once per target");
}

#[test]
fn a_run_longer_than_a_buffer_straddles_buffers_intact() {
    let mut w = world(FLUSH);
    // 40 lines of 100 bytes: twice a 2 KiB buffer, one run.
    let lines: Vec<Vec<u8>> = (0..40u8)
        .map(|i| {
            let mut l = vec![b'a' + i % 26; 99];
            l.push(0);
            l
        })
        .collect();
    for l in &lines {
        w.gather(&CROWD, l);
    }
    w.end_drain();
    assert!(
        w.reactor.env.pool.available() <= 16 - 2,
        "in pooled buffers"
    );
    let mut got = Vec::new();
    for _ in 0..100 {
        w.network.advance(FLUSH);
        w.pass();
        w.network.recv(w.client, &mut got, 1 << 20);
    }
    assert_eq!(lines_in(got), lines);
    assert_eq!(w.chats_sent(), 40);
}

#[test]
fn a_run_leaves_the_buffers_kept_back_for_reads() {
    let mut w = world(FLUSH);
    let reserve = w.reactor.env.read_reserve;
    // Two buffers free besides the reserve.
    let keep = w.reactor.env.pool.available() - reserve - 2;
    let held: Vec<_> = (0..keep)
        .filter_map(|_| w.reactor.env.pool.checkout())
        .collect();
    // 40 lines of 106 bytes: more than two 2 KiB buffers, one run.
    let line = {
        let mut l = vec![b'x'; 99];
        l.push(0);
        l
    };
    for _ in 0..40 {
        w.gather(&CROWD, &line);
    }
    w.end_drain();
    assert_eq!(
        w.reactor.env.pool.available(),
        reserve,
        "the reserve is left"
    );
    let conn = w.reactor.conns.get(0).expect("conn");
    assert_eq!(conn.output.pooled(), 2);
    assert!(conn.output.heap() > 0, "the rest queued shared");
    drop(held);
    let mut got = Vec::new();
    for _ in 0..100 {
        w.network.advance(FLUSH);
        w.pass();
        w.network.recv(w.client, &mut got, 1 << 20);
    }
    assert_eq!(lines_in(got), vec![line; 40]);
}
