//! The per-connection state machine, without I/O (docs/architecture.md §4,
//! docs/architecture.md §5; docs/protocol.md §4 and §9).
//!
//! [`Session::handle`] takes one [`Input`] — a decoded packet, an RPC
//! completion, a world event or a timer tick — and the current time, and
//! pushes [`Action`]s for the reactor to carry out. It never touches a socket
//! or the clock, so it is unit-tested and simulated with an injected clock.
//!
//! The handlers of each group of phases have their own file (`login.rs`,
//! `char_select.rs`, `world.rs`); `replies.rs` builds the packets they send,
//! `phase.rs` declares the phases. A handler takes the phase it handles by
//! value and returns the next one, so nothing ever stands in for the phase
//! during a transition: a close always says the farewells of the phase it
//! closes.

mod bucket;
mod char_select;
mod ctx;
mod game;
mod login;
mod phase;
mod replies;
mod world;

use std::net::SocketAddr;
use std::time::Instant;

use crate::conn::calls::{Call, LeaveReason, Liveness, LogoutReason, Reply, RpcError};
use crate::ids::{RequestId, SessionId};
use crate::protocol::packet_type::{DialectId, Family, PacketType};
use crate::protocol::packets::ServerPacket;

use super::reason::{ChatRefusal, CloseReason, ProtocolError};
use bucket::TokenBucket;
pub use ctx::{Ctx, UtcTime};
pub use game::{GameConn, GameEvent};
pub use phase::{CharOp, CharSelect, CharSlot, Phase, Player};

/// What the state machine asks the reactor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Encode and queue a reply.
    Send(ServerPacket),
    /// Queue the packet being handled back unchanged (STRESS, docs/protocol.md §9 D3).
    Echo,
    /// Submit a backend call whose completion this connection waits for.
    Call(RequestId, Call),
    /// Submit a call nobody waits for (refresh, logout, world traffic).
    Notify(RequestId, Call),
    /// Route world traffic for this session to this connection.
    BindSession(SessionId),
    /// Stop routing world traffic for this session here.
    UnbindSession(SessionId),
    /// This is the session's char connection (irose: it stays open while
    /// the map connection plays).
    BindCharConn(SessionId),
    /// It no longer is.
    UnbindCharConn(SessionId),
    /// Tell the session's char connection (as an [`Input::Game`]).
    TellCharConn(SessionId, GameEvent),
    /// Count a protocol error (the packet was ignored unless a Close follows).
    ProtocolError(ProtocolError),
    /// Count a chat message dropped instead of forwarded.
    ChatRefused(ChatRefusal),
    /// Close the connection (after flushing what is queued).
    Close(CloseReason),
}

/// One input to the state machine.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A whole, valid frame with a known id.
    Packet {
        /// Its type.
        ptype: PacketType,
        /// Plaintext body (after the 6-byte header).
        body: &'a [u8],
    },
    /// A whole, valid frame whose id the dialect does not know.
    Unknown {
        /// The wire id.
        id: u16,
    },
    /// A backend answer for this connection.
    Completion {
        /// Which request.
        request: RequestId,
        /// What came back.
        result: &'a Result<Reply, RpcError>,
    },
    /// The world answered this connection's join.
    Joined {
        /// Accepted?
        ok: bool,
        /// Entity id.
        entity_id: u32,
    },
    /// The world kicked the player.
    Kicked,
    /// The world stream dropped.
    WorldDown,
    /// The session's map connection tells this char connection.
    Game(GameEvent),
    /// Time passed: check deadlines.
    Tick,
}

/// Whether an input applied to this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled.
    Applied,
    /// A completion the connection no longer waits for (dropped, counted).
    Stale,
}

