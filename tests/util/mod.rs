//! Shared helpers for the integration tests: a blocking protocol client over
//! a real TCP socket, a gateway started on port 0, and waiting on a
//! condition with a deadline.
#![allow(dead_code)]

pub mod backends;
pub mod db;
pub mod flow;
pub mod irose;
pub mod link;
pub mod process;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use packet_service::config::Config;
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{self, Packet};
use packet_service::protocol::CodecKind;
use packet_service::server::{Server, ServerHandle};

/// How long any single expectation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A gateway config for tests: loopback, ephemeral ports, no metrics port
/// unless asked, a demo account.
pub fn test_config(codec: CodecKind) -> Config {
    let mut config = Config::for_tests();
    config.codec = codec;
    // Every test client comes from one address: creation is limited only
    // where a test asks (tests/auth_limits.rs).
    config.autocreate_per_source = 100_000;
    config.autocreate_per_min = 1_000_000;
    config.accounts = vec![
        ("admin".into(), "admin".into()),
        ("bob".into(), "secret".into()),
    ];
    config
}

/// A loopback address whose port is free now (for a process that binds it
/// later, or restarts on it; or one that nothing listens on).
pub fn free_addr() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    probe.local_addr().expect("addr")
}

/// The result code of one login (SHA-256 digest of `password`) on a
/// connection of its own, without the ACCEPT exchange first.
#[track_caller]
pub fn login_result(addr: SocketAddr, codec: CodecKind, user: &str, password: &str) -> u8 {
    Client::connect(addr, codec).login(user, password).result
}

/// Starts a gateway on its own thread.
#[track_caller]
pub fn start(config: Config) -> ServerHandle {
    Server::build(config).expect("gateway starts").spawn()
}

/// Waits until `cond` holds, failing the test after `DEADLINE`.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[allow(unused_imports)]
pub use packet_service::client::{md5_hex, sha256_hex, Received};

/// A game client whose every step fails the test on error.
pub struct Client {
    inner: packet_service::client::Client,
}

impl std::ops::Deref for Client {
    type Target = packet_service::client::Client;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl Client {
    /// Connects with the given codec and the default dialect.
    #[track_caller]
    pub fn connect(addr: SocketAddr, codec: CodecKind) -> Client {
        Client::connect_with(addr, codec, DialectId::Osirose)
    }

    /// Connects with a codec and dialect.
    #[track_caller]
    pub fn connect_with(addr: SocketAddr, codec: CodecKind, dialect: DialectId) -> Client {
        let inner = packet_service::client::Client::connect(addr, codec, dialect, DEADLINE)
            .expect("connect");
        Client { inner }
    }

    /// Connects as an irose client: the default tables for a login
    /// connection (`seed` = `None`), else those of the announced seed.
    #[track_caller]
    pub fn connect_irose(addr: SocketAddr, codec: CodecKind, seed: Option<u32>) -> Client {
        let codec = packet_service::client::irose_codec(codec, seed);
        let inner =
            packet_service::client::Client::connect_codec(addr, codec, DialectId::Irose, DEADLINE)
                .expect("connect");
        Client { inner }
    }

    /// Connects from the local address `from` (another loopback address,
    /// say, to be a different source).
    #[track_caller]
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr, codec: CodecKind) -> Client {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .expect("bind the source address");
        socket
            .connect_timeout(&addr.into(), DEADLINE)
            .expect("connect");
        let inner = packet_service::client::Client::over(
            socket.into(),
            codec,
            DialectId::Osirose,
            DEADLINE,
        )
        .expect("client");
        Client { inner }
    }

    /// Encodes a typed packet as a client would send it.
    #[track_caller]
    pub fn frame<P: Packet>(&self, p: &P) -> Vec<u8> {
        self.inner.frame(p).expect("encodes")
    }

    /// Encodes a raw packet (id + body).
    #[track_caller]
    pub fn raw_frame(&self, id: u16, body: &[u8]) -> Vec<u8> {
        self.inner.raw_frame(id, body).expect("encodes")
    }

    /// The wire id of a type in this client's dialect.
    #[track_caller]
    pub fn id(&self, t: PacketType) -> u16 {
        self.inner.id(t).expect("type has an id")
    }

    /// Sends a typed packet.
    #[track_caller]
    pub fn send<P: Packet>(&mut self, p: &P) {
        self.inner.send(p).expect("send");
    }

    /// Sends raw bytes.
    #[track_caller]
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.inner.send_bytes(bytes).expect("send");
    }

    /// Receives the next packet, failing after `DEADLINE`.
    #[track_caller]
    pub fn recv(&mut self) -> Received {
        match self.inner.recv() {
            Ok(r) => r,
            Err(e) => panic!("expected a packet: {e}"),
        }
    }

    /// Receives the next packet or reports why none came.
    pub fn try_recv(&mut self) -> Result<Received, String> {
        self.inner.recv().map_err(|e| e.to_string())
    }

    /// Receives a packet of type `P`.
    #[track_caller]
    pub fn recv_as<P: Packet>(&mut self) -> P {
        match self.inner.recv_as() {
            Ok(p) => p,
            Err(e) => panic!("expected {}: {e}", P::TYPE),
        }
    }

    /// Sends `p` and receives the next packet, whatever it is.
    #[track_caller]
    pub fn recv_after<P: Packet>(&mut self, p: &P) -> Received {
        self.send(p);
        self.recv()
    }

    /// Expects the gateway to close the connection (EOF or reset) without
    /// sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let mut chunk = [0u8; 256];
        loop {
            match self.inner.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => panic!("expected a close, got {n} more bytes: {:02x?}", &chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("expected a close, got {e}"),
            }
        }
    }

    /// ACCEPT_REQ → ACCEPT_REPLY.
    #[track_caller]
    pub fn accept(&mut self) -> packets::AcceptReply {
        self.send(&packets::AcceptReq);
        self.recv_as()
    }

    /// LOGIN_REQ with the SHA-256 digest of `password`.
    #[track_caller]
    pub fn login(&mut self, user: &str, password: &str) -> packets::LoginReply {
        self.send(&packets::LoginReq {
            digest: sha256_hex(password),
            username: user.into(),
        });
        self.recv_as()
    }
}

/// GETs `path` from an HTTP endpoint (HTTP/1.0, whole body).
#[track_caller]
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of one series, `name{k="v",...}` with labels in any order, or 0.
pub fn metric(text: &str, series: &str) -> f64 {
    let split = |s: &str| -> (String, Vec<String>) {
        match s.split_once('{') {
            Some((name, rest)) => {
                let mut labels: Vec<String> = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                labels.sort();
                (name.to_owned(), labels)
            }
            None => (s.to_owned(), Vec::new()),
        }
    };
    let wanted = split(series);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (split(name) == wanted)
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

/// Scrapes the gateway's metrics and returns one series.
#[track_caller]
pub fn scrape(handle: &ServerHandle, series: &str) -> f64 {
    let addr = handle.metrics_addr().expect("metrics enabled");
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    metric(&body, series)
}
