//! The write-back layer: every setter against a model, one device write per
//! run of dirty pages, and nothing lost when writes fail.

mod common;

use std::sync::Arc;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
use common::pattern;
use pagecache::fuzz::{Endian, Width, get, set};
use pagecache::{ByteSinkExt, ByteSource, ByteSourceExt, Error, OutOfBounds, WriteBackCache};

type Faulty = Arc<FaultyDevice<MemDevice>>;

fn write_back(len: usize, page_size: usize, capacity: usize) -> (Faulty, WriteBackCache<Faulty>) {
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(pattern(len))));
    let cache = pagecache::Builder::new()
        .page_size(page_size)
        .capacity(capacity)
        .build_write_back(Arc::clone(&device))
        .unwrap();
    (device, cache)
}

#[test]
fn every_setter_round_trips_across_page_boundaries_and_reaches_the_device() {
    for width in Width::ALL {
        for endian in Endian::ALL {
            let (device, cache) = write_back(200, 16, 4);
            let mut model = pattern(200);
            let value = 0x8123_4567_89ab_cdef_0f1e_2d3c_4b5a_6978_u128;
            // Every offset around the boundary between pages 2 and 3.
            for (i, pos) in (32 + 1 - width.bytes()..=48).enumerate() {
                let v = value.rotate_left(i as u32 * 8);
                set(&mut &cache, width, endian, pos, v).unwrap();
                set(&mut model, width, endian, pos, v).unwrap();
                assert_eq!(
                    get(&cache, width, endian, pos).unwrap(),
                    get(&model, width, endian, pos).unwrap(),
                    "{width:?} {endian:?} at {pos}"
                );
            }
            cache.commit().unwrap();
            assert_eq!(device.inner().to_vec(), model, "{width:?} {endian:?}");
        }
    }
}

#[test]
fn big_endian_i64_is_written_big_endian() {
    let (device, mut cache) = write_back(16, 8, 2);
    cache.set_i64_be(4, -0x0102_0304_0506_0708).unwrap();
    cache.commit().unwrap();
    assert_eq!(
        device.inner().to_vec()[4..12],
        (-0x0102_0304_0506_0708i64).to_be_bytes()
    );
    assert_eq!(cache.get_i64_be(4).unwrap(), -0x0102_0304_0506_0708);
    assert_ne!(cache.get_i64_le(4).unwrap(), -0x0102_0304_0506_0708);
}

#[test]
fn commit_writes_each_run_of_contiguous_dirty_pages_with_one_call() {
    let (device, cache) = write_back(64 * 16, 16, 8);
    // Runs: pages 1..=3, page 6, pages 10..=11 (more pages than the capacity
    // of the clean cache, which dirty pages do not count against).
    cache.write_bytes(16, &[1; 48]).unwrap();
    cache.write_bytes(6 * 16 + 3, &[2; 2]).unwrap();
    cache.write_bytes(10 * 16 + 15, &[3; 2]).unwrap();
    assert_eq!(cache.dirty_pages(), 6);
    let before = device.writes();
    cache.commit().unwrap();
    assert_eq!(device.writes() - before, 3);
    assert_eq!(cache.dirty_pages(), 0);
    let mut model = pattern(64 * 16);
    model[16..64].fill(1);
    model[6 * 16 + 3..6 * 16 + 5].fill(2);
    model[10 * 16 + 15..10 * 16 + 17].fill(3);
    assert_eq!(device.inner().to_vec(), model);
    // Nothing left to write: commit again writes nothing.
    cache.commit().unwrap();
    assert_eq!(device.writes() - before, 3);
}

#[test]
fn persist_writes_only_the_dirty_pages_overlapping_its_range() {
    let (device, cache) = write_back(100, 16, 4);
    cache.write_bytes(0, &[7; 3]).unwrap(); // page 0
    cache.write_bytes(40, &[8; 3]).unwrap(); // page 2
    cache.write_bytes(90, &[9; 3]).unwrap(); // page 5
    cache.persist(31, 2).unwrap(); // pages 1 and 2: only 2 is dirty
    let on_device = device.inner().to_vec();
    assert_eq!(
        (on_device[0], on_device[40], on_device[90]),
        (pattern(100)[0], 8, pattern(100)[90])
    );
    assert!(cache.is_dirty(0) && !cache.is_dirty(40) && cache.is_dirty(90));
    cache.persist(95, 0).unwrap();
    assert!(cache.is_dirty(90));
    cache.persist(95, u64::MAX).unwrap();
    assert!(!cache.is_dirty(90) && cache.is_dirty(0));
}