/// What a connection keeps whatever its phase: timers, the awaited
/// request, the wrong-state count and the rate limit.
#[derive(Debug, Clone)]
struct Common {
    peer: SocketAddr,
    /// The dialect the client speaks (known before its first packet is
    /// handled; docs/protocol.md §10.6).
    dialect: DialectId,
    /// Request the phase waits for (set iff `phase.is_waiting()`; for
    /// WorldJoinPending the world's `Input::Joined`).
    pending: Option<(RequestId, Instant)>,
    /// Last request id handed out.
    next_request: u32,
    connected_at: Instant,
    /// Time of the last valid packet; `None` until the first (handshake).
    last_packet: Option<Instant>,
    last_refresh: Option<Instant>,
    wrong_state: u32,
    bucket: TokenBucket,
    /// Char connections of irose sessions: whether the player is in the
    /// world (then the idle timeout waits, `game.rs`).
    game: GameConn,
    /// The chat budget (world phase).
    chat: TokenBucket,
}

/// Whether closing in a phase owed the backends anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Farewell {
    /// A world Leave or an auth Logout was sent.
    Said,
    /// Nothing to say in this phase.
    Nothing,
}

impl Common {
    fn request(&mut self) -> RequestId {
        self.next_request = self.next_request.wrapping_add(1);
        RequestId(self.next_request)
    }

    fn notify(&mut self, call: Call, out: &mut Vec<Action>) {
        let id = self.request();
        out.push(Action::Notify(id, call));
    }

    /// Leaves the world or ends the session for a connection that closes in
    /// `phase`.
    fn farewell(&mut self, phase: &Phase, out: &mut Vec<Action>) -> Farewell {
        match phase {
            Phase::InWorld { player, .. } | Phase::WorldJoinPending(player) => {
                world::leave(self, player.session, out);
                if matches!(phase, Phase::InWorld { .. }) {
                    let left = GameEvent::Left(LeaveReason::Disconnect);
                    game::tell(self, player.session, left, out);
                }
                Farewell::Said
            }
            // Closing the character-select connection ends the session, as
            // closing osIROSE's char connection does (docs/protocol.md §4
            // step 10).
            Phase::CharSelect(c) | Phase::CharPending(c, _) => {
                let reason = LogoutReason::Disconnect;
                let session = c.session;
                self.notify(Call::Logout { session, reason }, out);
                if self.dialect.family() == Family::Irose {
                    out.push(Action::UnbindCharConn(session));
                }
                Farewell::Said
            }
            // Login connections close by design after a server select; the
            // session lives on for the join (and expires by TTL otherwise).
            _ => Farewell::Nothing,
        }
    }
}

/// Whether a packet was one every phase answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// Answered (ACCEPT_REQ, ALIVE, SCREEN_SHOT_TIME_REQ, STRESS).
    Answered,
    /// A packet for the phase's handler.
    ForThePhase,
}

/// One input being handled: what every phase handler works with.
struct Turn<'t, 'c> {
    common: &'t mut Common,
    ctx: &'t Ctx<'c>,
    now: Instant,
    out: &'t mut Vec<Action>,
}

impl Turn<'_, '_> {
    /// The family of the client's dialect: which replies and farewells it
    /// gets where irose and osIROSE differ.
    fn family(&self) -> Family {
        self.common.dialect.family()
    }

    fn send(&mut self, packet: ServerPacket) {
        self.out.push(Action::Send(packet));
    }

    /// Makes `call` and waits for its completion, until the RPC deadline.
    fn wait(&mut self, call: Call) {
        let id = self.await_request();
        self.out.push(Action::Call(id, call));
    }

    /// Sends `call` on the world stream and waits, with the deadline of an
    /// RPC, for the world's answer (an [`Input::Joined`]).
    fn wait_for_world(&mut self, call: Call) {
        let id = self.await_request();
        self.out.push(Action::Notify(id, call));
    }

    fn await_request(&mut self) -> RequestId {
        let id = self.common.request();
        self.common.pending = Some((id, self.now + self.ctx.rpc_deadline));
        id
    }

