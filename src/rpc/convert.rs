//! Every mapping between the connection's calls and answers
//! (`src/conn/calls.rs`) and the backends' protobuf contracts (`proto/`),
//! in both directions, and from a gRPC status to an [`RpcError`]. The tonic
//! clients beside this file and the embedded backend convert through here;
//! nothing else names a generated type and a connection type together.
//!
//! Every result enum of the contracts numbers OK 0 and its refusals as the
//! reply packet that carries them does, so a result becomes an [`Outcome`]
//! by its number. A login's result also becomes its [`LoginVerdict`] for
//! the metrics, by name.

use bytes::Bytes;

use super::types::{Completion, Job};
use crate::conn::calls::{
    Call, ChannelEntry, CharSummary, DeleteReply, JoinServerReply, LeaveReason, Liveness,
    LoginReply, LogoutReason, Outcome, Reply, RpcError, SelectServerReply, ServerEntry, Stage,
};
use crate::conn::reason::{AuthRefusal, LoginVerdict};
use crate::ids::{CharId, ConnRef, SessionId, UserId};
use crate::pb::{auth, character, world};
use crate::protocol::packet_type::Family;
use crate::protocol::packets::DigestKind;

/// Result code of a refusal whose number no reply packet can carry.
const FAILED: u8 = 1;

/// A call as the message of the service that answers it.
#[derive(Debug)]
pub(super) enum Request {
    /// `Auth.Login`.
    Login(auth::LoginRequest),
    /// `Auth.SelectServer`.
    SelectServer(auth::SelectServerRequest),
    /// `Auth.JoinServer`.
    JoinServer(auth::JoinServerRequest),
    /// `Auth.Refresh`.
    Refresh(auth::RefreshRequest),
    /// `Auth.Logout`.
    Logout(auth::LogoutRequest),
    /// `Character.List`.
    ListChars(character::ListRequest),
    /// `Character.Create`.
    CreateChar(character::CreateRequest),
    /// `Character.Delete`.
    DeleteChar(character::DeleteRequest),
    /// `Character.Select`.
    SelectChar(character::SelectRequest),
    /// A message on the world stream.
    World(world::Upstream),
}

impl From<Call> for Request {
    fn from(call: Call) -> Request {
        use world::upstream::Kind;
        let world = |kind| Request::World(world::Upstream { kind: Some(kind) });
        match call {
            Call::Login {
                username,
                digest,
                kind,
                peer,
            } => Request::Login(auth::LoginRequest {
                username,
                digest,
                digest_kind: auth::DigestKind::from(kind).into(),
                peer,
            }),
            Call::SelectServer {
                session,
                server_id,
                channel_id,
            } => Request::SelectServer(auth::SelectServerRequest {
                session_id: session.0,
                server_id,
                channel_id,
            }),
            Call::JoinServer {
                session,
                digest,
                kind,
                peer,
            } => Request::JoinServer(auth::JoinServerRequest {
                session_id: session.0,
                digest,
                digest_kind: auth::DigestKind::from(kind).into(),
                peer,
            }),
            Call::Refresh { session } => Request::Refresh(auth::RefreshRequest {
                session_id: session.0,
            }),
            Call::Logout { session, reason } => Request::Logout(auth::LogoutRequest {
                session_id: session.0,
                reason: auth::LogoutReason::from(reason).into(),
            }),
            Call::ListChars { user } => {
                Request::ListChars(character::ListRequest { user_id: user.0 })
            }
            Call::CreateChar { user, request } => Request::CreateChar(character::CreateRequest {
                user_id: user.0,
                name: request.name,
                race: request.race.into(),
                stone: request.stone.into(),
                hair: request.hair.into(),
                face: request.face.into(),
                weapon: request.weapon.into(),
                zone: request.zone.into(),
            }),
            Call::DeleteChar {
                user,
                char_id,
                delete,
            } => Request::DeleteChar(character::DeleteRequest {
                user_id: user.0,
                char_id: char_id.0,
                delete,
            }),
            Call::SelectChar {
                user,
                session,
                char_id,
            } => Request::SelectChar(character::SelectRequest {
                user_id: user.0,
                session_id: session.0,
                char_id: char_id.0,
            }),
            Call::WorldJoin {
                session,
                user,
                char_id,
                family,
            } => world(Kind::Join(world::Join {
                session_id: session.0,
                user_id: user.0,
                char_id: char_id.0,
                join_id: 0,
                layout: world::Layout::from(family).into(),
            })),
            Call::WorldPacket {
                session,
                type_id,
                payload,
            } => world(Kind::Packet(world::Packet {
                session_id: session.0,
                r#type: u32::from(type_id),
                payload: payload.to_vec(),
            })),
            Call::WorldLeave { session, reason } => world(Kind::Leave(world::Leave {
                session_id: session.0,
                reason: world::LeaveReason::from(reason).into(),
                join_id: 0,
            })),
        }
    }
}

