//! The irose character list (docs/protocol.md §10.5, C.6): the same size
//! per character as osIROSE's, but each equipment word is an item number
//! and a grade, the last two slots are sub-weapon then weapon, and face
//! and hair are u16s padded to four bytes.

use super::super::character::{equipped_item_parts, slot};
use super::super::{clamp_u16, read_array, BodyError, CharListReplyOf, Element, Reader, Writer};

/// Equipment slots of [`CharInfo::equipment`], in wire order.
pub mod equipment_slot {
    /// Head.
    pub const HEAD: usize = 0;
    /// Body.
    pub const BODY: usize = 1;
    /// Hands.
    pub const HANDS: usize = 2;
    /// Feet.
    pub const FEET: usize = 3;
    /// Face (goggles).
    pub const FACE: usize = 4;
    /// Back.
    pub const BACK: usize = 5;
    /// Sub-weapon (osIROSE's left-hand weapon).
    pub const SUB_WEAPON: usize = 6;
    /// Weapon (osIROSE's right-hand weapon).
    pub const WEAPON: usize = 7;
}

/// osIROSE slot of each irose slot of [`equipment_slot`].
const FROM_OSIROSE_SLOT: [usize; 8] = [
    slot::HELMET,
    slot::ARMOR,
    slot::GAUNTLET,
    slot::BOOTS,
    slot::GOGGLES,
    slot::BACKPACK,
    slot::WEAPON_L,
    slot::WEAPON_R,
];

/// One equipped item of the list: item number · grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListItem {
    /// Item number (0 = nothing).
    pub item_number: u16,
    /// Grade.
    pub grade: u16,
}

impl ListItem {
    fn decode(r: &mut Reader<'_>) -> Result<ListItem, BodyError> {
        Ok(ListItem {
            item_number: r.u16()?,
            grade: r.u16()?,
        })
    }
}

/// One character of [`CharListReply`] (51 bytes + name length).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharInfo {
    /// Name.
    pub name: String,
    /// 0 male, 1 female (the client rejects other values).
    pub gender: u8,
    /// Level.
    pub level: u16,
    /// Job.
    pub job: u16,
    /// Seconds until deletion; 0 = not scheduled.
    pub delete_seconds: u32,
    /// Premium slot.
    pub is_premium: u8,
    /// Face (a u16, then two zero bytes).
    pub face: u16,
    /// Hair (a u16, then two zero bytes).
    pub hair: u16,
    /// Equipment by [`equipment_slot`].
    pub equipment: [ListItem; 8],
}

impl Element for CharInfo {
    /// Smallest encoded entry (empty name).
    const MIN_SIZE: usize = 51;

    fn decode(r: &mut Reader<'_>) -> Result<CharInfo, BodyError> {
        let name = r.cstr()?;
        let gender = r.u8()?;
        let level = r.u16()?;
        let job = r.u16()?;
        let delete_seconds = r.u32()?;
        let is_premium = r.u8()?;
        let face = r.u16()?;
        r.u16()?;
        let hair = r.u16()?;
        r.u16()?;
        Ok(CharInfo {
            name,
            gender,
            level,
            job,
            delete_seconds,
            is_premium,
            face,
            hair,
            equipment: read_array(r, ListItem::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.cstr(&self.name);
        w.u8(self.gender);
        w.u16(self.level);
        w.u16(self.job);
        w.u32(self.delete_seconds);
        w.u8(self.is_premium);
        w.u16(self.face);
        w.u16(0);
        w.u16(self.hair);
        w.u16(0);
        for item in &self.equipment {
            w.u16(item.item_number);
            w.u16(item.grade);
        }
    }
}

impl From<&super::super::CharInfo> for CharInfo {
    /// Item numbers and grades from the EquippedItem words, slots reordered;
    /// face and hair cut to u16.
    fn from(c: &super::super::CharInfo) -> CharInfo {
        let equipment = FROM_OSIROSE_SLOT.map(|from| {
            let (id, _gem, _socket, grade) = equipped_item_parts(c.items[from]);
            ListItem {
                item_number: id,
                grade: u16::from(grade),
            }
        });
        CharInfo {
            name: c.name.clone(),
            gender: c.race,
            level: c.level,
            job: c.job,
            delete_seconds: c.remain_secs_until_delete,
            is_premium: c.platinium,
            face: clamp_u16(c.face),
            hair: clamp_u16(c.hair),
            equipment,
        }
    }
}

/// 0x712 to the client: count u8, then the characters (at most 255 are
/// encoded).
pub type CharListReply = CharListReplyOf<CharInfo>;

impl From<&super::super::CharListReply> for CharListReply {
    fn from(r: &super::super::CharListReply) -> CharListReply {
        CharListReplyOf {
            characters: r.characters.iter().map(CharInfo::from).collect(),
        }
    }
}
