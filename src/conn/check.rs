//! Invariants of the connection state machine, checked after every step by
//! the `session` fuzz target, the property tests and the seeded simulation
//! (style rule 12). Not part of the gateway's API: hidden from the docs and
//! used only by tests.
//!
//! [`Checker`] looks at one [`Session`] from the outside: a snapshot before
//! each [`Session::handle`] call, the actions it pushed and the session
//! after it. [`Op`] is a plain-data model of everything the reactor can feed
//! a session, built from a few numbers and bytes so that `arbitrary`
//! (fuzzing), proptest and a seeded PRNG (simulation) can all drive the same
//! [`Harness`].

use std::time::{Duration, Instant};

use crate::ids::RequestId;
use crate::pb::{auth, character};
use crate::protocol::codec::{Codec, CodecKind, HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{DialectId, Direction, PacketType};
use crate::protocol::packets::{self, Packet, ServerPacket};
use crate::rpc::types::{Reply, RpcError};

use super::state::{Action, Ctx, Disposition, Input, Phase, Session, UtcTime};

/// What the checker remembers of a session just before a step.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    pending: Option<(RequestId, Instant)>,
    deadline: Option<Instant>,
    closed: bool,
}

impl Before {
    /// Snapshot of `session` before it handles an input.
    pub fn of(session: &Session, ctx: &Ctx<'_>) -> Before {
        Before {
            pending: session.pending_request(),
            deadline: session.next_deadline(ctx),
            closed: matches!(session.phase(), Phase::Closing(_)),
        }
    }
}

/// Checks every step of one session. Errors say which invariant broke.
#[derive(Debug, Default, Clone)]
pub struct Checker {
    /// The session has reached `Closing`: nothing may come out of it but
    /// what `on_close` says.
    closed: bool,
}

impl Checker {
    /// A checker for a fresh session.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Checks the step `session.handle(ctx, input, now, ..)` that pushed
    /// `actions` and returned `disposition`; `before` was taken just before.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        before: &Before,
        session: &Session,
        ctx: &Ctx<'_>,
        input: &Input<'_>,
        now: Instant,
        actions: &[Action],
        disposition: Disposition,
    ) -> Result<(), String> {
        let phase = session.phase();
        let closing = matches!(phase, Phase::Closing(_));
        if before.closed || self.closed {
            if !actions.is_empty() {
                return Err(format!("closed session acted: {actions:?}"));
            }
            if !closing {
                return Err(format!("closed session reopened as {}", phase.name()));
            }
        }
        if disposition == Disposition::Stale
            && !matches!(input, Input::Completion { .. } | Input::Joined { .. })
        {
            return Err(format!("{input:?} reported stale"));
        }
        // Closing is terminal, within the step too.
        let mut closed_here = false;
        let mut calls = Vec::new();
        for action in actions {
            match action {
                Action::Close(_) => {
                    if closed_here {
                        return Err(format!("closed twice: {actions:?}"));
                    }
                    closed_here = true;
                }
                Action::Send(_) | Action::Call(..) | Action::Echo | Action::BindSession(_)
                    if closed_here =>
                {
                    return Err(format!("{action:?} after Close in {actions:?}"));
                }
                _ => {}
            }
            match action {
                Action::Send(p) => check_send(p)?,
                Action::Call(id, _) => calls.push(*id),
                Action::Echo if !matches!(input, Input::Packet { ptype, .. } if *ptype == PacketType::STRESS) =>
                {
                    return Err(format!("Echo for {input:?}"));
                }
                _ => {}
            }
        }
        if closed_here != (closing && !before.closed) {
            return Err(format!(
                "Close action ({closed_here}) disagrees with phase {}",
                phase.name()
            ));
        }
        self.closed |= closing;
        // At most one backend call pending at a time.
        let pending = session.pending_request();
        if calls.len() > 1 {
            return Err(format!("{} calls in one step: {actions:?}", calls.len()));
        }
        if let Some(&id) = calls.first() {
            if let Some((old, _)) = before.pending {
                let resolved = match input {
                    Input::Completion { request, .. } => *request == old,
                    Input::Tick => true,
                    _ => false,
                };
                if !resolved {
                    return Err(format!("call {id:?} while {old:?} is pending"));
                }
            }
            if !closing && pending.map(|p| p.0) != Some(id) {
                return Err(format!("call {id:?} made but {pending:?} pending"));
            }
        }
        if closing {
            if pending.is_some() {
                return Err(format!("closed with {pending:?} pending"));
            }
            if session.next_deadline(ctx).is_some() {
                return Err("closed session has a deadline".into());
            }
            return Ok(());
        }
        // Every wait has a deadline: no session waits forever.
        if phase.is_waiting() != pending.is_some() {
            return Err(format!(
                "phase {} waiting={} but pending={pending:?}",
                phase.name(),
                phase.is_waiting()
            ));
        }
        if let Some((_, at)) = pending {
            if at > now + ctx.rpc_deadline {
                return Err(format!("pending deadline beyond {:?}", ctx.rpc_deadline));
            }
        }
        // The next deadline is in the future (a Tick at `now` consumed what
        // was due; otherwise only an already overdue deadline may remain).
        let Some(next) = session.next_deadline(ctx) else {
            return Err(format!("open session in {} has no deadline", phase.name()));
        };
        let overdue_before = before.deadline.is_some_and(|b| next >= b);
        if next <= now && (matches!(input, Input::Tick) || !overdue_before) {
            return Err(format!(
                "next deadline {:?} not after now in {} (after {input:?})",
                now.saturating_duration_since(next),
                phase.name()
            ));
        }
        Ok(())
    }

    /// Checks what `Session::on_close` pushed: only farewells to the backends.
    pub fn closed(&mut self, actions: &[Action]) -> Result<(), String> {
        self.closed = true;
        for action in actions {
            if !matches!(action, Action::Notify(..) | Action::UnbindSession(_)) {
                return Err(format!("on_close pushed {action:?}"));
            }
        }
        Ok(())
    }
}

