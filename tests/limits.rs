//! Per-connection limits over real TCP: a flooding client, a client that
//! never reads, and an exhausted buffer pool each get their counted outcome
//! while other connections keep being served.

mod util;

use std::io::Write;

use packet_service::protocol::packets::Alive;
use packet_service::protocol::CodecKind;
use util::{scrape, start, test_config, Client};

const STRESS: u16 = 0x6F6D;

fn probe(c: &mut Client) {
    c.send_bytes(&c.raw_frame(STRESS, b"ok"));
    assert_eq!(c.recv().body, b"ok", "bystander served");
}

#[test]
fn a_flooding_client_is_disconnected() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.max_packets_per_sec = 50;
    config.packet_burst = 20;
    let gw = start(config);
    let mut bystander = Client::connect(gw.addr(), CodecKind::Plain);
    let mut flood = Client::connect(gw.addr(), CodecKind::Plain);
    let alive = flood.frame(&Alive);
    flood.send_bytes(&alive.repeat(100));
    flood.expect_closed();
    util::wait_until("the close to be counted", || {
        scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"rate_limited\"}",
        ) == 1.0
    });
    probe(&mut bystander);
}

#[test]
fn a_client_that_does_not_read_is_closed_at_the_output_limit() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.max_packets_per_sec = 0;
    config.output_limit = 64 * 1024;
    let gw = start(config);
    let mut bystander = Client::connect(gw.addr(), CodecKind::Plain);
    let slow = Client::connect(gw.addr(), CodecKind::Plain);
    // Far more echo than the socket buffers hold; the client never reads.
    let frame = slow.raw_frame(STRESS, &[0x5A; 2041]);
    let mut writer = slow.stream.try_clone().expect("clone");
    let flood = std::thread::spawn(move || {
        for _ in 0..20_000 {
            if writer.write_all(&frame).is_err() {
                return; // closed by the gateway, as expected
            }
        }
    });
    util::wait_until("the slow reader to be closed", || {
        scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"output_limit\"}",
        ) == 1.0
    });
    flood.join().expect("writer");
    probe(&mut bystander);
}

#[test]
fn an_exhausted_pool_pauses_reading_and_resumes() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.buffer_pool_size = 16; // one buffer is kept back for replies
    let gw = start(config);
    let pool = "packet_service_buffer_pool_available";
    util::wait_until("the pool gauge", || scrape(&gw, pool) == 16.0);
    // Fifteen connections each hold a buffer with half a packet.
    let mut holders: Vec<Client> = (0..15)
        .map(|_| Client::connect(gw.addr(), CodecKind::Plain))
        .collect();
    let frame = holders[0].raw_frame(STRESS, b"held");
    for h in &mut holders {
        h.send_bytes(&frame[..4]);
    }
    util::wait_until("every buffer but the reserve to be held", || {
        scrape(&gw, pool) == 1.0
    });
    // A new connection's packet cannot be read now: no buffer to read into.
    let mut waiting = Client::connect(gw.addr(), CodecKind::Plain);
    waiting.send_bytes(&waiting.raw_frame(STRESS, b"late"));
    // The holders complete their packets, get their echoes, free their
    // buffers; then the waiting connection is read and answered.
    for h in &mut holders {
        h.send_bytes(&frame[4..]);
        assert_eq!(h.recv().body, b"held");
    }
    assert_eq!(waiting.recv().body, b"late");
    util::wait_until("every buffer back", || scrape(&gw, pool) == 16.0);
}
