//! Splitting reassembled byte streams into packets with the project's codec.
//!
//! [`StreamDecoder`] is incremental: bytes go in as they were delivered,
//! whole frames come out. A checksum failure costs only that frame (its size
//! was readable); a header whose size is out of range loses the framing, and
//! everything after it is reported once as undecodable.

use std::time::Duration;

use packet_service::protocol::packet_type::{Dialect, STRESS_ID};
use packet_service::protocol::{Codec, Direction, FrameError, PacketType};

use crate::reassembly::{Connection, EventKind, Side};

/// One frame cut from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The command from the header; `None` when the header itself was bad.
    pub command: Option<u16>,
    /// The bytes as they were on the wire.
    pub wire: Vec<u8>,
    /// The plaintext packet (clean header), or why it could not be opened.
    pub plain: Result<Vec<u8>, FrameError>,
}

impl Frame {
    /// The packet type, if the dialect knows the id in this direction.
    pub fn packet_type(&self, dialect: &Dialect, side: Side) -> Option<PacketType> {
        packet_type(dialect, side, self.command?)
    }

    /// The protocol name, or the id in hex, or `?` for a broken header.
    pub fn name(&self, dialect: &Dialect, side: Side) -> String {
        match self.command {
            Some(c) => packet_name(dialect, side, c),
            None => "?".to_string(),
        }
    }

    /// The plaintext body (after the 6-byte header), if the frame opened.
    pub fn body(&self) -> Option<&[u8]> {
        self.plain.as_ref().ok().and_then(|p| p.get(6..))
    }
}

/// The type `side` sent with id `command`.
pub fn packet_type(dialect: &Dialect, side: Side, command: u16) -> Option<PacketType> {
    if command == STRESS_ID {
        // The echo comes back from the server with the client's id.
        return Some(PacketType::STRESS);
    }
    dialect.lookup(direction(side), command)
}

/// A packet's protocol name, or `0x...` for ids the dialect does not know.
pub fn packet_name(dialect: &Dialect, side: Side, command: u16) -> String {
    match packet_type(dialect, side, command) {
        Some(t) => t.name().to_string(),
        None => format!("{command:#06x}"),
    }
}

/// The codec direction of bytes sent by `side`.
pub fn direction(side: Side) -> Direction {
    match side {
        Side::Client => Direction::ClientToServer,
        Side::Server => Direction::ServerToClient,
    }
}

/// Cuts frames out of one direction of a stream.
#[derive(Debug)]
pub struct StreamDecoder {
    codec: Codec,
    dir: Direction,
    buf: Vec<u8>,
    /// Set once a header could not be framed; later bytes are not decoded.
    broken: Option<FrameError>,
}

impl StreamDecoder {
    /// A decoder for bytes sent by `side`.
    pub fn new(codec: Codec, side: Side) -> StreamDecoder {
        StreamDecoder {
            codec,
            dir: direction(side),
            buf: Vec::new(),
            broken: None,
        }
    }

    /// Adds bytes; returns the frames they complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let Some(error) = self.broken {
            if !data.is_empty() {
                frames.push(Frame {
                    command: None,
                    wire: data.to_vec(),
                    plain: Err(error),
                });
            }
            return frames;
        }
        self.buf.extend_from_slice(data);
        let mut used = 0;
        loop {
            let rest = &self.buf[used..];
            match self.codec.peek(self.dir, rest) {
                Ok(Some(h)) if rest.len() >= h.wire_len => {
                    let wire = rest[..h.wire_len].to_vec();
                    let mut work = wire.clone();
                    let plain = self
                        .codec
                        .open(&h, &mut work)
                        .map(|()| work[..h.data_len].to_vec());
                    frames.push(Frame {
                        command: Some(h.command),
                        wire,
                        plain,
                    });
                    used += h.wire_len;
                }
                Ok(_) => break,
                Err(error) => {
                    self.broken = Some(error);
                    frames.push(Frame {
                        command: None,
                        wire: rest.to_vec(),
                        plain: Err(error),
                    });
                    used = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..used);
        frames
    }

    /// Bytes held back waiting for the rest of a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// True once the framing was lost.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }
}

