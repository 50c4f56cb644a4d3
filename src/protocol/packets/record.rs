//! The selected character's record, PAKWC_SELECT_CHAR_REPLY
//! (docs/protocol.md §3.9), sent after the map join, with its status effects and hotbar. Its
//! encode and decode come in sections the irose layout shares
//! (docs/protocol.md §10.5, `irose/zone.rs`): only the points and the cart
//! fields differ.

use super::character::{read_items, write_items};
use super::{read_array, BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// One active status effect in [`SelectCharReply`] (8 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusEffect {
    /// Expiry.
    pub expired: u32,
    /// Effect value.
    pub value: u16,
    /// Unknown; carried as is.
    pub unknown: u16,
}

impl StatusEffect {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<StatusEffect, BodyError> {
        Ok(StatusEffect {
            expired: r.u32()?,
            value: r.u16()?,
            unknown: r.u16()?,
        })
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.expired);
        w.u16(self.value);
        w.u16(self.unknown);
    }
}

/// One hotbar slot: 2 bytes, type in bits 0–4 and slot id in bits 5–15
/// (values wider than their field are cut on encode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotbarItem {
    /// Kind of entry (0..32).
    pub item_type: u8,
    /// Slot or skill id (0..2048).
    pub slot_id: u16,
}

impl HotbarItem {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<HotbarItem, BodyError> {
        let word = r.u16()?;
        Ok(HotbarItem {
            item_type: (word & 0x1F) as u8,
            slot_id: word >> 5,
        })
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.u16(u16::from(self.item_type & 0x1F) | (self.slot_id & 0x7FF) << 5);
    }
}

/// PAKWC_SELECT_CHAR_REPLY: the selected character, sent after the map join
/// (777 bytes + name length). Every field of docs/protocol.md §3.9, in
/// wire order.
/// `Default` gives zeros everywhere, so a backend fills only what it knows.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectCharReply {
    /// 0 male, 1 female.
    pub race: u8,
    /// Map (zone) id.
    pub map: u16,
    /// Position x.
    pub x: f32,
    /// Position y.
    pub y: f32,
    /// Respawn point.
    pub spawn: u16,
    /// Face.
    pub body_face: u32,
    /// Hair.
    pub body_hair: u32,
    /// EquippedItem words (as in the character list).
    pub equipped_items: [u32; 8],
    /// Birth stone.
    pub stone: u8,
    /// Face.
    pub face: u8,
    /// Hair.
    pub hair: u8,
    /// Job.
    pub job: u16,
    /// Faction.
    pub faction_id: u8,
    /// Rank in the faction.
    pub faction_rank: u8,
    /// Fame.
    pub fame: u8,
    /// Strength.
    pub str: u16,
    /// Dexterity.
    pub dex: u16,
    /// Intelligence.
    pub int: u16,
    /// Concentration.
    pub con: u16,
    /// Charm.
    pub charm: u16,
    /// Sense.
    pub sense: u16,
    /// Hit points.
    pub hp: i32,
    /// Mana points.
    pub mp: i32,
    /// Experience.
    pub xp: u32,
    /// Level.
    pub level: u16,
    /// Unspent stat points.
    pub stat_points: u32,
    /// Unspent skill points.
    pub skill_points: u32,
    /// Body size.
    pub body_size: u8,
    /// Head size.
    pub head_size: u8,
    /// Experience penalty.
    pub penalty_xp: u32,
    /// Faction fame.
    pub faction_fame: [u16; 2],
    /// Faction points.
    pub faction_points: [u16; 10],
    /// Guild (clan) id.
    pub guild_id: u32,
    /// Contribution to the guild.
    pub guild_contribution: u16,
    /// Rank in the guild.
    pub guild_rank: u8,
    /// PK flag.
    pub pk_flag: u16,
    /// Stamina.
    pub stamina: u16,
    /// Status effects.
    pub effects: [StatusEffect; 40],
    /// Cart/castle-gear hit points.
    pub pat_hp: u16,
    /// Cart/castle-gear cooldown.
    pub pat_cooldown_time: u32,
    /// Learnt skills.
    pub skills: [u16; 120],
    /// Hotbar.
    pub hotbar: [HotbarItem; 32],
    /// Character tag (id).
    pub tag: u32,
    /// Character name.
    pub name: String,
}

impl Default for SelectCharReply {
    fn default() -> SelectCharReply {
        SelectCharReply {
            race: 0,
            map: 0,
            x: 0.0,
            y: 0.0,
            spawn: 0,
            body_face: 0,
            body_hair: 0,
            equipped_items: [0; 8],
            stone: 0,
            face: 0,
            hair: 0,
            job: 0,
            faction_id: 0,
            faction_rank: 0,
            fame: 0,
            str: 0,
            dex: 0,
            int: 0,
            con: 0,
            charm: 0,
            sense: 0,
            hp: 0,
            mp: 0,
            xp: 0,
            level: 0,
            stat_points: 0,
            skill_points: 0,
            body_size: 0,
            head_size: 0,
            penalty_xp: 0,
            faction_fame: [0; 2],
            faction_points: [0; 10],
            guild_id: 0,
            guild_contribution: 0,
            guild_rank: 0,
            pk_flag: 0,
            stamina: 0,
            effects: [StatusEffect::default(); 40],
            pat_hp: 0,
            pat_cooldown_time: 0,
            skills: [0; 120],
            hotbar: [HotbarItem::default(); 32],
            tag: 0,
            name: String::new(),
        }
    }
}

