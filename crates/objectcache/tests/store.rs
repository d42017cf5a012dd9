//! The caching store against the inner store: versions, writes through it,
//! requests it passes through, budgets.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use objectcache::CachingStore;
use objectdev::CountingStore;

const PAGE_SIZE: usize = 4 << 10;
const CHUNK_SIZE: u64 = 16 << 10;

/// Bytes of version `version` of an object: each byte says its version
/// and (roughly) its position, so bytes of two versions never compare equal.
fn version_bytes(version: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| version.wrapping_mul(101) ^ (i % 251) as u8)
        .collect()
}

fn cache_over(inner: Arc<dyn ObjectStore>) -> CachingStore {
    cache_with_budgets(inner, 1 << 20, 4 << 20)
}

fn cache_with_budgets(inner: Arc<dyn ObjectStore>, ram: u64, disk: u64) -> CachingStore {
    CachingStore::builder()
        .page_size(PAGE_SIZE)
        .chunk_size(CHUNK_SIZE)
        .ram_bytes(ram)
        .disk_bytes(disk)
        .build(inner)
        .unwrap()
}

struct Setup {
    counting: Arc<CountingStore>,
    cached: CachingStore,
}

fn setup() -> Setup {
    let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
    let cached = cache_over(counting.clone());
    Setup { counting, cached }
}

fn payload(bytes: &[u8]) -> PutPayload {
    PutPayload::from(bytes.to_vec())
}

const LEN: usize = 256 << 10;

/// Writes version `version` (`LEN` bytes) of `path` to `store`.
async fn put_version(store: &dyn ObjectStore, path: &Path, version: u8) {
    store
        .put(path, payload(&version_bytes(version, LEN)))
        .await
        .unwrap();
}

/// A setup whose inner store holds version 1 of `path`.
async fn setup_with_version_1(path: &Path) -> Setup {
    let setup = setup();
    put_version(&*setup.counting, path, 1).await;
    setup
}

#[tokio::test]
async fn a_warm_range_and_a_warm_head_ask_the_inner_store_nothing() {
    let path = Path::from("a");
    let Setup { counting, cached } = setup_with_version_1(&path).await;
    counting.reset();
    let cold = cached.get_range(&path, 1000..50_000).await.unwrap();
    let head = cached.head(&path).await.unwrap();
    let cold_counts = counting.counts();
    counting.reset();
    let warm = cached.get_range(&path, 1000..50_000).await.unwrap();
    assert_eq!(cached.head(&path).await.unwrap(), head);
    assert_eq!(warm, cold);
    assert_eq!(&warm[..], &version_bytes(1, LEN)[1000..50_000]);
    assert_eq!((cold_counts.heads, cold_counts.gets), (1, 1));
    assert_eq!(counting.counts(), objectdev::RequestCounts::default());
}

