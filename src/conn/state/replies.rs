//! The reply packets the state machine builds, from its own data and the
//! backends' answers (field layouts: docs/protocol.md §3). Where the irose
//! family needs other values (its seeds, sequence id and pay flags,
//! docs/protocol.md §10.5), the reply takes the family; its layout is the
//! writer's business ([`ServerPacket::write`]).

use crate::conn::calls::{CharSummary, Outcome, ServerEntry};
use crate::ids::SessionId;
use crate::protocol::packet_type::Family;
use crate::protocol::packets::{
    clamp_u16, irose, AcceptReply, ChanCharReply, ChannelInfo, ChannelListReply, CharInfo,
    CharListReply, CreateCharReply, DeleteCharReply, JoinServerReply, LoginReply, LoginResult,
    LogoutReply, ScreenShotTimeReply, ServerInfo, ServerPacket, SrvSelectReply, SwitchServer,
    WhisperChatReply,
};

use super::{Ctx, UtcTime};

/// ACCEPT_REPLY result: accepted.
const ACCEPTED: u8 = 2;
/// LOGIN_REPLY / SRV_SELECT_REPLY / JOIN_SERVER_REPLY / CREATE_CHAR_REPLY result: failed.
const RESULT_FAILED: u8 = 1;
/// DELETE_CHAR_REPLY remaining time meaning "refused".
const DELETE_REFUSED: u32 = 0xFFFF_FFFF;
/// Longest client-supplied name echoed back in a reply (character names are
/// far shorter; a frame could carry 2038 bytes, which no reply has room for).
const ECHOED_NAME_MAX: usize = 64;
/// Sender name of server notices delivered as whispers.
const SERVER_NOTICE: &str = "server msg";

/// ACCEPT_REPLY, accepted.
pub(super) fn accept(utc: UtcTime, family: Family) -> ServerPacket {
    let rand_value = match family {
        // Informational only (never a key, docs/protocol.md §1.4).
        Family::Osirose => utc.unix,
        // The sequence id rose-offline sends (its use is unknown).
        Family::Irose => irose::login::PACKET_SEQUENCE,
    };
    ServerPacket::AcceptReply(AcceptReply {
        result: ACCEPTED,
        rand_value,
    })
}

/// SCREEN_SHOT_TIME_REPLY with the current UTC time.
pub(super) fn screen_shot_time(u: UtcTime) -> ServerPacket {
    ServerPacket::ScreenShotTimeReply(ScreenShotTimeReply {
        year: u.year,
        month: u.month,
        day: u.day,
        hour: u.hour,
        minute: u.minute,
    })
}

/// LOGIN_REPLY for a verdict of the auth service; the access level and the
/// server list only when accepted (and for irose the pay type rose-offline
/// announces).
///
/// An unknown account is answered as a wrong password, so that the reply
/// never tells whether an account exists (docs/protocol.md §9 D17; the
/// metrics still tell them apart).
pub(super) fn login(
    outcome: Outcome,
    access: u32,
    servers: &[ServerEntry],
    family: Family,
) -> ServerPacket {
    let accepted = outcome == Outcome::Ok;
    let result = match outcome.code() {
        code if code == LoginResult::UnknownAccount.code() => LoginResult::InvalidPassword.code(),
        code => code,
    };
    let pay_type = match family {
        Family::Irose if accepted => irose::login::PAY_FLAGS as u16,
        _ => 0,
    };
    ServerPacket::LoginReply(LoginReply {
        result,
        right: if accepted { clamp_u16(access) } else { 0 },
        pay_type,
        servers: if accepted {
            servers.iter().map(server_info).collect()
        } else {
            Vec::new()
        },
    })
}

/// LOGIN_REPLY, failed (no answer from the auth service).
pub(super) fn login_failed() -> ServerPacket {
    login(Outcome::Refused(RESULT_FAILED), 0, &[], Family::Osirose)
}

