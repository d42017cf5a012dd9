//! The public API: construction checks, out-of-bounds errors, `load`,
//! slices, invalidation, counters, copies and a device that changes size.

mod common;

use blockdev::{MemDevice, WriteAt};
use common::pattern;
use pagecache::{
    Builder, ByteSource, ByteSourceExt, Error, MAX_CAPACITY, MAX_PAGE_SIZE, OutOfBounds, PageCache,
    WriteBackCache,
};

static_assertions::assert_impl_all!(PageCache<MemDevice>: Send, Sync);
static_assertions::assert_impl_all!(PageCache<std::sync::Arc<std::fs::File>>: Send, Sync);
static_assertions::assert_impl_all!(WriteBackCache<MemDevice>: Send, Sync);
static_assertions::assert_impl_all!(pagecache::Slice: Send, Sync, Clone);
static_assertions::assert_impl_all!(Error: std::error::Error, Send, Sync);

fn build(len: usize, page_size: usize, capacity: usize) -> PageCache<MemDevice> {
    PageCache::builder()
        .page_size(page_size)
        .capacity(capacity)
        .build(MemDevice::from_vec(pattern(len)))
        .unwrap()
}

#[test]
fn defaults_are_4096_bytes_by_1024_pages() {
    let cache = PageCache::new(MemDevice::new()).unwrap();
    assert_eq!((cache.page_size(), cache.capacity()), (4096, 1024));
}

#[test]
fn page_size_and_capacity_must_be_powers_of_two_in_range() {
    for page_size in [
        0,
        3,
        100,
        4095,
        MAX_PAGE_SIZE + 1,
        MAX_PAGE_SIZE * 2,
        usize::MAX,
    ] {
        let built = Builder::new().page_size(page_size).build(MemDevice::new());
        assert!(
            matches!(built, Err(Error::InvalidPageSize { page_size: p }) if p == page_size),
            "page size {page_size}"
        );
    }
    for capacity in [0, 3, 1000, MAX_CAPACITY + 2, MAX_CAPACITY * 2, usize::MAX] {
        let built = Builder::new().capacity(capacity).build(MemDevice::new());
        assert!(
            matches!(built, Err(Error::InvalidCapacity { capacity: c }) if c == capacity),
            "capacity {capacity}"
        );
    }
    for (batch, capacity) in [(0, 4), (5, 4), (usize::MAX, 1)] {
        let built = Builder::new()
            .capacity(capacity)
            .max_batch_pages(batch)
            .build(MemDevice::new());
        assert!(matches!(built, Err(Error::InvalidBatch { .. })));
    }
    for (page_size, capacity) in [(1, 1), (1 << 16, 2), (1, MAX_CAPACITY)] {
        assert!(PageCache::with_geometry(MemDevice::new(), page_size, capacity).is_ok());
    }
}

#[test]
fn errors_explain_themselves() {
    let err = Builder::new()
        .page_size(3)
        .build(MemDevice::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "page size 3 is not a power of two between 1 and 1073741824"
    );
    let cache = build(10, 4, 4);
    let err = cache.load(0, 5).unwrap_err();
    assert_eq!(err.to_string(), "minimum length 5 exceeds the page size 4");
}