/// A reply must encode in every dialect, fit 2047 bytes and seal in both
/// codecs, or the reactor could not send it.
pub fn check_send(p: &ServerPacket) -> Result<(), String> {
    let mut buf = [0u8; MAX_PACKET_SIZE];
    for dialect in [DialectId::Osirose, DialectId::Osirose2021] {
        let n = p
            .write(dialect.dialect(), &mut buf)
            .map_err(|e| format!("{} does not encode: {e}", p.packet_type()))?;
        if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&n) {
            return Err(format!("{} encodes to {n} bytes", p.packet_type()));
        }
        for kind in [CodecKind::Rose, CodecKind::Plain] {
            let mut frame = buf[..n].to_vec();
            Codec::new(kind)
                .seal(Direction::ServerToClient, &mut frame)
                .map_err(|e| format!("{} does not seal: {e}", p.packet_type()))?;
        }
    }
    Ok(())
}

/// Every packet type a client can deliver (the reactor looks ids up with
/// `client_packet`).
pub fn client_types() -> Vec<PacketType> {
    PacketType::ALL
        .iter()
        .copied()
        .filter(|t| t.direction() == Direction::ClientToServer)
        .collect()
}

/// One thing the reactor can feed a session.
#[derive(Debug, Clone)]
pub enum Op {
    /// A packet of this type with these body bytes (often malformed).
    Raw(PacketType, Vec<u8>),
    /// A well-formed client packet (body bytes).
    Client(PacketType, Vec<u8>),
    /// A frame with an id the dialect does not know.
    Unknown(u16),
    /// The answer to whatever the session waits for (or to `RequestId(n)`).
    Answer(u32, Result<Reply, RpcError>),
    /// A completion for an arbitrary request id.
    Complete(u32, Result<Reply, RpcError>),
    /// The world's answer to a join.
    Joined(bool, u32),
    /// The world kicks the player.
    Kicked,
    /// The world link drops.
    WorldDown,
    /// Time passes, then the timer fires.
    Tick(Duration),
}

/// Largest body a frame can carry.
pub const MAX_BODY: usize = MAX_PACKET_SIZE - HEADER_LEN;

/// A 64-digit hex digest (docs/protocol.md §9 D4).
const DIGEST: &[u8; 64] = b"8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918";

