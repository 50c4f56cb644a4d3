//! State machine transitions with an injected clock.

use std::time::Duration;

use super::*;
use crate::conn::calls::{
    ChannelEntry, CharSummary, JoinServerReply, LoginReply, Outcome, SelectServerReply,
    ServerEntry, Stage,
};
use crate::conn::reason::ChatRefusal;
use crate::ids::{CharId, UserId};
use crate::protocol::packet_type::DialectId;
use crate::protocol::packets::{self, DigestKind, Packet};
use crate::reactor::ReactorConfig;

/// The reactor's defaults, with the values these tests vary.
fn ctx<'a>(servers: &'a [ServerEntry]) -> Ctx<'a> {
    Ctx {
        public_addr: "10.0.0.1",
        rpc_deadline: Duration::from_secs(3),
        packets_per_sec: 0,
        utc: UtcTime::from_unix(1_700_000_000),
        ..ReactorConfig::defaults().session_ctx(servers, UtcTime::default())
    }
}

fn body<P: Packet>(p: &P) -> Vec<u8> {
    let v = packets::packet_to_vec(DialectId::Osirose.dialect(), p).expect("encodes");
    v[6..].to_vec()
}

#[derive(Clone)]
struct Harness {
    s: Session,
    t0: Instant,
    servers: Vec<ServerEntry>,
}

impl Harness {
    fn new() -> Harness {
        let t0 = Instant::now();
        Harness {
            s: Session::new("127.0.0.1:5000".parse().expect("addr"), t0, 400),
            t0,
            servers: vec![ServerEntry {
                id: 1,
                name: "Athena".into(),
                test: false,
                channels: vec![ChannelEntry {
                    id: 1,
                    name: "Channel 1".into(),
                    low_age: 0,
                    high_age: 0,
                    capacity_percent: 0,
                }],
            }],
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn packet<P: Packet>(&mut self, secs: f64, p: &P) -> Vec<Action> {
        let b = body(p);
        self.raw(secs, P::TYPE, &b)
    }

    fn raw(&mut self, secs: f64, ptype: PacketType, b: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let now = self.at(secs);
        let c = ctx(&self.servers);
        self.s
            .handle(&c, Input::Packet { ptype, body: b }, now, &mut out);
        out
    }

    fn complete(
        &mut self,
        secs: f64,
        request: RequestId,
        result: Result<Reply, RpcError>,
    ) -> (Disposition, Vec<Action>) {
        let mut out = Vec::new();
        let now = self.at(secs);
        let c = ctx(&self.servers);
        let d = self.s.handle(
            &c,
            Input::Completion {
                request,
                result: &result,
            },
            now,
            &mut out,
        );
        (d, out)
    }

    fn input(&mut self, secs: f64, input: Input<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        let now = self.at(secs);
        let c = ctx(&self.servers);
        self.s.handle(&c, input, now, &mut out);
        out
    }

    fn tick(&mut self, secs: f64) -> Vec<Action> {
        self.input(secs, Input::Tick)
    }

    /// Logs in and returns the session id.
    fn logged_in(&mut self) -> SessionId {
        let out = self.packet(1.0, &login_req());
        let id = call_id(&out);
        let reply = accepted_login(self.servers.clone());
        self.complete(1.1, id, Ok(Reply::Login(reply)));
        SessionId(4242)
    }

    /// Joins in the map stage and is let into the world as entity 5.
    fn in_world(&mut self) {
        self.joined(Stage::Map);
        self.input(
            1.5,
            Input::Joined {
                ok: true,
                entity_id: 5,
            },
        );
    }

    /// Joins in the given stage.
    fn joined(&mut self, stage: Stage) -> Vec<Action> {
        let out = self.packet(
            1.0,
            &packets::JoinServerReq {
                session_id: 4242,
                digest: sha(),
            },
        );
        let id = call_id(&out);
        let reply = JoinServerReply {
            outcome: Outcome::Ok,
            user: UserId(7),
            stage,
            char_id: CharId(99),
        };
        self.complete(1.1, id, Ok(Reply::JoinServer(reply))).1
    }
}

/// The auth service's acceptance of user 7 with session 4242.
fn accepted_login(servers: Vec<ServerEntry>) -> LoginReply {
    LoginReply {
        outcome: Outcome::Ok,
        user: UserId(7),
        access: 1,
        session: SessionId(4242),
        servers,
    }
}

/// A login answer with nothing but a verdict.
fn login_verdict(outcome: Outcome) -> Reply {
    Reply::Login(LoginReply {
        outcome,
        user: UserId(0),
        access: 0,
        session: SessionId(0),
        servers: Vec::new(),
    })
}

fn sha() -> Vec<u8> {
    b"8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918".to_vec()
}

fn login_req() -> packets::LoginReq {
    packets::LoginReq {
        digest: sha(),
        username: "admin".into(),
    }
}

fn call_id(out: &[Action]) -> RequestId {
    out.iter()
        .find_map(|a| match a {
            Action::Call(id, _) | Action::Notify(id, _) => Some(*id),
            _ => None,
        })
        .expect("a call")
}

fn sent(out: &[Action]) -> Vec<PacketType> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p.packet_type()),
            _ => None,
        })
        .collect()
}