#[tokio::test]
async fn whole_gets_suffixes_and_offsets_match_the_inner_store() {
    let Setup { counting, cached } = setup();
    let path = Path::from("a");
    counting
        .put(&path, payload(&version_bytes(1, 70_001)))
        .await
        .unwrap();
    for range in [
        None,
        Some(GetRange::Suffix(9)),
        Some(GetRange::Suffix(1 << 30)),
        Some(GetRange::Offset(69_999)),
        Some(GetRange::Bounded(40_000..70_001)),
    ] {
        let options = GetOptions {
            range: range.clone(),
            ..GetOptions::default()
        };
        let direct = counting.get_opts(&path, options.clone()).await.unwrap();
        let through = cached.get_opts(&path, options).await.unwrap();
        assert_eq!(through.range, direct.range, "{range:?}");
        assert_eq!(through.meta, direct.meta, "{range:?}");
        assert_eq!(
            through.bytes().await.unwrap(),
            direct.bytes().await.unwrap(),
            "{range:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_object_reads_as_empty() {
    let Setup { counting, cached } = setup();
    let path = Path::from("empty");
    counting.put(&path, payload(b"")).await.unwrap();
    let direct = counting.get(&path).await.unwrap();
    let through = cached.get(&path).await.unwrap();
    assert_eq!((through.range.clone(), through.meta.size), (0..0, 0));
    assert_eq!(through.meta, direct.meta);
    assert!(through.bytes().await.unwrap().is_empty());
    assert_eq!(cached.stats().objects, 1);
}

#[tokio::test]
async fn a_changed_etag_drops_the_old_versions_pages_and_chunks() {
    let path = Path::from("a");
    let Setup { counting, cached } = setup_with_version_1(&path).await;
    assert_eq!(
        &cached.get_range(&path, 0..1000).await.unwrap()[..],
        &version_bytes(1, LEN)[..1000]
    );
    // Another writer replaces the object behind the cache's back.
    put_version(&*counting, &path, 2).await;
    // A range the cache lacks: its GET names the new ETag.
    let far = cached.get_range(&path, 200_000..201_000).await.unwrap();
    assert_eq!(&far[..], &version_bytes(2, LEN)[200_000..201_000]);
    // The range cached from version 1 is gone with it.
    let near = cached.get_range(&path, 0..1000).await.unwrap();
    assert_eq!(&near[..], &version_bytes(2, LEN)[..1000]);
    let head = cached.head(&path).await.unwrap();
    assert_eq!(head, counting.head(&path).await.unwrap());
    let stats = cached.stats();
    // Of version 2: the chunks of the two ranges, the page of the first
    // and the two pages the second straddles; nothing of version 1.
    assert_eq!(stats.disk.resident_bytes, 2 * CHUNK_SIZE);
    assert_eq!(stats.ram.resident_pages, 3);
    assert_eq!(stats.objects, 1);
}

#[tokio::test]
async fn get_ranges_never_mixes_two_versions() {
    let path = Path::from("a");
    let Setup { counting, cached } = setup_with_version_1(&path).await;
    cached.get_range(&path, 0..1000).await.unwrap();
    put_version(&*counting, &path, 2).await;
    let ranges = [0..1000, 200_000..201_000];
    let got = cached.get_ranges(&path, &ranges).await.unwrap();
    let v2 = version_bytes(2, LEN);
    for (bytes, range) in got.iter().zip(ranges) {
        assert_eq!(&bytes[..], &v2[range.start as usize..range.end as usize]);
    }
}

#[tokio::test]
async fn a_pass_through_get_with_another_etag_drops_the_cached_version() {
    let path = Path::from("a");
    let Setup { counting, cached } = setup_with_version_1(&path).await;
    cached.get_range(&path, 0..1000).await.unwrap();
    put_version(&*counting, &path, 2).await;
    let options = GetOptions {
        if_none_match: Some("\"not-this-one\"".into()),
        ..GetOptions::default()
    };
    cached.get_opts(&path, options).await.unwrap();
    let near = cached.get_range(&path, 0..1000).await.unwrap();
    assert_eq!(&near[..], &version_bytes(2, LEN)[..1000]);
}

/// Reads `path` whole through the cache (so every page is cached).
async fn warm(cached: &CachingStore, path: &Path) -> Bytes {
    cached.get(path).await.unwrap().bytes().await.unwrap()
}

#[tokio::test]
async fn a_put_through_the_cache_is_read_back() {
    let path = Path::from("a");
    let Setup { cached, .. } = setup_with_version_1(&path).await;
    warm(&cached, &path).await;
    put_version(&cached, &path, 2).await;
    assert_eq!(&warm(&cached, &path).await[..], &version_bytes(2, LEN)[..]);
}

#[tokio::test]
async fn a_multipart_upload_through_the_cache_is_read_back() {
    let path = Path::from("a");
    let Setup { cached, .. } = setup_with_version_1(&path).await;
    warm(&cached, &path).await;
    let mut upload = cached.put_multipart(&path).await.unwrap();
    upload
        .put_part(payload(&version_bytes(2, LEN)))
        .await
        .unwrap();
    upload.complete().await.unwrap();
    assert_eq!(&warm(&cached, &path).await[..], &version_bytes(2, LEN)[..]);
}

#[tokio::test]
async fn a_delete_through_the_cache_is_not_found_after() {
    let path = Path::from("a");
    let Setup { cached, .. } = setup_with_version_1(&path).await;
    warm(&cached, &path).await;
    cached.delete(&path).await.unwrap();
    let err = cached.get_range(&path, 0..10).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    assert_eq!(cached.stats().objects, 0);
}

#[tokio::test]
async fn a_copy_through_the_cache_replaces_the_target() {
    let Setup { counting, cached } = setup();
    let (from, to) = (Path::from("from"), Path::from("to"));
    put_version(&*counting, &from, 2).await;
    put_version(&*counting, &to, 1).await;
    warm(&cached, &to).await;
    cached.copy(&from, &to).await.unwrap();
    assert_eq!(&warm(&cached, &to).await[..], &version_bytes(2, LEN)[..]);
}

#[tokio::test]
async fn a_rename_through_the_cache_replaces_the_target_and_drops_the_source() {
    let Setup { counting, cached } = setup();
    let (from, to) = (Path::from("from"), Path::from("to"));
    put_version(&*counting, &from, 2).await;
    put_version(&*counting, &to, 1).await;
    warm(&cached, &to).await;
    warm(&cached, &from).await;
    cached.rename(&from, &to).await.unwrap();
    assert_eq!(&warm(&cached, &to).await[..], &version_bytes(2, LEN)[..]);
    let err = cached.get_range(&from, 0..10).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

/// What a GET answered, comparable across stores.
async fn outcome(result: object_store::Result<object_store::GetResult>) -> String {
    match result {
        Ok(result) => {
            let range = result.range.clone();
            format!("{range:?} {:?}", result.bytes().await.map(|b| b.len()))
        }
        Err(e) => format!("error: {e}"),
    }
}

#[tokio::test]
async fn requests_the_cache_does_not_model_get_the_inner_stores_answer() {
    let Setup { counting, cached } = setup();
    let path = Path::from("a");
    counting
        .put(&path, payload(&version_bytes(1, 1000)))
        .await
        .unwrap();
    let e_tag = counting.head(&path).await.unwrap().e_tag;
    warm(&cached, &path).await;
    let cases = [
        GetOptions {
            if_none_match: e_tag.clone(),
            ..GetOptions::default()
        },
        GetOptions {
            if_match: Some("\"other\"".into()),
            ..GetOptions::default()
        },
        GetOptions {
            range: Some(GetRange::Bounded(1000..2000)),
            ..GetOptions::default()
        },
        GetOptions {
            range: Some(GetRange::Bounded(5..5)),
            ..GetOptions::default()
        },
        GetOptions {
            range: Some(GetRange::Offset(5000)),
            ..GetOptions::default()
        },
        GetOptions {
            version: Some("v0".into()),
            ..GetOptions::default()
        },
    ];
    for options in cases {
        let direct = outcome(counting.get_opts(&path, options.clone()).await).await;
        counting.reset();
        let through = outcome(cached.get_opts(&path, options.clone()).await).await;
        assert_eq!(through, direct, "{options:?}");
        assert_eq!(
            counting.counts().gets,
            1,
            "{options:?} was not passed through"
        );
    }
    for ranges in [Vec::from([0..10, 900..1001]), Vec::from([3..3, 5..9])] {
        let through = cached
            .get_ranges(&path, &ranges)
            .await
            .map_err(|e| e.to_string());
        let direct = counting
            .get_ranges(&path, &ranges)
            .await
            .map_err(|e| e.to_string());
        assert_eq!(through, direct, "{ranges:?}");
    }
    let missing = cached.head(&Path::from("missing")).await.unwrap_err();
    assert!(matches!(missing, object_store::Error::NotFound { .. }));
}

#[tokio::test]
async fn lists_pass_through() {
    let Setup { counting, cached } = setup();
    for name in ["d/a", "d/b", "e"] {
        counting
            .put(&Path::from(name), payload(b"x"))
            .await
            .unwrap();
    }
    let listed: Vec<_> = cached.list(Some(&Path::from("d"))).collect().await;
    assert_eq!(listed.len(), 2);
    let delimited = cached.list_with_delimiter(None).await.unwrap();
    assert_eq!(
        (delimited.objects.len(), delimited.common_prefixes.len()),
        (1, 1)
    );
}

#[tokio::test]
async fn the_ram_and_disk_budgets_hold_across_objects() {
    let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
    let ram = 64 * PAGE_SIZE as u64;
    let disk = 8 * CHUNK_SIZE;
    let cached = cache_with_budgets(counting.clone(), ram, disk);
    let objects: Vec<(Path, Vec<u8>)> = (0..12u8)
        .map(|i| {
            (
                Path::from(format!("o{i}")),
                version_bytes(i, 50_000 + 9_000 * i as usize),
            )
        })
        .collect();
    for (path, bytes) in &objects {
        counting.put(path, payload(bytes)).await.unwrap();
    }
    for _ in 0..2 {
        for (path, bytes) in &objects {
            assert_eq!(&warm(&cached, path).await[..], &bytes[..]);
            let stats = cached.stats();
            assert!(
                stats.ram.resident_pages as u64 * PAGE_SIZE as u64 <= ram,
                "{stats:?}"
            );
            assert!(stats.disk.resident_bytes <= disk, "{stats:?}");
        }
    }
    // One object larger than both budgets together is still read whole.
    let big = version_bytes(99, (ram + disk) as usize * 2 + 123);
    counting
        .put(&Path::from("big"), payload(&big))
        .await
        .unwrap();
    assert_eq!(&warm(&cached, &Path::from("big")).await[..], &big[..]);
    let stats = cached.stats();
    assert!(
        stats.ram.resident_pages as u64 * PAGE_SIZE as u64 <= ram,
        "{stats:?}"
    );
    assert!(stats.disk.resident_bytes <= disk, "{stats:?}");
    assert!(
        stats.disk.evictions > 0 && stats.ram.evictions > 0,
        "{stats:?}"
    );
}

#[test]
fn reads_run_off_the_worker_of_a_current_thread_runtime() {
    // On a current_thread runtime the only worker is the thread calling
    // block_on: blocking work there would stall (or, for the GETs the
    // tiers wait for, panic). It must run on spawn_blocking's threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let worker = std::thread::current().id();
    runtime.block_on(async {
        let path = Path::from("a");
        let Setup { counting, cached } = setup_with_version_1(&path).await;
        let seen_on = Arc::new(thread_ids::ThreadIds::default());
        let hook_seen = seen_on.clone();
        counting.before_request(Some(Arc::new(move |_: &objectdev::RequestCounts| {
            hook_seen.push(std::thread::current().id());
        })));
        let bytes = cached.get_range(&path, 100..200_000).await.unwrap();
        assert_eq!(&bytes[..], &version_bytes(1, LEN)[100..200_000]);
        let threads = seen_on.take();
        // The HEAD is made from the task; every GET from another thread
        // (the cache's own runtime, which the blocking thread waits on).
        assert_eq!(counting.counts().gets as usize + 1, threads.len());
        assert_eq!(threads.iter().filter(|&&id| id == worker).count(), 1);
    });
}

/// A list of thread ids filled from the store's hook.
mod thread_ids {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    #[derive(Default)]
    pub(crate) struct ThreadIds(Mutex<Vec<ThreadId>>);

    impl ThreadIds {
        pub(crate) fn push(&self, id: ThreadId) {
            self.0.lock().unwrap().push(id);
        }

        pub(crate) fn take(&self) -> Vec<ThreadId> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_see_one_whole_version_while_writes_go_through() {
    for round in 0..20u8 {
        let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
        let cached = Arc::new(cache_over(counting.clone()));
        let path = Path::from("a");
        // Every byte of version v is v (from 1): any mix shows as two
        // values, and bytes of no version as 0.
        let len = 100_000;
        cached.put(&path, payload(&vec![1; len])).await.unwrap();
        let readers: Vec<_> = (0..4)
            .map(|reader| {
                let (cached, path) = (cached.clone(), path.clone());
                tokio::spawn(async move {
                    for i in 0..10u64 {
                        let start = (i * 7919 + reader * 104_729) % (len as u64 - 20_000);
                        let ranges = [start..start + 20_000, 0..10];
                        let got = cached.get_ranges(&path, &ranges).await.unwrap();
                        let first = got[0][0];
                        assert_ne!(first, 0, "bytes of no version");
                        for bytes in &got {
                            assert!(bytes.iter().all(|&b| b == first), "mixed versions");
                        }
                    }
                })
            })
            .collect();
        for version in 2..=6u8 {
            let writer = if version % 2 == 0 {
                cached.clone() as Arc<dyn ObjectStore>
            } else {
                counting.clone() as Arc<dyn ObjectStore>
            };
            writer
                .put(&path, payload(&vec![version; len]))
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        for reader in readers {
            reader
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}