impl SelectCharReply {
    /// Offsets 6..79, the same in both families: appearance, equipment,
    /// looks, job, faction and stats. The other fields are left at 0.
    pub(super) fn decode_head(r: &mut Reader<'_>) -> Result<SelectCharReply, BodyError> {
        Ok(SelectCharReply {
            race: r.u8()?,
            map: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            spawn: r.u16()?,
            body_face: r.u32()?,
            body_hair: r.u32()?,
            equipped_items: read_items(r)?,
            stone: r.u8()?,
            face: r.u8()?,
            hair: r.u8()?,
            job: r.u16()?,
            faction_id: r.u8()?,
            faction_rank: r.u8()?,
            fame: r.u8()?,
            str: r.u16()?,
            dex: r.u16()?,
            int: r.u16()?,
            con: r.u16()?,
            charm: r.u16()?,
            sense: r.u16()?,
            ..SelectCharReply::default()
        })
    }

    /// Writes what [`SelectCharReply::decode_head`] reads.
    pub(super) fn encode_head(&self, w: &mut Writer<'_>) {
        w.u8(self.race);
        w.u16(self.map);
        w.f32(self.x);
        w.f32(self.y);
        w.u16(self.spawn);
        w.u32(self.body_face);
        w.u32(self.body_hair);
        write_items(w, &self.equipped_items);
        w.u8(self.stone);
        w.u8(self.face);
        w.u8(self.hair);
        w.u16(self.job);
        w.u8(self.faction_id);
        w.u8(self.faction_rank);
        w.u8(self.fame);
        for v in [
            self.str, self.dex, self.int, self.con, self.charm, self.sense,
        ] {
            w.u16(v);
        }
    }

    /// From the body size to the status effects, after the points (both
    /// families).
    pub(super) fn decode_middle(&mut self, r: &mut Reader<'_>) -> Result<(), BodyError> {
        self.body_size = r.u8()?;
        self.head_size = r.u8()?;
        self.penalty_xp = r.u32()?;
        self.faction_fame = read_array(r, Reader::u16)?;
        self.faction_points = read_array(r, Reader::u16)?;
        self.guild_id = r.u32()?;
        self.guild_contribution = r.u16()?;
        self.guild_rank = r.u8()?;
        self.pk_flag = r.u16()?;
        self.stamina = r.u16()?;
        self.effects = read_array(r, StatusEffect::decode)?;
        Ok(())
    }

    /// Writes what [`SelectCharReply::decode_middle`] reads.
    pub(super) fn encode_middle(&self, w: &mut Writer<'_>) {
        w.u8(self.body_size);
        w.u8(self.head_size);
        w.u32(self.penalty_xp);
        for &v in self.faction_fame.iter().chain(&self.faction_points) {
            w.u16(v);
        }
        w.u32(self.guild_id);
        w.u16(self.guild_contribution);
        w.u8(self.guild_rank);
        w.u16(self.pk_flag);
        w.u16(self.stamina);
        for e in &self.effects {
            e.encode(w);
        }
    }

    /// Skills, hotbar, tag and name, the end in both families.
    pub(super) fn decode_tail(&mut self, r: &mut Reader<'_>) -> Result<(), BodyError> {
        self.skills = read_array(r, Reader::u16)?;
        self.hotbar = read_array(r, HotbarItem::decode)?;
        self.tag = r.u32()?;
        self.name = r.cstr()?;
        Ok(())
    }

    /// Writes what [`SelectCharReply::decode_tail`] reads.
    pub(super) fn encode_tail(&self, w: &mut Writer<'_>) {
        for &s in &self.skills {
            w.u16(s);
        }
        for h in &self.hotbar {
            h.encode(w);
        }
        w.u32(self.tag);
        w.cstr(&self.name);
    }
}

impl Packet for SelectCharReply {
    const TYPE: PacketType = PacketType::PAKWC_SELECT_CHAR_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        let mut p = SelectCharReply::decode_head(r)?;
        p.hp = r.i32()?;
        p.mp = r.i32()?;
        p.xp = r.u32()?;
        p.level = r.u16()?;
        p.stat_points = r.u32()?;
        p.skill_points = r.u32()?;
        p.decode_middle(r)?;
        p.pat_hp = r.u16()?;
        p.pat_cooldown_time = r.u32()?;
        p.decode_tail(r)?;
        Ok(p)
    }

    fn encode(&self, w: &mut Writer<'_>) {
        self.encode_head(w);
        w.i32(self.hp);
        w.i32(self.mp);
        w.u32(self.xp);
        w.u16(self.level);
        w.u32(self.stat_points);
        w.u32(self.skill_points);
        self.encode_middle(w);
        w.u16(self.pat_hp);
        w.u32(self.pat_cooldown_time);
        self.encode_tail(w);
    }
}
