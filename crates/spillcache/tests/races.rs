//! The races kitty got wrong, made deterministic: a device that holds every
//! write until the test lets it through, so the test can overwrite, remove
//! or clear a value while its write is under way.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blockdev::{MemDevice, ReadAt};
use common::WAIT;
use common::gate::{Gate, gated_device};
use common::hooked::HookedDevice;
use spillcache::{Builder, Error, SpillCache};

/// A cache whose first write blocks until `gate.open()`.
fn gated() -> (SpillCache<HookedDevice>, Arc<Gate>, MemDevice) {
    let gate = Arc::new(Gate::closed());
    let inner = MemDevice::new();
    let (g, i) = (Arc::clone(&gate), inner.clone());
    let cache = Builder::with_file_factory(move || Ok(gated_device(i.clone(), &g)))
        .build()
        .unwrap();
    (cache, gate, inner)
}

#[test]
fn a_write_that_finishes_after_an_overwrite_is_discarded() {
    let (cache, gate, _) = gated();
    cache.add(b"k", &[1; 300]).unwrap();
    gate.wait_for_a_write(); // the old value's write is under way
    cache.add(b"k", &[2; 100]).unwrap();
    assert_eq!(
        cache.get(b"k").unwrap(),
        Some(vec![2; 100]),
        "served from RAM"
    );
    gate.open();
    assert!(cache.wait_for_write(WAIT).unwrap());
    let stats = cache.stats();
    assert_eq!((stats.writes, stats.discarded_writes), (1, 1));
    assert_eq!(
        cache.get(b"k").unwrap(),
        Some(vec![2; 100]),
        "read from the file"
    );
    assert_eq!(cache.num_cached_in_ram(), 0);
    // The old write's 300 bytes were freed before the new value was placed.
    assert_eq!(cache.disk_offset(b"k"), Some(0));
    assert_eq!(cache.size_on_disk(), 100);
    cache.check_invariants().unwrap();
}

#[test]
fn a_write_that_finishes_after_a_remove_is_discarded() {
    let (cache, gate, _) = gated();
    cache.add(b"k", &[1; 300]).unwrap();
    gate.wait_for_a_write();
    assert!(cache.remove(b"k"));
    assert!(
        cache.wait_for_write(Duration::ZERO).unwrap(),
        "nothing left to write"
    );
    gate.open();
    cache.add(b"other", &[3; 10]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"k").unwrap(), None);
    assert_eq!(cache.stats().discarded_writes, 1);
    assert_eq!(cache.disk_offset(b"other"), Some(0));
    assert_eq!(cache.size_on_disk(), 10);
    cache.check_invariants().unwrap();
}

#[test]
fn a_write_that_finishes_after_a_clear_is_discarded_and_trimmed() {
    let (cache, gate, inner) = gated();
    cache.add(b"k", &[1; 300]).unwrap();
    gate.wait_for_a_write();
    cache.clear().unwrap();
    assert_eq!((cache.size_on_disk(), inner.size().unwrap()), (0, 0));
    cache.add(b"new", &[4; 20]).unwrap();
    gate.open();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"k").unwrap(), None);
    assert_eq!(cache.get(b"new").unwrap(), Some(vec![4; 20]));
    assert_eq!(cache.stats().discarded_writes, 1);
    assert_eq!(cache.disk_offset(b"new"), Some(0));
    assert_eq!(cache.size_on_disk(), 20);
    cache.check_invariants().unwrap();
    // The stale write extended the file to 300 bytes; the idle writer cuts
    // it back (a test of eventual state, so poll briefly).
    let deadline = std::time::Instant::now() + WAIT;
    while inner.size().unwrap() != 20 {
        assert!(std::time::Instant::now() < deadline, "never trimmed");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A cache with `n` values of 100 bytes on disk, then the gate closed so the
/// next write (a defrag's copy) blocks.
fn gated_with_values(n: u8) -> (SpillCache<HookedDevice>, Arc<Gate>) {
    let (cache, gate, _) = gated();
    gate.open();
    for i in 0..n {
        cache.add(&[i], &[i; 100]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    gate.close();
    (cache, gate)
}

#[test]
fn values_changed_during_a_defrag_copy_stay_correct() {
    let (cache, gate) = gated_with_values(6);
    let cache = Arc::new(cache);
    let defrag = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || cache.defrag(WAIT))
    };
    gate.wait_for_a_write(); // the copy into the new file is under way
    assert!(cache.remove(&[1]));
    cache.add(&[2], &[22; 50]).unwrap();
    cache.add_memory_only(&[3], b"ram").unwrap();
    gate.open();
    assert!(defrag.join().unwrap().unwrap());
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.stats().defrags, 1);
    assert_eq!(cache.get(&[1]).unwrap(), None);
    assert_eq!(cache.get(&[2]).unwrap(), Some(vec![22; 50]));
    assert_eq!(cache.get(&[3]).unwrap(), Some(b"ram".to_vec()));
    for i in [0u8, 4, 5] {
        assert_eq!(cache.get(&[i]).unwrap(), Some(vec![i; 100]));
    }
    // Packed 0,1,2,3,4,5 -> the copies of 1, 2 and 3 are holes in the new file,
    // and the new value of 2 went into the first of them.
    assert_eq!(cache.disk_offset(&[2]), Some(100));
    assert_eq!(cache.holes(), [(150, 250)]);
    cache.check_invariants().unwrap();
}

