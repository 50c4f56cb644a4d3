//! Online guessing and account floods (docs/protocol.md §9 D17), performed
//! over real TCP through the gateway and the embedded backend while a
//! neighbour is served: wrong passwords for one account, join guesses from
//! one source, auto-created accounts from one source; and unknown accounts
//! answered like wrong passwords.

mod util;

use std::net::{IpAddr, Ipv4Addr};

use packet_service::protocol::packets::*;
use packet_service::protocol::CodecKind;
use util::flow::{join, login_phase};
use util::{scrape, start, test_config, wait_until, Client};

const CODEC: CodecKind = CodecKind::Rose;
/// LOGIN_REPLY and JOIN_SERVER_REPLY INVALID_PASSWORD: the one failure a
/// guesser ever sees.
const INVALID_PASSWORD: u8 = 3;
/// A second source on the loopback interface.
const OTHER_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn logins(result: &str) -> String {
    format!("packet_service_logins_total{{result=\"{result}\"}}")
}

fn refused(reason: &str) -> String {
    format!("packet_service_auth_refused_total{{reason=\"{reason}\"}}")
}

fn gateway(auto_create: bool) -> packet_service::server::ServerHandle {
    let mut config = test_config(CODEC);
    config.metrics_enabled = true;
    config.auto_create_accounts = auto_create;
    // The defaults of the settings table.
    let defaults = packet_service::config::Config::defaults();
    config.autocreate_per_source = defaults.autocreate_per_source;
    config.autocreate_per_min = defaults.autocreate_per_min;
    start(config)
}

#[test]
fn a_password_guesser_is_refused_unchecked_while_a_neighbour_logs_in() {
    let gw = gateway(false);
    let mut guesser = Client::connect(gw.addr(), CODEC);
    assert_eq!(guesser.accept().result, AcceptReply::ACCEPTED);
    const TRIES: usize = 300;
    for n in 0..TRIES {
        let reply = guesser.login("admin", &format!("guess{n}"));
        assert_eq!(reply.result, INVALID_PASSWORD, "try {n}");
        if n % 50 == 0 {
            // The neighbour, from the same address, logs in to its own
            // account.
            let mut neighbour = Client::connect(gw.addr(), CODEC);
            assert_eq!(neighbour.accept().result, AcceptReply::ACCEPTED);
            assert_eq!(neighbour.login("bob", "secret").result, 0, "try {n}");
        }
    }
    let checked = || scrape(&gw, &logins("wrong_password"));
    let throttled = || scrape(&gw, &refused("throttled_account"));
    wait_until("every try counted", || {
        checked() + throttled() == TRIES as f64
    });
    // The tries took far less than a minute: the checks that reached the
    // account are the threshold and a few backoffs, under 100.
    let checks = checked();
    assert!((5.0..100.0).contains(&checks), "{checks} checks");
    assert!(checks <= 5.0 + 7.0, "{checks} checks within seconds");
    assert_eq!(scrape(&gw, &logins("refused")), throttled());
    assert_eq!(scrape(&gw, &refused("throttled_source")), 0.0);
    // The account itself is still fine for its owner once the backoff
    // ends, which a client sees only as its own failures.
    assert_eq!(scrape(&gw, &logins("ok")), (TRIES / 50) as f64);
}

#[test]
fn unknown_accounts_and_wrong_passwords_answer_alike() {
    let gw = gateway(false);
    let mut c = Client::connect(gw.addr(), CODEC);
    assert_eq!(c.accept().result, AcceptReply::ACCEPTED);
    let wrong = c.login("admin", "wrong");
    let unknown = c.login("nobody", "wrong");
    assert_eq!(wrong.result, INVALID_PASSWORD);
    assert_eq!(unknown.result, wrong.result);
    assert_eq!((unknown.right, unknown.servers.len()), (0, 0));
    // The metrics still tell them apart.
    wait_until("both counted", || {
        scrape(&gw, &logins("wrong_password")) == 1.0
            && scrape(&gw, &logins("unknown_account")) == 1.0
    });
}

#[test]
fn an_autocreate_flood_stops_at_the_limit_while_another_source_creates() {
    let gw = gateway(true);
    const FLOOD: usize = 12;
    let mut created = 0;
    for n in 0..FLOOD {
        let mut c = Client::connect(gw.addr(), CODEC);
        assert_eq!(c.accept().result, AcceptReply::ACCEPTED);
        match c.login(&format!("flood{n}"), "pw").result {
            0 => created += 1,
            INVALID_PASSWORD => {}
            other => panic!("login {n}: result {other}"),
        }
    }
    assert_eq!(created, 5, "the per-source limit of a minute");
    wait_until("the refusals counted", || {
        scrape(&gw, &refused("autocreate_limit")) == (FLOOD - 5) as f64
    });
    // Another source still creates its account and plays on.
    let mut neighbour = Client::connect_from(gw.addr(), OTHER_SOURCE, CODEC);
    assert_eq!(neighbour.accept().result, AcceptReply::ACCEPTED);
    assert_eq!(neighbour.login("newcomer", "pw").result, 0);
    // And an account that exists still logs in from the flooding source.
    let mut c = Client::connect(gw.addr(), CODEC);
    assert_eq!(c.accept().result, AcceptReply::ACCEPTED);
    assert_eq!(c.login("flood0", "pw").result, 0);
}

#[test]
fn join_guesses_from_one_source_back_off_while_a_neighbour_joins() {
    let gw = gateway(false);
    let mut guesser = Client::connect_from(gw.addr(), OTHER_SOURCE, CODEC);
    const TRIES: u32 = 100;
    let mut first = true;
    for n in 0..TRIES {
        let reply = if first {
            first = false;
            join(&mut guesser, 0x1000 + n, "guess")
        } else {
            guesser.send(&JoinServerReq {
                session_id: 0x1000 + n,
                digest: util::sha256_hex("guess"),
            });
            guesser.recv_as::<JoinServerReply>()
        };
        assert_eq!(reply.result, INVALID_PASSWORD, "try {n}");
    }
    let throttled = || scrape(&gw, &refused("throttled_source"));
    wait_until("the guesses throttled", || throttled() > 0.0);
    // At most the source threshold and a few backoffs were checked.
    let t = throttled();
    assert!(t >= f64::from(TRIES) - 20.0 - 7.0, "{t} throttled");
    // The neighbour, from another source, joins with its session.
    let session = login_phase(gw.addr(), CODEC, "bob", "secret");
    let mut neighbour = Client::connect(gw.addr(), CODEC);
    assert_eq!(join(&mut neighbour, session, "secret").result, 0);
}