fn closed(out: &[Action]) -> Option<CloseReason> {
    out.iter().find_map(|a| match a {
        Action::Close(r) => Some(*r),
        _ => None,
    })
}

#[test]
fn accept_is_answered_locally_in_any_phase() {
    let mut h = Harness::new();
    let out = h.packet(0.0, &packets::AcceptReq);
    assert_eq!(sent(&out), vec![PacketType::PAKSS_ACCEPT_REPLY]);
    h.logged_in();
    let out = h.packet(2.0, &packets::AcceptReq);
    assert_eq!(sent(&out), vec![PacketType::PAKSS_ACCEPT_REPLY]);
}

#[test]
fn login_ok_then_channel_list_then_server_select() {
    let mut h = Harness::new();
    let out = h.packet(1.0, &login_req());
    let id = call_id(&out);
    match &out[0] {
        Action::Call(
            _,
            Call::Login {
                username,
                kind,
                digest,
                ..
            },
        ) => {
            assert_eq!(username, "admin");
            assert_eq!(*kind, DigestKind::Sha256Hex);
            assert_eq!(digest.len(), 64);
        }
        other => panic!("expected a login call, got {other:?}"),
    }
    assert!(h.s.phase().is_waiting());
    let reply = accepted_login(h.servers.clone());
    let (d, out) = h.complete(1.2, id, Ok(Reply::Login(reply)));
    assert_eq!(d, Disposition::Applied);
    let Action::Send(ServerPacket::LoginReply(r)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((r.result, r.right, r.servers.len()), (0, 1, 1));
    assert_eq!(r.servers[0].name, "Athena");
    assert_eq!(
        h.s.phase(),
        &Phase::LoggedIn {
            user: UserId(7),
            session: SessionId(4242)
        }
    );

    let out = h.packet(2.0, &packets::ChannelListReq { server_id: 1 });
    let Action::Send(ServerPacket::ChannelListReply(list)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(list.channels.len(), 1);
    assert_eq!(list.channels[0].name, "Channel 1");

    let out = h.packet(
        3.0,
        &packets::SrvSelectReq {
            server_id: 1,
            channel_id: 1,
        },
    );
    let id = call_id(&out);
    let reply = SelectServerReply {
        outcome: Outcome::Ok,
        session: Some(SessionId(4242)),
    };
    let (_, out) = h.complete(3.1, id, Ok(Reply::SelectServer(reply)));
    let Action::Send(ServerPacket::SrvSelectReply(r)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (r.result, r.session_id, r.ip.as_str(), r.port),
        (0, 4242, "10.0.0.1", 29000)
    );
    assert_eq!(
        h.s.phase(),
        &Phase::Transferring {
            session: SessionId(4242)
        }
    );
}

#[test]
fn login_failures_map_to_result_codes() {
    for (result, code, back_to_new) in [
        (Err(RpcError::Busy), 1, true),
        (Err(RpcError::Unavailable), 1, true),
        (Ok(login_verdict(Outcome::Refused(3))), 3, true),
        (Ok(login_verdict(Outcome::Refused(7))), 7, false),
    ] {
        let mut h = Harness::new();
        let id = call_id(&h.packet(1.0, &login_req()));
        let (_, out) = h.complete(1.1, id, result);
        let Action::Send(ServerPacket::LoginReply(r)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(r.result, code);
        assert_eq!(h.s.phase() == &Phase::New, back_to_new);
        if !back_to_new {
            assert_eq!(closed(&out), Some(CloseReason::LoginRefused));
        }
    }
}

#[test]
fn stale_completions_are_reported() {
    let mut h = Harness::new();
    let id = call_id(&h.packet(1.0, &login_req()));
    let (d, out) = h.complete(1.1, RequestId(id.0 + 100), Err(RpcError::Failed));
    assert_eq!(d, Disposition::Stale);
    assert!(out.is_empty());
    assert!(
        h.s.phase().is_waiting(),
        "still waiting for the real answer"
    );
}

#[test]
fn rpc_deadline_fails_the_request() {
    let mut h = Harness::new();
    let id = call_id(&h.packet(1.0, &login_req()));
    assert!(h.tick(3.9).is_empty(), "before the deadline");
    let out = h.tick(4.0);
    assert_eq!(sent(&out), vec![PacketType::PAKLC_LOGIN_REPLY]);
    assert_eq!(h.s.phase(), &Phase::New);
    // The late answer is stale.
    let (d, _) = h.complete(5.0, id, Ok(login_verdict(Outcome::Ok)));
    assert_eq!(d, Disposition::Stale);
}

#[test]
fn handshake_and_idle_timeouts() {
    let mut h = Harness::new();
    let c = ctx(&h.servers);
    assert_eq!(h.s.next_deadline(&c), Some(h.at(30.0)));
    assert!(h.tick(29.9).is_empty());
    assert_eq!(closed(&h.tick(30.0)), Some(CloseReason::HandshakeTimeout));

    let mut h = Harness::new();
    h.packet(10.0, &packets::Alive);
    let c = ctx(&h.servers);
    assert_eq!(
        h.s.next_deadline(&c),
        Some(h.at(310.0)),
        "idle from the last packet"
    );
    assert!(h.tick(30.0).is_empty(), "handshake done");
    assert!(h.tick(309.0).is_empty());
    assert_eq!(closed(&h.tick(310.0)), Some(CloseReason::IdleTimeout));
}

#[test]
fn wrong_state_packets_are_ignored_until_the_budget() {
    let mut h = Harness::new();
    for i in 0..16 {
        let out = h.raw(1.0, PacketType::PAKCS_CHAR_LIST_REQ, &[]);
        assert_eq!(
            out,
            vec![Action::ProtocolError(ProtocolError::WrongState)],
            "packet {i}"
        );
    }
    let out = h.raw(1.0, PacketType::PAKCS_CHAR_LIST_REQ, &[]);
    assert_eq!(closed(&out), Some(CloseReason::WrongStateBudget));
}

#[test]
fn unknown_ids_close_before_the_world_and_are_ignored_in_it() {
    let mut h = Harness::new();
    let out = h.input(1.0, Input::Unknown { id: 0x7FE });
    assert_eq!(
        closed(&out),
        Some(CloseReason::Protocol(ProtocolError::UnknownPacket))
    );

    let mut h = Harness::new();
    h.in_world();
    let out = h.input(2.0, Input::Unknown { id: 0x7FE });
    assert_eq!(
        out,
        vec![Action::ProtocolError(ProtocolError::UnknownPacket)]
    );
}

#[test]
fn malformed_bodies_close() {
    let mut h = Harness::new();
    let out = h.raw(1.0, PacketType::PAKCS_LOGIN_REQ, b"short");
    assert_eq!(
        closed(&out),
        Some(CloseReason::Protocol(ProtocolError::MalformedBody))
    );
}

#[test]
fn character_select_flow_with_slot_checks() {
    let mut h = Harness::new();
    let out = h.joined(Stage::CharSelect);
    assert_eq!(sent(&out), vec![PacketType::PAKSC_JOIN_SERVER_REPLY]);
    // Selecting before any list was sent: no slot 0.
    let mut h2 = h.clone();
    let out = h2.packet(
        2.0,
        &packets::SelectCharReq {
            slot: 0,
            run_mode: 0,
            ride_mode: 0,
            name: "Raven".into(),
        },
    );
    assert_eq!(
        closed(&out),
        Some(CloseReason::Protocol(ProtocolError::BadSlot))
    );

    let id = call_id(&h.raw(2.0, PacketType::PAKCS_CHAR_LIST_REQ, &[]));
    let list = vec![CharSummary {
        char_id: CharId(99),
        name: "Raven".into(),
        race: 0,
        level: 10,
        job: 0,
        remain_secs_until_delete: 0,
        face: 0,
        hair: 0,
        equipped_items: vec![0, 29, 0, 0, 0, 0, 0x0020_0001, 0],
    }];
    let (_, out) = h.complete(2.1, id, Ok(Reply::ListChars(list)));
    let Action::Send(ServerPacket::CharListReply(r)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((r.characters.len(), r.characters[0].level), (1, 10));
    assert_eq!(r.characters[0].items[6], 0x0020_0001);

    // Delete of a slot past the list: refused, connection kept.
    let out = h.packet(
        3.0,
        &packets::DeleteCharReq {
            slot: 3,
            is_delete: 1,
            name: "X".into(),
        },
    );
    let Action::Send(ServerPacket::DeleteCharReply(r)) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(r.remaining_time, 0xFFFF_FFFF);
    assert!(closed(&out).is_none());

    let out = h.packet(
        4.0,
        &packets::SelectCharReq {
            slot: 0,
            run_mode: 0,
            ride_mode: 0,
            name: "Raven".into(),
        },
    );
    let Action::Call(id, Call::SelectChar { char_id, .. }) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*char_id, CharId(99));
    let (_, out) = h.complete(4.1, *id, Ok(Reply::SelectChar(Outcome::Ok)));
    let Action::Send(ServerPacket::SwitchServer(s)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (s.port, s.session_id, s.ip.as_str()),
        (29000, 4242, "10.0.0.1")
    );
    assert!(
        matches!(h.s.phase(), Phase::CharSelect(_)),
        "the char connection stays"
    );

    // Closing the char connection ends the session.
    let mut out = Vec::new();
    h.s.on_close(&mut out);
    assert!(matches!(
        out[0],
        Action::Notify(
            _,
            Call::Logout {
                session: SessionId(4242),
                ..
            }
        )
    ));
}

#[test]
fn world_join_forwarding_and_logout() {
    let mut h = Harness::new();
    let out = h.joined(Stage::Map);
    assert_eq!(out[0], Action::BindSession(SessionId(4242)));
    assert!(matches!(
        out[1],
        Action::Notify(
            _,
            Call::WorldJoin {
                char_id: CharId(99),
                ..
            }
        )
    ));
    assert!(h.s.phase().is_waiting());
    let out = h.input(
        1.5,
        Input::Joined {
            ok: true,
            entity_id: 5,
        },
    );
    let Action::Send(ServerPacket::JoinServerReply(r)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((r.result, r.id), (0, 5));

    let out = h.packet(
        2.0,
        &packets::NormalChat {
            message: "hi".into(),
        },
    );
    let Action::Notify(
        _,
        Call::WorldPacket {
            type_id,
            payload,
            session,
        },
    ) = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (*type_id, &payload[..], *session),
        (0x547, &b"hi\0"[..], SessionId(4242))
    );

    // Login-phase packets in the world are wrong-state.
    let out = h.packet(2.5, &login_req());
    assert_eq!(out, vec![Action::ProtocolError(ProtocolError::WrongState)]);

    let out = h.raw(3.0, PacketType::PAKCS_LOGOUT_REQ, &[]);
    assert_eq!(sent(&out), vec![PacketType::PAKWC_LOGOUT_REPLY]);
    assert!(out.contains(&Action::UnbindSession(SessionId(4242))));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Notify(_, Call::WorldLeave { .. }))));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Notify(_, Call::Logout { .. }))));
    // An osIROSE client closes its map connection itself.
    assert_eq!(closed(&out), None);
    assert!(matches!(h.s.phase(), Phase::Transferring { .. }));
}

