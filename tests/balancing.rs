//! Interchangeable backends: a gateway given several auth and character
//! URLs balances its calls over the ones that serve (their health service
//! says so), fails over when one dies without a client noticing, takes one
//! that is stopping out first, and takes a restarted one back.

mod util;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use packet_service::backend::{BackendConfig, EmbeddedBackend};
use packet_service::config::Config;
use packet_service::protocol::CodecKind;
use packet_service::server::ServerHandle;
use util::backends::{Knobs, TestBackend};
use util::{scrape, start, test_config};

fn up(gw: &ServerHandle, service: &str) -> f64 {
    scrape(
        gw,
        &format!("packet_service_rpc_endpoints_up{{service=\"{service}\"}}"),
    )
}

/// A gateway whose auth and character calls go to `urls`, its world to `world`.
fn balanced_gateway(urls: Vec<String>, world: String) -> ServerHandle {
    let mut config: Config = test_config(CodecKind::Plain);
    config.auth_url = Some(urls.clone());
    config.character_url = Some(urls);
    config.world_url = Some(world);
    config.metrics_enabled = true;
    config.rpc_deadline = Duration::from_millis(1500);
    start(config)
}

/// One login on a new connection; its result code.
fn login(gw: &ServerHandle, user: &str, password: &str) -> u8 {
    util::login_result(gw.addr(), CodecKind::Plain, user, password)
}

fn logins(knobs: &Knobs) -> u64 {
    knobs.logins.load(Ordering::SeqCst)
}

/// Test backends A and B for auth and character, a third for the world,
/// and a gateway balancing over A and B once both are in its balance.
fn two_backends_and_a_world() -> (TestBackend, TestBackend, TestBackend, ServerHandle) {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let start = || TestBackend::start(loopback, Arc::new(Knobs::default()));
    let (a, b, world) = (start(), start(), start());
    let gw = balanced_gateway(vec![a.url(), b.url()], world.url());
    util::wait_until("both backends in the balance", || {
        up(&gw, "auth") == 2.0 && up(&gw, "character") == 2.0
    });
    (a, b, world, gw)
}

#[test]
fn calls_are_balanced_and_fail_over_when_a_backend_dies() {
    let (a, b, _world, gw) = two_backends_and_a_world();

    const LOGINS: u64 = 24;
    for _ in 0..LOGINS {
        assert_eq!(login(&gw, "pw", "pw"), 0);
    }
    let (a_knobs, b_knobs) = (Arc::clone(&a.knobs), Arc::clone(&b.knobs));
    assert_eq!(logins(&a_knobs) + logins(&b_knobs), LOGINS);
    assert!(
        logins(&a_knobs) > 0 && logins(&b_knobs) > 0,
        "one backend took every login: {} and {}",
        logins(&a_knobs),
        logins(&b_knobs)
    );

    // A dies as a crashed process would (every connection dropped at
    // once); logins straight after it still succeed, on B.
    let a_addr = a.addr;
    drop(a);
    let before = (logins(&a_knobs), logins(&b_knobs));
    for _ in 0..LOGINS {
        assert_eq!(login(&gw, "pw", "pw"), 0, "a login after the crash");
    }
    assert_eq!(logins(&a_knobs), before.0);
    assert_eq!(logins(&b_knobs), before.1 + LOGINS);
    util::wait_until("the dead backend out of the balance", || {
        up(&gw, "auth") == 1.0
    });

    // A comes back on its address and gets calls again.
    let a = TestBackend::start(a_addr, Arc::new(Knobs::default()));
    util::wait_until("the restarted backend back in the balance", || {
        up(&gw, "auth") == 2.0
    });
    for _ in 0..LOGINS {
        assert_eq!(login(&gw, "pw", "pw"), 0);
    }
    assert!(logins(&a.knobs) > 0, "the restarted backend gets logins");
}

#[test]
fn with_every_backend_down_logins_fail_within_the_deadline_and_recover() {
    let (a, b, _world, gw) = two_backends_and_a_world();
    let b_addr = b.addr;
    drop((a, b));
    util::wait_until("no backend in the balance", || up(&gw, "auth") == 0.0);

    let started = std::time::Instant::now();
    assert_eq!(
        login(&gw, "pw", "pw"),
        1,
        "FAILED while every backend is down"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500) + util::DEADLINE / 10,
        "answered after {:?}",
        started.elapsed()
    );

    let _b = TestBackend::start(b_addr, Arc::new(Knobs::default()));
    util::wait_until("a backend back in the balance", || up(&gw, "auth") == 1.0);
    assert_eq!(login(&gw, "pw", "pw"), 0, "service resumes by itself");
}

