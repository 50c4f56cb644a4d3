//! A connection's output queue: small replies packed into pooled buffers,
//! shared frames (broadcasts encoded once, for targets short of buffers: a
//! frame, or a slice of a run's frames that may begin or end inside one), and
//! spill blocks: frames packed outside the pool when the connection's
//! buffer budget is spent (a burst its socket does not take at once).
//!
//! The queue counts what it holds in memory, not in bytes to write: a pooled
//! buffer counts its whole capacity, a shared frame its length plus
//! [`SHARED_CHUNK_OVERHEAD`], a spill block its size plus the same overhead
//! ([`OutQueue::memory`]; the reactor pauses decoding on it). Memory outside
//! the pool ([`OutQueue::heap`]: shared frames and spill blocks with their
//! overhead) is what the output limit caps, the way
//! Redis's client output buffer limits count a reply list; pooled buffers
//! are counted one by one ([`OutQueue::pooled`]) against the connection's
//! buffer budget instead: a queue never takes a fresh buffer while the last
//! one has room, and takes none past its budget. So a client that does not
//! read holds at most the limit on the heap plus its budget from the pool.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

use super::reason::CloseReason;
use crate::buf::{Buffer, BufferPool};

/// Chunk slots an empty queue keeps (a few words per connection).
const KEPT_CAPACITY: usize = 4;
/// Most chunks handed to one `writev`.
const MAX_IOVECS: usize = 64;
/// What a shared frame costs besides its bytes: its queue slot (twice, for
/// the spare capacity of a queue that grows by doubling), the shared handle
/// `Bytes` promotes to when cloned, and the allocator's headers of both
/// allocations (rounded up).
pub const SHARED_CHUNK_OVERHEAD: usize = 64 + 2 * std::mem::size_of::<Chunk>();

/// Copies the start of `bytes` into the room left in `buffer`; the rest.
fn fill<'b>(buffer: &mut Buffer, bytes: &'b [u8]) -> &'b [u8] {
    let n = buffer.spare_len().min(bytes.len());
    buffer.spare()[..n].copy_from_slice(&bytes[..n]);
    buffer.commit(n);
    &bytes[n..]
}

/// One run of queued bytes.
enum Chunk {
    /// Encoded into a pooled buffer.
    Pooled(Buffer),
    /// Frames shared with other connections (whole, or a slice of a run's),
    /// and what they are charged.
    Shared(Bytes, usize),
    /// Frames encoded outside the pool.
    Spilled(Spill),
}

/// A block of frames outside the pool: `data[start..end]` is queued.
struct Spill {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Spill {
    /// What the block is charged: its size and the chunk's overhead.
    fn cost(&self) -> usize {
        self.data.len() + SHARED_CHUNK_OVERHEAD
    }
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Pooled(b) => b.filled(),
            Chunk::Shared(b, _) => b,
            Chunk::Spilled(s) => &s.data[s.start..s.end],
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Pooled(b) => b.consume(n),
            Chunk::Shared(b, _) => b.advance(n),
            Chunk::Spilled(s) => s.start = (s.start + n).min(s.end),
        }
    }
}

/// Bytes waiting to be written, in order.
///
/// Invariants: `queued` is the sum of the chunks' lengths, `heap` the sum
/// of the shared and spilled chunks' costs, `pooled` the number of pooled chunks and
/// `pooled_memory` their capacity; no chunk is empty.
#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    queued: usize,
    heap: usize,
    pooled: usize,
    pooled_memory: usize,
}

/// Why [`OutQueue::encode`] could not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeFailure {
    /// No buffer free in the pool.
    NoBuffer,
    /// The connection holds its whole budget of pooled buffers.
    OverBudget,
    /// The encoder refused (the frame is too large or invalid).
    Encoder,
}

