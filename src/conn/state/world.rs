//! The map connection (docs/protocol.md §4 steps 12–15,
//! docs/protocol.md §10.6): entering the world, forwarding map-phase packets
//! to the world service (by name, in the `osirose` numbering, with the body
//! in the client's layout; chat within its budget), logging out or going
//! back to character select, and leaving.

use bytes::Bytes;

use crate::conn::calls::{Call, LeaveReason, LogoutReason};
use crate::conn::reason::{ChatRefusal, CloseReason, ProtocolError};
use crate::ids::SessionId;
use crate::protocol::packet_type::{DialectId, Direction, Family, PacketType};

use super::{game, replies, Action, Common, Disposition, GameEvent, Phase, Player, Turn};

/// A packet in [`Phase::InWorld`].
pub(super) fn on_packet(
    t: &mut Turn<'_, '_>,
    player: Player,
    entity: u32,
    ptype: PacketType,
    body: &[u8],
) -> Phase {
    let session = player.session;
    match ptype {
        PacketType::PAKCS_LOGOUT_REQ => {
            t.send(replies::logout());
            t.out.push(Action::UnbindSession(session));
            let reason = LeaveReason::Logout;
            t.notify(Call::WorldLeave { session, reason });
            let reason = LogoutReason::Logout;
            t.notify(Call::Logout { session, reason });
            game::tell(
                t.common,
                session,
                GameEvent::Left(LeaveReason::Logout),
                t.out,
            );
            logged_out(t, session)
        }
        PacketType::PAKCS_CHANGE_CHAR_REQ => {
            // irose: the map connection gets a logout reply, the char
            // connection the return to character select
            // (docs/protocol.md §10.6, step 13b).
            t.send(match t.family() {
                Family::Osirose => replies::change_char(),
                Family::Irose => replies::logout(),
            });
            t.out.push(Action::UnbindSession(session));
            let reason = LeaveReason::ChangeChar;
            t.notify(Call::WorldLeave { session, reason });
            game::tell(t.common, session, GameEvent::Left(reason), t.out);
            logged_out(t, session)
        }
        ptype if is_world_packet(ptype) => {
            if t.family() == Family::Irose {
                // The irose client has no keepalive
                // (docs/protocol.md §10.7): its play keeps the session
                // alive, refreshed as ALIVE would, at most once per refresh
                // interval.
                t.on_alive(&Phase::InWorld { player, entity });
            }
            if let Some(refusal) = chat_refusal(t, ptype, body) {
                t.out.push(Action::ChatRefused(refusal));
                return Phase::InWorld { player, entity };
            }
            match DialectId::Osirose.dialect().wire_id(ptype) {
                Some(type_id) => t.notify(Call::WorldPacket {
                    session,
                    type_id,
                    payload: Bytes::copy_from_slice(body),
                }),
                None => t
                    .out
                    .push(Action::ProtocolError(ProtocolError::UnknownPacket)),
            }
            Phase::InWorld { player, entity }
        }
        _ => t.wrong_state(Phase::InWorld { player, entity }),
    }
}

/// After a logout or a return to character select: the session goes on
/// elsewhere. irose: the game connection is closed after its 0x707
/// (docs/protocol.md §10.6, steps 13a and 13b; a close that follows a
/// reply, so the reactor half-closes it and lets it linger); the char
/// connection stays. An osIROSE client closes its map connection itself.
fn logged_out(t: &mut Turn<'_, '_>, session: SessionId) -> Phase {
    let next = Phase::Transferring { session };
    match t.family() {
        Family::Irose => t.close(next, CloseReason::LoggedOut),
        Family::Osirose => next,
    }
}

/// The world answered the join of this connection.
pub(super) fn on_joined(
    t: &mut Turn<'_, '_>,
    phase: Phase,
    ok: bool,
    entity: u32,
) -> (Phase, Disposition) {
    let Phase::WorldJoinPending(player) = phase else {
        return (phase, Disposition::Stale);
    };
    t.common.pending = None;
    if ok {
        let family = t.family();
        t.send(replies::joined(entity, family));
        game::tell(t.common, player.session, GameEvent::Entered, t.out);
        return (Phase::InWorld { player, entity }, Disposition::Applied);
    }
    t.send(replies::join_failed());
    t.out.push(Action::UnbindSession(player.session));
    (Phase::New, Disposition::Applied)
}

/// The world did not answer the join in time: undo it.
pub(super) fn on_join_timeout(t: &mut Turn<'_, '_>, player: Player) -> Phase {
    t.send(replies::join_failed());
    leave(t.common, player.session, t.out);
    Phase::New
}

/// Stops routing world traffic here and tells the world the player left
/// because the connection went away.
pub(super) fn leave(common: &mut Common, session: SessionId, out: &mut Vec<Action>) {
    out.push(Action::UnbindSession(session));
    let reason = LeaveReason::Disconnect;
    common.notify(Call::WorldLeave { session, reason }, out);
}

/// The chat budget: why a chat message is dropped instead of forwarded, or
/// `None` for a message within budget and any packet that is not chat.
///
/// It is kept here, in the gateway, rather than in a world service, so that
/// it holds whatever world sits behind the gateway: one sender's messages
/// are bounded in number and size before the world multiplies them by the
/// players it reaches, and text is never expanded (a world's lossy decoding
/// turns each invalid byte into three).
fn chat_refusal(t: &mut Turn<'_, '_>, ptype: PacketType, body: &[u8]) -> Option<ChatRefusal> {
    let text = chat_text(ptype, body)?;
    let rate = t.ctx.chat_per_sec;
    if !t.common.chat.take(t.now, rate, rate.saturating_mul(2)) {
        return Some(ChatRefusal::Rate);
    }
    if text.len() > t.ctx.chat_max_bytes {
        return Some(ChatRefusal::Size);
    }
    if std::str::from_utf8(text).is_err() {
        return Some(ChatRefusal::Encoding);
    }
    None
}

/// The text of a chat packet (up to its terminator), or `None` for a
/// packet that is not chat. A whisper's text follows the recipient's name;
/// every other chat carries its text first.
fn chat_text(ptype: PacketType, body: &[u8]) -> Option<&[u8]> {
    use PacketType as T;
    let skip = match ptype {
        T::PAKCS_WHISPER_CHAT => 1,
        T::PAKCS_NORMAL_CHAT | T::PAKCS_SHOUT_CHAT | T::PAKCS_PARTY_CHAT => 0,
        _ => return None,
    };
    let mut fields = body.split(|&b| b == 0);
    Some(fields.nth(skip).unwrap_or_default())
}

/// Client packets of the login and character phases: in the world phase
/// they are wrong-state, everything else is forwarded to the world.
fn is_world_packet(t: PacketType) -> bool {
    use PacketType as T;
    t.direction() == Direction::ClientToServer
        && !matches!(
            t,
            T::PAKCS_ACCEPT_REQ
                | T::PAKCS_CHANNEL_LIST_REQ
                | T::PAKCS_LOGIN_REQ
                | T::PAKCS_LOGIN_TOKEN_REQ
                | T::PAKCS_SRV_SELECT_REQ
                | T::PAKCS_JOIN_SERVER_REQ
                | T::PAKCS_JOIN_SERVER_TOKEN_REQ
                | T::PAKCS_CHAR_LIST_REQ
                | T::PAKCS_CREATE_CHAR_REQ
                | T::PAKCS_DELETE_CHAR_REQ
                | T::PAKCS_SELECT_CHAR_REQ
                | T::STRESS
        )
}
