//! Bots that play the login sequence of docs/protocol.md §4 (or, with the
//! irose dialect, docs/protocol.md §10.6) against one gateway port, each a small state
//! machine driven by [`Net`] events.
//!
//! login connection: ACCEPT → LOGIN_REQ → SRV_SELECT_REQ → (close)
//! char connection:  ACCEPT → JOIN_SERVER_REQ → CHAR_LIST_REQ
//!                   [→ CREATE_CHAR_REQ → CHAR_LIST_REQ] → SELECT_CHAR_REQ
//! map connection:   ACCEPT → JOIN_SERVER_REQ → CHANGE_MAP_REQ → chat
//!
//! irose bots open their char and map connections with the join (no
//! ACCEPT), on the tables of the seeds the gateway announced, and learn
//! their entity id from the zone-join reply.
//!
//! [`Goal::CharList`] ends at the first CHAR_LIST_REPLY (and closes the
//! char connection); [`Goal::Map`] goes on to the map and stays there with
//! the char connection open (the gateway ends the session when it closes).
//! Reconnects always go to the configured loopback address, whatever the
//! gateway advertises. Packets a bot does not wait for are ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{
    AcceptReq, Alive, ChangeMapReq, CharListReq, CreateCharReply, CreateCharReq, JoinServerReply,
    NormalChat, NormalChatBroadcast, Packet, SelectCharReq, SrvSelectReply, SrvSelectReq,
    SwitchServer,
};
use packet_service::protocol::{CodecKind, HEADER_LEN};

use crate::net::{CloseCause, ConnId, Net, NetEvent};
use crate::stats::Latency;
use crate::wire::{chat_stamp, Wire, WireError};
pub use step::Step;

mod step;

/// Tag kind of bot connections (high half of a [`Net`] tag).
pub const TAG_BOT: usize = 2 << 32;
const TAG_MASK: usize = (1 << 32) - 1;

/// Where a bot's flow ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Login, server select, join, character list; then disconnect.
    CharList,
    /// All the way to the map (creating a character if there is none).
    Map,
}

struct Bot {
    username: String,
    digest: Vec<u8>,
    /// The wires of its char and map connections (irose: the announced
    /// seeds' tables).
    wires: [Wire; 2],
    step: Step,
    login: Option<ConnId>,
    chr: Option<ConnId>,
    map: Option<ConnId>,
    session: u32,
    entity: u16,
    started: Instant,
    deadline: Instant,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Role {
    Login,
    Char,
    Map,
}

/// Options of a bot fleet.
#[derive(Clone, Debug)]
pub struct BotOpts {
    /// The gateway (every phase, one port).
    pub addr: SocketAddr,
    /// Codec of the gateway.
    pub codec: CodecKind,
    /// Packet-id numbering of the gateway.
    pub dialect: DialectId,
    /// Where each flow ends.
    pub goal: Goal,
    /// Usernames are `prefix` + bot index (keep the total ≤ 16 characters).
    pub prefix: String,
    /// A flow not finished within this is a failure.
    pub flow_timeout: Duration,
}

/// Every bot of a scenario.
pub struct Bots {
    opts: BotOpts,
    wire: Wire,
    bots: Vec<Bot>,
    scratch: Vec<u8>,
    /// Bots that reached their goal.
    pub completed: u64,
    /// Bots that failed.
    pub failed: u64,
    /// Time from the first connect to the goal, per completed bot.
    pub flow: Latency,
    /// Failures by cause (`login_result_3`, `closed_peer_closed_at_char_join`, `timeout_at_login`, …).
    pub failures: BTreeMap<String, u64>,
    /// Chat deliveries received while recording (fanout).
    pub delivered: u64,
    /// Chat deliveries received at any time.
    pub delivered_total: u64,
    /// Delivery latency (send timestamp in the text → receipt).
    pub delivery: Latency,
    /// Other packets received on the map while recording, by type (walk).
    pub received: BTreeMap<PacketType, u64>,
    recording: bool,
    epoch: Instant,
    /// Tag kind of this fleet's connections (high half of a [`Net`] tag).
    tag: usize,
}

impl Bots {
    /// An empty fleet.
    pub fn new(opts: BotOpts) -> Bots {
        let wire = Wire::new(opts.codec, opts.dialect);
        Bots {
            opts,
            wire,
            bots: Vec::new(),
            scratch: Vec::new(),
            completed: 0,
            failed: 0,
            flow: Latency::new(),
            failures: BTreeMap::new(),
            delivered: 0,
            delivered_total: 0,
            delivery: Latency::new(),
            received: BTreeMap::new(),
            recording: false,
            epoch: Instant::now(),
            tag: TAG_BOT,
        }
    }

