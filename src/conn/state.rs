//! The per-connection state machine, without I/O
//! (docs/architecture.md §4, §5; docs/protocol.md §4, §9).
//!
//! [`Session::handle`] takes one [`Input`] — a decoded packet, an RPC
//! completion, a world event or a timer tick — and the current time, and
//! pushes [`Action`]s for the reactor to carry out. It never touches a socket
//! or the clock, so it is unit-tested and simulated with an injected clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::{CharId, RequestId, SessionId, UserId};
use crate::pb::{auth, character, world};
use crate::protocol::packet_type::{DialectId, PacketType};
use crate::protocol::packets::{
    AcceptReply, ChanCharReply, ChannelInfo, ChannelListReply, ChannelListReq, CharInfo,
    CharListReply, CreateCharReply, CreateCharReq, DeleteCharReply, DeleteCharReq, JoinServerReply,
    JoinServerReq, LoginReply, LoginReq, LogoutReply, Packet, ScreenShotTimeReply, SelectCharReq,
    ServerInfo, ServerPacket, SrvSelectReply, SrvSelectReq, SwitchServer, WhisperChatReply,
};
use crate::rpc::types::{Call, Reply, RpcError};

use super::reason::{CloseReason, ProtocolError};

/// ACCEPT_REPLY result: accepted.
const ACCEPTED: u8 = 2;
/// LOGIN_REPLY / SRV_SELECT_REPLY / JOIN_SERVER_REPLY / CREATE_CHAR_REPLY result: failed.
const RESULT_FAILED: u8 = 1;
/// LOGIN_REPLY result: no right to connect (the connection is then closed).
const LOGIN_NO_RIGHT: u8 = 7;
/// DELETE_CHAR_REPLY remaining time meaning "refused".
const DELETE_REFUSED: u32 = 0xFFFF_FFFF;
/// Longest client-supplied name echoed back in a reply (character names are
/// far shorter; a frame could carry 2038 bytes, which no reply has room for).
const ECHOED_NAME_MAX: usize = 64;
/// Sender name of server notices delivered as whispers.
const SERVER_NOTICE: &str = "server msg";

/// Settings and shared data the state machine reads (owned by the reactor).
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// Advertised address of this gateway (SRV_SELECT_REPLY, SWITCH_SERVER).
    pub public_addr: &'a str,
    /// Advertised port.
    pub public_port: u16,
    /// The server list cached from the auth service.
    pub servers: &'a [auth::ServerInfo],
    /// Wrong-state packets tolerated before a disconnect (docs/protocol.md §9 D5).
    pub wrong_state_budget: u32,
    /// No valid packet within this long of connecting → close
    /// (docs/protocol.md §9 D8).
    pub handshake_timeout: Duration,
    /// No packet for this long → close (docs/protocol.md §9 D8).
    pub idle_timeout: Duration,
    /// How long to wait for a backend answer before failing the request.
    pub rpc_deadline: Duration,
    /// Minimum time between session refreshes on ALIVE (docs/protocol.md §9 D6).
    pub refresh_interval: Duration,
    /// Sustained packets per second allowed (0 = unlimited).
    pub packets_per_sec: u32,
    /// Burst size of the packet rate limit.
    pub packet_burst: u32,
    /// The current UTC time (for SCREEN_SHOT_TIME_REPLY), computed once per pass.
    pub utc: UtcTime,
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcTime {
    /// Year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Seconds since the Unix epoch, truncated to 32 bits (ACCEPT_REPLY's
    /// informational `randValue`, as osIROSE sends it).
    pub unix: u32,
}

impl UtcTime {
    /// Converts seconds since the Unix epoch.
    pub fn from_unix(secs: u64) -> UtcTime {
        let c = crate::civil::Civil::from_unix(secs);
        UtcTime {
            year: u16::try_from(c.year.max(0)).unwrap_or(u16::MAX),
            month: c.month,
            day: c.day,
            hour: c.hour,
            minute: c.minute,
            unix: secs as u32,
        }
    }
}

/// One character of the last list sent: the slot index is its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSlot {
    /// Backend id.
    pub char_id: CharId,
    /// Name (echoed in DELETE_CHAR_REPLY).
    pub name: String,
}

/// Data of the character-select phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSelect {
    /// Account.
    pub user: UserId,
    /// Session.
    pub session: SessionId,
    /// Slot → character, from the last CHAR_LIST_REPLY sent (empty until then).
    pub chars: Vec<CharSlot>,
}

