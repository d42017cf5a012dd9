//! Fault injection with blockdev's `FaultyDevice`: failed and short writes
//! lose nothing, corrupted or failed reads are errors, a failed defrag keeps
//! the old file.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blockdev::{Corruption, Errno, Fault, FaultyDevice, MemDevice};
use common::{Devices, TempDir, WAIT, wait_through_errors};
use spillcache::{Builder, Error, SpillCache};

fn value(i: usize) -> Vec<u8> {
    let len = [1, 17, 300, 4096, 70_000][i % 5];
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

fn add_all<D>(cache: &SpillCache<D>, n: usize)
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    for i in 0..n {
        cache.add(format!("key{i}").as_bytes(), &value(i)).unwrap();
    }
}

fn assert_all<D>(cache: &SpillCache<D>, n: usize)
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    for i in 0..n {
        assert_eq!(
            cache.get(format!("key{i}").as_bytes()).unwrap(),
            Some(value(i)),
            "key{i}"
        );
    }
    cache.check_invariants().unwrap();
}

#[test]
fn every_kth_write_failing_loses_nothing() {
    for (k, errno) in [(2, Errno::IO), (3, Errno::NOSPC), (7, Errno::IO)] {
        let devices = Devices::default();
        devices.on_new(move |d| d.fail_writes(Fault::Every(k, errno)));
        let cache = devices.builder().build().unwrap();
        add_all(&cache, 40);
        assert_all(&cache, 40); // from RAM, while writes fail
        let reported = wait_through_errors(&cache);
        let stats = cache.stats();
        assert!(stats.write_errors > 0, "k={k}");
        // The writer may finish (failures included) before the wait starts.
        assert!(reported as u64 <= stats.write_errors);
        assert_eq!(stats.writes, 40);
        assert_eq!(cache.num_cached_in_ram(), 0, "all read from the file now");
        assert_all(&cache, 40);
    }
}

#[test]
fn a_full_disk_keeps_values_in_ram_and_reports_the_error() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    devices.latest().fail_writes(Fault::Always(Errno::NOSPC));
    add_all(&cache, 5);
    match cache.wait_for_write(WAIT) {
        Err(Error::WriteFailed(e)) => {
            assert_eq!(e.raw_os_error(), Some(28));
            assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        }
        other => panic!("expected WriteFailed, got {other:?}"),
    }
    assert!(cache.stats().write_errors >= 1);
    // At most the retry under way holds space: failed reservations are freed.
    assert!(cache.size_on_disk() <= 70_000, "{}", cache.size_on_disk());
    assert_all(&cache, 5);

    devices.latest().clear_faults();
    wait_through_errors(&cache);
    assert_eq!(cache.stats().writes, 5);
    assert_eq!(cache.size_on_disk(), cache.total_size(), "no space leaked");
    assert_all(&cache, 5);
}

#[test]
fn short_writes_are_completed() {
    let devices = Devices::default();
    devices.on_new(|d| d.short_writes(7));
    let cache = devices.builder().build().unwrap();
    add_all(&cache, 10);
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.stats().write_errors, 0);
    assert!(devices.latest().writes() > 10_000, "many short calls");
    assert_all(&cache, 10);
}

#[test]
fn a_device_that_accepts_nothing_is_a_write_error_then_recovers() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    devices.latest().short_writes(0);
    add_all(&cache, 3);
    match cache.wait_for_write(WAIT) {
        Err(Error::WriteFailed(e)) => assert_eq!(e.kind(), io::ErrorKind::WriteZero),
        other => panic!("expected WriteFailed, got {other:?}"),
    }
    devices.latest().clear_faults();
    wait_through_errors(&cache);
    assert_all(&cache, 3);
}