    fn notify(&mut self, call: Call) {
        self.common.notify(call, self.out);
    }

    /// Closes the connection from `phase`, saying its farewells.
    fn close(&mut self, phase: Phase, reason: CloseReason) -> Phase {
        if let Phase::Closing(_) = phase {
            return phase;
        }
        self.common.pending = None;
        self.out.push(Action::Close(reason));
        // `on_close` will only see Closing: say the farewells now.
        self.common.farewell(&phase, self.out);
        Phase::Closing(reason)
    }

    /// Protocol error that closes the connection (docs/protocol.md §9 D5).
    fn fatal(&mut self, phase: Phase, error: ProtocolError) -> Phase {
        self.out.push(Action::ProtocolError(error));
        self.close(phase, CloseReason::Protocol(error))
    }

    /// A known packet in the wrong phase: ignored and counted, closing past
    /// the budget (docs/protocol.md §9 D5).
    fn wrong_state(&mut self, phase: Phase) -> Phase {
        self.out
            .push(Action::ProtocolError(ProtocolError::WrongState));
        self.common.wrong_state += 1;
        if self.common.wrong_state > self.ctx.wrong_state_budget {
            return self.close(phase, CloseReason::WrongStateBudget);
        }
        phase
    }

    /// A packet the phase has no handler for. Outside the world LOGOUT_REQ
    /// is answered (nothing to leave; the client may quit); anything else is
    /// wrong-state.
    fn unexpected(&mut self, phase: Phase, ptype: PacketType) -> Phase {
        if ptype == PacketType::PAKCS_LOGOUT_REQ {
            self.send(replies::logout());
            return phase;
        }
        self.wrong_state(phase)
    }

    /// Answers the packets every phase answers itself.
    fn answer_locally(&mut self, phase: &Phase, ptype: PacketType) -> Local {
        match ptype {
            PacketType::PAKCS_ACCEPT_REQ => {
                let family = self.family();
                self.send(replies::accept(self.ctx.utc, family));
            }
            PacketType::PAKCS_ALIVE => self.on_alive(phase),
            PacketType::PAKCS_SCREEN_SHOT_TIME_REQ => {
                self.send(replies::screen_shot_time(self.ctx.utc));
            }
            PacketType::STRESS => self.out.push(Action::Echo),
            _ => return Local::ForThePhase,
        }
        Local::Answered
    }

    /// ALIVE: refreshes the session, at most once per refresh interval
    /// (docs/protocol.md §9 D6).
    fn on_alive(&mut self, phase: &Phase) {
        let Some(session) = phase.session() else {
            return;
        };
        if matches!(phase, Phase::Transferring { .. }) {
            return;
        }
        let now = self.now;
        let due = self
            .common
            .last_refresh
            .is_none_or(|t| now.saturating_duration_since(t) >= self.ctx.refresh_interval);
        if due {
            self.common.last_refresh = Some(now);
            self.notify(Call::Refresh { session });
        }
    }

    /// A packet for the phase (local answers are given already).
    fn on_packet(&mut self, phase: Phase, ptype: PacketType, body: &[u8]) -> Phase {
        if phase.is_waiting() {
            // The reactor does not decode while waiting; reaching here is a
            // wrong-state packet all the same.
            return self.wrong_state(phase);
        }
        match phase {
            Phase::New => login::on_new(self, ptype, body),
            Phase::LoggedIn { user, session } => {
                login::on_logged_in(self, user, session, ptype, body)
            }
            Phase::CharSelect(c) => char_select::on_packet(self, c, ptype, body),
            Phase::InWorld { player, entity } => {
                world::on_packet(self, player, entity, ptype, body)
            }
            phase => self.unexpected(phase, ptype),
        }
    }

