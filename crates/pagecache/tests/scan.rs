//! Scans (`for_each_chunk` and `blit`) against the flat bytes of the
//! device, cold and warm, with short and failing device reads.

use std::sync::Arc;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice};
use pagecache::{Error, PageCache};
use proptest::prelude::*;

fn device_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// The pieces `for_each_chunk` visits, checked to be in order, contiguous
/// and never across a page boundary.
fn visit_all<D: blockdev::ReadAt>(
    cache: &PageCache<D>,
    addr: u64,
    len: u64,
) -> (Result<(), Error>, Vec<u8>) {
    let page = cache.page_size() as u64;
    let mut seen = Vec::new();
    let mut next = addr;
    let result = cache.for_each_chunk(addr, len, |at, piece| {
        assert_eq!(at, next, "pieces out of order");
        assert!(!piece.is_empty(), "an empty piece at {at}");
        assert_eq!(
            at / page,
            (at + piece.len() as u64 - 1) / page,
            "a piece across a page boundary at {at}"
        );
        if at != addr {
            assert_eq!(at % page, 0, "a piece after the first starts inside a page");
        }
        seen.extend_from_slice(piece);
        next += piece.len() as u64;
    });
    (result, seen)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
    ))]

    /// Every scan, in bounds or not, over a cache of any shape (which may
    /// be too small for the range), sees exactly the device's bytes.
    #[test]
    fn scans_see_the_device_bytes(
        device_len in 0usize..3000,
        page_shift in 0u32..9,
        capacity_shift in 0u32..5,
        batch in 1usize..9,
        short in proptest::option::of(1usize..100),
        scans in proptest::collection::vec((0u64..3100, 0u64..3100), 1..8),
    ) {
        let bytes = device_bytes(device_len);
        let device = FaultyDevice::new(MemDevice::from_vec(bytes.clone()));
        if let Some(max) = short {
            device.short_reads(max);
        }
        let cache = PageCache::builder()
            .page_size(1 << page_shift)
            .capacity(1 << capacity_shift)
            .max_batch_pages(batch.min(1 << capacity_shift))
            .build(device)
            .unwrap();
        for (addr, len) in scans {
            let (result, seen) = visit_all(&cache, addr, len);
            let mut blitted = vec![0xee; len as usize];
            let blit = cache.blit(addr, &mut blitted, 0, len as usize);
            let end = addr.checked_add(len).filter(|&end| end <= device_len as u64);
            match end {
                Some(end) => {
                    prop_assert!(result.is_ok() && blit.is_ok(), "{result:?} {blit:?}");
                    prop_assert_eq!(&seen[..], &bytes[addr as usize..end as usize]);
                    prop_assert_eq!(&blitted[..], &bytes[addr as usize..end as usize]);
                }
                None => {
                    let out_of_bounds = matches!(result, Err(Error::OutOfBounds(_)));
                    prop_assert!(out_of_bounds, "{result:?}");
                    prop_assert!(seen.is_empty());
                    prop_assert!(blitted.iter().all(|&b| b == 0xee), "blit wrote out of bounds");
                }
            }
        }
    }
}

#[test]
fn a_cold_scan_reads_each_batch_of_pages_with_one_device_call() {
    let bytes = device_bytes(100 * 64 + 10);
    let cache = PageCache::builder()
        .page_size(64)
        .capacity(128)
        .max_batch_pages(8)
        .build(MemDevice::from_vec(bytes.clone()))
        .unwrap();
    let (result, seen) = visit_all(&cache, 0, bytes.len() as u64);
    result.unwrap();
    assert_eq!(seen, bytes);
    assert_eq!(
        cache.stats().device_reads,
        cache.syscalls(0, bytes.len() as u64).unwrap()
    );
    assert_eq!(cache.stats().device_reads, 13);
    // Warm: no device reads, one hit per page.
    cache.reset_stats();
    let (result, seen) = visit_all(&cache, 0, bytes.len() as u64);
    result.unwrap();
    assert_eq!(seen, bytes);
    assert_eq!((cache.stats().device_reads, cache.hits()), (0, 101));
}

#[test]
fn a_failing_device_read_ends_the_scan_with_the_error_after_a_correct_prefix() {
    let bytes = device_bytes(64 * 40);
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(bytes.clone())));
    let cache = PageCache::builder()
        .page_size(64)
        .capacity(64)
        .max_batch_pages(4)
        .build(Arc::clone(&device))
        .unwrap();
    device.fail_reads(Fault::Nth(3, Errno::IO));
    let (result, seen) = visit_all(&cache, 10, bytes.len() as u64 - 10);
    match result {
        Err(Error::Io(err)) => assert_eq!(err.raw_os_error(), Some(Errno::IO.raw())),
        other => panic!("expected the device's error, got {other:?}"),
    }
    // Two batches of four pages were read before the third read failed.
    assert_eq!(seen, bytes[10..4 * 64 * 2]);
    // Nothing wrong was cached: the same scan succeeds once the device does.
    device.clear_faults();
    let (result, seen) = visit_all(&cache, 10, bytes.len() as u64 - 10);
    result.unwrap();
    assert_eq!(seen, bytes[10..]);
    let mut out = vec![0; bytes.len()];
    cache.blit(0, &mut out, 0, bytes.len()).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn a_device_that_always_fails_visits_nothing_and_blits_nothing() {
    let device = FaultyDevice::new(MemDevice::from_vec(device_bytes(1000)));
    device.fail_reads(Fault::Always(Errno::IO));
    let cache = PageCache::builder().page_size(128).build(device).unwrap();
    let (result, seen) = visit_all(&cache, 0, 1000);
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
    assert!(seen.is_empty());
    let mut out = vec![7; 1000];
    assert!(matches!(
        cache.blit(0, &mut out, 0, 1000),
        Err(Error::Io(_))
    ));
    assert_eq!(cache.stats().resident_pages, 0);
}

