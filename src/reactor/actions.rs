//! Completions and actions: RPC completions routed to the connection that
//! asked (slot and generation) or to the world session's connection, the
//! one place a session steps, the state machine's actions carried out, and
//! jobs submitted to the runtime, with cleanup that a full queue refused
//! retried every pass.

use std::time::Instant;

use log::{debug, info, warn};

use super::net::Net;
use super::probe::{Probe, Step};
use super::{context, output_budget, Env, Reactor, COMPLETIONS_PER_PASS};
use crate::conn::calls::{Call, RpcError};
use crate::conn::output::EncodeFailure;
use crate::conn::reason::CloseReason;
use crate::conn::state::{Action, Disposition, Input, Session};
use crate::conn::{Conn, Prefix};
use crate::ids::{ConnRef, RequestId, SessionId};
use crate::protocol::packet_type::Direction;
use crate::protocol::packets::EncodeError;
use crate::protocol::MAX_PACKET_SIZE;
use crate::rpc::types::{Completion, Job};

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Drains the completion channel (bounded per pass).
    pub(super) fn complete(&mut self, now: Instant) {
        // Wakes coalesce: drain what is there, bounded so that sockets get
        // their turn; the rest is taken next pass without sleeping.
        self.env.completions_pending = true;
        for _ in 0..COMPLETIONS_PER_PASS {
            let Some(completion) = self.env.bridge.try_complete() else {
                self.env.completions_pending = false;
                break;
            };
            if !matches!(completion, Completion::Broadcast { .. }) {
                // What a run queued comes first (`runs.rs`).
                self.end_run(now);
            }
            match completion {
                Completion::Rpc {
                    conn,
                    request,
                    result,
                } => {
                    let input = Input::Completion {
                        request,
                        result: &result,
                    };
                    self.deliver(conn, input, now);
                }
                Completion::Joined {
                    session,
                    ok,
                    entity_id,
                } => {
                    let input = Input::Joined { ok, entity_id };
                    if let Some(&conn) = self.env.sessions.get(&session) {
                        self.deliver(conn, input, now);
                    } else {
                        self.env.stale(&input);
                    }
                }
                Completion::Kick { session, reason } => {
                    if let Some(&conn) = self.env.sessions.get(&session) {
                        info!("session {} kicked by the world: {reason}", session.0);
                        self.deliver(conn, Input::Kicked, now);
                    }
                }
                Completion::Broadcast {
                    targets,
                    type_id,
                    payload,
                    family,
                } => self.world_packet(targets, type_id, payload, family, now),
                Completion::WorldLink(up) => {
                    if !up {
                        // In slot order, not the map's (seeded replays are exact).
                        let mut bound: Vec<ConnRef> = self.env.sessions.values().copied().collect();
                        bound.sort_unstable_by_key(|c| (c.index, c.generation));
                        for conn in bound {
                            self.deliver(conn, Input::WorldDown, now);
                        }
                    }
                }
                Completion::ServerList(servers) => self.env.servers = servers,
            }
        }
        self.end_run(now);
    }

    /// Delivers what map connections told their sessions' char connections
    /// this pass (irose sessions, `src/conn/state/game.rs`). A session
    /// without a char connection (it closed first) is told nothing.
    pub(super) fn relay_game_events(&mut self, now: Instant) {
        // Handling a game event tells nothing further; the loop is bounded
        // by what was queued before it.
        let mut told = std::mem::take(&mut self.env.told);
        for (session, event) in told.drain(..) {
            let Some(&conn) = self.env.char_conns.get(&session) else {
                continue;
            };
            // A char connection on its way out is told nothing (this is no
            // backend answer: nothing to count as stale).
            let open = self.conns.get(conn.index as usize);
            if open.is_some_and(|c| c.conn_ref == conn && c.closing.is_none()) {
                self.deliver(conn, Input::Game(event), now);
            }
        }
        if self.env.told.is_empty() {
            self.env.told = told;
        }
    }

    /// Feeds an input to the connection `conn` refers to, if it still exists.
    fn deliver(&mut self, conn_ref: ConnRef, input: Input<'_>, now: Instant) {
        let idx = conn_ref.index as usize;
        let Some(conn) = self.conns.get_mut(idx) else {
            self.env.stale(&input);
            return;
        };
        if conn.conn_ref != conn_ref || conn.closing.is_some() {
            self.env.stale(&input);
            return;
        }
        let env = &mut self.env;
        let mut actions = std::mem::take(&mut env.actions);
        let disposition = env.step(conn.conn_ref, &mut conn.session, input, now, &mut actions);
        if disposition == Disposition::Stale {
            env.stale(&input);
        }
        env.apply(idx, conn, &mut actions, now);
        env.actions = actions;
        env.schedule(idx, conn);
        env.resume_input(idx, conn);
        self.kick_displaced(now);
    }

    /// Closes (`kicked`) the older connections of sessions that joined again
    /// through another connection: one player per session, and the older
    /// connection's Leave carries its own join id, so it cannot remove the
    /// newer player (docs/protocol.md §9 D15).
    fn kick_displaced(&mut self, now: Instant) {
        while let Some(old) = self.env.displaced.pop() {
            let live = self
                .conns
                .get(old.index as usize)
                .is_some_and(|c| c.conn_ref == old && c.closing.is_none());
            if live {
                info!("{old} kicked: its session joined again on another connection");
                self.deliver(old, Input::Kicked, now);
            }
        }
    }
}