    /// A backend answer to `request`.
    fn on_completion(
        &mut self,
        phase: Phase,
        request: RequestId,
        result: &Result<Reply, RpcError>,
    ) -> (Phase, Disposition) {
        if let Ok(Reply::Refresh(liveness)) = result {
            if *liveness == Liveness::Expired && phase.session().is_some() {
                return (
                    self.close(phase, CloseReason::SessionExpired),
                    Disposition::Applied,
                );
            }
            return (phase, Disposition::Applied);
        }
        let awaited = match self.common.pending.take() {
            Some(p) if p.0 == request => p,
            // Not what this connection waits for: a late answer to a request
            // that timed out, or one from before a phase change.
            other => {
                self.common.pending = other;
                return (phase, Disposition::Stale);
            }
        };
        let next = match (phase, result) {
            (Phase::LoginPending, Ok(Reply::Login(r))) => login::on_login_reply(self, r),
            (Phase::LoginPending, Err(_)) => login::on_login_failed(self),
            (Phase::SelectPending { user, session }, result) => {
                login::on_select_reply(self, user, session, result)
            }
            (Phase::JoinPending { session }, result) => login::on_join_reply(self, session, result),
            (Phase::CharPending(c, op), result) => char_select::on_reply(self, c, op, result),
            (Phase::WorldJoinPending(player), Err(_)) => world::on_join_timeout(self, player),
            (phase, _) => {
                // An answer of the wrong kind settles nothing: keep waiting,
                // with the deadline, which then fails the request.
                self.common.pending = Some(awaited);
                return (phase, Disposition::Stale);
            }
        };
        (next, Disposition::Applied)
    }

    /// Time passed: the handshake and idle timeouts, then the deadline of
    /// the awaited request.
    fn on_tick(&mut self, phase: Phase) -> Phase {
        let now = self.now;
        let last_packet = self.common.last_packet;
        match last_packet {
            None if now >= self.common.connected_at + self.ctx.handshake_timeout => {
                return self.close(phase, CloseReason::HandshakeTimeout);
            }
            Some(t) if now >= t + self.ctx.idle_timeout && !game::keeps_alive(self.common, now) => {
                return self.close(phase, CloseReason::IdleTimeout);
            }
            _ => {}
        }
        match self.common.pending {
            Some((request, deadline)) if now >= deadline => {
                let failed = Err(RpcError::DeadlineExceeded);
                self.on_completion(phase, request, &failed).0
            }
            _ => phase,
        }
    }
}

/// The state of one connection.
#[derive(Debug, Clone)]
pub struct Session {
    /// Always the real phase: replaced only by what a handler returns.
    phase: Phase,
    common: Common,
}

