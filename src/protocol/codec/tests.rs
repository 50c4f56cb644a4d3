//! The osIROSE vectors of docs/protocol.md §7 (E1–E5), the plain codec's
//! vectors, and the framing edge cases shared by both codecs.

use super::header::HeaderFields;
use super::*;
use Direction::{ClientToServer as C2S, ServerToClient as S2C};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

const P1_ALIVE: &str = "06 00 00 05 00 00";
const P2_ACCEPT_REQ: &str = "06 00 04 05 00 00";
const P3_ACCEPT_REPLY: &str = "0b 00 d4 05 00 00 02 78 56 34 12";
const P4_LOGIN_REQ: &str = "4c 00 09 05 00 00 38 63 36 39 37 36 65 35 62 35
    34 31 30 34 31 35 62 64 65 39 30 38 62 64 34 64
    65 65 31 35 64 66 62 31 36 37 61 39 63 38 37 33
    66 63 34 62 62 38 61 38 31 66 36 66 32 61 62 34
    34 38 61 39 31 38 61 64 6d 69 6e 00";
const P13_NORMAL_CHAT: &str = "09 00 47 05 00 00 68 69 00";
const E5: &str = "43 b8 b6 92 45 79 9e ad 9b d5 9a 1c 77 ed 7c b0
    0f b5 e8 77 38 c5 53 b9 9e 25 8e 4f 61 6c b3 17
    fe d1 ef f8 0f 46 39 50 80 7b b8 07 84 00 91 b5
    36 87 7d e7 2e 68 e1 31 83 1a 71 4a dd 09 f0 1c
    55 2c 68 73 ee b8 e7 a5 96 c5 60 40";

#[test]
fn key_tables_match_check_values() {
    let full = Construction::default_for(ROSE_SEED).fill();
    assert_eq!(&full[0][..4], &[14586, -1619, -3009, 8280]);
    let low: Vec<u8> = (0..5).map(|t| full[t][0x100] as u8).collect();
    assert_eq!(low, vec![0x42, 0xa7, 0x12, 0xbe, 0x71]);
}

#[test]
fn body_masks_of_e5() {
    let t = RoseTables::default_tables();
    let masks: Vec<u8> = (6..16).map(|i| t.mask((4 + i) & 15, 0x100 + i)).collect();
    assert_eq!(masks, hex("a6 ce ad ec ad 2a 12 d8 1e 85"));
}

fn rose() -> Codec {
    Codec::new(CodecKind::Rose)
}

fn check_encrypt(plain: &str, dir: Direction, params: RoseParams, wire: &str) {
    let mut p = hex(plain);
    rose().seal_with(dir, &mut p, params).expect("seal");
    assert_eq!(p, hex(wire), "encrypting {plain}");
}

fn check_decrypt(wire: &str, dir: Direction, plain: &str) {
    let mut w = hex(wire);
    let h = rose()
        .decode(dir, &mut w)
        .expect("valid")
        .expect("complete");
    assert_eq!(&w[..h.data_len], &hex(plain)[..], "decrypting {wire}");
}

#[test]
fn vector_e1_alive_both_ways() {
    check_encrypt(P1_ALIVE, C2S, RoseParams::DEFAULT, "c2 a8 32 92 45 74");
    check_decrypt("c2 a8 32 92 45 74", C2S, P1_ALIVE);
}

#[test]
fn vector_e1b_accept_req() {
    check_encrypt(P2_ACCEPT_REQ, C2S, RoseParams::DEFAULT, "c2 e8 32 92 45 04");
    check_decrypt("c2 e8 32 92 45 04", C2S, P2_ACCEPT_REQ);
}

#[test]
fn vector_e2_osirose_server_padding_quirk() {
    let quirk = RoseParams {
        atv: 0x100,
        eav: 4,
        ev: 4,
    };
    // osIROSE declares 4 bytes of padding without adding any. Its checksum
    // covers the whole body; ours (subtracting ev) covers 4 bytes less.
    let wire = "83 2e 1a fc c2 9a a4 b6 fb d8 bf";
    let mut p = hex(P3_ACCEPT_REPLY);
    let mut osirose_sum = CRC8.digest();
    let fields = HeaderFields {
        size: 11,
        command: 0x5d4,
        atv: 0x100,
        eav: 4,
        ev: 4,
    };
    osirose_sum.update(&fields.logical());
    osirose_sum.update(&p[6..]);
    rose().seal_with(S2C, &mut p, quirk).expect("seal");
    p[5] = osirose_sum.finalize();
    assert_eq!(p, hex(wire));
    let mut w = hex(wire);
    assert_eq!(rose().decode(S2C, &mut w), Err(FrameError::BadChecksum));
    let mut p2021 = hex(P3_ACCEPT_REPLY);
    p2021[2] = 0xd2;
    let mut w = p2021.clone();
    let fields = HeaderFields {
        command: 0x5d2,
        ..fields
    };
    let mut sum = CRC8.digest();
    sum.update(&fields.logical());
    sum.update(&w[6..]);
    rose().seal_with(S2C, &mut w, quirk).expect("seal");
    w[5] = sum.finalize();
    assert_eq!(w, hex("83 2e 1a ff c2 4d a4 b6 fb d8 bf"), "E2b");
}

