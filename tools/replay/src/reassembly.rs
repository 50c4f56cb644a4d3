//! TCP stream reassembly for the connections to one service port.
//!
//! Flows are keyed by their 4-tuple (client address, server address); the
//! client is the side whose peer port is the service port. Each direction
//! keeps its own byte offset: the initial sequence number comes from the SYN
//! (or SYN-ACK), or from the first segment seen when the capture starts in the
//! middle of a connection. Segments ahead of the next expected byte wait in a
//! `BTreeMap` keyed by offset; retransmitted and overlapping bytes are trimmed
//! against what was already delivered. Every delivery becomes an [`Event`]
//! carrying the timestamp and capture index of the segment that made it
//! deliverable, so both directions of every connection can later be merged
//! into one timeline.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use crate::capture::TcpSegment;

/// Which end of a connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The game client (connects to the service port).
    Client,
    /// The server (owns the service port).
    Server,
}

/// What happened on one side of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// In-order bytes sent by that side.
    Data(Vec<u8>),
    /// That side finished sending: its FIN was reached in sequence.
    Close,
    /// That side reset the connection.
    Reset,
}

/// One in-order delivery on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Capture index of the segment that made this deliverable.
    pub index: u64,
    /// Its timestamp.
    pub ts: Duration,
    /// The sending side.
    pub side: Side,
    /// Bytes or close.
    pub kind: EventKind,
}

/// One reassembled TCP connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client's address.
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// Timestamp of the first segment.
    pub start: Duration,
    /// Capture index of the first segment.
    pub first_index: u64,
    /// True when the client's SYN was not in the capture.
    pub mid_stream: bool,
    /// Deliveries in capture order. Invariant: sorted by `index`.
    pub events: Vec<Event>,
    /// Bytes still waiting behind a hole when the capture ended, per side.
    pub missing: [usize; 2],
}

impl Connection {
    /// All bytes one side sent, concatenated.
    pub fn stream(&self, side: Side) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            if let (true, EventKind::Data(d)) = (e.side == side, &e.kind) {
                out.extend_from_slice(d);
            }
        }
        out
    }

    /// Number of bytes one side sent.
    pub fn bytes(&self, side: Side) -> usize {
        self.events
            .iter()
            .map(|e| match (&e.kind, e.side == side) {
                (EventKind::Data(d), true) => d.len(),
                _ => 0,
            })
            .sum()
    }
}

/// One direction of a flow.
#[derive(Default)]
struct HalfStream {
    /// Sequence number of offset 0; `None` until the first segment.
    base: Option<u32>,
    /// Offset of the next in-order byte.
    next: u64,
    /// Out-of-order data by offset. Invariant: every key is > `next`.
    pending: BTreeMap<u64, Vec<u8>>,
    /// Offset at which this side's FIN sits.
    fin_at: Option<u64>,
    /// FIN reached or RST seen: nothing more is delivered.
    closed: bool,
}

