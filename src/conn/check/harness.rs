//! The plain-data model of what the reactor feeds a session ([`Op`]), the
//! generators of well-formed client packets and backend answers behind it,
//! and the [`Harness`] that drives one session through the [`Checker`].

use std::time::{Duration, Instant};

use crate::conn::calls::{
    ChannelEntry, CharSummary, DeleteReply, JoinServerReply, LeaveReason, Liveness, LoginReply,
    Outcome, Reply, RpcError, SelectServerReply, ServerEntry, Stage,
};
use crate::conn::state::{Action, Ctx, Disposition, GameEvent, Input, Session, UtcTime};
use crate::ids::{CharId, RequestId, SessionId, UserId};
use crate::protocol::codec::{HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{DialectId, Direction, Family, PacketType};
use crate::protocol::packets::{self, Packet};
use crate::reactor::ReactorConfig;

use super::{Before, Checker};

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
    /// The session's map connection tells this (char) connection.
    Game(GameEvent),
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
    client_packet_in(Family::Osirose, pick, a, bytes)
}

/// [`client_packet`] in the layouts of `family` (irose: the 32-digit MD5
/// login and join of docs/protocol.md §10.5).
pub fn client_packet_in(family: Family, pick: u32, a: u32, bytes: &[u8]) -> (PacketType, Vec<u8>) {
    use packets::*;
    let name = text(bytes);
    let short = text(&bytes[..bytes.len().min(20)]);
    let slot = (a % 6) as u8;
    match (family, pick % 15) {
        (Family::Irose, 2) => {
            let login = irose::LoginReq {
                password_md5: DIGEST[..32].to_vec(),
                username: short,
            };
            return (LoginReq::TYPE, body_of(&login));
        }
        (Family::Irose, 3) => {
            let join = irose::JoinServerReq {
                login_token: a,
                password_md5: DIGEST[..32].to_vec(),
            };
            return (JoinServerReq::TYPE, body_of(&join));
        }
        _ => {}
    }
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
    let code = |n: u32| -> Outcome {
        match if a & 3 != 0 { 0 } else { (a >> 2) % n } {
            0 => Outcome::Ok,
            c => Outcome::Refused(c as u8),
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
        1 => Reply::Login(LoginReply {
            outcome: code(12),
            user: UserId(b),
            access: (a >> 8) & 0xFF,
            session: SessionId(nonzero),
            servers: (0..(a >> 4) % 4)
                .map(|i| ServerEntry {
                    id: i + 1,
                    name: format!("server {i}"),
                    test: i == 2,
                    channels: (0..(a >> 6) % 3)
                        .map(|c| ChannelEntry {
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
        2 => Reply::SelectServer(SelectServerReply {
            outcome: code(6),
            session: (b != 0).then_some(SessionId(b)),
        }),
        3 => Reply::JoinServer(JoinServerReply {
            outcome: code(5),
            user: UserId(b),
            stage: match (a >> 8) % 4 {
                2 => Stage::CharSelect,
                3 => Stage::Map,
                _ => Stage::LoggedIn,
            },
            char_id: CharId(u64::from(b) << 3),
        }),
        4 => Reply::Refresh(if a & 7 != 0 {
            Liveness::Alive
        } else {
            Liveness::Expired
        }),
        5 => Reply::Logout,
        6 => Reply::ListChars(
            (0..(a >> 4) % 6)
                .map(|i| CharSummary {
                    char_id: CharId(u64::from(b) + u64::from(i)),
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
        ),
        7 => Reply::CreateChar(code(6)),
        8 => Reply::DeleteChar(DeleteReply {
            outcome: code(3),
            remaining_secs: b,
        }),
        _ => Reply::SelectChar(code(3)),
    })
}

impl Op {
    /// Builds an op from raw choices: `choice` picks the kind, `a`, `b` and
    /// `bytes` fill it. Every input maps to some op.
    pub fn from_raw(choice: u8, a: u32, b: u32, bytes: &[u8]) -> Op {
        Op::from_raw_in(Family::Osirose, choice, a, b, bytes)
    }

    /// [`Op::from_raw`] for a session of `family`: its packets in the
    /// family's layouts.
    pub fn from_raw_in(family: Family, choice: u8, a: u32, b: u32, bytes: &[u8]) -> Op {
        let body = bytes[..bytes.len().min(MAX_BODY)].to_vec();
        match choice % 16 {
            // Mostly well-formed packets and answers, to get deep.
            0..=4 => {
                let (t, body) = client_packet_in(family, a, b, bytes);
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
            13 if a % 4 == 3 => Op::Game(match b % 4 {
                0 => GameEvent::Entered,
                1 => GameEvent::Left(LeaveReason::Logout),
                2 => GameEvent::Left(LeaveReason::ChangeChar),
                _ => GameEvent::Left(LeaveReason::Disconnect),
            }),
            _ => Op::Tick(Duration::from_millis(u64::from(a % 5_000))),
        }
    }
}

/// The settings used by [`Harness`]: the reactor's defaults, with a
/// longer RPC deadline and a small burst so that the rate limit is reached.
pub fn test_ctx<'a>(servers: &'a [ServerEntry], packets_per_sec: u32) -> Ctx<'a> {
    Ctx {
        rpc_deadline: Duration::from_secs(5),
        packets_per_sec,
        packet_burst: 20,
        chat_per_sec: 3,
        chat_max_bytes: 256,
        utc: UtcTime::from_unix(1_700_000_000),
        ..ReactorConfig::defaults().session_ctx(servers, UtcTime::default())
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
    servers: Vec<ServerEntry>,
    packets_per_sec: u32,
    /// Actions of the last step.
    pub actions: Vec<Action>,
}

impl Harness {
    /// A fresh session at `t0`; `packets_per_sec` 0 disables the rate limit.
    pub fn new(t0: Instant, packets_per_sec: u32) -> Harness {
        Harness::with_dialect(t0, packets_per_sec, DialectId::Osirose)
    }

    /// [`Harness::new`] for a client of `dialect`.
    pub fn with_dialect(t0: Instant, packets_per_sec: u32, dialect: DialectId) -> Harness {
        let servers = match reply(1, 0x31, 1) {
            Ok(Reply::Login(r)) => r.servers,
            _ => Vec::new(),
        };
        Harness {
            session: Session::new(([127, 0, 0, 1], 5000).into(), t0, 20).with_dialect(dialect),
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
        let dialect = self.session.dialect().dialect();
        let input = match op {
            // The reactor delivers only types its dialect has an id for;
            // any other is an unknown id.
            Op::Raw(ptype, _) | Op::Client(ptype, _) if dialect.wire_id(*ptype).is_none() => {
                Input::Unknown { id: 0 }
            }
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
            Op::Game(event) => Input::Game(*event),
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