/// An embedded backend in a runtime of its own, stopped gracefully.
struct Stoppable {
    rt: tokio::runtime::Runtime,
    backend: Option<EmbeddedBackend>,
}

impl Stoppable {
    fn start() -> Stoppable {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = BackendConfig {
            accounts: vec![("bob".into(), "secret".into())],
            ..BackendConfig::default()
        };
        let backend = rt
            .block_on(EmbeddedBackend::start(
                config,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("backend starts");
        Stoppable {
            rt,
            backend: Some(backend),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.backend.as_ref().expect("running").addr())
    }

    fn stop(&mut self) {
        if let Some(backend) = self.backend.take() {
            self.rt.block_on(backend.shutdown());
        }
    }
}

#[test]
fn a_backend_that_stops_leaves_the_balance_first() {
    let mut a = Stoppable::start();
    let b = Stoppable::start();
    let gw = balanced_gateway(vec![a.url(), b.url()], b.url());
    util::wait_until("both backends in the balance", || up(&gw, "auth") == 2.0);
    for _ in 0..8 {
        assert_eq!(login(&gw, "bob", "secret"), 0);
    }
    // NOT_SERVING comes first, and the watch ends: no open stream holds
    // up the stop (the backend's grace is 5 s).
    let stopping = std::time::Instant::now();
    a.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "stopped after {:?}",
        stopping.elapsed()
    );
    util::wait_until("the stopped backend out of the balance", || {
        up(&gw, "auth") == 1.0
    });
    for _ in 0..8 {
        assert_eq!(login(&gw, "bob", "secret"), 0, "every login lands on B");
    }
}

/// One series of a gateway process's metrics.
fn scrape_process(gw: &util::process::Process, series: &str) -> f64 {
    let (status, body) = util::http_get(gw.metrics_addr(), "/metrics");
    assert_eq!(status, 200);
    util::metric(&body, series)
}

#[test]
fn a_standalone_backend_dies_mid_flow_and_the_flow_goes_on() {
    use util::flow::{char_phase, login_phase, map_phase};
    use util::process::Process;
    // Two backend processes serve the same sessions only through a shared
    // PostgreSQL (SQLite keeps sessions in each process).
    let Some(db) = util::db::TestDb::postgres_blocking() else {
        return;
    };
    let (a_addr, b_addr) = (util::free_addr(), util::free_addr());
    let _a = Process::backend(a_addr, &db.url_text());
    let mut b = Process::backend(b_addr, &db.url_text());
    let urls = format!("http://{a_addr},http://{b_addr}");
    // The world is A's: one world per realm, and B is the one that dies.
    let world = format!("http://{a_addr}");
    let gw = Process::start(
        &[
            "--auth-url",
            &urls,
            "--character-url",
            &urls,
            "--world-url",
            &world,
        ],
        &[],
    );
    util::wait_until("both backends in the balance and the world link", || {
        let up = |s: &str| {
            scrape_process(
                &gw,
                &format!("packet_service_rpc_endpoints_up{{service=\"{s}\"}}"),
            )
        };
        up("auth") == 2.0
            && up("character") == 2.0
            && scrape_process(&gw, "packet_service_world_link_up") == 1.0
    });

    let user = format!("mid{}", std::process::id());
    let session = login_phase(gw.addr(), CodecKind::Rose, &user, "pw");
    // B dies between the login and the character phase: whichever of A
    // and B took the login, its session is in the shared store.
    b.kill();
    let _char_conn = char_phase(gw.addr(), CodecKind::Rose, session, "Midway");
    let (mut map, entity) = map_phase(gw.addr(), CodecKind::Rose, session);
    map.send(&packet_service::protocol::packets::NormalChat {
        message: "still standing".into(),
    });
    let chat: packet_service::protocol::packets::NormalChatBroadcast = map.recv_as();
    assert_eq!(
        (chat.char_id, chat.message.as_str()),
        (entity, "still standing")
    );
    util::wait_until("the dead backend out of the balance", || {
        scrape_process(&gw, "packet_service_rpc_endpoints_up{service=\"auth\"}") == 1.0
    });
    let _b = Process::backend(b_addr, &db.url_text());
    util::wait_until("the restarted backend back in the balance", || {
        scrape_process(&gw, "packet_service_rpc_endpoints_up{service=\"auth\"}") == 2.0
    });
}
