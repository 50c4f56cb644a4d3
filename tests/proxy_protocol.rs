//! PROXY protocol on the listener: versions 1 and 2 from trusted sources,
//! the real client address counted by the per-IP limit, and refusals.

mod util;

use packet_service::protocol::CodecKind;
use util::{start, test_config, Client};

fn proxied_config() -> packet_service::config::Config {
    let mut config = test_config(CodecKind::Rose);
    config.proxy_protocol = true;
    config.proxy_trusted = vec![packet_service::cidr::parse("127.0.0.0/8").expect("cidr")];
    config.max_connections_per_ip = 1;
    config.metrics_enabled = true;
    config
}

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 29000\r\n").into_bytes()
}

fn v2(client: &str) -> Vec<u8> {
    let src: std::net::SocketAddr = format!("{client}:40000").parse().expect("addr");
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (
            src,
            "127.0.0.1:29000"
                .parse::<std::net::SocketAddr>()
                .expect("addr"),
        ),
    )
    .build()
    .expect("header")
}

#[test]
fn headers_are_read_and_the_real_client_is_limited() {
    let gw = start(proxied_config());
    // v1 and v2 from two different real clients: both admitted, although
    // the socket peer (the balancer, here loopback) is the same.
    let mut a = Client::connect(gw.addr(), CodecKind::Rose);
    a.send_bytes(&v1("203.0.113.7"));
    assert_eq!(a.accept().result, 2);
    let mut b = Client::connect(gw.addr(), CodecKind::Rose);
    // Header and first packet in one write.
    let mut first = v2("198.51.100.9");
    first.extend(b.frame(&packet_service::protocol::packets::AcceptReq));
    b.send_bytes(&first);
    assert_eq!(
        b.recv_as::<packet_service::protocol::packets::AcceptReply>()
            .result,
        2
    );
    // A second connection of 203.0.113.7 is over its limit of one.
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    c.send_bytes(&v1("203.0.113.7"));
    c.expect_closed();
    util::wait_until("the metric to count it", || {
        util::scrape(
            &gw,
            "packet_service_connections_closed_total{reason=\"per_ip_limit\"}",
        ) >= 1.0
    });
    // The others are unaffected.
    assert_eq!(a.accept().result, 2);
    assert_eq!(b.accept().result, 2);
}

#[test]
fn a_connection_without_a_header_is_closed() {
    let gw = start(proxied_config());
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    c.send(&packet_service::protocol::packets::AcceptReq);
    c.expect_closed();
    util::wait_until("the metric to count it", || {
        util::scrape(
            &gw,
            "packet_service_protocol_errors_total{reason=\"bad_proxy_header\"}",
        ) >= 1.0
    });
}

#[test]
fn untrusted_sources_are_refused() {
    let mut config = proxied_config();
    config.proxy_trusted = vec![packet_service::cidr::parse("10.0.0.0/8").expect("cidr")];
    let gw = start(config);
    let mut c = Client::connect(gw.addr(), CodecKind::Rose);
    c.expect_closed();
    util::wait_until("the metric to count it", || {
        util::scrape(
            &gw,
            "packet_service_connections_rejected_total{reason=\"proxy_protocol\"}",
        ) >= 1.0
    });
}
