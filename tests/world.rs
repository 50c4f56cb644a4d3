//! Visibility in the embedded world with real clients over TCP
//! (docs/protocol.md §3.16): players far apart on one map do not see each
//! other; walking into view exchanges spawns (PLAYER_CHAR), walking out of
//! it REMOVE_OBJECT; a newcomer is shown exactly the players in view;
//! normal chat is heard in view, shout on the whole map. Every client
//! starts at the default position (520000, 520000); the view is the
//! default 10 cells of 1000 units.
//!
//! Absence is proven without waiting: a player whispers to itself, and the
//! whisper is the next packet it receives. Every client goes through one
//! gateway, so the world's messages to it arrive in the order they were
//! sent, and anything sent to it before the whisper would come first.

mod util;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use packet_service::server::ServerHandle;
use util::flow::{enter_world, Player};
use util::{scrape, start, test_config, wait_until, Client};

const CODEC: CodecKind = CodecKind::Plain;
/// Where every character starts.
const HOME: f32 = 520_000.0;
/// Fifty cells away: far out of view.
const FAR: f32 = 570_000.0;

fn gateway() -> ServerHandle {
    let mut config = test_config(CODEC);
    config.auto_create_accounts = true;
    config.metrics_enabled = true;
    // The whispers that prove absence are chat too.
    config.chat_per_sec = 0;
    start(config)
}

/// The mover's own movement broadcast, which ends what a step sends it.
#[track_caller]
fn own_move(p: &mut Player, x: f32, y: f32) {
    let moved: MouseCmdBroadcast = p.map.recv_as();
    assert_eq!((moved.id, moved.x, moved.y), (p.entity, x, y));
}

/// Nothing is queued for `c` (named `name`): a whisper to itself is the
/// next packet it receives.
#[track_caller]
fn nothing_more(c: &mut Client, name: &str) {
    c.send(&WhisperChat {
        target: name.into(),
        message: "barrier".into(),
    });
    let got = c.recv();
    assert_eq!(
        got.ptype,
        Some(PacketType::PAKWC_WHISPER_CHAT),
        "{name} was sent something else first: {}",
        got.name()
    );
}

#[track_caller]
fn spawned(c: &mut Client) -> PlayerChar {
    c.recv_as()
}

#[track_caller]
fn removed(c: &mut Client) -> u16 {
    c.recv_as::<RemoveObject>().id
}

/// Alice far out, Bobby at home: neither sees the other.
fn far_apart(gw: &ServerHandle) -> (Player, Player) {
    let mut alice = enter_world(gw.addr(), CODEC, "walker-a", "Alice");
    alice.walk(FAR, FAR);
    own_move(&mut alice, FAR, FAR);
    let mut bobby = enter_world(gw.addr(), CODEC, "walker-b", "Bobby");
    nothing_more(&mut bobby.map, "Bobby");
    nothing_more(&mut alice.map, "Alice");
    (alice, bobby)
}

#[test]
fn walking_into_and_out_of_view_spawns_and_removes() {
    let gw = gateway();
    let (mut alice, mut bobby) = far_apart(&gw);

    // Bobby walks to within a few cells of Alice: both are shown the other.
    let near = FAR - 3_500.0;
    bobby.walk(near, FAR);
    let seen = spawned(&mut alice.map);
    assert_eq!(
        (seen.id, seen.name.as_str(), seen.x, seen.y),
        (bobby.entity, "Bobby", near, FAR)
    );
    let moved: MouseCmdBroadcast = alice.map.recv_as();
    assert_eq!(
        moved.id, bobby.entity,
        "the step itself is seen after the spawn"
    );
    let seen = spawned(&mut bobby.map);
    assert_eq!(
        (seen.id, seen.name.as_str(), seen.x, seen.y),
        (alice.entity, "Alice", FAR, FAR)
    );
    assert_eq!((seen.level, seen.move_mode, seen.run_speed), (1, 1, 425));
    own_move(&mut bobby, near, FAR);

    // A step that stays in view is only a movement.
    bobby.walk(near + 100.0, FAR);
    let moved: MouseCmdBroadcast = alice.map.recv_as();
    assert_eq!((moved.id, moved.x), (bobby.entity, near + 100.0));
    own_move(&mut bobby, near + 100.0, FAR);

    // Bobby walks home: both are told the other is gone.
    bobby.walk(HOME, HOME);
    assert_eq!(removed(&mut alice.map), bobby.entity);
    assert_eq!(removed(&mut bobby.map), alice.entity);
    own_move(&mut bobby, HOME, HOME);
    nothing_more(&mut alice.map, "Alice");

    // Carol joins at home: she is shown exactly Bobby, and Bobby her.
    let mut carol = enter_world(gw.addr(), CODEC, "walker-c", "Carol");
    let seen = spawned(&mut carol.map);
    assert_eq!((seen.id, seen.name.as_str()), (bobby.entity, "Bobby"));
    nothing_more(&mut carol.map, "Carol");
    let seen = spawned(&mut bobby.map);
    assert_eq!((seen.id, seen.name.as_str()), (carol.entity, "Carol"));
    nothing_more(&mut bobby.map, "Bobby");
    nothing_more(&mut alice.map, "Alice");

    // Bobby leaves the game: Carol, who saw him, is told; Alice is not.
    bobby.map.send(&LogoutReq);
    let _: LogoutReply = bobby.map.recv_as();
    assert_eq!(removed(&mut carol.map), bobby.entity);
    nothing_more(&mut alice.map, "Alice");

    // Two players on map 1 now; the spawns and removals above are counted,
    // exactly: the barriers proved nobody was sent any other (spawns: Bobby
    // and Alice each other, Carol and Bobby each other; removals: the two
    // of Bobby's walk home, Carol's of Bobby).
    // Waited for with a bound, then asserted once: an overshoot fails as
    // itself, not as a timeout.
    let spawns = "packet_service_world_visibility_packets_total{kind=\"spawn\"}";
    let removals = "packet_service_world_visibility_packets_total{kind=\"remove\"}";
    wait_until("the world's series to be exported", || {
        scrape(&gw, "packet_service_world_players{map=\"1\"}") == 2.0
            && scrape(&gw, spawns) >= 4.0
            && scrape(&gw, removals) >= 3.0
    });
    assert_eq!(scrape(&gw, spawns), 4.0);
    assert_eq!(scrape(&gw, removals), 3.0);
}

