//! Synthetic captures for tests and fixtures: TCP conversations written as
//! pcap (µs or ns) or pcapng on any link type the reader handles, built with
//! etherparse's `PacketBuilder` and pcap-file's writers.

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::capture::LinkType;
use crate::reassembly::Side;

/// TCP flags of a synthetic segment.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// SYN.
    pub syn: bool,
    /// ACK (with the builder's running acknowledgment number).
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

impl Flags {
    /// Parses "S", "SA", "FA", "R", "A" (one letter per flag).
    pub fn parse(s: &str) -> Flags {
        Flags {
            syn: s.contains('S'),
            ack: s.contains('A'),
            fin: s.contains('F'),
            rst: s.contains('R'),
        }
    }
}

/// An IP/TCP frame before its link header.
#[derive(Clone, Debug)]
struct Frame {
    ts: Duration,
    is_v6: bool,
    ip: Vec<u8>,
}

/// A capture under construction.
#[derive(Clone, Debug, Default)]
pub struct CaptureBuilder {
    frames: Vec<Frame>,
}

/// Why a synthetic capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The two addresses are not of the same family.
    #[error("mixed address families")]
    MixedFamilies,
    /// etherparse refused to build the packet.
    #[error("building a packet: {0}")]
    Build(String),
    /// The writer failed.
    #[error("writing the capture: {0}")]
    Write(#[from] PcapError),
}

impl CaptureBuilder {
    /// An empty capture.
    pub fn new() -> CaptureBuilder {
        CaptureBuilder::default()
    }

    /// Adds one TCP segment (IPv4 or IPv6, chosen by the addresses).
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        ts: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: &[u8],
    ) -> Result<(), SynthError> {
        let (step, is_v6) = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                (PacketBuilder::ipv4(s.octets(), d.octets(), 64), false)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                (PacketBuilder::ipv6(s.octets(), d.octets(), 64), true)
            }
            _ => return Err(SynthError::MixedFamilies),
        };
        let mut tcp = step.tcp(src.port(), dst.port(), seq, 65_535);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.ack {
            tcp = tcp.ack(ack);
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        if flags.rst {
            tcp = tcp.rst();
        }
        if !payload.is_empty() {
            tcp = tcp.psh();
        }
        let mut ip = Vec::with_capacity(tcp.size(payload.len()));
        tcp.write(&mut ip, payload)
            .map_err(|e| SynthError::Build(e.to_string()))?;
        self.frames.push(Frame { ts, is_v6, ip });
        Ok(())
    }

    /// Number of frames so far.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame was added.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames with `link`'s header in front, in `endianness` where the
    /// link header has a host byte order (NULL).
    fn linked(&self, link: LinkType, endianness: Endianness) -> Vec<(Duration, Vec<u8>)> {
        self.frames
            .iter()
            .map(|f| {
                let ether_type: u16 = if f.is_v6 { 0x86DD } else { 0x0800 };
                let mut out = match link {
                    LinkType::Ethernet => {
                        let mut h = vec![0u8; 12];
                        h.extend(ether_type.to_be_bytes());
                        h
                    }
                    LinkType::LinuxSll => {
                        // Outgoing (4) on ARPHRD_LOOPBACK (772): etherparse
                        // rejects this, the reader must not.
                        let mut h = Vec::with_capacity(16);
                        h.extend(4u16.to_be_bytes());
                        h.extend(772u16.to_be_bytes());
                        h.extend(6u16.to_be_bytes());
                        h.extend([0u8; 8]);
                        h.extend(ether_type.to_be_bytes());
                        h
                    }
                    LinkType::LinuxSll2 => {
                        let mut h = Vec::with_capacity(20);
                        h.extend(ether_type.to_be_bytes());
                        h.extend(0u16.to_be_bytes());
                        h.extend(1u32.to_be_bytes()); // ifindex of lo
                        h.extend(772u16.to_be_bytes());
                        h.push(0); // packet type: to us
                        h.push(6);
                        h.extend([0u8; 8]);
                        h
                    }
                    LinkType::Null => {
                        let af: u32 = if f.is_v6 { 30 } else { 2 };
                        match endianness {
                            Endianness::Big => af.to_be_bytes().to_vec(),
                            Endianness::Little => af.to_le_bytes().to_vec(),
                        }
                    }
                    LinkType::Loop => {
                        let af: u32 = if f.is_v6 { 24 } else { 2 };
                        af.to_be_bytes().to_vec()
                    }
                    LinkType::RawIp => Vec::new(),
                };
                out.extend_from_slice(&f.ip);
                (f.ts, out)
            })
            .collect()
    }

    /// Writes a pcap file (microsecond or nanosecond timestamps).
    pub fn write_pcap<W: Write>(
        &self,
        out: W,
        link: LinkType,
        ts_resolution: TsResolution,
    ) -> Result<W, SynthError> {
        let header = PcapHeader {
            datalink: datalink(link),
            ts_resolution,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(out, header)?;
        for (ts, data) in self.linked(link, Endianness::Little) {
            let len = data.len() as u32;
            w.write_packet(&PcapPacket::new_owned(ts, len, data))?;
        }
        Ok(w.into_writer())
    }

    /// Writes a pcapng file with one interface and nanosecond timestamps.
    pub fn write_pcapng<W: Write>(&self, out: W, link: LinkType) -> Result<W, SynthError> {
        let mut w = PcapNgWriter::with_endianness(out, Endianness::Little)?;
        let idb = InterfaceDescriptionBlock {
            linktype: datalink(link),
            snaplen: 262_144,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        };
        w.write_block(&idb.into_block())?;
        for (ts, data) in self.linked(link, Endianness::Little) {
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: ts,
                original_len: data.len() as u32,
                data: Cow::Owned(data),
                options: vec![],
            };
            w.write_block(&epb.into_block())?;
        }
        Ok(w.into_inner())
    }
}