impl<P: Probe> Env<P> {
    /// Feeds one input to a connection's state machine, pushing its actions
    /// to `actions`: the only place a session steps (the probe watches).
    pub(super) fn step(
        &mut self,
        conn: ConnRef,
        session: &mut Session,
        input: Input<'_>,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Disposition {
        let ctx = context(&self.cfg, &self.servers, self.utc);
        let start = actions.len();
        self.probe.before(conn, session, &ctx);
        let disposition = session.handle(&ctx, input, now, actions);
        self.probe.after(&Step {
            conn,
            session,
            ctx: &ctx,
            input: &input,
            now,
            actions: &actions[start..],
            disposition,
        });
        disposition
    }

    /// Counts a completion (or a world event) that found no connection
    /// waiting for it.
    pub(super) fn stale(&mut self, input: &Input<'_>) {
        self.counters.stale_completions += 1;
        self.probe.stale(input);
    }

    /// Carries out the state machine's actions for one connection.
    pub(super) fn apply<S>(
        &mut self,
        idx: usize,
        conn: &mut Conn<S>,
        actions: &mut Vec<Action>,
        now: Instant,
    ) {
        let mut i = 0;
        while i < actions.len() {
            let action = std::mem::replace(&mut actions[i], Action::Echo);
            i += 1;
            match action {
                Action::Send(packet) => {
                    let wire = conn.wire.unwrap_or_else(|| self.first.placeholder());
                    let (codec, dialect) = (wire.codec, wire.dialect.dialect());
                    let budget = output_budget(conn);
                    conn.holds_from(now);
                    let result = conn
                        .output
                        .encode(&self.pool, MAX_PACKET_SIZE, budget, |space| {
                            let n = packet.write(dialect, space)?;
                            codec
                                .seal(Direction::ServerToClient, &mut space[..n])
                                .map_err(|_| EncodeError::TooLarge)?;
                            Ok::<usize, EncodeError>(n)
                        });
                    match result {
                        Ok(_) => self.counters.sent(packet.packet_type()),
                        Err(failure @ (EncodeFailure::NoBuffer | EncodeFailure::OverBudget)) => {
                            debug!(
                                "{} no buffer for a reply ({failure:?}): closing",
                                Prefix(conn)
                            );
                            self.close(idx, conn, failure.reason());
                        }
                        Err(EncodeFailure::Encoder) => {
                            // A backend answer too large for the protocol:
                            // the client would wait forever for it.
                            warn!(
                                "{} cannot encode {}: closing",
                                Prefix(conn),
                                packet.packet_type()
                            );
                            self.close(idx, conn, CloseReason::BackendUnavailable);
                        }
                    }
                }
                Action::Echo => {}
                Action::Call(request, call) => {
                    if !self.submit(conn, request, call) {
                        // Queue full: answer at once with the failure result.
                        let busy = Err(RpcError::Busy);
                        let input = Input::Completion {
                            request,
                            result: &busy,
                        };
                        self.step(conn.conn_ref, &mut conn.session, input, now, actions);
                    }
                }
                Action::Notify(request, call) => {
                    let joining = matches!(call, Call::WorldJoin { .. });
                    if !self.submit(conn, request, call) && joining {
                        let input = Input::Joined {
                            ok: false,
                            entity_id: 0,
                        };
                        self.step(conn.conn_ref, &mut conn.session, input, now, actions);
                    }
                }
                Action::BindSession(s) => {
                    if let Some(old) = self.sessions.insert(s, conn.conn_ref) {
                        if old != conn.conn_ref {
                            debug!("session {} moved from {old} to {}", s.0, conn.conn_ref);
                            self.displaced.push(old);
                        }
                    }
                }
                Action::UnbindSession(s) => self.unbind(s, conn.conn_ref),
                Action::BindCharConn(s) => {
                    self.char_conns.insert(s, conn.conn_ref);
                }
                Action::UnbindCharConn(s) => self.unbind_char_conn(s, conn.conn_ref),
                Action::TellCharConn(s, event) => self.told.push((s, event)),
                Action::ProtocolError(e) => self.counters.protocol_error(e.index()),
                Action::ChatRefused(r) => {
                    debug!("{} chat dropped: {}", Prefix(conn), r.as_str());
                    self.counters.chat_refused(r.index());
                    self.limits.chat_refused[r.index()] += 1;
                }
                Action::Close(reason) => self.close(idx, conn, reason),
            }
        }
        actions.clear();
        self.queued(idx, conn);
    }

    /// Hands a job to the runtime; false (counted) when the queue is full.
    /// Cleanup (a world Leave, an auth Logout) is never dropped: it waits in
    /// `cleanup` and is retried every pass, so a full queue cannot leave a
    /// ghost player in the world or a session open.
    pub(super) fn submit<S>(&mut self, conn: &Conn<S>, request: RequestId, call: Call) -> bool {
        let job = Job {
            conn: conn.conn_ref,
            request,
            call,
        };
        match self.bridge.submit(job) {
            Ok(()) => true,
            Err(job) => {
                self.counters.rpc_queue_rejected += 1;
                if matches!(job.call, Call::WorldLeave { .. } | Call::Logout { .. }) {
                    self.cleanup.push_back(job);
                }
                false
            }
        }
    }

    /// Retries cleanup jobs that found the queue full, oldest first.
    pub(super) fn retry_cleanup(&mut self) {
        while let Some(job) = self.cleanup.pop_front() {
            if let Err(job) = self.bridge.submit(job) {
                self.cleanup.push_front(job);
                return;
            }
        }
    }

    /// Forgets the session's char connection, if it is `conn_ref`.
    pub(super) fn unbind_char_conn(&mut self, session: SessionId, conn_ref: ConnRef) {
        if self.char_conns.get(&session) == Some(&conn_ref) {
            self.char_conns.remove(&session);
        }
    }

    pub(super) fn unbind(&mut self, session: SessionId, conn_ref: ConnRef) {
        if self.sessions.get(&session) == Some(&conn_ref) {
            self.sessions.remove(&session);
        }
    }
}
