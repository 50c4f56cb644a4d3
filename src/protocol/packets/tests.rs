//! Byte-exact vectors (docs/protocol.md §7), D4/D5 edge cases, round trips and
//! a never-panics property for every decoder.

use std::fmt::Debug;

use proptest::prelude::*;

use super::*;
use crate::protocol::codec::{HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{Dialect, DialectId};

pub(super) fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn osirose() -> &'static Dialect {
    DialectId::Osirose.dialect()
}

fn osirose_2021() -> &'static Dialect {
    DialectId::Osirose2021.dialect()
}

/// The encoded body of `p` (the packet without its header).
fn body_of<P: Packet>(p: &P) -> Vec<u8> {
    let packet = packet_to_vec(osirose(), p).expect("encode");
    packet[HEADER_LEN..].to_vec()
}

/// What follows the layout of a packet, which decides how truncated and
/// extended bodies must decode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tail {
    /// A fixed layout (strings and counted lists included): every proper
    /// prefix is malformed and trailing bytes are ignored.
    Ignored,
    /// Ends with a `T[*]` list: a prefix cut at an element boundary decodes
    /// fewer elements; extra bytes are read as another element.
    ListToEnd,
    /// Ends with a join digest that must be exactly 32 or 64 hex bytes: a
    /// 64-digit digest cut to 32 decodes as the short form; extra bytes are
    /// a bad digest.
    DigestToEnd,
}

/// Every proper prefix of `body` (and `body` with bytes appended) decodes
/// as `tail` says, without panicking.
#[track_caller]
fn check_truncations<P: Packet + PartialEq + Debug>(body: &[u8], tail: Tail) {
    let full = P::decode(body).expect("full body decodes");
    for n in 0..body.len() {
        let prefix = &body[..n];
        match (P::decode(prefix), tail) {
            (Err(_), _) => {}
            // A list cut between entries, or a 64-digit join digest cut to
            // 32 digits (a valid MD5-form request, docs/protocol.md §9 D4).
            (Ok(p), Tail::ListToEnd | Tail::DigestToEnd) => {
                assert_ne!(p, full, "{} prefix {n} decoded as the whole", P::TYPE);
                assert_eq!(
                    body_of(&p),
                    prefix,
                    "{} prefix {n} is not whole entries",
                    P::TYPE
                );
            }
            (Ok(p), _) => panic!("{} prefix of {n} bytes decoded: {p:?}", P::TYPE),
        }
    }
    let mut longer = body.to_vec();
    longer.extend_from_slice(&[0xAA, 0x00, 0x01, 0x02]);
    match tail {
        Tail::Ignored => assert_eq!(P::decode(&longer), Ok(full), "{} trailing bytes", P::TYPE),
        Tail::ListToEnd => assert_ne!(P::decode(&longer), Ok(full)),
        Tail::DigestToEnd => assert_eq!(P::decode(&longer), Err(BodyError::BadDigest)),
    }
}

/// A docs/protocol.md §7 plaintext vector: exact bytes with the `osirose` dialect, the same
/// bytes but 2–3 with `osirose-2021`, decode back to `expected`, and every
/// truncation.
#[track_caller]
fn check_vector<P: Packet + PartialEq + Debug>(
    expected: &P,
    vector: &str,
    id_2021: u16,
    tail: Tail,
) {
    let bytes = hex(vector);
    let size = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
    assert_eq!(size, bytes.len(), "size field of the {} vector", P::TYPE);

    assert_eq!(
        packet_to_vec(osirose(), expected),
        Ok(bytes.clone()),
        "{}",
        P::TYPE
    );
    let mut out = [0u8; MAX_PACKET_SIZE];
    assert_eq!(write_packet(osirose(), expected, &mut out), Ok(bytes.len()));
    assert_eq!(&out[..bytes.len()], &bytes[..]);

    let mut bytes_2021 = bytes.clone();
    bytes_2021[2..4].copy_from_slice(&id_2021.to_le_bytes());
    assert_eq!(
        packet_to_vec(osirose_2021(), expected),
        Ok(bytes_2021),
        "{} (2021)",
        P::TYPE
    );

    let dir = P::TYPE.direction();
    let master_id = u16::from_le_bytes([bytes[2], bytes[3]]);
    assert_eq!(osirose().lookup(dir, master_id), Some(P::TYPE));
    assert_eq!(osirose_2021().lookup(dir, id_2021), Some(P::TYPE));

    let body = &bytes[HEADER_LEN..];
    assert_eq!(P::decode(body).as_ref(), Ok(expected), "{} decode", P::TYPE);
    check_truncations::<P>(body, tail);
}

const DIGEST_SHA256: &str = "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918";
const DIGEST_MD5: &str = "21232f297a57a5a743894a0e4a801fc3";
const IP: &str = "127.0.0.1";
const SESSION: u32 = 1_700_000_000;

#[test]
fn p1_alive_and_p2_accept_req() {
    check_vector(&Alive, "06 00 00 05 00 00", 0x500, Tail::Ignored);
    check_vector(&AcceptReq, "06 00 04 05 00 00", 0x504, Tail::Ignored);
}

#[test]
fn p3_accept_reply() {
    let p = AcceptReply {
        result: AcceptReply::ACCEPTED,
        rand_value: 0x1234_5678,
    };
    check_vector(&p, "0b 00 d4 05 00 00 02 78 56 34 12", 0x5D2, Tail::Ignored);
}

