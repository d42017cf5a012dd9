//! Read-ahead over a store that answers like one across a network
//! (`LatencyStore`, 5 ms to the first byte): a sequential scan through the
//! stack keeps several GETs in flight; random reads make no read-ahead
//! GET; a read-ahead GET that fails fails no read that did not need it;
//! the page cache's read-ahead setting bounds what the device holds
//! ahead (0: nothing); a reader that jumps aborts the GETs of the window
//! it left.

mod support;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use blockdev::ReadAt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore};
use objectdev::{CountingStore, Error, LatencyStore, ObjectDevice};
use pagecache::{ByteSourceExt, PageCache};
use spillcache::SpillTier;
use support::{noise, upload};

const PART: u64 = 256 << 10;

/// An object of `len` bytes of noise in memory behind 5 ms of latency and
/// 200 MB/s per request, counted.
fn slow_object(len: usize) -> (Arc<CountingStore>, Path, Vec<u8>) {
    let memory = Arc::new(InMemory::new());
    let path = Path::from("object");
    let bytes = noise(11, len);
    upload(memory.as_ref(), &path, &bytes);
    let slow = LatencyStore::new(memory, Duration::from_millis(5), 200_000_000).expect("valid");
    (Arc::new(CountingStore::new(Arc::new(slow))), path, bytes)
}

/// RAM pages over an encrypted disk tier over the device, both small.
fn stack(
    device: &Arc<ObjectDevice>,
    ram_pages: usize,
    tier_bytes: u64,
) -> PageCache<SpillTier<Arc<ObjectDevice>>> {
    stack_reading_ahead(device, ram_pages, tier_bytes, None)
}

/// As [`stack`], the page cache's read-ahead set to `read_ahead` (its
/// default when `None`).
fn stack_reading_ahead(
    device: &Arc<ObjectDevice>,
    ram_pages: usize,
    tier_bytes: u64,
    read_ahead: Option<u64>,
) -> PageCache<SpillTier<Arc<ObjectDevice>>> {
    let tier = SpillTier::with_chunk_size(
        Arc::clone(device),
        std::env::temp_dir(),
        tier_bytes,
        64 << 10,
    )
    .expect("a tier");
    let builder = PageCache::builder().capacity(ram_pages).max_batch_pages(16); // 64 KiB device reads
    match read_ahead {
        Some(bytes) => builder.read_ahead(bytes),
        None => builder,
    }
    .build(tier)
    .expect("valid shape")
}

/// Reads `bytes.len()` bytes through `cache` from `from`, 1 MiB at a time,
/// checking them; after each read, `after` is called.
fn scan(
    cache: &PageCache<SpillTier<Arc<ObjectDevice>>>,
    bytes: &[u8],
    from: usize,
    len: usize,
    mut after: impl FnMut(),
) {
    let mut out = vec![0u8; 1 << 20];
    for start in (from..from + len).step_by(1 << 20) {
        cache.blit(start as u64, &mut out, 0, 1 << 20).unwrap();
        assert!(out == bytes[start..start + (1 << 20)], "bytes at {start}");
        after();
    }
}

#[test]
fn a_sequential_scan_through_the_stack_keeps_several_gets_in_flight() {
    let (counting, path, bytes) = slow_object(16 << 20);
    let device = ObjectDevice::new(counting.clone(), path)
        .unwrap()
        .with_part_size(PART)
        .unwrap();
    let device = Arc::new(device);
    let cache = stack(&device, 256, 4 << 20);
    let mut out = vec![0u8; bytes.len()];
    for start in (0..bytes.len()).step_by(1 << 20) {
        cache
            .blit(start as u64, &mut out[start..start + (1 << 20)], 0, 1 << 20)
            .unwrap();
    }
    assert!(out == bytes, "the scan returns the object's bytes");
    let counts = counting.counts();
    let stats = device.read_ahead_stats();
    assert!(counts.max_gets_in_flight >= 4, "{counts:?}");
    // Nearly every byte came through read-ahead, and none twice.
    assert!(
        stats.used_bytes >= bytes.len() as u64 - (1 << 20),
        "{stats:?}"
    );
    assert!(
        counts.get_bytes <= bytes.len() as u64 + stats.unused_bytes,
        "{counts:?} {stats:?}"
    );
}