#[test]
fn out_of_bounds_is_the_same_value_whatever_the_shape_and_address() {
    // Device of 10 bytes: past the end, straddling the end, on the short
    // last page, with page size 1 and capacity 1.
    for (page_size, capacity) in [(1, 1), (1, 64), (4, 1), (8, 2), (4096, 1024)] {
        let cache = build(10, page_size, capacity);
        let cases = [
            (10, 1),
            (11, 1),
            (9, 2),
            (7, 4),
            (3, 8),
            (0, 16),
            (u64::MAX, 1),
            (u64::MAX - 1, 4),
            (u64::MAX, 0),
        ];
        for (pos, len) in cases {
            let want = OutOfBounds { pos, len, size: 10 };
            let mut buf = vec![0; len as usize];
            let got = cache.read_bytes_at(pos, &mut buf).unwrap_err();
            assert_eq!(
                got.out_of_bounds(),
                Some(want),
                "{page_size}x{capacity} {pos}+{len}"
            );
            assert_eq!(pattern(10).read_bytes_at(pos, &mut buf), Err(want));
            assert_eq!(
                cache
                    .get_bytes(pos, len as usize)
                    .unwrap_err()
                    .out_of_bounds(),
                Some(want)
            );
            assert_eq!(
                cache.syscalls(pos, len).unwrap_err().out_of_bounds(),
                Some(want)
            );
            assert_eq!(
                cache.iter(pos, Some(len)).unwrap_err().out_of_bounds(),
                Some(want)
            );
        }
        assert_eq!(
            cache.get_u32_le(7).unwrap_err().out_of_bounds(),
            Some(OutOfBounds {
                pos: 7,
                len: 4,
                size: 10
            })
        );
        assert_eq!(
            cache.get_i128_be(u64::MAX).unwrap_err().out_of_bounds(),
            Some(OutOfBounds {
                pos: u64::MAX,
                len: 16,
                size: 10
            })
        );
        assert_eq!(
            cache.get_seq(11).unwrap_err().out_of_bounds(),
            Some(OutOfBounds {
                pos: 11,
                len: 0,
                size: 10
            })
        );
        assert_eq!(
            cache.get_u16_be(8).unwrap(),
            u16::from_be_bytes([pattern(10)[8], pattern(10)[9]])
        );
    }
}

#[test]
fn empty_device_has_nothing_but_answers_everything() {
    let cache = build(0, 16, 4);
    assert!(cache.get_u8(0).is_err());
    let mut nothing = [];
    cache.read_bytes_at(0, &mut nothing).unwrap();
    assert!(cache.load(0, 1).unwrap().is_none());
    assert!(cache.load(0, 0).unwrap().unwrap().is_empty());
    assert_eq!(cache.get_seq(0).unwrap().count(), 0);
    assert_eq!(cache.iter(0, None).unwrap().count(), 0);
    assert_eq!(cache.syscalls(0, 0).unwrap(), 0);
    assert_eq!(cache.stats().device_reads, 0);
}

#[test]
fn load_returns_the_page_clipped_to_the_device_or_none() {
    let data = pattern(21);
    let cache = build(21, 8, 4);
    let page = cache.load(9, 7).unwrap().unwrap();
    assert_eq!((page.offset(), page.bytes()), (8, &data[8..16]));
    assert!(cache.load(9, 8).unwrap().is_none());
    let last = cache.load(20, 1).unwrap().unwrap();
    assert_eq!((last.offset(), last.bytes()), (16, &data[16..21]));
    assert!(cache.load(20, 2).unwrap().is_none());
    assert!(cache.load(21, 1).unwrap().is_none());
    // min_len 0 never gives None; the page holding 21 still has bytes 16..21.
    assert_eq!(cache.load(21, 0).unwrap().unwrap().bytes(), &data[16..21]);
    let beyond = cache.load(1003, 0).unwrap().unwrap();
    assert_eq!((beyond.offset(), beyond.len()), (1000, 0));
    assert!(cache.load(u64::MAX, 0).unwrap().unwrap().is_empty());
    assert!(matches!(
        cache.load(0, 9),
        Err(Error::MinLenTooLarge {
            min_len: 9,
            page_size: 8
        })
    ));
}

#[test]
fn slices_outlive_eviction_and_invalidation() {
    let dev = MemDevice::from_vec(pattern(64));
    let cache = PageCache::builder()
        .page_size(8)
        .capacity(1)
        .build(dev.clone())
        .unwrap();
    let first = cache.load(0, 1).unwrap().unwrap();
    let second = cache.load(8, 1).unwrap().unwrap(); // evicts page 0
    dev.write_all_at(0, &[0xff; 16]).unwrap();
    cache.invalidate(0, 16).unwrap();
    assert_eq!(first.bytes(), &pattern(64)[..8]);
    assert_eq!(second.view(12), Some(&pattern(64)[12..16]));
    assert_eq!(cache.load(0, 1).unwrap().unwrap().bytes(), [0xff; 8]);
}

#[test]
fn next_walks_every_page_to_the_end() {
    let data = pattern(30);
    let cache = build(30, 8, 2);
    let mut slice = cache.load(3, 0).unwrap();
    let mut seen = Vec::new();
    while let Some(s) = slice {
        seen.extend_from_slice(s.bytes());
        slice = cache.next(&s).unwrap();
    }
    assert_eq!(seen, data);
}

