//! Eviction: a working set that fits hits 100%; a one-off scan of ten
//! times the capacity does not evict a hot set that keeps being read.

mod common;

use blockdev::MemDevice;
use common::Rng;
use pagecache::{ByteSourceExt, PageCache};

const PAGE: u64 = 64;

fn cache(capacity: usize, pages: u64) -> PageCache<MemDevice> {
    PageCache::builder()
        .page_size(PAGE as usize)
        .capacity(capacity)
        .max_batch_pages(1)
        .build(MemDevice::from_vec(vec![0; (pages * PAGE) as usize]))
        .unwrap()
}

fn touch(cache: &PageCache<MemDevice>, page: u64) {
    cache.get_u8(page * PAGE + page % PAGE).unwrap();
}

#[test]
fn a_working_set_of_capacity_pages_hits_every_time_after_warm_up() {
    for capacity in [1, 2, 8, 64, 256] {
        let cache = cache(capacity, 10_000);
        let mut rng = Rng::new(capacity as u64);
        // Scattered pages, so shards hold uneven numbers of them.
        let set: Vec<u64> = (0..capacity).map(|_| rng.below(10_000)).collect();
        let distinct = set.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        for &page in &set {
            touch(&cache, page);
        }
        cache.reset_stats();
        for _ in 0..20 * capacity {
            touch(&cache, set[rng.below(set.len() as u64) as usize]);
        }
        let stats = cache.stats();
        assert_eq!(
            stats.misses, 0,
            "capacity {capacity}, {distinct} distinct pages"
        );
        assert_eq!(stats.evictions, 0);
    }
}

#[test]
fn a_working_set_displaces_an_old_one_and_then_hits_every_time() {
    let cache = cache(64, 10_000);
    for page in 5_000..5_064 {
        touch(&cache, page);
        touch(&cache, page);
    }
    let mut rng = Rng::new(7);
    let set: Vec<u64> = (0..64).map(|i| i * 37).collect();
    for _ in 0..5 {
        for &page in &set {
            touch(&cache, page);
        }
    }
    cache.reset_stats();
    for _ in 0..5_000 {
        touch(&cache, set[rng.below(64) as usize]);
    }
    assert_eq!(cache.misses(), 0);
}

/// Reads every page of a scan of ten times the capacity, reading one hot
/// page after each; returns the hot set's misses during the scan.
fn hot_misses_during_scan(decode_every_field: bool) -> (u64, usize) {
    let capacity = 64;
    let hot: Vec<u64> = (0..capacity as u64 / 4).collect();
    let cache = cache(capacity, 10_000);
    for _ in 0..3 {
        for &page in &hot {
            touch(&cache, page);
        }
    }
    let mut hot_misses = 0;
    for (i, page) in (1_000..1_000 + 10 * capacity as u64).enumerate() {
        if decode_every_field {
            for field in 0..PAGE / 8 {
                cache.get_u64_le(page * PAGE + field * 8).unwrap();
            }
        } else {
            touch(&cache, page);
        }
        let before = cache.misses();
        touch(&cache, hot[i % hot.len()]);
        hot_misses += cache.misses() - before;
    }
    let still_cached = hot.iter().filter(|&&p| cache.is_cached(p * PAGE)).count();
    (hot_misses, still_cached)
}

#[test]
fn a_one_off_scan_does_not_evict_the_hot_set() {
    assert_eq!(hot_misses_during_scan(false), (0, 16));
}

#[test]
fn a_scan_decoding_every_field_of_each_page_is_still_a_one_off_scan() {
    assert_eq!(hot_misses_during_scan(true), (0, 16));
}

#[test]
fn resident_pages_never_exceed_the_capacity() {
    for capacity in [1, 4, 32] {
        let cache = cache(capacity, 500);
        let mut rng = Rng::new(3);
        for _ in 0..3_000 {
            touch(&cache, rng.below(500));
            assert!(cache.stats().resident_pages <= capacity);
        }
        assert_eq!(cache.stats().resident_pages, capacity);
    }
}

/// Small caches (the 4 to 16 pages, and 2): a page loaded last and
/// then hit in a stretch with no other miss has earned no credit, exactly
/// like a page a scan decodes field by field, so the first page of a
/// one-off scan evicts it once. It comes back through the ghost queue into
/// the main queue, and from then on scans pass it by.
#[test]
fn a_small_cache_loses_a_page_hit_only_in_its_load_epoch_once_then_keeps_it() {
    for capacity in [2, 4, 8, 16] {
        let cache = cache(capacity, 10_000);
        let hot = 9_999;
        touch(&cache, hot);
        for _ in 0..1_000 {
            touch(&cache, hot);
        }
        // A one-off scan, each page decoded many times.
        let scan = |start: u64| {
            for page in start..start + 4 * capacity as u64 {
                for _ in 0..8 {
                    touch(&cache, page);
                }
            }
        };
        scan(0);
        assert!(
            !cache.is_cached(hot * PAGE),
            "capacity {capacity}: kept without credit"
        );
        touch(&cache, hot); // back from the ghost queue, into the main queue
        for round in 1..10 {
            scan(round * 1_000);
            assert!(
                cache.is_cached(hot * PAGE),
                "capacity {capacity}, scan {round}"
            );
            touch(&cache, hot);
        }
    }
}

/// The same hot page, used again after any other miss, has credit and
/// survives the first scan too.
#[test]
fn a_small_cache_keeps_a_hot_page_reused_across_a_miss_through_a_scan() {
    for capacity in [2, 4, 8, 16] {
        let cache = cache(capacity, 10_000);
        let hot = 9_999;
        touch(&cache, hot);
        touch(&cache, 5_000); // another miss: a new epoch
        touch(&cache, hot);
        for page in 0..4 * capacity as u64 {
            for _ in 0..8 {
                touch(&cache, page);
            }
        }
        assert!(cache.is_cached(hot * PAGE), "capacity {capacity}");
    }
}
