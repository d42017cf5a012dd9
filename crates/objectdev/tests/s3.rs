//! Against a real S3 server on 127.0.0.1 (s3s-fs in this process, or the
//! one the environment names): what the stack costs in requests, and what
//! faults do.
//!
//! The request counts are the point: RAM pages (`PageCache`) over an
//! encrypted disk tier (`SpillTier`) over the object (`ObjectDevice`) turn
//! a cold sequential read into one GET per batch, and a warm one into none.

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use blockdev::ReadAt;
use object_store::ObjectStore;
use objectdev::{Error, ObjectDevice, RequestCounts};
use pagecache::PageCache;
use parking_lot::Mutex;
use spillcache::SpillTier;
use support::{TempDir, counting, noise, unique_key, upload};
use testsupport::s3::S3Server;

const PAGE: usize = 4096;
const BATCH_PAGES: usize = 64;
const BATCH_BYTES: u64 = (PAGE * BATCH_PAGES) as u64;

/// Reads `pages` pages from page `first` through `cache`, one page at a time.
fn read_pages<D: ReadAt>(cache: &PageCache<D>, first: usize, pages: usize) -> Vec<u8> {
    let mut out = vec![0u8; pages * PAGE];
    for (i, page) in out.chunks_mut(PAGE).enumerate() {
        cache
            .blit(((first + i) * PAGE) as u64, page, 0, PAGE)
            .expect("read through the stack");
    }
    out
}

/// The stack under test: RAM pages (`capacity` of them, batches of
/// `BATCH_PAGES`) over a disk tier of one-batch chunks (8 MiB budget in
/// `dir`) over `object`.
fn stack(
    object: ObjectDevice,
    dir: &TempDir,
    capacity: usize,
) -> PageCache<SpillTier<ObjectDevice>> {
    let tier = SpillTier::with_chunk_size(object, dir.path(), 8 << 20, BATCH_BYTES).unwrap();
    PageCache::builder()
        .page_size(PAGE)
        .capacity(capacity)
        .max_batch_pages(BATCH_PAGES)
        .build(tier)
        .unwrap()
}

fn gets(before: RequestCounts, after: RequestCounts) -> u64 {
    after.gets - before.gets
}

#[test]
fn the_stack_makes_one_get_per_batch_cold_and_none_warm() {
    let server = S3Server::start();
    let counting = counting(&server);
    let key = unique_key("economics");
    let pages = 1024; // 4 MiB
    let bytes = noise(1, pages * PAGE);
    upload(counting.as_ref(), &key, &bytes);
    let dir = TempDir::new("economics");

    counting.reset();
    let object = ObjectDevice::new(counting.clone(), key).unwrap();
    // Tier chunks of one batch; RAM for a quarter of the object.
    let cache = stack(object, &dir, 256);
    assert_eq!(counting.counts().heads, 1, "one HEAD, at opening");

    // Cold: ceil(N / batch) GETs, each of one batch.
    let before = counting.counts();
    assert!(read_pages(&cache, 0, pages) == bytes, "cold bytes");
    let after = counting.counts();
    assert_eq!(gets(before, after), pages.div_ceil(BATCH_PAGES) as u64);
    assert_eq!(after.get_bytes - before.get_bytes, bytes.len() as u64);
    eprintln!("cold read of {pages} pages: {} GETs", gets(before, after));

    // Again, the pages RAM still holds: no request.
    let before = counting.counts();
    let hits_before = cache.hits();
    assert!(
        read_pages(&cache, pages - BATCH_PAGES, BATCH_PAGES)
            == bytes[(pages - BATCH_PAGES) * PAGE..]
    );
    assert_eq!(gets(before, counting.counts()), 0);
    assert_eq!(cache.hits() - hits_before, BATCH_PAGES as u64);

    // Again from the start: RAM evicted those pages, the disk tier has them.
    let tier_hits = cache.device().stats().chunk_hits;
    assert!(!cache.is_cached(0), "RAM holds a quarter of the object");
    assert!(read_pages(&cache, 0, pages) == bytes, "bytes from the tier");
    assert_eq!(
        gets(before, counting.counts()),
        0,
        "no GET: the disk tier served"
    );
    assert!(cache.device().stats().chunk_hits - tier_hits >= 12);

    // After invalidate and a tier clear, the store is asked again.
    cache.invalidate_all().unwrap();
    cache.device().clear().unwrap();
    let before = counting.counts();
    assert!(read_pages(&cache, 0, BATCH_PAGES) == bytes[..BATCH_BYTES as usize]);
    assert_eq!(gets(before, counting.counts()), 1);
    assert_eq!(counting.counts().heads, 1, "still the one HEAD");
}