/// Whether a world-phase packet was forwarded, or why it was dropped.
fn forwarded(out: &[Action]) -> Result<(), ChatRefusal> {
    match out {
        [Action::Notify(_, Call::WorldPacket { .. })] => Ok(()),
        [Action::ChatRefused(r)] => Err(*r),
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_is_forwarded_within_its_budget_only() {
    let mut h = Harness::new();
    h.in_world();
    let say = |h: &mut Harness, secs: f64, text: &[u8]| {
        let mut body = text.to_vec();
        body.push(0);
        forwarded(&h.raw(secs, PacketType::PAKCS_NORMAL_CHAT, &body))
    };
    // A burst of twice the rate (3 a second), then one per third of a second.
    for _ in 0..6 {
        assert_eq!(say(&mut h, 2.0, b"hi"), Ok(()));
    }
    assert_eq!(say(&mut h, 2.0, b"hi"), Err(ChatRefusal::Rate));
    assert_eq!(say(&mut h, 2.34, "héllo".as_bytes()), Ok(()));
    assert_eq!(say(&mut h, 2.34, b"hi"), Err(ChatRefusal::Rate));
    // Size and encoding, each after a second's refill.
    assert_eq!(say(&mut h, 4.0, &[b'x'; 256]), Ok(()));
    assert_eq!(say(&mut h, 4.0, &[b'x'; 257]), Err(ChatRefusal::Size));
    assert_eq!(
        say(&mut h, 4.0, b"bad \xff\xfe"),
        Err(ChatRefusal::Encoding)
    );
    // A whisper's text is the second string; the name is not counted.
    let whisper = |h: &mut Harness, secs: f64, body: &[u8]| {
        forwarded(&h.raw(secs, PacketType::PAKCS_WHISPER_CHAT, body))
    };
    assert_eq!(whisper(&mut h, 6.0, b"Bob\0hello\0"), Ok(()));
    assert_eq!(
        whisper(&mut h, 6.0, b"Bob\0\xc3\0"),
        Err(ChatRefusal::Encoding)
    );
    // Other world packets are not chat: no budget.
    for _ in 0..20 {
        let out = h.packet(
            7.0,
            &packets::ChangeMapReq {
                weight_rate: 0,
                z: 0,
            },
        );
        assert_eq!(forwarded(&out), Ok(()));
    }
    assert_eq!(h.s.phase().name(), "in-world");
}

#[test]
fn world_join_refused_or_late() {
    let mut h = Harness::new();
    h.joined(Stage::Map);
    let out = h.input(
        1.5,
        Input::Joined {
            ok: false,
            entity_id: 0,
        },
    );
    let Action::Send(ServerPacket::JoinServerReply(r)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(r.result, 1);
    assert_eq!(h.s.phase(), &Phase::New);

    let mut h = Harness::new();
    h.joined(Stage::Map);
    let out = h.tick(4.2);
    assert_eq!(sent(&out), vec![PacketType::PAKSC_JOIN_SERVER_REPLY]);
    assert!(out.contains(&Action::UnbindSession(SessionId(4242))));
}

#[test]
fn world_link_loss_tells_and_closes_players() {
    let mut h = Harness::new();
    h.in_world();
    let out = h.input(2.0, Input::WorldDown);
    assert_eq!(sent(&out), vec![PacketType::PAKWC_WHISPER_CHAT]);
    assert_eq!(closed(&out), Some(CloseReason::WorldLinkLost));
}

#[test]
fn alive_refreshes_at_most_once_a_minute() {
    let mut h = Harness::new();
    assert!(h.packet(0.5, &packets::Alive).is_empty(), "no session yet");
    h.logged_in();
    let refreshes = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::Notify(_, Call::Refresh { .. })))
            .count()
    };
    assert_eq!(refreshes(&h.packet(2.0, &packets::Alive)), 1);
    assert_eq!(refreshes(&h.packet(30.0, &packets::Alive)), 0);
    assert_eq!(refreshes(&h.packet(62.0, &packets::Alive)), 1);
    // A refused refresh means the session is gone.
    let (_, out) = h.complete(62.1, RequestId(999), Ok(Reply::Refresh(Liveness::Expired)));
    assert_eq!(closed(&out), Some(CloseReason::SessionExpired));
}

