//! The irose join burst and zone entry (docs/protocol.md §10.5, C.9–C.11):
//! character data (narrower points, no cart fields), the inventory with 139
//! items, the quest data (1024 bytes) and the 0x753 reply with its u32
//! fields.

use super::super::character::{read_items, write_items};
use super::super::{read_array, BodyError, HotbarItem, Item, Packet, Reader, StatusEffect, Writer};
use super::characters::clamp_u16;
use crate::protocol::packet_type::PacketType;

/// 0x715 to the map connection: the selected character (763 bytes + name
/// length). Fields as osIROSE's select-char reply, except hp, mp and the
/// stat and skill points are u16 and the cart fields are absent.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectCharReply {
    /// 0 male, 1 female.
    pub gender: u8,
    /// Zone.
    pub zone: u16,
    /// Position x.
    pub x: f32,
    /// Position y.
    pub y: f32,
    /// Revive zone.
    pub revive_zone: u16,
    /// Face.
    pub body_face: u32,
    /// Hair.
    pub body_hair: u32,
    /// Equipment parts (the bits of osIROSE's EquippedItem), head, body,
    /// hands, feet, face, back, weapon, sub-weapon.
    pub equipment: [u32; 8],
    /// Birth stone.
    pub birth_stone: u8,
    /// Face.
    pub face: u8,
    /// Hair.
    pub hair: u8,
    /// Job.
    pub job: u16,
    /// Union.
    pub union: u8,
    /// Rank.
    pub rank: u8,
    /// Fame.
    pub fame: u8,
    /// Strength, dexterity, intelligence, concentration, charm, sense.
    pub stats: [u16; 6],
    /// Hit points.
    pub hp: u16,
    /// Mana points.
    pub mp: u16,
    /// Experience.
    pub xp: u32,
    /// Level.
    pub level: u16,
    /// Unspent stat points.
    pub stat_points: u16,
    /// Unspent skill points.
    pub skill_points: u16,
    /// Body size (rose-offline 100).
    pub body_size: u8,
    /// Head size (rose-offline 200).
    pub head_size: u8,
    /// Experience penalty.
    pub penalty_xp: u32,
    /// Fame g, fame b.
    pub union_fame: [u16; 2],
    /// Union points.
    pub union_points: [u16; 10],
    /// Clan id.
    pub guild_id: u32,
    /// Contribution to the clan.
    pub guild_contribution: u16,
    /// Position in the clan.
    pub guild_pos: u8,
    /// PK flag.
    pub pk_flag: u16,
    /// Stamina.
    pub stamina: u16,
    /// Status effects.
    pub effects: [StatusEffect; 40],
    /// Skills: basic, active, passive, clan pages of 30.
    pub skills: [u16; 120],
    /// Hotbar.
    pub hotbar: [HotbarItem; 32],
    /// Character id.
    pub unique_id: u32,
    /// Name.
    pub name: String,
}

impl Default for SelectCharReply {
    fn default() -> SelectCharReply {
        SelectCharReply::from(&super::super::SelectCharReply::default())
    }
}