/// The `join_id` of a connection's world `Join` and `Leave`: its slab slot
/// and generation, so that a Leave of an older connection of a session
/// never matches a newer connection's join (proto/README.md). Non-zero, as
/// generations start at 1.
pub fn join_id(conn: ConnRef) -> u64 {
    u64::from(conn.index) << 32 | u64::from(conn.generation)
}

/// The world-stream message of a job, stamped with its connection's
/// [`join_id`]; `None` for a job of another service.
pub(super) fn world_message(job: Job) -> Option<world::Upstream> {
    use world::upstream::Kind;
    let id = join_id(job.conn);
    let Request::World(mut m) = Request::from(job.call) else {
        return None;
    };
    match &mut m.kind {
        Some(Kind::Join(j)) => j.join_id = id,
        Some(Kind::Leave(l)) => l.join_id = id,
        _ => {}
    }
    Some(m)
}

impl From<DigestKind> for auth::DigestKind {
    fn from(kind: DigestKind) -> auth::DigestKind {
        match kind {
            DigestKind::Sha256Hex => auth::DigestKind::Sha256Hex,
            DigestKind::Md5Hex => auth::DigestKind::Md5Hex,
        }
    }
}

/// The digest kind of a request's `digest_kind` field; `None` for
/// UNSPECIFIED or a number the contract does not know.
pub fn digest_kind(field: i32) -> Option<DigestKind> {
    match auth::DigestKind::try_from(field).ok()? {
        auth::DigestKind::Sha256Hex => Some(DigestKind::Sha256Hex),
        auth::DigestKind::Md5Hex => Some(DigestKind::Md5Hex),
        auth::DigestKind::Unspecified => None,
    }
}

impl From<LogoutReason> for auth::LogoutReason {
    fn from(reason: LogoutReason) -> auth::LogoutReason {
        match reason {
            LogoutReason::Logout => auth::LogoutReason::Logout,
            LogoutReason::Disconnect => auth::LogoutReason::Disconnect,
        }
    }
}

impl From<Family> for world::Layout {
    fn from(family: Family) -> world::Layout {
        match family {
            Family::Osirose => world::Layout::Osirose,
            Family::Irose => world::Layout::Irose,
        }
    }
}

impl From<world::Layout> for Family {
    fn from(layout: world::Layout) -> Family {
        match layout {
            world::Layout::Osirose => Family::Osirose,
            world::Layout::Irose => Family::Irose,
        }
    }
}

impl From<LeaveReason> for world::LeaveReason {
    fn from(reason: LeaveReason) -> world::LeaveReason {
        match reason {
            LeaveReason::Logout => world::LeaveReason::Logout,
            LeaveReason::Disconnect => world::LeaveReason::Disconnect,
            LeaveReason::ChangeChar => world::LeaveReason::ChangeChar,
        }
    }
}

/// The verdict of a result field: 0 is OK, any other number a refusal with
/// that code.
fn outcome(result: i32) -> Outcome {
    match result {
        0 => Outcome::Ok,
        code => Outcome::Refused(u8::try_from(code).unwrap_or(FAILED)),
    }
}

