//! Session-dependent fields, and the comparison of captured and live replies.
//!
//! A live server issues its own session ids, random values and clock
//! readings, so these fields are masked when comparing (see
//! [`server_fields`]): session ids in `PAKLC_SRV_SELECT_REPLY` and
//! `PAKCC_SWITCH_SERVER`, `PAKSC_JOIN_SERVER_REPLY.id`,
//! `PAKSS_ACCEPT_REPLY.rand_value` and the time of
//! `PAKSC_SCREEN_SHOT_TIME_REPLY`. The address a server advertises for the
//! next connection (ip and port in the first two) depends on where the
//! replayed server listens rather than on its behaviour, so it is masked too.
//!
//! Session ids also have to flow forward: [`session_ids`] reads them from
//! replies (to map captured → live) and [`rewrite_session_id`] puts the live
//! one into a client's `PAKCS_JOIN_SERVER_REQ`.

use std::fmt;
use std::ops::Range;

use packet_service::protocol::packet_type::Dialect;
use packet_service::protocol::packets::{JoinServerReply, Packet, SrvSelectReply, SwitchServer};
use packet_service::protocol::{FrameError, PacketType, HEADER_LEN};

use crate::decode::{packet_name, Frame};
use crate::reassembly::Side;

/// One named part of a plaintext packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Field name as in the protocol document.
    pub name: &'static str,
    /// Byte range in the plaintext packet (header included).
    pub range: Range<usize>,
    /// Ignored by the comparison.
    pub masked: bool,
}

/// End (exclusive, terminator included) of the C string at `start`.
fn cstr_end(p: &[u8], start: usize) -> Option<usize> {
    let rest = p.get(start..)?;
    rest.iter().position(|&b| b == 0).map(|n| start + n + 1)
}

/// Splits a server packet into fields when it has session-dependent ones.
///
/// Returns `None` for packets compared byte for byte, and for packets too
/// short to hold their layout (those are compared byte for byte as well).
pub fn server_fields(t: PacketType, p: &[u8]) -> Option<Vec<Field>> {
    let f = |name, range: Range<usize>, masked| Field {
        name,
        range,
        masked,
    };
    let h = HEADER_LEN;
    let fields = match t {
        PacketType::PAKLC_SRV_SELECT_REPLY => {
            let ip_end = cstr_end(p, h + 9)?;
            vec![
                f("result", h..h + 1, false),
                f("session_id", h + 1..h + 5, true),
                f("crypt_val", h + 5..h + 9, false),
                f("ip", h + 9..ip_end, true),
                f("port", ip_end..ip_end + 2, true),
            ]
        }
        PacketType::PAKCC_SWITCH_SERVER => {
            let ip_end = cstr_end(p, h + 10)?;
            vec![
                f("port", h..h + 2, true),
                f("session_id", h + 2..h + 6, true),
                f("session_seed", h + 6..h + 10, false),
                f("ip", h + 10..ip_end, true),
            ]
        }
        PacketType::PAKSC_JOIN_SERVER_REPLY => vec![
            f("result", h..h + 1, false),
            f("id", h + 1..h + 5, true),
            f("pay_flag", h + 5..h + 9, false),
        ],
        PacketType::PAKSS_ACCEPT_REPLY => vec![
            f("result", h..h + 1, false),
            f("rand_value", h + 1..h + 5, true),
        ],
        PacketType::PAKSC_SCREEN_SHOT_TIME_REPLY => vec![f("time", h..h + 6, true)],
        _ => return None,
    };
    let end = fields.last().map_or(h, |l| l.range.end);
    if end > p.len() {
        return None;
    }
    let mut all = vec![f("header", 0..h, false)];
    all.extend(fields);
    if end < p.len() {
        all.push(f("trailing bytes", end..p.len(), false));
    }
    Some(all)
}

fn read_u32(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where a reply carries a session-like id the client may send back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// A session id (SRV_SELECT_REPLY, SWITCH_SERVER).
    Session,
    /// JOIN_SERVER_REPLY.id (a timestamp or entity id in osIROSE).
    JoinReply,
}

