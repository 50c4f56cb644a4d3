//! The irose login connection and the join of the char and map connections
//! (docs/protocol.md §10.5, C.1, C.2, C.5): the accept reply with its
//! sequence id, the 32-byte MD5 digests and the server list without test
//! bytes.

use std::fmt;

use super::super::login::Redacted;
use super::super::{BodyError, DigestKind, Element, LoginReplyOf, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// Length of the MD5 digest field of [`LoginReq`] and [`JoinServerReq`].
pub const MD5_LEN: usize = 32;

/// Zero bytes after the sequence id of [`AcceptReply`] (meaning unknown,
/// docs/protocol.md §10.7; the client's reader requires them).
const ACCEPT_PADDING: usize = 24;

/// The sequence id rose-offline puts in the accept and join replies
/// (its meaning is unknown, docs/protocol.md §10.7).
pub const PACKET_SEQUENCE: u32 = 123;

/// The pay flags rose-offline announces to an accepted client.
pub const PAY_FLAGS: u32 = 0xFF;

/// Writes `bytes` as a `fix[N]` field: cut to `N`, padded with zeros.
pub(super) fn write_fixed<const N: usize>(w: &mut Writer<'_>, bytes: &[u8]) {
    let mut field = [0u8; N];
    let n = bytes.len().min(N);
    field[..n].copy_from_slice(&bytes[..n]);
    w.bytes(&field);
}

/// Reads a 32-byte MD5 hex digest; anything but 32 hex digits is
/// [`BodyError::BadDigest`] (docs/protocol.md §9 D4).
fn read_md5(r: &mut Reader<'_>) -> Result<Vec<u8>, BodyError> {
    let digest = r.fixed(MD5_LEN).map_err(|_| BodyError::BadDigest)?;
    match DigestKind::of(digest) {
        Some(DigestKind::Md5Hex) => Ok(digest.to_vec()),
        _ => Err(BodyError::BadDigest),
    }
}

/// 0x7FF, the answer to the connect request (35 bytes): status, sequence
/// id, then 24 zero bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptReply {
    /// 1 CONNECT, 2 ACCEPTED, 3 DISCONNECT, 4 SERVER_DEAD.
    pub status: u8,
    /// rose-offline: [`PACKET_SEQUENCE`].
    pub packet_sequence_id: u32,
}

impl Packet for AcceptReply {
    const TYPE: PacketType = PacketType::PAKSS_ACCEPT_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let reply = AcceptReply {
            status: r.u8()?,
            packet_sequence_id: r.u32()?,
        };
        r.fixed(ACCEPT_PADDING)?;
        Ok(reply)
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.status);
        w.u32(self.packet_sequence_id);
        w.bytes(&[0; ACCEPT_PADDING]);
    }
}

impl From<&super::super::AcceptReply> for AcceptReply {
    fn from(r: &super::super::AcceptReply) -> AcceptReply {
        AcceptReply {
            status: r.result,
            packet_sequence_id: r.rand_value,
        }
    }
}

/// 0x708 from the client: MD5 hex digest `fix[32]` · username cstr.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LoginReq {
    /// 32 hex digits after decoding; encoding cuts or pads to 32.
    pub password_md5: Vec<u8>,
    /// Account name.
    pub username: String,
}

impl fmt::Debug for LoginReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("irose::LoginReq")
            .field("password_md5", &Redacted(self.password_md5.len()))
            .field("username", &self.username)
            .finish()
    }
}

impl Packet for LoginReq {
    const TYPE: PacketType = PacketType::PAKCS_LOGIN_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(LoginReq {
            password_md5: read_md5(&mut r)?,
            username: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        write_fixed::<MD5_LEN>(w, &self.password_md5);
        w.cstr(&self.username);
    }
}

impl From<LoginReq> for super::super::LoginReq {
    fn from(r: LoginReq) -> super::super::LoginReq {
        super::super::LoginReq {
            digest: r.password_md5,
            username: r.username,
        }
    }
}

/// One world server in [`LoginReply`]: name · id, no test byte. A name
/// starting with '@' marks a test server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Display name.
    pub name: String,
    /// Server id, echoed back by the client.
    pub id: u32,
}

impl Element for ServerInfo {
    fn decode(r: &mut Reader<'_>) -> Result<ServerInfo, BodyError> {
        Ok(ServerInfo {
            name: r.cstr()?,
            id: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.cstr(&self.name);
        w.u32(self.id);
    }
}

/// 0x708 to the client: result · rights (rose-offline: 0x800 on OK) · pay
/// type (0xFF on OK) · servers to the end (only on OK).
pub type LoginReply = LoginReplyOf<ServerInfo>;

impl From<&super::super::LoginReply> for LoginReply {
    /// The osIROSE test byte becomes the '@' prefix of a test server's name.
    fn from(r: &super::super::LoginReply) -> LoginReply {
        let servers = r
            .servers
            .iter()
            .map(|s| ServerInfo {
                name: if s.test == super::super::ServerInfo::TEST {
                    format!("@{}", s.name)
                } else {
                    s.name.clone()
                },
                id: s.id,
            })
            .collect();
        LoginReplyOf {
            result: r.result,
            right: r.right,
            pay_type: r.pay_type,
            servers,
        }
    }
}

/// 0x70B, the first packet of the char and map connections (42 bytes):
/// token · MD5 hex digest `fix[32]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JoinServerReq {
    /// From 0x70A (char connection) or 0x711 (map connection).
    pub login_token: u32,
    /// 32 hex digits after decoding; encoding cuts or pads to 32.
    pub password_md5: Vec<u8>,
}

impl fmt::Debug for JoinServerReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("irose::JoinServerReq")
            .field("login_token", &self.login_token)
            .field("password_md5", &Redacted(self.password_md5.len()))
            .finish()
    }
}

impl Packet for JoinServerReq {
    const TYPE: PacketType = PacketType::PAKCS_JOIN_SERVER_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(JoinServerReq {
            login_token: r.u32()?,
            password_md5: read_md5(&mut r)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.login_token);
        write_fixed::<MD5_LEN>(w, &self.password_md5);
    }
}

impl From<JoinServerReq> for super::super::JoinServerReq {
    fn from(r: JoinServerReq) -> super::super::JoinServerReq {
        super::super::JoinServerReq {
            session_id: r.login_token,
            digest: r.password_md5,
        }
    }
}
