//! The map join burst and zone entry (docs/protocol.md §3.9, §3.10): inventory,
//! quest data, billing message, teleport, change map. The selected
//! character's record is in `record.rs`.

use super::{read_array, BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// PAKCS_CHANGE_MAP_REQ: the client has loaded the zone (9 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeMapReq {
    /// Carried weight, percent.
    pub weight_rate: u8,
    /// Height.
    pub z: u16,
}

impl Packet for ChangeMapReq {
    const TYPE: PacketType = PacketType::PAKCS_CHANGE_MAP_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ChangeMapReq {
            weight_rate: r.u8()?,
            z: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.weight_rate);
        w.u16(self.z);
    }
}

/// PAKWC_CHANGE_MAP_REPLY: zone entry accepted (42 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeMapReply {
    /// The player's entity id.
    pub object_index: u16,
    /// Hit points.
    pub hp: u16,
    /// Mana points.
    pub mp: u16,
    /// Experience.
    pub xp: u16,
    /// Experience penalty.
    pub penalize_xp: u16,
    /// Crafting rate.
    pub craft_rate: u16,
    /// Update time.
    pub update_time: u16,
    /// World rate.
    pub world_rate: u16,
    /// Town rate.
    pub town_rate: u8,
    /// Item rates.
    pub item_rate: [u8; 11],
    /// Flags.
    pub flags: u32,
    /// World time.
    pub world_time: u16,
    /// Team (PvP) number.
    pub team_number: u16,
}

impl Packet for ChangeMapReply {
    const TYPE: PacketType = PacketType::PAKWC_CHANGE_MAP_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ChangeMapReply {
            object_index: r.u16()?,
            hp: r.u16()?,
            mp: r.u16()?,
            xp: r.u16()?,
            penalize_xp: r.u16()?,
            craft_rate: r.u16()?,
            update_time: r.u16()?,
            world_rate: r.u16()?,
            town_rate: r.u8()?,
            item_rate: r.array()?,
            flags: r.u32()?,
            world_time: r.u16()?,
            team_number: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        for v in [
            self.object_index,
            self.hp,
            self.mp,
            self.xp,
            self.penalize_xp,
            self.craft_rate,
            self.update_time,
            self.world_rate,
        ] {
            w.u16(v);
        }
        w.u8(self.town_rate);
        w.bytes(&self.item_rate);
        w.u32(self.flags);
        w.u16(self.world_time);
        w.u16(self.team_number);
    }
}

/// One inventory item (6 bytes): the two union words of
/// docs/protocol.md §3.10, carried raw.
///
/// `header`: type bits 0–4, id 5–14, isCreated 15. `data`: gem_opt 0–8,
/// durability 9–15, life 16–25, hasSocket 26, isAppraised 27, refine 28–31;
/// for stackable items, the count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Item {
    /// Header word.
    pub header: u16,
    /// Data word.
    pub data: u32,
}

impl Item {
    /// Builds a header word from its parts (values cut to their fields).
    pub fn header_word(item_type: u8, id: u16, is_created: bool) -> u16 {
        u16::from(item_type & 0x1F) | (id & 0x3FF) << 5 | u16::from(is_created) << 15
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Item, BodyError> {
        Ok(Item {
            header: r.u16()?,
            data: r.u32()?,
        })
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.header);
        w.u32(self.data);
    }
}

/// Number of slots in [`InventoryData::items`].
pub const INVENTORY_SLOTS: usize = 140;

/// PAKWC_INVENTORY_DATA with `N` item slots: money and every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory<const N: usize> {
    /// Money.
    pub zuly: i64,
    /// Every slot; empty slots are zero.
    pub items: [Item; N],
}

/// PAKWC_INVENTORY_DATA in the osIROSE layout: 140 slots (854 bytes).
pub type InventoryData = Inventory<INVENTORY_SLOTS>;

impl<const N: usize> Default for Inventory<N> {
    fn default() -> Inventory<N> {
        Inventory {
            zuly: 0,
            items: [Item::default(); N],
        }
    }
}

impl<const N: usize> Packet for Inventory<N> {
    const TYPE: PacketType = PacketType::PAKWC_INVENTORY_DATA;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(Inventory {
            zuly: r.i64()?,
            items: read_array(&mut r, Item::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.i64(self.zuly);
        for item in &self.items {
            item.encode(w);
        }
    }
}

/// Length of the [`QuestData`] body.
pub const QUEST_DATA_LEN: usize = 954;

/// PAKWC_QUEST_DATA (960 bytes). protocol.md gives no field layout (quest
/// variables, active quests, switches), so the body is carried as opaque
/// bytes: exactly [`QUEST_DATA_LEN`] of them, all zero for a character
/// without quest state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestData {
    /// The body, byte for byte.
    pub body: [u8; QUEST_DATA_LEN],
}

impl Default for QuestData {
    fn default() -> QuestData {
        QuestData {
            body: [0; QUEST_DATA_LEN],
        }
    }
}

impl Packet for QuestData {
    const TYPE: PacketType = PacketType::PAKWC_QUEST_DATA;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(QuestData { body: r.array()? })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(&self.body);
    }
}

/// PAKWC_BILLING_MESSAGE (12 bytes): the first map join's billing notice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillingMessage {
    /// osIROSE: [`BillingMessage::FUNCTION_TYPE`].
    pub function_type: u16,
    /// osIROSE: [`BillingMessage::PAY_FLAG`].
    pub pay_flag: u32,
}

impl BillingMessage {
    /// The function type osIROSE sends.
    pub const FUNCTION_TYPE: u16 = 0x1001;
    /// The pay flag osIROSE sends.
    pub const PAY_FLAG: u32 = 2;
}

impl Packet for BillingMessage {
    const TYPE: PacketType = PacketType::PAKWC_BILLING_MESSAGE;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(BillingMessage {
            function_type: r.u16()?,
            pay_flag: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.function_type);
        w.u32(self.pay_flag);
    }
}

/// PAKWC_TELEPORT_REPLY (20 bytes): sent instead of the billing message when
/// arriving from another map.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TeleportReply {
    /// The player's entity id.
    pub id: u16,
    /// Map (zone) id.
    pub map: u16,
    /// Position x.
    pub x: f32,
    /// Position y.
    pub y: f32,
    /// Move mode.
    pub move_mode: u8,
    /// Ride mode.
    pub ride_mode: u8,
}

impl Packet for TeleportReply {
    const TYPE: PacketType = PacketType::PAKWC_TELEPORT_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(TeleportReply {
            id: r.u16()?,
            map: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            move_mode: r.u8()?,
            ride_mode: r.u8()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.id);
        w.u16(self.map);
        w.f32(self.x);
        w.f32(self.y);
        w.u8(self.move_mode);
        w.u8(self.ride_mode);
    }
}