fn datalink(link: LinkType) -> DataLink {
    match link {
        LinkType::Ethernet => DataLink::ETHERNET,
        LinkType::LinuxSll => DataLink::LINUX_SLL,
        LinkType::LinuxSll2 => DataLink::LINUX_SLL2,
        LinkType::Null => DataLink::NULL,
        LinkType::Loop => DataLink::LOOP,
        LinkType::RawIp => DataLink::RAW,
    }
}

/// One TCP connection being written into a [`CaptureBuilder`], keeping the
/// sequence numbers of both sides.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Client address.
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// Next client sequence number.
    pub client_seq: u32,
    /// Next server sequence number.
    pub server_seq: u32,
}

impl Conversation {
    /// A connection with the given initial sequence numbers.
    pub fn new(client: SocketAddr, server: SocketAddr, client_isn: u32, server_isn: u32) -> Self {
        Conversation {
            client,
            server,
            client_seq: client_isn,
            server_seq: server_isn,
        }
    }

    fn ends(&self, side: Side) -> (SocketAddr, SocketAddr, u32, u32) {
        match side {
            Side::Client => (self.client, self.server, self.client_seq, self.server_seq),
            Side::Server => (self.server, self.client, self.server_seq, self.client_seq),
        }
    }

    fn advance(&mut self, side: Side, by: u32) {
        match side {
            Side::Client => self.client_seq = self.client_seq.wrapping_add(by),
            Side::Server => self.server_seq = self.server_seq.wrapping_add(by),
        }
    }

    /// SYN, SYN-ACK, ACK at `ts`.
    pub fn handshake(&mut self, cap: &mut CaptureBuilder, ts: Duration) -> Result<(), SynthError> {
        let (c, s, cs, _) = self.ends(Side::Client);
        cap.segment(ts, c, s, cs, 0, Flags::parse("S"), &[])?;
        self.advance(Side::Client, 1);
        let (s, c, ss, cs) = self.ends(Side::Server);
        cap.segment(ts, s, c, ss, cs, Flags::parse("SA"), &[])?;
        self.advance(Side::Server, 1);
        let (c, s, cs, ss) = self.ends(Side::Client);
        cap.segment(ts, c, s, cs, ss, Flags::parse("A"), &[])
    }

    /// `side` sends `data` in one segment.
    pub fn send(
        &mut self,
        cap: &mut CaptureBuilder,
        ts: Duration,
        side: Side,
        data: &[u8],
    ) -> Result<(), SynthError> {
        let (src, dst, seq, ack) = self.ends(side);
        cap.segment(ts, src, dst, seq, ack, Flags::parse("A"), data)?;
        self.advance(side, data.len() as u32);
        Ok(())
    }

    /// `side` sends FIN.
    pub fn close(
        &mut self,
        cap: &mut CaptureBuilder,
        ts: Duration,
        side: Side,
    ) -> Result<(), SynthError> {
        let (src, dst, seq, ack) = self.ends(side);
        cap.segment(ts, src, dst, seq, ack, Flags::parse("FA"), &[])?;
        self.advance(side, 1);
        Ok(())
    }
}