#[test]
fn random_reads_make_no_read_ahead_get() {
    let (counting, path, bytes) = slow_object(64 << 20);
    let device = Arc::new(
        ObjectDevice::new(counting.clone(), path)
            .unwrap()
            .with_part_size(PART)
            .unwrap(),
    );
    // RAM and tier far smaller than the object.
    let cache = stack(&device, 64, 1 << 20);
    let mut state = 5u64;
    for _ in 0..200 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let pos = (state >> 16) % (bytes.len() as u64 - 4096);
        let mut buf = [0u8; 4096];
        cache.blit(pos, &mut buf, 0, 4096).unwrap();
        assert_eq!(buf[..], bytes[pos as usize..pos as usize + 4096]);
        assert_eq!(cache.get_u8(pos).unwrap(), bytes[pos as usize]);
    }
    assert_eq!(device.read_ahead_stats().gets, 0);
    assert_eq!(counting.counts().max_gets_in_flight, 1);
}

/// Fails every GET of a range overlapping `fail`, never finishes one that
/// starts in `hang` (counting those dropped unfinished), forwards the rest.
struct FailingStore {
    inner: Arc<dyn ObjectStore>,
    fail: std::ops::Range<u64>,
    hang: std::ops::Range<u64>,
    /// GETs in `hang` dropped by their caller.
    dropped: Arc<AtomicU64>,
}

impl FailingStore {
    fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FailingStore {
            inner,
            fail: 0..0,
            hang: 0..0,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Counts a hanging GET dropped by its caller.
struct Unfinished(Arc<AtomicU64>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Relaxed);
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failing({})", self.inner)
    }
}

impl fmt::Debug for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore")
    }
}

impl FailingStore {
    async fn failing_get(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if matches!(&options.range, Some(GetRange::Bounded(range)) if range.start < self.fail.end && range.end > self.fail.start)
        {
            return Err(object_store::Error::Generic {
                store: "FailingStore",
                source: "injected failure".into(),
            });
        }
        if matches!(&options.range, Some(GetRange::Bounded(range)) if self.hang.contains(&range.start))
        {
            let _unfinished = Unfinished(Arc::clone(&self.dropped));
            std::future::pending::<()>().await;
        }
        self.inner.get_opts(location, options).await
    }
}

objectdev::forward_object_store!(FailingStore => inner, get_opts: failing_get);

