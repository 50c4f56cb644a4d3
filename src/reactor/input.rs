//! Input: reading ready sockets into pooled buffers (bounded per pass, never
//! allocating), decoding whole frames and feeding them to the state machine,
//! with the backpressure rules that stop decoding.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Instant;

use log::{debug, trace};

use super::net::Net;
use super::probe::Probe;
use super::{output_budget, push_once, Env, Reactor, READS_PER_PASS};
use crate::conn::reason::{CloseReason, ProtocolError};
use crate::conn::state::{Action, Input};
use crate::conn::wire::Wire;
use crate::conn::{Conn, Prefix};
use crate::protocol::packet_type::{Direction, PacketType};
use crate::protocol::packets::EncodeError;
use crate::protocol::{FrameError, FrameHeader, HEADER_LEN, MAX_PACKET_SIZE};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Reads and decodes every connection on the ready list.
    pub(super) fn service_ready(&mut self, now: Instant) {
        let mut ready = std::mem::take(&mut self.env.ready);
        ready.append(&mut self.env.next_ready);
        for idx in ready.drain(..) {
            let Some(conn) = self.conns.get_mut(idx) else {
                continue;
            };
            conn.in_ready = false;
            if conn.closing.is_none() {
                let started = self.net.now();
                self.env.service(idx, conn, now);
                let nanos = self.net.now().duration_since(started).as_nanos();
                self.env.counters.observe_processing(nanos as u64);
            }
        }
        // Keep the allocation for the next pass.
        self.env.ready = ready;
    }

    /// Buffers came back: connections waiting for one may read again.
    pub(super) fn resume_pool_waiters(&mut self) {
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
}

impl<P: Probe> Env<P> {
    /// Puts a connection back on the ready list if it may decode or read
    /// again: input waits in its buffer or the socket was not drained, and
    /// nothing (a backend call, a full output queue) holds it back. Whoever
    /// changes a connection's state outside `service` calls this, since no
    /// new readiness edge will come for bytes already there.
    pub(super) fn resume_input<S>(&mut self, idx: usize, conn: &mut Conn<S>) {
        let has_input = conn.readable || conn.eof || conn.input.is_some();
        if has_input
            && conn.closing.is_none()
            && !conn.session.phase().is_waiting()
            && !self.output_paused(&conn.output)
        {
            push_once(&mut self.ready, &mut conn.in_ready, idx);
        }
    }