/// Which character request is in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharOp {
    /// CHAR_LIST_REQ.
    List,
    /// CREATE_CHAR_REQ.
    Create,
    /// DELETE_CHAR_REQ of this character.
    Delete {
        /// Name for the reply.
        name: String,
    },
    /// SELECT_CHAR_REQ.
    Select,
}

/// The phase of a connection; each variant holds only what is valid in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connected, nothing established yet.
    New,
    /// LOGIN_REQ sent to the auth service.
    LoginPending,
    /// Logged in on the login connection.
    LoggedIn {
        /// Account.
        user: UserId,
        /// Session opened by the login.
        session: SessionId,
    },
    /// SRV_SELECT_REQ sent to the auth service.
    SelectPending {
        /// Account.
        user: UserId,
        /// Session.
        session: SessionId,
    },
    /// Server selected; the client moves to a new connection.
    Transferring {
        /// Session handed to the client.
        session: SessionId,
    },
    /// JOIN_SERVER_REQ sent to the auth service.
    JoinPending {
        /// The session the client presented.
        session: SessionId,
    },
    /// Joined in the char stage: character select.
    CharSelect(CharSelect),
    /// A character request is in flight.
    CharPending(CharSelect, CharOp),
    /// Joined in the map stage; waiting for the world to accept the player.
    WorldJoinPending {
        /// Account.
        user: UserId,
        /// Session.
        session: SessionId,
        /// Selected character.
        char_id: CharId,
    },
    /// In the world: map-phase packets are forwarded to the world service.
    InWorld {
        /// Account.
        user: UserId,
        /// Session.
        session: SessionId,
        /// Selected character.
        char_id: CharId,
        /// Entity id assigned by the world.
        entity: u32,
    },
    /// Being closed.
    Closing(CloseReason),
}

impl Phase {
    /// Short name for log prefixes.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::LoginPending => "login-pending",
            Phase::LoggedIn { .. } => "logged-in",
            Phase::SelectPending { .. } => "select-pending",
            Phase::Transferring { .. } => "transferring",
            Phase::JoinPending { .. } => "join-pending",
            Phase::CharSelect(_) => "char-select",
            Phase::CharPending(..) => "char-pending",
            Phase::WorldJoinPending { .. } => "world-join-pending",
            Phase::InWorld { .. } => "in-world",
            Phase::Closing(_) => "closing",
        }
    }

    /// Waiting for a backend answer: input other than ALIVE is not decoded.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Phase::LoginPending
                | Phase::SelectPending { .. }
                | Phase::JoinPending { .. }
                | Phase::CharPending(..)
                | Phase::WorldJoinPending { .. }
        )
    }

    /// The session bound to this connection, if any.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Phase::LoggedIn { session, .. }
            | Phase::SelectPending { session, .. }
            | Phase::Transferring { session }
            | Phase::WorldJoinPending { session, .. }
            | Phase::InWorld { session, .. } => Some(*session),
            Phase::CharSelect(c) | Phase::CharPending(c, _) => Some(c.session),
            _ => None,
        }
    }
}

/// What the state machine asks the reactor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Encode and queue a reply.
    Send(ServerPacket),
    /// Queue the packet being handled back unchanged (STRESS,
    /// docs/protocol.md §9 D3).
    Echo,
    /// Submit a backend call whose completion this connection waits for.
    Call(RequestId, Call),
    /// Submit a call nobody waits for (refresh, logout, world traffic).
    Notify(RequestId, Call),
    /// Route world traffic for this session to this connection.
    BindSession(SessionId),
    /// Stop routing world traffic for this session here.
    UnbindSession(SessionId),
    /// Count a protocol error (the packet was ignored unless a Close follows).
    ProtocolError(ProtocolError),
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

/// A token bucket for the packets-per-second limit.
#[derive(Debug, Clone)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The state of one connection.
#[derive(Debug, Clone)]
pub struct Session {
    phase: Phase,
    peer: SocketAddr,
    /// Request the phase waits for (set iff `phase.is_waiting()`, except
    /// WorldJoinPending which waits for `Input::Joined`).
    pending: Option<(RequestId, Instant)>,
    /// Last request id handed out.
    next_request: u32,
    connected_at: Instant,
    /// Time of the last valid packet; `None` until the first (handshake).
    last_packet: Option<Instant>,
    last_refresh: Option<Instant>,
    wrong_state: u32,
    bucket: TokenBucket,
}

