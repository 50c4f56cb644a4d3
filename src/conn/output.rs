//! A connection's output queue: small replies encoded into pooled buffers,
//! and shared frames (broadcasts encoded once, queued to every target).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

use crate::buf::{Buffer, BufferPool};

/// Most chunks handed to one `writev`.
const MAX_IOVECS: usize = 32;

enum Chunk {
    Pooled(Buffer),
    Shared(Bytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Pooled(b) => b.filled(),
            Chunk::Shared(b) => b,
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Pooled(b) => b.consume(n),
            Chunk::Shared(b) => b.advance(n),
        }
    }
}

/// Bytes waiting to be written, in order.
///
/// Invariant: `queued` is the sum of the chunks' lengths, and no chunk is
/// empty except possibly the last pooled one being encoded into.
#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    queued: usize,
}

/// Why [`OutQueue::encode`] could not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeFailure {
    /// No buffer free in the pool.
    NoBuffer,
    /// The encoder refused (the frame is too large or invalid).
    Encoder,
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

    /// Encodes one frame of at most `max` bytes at the end of the queue.
    /// `encode` writes into the given space and returns the frame length.
    pub fn encode<E>(
        &mut self,
        pool: &BufferPool,
        max: usize,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, EncodeFailure> {
        let need_new = match self.chunks.back() {
            Some(Chunk::Pooled(b)) => b.spare_len() < max,
            _ => true,
        };
        if need_new {
            let buffer = pool.checkout().ok_or(EncodeFailure::NoBuffer)?;
            self.chunks.push_back(Chunk::Pooled(buffer));
        }
        let Some(Chunk::Pooled(buffer)) = self.chunks.back_mut() else {
            return Err(EncodeFailure::NoBuffer);
        };
        let n = encode(buffer.spare()).map_err(|_| EncodeFailure::Encoder)?;
        buffer.commit(n);
        self.queued += n;
        if buffer.is_empty() {
            // Nothing was written into a fresh buffer: give it back.
            self.chunks.pop_back();
        }
        Ok(n)
    }

    /// Queues a shared frame.
    pub fn push_shared(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.queued += frame.len();
            self.chunks.push_back(Chunk::Shared(frame));
        }
    }

    /// One vectored write of as much as is queued. Returns the bytes written.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for chunk in self.chunks.iter().take(MAX_IOVECS) {
            slices[count] = IoSlice::new(chunk.bytes());
            count += 1;
        }
        let n = w.write_vectored(&slices[..count])?;
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
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        // Pooled buffers return to the pool as soon as they are written.
        while matches!(self.chunks.front(), Some(c) if c.bytes().is_empty()) {
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            // An idle connection keeps no allocation.
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `limit` bytes per call.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn order_is_kept_across_pooled_and_shared() {
        let pool = BufferPool::new(4, 16);
        let mut q = OutQueue::default();
        let put = |q: &mut OutQueue, s: &'static [u8]| {
            q.encode(&pool, 8, |space| {
                space[..s.len()].copy_from_slice(s);
                Ok::<_, ()>(s.len())
            })
        };
        put(&mut q, b"abc").expect("room");
        q.push_shared(Bytes::from_static(b"SHARED"));
        put(&mut q, b"de").expect("room");
        assert_eq!(q.len(), 11);
        let mut w = Trickle {
            out: Vec::new(),
            limit: 4,
        };
        while !q.is_empty() {
            q.write_to(&mut w).expect("write");
        }
        assert_eq!(w.out, b"abcSHAREDde");
        assert_eq!(pool.available(), 4, "written buffers go back to the pool");
    }

    #[test]
    fn pool_exhaustion_is_reported() {
        let pool = BufferPool::new(1, 16);
        let _held = pool.checkout();
        let mut q = OutQueue::default();
        let r = q.encode(&pool, 8, |_| Ok::<_, ()>(1));
        assert_eq!(r, Err(EncodeFailure::NoBuffer));
        assert!(q.is_empty());
    }
}