const P4_LOGIN_REQ: &str = "4c 00 09 05 00 00 38 63 36 39 37 36 65 35 62 35
    34 31 30 34 31 35 62 64 65 39 30 38 62 64 34 64
    65 65 31 35 64 66 62 31 36 37 61 39 63 38 37 33
    66 63 34 62 62 38 61 38 31 66 36 66 32 61 62 34
    34 38 61 39 31 38 61 64 6d 69 6e 00";

#[test]
fn p4_login_req_sha256_form() {
    let p = LoginReq {
        digest: DIGEST_SHA256.as_bytes().to_vec(),
        username: "admin".into(),
    };
    check_vector(&p, P4_LOGIN_REQ, 0x509, Tail::Ignored);
    assert_eq!(p.digest_kind(), DigestKind::Sha256Hex);
}

#[test]
fn p5_login_reply() {
    let p = LoginReply {
        result: LoginResult::Ok.code(),
        right: 1,
        pay_type: 0,
        servers: vec![ServerInfo {
            test: ServerInfo::NORMAL,
            name: "osIROSE".into(),
            id: 1,
        }],
    };
    check_vector(
        &p,
        "18 00 0b 05 00 00 00 01 00 00 00 20 6f 73 49 52 4f 53 45 00 01 00 00 00",
        0x50A,
        Tail::ListToEnd,
    );
}

#[test]
fn p6_channel_list_reply() {
    let p = ChannelListReply {
        server_id: 1,
        channels: vec![ChannelInfo {
            id: 1,
            low_age: 0,
            high_age: 0,
            capacity: 0,
            name: "Athena".into(),
        }],
    };
    check_vector(
        &p,
        "17 00 06 05 00 00 01 00 00 00 01 01 00 00 00 00 41 74 68 65 6e 61 00",
        0x506,
        Tail::Ignored,
    );
}

#[test]
fn p7_srv_select_reply() {
    let p = SrvSelectReply {
        result: SrvSelectReply::OK,
        session_id: SESSION,
        crypt_val: 0,
        ip: IP.into(),
        port: 29100,
    };
    check_vector(
        &p,
        "1b 00 0e 05 00 00 00 00 f1 53 65 00 00 00 00 31 32 37 2e 30 2e 30 2e 31 00 ac 71",
        0x50D,
        Tail::Ignored,
    );
}

#[test]
fn p8_join_server_req() {
    let p = JoinServerReq {
        session_id: SESSION,
        digest: DIGEST_SHA256.as_bytes().to_vec(),
    };
    check_vector(
        &p,
        "4a 00 0f 05 00 00 00 f1 53 65 38 63 36 39 37 36
         65 35 62 35 34 31 30 34 31 35 62 64 65 39 30 38
         62 64 34 64 65 65 31 35 64 66 62 31 36 37 61 39
         63 38 37 33 66 63 34 62 62 38 61 38 31 66 36 66
         32 61 62 34 34 38 61 39 31 38",
        0x50E,
        Tail::DigestToEnd,
    );
    assert_eq!(p.digest_kind(), DigestKind::Sha256Hex);
}

#[test]
fn p9_char_list_reply() {
    let mut items = [0u32; 8];
    items[slot::ARMOR] = equipped_item(29, 0, false, 0);
    items[slot::WEAPON_R] = equipped_item(1, 0, false, 2);
    let p = CharListReply {
        characters: vec![CharInfo {
            name: "Raven".into(),
            race: 0,
            level: 10,
            job: 0,
            remain_secs_until_delete: 0,
            platinium: 0,
            face: 1,
            hair: 1,
            items,
        }],
    };
    check_vector(
        &p,
        "3f 00 17 05 00 00 01 52 61 76 65 6e 00 00 0a 00
         00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 00
         00 00 00 1d 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 01 00 20 00 00 00 00 00",
        0x515,
        Tail::Ignored,
    );
}

/// P10's character creation (the same request in the irose dialect).
pub(super) fn raven_create() -> CreateCharReq {
    CreateCharReq {
        race: 0,
        stone: 1,
        hair: 2,
        face: 3,
        weapon: 0,
        zone: 1,
        name: "Raven".into(),
    }
}

#[test]
fn p10_create_char() {
    let req = raven_create();
    check_vector(
        &req,
        "13 00 18 05 00 00 00 01 02 03 00 01 00 52 61 76 65 6e 00",
        0x516,
        Tail::Ignored,
    );
    let reply = CreateCharReply {
        result: CreateCharReply::NAME_TAKEN,
        platinum: 0,
    };
    check_vector(&reply, "08 00 19 05 00 00 02 00", 0x517, Tail::Ignored);
}

#[test]
fn p11_select_char_req() {
    let p = SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: "Raven".into(),
    };
    check_vector(
        &p,
        "0f 00 1c 05 00 00 00 00 00 52 61 76 65 6e 00",
        0x51A,
        Tail::Ignored,
    );
}

#[test]
fn p12_switch_server() {
    let p = SwitchServer {
        port: 29200,
        session_id: SESSION,
        session_seed: 0,
        ip: IP.into(),
    };
    check_vector(
        &p,
        "1a 00 15 05 00 00 10 72 00 f1 53 65 00 00 00 00 31 32 37 2e 30 2e 30 2e 31 00",
        0x513,
        Tail::Ignored,
    );
}

#[test]
fn p13_normal_chat() {
    let say = NormalChat {
        message: "hi".into(),
    };
    check_vector(&say, "09 00 47 05 00 00 68 69 00", 0x545, Tail::Ignored);
    let heard = NormalChatBroadcast {
        char_id: 5,
        message: "hi".into(),
    };
    check_vector(
        &heard,
        "0b 00 48 05 00 00 05 00 68 69 00",
        0x546,
        Tail::Ignored,
    );
}

