//! Character list, create, delete and select, and the switch to the map
//! phase (docs/protocol.md §3.6–§3.9).

use super::{write_counted, BodyError, Element, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// Builds an EquippedItem word (docs/protocol.md §3.6): bits LSB-first, id
/// 0–9, gem_opt 10–18, socket 19, grade 20–23, 24–31 unused. Values wider
/// than their bit field are cut to it.
pub fn equipped_item(id: u16, gem_opt: u16, socket: bool, grade: u8) -> u32 {
    (u32::from(id) & 0x3FF)
        | (u32::from(gem_opt) & 0x1FF) << 10
        | u32::from(socket) << 19
        | (u32::from(grade) & 0xF) << 20
}

/// The parts of an EquippedItem word: `(id, gem_opt, socket, grade)`.
pub fn equipped_item_parts(word: u32) -> (u16, u16, bool, u8) {
    (
        (word & 0x3FF) as u16,
        ((word >> 10) & 0x1FF) as u16,
        (word >> 19) & 1 == 1,
        ((word >> 20) & 0xF) as u8,
    )
}

/// Equipment slot indices of [`CharInfo::items`] and
/// [`SelectCharReply::equipped_items`](super::SelectCharReply::equipped_items).
pub mod slot {
    /// Helmet.
    pub const HELMET: usize = 0;
    /// Armor.
    pub const ARMOR: usize = 1;
    /// Gauntlet.
    pub const GAUNTLET: usize = 2;
    /// Boots.
    pub const BOOTS: usize = 3;
    /// Goggles.
    pub const GOGGLES: usize = 4;
    /// Backpack.
    pub const BACKPACK: usize = 5;
    /// Right-hand weapon.
    pub const WEAPON_R: usize = 6;
    /// Left-hand weapon.
    pub const WEAPON_L: usize = 7;
}

pub(super) fn read_items(r: &mut Reader<'_>) -> Result<[u32; 8], BodyError> {
    super::read_array(r, Reader::u32)
}

pub(super) fn write_items(w: &mut Writer<'_>, items: &[u32; 8]) {
    for &item in items {
        w.u32(item);
    }
}

empty_packet! {
    /// PAKCS_CHAR_LIST_REQ: empty body; answered with [`CharListReply`].
    CharListReq = PAKCS_CHAR_LIST_REQ
}

/// One character in [`CharListReply`] (51 bytes + name length). Its position
/// in the list is the slot later used by delete and select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharInfo {
    /// Character name.
    pub name: String,
    /// 0 male, 1 female.
    pub race: u8,
    /// Level.
    pub level: u16,
    /// Job.
    pub job: u16,
    /// Seconds until deletion; 0 = not scheduled.
    pub remain_secs_until_delete: u32,
    /// Premium flag; osIROSE 0.
    pub platinium: u8,
    /// Face.
    pub face: u32,
    /// Hair.
    pub hair: u32,
    /// EquippedItem words by [`slot`]; see [`equipped_item`].
    pub items: [u32; 8],
}

impl Element for CharInfo {
    /// Smallest encoded entry (empty name).
    const MIN_SIZE: usize = 51;

    fn decode(r: &mut Reader<'_>) -> Result<CharInfo, BodyError> {
        Ok(CharInfo {
            name: r.cstr()?,
            race: r.u8()?,
            level: r.u16()?,
            job: r.u16()?,
            remain_secs_until_delete: r.u32()?,
            platinium: r.u8()?,
            face: r.u32()?,
            hair: r.u32()?,
            items: read_items(r)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.cstr(&self.name);
        w.u8(self.race);
        w.u16(self.level);
        w.u16(self.job);
        w.u32(self.remain_secs_until_delete);
        w.u8(self.platinium);
        w.u32(self.face);
        w.u32(self.hair);
        write_items(w, &self.items);
    }
}

/// PAKCC_CHAR_LIST_REPLY with characters of the family's layout `C`: a u8
/// count, then the characters (at most 255 are encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharListReplyOf<C> {
    /// The account's characters, in slot order.
    pub characters: Vec<C>,
}

/// PAKCC_CHAR_LIST_REPLY in the osIROSE layout.
pub type CharListReply = CharListReplyOf<CharInfo>;

impl<C: Element> Packet for CharListReplyOf<C> {
    const TYPE: PacketType = PacketType::PAKCC_CHAR_LIST_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let count = usize::from(r.u8()?);
        Ok(CharListReplyOf {
            characters: r.counted(count, C::MIN_SIZE, C::decode)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        write_counted(w, &self.characters, |w, c| c.encode(w));
    }
}

/// PAKCS_CREATE_CHAR_REQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateCharReq {
    /// 0 male, 1 female.
    pub race: u8,
    /// Birth stone.
    pub stone: u8,
    /// Hair style.
    pub hair: u8,
    /// Face.
    pub face: u8,
    /// Starting weapon (osIROSE ignores it).
    pub weapon: u8,
    /// Starting zone (osIROSE ignores it).
    pub zone: u16,
    /// Requested name.
    pub name: String,
}

impl Packet for CreateCharReq {
    const TYPE: PacketType = PacketType::PAKCS_CREATE_CHAR_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(CreateCharReq {
            race: r.u8()?,
            stone: r.u8()?,
            hair: r.u8()?,
            face: r.u8()?,
            weapon: r.u8()?,
            zone: r.u16()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.race);
        w.u8(self.stone);
        w.u8(self.hair);
        w.u8(self.face);
        w.u8(self.weapon);
        w.u16(self.zone);
        w.cstr(&self.name);
    }
}

/// PAKCC_CREATE_CHAR_REPLY (8 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateCharReply {
    /// [`CreateCharReply::OK`] … [`CreateCharReply::BLOCKED`].
    pub result: u8,
    /// Premium flag; 0.
    pub platinum: u8,
}

