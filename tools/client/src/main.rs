//! `rose-client`: a scripted game client for packet-service.
//!
//! It walks the whole session sequence of a ROSE client on one gateway —
//! login, server select, the character phase (creating the character if the
//! account has none), the map phase, entering the map — then says something
//! in normal chat, prints what it hears for a while, and logs out. Useful as
//! a smoke test of a deployment and as a second player in a demo. With
//! `--packet-ids irose` it speaks as the irose 129en client does
//! (`irose.rs`).

mod irose;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use packet_service::client::{sha256_hex, Client, ClientError, Received};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use rose_client::results::{self, ResultNames};

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The gateway could not be reached at all.
    #[error("cannot reach the gateway at {addr}: {source}")]
    Unreachable {
        /// Where the client tried to connect.
        addr: SocketAddr,
        /// What the connect said.
        source: ClientError,
    },
    /// The gateway answered a step with a result other than OK.
    #[error("{step} failed: {}", names.describe(*code))]
    Refused {
        /// What the client was doing.
        step: &'static str,
        /// The reply's result code table.
        names: ResultNames,
        /// The code received.
        code: u8,
    },
    /// The character just created is not in the list that followed.
    #[error("character {0:?} is missing from the list after it was created")]
    Missing(String),
    /// A connection failed after it was open.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Checks a reply's result code: OK (0) or [`Failure::Refused`].
fn check(step: &'static str, names: ResultNames, code: u8) -> Result<(), Failure> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::Refused { step, names, code })
    }
}

struct Options {
    addr: SocketAddr,
    codec: CodecKind,
    dialect: DialectId,
    user: String,
    password: String,
    character: String,
    say: Vec<String>,
    listen: Duration,
}

fn parse() -> Result<Option<Options>, String> {
    let mut o = getopts::Options::new();
    o.optopt(
        "a",
        "addr",
        "gateway address (default 127.0.0.1:29000)",
        "HOST:PORT",
    );
    o.optopt("", "codec", "rose or plain (default rose)", "NAME");
    o.optopt(
        "",
        "packet-ids",
        "osirose, osirose-2021 or irose (default osirose)",
        "NAME",
    );
    o.optopt("u", "user", "account name (default admin)", "NAME");
    o.optopt("p", "password", "password (default admin)", "PASSWORD");
    o.optopt(
        "c",
        "char",
        "character name, created if missing (default Hero)",
        "NAME",
    );
    o.optmulti("s", "say", "say this in normal chat (repeatable)", "TEXT");
    o.optopt(
        "l",
        "listen",
        "print what arrives for this many seconds (default 2)",
        "SECS",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = o.parse(&args).map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        print!("{}", o.usage("Usage: rose-client [options]"));
        return Ok(None);
    }
    if m.opt_present("version") {
        println!("rose-client {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let addr_text = m
        .opt_str("addr")
        .unwrap_or_else(|| "127.0.0.1:29000".into());
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| format!("--addr {addr_text}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {addr_text}: no address"))?;
    let codec = m.opt_str("codec").unwrap_or_else(|| "rose".into());
    let codec =
        CodecKind::from_name(&codec).ok_or_else(|| format!("--codec {codec}: rose or plain"))?;
    let ids = m.opt_str("packet-ids").unwrap_or_else(|| "osirose".into());
    let dialect = DialectId::from_name(&ids)
        .ok_or_else(|| format!("--packet-ids {ids}: osirose, osirose-2021 or irose"))?;
    let listen: f64 = match m.opt_str("listen") {
        Some(s) => s.parse().map_err(|_| format!("--listen {s}: seconds"))?,
        None => 2.0,
    };
    if !(0.0..=3600.0).contains(&listen) {
        return Err("--listen: 0..=3600 seconds".into());
    }
    Ok(Some(Options {
        addr,
        codec,
        dialect,
        user: m.opt_str("user").unwrap_or_else(|| "admin".into()),
        password: m.opt_str("password").unwrap_or_else(|| "admin".into()),
        character: m.opt_str("char").unwrap_or_else(|| "Hero".into()),
        say: m.opt_strs("say"),
        listen: Duration::from_secs_f64(listen),
    }))
}

fn connect(o: &Options) -> Result<Client, Failure> {
    let mut c =
        Client::connect(o.addr, o.codec, o.dialect, Duration::from_secs(10)).map_err(|source| {
            Failure::Unreachable {
                addr: o.addr,
                source,
            }
        })?;
    let accept: AcceptReply = c.request(&AcceptReq)?;
    if accept.result != AcceptReply::ACCEPTED {
        println!("  accept {}", results::ACCEPT.describe(accept.result));
    }
    Ok(c)
}

fn run(o: &Options) -> Result<(), Failure> {
    // Login connection.
    let mut login = connect(o)?;
    let reply: LoginReply = login.request(&LoginReq {
        digest: sha256_hex(&o.password),
        username: o.user.clone(),
    })?;
    check("login", results::LOGIN, reply.result)?;
    let servers = reply.servers.iter().map(|s| (s.name.as_str(), s.id));
    let select = select_server(&mut login, o, servers.collect())?;
    drop(login);

    // Character connection (stays open while playing).
    let mut chars = connect(o)?;
    let join = JoinServerReq {
        session_id: select.session_id,
        digest: sha256_hex(&o.password),
    };
    let joined: JoinServerReply = chars.request(&join)?;
    check("char-phase join", results::JOIN, joined.result)?;
    select_character::<CharInfo>(&mut chars, o)?;

    // Map connection.
    let mut map = connect(o)?;
    let joined: JoinServerReply = map.request(&join)?;
    check("map join", results::JOIN, joined.result)?;
    let me: SelectCharReply = map.recv_until(4)?;
    let entity = joined.id;
    // The rest of the join burst (inventory, quests, billing) comes first.
    map.send(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    })?;
    let _: ChangeMapReply = map.recv_until(8)?;
    println!(
        "in the world as entity {entity} on map {} at ({}, {})",
        me.map, me.x, me.y
    );
    play(&mut map, o, print_packet)?;
    drop(chars);
    Ok(())
}