/// Client text from raw bytes: no 0 byte, at most as long as the longest
/// string field a frame can carry (a DELETE_CHAR_REQ name: 2041 − 3).
fn text(bytes: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(bytes).replace('\0', "");
    let mut end = s.len().min(MAX_BODY - 3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn body_of<P: Packet>(p: &P) -> Vec<u8> {
    match packets::packet_to_vec(DialectId::Osirose.dialect(), p) {
        Ok(v) => v[HEADER_LEN..].to_vec(),
        // Too large to encode: the body a client would send, cut to a frame.
        Err(_) => {
            let mut buf = vec![0u8; 4 * MAX_PACKET_SIZE];
            let mut w = packets::Writer::new(&mut buf);
            p.encode(&mut w);
            let n = w.len().min(MAX_BODY);
            buf.truncate(n);
            buf
        }
    }
}

/// A well-formed client packet chosen by `pick`, filled from `a` and `bytes`.
pub fn client_packet(pick: u32, a: u32, bytes: &[u8]) -> (PacketType, Vec<u8>) {
    use packets::*;
    let name = text(bytes);
    let short = text(&bytes[..bytes.len().min(20)]);
    let slot = (a % 6) as u8;
    match pick % 15 {
        0 => (AcceptReq::TYPE, Vec::new()),
        1 => (Alive::TYPE, Vec::new()),
        2 => (
            LoginReq::TYPE,
            body_of(&LoginReq {
                digest: DIGEST[..if a & 1 == 0 { 64 } else { 32 }].to_vec(),
                username: short,
            }),
        ),
        3 => (
            JoinServerReq::TYPE,
            body_of(&JoinServerReq {
                session_id: a,
                digest: DIGEST.to_vec(),
            }),
        ),
        4 => (
            ChannelListReq::TYPE,
            body_of(&ChannelListReq { server_id: a % 3 }),
        ),
        5 => (
            SrvSelectReq::TYPE,
            body_of(&SrvSelectReq {
                server_id: a % 3,
                channel_id: (a >> 8) as u8 % 3,
            }),
        ),
        6 => (CharListReq::TYPE, Vec::new()),
        7 => (
            CreateCharReq::TYPE,
            body_of(&CreateCharReq {
                race: a as u8 & 1,
                stone: 1,
                hair: 2,
                face: 3,
                weapon: 0,
                zone: 1,
                name: short,
            }),
        ),
        8 => (
            DeleteCharReq::TYPE,
            body_of(&DeleteCharReq {
                slot,
                is_delete: (a >> 8) as u8 & 1,
                name,
            }),
        ),
        9 => (
            SelectCharReq::TYPE,
            body_of(&SelectCharReq {
                slot,
                run_mode: 0,
                ride_mode: 0,
                name: short,
            }),
        ),
        10 => (NormalChat::TYPE, body_of(&NormalChat { message: name })),
        11 => (LogoutReq::TYPE, Vec::new()),
        12 => (ChangeCharReq::TYPE, Vec::new()),
        13 => (
            ScreenShotTimeReq::TYPE,
            body_of(&ScreenShotTimeReq { count: a as u16 }),
        ),
        _ => (
            MouseCmd::TYPE,
            body_of(&MouseCmd {
                target_id: a as u16,
                ..Default::default()
            }),
        ),
    }
}

/// A backend answer of kind `kind`, mostly successful, filled from `a`, `b`.
/// Sizes stay within what a real backend sends (a handful of servers and
/// characters with short names): backends are trusted, clients are not.
pub fn reply(kind: u32, a: u32, b: u32) -> Result<Reply, RpcError> {
    // Result codes: OK three times in four.
    let code = |n: u32| -> i32 {
        if a & 3 != 0 {
            0
        } else {
            ((a >> 2) % n) as i32
        }
    };
    let nonzero = b | 1;
    Ok(match kind % 10 {
        0 => {
            return Err(match a % 4 {
                0 => RpcError::Unavailable,
                1 => RpcError::DeadlineExceeded,
                2 => RpcError::Busy,
                _ => RpcError::Failed,
            })
        }
        1 => Reply::Login(auth::LoginReply {
            result: code(12),
            user_id: b,
            access: (a >> 8) & 0xFF,
            session_id: nonzero,
            servers: (0..(a >> 4) % 4)
                .map(|i| auth::ServerInfo {
                    id: i + 1,
                    name: format!("server {i}"),
                    test: i == 2,
                    channels: (0..(a >> 6) % 3)
                        .map(|c| auth::ChannelInfo {
                            id: c + 1,
                            name: format!("channel {c}"),
                            low_age: 0,
                            high_age: 99,
                            capacity_percent: a % 101,
                        })
                        .collect(),
                })
                .collect(),
        }),
        2 => Reply::SelectServer(auth::SelectServerReply {
            result: code(6),
            session_id: b,
        }),
        3 => Reply::JoinServer(auth::JoinServerReply {
            result: code(5),
            user_id: b,
            stage: ((a >> 8) % 4) as i32,
            char_id: u64::from(b) << 3,
            access: 1,
        }),
        4 => Reply::Refresh(a & 7 != 0),
        5 => Reply::Logout,
        6 => Reply::ListChars(character::ListReply {
            characters: (0..(a >> 4) % 6)
                .map(|i| character::CharacterSummary {
                    char_id: u64::from(b) + u64::from(i),
                    name: format!("char{i}"),
                    race: i % 2,
                    level: a >> 16,
                    job: i,
                    remain_secs_until_delete: 0,
                    face: 1,
                    hair: 2,
                    equipped_items: vec![a; (i % 9) as usize],
                })
                .collect(),
        }),
        7 => Reply::CreateChar(character::CreateReply {
            result: code(6),
            char_id: u64::from(b),
        }),
        8 => Reply::DeleteChar(character::DeleteReply {
            result: code(3),
            remaining_secs: b,
            name: format!("char{}", a % 6),
        }),
        _ => Reply::SelectChar(character::SelectReply { result: code(3) }),
    })
}

impl Op {
    /// Builds an op from raw choices: `choice` picks the kind, `a`, `b` and
    /// `bytes` fill it. Every input maps to some op.
    pub fn from_raw(choice: u8, a: u32, b: u32, bytes: &[u8]) -> Op {
        let body = bytes[..bytes.len().min(MAX_BODY)].to_vec();
        match choice % 16 {
            // Mostly well-formed packets and answers, to get deep.
            0..=4 => {
                let (t, body) = client_packet(a, b, bytes);
                Op::Client(t, body)
            }
            5..=7 => Op::Answer(a, reply(b, a.rotate_left(7), b.rotate_left(13))),
            8 => {
                let types = client_types();
                Op::Raw(types[a as usize % types.len()], body)
            }
            9 => Op::Unknown(a as u16),
            10 => Op::Complete(a % 8, reply(b, a, b)),
            11 => Op::Joined(a & 3 != 0, b),
            12 if a.is_multiple_of(4) => Op::Kicked,
            12 if a % 4 == 1 => Op::WorldDown,
            12 => Op::Tick(Duration::from_millis(u64::from(b % 400_000))),
            _ => Op::Tick(Duration::from_millis(u64::from(a % 5_000))),
        }
    }
}

/// The settings used by [`Harness`] (the reactor's defaults).
pub fn test_ctx<'a>(servers: &'a [auth::ServerInfo], packets_per_sec: u32) -> Ctx<'a> {
    Ctx {
        public_addr: "127.0.0.1",
        public_port: 29000,
        servers,
        wrong_state_budget: 16,
        handshake_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(300),
        rpc_deadline: Duration::from_secs(5),
        refresh_interval: Duration::from_secs(60),
        packets_per_sec,
        packet_burst: 20,
        utc: UtcTime::from_unix(1_700_000_000),
    }
}

