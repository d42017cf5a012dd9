//! The getters' lock-free word hit (`ByteSource::read_word_le`), which
//! skips the device-size check: it must agree with the general path at
//! every position near a short last page, across page boundaries and past
//! the end, and a read that starts after `refresh_size` returned a smaller
//! size must never return bytes past it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use blockdev::{MemDevice, WriteAt};
use pagecache::{ByteSource, ByteSourceExt, Error, PageCache};

const PAGE: usize = 64;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 + (i >> 8) * 13 + 1) as u8)
        .collect()
}

fn cache_over(bytes: Vec<u8>) -> PageCache<MemDevice> {
    PageCache::builder()
        .page_size(PAGE)
        .capacity(8)
        .build(MemDevice::from_vec(bytes))
        .unwrap()
}

/// Every getter width at `pos`, through the cache and through the bytes.
fn assert_getters_agree(cache: &PageCache<MemDevice>, bytes: &[u8], pos: u64) {
    macro_rules! check {
        ($($get:ident),*) => {$(
            let want = bytes.$get(pos).map_err(Error::from);
            let got = cache.$get(pos);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{} at {pos}", stringify!($get));
        )*};
    }
    check!(
        get_u8,
        get_i16_le,
        get_u16_be,
        get_u32_le,
        get_i32_be,
        get_u64_le,
        get_u64_be,
        get_i64_ne,
        get_u128_le
    );
    let mut three = [0u8; 3];
    let want = bytes.get_array::<3>(pos).map_err(Error::from);
    let got = cache.read_bytes_at(pos, &mut three).map(|()| three);
    assert_eq!(format!("{got:?}"), format!("{want:?}"), "3 bytes at {pos}");
}

#[test]
fn getters_agree_with_the_bytes_around_a_short_last_page_and_past_the_end() {
    // 5 whole pages and a last page of 19 bytes.
    let bytes = pattern(5 * PAGE + 19);
    let cache = cache_over(bytes.clone());
    // Twice: the first pass misses, the second hits resident pages.
    for _ in 0..2 {
        for pos in 0..bytes.len() as u64 + 20 {
            assert_getters_agree(&cache, &bytes, pos);
        }
        for pos in [u64::MAX, u64::MAX - 7, u64::MAX - 8, 1 << 63] {
            assert_getters_agree(&cache, &bytes, pos);
        }
    }
    assert!(cache.hits() > 0);
}

#[test]
fn a_word_hit_counts_one_hit_and_a_straddling_value_two() {
    let bytes = pattern(4 * PAGE);
    let cache = cache_over(bytes.clone());
    cache.get_u8(0).unwrap();
    cache.get_u8(PAGE as u64).unwrap();
    let before = cache.hits();
    assert_eq!(cache.get_u64_le(3).unwrap(), bytes.get_u64_le(3).unwrap());
    assert_eq!(cache.hits(), before + 1);
    let straddle = PAGE as u64 - 3;
    assert_eq!(
        cache.get_u64_be(straddle).unwrap(),
        bytes.get_u64_be(straddle).unwrap()
    );
    assert_eq!(cache.hits(), before + 3);
    assert_eq!(cache.misses(), 2);
}

#[test]
fn one_byte_pages_read_correctly_at_every_position_including_u64_max() {
    let bytes = pattern(40);
    let cache = PageCache::builder()
        .page_size(1)
        .capacity(4)
        .build(MemDevice::from_vec(bytes.clone()))
        .unwrap();
    for pos in (0..48).chain([u64::MAX, u64::MAX - 1]) {
        assert_getters_agree(&cache, &bytes, pos);
        assert_getters_agree(&cache, &bytes, pos);
    }
}

#[test]
fn after_a_shrink_resident_pages_past_the_end_are_out_of_bounds() {
    let bytes = pattern(6 * PAGE);
    let dev = MemDevice::from_vec(bytes.clone());
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(8)
        .build(dev.clone())
        .unwrap();
    for pos in (0..bytes.len() as u64 - 8).step_by(8) {
        cache.get_u64_le(pos).unwrap();
    }
    let small = 3 * PAGE + 11;
    dev.set_len(small as u64).unwrap();
    assert_eq!(cache.refresh_size().unwrap(), small as u64);
    for pos in 0..bytes.len() as u64 {
        assert_getters_agree(&cache, &bytes[..small], pos);
    }
    // Pages wholly past the end, and the one the end cuts, are gone.
    assert_eq!(cache.stats().resident_pages, 4);
}

/// One thread shrinks and regrows the device; readers read near its end
/// and check every value that comes back `Ok` against the bytes. A read
/// that starts after `refresh_size` returned the smaller size, with no
/// regrowth begun before it ends, must fail past the smaller end.
#[test]
fn a_shrink_racing_readers_never_lets_a_read_after_it_past_the_new_end() {
    const FULL: usize = 8 * PAGE;
    const SMALL: u64 = 4 * PAGE as u64 + 5;
    const NONE: u64 = u64::MAX;
    let bytes = pattern(FULL);
    let dev = MemDevice::from_vec(bytes.clone());
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(16)
        .build(dev.clone())
        .unwrap();
    // Even: the size the last shrink published (or NONE while grown);
    // odd: a change is under way. `(generation, bound)`.
    let generation = AtomicU64::new(0);
    let bound = AtomicU64::new(NONE);
    let running = AtomicBool::new(true);
    let checked = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(800) {
                generation.fetch_add(1, SeqCst);
                dev.set_len(SMALL).unwrap();
                cache.refresh_size().unwrap();
                bound.store(SMALL, SeqCst);
                generation.fetch_add(1, SeqCst);
                std::thread::yield_now();
                generation.fetch_add(1, SeqCst);
                bound.store(NONE, SeqCst);
                dev.write_all_at(SMALL, &bytes[SMALL as usize..]).unwrap();
                cache.refresh_size().unwrap();
                generation.fetch_add(1, SeqCst);
            }
            running.store(false, SeqCst);
        });
        for reader in 0..2u64 {
            let (cache, bytes, generation, bound, running, checked) =
                (&cache, &bytes, &generation, &bound, &running, &checked);
            scope.spawn(move || {
                let mut pos = reader * 5;
                while running.load(SeqCst) {
                    pos = (pos + 29) % (FULL as u64 - 8);
                    let before = generation.load(SeqCst);
                    let limit = bound.load(SeqCst);
                    let got = cache.get_u64_le(pos);
                    if let Ok(value) = got {
                        assert_eq!(
                            value,
                            bytes.get_u64_le(pos).unwrap(),
                            "wrong bytes at {pos}"
                        );
                    }
                    let stable = before % 2 == 0 && generation.load(SeqCst) == before;
                    if stable && limit != NONE && pos + 8 > limit {
                        assert!(got.is_err(), "read at {pos} past the new end {limit}");
                        checked.fetch_add(1, Relaxed);
                    }
                }
            });
        }
    });
    assert!(checked.load(Relaxed) > 0, "no read landed after a shrink");
}
