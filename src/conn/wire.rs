//! What a connection speaks — its codec (cipher conventions and key
//! tables) and its dialect — and how its first packet decides that when
//! one port serves every phase and, with `auto`, both client families
//! (docs/protocol.md §10.6).
//!
//! With `--packet-ids osirose` or `osirose-2021` every connection speaks
//! the configured dialect with the one fixed table, known at accept. With
//! `irose` a connection's table is not known until its first packet: the
//! login connection uses the default table, the char and map connections
//! the seeded table of a seed the gateway announced. [`FirstPacket`] tries
//! the first packet against each prepared table (trial decoding,
//! [`Candidates`]) and keeps the one under which it is an expected first
//! packet with a correct checksum. With `auto` the default table's
//! candidate also accepts the packets an osIROSE connection starts with,
//! and the command says which family the client is: 0x703 (irose's
//! connect) and the other irose first packets make an irose connection,
//! osIROSE's ACCEPT_REQ (or the few other packets an osIROSE connection may
//! begin with) an osIROSE one.
//!
//! `osirose` and `osirose-2021` cannot be told apart this way: their
//! connections begin with the same ids (ACCEPT_REQ 0x504, ALIVE, LOGIN_REQ
//! 0x509), and the first reply (ACCEPT_REPLY, 0x5D4 or 0x5D2) must be sent
//! before the client shows anything that differs. `auto` therefore serves
//! the osIROSE family in the `osirose` numbering; a 2021 client needs a
//! gateway started with `--packet-ids osirose-2021`.
//!
//! No candidate fits → [`FrameError::BadChecksum`]: the reactor closes the
//! connection and counts it as `bad_checksum`.

use std::sync::OnceLock;

use crate::protocol::codec::{
    Candidate, Candidates, Codec, CodecKind, FrameError, FrameHeader, PreparedSeeds, RoseTables,
    Seed, HEADER_LEN, MAX_PACKET_SIZE,
};
use crate::protocol::packet_type::{DialectId, Direction, PacketType};
use crate::protocol::packets::irose::login::MD5_LEN;

/// What `--packet-ids` selects: one dialect for every connection, or the
/// dialect each connection's first packet shows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PacketIds {
    /// Every connection speaks this dialect.
    One(DialectId),
    /// irose or osIROSE (`osirose` numbering), per connection.
    Auto,
}

impl PacketIds {
    /// The configuration names, in `--help` order.
    pub const NAMES: &'static [&'static str] = &["osirose", "osirose-2021", "irose", "auto"];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            PacketIds::One(d) => d.name(),
            PacketIds::Auto => "auto",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(name: &str) -> Option<PacketIds> {
        match name {
            "auto" => Some(PacketIds::Auto),
            name => DialectId::from_name(name).map(PacketIds::One),
        }
    }

    /// Whether irose clients may connect (so seeded tables are needed).
    pub fn serves_irose(self) -> bool {
        matches!(self, PacketIds::One(DialectId::Irose) | PacketIds::Auto)
    }
}

/// The seeds the gateway announces: the char connection's in the
/// server-select reply (0x70A), the map connection's in the switch-server
/// packet (0x711). Both are among the prepared seeds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    /// Sent in 0x70A.
    pub world: Seed,
    /// Sent in 0x711.
    pub game: Seed,
}

impl Announced {
    /// rose-offline's seeds (the `--irose-seeds` default).
    pub const DEFAULT: Announced = Announced {
        world: match Seed::new(0x1234_5678) {
            Some(s) => s,
            None => unreachable!(),
        },
        game: match Seed::new(0x8765_4321) {
            Some(s) => s,
            None => unreachable!(),
        },
    };

    /// The first seed of a configured list for the char connection, the last
    /// for the map connection (the same one when the list has one).
    pub fn of(seeds: &[Seed]) -> Option<Announced> {
        Some(Announced {
            world: *seeds.first()?,
            game: *seeds.last()?,
        })
    }
}

/// A connection's codec and dialect.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Framing, cipher conventions and key tables.
    pub codec: Codec,
    /// Packet ids and, through its family, layouts.
    pub dialect: DialectId,
}