/// Feeds `input` six times at one instant with a burst of five: the burst
/// is allowed, the sixth closes the connection.
fn burst_then_rate_limited(h: &mut Harness, input: Input<'_>, at: f64) {
    let servers = h.servers.clone();
    let mut c = ctx(&servers);
    c.packets_per_sec = 10;
    c.packet_burst = 5;
    let mut out = Vec::new();
    let now = h.at(at);
    for _ in 0..5 {
        h.s.handle(&c, input, now, &mut out);
    }
    assert!(closed(&out).is_none(), "the burst is allowed: {out:?}");
    h.s.handle(&c, input, now, &mut out);
    assert_eq!(closed(&out), Some(CloseReason::RateLimited));
}

#[test]
fn packet_rate_limit() {
    let mut h = Harness::new();
    let alive = Input::Packet {
        ptype: PacketType::PAKCS_ALIVE,
        body: &[],
    };
    burst_then_rate_limited(&mut h, alive, 1.0);
}

#[test]
fn unknown_ids_take_from_the_packet_rate_limit_too() {
    // In the world unknown ids are ignored, not closed: without the bucket
    // a client could send them at line rate.
    let mut h = Harness::new();
    h.in_world();
    burst_then_rate_limited(&mut h, Input::Unknown { id: 0x7FE }, 10.0);
}