impl Session {
    /// A new connection from `peer` accepted at `now`.
    pub fn new(peer: SocketAddr, now: Instant, burst: u32) -> Session {
        Session {
            phase: Phase::New,
            common: Common {
                peer,
                dialect: DialectId::Osirose,
                pending: None,
                next_request: 0,
                connected_at: now,
                last_packet: None,
                last_refresh: None,
                wrong_state: 0,
                bucket: TokenBucket::full(now, burst),
                game: GameConn::Closed,
                chat: TokenBucket::brimming(now),
            },
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The backend request this connection waits for and its deadline, if
    /// any (read by the invariant checks of the fuzz target and the
    /// simulation).
    pub fn pending_request(&self) -> Option<(RequestId, Instant)> {
        self.common.pending
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.common.peer
    }

    /// Replaces the peer address (PROXY protocol).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.common.peer = peer;
    }

    /// The dialect the client speaks (`osirose` until told otherwise).
    pub fn dialect(&self) -> DialectId {
        self.common.dialect
    }

    /// Sets the dialect, once the reactor knows it (at accept, or from the
    /// first packet), before any packet is handled.
    pub fn set_dialect(&mut self, dialect: DialectId) {
        self.common.dialect = dialect;
    }

    /// [`Session::new`] for a client of `dialect`.
    pub fn with_dialect(mut self, dialect: DialectId) -> Session {
        self.common.dialect = dialect;
        self
    }

    /// The earliest time at which [`Input::Tick`] can change something.
    pub fn next_deadline(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        if matches!(self.phase, Phase::Closing(_)) {
            return None;
        }
        let activity = match self.common.last_packet {
            None => self.common.connected_at + ctx.handshake_timeout,
            Some(t) => t + ctx.idle_timeout,
        };
        Some(match self.common.pending {
            Some((_, deadline)) => activity.min(deadline),
            None => activity,
        })
    }

    /// What the connection does when it goes away (the reactor calls this
    /// once, whatever the reason): leave the world, end the session. A close
    /// the state machine decided itself has said this already.
    pub fn on_close(&mut self, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_)) {
            return;
        }
        if self.common.farewell(&self.phase, out) == Farewell::Said {
            self.phase = Phase::Closing(CloseReason::PeerClosed);
        }
    }

    /// Handles one input at `now`, pushing actions to `out`.
    pub fn handle(
        &mut self,
        ctx: &Ctx<'_>,
        input: Input<'_>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Disposition {
        if matches!(self.phase, Phase::Closing(_)) {
            return match input {
                Input::Completion { .. } | Input::Joined { .. } => Disposition::Stale,
                _ => Disposition::Applied,
            };
        }
        let mut t = Turn {
            common: &mut self.common,
            ctx,
            now,
            out,
        };
        // Every frame takes a token, whether its id is known or not (an
        // ignored unknown id is no way around the rate limit).
        let frame = matches!(input, Input::Packet { .. } | Input::Unknown { .. });
        if frame
            && !t
                .common
                .bucket
                .take(now, ctx.packets_per_sec, ctx.packet_burst)
        {
            self.phase = t.close(self.phase.clone(), CloseReason::RateLimited);
            return Disposition::Applied;
        }
        // Handlers take the phase by value and return the next one; the
        // clone copies a few ids (in character select, the short list).
        let (next, disposition) = match input {
            Input::Packet { ptype, body } => {
                t.common.last_packet = Some(now);
                if t.answer_locally(&self.phase, ptype) == Local::Answered {
                    return Disposition::Applied;
                }
                let next = t.on_packet(self.phase.clone(), ptype, body);
                (next, Disposition::Applied)
            }
            Input::Unknown { id: _ } => {
                t.common.last_packet = Some(now);
                let char_select = matches!(self.phase, Phase::CharSelect(_));
                if matches!(self.phase, Phase::InWorld { .. })
                    || (char_select && t.family() == Family::Irose)
                {
                    // After the join unknown ids are ignored, as osIROSE's
                    // map does (and rose-offline's world and game servers).
                    t.out
                        .push(Action::ProtocolError(ProtocolError::UnknownPacket));
                    return Disposition::Applied;
                }
                let closed = t.fatal(self.phase.clone(), ProtocolError::UnknownPacket);
                (closed, Disposition::Applied)
            }
            Input::Completion { request, result } => {
                t.on_completion(self.phase.clone(), request, result)
            }
            Input::Joined { ok, entity_id } => {
                world::on_joined(&mut t, self.phase.clone(), ok, entity_id)
            }
            Input::Kicked => (
                t.close(self.phase.clone(), CloseReason::Kicked),
                Disposition::Applied,
            ),
            Input::WorldDown => {
                if !matches!(
                    self.phase,
                    Phase::InWorld { .. } | Phase::WorldJoinPending(_)
                ) {
                    return Disposition::Applied;
                }
                t.send(replies::world_unavailable());
                let closed = t.close(self.phase.clone(), CloseReason::WorldLinkLost);
                (closed, Disposition::Applied)
            }
            Input::Tick => (t.on_tick(self.phase.clone()), Disposition::Applied),
            Input::Game(event) => (
                game::on_event(&mut t, self.phase.clone(), event),
                Disposition::Applied,
            ),
        };
        self.phase = next;
        disposition
    }
}

#[cfg(test)]
mod tests;