#[test]
fn a_large_read_is_split_into_parallel_parts() {
    let server = S3Server::start();
    let counting = counting(&server);
    let key = unique_key("parts");
    let bytes = noise(2, (8 << 20) + 123);
    upload(counting.as_ref(), &key, &bytes);
    let object = ObjectDevice::new(counting.clone(), key)
        .unwrap()
        .with_part_size(1 << 20)
        .unwrap();
    let before = counting.counts();
    let mut buf = vec![0u8; bytes.len()];
    object.read_exact_at(0, &mut buf).unwrap();
    assert!(buf == bytes);
    assert_eq!(
        gets(before, counting.counts()),
        9,
        "8 whole parts and a short one"
    );
    // Past the end: a short read, then zero, with no request.
    let mut tail = [0u8; 200];
    assert_eq!(
        object.read_at(bytes.len() as u64 - 23, &mut tail).unwrap(),
        23
    );
    assert_eq!(object.read_at(bytes.len() as u64, &mut tail).unwrap(), 0);
    assert_eq!(gets(before, counting.counts()), 10);
}

#[test]
fn open_reads_the_url_and_the_environment() {
    let server = S3Server::start();
    let key = unique_key("open");
    upload(&server.store(), &key, b"opened from a URL");
    let url = server.url(key.as_ref());
    let object = ObjectDevice::open_with_options(&url, server.url_options()).unwrap();
    let mut buf = [0u8; 17];
    object.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"opened from a URL");
    // An external server is named by AWS_* variables, which `open` reads.
    if server.is_external() {
        let object = ObjectDevice::open(&url).unwrap();
        object.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"opened from a URL");
    }
}

#[test]
fn errors_keep_the_stores_message() {
    let server = S3Server::start();
    let key = unique_key("absent");
    let err = ObjectDevice::new(Arc::new(server.store()), key.clone()).unwrap_err();
    assert!(
        matches!(err, Error::Store(object_store::Error::NotFound { .. })),
        "{err}"
    );
    let io: io::Error = err.into();
    assert_eq!(io.kind(), io::ErrorKind::NotFound);
    assert!(io.to_string().contains(key.as_ref()), "{io}");

    let wrong = server
        .builder()
        .with_secret_access_key("not-the-secret")
        .with_retry(testsupport::s3::quick_retry())
        .build()
        .unwrap();
    let err = ObjectDevice::new(Arc::new(wrong), key).unwrap_err();
    let io: io::Error = err.into();
    assert!(
        matches!(
            io.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::Other
        ),
        "{io}"
    );
    assert!(!io.to_string().is_empty());
}

