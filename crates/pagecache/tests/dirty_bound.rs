//! The bound on dirty pages: a write past it writes back the oldest runs
//! first; a failing write-back is the write's error and loses nothing.

use std::sync::Arc;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice};
use pagecache::{ByteSinkExt, ByteSourceExt, Error, WriteBackCache};

const PAGE: usize = 64;

type Faulty = Arc<FaultyDevice<MemDevice>>;

fn cache(pages: usize, max_dirty: usize) -> (Faulty, WriteBackCache<Faulty>) {
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(vec![
        0;
        pages * PAGE
    ])));
    let cache = pagecache::Builder::new()
        .page_size(PAGE)
        .capacity(4)
        .max_dirty_pages(max_dirty)
        .build_write_back(Arc::clone(&device))
        .unwrap();
    (device, cache)
}

#[test]
fn dirty_pages_never_exceed_the_bound_and_the_oldest_runs_go_first() {
    let (device, cache) = cache(64, 4);
    for page in 0..64u64 {
        cache
            .write_bytes(page * PAGE as u64, &[page as u8 + 1; PAGE])
            .unwrap();
        assert!(
            cache.dirty_pages() <= 4,
            "{} dirty after page {page}",
            cache.dirty_pages()
        );
    }
    // Pages 0..60 went out in order; the last four wait.
    let on_device = device.inner().to_vec();
    assert_eq!(on_device[59 * PAGE], 60);
    assert_eq!(on_device[60 * PAGE], 0);
    assert!((60..64).all(|page| cache.is_dirty(page * PAGE as u64)));
    cache.commit().unwrap();
    let expected: Vec<u8> = (0..64u8).flat_map(|p| [p + 1; PAGE]).collect();
    assert_eq!(device.inner().to_vec(), expected);
}

#[test]
fn a_run_written_back_by_the_bound_is_one_device_write() {
    let (device, cache) = cache(64, 8);
    cache.write_bytes(0, &[7; 8 * PAGE]).unwrap();
    let before = device.writes();
    (&cache).set_u8(40 * PAGE as u64, 1).unwrap();
    assert_eq!(device.writes() - before, 1);
    assert_eq!(cache.dirty_pages(), 1);
}

#[test]
fn a_failed_write_back_is_the_setters_error_and_loses_nothing() {
    let (device, mut cache) = cache(64, 2);
    cache.set_u64_le(0, 0x1111).unwrap();
    cache.set_u64_le(PAGE as u64 * 10, 0x2222).unwrap();
    device.fail_writes(Fault::Always(Errno::NOSPC));
    let err = cache.set_u64_le(PAGE as u64 * 20, 0x3333).unwrap_err();
    assert!(
        matches!(&err, Error::Io(io) if io.raw_os_error() == Some(Errno::NOSPC.raw())),
        "{err}"
    );
    // The old writes are still dirty and readable; the failed one changed nothing.
    assert_eq!(cache.dirty_pages(), 2);
    assert_eq!(cache.get_u64_le(0).unwrap(), 0x1111);
    assert_eq!(cache.get_u64_le(PAGE as u64 * 10).unwrap(), 0x2222);
    assert_eq!(cache.get_u64_le(PAGE as u64 * 20).unwrap(), 0);
    // Space comes back: the same setter succeeds and everything lands.
    device.fail_writes(Fault::Never);
    cache.set_u64_le(PAGE as u64 * 20, 0x3333).unwrap();
    cache.commit().unwrap();
    let bytes = device.inner().to_vec();
    let at = |pos: usize| u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap());
    assert_eq!(
        (at(0), at(PAGE * 10), at(PAGE * 20)),
        (0x1111, 0x2222, 0x3333)
    );
}

#[test]
fn short_device_writes_still_write_whole_runs() {
    let (device, cache) = cache(64, 4);
    device.short_writes(PAGE / 2 + 3);
    for page in 0..16u64 {
        cache
            .write_bytes(page * PAGE as u64, &[page as u8 + 9; PAGE])
            .unwrap();
    }
    cache.commit().unwrap();
    let expected: Vec<u8> = (0..16u8).flat_map(|p| [p + 9; PAGE]).collect();
    assert_eq!(device.inner().to_vec()[..16 * PAGE], expected);
}

#[test]
fn a_write_larger_than_the_bound_is_kept_whole_until_written_back() {
    let (device, cache) = cache(64, 2);
    cache.write_bytes(PAGE as u64 / 2, &[5; 6 * PAGE]).unwrap();
    assert_eq!(cache.dirty_pages(), 7);
    assert_eq!(device.inner().to_vec()[PAGE], 0);
    (&cache).set_u8(50 * PAGE as u64, 1).unwrap();
    assert_eq!(cache.dirty_pages(), 1);
    assert_eq!(
        device.inner().to_vec()[PAGE / 2..PAGE / 2 + 6 * PAGE],
        [5; 6 * PAGE]
    );
}

#[test]
fn a_zero_bound_is_refused() {
    let err = pagecache::Builder::new()
        .max_dirty_pages(0)
        .build_write_back(MemDevice::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidDirtyBound { max_dirty_pages: 0 }),
        "{err}"
    );
}
