//! Property tests of the two wire codecs and of the connection state machine
//! (docs/architecture.md §13.12). The codec properties are the ones the `frame_*` fuzz
//! targets check, run here on every `make test`; the state-machine property
//! drives a session with random input sequences through the shared
//! invariant checker (`conn::check`), as the `session` fuzz target does.

use proptest::collection::vec;
use proptest::prelude::*;

use packet_service::conn::check::{Harness, Op};
use packet_service::conn::wire::{FirstPacket, PacketIds};
use packet_service::protocol::codec::{
    Codec, CodecKind, PreparedSeeds, RoseParams, RoseTables, Seed,
};
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::{Direction, FrameError, HEADER_LEN, MAX_PACKET_SIZE};

/// rose-offline's seeds, prepared once per process.
fn prepared() -> &'static PreparedSeeds {
    static SEEDS: std::sync::OnceLock<PreparedSeeds> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let seeds = [0x1234_5678, 0x8765_4321].map(|s| Seed::new(s).expect("non-zero"));
        PreparedSeeds::build(&seeds).expect("two seeds")
    })
}

/// An irose codec: the default tables (0) or a prepared seed's.
fn irose_codec(which: usize) -> Codec {
    let tables: Vec<&'static RoseTables> = std::iter::once(RoseTables::default_tables())
        .chain(prepared().iter().map(|(_, t)| t))
        .collect();
    Codec::irose(tables[which % tables.len()])
}

const MAX_BODY: usize = MAX_PACKET_SIZE - HEADER_LEN;

fn codec(rose: bool) -> Codec {
    Codec::new(if rose {
        CodecKind::Rose
    } else {
        CodecKind::Plain
    })
}

fn dir(c2s: bool) -> Direction {
    if c2s {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

/// One frame to encode: the plaintext packet and the padding the `rose`
/// cipher declares (its bytes follow the packet on the wire).
#[derive(Debug, Clone)]
struct Frame {
    command: u16,
    body: Vec<u8>,
    params: RoseParams,
}

impl Frame {
    /// The plaintext packet the receiver must get back.
    fn plain(&self) -> Vec<u8> {
        let size = (HEADER_LEN + self.body.len()) as u16;
        let mut p = Vec::with_capacity(size as usize);
        p.extend_from_slice(&size.to_le_bytes());
        p.extend_from_slice(&self.command.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&self.body);
        p
    }

    /// The frame on the wire.
    fn seal(&self, codec: Codec, dir: Direction) -> Vec<u8> {
        let mut wire = self.plain();
        let params = if codec.kind() == CodecKind::Rose {
            wire.resize(wire.len() + usize::from(self.params.ev), 0xA5);
            self.params
        } else {
            RoseParams::DEFAULT
        };
        codec.seal_with(dir, &mut wire, params).expect("seals");
        wire
    }
}

fn frame(rose: bool) -> impl Strategy<Value = Frame> {
    let command = if rose { 0u16..=0x7FF } else { 0u16..=u16::MAX };
    (
        command,
        0usize..=MAX_BODY,
        any::<u8>(),
        0u16..0x800,
        0u8..16,
        0u8..8,
    )
        .prop_flat_map(move |(command, len, fill, atv, eav, ev)| {
            // Padding only exists in `rose` and must fit the size field.
            let ev = if rose {
                ev.min((MAX_BODY - len.min(MAX_BODY)) as u8)
            } else {
                0
            };
            let len = len.min(MAX_BODY - usize::from(ev));
            // Long bodies are mostly one byte repeated (cheap); short ones random.
            let body = if len > 64 {
                Just(vec![fill; len]).boxed()
            } else {
                vec(any::<u8>(), len).boxed()
            };
            body.prop_map(move |body| Frame {
                command,
                body,
                params: RoseParams { atv, eav, ev },
            })
        })
}

fn codec_and_frame() -> impl Strategy<Value = (bool, bool, Frame)> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(rose, c2s)| (Just(rose), Just(c2s), frame(rose)))
}

/// A connection's first irose packet, to be sealed under one of the three
/// tables (the login table: 0x703, empty; a seeded one: 0x70B, 42 bytes)
/// with any atv, eav and padding; its codec and frame.
fn first_irose_frame() -> impl Strategy<Value = (Codec, Frame)> {
    (0usize..3, 0u16..0x800, 0u8..16, 0u8..8).prop_map(|(which, atv, eav, ev)| {
        let (command, len) = if which == 0 { (0x703, 0) } else { (0x70B, 36) };
        let f = Frame {
            command,
            body: vec![0x33; len],
            params: RoseParams { atv, eav, ev },
        };
        (irose_codec(which), f)
    })
}