    /// The same fleet with its connections tagged `kind` instead of
    /// [`TAG_BOT`] (for two fleets in one event loop). `kind` must leave the
    /// low 32 bits clear.
    pub fn with_tag(mut self, kind: usize) -> Bots {
        self.tag = kind & !TAG_MASK;
        self
    }

    /// Bots started.
    pub fn started(&self) -> u64 {
        self.bots.len() as u64
    }

    /// Bots neither finished nor failed.
    pub fn in_flight(&self) -> u64 {
        self.started() - self.completed - self.failed
    }

    /// Bots on the map.
    pub fn in_map(&self) -> Vec<usize> {
        (0..self.bots.len())
            .filter(|&i| self.bots[i].step == Step::InMap)
            .collect()
    }

    /// Starts or stops counting chat deliveries.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Starts one more bot with an account of its own (`prefix` + index).
    pub fn spawn(&mut self, net: &mut Net, now: Instant) {
        let username = format!("{}{}", self.opts.prefix, self.bots.len());
        self.spawn_as(net, now, username);
    }

    /// Starts one more bot logging in as `username` (password = username;
    /// a later bot may reuse the account of a finished one); returns its
    /// index.
    pub fn spawn_as(&mut self, net: &mut Net, now: Instant, username: String) -> usize {
        let idx = self.bots.len();
        let digest = self.wire.digest(&username);
        self.bots.push(Bot {
            username,
            digest,
            wires: [self.wire; 2],
            step: Step::LoginConnect,
            login: None,
            chr: None,
            map: None,
            session: 0,
            entity: 0,
            started: now,
            deadline: now + self.opts.flow_timeout,
        });
        match net.connect(self.opts.addr, self.tag | idx) {
            Ok(id) => self.bots[idx].login = Some(id),
            Err(_) => self.fail(net, idx, "connect_failed_at_login_connect".into()),
        }
        idx
    }

    /// Whether bot `idx` reached its goal or failed (an unknown index
    /// counts as settled).
    pub fn is_settled(&self, idx: usize) -> bool {
        self.bots.get(idx).is_none_or(|b| b.step.settled())
    }

    /// Sends ALIVE on every open connection of bot `idx` (keeps the
    /// gateway's idle timer from firing); returns how many were sent.
    pub fn keepalive(&mut self, net: &mut Net, idx: usize) -> usize {
        let Some(b) = self.bots.get(idx) else {
            return 0;
        };
        if b.step == Step::Failed {
            return 0;
        }
        let roles = [
            (b.login, Role::Login),
            (b.chr, Role::Char),
            (b.map, Role::Map),
        ];
        let open: Vec<Role> = roles
            .iter()
            .filter(|(id, _)| id.is_some())
            .map(|r| r.1)
            .collect();
        for &role in &open {
            self.send_on(net, idx, role, &Alive);
        }
        open.len()
    }

    fn fail(&mut self, net: &mut Net, idx: usize, why: String) {
        let bot = &mut self.bots[idx];
        if bot.step == Step::Failed {
            return;
        }
        if bot.step.settled() {
            // Reached its goal earlier; only on-map losses count.
            self.completed -= 1;
        }
        bot.step = Step::Failed;
        for id in [bot.login.take(), bot.chr.take(), bot.map.take()]
            .into_iter()
            .flatten()
        {
            net.close(id);
        }
        self.failed += 1;
        *self.failures.entry(why).or_default() += 1;
    }

    /// The wire of bot `idx`'s connection in `role`.
    fn wire_of(&self, idx: usize, role: Role) -> Wire {
        match role {
            Role::Login => self.wire,
            Role::Char => self.bots[idx].wires[0],
            Role::Map => self.bots[idx].wires[1],
        }
    }

    /// Sends what `frame` sealed, or fails the bot.
    fn send_frame(
        &mut self,
        net: &mut Net,
        idx: usize,
        role: Role,
        what: PacketType,
        frame: Result<Vec<u8>, WireError>,
    ) {
        let b = &self.bots[idx];
        let id = match role {
            Role::Login => b.login,
            Role::Char => b.chr,
            Role::Map => b.map,
        };
        match (frame, id) {
            (Ok(bytes), Some(id)) => net.send(id, &bytes),
            (Ok(_), None) => {}
            (Err(e), _) => self.fail(net, idx, format!("encode_{}: {e}", what.name())),
        }
    }