impl Wire {
    /// An osIROSE-family connection: the fixed table, osIROSE conventions.
    fn osirose(kind: CodecKind, dialect: DialectId) -> Wire {
        Wire {
            codec: Codec::new(kind),
            dialect,
        }
    }

    /// An irose connection on `tables` (ignored by `plain`).
    fn irose(kind: CodecKind, tables: &'static RoseTables) -> Wire {
        let codec = match kind {
            CodecKind::Rose => Codec::irose(tables),
            CodecKind::Plain => Codec::new(CodecKind::Plain),
        };
        Wire {
            codec,
            dialect: DialectId::Irose,
        }
    }
}

/// The wire ids of `types` in `dialect` (raw ids live in the dialect
/// tables only).
fn ids(dialect: DialectId, types: &[PacketType]) -> Vec<u16> {
    let d = dialect.dialect();
    types.iter().filter_map(|&t| d.wire_id(t)).collect()
}

/// What an irose login connection starts with: connect (0x703).
fn irose_login_first() -> &'static [u16] {
    static IDS: OnceLock<Vec<u16>> = OnceLock::new();
    IDS.get_or_init(|| ids(DialectId::Irose, &[PacketType::PAKCS_ACCEPT_REQ]))
}

/// What an irose char or map connection starts with: the join (0x70B);
/// a connect or a keepalive are tolerated before it
/// (docs/protocol.md §10.7).
fn irose_join_first() -> &'static [u16] {
    static IDS: OnceLock<Vec<u16>> = OnceLock::new();
    IDS.get_or_init(|| {
        let types = [
            PacketType::PAKCS_JOIN_SERVER_REQ,
            PacketType::PAKCS_ACCEPT_REQ,
            PacketType::PAKCS_ALIVE,
        ];
        ids(DialectId::Irose, &types)
    })
}

/// Under `auto`, the default table's candidate: the irose login start and
/// what an osIROSE connection may start with — ACCEPT_REQ
/// (docs/protocol.md §3.1), or, since osIROSE requires nothing first, ALIVE,
/// LOGIN_REQ,
/// JOIN_SERVER_REQ and SCREEN_SHOT_TIME_REQ.
fn auto_default_first() -> &'static [u16] {
    static IDS: OnceLock<Vec<u16>> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut all = irose_login_first().to_vec();
        all.extend(osirose_first());
        all
    })
}

/// Under `plain` (no tables to tell the phases apart): every first packet
/// the dialects served may start with.
fn plain_first(auto: bool) -> &'static [u16] {
    static IROSE: OnceLock<Vec<u16>> = OnceLock::new();
    static AUTO: OnceLock<Vec<u16>> = OnceLock::new();
    let (list, default) = if auto {
        (&AUTO, auto_default_first())
    } else {
        (&IROSE, irose_login_first())
    };
    list.get_or_init(|| [default, irose_join_first()].concat())
}

/// What an osIROSE connection may start with.
fn osirose_first() -> &'static [u16] {
    static IDS: OnceLock<Vec<u16>> = OnceLock::new();
    IDS.get_or_init(|| {
        let types = [
            PacketType::PAKCS_ACCEPT_REQ,
            PacketType::PAKCS_ALIVE,
            PacketType::PAKCS_LOGIN_REQ,
            PacketType::PAKCS_JOIN_SERVER_REQ,
            PacketType::PAKCS_SCREEN_SHOT_TIME_REQ,
        ];
        ids(DialectId::Osirose, &types)
    })
}

/// Plaintext sizes of an irose connection's first packet: an empty
/// connect or keepalive (6), the join (6 + token + MD5 digest).
const IROSE_FIRST_LEN: std::ops::RangeInclusive<usize> = HEADER_LEN..=HEADER_LEN + 4 + MD5_LEN;

/// How every connection's first packet is read: a fixed wire, or a trial
/// of a few tables.
///
/// Invariant: `fixed` is set, or `candidates` holds 1..=[`MAX_CANDIDATES`]
/// entries with `tables[i]` the tables of `candidates[i]`.
///
/// [`MAX_CANDIDATES`]: crate::protocol::codec::MAX_CANDIDATES
pub struct FirstPacket {
    kind: CodecKind,
    fixed: Option<Wire>,
    /// Whether the default table's candidate also admits osIROSE clients.
    auto: bool,
    candidates: Vec<Candidate<'static>>,
    tables: Vec<&'static RoseTables>,
}

