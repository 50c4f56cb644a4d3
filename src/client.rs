//! A blocking game client over one TCP connection, for tools and tests:
//! encode and seal typed packets, receive and decode the gateway's replies.
//! It is deliberately simple (std sockets, one connection); the load
//! generator has its own event loop.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::codec::RoseTables;
use crate::protocol::packet_type::{Dialect, DialectId, Direction, PacketType};
use crate::protocol::packets::{self, Packet};
use crate::protocol::{Codec, CodecKind, HEADER_LEN};

/// What went wrong talking to the gateway.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The gateway closed the connection.
    #[error("connection closed by the gateway")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// A frame from the gateway did not decode.
    #[error("bad frame from the gateway: {0}")]
    Frame(#[from] crate::protocol::FrameError),
    /// A packet could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(#[from] packets::EncodeError),
    /// A reply body did not decode.
    #[error("bad {0} body: {1}")]
    Body(PacketType, packets::BodyError),
    /// A different packet arrived than the one expected.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// Wanted.
        expected: PacketType,
        /// Received (name or id).
        got: String,
    },
}

/// One packet received from the gateway.
#[derive(Debug, Clone)]
pub struct Received {
    /// Wire id.
    pub id: u16,
    /// Its type in the client's dialect, if known.
    pub ptype: Option<PacketType>,
    /// Plaintext body.
    pub body: Vec<u8>,
}

impl Received {
    /// Decodes the body as `P`, checking the type.
    pub fn decode<P: Packet>(&self) -> Result<P, ClientError> {
        if self.ptype != Some(P::TYPE) {
            return Err(ClientError::Unexpected {
                expected: P::TYPE,
                got: self.name(),
            });
        }
        P::decode(&self.body).map_err(|e| ClientError::Body(P::TYPE, e))
    }

    /// The packet's name, or its id in hex.
    pub fn name(&self) -> String {
        match self.ptype {
            Some(t) => t.name().to_owned(),
            None => format!("{:#06x}", self.id),
        }
    }
}

/// A game client on one connection.
pub struct Client {
    /// The socket (public so tests can clone it or set options).
    pub stream: TcpStream,
    codec: Codec,
    dialect: &'static Dialect,
    pending: Vec<u8>,
    timeout: Duration,
}

impl Client {
    /// Connects; every receive waits at most `timeout`.
    pub fn connect(
        addr: SocketAddr,
        codec: CodecKind,
        dialect: DialectId,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Client::connect_codec(addr, Codec::new(codec), dialect, timeout)
    }

    /// Connects with an explicit codec: an irose client's, on the tables of
    /// the connection it opens ([`irose_codec`]).
    pub fn connect_codec(
        addr: SocketAddr,
        codec: Codec,
        dialect: DialectId,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        Client::over_codec(stream, codec, dialect, timeout)
    }

    /// A client over a stream already connected (from a chosen local
    /// address, say); every receive waits at most `timeout`.
    pub fn over(
        stream: TcpStream,
        codec: CodecKind,
        dialect: DialectId,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Client::over_codec(stream, Codec::new(codec), dialect, timeout)
    }

    /// A client over a stream already connected, with an explicit codec.
    fn over_codec(
        stream: TcpStream,
        codec: Codec,
        dialect: DialectId,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            codec,
            dialect: dialect.dialect(),
            pending: Vec::new(),
            timeout,
        })
    }

    /// The codec this client seals and opens with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The wire id of `t` in this client's dialect.
    pub fn id(&self, t: PacketType) -> Option<u16> {
        self.dialect.wire_id(t)
    }

    /// Encodes and seals a typed packet as a client sends it.
    pub fn frame<P: Packet>(&self, p: &P) -> Result<Vec<u8>, ClientError> {
        let mut bytes = packets::packet_to_vec(self.dialect, p)?;
        self.codec.seal(Direction::ClientToServer, &mut bytes)?;
        Ok(bytes)
    }

    /// Encodes and seals a raw packet (id + body).
    pub fn raw_frame(&self, id: u16, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let size = HEADER_LEN + body.len();
        let mut bytes = vec![0u8; size];
        crate::protocol::codec::write_plain_header(&mut bytes, size, id);
        bytes[HEADER_LEN..].copy_from_slice(body);
        self.codec.seal(Direction::ClientToServer, &mut bytes)?;
        Ok(bytes)
    }

    /// Sends a typed packet.
    pub fn send<P: Packet>(&mut self, p: &P) -> Result<(), ClientError> {
        let bytes = self.frame(p)?;
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Receives the next packet.
    pub fn recv(&mut self) -> Result<Received, ClientError> {
        let until = Instant::now() + self.timeout;
        loop {
            if let Some(h) = self.codec.peek(Direction::ServerToClient, &self.pending)? {
                if self.pending.len() >= h.wire_len {
                    self.codec.open(&h, &mut self.pending)?;
                    let body = self.pending[HEADER_LEN..h.data_len].to_vec();
                    self.pending.drain(..h.wire_len);
                    return Ok(Received {
                        id: h.command,
                        ptype: self.dialect.server_packet(h.command),
                        body,
                    });
                }
            }
            if Instant::now() > until {
                return Err(ClientError::Timeout);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ClientError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(ClientError::Closed)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives a packet of type `P`.
    pub fn recv_as<P: Packet>(&mut self) -> Result<P, ClientError> {
        self.recv()?.decode()
    }

    /// Receives until a packet of type `P` arrives, skipping at most `skip` others.
    pub fn recv_until<P: Packet>(&mut self, skip: usize) -> Result<P, ClientError> {
        for _ in 0..=skip {
            let r = self.recv()?;
            if r.ptype == Some(P::TYPE) {
                return r.decode();
            }
        }
        Err(ClientError::Unexpected {
            expected: P::TYPE,
            got: format!("{skip} other packets"),
        })
    }

    /// Sends `p` and receives the reply of type `R`.
    pub fn request<P: Packet, R: Packet>(&mut self, p: &P) -> Result<R, ClientError> {
        self.send(p)?;
        self.recv_as()
    }
}

/// The codec of an irose client's connection (docs/protocol.md §10.2): the
/// default tables for the login connection (`seed` = `None`), the tables
/// of the seed the gateway announced for a char or map connection. Under
/// `plain` there are no tables. Seeded tables are built once per seed and
/// process, then shared.
pub fn irose_codec(kind: CodecKind, seed: Option<u32>) -> Codec {
    match (kind, seed) {
        (CodecKind::Plain, _) => Codec::new(CodecKind::Plain),
        (CodecKind::Rose, None) => Codec::irose(RoseTables::default_tables()),
        (CodecKind::Rose, Some(seed)) => Codec::irose(seeded_tables(seed)),
    }
}

/// `init(seed)`, built on first use and kept for the process.
pub fn seeded_tables(seed: u32) -> &'static RoseTables {
    static BUILT: Mutex<Vec<(u32, &'static RoseTables)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, tables)) = built.iter().find(|(s, _)| *s == seed) {
        return tables;
    }
    let tables: &'static RoseTables = Box::leak(Box::new(RoseTables::seeded(seed)));
    built.push((seed, tables));
    tables
}

/// Lowercase hex SHA-256 of a password: the 64-byte digest clients send.
pub fn sha256_hex(password: &str) -> Vec<u8> {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(password.as_bytes()))
}

/// Lowercase hex MD5 of a password: the 32-byte digest form.
pub fn md5_hex(password: &str) -> Vec<u8> {
    use md5::Digest;
    hex(&md5::Md5::digest(password.as_bytes()))
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .collect()
}
