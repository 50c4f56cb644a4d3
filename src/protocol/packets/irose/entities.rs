//! Entities entering and leaving view in the irose map connection
//! (docs/protocol.md §10.5, C.15): the player spawn 0x793 with its
//! 35-byte entity header, and the removal 0x794 of any number of entities.
//! Never sent for the player itself.

use super::super::{read_array, BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// Status flags that are followed by a u16 value, in wire order: +max HP,
/// +move speed, −move speed, +attack speed, −attack speed.
pub const VALUED_STATUS_FLAGS: [u32; 5] = [0x10, 0x40, 0x80, 0x100, 0x200];

/// `sub_flags` bit: a personal store follows the status values.
pub const SUB_FLAG_STORE: u32 = 2;

/// The entity's current command (12 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommandState {
    /// Destination x (0 when unused).
    pub dest_x: f32,
    /// Destination y.
    pub dest_y: f32,
    /// 0 stop, 1 move, 2 attack, 3 die, 4 pick up, 6/7/8 cast skill, 9 run
    /// away, 10 sit, 11 personal store.
    pub command: u16,
    /// Target entity (0 when unused).
    pub target_entity: u16,
}

/// The prefix of every spawn packet (35 bytes from offset 6).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EntityHeader {
    /// Non-zero entity id.
    pub entity_id: u16,
    /// Position x.
    pub x: f32,
    /// Position y.
    pub y: f32,
    /// What the entity is doing.
    pub command: CommandState,
    /// 0 walk, 1 run, 2 drive.
    pub move_mode: u8,
    /// Hit points.
    pub hp: i32,
    /// Team.
    pub team: u32,
    /// Status effects as a bit set (see [`VALUED_STATUS_FLAGS`]).
    pub status_flags: u32,
}

impl EntityHeader {
    fn decode(r: &mut Reader<'_>) -> Result<EntityHeader, BodyError> {
        Ok(EntityHeader {
            entity_id: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            command: CommandState {
                dest_x: r.f32()?,
                dest_y: r.f32()?,
                command: r.u16()?,
                target_entity: r.u16()?,
            },
            move_mode: r.u8()?,
            hp: r.i32()?,
            team: r.u32()?,
            status_flags: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.entity_id);
        w.f32(self.x);
        w.f32(self.y);
        w.f32(self.command.dest_x);
        w.f32(self.command.dest_y);
        w.u16(self.command.command);
        w.u16(self.command.target_entity);
        w.u8(self.move_mode);
        w.i32(self.hp);
        w.u32(self.team);
        w.u32(self.status_flags);
    }

    /// How many status values follow the fixed part of a spawn.
    pub fn status_value_count(&self) -> usize {
        VALUED_STATUS_FLAGS
            .iter()
            .filter(|&&f| self.status_flags & f != 0)
            .count()
    }
}

/// A personal store a player runs (present when `sub_flags` has
/// [`SUB_FLAG_STORE`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    /// Store skin.
    pub skin: u16,
    /// Store title.
    pub title: String,
}

/// A player's clan (present when the player is in one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnClan {
    /// Clan id.
    pub id: u32,
    /// Mark background.
    pub mark_background: u16,
    /// Mark foreground.
    pub mark_foreground: u16,
    /// Clan level.
    pub level: u8,
    /// The player's position in the clan.
    pub position: u8,
    /// Clan name.
    pub name: String,
}

