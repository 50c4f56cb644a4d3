//! Shared helpers of the loadgen's tests: the in-process gateway the bots
//! run against.
#![allow(dead_code)]

use packet_service::config::Config;
use packet_service::conn::wire::PacketIds;
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;
use packet_service::server::{Server, ServerHandle};

/// The config of [`gateway_for`]: the loadgen's own in-process gateway's
/// (no packet-rate, per-address or chat limit: the bots are all on
/// loopback and chat faster than players may) with these packet ids and
/// accounts auto-created without a creation limit (every bot comes from
/// one address).
pub fn bot_config(codec: CodecKind, ids: PacketIds) -> Config {
    let mut config = loadgen::gateway::unlimited(codec);
    config.packet_ids = ids;
    config.auto_create_accounts = true;
    config.autocreate_per_source = 100_000;
    config.autocreate_per_min = 1_000_000;
    config
}

/// A gateway with the embedded backend for the bots, osirose packet ids.
#[track_caller]
pub fn gateway(codec: CodecKind) -> ServerHandle {
    gateway_for(codec, PacketIds::One(DialectId::Osirose))
}

/// A gateway with the embedded backend for the bots, with these packet ids.
#[track_caller]
pub fn gateway_for(codec: CodecKind, ids: PacketIds) -> ServerHandle {
    Server::build(bot_config(codec, ids))
        .expect("gateway starts")
        .spawn()
}
