//! Output: flushing queued replies with one vectored write per connection
//! per pass (a short write waits for the writable edge), and world packets:
//! those for a few targets encoded straight into each target's pooled
//! output, broadcasts to more (gathered into runs, `runs.rs`) copied into
//! every target's output (or queued to it, shared); and the world flush,
//! which writes world output that waited to share a write.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use log::debug;
use slab::Slab;

use super::net::{Net, Stream};
use super::probe::Probe;
use super::{output_budget, push_once, Env, Reactor};
use crate::conn::output::EncodeFailure;
use crate::conn::reason::CloseReason;
use crate::conn::wire::Wire;
use crate::conn::{Conn, Prefix};
use crate::ids::{ConnRef, SessionId, SessionMap};
use crate::protocol::packet_type::{Direction, Family, PacketType};
use crate::protocol::packets::EncodeError;
use crate::protocol::HEADER_LEN;

/// Most targets of a world packet encoded into each target's pooled output
/// (a spawn, a whisper, a reply, chat among a few); a broadcast to more is
/// encoded once, with the run it belongs to, and copied (`runs.rs`).
pub(super) const DIRECT_TARGETS: usize = 4;

impl<N: Net, P: Probe> Reactor<N, P> {
    /// A world packet for at most [`DIRECT_TARGETS`] targets (a spawn, a
    /// whisper, a reply), encoded straight into each target's pooled
    /// output ([`Env::encode_world`]). `family` is the payload's layout; a
    /// target of the other family (which the world never sends) gets
    /// nothing.
    pub(super) fn broadcast_direct(
        &mut self,
        targets: &[u32],
        ptype: PacketType,
        payload: &[u8],
        family: Family,
        now: Instant,
    ) {
        let env = &mut self.env;
        for &target in targets {
            let Some((idx, conn, wire)) =
                world_target(&env.sessions, &mut self.conns, target, family)
            else {
                continue;
            };
            env.encode_world(idx, conn, wire, ptype, payload, now);
        }
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
        self.env.counters.world_flushes += 1;
        let mut deferred = std::mem::take(&mut self.env.deferred);
        for idx in deferred.drain(..) {
            if let Some(conn) = self.conns.get_mut(idx) {
                conn.in_deferred = false;
                if !conn.output.is_empty() && conn.closing.is_none() {
                    self.env.counters.world_flush_writes += 1;
                    self.env.flush(idx, conn, now);
                }
            }
        }
        self.env.deferred = deferred;
    }
}

/// The connection world output for `target` goes to, with its slot and
/// wire: the open connection its session is routed to, if it speaks
/// `family` (the payload's layout; the world never sends the other, and a
/// target that would get it is logged and skipped).
pub(super) fn world_target<'c, S>(
    sessions: &SessionMap<ConnRef>,
    conns: &'c mut Slab<Conn<S>>,
    target: u32,
    family: Family,
) -> Option<(usize, &'c mut Conn<S>, Wire)> {
    let &conn_ref = sessions.get(&SessionId(target))?;
    let idx = conn_ref.index as usize;
    let conn = conns.get_mut(idx)?;
    if conn.conn_ref != conn_ref || conn.closing.is_some() {
        return None;
    }
    let Some(wire) = conn.wire.filter(|w| w.dialect.family() == family) else {
        debug!(
            "{} world output in another family's layout; dropped",
            Prefix(conn)
        );
        return None;
    };
    Some((idx, conn, wire))
}

/// The id of `ptype` in the dialect of `wire`, if it has one (logged when
/// not).
pub(super) fn wire_id(wire: Wire, ptype: PacketType) -> Option<u16> {
    let id = wire.dialect.dialect().wire_id(ptype);
    if id.is_none() {
        debug!("{ptype} has no id in {}; dropped", wire.dialect.name());
    }
    id
}

/// Writes the sealed frame of a world packet at the start of `space`; its
/// length, or why it does not fit or seal.
pub(super) fn write_frame(
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
        conn.holds_from(now);
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

    /// Queues a run's frames for one target: copied into its pooled output
    /// within the connection's buffer budget (so a write carries many
    /// frames in a few buffers, not one chunk each), the rest queued as a
    /// slice of the shared frames themselves.
    pub(super) fn queue_shared<S>(&mut self, conn: &mut Conn<S>, frames: &Bytes, now: Instant) {
        conn.holds_from(now);
        let budget = self.world_budget(conn);
        let copied = conn.output.append(&self.pool, frames, budget);
        if copied < frames.len() {
            conn.output.push_shared(frames.slice(copied..));
        }
    }

    /// Pooled buffers the output of `conn` may hold for world packets: its
    /// budget, but never a buffer of those kept back for reads (a run may
    /// take several at once; once the pool is down to them, only room left
    /// in the buffers it holds is used).
    fn world_budget<S>(&self, conn: &Conn<S>) -> usize {
        let spare = self.pool.available().saturating_sub(self.read_reserve);
        output_budget(conn).min(conn.output.pooled() + spare)
    }

    /// World output was queued: a queue over the output limit is first
    /// written out as far as the socket takes it (a burst to a client that
    /// reads is not a client that does not read), then [`Env::queued`]; or,
    /// while the queue is short of one full write and nothing else is due,
    /// it waits for the world flush (`WORLD_FLUSH_MS`), so that one write
    /// carries every world packet that came meanwhile.
    pub(super) fn queued_world<S: Stream>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) {
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
            // The first world output since the last flush sets its
            // deadline (a reload to a shorter interval brings it forward:
            // `reload.rs`).
            self.world_flush_at
                .get_or_insert(now + self.cfg.world_flush);
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
mod tests;
