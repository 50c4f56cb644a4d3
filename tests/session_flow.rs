//! The whole session sequence of docs/protocol.md §4 on one port, through the
//! embedded backend over real gRPC: login → server select → char phase →
//! map phase → world, and the refusals on the way.

mod util;

use packet_service::conn::wire::PacketIds;
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use util::flow::{create, enter_world, join, list, login_phase, recv_skipping};
use util::{start, test_config, Client};

fn full_sequence(codec: CodecKind) {
    let mut config = test_config(codec);
    config.auto_create_accounts = true;
    let gw = start(config);
    let user = format!("walker{}", codec.name());
    let mut p = enter_world(gw.addr(), codec, &user, "Raven");
    // Chat reaches the sender too (the map includes the sender).
    p.map.send(&NormalChat {
        message: "hello".into(),
    });
    let chat: NormalChatBroadcast = p.map.recv_as();
    assert_eq!((chat.char_id, chat.message.as_str()), (p.entity, "hello"));
    // ALIVE and screen-shot time are local in the world too.
    p.map.send(&Alive);
    p.map.send(&ScreenShotTimeReq { count: 0 });
    let _: ScreenShotTimeReply = p.map.recv_as();
    // Logout: reply 0, then the client closes.
    p.map.send(&LogoutReq);
    let logout: LogoutReply = p.map.recv_as();
    assert_eq!(logout.wait_time, 0);
    // The session is gone: a new join with it fails.
    let mut again = Client::connect(gw.addr(), codec);
    util::wait_until("the logout to reach the auth service", || {
        let mut c = Client::connect(gw.addr(), codec);
        join(&mut c, p.session_id, "pw").result != 0
    });
    assert_eq!(again.accept().result, 2);
    drop(p.char_conn);
}

#[test]
fn full_sequence_rose() {
    full_sequence(CodecKind::Rose);
}

#[test]
fn full_sequence_plain() {
    full_sequence(CodecKind::Plain);
}

#[test]
fn full_sequence_in_the_2021_numbering() {
    let mut config = test_config(CodecKind::Rose);
    config.packet_ids = PacketIds::One(DialectId::Osirose2021);
    config.auto_create_accounts = true;
    let gw = start(config);
    let mut c = Client::connect_with(gw.addr(), CodecKind::Rose, DialectId::Osirose2021);
    let r = c.recv_after(&AcceptReq);
    assert_eq!(r.id, 0x5D2, "2021 id of ACCEPT_REPLY");
    let reply = c.login("nineteen", "pw");
    assert_eq!(reply.result, 0);
}

