//! Dirty pages kept in extents of up to 1 MiB: writes, reads, slices and
//! write-back across extent boundaries, and failures in the middle of one.

mod common;

use std::sync::Arc;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice};
use common::pattern;
use pagecache::{ByteSource, Error, WriteBackCache};

type Faulty = Arc<FaultyDevice<MemDevice>>;

const PAGE: usize = 4096;
/// Pages of one extent buffer (1 MiB).
const EXTENT_PAGES: usize = 256;

fn write_back(len: usize) -> (Faulty, WriteBackCache<Faulty>) {
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(pattern(len))));
    let cache = pagecache::Builder::new()
        .page_size(PAGE)
        .capacity(16)
        .build_write_back(Arc::clone(&device))
        .unwrap();
    (device, cache)
}

fn read_all(cache: &WriteBackCache<Faulty>, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    cache.read_bytes_at(0, &mut buf).unwrap();
    buf
}

/// `len` bytes counting down from `seed`, unlike `pattern`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_sub(i as u8)).collect()
}

#[test]
fn a_write_larger_than_an_extent_straddles_extents_and_reads_back_whole() {
    // Three extents' worth and a short last page.
    let len = 3 * EXTENT_PAGES * PAGE + 100;
    let (device, cache) = write_back(len);
    let mut model = pattern(len);
    let (pos, data) = (1000, bytes(2 * EXTENT_PAGES * PAGE + 5000, 7));
    cache.write_bytes(pos as u64, &data).unwrap();
    model[pos..pos + data.len()].copy_from_slice(&data);
    // A second write across the boundary between the first two extents
    // and a third reaching the short last page.
    let boundary = EXTENT_PAGES * PAGE;
    cache.write_bytes(boundary as u64 - 3, b"across").unwrap();
    model[boundary - 3..boundary + 3].copy_from_slice(b"across");
    cache.write_bytes(len as u64 - 50, &[9; 50]).unwrap();
    model[len - 50..].fill(9);
    assert_eq!(read_all(&cache, len), model);
    let mut straddling = [0; 6];
    cache
        .read_bytes_at(boundary as u64 - 3, &mut straddling)
        .unwrap();
    assert_eq!(&straddling, b"across");
    let last = cache.load(len as u64 - 1, 1).unwrap().unwrap();
    assert_eq!(last.bytes(), &model[len - 100..]);
    cache.commit().unwrap();
    assert_eq!(device.inner().to_vec(), model);
    assert_eq!(cache.dirty_pages(), 0);
}

#[test]
fn a_slice_inside_an_extent_keeps_its_bytes_when_its_page_is_written_again() {
    let len = 2 * EXTENT_PAGES * PAGE;
    let (device, cache) = write_back(len);
    cache.write_bytes(0, &vec![1; len]).unwrap();
    let middle = 100 * PAGE;
    let before = cache.load(middle as u64 + 10, 1).unwrap().unwrap();
    let next = cache.load((middle + PAGE) as u64, 1).unwrap().unwrap();
    // Covers the end of the slice's page and the start of the next one.
    cache
        .write_bytes((middle + PAGE - 2) as u64, &[2; 4])
        .unwrap();
    assert_eq!(before.bytes(), &[1; PAGE][..]);
    assert_eq!(next.bytes(), &[1; PAGE][..]);
    let mut model = vec![1; len];
    model[middle + PAGE - 2..middle + PAGE + 2].fill(2);
    assert_eq!(read_all(&cache, len), model);
    let after = cache.load(middle as u64, 1).unwrap().unwrap();
    assert_eq!(after.bytes(), &model[middle..middle + PAGE]);
    assert_eq!(cache.dirty_pages(), len / PAGE);
    cache.commit().unwrap();
    assert_eq!(device.inner().to_vec(), model);
    assert_eq!(before.bytes(), &[1; PAGE][..]);
}

#[test]
fn persisting_the_middle_of_an_extent_leaves_both_ends_dirty_and_writable() {
    let len = EXTENT_PAGES * PAGE;
    let (device, cache) = write_back(len);
    cache.write_bytes(0, &vec![3; len]).unwrap();
    cache
        .persist((10 * PAGE) as u64, (20 * PAGE) as u64)
        .unwrap();
    assert_eq!(cache.dirty_pages(), EXTENT_PAGES - 20);
    assert!(cache.is_dirty((10 * PAGE - 1) as u64) && !cache.is_dirty((10 * PAGE) as u64));
    assert!(cache.is_dirty((30 * PAGE) as u64) && !cache.is_dirty((30 * PAGE - 1) as u64));
    let mut model = pattern(len);
    model[10 * PAGE..30 * PAGE].fill(3);
    assert_eq!(device.inner().to_vec(), model);
    // Both ends, and the clean middle between them, take new writes.
    cache
        .write_bytes((5 * PAGE) as u64, &vec![4; 40 * PAGE])
        .unwrap();
    let mut want = vec![3; len];
    want[5 * PAGE..45 * PAGE].fill(4);
    assert_eq!(read_all(&cache, len), want);
    cache.commit().unwrap();
    assert_eq!(device.inner().to_vec(), want);
}

#[test]
fn a_failure_in_the_middle_of_an_extent_keeps_its_unwritten_pages_dirty() {
    // Pages 0..=1024 dirty as one run of extents [0, 1), [1, 257), ...,
    // [769, 1025): the first vectored write (1024 pages) ends inside the
    // last extent, and the second, of page 1024 alone, fails.
    let pages = 1025;
    let len = 1100 * PAGE;
    for errno in [Errno::NOSPC, Errno::IO] {
        let (device, cache) = write_back(len);
        cache.write_bytes(0, &[5; 10]).unwrap();
        let data = bytes((pages - 1) * PAGE, 11);
        cache.write_bytes(PAGE as u64, &data).unwrap();
        let mut model = pattern(len);
        model[..10].fill(5);
        model[PAGE..pages * PAGE].copy_from_slice(&data);
        device.fail_writes(Fault::Nth(2, errno));
        let err = cache.commit().unwrap_err();
        assert!(matches!(err, Error::Io(ref e) if e.raw_os_error() == Some(errno.raw())));
        assert_eq!(cache.dirty_pages(), 1, "{errno:?}");
        assert!(cache.is_dirty((1024 * PAGE) as u64) && !cache.is_dirty((1023 * PAGE) as u64));
        assert_eq!(read_all(&cache, len), model);
        let on_device = device.inner().to_vec();
        assert_eq!(on_device[..1024 * PAGE], model[..1024 * PAGE]);
        assert_eq!(on_device[1024 * PAGE..], pattern(len)[1024 * PAGE..]);
        device.clear_faults();
        cache.commit().unwrap();
        assert_eq!(device.inner().to_vec(), model, "{errno:?}");
        assert_eq!(cache.dirty_pages(), 0);
    }
}

#[test]
fn commit_hands_the_device_one_vectored_write_per_1024_pages_of_a_run() {
    let len = 2048 * PAGE;
    let (device, cache) = write_back(len);
    for at in (0..len).step_by(EXTENT_PAGES * PAGE) {
        cache
            .write_bytes(at as u64, &vec![6; EXTENT_PAGES * PAGE])
            .unwrap();
    }
    cache.commit().unwrap();
    assert_eq!(device.writes(), 2);
    assert_eq!(device.inner().to_vec(), vec![6; len]);
}
