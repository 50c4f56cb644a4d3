//! Login, channel list, server select and join (docs/protocol.md §3.2–§3.5,
//! docs/protocol.md §9 D4).
//!
//! Password digests are opaque hex text forwarded to the auth service. The
//! `Debug` impls of the packets that carry one print only its kind, so a
//! digest cannot reach a log line by accident (docs/architecture.md §13.10).

use std::fmt;

use super::{write_counted, BodyError, Element, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// Which of the two accepted password digests a client sent
/// (docs/protocol.md §9 D4). The one digest kind of the project: the
/// packets, the connection's calls and the embedded backend's account store
/// all use it (`src/rpc/convert.rs` maps it to the auth contract's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestKind {
    /// 64 hex digits: SHA-256 (the osIROSE XML layout).
    Sha256Hex,
    /// 32 hex digits: MD5 (osIROSE's bot and tests, the real client).
    Md5Hex,
}

impl DigestKind {
    /// Length of the digest on the wire: its number of hex digits.
    pub const fn wire_len(self) -> usize {
        match self {
            DigestKind::Sha256Hex => 64,
            DigestKind::Md5Hex => 32,
        }
    }

    /// The kind of a whole digest: 64 or 32 bytes, all hex digits.
    pub fn of(digest: &[u8]) -> Option<DigestKind> {
        let kind = match digest.len() {
            64 => DigestKind::Sha256Hex,
            32 => DigestKind::Md5Hex,
            _ => return None,
        };
        all_hex(digest).then_some(kind)
    }

    /// The kind a digest of this length has. Decoded packets always hold 32
    /// or 64 bytes; anything but 64 is reported as [`DigestKind::Md5Hex`].
    fn of_len(len: usize) -> DigestKind {
        if len == DigestKind::Sha256Hex.wire_len() {
            DigestKind::Sha256Hex
        } else {
            DigestKind::Md5Hex
        }
    }
}

fn all_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

/// Formats a digest without its content.
pub(super) struct Redacted(pub(super) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

/// PAKCS_LOGIN_REQ: digest (32 or 64 bytes, no terminator) · username cstr.
///
/// Decoding follows docs/protocol.md §9 D4 exactly: the 64-byte form if the
/// body is at least 65 bytes and its first 64 bytes are hex digits, else the
/// 32-byte form if its first 32 bytes are hex digits, else
/// [`BodyError::BadDigest`]. Encoding writes `digest` as given, then the
/// username.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LoginReq {
    /// Hex digest text; 32 or 64 bytes after decoding.
    pub digest: Vec<u8>,
    /// Account name.
    pub username: String,
}

impl LoginReq {
    /// Which digest form the client used.
    pub fn digest_kind(&self) -> DigestKind {
        DigestKind::of_len(self.digest.len())
    }
}

impl fmt::Debug for LoginReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginReq")
            .field("digest", &Redacted(self.digest.len()))
            .field("username", &self.username)
            .finish()
    }
}

impl Packet for LoginReq {
    const TYPE: PacketType = PacketType::PAKCS_LOGIN_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let long = DigestKind::Sha256Hex.wire_len();
        let short = DigestKind::Md5Hex.wire_len();
        let digest_len = if body.len() > long && body.get(..long).is_some_and(all_hex) {
            long
        } else if body.get(..short).is_some_and(all_hex) {
            short
        } else {
            return Err(BodyError::BadDigest);
        };
        let mut r = Reader::new(body);
        let digest = r.fixed(digest_len)?.to_vec();
        Ok(LoginReq {
            digest,
            username: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(&self.digest);
        w.cstr(&self.username);
    }
}

/// The result codes of [`LoginReply`] (docs/protocol.md §3.2).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LoginResult {
    Ok = 0,
    Failed = 1,
    UnknownAccount = 2,
    InvalidPassword = 3,
    AlreadyLoggedIn = 4,
    RefusedAccount = 5,
    NeedCharge = 6,
    NoRightToConnect = 7,
    TooManyUsers = 8,
    NoName = 9,
    InvalidVersion = 10,
    OutsideRegion = 11,
}