#[test]
fn two_players_see_each_others_chat_and_movement() {
    let mut config = test_config(CodecKind::Rose);
    config.auto_create_accounts = true;
    let gw = start(config);
    let mut a = enter_world(gw.addr(), CodecKind::Rose, "alice", "Alice");
    let mut b = enter_world(gw.addr(), CodecKind::Rose, "bobby", "Bobby");
    // Alice may first hear about nothing else; Bob's arrival sends nothing
    // she must read. Chat from Bob reaches both.
    b.map.send(&NormalChat {
        message: "hi all".into(),
    });
    for p in [&mut a, &mut b] {
        let chat: NormalChatBroadcast = recv_skipping(&mut p.map, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("decodes");
        assert_eq!(chat.message, "hi all");
    }
    // Movement is broadcast with the mover's entity id.
    a.map.send(&MouseCmd {
        target_id: 0,
        x: 520_100.0,
        y: 520_200.0,
        z: 0,
    });
    for p in [&mut a, &mut b] {
        let moved: MouseCmdBroadcast = recv_skipping(&mut p.map, PacketType::PAKWC_MOUSE_CMD)
            .decode()
            .expect("decodes");
        assert_eq!((moved.x, moved.y), (520_100.0, 520_200.0));
    }
    // A whisper reaches only its target.
    a.map.send(&WhisperChat {
        target: "Bobby".into(),
        message: "psst".into(),
    });
    let w: WhisperChatReply = recv_skipping(&mut b.map, PacketType::PAKWC_WHISPER_CHAT)
        .decode()
        .expect("decodes");
    assert_eq!((w.sender.as_str(), w.message.as_str()), ("Alice", "psst"));
    // Shout reaches both.
    b.map.send(&ShoutChat {
        message: "HEY".into(),
    });
    for p in [&mut a, &mut b] {
        let s: ShoutChatBroadcast = recv_skipping(&mut p.map, PacketType::PAKWC_SHOUT_CHAT)
            .decode()
            .expect("decodes");
        assert_eq!((s.sender.as_str(), s.message.as_str()), ("Bobby", "HEY"));
    }
    // Bob leaves: Alice sees his entity removed.
    drop(b.map);
    let gone: RemoveObject = recv_skipping(&mut a.map, PacketType::PAKWC_REMOVE_OBJECT)
        .decode()
        .expect("decodes");
    assert_eq!(gone.id, b.entity);
}

#[test]
fn refusals_on_the_way() {
    let gw = start(test_config(CodecKind::Rose));
    // Wrong password and unknown account (no auto-create here).
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(c.login("admin", "wrong").result, 3, "INVALID_PASSWORD");
    // An unknown account is answered as a wrong password (docs/protocol.md §9 D17).
    assert_eq!(c.login("nobody", "pw").result, 3, "INVALID_PASSWORD");
    // The 32-byte MD5 form works too (docs/protocol.md §9 D4).
    c.send(&LoginReq {
        digest: util::md5_hex("admin"),
        username: "admin".into(),
    });
    assert_eq!(c.recv_as::<LoginReply>().result, 0, "MD5 digest accepted");

    // Forged session id and wrong digest.
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(
        join(&mut c, 0xDEAD_BEEF, "admin").result,
        3,
        "forged session"
    );
    let session_id = login_phase(gw.addr(), CodecKind::Rose, "admin", "admin");
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(
        join(&mut c, session_id, "not-the-password").result,
        3,
        "wrong digest"
    );
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(join(&mut c, session_id, "admin").result, 0);

    // Duplicate character name, across accounts.
    assert_eq!(create(&mut c, "Unique").result, 0);
    let other = login_phase(gw.addr(), CodecKind::Rose, "bob", "secret");
    let mut d = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(join(&mut d, other, "secret").result, 0);
    assert_eq!(create(&mut d, "unique").result, CreateCharReply::NAME_TAKEN);

    // Slot out of range: delete refused, select closes.
    assert_eq!(list(&mut c).characters.len(), 1);
    c.send(&DeleteCharReq {
        slot: 5,
        is_delete: 1,
        name: "x".into(),
    });
    assert_eq!(c.recv_as::<DeleteCharReply>().remaining_time, 0xFFFF_FFFF);
    c.send(&SelectCharReq {
        slot: 1,
        run_mode: 0,
        ride_mode: 0,
        name: "x".into(),
    });
    c.expect_closed();
}

/// Asks the embedded auth service itself whether a session is alive (a
/// refresh of a live session extends it).
struct AuthProbe {
    rt: tokio::runtime::Runtime,
    url: String,
}

impl AuthProbe {
    fn new(gw: &packet_service::server::ServerHandle) -> AuthProbe {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("http://{}", gw.backend_addr().expect("embedded backend"));
        AuthProbe { rt, url }
    }

    fn alive(&self, session_id: u32) -> bool {
        use packet_service::pb::auth::{auth_client::AuthClient, RefreshRequest};
        self.rt.block_on(async {
            let mut auth = AuthClient::connect(self.url.clone())
                .await
                .expect("connect");
            auth.refresh(RefreshRequest { session_id })
                .await
                .expect("refresh")
                .into_inner()
                .ok
        })
    }
}

#[test]
fn expired_sessions_are_refused() {
    let mut config = test_config(CodecKind::Rose);
    config.session_ttl = std::time::Duration::from_secs(1);
    let gw = start(config);
    let session_id = login_phase(gw.addr(), CodecKind::Rose, "admin", "admin");
    // Watch the session through the auth service itself (a refresh of a
    // live session would extend it, so only ask once it should be gone).
    let auth = AuthProbe::new(&gw);
    let expired_at = std::time::Instant::now() + std::time::Duration::from_secs(1);
    util::wait_until("the session TTL to pass", || {
        std::time::Instant::now() >= expired_at
    });
    util::wait_until("the auth service to report the session expired", || {
        !auth.alive(session_id)
    });
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    let result = join(&mut c, session_id, "admin").result;
    assert!(
        result == JoinServerReply::TIME_OUT || result == JoinServerReply::INVALID_PASSWORD,
        "an expired session is refused, got {result}"
    );
}

/// Regression: a malformed CREATE_CHAR_REQ in character select closed the
/// connection without telling the auth service, so the session stayed
/// valid (and could be joined again) until its TTL. Closing the char
/// connection ends the session (protocol.md §4 step 10), whatever the
/// reason for the close.
#[test]
fn a_malformed_packet_in_character_select_ends_the_session() {
    let gw = start(test_config(CodecKind::Rose));
    let session_id = login_phase(gw.addr(), CodecKind::Rose, "admin", "admin");
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(join(&mut c, session_id, "admin").result, 0);
    let create = c.id(PacketType::PAKCS_CREATE_CHAR_REQ);
    let frame = c.raw_frame(create, &[0]);
    c.send_bytes(&frame);
    c.expect_closed();
    let auth = AuthProbe::new(&gw);
    util::wait_until("the logout to reach the auth service", || {
        !auth.alive(session_id)
    });
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(
        join(&mut c, session_id, "admin").result,
        JoinServerReply::INVALID_PASSWORD,
        "the session is gone"
    );
}

/// A second join of a session (a stolen session id and digest, or a client
/// that reconnected) kicks the older connection, and that connection's late
/// Leave does not remove the newer player (docs/protocol.md §9 D15), while
/// a neighbour on the same map is served throughout.
#[test]
fn a_second_join_of_a_session_kicks_the_older_connection() {
    let codec = CodecKind::Rose;
    let mut config = test_config(codec);
    config.auto_create_accounts = true;
    let gw = start(config);
    let mut neighbour = enter_world(gw.addr(), codec, "alice", "Alice");
    let mut first = enter_world(gw.addr(), codec, "bobby", "Bobby");
    // They stand together: each was shown the other (tests/world.rs).
    let _: PlayerChar = first.map.recv_as();
    let _: PlayerChar = neighbour.map.recv_as();
    let kicked_before = util::scrape(
        &gw,
        "packet_service_connections_closed_total{reason=\"kicked\"}",
    );

    let mut second = Client::connect(gw.addr(), codec);
    let joined = join(&mut second, first.session_id, "pw");
    assert_eq!(joined.result, 0, "the second join is served");
    let burst: Vec<Option<PacketType>> = (0..4).map(|_| second.recv().ptype).collect();
    assert_eq!(burst[0], Some(PacketType::PAKWC_SELECT_CHAR_REPLY));
    // The older connection is closed; its Leave reaches the world before
    // anything the newer one sends next.
    first.map.expect_closed();
    util::wait_until("the kick to be counted", || {
        util::scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"kicked\"}",
        ) >= kicked_before + 1.0
    });
    second.send(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    });
    let change: ChangeMapReply = recv_skipping(&mut second, PacketType::PAKWC_CHANGE_MAP_REPLY)
        .decode()
        .expect("change map reply");
    let entity = change.object_index;
    assert_eq!(u32::from(entity), joined.id);
    // The newer player is in the world: the neighbour hears it, and it
    // hears the neighbour.
    second.send(&NormalChat {
        message: "still me".into(),
    });
    let chat: NormalChatBroadcast =
        recv_skipping(&mut neighbour.map, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("chat");
    assert_eq!((chat.char_id, chat.message.as_str()), (entity, "still me"));
    let own: NormalChatBroadcast = recv_skipping(&mut second, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("own chat");
    assert_eq!(own.message, "still me");
    neighbour.map.send(&NormalChat {
        message: "hello bobby".into(),
    });
    let chat: NormalChatBroadcast = recv_skipping(&mut second, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("chat");
    assert_eq!(
        (chat.char_id, chat.message.as_str()),
        (neighbour.entity, "hello bobby")
    );
}