#[test]
fn utc_time_conversion() {
    assert_eq!(
        UtcTime::from_unix(1_700_000_000),
        UtcTime {
            year: 2023,
            month: 11,
            day: 14,
            hour: 22,
            minute: 13,
            unix: 1_700_000_000,
        }
    );
    assert_eq!(
        UtcTime::from_unix(951_782_400),
        UtcTime {
            year: 2000,
            month: 2,
            day: 29,
            hour: 0,
            minute: 0,
            unix: 951_782_400,
        }
    );
}

/// Regression: an answer of the wrong kind to the awaited request (say a
/// Logout reply to a login) cleared the pending request but left the phase
/// waiting, with no RPC deadline left to end the wait: the connection hung
/// in LoginPending for as long as the client sent ALIVE.
#[test]
fn completion_of_the_wrong_kind_keeps_the_deadline() {
    let mut h = Harness::new();
    let out = h.packet(1.0, &login_req());
    let id = call_id(&out);
    let (d, out) = h.complete(1.1, id, Ok(Reply::Logout));
    assert_eq!(d, Disposition::Stale);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.s.phase(), &Phase::LoginPending);
    assert_eq!(h.s.pending_request().map(|p| p.0), Some(id));
    // The deadline still ends the wait with the failure result.
    let out = h.tick(4.5);
    assert_eq!(sent(&out), vec![PacketType::PAKLC_LOGIN_REPLY]);
    assert_eq!(h.s.phase(), &Phase::New);
}

