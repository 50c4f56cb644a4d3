//! Capture files and link layers: pcap (µs and ns) and pcapng, sniffed by
//! their first four bytes, turned into a list of TCP segments.
//!
//! Link types handled (what tcpdump and tshark write): Ethernet (EN10MB, what `tcpdump -i
//! lo` writes), Linux cooked v1 (`LINUX_SLL`, parsed by hand because
//! etherparse refuses the loopback ARPHRD 772 that `-i any` records), Linux
//! cooked v2 (`LINUX_SLL2`, 20-byte header, hand-parsed), BSD loopback `NULL`
//! (4-byte address family in the capturing host's byte order) and `LOOP`
//! (same in network order), and raw IP. Network layers: IPv4 and IPv6.
//!
//! Frames that are not TCP, are IP fragments or do not parse are counted in
//! [`CaptureStats`] and skipped; they never abort the read.

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness};

/// The first four bytes of every pcapng file (a Section Header Block).
pub const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// Why a capture could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The capture path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is neither pcap nor pcapng, or is damaged.
    #[error("not a readable pcap/pcapng capture: {0}")]
    Format(#[from] pcap_file::PcapError),
    /// A pcapng packet names an interface that was never described.
    #[error("pcapng packet refers to undeclared interface {0}")]
    UnknownInterface(u32),
}

/// The link layers this reader understands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB.
    Ethernet,
    /// DLT_LINUX_SLL: 16-byte cooked header, protocol in bytes 14..16.
    LinuxSll,
    /// DLT_LINUX_SLL2: 20-byte cooked header, protocol in bytes 0..2.
    LinuxSll2,
    /// DLT_NULL: 4-byte address family in the capturing host's byte order.
    Null,
    /// DLT_LOOP: 4-byte address family in network byte order.
    Loop,
    /// DLT_RAW / LINKTYPE_IPV4 / LINKTYPE_IPV6: the frame is an IP packet.
    RawIp,
}

impl LinkType {
    /// Maps a capture's link type; `None` for link types not handled.
    pub fn from_datalink(link: DataLink) -> Option<LinkType> {
        Some(match link {
            DataLink::ETHERNET => LinkType::Ethernet,
            DataLink::LINUX_SLL => LinkType::LinuxSll,
            DataLink::LINUX_SLL2 => LinkType::LinuxSll2,
            DataLink::NULL => LinkType::Null,
            DataLink::LOOP => LinkType::Loop,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LinkType::RawIp,
            _ => return None,
        })
    }
}

/// One captured TCP segment, in capture order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    /// Position in the capture (0-based, counting every frame): a total order
    /// for frames that share a timestamp.
    pub index: u64,
    /// Capture timestamp (since the Unix epoch).
    pub ts: Duration,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// TCP payload.
    pub payload: Vec<u8>,
}

/// What the reader saw besides TCP segments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames read.
    pub frames: u64,
    /// TCP segments produced.
    pub tcp: u64,
    /// Frames that are not TCP over IP (ARP, UDP, other families).
    pub not_tcp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Frames whose headers did not parse (truncated by snaplen, damaged).
    pub malformed: u64,
    /// Frames on a link type this reader does not handle.
    pub unsupported_link: u64,
}

/// A capture read into memory.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    /// TCP segments, in capture order.
    pub segments: Vec<TcpSegment>,
    /// Counters.
    pub stats: CaptureStats,
}

/// Reads a pcap or pcapng file.
pub fn read_file(path: &Path) -> Result<Capture, CaptureError> {
    let file = File::open(path).map_err(|source| CaptureError::Io {
        path: path.display().to_string(),
        source,
    })?;
    read(BufReader::new(file)).map_err(|e| match e {
        CaptureError::Io { source, .. } => CaptureError::Io {
            path: path.display().to_string(),
            source,
        },
        other => other,
    })
}

/// Reads a pcap or pcapng stream; the format is chosen by the first bytes.
pub fn read<R: Read>(mut reader: R) -> Result<Capture, CaptureError> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|source| CaptureError::Io {
            path: String::new(),
            source,
        })?;
    let chained = std::io::Cursor::new(magic).chain(reader);
    let mut capture = Capture::default();
    if magic == PCAPNG_MAGIC {
        read_pcapng(chained, &mut capture)?;
    } else {
        read_pcap(chained, &mut capture)?;
    }
    Ok(capture)
}

