//! Test support: a small session server speaking the project's codecs, a
//! recording client that plays a login → char → map session against it, and
//! the conversion of that recording into a pcap file.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use packet_service::protocol::packet_type::STRESS_ID;
use packet_service::protocol::{Codec, CodecKind, DialectId, Direction, PacketType, HEADER_LEN};
use packet_service_replay::capture::LinkType;
use packet_service_replay::reassembly::Side;
use packet_service_replay::synth::{CaptureBuilder, Conversation};
use pcap_file::TsResolution;

/// How long any blocking socket call in the tests may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn id(t: PacketType) -> u16 {
    DialectId::Osirose
        .dialect()
        .wire_id(t)
        .unwrap_or_else(|| panic!("{t} has no id"))
}

/// A plaintext packet of type `t` with `body`.
pub fn packet(t: PacketType, body: &[u8]) -> Vec<u8> {
    let command = if t == PacketType::STRESS {
        STRESS_ID
    } else {
        id(t)
    };
    let mut p = vec![0u8; HEADER_LEN];
    p[0..2].copy_from_slice(&((HEADER_LEN + body.len()) as u16).to_le_bytes());
    p[2..4].copy_from_slice(&command.to_le_bytes());
    p.extend_from_slice(body);
    p
}

/// Seals a plaintext packet.
pub fn seal(codec: Codec, dir: Direction, plain: &[u8]) -> Vec<u8> {
    let mut p = plain.to_vec();
    codec.seal(dir, &mut p).expect("seal");
    p
}

/// Reads one whole frame; returns (wire bytes, plaintext), `None` at EOF.
pub fn read_frame(s: &mut TcpStream, codec: Codec, dir: Direction) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut wire = vec![0u8; HEADER_LEN];
    s.read_exact(&mut wire).ok()?;
    let h = codec.peek(dir, &wire).ok()??;
    wire.resize(h.wire_len, 0);
    s.read_exact(&mut wire[HEADER_LEN..]).ok()?;
    let mut plain = wire.clone();
    codec.open(&h, &mut plain).ok()?;
    plain.truncate(h.data_len);
    Some((wire, plain))
}

/// The in-test server: ACCEPT, STRESS echo (plain), server select, join with
/// session check, screen-shot time, select character → switch server.
pub struct TestServer {
    pub addr: SocketAddr,
}

struct Shared {
    codec: Codec,
    port: u16,
    next_session: AtomicU32,
    sessions: Mutex<HashSet<u32>>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1:0; `seed` makes its session ids and
    /// random values differ from another instance's.
    pub fn start(kind: CodecKind, seed: u32) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            codec: Codec::new(kind),
            port: addr.port(),
            next_session: AtomicU32::new(seed.wrapping_mul(0x9E37_79B9) | 1),
            sessions: Mutex::new(HashSet::new()),
        });
        // The accept loop lives as long as the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if stream.peer_addr().is_err() {
                    continue;
                }
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        TestServer { addr }
    }
}

