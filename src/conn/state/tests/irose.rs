//! The irose behaviour of the state machine (docs/protocol.md §10.5 and
//! docs/protocol.md §10.6): rose-offline's values in the replies, the announced seeds, the
//! char connection told about the game by the map connection, and nothing
//! of it for osIROSE sessions.

use super::*;
use crate::conn::calls::{LeaveReason, SelectServerReply};
use crate::conn::state::GameEvent;
use crate::conn::wire::Announced;
use crate::protocol::packets::irose;

const MD5: &[u8; 32] = b"21232f297a57a5a743894a0e4a801fc3";

fn irose_harness() -> Harness {
    let mut h = Harness::new();
    h.s.set_dialect(DialectId::Irose);
    h
}

fn replies(out: &[Action]) -> Vec<&ServerPacket> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn told(out: &[Action]) -> Vec<(SessionId, GameEvent)> {
    out.iter()
        .filter_map(|a| match a {
            Action::TellCharConn(s, e) => Some((*s, *e)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_login_connection_gets_rose_offlines_values_and_the_world_seed() {
    let mut h = irose_harness();
    let out = h.packet(0.5, &packets::AcceptReq);
    let [ServerPacket::AcceptReply(accept)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!((accept.result, accept.rand_value), (2, 123));
    let login = irose::LoginReq {
        password_md5: MD5.to_vec(),
        username: "admin".into(),
    };
    let out = h.raw(1.0, PacketType::PAKCS_LOGIN_REQ, &body(&login));
    let [Action::Call(id, Call::Login { kind, .. })] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(*kind, DigestKind::Md5Hex);
    let (_, out) = h.complete(
        1.1,
        *id,
        Ok(Reply::Login(accepted_login(h.servers.clone()))),
    );
    let [ServerPacket::LoginReply(reply)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!((reply.result, reply.pay_type), (0, 0xFF));
    let out = h.packet(
        2.0,
        &packets::SrvSelectReq {
            server_id: 1,
            channel_id: 1,
        },
    );
    let select = SelectServerReply {
        outcome: Outcome::Ok,
        session: None,
    };
    let (_, out) = h.complete(2.1, call_id(&out), Ok(Reply::SelectServer(select)));
    let [ServerPacket::SrvSelectReply(reply)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!(reply.crypt_val, Announced::DEFAULT.world.get());
}

#[test]
fn the_char_connection_binds_and_announces_the_game_seed() {
    let mut h = irose_harness();
    let out = h.joined(Stage::CharSelect);
    let [ServerPacket::JoinServerReply(join)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!((join.id, join.pay_flag), (123, 0xFF));
    assert!(out.contains(&Action::BindCharConn(SessionId(4242))));
    let out = h.packet(2.0, &packets::CharListReq);
    let raven = CharSummary {
        char_id: CharId(99),
        name: "Raven".into(),
        race: 0,
        level: 1,
        job: 0,
        remain_secs_until_delete: 0,
        face: 1,
        hair: 1,
        equipped_items: Vec::new(),
    };
    h.complete(2.1, call_id(&out), Ok(Reply::ListChars(vec![raven])));
    let select = packets::SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: "Raven".into(),
    };
    let out = h.packet(2.2, &select);
    let (_, out) = h.complete(2.3, call_id(&out), Ok(Reply::SelectChar(Outcome::Ok)));
    let [ServerPacket::SwitchServer(switch)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!(switch.session_seed, Announced::DEFAULT.game.get());
    // Clan commands on the char connection are taken and dropped; unknown
    // ids are counted and ignored.
    let out = h.raw(3.0, PacketType::PAKCS_CLAN_COMMAND, &[8]);
    assert!(out.is_empty(), "{out:?}");
    let out = h.input(3.1, Input::Unknown { id: 0x7E5 });
    assert_eq!(closed(&out), None);
    // Closing it unbinds it.
    let mut out = Vec::new();
    h.s.on_close(&mut out);
    assert!(out.contains(&Action::UnbindCharConn(SessionId(4242))));
}

#[test]
fn the_char_connection_waits_out_the_game_and_takes_the_return() {
    let mut h = irose_harness();
    h.joined(Stage::CharSelect);
    assert!(h.input(2.0, Input::Game(GameEvent::Entered)).is_empty());
    // Silent past the idle timeout while the player plays: kept open.
    let out = h.tick(1000.0);
    assert_eq!(closed(&out), None, "{out:?}");
    let next = h.s.next_deadline(&ctx(&h.servers)).expect("a deadline");
    assert!(next > h.at(1000.0));
    // Back to character select: the reply comes here.
    let out = h.input(
        1001.0,
        Input::Game(GameEvent::Left(LeaveReason::ChangeChar)),
    );
    assert_eq!(sent(&out), [PacketType::PAKCC_CHAN_CHAR_REPLY]);
    // The game is over: the idle timeout applies again, from then.
    assert_eq!(closed(&h.tick(1200.0)), None);
    assert_eq!(closed(&h.tick(1302.0)), Some(CloseReason::IdleTimeout));
}

#[test]
fn the_map_connection_tells_the_char_connection() {
    let mut h = irose_harness();
    h.joined(Stage::Map);
    let out = h.input(
        1.5,
        Input::Joined {
            ok: true,
            entity_id: 5,
        },
    );
    let [ServerPacket::JoinServerReply(join)] = replies(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!(join.id, 123, "the entity id comes with the zone join");
    assert_eq!(told(&out), [(SessionId(4242), GameEvent::Entered)]);
    let mut back = h.clone();
    // 0x71C: a logout reply here, the return told to the char connection.
    let out = back.packet(2.0, &packets::ChangeCharReq);
    assert_eq!(sent(&out), [PacketType::PAKWC_LOGOUT_REPLY]);
    let left = GameEvent::Left(LeaveReason::ChangeChar);
    assert_eq!(told(&out), [(SessionId(4242), left)]);
    // Then the server closes the game connection, the reply first
    // (docs/protocol.md §10.5.14).
    assert_eq!(closed(&out), Some(CloseReason::LoggedOut));
    assert!(matches!(out.last(), Some(Action::Close(_))), "{out:?}");
    assert_eq!(back.s.phase(), &Phase::Closing(CloseReason::LoggedOut));
    // Logout, and a close in the world, tell it too.
    let mut bye = h.clone();
    let out = bye.packet(2.0, &packets::LogoutReq);
    let left = GameEvent::Left(LeaveReason::Logout);
    assert_eq!(told(&out), [(SessionId(4242), left)]);
    assert_eq!(closed(&out), Some(CloseReason::LoggedOut));
    let mut out = Vec::new();
    h.s.on_close(&mut out);
    let left = GameEvent::Left(LeaveReason::Disconnect);
    assert_eq!(told(&out), [(SessionId(4242), left)]);
}

/// Without a keepalive, an irose player's play refreshes its session, at
/// most once per refresh interval.
#[test]
fn irose_play_refreshes_the_session() {
    let mut h = irose_harness();
    h.in_world();
    let chat = packets::NormalChat {
        message: "hi".into(),
    };
    let refreshes = |out: &[Action]| {
        (out.iter())
            .filter(|a| matches!(a, Action::Notify(_, Call::Refresh { .. })))
            .count()
    };
    assert_eq!(refreshes(&h.packet(2.0, &chat)), 1);
    assert_eq!(refreshes(&h.packet(30.0, &chat)), 0);
    assert_eq!(refreshes(&h.packet(63.0, &chat)), 1);
    let mut o = Harness::new();
    o.in_world();
    assert_eq!(refreshes(&o.packet(2.0, &chat)), 0, "osIROSE: ALIVE only");
}

#[test]
fn osirose_sessions_neither_bind_nor_tell() {
    let mut h = Harness::new();
    let out = h.joined(Stage::CharSelect);
    assert!(!out.iter().any(|a| matches!(a, Action::BindCharConn(_))));
    let out = h.packet(2.0, &packets::ChangeCharReq);
    assert_eq!(sent(&out), Vec::<PacketType>::new(), "not in the world");
    let mut w = Harness::new();
    w.in_world();
    let out = w.packet(2.0, &packets::ChangeCharReq);
    assert_eq!(sent(&out), [PacketType::PAKCC_CHAN_CHAR_REPLY]);
    assert!(told(&out).is_empty());
    let mut out = Vec::new();
    w.s.on_close(&mut out);
    assert!(told(&out).is_empty());
}