#[test]
fn p14_whisper_shout_party() {
    let whisper = WhisperChat {
        target: "Bob".into(),
        message: "yo".into(),
    };
    check_vector(
        &whisper,
        "0d 00 49 05 00 00 42 6f 62 00 79 6f 00",
        0x547,
        Tail::Ignored,
    );
    let delivered = WhisperChatReply {
        sender: "Raven".into(),
        message: "yo".into(),
    };
    check_vector(
        &delivered,
        "0f 00 4a 05 00 00 52 61 76 65 6e 00 79 6f 00",
        0x548,
        Tail::Ignored,
    );
    let shout = ShoutChat {
        message: "hey".into(),
    };
    check_vector(
        &shout,
        "0a 00 4b 05 00 00 68 65 79 00",
        0x549,
        Tail::Ignored,
    );
    let party = PartyChat {
        message: "hi".into(),
    };
    check_vector(&party, "09 00 4d 05 00 00 68 69 00", 0x54B, Tail::Ignored);
}

#[test]
fn p15_mouse_cmd_and_stop() {
    let cmd = MouseCmd {
        target_id: 0,
        x: 520000.0,
        y: 520000.0,
        z: 0,
    };
    check_vector(
        &cmd,
        "12 00 62 05 00 00 00 00 00 e8 fd 48 00 e8 fd 48 00 00",
        0x560,
        Tail::Ignored,
    );
    let broadcast = MouseCmdBroadcast {
        id: 5,
        target_id: 0,
        distance: 0,
        x: 520000.0,
        y: 520000.0,
        z: 0,
    };
    check_vector(
        &broadcast,
        "16 00 63 05 00 00 05 00 00 00 00 00 00 e8 fd 48 00 e8 fd 48 00 00",
        0x561,
        Tail::Ignored,
    );
    let stop = StopBroadcast {
        char_id: 5,
        x: 520000.0,
        y: 520000.0,
        z: 0,
    };
    check_vector(
        &stop,
        "12 00 5c 05 00 00 05 00 00 e8 fd 48 00 e8 fd 48 00 00",
        0x55A,
        Tail::Ignored,
    );
}

#[test]
fn p16_logout_reply() {
    check_vector(
        &LogoutReply { wait_time: 0 },
        "08 00 08 05 00 00 00 00",
        0x508,
        Tail::Ignored,
    );
}

/// P17: what the embedded world shows of a player standing at its
/// position (docs/protocol.md §3.16).
#[test]
fn p17_player_char() {
    let raven = PlayerChar {
        id: 5,
        x: 520000.0,
        y: 520000.0,
        dest_x: 520000.0,
        dest_y: 520000.0,
        move_mode: 1,
        hp: 81,
        run_speed: 425,
        face: 1,
        hair: 1,
        inventory: [0, 0x1D, 0, 0, 0, 0, 0x0020_0001, 0],
        level: 10,
        name: "Raven".into(),
        ..PlayerChar::default()
    };
    check_vector(
        &raven,
        "81 00 58 05 00 00 05 00 00 e8 fd 48 00 e8 fd 48 00 e8 fd 48 00 e8 fd 48 \
         00 00 00 00 01 51 00 00 00 00 00 00 00 00 00 00 00 00 a9 01 00 00 00 01 \
         00 00 00 01 00 00 00 00 00 00 00 1d 00 00 00 00 00 00 00 00 00 00 00 00 \
         00 00 00 00 00 00 00 01 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 0a \
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
         00 00 52 61 76 65 6e 00 00",
        0x556,
        Tail::Ignored,
    );
    // The names start at offset 122, after the 116-byte fixed part.
    let bytes = packet_to_vec(osirose(), &raven).expect("encode");
    assert_eq!(&bytes[122..], b"Raven\0\0");
}

// ---- docs/protocol.md §9 D4: password digests ----

