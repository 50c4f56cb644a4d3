//! The session sequence of the irose 129en client
//! (docs/protocol.md §10.6), as `rose-client --packet-ids irose` walks it: the login
//! connection on the default tables, the char connection on the tables of
//! the seed the server-select reply announces (kept open while playing, as
//! the real client does), the map connection on the seed of the
//! switch-server packet, the irose layouts throughout, and the entity id
//! from the zone-join reply.

use std::time::Duration;

use packet_service::client::{irose_codec, md5_hex, Client, Received};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::irose::*;
use rose_client::results;

use super::{check, play, print_packet, select_character, select_server, Failure, Options};

fn connect(o: &Options, seed: Option<u32>) -> Result<Client, Failure> {
    let codec = irose_codec(o.codec, seed);
    Client::connect_codec(o.addr, codec, DialectId::Irose, Duration::from_secs(10)).map_err(
        |source| Failure::Unreachable {
            addr: o.addr,
            source,
        },
    )
}

/// Login, char phase (creating the character if missing), map phase, chat,
/// listen, logout.
pub fn run(o: &Options) -> Result<(), Failure> {
    // Login connection: connect first, then the MD5 login.
    let mut login = connect(o, None)?;
    let accept: AcceptReply = login.request(&AcceptReq)?;
    if accept.status != 2 {
        println!("  accept {}", results::ACCEPT.describe(accept.status));
    }
    let reply: LoginReply = login.request(&LoginReq {
        password_md5: md5_hex(&o.password),
        username: o.user.clone(),
    })?;
    check("login", results::LOGIN, reply.result)?;
    let servers = reply.servers.iter().map(|s| (s.name.as_str(), s.id));
    let select = select_server(&mut login, o, servers.collect())?;
    println!("char connection seed {:#010x}", select.crypt_val);
    drop(login);

    // Char connection, on the announced seed's tables; it starts with the join.
    let mut chars = connect(o, Some(select.crypt_val))?;
    let join = |token| JoinServerReq {
        login_token: token,
        password_md5: md5_hex(&o.password),
    };
    let joined: JoinServerReply = chars.request(&join(select.session_id))?;
    check("char-phase join", results::JOIN, joined.result)?;
    let switch = select_character::<CharInfo>(&mut chars, o)?;
    println!("map connection seed {:#010x}", switch.session_seed);

    // Map connection, on the switch-server seed's tables.
    let mut map = connect(o, Some(switch.session_seed))?;
    let joined: JoinServerReply = map.request(&join(switch.session_id))?;
    check("map join", results::JOIN, joined.result)?;
    let me: SelectCharReply = map.recv_until(4)?;
    // The rest of the burst (inventory, quests) comes first.
    map.send(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    })?;
    let zone: ChangeMapReply = map.recv_until(8)?;
    println!(
        "in the world as entity {} on zone {} at ({}, {})",
        zone.entity_id, me.0.map, me.0.x, me.0.y
    );
    play(&mut map, o, print_irose_packet)?;
    drop(map);
    drop(chars);
    Ok(())
}

/// What arrives on an irose map connection: spawns and removals by their
/// irose layouts, the rest as for osIROSE.
fn print_irose_packet(r: &Received) {
    match r.ptype {
        Some(PacketType::PAKWC_PLAYER_CHAR) => {
            if let Ok(p) = r.decode::<PlayerSpawn>() {
                println!("sees {} (entity {})", p.name, p.header.entity_id);
            }
        }
        Some(PacketType::PAKWC_REMOVE_OBJECT) => {
            if let Ok(p) = r.decode::<RemoveEntities>() {
                println!("entities left view: {:?}", p.ids);
            }
        }
        _ => print_packet(r),
    }
}
