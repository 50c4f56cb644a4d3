//! The framing checks shared by `frame_rose`, `frame_plain` and `frame_seeded`.
//!
//! The input is cut in two at a point chosen by its first two bytes and fed
//! to a receive buffer the way the reactor fills one: after each piece,
//! `peek` then `open` every whole frame, consume it, keep the rest. Checked:
//! a header never claims a length outside 6..=2047; `open` gets exactly the
//! frame's bytes (it cannot read past them); a decoded packet has a clean
//! header and sealing it again decodes to the same plaintext; and the split
//! feed yields exactly what decoding the whole input at once yields.

use packet_service::protocol::codec::{Codec, RoseParams};
use packet_service::protocol::{Direction, FrameError, HEADER_LEN, MAX_PACKET_SIZE};

/// What a receive buffer produced: the plaintext packets, then how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    packets: Vec<Vec<u8>>,
    /// The frame error that would close the connection.
    error: Option<FrameError>,
    /// Bytes still buffered when the input ran out (0 after an error).
    left: usize,
}

fn receive(codec: Codec, dir: Direction, pieces: &[&[u8]], params: RoseParams) -> Outcome {
    let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_PACKET_SIZE);
    let mut packets = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let header = match codec.peek(dir, &buf) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    assert!(buf.len() < HEADER_LEN, "a whole header needs more bytes");
                    break;
                }
                Err(error) => {
                    if let FrameError::BadSize(n) = error {
                        assert!(!(HEADER_LEN..=MAX_PACKET_SIZE).contains(&n));
                    }
                    return Outcome {
                        packets,
                        error: Some(error),
                        left: 0,
                    };
                }
            };
            assert!((HEADER_LEN..=MAX_PACKET_SIZE).contains(&header.wire_len));
            assert!(HEADER_LEN <= header.data_len && header.data_len <= header.wire_len);
            if buf.len() < header.wire_len {
                break;
            }
            // Exactly the frame: open cannot look past it.
            if let Err(error) = codec.open(&header, &mut buf[..header.wire_len]) {
                return Outcome {
                    packets,
                    error: Some(error),
                    left: 0,
                };
            }
            let plain = buf[..header.data_len].to_vec();
            let size = usize::from(u16::from_le_bytes([plain[0], plain[1]]));
            assert_eq!(size, header.data_len, "clean size field");
            assert_eq!(u16::from_le_bytes([plain[2], plain[3]]), header.command);
            assert_eq!(&plain[4..6], &[0, 0], "clean bytes 4-5");
            reseal(codec, dir, &plain, params);
            packets.push(plain);
            buf.drain(..header.wire_len);
        }
    }
    Outcome {
        packets,
        error: None,
        left: buf.len(),
    }
}

/// Sealing a decoded packet again and decoding it gives the same plaintext.
fn reseal(codec: Codec, dir: Direction, plain: &[u8], params: RoseParams) {
    let params = RoseParams { ev: 0, ..params };
    let mut wire = plain.to_vec();
    codec
        .seal_with(dir, &mut wire, params)
        .expect("a decoded packet seals again");
    let h = codec
        .decode(dir, &mut wire)
        .expect("a sealed packet decodes")
        .expect("a sealed packet is whole");
    assert_eq!(h.wire_len, plain.len());
    assert_eq!(&wire[..h.data_len], plain);
}

pub fn check(codec: Codec, data: &[u8]) {
    let Some((&[a, b], input)) = data.split_first_chunk::<2>().map(|(h, r)| (h, r)) else {
        return;
    };
    let dir = if a & 1 == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    let split = usize::from(u16::from_le_bytes([a, b]) >> 1) % (input.len() + 1);
    let params = RoseParams {
        atv: u16::from_le_bytes([b, a]) & 0x7FF,
        eav: b >> 4,
        ev: 0,
    };
    let whole = receive(codec, dir, &[input], params);
    let split = receive(codec, dir, &[&input[..split], &input[split..]], params);
    assert_eq!(whole, split, "incremental decoding differs");
    // decode (peek + open in one call) agrees on the first frame.
    let mut copy = input.to_vec();
    match codec.decode(dir, &mut copy) {
        Ok(Some(h)) => assert_eq!(
            whole.packets.first().map(Vec::as_slice),
            Some(&copy[..h.data_len])
        ),
        Ok(None) => assert!(whole.packets.is_empty() && whole.error.is_none()),
        Err(e) => assert!(whole.packets.is_empty() && whole.error == Some(e)),
    }
}