fn serve(mut s: TcpStream, shared: &Shared) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let codec = shared.codec;
    let d = DialectId::Osirose.dialect();
    while let Some((wire, plain)) = read_frame(&mut s, codec, Direction::ClientToServer) {
        let command = u16::from_le_bytes([plain[2], plain[3]]);
        let body = &plain[HEADER_LEN..];
        let reply: Option<Vec<u8>> = match d.client_packet(command) {
            Some(PacketType::STRESS) => {
                let _ = s.write_all(&wire);
                None
            }
            Some(PacketType::PAKCS_ACCEPT_REQ) => {
                let rand = shared.next_session.fetch_add(7, Ordering::Relaxed);
                let mut b = vec![2];
                b.extend(rand.to_le_bytes());
                Some(packet(PacketType::PAKSS_ACCEPT_REPLY, &b))
            }
            Some(PacketType::PAKCS_SRV_SELECT_REQ) => {
                let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
                shared.sessions.lock().expect("lock").insert(session);
                let mut b = vec![0];
                b.extend(session.to_le_bytes());
                b.extend(0u32.to_le_bytes());
                b.extend(b"127.0.0.1\0");
                b.extend(shared.port.to_le_bytes());
                Some(packet(PacketType::PAKLC_SRV_SELECT_REPLY, &b))
            }
            Some(PacketType::PAKCS_JOIN_SERVER_REQ) => {
                let session = body
                    .get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let known =
                    session.is_some_and(|sid| shared.sessions.lock().expect("lock").contains(&sid));
                let mut b = vec![if known { 0 } else { 3 }];
                b.extend(session.unwrap_or(0).wrapping_add(1000).to_le_bytes());
                b.extend(0u32.to_le_bytes());
                Some(packet(PacketType::PAKSC_JOIN_SERVER_REPLY, &b))
            }
            Some(PacketType::PAKCS_SCREEN_SHOT_TIME_REQ) => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut b = 2026u16.to_le_bytes().to_vec();
                b.extend([11, 29, (secs / 3600 % 24) as u8, (secs / 60 % 60) as u8]);
                Some(packet(PacketType::PAKSC_SCREEN_SHOT_TIME_REPLY, &b))
            }
            Some(PacketType::PAKCS_SELECT_CHAR_REQ) => {
                let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
                shared.sessions.lock().expect("lock").insert(session);
                let mut b = shared.port.to_le_bytes().to_vec();
                b.extend(session.to_le_bytes());
                b.extend(0u32.to_le_bytes());
                b.extend(b"127.0.0.1\0");
                Some(packet(PacketType::PAKCC_SWITCH_SERVER, &b))
            }
            _ => None,
        };
        if let Some(r) = reply {
            if s.write_all(&seal(codec, Direction::ServerToClient, &r))
                .is_err()
            {
                return;
            }
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

/// One recorded chunk of a connection.
#[derive(Clone, Debug)]
pub enum Record {
    Send(Duration, Side, Vec<u8>),
    Close(Duration, Side),
}

/// A recorded connection.
pub struct Recorded {
    pub records: Vec<Record>,
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock")
}

/// A client connection that records what goes each way.
pub struct Client {
    stream: TcpStream,
    codec: Codec,
    /// Records, tagged with a global sequence number for ordering.
    pub log: Arc<Mutex<Vec<(usize, Record)>>>,
    pub conn: usize,
}

impl Client {
    pub fn connect(
        server: SocketAddr,
        codec: Codec,
        log: Arc<Mutex<Vec<(usize, Record)>>>,
        conn: usize,
    ) -> Client {
        let stream = TcpStream::connect(server).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        Client {
            stream,
            codec,
            log,
            conn,
        }
    }

    fn record(&self, r: Record) {
        self.log.lock().expect("log").push((self.conn, r));
    }

    /// Sends a plaintext packet.
    pub fn send(&mut self, plain: &[u8]) {
        let wire = seal(self.codec, Direction::ClientToServer, plain);
        self.stream.write_all(&wire).expect("write");
        self.record(Record::Send(now(), Side::Client, wire));
    }

    /// Receives one packet; returns its plaintext.
    pub fn recv(&mut self) -> Vec<u8> {
        let (wire, plain) =
            read_frame(&mut self.stream, self.codec, Direction::ServerToClient).expect("reply");
        self.record(Record::Send(now(), Side::Server, wire));
        plain
    }

    /// Half-closes, then waits for the server to close.
    pub fn close(mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
        self.record(Record::Close(now(), Side::Client));
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "unexpected bytes before close");
        self.record(Record::Close(now(), Side::Server));
    }
}

/// Plays a login → char → map session; returns the per-connection log.
/// With `stress`, the login connection also sends a STRESS echo (plain only).
pub fn record_session(server: SocketAddr, kind: CodecKind, stress: bool) -> Vec<(usize, Record)> {
    let codec = Codec::new(kind);
    let log = Arc::new(Mutex::new(Vec::new()));
    let digest = [b'a'; 64];
    let u32_at = |p: &[u8], at: usize| u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);

    let mut login = Client::connect(server, codec, log.clone(), 0);
    login.send(&packet(PacketType::PAKCS_ACCEPT_REQ, &[]));
    login.recv();
    if stress {
        login.send(&packet(PacketType::STRESS, b"ey"));
        login.recv();
    }
    login.send(&packet(PacketType::PAKCS_SRV_SELECT_REQ, &[1, 0, 0, 0, 1]));
    let select = login.recv();
    let session = u32_at(&select, 7);

    let mut char_conn = Client::connect(server, codec, log.clone(), 1);
    char_conn.send(&packet(PacketType::PAKCS_ACCEPT_REQ, &[]));
    char_conn.recv();
    let mut join = session.to_le_bytes().to_vec();
    join.extend(digest);
    char_conn.send(&packet(PacketType::PAKCS_JOIN_SERVER_REQ, &join));
    let joined = char_conn.recv();
    assert_eq!(joined[6], 0, "char join accepted");
    login.close();
    char_conn.send(&packet(PacketType::PAKCS_SCREEN_SHOT_TIME_REQ, &[1, 0]));
    char_conn.recv();
    char_conn.send(&packet(PacketType::PAKCS_SELECT_CHAR_REQ, b"\0\0\0Raven\0"));
    let switch = char_conn.recv();
    let map_session = u32_at(&switch, 8);

    let mut map = Client::connect(server, codec, log.clone(), 2);
    map.send(&packet(PacketType::PAKCS_ACCEPT_REQ, &[]));
    map.recv();
    let mut join = map_session.to_le_bytes().to_vec();
    join.extend(digest);
    map.send(&packet(PacketType::PAKCS_JOIN_SERVER_REQ, &join));
    let joined = map.recv();
    assert_eq!(joined[6], 0, "map join accepted");
    map.send(&packet(PacketType::PAKCS_ALIVE, &[]));
    map.close();
    char_conn.close();
    let log = log.lock().expect("log").clone();
    log
}