#[test]
fn a_corrupted_read_is_an_error_never_wrong_bytes() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    add_all(&cache, 10);
    assert!(cache.wait_for_write(WAIT).unwrap());
    for index in [0, 16, 299] {
        devices
            .latest()
            .corrupt_reads(Corruption::EveryRead { index, mask: 0x40 });
        match cache.get(b"key2") {
            Err(Error::Corrupt { key }) => assert_eq!(key, b"key2"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let mut buf = vec![0xEE; 300];
        assert!(matches!(
            cache.get_into_slice(b"key2", &mut buf),
            Err(Error::Corrupt { .. })
        ));
        assert!(buf.iter().all(|&b| b == 0), "no partial plaintext left");
        let mut vec_buf = Vec::new();
        assert!(cache.get_into(b"key2", &mut vec_buf).is_err());
        assert!(vec_buf.is_empty());
    }
    assert_eq!(cache.stats().corrupt_reads, 9);
    devices.latest().clear_faults();
    assert_all(&cache, 10);
}

#[test]
fn a_byte_flipped_in_the_file_itself_is_detected() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    add_all(&cache, 5);
    assert!(cache.wait_for_write(WAIT).unwrap());
    let offset = cache.disk_offset(b"key3").unwrap();
    devices.latest().corrupt_reads(Corruption::AtOffset {
        offset: offset + 1000,
        mask: 1,
    });
    assert!(matches!(cache.get(b"key3"), Err(Error::Corrupt { .. })));
    assert_eq!(cache.get(b"key2").unwrap(), Some(value(2)), "others intact");
}

/// Values of 256 KiB and more are encrypted and decrypted in 64 KiB pieces
/// on two threads: every length around a piece boundary reads back exactly,
/// and a flipped byte anywhere (either half, either side of a boundary) is
/// an error with nothing returned.
#[test]
fn split_values_read_back_exactly_and_a_flip_in_either_half_is_detected() {
    const PIECE: usize = 64 << 10;
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    let lens = [4 * PIECE - 1, 4 * PIECE, 4 * PIECE + 1, 9 * PIECE + 4093];
    let values: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| (0..len).map(|j| (j * 13 + j / 4099 + i) as u8).collect())
        .collect();
    for (i, v) in values.iter().enumerate() {
        cache.add(format!("big{i}").as_bytes(), v).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    for (i, v) in values.iter().enumerate() {
        let key = format!("big{i}");
        assert!(cache.get(key.as_bytes()).unwrap().unwrap() == *v, "{key}");
    }
    let key = b"big3";
    let len = lens[3] as u64;
    let offset = cache.disk_offset(key).unwrap();
    let piece = PIECE as u64;
    for at in [
        0,
        piece - 1,
        piece,
        len / 2 - 1,
        len / 2,
        8 * piece,
        len - 1,
    ] {
        devices.latest().corrupt_reads(Corruption::AtOffset {
            offset: offset + at,
            mask: 0x04,
        });
        let mut buf = vec![0xEE; len as usize];
        match cache.get_into_slice(key, &mut buf) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
        assert!(buf.iter().all(|&b| b == 0), "flip at {at}: output zeroed");
        devices.latest().clear_faults();
    }
    assert!(cache.get(key).unwrap().unwrap() == values[3]);
}

#[test]
fn failed_and_short_reads() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    add_all(&cache, 5);
    assert!(cache.wait_for_write(WAIT).unwrap());
    devices.latest().short_reads(3);
    assert_all(&cache, 5);
    devices.latest().fail_reads(Fault::Always(Errno::IO));
    match cache.get(b"key4") {
        Err(Error::Io(e)) => assert_eq!(e.raw_os_error(), Some(5)),
        other => panic!("expected Io, got {other:?}"),
    }
    assert_eq!(cache.stats().read_errors, 1);
}

#[test]
fn a_defrag_that_cannot_create_its_file_keeps_the_old_one() {
    let created = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&created);
    let cache = Builder::with_file_factory(move || {
        // EIO: with ENOSPC the defrag would compact in place instead.
        if counter.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err(io::Error::from(Errno::IO));
        }
        Ok(MemDevice::new())
    })
    .build()
    .unwrap();
    add_all(&cache, 10);
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.remove(b"key0");
    match cache.defrag(WAIT) {
        Err(Error::DefragFailed(e)) => assert_eq!(e.raw_os_error(), Some(5)),
        other => panic!("expected DefragFailed, got {other:?}"),
    }
    assert_eq!(cache.stats().defrag_failures, 1);
    for i in 1..10 {
        assert_eq!(
            cache.get(format!("key{i}").as_bytes()).unwrap(),
            Some(value(i))
        );
    }
    assert!(cache.defrag(WAIT).unwrap(), "the next attempt succeeds");
    assert_eq!(created.load(Ordering::SeqCst), 3);
    assert_eq!(cache.holes(), []);
}

