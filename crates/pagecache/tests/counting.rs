//! A counting device proves the claims about device reads: coalescing,
//! `syscalls` exactness, one read for a page two threads miss at once, and
//! hits that do not wait for another thread's miss.

mod common;

use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use common::{CountingDevice, pattern};
use pagecache::{ByteSource, ByteSourceExt, PageCache};

const PAGE: usize = 512;

fn cache_over(len: usize, capacity: usize, batch: usize) -> PageCache<Arc<CountingDevice>> {
    PageCache::builder()
        .page_size(PAGE)
        .capacity(capacity)
        .max_batch_pages(batch)
        .build(Arc::new(CountingDevice::new(pattern(len))))
        .expect("valid shape")
}

#[test]
fn cold_read_of_contiguous_pages_is_one_device_read() {
    let cache = cache_over(100 * PAGE, 64, 64);
    let mut buf = vec![0; 10 * PAGE];
    cache.read_bytes_at(3 * PAGE as u64 + 7, &mut buf).unwrap();
    assert_eq!(buf, pattern(100 * PAGE)[3 * PAGE + 7..13 * PAGE + 7]);
    // Pages 3 to 13: eleven pages, one call covering exactly them.
    assert_eq!(cache.device().log(), [(3 * PAGE as u64, 11 * PAGE)]);
    assert_eq!(cache.stats().resident_pages, 11);
    assert_eq!(cache.misses(), 11);
}

#[test]
fn straddling_getter_reads_both_pages_with_one_call() {
    let cache = cache_over(4 * PAGE, 4, 4);
    let pos = PAGE as u64 - 3;
    let want = u64::from_be_bytes(pattern(4 * PAGE)[PAGE - 3..PAGE + 5].try_into().unwrap());
    assert_eq!(cache.get_u64_be(pos).unwrap(), want);
    assert_eq!(cache.device().reads(), 1);
    assert_eq!(cache.get_u64_be(pos).unwrap(), want);
    assert_eq!(cache.device().reads(), 1);
    assert_eq!(cache.hits(), 2);
}

#[test]
fn only_missing_runs_are_read_each_with_one_call() {
    let cache = cache_over(16 * PAGE, 16, 16);
    for page in [2u64, 5] {
        cache.get_u8(page * PAGE as u64).unwrap();
    }
    cache.device().reset();
    let mut buf = vec![0; 8 * PAGE];
    cache.read_bytes_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(16 * PAGE)[..8 * PAGE]);
    let p = PAGE as u64;
    assert_eq!(
        cache.device().log(),
        [(0, 2 * PAGE), (3 * p, 2 * PAGE), (6 * p, 2 * PAGE)]
    );
}

#[test]
fn short_last_page_is_read_to_the_end_of_the_device_only() {
    let len = 3 * PAGE + 100;
    let cache = cache_over(len, 8, 8);
    let mut buf = vec![0; 2 * PAGE + 50];
    cache.read_bytes_at(PAGE as u64 + 50, &mut buf).unwrap();
    assert_eq!(cache.device().log(), [(PAGE as u64, 2 * PAGE + 100)]);
    assert_eq!(
        cache.load(3 * PAGE as u64, 100).unwrap().unwrap().len(),
        100
    );
    assert_eq!(cache.device().reads(), 1);
}

#[test]
fn syscalls_is_exactly_the_device_reads_of_a_cold_read() {
    let len = 40 * PAGE + 33;
    for batch in [1, 2, 3, 8, 64] {
        let capacity = 64;
        let template = cache_over(len, capacity, batch.min(capacity));
        for (addr, n) in [
            (0u64, 0usize),
            (0, 1),
            (511, 2),
            (0, PAGE),
            (1, PAGE),
            (100, 7 * PAGE),
            (0, len),
            (len as u64 - 1, 1),
            (len as u64, 0),
            (17 * PAGE as u64 + 5, 20 * PAGE),
        ] {
            let cold = template.empty_copy_counting();
            let predicted = cold.syscalls(addr, n as u64).unwrap();
            let mut buf = vec![0; n];
            cold.read_bytes_at(addr, &mut buf).unwrap();
            assert_eq!(
                cold.device().reads(),
                predicted,
                "batch {batch}, {n} bytes at {addr}"
            );
        }
    }
}