/// Writes a recorded session as a pcap with the server on port 29000.
pub fn to_pcap(log: &[(usize, Record)], link: LinkType) -> Vec<u8> {
    let server: SocketAddr = "127.0.0.1:29000".parse().expect("addr");
    let mut cap = CaptureBuilder::new();
    let mut convs: Vec<Option<Conversation>> = Vec::new();
    for (conn, record) in log {
        while convs.len() <= *conn {
            convs.push(None);
        }
        let ts = match record {
            Record::Send(ts, ..) | Record::Close(ts, _) => *ts,
        };
        let conv = convs[*conn].get_or_insert_with(|| {
            let client = SocketAddr::from(([127, 0, 0, 1], 50_000 + *conn as u16));
            let mut c = Conversation::new(client, server, 1_000 * (*conn as u32 + 1), 90_000);
            c.handshake(&mut cap, ts).expect("handshake");
            c
        });
        match record {
            Record::Send(_, side, data) => conv.send(&mut cap, ts, *side, data).expect("send"),
            Record::Close(_, side) => conv.close(&mut cap, ts, *side).expect("fin"),
        }
    }
    cap.write_pcap(Vec::new(), link, TsResolution::MicroSecond)
        .expect("pcap")
}

/// Rewrites the first recorded server packet of connection `conn` with
/// command `command` through `edit` (on its plaintext), resealing it.
pub fn doctor(
    log: &mut [(usize, Record)],
    codec: Codec,
    conn: usize,
    command: u16,
    edit: impl Fn(&mut Vec<u8>),
) {
    for (c, r) in log.iter_mut() {
        let Record::Send(_, Side::Server, wire) = r else {
            continue;
        };
        if *c != conn {
            continue;
        }
        let mut plain = wire.clone();
        let h = codec
            .decode(Direction::ServerToClient, &mut plain)
            .expect("valid")
            .expect("whole");
        if h.command != command {
            continue;
        }
        plain.truncate(h.data_len);
        edit(&mut plain);
        *wire = seal(codec, Direction::ServerToClient, &plain);
        return;
    }
    panic!("no server packet {command:#x} on connection {conn}");
}

/// The id of `t` in the default dialect.
pub fn wire_id(t: PacketType) -> u16 {
    id(t)
}

/// A running `tcpdump -i lo` writing a pcap file.
pub struct Tcpdump {
    child: std::process::Child,
    pub path: std::path::PathBuf,
    /// tcpdump's stderr lines after "listening on".
    stderr: std::sync::mpsc::Receiver<String>,
}

/// Why a tcpdump test cannot run here, or `None` if it can. Under `CI`
/// a missing tcpdump is a failure, not a skip.
pub fn tcpdump_missing() -> Option<String> {
    let found = std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return None;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tcpdump is required under CI (.ci/run installs it)"
    );
    Some("tcpdump is not installed".to_string())
}