fn read_pcap<R: Read>(reader: R, capture: &mut Capture) -> Result<(), CaptureError> {
    let mut pcap = PcapReader::new(reader)?;
    let header = pcap.header();
    let link = LinkType::from_datalink(header.datalink);
    while let Some(packet) = pcap.next_packet() {
        let packet = packet?;
        push_frame(
            capture,
            link,
            header.endianness,
            packet.timestamp,
            &packet.data,
        );
    }
    Ok(())
}

/// One pcapng interface: its link type and timestamp unit.
struct Interface {
    link: Option<LinkType>,
    /// Nanoseconds per timestamp unit, as a ratio (numerator, denominator).
    unit: (u128, u128),
}

fn read_pcapng<R: Read>(reader: R, capture: &mut Capture) -> Result<(), CaptureError> {
    let mut pcapng = PcapNgReader::new(reader)?;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut endianness = pcapng.section().endianness;
    let mut last_ts = Duration::ZERO;
    while let Some(block) = pcapng.next_block() {
        match block? {
            Block::SectionHeader(section) => {
                interfaces.clear();
                endianness = section.endianness;
            }
            Block::InterfaceDescription(idb) => {
                let resol = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                    _ => None,
                });
                interfaces.push(Interface {
                    link: LinkType::from_datalink(idb.linktype),
                    unit: ts_unit(resol.unwrap_or(6)),
                });
            }
            Block::EnhancedPacket(epb) => {
                let iface = interfaces
                    .get(epb.interface_id as usize)
                    .ok_or(CaptureError::UnknownInterface(epb.interface_id))?;
                // pcap-file stores the raw 64-bit count as nanoseconds.
                let raw = epb.timestamp.as_nanos();
                let ts = scale_ts(raw, iface.unit);
                last_ts = ts;
                let link = iface.link;
                push_frame(capture, link, endianness, ts, &epb.data);
            }
            Block::Packet(pb) => {
                let id = u32::from(pb.interface_id);
                let iface = interfaces
                    .get(pb.interface_id as usize)
                    .ok_or(CaptureError::UnknownInterface(id))?;
                let ts = scale_ts(u128::from(pb.timestamp), iface.unit);
                last_ts = ts;
                let link = iface.link;
                push_frame(capture, link, endianness, ts, &pb.data);
            }
            Block::SimplePacket(spb) => {
                // No timestamp: take the previous one. Always interface 0.
                let iface = interfaces
                    .first()
                    .ok_or(CaptureError::UnknownInterface(0))?;
                let link = iface.link;
                push_frame(capture, link, endianness, last_ts, &spb.data);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Nanoseconds per unit of `if_tsresol` as a ratio.
fn ts_unit(resol: u8) -> (u128, u128) {
    let exp = u32::from(resol & 0x7F);
    if resol & 0x80 == 0 {
        // 10^-exp seconds.
        if exp <= 9 {
            (10u128.pow(9 - exp), 1)
        } else {
            (1, 10u128.pow(exp.min(30) - 9))
        }
    } else {
        // 2^-exp seconds.
        (1_000_000_000, 1u128 << exp.min(100))
    }
}

fn scale_ts(raw: u128, (num, den): (u128, u128)) -> Duration {
    let nanos = raw.saturating_mul(num) / den;
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// Address families seen in NULL/LOOP headers: Linux, BSD, Darwin, Windows.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Slices one frame and appends its TCP segment, counting what is skipped.
fn push_frame(
    capture: &mut Capture,
    link: Option<LinkType>,
    endianness: Endianness,
    ts: Duration,
    data: &[u8],
) {
    let index = capture.stats.frames;
    capture.stats.frames += 1;
    let Some(link) = link else {
        capture.stats.unsupported_link += 1;
        return;
    };
    let sliced = match slice_link(link, endianness, data) {
        Ok(Some(s)) => s,
        Ok(None) => {
            capture.stats.not_tcp += 1;
            return;
        }
        Err(()) => {
            capture.stats.malformed += 1;
            return;
        }
    };
    let (src_ip, dst_ip, fragmented): (IpAddr, IpAddr, bool) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload().fragmented,
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload().fragmented,
        ),
        _ => {
            capture.stats.not_tcp += 1;
            return;
        }
    };
    if fragmented {
        capture.stats.fragments += 1;
        return;
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        capture.stats.not_tcp += 1;
        return;
    };
    capture.stats.tcp += 1;
    capture.segments.push(TcpSegment {
        index,
        ts,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload().to_vec(),
    });
}

/// Slices an IP packet announced by an EtherType; `Ok(None)` for non-IP.
fn by_ether_type(ether_type: u16, rest: &[u8]) -> Result<Option<SlicedPacket<'_>>, ()> {
    match EtherType(ether_type) {
        EtherType::IPV4 | EtherType::IPV6 => {
            SlicedPacket::from_ether_type(EtherType(ether_type), rest)
                .map(Some)
                .map_err(|_| ())
        }
        _ => Ok(None),
    }
}

