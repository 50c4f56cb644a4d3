//! Names a player may not take (docs/protocol.md §9 D16), tried over real
//! TCP through the gateway and the embedded backend while a neighbour keeps
//! playing: invisible characters, look-alikes and reserved words are refused
//! as account names (not auto-created) and as character names.

mod util;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use util::flow::{create, enter_world, join, login_phase, recv_skipping, Player};
use util::{start, test_config, Client};

/// What the client is sent for an unknown account: INVALID_PASSWORD, as for
/// a wrong password (docs/protocol.md §9 D17).
const UNKNOWN_ACCOUNT: u8 = 3;

/// The neighbour says something and hears it back: still served.
fn neighbour_is_served(p: &mut Player, n: usize) {
    let message = format!("still here {n}");
    p.map.send(&NormalChat {
        message: message.clone(),
    });
    let chat: NormalChatBroadcast = recv_skipping(&mut p.map, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("chat");
    assert_eq!((chat.char_id, chat.message), (p.entity, message));
}

/// Names that would render like a server notice or a game master.
const FORGED: [&str; 8] = [
    "server msg",
    "server\u{200B}msg",
    "Ser\u{00A0}ver",
    "\u{0421}erver",
    "5erv3r_msg",
    "SERVER",
    "GM_Bob",
    "Gmbob",
];

#[test]
fn forged_names_are_refused_while_a_neighbour_plays() {
    let codec = CodecKind::Rose;
    let mut config = test_config(codec);
    config.auto_create_accounts = true;
    // The neighbour proves it is served by chatting after every attempt:
    // more often than the default chat budget allows.
    config.chat_per_sec = 0;
    let gw = start(config);
    let mut neighbour = enter_world(gw.addr(), codec, "alice", "Alice");
    let mut n = 0;

    // Account names: not auto-created, one connection trying them all.
    let mut attacker = Client::connect(gw.addr(), codec);
    assert_eq!(attacker.accept().result, AcceptReply::ACCEPTED);
    for user in FORGED {
        assert_eq!(
            attacker.login(user, "pw").result,
            UNKNOWN_ACCOUNT,
            "{user:?}"
        );
        n += 1;
        neighbour_is_served(&mut neighbour, n);
    }

    // Character names, including bytes that are not UTF-8.
    let session_id = login_phase(gw.addr(), codec, "mallory", "pw");
    let mut c = Client::connect(gw.addr(), codec);
    assert_eq!(join(&mut c, session_id, "pw").result, 0);
    for name in FORGED {
        assert_eq!(
            create(&mut c, name).result,
            CreateCharReply::INVALID_VALUE,
            "{name:?}"
        );
        n += 1;
        neighbour_is_served(&mut neighbour, n);
    }
    let mut body = vec![0, 1, 2, 3, 0, 1, 0];
    body.extend_from_slice(b"Serv\xA0er\0");
    let frame = c.raw_frame(c.id(PacketType::PAKCS_CREATE_CHAR_REQ), &body);
    c.send_bytes(&frame);
    let reply: CreateCharReply = c.recv_as();
    assert_eq!(reply.result, CreateCharReply::INVALID_VALUE, "raw 0xA0");
    neighbour_is_served(&mut neighbour, n + 1);

    // An ordinary name still works, and is stored as sent.
    assert_eq!(create(&mut c, "Mallory_2").result, CreateCharReply::OK);
    let chars = util::flow::list(&mut c);
    let names: Vec<&str> = chars.characters.iter().map(|ch| ch.name.as_str()).collect();
    assert_eq!(names, ["Mallory_2"]);
}
