//! The gateway calls its embedded backend in-process (src/rpc/transport.rs):
//! while players log in, chat and are kicked, the backend's gRPC listener
//! sees no connection from its own gateway — yet it still serves others —
//! and a call past its deadline fails as DEADLINE_EXCEEDED in-process,
//! against test services whose latency the test turns; and the world link
//! keeps reading its downstream while its upstream is full.

mod util;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use packet_service::conn::calls::{Call, LeaveReason, Reply, RpcError};
use packet_service::ids::{ConnRef, RequestId, SessionId};
use packet_service::pb::admin::{admin_client::AdminClient, KickRequest};
use packet_service::pb::auth::{auth_client::AuthClient, ListServersRequest};
use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{
    DigestKind, NormalChat, NormalChatBroadcast, RemoveObject,
};
use packet_service::protocol::CodecKind;
use packet_service::rpc::transport::Local;
use packet_service::rpc::types::{Completion, Job};
use packet_service::rpc::{self, Endpoints, RpcObserver, Wake};
use util::backends::{routes, Knobs};
use util::flow::{enter_world, recv_skipping};
use util::{start, test_config, wait_until, DEADLINE};

const CODEC: CodecKind = CodecKind::Plain;

/// The TCP sockets on this host with `127.0.0.1:port` at either end, in any
/// state but LISTEN (a connection made and closed between two looks stays
/// listed in TIME_WAIT, on whichever side closed first), as
/// `(local, remote)` in `/proc/net/tcp` spelling.
fn connections_to(port: u16) -> Vec<(String, String)> {
    let end = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (local, remote, state) = (fields.next()?, fields.next()?, fields.next()?);
            (state != "0A" && (local == end || remote == end))
                .then(|| (local.to_owned(), remote.to_owned()))
        })
        .collect()
}

/// No socket on this host is connected, or was lately, to `backend`.
#[track_caller]
fn no_connection(backend: SocketAddr, when: &str) {
    let seen = connections_to(backend.port());
    assert!(
        seen.is_empty(),
        "{when}: connections to {backend}: {seen:?}"
    );
}

#[test]
fn the_embedded_gateway_never_connects_to_its_own_backend_listener() {
    let mut config = test_config(CODEC);
    config.auto_create_accounts = true;
    config.chat_per_sec = 0;
    // A port no socket on this host uses, so a leftover of an earlier
    // test cannot show up in the looks below.
    let backend = util::free_addr();
    no_connection(backend, "before start");
    config.backend_listen = Some(backend);
    let gw = start(config);
    assert_eq!(
        gw.backend_addr(),
        Some(backend),
        "the embedded backend runs"
    );
    let admin = gw.admin_addr().expect("the embedded backend serves admin");
    wait_until("the world link up", || {
        util::metric(&gw.metrics().encode(), "packet_service_world_link_up") == 1.0
    });
    no_connection(backend, "with the world link up");

    let mut alice = enter_world(gw.addr(), CODEC, "inproc-a", "Alice");
    let mut bobby = enter_world(gw.addr(), CODEC, "inproc-b", "Bobby");
    no_connection(backend, "after two logins and joins");

    bobby.map.send(&NormalChat {
        message: "hello".into(),
    });
    for c in [&mut alice.map, &mut bobby.map] {
        let heard: NormalChatBroadcast = recv_skipping(c, PacketType::PAKWC_NORMAL_CHAT)
            .decode()
            .expect("the chat decodes");
        assert_eq!(
            (heard.char_id, heard.message.as_str()),
            (bobby.entity, "hello")
        );
    }
    no_connection(backend, "after a chat");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let kicked = rt.block_on(async {
        let mut client = AdminClient::connect(format!("http://{admin}"))
            .await
            .expect("connect to the admin service");
        client
            .kick(KickRequest {
                name: "Bobby".into(),
                reason: "test".into(),
            })
            .await
            .expect("kick")
            .into_inner()
            .kicked
    });
    assert_eq!(kicked, vec!["Bobby".to_owned()]);
    let removed: RemoveObject = recv_skipping(&mut alice.map, PacketType::PAKWC_REMOVE_OBJECT)
        .decode()
        .expect("REMOVE_OBJECT decodes");
    assert_eq!(removed.id, bobby.entity);
    no_connection(backend, "after a kick");

    // The listener still serves other clients, and the look above sees
    // their connections: a raw one by its port, then a gRPC call.
    let raw = TcpStream::connect(backend).expect("connect to the backend");
    let port = format!("{:04X}", raw.local_addr().expect("local addr").port());
    assert!(
        connections_to(backend.port())
            .iter()
            .any(|(local, remote)| local.ends_with(&port) || remote.ends_with(&port)),
        "the look misses a connection to {backend}"
    );
    let servers = rt.block_on(async {
        let mut auth = AuthClient::connect(format!("http://{backend}"))
            .await
            .expect("connect to the backend");
        auth.list_servers(ListServersRequest {})
            .await
            .expect("ListServers")
            .into_inner()
            .servers
    });
    assert_eq!(servers.len(), 1);
}