/// One session driven by [`Op`]s with every step checked.
#[derive(Debug)]
pub struct Harness {
    /// The session under test.
    pub session: Session,
    /// Its checker.
    pub checker: Checker,
    /// The virtual clock.
    pub now: Instant,
    servers: Vec<auth::ServerInfo>,
    packets_per_sec: u32,
    /// Actions of the last step.
    pub actions: Vec<Action>,
}

impl Harness {
    /// A fresh session at `t0`; `packets_per_sec` 0 disables the rate limit.
    pub fn new(t0: Instant, packets_per_sec: u32) -> Harness {
        let servers = match reply(1, 0x31, 1) {
            Ok(Reply::Login(r)) => r.servers,
            _ => Vec::new(),
        };
        Harness {
            session: Session::new(([127, 0, 0, 1], 5000).into(), t0, 20),
            checker: Checker::new(),
            now: t0,
            servers,
            packets_per_sec,
            actions: Vec::new(),
        }
    }

    /// Feeds one op and checks the step.
    pub fn apply(&mut self, op: &Op) -> Result<Disposition, String> {
        let ctx = test_ctx(&self.servers, self.packets_per_sec);
        let before = Before::of(&self.session, &ctx);
        let pending = self.session.pending_request().map(|p| p.0 .0);
        let input = match op {
            Op::Raw(ptype, body) | Op::Client(ptype, body) => Input::Packet {
                ptype: *ptype,
                body: &body[..body.len().min(MAX_BODY)],
            },
            Op::Unknown(id) => Input::Unknown { id: *id },
            Op::Answer(n, result) => Input::Completion {
                request: RequestId(pending.unwrap_or(*n)),
                result,
            },
            Op::Complete(n, result) => Input::Completion {
                request: RequestId(*n),
                result,
            },
            Op::Joined(ok, entity_id) => Input::Joined {
                ok: *ok,
                entity_id: *entity_id,
            },
            Op::Kicked => Input::Kicked,
            Op::WorldDown => Input::WorldDown,
            Op::Tick(d) => {
                self.now += *d;
                Input::Tick
            }
        };
        self.actions.clear();
        let d = self
            .session
            .handle(&ctx, input, self.now, &mut self.actions);
        self.checker.step(
            &before,
            &self.session,
            &ctx,
            &input,
            self.now,
            &self.actions,
            d,
        )?;
        Ok(d)
    }

    /// Closes the connection as the reaper does and checks the farewell.
    pub fn close(&mut self) -> Result<(), String> {
        self.actions.clear();
        self.session.on_close(&mut self.actions);
        self.checker.closed(&self.actions)
    }
}