/// A frame with where it sits in the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Capture index of the delivery that completed the frame.
    pub index: u64,
    /// Its timestamp.
    pub ts: Duration,
    /// Who sent it.
    pub side: Side,
    /// The frame.
    pub frame: Frame,
}

/// Both directions of a connection, decoded, in capture order.
#[derive(Clone, Debug)]
pub struct DecodedConnection {
    /// Packets of both sides, in the order their last byte was delivered.
    pub packets: Vec<Packet>,
    /// Bytes of an incomplete last frame, per side (client, server).
    pub trailing: [usize; 2],
}

/// Decodes both sides of `conn`.
pub fn decode_connection(conn: &Connection, codec: Codec) -> DecodedConnection {
    let mut client = StreamDecoder::new(codec, Side::Client);
    let mut server = StreamDecoder::new(codec, Side::Server);
    let mut packets = Vec::new();
    for e in &conn.events {
        let EventKind::Data(data) = &e.kind else {
            continue;
        };
        let decoder = match e.side {
            Side::Client => &mut client,
            Side::Server => &mut server,
        };
        for frame in decoder.push(data) {
            packets.push(Packet {
                index: e.index,
                ts: e.ts,
                side: e.side,
                frame,
            });
        }
    }
    DecodedConnection {
        packets,
        trailing: [client.pending(), server.pending()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_service::protocol::{CodecKind, DialectId};

    fn sealed(codec: Codec, dir: Direction, plain: &[u8]) -> Vec<u8> {
        let mut p = plain.to_vec();
        codec.seal(dir, &mut p).expect("seal");
        p
    }

    #[test]
    fn frames_split_across_pushes_and_coalesced() {
        for kind in [CodecKind::Rose, CodecKind::Plain] {
            let codec = Codec::new(kind);
            let alive = [6, 0, 0, 5, 0, 0];
            let chat = [9, 0, 0x47, 5, 0, 0, b'h', b'i', 0];
            let mut wire = sealed(codec, Direction::ClientToServer, &alive);
            wire.extend(sealed(codec, Direction::ClientToServer, &chat));
            let mut d = StreamDecoder::new(codec, Side::Client);
            let first = d.push(&wire[..8]);
            assert_eq!(first.len(), 1);
            assert_eq!(first[0].plain.as_deref(), Ok(&alive[..]));
            assert_eq!(d.pending(), 2);
            let second = d.push(&wire[8..]);
            assert_eq!(second.len(), 1);
            assert_eq!(second[0].plain.as_deref(), Ok(&chat[..]));
            let dialect = DialectId::Osirose.dialect();
            assert_eq!(second[0].name(dialect, Side::Client), "PAKCS_NORMAL_CHAT");
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn checksum_failure_costs_one_frame() {
        let codec = Codec::new(CodecKind::Plain);
        let mut bad = sealed(codec, Direction::ClientToServer, &[6, 0, 0, 5, 0, 0]);
        bad[5] ^= 1;
        let good = sealed(codec, Direction::ClientToServer, &[6, 0, 4, 5, 0, 0]);
        let mut d = StreamDecoder::new(codec, Side::Client);
        let frames = d.push(&[bad, good].concat());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].plain, Err(FrameError::BadChecksum));
        assert_eq!(frames[0].command, Some(0x500));
        assert!(frames[1].plain.is_ok());
    }

    #[test]
    fn bad_size_loses_the_framing() {
        let codec = Codec::new(CodecKind::Plain);
        let mut d = StreamDecoder::new(codec, Side::Client);
        let frames = d.push(&[2, 0, 0, 5, 0, 0, 1, 2]);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].plain, Err(FrameError::BadSize(2)));
        assert!(d.is_broken());
        assert_eq!(d.push(&[1, 2, 3])[0].wire, vec![1, 2, 3]);
    }

    #[test]
    fn stress_echo_is_named_in_both_directions() {
        let d = DialectId::Osirose.dialect();
        assert_eq!(packet_name(d, Side::Server, STRESS_ID), "STRESS");
        assert_eq!(packet_name(d, Side::Server, 0x7ff), "0x07ff");
    }
}
