//! The irose connection sequence of docs/protocol.md §10.6 as test steps:
//! the login connection on the default table, the char and map connections
//! on the tables of the seeds the gateway announced, with the irose layouts.

use std::net::SocketAddr;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::irose::*;
use packet_service::protocol::CodecKind;

pub use super::flow::recv_skipping;
use super::{md5_hex, Client};

/// The seeds a gateway with the default `--irose-seeds` announces.
pub const WORLD_SEED: u32 = 0x1234_5678;
pub const GAME_SEED: u32 = 0x8765_4321;

/// An irose client in the world: its char and map connections.
pub struct IrosePlayer {
    pub char_conn: Client,
    pub map: Client,
    pub token: u32,
    pub entity: u16,
    pub game_seed: u32,
}

/// The login connection: connect, login, channel list, server select.
/// Returns the token and the char connection's seed.
pub fn login_phase(addr: SocketAddr, codec: CodecKind, user: &str, password: &str) -> (u32, u32) {
    let mut login = Client::connect_irose(addr, codec, None);
    login.send(&AcceptReq);
    let accept: AcceptReply = login.recv_as();
    assert_eq!(accept.status, 2, "accepted");
    login.send(&LoginReq {
        password_md5: md5_hex(password),
        username: user.into(),
    });
    let reply: LoginReply = login.recv_as();
    assert_eq!(reply.result, 0, "login ok");
    assert_eq!(reply.pay_type, 0xFF);
    let select = super::flow::select_server(&mut login, reply.servers[0].id);
    assert_eq!(select.port, addr.port(), "one port serves every phase");
    assert_ne!(select.crypt_val, 0, "a seed is announced");
    (select.session_id, select.crypt_val)
}

/// The join of a char or map connection (its first packet).
pub fn join(c: &mut Client, token: u32, password: &str) -> JoinServerReply {
    c.send(&JoinServerReq {
        login_token: token,
        password_md5: md5_hex(password),
    });
    c.recv_as()
}

pub fn list(c: &mut Client) -> CharListReply {
    c.send(&CharListReq);
    c.recv_as()
}

/// Selects slot 0 (`name`) on the char connection: the map's seed.
pub fn select(c: &mut Client, name: &str) -> SwitchServer {
    c.send(&SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: name.into(),
    });
    c.recv_as()
}

/// The map connection: join, the burst, the zone join. Returns the
/// connection and the player's entity id.
pub fn enter_map(addr: SocketAddr, codec: CodecKind, switch: &SwitchServer) -> (Client, u16) {
    let mut map = Client::connect_irose(addr, codec, Some(switch.session_seed));
    let joined = join(&mut map, switch.session_id, "pw");
    assert_eq!(joined.result, 0, "map join");
    assert_eq!((joined.id, joined.pay_flag), (123, 0xFF));
    let select: SelectCharReply = map.recv_as();
    assert!(!select.0.name.is_empty());
    assert_eq!(select.0.body_size, 100);
    let _: InventoryData = map.recv_as();
    let _: QuestData = map.recv_as();
    map.send(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    });
    let zone: ChangeMapReply = recv_skipping(&mut map, PacketType::PAKWC_CHANGE_MAP_REPLY)
        .decode()
        .expect("0x753 reply");
    assert_ne!(zone.entity_id, 0, "the player's own entity id");
    (map, zone.entity_id)
}

/// The whole sequence, creating `char_name`, up to standing on the map.
pub fn enter_world(addr: SocketAddr, codec: CodecKind, user: &str, char_name: &str) -> IrosePlayer {
    let (token, world_seed) = login_phase(addr, codec, user, "pw");
    assert_eq!(world_seed, WORLD_SEED);
    let mut char_conn = Client::connect_irose(addr, codec, Some(world_seed));
    let joined = join(&mut char_conn, token, "pw");
    assert_eq!(joined.result, 0, "char join");
    assert!(list(&mut char_conn).characters.is_empty());
    assert_eq!(super::flow::create(&mut char_conn, char_name).result, 0);
    let chars = list(&mut char_conn);
    assert_eq!(chars.characters[0].name, char_name);
    let switch = select(&mut char_conn, char_name);
    assert_eq!((switch.session_id, switch.port), (token, addr.port()));
    assert_eq!(switch.session_seed, GAME_SEED);
    let (map, entity) = enter_map(addr, codec, &switch);
    IrosePlayer {
        char_conn,
        map,
        token,
        entity,
        game_seed: switch.session_seed,
    }
}
