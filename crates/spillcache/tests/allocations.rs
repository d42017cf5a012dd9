//! The pending bound bounds memory: measured by counting allocations (a
//! global allocator, so alone in this binary), not by RSS or time. A caller
//! that waits for room, or is refused, holds no copy of its value.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blockdev::{Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt};
use common::WAIT;
use parking_lot::Mutex;
use spillcache::{Builder, Error, SpillCache};

/// Allocations of at least this many bytes are counted: values, not the
/// small change of threads, keys and stats.
const LARGE: usize = 1 << 20;

/// Bytes of live allocations of at least [`LARGE`] bytes, in all threads.
static LIVE_LARGE: AtomicU64 = AtomicU64::new(0);
/// The most `LIVE_LARGE` has been since the last [`reset_peak`].
static PEAK_LARGE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Bytes this thread has allocated in allocations of at least [`LARGE`].
    static THREAD_LARGE: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting large allocations.
struct Counting;

fn allocated(size: usize) {
    if size >= LARGE {
        let live = LIVE_LARGE.fetch_add(size as u64, Ordering::SeqCst) + size as u64;
        PEAK_LARGE.fetch_max(live, Ordering::SeqCst);
        // `try_with`: a thread being torn down has no counter left.
        let _ = THREAD_LARGE.try_with(|n| n.set(n.get() + size as u64));
    }
}

fn freed(size: usize) {
    if size >= LARGE {
        LIVE_LARGE.fetch_sub(size as u64, Ordering::SeqCst);
    }
}

// SAFETY: every call is passed to `System` with the caller's arguments
// unchanged; the counting beside it neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            allocated(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds
        // `realloc`'s contract for `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            freed(layout.size());
            allocated(new_size);
        }
        new
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Serializes the tests of this binary: the live and peak counts are global.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Bytes the calling thread allocated in large allocations while `f` ran.
fn large_bytes_allocated_by(f: impl FnOnce()) -> u64 {
    let before = THREAD_LARGE.with(Cell::get);
    f();
    THREAD_LARGE.with(Cell::get) - before
}

/// A cache over a disk that is full (every write fails; the one retry a
/// minute comes after the test), holding `bound` bytes waiting to be
/// written under a bound of `bound`, and as many memory-only bytes under a
/// bound of as many.
fn full_cache(bound: u64) -> (SpillCache<Arc<FaultyDevice<MemDevice>>>, common::Devices) {
    let devices = common::Devices::default();
    let cache = devices
        .builder()
        .max_pending_bytes(bound)
        .max_memory_only_bytes(bound)
        .retry_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    devices.latest().fail_writes(Fault::Always(Errno::NOSPC));
    cache.add(b"waiting", &vec![1u8; bound as usize]).unwrap();
    cache
        .add_memory_only(b"ram", &vec![2u8; bound as usize])
        .unwrap();
    // Once the writer has tried and set the value aside, it stays pending.
    let deadline = Instant::now() + WAIT;
    while cache.stats().write_errors == 0 {
        assert!(Instant::now() < deadline, "the write never failed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(cache.pending_bytes(), bound);
    (cache, devices)
}

#[test]
fn refused_adds_allocate_nothing_of_the_value() {
    let _alone = ONE_AT_A_TIME.lock();
    let bound = 4 << 20;
    let (cache, _devices) = full_cache(bound);
    let value = vec![3u8; 32 << 20];

    let mut refusals = Vec::new();
    let allocated = large_bytes_allocated_by(|| {
        refusals.push(cache.try_add(b"big", &value));
        refusals.push(cache.add_timeout(b"big", &value, Duration::from_millis(1)));
        refusals.push(cache.add_memory_only(b"big", &value));
    });

    assert!(
        matches!(refusals[0], Err(Error::Full { waiting, len, limit })
            if (waiting, len, limit) == (bound, value.len() as u64, bound)),
        "{:?}",
        refusals[0]
    );
    assert!(
        matches!(refusals[1], Err(Error::Full { .. })),
        "{:?}",
        refusals[1]
    );
    assert!(
        matches!(refusals[2], Err(Error::MemoryOnlyFull { .. })),
        "{:?}",
        refusals[2]
    );
    assert_eq!(allocated, 0, "bytes allocated to be refused");
    assert!(!cache.contains_key(b"big"));
    cache.check_invariants().unwrap();
}

#[test]
fn adds_waiting_for_room_hold_no_copies() {
    let _alone = ONE_AT_A_TIME.lock();
    let bound: u64 = 4 << 20;
    let (cache, devices) = full_cache(bound);
    let cache = Arc::new(cache);
    let value: Arc<[u8]> = vec![5u8; bound as usize].into();
    let waiters = 8;
    let live_before = LIVE_LARGE.load(Ordering::SeqCst);

    let threads: Vec<_> = (0..waiters)
        .map(|i: u8| {
            let (cache, value) = (Arc::clone(&cache), Arc::clone(&value));
            std::thread::spawn(move || cache.add(&[i], &value))
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while cache.stats().room_waits < waiters.into() {
        assert!(Instant::now() < deadline, "the adds never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Every add now waits for room (the disk stays full).
    let held = LIVE_LARGE.load(Ordering::SeqCst) - live_before;

    // Room, and a disk that takes the values: the waiting adds go in.
    devices.latest().clear_faults();
    cache.clear().unwrap();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    assert_eq!(held, 0, "bytes held by {waiters} adds waiting for room");
    assert_eq!(cache.stats().room_waits, u64::from(waiters));
    assert_eq!(cache.len(), usize::from(waiters));
    cache.check_invariants().unwrap();
}

/// A disk that takes every write and forgets it: what the writer's
/// encryption and the cache's bookkeeping cost, with no device memory.
struct NullDisk;

impl ReadAt for NullDisk {
    fn read_at(&self, _: u64, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(0)
    }
}

impl WriteAt for NullDisk {
    fn write_at(&self, _: u64, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn set_len(&self, _: u64) -> io::Result<()> {
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Issue 16's workload: 16 threads adding 16 MiB values under a 64 MiB
/// bound. Whatever the order the threads run in, values held in RAM are at
/// most the bound, the spare buffers (a quarter of it), the one value the
/// writer has just written, and the source value.
#[test]
fn many_threads_adding_large_values_stay_within_the_bound() {
    let _alone = ONE_AT_A_TIME.lock();
    let bound: u64 = 64 << 20;
    let len: u64 = 16 << 20;
    let cache = Arc::new(
        Builder::with_file_factory(|| Ok(NullDisk))
            .max_pending_bytes(bound)
            .build()
            .unwrap(),
    );
    let value: Arc<[u8]> = vec![7u8; len as usize].into();
    let live_before = LIVE_LARGE.load(Ordering::SeqCst);
    PEAK_LARGE.store(live_before, Ordering::SeqCst);

    let threads: Vec<_> = (0..16u8)
        .map(|i| {
            let (cache, value) = (Arc::clone(&cache), Arc::clone(&value));
            std::thread::spawn(move || {
                for round in 0..2u8 {
                    cache.add(&[i, round], &value).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());

    let peak = PEAK_LARGE.load(Ordering::SeqCst) - live_before;
    let allowed = bound + bound / 4 + len;
    eprintln!(
        "peak of values held: {} MiB (bound {} MiB, allowed {} MiB), room waits {}",
        peak >> 20,
        bound >> 20,
        allowed >> 20,
        cache.stats().room_waits
    );
    assert!(peak <= allowed, "{peak} bytes held at the peak");
    assert_eq!(cache.stats().writes, 32);
}
