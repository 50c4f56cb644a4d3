//! The irose 129en dialect end to end over real TCP on one port
//! (docs/protocol.md §10): login → char → map → chat → logout, two irose
//! players seeing each other chat and move, the return to character select
//! on the char connection, `auto` serving an osIROSE and an irose client in
//! one world, and first packets that fit no table.

mod util;

use std::time::Duration;

use packet_service::conn::wire::PacketIds;
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::irose::{self, *};
use packet_service::protocol::CodecKind;
use util::irose::{enter_map, enter_world, join, list, login_phase, recv_skipping, select};
use util::{scrape, start, test_config, wait_until, Client};

fn gateway(ids: PacketIds, codec: CodecKind) -> packet_service::server::ServerHandle {
    let mut config = test_config(codec);
    config.packet_ids = ids;
    config.auto_create_accounts = true;
    config.metrics_enabled = true;
    start(config)
}

fn irose_ids() -> PacketIds {
    PacketIds::One(DialectId::Irose)
}

fn say(c: &mut Client, text: &str) {
    c.send(&NormalChat {
        message: text.into(),
    });
}

fn whole_flow(codec: CodecKind) {
    let gw = gateway(irose_ids(), codec);
    let mut p = enter_world(
        gw.addr(),
        codec,
        &format!("iwalker{}", codec.name()),
        "Raven",
    );
    // Chat comes back to the sender, with its entity id.
    say(&mut p.map, "hello");
    let chat: NormalChatBroadcast = p.map.recv_as();
    assert_eq!((chat.char_id, chat.message.as_str()), (p.entity, "hello"));
    // The keepalive the real client may send is accepted and answered by
    // nothing (docs/protocol.md §10.7).
    p.map.send(&Alive);
    // Logout: 0x707 with wait 0, then the server closes the game
    // connection (docs/protocol.md §10.6, step 13a).
    p.map.send(&LogoutReq);
    let logout: LogoutReply = p.map.recv_as();
    assert_eq!(logout.wait_time, 0);
    p.map.expect_closed();
    wait_until("the close to be counted", || {
        scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"logged_out\"}",
        ) == 1.0
    });
    drop(p.map);
    drop(p.char_conn);
    // The session is gone: its token no longer joins.
    wait_until("the logout to reach the auth service", || {
        let mut c = Client::connect_irose(gw.addr(), codec, Some(util::irose::WORLD_SEED));
        join(&mut c, p.token, "pw").result != 0
    });
    wait_until("every connection to be counted as irose", || {
        scrape(
            &gw,
            "packet_service_connections_dialect_total{dialect=\"irose\"}",
        ) >= 4.0
    });
}

#[test]
fn whole_flow_rose() {
    whole_flow(CodecKind::Rose);
}

#[test]
fn whole_flow_plain() {
    whole_flow(CodecKind::Plain);
}