#[test]
fn a_clear_during_a_defrag_copy_voids_the_copy() {
    let (cache, gate) = gated_with_values(4);
    let cache = Arc::new(cache);
    let defrag = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || cache.defrag(WAIT))
    };
    gate.wait_for_a_write();
    cache.clear().unwrap();
    gate.open();
    assert!(defrag.join().unwrap().unwrap(), "served, not failed");
    let stats = cache.stats();
    assert_eq!((stats.defrags, stats.defrag_failures), (0, 0));
    assert_eq!((cache.len(), cache.size_on_disk()), (0, 0));
    cache.add(b"after", b"clear").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.disk_offset(b"after"), Some(0));
    assert_eq!(cache.get(b"after").unwrap(), Some(b"clear".to_vec()));
}

/// A cache whose writes panic, with a bound of 10 waiting bytes, and the
/// count of panics.
fn panicking() -> (SpillCache<HookedDevice>, Arc<AtomicUsize>) {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panics);
    let cache = Builder::with_file_factory(move || {
        let counter = Arc::clone(&counter);
        // Kills whichever thread writes.
        Ok(HookedDevice::new(MemDevice::new(), move || {
            counter.fetch_add(1, Ordering::SeqCst);
            panic!("device write panicked (expected by the test)");
        }))
    })
    .max_pending_bytes(10)
    .build()
    .unwrap();
    (cache, panics)
}

/// Whichever thread writes (the writer thread, or this one inside
/// `wait_for_write` when the writer thread still sleeps), the panic stops
/// writing for good and is reported the same way.
#[test]
fn a_dead_writer_is_reported_and_values_stay_readable() {
    let (cache, _) = panicking();
    cache.add(b"k", b"value").unwrap();
    assert!(matches!(
        cache.wait_for_write(WAIT),
        Err(Error::WriterStopped)
    ));
    assert!(matches!(cache.defrag(WAIT), Err(Error::WriterStopped)));
    assert_eq!(cache.get(b"k").unwrap(), Some(b"value".to_vec()));
    assert_eq!(cache.size_on_disk(), 0, "the reservation was given back");
    cache.check_invariants().unwrap();
    // Past the bound, `add` says so instead of waiting forever.
    assert!(matches!(
        cache.add(b"j", &[0; 10]),
        Err(Error::WriterStopped)
    ));
    assert!(matches!(
        cache.wait_for_write(Duration::ZERO),
        Err(Error::WriterStopped)
    ));
    drop(cache); // joins the dead thread without hanging or panicking
}

/// The writer thread for sure: nobody waits until its write has panicked.
#[test]
fn a_writer_thread_killed_mid_write_gives_its_reservation_back() {
    let (cache, panics) = panicking();
    cache.add(b"k", b"value").unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while panics.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "never written");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        cache.wait_for_write(WAIT),
        Err(Error::WriterStopped)
    ));
    assert_eq!(cache.size_on_disk(), 0, "the reservation was given back");
    assert_eq!(cache.get(b"k").unwrap(), Some(b"value".to_vec()));
    cache.check_invariants().unwrap();
    assert!(matches!(
        cache.add(b"j", &[0; 10]),
        Err(Error::WriterStopped)
    ));
}

#[test]
fn large_values_span_several_device_calls() {
    let cache = common::mem_builder().build().unwrap();
    let value: Vec<u8> = (0..3 * (1 << 20) + 12_345)
        .map(|i| (i % 251) as u8)
        .collect();
    cache.add(b"big", &value).unwrap();
    cache.add(b"small", b"x").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"big").unwrap().as_ref(), Some(&value));
    let mut exact = vec![0u8; value.len()];
    assert_eq!(
        cache.get_into_slice(b"big", &mut exact).unwrap(),
        Some(value.len())
    );
    assert!(exact == value);
    assert!(matches!(
        cache.get_into_slice(b"big", &mut exact[1..]),
        Err(Error::BufferTooSmall { needed, got }) if needed == value.len() && got == value.len() - 1
    ));
    assert!(cache.contains_key(b"big") && !cache.contains_key(b"none"));
    assert_eq!(cache.size_on_disk(), value.len() as u64 + 1);
    let stats = cache.stats();
    assert_eq!(
        (stats.writes, stats.bytes_written),
        (2, value.len() as u64 + 1)
    );
    assert!(format!("{cache:?}").contains("total_size"));
}