#[test]
fn a_failed_read_ahead_get_fails_only_the_read_that_needs_its_bytes() {
    let memory = Arc::new(InMemory::new());
    let path = Path::from("object");
    let bytes = noise(3, 4 * PART as usize);
    upload(memory.as_ref(), &path, &bytes);
    let failing = FailingStore {
        fail: 2 * PART..3 * PART,
        ..FailingStore::new(memory)
    };
    let device = ObjectDevice::new(Arc::new(failing), path)
        .unwrap()
        .with_part_size(PART)
        .unwrap();
    device.will_need(0, 4 * PART);
    let deadline = Instant::now() + Duration::from_secs(10);
    while device.read_ahead_stats().failed == 0 {
        assert!(
            Instant::now() < deadline,
            "the read-ahead GET never finished"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // The parts around the failed one are served, right.
    let mut buf = vec![0u8; 2 * PART as usize];
    device.read_exact_at(0, &mut buf).unwrap();
    assert!(buf == bytes[..2 * PART as usize]);
    device
        .read_exact_at(3 * PART, &mut buf[..PART as usize])
        .unwrap();
    assert!(buf[..PART as usize] == bytes[3 * PART as usize..]);
    // The read that needs the failed part asks again, and reports the error.
    let err = device
        .read_exact_at(2 * PART + 10, &mut [0u8; 10])
        .unwrap_err();
    let inner = Error::from_io(&err).expect("an objectdev error");
    assert!(
        matches!(inner, Error::Store(object_store::Error::Generic { .. })),
        "{inner:?}"
    );
    let stats = device.read_ahead_stats();
    assert_eq!(
        (stats.gets, stats.failed, stats.used_bytes),
        (4, 1, 3 * PART)
    );
}

#[test]
fn the_page_caches_read_ahead_bounds_what_the_device_holds_ahead() {
    let (counting, path, bytes) = slow_object(16 << 20);
    // Opened with the default cap, 128 MiB.
    let device = ObjectDevice::new(counting.clone(), path)
        .unwrap()
        .with_part_size(PART)
        .unwrap();
    let device = Arc::new(device);
    let bound = 4 * PART;
    let cache = stack_reading_ahead(&device, 256, 4 << 20, Some(bound));
    assert_eq!(device.read_ahead(), bound);
    // Whatever is hinted (here, the whole object, by the tier directly),
    // the device holds no more than the bound.
    cache.device().will_need(0, bytes.len() as u64);
    let mut most = device.read_ahead_stats().buffered_bytes;
    scan(&cache, &bytes, 0, bytes.len(), || {
        most = most.max(device.read_ahead_stats().buffered_bytes);
    });
    let stats = device.read_ahead_stats();
    assert!(most <= bound, "{most} bytes held ahead");
    assert!(stats.peak_buffered_bytes <= bound, "{stats:?}");
    // Still reading ahead, several GETs at once.
    assert!(stats.used_bytes >= 8 << 20, "{stats:?}");
    assert!(counting.counts().max_gets_in_flight >= 2);
}

#[test]
fn read_ahead_zero_on_the_page_cache_makes_no_read_ahead_get_below() {
    let (counting, path, bytes) = slow_object(4 << 20);
    let device = Arc::new(
        ObjectDevice::new(counting.clone(), path)
            .unwrap()
            .with_part_size(PART)
            .unwrap(),
    );
    let cache = stack_reading_ahead(&device, 256, 4 << 20, Some(0));
    assert_eq!(device.read_ahead(), 0);
    // Whoever hints (here the tier, directly), the device fetches nothing.
    cache.device().will_need(0, bytes.len() as u64);
    scan(&cache, &bytes, 0, bytes.len(), || {});
    let stats = device.read_ahead_stats();
    assert_eq!((stats.gets, stats.peak_buffered_bytes), (0, 0));
    assert_eq!(counting.counts().get_bytes, bytes.len() as u64);
}

#[test]
fn a_reader_that_jumps_aborts_the_gets_of_the_window_it_left() {
    let memory = Arc::new(InMemory::new());
    let path = Path::from("object");
    let bytes = noise(5, 32 << 20);
    upload(memory.as_ref(), &path, &bytes);
    // Read-ahead GETs past 8 MiB never finish unless aborted.
    let hanging = FailingStore {
        hang: 8 << 20..16 << 20,
        ..FailingStore::new(memory)
    };
    let dropped = Arc::clone(&hanging.dropped);
    let device = ObjectDevice::new(Arc::new(hanging), path)
        .unwrap()
        .with_part_size(PART)
        .unwrap();
    let device = Arc::new(device);
    let cache = stack_reading_ahead(&device, 256, 4 << 20, Some(4 << 20));
    // A scan up to 7 MiB: its window reaches past 8 MiB, into GETs that hang.
    scan(&cache, &bytes, 0, 7 << 20, || {});
    assert!(device.read_ahead_stats().buffered_bytes > 0);
    assert_eq!(device.read_ahead_stats().cancelled, 0);
    // The reader jumps to 24 MiB and scans on there.
    scan(&cache, &bytes, 24 << 20, 4 << 20, || {});
    let stats = device.read_ahead_stats();
    assert!(stats.cancelled > 0, "{stats:?}");
    // The store sees the GETs dropped unfinished.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dropped.load(Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no hanging GET was dropped");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(stats.used_bytes >= 4 << 20, "{stats:?}");
}
