//! What the world sends, in each family's layout: packet bodies with their
//! `osirose` id (the packet's name on the stream), the join burst, the
//! zone-join reply, and the player spawn and removal packets clients need
//! to see each other (docs/protocol.md §3.16, §10.5.15).

use crate::protocol::codec::{HEADER_LEN, MAX_PACKET_SIZE};
use crate::protocol::packet_type::{DialectId, Family};
use crate::protocol::packets::{
    irose, BillingMessage, ChangeMapReply, InventoryData, Packet, PlayerChar, QuestData,
    RemoveObject, SelectCharReply, Writer,
};

use super::super::characters::Character;
use super::inner::{Look, Player};

/// What one family is sent of a packet.
#[derive(Clone, Debug)]
pub(super) enum Body {
    /// The body (no header) and its `osirose` id.
    Packet(u32, Vec<u8>),
    /// The packet has no `osirose` id or does not fit in a packet: not
    /// sent, counted.
    Oversized,
}

/// Move speed announced for a player (rose-offline's run speed).
const MOVE_SPEED: u16 = 425;
/// Move mode announced for a player: run.
const RUN: u8 = 1;
/// Body and head sizes of an irose character (rose-offline's values).
const IROSE_BODY_SIZE: u8 = 100;
const IROSE_HEAD_SIZE: u8 = 200;

/// Encodes a packet's body (no header) with its `osirose` id.
pub(super) fn body_of<P: Packet>(p: &P) -> Body {
    let Some(id) = DialectId::Osirose.dialect().wire_id(P::TYPE) else {
        return Body::Oversized;
    };
    let mut buf = vec![0u8; MAX_PACKET_SIZE - HEADER_LEN];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    if w.overflowed() {
        log::debug!("world: {} does not fit in a packet", P::TYPE);
        return Body::Oversized;
    }
    let len = w.len();
    buf.truncate(len);
    Body::Packet(u32::from(id), buf)
}

/// A packet whose layout both families share.
pub(super) fn same<P: Packet>(p: &P) -> impl Fn(Family) -> Body + '_ {
    move |_| body_of(p)
}

/// A packet with a layout per family.
pub(super) fn each<'a, O: Packet, I: Packet>(
    osirose: &'a O,
    irose: &'a I,
) -> impl Fn(Family) -> Body + 'a {
    move |family| match family {
        Family::Osirose => body_of(osirose),
        Family::Irose => body_of(irose),
    }
}

/// The join burst for a client of `family`, in order.
pub(super) fn join_burst(c: &Character, family: Family) -> Vec<Body> {
    let select = select_char_reply(c);
    match family {
        Family::Osirose => vec![
            body_of(&select),
            body_of(&InventoryData::default()),
            body_of(&QuestData::default()),
            body_of(&BillingMessage {
                function_type: 0x1001,
                pay_flag: 2,
            }),
        ],
        Family::Irose => {
            let mut select = irose::SelectCharReply::from(&select);
            select.0.body_size = IROSE_BODY_SIZE;
            select.0.head_size = IROSE_HEAD_SIZE;
            vec![
                body_of(&select),
                body_of(&irose::InventoryData::default()),
                body_of(&irose::QuestData::default()),
            ]
        }
    }
}

/// PAKWC_SELECT_CHAR_REPLY for a character entering the world.
fn select_char_reply(c: &Character) -> SelectCharReply {
    SelectCharReply {
        race: c.race,
        map: c.map,
        x: c.x,
        y: c.y,
        body_face: c.face.into(),
        body_hair: c.hair.into(),
        equipped_items: c.items,
        stone: c.stone,
        face: c.face,
        hair: c.hair,
        job: c.job,
        str: c.stats.strength,
        dex: c.stats.dexterity,
        int: c.stats.intellect,
        con: c.stats.concentration,
        charm: c.stats.charm,
        sense: c.stats.sense,
        hp: c.hp.into(),
        mp: c.mp.into(),
        level: c.level,
        stamina: 5000,
        name: c.name.clone(),
        ..Default::default()
    }
}

/// The zone-join reply of a player, in both layouts.
pub(super) fn change_map_reply(p: &Player) -> (ChangeMapReply, irose::ChangeMapReply) {
    let reply = ChangeMapReply {
        object_index: p.entity_id,
        hp: p.hp,
        mp: p.mp,
        world_rate: 100,
        town_rate: 100,
        ..Default::default()
    };
    let irose = irose::ChangeMapReply::from(&reply);
    (reply, irose)
}

/// What clients are shown of a player that comes into view, in both
/// layouts: standing at its position.
pub(super) fn spawn_of(p: &Player) -> (PlayerChar, irose::PlayerSpawn) {
    let Look {
        race,
        face,
        hair,
        items,
        job,
        level,
    } = p.look;
    let level = u8::try_from(level).unwrap_or(u8::MAX);
    let hp = i32::from(p.hp);
    let osirose = PlayerChar {
        id: p.entity_id,
        x: p.x,
        y: p.y,
        dest_x: p.x,
        dest_y: p.y,
        move_mode: RUN,
        hp,
        race,
        run_speed: MOVE_SPEED,
        face: face.into(),
        hair: hair.into(),
        inventory: items,
        job,
        level,
        name: p.name.clone(),
        ..PlayerChar::default()
    };
    let irose = irose::PlayerSpawn {
        header: irose::EntityHeader {
            entity_id: p.entity_id,
            x: p.x,
            y: p.y,
            move_mode: RUN,
            hp,
            ..irose::EntityHeader::default()
        },
        gender: race,
        move_speed: MOVE_SPEED,
        face: face.into(),
        hair: hair.into(),
        equipment: items,
        job,
        level,
        name: p.name.clone(),
        ..irose::PlayerSpawn::default()
    };
    (osirose, irose)
}

/// The removal of a player from view, in both layouts.
pub(super) fn removal(entity_id: u16) -> (RemoveObject, irose::RemoveEntities) {
    (
        RemoveObject { id: entity_id },
        irose::RemoveEntities {
            ids: vec![entity_id],
        },
    )
}
