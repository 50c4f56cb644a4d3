//! What the bots say: ROSE packets in either codec and either family
//! (through the gateway's own protocol library: osIROSE, or irose with the
//! tables of the connection the bot opens, docs/protocol.md §10.2), the
//! STRESS echo packet, and Redis inline `PING`.

use packet_service::client::{irose_codec, md5_hex};
use packet_service::protocol::packet_type::{Dialect, DialectId, Family, PacketType, STRESS_ID};
use packet_service::protocol::packets::{self, irose, BodyError, Packet};
use packet_service::protocol::{Codec, CodecKind, Direction, FrameError, FrameHeader, HEADER_LEN};

/// The plain-codec STRESS packet of docs/protocol.md §9 D3.
pub const STRESS_PACKET: [u8; 8] = [0x08, 0x00, 0x6d, 0x6f, 0x00, 0xc7, 0x65, 0x79];

/// Redis inline command and its reply.
pub const REDIS_PING: &[u8] = b"PING\r\n";

/// A packet could not be encoded (a bug in the caller, not peer input).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The packet does not fit or has no id in the dialect.
    #[error("cannot encode: {0}")]
    Encode(#[from] packets::EncodeError),
    /// The codec refused the frame.
    #[error("cannot seal: {0}")]
    Frame(#[from] FrameError),
}

/// One packet taken from a connection's input; the plaintext packet is in
/// the scratch buffer passed to [`Wire::next_packet`], or at the start of
/// the input for [`Wire::open_next`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Bytes the packet occupied on the wire (consume this many).
    pub wire_len: usize,
    /// Bytes of plaintext packet, header included.
    pub data_len: usize,
    /// Wire id.
    pub command: u16,
    /// Its name in the dialect, if it has one.
    pub ptype: Option<PacketType>,
}

/// A client's codec and dialect.
#[derive(Copy, Clone)]
pub struct Wire {
    codec: Codec,
    dialect: &'static Dialect,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("codec", &self.codec.kind())
            .field("dialect", &self.dialect.id())
            .finish()
    }
}

impl Wire {
    /// A client speaking `codec` with the `dialect` numbering (irose: on
    /// the login connection's default tables).
    pub fn new(codec: CodecKind, dialect: DialectId) -> Wire {
        let codec = match dialect.family() {
            Family::Osirose => Codec::new(codec),
            Family::Irose => irose_codec(codec, None),
        };
        Wire {
            codec,
            dialect: dialect.dialect(),
        }
    }

    /// The codec.
    pub fn codec(&self) -> CodecKind {
        self.codec.kind()
    }

    /// The wire of the connection the gateway announced `seed` for: irose
    /// uses that seed's tables; osIROSE ignores seeds.
    pub fn next(&self, seed: u32) -> Wire {
        match self.dialect.family() {
            Family::Osirose => *self,
            Family::Irose => Wire {
                codec: irose_codec(self.codec.kind(), Some(seed)),
                dialect: self.dialect,
            },
        }
    }

    /// Whether a connection of this wire starts with ACCEPT_REQ: always
    /// for osIROSE; for irose only the login connection (the char and map
    /// connections start with their join).
    pub fn accepts_first(&self, login: bool) -> bool {
        login || self.dialect.family() == Family::Osirose
    }

    /// The password digest of this family: SHA-256 hex (osIROSE), MD5 hex
    /// (irose).
    pub fn digest(&self, password: &str) -> Vec<u8> {
        match self.dialect.family() {
            Family::Osirose => sha256_hex(password),
            Family::Irose => md5_hex(password),
        }
    }

    /// LOGIN_REQ in this family's layout.
    pub fn login(&self, digest: &[u8], username: &str) -> Result<Vec<u8>, WireError> {
        let neutral = packets::LoginReq {
            digest: digest.to_vec(),
            username: username.to_owned(),
        };
        match self.dialect.family() {
            Family::Osirose => self.frame(&neutral),
            Family::Irose => self.frame(&irose::LoginReq {
                password_md5: neutral.digest,
                username: neutral.username,
            }),
        }
    }

    /// JOIN_SERVER_REQ in this family's layout.
    pub fn join(&self, session_id: u32, digest: &[u8]) -> Result<Vec<u8>, WireError> {
        match self.dialect.family() {
            Family::Osirose => self.frame(&packets::JoinServerReq {
                session_id,
                digest: digest.to_vec(),
            }),
            Family::Irose => self.frame(&irose::JoinServerReq {
                login_token: session_id,
                password_md5: digest.to_vec(),
            }),
        }
    }