/// The session-like id a server packet carries, if any (read with the
/// typed packets, so a malformed reply yields nothing).
pub fn session_ids(t: PacketType, p: &[u8]) -> Option<(IdKind, u32)> {
    let body = p.get(HEADER_LEN..)?;
    match t {
        PacketType::PAKLC_SRV_SELECT_REPLY => Some((
            IdKind::Session,
            SrvSelectReply::decode(body).ok()?.session_id,
        )),
        PacketType::PAKCC_SWITCH_SERVER => {
            Some((IdKind::Session, SwitchServer::decode(body).ok()?.session_id))
        }
        PacketType::PAKSC_JOIN_SERVER_REPLY => {
            Some((IdKind::JoinReply, JoinServerReply::decode(body).ok()?.id))
        }
        _ => None,
    }
}

/// Replaces the session id of a client `JOIN_SERVER_REQ` (or its token
/// variant) using `map`. Returns true when the packet changed.
///
/// Only the four id bytes are patched, so everything else (an odd digest a
/// real client sent, trailing bytes) stays as captured.
pub fn rewrite_session_id(t: PacketType, p: &mut [u8], map: impl Fn(u32) -> Option<u32>) -> bool {
    if !matches!(
        t,
        PacketType::PAKCS_JOIN_SERVER_REQ | PacketType::PAKCS_JOIN_SERVER_TOKEN_REQ
    ) {
        return false;
    }
    let Some(old) = read_u32(p, HEADER_LEN) else {
        return false;
    };
    match map(old) {
        Some(new) if new != old => {
            p[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&new.to_le_bytes());
            true
        }
        _ => false,
    }
}

/// The outcome of comparing one connection's server packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same types, same payloads once masked.
    Match,
    /// The sequence of packet types differs at `index` (`None`: no packet).
    TypeDiffers {
        /// 0-based position among the connection's server packets.
        index: usize,
        /// Captured type name.
        expected: Option<String>,
        /// Live type name.
        got: Option<String>,
    },
    /// Same type, different payload.
    BodyDiffers {
        /// 0-based position among the connection's server packets.
        index: usize,
        /// Packet type name.
        packet: String,
        /// Field name, or `byte N` for packets compared byte for byte.
        field: String,
        /// Captured bytes of that field (bounded).
        expected: Vec<u8>,
        /// Live bytes (bounded).
        got: Vec<u8>,
    },
    /// Same type, but one side could not be decrypted.
    Undecodable {
        /// 0-based position.
        index: usize,
        /// Packet type name.
        packet: String,
        /// Captured decode error, if any.
        expected: Option<FrameError>,
        /// Live decode error, if any.
        got: Option<FrameError>,
    },
}

impl Verdict {
    /// True for [`Verdict::Match`].
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Match)
    }
}

/// Bytes shown per side of a byte difference.
pub const DIFF_BYTES: usize = 16;

/// Lowercase hex, space separated.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_none = |n: &Option<String>| n.clone().unwrap_or_else(|| "nothing".into());
        match self {
            Verdict::Match => f.write_str("OK"),
            Verdict::TypeDiffers {
                index,
                expected,
                got,
            } => write!(
                f,
                "server packet #{index}: expected {} got {}",
                or_none(expected),
                or_none(got)
            ),
            Verdict::BodyDiffers {
                index,
                packet,
                field,
                expected,
                got,
            } => write!(
                f,
                "server packet #{index} {packet}: {field} differs: expected [{}] got [{}]",
                hex(expected),
                hex(got)
            ),
            Verdict::Undecodable {
                index,
                packet,
                expected,
                got,
            } => {
                let e = |x: &Option<FrameError>| x.map_or("ok".to_string(), |e| e.to_string());
                write!(
                    f,
                    "server packet #{index} {packet}: captured {}, live {}",
                    e(expected),
                    e(got)
                )
            }
        }
    }
}