#[test]
fn reads_and_loads_see_pending_writes_and_old_slices_keep_their_bytes() {
    let (_device, cache) = write_back(64, 16, 2);
    let before = cache.load(20, 1).unwrap().unwrap();
    cache.write_bytes(18, b"hello, world").unwrap();
    assert_eq!(cache.get_array::<12>(18).unwrap(), *b"hello, world");
    let page = cache.load(20, 1).unwrap().unwrap();
    assert_eq!(
        page.view(20).map(|tail| &tail[..10]),
        Some(&b"llo, world"[..])
    );
    assert_eq!(before.bytes(), &pattern(64)[16..32]);
    // The clean cache underneath still has the device's bytes.
    assert_eq!(cache.cache().get_u8(18).unwrap(), pattern(64)[18]);
    let mut buf = vec![0; 64];
    cache.read_bytes_at(0, &mut buf).unwrap();
    let mut want = pattern(64);
    want[18..30].copy_from_slice(b"hello, world");
    assert_eq!(buf, want);
}

#[test]
fn writes_past_the_end_are_out_of_bounds_and_write_nothing() {
    let (device, mut cache) = write_back(10, 4, 2);
    assert_eq!(
        cache.set_u32_le(8, 1).unwrap_err().out_of_bounds(),
        Some(OutOfBounds {
            pos: 8,
            len: 4,
            size: 10
        })
    );
    assert!(cache.write_bytes(u64::MAX, &[1]).is_err());
    assert_eq!(cache.dirty_pages(), 0);
    cache.commit().unwrap();
    assert_eq!(device.inner().to_vec(), pattern(10));
    assert_eq!(device.writes(), 0);
}

#[test]
fn a_failed_commit_keeps_the_dirty_pages_and_a_retry_writes_them() {
    for errno in [Errno::NOSPC, Errno::IO] {
        for short in [None, Some(5)] {
            let (device, cache) = write_back(256, 16, 4);
            cache.write_bytes(0, &[1; 40]).unwrap(); // pages 0..=2
            cache.write_bytes(100, &[2; 40]).unwrap(); // pages 6..=8
            device.fail_writes(Fault::Nth(2, errno));
            if let Some(max) = short {
                device.short_writes(max);
            }
            let err = cache.commit().unwrap_err();
            assert!(matches!(err, Error::Io(ref e) if e.raw_os_error() == Some(errno.raw())));
            let mut model = pattern(256);
            model[..40].fill(1);
            model[100..140].fill(2);
            // Reads still see every pending write.
            let mut buf = vec![0; 256];
            cache.read_bytes_at(0, &mut buf).unwrap();
            assert_eq!(buf, model);
            assert!(cache.dirty_pages() >= 3, "{errno:?} {short:?}");
            device.clear_faults();
            cache.commit().unwrap();
            assert_eq!(device.inner().to_vec(), model, "{errno:?} {short:?}");
            assert_eq!(cache.dirty_pages(), 0);
        }
    }
}

#[test]
fn a_failing_read_of_a_partly_covered_page_changes_nothing() {
    let (device, cache) = write_back(64, 16, 2);
    device.fail_reads(Fault::Always(Errno::IO));
    assert!(matches!(cache.write_bytes(14, &[5; 4]), Err(Error::Io(_))));
    assert_eq!(cache.dirty_pages(), 0);
    // A write covering whole pages needs no read.
    cache.write_bytes(16, &[6; 32]).unwrap();
    device.clear_faults();
    cache.commit().unwrap();
    let mut want = pattern(64);
    want[16..48].fill(6);
    assert_eq!(device.inner().to_vec(), want);
}

#[test]
fn dropping_the_cache_commits_pending_writes() {
    let device = MemDevice::from_vec(vec![0; 32]);
    {
        let mut cache = WriteBackCache::new(device.clone()).unwrap();
        cache.set_u16_be(30, 0xabcd).unwrap();
    }
    assert_eq!(device.to_vec()[30..], [0xab, 0xcd]);
}

#[test]
fn threads_write_disjoint_ranges_through_a_shared_reference() {
    let (device, cache) = write_back(4096, 64, 8);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let cache = &cache;
            scope.spawn(move || {
                let mut sink = cache;
                for i in 0..64u64 {
                    let pos = (i * 4 + t) * 16;
                    sink.set_u128_le(pos, u128::from(pos) << 64 | u128::from(t))
                        .unwrap();
                    assert_eq!(
                        cache.get_u128_le(pos).unwrap(),
                        u128::from(pos) << 64 | u128::from(t)
                    );
                }
            });
        }
    });
    cache.commit().unwrap();
    let on_device = device.inner().to_vec();
    for slot in 0..256u64 {
        let pos = slot * 16;
        assert_eq!(
            on_device.as_slice().get_u128_le(pos).unwrap(),
            u128::from(pos) << 64 | u128::from(slot % 4)
        );
    }
}

