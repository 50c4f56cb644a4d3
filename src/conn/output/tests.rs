//! The output queue's order, packing, budget and memory accounting.

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

/// Encodes `s` (refusing, as encoders do, when it does not fit).
fn put(
    q: &mut OutQueue,
    pool: &BufferPool,
    budget: usize,
    s: &[u8],
) -> Result<usize, EncodeFailure> {
    q.encode(pool, s.len(), budget, |space| {
        let frame = space.get_mut(..s.len()).ok_or(())?;
        frame.copy_from_slice(s);
        Ok::<_, ()>(s.len())
    })
}

fn drain(q: &mut OutQueue) -> Vec<u8> {
    let mut w = Trickle {
        out: Vec::new(),
        limit: 4,
    };
    while !q.is_empty() {
        q.write_to(&mut w).expect("write");
    }
    w.out
}

#[test]
fn order_is_kept_across_pooled_and_shared() {
    let pool = BufferPool::new(4, 16);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 8, b"abc").expect("room");
    q.push_shared(Bytes::from_static(b"SHARED-FRAME-XX"));
    put(&mut q, &pool, 8, b"de").expect("room");
    assert_eq!(q.len(), 20);
    assert_eq!(drain(&mut q), b"abcSHARED-FRAME-XXde");
    assert_eq!(pool.available(), 4, "written buffers go back to the pool");
    assert_eq!((q.memory(), q.pooled()), (0, 0));
}

#[test]
fn pool_exhaustion_is_reported() {
    let pool = BufferPool::new(1, 16);
    let _held = pool.checkout();
    let mut q = OutQueue::default();
    assert_eq!(put(&mut q, &pool, 8, b"x"), Err(EncodeFailure::NoBuffer));
    assert!(q.is_empty());
}

/// Small replies alternating with small shared frames (a whisper to oneself
/// and a local reply, over and over) share one buffer until it is full.
#[test]
fn small_replies_and_frames_pack_into_one_buffer() {
    let pool = BufferPool::new(64, 4096);
    let mut q = OutQueue::default();
    let mut expected = Vec::new();
    for i in 0..100u8 {
        put(&mut q, &pool, 8, &[i; 20]).expect("room");
        q.push_shared(Bytes::from(vec![i; 17]));
        expected.extend_from_slice(&[i; 20]);
        expected.extend_from_slice(&[i; 17]);
    }
    assert_eq!(q.len(), 3700);
    assert_eq!(q.pooled(), 1, "3,700 bytes of small frames in one buffer");
    assert_eq!(q.memory(), 4096);
    assert_eq!(drain(&mut q), expected);
}

#[test]
fn a_frame_that_does_not_fit_the_last_buffer_takes_a_fresh_one() {
    let pool = BufferPool::new(4, 16);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 8, &[1; 12]).expect("room");
    put(&mut q, &pool, 8, &[2; 8]).expect("a second buffer");
    assert_eq!(q.pooled(), 2);
    let mut expected = vec![1; 12];
    expected.extend_from_slice(&[2; 8]);
    assert_eq!(drain(&mut q), expected);
}

#[test]
fn the_budget_caps_pooled_buffers() {
    let pool = BufferPool::new(8, 16);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 2, &[1; 16]).expect("first");
    put(&mut q, &pool, 2, &[2; 16]).expect("second");
    assert_eq!(
        put(&mut q, &pool, 2, &[3; 16]),
        Err(EncodeFailure::OverBudget)
    );
    assert_eq!((q.pooled(), pool.available()), (2, 6));
    // Shared frames still queue, each charged its overhead.
    q.push_shared(Bytes::from_static(b"abc"));
    assert_eq!(q.memory(), 32 + 3 + SHARED_CHUNK_OVERHEAD);
    assert_eq!(
        q.heap(),
        3 + SHARED_CHUNK_OVERHEAD,
        "the pool's share is not heap"
    );
    q.clear();
    assert_eq!((q.memory(), q.pooled(), q.len()), (0, 0, 0));
    assert_eq!(pool.available(), 8, "clear gives the buffers back");
}