/// Regression: DELETE_CHAR_REQ for a slot outside the list is refused with
/// a reply that echoes the requested name. A frame-sized name (2038 bytes,
/// or ~700 bytes of non-UTF-8 that grow threefold when decoded) made a reply
/// larger than 2047 bytes: the reactor could not encode it, logged an
/// error for every such packet and the client got no answer.
#[test]
fn delete_reply_for_a_frame_sized_name_still_encodes() {
    for name in [vec![b'n'; 2038], vec![0xFF; 700]] {
        let mut h = Harness::new();
        h.joined(Stage::CharSelect);
        // slot 3 (none listed), delete, name, terminator.
        let mut b = vec![3, 1];
        b.extend_from_slice(&name);
        b.push(0);
        let out = h.raw(2.0, PacketType::PAKCS_DELETE_CHAR_REQ, &b);
        assert_eq!(sent(&out), vec![PacketType::PAKCC_DELETE_CHAR_REPLY]);
        for a in &out {
            if let Action::Send(p) = a {
                crate::conn::check::check_send(p).expect("the refusal encodes");
            }
        }
    }
}

/// Regression: a close the state machine decided itself (idle timeout,
/// kick, refused refresh, wrong-state budget, …) set the phase to Closing
/// before the reaper called `on_close`, which then saw no world phase: the
/// reactor's session → connection route was never removed (it grew with
/// every such close) and the world was never told the player left.
#[test]
fn closing_in_the_world_unbinds_and_leaves() {
    let mut h = Harness::new();
    h.in_world();
    let out = h.tick(302.0);
    assert_eq!(closed(&out), Some(CloseReason::IdleTimeout));
    assert!(
        out.contains(&Action::UnbindSession(SessionId(4242))),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Notify(_, Call::WorldLeave { .. }))));
    // The reaper's on_close then has nothing more to say.
    let mut out = Vec::new();
    h.s.on_close(&mut out);
    assert!(out.is_empty(), "{out:?}");

    // The same for a close in character select: the session is ended.
    let mut h = Harness::new();
    h.joined(Stage::CharSelect);
    let out = h.tick(302.0);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Notify(_, Call::Logout { .. }))));
}