impl Packet for SelectCharReply {
    const TYPE: PacketType = PacketType::PAKWC_SELECT_CHAR_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        Ok(SelectCharReply {
            gender: r.u8()?,
            zone: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            revive_zone: r.u16()?,
            body_face: r.u32()?,
            body_hair: r.u32()?,
            equipment: read_items(r)?,
            birth_stone: r.u8()?,
            face: r.u8()?,
            hair: r.u8()?,
            job: r.u16()?,
            union: r.u8()?,
            rank: r.u8()?,
            fame: r.u8()?,
            stats: read_array(r, Reader::u16)?,
            hp: r.u16()?,
            mp: r.u16()?,
            xp: r.u32()?,
            level: r.u16()?,
            stat_points: r.u16()?,
            skill_points: r.u16()?,
            body_size: r.u8()?,
            head_size: r.u8()?,
            penalty_xp: r.u32()?,
            union_fame: read_array(r, Reader::u16)?,
            union_points: read_array(r, Reader::u16)?,
            guild_id: r.u32()?,
            guild_contribution: r.u16()?,
            guild_pos: r.u8()?,
            pk_flag: r.u16()?,
            stamina: r.u16()?,
            effects: read_array(r, StatusEffect::decode)?,
            skills: read_array(r, Reader::u16)?,
            hotbar: read_array(r, HotbarItem::decode)?,
            unique_id: r.u32()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.gender);
        w.u16(self.zone);
        w.f32(self.x);
        w.f32(self.y);
        w.u16(self.revive_zone);
        w.u32(self.body_face);
        w.u32(self.body_hair);
        write_items(w, &self.equipment);
        w.u8(self.birth_stone);
        w.u8(self.face);
        w.u8(self.hair);
        w.u16(self.job);
        w.u8(self.union);
        w.u8(self.rank);
        w.u8(self.fame);
        for &v in &self.stats {
            w.u16(v);
        }
        w.u16(self.hp);
        w.u16(self.mp);
        w.u32(self.xp);
        w.u16(self.level);
        w.u16(self.stat_points);
        w.u16(self.skill_points);
        w.u8(self.body_size);
        w.u8(self.head_size);
        w.u32(self.penalty_xp);
        for &v in self.union_fame.iter().chain(&self.union_points) {
            w.u16(v);
        }
        w.u32(self.guild_id);
        w.u16(self.guild_contribution);
        w.u8(self.guild_pos);
        w.u16(self.pk_flag);
        w.u16(self.stamina);
        for e in &self.effects {
            e.encode(w);
        }
        for &s in &self.skills {
            w.u16(s);
        }
        for h in &self.hotbar {
            h.encode(w);
        }
        w.u32(self.unique_id);
        w.cstr(&self.name);
    }
}

impl From<&super::super::SelectCharReply> for SelectCharReply {
    /// The same character in the irose layout: points cut to u16 (negative
    /// hit or mana points to 0), the cart fields dropped.
    fn from(c: &super::super::SelectCharReply) -> SelectCharReply {
        SelectCharReply {
            gender: c.race,
            zone: c.map,
            x: c.x,
            y: c.y,
            revive_zone: c.spawn,
            body_face: c.body_face,
            body_hair: c.body_hair,
            equipment: c.equipped_items,
            birth_stone: c.stone,
            face: c.face,
            hair: c.hair,
            job: c.job,
            union: c.faction_id,
            rank: c.faction_rank,
            fame: c.fame,
            stats: [c.str, c.dex, c.int, c.con, c.charm, c.sense],
            hp: clamp_u16(c.hp.max(0)),
            mp: clamp_u16(c.mp.max(0)),
            xp: c.xp,
            level: c.level,
            stat_points: clamp_u16(c.stat_points),
            skill_points: clamp_u16(c.skill_points),
            body_size: c.body_size,
            head_size: c.head_size,
            penalty_xp: c.penalty_xp,
            union_fame: c.faction_fame,
            union_points: c.faction_points,
            guild_id: c.guild_id,
            guild_contribution: c.guild_contribution,
            guild_pos: c.guild_rank,
            pk_flag: c.pk_flag,
            stamina: c.stamina,
            effects: c.effects,
            skills: c.skills,
            hotbar: c.hotbar,
            unique_id: c.tag,
            name: c.name.clone(),
        }
    }
}

/// Number of items in [`InventoryData::items`]: 12 equipment slots, 4 pages
/// of 30, 3 ammo, 4 vehicle parts.
pub const INVENTORY_ITEMS: usize = 139;

/// 0x716: money and every item slot (848 bytes). Items have the bits of
/// osIROSE's [`Item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryData {
    /// Money.
    pub money: i64,
    /// Every slot; empty slots are zero.
    pub items: [Item; INVENTORY_ITEMS],
}

impl Default for InventoryData {
    fn default() -> InventoryData {
        InventoryData {
            money: 0,
            items: [Item::default(); INVENTORY_ITEMS],
        }
    }
}

impl Packet for InventoryData {
    const TYPE: PacketType = PacketType::PAKWC_INVENTORY_DATA;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(InventoryData {
            money: r.i64()?,
            items: read_array(&mut r, Item::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.i64(self.money);
        for item in &self.items {
            item.encode(w);
        }
    }
}

impl From<&super::super::InventoryData> for InventoryData {
    /// The first 139 of osIROSE's 140 slots.
    fn from(inv: &super::super::InventoryData) -> InventoryData {
        let mut out = InventoryData {
            money: inv.zuly,
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
