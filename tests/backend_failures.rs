//! The bridge against test backends with controllable latency and
//! failures: slow backends do not stall other connections, a backend that
//! is down gets a failure result and service resumes when it returns, stale
//! completions are dropped, a full job queue answers "busy", and a dropped
//! world stream closes its players and comes back.

mod util;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use packet_service::protocol::packets::{
    Alive, JoinServerReply, JoinServerReq, LoginReply, WhisperChatReply,
};
use packet_service::protocol::CodecKind;
use util::backends::{Knobs, TestBackend};
use util::{start, test_config, Client};

const STRESS: u16 = 0x6F6D;

fn gateway_for(backend: &TestBackend, codec: CodecKind) -> packet_service::config::Config {
    let mut config = test_config(codec);
    config.auth_url = Some(vec![backend.url()]);
    config.character_url = Some(vec![backend.url()]);
    config.world_url = Some(backend.url());
    config.metrics_enabled = true;
    config
}

/// A login whose reply is not read yet.
fn send_login(c: &mut Client) {
    c.send(&packet_service::protocol::packets::LoginReq {
        digest: util::sha256_hex("pw"),
        username: "slow".into(),
    });
}

fn has_pending_bytes(c: &Client) -> bool {
    c.stream.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 1];
    let pending = matches!(c.stream.peek(&mut b), Ok(n) if n > 0);
    c.stream.set_nonblocking(false).expect("blocking");
    pending
}