impl HalfStream {
    /// Offset of `seq` relative to this stream, allowing for sequence
    /// wrap-around and for bytes just before `next`.
    fn offset(&self, base: u32, seq: u32) -> i64 {
        let expected = base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(expected) as i32)
    }

    /// Adds a segment's payload at `start`; returns newly in-order bytes.
    fn accept(&mut self, start: i64, mut data: &[u8]) -> Vec<u8> {
        let next = self.next as i64;
        if start < next {
            let skip = usize::try_from(next - start).unwrap_or(usize::MAX);
            data = data.get(skip..).unwrap_or(&[]);
            if data.is_empty() {
                return Vec::new();
            }
        } else if start > next {
            let key = start as u64;
            let keep = self
                .pending
                .get(&key)
                .is_none_or(|old| old.len() < data.len());
            if keep {
                self.pending.insert(key, data.to_vec());
            }
            return Vec::new();
        }
        let mut out = data.to_vec();
        self.next += out.len() as u64;
        while let Some(entry) = self.pending.first_entry() {
            let key = *entry.key();
            if key > self.next {
                break;
            }
            let chunk = entry.remove();
            let skip = usize::try_from(self.next - key).unwrap_or(usize::MAX);
            if let Some(rest) = chunk.get(skip..) {
                out.extend_from_slice(rest);
                self.next += rest.len() as u64;
            }
        }
        out
    }

    fn waiting(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

struct Flow {
    conn: Connection,
    halves: [HalfStream; 2],
    client_isn: Option<u32>,
}

fn slot(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Reassembles every TCP connection to `port`, in order of first appearance.
pub fn reassemble(segments: &[TcpSegment], port: u16) -> Vec<Connection> {
    let mut flows: Vec<Flow> = Vec::new();
    let mut current: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    for seg in segments {
        let (side, client, server) = if seg.dst.port() == port {
            (Side::Client, seg.src, seg.dst)
        } else if seg.src.port() == port {
            (Side::Server, seg.dst, seg.src)
        } else {
            continue;
        };
        let key = (client, server);
        // A client SYN with a new ISN on a known 4-tuple starts a new connection.
        let fresh_syn = side == Side::Client && seg.syn && !seg.ack;
        let reuse = current.get(&key).is_some_and(|&i| {
            fresh_syn
                && flows[i].client_isn != Some(seg.seq)
                && (flows[i].client_isn.is_some() || flows[i].halves[0].base.is_some())
        });
        let i = match current.get(&key) {
            Some(&i) if !reuse => i,
            _ => {
                flows.push(Flow {
                    conn: Connection {
                        client,
                        server,
                        start: seg.ts,
                        first_index: seg.index,
                        mid_stream: !fresh_syn,
                        events: Vec::new(),
                        missing: [0, 0],
                    },
                    halves: Default::default(),
                    client_isn: None,
                });
                current.insert(key, flows.len() - 1);
                flows.len() - 1
            }
        };
        let flow = &mut flows[i];
        if fresh_syn {
            flow.client_isn = Some(seg.seq);
        }
        feed(flow, side, seg);
    }
    flows
        .into_iter()
        .map(|mut f| {
            f.conn.missing = [f.halves[0].waiting(), f.halves[1].waiting()];
            f.conn
        })
        .collect()
}

fn feed(flow: &mut Flow, side: Side, seg: &TcpSegment) {
    let half = &mut flow.halves[slot(side)];
    if half.closed {
        return;
    }
    let push = |conn: &mut Connection, kind: EventKind| {
        conn.events.push(Event {
            index: seg.index,
            ts: seg.ts,
            side,
            kind,
        })
    };
    if seg.rst {
        half.closed = true;
        push(&mut flow.conn, EventKind::Reset);
        return;
    }
    // Data of a SYN starts one past its sequence number.
    let data_seq = if seg.syn {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    let base = match half.base {
        Some(b) if !(seg.syn && half.next == 0 && half.pending.is_empty()) => b,
        _ => {
            half.base = Some(data_seq);
            data_seq
        }
    };
    let start = half.offset(base, data_seq);
    if seg.fin {
        let end = start + seg.payload.len() as i64;
        if end >= half.next as i64 {
            half.fin_at = Some(end as u64);
        }
    }
    let data = half.accept(start, &seg.payload);
    if !data.is_empty() {
        push(&mut flow.conn, EventKind::Data(data));
    }
    if half.fin_at.is_some_and(|f| f <= half.next) {
        half.closed = true;
        push(&mut flow.conn, EventKind::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "127.0.0.1:50000";
    const SERVER: &str = "127.0.0.1:29000";

    struct Builder {
        segments: Vec<TcpSegment>,
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                segments: Vec::new(),
            }
        }

        fn seg(&mut self, side: Side, seq: u32, flags: &str, payload: &[u8]) -> &mut Builder {
            let (c, s): (SocketAddr, SocketAddr) =
                (CLIENT.parse().expect("addr"), SERVER.parse().expect("addr"));
            let (src, dst) = match side {
                Side::Client => (c, s),
                Side::Server => (s, c),
            };
            let index = self.segments.len() as u64;
            self.segments.push(TcpSegment {
                index,
                ts: Duration::from_millis(index * 10),
                src,
                dst,
                seq,
                syn: flags.contains('S'),
                ack: flags.contains('A'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
                payload: payload.to_vec(),
            });
            self
        }
    }

    use Side::{Client as C, Server as S};

    fn data_events(conn: &Connection, side: Side) -> Vec<Vec<u8>> {
        conn.events
            .iter()
            .filter(|e| e.side == side)
            .filter_map(|e| match &e.kind {
                EventKind::Data(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn in_order_both_directions_with_handshake_and_fin() {
        let mut b = Builder::new();
        b.seg(C, 1000, "S", b"")
            .seg(S, 5000, "SA", b"")
            .seg(C, 1001, "A", b"")
            .seg(C, 1001, "A", b"hello")
            .seg(S, 5001, "A", b"world!")
            .seg(C, 1006, "A", b" again")
            .seg(C, 1012, "FA", b"")
            .seg(S, 5007, "FA", b"");
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns.len(), 1);
        let c = &conns[0];
        assert!(!c.mid_stream);
        assert_eq!(c.stream(C), b"hello again");
        assert_eq!(c.stream(S), b"world!");
        assert_eq!(c.bytes(C), 11);
        let kinds: Vec<_> = c.events.iter().map(|e| (e.side, e.index)).collect();
        assert_eq!(kinds, vec![(C, 3), (S, 4), (C, 5), (C, 6), (S, 7)]);
        assert_eq!(c.events[3].kind, EventKind::Close);
        assert_eq!(c.missing, [0, 0]);
    }

    #[test]
    fn out_of_order_segments_wait_for_the_hole() {
        let mut b = Builder::new();
        b.seg(C, 99, "S", b"")
            .seg(C, 106, "A", b"ghi")
            .seg(C, 103, "A", b"def")
            .seg(C, 100, "A", b"abc");
        let conns = reassemble(&b.segments, 29000);
        let c = &conns[0];
        assert_eq!(c.stream(C), b"abcdefghi");
        // Delivered in one piece when the hole closed, at that segment's index.
        assert_eq!(data_events(c, C), vec![b"abcdefghi".to_vec()]);
        assert_eq!(c.events[0].index, 3);
    }

    #[test]
    fn retransmissions_and_overlaps_are_trimmed() {
        let mut b = Builder::new();
        b.seg(C, 0, "S", b"")
            .seg(C, 1, "A", b"abcd")
            .seg(C, 1, "A", b"abcd") // exact retransmission
            .seg(C, 3, "A", b"cdef") // overlaps two delivered bytes
            .seg(C, 9, "A", b"ijk") // ahead
            .seg(C, 8, "A", b"hij") // overlaps the pending one
            .seg(C, 7, "A", b"g");
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns[0].stream(C), b"abcdefghijk");
        assert_eq!(
            data_events(&conns[0], C),
            vec![b"abcd".to_vec(), b"ef".to_vec(), b"ghijk".to_vec()]
        );
    }

    #[test]
    fn capture_starting_mid_stream() {
        let mut b = Builder::new();
        b.seg(S, 70_000, "A", b"late reply")
            .seg(C, 4_000_000_000, "A", b"next request")
            .seg(C, 4_000_000_012, "A", b"!");
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns.len(), 1);
        assert!(conns[0].mid_stream);
        assert_eq!(conns[0].stream(S), b"late reply");
        assert_eq!(conns[0].stream(C), b"next request!");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut b = Builder::new();
        b.seg(C, u32::MAX - 2, "S", b"")
            .seg(C, u32::MAX - 1, "A", b"ab")
            .seg(C, 0, "A", b"cd");
        assert_eq!(reassemble(&b.segments, 29000)[0].stream(C), b"abcd");
    }

    #[test]
    fn holes_left_at_the_end_are_reported() {
        let mut b = Builder::new();
        b.seg(C, 0, "S", b"").seg(C, 5, "A", b"xyz");
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns[0].stream(C), b"");
        assert_eq!(conns[0].missing, [3, 0]);
    }

    #[test]
    fn a_new_syn_on_the_same_tuple_is_a_new_connection() {
        let mut b = Builder::new();
        b.seg(C, 10, "S", b"")
            .seg(C, 10, "S", b"") // retransmitted SYN: same connection
            .seg(C, 11, "A", b"one")
            .seg(C, 14, "FA", b"")
            .seg(C, 900, "S", b"")
            .seg(C, 901, "A", b"two");
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns.len(), 2);
        assert_eq!(conns[0].stream(C), b"one");
        assert_eq!(conns[1].stream(C), b"two");
    }

    #[test]
    fn fin_before_missing_data_closes_after_it() {
        let mut b = Builder::new();
        b.seg(C, 0, "S", b"")
            .seg(C, 4, "FA", b"d")
            .seg(C, 1, "A", b"abc");
        let c = &reassemble(&b.segments, 29000)[0];
        assert_eq!(c.stream(C), b"abcd");
        assert_eq!(c.events.last().map(|e| &e.kind), Some(&EventKind::Close));
    }

    #[test]
    fn other_ports_are_ignored_and_reset_is_recorded() {
        let mut b = Builder::new();
        b.seg(C, 0, "S", b"").seg(S, 0, "R", b"");
        let mut other = b.segments[0].clone();
        other.dst.set_port(80);
        b.segments.push(other);
        let conns = reassemble(&b.segments, 29000);
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].events[0].kind, EventKind::Reset);
    }
}
