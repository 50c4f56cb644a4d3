//! Per-connection limits over real TCP: a flooding client, a client that
//! never reads, and an exhausted buffer pool each get their counted outcome
//! while other connections keep being served.

mod util;

use std::io::Write;

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{Alive, NormalChat};
use packet_service::protocol::CodecKind;
use util::flow::{enter_world, recv_skipping};
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
fn a_client_that_does_not_read_is_paused_then_closed_at_the_output_limit() {
    let mut config = test_config(CodecKind::Plain);
    config.metrics_enabled = true;
    config.max_packets_per_sec = 0;
    config.output_limit = 4096;
    config.auto_create_accounts = true;
    // The talker fills the deaf client's queue with long chat, as fast as
    // it can: no chat budget here.
    config.chat_per_sec = 0;
    config.chat_max_bytes = 2000;
    let gw = start(config);
    let mut bystander = Client::connect(gw.addr(), CodecKind::Plain);

    // Its own replies only pause it: a client that does not read its echoes
    // stops being decoded once a few buffers of output are queued.
    let slow = Client::connect(gw.addr(), CodecKind::Plain);
    let frame = slow.raw_frame(STRESS, &[0x5A; 2041]);
    let mut writer = slow.stream.try_clone().expect("clone");
    std::thread::spawn(move || {
        for _ in 0..20_000 {
            if writer.write_all(&frame).is_err() {
                return;
            }
        }
    });
    probe(&mut bystander);

    // World traffic it does not read fills its queue: then it is closed.
    let deaf = enter_world(gw.addr(), CodecKind::Plain, "deaf", "Deaf");
    let mut talker = enter_world(gw.addr(), CodecKind::Plain, "talker", "Talker");
    let line = "x".repeat(1000);
    let mut said = 0;
    while scrape(
        &gw,
        "packet_service_connections_closed_total{reason=\"output_limit\"}",
    ) < 1.0
    {
        for _ in 0..50 {
            talker.map.send(&NormalChat {
                message: line.clone(),
            });
            let _ = recv_skipping(&mut talker.map, PacketType::PAKWC_NORMAL_CHAT);
            said += 1;
        }
        assert!(said < 20_000, "the deaf client was never closed");
    }
    deaf.map
        .stream
        .set_read_timeout(Some(util::DEADLINE))
        .expect("timeout");
    probe(&mut bystander);
    // The paused echo client was not closed by its own replies.
    assert_eq!(
        scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"output_limit\"}"
        ),
        1.0
    );
    drop(slow);
}

#[test]
fn an_exhausted_pool_closes_the_longest_stalled_holder_for_a_waiting_reader() {
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
    // A new connection's packet cannot be read: no buffer to read into. The
    // holder that stalled longest is closed for it, and it is served.
    let mut waiting = Client::connect(gw.addr(), CodecKind::Plain);
    waiting.send_bytes(&waiting.raw_frame(STRESS, b"late"));
    assert_eq!(waiting.recv().body, b"late");
    let closed = "packet_service_connections_closed_total{reason=\"pool_pressure\"}";
    util::wait_until("the eviction to be counted", || scrape(&gw, closed) == 1.0);
    // The other holders complete their packets and get their echoes.
    let mut served = 0;
    for h in &mut holders {
        h.send_bytes(&frame[4..]);
        if h.try_recv().is_ok_and(|r| r.body == b"held") {
            served += 1;
        }
    }
    assert_eq!(served, 14, "exactly one holder was closed");
    util::wait_until("every buffer back", || scrape(&gw, pool) == 16.0);
}