    /// Reads and decodes for one connection, within the per-pass budget.
    fn service<S: Read>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) {
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
                conn.holds_from(now);
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
    fn decode<S>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) -> bool {
        if conn.awaiting_proxy && !self.proxy_header(idx, conn, now) {
            return conn.closing.is_none();
        }
        loop {
            if conn.closing.is_some() {
                return false;
            }
            let Some(buf) = conn.input.as_mut() else {
                conn.partial_since = None;
                return true;
            };
            if buf.is_empty() {
                conn.input = None; // an idle connection holds no buffer
                conn.partial_since = None;
                return true;
            }
            let (wire, header) = match conn.wire {
                Some(wire) => match self.next_frame(idx, conn, wire, now) {
                    Frame::Opened(header) => (wire, header),
                    Frame::More => return true,
                    Frame::Stop => return false,
                },
                None => match self.first_frame(idx, conn, now) {
                    First::Decided(wire, header) => (wire, header),
                    First::More => return true,
                    First::Stop => return false,
                },
            };
            // The input buffer is held: the output budget counts it.
            let budget = output_budget(conn);
            let Some(buf) = conn.input.as_mut() else {
                return true;
            };
            let ptype = wire.dialect.dialect().client_packet(header.command);
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
            self.step(conn.conn_ref, &mut conn.session, input, now, &mut actions);
            if actions.first() == Some(&Action::Echo) {
                let codec = wire.codec;
                let echoed = conn
                    .output
                    .encode(&self.pool, packet.len(), budget, |space| {
                        let frame = space.get_mut(..packet.len()).ok_or(EncodeError::TooLarge)?;
                        frame.copy_from_slice(packet);
                        codec
                            .seal(Direction::ServerToClient, frame)
                            .map_err(|_| EncodeError::TooLarge)?;
                        Ok::<usize, EncodeError>(frame.len())
                    });
                match echoed {
                    Ok(_) => self.counters.sent(PacketType::STRESS),
                    Err(failure) => actions.push(Action::Close(failure.reason())),
                }
                actions.remove(0);
            }
            buf.consume(header.wire_len);
            conn.progress_at = now;
            self.apply(idx, conn, &mut actions, now);
            self.actions = actions;
            self.schedule(idx, conn);
        }
    }

    /// The next whole frame of a connection whose wire is known, opened in
    /// place, unless it must wait (more bytes, backpressure) or is bad
    /// (the connection is closed).
    fn next_frame<S>(&mut self, idx: usize, conn: &mut Conn<S>, wire: Wire, now: Instant) -> Frame {
        let Some(buf) = conn.input.as_mut() else {
            return Frame::More;
        };
        let header = match wire.codec.peek(Direction::ClientToServer, buf.filled()) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.frame_started(idx, conn, now);
                return Frame::More;
            }
            Err(e) => {
                self.refuse(idx, conn, e, "bad frame", Dump::Input);
                return Frame::Stop;
            }
        };
        if buf.len() < header.wire_len {
            if buf.spare_len() < header.wire_len - buf.len() {
                buf.compact();
            }
            self.frame_started(idx, conn, now);
            return Frame::More;
        }
        // The front frame is whole: no frame deadline while it waits.
        conn.partial_since = None;
        if self.draining.is_some() || self.output_paused(&conn.output) {
            // Shutting down, or the client is not reading its replies:
            // decode nothing more (bytes wait here, then in the kernel).
            return Frame::Stop;
        }
        // The ALIVE id is looked up only while a call is pending, not per frame.
        if conn.session.phase().is_waiting()
            && Some(header.command) != wire.dialect.dialect().wire_id(PacketType::PAKCS_ALIVE)
        {
            // Backpressure: the packet waits in the buffer (and then in
            // the kernel) until the backend answers.
            return Frame::Stop;
        }
        if let Err(e) = wire.codec.open(&header, buf.filled_mut()) {
            self.refuse(idx, conn, e, "bad frame", Dump::None);
            return Frame::Stop;
        }
        Frame::Opened(header)
    }

    /// The first frame of a connection whose wire the first packet decides
    /// (trial decoding, docs/protocol.md §10.6): decoded in place with the
    /// table it fits, which the connection keeps. No table fits: closed as
    /// `bad_checksum`, counted.
    fn first_frame<S>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) -> First {
        if self.draining.is_some() {
            return First::Stop;
        }
        let Some(buf) = conn.input.as_mut() else {
            return First::More;
        };
        match self.first.decode(buf.filled_mut()) {
            Ok(Some((wire, header))) => {
                conn.wire = Some(wire);
                conn.partial_since = None;
                conn.session.set_dialect(wire.dialect);
                self.counters.dialect(wire.dialect);
                trace!("{} first packet chose its wire", Prefix(conn));
                First::Decided(wire, header)
            }
            Ok(None) => {
                if buf.spare_len() < MAX_PACKET_SIZE.saturating_sub(buf.len()) {
                    buf.compact();
                }
                self.frame_started(idx, conn, now);
                First::More
            }
            Err(e) => {
                self.refuse(idx, conn, e, "no table fits the first packet", Dump::Input);
                First::Stop
            }
        }
    }
}

impl<P: Probe> Env<P> {
    /// A frame that does not decode closes its connection, counted by kind
    /// and logged at debug (with at most 32 bytes of the input in hex).
    fn refuse<S>(&mut self, idx: usize, conn: &mut Conn<S>, e: FrameError, what: &str, dump: Dump) {
        let error = frame_error(e);
        if log::log_enabled!(log::Level::Debug) {
            let bytes = match (dump, conn.input.as_ref()) {
                (Dump::Input, Some(buf)) => hex_prefix(buf.filled()),
                _ => String::new(),
            };
            debug!("{} {what}: {e}; {bytes}", Prefix(conn));
        }
        self.counters.protocol_error(error.index());
        self.close(idx, conn, CloseReason::Protocol(error));
    }
}

/// Whether a refused frame's log line shows the input.
#[derive(Clone, Copy)]
enum Dump {
    /// The first bytes of the input buffer.
    Input,
    /// Nothing (the body is already decrypted in place).
    None,
}

/// What [`Env::next_frame`] found.
enum Frame {
    /// A whole frame, opened in place.
    Opened(FrameHeader),
    /// Read more first.
    More,
    /// Decode nothing more now (backpressure, or closed).
    Stop,
}

/// What [`Env::first_frame`] found.
enum First {
    /// The wire is known; the frame is opened in place.
    Decided(Wire, FrameHeader),
    /// Read more first.
    More,
    /// Decode nothing more now (shutting down, or closed).
    Stop,
}

impl<P: Probe> Env<P> {
    /// The front of the input is an incomplete frame (or PROXY header): its
    /// deadline runs from the first time it was seen so.
    pub(super) fn frame_started<S>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) {
        if conn.partial_since.is_none() {
            conn.partial_since = Some(now);
            self.schedule(idx, conn);
        }
    }
}

fn push_once_deque(list: &mut VecDeque<usize>, flag: &mut bool, idx: usize) {
    if !*flag {
        *flag = true;
        list.push_back(idx);
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
pub(super) fn hex_prefix(bytes: &[u8]) -> String {
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