    /// Sends a chat line from bot `idx` (on the map) carrying the send time.
    pub fn chat(&mut self, net: &mut Net, idx: usize, now: Instant) -> bool {
        let Some(bot) = self.bots.get(idx) else {
            return false;
        };
        let (Step::InMap, Some(_)) = (bot.step, bot.map) else {
            return false;
        };
        let nanos = now.duration_since(self.epoch).as_nanos();
        let msg = NormalChat {
            message: format!("lg {nanos}"),
        };
        self.send_on(net, idx, Role::Map, &msg);
        true
    }

    /// Sends `p` on the map connection of bot `idx`, if it is on the map.
    pub fn send_map<P: Packet>(&mut self, net: &mut Net, idx: usize, p: &P) -> bool {
        let on_map = self
            .bots
            .get(idx)
            .is_some_and(|b| b.step == Step::InMap && b.map.is_some());
        if on_map {
            self.send_on(net, idx, Role::Map, p);
        }
        on_map
    }

    /// Closes every connection of bot `idx` (the gateway ends its session).
    pub fn close(&mut self, net: &mut Net, idx: usize) {
        if let Some(bot) = self.bots.get_mut(idx) {
            for id in [bot.login.take(), bot.chr.take(), bot.map.take()]
                .into_iter()
                .flatten()
            {
                net.close(id);
            }
        }
    }

    /// Closes every connection of every bot.
    pub fn close_all(&mut self, net: &mut Net) {
        for idx in 0..self.bots.len() {
            self.close(net, idx);
        }
    }

    /// Fails bots whose flow is past its deadline.
    pub fn check_timeouts(&mut self, net: &mut Net, now: Instant) {
        for idx in 0..self.bots.len() {
            let b = &self.bots[idx];
            if !b.step.settled() && now >= b.deadline {
                let why = format!("timeout_at_{}", b.step.name());
                self.fail(net, idx, why);
            }
        }
    }

    fn role(&self, idx: usize, id: ConnId) -> Option<Role> {
        let b = self.bots.get(idx)?;
        if b.login == Some(id) {
            Some(Role::Login)
        } else if b.chr == Some(id) {
            Some(Role::Char)
        } else if b.map == Some(id) {
            Some(Role::Map)
        } else {
            None
        }
    }