#[test]
fn two_irose_players_chat_and_see_each_other_move() {
    let gw = gateway(irose_ids(), CodecKind::Rose);
    let mut a = enter_world(gw.addr(), CodecKind::Rose, "ialice", "Alice");
    let mut b = enter_world(gw.addr(), CodecKind::Rose, "ibobby", "Bobby");
    // Each is shown the other: Bobby arriving to Alice, Alice to Bobby.
    let seen: PlayerSpawn = recv_skipping(&mut a.map, PacketType::PAKWC_PLAYER_CHAR)
        .decode()
        .expect("spawn");
    assert_eq!(
        (seen.header.entity_id, seen.name.as_str()),
        (b.entity, "Bobby")
    );
    let seen: PlayerSpawn = recv_skipping(&mut b.map, PacketType::PAKWC_PLAYER_CHAR)
        .decode()
        .expect("spawn");
    assert_eq!(
        (seen.header.entity_id, seen.name.as_str()),
        (a.entity, "Alice")
    );

    say(&mut a.map, "hi bob");
    for c in [&mut a.map, &mut b.map] {
        let chat: NormalChatBroadcast = recv_skipping(c, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("chat");
        assert_eq!((chat.char_id, chat.message.as_str()), (a.entity, "hi bob"));
    }
    // A step that stays in Alice's view (docs/protocol.md §3.16).
    b.map.send(&MouseCmd {
        target_id: 0,
        x: 520_210.0,
        y: 520_220.0,
        z: 0,
    });
    for c in [&mut a.map, &mut b.map] {
        let moved: MouseCmdBroadcast = recv_skipping(c, PacketType::PAKWC_MOUSE_CMD)
            .decode()
            .expect("move");
        assert_eq!(
            (moved.id, moved.x, moved.y),
            (b.entity, 520_210.0, 520_220.0)
        );
    }
    // Bobby logs out: Alice sees him go.
    b.map.send(&LogoutReq);
    let _: LogoutReply = recv_skipping(&mut b.map, PacketType::PAKWC_LOGOUT_REPLY)
        .decode()
        .expect("logout");
    let gone: RemoveEntities = recv_skipping(&mut a.map, PacketType::PAKWC_REMOVE_OBJECT)
        .decode()
        .expect("removal");
    assert_eq!(gone.ids, [b.entity]);
}

/// 0x71C on the map connection: the map connection gets 0x707, the char
/// connection (open all game long, even past the idle timeout) 0x71C, and
/// the player picks a character again on it.
#[test]
fn back_to_character_select_on_the_char_connection() {
    let mut config = test_config(CodecKind::Rose);
    config.packet_ids = irose_ids();
    config.auto_create_accounts = true;
    // Long enough that a loaded machine does not idle out the steps of
    // the flow itself; the loop below stays silent on the char connection
    // for twice as long.
    let idle = Duration::from_secs(2);
    config.idle_timeout = idle;
    let gw = start(config);
    let addr = gw.addr();
    let mut p = enter_world(addr, CodecKind::Rose, "ireturner", "Raven");
    // The char connection stays silent past its idle timeout while the map
    // connection plays.
    for _ in 0..8 {
        std::thread::sleep(idle / 4);
        say(&mut p.map, "still here");
        let _: NormalChatBroadcast = recv_skipping(&mut p.map, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("chat");
    }
    p.map.send(&ChangeCharReq);
    let reply: LogoutReply = recv_skipping(&mut p.map, PacketType::PAKWC_LOGOUT_REPLY)
        .decode()
        .expect("0x707 on the map connection");
    assert_eq!(reply.wait_time, 0);
    // The server closes the game connection; the char connection stays.
    p.map.expect_closed();
    let _: ChanCharReply = p.char_conn.recv_as();
    drop(p.map);
    wait_until("the session to be back in character select", || {
        list(&mut p.char_conn).characters.len() == 1
    });
    let switch = select(&mut p.char_conn, "Raven");
    assert_eq!(switch.session_id, p.token, "the same token");
    let (mut map, entity) = enter_map(addr, CodecKind::Rose, &switch);
    say(&mut map, "back");
    let chat: NormalChatBroadcast = recv_skipping(&mut map, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("chat");
    assert_eq!(chat.char_id, entity);
}

/// `auto`: an osIROSE client and an irose client on the same listener, in
/// the same world, hear each other.
#[test]
fn auto_serves_both_families_in_one_world() {
    let gw = gateway(PacketIds::Auto, CodecKind::Rose);
    let mut o = util::flow::enter_world(gw.addr(), CodecKind::Rose, "oscar", "Oscar");
    let mut i = enter_world(gw.addr(), CodecKind::Rose, "irene", "Irene");
    // The irose client is shown the osIROSE player already there.
    let seen: PlayerSpawn = recv_skipping(&mut i.map, PacketType::PAKWC_PLAYER_CHAR)
        .decode()
        .expect("spawn");
    assert_eq!(seen.name, "Oscar");
    say(&mut i.map, "hello oscar");
    let heard: packet_service::protocol::packets::NormalChatBroadcast =
        util::flow::recv_skipping(&mut o.map, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("chat in the osIROSE layout and ids");
    assert_eq!(
        (heard.char_id, heard.message.as_str()),
        (i.entity, "hello oscar")
    );
    // Irene hears herself first, then Oscar.
    let own: NormalChatBroadcast = recv_skipping(&mut i.map, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("own chat");
    assert_eq!(own.char_id, i.entity);
    o.map.send(&packet_service::protocol::packets::NormalChat {
        message: "hi irene".into(),
    });
    let heard: NormalChatBroadcast = recv_skipping(&mut i.map, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("chat in irose ids");
    assert_eq!(
        (heard.char_id, heard.message.as_str()),
        (o.entity, "hi irene")
    );
    let count = |d: &str| {
        scrape(
            &gw,
            &format!("packet_service_connections_dialect_total{{dialect=\"{d}\"}}"),
        )
    };
    wait_until("three connections of each family", || {
        (count("osirose"), count("irose")) == (3.0, 3.0)
    });
}

/// A first packet that fits no table closes its connection as
/// `bad_checksum`, counted, while a neighbour is served.
#[test]
fn a_first_packet_no_table_fits_is_closed_and_counted() {
    for ids in [irose_ids(), PacketIds::Auto] {
        let gw = gateway(ids, CodecKind::Rose);
        let mut neighbour = Client::connect_irose(gw.addr(), CodecKind::Rose, None);
        let mut bad = Client::connect_irose(gw.addr(), CodecKind::Rose, None);
        // A zone join sealed with the login table: no connection starts so.
        let frame = bad.frame(&ChangeMapReq {
            weight_rate: 0,
            z: 0,
        });
        bad.send_bytes(&frame);
        bad.expect_closed();
        neighbour.send(&AcceptReq);
        let accept: irose::AcceptReply = neighbour.recv_as();
        assert_eq!(accept.status, 2);
        wait_until("the close to be counted", || {
            scrape(
                &gw,
                "packet_service_connections_closed_total{reason=\"bad_checksum\"}",
            ) == 1.0
                && scrape(
                    &gw,
                    "packet_service_protocol_errors_total{reason=\"bad_checksum\"}",
                ) == 1.0
        });
    }
}

/// `--irose-seeds`: the first seed is announced for the char connection,
/// the last for the map connection, and a first packet sealed with any of
/// them is read.
#[test]
fn login_phase_announces_the_configured_seeds() {
    let mut config = test_config(CodecKind::Rose);
    config.packet_ids = irose_ids();
    config.auto_create_accounts = true;
    config.irose_seeds = [0x0BAD_5EED, 0x00C0_FFEE, 0x0D15_EA5E]
        .map(|s| packet_service::protocol::codec::Seed::new(s).expect("seed"))
        .to_vec();
    let gw = start(config);
    let (token, world_seed) = login_phase(gw.addr(), CodecKind::Rose, "iseeds", "pw");
    assert_eq!(world_seed, 0x0BAD_5EED);
    // A seed that is prepared but not announced: its join is read (and
    // refused, the token being unknown).
    let mut c = Client::connect_irose(gw.addr(), CodecKind::Rose, Some(0x00C0_FFEE));
    assert_ne!(join(&mut c, 7, "pw").result, 0);
    drop(c);
    let mut c = Client::connect_irose(gw.addr(), CodecKind::Rose, Some(0x0D15_EA5E));
    assert_eq!(join(&mut c, token, "pw").result, 0);
    c.send(&CharListReq);
    let _: irose::CharListReply = c.recv_as();
    let switch = select_or_create(&mut c);
    assert_eq!(
        switch.session_seed, 0x0D15_EA5E,
        "the last seed is the map's"
    );
}

fn select_or_create(c: &mut Client) -> SwitchServer {
    c.send(&CreateCharReq {
        race: 1,
        stone: 0,
        hair: 0,
        face: 0,
        weapon: 0,
        zone: 1,
        name: "Seedy".into(),
    });
    let _: CreateCharReply = c.recv_as();
    let _ = list(c);
    select(c, "Seedy")
}