#[test]
fn appended_bytes_straddle_buffers_up_to_the_budget() {
    let pool = BufferPool::new(8, 16);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 3, &[1; 10]).expect("room");
    // 6 bytes left in the first buffer, 16 in each of two more.
    let run: Vec<u8> = (0..50).collect();
    assert_eq!(q.append(&pool, &run, 3), 38, "stops at the budget");
    assert_eq!((q.pooled(), q.len(), q.heap()), (3, 48, 0));
    q.push_shared(Bytes::from(run[38..].to_vec()));
    let mut expected = vec![1; 10];
    expected.extend_from_slice(&run);
    assert_eq!(drain(&mut q), expected);
    assert_eq!(pool.available(), 8);

    // An empty pool takes nothing.
    let held: Vec<_> = (0..8).filter_map(|_| pool.checkout()).collect();
    assert_eq!(q.append(&pool, b"abc", 3), 0);
    assert!(q.is_empty());
    drop(held);
}

#[test]
fn an_encoder_refusal_in_a_fresh_buffer_is_an_encoder_failure() {
    let pool = BufferPool::new(2, 16);
    let mut q = OutQueue::default();
    assert_eq!(put(&mut q, &pool, 8, &[0; 17]), Err(EncodeFailure::Encoder));
    assert_eq!((q.pooled(), pool.available()), (0, 2));
}

/// What the queue is charged is at least what it holds: the bytes of every
/// shared frame, the queue's slots, and the whole of every pooled buffer.
#[test]
fn memory_is_never_less_than_what_is_held() {
    let pool = BufferPool::new(4, 64);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 8, &[0; 60]).expect("room");
    // The first frame fits the buffer's last bytes; the others are chunks.
    for n in [1usize, 100, 1000] {
        q.push_shared(Bytes::from(vec![7; n]));
    }
    // The pooled buffer, the frames with an allocator header each, and
    // every slot the queue allocated.
    let slots = q.chunks.capacity() * std::mem::size_of::<Chunk>();
    let held = 64 + (100 + 1000) + 2 * 16 + slots;
    assert!(q.memory() >= held, "{} < {held}", q.memory());
    assert_eq!(q.memory(), 64 + 1100 + 2 * SHARED_CHUNK_OVERHEAD);
    drain(&mut q);
    assert_eq!(q.memory(), 0);
}

/// Frames spilled past the budget pack into blocks outside the pool,
/// charged per block, not per frame, in order with everything else.
#[test]
fn spilled_frames_pack_into_blocks_charged_to_the_heap() {
    let pool = BufferPool::new(8, 16);
    let mut q = OutQueue::default();
    put(&mut q, &pool, 1, &[1; 16]).expect("the one buffer");
    assert_eq!(put(&mut q, &pool, 1, b"x"), Err(EncodeFailure::OverBudget));
    let spill = |q: &mut OutQueue, s: &[u8]| {
        q.spill(64, s.len(), |space| {
            let frame = space.get_mut(..s.len()).ok_or(())?;
            frame.copy_from_slice(s);
            Ok::<_, ()>(s.len())
        })
    };
    let mut expected = vec![1; 16];
    for i in 0..10u8 {
        spill(&mut q, &[i; 10]).expect("spilled");
        expected.extend_from_slice(&[i; 10]);
    }
    // Six frames of 10 in each block of 64: two blocks for ten frames.
    assert_eq!(q.heap(), 2 * (64 + SHARED_CHUNK_OVERHEAD));
    assert_eq!(q.len(), 16 + 100);
    // A frame larger than a block gets a block of its own size.
    spill(&mut q, &[9; 100]).expect("a block of its size");
    expected.extend_from_slice(&[9; 100]);
    assert_eq!(
        q.heap(),
        2 * (64 + SHARED_CHUNK_OVERHEAD) + 100 + SHARED_CHUNK_OVERHEAD
    );
    // A shared frame after a spilled one goes into the block's spare room,
    // so spills and broadcasts interleaved stay packed.
    let heap = q.heap();
    spill(&mut q, &[7; 10]).expect("a fresh block");
    q.push_shared(Bytes::from_static(&[8; 10]));
    spill(&mut q, &[6; 10]).expect("the same block");
    expected.extend_from_slice(&[7; 10]);
    expected.extend_from_slice(&[8; 10]);
    expected.extend_from_slice(&[6; 10]);
    assert_eq!(
        q.heap(),
        heap + 64 + SHARED_CHUNK_OVERHEAD,
        "one block for all three"
    );
    let refused = q.spill(64, 8, |_| Err::<usize, ()>(()));
    assert_eq!(refused, Err(EncodeFailure::Encoder));
    assert_eq!(q.len(), 16 + 230, "a refused frame queues nothing");
    assert_eq!(drain(&mut q), expected);
    assert_eq!((q.heap(), q.memory(), q.pooled()), (0, 0, 0));
}
