//! Fixed-size buffers from a pool allocated once at start-up.
//!
//! The pool is owned by the reactor thread (it is `!Send`: an `Rc`, no
//! locks). [`BufferPool::checkout`] can fail, and callers must handle that
//! (stop reading, or close the connection), never allocate instead. A
//! [`Buffer`] returns itself to the pool when dropped, so a connection that
//! lets go of its buffers (an idle connection holds none) gives them back
//! without bookkeeping.

use std::cell::RefCell;
use std::rc::Rc;

struct PoolInner {
    /// Buffers not checked out. Invariant: every element has length `size`.
    free: RefCell<Vec<Box<[u8]>>>,
    size: usize,
    total: usize,
}

/// A pool of `count` buffers of `size` bytes each. Cloning shares the pool.
#[derive(Clone)]
pub struct BufferPool {
    inner: Rc<PoolInner>,
}

impl BufferPool {
    /// Allocates every buffer now (pages are touched only when used).
    pub fn new(count: usize, size: usize) -> BufferPool {
        let free = (0..count)
            .map(|_| vec![0u8; size].into_boxed_slice())
            .collect();
        BufferPool {
            inner: Rc::new(PoolInner {
                free: RefCell::new(free),
                size,
                total: count,
            }),
        }
    }

    /// Takes a buffer, or `None` when the pool is empty.
    pub fn checkout(&self) -> Option<Buffer> {
        let data = self.inner.free.borrow_mut().pop()?;
        Some(Buffer {
            data,
            start: 0,
            end: 0,
            pool: Rc::clone(&self.inner),
        })
    }

    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.inner.free.borrow().len()
    }

    /// Buffers in the pool in all.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Size of each buffer in bytes.
    pub fn buffer_size(&self) -> usize {
        self.inner.size
    }
}

/// One pooled buffer holding the bytes `start..end`.
///
/// Invariant: `start <= end <= data.len()`.
pub struct Buffer {
    data: Box<[u8]>,
    start: usize,
    end: usize,
    pool: Rc<PoolInner>,
}

impl Buffer {
    /// The filled, not yet consumed bytes.
    pub fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The filled bytes, mutable (decoding decrypts in place).
    pub fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Free space after the filled bytes.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.data[self.end..]
    }

    /// Bytes of free space after the filled bytes.
    pub fn spare_len(&self) -> usize {
        self.data.len() - self.end
    }

    /// Marks `n` more bytes (written into [`Buffer::spare`]) as filled.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Number of filled bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// No filled bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Total capacity.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Moves the filled bytes to the front so the spare space is contiguous.
    pub fn compact(&mut self) {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.pool.free.borrow_mut().push(data);
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_and_return() {
        let pool = BufferPool::new(2, 64);
        assert_eq!(
            (pool.available(), pool.total(), pool.buffer_size()),
            (2, 2, 64)
        );
        let a = pool.checkout().expect("first");
        let b = pool.checkout().expect("second");
        assert!(pool.checkout().is_none(), "an empty pool refuses");
        assert_eq!(pool.available(), 0);
        drop(a);
        assert_eq!(pool.available(), 1);
        let c = pool.checkout().expect("returned buffer is reusable");
        assert_eq!(c.capacity(), 64);
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn fill_consume_compact() {
        let pool = BufferPool::new(1, 8);
        let mut b = pool.checkout().expect("buffer");
        b.spare()[..5].copy_from_slice(b"hello");
        b.commit(5);
        assert_eq!(b.filled(), b"hello");
        b.consume(2);
        assert_eq!((b.filled(), b.spare_len()), (&b"llo"[..], 3));
        b.compact();
        assert_eq!((b.filled(), b.spare_len()), (&b"llo"[..], 5));
        b.consume(3);
        assert!(b.is_empty());
        assert_eq!(b.spare_len(), 8, "an emptied buffer rewinds");
        b.commit(100);
        assert_eq!(b.len(), 8, "commit is clamped to the capacity");
    }
}