    /// LOGIN_REPLY's result and first server id (1 when none is listed).
    pub fn login_reply(&self, body: &[u8]) -> Result<(u8, u32), BodyError> {
        let first = |id: Option<u32>| id.unwrap_or(1);
        Ok(match self.dialect.family() {
            Family::Osirose => {
                let r = packets::LoginReply::decode(body)?;
                (r.result, first(r.servers.first().map(|s| s.id)))
            }
            Family::Irose => {
                let r = irose::LoginReply::decode(body)?;
                (r.result, first(r.servers.first().map(|s| s.id)))
            }
        })
    }

    /// The name of the first character of a CHAR_LIST_REPLY, if any.
    pub fn first_character(&self, body: &[u8]) -> Result<Option<String>, BodyError> {
        Ok(match self.dialect.family() {
            Family::Osirose => packets::CharListReply::decode(body)?
                .characters
                .into_iter()
                .next()
                .map(|c| c.name),
            Family::Irose => irose::CharListReply::decode(body)?
                .characters
                .into_iter()
                .next()
                .map(|c| c.name),
        })
    }

    /// The player's entity id from the zone-join reply (irose; osIROSE
    /// gives it in the map join reply already).
    pub fn zone_entity(&self, body: &[u8]) -> Result<Option<u16>, BodyError> {
        match self.dialect.family() {
            Family::Osirose => Ok(None),
            Family::Irose => Ok(Some(irose::ChangeMapReply::decode(body)?.entity_id)),
        }
    }

    /// A typed client packet, sealed for the wire.
    pub fn frame<P: Packet>(&self, p: &P) -> Result<Vec<u8>, WireError> {
        let mut bytes = packets::packet_to_vec(self.dialect, p)?;
        self.codec.seal(Direction::ClientToServer, &mut bytes)?;
        Ok(bytes)
    }

    /// A STRESS packet with `body` (plain codec only).
    pub fn stress(&self, body: &[u8]) -> Result<Vec<u8>, WireError> {
        let size = HEADER_LEN + body.len();
        let mut bytes = vec![0u8; size];
        packet_service::protocol::codec::write_plain_header(&mut bytes, size, STRESS_ID);
        bytes[HEADER_LEN..].copy_from_slice(body);
        self.codec.seal(Direction::ClientToServer, &mut bytes)?;
        Ok(bytes)
    }