#[test]
fn a_server_stopped_mid_read_is_an_error_and_the_cache_recovers() {
    let own = S3Server::start_in_process();
    let counting = counting(&own);
    let key = unique_key("stopped");
    let bytes = noise(3, 2 << 20);
    upload(counting.as_ref(), &key, &bytes);
    let dir = TempDir::new("stopped");
    let object = ObjectDevice::new(counting.clone(), key)
        .unwrap()
        .with_part_size(BATCH_BYTES / 4)
        .unwrap();
    let cache = stack(object, &dir, 1024);
    assert!(read_pages(&cache, 0, BATCH_PAGES) == bytes[..BATCH_BYTES as usize]);

    // Stop the server when the second GET of the next batch goes out: that
    // batch's first part may arrive, the rest cannot.
    let own = Arc::new(Mutex::new(own));
    let stopper = Arc::clone(&own);
    let gets_so_far = counting.counts().gets;
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stopped);
    counting.before_request(Some(Arc::new(move |counts: &RequestCounts| {
        if counts.gets == gets_so_far + 2 && !flag.swap(true, Ordering::SeqCst) {
            stopper.lock().stop();
        }
    })));
    let err = cache
        .blit(
            BATCH_BYTES,
            &mut vec![0u8; BATCH_BYTES as usize],
            0,
            BATCH_BYTES as usize,
        )
        .unwrap_err();
    assert!(
        stopped.load(Ordering::SeqCst),
        "the server was stopped mid-read"
    );
    eprintln!("read with the server stopped: {err}");
    assert!(
        !cache.is_cached(BATCH_BYTES),
        "nothing of the failed batch is cached"
    );
    assert_eq!(
        cache.device().stats().resident_bytes,
        BATCH_BYTES,
        "only the first chunk"
    );
    // What was cached before is still served, with no request.
    assert!(read_pages(&cache, 0, BATCH_PAGES) == bytes[..BATCH_BYTES as usize]);

    counting.before_request(None);
    own.lock().resume();
    let all = read_pages(&cache, 0, bytes.len() / PAGE);
    assert!(all == bytes, "the right bytes once the server is back");
}

#[test]
fn a_replaced_object_is_never_mixed_with_the_old_one() {
    let server = S3Server::start();
    let counting = counting(&server);
    let key = unique_key("replaced");
    let old = noise(10, 1 << 20);
    let new = noise(20, 1 << 20);
    upload(counting.as_ref(), &key, &old);
    let dir = TempDir::new("replaced");
    let object = ObjectDevice::new(counting.clone(), key.clone()).unwrap();
    let cache = stack(object, &dir, 1024);
    assert!(read_pages(&cache, 0, BATCH_PAGES) == old[..BATCH_BYTES as usize]);

    upload(counting.as_ref(), &key, &new);
    // A page not cached yet: the GET answers with the new ETag, refused.
    let err = cache.get_bytes(BATCH_BYTES, 16).unwrap_err();
    let pagecache::Error::Io(io) = &err else {
        panic!("an I/O error, not {err}");
    };
    assert_eq!(io.kind(), io::ErrorKind::StaleNetworkFileHandle, "{io}");
    assert!(
        Error::from_io(io).is_some_and(Error::is_object_changed),
        "{io}"
    );
    // Pages already cached are the old version's, whole.
    assert!(read_pages(&cache, 0, BATCH_PAGES) == old[..BATCH_BYTES as usize]);

    // The documented way to move on: refresh, clear, invalidate.
    let identity = cache.device().device().refresh().unwrap();
    assert_eq!(identity.size, new.len() as u64);
    cache.device().clear().unwrap();
    cache.invalidate_all().unwrap();
    cache.refresh_size().unwrap();
    assert!(
        read_pages(&cache, 0, new.len() / PAGE) == new,
        "all of the new version"
    );
}

#[test]
fn an_object_changed_in_size_is_refused_too() {
    let server = S3Server::start();
    let store: Arc<dyn ObjectStore> = Arc::new(server.store());
    let key = unique_key("resized");
    upload(store.as_ref(), &key, &noise(6, 10_000));
    let object = ObjectDevice::new(Arc::clone(&store), key.clone()).unwrap();
    upload(store.as_ref(), &key, &noise(6, 5_000));
    let err = object.read_exact_at(0, &mut [0u8; 100]).unwrap_err();
    assert!(
        Error::from_io(&err).is_some_and(Error::is_object_changed),
        "{err}"
    );
}
