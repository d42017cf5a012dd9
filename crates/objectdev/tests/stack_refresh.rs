//! One `refresh` on the top of a stack (`PageCache` over `SpillTier` over
//! `ObjectDevice`) moves all of it to the object's current version while
//! readers run: every buffer is wholly one version, and once the call
//! returns, only the new one. Over an in-memory store, where replacing the
//! object changes its ETag, so it runs anywhere.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::thread;

use object_store::memory::InMemory;
use object_store::path::Path;
use objectdev::ObjectDevice;
use pagecache::{ByteSource, PageCache};
use spillcache::SpillTier;
use support::{TempDir, noise, upload};

const PAGE: usize = 4096;
const PAGES: usize = 256;
const SIZE: usize = PAGE * PAGES;
const VERSIONS: usize = 12;
const READERS: u64 = 3;

type Stack = PageCache<SpillTier<ObjectDevice>>;

fn stack(store: Arc<InMemory>, path: Path, dir: &TempDir) -> Stack {
    // Reads of several parts, chunks of several pages, batches of several
    // chunks: every layer splits the reads it passes down.
    let object = ObjectDevice::new(store, path)
        .unwrap()
        .with_part_size(objectdev::MIN_PART_SIZE)
        .unwrap();
    // Neither cache holds the whole object, so reads keep missing down to
    // the store.
    let tier = SpillTier::with_chunk_size(object, dir.path(), SIZE as u64 / 2, 16 * 1024).unwrap();
    PageCache::builder()
        .page_size(PAGE)
        .capacity(PAGES / 4)
        .max_batch_pages(32)
        .build(tier)
        .unwrap()
}

/// Sets its flag when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Which version `bytes`, read at `pos`, wholly belongs to, if any.
fn version_of(versions: &[Vec<u8>], pos: usize, bytes: &[u8]) -> Option<usize> {
    versions
        .iter()
        .position(|version| &version[pos..pos + bytes.len()] == bytes)
}

#[test]
fn readers_see_one_version_per_read_while_the_stack_moves_to_the_next() {
    let versions: Vec<Vec<u8>> = (0..VERSIONS)
        .map(|v| noise(v as u64 * 1000 + 1, SIZE))
        .collect();
    let store = Arc::new(InMemory::new());
    let path = Path::from("disk.img");
    upload(store.as_ref(), &path, &versions[0]);
    let dir = TempDir::new("stack-refresh");
    let cache = stack(Arc::clone(&store), path.clone(), &dir);

    // The version the last refresh moved to; a read that starts after it
    // must not return an older one.
    let refreshed_to = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let mixed = AtomicU64::new(0);
    let older_than_refresh = AtomicU64::new(0);
    let reads_ok = AtomicU64::new(0);
    let read_errors = AtomicU64::new(0);
    thread::scope(|s| {
        for reader in 0..READERS {
            let (cache, versions) = (&cache, &versions);
            let (refreshed_to, done, mixed) = (&refreshed_to, &done, &mixed);
            let (older_than_refresh, reads_ok) = (&older_than_refresh, &reads_ok);
            let read_errors = &read_errors;
            s.spawn(move || {
                let mut state = reader + 1;
                let mut buf = vec![0u8; 6 * PAGE];
                while !done.load(SeqCst) {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    // 1 to 6 pages' worth, unaligned.
                    let len = PAGE / 2 + (state >> 40) as usize % (5 * PAGE + PAGE / 2);
                    let pos = (state >> 20) as usize % (SIZE - len);
                    let floor = refreshed_to.load(SeqCst);
                    match cache.read_bytes_at(pos as u64, &mut buf[..len]) {
                        Ok(()) => match version_of(versions, pos, &buf[..len]) {
                            Some(v) if v < floor => {
                                older_than_refresh.fetch_add(1, SeqCst);
                            }
                            Some(_) => {
                                reads_ok.fetch_add(1, SeqCst);
                            }
                            None => {
                                mixed.fetch_add(1, SeqCst);
                            }
                        },
                        // The object was replaced and the stack not moved
                        // yet: the store refuses the old ETag.
                        Err(_) => {
                            read_errors.fetch_add(1, SeqCst);
                        }
                    }
                }
            });
        }
        let wait_for_reads = |counter: &AtomicU64, more: u64| {
            let before = counter.load(SeqCst);
            while counter.load(SeqCst) < before + more {
                thread::yield_now();
            }
        };
        // Stops the readers however this thread leaves, a failed assert too.
        let _stop = Stop(&done);
        wait_for_reads(&reads_ok, 20);
        for (v, bytes) in versions.iter().enumerate().skip(1) {
            upload(store.as_ref(), &path, bytes);
            // Readers run into the replaced object before the refresh.
            wait_for_reads(&read_errors, 1);
            assert!(cache.refresh().unwrap(), "a new ETag is a change");
            refreshed_to.store(v, SeqCst);
            let mut all = vec![0u8; SIZE];
            cache.read_bytes_at(0, &mut all).unwrap();
            assert!(all == *bytes, "after the call, only version {v}");
            wait_for_reads(&reads_ok, 20);
        }
    });
    assert_eq!(mixed.load(SeqCst), 0, "buffers mixing two versions");
    assert_eq!(
        older_than_refresh.load(SeqCst),
        0,
        "reads begun after a refresh that returned an older version"
    );
    assert!(!cache.refresh().unwrap(), "the same ETag is no change");
}
