//! Players coming into view in the osIROSE layout (docs/protocol.md §3.16):
//! PAKWC_PLAYER_CHAR, what a client is shown of another player when it
//! comes into view. The removal is `RemoveObject` (`movement.rs`); the
//! irose layouts of both are in `irose/entities.rs`.

use super::{read_array, BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// PAKWC_PLAYER_CHAR: another player came into view (a fixed part of 116
/// bytes, then two strings).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerChar {
    /// The player's entity id (non-zero).
    pub id: u16,
    /// Position x.
    pub x: f32,
    /// Position y.
    pub y: f32,
    /// Destination x (the position when it stands).
    pub dest_x: f32,
    /// Destination y.
    pub dest_y: f32,
    /// Current command: 0 stop, 1 move, 2 attack, 3 die, 4 pick up, …
    pub command: u16,
    /// Target entity of the command (0 none).
    pub target_id: u16,
    /// 0 walk, 1 run, 2 drive, 4 ride on.
    pub move_mode: u8,
    /// Hit points.
    pub hp: i32,
    /// Team.
    pub team_id: i32,
    /// Status effects as a bit set.
    pub status_flag: u32,
    /// Race (gender).
    pub race: u8,
    /// Run speed.
    pub run_speed: u16,
    /// Attack speed.
    pub atk_speed: u16,
    /// Carried weight, percent.
    pub weight_rate: u8,
    /// Face.
    pub face: u32,
    /// Hair.
    pub hair: u32,
    /// The visible equipment, as EquippedItem words (the select reply's
    /// order).
    pub inventory: [u32; 8],
    /// Ammunition (arrow, bullet, throw) as item header words.
    pub bullets: [u16; 3],
    /// Job.
    pub job: u16,
    /// Level (one byte here).
    pub level: u8,
    /// Vehicle parts (body, engine, legs, option, arms) as EquippedItem
    /// words.
    pub riding_items: [u32; 5],
    /// Height.
    pub z: u16,
    /// Sub-flags (hidden, personal store, …).
    pub sub_flag: u32,
    /// Name.
    pub name: String,
    /// The name shown instead (disguise); empty for none.
    pub other_name: String,
}

impl Packet for PlayerChar {
    const TYPE: PacketType = PacketType::PAKWC_PLAYER_CHAR;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        Ok(PlayerChar {
            id: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            dest_x: r.f32()?,
            dest_y: r.f32()?,
            command: r.u16()?,
            target_id: r.u16()?,
            move_mode: r.u8()?,
            hp: r.i32()?,
            team_id: r.i32()?,
            status_flag: r.u32()?,
            race: r.u8()?,
            run_speed: r.u16()?,
            atk_speed: r.u16()?,
            weight_rate: r.u8()?,
            face: r.u32()?,
            hair: r.u32()?,
            inventory: read_array(r, Reader::u32)?,
            bullets: read_array(r, Reader::u16)?,
            job: r.u16()?,
            level: r.u8()?,
            riding_items: read_array(r, Reader::u32)?,
            z: r.u16()?,
            sub_flag: r.u32()?,
            name: r.cstr()?,
            other_name: r.cstr()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.id);
        for v in [self.x, self.y, self.dest_x, self.dest_y] {
            w.f32(v);
        }
        w.u16(self.command);
        w.u16(self.target_id);
        w.u8(self.move_mode);
        w.i32(self.hp);
        w.i32(self.team_id);
        w.u32(self.status_flag);
        w.u8(self.race);
        w.u16(self.run_speed);
        w.u16(self.atk_speed);
        w.u8(self.weight_rate);
        w.u32(self.face);
        w.u32(self.hair);
        for &item in &self.inventory {
            w.u32(item);
        }
        for &bullet in &self.bullets {
            w.u16(bullet);
        }
        w.u16(self.job);
        w.u8(self.level);
        for &part in &self.riding_items {
            w.u32(part);
        }
        w.u16(self.z);
        w.u32(self.sub_flag);
        w.cstr(&self.name);
        w.cstr(&self.other_name);
    }
}
