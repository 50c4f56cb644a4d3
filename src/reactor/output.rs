//! Output: flushing queued replies with one vectored write per connection
//! per pass (a short write waits for the writable edge), and world packets:
//! those for a few targets encoded straight into each target's pooled
//! output, broadcasts to more encoded once per (dialect, codec) and the
//! frame copied into every target's output (or queued to it, shared); and
//! the world flush, which writes world output that waited to share a write.

use std::io;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use log::debug;

use super::net::{Net, Stream};
use super::probe::Probe;
use super::{output_budget, push_once, Env, Reactor};
use crate::conn::output::EncodeFailure;
use crate::conn::reason::CloseReason;
use crate::conn::wire::Wire;
use crate::conn::{Conn, Prefix};
use crate::ids::SessionId;
use crate::protocol::packet_type::{DialectId, Direction, Family, PacketType};
use crate::protocol::packets::EncodeError;
use crate::protocol::{HEADER_LEN, MAX_PACKET_SIZE};

/// Most targets of a world packet encoded into each target's pooled output
/// (a spawn, a whisper, a reply, chat among a few); a broadcast to more is
/// encoded once and its frame copied (or shared).
const DIRECT_TARGETS: usize = 4;

impl<N: Net, P: Probe> Reactor<N, P> {
    /// One world packet for its sessions. For at most [`DIRECT_TARGETS`]
    /// targets (a spawn, a whisper, a reply) it is encoded straight into
    /// each target's pooled output ([`Env::encode_world`]); for more, it is
    /// encoded once per (dialect, codec) among the targets and the frame
    /// copied into each target of that dialect and codec
    /// ([`Env::queue_shared`]). `family` is
    /// the payload's layout; a target of the other family (which the world
    /// never sends) gets nothing.
    pub(super) fn broadcast(
        &mut self,
        targets: &[u32],
        type_id: u16,
        payload: &[u8],
        family: Family,
        now: Instant,
    ) {
        let env = &mut self.env;
        let Some(ptype) = DialectId::Osirose.dialect().server_packet(type_id) else {
            debug!("world sent unknown packet type {type_id:#x}; dropped");
            return;
        };
        let size = HEADER_LEN + payload.len();
        if size > MAX_PACKET_SIZE {
            // Summarised in the limit line, never logged per packet.
            debug!("world sent an oversized {ptype} ({size} bytes); dropped");
            env.counters.world_oversized += 1;
            env.limits.world_oversized += 1;
            return;
        }
        let direct = targets.len() <= DIRECT_TARGETS;
        let mut frames = std::mem::take(&mut env.frames);
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
            let Some(wire) = conn.wire.filter(|w| w.dialect.family() == family) else {
                debug!(
                    "{} {ptype} in another family's layout; dropped",
                    Prefix(conn)
                );
                continue;
            };
            if direct {
                env.encode_world(idx, conn, wire, ptype, payload, now);
                continue;
            }
            let at = match frames.iter().position(|(w, _)| *w == wire) {
                Some(at) => at,
                None => {
                    frames.push((wire, encode_frame(wire, ptype, payload)));
                    frames.len() - 1
                }
            };
            let Some(frame) = &frames[at].1 else {
                continue;
            };
            env.queue_shared(conn, frame, now);
            env.counters.sent(ptype);
            env.queued_world(idx, conn, now);
        }
        frames.clear();
        env.frames = frames;
    }

    /// Flushes every connection with queued output, and at the world flush
    /// every connection whose world output waited for it
    /// (docs/architecture.md §3).
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.env.dirty);
        for idx in dirty.drain(..) {
            if let Some(conn) = self.conns.get_mut(idx) {
                conn.in_dirty = false;
                self.env.flush(idx, conn, now);
            }
        }
        self.env.dirty = dirty;
        if self.env.world_flush_at.is_some_and(|at| at <= now) {
            self.world_flush(now);
        }
    }

    /// Writes every connection whose world output waits for the world
    /// flush: when it is due, or at once when readers wait for buffers that
    /// the waiting output holds (`pressure.rs`).
    pub(super) fn world_flush(&mut self, now: Instant) {
        self.env.world_flush_at = None;
        let mut deferred = std::mem::take(&mut self.env.deferred);
        for idx in deferred.drain(..) {
            if let Some(conn) = self.conns.get_mut(idx) {
                conn.in_deferred = false;
                if !conn.output.is_empty() && conn.closing.is_none() {
                    self.env.flush(idx, conn, now);
                }
            }
        }
        self.env.deferred = deferred;
    }
}

