//! Trial decoding of a connection's first packet (docs/protocol.md §10.6.2):
//! when one port serves the login, world and game phases, the
//! table a new connection uses is found by decoding its first packet with
//! each candidate table and keeping the one under which it is an expected
//! first packet with a correct checksum.
//!
//! Cost of a failed trial: the header costs 5 table lookups (plus the bit
//! shuffle) per candidate; a candidate whose command and size are plausible
//! costs one copy and one pass over the body once its whole packet is there.
//! A wrong table passes the command and size test with probability about
//! 2⁻²² and then the checksum with 2⁻⁸. At most [`MAX_CANDIDATES`] tables are
//! tried, so a first packet costs at most 8 headers and, in practice, one
//! body pass. Nothing is allocated.

use std::ops::RangeInclusive;

use super::{Codec, FrameError, FrameHeader, MAX_PACKET_SIZE};
use crate::protocol::packet_type::Direction;

/// Most tables one first packet is tried against.
pub const MAX_CANDIDATES: usize = 8;

/// A codec a new connection may be using, and the first packets it may
/// start with under that codec.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// The codec (and so the table set) to try.
    pub codec: Codec,
    /// Commands a first packet may carry under this codec.
    pub commands: &'a [u16],
    /// Plaintext lengths (header included, padding excluded) such a packet
    /// may have; the wire length may add up to 7 bytes of padding.
    pub data_len: RangeInclusive<usize>,
}

impl Candidate<'_> {
    /// Is `header` one of the first packets this candidate expects?
    fn expects(&self, header: &FrameHeader) -> bool {
        self.commands.contains(&header.command) && self.data_len.contains(&header.data_len)
    }
}

/// A candidate list refused by [`Candidates::new`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} candidate tables, at most {MAX_CANDIDATES}")]
pub struct TooManyCandidates(pub usize);

/// A bounded list of candidates, tried in order.
#[derive(Clone, Copy, Debug)]
pub struct Candidates<'a> {
    list: &'a [Candidate<'a>],
}

/// The candidate a first packet was decoded with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Its index in the candidate list.
    pub index: usize,
    /// Its codec: the connection keeps it from now on.
    pub codec: Codec,
    /// The first packet's header.
    pub header: FrameHeader,
}

impl<'a> Candidates<'a> {
    /// At most [`MAX_CANDIDATES`] candidates.
    pub fn new(list: &'a [Candidate<'a>]) -> Result<Candidates<'a>, TooManyCandidates> {
        if list.len() > MAX_CANDIDATES {
            return Err(TooManyCandidates(list.len()));
        }
        Ok(Candidates { list })
    }

    /// The candidates, in the order they are tried.
    pub fn list(&self) -> &'a [Candidate<'a>] {
        self.list
    }

    /// Finds the candidate under which the packet at the start of `bytes`
    /// (sent in direction `dir`) is an expected first packet, and decodes it
    /// in place as [`Codec::decode`] does.
    ///
    /// - `Ok(None)`: read more — fewer than 6 bytes, or some candidate's
    ///   header is plausible but its packet is not whole yet and no whole
    ///   one has passed.
    /// - `Ok(Some(chosen))`: the first candidate, in list order, whose header
    ///   is plausible, whose packet is whole and whose checksum is correct;
    ///   `bytes[..chosen.header.data_len]` is the plaintext packet. A
    ///   plausible candidate still waiting for bytes does not hold up one
    ///   that has passed, so a wrong table claiming a long packet cannot
    ///   stall the connection.
    /// - `Err(FrameError::BadChecksum)`: no candidate fits — close.
    ///
    /// Stateless: call it again with the grown buffer until it decides.
    pub fn decode(&self, dir: Direction, bytes: &mut [u8]) -> Result<Option<Chosen>, FrameError> {
        let mut waiting = false;
        for (index, candidate) in self.list.iter().enumerate() {
            let header = match candidate.codec.peek(dir, bytes) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(_) => continue,
            };
            if !candidate.expects(&header) {
                continue;
            }
            let Some(frame) = bytes.get_mut(..header.wire_len) else {
                waiting = true;
                continue;
            };
            // Open a copy: a failed candidate must leave the bytes intact
            // for the next one.
            let mut copy = [0u8; MAX_PACKET_SIZE];
            let copy = &mut copy[..header.wire_len];
            copy.copy_from_slice(frame);
            if candidate.codec.open(&header, copy).is_ok() {
                frame.copy_from_slice(copy);
                return Ok(Some(Chosen {
                    index,
                    codec: candidate.codec,
                    header,
                }));
            }
        }
        if waiting {
            Ok(None)
        } else {
            Err(FrameError::BadChecksum)
        }
    }
}