#[test]
fn vector_e3_accept_reply_recommended() {
    check_encrypt(
        P3_ACCEPT_REPLY,
        S2C,
        RoseParams::DEFAULT,
        "83 26 1a fc c2 70 a4 b6 fb d8 bf",
    );
    check_decrypt("83 26 1a fc c2 70 a4 b6 fb d8 bf", S2C, P3_ACCEPT_REPLY);
}

#[test]
fn vector_e4_normal_chat() {
    check_encrypt(
        P13_NORMAL_CHAT,
        C2S,
        RoseParams::DEFAULT,
        "02 d9 36 92 44 68 ce a7 ad",
    );
    check_decrypt("02 d9 36 92 44 68 ce a7 ad", C2S, P13_NORMAL_CHAT);
}

#[test]
fn vector_e5_login_req() {
    check_encrypt(P4_LOGIN_REQ, C2S, RoseParams::DEFAULT, E5);
    check_decrypt(E5, C2S, P4_LOGIN_REQ);
}

#[test]
fn plain_vectors() {
    let plain = Codec::new(CodecKind::Plain);
    for (p, wire) in [
        (P1_ALIVE, "06 00 00 05 00 63"),
        (P2_ACCEPT_REQ, "06 00 04 05 00 fd"),
        (P3_ACCEPT_REPLY, "0b 00 d4 05 00 94 02 78 56 34 12"),
        ("08 00 6d 6f 00 00 65 79", "08 00 6d 6f 00 c7 65 79"),
    ] {
        let mut b = hex(p);
        plain.seal(S2C, &mut b).expect("seal");
        assert_eq!(b, hex(wire));
        let h = plain.decode(C2S, &mut b).expect("valid").expect("whole");
        assert_eq!(&b[..h.data_len], &hex(p)[..]);
    }
    assert_eq!(CRC8.checksum(b"123456789"), 0xA1);
}

#[test]
fn incomplete_is_not_an_error() {
    for codec in [rose(), Codec::new(CodecKind::Plain)] {
        let mut w = hex(P4_LOGIN_REQ);
        codec.seal(C2S, &mut w).expect("seal");
        for cut in 0..w.len() {
            let mut part = w[..cut].to_vec();
            assert_eq!(codec.decode(C2S, &mut part), Ok(None), "cut {cut}");
        }
    }
}

#[test]
fn bad_sizes_are_refused_before_the_body() {
    let plain = Codec::new(CodecKind::Plain);
    assert_eq!(
        plain.peek(C2S, &hex("05 00 00 05 00 00")),
        Err(FrameError::BadSize(5))
    );
    assert_eq!(
        plain.peek(C2S, &hex("00 08 00 05 00 00")),
        Err(FrameError::BadSize(2048))
    );
    assert_eq!(
        plain.peek(C2S, &hex("06 00 00 05 01 00")),
        Err(FrameError::BadHeader)
    );
    // rose: a header that decodes to size 0.
    let mut zero = hex("00 00 00 00 00 00");
    let t = RoseTables::default_tables();
    let fields = HeaderFields {
        size: 3,
        command: 0x500,
        atv: 0x100,
        eav: 4,
        ev: 0,
    };
    zero[..5].copy_from_slice(&fields.scramble(C2S, t.header_masks(fields.atv)));
    assert_eq!(rose().peek(C2S, &zero), Err(FrameError::BadSize(3)));
}

#[test]
fn checksum_mismatch_is_detected() {
    let mut w = hex("c2 a8 32 92 45 75");
    assert_eq!(rose().decode(C2S, &mut w), Err(FrameError::BadChecksum));
    let mut w = hex("06 00 00 05 00 64");
    assert_eq!(
        Codec::new(CodecKind::Plain).decode(C2S, &mut w),
        Err(FrameError::BadChecksum)
    );
}

#[test]
fn rose_padding_is_discarded() {
    // A client that pads: 4 extra bytes, ev = 4.
    let mut w = hex(P13_NORMAL_CHAT);
    w.extend_from_slice(&[0xAA; 4]);
    let size = w.len() as u16;
    w[0..2].copy_from_slice(&size.to_le_bytes());
    let params = RoseParams {
        atv: 0x123,
        eav: 7,
        ev: 4,
    };
    rose().seal_with(C2S, &mut w, params).expect("seal");
    let h = rose().decode(C2S, &mut w).expect("valid").expect("whole");
    assert_eq!((h.wire_len, h.data_len), (13, 9));
    assert_eq!(&w[..9], &hex(P13_NORMAL_CHAT)[..]);
}

#[test]
fn stress_does_not_fit_rose() {
    let mut p = hex("08 00 6d 6f 00 00 65 79");
    assert_eq!(
        rose().seal(C2S, &mut p),
        Err(FrameError::CommandOutOfRange(0x6f6d))
    );
}

#[test]
fn round_trip_all_params() {
    let mut body = hex(P4_LOGIN_REQ);
    body.truncate(40);
    body[0] = 40;
    for dir in [C2S, S2C] {
        for atv in [0u16, 1, 0x7FF, 0x400] {
            for eav in [0u8, 15] {
                let mut w = body.clone();
                rose()
                    .seal_with(dir, &mut w, RoseParams { atv, eav, ev: 0 })
                    .expect("seal");
                let h = rose().decode(dir, &mut w).expect("ok").expect("whole");
                assert_eq!(&w[..h.data_len], &body[..]);
            }
        }
    }
}
