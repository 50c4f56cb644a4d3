//! Scale-out failures with real processes: a real HAProxy (its binary in
//! `HAPROXY`, installed by `.ci/run`) in front of two gateway processes,
//! PROXY v2 on every connection, both gateways on one standalone backend
//! (`packet-service backend`) on PostgreSQL (`PACKET_SERVICE_TEST_DATABASE_URL`,
//! started by `.ci/run`; SQLite where it is not set outside CI).
//! A player's login, character and map connections land on different
//! gateways; players on different gateways meet in the world; a gateway
//! killed with SIGKILL takes only its own players out of the world, and
//! they log in again through the balancer; a backend killed and restarted
//! costs failure codes within the deadline, then service resumes by
//! itself.
//!
//! Without `HAPROXY` the tests print one line and pass, except under CI
//! (`CI` set), where a missing HAProxy fails them.

mod util;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{
    CharListReply, LoginReply, LoginReq, NormalChat, NormalChatBroadcast, RemoveObject,
    SelectCharReq, SwitchServer,
};
use packet_service::protocol::CodecKind;
use util::db::TestDb;
use util::flow::{char_phase, join, list, login_phase, map_phase, recv_skipping};
use util::process::Process;
use util::{http_get, metric, Client};

const CODEC: CodecKind = CodecKind::Rose;
/// The gateways' backend deadline: failure codes come within it.
const RPC_DEADLINE: Duration = Duration::from_millis(1000);

/// The HAProxy binary, or `None` (after one line) when it is not
/// installed outside CI.
fn haproxy() -> Option<PathBuf> {
    match std::env::var_os("HAPROXY") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("HAPROXY is not set: .ci/run installs haproxy and exports its path")
        }
        None => {
            eprintln!("skipped: HAPROXY not set (HAPROXY=/usr/sbin/haproxy runs this test)");
            None
        }
    }
}

/// Player names unique to this run (the database keeps accounts).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}x{nanos:x}", std::process::id() % 10_000)
}

/// A loopback port free at the time of the call (for a process restarted
/// on the same port, and for HAProxy's own frontends).
fn free_port() -> u16 {
    util::free_addr().port()
}

/// The test database: PostgreSQL when configured (always under CI), else
/// SQLite.
fn database() -> TestDb {
    TestDb::postgres_blocking().unwrap_or_else(|| {
        eprintln!("the backend runs on SQLite instead");
        TestDb::sqlite()
    })
}

/// One gateway process and where it listens.
struct Gateway {
    proc: Process,
    addr: SocketAddr,
    metrics: SocketAddr,
    killed: bool,
}

impl Gateway {
    fn start(backend: &str, front: SocketAddr) -> Gateway {
        let (front_port, deadline) = (front.port().to_string(), RPC_DEADLINE.as_millis());
        let proc = Process::gateway_on(
            backend,
            &[
                "--codec",
                CODEC.name(),
                "--proxy-protocol",
                "--public-port",
                &front_port,
                "--rpc-deadline",
                &deadline.to_string(),
            ],
        );
        let (addr, metrics) = (proc.addr(), proc.metrics_addr());
        Gateway {
            proc,
            addr,
            metrics,
            killed: false,
        }
    }

    /// One series of this gateway's metrics.
    fn scrape(&self, series: &str) -> f64 {
        let (status, body) = http_get(self.metrics, "/metrics");
        assert_eq!(status, 200);
        metric(&body, series)
    }

    /// Client connections this gateway admitted (none more once killed).
    fn accepted(&self) -> f64 {
        if self.killed {
            return 0.0;
        }
        self.scrape("packet_service_connections_accepted_total")
    }

    /// SIGKILL: the process is gone when this returns.
    fn kill(&mut self) {
        self.proc.kill();
        self.killed = true;
    }

    /// Waits until the world stream is up (map joins work).
    fn await_world(&self) {
        util::wait_until("the world link", || {
            self.scrape("packet_service_world_link_up") == 1.0
        });
    }
}

/// The standalone backend every gateway uses, on a fixed port so that it
/// can be restarted there, with its state in `db`.
fn start_backend(port: u16, db: &TestDb) -> Process {
    Process::backend(SocketAddr::from(([127, 0, 0, 1], port)), &db.url_text())
}

/// HAProxy in TCP mode with PROXY v2 towards the gateways, each checked
/// on its /healthz. Round robin, so that consecutive connections go to
/// different gateways; a connection to a gateway that died before its
/// check noticed is redispatched to another. `probe` is a frontend of its
/// own that tells HAProxy is up without a connection to a gateway.
fn haproxy_config(front: SocketAddr, probe: SocketAddr, gateways: &[&Gateway]) -> String {
    let mut cfg = format!(
        "global\n    log stderr format raw local0 info\n\
         defaults\n    log global\n    option tcplog\n    mode tcp\n    timeout connect 1s\n    timeout client 1m\n    \
         timeout server 1m\n    retries 3\n    option redispatch\n\
         frontend probe\n    bind {probe}\n    mode http\n    http-request return status 200\n\
         frontend rose\n    bind {front}\n    default_backend gateways\n\
         backend gateways\n    balance roundrobin\n    option httpchk GET /healthz\n    \
         http-check expect status 200\n"
    );
    for (i, gw) in gateways.iter().enumerate() {
        cfg.push_str(&format!(
            "    server gw{i} {} send-proxy-v2 check port {} inter 100ms fall 1 rise 1\n",
            gw.addr,
            gw.metrics.port()
        ));
    }
    cfg
}