fn login_body(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn login_req_md5_form() {
    let body = login_body(&[DIGEST_MD5.as_bytes(), b"admin\0"]);
    let p = LoginReq::decode(&body).expect("32-byte form");
    assert_eq!(p.digest, DIGEST_MD5.as_bytes());
    assert_eq!(p.username, "admin");
    assert_eq!(p.digest_kind(), DigestKind::Md5Hex);
    assert_eq!(body_of(&p), body);
    check_truncations::<LoginReq>(&body, Tail::Ignored);
}

#[test]
fn login_req_sha256_form_needs_65_bytes() {
    // 64 hex digits and an empty username: exactly 65 bytes, the long form.
    let body = login_body(&[DIGEST_SHA256.as_bytes(), b"\0"]);
    let p = LoginReq::decode(&body).expect("64-byte form");
    assert_eq!(p.digest_kind(), DigestKind::Sha256Hex);
    assert_eq!(p.username, "");
    // The same 64 digits without a terminator are only 64 bytes: the short
    // form, whose username (the other 32 digits) has no terminator.
    assert_eq!(
        LoginReq::decode(DIGEST_SHA256.as_bytes()),
        Err(BodyError::NoTerminator)
    );
}

#[test]
fn login_req_uppercase_hex_is_hex() {
    let upper = DIGEST_SHA256.to_ascii_uppercase();
    let body = login_body(&[upper.as_bytes(), b"admin\0"]);
    let p = LoginReq::decode(&body).expect("uppercase digest");
    assert_eq!(p.digest_kind(), DigestKind::Sha256Hex);
    assert_eq!(p.digest, upper.as_bytes());
}

#[test]
fn login_req_non_hex_in_second_half_falls_back_to_md5() {
    let mut digest = DIGEST_SHA256.as_bytes().to_vec();
    digest[63] = b'g';
    let body = login_body(&[&digest, b"admin\0"]);
    let p = LoginReq::decode(&body).expect("32-byte form");
    assert_eq!(p.digest_kind(), DigestKind::Md5Hex);
    assert_eq!(p.digest, &digest[..32]);
    let mut name = String::from_utf8(digest[32..].to_vec()).expect("ascii");
    name.push_str("admin");
    assert_eq!(p.username, name);
}

#[test]
fn login_req_md5_then_hex_username_reads_as_sha256() {
    // The ambiguity D4 accepts: 32 digits followed by a name that starts
    // with 32 more is the long form.
    let body = login_body(&[DIGEST_MD5.as_bytes(), DIGEST_MD5.as_bytes(), b"x\0"]);
    let p = LoginReq::decode(&body).expect("64-byte form");
    assert_eq!(p.digest_kind(), DigestKind::Sha256Hex);
    assert_eq!(p.username, "x");
}

#[test]
fn login_req_bad_digests() {
    let mut digest = DIGEST_MD5.as_bytes().to_vec();
    digest[5] = b'z';
    let cases: [&[u8]; 5] = [
        b"",
        b"0123456789",
        &DIGEST_MD5.as_bytes()[..31],
        &login_body(&[&digest, b"admin\0"]),
        &login_body(&[b"admin\0", DIGEST_SHA256.as_bytes()]),
    ];
    for body in cases {
        assert_eq!(
            LoginReq::decode(body),
            Err(BodyError::BadDigest),
            "{body:?}"
        );
    }
}

#[test]
fn join_server_req_digest_lengths() {
    let join = |digest: &[u8]| {
        let mut body = SESSION.to_le_bytes().to_vec();
        body.extend_from_slice(digest);
        JoinServerReq::decode(&body)
    };
    let long = format!("{DIGEST_SHA256}a");
    for n in [0, 1, 31, 33, 63, 65] {
        assert_eq!(
            join(&long.as_bytes()[..n]),
            Err(BodyError::BadDigest),
            "{n} bytes"
        );
    }
    let md5 = join(DIGEST_MD5.as_bytes()).expect("32-byte digest");
    assert_eq!(md5.digest_kind(), DigestKind::Md5Hex);
    assert_eq!(md5.session_id, SESSION);
    let sha = join(DIGEST_SHA256.as_bytes()).expect("64-byte digest");
    assert_eq!(sha.digest_kind(), DigestKind::Sha256Hex);

    let mut not_hex = DIGEST_MD5.as_bytes().to_vec();
    not_hex[31] = b'\0';
    assert_eq!(join(&not_hex), Err(BodyError::BadDigest));
    assert_eq!(JoinServerReq::decode(&[1, 2, 3]), Err(BodyError::Short));
    check_truncations::<JoinServerReq>(&body_of(&md5), Tail::DigestToEnd);
}

#[test]
fn digest_kind_of_whole_digests() {
    assert_eq!(
        DigestKind::of(DIGEST_MD5.as_bytes()),
        Some(DigestKind::Md5Hex)
    );
    assert_eq!(
        DigestKind::of(DIGEST_SHA256.as_bytes()),
        Some(DigestKind::Sha256Hex)
    );
    assert_eq!(DigestKind::of(&[b'0'; 48]), None);
    assert_eq!(DigestKind::of(&[b'x'; 32]), None);
}

#[test]
fn debug_output_never_shows_a_digest() {
    let login = LoginReq {
        digest: DIGEST_SHA256.as_bytes().to_vec(),
        username: "admin".into(),
    };
    let join = JoinServerReq {
        session_id: 7,
        digest: DIGEST_MD5.as_bytes().to_vec(),
    };
    let shown = format!("{login:?} {join:?}");
    assert!(!shown.contains(&DIGEST_SHA256[..8]), "{shown}");
    assert!(!shown.contains(&DIGEST_MD5[..8]), "{shown}");
    assert!(
        shown.contains("admin") && shown.contains("redacted"),
        "{shown}"
    );
}

// ---- docs/protocol.md §9 D5: malformed bodies ----

#[test]
fn counts_running_past_the_end() {
    let mut body = body_of(&ChannelListReply {
        server_id: 1,
        channels: vec![ChannelInfo {
            id: 1,
            name: "a".into(),
            ..ChannelInfo::default()
        }],
    });
    body[4] = 2;
    assert_eq!(
        ChannelListReply::decode(&body),
        Err(BodyError::CountOverrun)
    );
    body[4] = 255;
    assert_eq!(
        ChannelListReply::decode(&body),
        Err(BodyError::CountOverrun)
    );

    let chars = body_of(&CharListReply {
        characters: vec![CharInfo::default()],
    });
    let mut two = chars.clone();
    two[0] = 2;
    assert_eq!(CharListReply::decode(&two), Err(BodyError::CountOverrun));
    // A count that fits but whose entry name never ends.
    let mut unterminated = vec![1u8];
    unterminated.extend_from_slice(&[b'a'; 60]);
    assert_eq!(
        CharListReply::decode(&unterminated),
        Err(BodyError::NoTerminator)
    );
}

#[test]
fn strings_without_terminator() {
    assert_eq!(NormalChat::decode(b"hi"), Err(BodyError::NoTerminator));
    assert_eq!(
        WhisperChat::decode(b"Bob\0yo"),
        Err(BodyError::NoTerminator)
    );
    assert_eq!(NormalChat::decode(b""), Err(BodyError::NoTerminator));
}

#[test]
fn short_fixed_parts() {
    assert_eq!(AcceptReply::decode(&[2, 0, 0, 0]), Err(BodyError::Short));
    assert_eq!(ScreenShotTimeReq::decode(&[1]), Err(BodyError::Short));
    assert_eq!(
        QuestData::decode(&[0; QUEST_DATA_LEN - 1]),
        Err(BodyError::Short)
    );
    assert_eq!(ChangeMapReq::decode(&[]), Err(BodyError::Short));
}

#[test]
fn empty_packets_ignore_trailing_bytes() {
    assert_eq!(Alive::decode(&[1, 2, 3]), Ok(Alive));
    assert_eq!(CharListReq::decode(&[9]), Ok(CharListReq));
    assert_eq!(body_of(&LogoutReq), Vec::<u8>::new());
}

// ---- round trips of every struct ----

/// Encode → decode gives the value back; the body decodes identically after
/// re-encoding, and every truncation behaves. Returns the packet size.
#[track_caller]
fn round_trip<P: Packet + PartialEq + Debug>(p: &P, tail: Tail) -> usize {
    let packet = packet_to_vec(osirose(), p).expect("encode");
    let size = usize::from(u16::from_le_bytes([packet[0], packet[1]]));
    assert_eq!(size, packet.len());
    assert_eq!(&packet[4..6], &[0, 0]);
    let command = u16::from_le_bytes([packet[2], packet[3]]);
    assert_eq!(
        osirose().lookup(P::TYPE.direction(), command),
        Some(P::TYPE)
    );
    let body = &packet[HEADER_LEN..];
    assert_eq!(P::decode(body).as_ref(), Ok(p), "{} round trip", P::TYPE);
    check_truncations::<P>(body, tail);
    size
}

/// A server packet also goes through [`ServerPacket`] unchanged.
#[track_caller]
fn server_round_trip<P>(p: P, tail: Tail) -> usize
where
    P: Packet + PartialEq + Debug + Clone + Into<ServerPacket>,
{
    let size = round_trip(&p, tail);
    let direct = packet_to_vec(osirose_2021(), &p).expect("encode");
    let wrapped: ServerPacket = p.into();
    assert_eq!(wrapped.packet_type(), P::TYPE);
    assert_eq!(wrapped.to_vec(osirose_2021()), Ok(direct.clone()));
    let mut out = [0u8; MAX_PACKET_SIZE];
    assert_eq!(wrapped.write(osirose_2021(), &mut out), Ok(direct.len()));
    assert_eq!(&out[..direct.len()], &direct[..]);
    size
}

fn sample_select_char_reply() -> SelectCharReply {
    let mut p = SelectCharReply {
        race: 1,
        map: 20,
        x: 5200.5,
        y: -5300.25,
        spawn: 3,
        body_face: 4,
        body_hair: 5,
        stone: 6,
        face: 7,
        hair: 8,
        job: 111,
        faction_id: 9,
        faction_rank: 10,
        fame: 11,
        str: 12,
        dex: 13,
        int: 14,
        con: 15,
        charm: 16,
        sense: 17,
        hp: -18,
        mp: 19,
        xp: 20,
        level: 21,
        stat_points: 22,
        skill_points: 23,
        body_size: 24,
        head_size: 25,
        penalty_xp: 26,
        guild_id: 27,
        guild_contribution: 28,
        guild_rank: 29,
        pk_flag: 30,
        stamina: 31,
        pat_hp: 32,
        pat_cooldown_time: 33,
        tag: 34,
        name: "Raven".into(),
        ..SelectCharReply::default()
    };
    p.equipped_items[slot::WEAPON_L] = equipped_item(1023, 511, true, 15);
    p.faction_fame = [35, 36];
    p.faction_points[9] = 37;
    p.effects[39] = StatusEffect {
        expired: 38,
        value: 39,
        unknown: 40,
    };
    p.skills[0] = 41;
    p.skills[119] = 42;
    p.hotbar[31] = HotbarItem {
        item_type: 31,
        slot_id: 2047,
    };
    p
}

#[test]
fn round_trip_handshake() {
    round_trip(&AcceptReq, Tail::Ignored);
    round_trip(&Alive, Tail::Ignored);
    round_trip(&LogoutReq, Tail::Ignored);
    round_trip(&ChangeCharReq, Tail::Ignored);
    round_trip(&ScreenShotTimeReq { count: 7 }, Tail::Ignored);
    server_round_trip(
        AcceptReply {
            result: AcceptReply::SERVERDEAD,
            rand_value: 0xDEAD_BEEF,
        },
        Tail::Ignored,
    );
    server_round_trip(LogoutReply { wait_time: 10 }, Tail::Ignored);
    server_round_trip(ChanCharReply, Tail::Ignored);
    let time = ScreenShotTimeReply {
        year: 2026,
        month: 12,
        day: 31,
        hour: 23,
        minute: 59,
    };
    assert_eq!(server_round_trip(time, Tail::Ignored), 12);
}

#[test]
fn round_trip_login() {
    round_trip(
        &LoginReq {
            digest: DIGEST_MD5.as_bytes().to_vec(),
            username: "someone".into(),
        },
        Tail::Ignored,
    );
    let servers = (1..=3)
        .map(|id| ServerInfo {
            test: ServerInfo::TEST,
            name: format!("server {id}"),
            id,
        })
        .collect();
    server_round_trip(
        LoginReply {
            result: LoginResult::Ok.code(),
            right: 0x800,
            pay_type: 0xFF,
            servers,
        },
        Tail::ListToEnd,
    );
    let failed = LoginReply {
        result: LoginResult::AlreadyLoggedIn.into(),
        ..LoginReply::default()
    };
    assert_eq!(server_round_trip(failed, Tail::ListToEnd), 11);
    round_trip(&ChannelListReq { server_id: 9 }, Tail::Ignored);
    let channels = (1..=4)
        .map(|id| ChannelInfo {
            id,
            low_age: 10,
            high_age: 100,
            capacity: 50,
            name: format!("channel {id}"),
        })
        .collect();
    server_round_trip(
        ChannelListReply {
            server_id: 2,
            channels,
        },
        Tail::Ignored,
    );
    server_round_trip(ChannelListReply::default(), Tail::Ignored);
    round_trip(
        &SrvSelectReq {
            server_id: 1,
            channel_id: 2,
        },
        Tail::Ignored,
    );
    let select = SrvSelectReply {
        result: SrvSelectReply::INVALID_AGE,
        session_id: 0xFFFF_FFFF,
        crypt_val: 3,
        ip: "10.0.0.1".into(),
        port: 1,
    };
    assert_eq!(server_round_trip(select, Tail::Ignored), 18 + 8);
    round_trip(
        &JoinServerReq {
            session_id: 5,
            digest: DIGEST_MD5.as_bytes().to_vec(),
        },
        Tail::DigestToEnd,
    );
    let join = JoinServerReply {
        result: JoinServerReply::INVALID_PASSWORD,
        id: 77,
        pay_flag: 1,
    };
    assert_eq!(server_round_trip(join, Tail::Ignored), 15);
}

#[test]
fn round_trip_characters() {
    round_trip(&CharListReq, Tail::Ignored);
    let characters: Vec<CharInfo> = (0..3u8)
        .map(|i| CharInfo {
            name: format!("char{i}"),
            race: i,
            level: 200,
            job: 321,
            remain_secs_until_delete: 86400,
            platinium: 1,
            face: 2,
            hair: 3,
            items: [equipped_item(u16::from(i), 1, true, 3); 8],
        })
        .collect();
    let expected = 7 + characters.iter().map(|c| 51 + c.name.len()).sum::<usize>();
    assert_eq!(
        server_round_trip(CharListReply { characters }, Tail::Ignored),
        expected
    );
    server_round_trip(CharListReply::default(), Tail::Ignored);
    let create = CreateCharReq {
        race: 1,
        stone: 2,
        hair: 3,
        face: 4,
        weapon: 5,
        zone: 6,
        name: "Newbie".into(),
    };
    assert_eq!(round_trip(&create, Tail::Ignored), 14 + 6);
    server_round_trip(
        CreateCharReply {
            result: CreateCharReply::BLOCKED,
            platinum: 1,
        },
        Tail::Ignored,
    );
    round_trip(
        &DeleteCharReq {
            slot: 4,
            is_delete: 1,
            name: "Raven".into(),
        },
        Tail::Ignored,
    );
    server_round_trip(
        DeleteCharReply {
            remaining_time: DeleteCharReply::REFUSED,
            name: "Raven".into(),
        },
        Tail::Ignored,
    );
    let select = SelectCharReq {
        slot: 2,
        run_mode: 1,
        ride_mode: 1,
        name: "Raven".into(),
    };
    assert_eq!(round_trip(&select, Tail::Ignored), 10 + 5);
    let switch = SwitchServer {
        port: 29000,
        session_id: 3,
        session_seed: 4,
        ip: "192.168.1.20".into(),
    };
    assert_eq!(server_round_trip(switch, Tail::Ignored), 17 + 12);
}

#[test]
fn round_trip_join_burst() {
    let reply = sample_select_char_reply();
    assert_eq!(server_round_trip(reply, Tail::Ignored), 777 + 5);
    assert_eq!(
        server_round_trip(SelectCharReply::default(), Tail::Ignored),
        777
    );
    round_trip(
        &ChangeMapReq {
            weight_rate: 50,
            z: 300,
        },
        Tail::Ignored,
    );
    let change = ChangeMapReply {
        object_index: 1,
        hp: 2,
        mp: 3,
        xp: 4,
        penalize_xp: 5,
        craft_rate: 6,
        update_time: 7,
        world_rate: 8,
        town_rate: 9,
        item_rate: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        flags: 12,
        world_time: 13,
        team_number: 14,
    };
    assert_eq!(server_round_trip(change, Tail::Ignored), 42);
    let mut inventory = InventoryData {
        zuly: -1_000_000_000_000,
        ..InventoryData::default()
    };
    inventory.items[0] = Item {
        header: Item::header_word(3, 1023, true),
        data: 0xFFFF_FFFF,
    };
    inventory.items[INVENTORY_SLOTS - 1] = Item { header: 1, data: 2 };
    assert_eq!(server_round_trip(inventory, Tail::Ignored), 854);
    let mut quests = QuestData::default();
    quests.body[0] = 1;
    quests.body[QUEST_DATA_LEN - 1] = 2;
    assert_eq!(server_round_trip(quests, Tail::Ignored), 960);
    let billing = BillingMessage {
        function_type: BillingMessage::FUNCTION_TYPE,
        pay_flag: BillingMessage::PAY_FLAG,
    };
    assert_eq!(server_round_trip(billing, Tail::Ignored), 12);
    let teleport = TeleportReply {
        id: 1,
        map: 2,
        x: 3.5,
        y: 4.5,
        move_mode: 1,
        ride_mode: 2,
    };
    assert_eq!(server_round_trip(teleport, Tail::Ignored), 20);
}

#[test]
fn round_trip_chat() {
    let text = || String::from("hello there");
    round_trip(&NormalChat { message: text() }, Tail::Ignored);
    server_round_trip(
        NormalChatBroadcast {
            char_id: 9,
            message: text(),
        },
        Tail::Ignored,
    );
    round_trip(
        &WhisperChat {
            target: "Bob".into(),
            message: text(),
        },
        Tail::Ignored,
    );
    server_round_trip(
        WhisperChatReply {
            sender: "server msg".into(),
            message: text(),
        },
        Tail::Ignored,
    );
    round_trip(&ShoutChat { message: text() }, Tail::Ignored);
    server_round_trip(
        ShoutChatBroadcast {
            sender: "Raven".into(),
            message: text(),
        },
        Tail::Ignored,
    );
    round_trip(&PartyChat { message: text() }, Tail::Ignored);
    server_round_trip(
        PartyChatBroadcast {
            char_id: 3,
            message: text(),
        },
        Tail::Ignored,
    );
    server_round_trip(
        AnnounceChat {
            message: text(),
            name: "GM".into(),
        },
        Tail::Ignored,
    );
}

#[test]
fn round_trip_movement() {
    round_trip(
        &MouseCmd {
            target_id: 4,
            x: 1.5,
            y: 2.5,
            z: 3,
        },
        Tail::Ignored,
    );
    server_round_trip(
        MouseCmdBroadcast {
            id: 1,
            target_id: 2,
            distance: 3,
            x: 4.0,
            y: 5.0,
            z: 6,
        },
        Tail::Ignored,
    );
    let moved = MoveBroadcast {
        id: 1,
        target_id: 2,
        distance: 3,
        x: 4.0,
        y: 5.0,
        z: 6,
        move_mode: MoveBroadcast::RIDEON,
    };
    assert_eq!(server_round_trip(moved, Tail::Ignored), 23);
    round_trip(&Stop { x: 1.0, y: 2.0 }, Tail::Ignored);
    server_round_trip(
        StopBroadcast {
            char_id: 1,
            x: 2.0,
            y: 3.0,
            z: -4,
        },
        Tail::Ignored,
    );
    round_trip(
        &StopMoving {
            x: 1.0,
            y: 2.0,
            z: 65535,
        },
        Tail::Ignored,
    );
    server_round_trip(
        StopMovingBroadcast {
            char_id: 1,
            x: 2.0,
            y: 3.0,
            z: -32768,
        },
        Tail::Ignored,
    );
    round_trip(&SetPosition { x: -1.0, y: -2.0 }, Tail::Ignored);
    server_round_trip(
        SetPositionBroadcast {
            char_id: 7,
            x: 2.0,
            y: 3.0,
            z: 4,
        },
        Tail::Ignored,
    );
    server_round_trip(RemoveObject { id: 0xFFFF }, Tail::Ignored);
}

// ---- helpers and encoding limits ----

#[test]
fn equipped_item_bit_layout() {
    assert_eq!(equipped_item(1, 0, false, 2), 0x0020_0001);
    assert_eq!(equipped_item(29, 0, false, 0), 0x1D);
    assert_eq!(equipped_item(0, 0, true, 0), 1 << 19);
    assert_eq!(equipped_item(0, 1, false, 0), 1 << 10);
    let word = equipped_item(1023, 511, true, 15);
    assert_eq!(word, 0x00FF_FFFF);
    assert_eq!(equipped_item_parts(word), (1023, 511, true, 15));
    assert_eq!(equipped_item_parts(0x0020_0001), (1, 0, false, 2));
    // Values wider than their field do not spill into the next one.
    assert_eq!(equipped_item(1024, 512, false, 16), 0);
}

#[test]
fn login_result_codes() {
    for code in 0..=11u8 {
        let r = LoginResult::from_code(code).expect("defined code");
        assert_eq!(r.code(), code);
    }
    assert_eq!(LoginResult::from_code(12), None);
    assert_eq!(LoginResult::OutsideRegion.code(), 11);
    assert_eq!(LoginResult::NoRightToConnect.code(), 7);
}

#[test]
fn packets_over_2047_bytes_are_refused() {
    let chat = |n: usize| NormalChat {
        message: "x".repeat(n),
    };
    // 6 + n + 1 = 2047 is the largest packet.
    let largest = packet_to_vec(osirose(), &chat(2040)).expect("2047 bytes fit");
    assert_eq!(largest.len(), MAX_PACKET_SIZE);
    assert_eq!(&largest[..2], &[0xFF, 0x07]);
    assert_eq!(
        packet_to_vec(osirose(), &chat(2041)),
        Err(EncodeError::TooLarge)
    );
    let mut big = vec![0u8; 4096];
    assert_eq!(
        write_packet(osirose(), &chat(3000), &mut big),
        Err(EncodeError::TooLarge)
    );
    let many = CharListReply {
        characters: vec![CharInfo::default(); 60],
    };
    assert_eq!(
        ServerPacket::from(many).to_vec(osirose()),
        Err(EncodeError::TooLarge)
    );
}

#[test]
fn packets_larger_than_out_are_refused() {
    let reply = AcceptReply {
        result: AcceptReply::ACCEPTED,
        rand_value: 1,
    };
    for len in 0..11 {
        let mut out = vec![0u8; len];
        assert_eq!(
            write_packet(osirose(), &reply, &mut out),
            Err(EncodeError::TooLarge),
            "{len}-byte buffer"
        );
    }
    let mut out = [0u8; 11];
    assert_eq!(write_packet(osirose(), &reply, &mut out), Ok(11));
    let mut header_only = [0xEEu8; 6];
    assert_eq!(write_packet(osirose(), &Alive, &mut header_only), Ok(6));
    assert_eq!(header_only, [6, 0, 0, 5, 0, 0]);
}

/// A packet that only the master numbering has.
#[derive(Debug, PartialEq)]
struct LoginTokenReq;

impl Packet for LoginTokenReq {
    const TYPE: PacketType = PacketType::PAKCS_LOGIN_TOKEN_REQ;

    fn decode(_body: &[u8]) -> Result<Self, BodyError> {
        Ok(LoginTokenReq)
    }

    fn encode(&self, _w: &mut Writer<'_>) {}
}

#[test]
fn missing_ids_are_refused() {
    assert_eq!(
        packet_to_vec(osirose_2021(), &LoginTokenReq),
        Err(EncodeError::NoId(PacketType::PAKCS_LOGIN_TOKEN_REQ))
    );
    assert_eq!(
        packet_to_vec(osirose(), &LoginTokenReq).map(|p| p[2..4].to_vec()),
        Ok(vec![0x0A, 0x05])
    );
}

#[test]
fn writer_overflow_is_sticky() {
    let mut buf = [0u8; 5];
    let mut w = Writer::new(&mut buf);
    assert!(w.is_empty());
    w.u32(0x0403_0201);
    w.u16(7); // does not fit
    w.u8(9); // would fit, but the packet is already lost
    assert!(w.overflowed());
    assert_eq!(w.len(), 4);
    assert_eq!(buf, [1, 2, 3, 4, 0]);
}

#[test]
fn writer_cuts_strings_at_nul() {
    let mut buf = [0xFFu8; 8];
    let mut w = Writer::new(&mut buf);
    w.cstr("ab\0cd");
    assert_eq!(w.len(), 3);
    assert_eq!(&buf[..4], b"ab\0\xFF");
}

#[test]
fn reader_reads_little_endian_and_keeps_position_on_error() {
    let bytes = [
        1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 0x00, 0x00, 0x80, 0x3F, b'o',
        0xE9, 0, 9,
    ];
    let mut r = Reader::new(&bytes);
    assert_eq!(r.u8(), Ok(1));
    assert_eq!(r.u16(), Ok(2));
    assert_eq!(r.u32(), Ok(3));
    assert_eq!(r.u64(), Ok(4));
    assert_eq!(r.i16(), Ok(-2));
    assert_eq!(r.f32(), Ok(1.0));
    // Raw 8-bit text: 0xE9 is not UTF-8 on its own.
    assert_eq!(r.cstr().as_deref(), Ok("o\u{FFFD}"));
    assert_eq!(r.remaining(), 1);
    assert_eq!(r.u16(), Err(BodyError::Short));
    assert_eq!(r.cstr(), Err(BodyError::NoTerminator));
    assert_eq!(r.fixed(2), Err(BodyError::Short));
    assert_eq!(r.remaining(), 1);
    assert_eq!(r.rest(), &[9]);
    assert_eq!(r.remaining(), 0);
    let mut signed = Reader::new(&[0xFF; 8]);
    assert_eq!(signed.i32(), Ok(-1));
    assert_eq!(signed.clone().i64(), Err(BodyError::Short));
    assert_eq!(Reader::new(&[0xFF; 8]).i64(), Ok(-1));
}

// ---- decoding arbitrary bytes never panics ----

/// Runs every decoder over `body`.
fn decode_with_every_decoder(body: &[u8]) {
    macro_rules! all {
        ($($t:ty),* $(,)?) => { $( let _ = <$t as Packet>::decode(body); )* };
    }
    crate::with_every_packet!(all);
    crate::with_every_irose_packet!(all);
}

/// Bodies that reach the deeper branches: hex prefixes (digests), small
/// counts and few zeros (strings), besides uniform random bytes.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let hexish = prop::collection::vec(
        prop_oneof![
            16 => prop::sample::select(b"0123456789abcdefABCDEF".to_vec()),
            2 => any::<u8>(),
            1 => Just(0u8),
        ],
        0..200,
    );
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..MAX_PACKET_SIZE + 8),
        prop::collection::vec(
            prop_oneof![3 => Just(0u8), 1 => 1u8..4, 4 => any::<u8>()],
            0..1000
        ),
        hexish,
    ]
}

proptest! {
    #[test]
    fn decoders_never_panic(body in body_strategy()) {
        decode_with_every_decoder(&body);
    }

    #[test]
    fn decoded_packets_encode_again(body in body_strategy()) {
        // Whatever decodes, re-encoded, decodes to the same value.
        // (Lossy text can grow a body past 2047 bytes: then there is
        // nothing to compare.)
        if let Ok(p) = ChannelListReply::decode(&body) {
            if let Ok(again) = packet_to_vec(osirose(), &p) {
                prop_assert_eq!(ChannelListReply::decode(&again[HEADER_LEN..]), Ok(p));
            }
        }
        if let Ok(p) = LoginReq::decode(&body) {
            prop_assert!(DigestKind::of(&p.digest).is_some());
            if let Ok(again) = packet_to_vec(osirose(), &p) {
                prop_assert_eq!(LoginReq::decode(&again[HEADER_LEN..]), Ok(p));
            }
        }
    }
}
