//! Movement (docs/protocol.md §3.14). Positions are `f32` map coordinates
//! (centimetres); heights are 16-bit, unsigned in client packets and signed
//! in the server's stop/position packets, as the layouts say.

use super::{BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

/// PAKCS_MOUSE_CMD: move towards a point or a target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MouseCmd {
    /// Entity to approach; 0 = the ground.
    pub target_id: u16,
    /// Destination x.
    pub x: f32,
    /// Destination y.
    pub y: f32,
    /// Height.
    pub z: u16,
}

impl Packet for MouseCmd {
    const TYPE: PacketType = PacketType::PAKCS_MOUSE_CMD;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(MouseCmd {
            target_id: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            z: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.target_id);
        w.f32(self.x);
        w.f32(self.y);
        w.u16(self.z);
    }
}

/// PAKWC_MOUSE_CMD: an entity started moving (osIROSE sends distance and z
/// as 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MouseCmdBroadcast {
    /// The mover's entity id.
    pub id: u16,
    /// Entity approached; 0 = the ground.
    pub target_id: u16,
    /// Distance to the destination.
    pub distance: u16,
    /// Destination x.
    pub x: f32,
    /// Destination y.
    pub y: f32,
    /// Height.
    pub z: u16,
}

impl MouseCmdBroadcast {
    fn decode_from(r: &mut Reader<'_>) -> Result<MouseCmdBroadcast, BodyError> {
        Ok(MouseCmdBroadcast {
            id: r.u16()?,
            target_id: r.u16()?,
            distance: r.u16()?,
            x: r.f32()?,
            y: r.f32()?,
            z: r.u16()?,
        })
    }

    fn encode_to(&self, w: &mut Writer<'_>) {
        w.u16(self.id);
        w.u16(self.target_id);
        w.u16(self.distance);
        w.f32(self.x);
        w.f32(self.y);
        w.u16(self.z);
    }
}

impl Packet for MouseCmdBroadcast {
    const TYPE: PacketType = PacketType::PAKWC_MOUSE_CMD;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        MouseCmdBroadcast::decode_from(&mut Reader::new(body))
    }

    fn encode(&self, w: &mut Writer<'_>) {
        self.encode_to(w);
    }
}

/// PAKWC_MOVE: as [`MouseCmdBroadcast`] plus the move mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MoveBroadcast {
    /// The mover's entity id.
    pub id: u16,
    /// Entity approached; 0 = the ground.
    pub target_id: u16,
    /// Distance to the destination.
    pub distance: u16,
    /// Destination x.
    pub x: f32,
    /// Destination y.
    pub y: f32,
    /// Height.
    pub z: u16,
    /// [`MoveBroadcast::WALK`] … [`MoveBroadcast::RIDEON`].
    pub move_mode: u8,
}

impl MoveBroadcast {
    /// Move mode 0, WALK.
    pub const WALK: u8 = 0;
    /// Move mode 1, RUN.
    pub const RUN: u8 = 1;
    /// Move mode 2, DRIVE.
    pub const DRIVE: u8 = 2;
    /// Move mode 3, RIDEON.
    pub const RIDEON: u8 = 3;
}

impl Packet for MoveBroadcast {
    const TYPE: PacketType = PacketType::PAKWC_MOVE;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        let m = MouseCmdBroadcast::decode_from(&mut r)?;
        Ok(MoveBroadcast {
            id: m.id,
            target_id: m.target_id,
            distance: m.distance,
            x: m.x,
            y: m.y,
            z: m.z,
            move_mode: r.u8()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        MouseCmdBroadcast {
            id: self.id,
            target_id: self.target_id,
            distance: self.distance,
            x: self.x,
            y: self.y,
            z: self.z,
        }
        .encode_to(w);
        w.u8(self.move_mode);
    }
}

/// Declares a packet of an `f32` x and y, optionally preceded by an entity
/// id and followed by a height.
macro_rules! position_packet {
    (
        $(#[$meta:meta])* $name:ident = $ty:ident,
        $(char_id: $cid:ident,)? $(z: $z:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq)]
        pub struct $name {
            $(
                /// The entity's id.
                pub char_id: $cid,
            )?
            /// Position x.
            pub x: f32,
            /// Position y.
            pub y: f32,
            $(
                /// Height.
                pub z: $z,
            )?
        }

        impl Packet for $name {
            const TYPE: PacketType = PacketType::$ty;

            fn decode(body: &[u8]) -> Result<Self, BodyError> {
                let mut r = Reader::new(body);
                Ok($name {
                    $(char_id: r.$cid()?,)?
                    x: r.f32()?,
                    y: r.f32()?,
                    $(z: r.$z()?,)?
                })
            }

            fn encode(&self, w: &mut Writer<'_>) {
                $(w.$cid(self.char_id);)?
                w.f32(self.x);
                w.f32(self.y);
                $(w.$z(self.z);)?
            }
        }
    };
}

position_packet! {
    /// PAKCS_STOP: stop at a point.
    Stop = PAKCS_STOP,
}

position_packet! {
    /// PAKWC_STOP: an entity stopped.
    StopBroadcast = PAKWC_STOP, char_id: u16, z: i16
}

position_packet! {
    /// PAKCS_STOP_MOVING: the client stopped; sets the position silently.
    StopMoving = PAKCS_STOP_MOVING, z: u16
}

position_packet! {
    /// PAKWC_STOP_MOVING: an entity stopped moving.
    StopMovingBroadcast = PAKWC_STOP_MOVING, char_id: u16, z: i16
}

position_packet! {
    /// PAKCS_SET_POSITION: the client reports its position.
    SetPosition = PAKCS_SET_POSITION,
}

position_packet! {
    /// PAKWC_SET_POSITION: an entity was placed.
    SetPositionBroadcast = PAKWC_SET_POSITION, char_id: u16, z: i16
}

/// PAKWC_REMOVE_OBJECT: an entity left view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveObject {
    /// The entity's id.
    pub id: u16,
}

impl Packet for RemoveObject {
    const TYPE: PacketType = PacketType::PAKWC_REMOVE_OBJECT;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(RemoveObject { id: r.u16()? })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.id);
    }
}