impl CreateCharReply {
    /// Result 0, OK.
    pub const OK: u8 = 0;
    /// Result 1, FAILED.
    pub const FAILED: u8 = 1;
    /// Result 2, NAME_TAKEN.
    pub const NAME_TAKEN: u8 = 2;
    /// Result 3, INVALID_VALUE.
    pub const INVALID_VALUE: u8 = 3;
    /// Result 4, TOO_MANY_CHARS.
    pub const TOO_MANY_CHARS: u8 = 4;
    /// Result 5, BLOCKED.
    pub const BLOCKED: u8 = 5;
}

impl Packet for CreateCharReply {
    const TYPE: PacketType = PacketType::PAKCC_CREATE_CHAR_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(CreateCharReply {
            result: r.u8()?,
            platinum: r.u8()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.result);
        w.u8(self.platinum);
    }
}

/// PAKCS_DELETE_CHAR_REQ. The slot is checked against the last list sent
/// (docs/protocol.md §9 D9) by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteCharReq {
    /// Slot in the last [`CharListReply`].
    pub slot: u8,
    /// 1 delete, 0 cancel a scheduled deletion.
    pub is_delete: u8,
    /// Character name.
    pub name: String,
}

impl Packet for DeleteCharReq {
    const TYPE: PacketType = PacketType::PAKCS_DELETE_CHAR_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(DeleteCharReq {
            slot: r.u8()?,
            is_delete: r.u8()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.slot);
        w.u8(self.is_delete);
        w.cstr(&self.name);
    }
}

/// PAKCC_DELETE_CHAR_REPLY.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteCharReply {
    /// Seconds until deletion; 0 = cancelled or immediate;
    /// [`DeleteCharReply::REFUSED`] = refused.
    pub remaining_time: u32,
    /// Character name.
    pub name: String,
}

impl DeleteCharReply {
    /// `remaining_time` of a refused deletion (real client).
    pub const REFUSED: u32 = 0xFFFF_FFFF;
}

impl Packet for DeleteCharReply {
    const TYPE: PacketType = PacketType::PAKCC_DELETE_CHAR_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(DeleteCharReply {
            remaining_time: r.u32()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.remaining_time);
        w.cstr(&self.name);
    }
}

/// PAKCS_SELECT_CHAR_REQ. The slot is checked against the last list sent
/// (docs/protocol.md §9 D9) by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectCharReq {
    /// Slot in the last [`CharListReply`].
    pub slot: u8,
    /// Run mode (ignored by osIROSE).
    pub run_mode: u8,
    /// Ride mode (ignored by osIROSE).
    pub ride_mode: u8,
    /// Character name (ignored by osIROSE).
    pub name: String,
}

impl Packet for SelectCharReq {
    const TYPE: PacketType = PacketType::PAKCS_SELECT_CHAR_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(SelectCharReq {
            slot: r.u8()?,
            run_mode: r.u8()?,
            ride_mode: r.u8()?,
            name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.slot);
        w.u8(self.run_mode);
        w.u8(self.ride_mode);
        w.cstr(&self.name);
    }
}

/// PAKCC_SWITCH_SERVER: where to join the map phase (17 bytes + ip length).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchServer {
    /// Port to connect to.
    pub port: u16,
    /// Session for the map join.
    pub session_id: u32,
    /// Cipher seed; 0 (never used).
    pub session_seed: u32,
    /// Address to connect to.
    pub ip: String,
}

impl Packet for SwitchServer {
    const TYPE: PacketType = PacketType::PAKCC_SWITCH_SERVER;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(SwitchServer {
            port: r.u16()?,
            session_id: r.u32()?,
            session_seed: r.u32()?,
            ip: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.port);
        w.u32(self.session_id);
        w.u32(self.session_seed);
        w.cstr(&self.ip);
    }
}
