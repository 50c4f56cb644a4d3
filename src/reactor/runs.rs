//! Runs of world broadcasts: consecutive broadcasts to the same targets in
//! one drain of the completion channel (a crowd in view of each other
//! chatting, a map hearing shouts) are queued to each target at once, as
//! one copy of their frames together, instead of one pass over the targets
//! per broadcast. The longer the loop was busy, the more broadcasts wait in
//! the channel and the longer the runs: the cost per delivery falls as the
//! load rises.
//!
//! Order is kept: a run ends before anything else in the drain (another
//! completion, a broadcast to other targets, one to a few targets encoded
//! directly) and when the drain ends, so every target's output is what one
//! broadcast at a time would have queued.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use log::debug;

use super::net::Net;
use super::output::{wire_id, world_target, write_frame, DIRECT_TARGETS};
use super::probe::Probe;
use super::Reactor;
use crate::conn::wire::Wire;
use crate::protocol::packet_type::{DialectId, Family, PacketType};
use crate::protocol::{HEADER_LEN, MAX_PACKET_SIZE};

/// Most packets in one run.
const RUN_PACKETS: usize = 64;
const _: () = assert!(RUN_PACKETS <= u64::BITS as usize, "RunFrames::carried");
/// Most bytes of frames in one run (a few pooled buffers' worth).
const RUN_BYTES: usize = 8 * 1024;

/// The broadcasts of the run being gathered (none: no run).
pub(super) struct Run {
    /// Their targets, in the world's order.
    targets: Vec<u32>,
    /// Their payloads' layout.
    family: Family,
    /// Their packets, in order.
    packets: Vec<(PacketType, Bytes)>,
    /// Bytes of their frames.
    bytes: usize,
    /// Where runs are sealed: each run's frames are split off it, and its
    /// memory is taken back once the last target's copy of them is gone
    /// (`BytesMut::reserve`), so a steady stream of runs allocates nothing.
    arena: BytesMut,
}

impl Default for Run {
    fn default() -> Run {
        Run {
            targets: Vec::new(),
            family: Family::Osirose,
            packets: Vec::new(),
            bytes: 0,
            arena: BytesMut::new(),
        }
    }
}

impl Run {
    /// Whether a broadcast of `size` bytes to `targets` in `family` goes
    /// on this run.
    fn takes(&self, targets: &[u32], family: Family, size: usize) -> bool {
        self.family == family
            && self.packets.len() < RUN_PACKETS
            && self.bytes + size <= RUN_BYTES
            && self.targets == targets
    }

    /// Ends the run, keeping the memory of its lists and arena.
    fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
    }
}

/// The frames of a run for one (dialect, codec) of its targets.
pub(super) struct RunFrames {
    wire: Wire,
    /// The run's frames in this wire, one after another (`None`: none
    /// has an id in its dialect or seals).
    bytes: Option<Bytes>,
    /// Which of the run's packets the frames carry (bit `i`: packet `i`;
    /// a run has at most 64), counted once per target.
    carried: u64,
    /// Targets queued.
    targets: u64,
}

impl<N: Net, P: Probe> Reactor<N, P> {
    /// One world packet for its sessions: encoded straight into each
    /// target's output for at most [`DIRECT_TARGETS`], else gathered into
    /// the run ([`Reactor::end_run`] queues it). `family` is the payload's
    /// layout.
    pub(super) fn world_packet(
        &mut self,
        targets: Vec<u32>,
        type_id: u16,
        payload: Bytes,
        family: Family,
        now: Instant,
    ) {
        let Some(ptype) = DialectId::Osirose.dialect().server_packet(type_id) else {
            debug!("world sent unknown packet type {type_id:#x}; dropped");
            return;
        };
        let size = HEADER_LEN + payload.len();
        if size > MAX_PACKET_SIZE {
            // Summarised in the limit line, never logged per packet.
            debug!("world sent an oversized {ptype} ({size} bytes); dropped");
            self.env.counters.world_oversized += 1;
            self.env.limits.world_oversized += 1;
            return;
        }
        if targets.len() <= DIRECT_TARGETS {
            self.end_run(now);
            self.broadcast_direct(&targets, ptype, &payload, family, now);
            return;
        }
        if !self.env.run.packets.is_empty() && !self.env.run.takes(&targets, family, size) {
            self.end_run(now);
        }
        let run = &mut self.env.run;
        if run.packets.is_empty() {
            run.targets = targets;
            run.family = family;
        }
        run.packets.push((ptype, payload));
        run.bytes += size;
    }

    /// Queues the run gathered so far to each of its targets: its frames
    /// sealed once per (dialect, codec) among them, one copy per target
    /// ([`super::Env::queue_shared`]); a target of the other family (which
    /// the world never sends) gets nothing.
    pub(super) fn end_run(&mut self, now: Instant) {
        if self.env.run.packets.is_empty() {
            return;
        }
        let mut run = std::mem::take(&mut self.env.run);
        // Kept between runs: no allocation per run.
        let mut frames = std::mem::take(&mut self.env.run_frames);
        for &target in &run.targets {
            let env = &mut self.env;
            let Some((idx, conn, wire)) =
                world_target(&env.sessions, &mut self.conns, target, run.family)
            else {
                continue;
            };
            let at = match frames.iter().position(|f| f.wire == wire) {
                Some(at) => at,
                None => {
                    frames.push(seal_run(wire, &run.packets, run.bytes, &mut run.arena));
                    frames.len() - 1
                }
            };
            let Some(bytes) = &frames[at].bytes else {
                continue;
            };
            env.queue_shared(conn, bytes, now);
            env.queued_world(idx, conn, now);
            frames[at].targets += 1;
        }
        for f in frames.drain(..) {
            for (i, &(ptype, _)) in run.packets.iter().enumerate() {
                if f.carried & (1 << i) != 0 {
                    self.env.counters.sent_n(ptype, f.targets);
                }
            }
        }
        self.env.run_frames = frames;
        run.clear();
        self.env.run = run;
    }
}

/// The frames of `packets` (`size` bytes) in `wire`, one after another,
/// sealed in `arena`; a packet its dialect has no id for, or that does not
/// seal, is left out (logged).
fn seal_run(
    wire: Wire,
    packets: &[(PacketType, Bytes)],
    size: usize,
    arena: &mut BytesMut,
) -> RunFrames {
    arena.resize(size, 0);
    let mut at = 0;
    let mut carried = 0u64;
    for (i, (ptype, payload)) in packets.iter().enumerate() {
        let Some(id) = wire_id(wire, *ptype) else {
            continue;
        };
        match write_frame(&mut arena[at..], wire, id, payload) {
            Ok(n) => {
                at += n;
                carried |= 1 << i;
            }
            Err(_) => debug!("{ptype} does not seal in {}; dropped", wire.dialect.name()),
        }
    }
    arena.truncate(at);
    let bytes = arena.split().freeze();
    RunFrames {
        wire,
        bytes: (at > 0).then_some(bytes),
        carried,
        targets: 0,
    }
}