/// Wakes the test when a completion is pushed.
struct Signal(Mutex<mpsc::Sender<()>>);

impl Wake for Signal {
    fn wake(&self) {
        let _ = self.0.lock().map(|tx| tx.send(()));
    }
}

/// The calls that ended, with their error labels.
#[derive(Default)]
struct Seen(Mutex<Vec<(&'static str, &'static str, Option<&'static str>)>>);

impl RpcObserver for Seen {
    fn observe(
        &self,
        service: &'static str,
        method: &'static str,
        _: f64,
        error: Option<&'static str>,
    ) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((service, method, error));
        }
    }
}

fn login(request: u32) -> Job {
    Job {
        conn: ConnRef {
            index: 1,
            generation: 1,
        },
        request: RequestId(request),
        call: Call::Login {
            username: "alice".into(),
            digest: vec![b'0'; 32],
            kind: DigestKind::Md5Hex,
            peer: "127.0.0.1".into(),
        },
    }
}

/// The answer to `request`, waiting on the bridge's wakeups.
#[track_caller]
fn answer(
    bridge: &mut rpc::Bridge,
    woken: &mpsc::Receiver<()>,
    request: u32,
) -> Result<Reply, RpcError> {
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        while let Some(done) = bridge.try_complete() {
            if let Completion::Rpc {
                request: RequestId(r),
                result,
                ..
            } = done
            {
                if r == request {
                    return result;
                }
            }
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        assert!(
            woken.recv_timeout(left).is_ok(),
            "no answer to request {request}"
        );
    }
}

/// The rpc side of a gateway whose three services are the test services
/// on `knobs`, called in-process, with a 300 ms deadline.
struct InProcess {
    bridge: rpc::Bridge,
    woken: mpsc::Receiver<()>,
    seen: Arc<Seen>,
    stop: tokio::sync::watch::Sender<bool>,
    _rt: tokio::runtime::Runtime,
}

impl InProcess {
    fn start(knobs: &Arc<Knobs>) -> InProcess {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        // Nothing listens at the services' address: a call that took the
        // network would fail UNAVAILABLE at once and reach no service.
        let addr = util::free_addr();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let local = Local::new(addr, routes(knobs), stopped);
        let url = local.url().to_owned();
        let endpoints = Endpoints {
            auth: vec![url.clone()],
            character: vec![url.clone()],
            world: url,
            gateway: String::new(),
            local: Some(local),
        };
        let (tx, woken) = mpsc::channel();
        let seen = Arc::new(Seen::default());
        let (bridge, _first_list) = rpc::start(
            rt.handle(),
            endpoints,
            Duration::from_millis(300),
            16,
            Arc::new(Signal(Mutex::new(tx))),
            Arc::clone(&seen) as Arc<dyn RpcObserver>,
        )
        .expect("rpc starts");
        InProcess {
            bridge,
            woken,
            seen,
            stop,
            _rt: rt,
        }
    }

