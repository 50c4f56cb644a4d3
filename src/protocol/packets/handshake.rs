//! Connection handshake, keepalive, logout and screen-shot time
//! (docs/protocol.md §3.1, §3.11, §3.12, §9 D10). All answered locally.

use super::{BodyError, Packet, Reader, Writer};
use crate::protocol::packet_type::PacketType;

empty_packet! {
    /// PAKCS_ACCEPT_REQ: first packet on every connection; empty body.
    AcceptReq = PAKCS_ACCEPT_REQ
}

/// PAKSS_ACCEPT_REPLY: the answer to [`AcceptReq`] (11 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptReply {
    /// One of [`AcceptReply::CONNECT`] … [`AcceptReply::SERVERDEAD`];
    /// osIROSE always sends [`AcceptReply::ACCEPTED`].
    pub result: u8,
    /// Informational only: the cipher is never reseeded (docs/protocol.md §1.4).
    pub rand_value: u32,
}

impl AcceptReply {
    /// Result code 1, CONNECT.
    pub const CONNECT: u8 = 1;
    /// Result code 2, ACCEPTED.
    pub const ACCEPTED: u8 = 2;
    /// Result code 3, DISCONNECT.
    pub const DISCONNECT: u8 = 3;
    /// Result code 4, SERVERDEAD.
    pub const SERVERDEAD: u8 = 4;
}

impl Packet for AcceptReply {
    const TYPE: PacketType = PacketType::PAKSS_ACCEPT_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(AcceptReply {
            result: r.u8()?,
            rand_value: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.result);
        w.u32(self.rand_value);
    }
}

empty_packet! {
    /// PAKCS_ALIVE: keepalive; empty body, no reply.
    Alive = PAKCS_ALIVE
}

empty_packet! {
    /// PAKCS_LOGOUT_REQ: empty body; answered with [`LogoutReply`].
    LogoutReq = PAKCS_LOGOUT_REQ
}

/// PAKWC_LOGOUT_REPLY (8 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogoutReply {
    /// Seconds until the client may quit; 0 = now.
    pub wait_time: u16,
}

impl Packet for LogoutReply {
    const TYPE: PacketType = PacketType::PAKWC_LOGOUT_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(LogoutReply {
            wait_time: r.u16()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.wait_time);
    }
}

empty_packet! {
    /// PAKCS_CHANGE_CHAR_REQ: back to character select; empty body.
    ChangeCharReq = PAKCS_CHANGE_CHAR_REQ
}

empty_packet! {
    /// PAKCC_CHAN_CHAR_REPLY: the answer to [`ChangeCharReq`]; empty body.
    ChanCharReply = PAKCC_CHAN_CHAR_REPLY
}

/// PAKCS_SCREEN_SHOT_TIME_REQ (docs/protocol.md §9 D10): asks for the
/// server's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenShotTimeReq {
    /// Screen-shot counter; ignored by the gateway.
    pub count: u16,
}

impl Packet for ScreenShotTimeReq {
    const TYPE: PacketType = PacketType::PAKCS_SCREEN_SHOT_TIME_REQ;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ScreenShotTimeReq { count: r.u16()? })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.count);
    }
}

/// PAKSC_SCREEN_SHOT_TIME_REPLY (docs/protocol.md §9 D10): the gateway's UTC
/// time (12 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenShotTimeReply {
    /// Full year, e.g. 2026.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
}

impl Packet for ScreenShotTimeReply {
    const TYPE: PacketType = PacketType::PAKSC_SCREEN_SHOT_TIME_REPLY;

    fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(body);
        Ok(ScreenShotTimeReply {
            year: r.u16()?,
            month: r.u8()?,
            day: r.u8()?,
            hour: r.u8()?,
            minute: r.u8()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.year);
        w.u8(self.month);
        w.u8(self.day);
        w.u8(self.hour);
        w.u8(self.minute);
    }
}