/// Every byte of `page` at generation `generation`: the page number in
/// the high nibble, so a page holding another page's bytes shows too.
fn tag(page: usize, generation: usize) -> u8 {
    ((page << 4) | (generation % 16)) as u8
}

#[test]
fn blits_racing_installs_evictions_and_invalidations_never_return_a_torn_page() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::time::{Duration, Instant};

    use blockdev::WriteAt;

    const PAGE: usize = 4096;
    const PAGES: usize = 16;
    let device = MemDevice::from_vec((0..PAGES).flat_map(|p| [tag(p, 0); PAGE]).collect());
    // Half the pages fit: the readers' misses evict the frames others copy.
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(PAGES / 2)
        .build(device.clone())
        .unwrap();
    let writing = AtomicBool::new(true);
    let (blits, rewrites) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let start = Instant::now();
            let mut i = PAGES;
            while start.elapsed() < Duration::from_secs(1) {
                let page = i % PAGES;
                let bytes = [tag(page, i / PAGES); PAGE];
                device.write_all_at((page * PAGE) as u64, &bytes).unwrap();
                cache.invalidate((page * PAGE) as u64, PAGE as u64).unwrap();
                i += 1;
                rewrites.fetch_add(1, Relaxed);
            }
            writing.store(false, Relaxed);
        });
        // A hot run of pages (mostly hits), the whole device (misses that
        // evict), and a range starting inside a page.
        for (start, len) in [(0, 3 * PAGE), (0, PAGES * PAGE), (PAGE / 2, 5 * PAGE)] {
            let (cache, writing, blits) = (&cache, &writing, &blits);
            scope.spawn(move || {
                let mut buf = vec![0; len];
                while writing.load(Relaxed) {
                    cache.blit(start as u64, &mut buf, 0, len).unwrap();
                    blits.fetch_add(1, Relaxed);
                    let mut at = start;
                    while at < start + len {
                        let end = ((at / PAGE + 1) * PAGE).min(start + len);
                        let piece = &buf[at - start..end - start];
                        let (page, first) = (at / PAGE, piece[0]);
                        assert!(
                            usize::from(first >> 4) == page && piece.iter().all(|&b| b == first),
                            "torn or foreign page {page} at {at}: {:?}",
                            &piece[..16]
                        );
                        at = end;
                    }
                }
            });
        }
    });
    assert!(blits.into_inner() > 0 && rewrites.into_inner() > 0);
    assert!(cache.hits() > 0 && cache.stats().evictions > 0);
}

/// Records where the device was asked to write each read.
struct WhereReads {
    inner: MemDevice,
    targets: std::sync::Mutex<Vec<(usize, usize)>>,
}

impl blockdev::ReadAt for WhereReads {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = buf.as_ptr() as usize;
        self.targets
            .lock()
            .unwrap()
            .push((start, start + buf.len()));
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
}

/// A cold read whose missing pages start where it starts lands in the
/// caller's buffer: no buffer of the cache's own, no second copy. The
/// pages are cached all the same.
#[test]
fn a_cold_aligned_read_fetches_straight_into_the_callers_buffer() {
    let bytes = device_bytes(64 << 10);
    let device = WhereReads {
        inner: MemDevice::from_vec(bytes.clone()),
        targets: std::sync::Mutex::new(Vec::new()),
    };
    let cache = PageCache::builder()
        .page_size(4096)
        .capacity(64)
        .max_batch_pages(4)
        .build(device)
        .expect("valid shape");
    let len = 32 << 10;
    let mut out = vec![0u8; len];
    cache.blit(8192, &mut out, 0, len).expect("read");
    assert_eq!(out, bytes[8192..8192 + out.len()]);
    let (lo, hi) = (out.as_ptr() as usize, out.as_ptr() as usize + out.len());
    let targets = cache.device().targets.lock().unwrap().clone();
    assert_eq!(targets.len(), 2, "two batches of 4 pages");
    for (start, end) in targets {
        assert!(
            lo <= start && end <= hi,
            "a device read outside the caller's buffer"
        );
    }
    assert!(
        (8192..8192 + out.len() as u64)
            .step_by(4096)
            .all(|at| cache.is_cached(at))
    );
}