#[test]
fn invalidate_drops_exactly_the_overlapping_pages() {
    let cache = build(80, 8, 16);
    let mut all = vec![0; 80];
    cache.read_bytes_at(0, &mut all).unwrap();
    let cached = |cache: &PageCache<MemDevice>| -> Vec<bool> {
        (0..10).map(|page| cache.is_cached(page * 8)).collect()
    };
    cache.invalidate(19, 2).unwrap(); // inside page 2
    assert_eq!(
        cached(&cache),
        [true, true, false, true, true, true, true, true, true, true]
    );
    cache.invalidate(31, 2).unwrap(); // pages 3 and 4
    cache.invalidate(48, 0).unwrap(); // empty: nothing
    cache.invalidate(79, u64::MAX).unwrap(); // page 9, range overflowing
    assert_eq!(
        cached(&cache),
        [
            true, true, false, false, false, true, true, true, true, false
        ]
    );
    assert_eq!(cache.stats().resident_pages, 6);
    cache.invalidate(0, u64::MAX).unwrap();
    assert_eq!(cache.stats().resident_pages, 0);
}

#[test]
fn is_cached_counts_nothing_and_checks_the_address() {
    let cache = build(10, 8, 4);
    assert!(!cache.is_cached(0));
    cache.get_u8(9).unwrap();
    let stats = cache.stats();
    assert!(cache.is_cached(8) && cache.is_cached(9));
    assert!(!cache.is_cached(10) && !cache.is_cached(15) && !cache.is_cached(7));
    assert_eq!(cache.stats(), stats);
}