/// Compares captured (`expected`) and live (`got`) server packets of one
/// connection: first the sequence of types, then the payloads.
pub fn compare(dialect: &Dialect, expected: &[Frame], got: &[Frame]) -> Verdict {
    let name = |fr: &Frame| fr.name(dialect, Side::Server);
    let n = expected.len().max(got.len());
    for index in 0..n {
        let (e, g) = (expected.get(index), got.get(index));
        if e.map(|f| f.command) != g.map(|f| f.command) {
            return Verdict::TypeDiffers {
                index,
                expected: e.map(name),
                got: g.map(name),
            };
        }
    }
    for (index, (e, g)) in expected.iter().zip(got).enumerate() {
        let packet = name(e);
        let (ep, gp) = match (&e.plain, &g.plain) {
            (Ok(ep), Ok(gp)) => (ep, gp),
            (Err(a), Err(b)) if a == b => continue,
            (a, b) => {
                return Verdict::Undecodable {
                    index,
                    packet,
                    expected: a.as_ref().err().copied(),
                    got: b.as_ref().err().copied(),
                }
            }
        };
        if let Some(v) = compare_bodies(dialect, index, packet, e.command, ep, gp) {
            return v;
        }
    }
    Verdict::Match
}

fn bounded(p: &[u8], r: Range<usize>) -> Vec<u8> {
    let start = r.start.min(p.len());
    let end = r.end.min(p.len()).min(start + DIFF_BYTES);
    p[start..end].to_vec()
}

fn compare_bodies(
    dialect: &Dialect,
    index: usize,
    packet: String,
    command: Option<u16>,
    ep: &[u8],
    gp: &[u8],
) -> Option<Verdict> {
    let t = command.and_then(|c| crate::decode::packet_type(dialect, Side::Server, c));
    let layouts = t.and_then(|t| Some((server_fields(t, ep)?, server_fields(t, gp)?)));
    if let Some((ef, gf)) = layouts {
        for (a, b) in ef.iter().zip(&gf) {
            if a.name != b.name {
                break;
            }
            if a.masked || ep.get(a.range.clone()) == gp.get(b.range.clone()) {
                continue;
            }
            return Some(Verdict::BodyDiffers {
                index,
                packet,
                field: a.name.to_string(),
                expected: bounded(ep, a.range.clone()),
                got: bounded(gp, b.range.clone()),
            });
        }
        if ef.len() == gf.len() {
            return None;
        }
    }
    if ep == gp {
        return None;
    }
    let at = ep
        .iter()
        .zip(gp)
        .position(|(a, b)| a != b)
        .unwrap_or(ep.len().min(gp.len()));
    let field = if at < HEADER_LEN {
        "header".to_string()
    } else {
        format!("byte {at}")
    };
    Some(Verdict::BodyDiffers {
        index,
        packet,
        field,
        expected: bounded(ep, at..ep.len()),
        got: bounded(gp, at..gp.len()),
    })
}