impl From<auth::LoginReply> for Reply {
    fn from(r: auth::LoginReply) -> Reply {
        Reply::Login(LoginReply {
            outcome: outcome(r.result),
            user: UserId(r.user_id),
            access: r.access,
            session: SessionId(r.session_id),
            servers: r.servers.into_iter().map(ServerEntry::from).collect(),
        })
    }
}

impl From<auth::SelectServerReply> for Reply {
    fn from(r: auth::SelectServerReply) -> Reply {
        Reply::SelectServer(SelectServerReply {
            outcome: outcome(r.result),
            // 0: the service issued no new session.
            session: (r.session_id != 0).then_some(SessionId(r.session_id)),
        })
    }
}

impl From<auth::JoinServerReply> for Reply {
    fn from(r: auth::JoinServerReply) -> Reply {
        let stage = match auth::Stage::try_from(r.stage) {
            Ok(auth::Stage::CharSelect) => Stage::CharSelect,
            Ok(auth::Stage::Map) => Stage::Map,
            Ok(auth::Stage::LoggedIn | auth::Stage::Unspecified) | Err(_) => Stage::LoggedIn,
        };
        Reply::JoinServer(JoinServerReply {
            outcome: outcome(r.result),
            user: UserId(r.user_id),
            stage,
            char_id: CharId(r.char_id),
        })
    }
}

impl From<auth::RefreshReply> for Reply {
    fn from(r: auth::RefreshReply) -> Reply {
        Reply::Refresh(if r.ok {
            Liveness::Alive
        } else {
            Liveness::Expired
        })
    }
}

impl From<auth::LogoutReply> for Reply {
    fn from(_: auth::LogoutReply) -> Reply {
        Reply::Logout
    }
}

impl From<character::ListReply> for Reply {
    fn from(r: character::ListReply) -> Reply {
        Reply::ListChars(r.characters.into_iter().map(CharSummary::from).collect())
    }
}

impl From<character::CreateReply> for Reply {
    fn from(r: character::CreateReply) -> Reply {
        Reply::CreateChar(outcome(r.result))
    }
}

impl From<character::DeleteReply> for Reply {
    fn from(r: character::DeleteReply) -> Reply {
        Reply::DeleteChar(DeleteReply {
            outcome: outcome(r.result),
            remaining_secs: r.remaining_secs,
        })
    }
}

impl From<character::SelectReply> for Reply {
    fn from(r: character::SelectReply) -> Reply {
        Reply::SelectChar(outcome(r.result))
    }
}

impl From<auth::ServerInfo> for ServerEntry {
    fn from(s: auth::ServerInfo) -> ServerEntry {
        ServerEntry {
            id: s.id,
            name: s.name,
            test: s.test,
            channels: s.channels.into_iter().map(ChannelEntry::from).collect(),
        }
    }
}

impl From<auth::ChannelInfo> for ChannelEntry {
    fn from(c: auth::ChannelInfo) -> ChannelEntry {
        ChannelEntry {
            id: c.id,
            name: c.name,
            low_age: c.low_age,
            high_age: c.high_age,
            capacity_percent: c.capacity_percent,
        }
    }
}

impl From<character::CharacterSummary> for CharSummary {
    fn from(c: character::CharacterSummary) -> CharSummary {
        CharSummary {
            char_id: CharId(c.char_id),
            name: c.name,
            race: c.race,
            level: c.level,
            job: c.job,
            remain_secs_until_delete: c.remain_secs_until_delete,
            face: c.face,
            hair: c.hair,
            equipped_items: c.equipped_items,
        }
    }
}

