//! The login connection and the join (docs/protocol.md §4 steps 3–5, 7 and
//! 12): LOGIN_REQ, CHANNEL_LIST_REQ, SRV_SELECT_REQ and JOIN_SERVER_REQ,
//! and the auth service's answers to them.

use crate::conn::calls::{
    Call, JoinServerReply, LoginReply, Outcome, Reply, RpcError, SelectServerReply, Stage,
};
use crate::conn::reason::{CloseReason, ProtocolError};
use crate::ids::{SessionId, UserId};
use crate::protocol::packet_type::{Family, PacketType};
use crate::protocol::packets::{
    irose, BodyError, ChannelListReq, JoinServerReq, LoginReq, LoginResult, Packet, SrvSelectReq,
};

use super::{replies, Action, CharSelect, Phase, Player, Turn};

/// A packet in [`Phase::New`]: a login, or a join with a session.
pub(super) fn on_new(t: &mut Turn<'_, '_>, ptype: PacketType, body: &[u8]) -> Phase {
    let family = t.family();
    match ptype {
        PacketType::PAKCS_LOGIN_REQ => match decode_login(family, body) {
            Ok(req) => {
                let kind = req.digest_kind();
                t.wait(Call::Login {
                    username: req.username,
                    digest: req.digest,
                    kind,
                    peer: t.common.peer.to_string(),
                });
                Phase::LoginPending
            }
            Err(_) => t.fatal(Phase::New, ProtocolError::MalformedBody),
        },
        PacketType::PAKCS_JOIN_SERVER_REQ => match decode_join(family, body) {
            Ok(req) => {
                let session = SessionId(req.session_id);
                let kind = req.digest_kind();
                t.wait(Call::JoinServer {
                    session,
                    digest: req.digest,
                    kind,
                    peer: t.common.peer.to_string(),
                });
                Phase::JoinPending { session }
            }
            Err(_) => t.fatal(Phase::New, ProtocolError::MalformedBody),
        },
        _ => t.unexpected(Phase::New, ptype),
    }
}

/// LOGIN_REQ in the layout of the client's family (irose: an MD5 digest of
/// exactly 32 bytes, docs/protocol.md §10.5).
fn decode_login(family: Family, body: &[u8]) -> Result<LoginReq, BodyError> {
    match family {
        Family::Osirose => LoginReq::decode(body),
        Family::Irose => irose::LoginReq::decode(body).map(LoginReq::from),
    }
}

/// JOIN_SERVER_REQ in the layout of the client's family.
fn decode_join(family: Family, body: &[u8]) -> Result<JoinServerReq, BodyError> {
    match family {
        Family::Osirose => JoinServerReq::decode(body),
        Family::Irose => irose::JoinServerReq::decode(body).map(JoinServerReq::from),
    }
}

/// A packet in [`Phase::LoggedIn`]: the channel list, a server select.
pub(super) fn on_logged_in(
    t: &mut Turn<'_, '_>,
    user: UserId,
    session: SessionId,
    ptype: PacketType,
    body: &[u8],
) -> Phase {
    let phase = Phase::LoggedIn { user, session };
    match ptype {
        PacketType::PAKCS_CHANNEL_LIST_REQ => match ChannelListReq::decode(body) {
            Ok(req) => {
                t.send(replies::channel_list(t.ctx.servers, req.server_id));
                phase
            }
            Err(_) => t.fatal(phase, ProtocolError::MalformedBody),
        },
        PacketType::PAKCS_SRV_SELECT_REQ => match SrvSelectReq::decode(body) {
            Ok(req) => {
                t.wait(Call::SelectServer {
                    session,
                    server_id: req.server_id,
                    channel_id: u32::from(req.channel_id),
                });
                Phase::SelectPending { user, session }
            }
            Err(_) => t.fatal(phase, ProtocolError::MalformedBody),
        },
        _ => t.unexpected(phase, ptype),
    }
}

/// The auth service answered the login.
pub(super) fn on_login_reply(t: &mut Turn<'_, '_>, r: &LoginReply) -> Phase {
    let family = t.family();
    t.send(replies::login(r.outcome, r.access, &r.servers, family));
    match r.outcome {
        Outcome::Ok => Phase::LoggedIn {
            user: r.user,
            session: r.session,
        },
        // No right to connect: the connection is closed too.
        Outcome::Refused(code) if code == LoginResult::NoRightToConnect.code() => {
            t.close(Phase::LoginPending, CloseReason::LoginRefused)
        }
        Outcome::Refused(_) => Phase::New,
    }
}

/// The login failed without an answer.
pub(super) fn on_login_failed(t: &mut Turn<'_, '_>) -> Phase {
    t.send(replies::login_failed());
    Phase::New
}

/// The auth service answered (or failed to answer) the server select.
pub(super) fn on_select_reply(
    t: &mut Turn<'_, '_>,
    user: UserId,
    session: SessionId,
    result: &Result<Reply, RpcError>,
) -> Phase {
    match result {
        Ok(Reply::SelectServer(SelectServerReply {
            outcome: Outcome::Ok,
            session: issued,
        })) => {
            let session = issued.unwrap_or(session);
            let family = t.family();
            t.send(replies::srv_select(t.ctx, session, family));
            Phase::Transferring { session }
        }
        result => {
            let code = match result {
                Ok(Reply::SelectServer(r)) => Some(r.outcome.code()),
                _ => None,
            };
            t.send(replies::srv_select_refused(code));
            Phase::LoggedIn { user, session }
        }
    }
}

/// The auth service answered (or failed to answer) a join: character
/// select, or the world.
pub(super) fn on_join_reply(
    t: &mut Turn<'_, '_>,
    session: SessionId,
    result: &Result<Reply, RpcError>,
) -> Phase {
    let r = match result {
        Ok(Reply::JoinServer(r)) if r.outcome == Outcome::Ok => r,
        result => {
            let code = match result {
                Ok(Reply::JoinServer(r)) => Some(r.outcome.code()),
                _ => None,
            };
            t.send(replies::join_refused(code));
            return Phase::New;
        }
    };
    let JoinServerReply {
        user,
        stage,
        char_id,
        ..
    } = *r;
    match stage {
        Stage::Map => {
            t.out.push(Action::BindSession(session));
            let player = Player {
                user,
                session,
                char_id,
            };
            let family = t.family();
            t.wait_for_world(Call::WorldJoin {
                session,
                user,
                char_id,
                family,
            });
            Phase::WorldJoinPending(player)
        }
        Stage::CharSelect => {
            let family = t.family();
            t.send(replies::joined(user.0, family));
            if family == Family::Irose {
                // Its map connection will tell it about the game.
                t.out.push(Action::BindCharConn(session));
            }
            Phase::CharSelect(CharSelect {
                user,
                session,
                chars: Vec::new(),
            })
        }
        Stage::LoggedIn => {
            // Logged in but no server selected: nothing to join.
            t.send(replies::join_failed());
            Phase::New
        }
    }
}