/// `Ok(None)`: a well-formed frame that carries no IP.
fn slice_link(
    link: LinkType,
    endianness: Endianness,
    data: &[u8],
) -> Result<Option<SlicedPacket<'_>>, ()> {
    match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(data).map(Some).map_err(|_| ()),
        LinkType::LinuxSll => {
            // packet type u16, ARPHRD u16, addr len u16, addr [8], protocol u16.
            let proto = data.get(14..16).ok_or(())?;
            by_ether_type(u16::from_be_bytes([proto[0], proto[1]]), &data[16..])
        }
        LinkType::LinuxSll2 => {
            // protocol u16, reserved u16, ifindex u32, ARPHRD u16, packet
            // type u8, addr len u8, addr [8].
            let proto = data.get(0..2).ok_or(())?;
            let rest = data.get(20..).ok_or(())?;
            by_ether_type(u16::from_be_bytes([proto[0], proto[1]]), rest)
        }
        LinkType::Null | LinkType::Loop => {
            let af = data.get(0..4).ok_or(())?;
            let af = [af[0], af[1], af[2], af[3]];
            let family = match (link, endianness) {
                (LinkType::Loop, _) | (_, Endianness::Big) => u32::from_be_bytes(af),
                _ => u32::from_le_bytes(af),
            };
            // A capture moved between hosts may carry the other byte order.
            let swapped = family.swap_bytes();
            let is_ip = |f: u32| f == AF_INET || AF_INET6.contains(&f);
            if is_ip(family) || is_ip(swapped) {
                SlicedPacket::from_ip(&data[4..]).map(Some).map_err(|_| ())
            } else {
                Ok(None)
            }
        }
        LinkType::RawIp => SlicedPacket::from_ip(data).map(Some).map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::{reassemble, Side};
    use crate::synth::{CaptureBuilder, Conversation};
    use pcap_file::TsResolution;

    /// A small two-way conversation: handshake, two requests, one reply, FIN.
    fn conversation(client: &str, server: &str) -> CaptureBuilder {
        let mut cap = CaptureBuilder::new();
        let mut conv = Conversation::new(
            client.parse().expect("addr"),
            server.parse().expect("addr"),
            4_000_000_000,
            77,
        );
        let t = |ms: u64| Duration::new(1_700_000_000, 0) + Duration::from_micros(ms * 1000 + 7);
        conv.handshake(&mut cap, t(0)).expect("syn");
        conv.send(&mut cap, t(1), Side::Client, b"request one")
            .expect("send");
        conv.send(&mut cap, t(2), Side::Server, b"reply")
            .expect("send");
        conv.send(&mut cap, t(3), Side::Client, b"request two")
            .expect("send");
        conv.close(&mut cap, t(4), Side::Client).expect("fin");
        cap
    }

    fn check(capture: &Capture, server_port: u16) {
        assert_eq!(capture.stats.malformed, 0, "{:?}", capture.stats);
        assert_eq!(capture.stats.tcp, 7);
        let conns = reassemble(&capture.segments, server_port);
        assert_eq!(conns.len(), 1);
        assert!(!conns[0].mid_stream);
        assert_eq!(conns[0].stream(Side::Client), b"request onerequest two");
        assert_eq!(conns[0].stream(Side::Server), b"reply");
        assert_eq!(
            conns[0].start,
            Duration::new(1_700_000_000, 7_000),
            "timestamp survives the round trip"
        );
    }

    fn pcap(link: LinkType, client: &str, server: &str) -> Capture {
        let bytes = conversation(client, server)
            .write_pcap(Vec::new(), link, TsResolution::MicroSecond)
            .expect("write");
        read(&bytes[..]).expect("read")
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        check(
            &pcap(LinkType::Ethernet, "127.0.0.1:50000", "127.0.0.1:29000"),
            29000,
        );
        check(
            &pcap(LinkType::Ethernet, "[::1]:50000", "[::1]:29000"),
            29000,
        );
    }

    #[test]
    fn linux_cooked_v1_on_loopback() {
        // ARPHRD 772: etherparse's own SLL parser refuses these.
        let bytes = conversation("127.0.0.1:50000", "127.0.0.1:29000")
            .write_pcap(Vec::new(), LinkType::LinuxSll, TsResolution::MicroSecond)
            .expect("write");
        let data = &bytes[24 + 16..];
        assert!(SlicedPacket::from_linux_sll(data).is_err());
        check(&read(&bytes[..]).expect("read"), 29000);
        check(
            &pcap(LinkType::LinuxSll, "[::1]:50000", "[::1]:29000"),
            29000,
        );
    }

    #[test]
    fn linux_cooked_v2() {
        check(
            &pcap(LinkType::LinuxSll2, "127.0.0.1:50000", "127.0.0.1:29000"),
            29000,
        );
        check(
            &pcap(LinkType::LinuxSll2, "[::1]:50000", "[::1]:29000"),
            29000,
        );
    }

    #[test]
    fn bsd_null_and_loop() {
        check(
            &pcap(LinkType::Null, "127.0.0.1:50000", "127.0.0.1:29000"),
            29000,
        );
        check(&pcap(LinkType::Null, "[::1]:50000", "[::1]:29000"), 29000);
        check(
            &pcap(LinkType::Loop, "127.0.0.1:50000", "127.0.0.1:29000"),
            29000,
        );
        check(&pcap(LinkType::Loop, "[::1]:50000", "[::1]:29000"), 29000);
    }

    #[test]
    fn raw_ip() {
        check(
            &pcap(LinkType::RawIp, "127.0.0.1:50000", "127.0.0.1:29000"),
            29000,
        );
    }

    #[test]
    fn nanosecond_pcap() {
        let bytes = conversation("127.0.0.1:50000", "127.0.0.1:29000")
            .write_pcap(Vec::new(), LinkType::Ethernet, TsResolution::NanoSecond)
            .expect("write");
        assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1], "ns magic");
        check(&read(&bytes[..]).expect("read"), 29000);
    }

    #[test]
    fn pcapng_is_sniffed_and_read() {
        for link in [LinkType::Ethernet, LinkType::LinuxSll] {
            let bytes = conversation("127.0.0.1:50000", "127.0.0.1:29000")
                .write_pcapng(Vec::new(), link)
                .expect("write");
            assert_eq!(&bytes[..4], &PCAPNG_MAGIC);
            check(&read(&bytes[..]).expect("read"), 29000);
        }
    }

    #[test]
    fn pcapng_timestamp_resolution() {
        assert_eq!(scale_ts(1_500_000, ts_unit(6)), Duration::from_millis(1500));
        assert_eq!(scale_ts(1_500, ts_unit(9)), Duration::from_nanos(1500));
        assert_eq!(scale_ts(3, ts_unit(0x81)), Duration::from_millis(1500));
    }

    #[test]
    fn garbage_is_a_format_error_and_other_traffic_is_counted() {
        assert!(matches!(
            read(&b"not a capture at all"[..]),
            Err(CaptureError::Format(_))
        ));
        assert!(matches!(read(&b"ab"[..]), Err(CaptureError::Io { .. })));
        let cap = conversation("127.0.0.1:50000", "127.0.0.1:29000");
        // A UDP datagram and a truncated frame in between.
        let udp = etherparse::PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64).udp(1, 2);
        let mut ip = Vec::new();
        udp.write(&mut ip, b"x").expect("udp");
        let bytes = cap
            .write_pcap(Vec::new(), LinkType::RawIp, TsResolution::MicroSecond)
            .expect("write");
        let mut capture = read(&bytes[..]).expect("read");
        check(&capture, 29000);
        let before = capture.stats.clone();
        push_frame(
            &mut capture,
            Some(LinkType::RawIp),
            Endianness::Little,
            Duration::ZERO,
            &ip,
        );
        push_frame(
            &mut capture,
            Some(LinkType::RawIp),
            Endianness::Little,
            Duration::ZERO,
            &ip[..10],
        );
        push_frame(&mut capture, None, Endianness::Little, Duration::ZERO, &ip);
        assert_eq!(capture.stats.not_tcp, before.not_tcp + 1);
        assert_eq!(capture.stats.malformed, before.malformed + 1);
        assert_eq!(capture.stats.unsupported_link, 1);
        assert_eq!(capture.stats.frames, before.frames + 3);
    }

    #[test]
    fn a_null_header_in_the_other_byte_order_is_accepted() {
        let bytes = conversation("127.0.0.1:50000", "127.0.0.1:29000")
            .write_pcap(Vec::new(), LinkType::Loop, TsResolution::MicroSecond)
            .expect("write");
        // Same frames declared as NULL in a little-endian file: AF is BE.
        let mut renamed = bytes.clone();
        renamed[20..24].copy_from_slice(&0u32.to_le_bytes());
        check(&read(&renamed[..]).expect("read"), 29000);
    }
}