/// The frame of a world packet for connections of `wire` (`None`: its
/// dialect has no id for it, or it does not seal).
fn encode_frame(wire: Wire, ptype: PacketType, payload: &[u8]) -> Option<Bytes> {
    let wire_id = wire_id(wire, ptype)?;
    let mut frame = BytesMut::zeroed(HEADER_LEN + payload.len());
    write_frame(&mut frame, wire, wire_id, payload).ok()?;
    Some(frame.freeze())
}

/// The id of `ptype` in the dialect of `wire`, if it has one (logged when
/// not).
fn wire_id(wire: Wire, ptype: PacketType) -> Option<u16> {
    let id = wire.dialect.dialect().wire_id(ptype);
    if id.is_none() {
        debug!("{ptype} has no id in {}; dropped", wire.dialect.name());
    }
    id
}

/// Writes the sealed frame of a world packet at the start of `space`; its
/// length, or why it does not fit or seal.
fn write_frame(
    space: &mut [u8],
    wire: Wire,
    wire_id: u16,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let size = HEADER_LEN + payload.len();
    let frame = space.get_mut(..size).ok_or(EncodeError::TooLarge)?;
    crate::protocol::codec::write_plain_header(frame, size, wire_id);
    frame[HEADER_LEN..].copy_from_slice(payload);
    wire.codec
        .seal(Direction::ServerToClient, frame)
        .map_err(|_| EncodeError::TooLarge)?;
    Ok(size)
}

impl<P: Probe> Env<P> {
    /// Encodes a world packet for one target straight into its pooled
    /// output: no allocation and no chunk of its own, within the
    /// connection's buffer budget. A burst that fills the budget within one
    /// pass (a newcomer among a crowd is sent a spawn per player in view)
    /// is written out at once, as far as the socket takes it, and encoding
    /// goes on in the freed buffers. Only when the socket takes no more (or
    /// the pool is empty) do frames go outside the pool, packed into spill
    /// blocks that the output limit counts: a client that does not read is
    /// still closed by it.
    fn encode_world<S: Stream>(
        &mut self,
        idx: usize,
        conn: &mut Conn<S>,
        wire: Wire,
        ptype: PacketType,
        payload: &[u8],
        now: Instant,
    ) {
        let Some(wire_id) = wire_id(wire, ptype) else {
            return;
        };
        let size = HEADER_LEN + payload.len();
        let write = |space: &mut [u8]| write_frame(space, wire, wire_id, payload);
        if conn.buffers_held() == 0 {
            conn.progress_at = now; // holding starts now
        }
        let budget = self.world_budget(conn);
        let mut result = conn.output.encode(&self.pool, size, budget, write);
        if result == Err(EncodeFailure::OverBudget) && conn.output.heap() == 0 {
            // Tried once per burst: once frames go outside the pool, the
            // socket was full, and the pass's flush tries again.
            self.flush(idx, conn, now);
            if conn.closing.is_some() {
                return;
            }
            let budget = self.world_budget(conn);
            result = conn.output.encode(&self.pool, size, budget, write);
        }
        if let Err(EncodeFailure::OverBudget | EncodeFailure::NoBuffer) = result {
            result = conn.output.spill(self.pool.buffer_size(), size, write);
        }
        if result.is_err() {
            debug!("{} {ptype} does not seal; dropped", Prefix(conn));
            return;
        }
        self.counters.sent(ptype);
        self.queued_world(idx, conn, now);
    }

    /// Queues a broadcast's frame for one target: copied into its pooled
    /// output within the connection's buffer budget (so a write carries
    /// many frames in a few buffers, not one chunk each), else queued as
    /// the shared frame itself.
    fn queue_shared<S>(&mut self, conn: &mut Conn<S>, frame: &Bytes, now: Instant) {
        if conn.buffers_held() == 0 {
            conn.progress_at = now; // holding starts now
        }
        let budget = self.world_budget(conn);
        let copy = |space: &mut [u8]| match space.get_mut(..frame.len()) {
            Some(room) => {
                room.copy_from_slice(frame);
                Ok(frame.len())
            }
            None => Err(()),
        };
        if conn
            .output
            .encode(&self.pool, frame.len(), budget, copy)
            .is_err()
        {
            conn.output.push_shared(frame.clone());
        }
    }