/// Up to three byte changes: (where, the new byte).
fn mutations() -> impl Strategy<Value = Vec<(prop::sample::Index, u8)>> {
    vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)
}

/// Applies `changes` to `bytes`, then cuts them at `cut` (a strict prefix).
fn mutate(
    bytes: &mut Vec<u8>,
    changes: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) {
    if bytes.is_empty() {
        return;
    }
    for (at, byte) in changes {
        let i = at.index(bytes.len());
        bytes[i] = *byte;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len()));
    }
}

/// The first-packet property: decoding `bytes` never panics, and when it
/// decides a wire, that wire's codec alone decodes them to the same
/// packet. Whether it decided.
fn first_bytes_decide_consistently(auto: bool, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let ids = if auto {
        PacketIds::Auto
    } else {
        PacketIds::One(DialectId::Irose)
    };
    let first = FirstPacket::new(ids, CodecKind::Rose, prepared());
    let mut buf = bytes.to_vec();
    let Ok(Some((wire, h))) = first.decode(&mut buf) else {
        return Ok(false);
    };
    let mut again = bytes.to_vec();
    let alone = wire.codec.decode(Direction::ClientToServer, &mut again);
    prop_assert_eq!(alone, Ok(Some(h)));
    prop_assert_eq!(&again[..h.data_len], &buf[..h.data_len]);
    Ok(true)
}

/// The PROXY-header property: parsing `bytes` never panics, a parsed
/// header claims at least one and at most the given bytes, and no strict
/// prefix of it parses. Whether it parsed.
fn proxy_header_parses_within_its_bytes(bytes: &[u8]) -> Result<bool, TestCaseError> {
    use packet_service::conn::proxy::{parse, ProxyHeader};
    let ProxyHeader::Parsed { len, .. } = parse(bytes) else {
        return Ok(false);
    };
    prop_assert!(len <= bytes.len(), "{} of {}", len, bytes.len());
    prop_assert!(len > 0);
    for cut in 0..len {
        prop_assert!(
            !matches!(parse(&bytes[..cut]), ProxyHeader::Parsed { .. }),
            "a {}-byte prefix of a {}-byte header parsed",
            cut,
            len
        );
    }
    Ok(true)
}

