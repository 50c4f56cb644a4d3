//! The session sequence of docs/protocol.md §4 as test steps: login, server
//! select, character phase, map phase.

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;

use super::{sha256_hex, Client, Received};

/// A client's three connections and what it learned.
pub struct Player {
    pub char_conn: Client,
    pub map: Client,
    pub session_id: u32,
    pub entity: u16,
}

impl Player {
    /// Sends the map a move to (`x`, `y`).
    pub fn walk(&mut self, x: f32, y: f32) {
        self.map.send(&MouseCmd {
            target_id: 0,
            x,
            y,
            z: 0,
        });
    }
}

/// Login connection: login, channel list, server select. Returns the session id.
pub fn login_phase(
    addr: std::net::SocketAddr,
    codec: CodecKind,
    user: &str,
    password: &str,
) -> u32 {
    let mut login = Client::connect(addr, codec);
    assert_eq!(login.accept().result, AcceptReply::ACCEPTED);
    let reply = login.login(user, password);
    assert_eq!(reply.result, 0, "login ok");
    assert_eq!(reply.servers.len(), 1);
    let select = select_server(&mut login, reply.servers[0].id);
    assert_eq!(select.ip, "127.0.0.1");
    assert_eq!(
        select.port,
        addr.port(),
        "one port serves every phase (docs/protocol.md §9 D7)"
    );
    select.session_id
}

/// After the login, in either family: the server's channel list and the
/// server select of its first channel, which must succeed.
pub fn select_server(login: &mut Client, server: u32) -> SrvSelectReply {
    login.send(&ChannelListReq { server_id: server });
    let channels: ChannelListReply = login.recv_as();
    assert_eq!(channels.server_id, server);
    assert!(!channels.channels.is_empty());
    login.send(&SrvSelectReq {
        server_id: server,
        channel_id: channels.channels[0].id,
    });
    let select: SrvSelectReply = login.recv_as();
    assert_eq!(select.result, 0);
    assert_ne!(select.session_id, 0);
    select
}

pub fn join(c: &mut Client, session_id: u32, password: &str) -> JoinServerReply {
    assert_eq!(c.accept().result, AcceptReply::ACCEPTED);
    c.send(&JoinServerReq {
        session_id,
        digest: sha256_hex(password),
    });
    c.recv_as()
}

pub fn create(c: &mut Client, name: &str) -> CreateCharReply {
    c.send(&CreateCharReq {
        race: 0,
        stone: 1,
        hair: 2,
        face: 3,
        weapon: 0,
        zone: 1,
        name: name.into(),
    });
    c.recv_as()
}

pub fn list(c: &mut Client) -> CharListReply {
    c.send(&CharListReq);
    c.recv_as()
}

/// The full sequence up to standing on the map.
pub fn enter_world(
    addr: std::net::SocketAddr,
    codec: CodecKind,
    user: &str,
    char_name: &str,
) -> Player {
    let session_id = login_phase(addr, codec, user, "pw");
    let char_conn = char_phase(addr, codec, session_id, char_name);
    let (map, entity) = map_phase(addr, codec, session_id);
    Player {
        char_conn,
        map,
        session_id,
        entity,
    }
}

/// Character connection of a new account: join, create `char_name`,
/// select it. Returns the connection once SWITCH_SERVER came.
pub fn char_phase(
    addr: std::net::SocketAddr,
    codec: CodecKind,
    session_id: u32,
    char_name: &str,
) -> Client {
    let mut char_conn = Client::connect(addr, codec);
    let joined = join(&mut char_conn, session_id, "pw");
    assert_eq!(joined.result, 0, "char phase join");
    assert!(list(&mut char_conn).characters.is_empty());
    assert_eq!(create(&mut char_conn, char_name).result, 0);
    let chars = list(&mut char_conn);
    assert_eq!(chars.characters.len(), 1);
    assert_eq!(chars.characters[0].name, char_name);
    char_conn.send(&SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: char_name.into(),
    });
    let switch: SwitchServer = char_conn.recv_as();
    assert_eq!((switch.session_id, switch.port), (session_id, addr.port()));
    char_conn
}

/// Map connection: join, the join burst, CHANGE_MAP. Returns it standing
/// on the map, with its entity id.
pub fn map_phase(addr: std::net::SocketAddr, codec: CodecKind, session_id: u32) -> (Client, u16) {
    let mut map = Client::connect(addr, codec);
    let joined = join(&mut map, session_id, "pw");
    assert_eq!(joined.result, 0, "map phase join");
    assert_ne!(joined.id, 0, "entity id");
    let entity = joined.id as u16;
    // The join burst.
    let burst: Vec<Option<PacketType>> = (0..4).map(|_| map.recv().ptype).collect();
    assert_eq!(
        burst,
        vec![
            Some(PacketType::PAKWC_SELECT_CHAR_REPLY),
            Some(PacketType::PAKWC_INVENTORY_DATA),
            Some(PacketType::PAKWC_QUEST_DATA),
            Some(PacketType::PAKWC_BILLING_MESSAGE),
        ]
    );
    map.send(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    });
    let change: ChangeMapReply = map.recv_as();
    assert_eq!(change.object_index, entity);
    (map, entity)
}

/// Receives until a packet of `t` arrives (other world traffic may come first).
pub fn recv_skipping(c: &mut Client, t: PacketType) -> Received {
    for _ in 0..16 {
        let r = c.recv();
        if r.ptype == Some(t) {
            return r;
        }
    }
    panic!("no {t} within 16 packets");
}