impl Tcpdump {
    /// Starts capturing `tcp port {port}` on loopback into `path` and
    /// returns once tcpdump reports that it is listening (it has opened the
    /// device and written the file header by then).
    pub fn start(port: u16, path: std::path::PathBuf) -> Tcpdump {
        use std::io::BufRead;
        let mut child = std::process::Command::new("tcpdump")
            // Immediate mode makes libpcap use one ring slot per packet of
            // snaplen size: with the defaults (2 MiB, 256 KiB) that is 8
            // slots, and a busy machine drops packets. 64 KiB covers a
            // loopback segment; 32 MiB gives ~500 slots.
            .args([
                "-i",
                "lo",
                "-U",
                "--immediate-mode",
                "-s",
                "65600",
                "-B",
                "32768",
            ])
            .args(["-n", "-Z", "root", "-w"])
            .arg(&path)
            .arg(format!("tcp port {port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("tcpdump did not start: {seen:?}");
                }
            }
        }
        let header = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(
            header >= 24,
            "tcpdump is listening but wrote no pcap header"
        );
        Tcpdump {
            child,
            path,
            stderr: rx,
        }
    }

    /// Waits until the capture holds `conns` connections closed by both
    /// sides (tcpdump writes each packet as it sees it), then stops tcpdump
    /// with SIGINT so it flushes and exits.
    pub fn finish(mut self, port: u16, conns: usize) -> std::path::PathBuf {
        use packet_service_replay::reassembly::{reassemble, EventKind};
        let complete = |path: &std::path::Path| {
            let Ok(cap) = packet_service_replay::capture::read_file(path) else {
                return false; // a record may be half written
            };
            let found = reassemble(&cap.segments, port);
            found.len() == conns
                && found.iter().all(|c| {
                    let closed = |side| {
                        c.events.iter().any(|e| {
                            e.side == side && matches!(e.kind, EventKind::Close | EventKind::Reset)
                        })
                    };
                    closed(Side::Client) && closed(Side::Server)
                })
        };
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while !complete(&self.path) {
            if std::time::Instant::now() >= deadline {
                let keep = self.path.with_extension("incomplete.pcap");
                let _ = std::fs::copy(&self.path, &keep);
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &self.child.id().to_string()])
                    .status();
                let _ = self.child.wait();
                let said: Vec<String> = self.stderr.try_iter().collect();
                panic!(
                    "tcpdump did not record {conns} whole connections; kept {}; it said {said:?}",
                    keep.display()
                );
            }
            // Polling a file: nothing to block on. Bounded by the deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait().expect("tcpdump exit");
        self.path.clone()
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Replaces every occurrence of `from` in `bytes` by `to` (same length).
pub fn replace_bytes(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// SHA-256 of "admin" as lowercase hex (protocol.md P4).
pub const ADMIN_DIGEST: &[u8; 64] =
    b"8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918";

/// A typed packet as a plaintext packet in the default numbering.
pub fn typed<P: packet_service::protocol::packets::Packet>(p: &P) -> Vec<u8> {
    typed_in(DialectId::Osirose, p)
}

/// A typed packet as a plaintext packet in `dialect`'s numbering.
pub fn typed_in<P: packet_service::protocol::packets::Packet>(
    dialect: DialectId,
    p: &P,
) -> Vec<u8> {
    let mut out = vec![0u8; packet_service::protocol::MAX_PACKET_SIZE];
    let n = packet_service::protocol::packets::write_packet(dialect.dialect(), p, &mut out)
        .expect("encode");
    out.truncate(n);
    out
}

/// Decodes the body of a plaintext packet as `P`.
pub fn body_as<P: packet_service::protocol::packets::Packet>(plain: &[u8]) -> P {
    body_in(DialectId::Osirose, plain)
}

/// Decodes the body of a plaintext packet of `dialect` as `P`.
pub fn body_in<P: packet_service::protocol::packets::Packet>(
    dialect: DialectId,
    plain: &[u8],
) -> P {
    let command = u16::from_le_bytes([plain[2], plain[3]]);
    assert_eq!(
        Some(command),
        dialect.dialect().wire_id(P::TYPE),
        "expected {}",
        P::TYPE
    );
    P::decode(&plain[HEADER_LEN..]).expect("decode")
}

/// The irose session of docs/protocol.md §10.6 against a real gateway
/// serving irose, as the 129en client plays it: the login connection on
/// the default tables, the char and map connections on the tables of the
/// seeds the gateway announces (the char connection open while the map
/// one plays), the MD5 digest of admin's password, the irose layouts.
pub fn record_irose_gateway_session(gateway: SocketAddr) -> Vec<(usize, Record)> {
    use packet_service::client::{irose_codec, md5_hex};
    use packet_service::protocol::packets::irose::*;
    let irose = DialectId::Irose;
    let log = Arc::new(Mutex::new(Vec::new()));
    let kind = CodecKind::Rose;
    let open = |seed, conn| Client::connect(gateway, irose_codec(kind, seed), log.clone(), conn);

    let mut login = open(None, 0);
    login.send(&typed_in(irose, &AcceptReq));
    assert_eq!(body_in::<AcceptReply>(irose, &login.recv()).status, 2);
    login.send(&typed_in(
        irose,
        &LoginReq {
            password_md5: md5_hex("admin"),
            username: "admin".into(),
        },
    ));
    let reply: LoginReply = body_in(irose, &login.recv());
    assert_eq!(reply.result, 0, "admin logs in");
    let server_id = reply.servers.first().expect("a server").id;
    login.send(&typed_in(irose, &ChannelListReq { server_id }));
    let channels: ChannelListReply = body_in(irose, &login.recv());
    let channel_id = channels.channels.first().expect("a channel").id;
    login.send(&typed_in(
        irose,
        &SrvSelectReq {
            server_id,
            channel_id,
        },
    ));
    let select: SrvSelectReply = body_in(irose, &login.recv());
    login.close();

    let join = |token| JoinServerReq {
        login_token: token,
        password_md5: md5_hex("admin"),
    };
    let mut char_conn = open(Some(select.crypt_val), 1);
    char_conn.send(&typed_in(irose, &join(select.session_id)));
    assert_eq!(
        body_in::<JoinServerReply>(irose, &char_conn.recv()).result,
        0
    );
    char_conn.send(&typed_in(irose, &CharListReq));
    char_conn.recv();
    char_conn.send(&typed_in(
        irose,
        &CreateCharReq {
            race: 1,
            stone: 1,
            hair: 2,
            face: 3,
            weapon: 0,
            zone: 1,
            name: "Irene".into(),
        },
    ));
    assert_eq!(
        body_in::<CreateCharReply>(irose, &char_conn.recv()).result,
        0
    );
    char_conn.send(&typed_in(irose, &CharListReq));
    char_conn.recv();
    char_conn.send(&typed_in(
        irose,
        &SelectCharReq {
            slot: 0,
            run_mode: 0,
            ride_mode: 0,
            name: "Irene".into(),
        },
    ));
    let switch: SwitchServer = body_in(irose, &char_conn.recv());

    let mut map = open(Some(switch.session_seed), 2);
    map.send(&typed_in(irose, &join(switch.session_id)));
    assert_eq!(body_in::<JoinServerReply>(irose, &map.recv()).result, 0);
    for _ in 0..3 {
        map.recv(); // character, inventory, quests
    }
    map.send(&typed_in(
        irose,
        &ChangeMapReq {
            weight_rate: 0,
            z: 0,
        },
    ));
    map.recv();
    map.send(&typed_in(
        irose,
        &NormalChat {
            message: "hello".into(),
        },
    ));
    map.recv();
    map.send(&typed_in(irose, &LogoutReq));
    map.recv();
    map.close();
    char_conn.close();
    let log = log.lock().expect("log").clone();
    log
}

/// Plays the whole session of docs/protocol.md §4 against a real gateway with
/// the demo account admin/admin: login, channel list, server select; char
/// join (the login connection closes now), list, create, list, screen-shot
/// time, select; map join and its burst, change map, chat, logout. The char
/// connection stays open while the map one joins.
pub fn record_gateway_session(gateway: SocketAddr, kind: CodecKind) -> Vec<(usize, Record)> {
    use packet_service::protocol::packets::*;
    let codec = Codec::new(kind);
    let log = Arc::new(Mutex::new(Vec::new()));

    let mut login = Client::connect(gateway, codec, log.clone(), 0);
    login.send(&typed(&AcceptReq));
    assert_eq!(
        body_as::<AcceptReply>(&login.recv()).result,
        AcceptReply::ACCEPTED
    );
    login.send(&typed(&LoginReq {
        digest: ADMIN_DIGEST.to_vec(),
        username: "admin".into(),
    }));
    let reply: LoginReply = body_as(&login.recv());
    assert_eq!(reply.result, 0, "admin logs in");
    let server_id = reply.servers.first().expect("a server").id;
    login.send(&typed(&ChannelListReq { server_id }));
    let channels: ChannelListReply = body_as(&login.recv());
    let channel_id = channels.channels.first().expect("a channel").id;
    login.send(&typed(&SrvSelectReq {
        server_id,
        channel_id,
    }));
    let select: SrvSelectReply = body_as(&login.recv());
    assert_eq!(select.result, 0);

    let join = JoinServerReq {
        session_id: select.session_id,
        digest: ADMIN_DIGEST.to_vec(),
    };
    let mut char_conn = Client::connect(gateway, codec, log.clone(), 1);
    char_conn.send(&typed(&AcceptReq));
    char_conn.recv();
    char_conn.send(&typed(&join));
    assert_eq!(
        body_as::<JoinServerReply>(&char_conn.recv()).result,
        0,
        "char join"
    );
    login.close();
    char_conn.send(&typed(&CharListReq));
    char_conn.recv();
    char_conn.send(&typed(&CreateCharReq {
        race: 0,
        stone: 1,
        hair: 2,
        face: 3,
        weapon: 0,
        zone: 1,
        name: "Raven".into(),
    }));
    assert_eq!(
        body_as::<CreateCharReply>(&char_conn.recv()).result,
        0,
        "created"
    );
    char_conn.send(&typed(&CharListReq));
    char_conn.recv();
    char_conn.send(&typed(&ScreenShotTimeReq { count: 0 }));
    char_conn.recv();
    char_conn.send(&typed(&SelectCharReq {
        slot: 0,
        run_mode: 0,
        ride_mode: 0,
        name: "Raven".into(),
    }));
    let switch: SwitchServer = body_as(&char_conn.recv());

    let mut map = Client::connect(gateway, codec, log.clone(), 2);
    map.send(&typed(&AcceptReq));
    map.recv();
    map.send(&typed(&JoinServerReq {
        session_id: switch.session_id,
        digest: ADMIN_DIGEST.to_vec(),
    }));
    assert_eq!(
        body_as::<JoinServerReply>(&map.recv()).result,
        0,
        "map join"
    );
    for _ in 0..4 {
        map.recv(); // select char reply, inventory, quests, billing message
    }
    map.send(&typed(&ChangeMapReq {
        weight_rate: 0,
        z: 0,
    }));
    map.recv();
    map.send(&typed(&NormalChat {
        message: "hello".into(),
    }));
    map.recv();
    map.send(&typed(&LogoutReq));
    map.recv();
    map.close();
    char_conn.close();
    let log = log.lock().expect("log").clone();
    log
}

/// A capture file removed when dropped.
pub struct TempCapture(pub std::path::PathBuf);

impl TempCapture {
    /// Writes `bytes` to a file named after the test process and `name`.
    pub fn new(name: &str, bytes: &[u8]) -> TempCapture {
        let path = std::env::temp_dir().join(format!("replay-{}-{name}.pcap", std::process::id()));
        std::fs::write(&path, bytes).expect("write capture");
        TempCapture(path)
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A real packet-service gateway on 127.0.0.1:0 with the demo account.
pub fn gateway(codec: CodecKind) -> packet_service::server::ServerHandle {
    gateway_with(codec, |_| {})
}

/// [`gateway`] with more settings.
pub fn gateway_with(
    codec: CodecKind,
    more: impl FnOnce(&mut packet_service::config::Config),
) -> packet_service::server::ServerHandle {
    let mut config = packet_service::config::Config::for_tests();
    config.codec = codec;
    config.metrics_enabled = false;
    config.accounts = vec![("admin".into(), "admin".into())];
    more(&mut config);
    packet_service::server::Server::build(config)
        .expect("gateway starts")
        .spawn()
}

/// The same session with each run of sends by one side of one connection
/// joined and cut into `chunk`-byte segments: packets split over segments
/// and several packets in one segment.
pub fn rechunk(log: &[(usize, Record)], chunk: usize) -> Vec<(usize, Record)> {
    let mut joined: Vec<(usize, Record)> = Vec::new();
    for (conn, record) in log {
        if let (Record::Send(_, side, data), Some((last_conn, Record::Send(_, last_side, buf)))) =
            (record, joined.last_mut())
        {
            if last_conn == conn && last_side == side {
                buf.extend_from_slice(data);
                continue;
            }
        }
        joined.push((*conn, record.clone()));
    }
    let mut out = Vec::new();
    for (conn, record) in joined {
        match record {
            Record::Send(ts, side, data) => {
                for piece in data.chunks(chunk.max(1)) {
                    out.push((conn, Record::Send(ts, side, piece.to_vec())));
                }
            }
            close => out.push((conn, close)),
        }
    }
    out
}

/// The wire bytes of the `nth` server frame recorded on connection `conn`.
pub fn server_frame(log: &[(usize, Record)], conn: usize, nth: usize) -> Vec<u8> {
    log.iter()
        .filter_map(|(c, r)| match r {
            Record::Send(_, Side::Server, w) if *c == conn => Some(w.clone()),
            _ => None,
        })
        .nth(nth)
        .expect("recorded server frame")
}