#[test]
fn a_device_that_grows_shows_its_new_bytes_after_invalidate() {
    let dev = MemDevice::from_vec(pattern(10));
    let cache = PageCache::builder()
        .page_size(8)
        .build(dev.clone())
        .unwrap();
    assert_eq!(cache.get_u8(9).unwrap(), pattern(10)[9]); // page 1 cached with 2 bytes
    dev.write_all_at(10, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert!(cache.get_u8(10).is_err());
    cache.invalidate(10, 8).unwrap();
    assert_eq!(cache.size(), 18);
    // Page 1 was cached short: reading past its old end reads it again.
    assert_eq!(
        cache.get_u32_be(9).unwrap(),
        u32::from_be_bytes([pattern(10)[9], 1, 2, 3])
    );
    assert_eq!(cache.get_u8(17).unwrap(), 8);
}

#[test]
fn a_device_that_shrinks_reports_out_of_bounds_after_refresh() {
    let dev = MemDevice::from_vec(pattern(40));
    let cache = PageCache::builder()
        .page_size(8)
        .build(dev.clone())
        .unwrap();
    cache.get_u8(35).unwrap();
    dev.set_len(20).unwrap();
    assert_eq!(cache.refresh_size().unwrap(), 20);
    assert_eq!(
        cache.get_u8(35).unwrap_err().out_of_bounds(),
        Some(OutOfBounds {
            pos: 35,
            len: 1,
            size: 20
        })
    );
    assert_eq!(cache.load(16, 0).unwrap().unwrap().len(), 4);
}

#[test]
fn empty_copy_shares_the_device_but_not_pages_or_counters() {
    let dev = MemDevice::from_vec(pattern(100));
    let cache = PageCache::builder()
        .page_size(16)
        .capacity(4)
        .build(dev.clone())
        .unwrap();
    cache.get_u64_le(3).unwrap();
    let copy = cache.empty_copy().unwrap();
    assert_eq!(
        (copy.page_size(), copy.capacity(), copy.size()),
        (16, 4, 100)
    );
    assert_eq!(
        (copy.hits(), copy.misses(), copy.stats().resident_pages),
        (0, 0, 0)
    );
    dev.write_all_at(3, &[9; 8]).unwrap();
    assert_eq!(copy.get_u64_le(3).unwrap(), u64::from_le_bytes([9; 8]));
    assert_ne!(cache.get_u64_le(3).unwrap(), u64::from_le_bytes([9; 8]));
}

#[test]
fn iterators_cover_the_range_page_by_page_and_byte_by_byte() {
    let data = pattern(50);
    let cache = build(50, 16, 2);
    let chunks: Vec<(u64, Vec<u8>)> = cache
        .get_seq(5)
        .unwrap()
        .map(|s| s.map(|s| (s.offset(), s.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        chunks,
        [
            (5, data[5..16].to_vec()),
            (16, data[16..32].to_vec()),
            (32, data[32..48].to_vec()),
            (48, data[48..50].to_vec())
        ]
    );
    let bytes: Vec<u8> = cache
        .iter(14, Some(20))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bytes, &data[14..34]);
    assert_eq!(cache.iter(14, Some(20)).unwrap().size_hint(), (1, Some(20)));
    assert_eq!(cache.get_seq(50).unwrap().count(), 0);
}

#[test]
fn iterators_stop_after_a_device_error() {
    use blockdev::{Errno, Fault, FaultyDevice};
    use std::sync::Arc;
    let dev = Arc::new(FaultyDevice::new(MemDevice::from_vec(pattern(64))));
    let cache = PageCache::builder()
        .page_size(16)
        .build(Arc::clone(&dev))
        .unwrap();
    dev.fail_reads(Fault::Nth(2, Errno::IO));
    let items: Vec<_> = cache.get_seq(0).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && matches!(items[1], Err(Error::Io(_))));
    let bytes: Vec<_> = cache.iter(16, None).unwrap().collect();
    assert_eq!(
        bytes.iter().filter(|b| b.is_err()).count(),
        0,
        "fault already fired"
    );
    cache.invalidate_all().unwrap();
    dev.fail_reads(Fault::Always(Errno::IO));
    let mut bytes = cache.iter(32, Some(20)).unwrap();
    assert!(matches!(bytes.next(), Some(Err(Error::Io(_)))));
    assert!(bytes.next().is_none());
}

#[test]
fn blit_checks_the_destination_and_reads_any_length() {
    let data = pattern(5000);
    let cache = build(5000, 64, 4);
    let mut dst = vec![0u8; 6000];
    assert!(matches!(
        cache.blit(17, &mut dst, 1200, 4900),
        Err(Error::BufferRange { .. })
    ));
    let too_long = cache.blit(17, &mut dst, 1000, 4990).unwrap_err();
    assert_eq!(
        too_long.out_of_bounds(),
        Some(OutOfBounds {
            pos: 17,
            len: 4990,
            size: 5000
        })
    );
    assert!(dst.iter().all(|&b| b == 0));
    cache.blit(17, &mut dst, 1000, 4983).unwrap();
    assert_eq!(&dst[1000..5983], &data[17..]);
    assert!(matches!(
        cache.blit(0, &mut dst, usize::MAX, 2),
        Err(Error::BufferRange {
            dst_off: usize::MAX,
            len: 2,
            buf_len: 6000
        })
    ));
}

#[test]
fn counters_count_page_lookups() {
    let cache = build(100, 16, 8);
    cache.get_bytes(0, 40).unwrap(); // 3 pages missed
    cache.get_bytes(10, 40).unwrap(); // pages 0..=3: 3 hits, 1 miss
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.device_reads), (3, 4, 2));
    assert_eq!(stats.resident_pages, 4);
    assert!((stats.hit_ratio() - 3.0 / 7.0).abs() < 1e-12);
}

#[test]
fn pages_that_share_a_home_frame_are_all_cached_and_read_right() {
    // Capacity 4: pages 1, 5, 9 and 13 all have home frame 1.
    let data = pattern(16 * 8);
    let cache = build(16 * 8, 8, 4);
    for round in 0..3 {
        for page in [1u64, 5, 9, 13] {
            let got = cache.get_u64_le(page * 8).unwrap();
            assert_eq!(
                got,
                u64::from_le_bytes(data[page as usize * 8..][..8].try_into().unwrap())
            );
        }
        if round == 0 {
            assert_eq!(cache.stats().misses, 4);
        }
    }
    assert_eq!((cache.stats().misses, cache.stats().resident_pages), (4, 4));
    // A page coming home moves the guest living there, which stays cached.
    cache.invalidate(8, 8).unwrap();
    cache.get_u8(2 * 8).unwrap();
    for page in [2u64, 5, 9, 13] {
        assert!(cache.is_cached(page * 8), "page {page}");
        assert_eq!(cache.get_u8(page * 8).unwrap(), data[page as usize * 8]);
    }
}
