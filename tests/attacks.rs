//! The attacks of the hardening issue, each performed over real TCP while a
//! neighbour is served: a healthy client's new connection gets its round
//! trip, a fresh login goes through the whole flow, and the attack's outcome
//! is counted. Attacks are scaled to a small pool and connection table so
//! the ratios of the defaults hold within a test's file descriptors.
//!
//! Round-trip times are printed (p50/p99), never asserted.

mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::config::Config;
use packet_service::protocol::packets::AcceptReply;
use packet_service::protocol::CodecKind;
use packet_service::server::ServerHandle;
use util::flow::enter_world;
use util::{scrape, start, test_config, Client};

const STRESS: u16 = 0x6F6D;

fn closed(reason: &str) -> String {
    format!("packet_service_connections_closed_total{{reason=\"{reason}\"}}")
}

fn config() -> Config {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.auto_create_accounts = true;
    config
}

/// A healthy client: new connections, each with one round trip; prints the
/// round-trip percentiles of `rounds` of them.
fn neighbour_round_trips(addr: SocketAddr, what: &str, rounds: usize) {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let mut c = Client::connect(addr, CodecKind::Plain);
            assert_eq!(c.accept().result, AcceptReply::ACCEPTED, "neighbour served");
            started.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: new-connection round trip p50 {:?} p99 {:?} ({rounds} rounds)",
        at(0.5),
        at(0.99)
    );
}

/// A fresh login through the whole flow, to standing on the map.
fn fresh_login(gw: &ServerHandle, user: &str) {
    let player = enter_world(gw.addr(), CodecKind::Plain, user, &format!("{user}C"));
    assert_ne!(player.entity, 0);
}

#[test]
fn a_frame_that_never_completes_is_closed_at_the_frame_deadline() {
    let mut config = config();
    config.frame_timeout = Duration::from_millis(200);
    let gw = start(config);
    let mut stalled = Client::connect(gw.addr(), CodecKind::Plain);
    // One whole packet, then three bytes of the next; then silence.
    let mut bytes = stalled.raw_frame(STRESS, b"one");
    bytes.extend_from_slice(&stalled.raw_frame(STRESS, b"two")[..3]);
    stalled.send_bytes(&bytes);
    assert_eq!(stalled.recv().body, b"one");
    stalled.expect_closed();
    util::wait_until("the close to be counted", || {
        scrape(&gw, &closed("frame_timeout")) == 1.0
    });
    neighbour_round_trips(gw.addr(), "after a stalled frame", 10);
}

#[test]
fn a_proxy_header_that_never_completes_is_closed_at_the_frame_deadline() {
    let mut config = config();
    config.frame_timeout = Duration::from_millis(200);
    config.proxy_protocol = true;
    config.proxy_trusted = vec![packet_service::cidr::parse("127.0.0.0/8").expect("cidr")];
    let gw = start(config);
    let mut stalled = Client::connect(gw.addr(), CodecKind::Plain);
    stalled.send_bytes(b"PROXY TCP4 203.0.113.7");
    stalled.expect_closed();
    util::wait_until("the close to be counted", || {
        scrape(&gw, &closed("frame_timeout")) == 1.0
    });
}

/// Input side: 1 % of the connection table sends one valid packet and three
/// bytes of the next, then goes silent; each holds one buffer at most, the
/// pool keeps serving, and the frame deadline closes them all.
#[test]
fn stalled_frames_hold_one_buffer_each_and_are_closed() {
    let mut config = config();
    config.buffer_pool_size = 256;
    config.max_connections = 1000;
    config.max_connections_per_ip = 0;
    config.frame_timeout = Duration::from_secs(2);
    let gw = start(config);
    let pool = "packet_service_buffer_pool_available";
    let attackers: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect(gw.addr(), CodecKind::Plain);
            let mut bytes = c.raw_frame(STRESS, b"one");
            bytes.extend_from_slice(&c.raw_frame(STRESS, b"two")[..3]);
            c.send_bytes(&bytes);
            assert_eq!(c.recv().body, b"one");
            c
        })
        .collect();
    util::wait_until("each attacker to hold one buffer", || {
        scrape(&gw, pool) == 246.0
    });
    neighbour_round_trips(gw.addr(), "stalled frames (1 %)", 50);
    fresh_login(&gw, "during_stall");
    util::wait_until("the frame deadline to close them", || {
        scrape(&gw, &closed("frame_timeout")) == 10.0
    });
    drop(attackers);
    util::wait_until("every buffer back", || scrape(&gw, pool) == 256.0);
}