#[test]
fn normal_chat_is_heard_in_view_and_shout_on_the_map() {
    let gw = gateway();
    let (mut alice, mut bobby) = far_apart(&gw);
    let mut carol = enter_world(gw.addr(), CODEC, "talker-c", "Carol");
    assert_eq!(spawned(&mut carol.map).id, bobby.entity);
    assert_eq!(spawned(&mut bobby.map).id, carol.entity);

    bobby.map.send(&NormalChat {
        message: "near".into(),
    });
    for (c, name) in [(&mut bobby.map, "Bobby"), (&mut carol.map, "Carol")] {
        let heard: NormalChatBroadcast = c.recv_as();
        assert_eq!(
            (heard.char_id, heard.message.as_str()),
            (bobby.entity, "near"),
            "{name} hears it"
        );
    }
    nothing_more(&mut alice.map, "Alice");

    alice.map.send(&ShoutChat {
        message: "far".into(),
    });
    for c in [&mut alice.map, &mut bobby.map, &mut carol.map] {
        let heard: ShoutChatBroadcast = c.recv_as();
        assert_eq!(
            (heard.sender.as_str(), heard.message.as_str()),
            ("Alice", "far")
        );
    }

    // A whisper reaches its player out of view.
    carol.map.send(&WhisperChat {
        target: "alice".into(),
        message: "psst".into(),
    });
    let heard: WhisperChatReply = alice.map.recv_as();
    assert_eq!(
        (heard.sender.as_str(), heard.message.as_str()),
        ("Carol", "psst")
    );
}

/// Under `auto`, an osIROSE and an irose player see each other come and go,
/// each in its own client's layout.
#[test]
fn both_families_see_each_other_in_their_layouts() {
    let mut config = test_config(CODEC);
    config.auto_create_accounts = true;
    config.chat_per_sec = 0;
    config.packet_ids = packet_service::conn::wire::PacketIds::Auto;
    let gw = start(config);
    let mut oscar = enter_world(gw.addr(), CODEC, "family-o", "Oscar");
    oscar.walk(FAR, FAR);
    own_move(&mut oscar, FAR, FAR);
    let mut irene = util::irose::enter_world(gw.addr(), CODEC, "family-i", "Irene");
    nothing_more(&mut irene.map, "Irene");

    irene.map.send(&MouseCmd {
        target_id: 0,
        x: FAR,
        y: FAR - 2_000.0,
        z: 0,
    });
    let seen = spawned(&mut oscar.map);
    assert_eq!((seen.id, seen.name.as_str()), (irene.entity, "Irene"));
    let seen: irose::PlayerSpawn = irene.map.recv_as();
    assert_eq!(
        (seen.header.entity_id, seen.name.as_str(), seen.header.x),
        (oscar.entity, "Oscar", FAR)
    );
    // Then the step itself, to both.
    for c in [&mut oscar.map, &mut irene.map] {
        let moved: MouseCmdBroadcast = c.recv_as();
        assert_eq!((moved.id, moved.y), (irene.entity, FAR - 2_000.0));
    }

    irene.map.send(&MouseCmd {
        target_id: 0,
        x: HOME,
        y: HOME,
        z: 0,
    });
    assert_eq!(removed(&mut oscar.map), irene.entity);
    let gone: irose::RemoveEntities = irene.map.recv_as();
    assert_eq!(gone.ids, [oscar.entity]);
}
