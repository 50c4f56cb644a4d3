//! What each captured connection speaks: one codec and dialect for all
//! (`--packet-ids osirose` / `osirose-2021`), or, for `irose` and `auto`,
//! per connection, as the gateway decides it (docs/protocol.md §10.6): its
//! first client packet is tried with the gateway's own first-packet rule
//! against the default tables and the tables of every seed the capture
//! announced so far. The seeds are learnt from the replies in the
//! capture — the server-select reply (the char connection's seed) and the
//! switch-server packet (the map connection's) — so connections are taken
//! in capture order.

use packet_service::client::seeded_tables;
use packet_service::conn::wire::{FirstPacket, PacketIds, Wire};
use packet_service::protocol::codec::{PreparedSeeds, Seed, MAX_PREPARED_SEEDS};
use packet_service::protocol::packet_type::Family;
use packet_service::protocol::packets::{Packet, SrvSelectReply, SwitchServer};
use packet_service::protocol::{CodecKind, PacketType, HEADER_LEN, MAX_PACKET_SIZE};

use crate::decode::StreamDecoder;
use crate::reassembly::{Connection, EventKind, Side};

/// What one captured connection speaks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConnWire {
    /// Its codec and dialect.
    pub wire: Wire,
    /// The announced seed whose tables it uses (`None`: the default tables).
    pub seed: Option<u32>,
}

/// The wire of every connection of `conns` (in capture order).
pub fn guess(conns: &[Connection], ids: PacketIds, kind: CodecKind) -> Vec<ConnWire> {
    let mut seeds: Vec<u32> = Vec::new();
    conns
        .iter()
        .map(|conn| {
            let guessed = guess_one(conn, ids, kind, &seeds);
            if guessed.wire.dialect.family() == Family::Irose {
                for seed in announced(conn, guessed.wire) {
                    if !seeds.contains(&seed) && seeds.len() < MAX_PREPARED_SEEDS {
                        seeds.push(seed);
                    }
                }
            }
            guessed
        })
        .collect()
}

fn guess_one(conn: &Connection, ids: PacketIds, kind: CodecKind, seeds: &[u32]) -> ConnWire {
    let tables = seeds
        .iter()
        .filter_map(|&s| Some((Seed::new(s)?, seeded_tables(s))));
    // At most MAX_PREPARED_SEEDS are learnt, so this cannot fail.
    let prepared = PreparedSeeds::from_tables(tables);
    let prepared = prepared.as_ref().unwrap_or(PreparedSeeds::none());
    let first = FirstPacket::new(ids, kind, prepared);
    if let Some(wire) = first.fixed() {
        return ConnWire { wire, seed: None };
    }
    let mut head = conn.stream(Side::Client);
    head.truncate(MAX_PACKET_SIZE + 8);
    let wire = match first.decode(&mut head) {
        Ok(Some((wire, _))) => wire,
        _ => first.placeholder(),
    };
    let seed = (prepared.iter())
        .find(|(_, t)| std::ptr::eq(*t, wire.codec.tables()))
        .map(|(s, _)| s.get());
    ConnWire { wire, seed }
}

/// The seeds a connection's replies announce for the next connection.
fn announced(conn: &Connection, wire: Wire) -> Vec<u32> {
    let dialect = wire.dialect.dialect();
    let mut server = StreamDecoder::new(wire.codec, Side::Server);
    let mut seeds = Vec::new();
    for e in conn.events.iter().filter(|e| e.side == Side::Server) {
        let EventKind::Data(data) = &e.kind else {
            continue;
        };
        for frame in server.push(data) {
            let (Some(command), Ok(plain)) = (frame.command, &frame.plain) else {
                continue;
            };
            let body = plain.get(HEADER_LEN..).unwrap_or_default();
            let seed = match dialect.server_packet(command) {
                Some(PacketType::PAKLC_SRV_SELECT_REPLY) => {
                    SrvSelectReply::decode(body).map(|r| r.crypt_val).ok()
                }
                Some(PacketType::PAKCC_SWITCH_SERVER) => {
                    SwitchServer::decode(body).map(|r| r.session_seed).ok()
                }
                _ => None,
            };
            seeds.extend(seed.filter(|&s| s != 0));
        }
    }
    seeds
}