/// 0x793: another player came into view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerSpawn {
    /// Entity header.
    pub header: EntityHeader,
    /// 0 male, 1 female.
    pub gender: u8,
    /// Move speed.
    pub move_speed: u16,
    /// Passive attack speed.
    pub passive_attack_speed: u16,
    /// Carried weight, percent.
    pub weight_rate: u8,
    /// Face.
    pub face: u32,
    /// Hair.
    pub hair: u32,
    /// Equipment parts (osIROSE EquippedItem bits), as in the select reply.
    pub equipment: [u32; 8],
    /// Ammo: arrow, bullet, throw (type bits 0–4, item number 5–14).
    pub ammo: [u16; 3],
    /// Job.
    pub job: u16,
    /// Level (one byte here).
    pub level: u8,
    /// Vehicle parts.
    pub vehicle: [u32; 4],
    /// Height.
    pub z: u16,
    /// 1 hidden, 2 personal store, 4 intro chat, 0x40000000 fairy.
    pub sub_flags: u32,
    /// Name.
    pub name: String,
    /// One u16 per set flag of [`VALUED_STATUS_FLAGS`]; encoding writes
    /// exactly that many (zeros for missing ones).
    pub status_values: Vec<u16>,
    /// Written when `sub_flags` has [`SUB_FLAG_STORE`].
    pub store: Option<Store>,
    /// Written when present; decoded when bytes remain.
    pub clan: Option<SpawnClan>,
}

impl Packet for PlayerSpawn {
    const TYPE: PacketType = PacketType::PAKWC_PLAYER_CHAR;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        let header = EntityHeader::decode(r)?;
        let mut spawn = PlayerSpawn {
            header,
            gender: r.u8()?,
            move_speed: r.u16()?,
            passive_attack_speed: r.u16()?,
            weight_rate: r.u8()?,
            face: r.u32()?,
            hair: r.u32()?,
            equipment: read_array(r, Reader::u32)?,
            ammo: read_array(r, Reader::u16)?,
            job: r.u16()?,
            level: r.u8()?,
            vehicle: read_array(r, Reader::u32)?,
            z: r.u16()?,
            sub_flags: r.u32()?,
            name: r.cstr()?,
            ..PlayerSpawn::default()
        };
        spawn.status_values = r.counted(header.status_value_count(), 2, Reader::u16)?;
        if spawn.sub_flags & SUB_FLAG_STORE != 0 {
            spawn.store = Some(Store {
                skin: r.u16()?,
                title: r.cstr()?,
            });
        }
        if r.remaining() > 0 {
            spawn.clan = Some(SpawnClan {
                id: r.u32()?,
                mark_background: r.u16()?,
                mark_foreground: r.u16()?,
                level: r.u8()?,
                position: r.u8()?,
                name: r.cstr()?,
            });
        }
        Ok(spawn)
    }

    fn encode(&self, w: &mut Writer<'_>) {
        self.header.encode(w);
        w.u8(self.gender);
        w.u16(self.move_speed);
        w.u16(self.passive_attack_speed);
        w.u8(self.weight_rate);
        w.u32(self.face);
        w.u32(self.hair);
        for &part in &self.equipment {
            w.u32(part);
        }
        for &a in &self.ammo {
            w.u16(a);
        }
        w.u16(self.job);
        w.u8(self.level);
        for &part in &self.vehicle {
            w.u32(part);
        }
        w.u16(self.z);
        w.u32(self.sub_flags);
        w.cstr(&self.name);
        for i in 0..self.header.status_value_count() {
            w.u16(self.status_values.get(i).copied().unwrap_or(0));
        }
        if self.sub_flags & SUB_FLAG_STORE != 0 {
            let store = self.store.clone().unwrap_or_default();
            w.u16(store.skin);
            w.cstr(&store.title);
        }
        if let Some(clan) = &self.clan {
            w.u32(clan.id);
            w.u16(clan.mark_background);
            w.u16(clan.mark_foreground);
            w.u8(clan.level);
            w.u8(clan.position);
            w.cstr(&clan.name);
        }
    }
}

/// 0x794: entities that left view, to the end of the packet (no count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveEntities {
    /// Their non-zero entity ids.
    pub ids: Vec<u16>,
}

impl Packet for RemoveEntities {
    const TYPE: PacketType = PacketType::PAKWC_REMOVE_OBJECT;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(RemoveEntities {
            ids: r.until_end(Reader::u16)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        for &id in &self.ids {
            w.u16(id);
        }
    }
}

impl From<&super::super::RemoveObject> for RemoveEntities {
    fn from(r: &super::super::RemoveObject) -> RemoveEntities {
        RemoveEntities { ids: vec![r.id] }
    }
}