/// HAProxy in the foreground on `cfg`, once its `probe` frontend accepts.
fn start_haproxy(haproxy: &Path, cfg: &Path, probe: SocketAddr) -> Process {
    let mut cmd = Command::new(haproxy);
    cmd.arg("-db")
        .arg("-f")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let haproxy = Process::collect(cmd);
    util::wait_until("HAProxy to listen", || TcpStream::connect(probe).is_ok());
    haproxy
}

/// HAProxy, two gateways, one backend and its database.
struct Realm {
    gateways: [Gateway; 2],
    backend: Process,
    backend_port: u16,
    front: SocketAddr,
    /// The gateway of the last connection through the balancer.
    last: std::cell::Cell<Option<usize>>,
    haproxy: Process,
    cfg: PathBuf,
    db: TestDb,
}

impl Drop for Realm {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cfg);
    }
}

impl Realm {
    fn start(haproxy: &Path) -> Realm {
        let db = database();
        let backend_port = free_port();
        let backend = start_backend(backend_port, &db);
        let url = format!("http://127.0.0.1:{backend_port}");
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let gateways = [Gateway::start(&url, front), Gateway::start(&url, front)];
        let cfg = std::env::temp_dir().join(format!(
            "packet-service-haproxy-{}-{}.cfg",
            std::process::id(),
            front.port()
        ));
        let probe = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let text = haproxy_config(front, probe, &[&gateways[0], &gateways[1]]);
        std::fs::write(&cfg, text).expect("write haproxy.cfg");
        let haproxy = start_haproxy(haproxy, &cfg, probe);
        for gw in &gateways {
            gw.await_world();
        }
        Realm {
            gateways,
            backend,
            backend_port,
            front,
            last: std::cell::Cell::new(None),
            haproxy,
            cfg,
            db,
        }
    }

    fn accepted(&self) -> [f64; 2] {
        [self.gateways[0].accepted(), self.gateways[1].accepted()]
    }

    /// Runs `step` (which opens one connection through HAProxy) and
    /// returns its result and the gateway that admitted the connection.
    fn on_any<T>(&self, step: impl FnOnce() -> T) -> (T, usize) {
        let before = self.accepted();
        let out = step();
        let mut after = self.accepted();
        let until = Instant::now() + util::DEADLINE;
        while after[0] + after[1] != before[0] + before[1] + 1.0 {
            assert!(
                Instant::now() < until,
                "not one more connection counted: {before:?} then {after:?}\n{}",
                self.haproxy.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(5)); // polling metrics, bounded above
            after = self.accepted();
        }
        let landed = usize::from(after[1] > before[1]);
        self.last.set(Some(landed));
        (out, landed)
    }

    /// Runs `step` with its connection on gateway `want`. Round robin sends
    /// each connection to the other gateway than the one before, so filler
    /// connections go first until the last one went to the other gateway.
    fn on<T>(&self, want: usize, step: impl FnOnce() -> T) -> T {
        while self.last.get() != Some(1 - want) {
            self.on_any(|| Client::connect(self.front, CODEC).accept());
        }
        let (out, landed) = self.on_any(step);
        assert_eq!(landed, want, "round robin sent the connection elsewhere");
        out
    }

    /// A new player's login, character and map connections through the
    /// balancer, on the gateways `via`.
    fn enter(&self, user: &str, char_name: &str, via: [usize; 3]) -> InWorld {
        let session = self.on(via[0], || login_phase(self.front, CODEC, user, "pw"));
        let char_conn = self.on(via[1], || char_phase(self.front, CODEC, session, char_name));
        let (map, entity) = self.on(via[2], || map_phase(self.front, CODEC, session));
        InWorld {
            _char_conn: char_conn,
            map,
            entity,
        }
    }

    /// A player whose character exists logs in again and enters the
    /// world, every connection on gateway `survivor`.
    fn return_to_world(&self, user: &str, char_name: &str, survivor: usize) -> InWorld {
        let (session, login) = self.on_any(|| login_phase(self.front, CODEC, user, "pw"));
        let (mut char_conn, chars) = self.on_any(|| {
            let mut c = Client::connect(self.front, CODEC);
            assert_eq!(join(&mut c, session, "pw").result, 0);
            c
        });
        let list: CharListReply = list(&mut char_conn);
        assert_eq!(list.characters.len(), 1, "the character is still there");
        char_conn.send(&SelectCharReq {
            slot: 0,
            run_mode: 0,
            ride_mode: 0,
            name: char_name.into(),
        });
        let _: SwitchServer = char_conn.recv_as();
        let ((map, entity), map_gw) = self.on_any(|| map_phase(self.front, CODEC, session));
        assert_eq!([login, chars, map_gw], [survivor; 3], "all on the survivor");
        InWorld {
            _char_conn: char_conn,
            map,
            entity,
        }
    }
}