impl std::fmt::Debug for FirstPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstPacket")
            .field("fixed", &self.fixed)
            .field("auto", &self.auto)
            .field("candidates", &self.candidates.len())
            .finish()
    }
}

impl FirstPacket {
    /// The first-packet rule of `ids` under codec `kind`; `seeds` are the
    /// prepared seeded tables (used by `irose` and `auto` with `rose`).
    /// The `plain` codec has no tables: one candidate, whose command says
    /// the family.
    pub fn new(ids: PacketIds, kind: CodecKind, seeds: &PreparedSeeds) -> FirstPacket {
        let mut first = FirstPacket {
            kind,
            fixed: None,
            auto: ids == PacketIds::Auto,
            candidates: Vec::new(),
            tables: Vec::new(),
        };
        let dialect = match ids {
            PacketIds::One(DialectId::Irose) | PacketIds::Auto => None,
            PacketIds::One(d) => Some(d),
        };
        if let Some(d) = dialect {
            first.fixed = Some(Wire::osirose(kind, d));
            return first;
        }
        let default = RoseTables::default_tables();
        let default_first = if first.auto {
            auto_default_first()
        } else {
            irose_login_first()
        };
        if kind == CodecKind::Plain {
            let commands = plain_first(first.auto);
            first.push(
                Codec::new(kind),
                default,
                commands,
                HEADER_LEN..=MAX_PACKET_SIZE,
            );
            return first;
        }
        // Seeded tables first: their test (the join, 42 bytes) is the strict
        // one; the default table's candidate admits more under `auto`.
        for (_, tables) in seeds.iter() {
            first.push(
                Codec::irose(tables),
                tables,
                irose_join_first(),
                IROSE_FIRST_LEN,
            );
        }
        let default_len = if first.auto {
            HEADER_LEN..=MAX_PACKET_SIZE
        } else {
            HEADER_LEN..=HEADER_LEN
        };
        first.push(Codec::irose(default), default, default_first, default_len);
        first
    }

    fn push(
        &mut self,
        codec: Codec,
        tables: &'static RoseTables,
        commands: &'static [u16],
        data_len: std::ops::RangeInclusive<usize>,
    ) {
        self.candidates.push(Candidate {
            codec,
            commands,
            data_len,
        });
        self.tables.push(tables);
    }

    /// The wire every connection speaks from accept on, when configured.
    pub fn fixed(&self) -> Option<Wire> {
        self.fixed
    }

    /// The wire assumed before the first packet decides (nothing is sent
    /// before it; a placeholder for the types).
    pub fn placeholder(&self) -> Wire {
        self.fixed
            .unwrap_or_else(|| Wire::irose(self.kind, RoseTables::default_tables()))
    }

    /// Number of tables a first packet is tried against (0 when fixed).
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Decides the wire of a connection from the packet at the start of
    /// `bytes`, which is decoded in place as [`Codec::decode`] does.
    ///
    /// `Ok(None)`: read more. `Err(FrameError::BadChecksum)`: no table
    /// fits; close. Only for connections without a [`FirstPacket::fixed`]
    /// wire (a fixed one decodes with its codec).
    pub fn decode(&self, bytes: &mut [u8]) -> Result<Option<(Wire, FrameHeader)>, FrameError> {
        let list = Candidates::new(&self.candidates).map_err(|_| FrameError::BadChecksum)?;
        let Some(chosen) = list.decode(Direction::ClientToServer, bytes)? else {
            return Ok(None);
        };
        let command = chosen.header.command;
        let osirose = self.auto
            && osirose_first().contains(&command)
            && !irose_login_first().contains(&command);
        let wire = if osirose {
            Wire::osirose(self.kind, DialectId::Osirose)
        } else {
            let tables = self.tables.get(chosen.index).copied();
            Wire::irose(self.kind, tables.unwrap_or(RoseTables::default_tables()))
        };
        Ok(Some((wire, chosen.header)))
    }
}

#[cfg(test)]
mod tests;