impl EncodeFailure {
    /// The close reason of a reply that could not be queued: the pool is
    /// empty, or the client holds its budget (it does not read).
    pub fn reason(self) -> CloseReason {
        match self {
            EncodeFailure::NoBuffer => CloseReason::PoolExhausted,
            EncodeFailure::OverBudget => CloseReason::OutputLimit,
            // A reply too large for the protocol: the client would wait
            // forever for it.
            EncodeFailure::Encoder => CloseReason::BackendUnavailable,
        }
    }
}

impl OutQueue {
    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Memory the queue holds: pooled buffers at their capacity, shared
    /// frames and spill blocks with their overhead.
    pub fn memory(&self) -> usize {
        self.heap + self.pooled_memory
    }

    /// Memory held outside the pool: shared frames and spill blocks with
    /// their overhead.
    pub fn heap(&self) -> usize {
        self.heap
    }

    /// Pooled buffers the queue holds.
    pub fn pooled(&self) -> usize {
        self.pooled
    }

    /// Whether one write would be full: the most chunks one `writev`
    /// takes, or at least `bytes` queued.
    pub fn fills_a_write(&self, bytes: usize) -> bool {
        self.chunks.len() >= MAX_IOVECS || self.queued >= bytes
    }

    /// Encodes one frame of at most `max` bytes at the end of the queue,
    /// into the last pooled buffer if it fits there, else into a fresh one
    /// if `budget` allows (`budget` = pooled buffers the queue may hold).
    /// `encode` writes into the given space and returns the frame length;
    /// it must fail, not panic, when the space is too small.
    pub fn encode<E>(
        &mut self,
        pool: &BufferPool,
        max: usize,
        budget: usize,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, EncodeFailure> {
        if let Some(Chunk::Pooled(buffer)) = self.chunks.back_mut() {
            let spare = buffer.spare_len();
            if spare > 0 {
                match encode(buffer.spare()) {
                    Ok(n) => return Ok(self.committed(n)),
                    Err(_) if spare >= max => return Err(EncodeFailure::Encoder),
                    Err(_) => {} // too little room left: a fresh buffer
                }
            }
        }
        if self.pooled >= budget {
            return Err(EncodeFailure::OverBudget);
        }
        let mut buffer = pool.checkout().ok_or(EncodeFailure::NoBuffer)?;
        let n = encode(buffer.spare()).map_err(|_| EncodeFailure::Encoder)?;
        // Only a buffer that holds a frame is kept; a refused one goes back.
        buffer.commit(n);
        self.queued += n;
        self.push_pooled(buffer);
        Ok(n)
    }

    /// Copies as much of `bytes` as fits into pooled buffers within
    /// `budget` (the last one's room first, then fresh ones while the pool
    /// has them): the output is a byte stream, so a frame may straddle two
    /// buffers. Returns the bytes copied; the caller queues the rest.
    pub fn append(&mut self, pool: &BufferPool, bytes: &[u8], budget: usize) -> usize {
        let mut rest = bytes;
        if let Some(Chunk::Pooled(buffer)) = self.chunks.back_mut() {
            rest = fill(buffer, rest);
        }
        while !rest.is_empty() && self.pooled < budget {
            let Some(mut buffer) = pool.checkout() else {
                break;
            };
            rest = fill(&mut buffer, rest);
            self.push_pooled(buffer);
        }
        let copied = bytes.len() - rest.len();
        self.queued += copied;
        copied
    }

    /// Queues a pooled buffer holding committed bytes (counted by the
    /// caller in `queued`).
    fn push_pooled(&mut self, buffer: Buffer) {
        self.pooled += 1;
        self.pooled_memory += buffer.capacity();
        self.chunks.push_back(Chunk::Pooled(buffer));
    }

    /// Marks `n` bytes encoded into the last (pooled) chunk as queued.
    fn committed(&mut self, n: usize) -> usize {
        if let Some(Chunk::Pooled(buffer)) = self.chunks.back_mut() {
            buffer.commit(n);
            self.queued += n;
        }
        n
    }

    /// Encodes one frame of at most `max` bytes at the end of the queue
    /// outside the pool, for when [`OutQueue::encode`] has no buffer: into
    /// the last spill block if it fits there, else into a fresh block of
    /// `block` bytes (at least `max`), charged to [`OutQueue::heap`] at its
    /// size and [`SHARED_CHUNK_OVERHEAD`]. So a burst costs its bytes, not
    /// a chunk per frame. `encode` is as for [`OutQueue::encode`].
    pub fn spill<E>(
        &mut self,
        block: usize,
        max: usize,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, EncodeFailure> {
        if let Some(Chunk::Spilled(last)) = self.chunks.back_mut() {
            let spare = last.data.len() - last.end;
            if spare > 0 {
                match encode(&mut last.data[last.end..]) {
                    Ok(n) => {
                        last.end += n;
                        self.queued += n;
                        return Ok(n);
                    }
                    Err(_) if spare >= max => return Err(EncodeFailure::Encoder),
                    Err(_) => {} // too little room left: a fresh block
                }
            }
        }
        let mut data = vec![0u8; block.max(max)].into_boxed_slice();
        let n = encode(&mut data).map_err(|_| EncodeFailure::Encoder)?;
        let spill = Spill {
            data,
            start: 0,
            end: n,
        };
        self.heap += spill.cost();
        self.queued += n;
        self.chunks.push_back(Chunk::Spilled(spill));
        Ok(n)
    }

    /// Queues a shared frame: copied into the last pooled buffer or spill
    /// block if it has room (no new chunk, no new memory: a crowd's
    /// broadcasts between the spawns of a spilled burst keep it packed),
    /// else queued as its own chunk.
    pub fn push_shared(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.queued += frame.len();
        match self.chunks.back_mut() {
            Some(Chunk::Pooled(buffer)) if buffer.spare_len() >= frame.len() => {
                buffer.spare()[..frame.len()].copy_from_slice(&frame);
                buffer.commit(frame.len());
                return;
            }
            Some(Chunk::Spilled(last)) => {
                if let Some(room) = last.data.get_mut(last.end..last.end + frame.len()) {
                    room.copy_from_slice(&frame);
                    last.end += frame.len();
                    return;
                }
            }
            _ => {}
        }
        let cost = frame.len() + SHARED_CHUNK_OVERHEAD;
        self.heap += cost;
        self.chunks.push_back(Chunk::Shared(frame, cost));
    }

    /// Drops everything queued (the connection is closed without a last
    /// write), giving pooled buffers back at once.
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// One vectored write of as much as is queued (a plain write for one
    /// run). Returns the bytes written.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for chunk in self.chunks.iter().take(MAX_IOVECS) {
            slices[count] = IoSlice::new(chunk.bytes());
            count += 1;
        }
        // One run (a reply, the usual case) is a plain write: the kernel
        // then copies no iovec array in.
        let n = match count {
            1 => w.write(&slices[0])?,
            _ => w.write_vectored(&slices[..count])?,
        };
        self.consume(n);
        Ok(n)
    }

    fn consume(&mut self, mut n: usize) {
        self.queued -= n.min(self.queued);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let len = front.bytes().len();
            if n >= len {
                n -= len;
                self.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        // Pooled buffers return to the pool as soon as they are written.
        while matches!(self.chunks.front(), Some(c) if c.bytes().is_empty()) {
            self.pop_front();
        }
        if self.chunks.is_empty() && self.chunks.capacity() > KEPT_CAPACITY {
            // A burst's large queue is not kept; the usual small one is, so
            // request/reply traffic does not allocate per reply.
            self.chunks = VecDeque::new();
        }
    }

    fn pop_front(&mut self) {
        match self.chunks.pop_front() {
            Some(Chunk::Pooled(buffer)) => {
                self.pooled -= 1;
                self.pooled_memory -= buffer.capacity();
            }
            Some(Chunk::Shared(_, cost)) => self.heap -= cost,
            Some(Chunk::Spilled(spill)) => self.heap -= spill.cost(),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