/// A player in the world: its character connection (open, as a client
/// keeps it) and its map connection standing on the map.
struct InWorld {
    _char_conn: Client,
    map: Client,
    entity: u16,
}

/// `from` says `text` on the map.
fn say(from: &mut Client, text: &str) {
    from.send(&NormalChat {
        message: text.into(),
    });
}

/// `to` hears `text` from `entity`.
fn heard(to: &mut Client, entity: u16, text: &str) {
    let chat: NormalChatBroadcast = recv_skipping(to, PacketType::PAKWC_NORMAL_CHAT)
        .decode()
        .expect("decodes");
    assert_eq!((chat.char_id, chat.message.as_str()), (entity, text));
}

/// `from` (entity `entity`) says `text`; it and `to` hear it.
fn hears(from: &mut Client, to: &mut Client, entity: u16, text: &str) {
    say(from, text);
    heard(from, entity, text);
    heard(to, entity, text);
}

/// Reads (and drops) what `c` still gets until the connection closes.
fn closes(c: &mut Client) {
    use packet_service::client::{Client as Raw, ClientError};
    loop {
        match Raw::recv(c) {
            Ok(_) => {}
            Err(ClientError::Timeout) => panic!("the connection stayed open"),
            Err(_) => return,
        }
    }
}

/// One login through the balancer on a new connection: its result code
/// and how long the answer took.
fn login(front: SocketAddr, user: &str) -> (u8, Duration) {
    let mut c = Client::connect(front, CODEC);
    let started = Instant::now();
    c.send(&LoginReq {
        digest: util::sha256_hex("pw"),
        username: user.into(),
    });
    (c.recv_as::<LoginReply>().result, started.elapsed())
}

#[test]
fn losing_a_gateway_loses_only_its_own_players() {
    let Some(haproxy) = haproxy() else { return };
    let mut realm = Realm::start(&haproxy);
    let (alba, bruno) = (unique("alba"), unique("bruno"));

    // Alba's login, character and map connections on alternate gateways;
    // Bruno's character and map connections on the other gateway.
    let mut a = realm.enter(&alba, "Alba", [0, 1, 0]);
    let mut b = realm.enter(&bruno, "Bruno", [0, 1, 1]);
    // They meet in the world, each through a gateway of its own.
    hears(
        &mut a.map,
        &mut b.map,
        a.entity,
        "hello from the first gateway",
    );
    hears(&mut b.map, &mut a.map, b.entity, "hello from the second");

    // The gateway holding Alba's map connection dies without a word: the
    // world drops her at once (her session stays until it is replaced or
    // expires, as for any client that vanishes).
    realm.gateways[0].kill();
    closes(&mut a.map);
    let gone: RemoveObject = recv_skipping(&mut b.map, PacketType::PAKWC_REMOVE_OBJECT)
        .decode()
        .expect("decodes");
    assert_eq!(gone.id, a.entity, "Alba left the world with her gateway");
    // Bruno never noticed: his connections and the world go on.
    say(&mut b.map, "still here");
    heard(&mut b.map, b.entity, "still here");
    drop(a);

    // Alba logs in again through the balancer, onto the surviving gateway,
    // and they meet again.
    let mut a = realm.return_to_world(&alba, "Alba", 1);
    hears(&mut a.map, &mut b.map, a.entity, "back");
    hears(&mut b.map, &mut a.map, b.entity, "welcome back");
}

#[test]
fn a_backend_restart_costs_failure_codes_then_heals() {
    let Some(haproxy) = haproxy() else { return };
    let mut realm = Realm::start(&haproxy);
    let user = unique("carla");
    assert_eq!(login(realm.front, &user).0, 0);

    realm.backend.kill();
    for _ in 0..4 {
        let (result, took) = login(realm.front, &user);
        assert_eq!(result, 1, "FAILED while the backend is down");
        assert!(
            took < RPC_DEADLINE + Duration::from_millis(500),
            "answered after {took:?}, past the {RPC_DEADLINE:?} deadline"
        );
    }

    realm.backend = start_backend(realm.backend_port, &realm.db);
    util::wait_until("logins to succeed again", || {
        login(realm.front, &user).0 == 0
    });
    for gw in &realm.gateways {
        gw.await_world();
    }
    let mut d = realm.enter(&unique("dario"), "Dario", [0, 1, 0]);
    say(&mut d.map, "the world is back");
    heard(&mut d.map, d.entity, "the world is back");
}