    /// Takes the next whole server packet from `input`, if there is one,
    /// leaving its plaintext (header included) in `scratch`.
    ///
    /// `Ok(None)`: more bytes are needed. An error means the gateway sent
    /// something its own codec refuses.
    pub fn next_packet(
        &self,
        input: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<Option<Frame>, FrameError> {
        let Some(h) = self.codec.peek(Direction::ServerToClient, input)? else {
            return Ok(None);
        };
        let Some(wire) = input.get(..h.wire_len) else {
            return Ok(None);
        };
        scratch.clear();
        scratch.extend_from_slice(wire);
        self.codec.open(&h, scratch)?;
        scratch.truncate(h.data_len);
        Ok(Some(self.taken(&h)))
    }

    /// [`Wire::next_packet`] decoded in place: the plaintext packet is left
    /// at the start of `input` (a fan-out bot reads millions a second, and
    /// copying each cost more than checking it).
    pub fn open_next(&self, input: &mut [u8]) -> Result<Option<Frame>, FrameError> {
        let header = self.codec.decode(Direction::ServerToClient, input)?;
        Ok(header.map(|h| self.taken(&h)))
    }

    fn taken(&self, h: &FrameHeader) -> Frame {
        Frame {
            wire_len: h.wire_len,
            data_len: h.data_len,
            command: h.command,
            ptype: self.dialect.server_packet(h.command),
        }
    }
}

/// Lowercase hex SHA-256 of a password: the 64-byte digest of LOGIN_REQ.
pub fn sha256_hex(password: &str) -> Vec<u8> {
    use sha2::Digest;
    let d = sha2::Sha256::digest(password.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    d.iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .collect()
}

/// Counts the complete `+PONG\r\n`-style simple-string replies at the start
/// of `input`; returns (replies, bytes consumed). An error reply (`-…`) or
/// anything else is an error.
pub fn redis_simple_replies(input: &[u8]) -> Result<(usize, usize), String> {
    let mut replies = 0;
    let mut used = 0;
    while let Some(end) = find_crlf(&input[used..]) {
        let line = &input[used..used + end];
        if line.first() != Some(&b'+') {
            return Err(format!(
                "unexpected reply from redis: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(64)])
            ));
        }
        replies += 1;
        used += end + 2;
    }
    Ok((replies, used))
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// The send time a chat line of this load generator carries (`lg <nanos>`),
/// read straight from a NORMAL_CHAT body (u16 speaker, NUL-terminated
/// text): a fan-out bot reads millions a second, and decoding each into a
/// `String` cost the load generator a tenth of its time. `None` for any
/// other body.
pub fn chat_stamp(body: &[u8]) -> Option<u64> {
    // One pass to the terminator: digits only, at least one.
    let digits = body.get(2..)?.strip_prefix(b"lg ")?;
    let (&first, rest) = digits.split_first()?;
    let mut n = u64::from(first.checked_sub(b'0').filter(|d| *d < 10)?);
    for &b in rest {
        if b == 0 {
            return Some(n);
        }
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        n = n.checked_mul(10)?.checked_add(digit)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_stamps_are_read_as_the_decoder_reads_them() {
        use packet_service::protocol::packets::{NormalChatBroadcast, Packet};
        let body = |message: &str| {
            let line = NormalChatBroadcast {
                char_id: 9,
                message: message.into(),
            };
            let dialect = DialectId::Osirose.dialect();
            let bytes =
                packet_service::protocol::packets::packet_to_vec(dialect, &line).expect("encodes");
            bytes[HEADER_LEN..].to_vec()
        };
        assert_eq!(
            chat_stamp(&body("lg 1234567890123")),
            Some(1_234_567_890_123)
        );
        assert_eq!(chat_stamp(&body("lg 0")), Some(0));
        for other in [
            "hello",
            "lg ",
            "lg 12a",
            "lg 99999999999999999999999",
            "xlg 5",
        ] {
            assert_eq!(chat_stamp(&body(other)), None, "{other:?}");
            // Such a line is left to the full decoder, which reads it.
            assert_eq!(
                NormalChatBroadcast::decode(&body(other))
                    .expect("decodes")
                    .message,
                other
            );
        }
        assert_eq!(chat_stamp(b"\x01"), None, "shorter than the speaker");
        assert_eq!(chat_stamp(b"\x01\x00lg 5"), None, "no terminator");
    }

    #[test]
    fn the_stress_packet_matches_protocol_vector() {
        let wire = Wire::new(CodecKind::Plain, DialectId::Osirose);
        assert_eq!(wire.stress(b"ey").expect("seals"), STRESS_PACKET);
    }

    #[test]
    fn frames_round_trip_through_next_packet() {
        // A client packet read back with the server-side view of the codec
        // is not possible for `rose` (directions differ), so check `plain`.
        let wire = Wire::new(CodecKind::Plain, DialectId::Osirose);
        let mut input = wire.stress(b"abc").expect("seals");
        input.extend_from_slice(&STRESS_PACKET[..5]);
        let mut scratch = Vec::new();
        let f = wire
            .next_packet(&input, &mut scratch)
            .expect("valid")
            .expect("whole");
        assert_eq!((f.wire_len, f.command), (9, STRESS_ID));
        assert_eq!(&scratch[HEADER_LEN..], b"abc");
        assert_eq!(
            wire.next_packet(&input[9..], &mut scratch).expect("valid"),
            None
        );
        // In place: the same frame, its plaintext where it lay.
        let g = wire.open_next(&mut input).expect("valid").expect("whole");
        assert_eq!(g, f);
        assert_eq!(&input[HEADER_LEN..g.data_len], b"abc");
        assert_eq!(wire.open_next(&mut input[9..]).expect("valid"), None);
    }

    #[test]
    fn a_corrupted_checksum_is_an_error() {
        let wire = Wire::new(CodecKind::Plain, DialectId::Osirose);
        let mut bad = STRESS_PACKET;
        bad[5] ^= 1;
        assert!(wire.next_packet(&bad, &mut Vec::new()).is_err());
        assert!(wire.open_next(&mut bad).is_err());
    }

    #[test]
    fn sha256_hex_of_admin() {
        assert_eq!(
            sha256_hex("admin"),
            b"8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"
        );
    }

    #[test]
    fn redis_replies_are_counted_and_errors_refused() {
        assert_eq!(redis_simple_replies(b"+PONG\r\n+PONG\r\n+PO"), Ok((2, 14)));
        assert_eq!(redis_simple_replies(b"+PO"), Ok((0, 0)));
        assert!(redis_simple_replies(b"-ERR max clients\r\n").is_err());
    }
}