    /// Logs in as request `request`; its answer.
    #[track_caller]
    fn login(&mut self, request: u32) -> Result<Reply, RpcError> {
        self.bridge.submit(login(request)).expect("queued");
        answer(&mut self.bridge, &self.woken, request)
    }

    /// The error labels of the login calls that ended, in order.
    fn logins_seen(&self) -> Vec<Option<&'static str>> {
        let seen = self.seen.0.lock().expect("the observer's list");
        seen.iter()
            .filter(|&&(s, m, _)| (s, m) == ("auth", "Login"))
            .map(|&(_, _, e)| e)
            .collect()
    }
}

#[test]
fn a_deadline_fires_in_process() {
    let knobs = Arc::new(Knobs::default());
    let mut gw = InProcess::start(&knobs);

    // Quick: answered in-process.
    assert!(matches!(gw.login(1), Ok(Reply::Login(_))));
    assert_eq!(knobs.logins.load(Ordering::SeqCst), 1);

    // Slower than the deadline: the call reaches the service, and fails
    // at the deadline with DEADLINE_EXCEEDED, counted as such.
    knobs.latency_ms.store(60_000, Ordering::SeqCst);
    assert_eq!(gw.login(2), Err(RpcError::DeadlineExceeded));
    assert_eq!(knobs.logins.load(Ordering::SeqCst), 2);
    assert_eq!(gw.logins_seen(), [None, Some("deadline_exceeded")]);
}

#[test]
fn a_stopping_backend_refuses_in_process_calls() {
    let knobs = Arc::new(Knobs::default());
    let mut gw = InProcess::start(&knobs);
    assert!(matches!(gw.login(1), Ok(Reply::Login(_))));

    // As its listener refuses connections once it stops.
    gw.stop.send_replace(true);
    assert_eq!(gw.login(2), Err(RpcError::Unavailable));
    assert_eq!(knobs.logins.load(Ordering::SeqCst), 1, "reached no service");
    assert_eq!(gw.logins_seen(), [None, Some("unavailable")]);
}

#[test]
fn the_world_link_reads_its_downstream_while_its_upstream_is_full() {
    let knobs = Arc::new(Knobs::default());
    knobs.world_hold.send_replace(true);
    knobs.world_burst.store(20_000, Ordering::SeqCst);
    let mut gw = InProcess::start(&knobs);
    let until = std::time::Instant::now() + DEADLINE;
    let mut up = false;
    while !up {
        let left = until.saturating_duration_since(std::time::Instant::now());
        assert!(gw.woken.recv_timeout(left).is_ok(), "no world link");
        while let Some(done) = gw.bridge.try_complete() {
            up |= matches!(done, Completion::WorldLink(true));
        }
    }

    // The world reads nothing: the upstream fills, up to the bridge's
    // queue (a submit refused).
    let leave = |n: u32| Job {
        conn: ConnRef {
            index: n,
            generation: 1,
        },
        request: RequestId(n),
        call: Call::WorldLeave {
            session: SessionId(n),
            reason: LeaveReason::Disconnect,
        },
    };
    let mut sent = 0u32;
    while gw.bridge.submit(leave(sent + 1)).is_ok() {
        sent += 1;
    }

    // Released, the world first sends more downstream than any buffer
    // holds, then reads upstream: every upstream message arrives only if
    // the link kept reading its downstream while its upstream was full.
    knobs.world_hold.send_replace(false);
    let mut joined = 0u64;
    while knobs.upstream.load(Ordering::SeqCst) < u64::from(sent) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "{} of {sent} upstream messages read, {joined} downstream",
            knobs.upstream.load(Ordering::SeqCst)
        );
        let _ = gw.woken.recv_timeout(left.min(Duration::from_millis(50)));
        while let Some(done) = gw.bridge.try_complete() {
            joined += u64::from(matches!(done, Completion::Joined { .. }));
        }
    }
    assert_eq!(knobs.upstream.load(Ordering::SeqCst), u64::from(sent));
    assert!(sent > 0, "nothing queued");
}