#[test]
fn a_slow_backend_does_not_delay_other_connections() {
    let knobs = Arc::new(Knobs::default());
    knobs.latency_ms.store(3_000, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let mut config = gateway_for(&backend, CodecKind::Plain);
    config.rpc_deadline = Duration::from_secs(20);
    let gw = start(config);

    let mut waiting = Client::connect(gw.addr(), CodecKind::Plain);
    send_login(&mut waiting);
    util::wait_until("the backend to receive the login", || {
        knobs.logins.load(Ordering::SeqCst) >= 1
    });

    // While that login is in flight, other connections are served at once.
    let mut other = Client::connect(gw.addr(), CodecKind::Plain);
    for i in 0..50u32 {
        other.send_bytes(&other.raw_frame(STRESS, &i.to_le_bytes()));
        assert_eq!(other.recv().body, i.to_le_bytes());
        other.send(&Alive);
    }
    assert_eq!(other.accept().result, 2);
    // The waiting connection keeps answering ALIVE-only traffic (no reply
    // expected) and has no reply yet: the login is still in flight.
    waiting.send(&Alive);
    assert!(
        !has_pending_bytes(&waiting),
        "the login reply came before the backend answered"
    );
    let reply: LoginReply = waiting.recv_as();
    assert_eq!(reply.result, 0, "the slow login completes");
}

#[test]
fn backend_down_then_up() {
    let knobs = Arc::new(Knobs::default());
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let addr: SocketAddr = backend.addr;
    let gw = start(gateway_for(&backend, CodecKind::Rose));
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    send_login(&mut c);
    assert_eq!(c.recv_as::<LoginReply>().result, 0);

    backend.stop();
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    send_login(&mut c);
    let reply: LoginReply = c.recv_as();
    assert_eq!(reply.result, 1, "FAILED while the backend is down");
    // Other traffic is unaffected.
    assert_eq!(c.accept().result, 2);

    let backend = TestBackend::start(addr, knobs);
    util::wait_until("logins to succeed again", || {
        let mut c = Client::connect(gw.addr(), CodecKind::Rose);
        send_login(&mut c);
        c.recv_as::<LoginReply>().result == 0
    });
    drop(backend);
}

#[test]
fn a_failing_backend_gets_the_failure_code_within_the_deadline() {
    let knobs = Arc::new(Knobs::default());
    knobs.latency_ms.store(60_000, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let mut config = gateway_for(&backend, CodecKind::Rose);
    config.rpc_deadline = Duration::from_millis(300);
    let gw = start(config);
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    send_login(&mut c);
    assert_eq!(
        c.recv_as::<LoginReply>().result,
        1,
        "deadline exceeded → FAILED"
    );
    assert_eq!(c.accept().result, 2, "the connection is usable again");
    knobs.fail.store(true, Ordering::SeqCst);
    knobs.latency_ms.store(0, Ordering::SeqCst);
    c.send(&JoinServerReq {
        session_id: 5,
        digest: util::sha256_hex("pw"),
    });
    assert_eq!(
        c.recv_as::<JoinServerReply>().result,
        1,
        "UNAVAILABLE → FAILED"
    );
    assert!(
        util::scrape(
            &gw,
            "packet_service_rpc_errors_total{service=\"auth\",code=\"deadline_exceeded\"}"
        ) >= 1.0
    );
}

#[test]
fn a_completion_for_a_closed_connection_is_dropped() {
    let knobs = Arc::new(Knobs::default());
    knobs.latency_ms.store(300, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let gw = start(gateway_for(&backend, CodecKind::Plain));
    let before = util::scrape(&gw, "packet_service_rpc_stale_completions_total");
    {
        let mut gone = Client::connect(gw.addr(), CodecKind::Plain);
        send_login(&mut gone);
        util::wait_until("the backend to receive the login", || {
            knobs.logins.load(Ordering::SeqCst) >= 1
        });
    } // closed while the login is in flight
    util::wait_until("the late completion to be dropped and counted", || {
        util::scrape(&gw, "packet_service_rpc_stale_completions_total") >= before + 1.0
    });
    // A new connection (possibly in the same slot) is not confused by it.
    let mut c = Client::connect(gw.addr(), CodecKind::Plain);
    assert_eq!(c.accept().result, 2);
    send_login(&mut c);
    assert_eq!(c.recv_as::<LoginReply>().result, 0);
}

#[test]
fn a_full_job_queue_answers_busy() {
    let knobs = Arc::new(Knobs::default());
    knobs.latency_ms.store(2_000, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let mut config = gateway_for(&backend, CodecKind::Rose);
    config.rpc_queue = 1;
    config.rpc_deadline = Duration::from_secs(20);
    let gw = start(config);
    // The server-list refresh may hold the only slot too: send enough.
    let mut clients: Vec<Client> = (0..6)
        .map(|_| Client::connect(gw.addr(), CodecKind::Rose))
        .collect();
    for c in &mut clients {
        send_login(c);
    }
    let results: Vec<u8> = clients
        .iter_mut()
        .map(|c| c.recv_as::<LoginReply>().result)
        .collect();
    let busy = results.iter().filter(|&&r| r == 1).count();
    assert!(busy >= 1, "some logins were refused at once: {results:?}");
    assert!(
        results.contains(&0),
        "queued logins still complete: {results:?}"
    );
    let rejected = util::scrape(&gw, "packet_service_rpc_queue_rejected_total");
    assert!(rejected >= busy as f64, "{rejected} < {busy}");
}

#[test]
fn a_dropped_world_stream_closes_its_players_and_comes_back() {
    let knobs = Arc::new(Knobs::default());
    knobs.map_stage.store(true, Ordering::SeqCst);
    let backend = TestBackend::start("127.0.0.1:0".parse().expect("addr"), Arc::clone(&knobs));
    let addr = backend.addr;
    let gw = start(gateway_for(&backend, CodecKind::Rose));
    let join = |c: &mut Client| {
        c.send(&JoinServerReq {
            session_id: 77,
            digest: util::sha256_hex("pw"),
        });
        c.recv_as::<JoinServerReply>()
    };
    let mut player = Client::connect(gw.addr(), CodecKind::Rose);
    util::wait_until("the world link to come up", || {
        let mut probe = Client::connect(gw.addr(), CodecKind::Rose);
        join(&mut probe).result == 0
    });
    assert_eq!(join(&mut player).result, 0);
    let mut bystander = Client::connect(gw.addr(), CodecKind::Rose);
    bystander.accept();

    backend.stop();
    let notice: WhisperChatReply = player.recv_as();
    assert_eq!(notice.sender, "server msg");
    player.expect_closed();
    assert_eq!(
        bystander.accept().result,
        2,
        "connections outside the world stay"
    );
    // While the world is down a map join fails at once.
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    assert_eq!(join(&mut c).result, 1);

    let _backend = TestBackend::start(addr, knobs);
    util::wait_until("the world link to be re-established", || {
        let mut c = Client::connect(gw.addr(), CodecKind::Rose);
        join(&mut c).result == 0
    });
}
