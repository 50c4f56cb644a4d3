//! What the state machine reads besides its input: the reactor's settings
//! and shared data ([`Ctx`]) and the time of day ([`UtcTime`]).

use std::time::Duration;

use crate::conn::calls::ServerEntry;
use crate::conn::wire::Announced;

/// Settings and shared data the state machine reads (owned by the reactor).
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// Advertised address of this gateway (SRV_SELECT_REPLY, SWITCH_SERVER).
    pub public_addr: &'a str,
    /// Advertised port.
    pub public_port: u16,
    /// The server list cached from the auth service.
    pub servers: &'a [ServerEntry],
    /// Wrong-state packets tolerated before a disconnect (docs/protocol.md §9 D5).
    pub wrong_state_budget: u32,
    /// No valid packet within this long of connecting → close (docs/protocol.md §9 D8).
    pub handshake_timeout: Duration,
    /// No packet for this long → close (docs/protocol.md §9 D8).
    pub idle_timeout: Duration,
    /// How long to wait for a backend answer before failing the request.
    pub rpc_deadline: Duration,
    /// Minimum time between session refreshes on ALIVE (docs/protocol.md §9 D6).
    pub refresh_interval: Duration,
    /// Sustained packets per second allowed (0 = unlimited).
    pub packets_per_sec: u32,
    /// Burst size of the packet rate limit.
    pub packet_burst: u32,
    /// Chat messages per second per player (0 = unlimited; burst twice that).
    pub chat_per_sec: u32,
    /// Bytes of text per chat message.
    pub chat_max_bytes: usize,
    /// The current UTC time (for SCREEN_SHOT_TIME_REPLY), computed once per pass.
    pub utc: UtcTime,
    /// The irose seeds announced for the next connection (0x70A, 0x711).
    pub announced: Announced,
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcTime {
    /// Year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Seconds since the Unix epoch, truncated to 32 bits (ACCEPT_REPLY's
    /// informational `randValue`, as osIROSE sends it).
    pub unix: u32,
}

impl UtcTime {
    /// Converts seconds since the Unix epoch.
    pub fn from_unix(secs: u64) -> UtcTime {
        let c = crate::civil::Civil::from_unix(secs);
        UtcTime {
            year: u16::try_from(c.year.max(0)).unwrap_or(u16::MAX),
            month: c.month,
            day: c.day,
            hour: c.hour,
            minute: c.minute,
            unix: secs as u32,
        }
    }
}
