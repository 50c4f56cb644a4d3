//! Closing: marking a connection for the reaper, draining at shutdown,
//! reaping (last write, farewells to the backends, slot freed) and lingering
//! half-closed sockets until the client's EOF.

use std::io::{self, Read};
use std::time::Instant;

use log::{debug, info, trace, warn};

use super::net::{Net, Stream as _};
use super::probe::Probe;
use super::{Env, Reactor, LINGER, LINGER_MAX};
use crate::conn::reason::CloseReason;
use crate::conn::state::Action;
use crate::conn::{Conn, Prefix};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Shutdown requested: stop accepting, give in-flight work the grace.
    pub(super) fn begin_drain(&mut self, now: Instant) {
        info!(
            "shutting down: no longer accepting; draining {} connections (grace {:?})",
            self.conns.len(),
            self.env.cfg.shutdown_grace
        );
        crate::systemd::stopping();
        if let Some(mut listener) = self.listener.take() {
            let _ = self.net.deregister_listener(&mut listener);
        }
        self.env.draining = Some(now + self.env.cfg.shutdown_grace);
        self.health.set_stopping();
    }

    /// Closes every connection that has nothing left in flight.
    pub(super) fn drain_step(&mut self, _now: Instant) {
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

    /// The end of the loop: whatever is left closes now.
    pub(super) fn close_all(&mut self) {
        let left: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for idx in left {
            if let Some(conn) = self.conns.get_mut(idx) {
                if conn.closing.is_none() {
                    conn.closing = Some(CloseReason::Shutdown);
                    self.env.closing.push(idx);
                }
            }
        }
        self.reap(self.net.now());
        self.env.retry_cleanup();
        if !self.env.cleanup.is_empty() {
            warn!(
                "{} world leaves / logouts could not be queued before exit",
                self.env.cleanup.len()
            );
        }
        self.env.counters.set_active(0);
        self.env.counters.set_in_world(0);
        self.env.counters.publish();
        info!("all connections closed");
    }

    /// Frees the slots of the connections marked for closing: last write,
    /// farewells to the backends, per-IP count, then linger or close.
    pub(super) fn reap(&mut self, now: Instant) {
        let mut closing = std::mem::take(&mut self.env.closing);
        // A close a timer made (no socket event this pass) is published too.
        self.unpublished |= !closing.is_empty();
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
            self.env.probe.closed(conn.conn_ref, &actions);
            for action in actions.drain(..) {
                match action {
                    Action::Notify(request, call) => {
                        self.env.submit(&conn, request, call);
                    }
                    Action::UnbindSession(s) => self.env.unbind(s, conn.conn_ref),
                    Action::UnbindCharConn(s) => self.env.unbind_char_conn(s, conn.conn_ref),
                    Action::TellCharConn(s, event) => self.env.told.push((s, event)),
                    _ => {}
                }
            }
            self.env.actions = actions;
            let _ = self.net.deregister(&mut conn.socket);
            self.env.uncount_ip(&conn);
            self.env.counters.close(reason.index());
            self.env.limits.closed[reason.index()] += 1;
            if reason.is_normal() {
                trace!("{} closed: {reason}", Prefix(&conn));
            } else {
                debug!("{} closed: {reason}", Prefix(&conn));
            }
            if reason.follows_reply() && !conn.eof && self.lingering.len() < LINGER_MAX {
                // Half-close: the FIN follows the last reply, and what the
                // client still sends is read and dropped until it closes too.
                // Closing with unread input would send a reset that can
                // destroy replies the client has not read yet.
                let _ = conn.socket.shutdown_write();
                self.lingering.push((conn.socket, now + LINGER));
            } else {
                discard_unread(&mut conn.socket);
            }
        }
        self.env.closing = closing;
    }

    /// Half-closed sockets: drop what the client sends; close on its EOF or
    /// at the linger deadline.
    pub(super) fn linger(&mut self, now: Instant) {
        self.lingering.retain_mut(|(socket, deadline)| {
            if now >= *deadline {
                return false;
            }
            // Kept until the client's EOF or an error; reads are bounded.
            matches!(drain(socket), Drained::Empty | Drained::Budget)
        });
    }
}

impl<P> Env<P> {
    /// Marks a connection for the reaper (the first reason wins).
    pub(super) fn close<S>(&mut self, idx: usize, conn: &mut Conn<S>, reason: CloseReason) {
        if conn.closing.is_none() {
            conn.closing = Some(reason);
            self.closing.push(idx);
        }
    }
}

/// How [`drain`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// Nothing more to read now.
    Empty,
    /// The read budget was used up; more may be waiting.
    Budget,
    /// The client's EOF, or an error: the socket is done.
    Ended,
}

/// Reads and drops what the client sent, at most 16 reads of 4 KiB.
fn drain(socket: &mut impl Read) -> Drained {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match socket.read(&mut sink) {
            Ok(0) => return Drained::Ended,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Drained::Ended,
        }
    }
    Drained::Budget
}

/// Reads and drops what the client sent but was not decoded (bounded).
/// Closing a socket with unread input makes the kernel send a reset, which
/// can destroy replies still in flight to the client; an empty receive
/// queue gives a clean FIN after the last reply.
fn discard_unread(socket: &mut impl Read) {
    drain(socket);
}