/// What a world stream message tells the reactor (`None` for an empty
/// message or a packet id that does not fit 16 bits).
pub(super) fn downstream(d: world::Downstream) -> Option<Completion> {
    use world::downstream::Kind;
    Some(match d.kind? {
        Kind::Joined(j) => Completion::Joined {
            session: SessionId(j.session_id),
            ok: j.result == world::JoinResult::Ok as i32,
            entity_id: j.entity_id,
        },
        Kind::Packet(p) => Completion::Broadcast {
            family: Family::from(p.layout()),
            targets: p.targets,
            type_id: u16::try_from(p.r#type).ok()?,
            payload: Bytes::from(p.payload),
        },
        Kind::Kick(k) => Completion::Kick {
            session: SessionId(k.session_id),
            reason: k.reason,
        },
    })
}

/// Why a call that ended with `status` failed.
pub(super) fn status_error(status: &tonic::Status) -> RpcError {
    match status.code() {
        tonic::Code::Unavailable => RpcError::Unavailable,
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => RpcError::DeadlineExceeded,
        _ => RpcError::Failed,
    }
}

/// How a login ended, for `logins_total`: by the auth service's result,
/// which tells a wrong password from an unknown account whatever code the
/// client is sent, or [`LoginVerdict::Failed`] when the call failed.
pub fn login_verdict(reply: Result<&auth::LoginReply, RpcError>) -> LoginVerdict {
    use auth::LoginResult as R;
    let Ok(reply) = reply else {
        return LoginVerdict::Failed;
    };
    if refusal(reply.refusal).is_some() {
        // Refused before the digest was checked (docs/protocol.md §9 D17).
        return LoginVerdict::Refused;
    }
    match R::try_from(reply.result) {
        Ok(R::Ok) => LoginVerdict::Ok,
        Ok(R::InvalidPassword) => LoginVerdict::WrongPassword,
        Ok(R::UnknownAccount) => LoginVerdict::UnknownAccount,
        Ok(
            R::AlreadyLoggedin
            | R::RefusedAccount
            | R::NeedCharge
            | R::NoRightToConnect
            | R::TooManyUsers
            | R::NoName
            | R::InvalidVersion
            | R::OutsideRegion,
        ) => LoginVerdict::Refused,
        Ok(R::Failed) | Err(_) => LoginVerdict::Failed,
    }
}

/// Why the auth service refused a call unchecked, from a reply's
/// `refusal`; `None` for NONE or a value the contract does not know.
pub fn refusal(value: i32) -> Option<AuthRefusal> {
    use auth::AuthRefusal as R;
    match R::try_from(value) {
        Ok(R::ThrottledAccount) => Some(AuthRefusal::ThrottledAccount),
        Ok(R::ThrottledSource) => Some(AuthRefusal::ThrottledSource),
        Ok(R::AutocreateLimit) => Some(AuthRefusal::AutocreateLimit),
        Ok(R::None) | Err(_) => None,
    }
}

/// The metadata key of the gateway's name on its World `Link` stream
/// (proto/README.md, the World service).
pub const GATEWAY_METADATA: &str = "x-gateway";

/// The gateway's name as link metadata; `None` when empty or not
/// printable ASCII.
pub(super) fn gateway_metadata(
    name: &str,
) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    if name.is_empty() {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_verdicts_by_result_and_failure() {
        let verdict = |result: i32| {
            login_verdict(Ok(&auth::LoginReply {
                result,
                ..Default::default()
            }))
        };
        assert_eq!(verdict(0), LoginVerdict::Ok);
        assert_eq!(verdict(1), LoginVerdict::Failed);
        assert_eq!(verdict(2), LoginVerdict::UnknownAccount);
        assert_eq!(verdict(3), LoginVerdict::WrongPassword);
        for refused in [4, 5, 6, 7, 8, 9, 10, 11] {
            assert_eq!(verdict(refused), LoginVerdict::Refused, "{refused}");
        }
        assert_eq!(verdict(200), LoginVerdict::Failed);
        let refused = login_verdict(Ok(&auth::LoginReply {
            result: 3,
            refusal: auth::AuthRefusal::ThrottledAccount.into(),
            ..Default::default()
        }));
        assert_eq!(refused, LoginVerdict::Refused);
        assert_eq!(refusal(0), None);
        assert_eq!(refusal(2), Some(AuthRefusal::ThrottledSource));
        assert_eq!(refusal(99), None);
        assert_eq!(
            login_verdict(Err(RpcError::Unavailable)),
            LoginVerdict::Failed
        );
    }
}