impl LoginResult {
    const ALL: [LoginResult; 12] = [
        LoginResult::Ok,
        LoginResult::Failed,
        LoginResult::UnknownAccount,
        LoginResult::InvalidPassword,
        LoginResult::AlreadyLoggedIn,
        LoginResult::RefusedAccount,
        LoginResult::NeedCharge,
        LoginResult::NoRightToConnect,
        LoginResult::TooManyUsers,
        LoginResult::NoName,
        LoginResult::InvalidVersion,
        LoginResult::OutsideRegion,
    ];

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The result with this wire code, if any.
    pub fn from_code(code: u8) -> Option<LoginResult> {
        LoginResult::ALL.get(usize::from(code)).copied()
    }
}

impl From<LoginResult> for u8 {
    fn from(r: LoginResult) -> u8 {
        r.code()
    }
}

/// One character server in [`LoginReply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// [`ServerInfo::TEST`] or [`ServerInfo::NORMAL`].
    pub test: u8,
    /// Display name.
    pub name: String,
    /// 1-based server id.
    pub id: u32,
}

impl ServerInfo {
    /// `test` of a test server ('@').
    pub const TEST: u8 = b'@';
    /// `test` of a normal server (' ').
    pub const NORMAL: u8 = b' ';
}

impl Element for ServerInfo {
    fn decode(r: &mut Reader<'_>) -> Result<ServerInfo, BodyError> {
        Ok(ServerInfo {
            test: r.u8()?,
            name: r.cstr()?,
            id: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.test);
        w.cstr(&self.name);
        w.u32(self.id);
    }
}

/// PAKLC_LOGIN_REPLY with servers of the family's layout `S`: result ·
/// right · pay type · servers until the end.
///
/// `servers` is a `T[*]` field: decoding reads entries until the body ends
/// and a partial last entry is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginReplyOf<S> {
    /// A [`LoginResult`] code.
    pub result: u8,
    /// Account access level (0 on failure).
    pub right: u16,
    /// Pay type; osIROSE always 0.
    pub pay_type: u16,
    /// Character servers; only sent on OK.
    pub servers: Vec<S>,
}

/// PAKLC_LOGIN_REPLY in the osIROSE layout (servers with a test byte).
pub type LoginReply = LoginReplyOf<ServerInfo>;

impl<S: Element> Packet for LoginReplyOf<S> {
    const TYPE: PacketType = PacketType::PAKLC_LOGIN_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(LoginReplyOf {
            result: r.u8()?,
            right: r.u16()?,
            pay_type: r.u16()?,
            servers: r.until_end(S::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.result);
        w.u16(self.right);
        w.u16(self.pay_type);
        for s in &self.servers {
            s.encode(w);
        }
    }
}

/// PAKCS_CHANNEL_LIST_REQ: the channels of one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelListReq {
    /// 1-based server id from the login reply.
    pub server_id: u32,
}

impl Packet for ChannelListReq {
    const TYPE: PacketType = PacketType::PAKCS_CHANNEL_LIST_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ChannelListReq {
            server_id: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.server_id);
    }
}

/// One channel in [`ChannelListReply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    /// 1-based channel id.
    pub id: u8,
    /// Lowest allowed age (osIROSE 0).
    pub low_age: u8,
    /// Highest allowed age (osIROSE 0).
    pub high_age: u8,
    /// Percent full.
    pub capacity: u16,
    /// Display name.
    pub name: String,
}

impl ChannelInfo {
    /// Smallest encoded entry: four fixed fields and an empty name.
    const MIN_SIZE: usize = 6;

    fn decode(r: &mut Reader<'_>) -> Result<ChannelInfo, BodyError> {
        Ok(ChannelInfo {
            id: r.u8()?,
            low_age: r.u8()?,
            high_age: r.u8()?,
            capacity: r.u16()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.id);
        w.u8(self.low_age);
        w.u8(self.high_age);
        w.u16(self.capacity);
        w.cstr(&self.name);
    }
}

/// PAKLC_CHANNEL_LIST_REPLY: server id · channels with a u8 count (at most
/// 255 are encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelListReply {
    /// Echo of the request.
    pub server_id: u32,
    /// The channels; empty for an unknown server.
    pub channels: Vec<ChannelInfo>,
}

impl Packet for ChannelListReply {
    const TYPE: PacketType = PacketType::PAKLC_CHANNEL_LIST_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let server_id = r.u32()?;
        let count = usize::from(r.u8()?);
        Ok(ChannelListReply {
            server_id,
            channels: r.counted(count, ChannelInfo::MIN_SIZE, ChannelInfo::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.server_id);
        write_counted(w, &self.channels, |w, c| c.encode(w));
    }
}

/// PAKCS_SRV_SELECT_REQ: pick a server and channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrvSelectReq {
    /// 1-based server id.
    pub server_id: u32,
    /// 1-based channel id.
    pub channel_id: u8,
}