/// Regression: a malformed CREATE_CHAR / DELETE_CHAR / SELECT_CHAR body or
/// an out-of-range select slot in character select closed the connection
/// from a placeholder `New` phase, so the auth service never heard the
/// Logout and the session stayed valid until its TTL.
#[test]
fn fatal_packets_in_character_select_end_the_session() {
    let select_slot_9 = body(&packets::SelectCharReq {
        slot: 9,
        run_mode: 0,
        ride_mode: 0,
        name: "Raven".into(),
    });
    for (ptype, b, error) in [
        (
            PacketType::PAKCS_CREATE_CHAR_REQ,
            vec![],
            ProtocolError::MalformedBody,
        ),
        (
            PacketType::PAKCS_DELETE_CHAR_REQ,
            vec![],
            ProtocolError::MalformedBody,
        ),
        (
            PacketType::PAKCS_SELECT_CHAR_REQ,
            vec![],
            ProtocolError::MalformedBody,
        ),
        (
            PacketType::PAKCS_SELECT_CHAR_REQ,
            select_slot_9,
            ProtocolError::BadSlot,
        ),
    ] {
        let mut h = Harness::new();
        h.joined(Stage::CharSelect);
        let out = h.raw(2.0, ptype, &b);
        assert_eq!(closed(&out), Some(CloseReason::Protocol(error)), "{ptype}");
        let logouts: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, Action::Notify(_, Call::Logout { .. })))
            .collect();
        assert_eq!(logouts.len(), 1, "{ptype}: {out:?}");
        assert!(matches!(
            logouts[0],
            Action::Notify(
                _,
                Call::Logout {
                    session: SessionId(4242),
                    ..
                }
            )
        ));
        // The reaper's on_close then has nothing more to say.
        let mut out = Vec::new();
        h.s.on_close(&mut out);
        assert!(out.is_empty(), "{ptype}: {out:?}");
    }
}

mod irose;
