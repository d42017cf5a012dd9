//! Read-ahead through the caching store, over a store that answers like
//! one across a network (`LatencyStore`, 10 ms to the first byte): a
//! sequential reader's consecutive requests keep several GETs in flight;
//! random requests, however large, fetch nothing ahead; a replaced object
//! is never answered with bytes fetched ahead of the old version.

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objectcache::CachingStore;
use objectdev::{CountingStore, LatencyStore};

const PAGE_SIZE: usize = 16 << 10;
const CHUNK_SIZE: u64 = 256 << 10;
const READ_AHEAD: u64 = 16 << 20;
const LEN: usize = 16 << 20;
/// What a sequential reader asks for at a time.
const STEP: usize = 512 << 10;

/// Bytes of version `version` of an object: each byte says its version
/// and (roughly) its position, so bytes of two versions never compare
/// equal at the same position.
fn version_bytes(version: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| version.wrapping_mul(101) ^ (i % 251) as u8)
        .collect()
}

struct Setup {
    /// The store behind the latency, where another writer would write.
    memory: Arc<InMemory>,
    counting: Arc<CountingStore>,
    cached: CachingStore,
    path: Path,
}

/// Version 1 of an object of `LEN` bytes in memory behind 10 ms of latency
/// and 200 MB/s per request, counted, with a cache in front.
async fn setup() -> Setup {
    let memory = Arc::new(InMemory::new());
    let path = Path::from("data/object");
    put(memory.as_ref(), &path, 1).await;
    let slow = LatencyStore::new(memory.clone(), Duration::from_millis(10), 200_000_000).unwrap();
    let counting = Arc::new(CountingStore::new(Arc::new(slow)));
    let cached = CachingStore::builder()
        .page_size(PAGE_SIZE)
        .chunk_size(CHUNK_SIZE)
        .ram_bytes(32 << 20)
        .read_ahead_bytes(READ_AHEAD)
        .disk_bytes(64 << 20)
        .build(counting.clone())
        .unwrap();
    Setup {
        memory,
        counting,
        cached,
        path,
    }
}

async fn put(store: &dyn ObjectStore, path: &Path, version: u8) {
    store
        .put(path, PutPayload::from(version_bytes(version, LEN)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_read_in_consecutive_ranges_keeps_several_gets_in_flight() {
    let Setup {
        counting,
        cached,
        path,
        ..
    } = setup().await;
    let expected = version_bytes(1, LEN);
    for start in (0..LEN).step_by(STEP) {
        let got = cached
            .get_range(&path, start as u64..(start + STEP) as u64)
            .await
            .unwrap();
        assert!(got == expected[start..start + STEP], "bytes at {start}");
    }
    let counts = counting.counts();
    let read_ahead = cached.stats().read_ahead;
    eprintln!(
        "a sequential read of {LEN} bytes in {STEP}-byte requests: {counts:?}, {read_ahead:?}"
    );
    assert!(counts.max_gets_in_flight > 1, "{counts:?}");
    assert!(read_ahead.gets > 0, "{read_ahead:?}");
    // Most of the object came through read-ahead.
    assert!(read_ahead.used_bytes >= LEN as u64 / 2, "{read_ahead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_small_or_large_fetch_nothing_ahead() {
    let Setup {
        counting,
        cached,
        path,
        ..
    } = setup().await;
    let expected = version_bytes(1, LEN);
    let mut state = 7u64;
    let mut last_end = u64::MAX;
    let mut asked_chunks = 0;
    for i in 0..40 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Every other one is larger than the page cache's sequential
        // threshold (256 KiB), which alone would make it hint.
        let len = if i % 2 == 0 { 4 << 10 } else { 600 << 10 };
        let start = (state >> 20) % (LEN as u64 - len);
        if start >= last_end && start - last_end <= CHUNK_SIZE {
            continue; // it would continue the last one: not random
        }
        last_end = start + len;
        asked_chunks += (start + len - 1) / CHUNK_SIZE - start / CHUNK_SIZE + 1;
        let got = cached.get_range(&path, start..start + len).await.unwrap();
        assert!(got == expected[start as usize..(start + len) as usize]);
    }
    let read_ahead = cached.stats().read_ahead;
    assert_eq!(read_ahead.gets, 0, "{read_ahead:?}");
    let counts = counting.counts();
    assert!(
        counts.get_bytes <= asked_chunks * CHUNK_SIZE,
        "{counts:?}: {asked_chunks} chunks asked for"
    );
}

/// Reads `path` from `from` to the end in `STEP`s; the version each
/// answer is entirely of, checked byte by byte.
async fn read_versions(cached: &CachingStore, path: &Path, from: usize) -> Vec<u8> {
    let versions = [version_bytes(1, LEN), version_bytes(2, LEN)];
    let mut seen = Vec::new();
    for start in (from..LEN).step_by(STEP) {
        let got = cached
            .get_range(path, start as u64..(start + STEP) as u64)
            .await
            .unwrap();
        let version = versions
            .iter()
            .position(|bytes| got == bytes[start..start + STEP])
            .unwrap_or_else(|| panic!("the answer at {start} is not of one version"));
        seen.push(version as u8 + 1);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_through_the_cache_is_never_answered_with_bytes_fetched_ahead() {
    let Setup { cached, path, .. } = setup().await;
    // A sequential start: read-ahead is fetching version 1's next bytes.
    read_versions_prefix(&cached, &path, 4).await;
    assert!(cached.stats().read_ahead.gets > 0);
    put(&cached, &path, 2).await;
    let after = read_versions(&cached, &path, 0).await;
    assert!(after.iter().all(|&v| v == 2), "{after:?}");
}

/// Reads the first `steps` steps of `path` (all of version 1).
async fn read_versions_prefix(cached: &CachingStore, path: &Path, steps: usize) {
    let expected = version_bytes(1, LEN);
    for start in (0..steps * STEP).step_by(STEP) {
        let got = cached
            .get_range(path, start as u64..(start + STEP) as u64)
            .await
            .unwrap();
        assert!(got == expected[start..start + STEP]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_writers_put_is_answered_whole_once_seen_never_mixed_with_bytes_fetched_ahead() {
    let Setup {
        memory,
        cached,
        path,
        ..
    } = setup().await;
    read_versions_prefix(&cached, &path, 4).await;
    let fetched_ahead = cached.stats().read_ahead.gets;
    assert!(fetched_ahead > 0);
    // Another writer replaces the object behind the cache's back.
    put(memory.as_ref(), &path, 2).await;
    let seen = read_versions(&cached, &path, 4 * STEP).await;
    // Bytes of version 1 fetched ahead may answer until the cache has to
    // ask the store; from then on, only version 2.
    let first_new = seen.iter().position(|&v| v == 2).unwrap_or(seen.len());
    assert!(seen[first_new..].iter().all(|&v| v == 2), "{seen:?}");
    assert!(first_new < seen.len(), "the change is seen: {seen:?}");
    let again = read_versions(&cached, &path, 0).await;
    assert!(again.iter().all(|&v| v == 2), "{again:?}");
}