impl Packet for SrvSelectReq {
    const TYPE: PacketType = PacketType::PAKCS_SRV_SELECT_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(SrvSelectReq {
            server_id: r.u32()?,
            channel_id: r.u8()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.server_id);
        w.u8(self.channel_id);
    }
}

/// PAKLC_SRV_SELECT_REPLY: the session for the next connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SrvSelectReply {
    /// [`SrvSelectReply::OK`] … [`SrvSelectReply::INVALID_AGE`].
    pub result: u8,
    /// Key for the next connection's join.
    pub session_id: u32,
    /// Cipher seed for the next connection; 0 (never used).
    pub crypt_val: u32,
    /// Address to connect to next.
    pub ip: String,
    /// Port to connect to next.
    pub port: u16,
}

impl SrvSelectReply {
    /// Result 0, OK.
    pub const OK: u8 = 0;
    /// Result 1, FAILED.
    pub const FAILED: u8 = 1;
    /// Result 2, FULL.
    pub const FULL: u8 = 2;
    /// Result 3, INVALID_CHANNEL.
    pub const INVALID_CHANNEL: u8 = 3;
    /// Result 4, CHANNEL_NOT_ACTIVE.
    pub const CHANNEL_NOT_ACTIVE: u8 = 4;
    /// Result 5, INVALID_AGE.
    pub const INVALID_AGE: u8 = 5;
}

impl Packet for SrvSelectReply {
    const TYPE: PacketType = PacketType::PAKLC_SRV_SELECT_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(SrvSelectReply {
            result: r.u8()?,
            session_id: r.u32()?,
            crypt_val: r.u32()?,
            ip: r.cstr()?,
            port: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.result);
        w.u32(self.session_id);
        w.u32(self.crypt_val);
        w.cstr(&self.ip);
        w.u16(self.port);
    }
}

/// PAKCS_JOIN_SERVER_REQ: session id · digest (the rest of the body).
///
/// The digest must be exactly 64 or 32 hex digits (docs/protocol.md §9 D4),
/// so this layout has no trailing bytes to ignore: anything else is
/// [`BodyError::BadDigest`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JoinServerReq {
    /// From [`SrvSelectReply`] or [`SwitchServer`](super::SwitchServer).
    pub session_id: u32,
    /// Hex digest text; 32 or 64 bytes after decoding.
    pub digest: Vec<u8>,
}

impl JoinServerReq {
    /// Which digest form the client used.
    pub fn digest_kind(&self) -> DigestKind {
        DigestKind::of_len(self.digest.len())
    }
}

impl fmt::Debug for JoinServerReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinServerReq")
            .field("session_id", &self.session_id)
            .field("digest", &Redacted(self.digest.len()))
            .finish()
    }
}

impl Packet for JoinServerReq {
    const TYPE: PacketType = PacketType::PAKCS_JOIN_SERVER_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let session_id = r.u32()?;
        let digest = r.rest();
        DigestKind::of(digest).ok_or(BodyError::BadDigest)?;
        Ok(JoinServerReq {
            session_id,
            digest: digest.to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.session_id);
        w.bytes(&self.digest);
    }
}

/// PAKSC_JOIN_SERVER_REPLY (15 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinServerReply {
    /// [`JoinServerReply::OK`] … [`JoinServerReply::ALREADY_LOGGEDIN`].
    pub result: u8,
    /// Char phase: informational; map phase: the player's entity id.
    pub id: u32,
    /// 0.
    pub pay_flag: u32,
}

impl JoinServerReply {
    /// Result 0, OK.
    pub const OK: u8 = 0;
    /// Result 1, FAILED.
    pub const FAILED: u8 = 1;
    /// Result 2, TIME_OUT.
    pub const TIME_OUT: u8 = 2;
    /// Result 3, INVALID_PASSWORD.
    pub const INVALID_PASSWORD: u8 = 3;
    /// Result 4, ALREADY_LOGGEDIN.
    pub const ALREADY_LOGGEDIN: u8 = 4;
}

impl Packet for JoinServerReply {
    const TYPE: PacketType = PacketType::PAKSC_JOIN_SERVER_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(JoinServerReply {
            result: r.u8()?,
            id: r.u32()?,
            pay_flag: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.result);
        w.u32(self.id);
        w.u32(self.pay_flag);
    }
}
