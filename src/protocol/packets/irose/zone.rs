//! The irose join burst and zone entry (docs/protocol.md §10.5, C.9–C.11):
//! character data (narrower points, no cart fields), the inventory with 139
//! items, the quest data (1024 bytes) and the 0x753 reply with its u32
//! fields.

use super::super::clamp_u16;
use super::super::{read_array, BodyError, Inventory, Item, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// 0x715 to the map connection: the selected character (763 bytes + name
/// length), osIROSE's character record in the irose layout: hp, mp and the
/// stat and skill points are u16 (encoding cuts wider values; negative hit
/// or mana points become 0) and the cart fields (`pat_*`) are absent (they
/// decode as 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectCharReply(pub super::super::SelectCharReply);

impl Packet for SelectCharReply {
    const TYPE: PacketType = PacketType::PAKWC_SELECT_CHAR_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        let mut p = super::super::SelectCharReply::decode_head(r)?;
        p.hp = r.u16()?.into();
        p.mp = r.u16()?.into();
        p.xp = r.u32()?;
        p.level = r.u16()?;
        p.stat_points = r.u16()?.into();
        p.skill_points = r.u16()?.into();
        p.decode_middle(r)?;
        p.decode_tail(r)?;
        Ok(SelectCharReply(p))
    }

    fn encode(&self, w: &mut Writer<'_>) {
        let p = &self.0;
        p.encode_head(w);
        w.u16(clamp_u16(p.hp.max(0)));
        w.u16(clamp_u16(p.mp.max(0)));
        w.u32(p.xp);
        w.u16(p.level);
        w.u16(clamp_u16(p.stat_points));
        w.u16(clamp_u16(p.skill_points));
        p.encode_middle(w);
        p.encode_tail(w);
    }
}

impl From<&super::super::SelectCharReply> for SelectCharReply {
    fn from(c: &super::super::SelectCharReply) -> SelectCharReply {
        SelectCharReply(c.clone())
    }
}

/// Number of items in [`InventoryData::items`]: 12 equipment slots, 4 pages
/// of 30, 3 ammo, 4 vehicle parts.
pub const INVENTORY_ITEMS: usize = 139;

/// 0x716: money and every item slot (848 bytes). Items have the bits of
/// osIROSE's [`Item`].
pub type InventoryData = Inventory<INVENTORY_ITEMS>;

impl From<&super::super::InventoryData> for InventoryData {
    /// The first 139 of osIROSE's 140 slots.
    fn from(inv: &super::super::InventoryData) -> InventoryData {
        let mut out = InventoryData {
            zuly: inv.zuly,
            ..InventoryData::default()
        };
        for (to, from) in out.items.iter_mut().zip(&inv.items) {
            *to = *from;
        }
        out
    }
}

/// One active quest of [`QuestData`] (66 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActiveQuest {
    /// Quest id (0 = empty slot).
    pub quest_id: u16,
    /// Expiry time.
    pub expire: u32,
    /// Quest variables.
    pub vars: [u16; 10],
    /// Quest switches.
    pub switches: u32,
    /// Quest items.
    pub items: [Item; 6],
}

impl ActiveQuest {
    fn decode(r: &mut Reader<'_>) -> Result<ActiveQuest, BodyError> {
        Ok(ActiveQuest {
            quest_id: r.u16()?,
            expire: r.u32()?,
            vars: read_array(r, Reader::u16)?,
            switches: r.u32()?,
            items: read_array(r, Item::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.quest_id);
        w.u32(self.expire);
        for &v in &self.vars {
            w.u16(v);
        }
        w.u32(self.switches);
        for item in &self.items {
            item.encode(w);
        }
    }
}

/// 0x71B: quest state (1024 bytes; rose-offline sends it all zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuestData {
    /// Episode variables.
    pub episode_vars: [u16; 5],
    /// Job variables.
    pub job_vars: [u16; 3],
    /// Planet variables.
    pub planet_vars: [u16; 7],
    /// Union variables.
    pub union_vars: [u16; 10],
    /// Active quests.
    pub quests: [ActiveQuest; 10],
    /// Quest switches.
    pub switches: [u32; 32],
    /// Wish list.
    pub wish_list: [Item; 30],
}

impl Packet for QuestData {
    const TYPE: PacketType = PacketType::PAKWC_QUEST_DATA;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        Ok(QuestData {
            episode_vars: read_array(r, Reader::u16)?,
            job_vars: read_array(r, Reader::u16)?,
            planet_vars: read_array(r, Reader::u16)?,
            union_vars: read_array(r, Reader::u16)?,
            quests: read_array(r, ActiveQuest::decode)?,
            switches: read_array(r, Reader::u32)?,
            wish_list: read_array(r, Item::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        let vars = self.episode_vars.iter().chain(&self.job_vars);
        for &v in vars.chain(&self.planet_vars).chain(&self.union_vars) {
            w.u16(v);
        }
        for q in &self.quests {
            q.encode(w);
        }
        for &s in &self.switches {
            w.u32(s);
        }
        for item in &self.wish_list {
            item.encode(w);
        }
    }
}

/// 0x753 to the client: zone entry accepted, with the player's own entity
/// id (52 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeMapReply {
    /// The player's entity id, used by every later packet.
    pub entity_id: u16,
    /// Hit points.
    pub hp: u16,
    /// Mana points.
    pub mp: u16,
    /// Experience.
    pub xp: u32,
    /// Experience penalty.
    pub penalty_xp: u32,
    /// Crafting rate.
    pub craft_rate: u16,
    /// Update time.
    pub update_time: u32,
    /// World price rate.
    pub world_price_rate: u16,
    /// Town price rate.
    pub town_price_rate: u8,
    /// Item price rates.
    pub item_price_rate: [u8; 11],
    /// Bit 0: PvP allowed.
    pub global_flags: u32,
    /// World ticks.
    pub world_ticks: u32,
    /// Team.
    pub team: u32,
}

impl Packet for ChangeMapReply {
    const TYPE: PacketType = PacketType::PAKWC_CHANGE_MAP_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ChangeMapReply {
            entity_id: r.u16()?,
            hp: r.u16()?,
            mp: r.u16()?,
            xp: r.u32()?,
            penalty_xp: r.u32()?,
            craft_rate: r.u16()?,
            update_time: r.u32()?,
            world_price_rate: r.u16()?,
            town_price_rate: r.u8()?,
            item_price_rate: r.array()?,
            global_flags: r.u32()?,
            world_ticks: r.u32()?,
            team: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.entity_id);
        w.u16(self.hp);
        w.u16(self.mp);
        w.u32(self.xp);
        w.u32(self.penalty_xp);
        w.u16(self.craft_rate);
        w.u32(self.update_time);
        w.u16(self.world_price_rate);
        w.u8(self.town_price_rate);
        w.bytes(&self.item_price_rate);
        w.u32(self.global_flags);
        w.u32(self.world_ticks);
        w.u32(self.team);
    }
}

impl From<&super::super::ChangeMapReply> for ChangeMapReply {
    /// osIROSE's u16 fields widened.
    fn from(r: &super::super::ChangeMapReply) -> ChangeMapReply {
        ChangeMapReply {
            entity_id: r.object_index,
            hp: r.hp,
            mp: r.mp,
            xp: r.xp.into(),
            penalty_xp: r.penalize_xp.into(),
            craft_rate: r.craft_rate,
            update_time: r.update_time.into(),
            world_price_rate: r.world_rate,
            town_price_rate: r.town_rate,
            item_price_rate: r.item_rate,
            global_flags: r.flags,
            world_ticks: r.world_time.into(),
            team: r.team_number.into(),
        }
    }
}