/// `empty_copy` clones the device handle; tests want a fresh counter.
trait FreshCounter {
    fn empty_copy_counting(&self) -> PageCache<Arc<CountingDevice>>;
}

impl FreshCounter for PageCache<Arc<CountingDevice>> {
    fn empty_copy_counting(&self) -> PageCache<Arc<CountingDevice>> {
        PageCache::builder()
            .page_size(self.page_size())
            .capacity(self.capacity())
            .max_batch_pages(self.max_batch_pages())
            .build(Arc::new(CountingDevice::new(self.device().mem().to_vec())))
            .unwrap()
    }
}

#[test]
fn two_threads_missing_the_same_page_read_it_once() {
    let device = Arc::new(CountingDevice::new(pattern(8 * PAGE)).slow(Duration::from_millis(400)));
    let cache = Arc::new(
        PageCache::builder()
            .page_size(PAGE)
            .capacity(8)
            .build(Arc::clone(&device))
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(2));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                cache.get_u32_le(PAGE as u64 + 10).unwrap()
            })
        })
        .collect();
    let values: Vec<u32> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let want = u32::from_le_bytes(pattern(8 * PAGE)[PAGE + 10..PAGE + 14].try_into().unwrap());
    assert_eq!(values, [want, want]);
    assert_eq!(device.reads(), 1);
    // The thread that waited counts a miss: the page was not there when it asked.
    assert_eq!((cache.misses(), cache.hits()), (2, 0));
}

#[test]
fn hits_and_other_misses_do_not_wait_for_a_pending_miss() {
    let held = 4 * PAGE as u64;
    let device = Arc::new(CountingDevice::new(pattern(8 * PAGE)).hold_reads_at(held));
    let cache = Arc::new(
        PageCache::builder()
            .page_size(PAGE)
            .capacity(8)
            .build(Arc::clone(&device))
            .unwrap(),
    );
    cache.get_u8(0).unwrap();
    let stuck = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || cache.get_u8(held).unwrap())
    };
    while device.arrived_at_gate() == 0 {
        thread::yield_now();
    }
    // Page 4 is being read and its device call is blocked. A hit on page 0
    // and a miss on page 6 must both finish meanwhile.
    let (done, finished) = mpsc::channel();
    {
        let cache = Arc::clone(&cache);
        thread::spawn(move || {
            let hit = cache.get_u8(1).unwrap();
            let miss = cache.get_u8(6 * PAGE as u64).unwrap();
            done.send((hit, miss)).unwrap();
        });
    }
    let outcome = finished.recv_timeout(Duration::from_secs(10));
    device.open();
    let data = pattern(8 * PAGE);
    assert_eq!(outcome, Ok((data[1], data[6 * PAGE])));
    assert_eq!(stuck.join().unwrap(), data[4 * PAGE]);
}

#[test]
fn a_failed_read_releases_its_waiters_and_the_next_read_retries() {
    use blockdev::{Errno, Fault, FaultyDevice, MemDevice};
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(pattern(4 * PAGE))));
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(4)
        .build(Arc::clone(&device))
        .unwrap();
    device.fail_reads(Fault::Nth(1, Errno::IO));
    let err = cache.get_u16_le(PAGE as u64 - 1).unwrap_err();
    assert!(
        matches!(err, pagecache::Error::Io(ref e) if e.raw_os_error() == Some(Errno::IO.raw()))
    );
    assert_eq!(cache.stats().resident_pages, 0);
    assert!(!cache.is_cached(0));
    let data = pattern(4 * PAGE);
    assert_eq!(
        cache.get_u16_le(PAGE as u64 - 1).unwrap(),
        u16::from_le_bytes([data[PAGE - 1], data[PAGE]])
    );
}