#[test]
fn a_defrag_whose_copy_fails_keeps_the_old_file_and_backs_off() {
    let devices = Devices::default();
    let cache = devices
        .builder()
        .defrag_factor(1.0)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(10))
        .build()
        .unwrap();
    add_all(&cache, 10);
    assert!(cache.wait_for_write(WAIT).unwrap());
    // Every later device (defrag targets) refuses writes.
    devices.on_new(|d| d.fail_writes(Fault::Always(Errno::IO)));
    let old = cache.current_file();
    cache.remove(b"key0"); // a hole: factor 1.0 wants a defrag at once
    match cache.defrag(WAIT) {
        Err(Error::DefragFailed(e)) => assert_eq!(e.raw_os_error(), Some(5)),
        other => panic!("expected DefragFailed, got {other:?}"),
    }
    assert!(
        Arc::ptr_eq(&old, &cache.current_file()),
        "old file still in use"
    );
    for i in 1..10 {
        assert_eq!(
            cache.get(format!("key{i}").as_bytes()).unwrap(),
            Some(value(i))
        );
    }
    // Automatic attempts back off (at least 5 ms apart) instead of spinning:
    // however slowly the writer thread runs, n attempts take (n - 1) * 5 ms.
    let start = std::time::Instant::now();
    let failures_before = cache.stats().defrag_failures;
    while cache.stats().defrag_failures < failures_before + 3 {
        assert!(start.elapsed() < WAIT, "automatic defrag was not retried");
        std::thread::sleep(Duration::from_millis(1));
    }
    let attempts = cache.stats().defrag_failures - failures_before;
    let bound = start.elapsed().as_millis() as u64 / 5 + 1;
    assert!(
        attempts <= bound,
        "{attempts} attempts, at most {bound} allowed"
    );
    devices.on_new(|_| {});
    assert!(cache.defrag(WAIT).unwrap());
    assert!(cache.holes().is_empty());
    cache.check_invariants().unwrap();
}

#[test]
fn a_clear_that_cannot_truncate_reports_it_and_still_clears() {
    let devices = Devices::default();
    let cache = devices.builder().build().unwrap();
    add_all(&cache, 3);
    assert!(cache.wait_for_write(WAIT).unwrap());
    devices.latest().fail_set_len(Fault::Always(Errno::IO));
    assert!(matches!(cache.clear(), Err(Error::Io(_))));
    assert_eq!((cache.len(), cache.size_on_disk()), (0, 0));
    devices.latest().clear_faults();
    cache.add(b"new", b"value").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"new").unwrap(), Some(b"value".to_vec()));
}

#[test]
fn a_real_file_with_failing_writes_loses_nothing() {
    let dir = TempDir::new("faulty-file");
    let path = dir.path().to_path_buf();
    let cache = Builder::with_file_factory(move || {
        let device = FaultyDevice::new(blockdev::anonymous_file(&path)?);
        device.fail_writes(Fault::Every(4, Errno::IO));
        Ok(device)
    })
    .retry_backoff(Duration::from_micros(100), Duration::from_millis(2))
    .defrag_factor(1.5)
    .build()
    .unwrap();
    add_all(&cache, 30);
    wait_through_errors(&cache);
    for i in (0..30).step_by(3) {
        cache.remove(format!("key{i}").as_bytes());
    }
    add_all(&cache, 12);
    wait_through_errors(&cache);
    for i in 0..30 {
        let got = cache.get(format!("key{i}").as_bytes()).unwrap();
        let removed = i >= 12 && i % 3 == 0;
        assert_eq!(got, (!removed).then(|| value(i)), "key{i}");
    }
    cache.check_invariants().unwrap();
}