    /// Pooled buffers the output of `conn` may hold for world packets: its
    /// budget, but none more once the pool is down to the buffers kept
    /// back for reads (only room left in the buffers it holds is used).
    fn world_budget<S>(&self, conn: &Conn<S>) -> usize {
        if self.pool.available() > self.read_reserve {
            output_budget(conn)
        } else {
            conn.output.pooled()
        }
    }

    /// World output was queued: a queue over the output limit is first
    /// written out as far as the socket takes it (a burst to a client that
    /// reads is not a client that does not read), then [`Env::queued`]; or,
    /// while the queue is short of one full write and nothing else is due,
    /// it waits for the world flush (`WORLD_FLUSH_MS`), so that one write
    /// carries every world packet that came meanwhile.
    fn queued_world<S: Stream>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) {
        if conn.output.heap() > self.cfg.output_limit {
            self.flush(idx, conn, now);
            if conn.closing.is_some() {
                return;
            }
        }
        // Output that waits holds its pooled buffers meanwhile: it waits
        // only while a quarter of the pool is free.
        let waits = !self.cfg.world_flush.is_zero()
            && !conn.in_dirty
            && conn.output.heap() <= self.cfg.output_limit
            && 2 * conn.output.memory() < self.output_pause
            && !conn.output.fills_a_write(self.pool.buffer_size())
            && 4 * self.pool.available() > self.pool.total();
        if !waits {
            self.queued(idx, conn);
        } else if !conn.output.is_empty() {
            push_once(&mut self.deferred, &mut conn.in_deferred, idx);
            // A reload may have shortened the interval since the deadline
            // was set.
            let due = now + self.cfg.world_flush;
            self.world_flush_at = Some(self.world_flush_at.map_or(due, |at| at.min(due)));
        }
    }

    /// Output was queued: flush it this pass, or close a client that does
    /// not read (its queue's memory outside the pool, chunk overhead
    /// included, passed the limit).
    pub(super) fn queued<S>(&mut self, idx: usize, conn: &mut Conn<S>) {
        if conn.output.heap() > self.cfg.output_limit {
            debug!(
                "{} output queue holds {} bytes, over {}: closing",
                Prefix(conn),
                conn.output.heap(),
                self.cfg.output_limit
            );
            self.close(idx, conn, CloseReason::OutputLimit);
        } else if !conn.output.is_empty() {
            push_once(&mut self.dirty, &mut conn.in_dirty, idx);
        }
    }

    /// Writes as much queued output as the socket takes. A short write
    /// leaves the rest to the next writable event (registered once).
    pub(super) fn flush<S: Stream>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) {
        let paused = self.output_paused(&conn.output);
        while !conn.output.is_empty() {
            match conn.output.write_to(&mut conn.socket) {
                Ok(0) => break,
                Ok(n) => {
                    self.counters.bytes_sent += n as u64;
                    conn.progress_at = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("{} write failed: {e}", Prefix(conn));
                    self.close(idx, conn, CloseReason::IoError);
                    return;
                }
            }
        }
        conn.write_blocked = !conn.output.is_empty();
        if paused {
            // The client read: decoding may go on.
            self.resume_input(idx, conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::conn::wire::Wire;
    use crate::ids::SessionId;
    use crate::metrics::{Health, Metrics, ReactorCounters};
    use crate::protocol::packet_type::{DialectId, Family};
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
        _ends: RuntimeEnds,
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
            _ends: ends,
        }
    }

    impl World {
        fn chat(&mut self, targets: &[u32], payload: &[u8]) {
            let now = self.network.now();
            self.reactor
                .broadcast(targets, CHAT, payload, Family::Osirose, now);
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
        assert!(w.reactor.env.deferred.is_empty());
        assert!(w.reactor.env.world_flush_at.is_none());
    }

    #[test]
    fn a_reload_to_a_shorter_world_flush_shortens_the_wait() {
        let mut w = world(Duration::from_millis(250));
        w.chat(&CROWD, b"slow\0");
        w.reactor.env.cfg.world_flush = FLUSH;
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
}