/// CHANNEL_LIST_REPLY for one server of the cached list (empty if unknown).
pub(super) fn channel_list(servers: &[ServerEntry], server_id: u32) -> ServerPacket {
    let channels = servers
        .iter()
        .find(|s| s.id == server_id)
        .map(|s| {
            s.channels
                .iter()
                .map(|c| ChannelInfo {
                    id: c.id.min(255) as u8,
                    low_age: c.low_age.min(255) as u8,
                    high_age: c.high_age.min(255) as u8,
                    capacity: clamp_u16(c.capacity_percent),
                    name: c.name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    ServerPacket::ChannelListReply(ChannelListReply {
        server_id,
        channels,
    })
}

/// SRV_SELECT_REPLY, OK: the session and where to connect next; for irose
/// also the seed of the char connection's tables (docs/protocol.md §10.2).
pub(super) fn srv_select(ctx: &Ctx<'_>, session: SessionId, family: Family) -> ServerPacket {
    let crypt_val = match family {
        Family::Osirose => 0,
        Family::Irose => ctx.announced.world.get(),
    };
    ServerPacket::SrvSelectReply(SrvSelectReply {
        result: 0,
        session_id: session.0,
        crypt_val,
        ip: ctx.public_addr.to_owned(),
        port: ctx.public_port,
    })
}

/// SRV_SELECT_REPLY, refused with the service's code, or FAILED when it
/// did not answer (never OK).
pub(super) fn srv_select_refused(code: Option<u8>) -> ServerPacket {
    ServerPacket::SrvSelectReply(SrvSelectReply {
        result: refusal(code),
        session_id: 0,
        crypt_val: 0,
        ip: String::new(),
        port: 0,
    })
}

/// JOIN_SERVER_REPLY, OK, with the user id (char stage) or the entity id
/// (map stage); irose gets the sequence id and pay flags rose-offline
/// sends instead (its entity id comes in the zone-join reply).
pub(super) fn joined(id: u32, family: Family) -> ServerPacket {
    let (id, pay_flag) = match family {
        Family::Osirose => (id, 0),
        Family::Irose => (irose::login::PACKET_SEQUENCE, irose::login::PAY_FLAGS),
    };
    ServerPacket::JoinServerReply(JoinServerReply {
        result: 0,
        id,
        pay_flag,
    })
}

/// JOIN_SERVER_REPLY, refused with the service's code, or FAILED when it
/// did not answer (never OK).
pub(super) fn join_refused(code: Option<u8>) -> ServerPacket {
    ServerPacket::JoinServerReply(JoinServerReply {
        result: refusal(code),
        id: 0,
        pay_flag: 0,
    })
}

/// JOIN_SERVER_REPLY, failed.
pub(super) fn join_failed() -> ServerPacket {
    join_refused(None)
}

/// CHAR_LIST_REPLY.
pub(super) fn char_list(characters: &[CharSummary]) -> ServerPacket {
    ServerPacket::CharListReply(CharListReply {
        characters: characters.iter().map(char_info).collect(),
    })
}

/// CREATE_CHAR_REPLY with a verdict of the character service.
pub(super) fn create(outcome: Outcome) -> ServerPacket {
    ServerPacket::CreateCharReply(CreateCharReply {
        result: outcome.code(),
        platinum: 0,
    })
}

/// CREATE_CHAR_REPLY, failed.
pub(super) fn create_failed() -> ServerPacket {
    create(Outcome::Refused(RESULT_FAILED))
}

/// DELETE_CHAR_REPLY for a listed character: deleted in `remaining_time`
/// seconds, or refused.
pub(super) fn delete(remaining_time: Option<u32>, name: String) -> ServerPacket {
    ServerPacket::DeleteCharReply(DeleteCharReply {
        remaining_time: remaining_time.unwrap_or(DELETE_REFUSED),
        name,
    })
}

/// DELETE_CHAR_REPLY refusing a request for a slot outside the list; it
/// echoes the name the client sent.
pub(super) fn delete_refused(requested: String) -> ServerPacket {
    delete(None, echoed_name(requested))
}

/// SWITCH_SERVER: the selected character's session and where the map is;
/// for irose also the seed of the map connection's tables.
pub(super) fn switch_server(ctx: &Ctx<'_>, session: SessionId, family: Family) -> ServerPacket {
    let session_seed = match family {
        Family::Osirose => 0,
        Family::Irose => ctx.announced.game.get(),
    };
    ServerPacket::SwitchServer(SwitchServer {
        port: ctx.public_port,
        session_id: session.0,
        session_seed,
        ip: ctx.public_addr.to_owned(),
    })
}

/// LOGOUT_REPLY: the client may quit at once.
pub(super) fn logout() -> ServerPacket {
    ServerPacket::LogoutReply(LogoutReply { wait_time: 0 })
}

/// CHAN_CHAR_REPLY: back to character select.
pub(super) fn change_char() -> ServerPacket {
    ServerPacket::ChanCharReply(ChanCharReply)
}

/// The whisper that tells a player the world went away.
pub(super) fn world_unavailable() -> ServerPacket {
    ServerPacket::WhisperChatReply(WhisperChatReply {
        sender: SERVER_NOTICE.to_owned(),
        message: "The world server is unavailable. Please reconnect.".to_owned(),
    })
}

/// The result code of a refusal: the service's, at least FAILED.
fn refusal(code: Option<u8>) -> u8 {
    code.unwrap_or(RESULT_FAILED).max(RESULT_FAILED)
}

/// A client-supplied name cut to [`ECHOED_NAME_MAX`] bytes (at a character
/// boundary), so that a reply echoing it always fits in a packet.
fn echoed_name(mut name: String) -> String {
    let mut end = name.len().min(ECHOED_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

fn server_info(s: &ServerEntry) -> ServerInfo {
    ServerInfo {
        test: if s.test {
            ServerInfo::TEST
        } else {
            ServerInfo::NORMAL
        },
        name: s.name.clone(),
        id: s.id,
    }
}

fn char_info(c: &CharSummary) -> CharInfo {
    let mut items = [0u32; 8];
    for (slot, &word) in items.iter_mut().zip(&c.equipped_items) {
        *slot = word;
    }
    CharInfo {
        name: c.name.clone(),
        race: c.race.min(255) as u8,
        level: clamp_u16(c.level),
        job: clamp_u16(c.job),
        remain_secs_until_delete: c.remain_secs_until_delete,
        platinium: 0,
        face: c.face,
        hair: c.hair,
        items,
    }
}