/// A PROXY header as a balancer builds it: version 1 (TCP4, TCP6 or
/// UNKNOWN) or version 2 (IPv4 or IPv6).
fn built_proxy_header() -> impl Strategy<Value = Vec<u8>> {
    use std::net::{IpAddr, SocketAddr};
    (0u8..5, any::<[u8; 4]>(), any::<[u16; 8]>(), 1u16.., 1u16..).prop_map(
        |(kind, v4, v6, sport, dport)| {
            let (src, dst): (IpAddr, IpAddr) = if kind % 2 == 0 {
                (v4.into(), [127, 0, 0, 1].into())
            } else {
                (v6.into(), std::net::Ipv6Addr::LOCALHOST.into())
            };
            match kind {
                0 => format!("PROXY TCP4 {src} {dst} {sport} {dport}\r\n").into_bytes(),
                1 => format!("PROXY TCP6 {src} {dst} {sport} {dport}\r\n").into_bytes(),
                2 => b"PROXY UNKNOWN\r\n".to_vec(),
                _ => ppp::v2::Builder::with_addresses(
                    ppp::v2::Version::Two | ppp::v2::Command::Proxy,
                    ppp::v2::Protocol::Stream,
                    (SocketAddr::new(src, sport), SocketAddr::new(dst, dport)),
                )
                .build()
                .expect("builds"),
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// seal → decode gives back the plaintext packet, in place, and no
    /// strict prefix of the frame decodes to anything but "need more".
    #[test]
    fn seal_then_decode_round_trips((rose, c2s, f) in codec_and_frame()) {
        let (codec, dir) = (codec(rose), dir(c2s));
        let wire = f.seal(codec, dir);
        let mut buf = wire.clone();
        let h = codec.decode(dir, &mut buf).expect("valid").expect("whole");
        prop_assert_eq!(h.wire_len, wire.len());
        prop_assert!(h.data_len <= buf.len(), "decoded beyond the input");
        prop_assert_eq!(&buf[..h.data_len], &f.plain()[..]);
        prop_assert_eq!(h.command, f.command);
        for cut in [0, 1, 5, 6, 7, wire.len() / 2, wire.len() - 1] {
            if cut < wire.len() {
                let mut part = wire[..cut].to_vec();
                prop_assert_eq!(codec.decode(dir, &mut part), Ok(None), "prefix {}", cut);
            }
        }
    }

    /// Every strict prefix, exhaustively, for short frames.
    #[test]
    fn every_strict_prefix_needs_more(rose: bool, c2s: bool, body in vec(any::<u8>(), 0..48)) {
        let (codec, dir) = (codec(rose), dir(c2s));
        let f = Frame { command: 0x547, body, params: RoseParams::DEFAULT };
        let wire = f.seal(codec, dir);
        for cut in 0..wire.len() {
            let mut part = wire[..cut].to_vec();
            prop_assert_eq!(codec.decode(dir, &mut part), Ok(None), "prefix {}", cut);
        }
    }

    /// Arbitrary bytes never panic; a header never claims a length outside
    /// 6..=2047; a decoded packet never extends past the input.
    #[test]
    fn arbitrary_bytes_are_refused_or_framed(rose: bool, c2s: bool, bytes in vec(any::<u8>(), 0..64)) {
        let (codec, dir) = (codec(rose), dir(c2s));
        match codec.peek(dir, &bytes) {
            Ok(Some(h)) => {
                prop_assert!((HEADER_LEN..=MAX_PACKET_SIZE).contains(&h.wire_len));
                prop_assert!(HEADER_LEN <= h.data_len && h.data_len <= h.wire_len);
            }
            Ok(None) => prop_assert!(bytes.len() < HEADER_LEN),
            Err(FrameError::BadSize(n)) => prop_assert!(!(HEADER_LEN..=MAX_PACKET_SIZE).contains(&n)),
            Err(_) => {}
        }
        let mut buf = bytes.clone();
        if let Ok(Some(h)) = codec.decode(dir, &mut buf) {
            prop_assert!(h.wire_len <= bytes.len() && h.data_len <= h.wire_len);
            let size = usize::from(u16::from_le_bytes([buf[0], buf[1]]));
            prop_assert_eq!(size, h.data_len);
        }
    }

    /// N valid frames back to back, delivered in random pieces, decode to
    /// exactly those frames, as the reactor's buffer sees them.
    #[test]
    fn split_stream_decodes_to_the_frames(
        (rose, frames) in any::<bool>().prop_flat_map(|rose| (Just(rose), vec(frame(rose), 1..6))),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (codec, dir) = (codec(rose), Direction::ClientToServer);
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.seal(codec, dir)).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buf: Vec<u8> = Vec::new();
        let mut got = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[from..cut]);
            from = cut;
            while let Some(h) = codec.decode(dir, &mut buf).expect("valid stream") {
                got.push(buf[..h.data_len].to_vec());
                buf.drain(..h.wire_len);
            }
        }
        prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
        let want: Vec<Vec<u8>> = frames.iter().map(Frame::plain).collect();
        prop_assert_eq!(got, want);
    }

    /// The state machine keeps its invariants whatever the reactor feeds
    /// it, for a client of every dialect.
    #[test]
    fn session_keeps_its_invariants(
        rate in prop_oneof![Just(0u32), Just(10u32)],
        ops in vec((any::<u8>(), any::<u32>(), any::<u32>(), vec(any::<u8>(), 0..40)), 0..80),
        long_name in any::<bool>(),
        dialect in prop::sample::select(DialectId::ALL.to_vec()),
    ) {
        let mut h = Harness::with_dialect(std::time::Instant::now(), rate, dialect);
        for (i, (choice, a, b, bytes)) in ops.iter().enumerate() {
            // Now and then a frame-sized body (names, chat text).
            let bytes = if long_name && i % 7 == 3 { vec![b'n'; 2100] } else { bytes.clone() };
            let op = Op::from_raw_in(dialect.family(), *choice, *a, *b, &bytes);
            if let Err(e) = h.apply(&op) {
                return Err(TestCaseError::fail(format!("step {i} {op:?}: {e}")));
            }
        }
        if let Err(e) = h.close() {
            return Err(TestCaseError::fail(format!("on_close: {e}")));
        }
    }

    /// The irose encoder on every prepared table set: seal → decode gives
    /// the packet back, whatever atv, eav and padding.
    #[test]
    fn irose_frames_round_trip(which in 0usize..3, c2s: bool, f in frame(true)) {
        let (codec, dir) = (irose_codec(which), dir(c2s));
        let wire = f.seal(codec, dir);
        let mut buf = wire.clone();
        let h = codec.decode(dir, &mut buf).expect("valid").expect("whole");
        prop_assert_eq!(h.wire_len, wire.len());
        prop_assert_eq!(&buf[..h.data_len], &f.plain()[..]);
    }

    /// A connection's first packet, sealed under one table with any atv,
    /// eav and padding and delivered in two pieces, picks that table (and
    /// the irose dialect) under `irose` and `auto`; no prefix is refused.
    #[test]
    fn a_first_packet_picks_its_table(
        (codec, f) in first_irose_frame(),
        auto: bool,
        cut in 0usize..64,
    ) {
        let ids = if auto { PacketIds::Auto } else { PacketIds::One(DialectId::Irose) };
        let first = FirstPacket::new(ids, CodecKind::Rose, prepared());
        let wire = f.seal(codec, Direction::ClientToServer);
        let cut = cut.min(wire.len() - 1);
        prop_assert_eq!(first.decode(&mut wire[..cut].to_vec()), Ok(None), "prefix {}", cut);
        let mut buf = wire.clone();
        let (wire_of, h) = first.decode(&mut buf).expect("fits").expect("whole");
        prop_assert_eq!(wire_of.codec, codec);
        prop_assert_eq!(wire_of.dialect, DialectId::Irose);
        prop_assert_eq!(&buf[..h.data_len], &f.plain()[..]);
    }

    /// Arbitrary first bytes never panic; when they decide a wire, that
    /// wire's codec alone decodes them to the same packet.
    #[test]
    fn arbitrary_first_bytes_decide_consistently(auto: bool, bytes in vec(any::<u8>(), 0..64)) {
        first_bytes_decide_consistently(auto, &bytes)?;
    }

    /// The same over first packets that are valid but for a few bytes
    /// changed (or none) and perhaps a cut: they reach the decision that
    /// random bytes rarely do. An unchanged, uncut packet always decides.
    #[test]
    fn mutated_first_packets_decide_consistently(
        (codec, f) in first_irose_frame(),
        auto: bool,
        changes in mutations(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut wire = f.seal(codec, Direction::ClientToServer);
        let intact = changes.is_empty() && cut.is_none();
        mutate(&mut wire, &changes, cut);
        let decided = first_bytes_decide_consistently(auto, &wire)?;
        prop_assert!(decided || !intact, "an intact first packet did not decide");
    }

    /// A PROXY header from a trusted balancer is peer bytes all the same:
    /// whatever follows either signature, parsing never panics, a parsed
    /// header never claims more bytes than it was given, and a prefix of a
    /// parsed header is incomplete or invalid, never another header.
    #[test]
    fn arbitrary_proxy_headers_parse_within_their_bytes(
        prefix in 0usize..3,
        rest in vec(any::<u8>(), 0..300),
    ) {
        let signature: &[u8] = match prefix {
            0 => b"\r\n\r\n\0\r\nQUIT\n",
            1 => b"PROXY ",
            _ => b"",
        };
        let mut bytes = signature.to_vec();
        bytes.extend_from_slice(&rest);
        proxy_header_parses_within_its_bytes(&bytes)?;
    }

    /// The same over headers balancers build (version 1 TCP4, TCP6 and
    /// UNKNOWN, version 2) with a few bytes changed (or none), perhaps cut,
    /// and followed by the first client bytes: most reach the parsed case
    /// that random bytes rarely do. An unchanged, uncut header always parses.
    #[test]
    fn mutated_proxy_headers_parse_within_their_bytes(
        header in built_proxy_header(),
        changes in mutations(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        trailing in vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = header;
        let intact = changes.is_empty() && cut.is_none();
        mutate(&mut bytes, &changes, cut);
        bytes.extend_from_slice(&trailing);
        let parsed = proxy_header_parses_within_its_bytes(&bytes)?;
        prop_assert!(parsed || !intact, "an intact header did not parse");
    }

    /// Version 2 headers as balancers build them, with arbitrary TLV bytes
    /// after the addresses: parsed to the source they name, whole.
    #[test]
    fn built_proxy_v2_headers_parse_to_their_source(
        port in 1u16..,
        ip in any::<[u8; 4]>(),
        tlvs in vec(any::<u8>(), 0..64),
        trailing in vec(any::<u8>(), 0..32),
    ) {
        use packet_service::conn::proxy::{parse, ProxyHeader};
        let src = std::net::SocketAddr::from((ip, port));
        let dst = std::net::SocketAddr::from(([127, 0, 0, 1], 29000));
        let mut header = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (src, dst),
        )
        .build()
        .expect("builds");
        // Unparsed TLV bytes extend the declared length.
        let declared = u16::from_be_bytes([header[14], header[15]]) as usize + tlvs.len();
        header[14..16].copy_from_slice(&(declared as u16).to_be_bytes());
        header.extend_from_slice(&tlvs);
        let len = header.len();
        header.extend_from_slice(&trailing);
        match parse(&header) {
            ProxyHeader::Parsed { len: parsed, source } => {
                prop_assert_eq!(parsed, len);
                prop_assert_eq!(source, Some(src));
            }
            // TLV bytes that are not well-formed TLVs may be refused.
            ProxyHeader::Invalid => prop_assert!(!tlvs.is_empty(), "a plain header refused"),
            ProxyHeader::Incomplete => prop_assert!(false, "whole header incomplete"),
        }
    }
}