    /// A [`NetEvent`] for a connection with the bot tag.
    pub fn on_event(&mut self, net: &mut Net, ev: NetEvent, now: Instant) {
        match ev {
            NetEvent::Connected(id) => {
                let idx = net.tag(id) & TAG_MASK;
                let Some(role) = self.role(idx, id) else {
                    return;
                };
                if !self.wire_of(idx, role).accepts_first(role == Role::Login) {
                    // irose char and map connections start with the join.
                    self.join(net, idx, role);
                    return;
                }
                self.bots[idx].step = match role {
                    Role::Login => Step::LoginAccept,
                    Role::Char => Step::CharAccept,
                    Role::Map => Step::MapAccept,
                };
                self.send_on(net, idx, role, &AcceptReq);
            }
            NetEvent::Input(id) => {
                let idx = net.tag(id) & TAG_MASK;
                let Some(role) = self.role(idx, id) else {
                    return;
                };
                let mut scratch = std::mem::take(&mut self.scratch);
                let wire = self.wire_of(idx, role);
                loop {
                    let frame = match wire.open_next(net.input_mut(id)) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            let why = format!("bad_frame_at_{}: {e}", self.bots[idx].step.name());
                            self.fail(net, idx, why);
                            break;
                        }
                    };
                    let Some(ptype) = frame.ptype else {
                        net.consume(id, frame.wire_len);
                        continue;
                    };
                    let body = &net.input(id)[HEADER_LEN.min(frame.data_len)..frame.data_len];
                    let in_map = role == Role::Map && self.bots[idx].step == Step::InMap;
                    let result = if in_map && ptype == PacketType::PAKWC_NORMAL_CHAT {
                        // The fan-out's millions: read where they lie.
                        let read = self.on_chat(body, now);
                        net.consume(id, frame.wire_len);
                        read
                    } else {
                        scratch.clear();
                        scratch.extend_from_slice(body);
                        net.consume(id, frame.wire_len);
                        self.on_packet(net, idx, role, ptype, &scratch, now)
                    };
                    if let Err(why) = result {
                        self.fail(net, idx, why);
                    }
                    if self.role(idx, id).is_none() {
                        break; // closed by the step
                    }
                }
                self.scratch = scratch;
            }
            NetEvent::Closed(id, cause) => {
                let idx = net.tag(id) & TAG_MASK;
                if let Some(role) = self.role(idx, id) {
                    let step = self.bots[idx].step;
                    match role {
                        Role::Login => self.bots[idx].login = None,
                        Role::Char => self.bots[idx].chr = None,
                        Role::Map => self.bots[idx].map = None,
                    }
                    if step != Step::Done {
                        let why = match cause {
                            CloseCause::ConnectFailed => {
                                format!("connect_failed_at_{}", step.name())
                            }
                            c => format!("closed_{}_at_{}", c.label(), step.name()),
                        };
                        self.fail(net, idx, why);
                    }
                }
            }
        }
    }

    fn complete(&mut self, idx: usize, now: Instant) {
        self.completed += 1;
        self.flow
            .record(now.saturating_duration_since(self.bots[idx].started));
    }

    /// A chat line on the map: a delivery when it carries a send time (any
    /// other line must still decode).
    fn on_chat(&mut self, body: &[u8], now: Instant) -> Result<(), String> {
        let Some(sent) = chat_stamp(body) else {
            NormalChatBroadcast::decode(body).map_err(decode_err(PacketType::PAKWC_NORMAL_CHAT))?;
            return Ok(());
        };
        self.delivered_total += 1;
        if self.recording {
            self.delivered += 1;
            let sent_at = self.epoch + Duration::from_nanos(sent);
            self.delivery.record(now.saturating_duration_since(sent_at));
        }
        Ok(())
    }

    fn on_packet(
        &mut self,
        net: &mut Net,
        idx: usize,
        role: Role,
        ptype: PacketType,
        body: &[u8],
        now: Instant,
    ) -> Result<(), String> {
        use PacketType as T;
        let step = self.bots[idx].step;
        let decode_err = decode_err(ptype);
        match (step, role, ptype) {
            (Step::LoginAccept, Role::Login, T::PAKSS_ACCEPT_REPLY) => {
                let b = &self.bots[idx];
                let req = self.wire.login(&b.digest, &b.username);
                self.bots[idx].step = Step::Login;
                self.send_frame(net, idx, Role::Login, T::PAKCS_LOGIN_REQ, req);
            }
            (Step::Login, Role::Login, T::PAKLC_LOGIN_REPLY) => {
                let (result, server_id) = self.wire.login_reply(body).map_err(decode_err)?;
                if result != 0 {
                    return Err(format!("login_result_{result}"));
                }
                self.bots[idx].step = Step::SrvSelect;
                self.send_on(
                    net,
                    idx,
                    Role::Login,
                    &SrvSelectReq {
                        server_id,
                        channel_id: 1,
                    },
                );
            }
            (Step::SrvSelect, Role::Login, T::PAKLC_SRV_SELECT_REPLY) => {
                let r = SrvSelectReply::decode(body).map_err(decode_err)?;
                if r.result != 0 {
                    return Err(format!("srv_select_result_{}", r.result));
                }
                let bot = &mut self.bots[idx];
                bot.session = r.session_id;
                bot.wires[0] = self.wire.next(r.crypt_val);
                if let Some(id) = bot.login.take() {
                    net.close(id);
                }
                bot.step = Step::CharConnect;
                match net.connect(self.opts.addr, self.tag | idx) {
                    Ok(id) => self.bots[idx].chr = Some(id),
                    Err(_) => return Err("connect_failed_at_char_connect".into()),
                }
            }
            (Step::CharAccept, Role::Char, T::PAKSS_ACCEPT_REPLY)
            | (Step::MapAccept, Role::Map, T::PAKSS_ACCEPT_REPLY) => self.join(net, idx, role),
            (Step::CharJoin, Role::Char, T::PAKSC_JOIN_SERVER_REPLY) => {
                let r = JoinServerReply::decode(body).map_err(decode_err)?;
                if r.result != 0 {
                    return Err(format!("char_join_result_{}", r.result));
                }
                self.bots[idx].step = Step::CharList;
                self.send_on(net, idx, Role::Char, &CharListReq);
            }
            (Step::CharList | Step::CharListAgain, Role::Char, T::PAKCC_CHAR_LIST_REPLY) => {
                let first = self.wire.first_character(body).map_err(decode_err)?;
                if self.opts.goal == Goal::CharList {
                    self.bots[idx].step = Step::Done;
                    if let Some(id) = self.bots[idx].chr.take() {
                        net.close(id);
                    }
                    self.complete(idx, now);
                    return Ok(());
                }
                match first {
                    Some(name) => {
                        let req = SelectCharReq {
                            slot: 0,
                            run_mode: 0,
                            ride_mode: 0,
                            name,
                        };
                        self.bots[idx].step = Step::SelectChar;
                        self.send_on(net, idx, Role::Char, &req);
                    }
                    None if step == Step::CharListAgain => {
                        return Err("char_list_empty_after_create".into());
                    }
                    None => {
                        let req = CreateCharReq {
                            race: 0,
                            stone: 1,
                            hair: 1,
                            face: 1,
                            weapon: 0,
                            zone: 1,
                            name: self.bots[idx].username.clone(),
                        };
                        self.bots[idx].step = Step::CreateChar;
                        self.send_on(net, idx, Role::Char, &req);
                    }
                }
            }
            (Step::CreateChar, Role::Char, T::PAKCC_CREATE_CHAR_REPLY) => {
                let r = CreateCharReply::decode(body).map_err(decode_err)?;
                if r.result != 0 {
                    return Err(format!("create_char_result_{}", r.result));
                }
                self.bots[idx].step = Step::CharListAgain;
                self.send_on(net, idx, Role::Char, &CharListReq);
            }
            (Step::SelectChar, Role::Char, T::PAKCC_SWITCH_SERVER) => {
                let r = SwitchServer::decode(body).map_err(decode_err)?;
                self.bots[idx].session = r.session_id;
                self.bots[idx].wires[1] = self.wire.next(r.session_seed);
                self.bots[idx].step = Step::MapConnect;
                match net.connect(self.opts.addr, self.tag | idx) {
                    Ok(id) => self.bots[idx].map = Some(id),
                    Err(_) => return Err("connect_failed_at_map_connect".into()),
                }
            }
            (Step::MapJoin, Role::Map, T::PAKSC_JOIN_SERVER_REPLY) => {
                let r = JoinServerReply::decode(body).map_err(decode_err)?;
                if r.result != 0 {
                    return Err(format!("map_join_result_{}", r.result));
                }
                self.bots[idx].entity = r.id as u16;
                self.bots[idx].step = Step::ChangeMap;
                self.send_on(
                    net,
                    idx,
                    Role::Map,
                    &ChangeMapReq {
                        weight_rate: 0,
                        z: 0,
                    },
                );
            }
            (Step::ChangeMap, Role::Map, T::PAKWC_CHANGE_MAP_REPLY) => {
                if let Some(entity) = self.wire.zone_entity(body).map_err(decode_err)? {
                    self.bots[idx].entity = entity;
                }
                self.bots[idx].step = Step::InMap;
                self.complete(idx, now);
            }
            (Step::InMap, Role::Map, t) if self.recording => {
                *self.received.entry(t).or_default() += 1;
            }
            _ => {} // not waited for: join burst, spawns, other traffic
        }
        Ok(())
    }

    fn send_on<P: Packet>(&mut self, net: &mut Net, idx: usize, role: Role, p: &P) {
        let frame = self.wire_of(idx, role).frame(p);
        self.send_frame(net, idx, role, P::TYPE, frame);
    }

    /// JOIN_SERVER_REQ on the char or map connection.
    fn join(&mut self, net: &mut Net, idx: usize, role: Role) {
        let b = &self.bots[idx];
        let req = self.wire_of(idx, role).join(b.session, &b.digest);
        self.bots[idx].step = if role == Role::Char {
            Step::CharJoin
        } else {
            Step::MapJoin
        };
        self.send_frame(net, idx, role, PacketType::PAKCS_JOIN_SERVER_REQ, req);
    }
}

/// A username prefix unique to this run: `letter` + six base-36 digits of
/// the clock (so re-runs against the same gateway create new accounts).
pub fn run_prefix(letter: char) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut n = (ms % 36u128.pow(6)) as u64;
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    format!("{letter}{}", String::from_utf8_lossy(&digits))
}

/// How a body that does not decode as `ptype` fails the bot.
fn decode_err(
    ptype: PacketType,
) -> impl Fn(packet_service::protocol::packets::BodyError) -> String {
    move |e| format!("bad_{}: {e}", ptype.name())
}