#[test]
fn refresh_size_commits_then_lets_writes_reach_the_new_end() {
    let device = MemDevice::from_vec(vec![0; 8]);
    let mut cache = pagecache::Builder::new()
        .page_size(4)
        .build_write_back(device.clone())
        .unwrap();
    cache.set_u8(7, 1).unwrap();
    blockdev::WriteAt::set_len(&device, 12).unwrap();
    assert_eq!(cache.refresh_size().unwrap(), 12);
    assert_eq!(device.to_vec()[7], 1);
    cache.set_u32_be(8, 0x0a0b_0c0d).unwrap();
    cache.commit().unwrap();
    assert_eq!(device.to_vec(), [0, 0, 0, 0, 0, 0, 0, 1, 10, 11, 12, 13]);
}

/// `refresh` with writes pending changes nothing and says why: the
/// writes, made against the old version, stay pending and readable, the
/// old pages and size stay; once they are committed (or discarded) it
/// moves to the new version, size included.
#[test]
fn a_refresh_with_writes_pending_is_refused_until_they_are_committed_or_discarded() {
    let device = MemDevice::from_vec(vec![1; 64]);
    let cache = pagecache::Builder::new()
        .page_size(16)
        .capacity(4)
        .build_write_back(device.clone())
        .unwrap();
    assert_eq!(cache.get_u8(40).unwrap(), 1);
    cache.write_bytes(26, b"old version").unwrap();
    // The device moves to a new version, twice as large.
    device.write_all_at(0, &[2; 128]).unwrap();
    let err = cache.refresh().unwrap_err();
    assert!(matches!(err, Error::DirtyPages { pages: 2 }), "{err}");
    assert_eq!(
        err.to_string(),
        "2 dirty pages are pending; commit or discard them before a refresh"
    );
    assert_eq!((cache.size(), cache.dirty_pages()), (64, 2));
    assert_eq!(cache.get_array::<11>(26).unwrap(), *b"old version");
    assert_eq!(
        cache.get_u8(40).unwrap(),
        1,
        "the old version's cached page"
    );
    assert!(cache.write_bytes(100, b"x").is_err());

    assert_eq!(cache.discard(), 2);
    assert!(cache.refresh().unwrap());
    assert_eq!((cache.size(), cache.dirty_pages()), (128, 0));
    assert_eq!(cache.get_array::<11>(26).unwrap(), [2; 11]);
    assert_eq!(cache.get_u8(40).unwrap(), 2);
    // Writes after it are against the new version, size included.
    cache.write_bytes(100, b"new").unwrap();
    cache.commit().unwrap();
    assert_eq!(device.to_vec()[100..103], *b"new");
    assert_eq!(
        device.to_vec()[26..37],
        [2; 11],
        "nothing of the old writes"
    );

    // Committed first instead: they land in the version they were made for.
    cache.write_bytes(0, b"AB").unwrap();
    assert!(matches!(
        cache.refresh(),
        Err(Error::DirtyPages { pages: 1 })
    ));
    cache.commit().unwrap();
    assert!(cache.refresh().unwrap());
    assert_eq!(cache.get_array::<2>(0).unwrap(), *b"AB");
}

/// Writers racing refreshes: each refresh either finds writes pending and
/// refuses, or runs with none; no write is lost or cut to a stale size.
#[test]
fn refreshes_racing_writers_never_lose_a_write() {
    let device = MemDevice::from_vec(vec![0; 4096]);
    let cache = pagecache::Builder::new()
        .page_size(64)
        .capacity(16)
        .build_write_back(device.clone())
        .unwrap();
    let (mut refused, mut refreshed) = (0, 0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..2000u64 {
                let pos = i * 7 % 4000;
                cache.write_bytes(pos, &i.to_le_bytes()[..2]).unwrap();
                assert_eq!(cache.get_array::<2>(pos).unwrap(), i.to_le_bytes()[..2]);
                if i % 3 == 0 {
                    cache.commit().unwrap();
                }
            }
        });
        while !writer.is_finished() {
            match cache.refresh() {
                Ok(_) => refreshed += 1,
                Err(Error::DirtyPages { pages }) => {
                    assert!(pages > 0);
                    refused += 1;
                }
                Err(err) => panic!("{err}"),
            }
        }
        writer.join().unwrap();
    });
    cache.commit().unwrap();
    assert!(refused + refreshed > 0);
    // Every write reached the device: the last value at each position.
    let bytes = device.to_vec();
    let mut last = std::collections::HashMap::new();
    for i in 0..2000u64 {
        last.insert(i * 7 % 4000, i);
    }
    let mut model = vec![0u8; 4096];
    let mut order: Vec<(u64, u64)> = last.into_iter().map(|(pos, i)| (i, pos)).collect();
    order.sort_unstable();
    for (i, pos) in order {
        model[pos as usize..pos as usize + 2].copy_from_slice(&i.to_le_bytes()[..2]);
    }
    assert_eq!(bytes, model);
}