/// Names for a list of frames (for messages and tests).
pub fn names(dialect: &Dialect, side: Side, frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            f.command
                .map_or("?".into(), |c| packet_name(dialect, side, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_service::protocol::DialectId;

    fn frame(plain: Vec<u8>) -> Frame {
        Frame {
            command: Some(u16::from_le_bytes([plain[2], plain[3]])),
            wire: plain.clone(),
            plain: Ok(plain),
        }
    }

    fn packet(id: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 6];
        p[0..2].copy_from_slice(&((6 + body.len()) as u16).to_le_bytes());
        p[2..4].copy_from_slice(&id.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    fn srv_select(session: u32, ip: &str, port: u16, result: u8) -> Vec<u8> {
        let mut body = vec![result];
        body.extend(session.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        body.extend(ip.as_bytes());
        body.push(0);
        body.extend(port.to_le_bytes());
        packet(0x50E, &body)
    }

    fn d() -> &'static Dialect {
        DialectId::Osirose.dialect()
    }

    #[test]
    fn replies_differing_only_in_session_id_match() {
        let a = srv_select(1_700_000_000, "127.0.0.1", 29000, 0);
        let b = srv_select(0xDEAD_BEEF, "127.0.0.1", 29000, 0);
        assert_eq!(compare(d(), &[frame(a)], &[frame(b)]), Verdict::Match);
    }

    #[test]
    fn advertised_endpoint_and_random_values_are_masked() {
        let a = srv_select(1, "127.0.0.1", 29000, 0);
        let b = srv_select(2, "localhost", 41234, 0);
        let accept_a = packet(0x5D4, &[2, 1, 2, 3, 4]);
        let accept_b = packet(0x5D4, &[2, 9, 9, 9, 9]);
        let join_a = packet(0x511, &[0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let join_b = packet(0x511, &[0, 7, 0, 0, 0, 0, 0, 0, 0]);
        let time_a = packet(0x5D2, &[0xEA, 7, 11, 29, 13, 28]);
        let time_b = packet(0x5D2, &[0xEB, 7, 1, 2, 3, 4]);
        let e = [frame(accept_a), frame(a), frame(join_a), frame(time_a)];
        let g = [frame(accept_b), frame(b), frame(join_b), frame(time_b)];
        assert_eq!(compare(d(), &e, &g), Verdict::Match);
    }

    #[test]
    fn a_different_result_is_reported_by_field() {
        let a = srv_select(1, "127.0.0.1", 29000, 0);
        let b = srv_select(2, "127.0.0.1", 29000, 1);
        let v = compare(d(), &[frame(a)], &[frame(b)]);
        assert_eq!(
            v,
            Verdict::BodyDiffers {
                index: 0,
                packet: "PAKLC_SRV_SELECT_REPLY".into(),
                field: "result".into(),
                expected: vec![0],
                got: vec![1],
            }
        );
        assert!(v.to_string().contains("result differs"), "{v}");
    }

    #[test]
    fn a_different_type_is_reported_first() {
        let accept = packet(0x5D4, &[2, 1, 2, 3, 4]);
        let chat = packet(0x548, &[5, 0, b'h', b'i', 0]);
        let chat2 = packet(0x548, &[5, 0, b'y', b'o', 0]);
        // Types differ at #1 although bodies differ at #0 too.
        let v = compare(
            d(),
            &[frame(chat2.clone()), frame(accept.clone())],
            &[frame(chat.clone()), frame(chat.clone())],
        );
        assert_eq!(
            v,
            Verdict::TypeDiffers {
                index: 1,
                expected: Some("PAKSS_ACCEPT_REPLY".into()),
                got: Some("PAKWC_NORMAL_CHAT".into()),
            }
        );
        let missing = compare(d(), &[frame(accept.clone())], &[]);
        assert_eq!(
            missing.to_string(),
            "server packet #0: expected PAKSS_ACCEPT_REPLY got nothing"
        );
        let extra = compare(d(), &[], &[frame(accept)]);
        assert!(!extra.is_match());
    }

    #[test]
    fn a_different_body_is_reported_by_offset() {
        let v = compare(
            d(),
            &[frame(packet(0x548, &[5, 0, b'h', b'i', 0]))],
            &[frame(packet(0x548, &[5, 0, b'h', b'o', 0]))],
        );
        assert_eq!(
            v,
            Verdict::BodyDiffers {
                index: 0,
                packet: "PAKWC_NORMAL_CHAT".into(),
                field: "byte 9".into(),
                expected: vec![b'i', 0],
                got: vec![b'o', 0],
            }
        );
        // A masked packet with extra bytes is still compared on them.
        let a = packet(0x5D4, &[2, 1, 2, 3, 4]);
        let b = packet(0x5D4, &[2, 1, 2, 3, 4, 0xFF]);
        assert!(!compare(d(), &[frame(a)], &[frame(b)]).is_match());
    }

    #[test]
    fn checksum_failures_are_reported() {
        let mut bad = frame(packet(0x5D4, &[2, 1, 2, 3, 4]));
        let good = bad.clone();
        bad.plain = Err(FrameError::BadChecksum);
        let v = compare(d(), &[good], &[bad]);
        assert!(matches!(
            v,
            Verdict::Undecodable {
                got: Some(FrameError::BadChecksum),
                ..
            }
        ));
    }

    /// The masked byte ranges must sit where the typed packets put the fields.
    #[test]
    fn masks_follow_the_typed_layouts() {
        use packet_service::protocol::packets::{write_packet, AcceptReply, ScreenShotTimeReply};
        fn encoded<P: Packet>(p: &P) -> Vec<u8> {
            let mut out = vec![0u8; 2047];
            let n = write_packet(d(), p, &mut out).expect("encode");
            out.truncate(n);
            out
        }
        fn field<'a>(t: PacketType, p: &'a [u8], name: &str) -> &'a [u8] {
            let fields = server_fields(t, p).expect("layout");
            let f = fields.iter().find(|f| f.name == name).expect("field");
            assert!(f.masked, "{name} is masked");
            &p[f.range.clone()]
        }
        let select = encoded(&SrvSelectReply {
            result: 0,
            session_id: 0x0A0B_0C0D,
            crypt_val: 7,
            ip: "10.0.0.1".into(),
            port: 0x1234,
        });
        let t = PacketType::PAKLC_SRV_SELECT_REPLY;
        assert_eq!(
            field(t, &select, "session_id"),
            0x0A0B_0C0Du32.to_le_bytes()
        );
        assert_eq!(field(t, &select, "ip"), b"10.0.0.1\0");
        assert_eq!(field(t, &select, "port"), 0x1234u16.to_le_bytes());
        let switch = encoded(&SwitchServer {
            port: 0x4321,
            session_id: 0x0102_0304,
            session_seed: 9,
            ip: "127.0.0.1".into(),
        });
        let t = PacketType::PAKCC_SWITCH_SERVER;
        assert_eq!(field(t, &switch, "port"), 0x4321u16.to_le_bytes());
        assert_eq!(
            field(t, &switch, "session_id"),
            0x0102_0304u32.to_le_bytes()
        );
        assert_eq!(field(t, &switch, "ip"), b"127.0.0.1\0");
        let join = encoded(&JoinServerReply {
            result: 0,
            id: 0x0506_0708,
            pay_flag: 0,
        });
        let t = PacketType::PAKSC_JOIN_SERVER_REPLY;
        assert_eq!(field(t, &join, "id"), 0x0506_0708u32.to_le_bytes());
        let accept = encoded(&AcceptReply {
            result: 2,
            rand_value: 0x1122_3344,
        });
        let t = PacketType::PAKSS_ACCEPT_REPLY;
        assert_eq!(
            field(t, &accept, "rand_value"),
            0x1122_3344u32.to_le_bytes()
        );
        let time = encoded(&ScreenShotTimeReply {
            year: 2026,
            month: 11,
            day: 29,
            hour: 13,
            minute: 28,
        });
        let t = PacketType::PAKSC_SCREEN_SHOT_TIME_REPLY;
        assert_eq!(field(t, &time, "time"), &time[6..]);
        assert_eq!(
            server_fields(t, &time).map(|f| f.len()),
            Some(2),
            "header + time"
        );
    }

    #[test]
    fn session_ids_are_read_and_rewritten() {
        let select = srv_select(0x1122_3344, "127.0.0.1", 29000, 0);
        assert_eq!(
            session_ids(PacketType::PAKLC_SRV_SELECT_REPLY, &select),
            Some((IdKind::Session, 0x1122_3344))
        );
        let mut switch = packet(0x515, &[0x10, 0x72, 4, 3, 2, 1, 0, 0, 0, 0, b'a', 0]);
        assert_eq!(
            session_ids(PacketType::PAKCC_SWITCH_SERVER, &switch),
            Some((IdKind::Session, 0x0102_0304))
        );
        assert!(!rewrite_session_id(
            PacketType::PAKCC_SWITCH_SERVER,
            &mut switch,
            |_| Some(9)
        ));
        let mut join = packet(0x50F, &[4, 3, 2, 1, b'x']);
        let map = |old| (old == 0x0102_0304).then_some(0xAABB_CCDD);
        assert!(rewrite_session_id(
            PacketType::PAKCS_JOIN_SERVER_REQ,
            &mut join,
            map
        ));
        assert_eq!(&join[6..11], &[0xDD, 0xCC, 0xBB, 0xAA, b'x']);
        assert!(!rewrite_session_id(
            PacketType::PAKCS_JOIN_SERVER_REQ,
            &mut join,
            map
        ));
    }
}
