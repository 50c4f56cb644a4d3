//! Character select (docs/protocol.md §4 steps 8–10): CHAR_LIST_REQ,
//! CREATE_CHAR_REQ, DELETE_CHAR_REQ and SELECT_CHAR_REQ, slots checked
//! against the last list sent (docs/protocol.md §9 D9), and the character
//! service's answers.

use crate::conn::calls::{Call, CreateRequest, DeleteReply, Outcome, Reply, RpcError};
use crate::conn::reason::{CloseReason, ProtocolError};
use crate::protocol::packet_type::{Family, PacketType};
use crate::protocol::packets::{CreateCharReq, DeleteCharReq, Packet, SelectCharReq};

use super::{replies, Action, CharOp, CharSelect, CharSlot, Phase, Turn};

/// A packet in [`Phase::CharSelect`].
pub(super) fn on_packet(
    t: &mut Turn<'_, '_>,
    c: CharSelect,
    ptype: PacketType,
    body: &[u8],
) -> Phase {
    match ptype {
        PacketType::PAKCS_CHAR_LIST_REQ => {
            t.wait(Call::ListChars { user: c.user });
            Phase::CharPending(c, CharOp::List)
        }
        PacketType::PAKCS_CREATE_CHAR_REQ => match CreateCharReq::decode(body) {
            Ok(req) => create(t, c, req),
            Err(_) => t.fatal(Phase::CharSelect(c), ProtocolError::MalformedBody),
        },
        PacketType::PAKCS_DELETE_CHAR_REQ => match DeleteCharReq::decode(body) {
            Ok(req) => delete(t, c, req),
            Err(_) => t.fatal(Phase::CharSelect(c), ProtocolError::MalformedBody),
        },
        PacketType::PAKCS_SELECT_CHAR_REQ => match SelectCharReq::decode(body) {
            Ok(req) => select(t, c, &req),
            Err(_) => t.fatal(Phase::CharSelect(c), ProtocolError::MalformedBody),
        },
        // The irose client may send clan commands on its char connection
        // while it plays; there is no clan service to take them.
        PacketType::PAKCS_CLAN_COMMAND if t.family() == Family::Irose => Phase::CharSelect(c),
        _ => t.unexpected(Phase::CharSelect(c), ptype),
    }
}

fn create(t: &mut Turn<'_, '_>, c: CharSelect, req: CreateCharReq) -> Phase {
    let request = CreateRequest {
        name: req.name,
        race: req.race,
        stone: req.stone,
        hair: req.hair,
        face: req.face,
        weapon: req.weapon,
        zone: req.zone,
    };
    t.wait(Call::CreateChar {
        user: c.user,
        request,
    });
    Phase::CharPending(c, CharOp::Create)
}

fn delete(t: &mut Turn<'_, '_>, c: CharSelect, req: DeleteCharReq) -> Phase {
    let Some(slot) = c.chars.get(usize::from(req.slot)) else {
        // Out of range: refused, counted.
        t.out.push(Action::ProtocolError(ProtocolError::BadSlot));
        t.send(replies::delete_refused(req.name));
        return Phase::CharSelect(c);
    };
    t.wait(Call::DeleteChar {
        user: c.user,
        char_id: slot.char_id,
        delete: req.is_delete != 0,
    });
    let name = slot.name.clone();
    Phase::CharPending(c, CharOp::Delete { name })
}

fn select(t: &mut Turn<'_, '_>, c: CharSelect, req: &SelectCharReq) -> Phase {
    let Some(slot) = c.chars.get(usize::from(req.slot)) else {
        // SWITCH_SERVER has no result code: an out-of-range slot is a
        // protocol error (osIROSE disconnects too).
        return t.fatal(Phase::CharSelect(c), ProtocolError::BadSlot);
    };
    t.wait(Call::SelectChar {
        user: c.user,
        session: c.session,
        char_id: slot.char_id,
    });
    Phase::CharPending(c, CharOp::Select)
}

/// The character service answered (or failed to answer) `op`.
pub(super) fn on_reply(
    t: &mut Turn<'_, '_>,
    mut c: CharSelect,
    op: CharOp,
    result: &Result<Reply, RpcError>,
) -> Phase {
    match (op, result) {
        (CharOp::List, Ok(Reply::ListChars(list))) => {
            c.chars = list
                .iter()
                .map(|ch| CharSlot {
                    char_id: ch.char_id,
                    name: ch.name.clone(),
                })
                .collect();
            t.send(replies::char_list(list));
        }
        (CharOp::Create, Ok(Reply::CreateChar(outcome))) => t.send(replies::create(*outcome)),
        (CharOp::Create, _) => t.send(replies::create_failed()),
        (CharOp::Delete { name }, result) => {
            let remaining = match result {
                Ok(Reply::DeleteChar(DeleteReply {
                    outcome: Outcome::Ok,
                    remaining_secs,
                })) => Some(*remaining_secs),
                _ => None,
            };
            t.send(replies::delete(remaining, name));
        }
        (CharOp::Select, Ok(Reply::SelectChar(Outcome::Ok))) => {
            let family = t.family();
            t.send(replies::switch_server(t.ctx, c.session, family));
        }
        // Refused: SWITCH_SERVER has no result code.
        (CharOp::Select, Ok(_)) => {
            return t.close(Phase::CharSelect(c), CloseReason::SelectRefused);
        }
        // CHAR_LIST_REPLY and SWITCH_SERVER carry no result code: a failed
        // backend call can only close the connection.
        (CharOp::List | CharOp::Select, _) => {
            return t.close(Phase::CharSelect(c), CloseReason::BackendUnavailable);
        }
    }
    Phase::CharSelect(c)
}