impl Session {
    /// A new connection from `peer` accepted at `now`.
    pub fn new(peer: SocketAddr, now: Instant, burst: u32) -> Session {
        Session {
            phase: Phase::New,
            peer,
            pending: None,
            next_request: 0,
            connected_at: now,
            last_packet: None,
            last_refresh: None,
            wrong_state: 0,
            bucket: TokenBucket {
                tokens: f64::from(burst.max(1)),
                last: now,
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
        self.pending
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Replaces the peer address (PROXY protocol).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    /// The earliest time at which [`Input::Tick`] can change something.
    pub fn next_deadline(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        if matches!(self.phase, Phase::Closing(_)) {
            return None;
        }
        let activity = match self.last_packet {
            None => self.connected_at + ctx.handshake_timeout,
            Some(t) => t + ctx.idle_timeout,
        };
        Some(match self.pending {
            Some((_, deadline)) => activity.min(deadline),
            None => activity,
        })
    }

    fn request(&mut self) -> RequestId {
        self.next_request = self.next_request.wrapping_add(1);
        RequestId(self.next_request)
    }

    fn wait(&mut self, ctx: &Ctx<'_>, now: Instant, call: Call, out: &mut Vec<Action>) {
        let id = self.request();
        self.pending = Some((id, now + ctx.rpc_deadline));
        out.push(Action::Call(id, call));
    }

    fn notify(&mut self, call: Call, out: &mut Vec<Action>) {
        let id = self.request();
        out.push(Action::Notify(id, call));
    }

    fn close(&mut self, reason: CloseReason, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_)) {
            return;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closing(reason));
        self.pending = None;
        out.push(Action::Close(reason));
        // `on_close` will only see Closing: say the farewells now.
        self.farewell(&phase, out);
    }

    /// Protocol error that closes the connection (docs/protocol.md §9 D5).
    fn fatal(&mut self, error: ProtocolError, out: &mut Vec<Action>) {
        out.push(Action::ProtocolError(error));
        self.close(CloseReason::Protocol(error), out);
    }

    fn wrong_state(&mut self, ctx: &Ctx<'_>, out: &mut Vec<Action>) {
        out.push(Action::ProtocolError(ProtocolError::WrongState));
        self.wrong_state += 1;
        if self.wrong_state > ctx.wrong_state_budget {
            self.close(CloseReason::WrongStateBudget, out);
        }
    }

    /// What the connection does when it goes away (the reactor calls this
    /// once, whatever the reason): leave the world, end the session. A close
    /// the state machine decided itself has said this already.
    pub fn on_close(&mut self, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_)) {
            return;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closing(CloseReason::PeerClosed));
        if !self.farewell(&phase, out) {
            self.phase = phase;
        }
    }

    /// Leaves the world or ends the session for a connection that closes in
    /// `phase`. Returns whether there was anything to say.
    fn farewell(&mut self, phase: &Phase, out: &mut Vec<Action>) -> bool {
        match *phase {
            Phase::InWorld { session, .. } | Phase::WorldJoinPending { session, .. } => {
                out.push(Action::UnbindSession(session));
                self.notify(
                    Call::WorldLeave {
                        session,
                        reason: world::LeaveReason::Disconnect,
                    },
                    out,
                );
                true
            }
            // Closing the character-select connection ends the session, as
            // closing osIROSE's char connection does (docs/protocol.md §4 step 10).
            Phase::CharSelect(ref c) | Phase::CharPending(ref c, _) => {
                let session = c.session;
                self.notify(
                    Call::Logout {
                        session,
                        reason: auth::LogoutReason::Disconnect,
                    },
                    out,
                );
                true
            }
            // Login connections close by design after a server select; the
            // session lives on for the join (and expires by TTL otherwise).
            _ => false,
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
        match input {
            Input::Packet { ptype, body } => {
                if !self.bucket.take(now, ctx.packets_per_sec, ctx.packet_burst) {
                    self.close(CloseReason::RateLimited, out);
                    return Disposition::Applied;
                }
                self.last_packet = Some(now);
                self.on_packet(ctx, ptype, body, now, out);
            }
            Input::Unknown { id: _ } => {
                self.last_packet = Some(now);
                if matches!(self.phase, Phase::InWorld { .. }) {
                    // After the join unknown ids are ignored, as osIROSE's map does.
                    out.push(Action::ProtocolError(ProtocolError::UnknownPacket));
                } else {
                    self.fatal(ProtocolError::UnknownPacket, out);
                }
            }
            Input::Completion { request, result } => {
                return self.on_completion(ctx, request, result, now, out);
            }
            Input::Joined { ok, entity_id } => return self.on_joined(ok, entity_id, out),
            Input::Kicked => self.close(CloseReason::Kicked, out),
            Input::WorldDown => {
                if matches!(
                    self.phase,
                    Phase::InWorld { .. } | Phase::WorldJoinPending { .. }
                ) {
                    out.push(Action::Send(ServerPacket::WhisperChatReply(
                        WhisperChatReply {
                            sender: SERVER_NOTICE.to_owned(),
                            message: "The world server is unavailable. Please reconnect."
                                .to_owned(),
                        },
                    )));
                    self.close(CloseReason::WorldLinkLost, out);
                }
            }
            Input::Tick => self.on_tick(ctx, now, out),
        }
        Disposition::Applied
    }

    fn on_tick(&mut self, ctx: &Ctx<'_>, now: Instant, out: &mut Vec<Action>) {
        match self.last_packet {
            None if now >= self.connected_at + ctx.handshake_timeout => {
                return self.close(CloseReason::HandshakeTimeout, out);
            }
            Some(t) if now >= t + ctx.idle_timeout => {
                return self.close(CloseReason::IdleTimeout, out);
            }
            _ => {}
        }
        if let Some((request, deadline)) = self.pending {
            if now >= deadline {
                let failed = Err(RpcError::DeadlineExceeded);
                self.on_completion(ctx, request, &failed, now, out);
            }
        }
    }

    fn on_packet(
        &mut self,
        ctx: &Ctx<'_>,
        ptype: PacketType,
        body: &[u8],
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        use PacketType as T;
        // Answered locally in every phase.
        match ptype {
            T::PAKCS_ACCEPT_REQ => {
                return out.push(Action::Send(ServerPacket::AcceptReply(AcceptReply {
                    result: ACCEPTED,
                    // Informational only (never a key, docs/protocol.md §1.4).
                    rand_value: ctx.utc.unix,
                })));
            }
            T::PAKCS_ALIVE => return self.on_alive(ctx, now, out),
            T::PAKCS_SCREEN_SHOT_TIME_REQ => {
                let u = ctx.utc;
                return out.push(Action::Send(ServerPacket::ScreenShotTimeReply(
                    ScreenShotTimeReply {
                        year: u.year,
                        month: u.month,
                        day: u.day,
                        hour: u.hour,
                        minute: u.minute,
                    },
                )));
            }
            T::STRESS => return out.push(Action::Echo),
            _ => {}
        }
        if self.phase.is_waiting() {
            // The reactor does not decode while waiting; reaching here is a
            // wrong-state packet all the same.
            return self.wrong_state(ctx, out);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::New);
        self.phase = match (phase, ptype) {
            (Phase::New, T::PAKCS_LOGIN_REQ) => match LoginReq::decode(body) {
                Ok(req) => {
                    let call = Call::Login {
                        username: req.username,
                        kind: digest_kind(req.digest.len()),
                        digest: req.digest,
                        peer: self.peer.to_string(),
                    };
                    self.wait(ctx, now, call, out);
                    Phase::LoginPending
                }
                Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
            },
            (Phase::New, T::PAKCS_JOIN_SERVER_REQ) => match JoinServerReq::decode(body) {
                Ok(req) => {
                    let session = SessionId(req.session_id);
                    let call = Call::JoinServer {
                        session,
                        kind: digest_kind(req.digest.len()),
                        digest: req.digest,
                        peer: self.peer.to_string(),
                    };
                    self.wait(ctx, now, call, out);
                    Phase::JoinPending { session }
                }
                Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
            },
            (phase @ Phase::LoggedIn { .. }, T::PAKCS_CHANNEL_LIST_REQ) => {
                match ChannelListReq::decode(body) {
                    Ok(req) => out.push(Action::Send(ServerPacket::ChannelListReply(
                        channel_list(ctx.servers, req.server_id),
                    ))),
                    Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
                }
                phase
            }
            (Phase::LoggedIn { user, session }, T::PAKCS_SRV_SELECT_REQ) => {
                match SrvSelectReq::decode(body) {
                    Ok(req) => {
                        let call = Call::SelectServer {
                            session,
                            server_id: req.server_id,
                            channel_id: u32::from(req.channel_id),
                        };
                        self.wait(ctx, now, call, out);
                        Phase::SelectPending { user, session }
                    }
                    Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
                }
            }
            (Phase::CharSelect(c), T::PAKCS_CHAR_LIST_REQ) => {
                self.wait(ctx, now, Call::ListChars { user: c.user }, out);
                Phase::CharPending(c, CharOp::List)
            }
            (Phase::CharSelect(c), T::PAKCS_CREATE_CHAR_REQ) => match CreateCharReq::decode(body) {
                Ok(req) => {
                    let request = character::CreateRequest {
                        user_id: c.user.0,
                        name: req.name,
                        race: req.race.into(),
                        stone: req.stone.into(),
                        hair: req.hair.into(),
                        face: req.face.into(),
                        weapon: req.weapon.into(),
                        zone: req.zone.into(),
                    };
                    self.wait(
                        ctx,
                        now,
                        Call::CreateChar {
                            user: c.user,
                            request,
                        },
                        out,
                    );
                    Phase::CharPending(c, CharOp::Create)
                }
                Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
            },
            (Phase::CharSelect(c), T::PAKCS_DELETE_CHAR_REQ) => match DeleteCharReq::decode(body) {
                Ok(req) => match c.chars.get(usize::from(req.slot)).cloned() {
                    Some(slot) => {
                        let call = Call::DeleteChar {
                            user: c.user,
                            char_id: slot.char_id,
                            delete: req.is_delete != 0,
                        };
                        self.wait(ctx, now, call, out);
                        Phase::CharPending(c, CharOp::Delete { name: slot.name })
                    }
                    None => {
                        // Out of range (docs/protocol.md §9 D9): refused, counted.
                        out.push(Action::ProtocolError(ProtocolError::BadSlot));
                        out.push(Action::Send(ServerPacket::DeleteCharReply(
                            DeleteCharReply {
                                remaining_time: DELETE_REFUSED,
                                name: echoed_name(req.name),
                            },
                        )));
                        Phase::CharSelect(c)
                    }
                },
                Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
            },
            (Phase::CharSelect(c), T::PAKCS_SELECT_CHAR_REQ) => match SelectCharReq::decode(body) {
                Ok(req) => match c.chars.get(usize::from(req.slot)) {
                    Some(slot) => {
                        let call = Call::SelectChar {
                            user: c.user,
                            session: c.session,
                            char_id: slot.char_id,
                        };
                        self.wait(ctx, now, call, out);
                        Phase::CharPending(c, CharOp::Select)
                    }
                    // SWITCH_SERVER has no result code: an out-of-range slot
                    // is a protocol error (osIROSE disconnects too).
                    None => return self.fatal(ProtocolError::BadSlot, out),
                },
                Err(_) => return self.fatal(ProtocolError::MalformedBody, out),
            },
            (
                Phase::InWorld {
                    user,
                    session,
                    char_id,
                    entity,
                },
                ptype,
            ) => {
                let phase = Phase::InWorld {
                    user,
                    session,
                    char_id,
                    entity,
                };
                match ptype {
                    T::PAKCS_LOGOUT_REQ => {
                        out.push(Action::Send(ServerPacket::LogoutReply(LogoutReply {
                            wait_time: 0,
                        })));
                        out.push(Action::UnbindSession(session));
                        let leave = world::LeaveReason::Logout;
                        self.notify(
                            Call::WorldLeave {
                                session,
                                reason: leave,
                            },
                            out,
                        );
                        let reason = auth::LogoutReason::Logout;
                        self.notify(Call::Logout { session, reason }, out);
                        Phase::Transferring { session }
                    }
                    T::PAKCS_CHANGE_CHAR_REQ => {
                        out.push(Action::Send(ServerPacket::ChanCharReply(ChanCharReply)));
                        out.push(Action::UnbindSession(session));
                        let reason = world::LeaveReason::ChangeChar;
                        self.notify(Call::WorldLeave { session, reason }, out);
                        Phase::Transferring { session }
                    }
                    t if is_world_packet(t) => {
                        match DialectId::Osirose.dialect().wire_id(t) {
                            Some(type_id) => self.notify(
                                Call::WorldPacket {
                                    session,
                                    type_id,
                                    payload: Bytes::copy_from_slice(body),
                                },
                                out,
                            ),
                            None => out.push(Action::ProtocolError(ProtocolError::UnknownPacket)),
                        }
                        phase
                    }
                    _ => {
                        self.phase = phase;
                        return self.wrong_state(ctx, out);
                    }
                }
            }
            (phase, T::PAKCS_LOGOUT_REQ) => {
                // Outside the world: nothing to leave; the client may quit.
                out.push(Action::Send(ServerPacket::LogoutReply(LogoutReply {
                    wait_time: 0,
                })));
                phase
            }
            (phase, _) => {
                self.phase = phase;
                return self.wrong_state(ctx, out);
            }
        };
    }

    fn on_alive(&mut self, ctx: &Ctx<'_>, now: Instant, out: &mut Vec<Action>) {
        let Some(session) = self.phase.session() else {
            return;
        };
        if matches!(self.phase, Phase::Transferring { .. }) {
            return;
        }
        let due = self
            .last_refresh
            .is_none_or(|t| now.saturating_duration_since(t) >= ctx.refresh_interval);
        if due {
            self.last_refresh = Some(now);
            self.notify(Call::Refresh { session }, out);
        }
    }

    fn on_joined(&mut self, ok: bool, entity: u32, out: &mut Vec<Action>) -> Disposition {
        let Phase::WorldJoinPending {
            user,
            session,
            char_id,
        } = self.phase
        else {
            return Disposition::Stale;
        };
        self.pending = None;
        if ok {
            out.push(Action::Send(ServerPacket::JoinServerReply(
                JoinServerReply {
                    result: 0,
                    id: entity,
                    pay_flag: 0,
                },
            )));
            self.phase = Phase::InWorld {
                user,
                session,
                char_id,
                entity,
            };
        } else {
            out.push(join_failed());
            out.push(Action::UnbindSession(session));
            self.phase = Phase::New;
        }
        Disposition::Applied
    }

    fn on_completion(
        &mut self,
        ctx: &Ctx<'_>,
        request: RequestId,
        result: &Result<Reply, RpcError>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Disposition {
        if let Ok(Reply::Refresh(alive)) = result {
            if !alive && self.phase.session().is_some() {
                self.close(CloseReason::SessionExpired, out);
            }
            return Disposition::Applied;
        }
        let awaited = match self.pending.take() {
            Some(p) if p.0 == request => p,
            // Not what this connection waits for: a late answer to a request
            // that timed out, or one from before a phase change.
            other => {
                self.pending = other;
                return Disposition::Stale;
            }
        };
        let phase = std::mem::replace(&mut self.phase, Phase::New);
        self.phase = match (phase, result) {
            (Phase::LoginPending, Ok(Reply::Login(r))) => {
                let servers = if r.result == auth::LoginResult::Ok as i32 {
                    r.servers.iter().map(server_info).collect()
                } else {
                    Vec::new()
                };
                let code = u8::try_from(r.result).unwrap_or(RESULT_FAILED);
                out.push(Action::Send(ServerPacket::LoginReply(LoginReply {
                    result: code,
                    right: if code == 0 { clamp_u16(r.access) } else { 0 },
                    pay_type: 0,
                    servers,
                })));
                if code == 0 {
                    Phase::LoggedIn {
                        user: UserId(r.user_id),
                        session: SessionId(r.session_id),
                    }
                } else if code == LOGIN_NO_RIGHT {
                    self.close(CloseReason::LoginRefused, out);
                    return Disposition::Applied;
                } else {
                    Phase::New
                }
            }
            (Phase::LoginPending, Err(_)) => {
                out.push(Action::Send(ServerPacket::LoginReply(LoginReply {
                    result: RESULT_FAILED,
                    right: 0,
                    pay_type: 0,
                    servers: Vec::new(),
                })));
                Phase::New
            }
            (Phase::SelectPending { session, .. }, Ok(Reply::SelectServer(r)))
                if r.result == auth::SelectServerResult::Ok as i32 =>
            {
                let session = if r.session_id != 0 {
                    SessionId(r.session_id)
                } else {
                    session
                };
                out.push(Action::Send(ServerPacket::SrvSelectReply(SrvSelectReply {
                    result: 0,
                    session_id: session.0,
                    crypt_val: 0,
                    ip: ctx.public_addr.to_owned(),
                    port: ctx.public_port,
                })));
                Phase::Transferring { session }
            }
            (Phase::SelectPending { user, session }, result) => {
                let code = match result {
                    Ok(Reply::SelectServer(r)) => u8::try_from(r.result).unwrap_or(RESULT_FAILED),
                    _ => RESULT_FAILED,
                };
                out.push(Action::Send(ServerPacket::SrvSelectReply(SrvSelectReply {
                    result: code.max(RESULT_FAILED),
                    session_id: 0,
                    crypt_val: 0,
                    ip: String::new(),
                    port: 0,
                })));
                Phase::LoggedIn { user, session }
            }
            (Phase::JoinPending { session }, Ok(Reply::JoinServer(r)))
                if r.result == auth::JoinResult::Ok as i32 =>
            {
                let user = UserId(r.user_id);
                if r.stage == auth::Stage::Map as i32 {
                    let char_id = CharId(r.char_id);
                    out.push(Action::BindSession(session));
                    let call = Call::WorldJoin {
                        session,
                        user,
                        char_id,
                    };
                    // Wait for `Joined` with the same deadline as an RPC.
                    let id = self.request();
                    self.pending = Some((id, now + ctx.rpc_deadline));
                    out.push(Action::Notify(id, call));
                    Phase::WorldJoinPending {
                        user,
                        session,
                        char_id,
                    }
                } else if r.stage == auth::Stage::CharSelect as i32 {
                    out.push(Action::Send(ServerPacket::JoinServerReply(
                        JoinServerReply {
                            result: 0,
                            id: user.0,
                            pay_flag: 0,
                        },
                    )));
                    Phase::CharSelect(CharSelect {
                        user,
                        session,
                        chars: Vec::new(),
                    })
                } else {
                    // Logged in but no server selected: nothing to join.
                    out.push(join_failed());
                    Phase::New
                }
            }
            (Phase::JoinPending { .. }, result) => {
                let code = match result {
                    Ok(Reply::JoinServer(r)) => u8::try_from(r.result).unwrap_or(RESULT_FAILED),
                    _ => RESULT_FAILED,
                };
                out.push(Action::Send(ServerPacket::JoinServerReply(
                    JoinServerReply {
                        result: code.max(RESULT_FAILED),
                        id: 0,
                        pay_flag: 0,
                    },
                )));
                Phase::New
            }
            (Phase::CharPending(mut c, op), result) => {
                match (op, result) {
                    (CharOp::List, Ok(Reply::ListChars(list))) => {
                        c.chars = list
                            .characters
                            .iter()
                            .map(|ch| CharSlot {
                                char_id: CharId(ch.char_id),
                                name: ch.name.clone(),
                            })
                            .collect();
                        out.push(Action::Send(ServerPacket::CharListReply(CharListReply {
                            characters: list.characters.iter().map(char_info).collect(),
                        })));
                    }
                    (CharOp::Create, Ok(Reply::CreateChar(r))) => {
                        let code = u8::try_from(r.result).unwrap_or(RESULT_FAILED);
                        out.push(create_reply(code));
                    }
                    (CharOp::Create, Err(_)) => out.push(create_reply(RESULT_FAILED)),
                    (CharOp::Delete { name }, result) => {
                        let remaining_time = match result {
                            Ok(Reply::DeleteChar(r))
                                if r.result == character::DeleteResult::Ok as i32 =>
                            {
                                r.remaining_secs
                            }
                            _ => DELETE_REFUSED,
                        };
                        out.push(Action::Send(ServerPacket::DeleteCharReply(
                            DeleteCharReply {
                                remaining_time,
                                name,
                            },
                        )));
                    }
                    (CharOp::Select, Ok(Reply::SelectChar(r)))
                        if r.result == character::SelectResult::Ok as i32 =>
                    {
                        out.push(Action::Send(ServerPacket::SwitchServer(SwitchServer {
                            port: ctx.public_port,
                            session_id: c.session.0,
                            session_seed: 0,
                            ip: ctx.public_addr.to_owned(),
                        })));
                    }
                    (CharOp::Select, Ok(_)) => {
                        // Refused: SWITCH_SERVER has no result code.
                        self.phase = Phase::CharSelect(c);
                        self.close(CloseReason::SelectRefused, out);
                        return Disposition::Applied;
                    }
                    // CHAR_LIST_REPLY and SWITCH_SERVER carry no result code:
                    // a failed backend call can only close the connection.
                    (CharOp::List | CharOp::Select, _) => {
                        self.phase = Phase::CharSelect(c);
                        self.close(CloseReason::BackendUnavailable, out);
                        return Disposition::Applied;
                    }
                    (CharOp::Create, Ok(_)) => out.push(create_reply(RESULT_FAILED)),
                }
                Phase::CharSelect(c)
            }
            (Phase::WorldJoinPending { session, .. }, Err(_)) => {
                // The world did not answer in time: undo the join.
                out.push(join_failed());
                out.push(Action::UnbindSession(session));
                let reason = world::LeaveReason::Disconnect;
                self.notify(Call::WorldLeave { session, reason }, out);
                Phase::New
            }
            (phase, _) => {
                // An answer of the wrong kind settles nothing: keep waiting,
                // with the deadline, which then fails the request.
                self.phase = phase;
                self.pending = Some(awaited);
                return Disposition::Stale;
            }
        };
        Disposition::Applied
    }
}

fn join_failed() -> Action {
    Action::Send(ServerPacket::JoinServerReply(JoinServerReply {
        result: RESULT_FAILED,
        id: 0,
        pay_flag: 0,
    }))
}

fn create_reply(result: u8) -> Action {
    Action::Send(ServerPacket::CreateCharReply(CreateCharReply {
        result,
        platinum: 0,
    }))
}

/// A client-supplied name cut to [`ECHOED_NAME_MAX`] bytes (at a character
/// boundary), so that a reply echoing it always fits in a packet.
fn echoed_name(mut name: String) -> String {
    let mut end = name.len().min(ECHOED_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

fn clamp_u16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn digest_kind(len: usize) -> auth::DigestKind {
    match len {
        64 => auth::DigestKind::Sha256Hex,
        32 => auth::DigestKind::Md5Hex,
        _ => auth::DigestKind::Unspecified,
    }
}

fn server_info(s: &auth::ServerInfo) -> ServerInfo {
    ServerInfo {
        test: if s.test { b'@' } else { b' ' },
        name: s.name.clone(),
        id: s.id,
    }
}

fn char_info(c: &character::CharacterSummary) -> CharInfo {
    let mut items = [0u32; 8];
    for (slot, &word) in items.iter_mut().zip(&c.equipped_items) {
        *slot = word;
    }
    CharInfo {
        name: c.name.clone(),
        race: c.race.min(255) as u8,
        level: clamp_u16(c.level),
        job: clamp_u16(c.job),
        remain_secs_until_delete: c.remain_secs_until_delete,
        platinium: 0,
        face: c.face,
        hair: c.hair,
        items,
    }
}

fn channel_list(servers: &[auth::ServerInfo], server_id: u32) -> ChannelListReply {
    let channels = servers
        .iter()
        .find(|s| s.id == server_id)
        .map(|s| {
            s.channels
                .iter()
                .map(|c| ChannelInfo {
                    id: c.id.min(255) as u8,
                    low_age: c.low_age.min(255) as u8,
                    high_age: c.high_age.min(255) as u8,
                    capacity: clamp_u16(c.capacity_percent),
                    name: c.name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    ChannelListReply {
        server_id,
        channels,
    }
}

/// Client packets of the login and character phases: in the world phase
/// they are wrong-state, everything else is forwarded to the world.
fn is_world_packet(t: PacketType) -> bool {
    use crate::protocol::packet_type::Direction;
    use PacketType as T;
    t.direction() == Direction::ClientToServer
        && !matches!(
            t,
            T::PAKCS_ACCEPT_REQ
                | T::PAKCS_CHANNEL_LIST_REQ
                | T::PAKCS_LOGIN_REQ
                | T::PAKCS_LOGIN_TOKEN_REQ
                | T::PAKCS_SRV_SELECT_REQ
                | T::PAKCS_JOIN_SERVER_REQ
                | T::PAKCS_JOIN_SERVER_TOKEN_REQ
                | T::PAKCS_CHAR_LIST_REQ
                | T::PAKCS_CREATE_CHAR_REQ
                | T::PAKCS_DELETE_CHAR_REQ
                | T::PAKCS_SELECT_CHAR_REQ
                | T::STRESS
        )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