/// After the login: the first server's channel list and the server select.
/// `servers` are the login reply's (name, id).
fn select_server(
    login: &mut Client,
    o: &Options,
    servers: Vec<(&str, u32)>,
) -> Result<SrvSelectReply, Failure> {
    let server = servers.first().map(|s| s.1).unwrap_or(1);
    let names: Vec<&str> = servers.iter().map(|s| s.0).collect();
    println!("logged in as {} (servers: {names:?})", o.user);
    let channels: ChannelListReply = login.request(&ChannelListReq { server_id: server })?;
    let channel = channels.channels.first().map(|c| c.id).unwrap_or(1);
    let select: SrvSelectReply = login.request(&SrvSelectReq {
        server_id: server,
        channel_id: channel,
    })?;
    check("server select", results::SRV_SELECT, select.result)?;
    println!(
        "server {server} channel {channel}: session {} at {}:{}",
        select.session_id, select.ip, select.port
    );
    Ok(select)
}

/// A character of a list, in either family's layout.
trait Listed: Element {
    fn name(&self) -> &str;
}

impl Listed for CharInfo {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for packet_service::protocol::packets::irose::CharInfo {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The slot of `--char` in the list, creating the character if it is
/// missing.
fn pick_character<C: Listed>(chars: &mut Client, o: &Options) -> Result<usize, Failure>
where
    CharListReplyOf<C>: Packet,
{
    let find = |list: &CharListReplyOf<C>| {
        (list.characters.iter()).position(|c| c.name().eq_ignore_ascii_case(&o.character))
    };
    let list: CharListReplyOf<C> = chars.request(&CharListReq)?;
    if let Some(slot) = find(&list) {
        return Ok(slot);
    }
    let created: CreateCharReply = chars.request(&CreateCharReq {
        race: 0,
        stone: 1,
        hair: 1,
        face: 1,
        weapon: 0,
        zone: 1,
        name: o.character.clone(),
    })?;
    check("create character", results::CREATE_CHAR, created.result)?;
    println!("created character {}", o.character);
    let list: CharListReplyOf<C> = chars.request(&CharListReq)?;
    find(&list).ok_or_else(|| Failure::Missing(o.character.clone()))
}

/// Picks (or creates) `--char` and selects it: where the map is.
fn select_character<C: Listed>(chars: &mut Client, o: &Options) -> Result<SwitchServer, Failure>
where
    CharListReplyOf<C>: Packet,
{
    let slot = pick_character::<C>(chars, o)?;
    let switch: SwitchServer = chars.request(&SelectCharReq {
        slot: u8::try_from(slot).unwrap_or(u8::MAX),
        run_mode: 0,
        ride_mode: 0,
        name: o.character.clone(),
    })?;
    println!(
        "selected {} (slot {slot}); map server {}:{}",
        o.character, switch.ip, switch.port
    );
    Ok(switch)
}

/// In the world: says `--say`, prints what arrives for `--listen` (with
/// `print`), logs out.
fn play(map: &mut Client, o: &Options, print: fn(&Received)) -> Result<(), Failure> {
    for text in &o.say {
        map.send(&NormalChat {
            message: text.clone(),
        })?;
        println!("said: {text}");
    }
    let until = Instant::now() + o.listen;
    while Instant::now() < until {
        match map.recv() {
            Ok(r) => print(&r),
            Err(ClientError::Timeout) => break,
            Err(e) => return Err(e.into()),
        }
    }
    map.send(&LogoutReq)?;
    let bye: LogoutReply = map.recv_until(64)?;
    println!("logged out (wait {} s)", bye.wait_time);
    Ok(())
}

fn print_packet(r: &Received) {
    match r.ptype {
        Some(PacketType::PAKWC_NORMAL_CHAT) => {
            if let Ok(c) = r.decode::<NormalChatBroadcast>() {
                println!("heard entity {}: {}", c.char_id, c.message);
            }
        }
        Some(PacketType::PAKWC_WHISPER_CHAT) => {
            if let Ok(c) = r.decode::<WhisperChatReply>() {
                println!("whisper from {}: {}", c.sender, c.message);
            }
        }
        Some(PacketType::PAKWC_SHOUT_CHAT) => {
            if let Ok(c) = r.decode::<ShoutChatBroadcast>() {
                println!("{} shouts: {}", c.sender, c.message);
            }
        }
        _ => println!("received {} ({} bytes)", r.name(), r.body.len()),
    }
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rose-client: {e}");
            return ExitCode::from(2);
        }
    };
    let walk = match options.dialect {
        DialectId::Irose => irose::run,
        DialectId::Osirose | DialectId::Osirose2021 => run,
    };
    match walk(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rose-client: {e}");
            ExitCode::FAILURE
        }
    }
}
