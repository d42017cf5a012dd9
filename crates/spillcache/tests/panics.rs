//! Issue 16 item 1, every device call: a device that panics, in whatever
//! call the writer thread or a caller makes (a defragmentation's reads and
//! writes, a hole punch, a cut of the tail, the truncation of `clear`, a
//! write on the cipher thread, a read), never wedges the cache, never
//! leaks a reservation, never loses a readable value, is reported as
//! `WriterStopped` when writing stops, and leaves `check_invariants` true.

mod common;

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Instant;

use blockdev::{MemDevice, ReadAt, WriteAt};
use common::hooked::HookedDevice;
use common::panicky::{Call, PanickyDevice};
use common::{TempDir, WAIT};
use spillcache::{Builder, Error, SpillCache};

/// After writing stopped: every value in `values` reads back whole, the
/// state checks out, `add` still keeps values in RAM, and every wait says
/// `WriterStopped`; `clear` empties the cache.
fn assert_stopped_and_sound<D>(cache: &SpillCache<D>, values: &[(&[u8], &[u8])])
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    assert!(matches!(cache.defrag(WAIT), Err(Error::WriterStopped)));
    for (key, value) in values {
        assert_eq!(cache.get(key).unwrap().as_deref(), Some(*value));
    }
    cache.check_invariants().unwrap();
    cache.add(b"later", b"in RAM").unwrap();
    assert_eq!(cache.get(b"later").unwrap(), Some(b"in RAM".to_vec()));
    assert!(matches!(
        cache.wait_for_write(WAIT),
        Err(Error::WriterStopped)
    ));
    cache.check_invariants().unwrap();
    cache.clear().unwrap();
    assert!(cache.is_empty());
    cache.check_invariants().unwrap();
}

/// A cache over `file` whose defragmentation finds no room for a second
/// file, so it compacts in place; holding a, b and c (100 kB each) with a
/// removed: c is due to move down into a's place.
fn compacting(file: &PanickyDevice<MemDevice>) -> SpillCache<PanickyDevice<MemDevice>> {
    let made = AtomicBool::new(false);
    let first = file.clone();
    let cache = Builder::with_file_factory(move || {
        if made.swap(true, SeqCst) {
            Err(io::Error::from(io::ErrorKind::StorageFull))
        } else {
            Ok(first.clone())
        }
    })
    .build()
    .unwrap();
    for (key, byte) in [(b"a", 1u8), (b"b", 2), (b"c", 3)] {
        cache.add(key, &[byte; 100_000]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert!(cache.remove(b"a"));
    assert_eq!(cache.holes(), [(0, 100_000)]);
    cache
}

/// The move's copy dies in `call`: the reservation of a's old place is
/// given back (it was kept reserved, and `check_invariants` said Ok), and
/// c stays readable where it was.
fn a_panic_in_an_in_place_move(call: Call) {
    let file = PanickyDevice::mem();
    let cache = compacting(&file);
    file.panic_on(call, 1);
    assert!(matches!(cache.defrag(WAIT), Err(Error::WriterStopped)));
    assert_eq!(file.panics(), 1, "the move's copy panicked");
    assert_eq!(
        cache.holes(),
        [(0, 100_000)],
        "the place reserved for the move is free again"
    );
    assert_eq!(cache.disk_offset(b"c"), Some(200_000), "c did not move");
    assert_eq!(cache.size_on_disk(), 300_000);
    assert_stopped_and_sound(&cache, &[(b"b", &[2; 100_000]), (b"c", &[3; 100_000])]);
}

#[test]
fn a_read_that_panics_in_an_in_place_move_gives_the_move_back() {
    a_panic_in_an_in_place_move(Call::Read);
}

#[test]
fn a_write_that_panics_in_an_in_place_move_gives_the_move_back() {
    a_panic_in_an_in_place_move(Call::Write);
}

/// A defragmentation into a new file whose first write panics (or whose
/// making panics): the old file stays in use with every value.
fn a_panic_copying_to_a_new_file(make_panics: bool) {
    let made = AtomicUsize::new(0);
    let cache = Builder::with_file_factory(move || {
        let device = PanickyDevice::mem();
        if made.fetch_add(1, SeqCst) > 0 {
            assert!(
                !make_panics,
                "making a file panicked (expected by the test)"
            );
            device.panic_on(Call::Write, 1);
        }
        Ok(device)
    })
    .build()
    .unwrap();
    for (key, byte) in [(b"a", 1u8), (b"b", 2), (b"c", 3)] {
        cache.add(key, &[byte; 10_000]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert!(cache.remove(b"b"));
    let file = cache.current_file();
    assert!(matches!(cache.defrag(WAIT), Err(Error::WriterStopped)));
    assert!(Arc::ptr_eq(&file, &cache.current_file()), "the old file");
    assert_eq!(cache.holes(), [(10_000, 10_000)]);
    assert_stopped_and_sound(&cache, &[(b"a", &[1; 10_000]), (b"c", &[3; 10_000])]);
}

#[test]
fn a_write_that_panics_copying_to_a_new_file_keeps_the_old_one() {
    a_panic_copying_to_a_new_file(false);
}

#[test]
fn a_panic_making_the_new_file_keeps_the_old_one() {
    a_panic_copying_to_a_new_file(true);
}

/// The writer thread punches the blocks of a removed value, and the device
/// panics: the other value stays readable.
#[test]
fn a_punch_that_panics_on_the_writer_thread_stops_writing() {
    let dir = TempDir::new("panics");
    let path = dir.path().to_path_buf();
    let file = PanickyDevice::new(Arc::new(blockdev::anonymous_file(&path).unwrap()));
    let first = file.clone();
    let made = AtomicBool::new(false);
    let cache = Builder::with_file_factory(move || {
        if made.swap(true, SeqCst) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(first.clone())
    })
    .build()
    .unwrap();
    cache.add(b"a", &[1; 1 << 16]).unwrap();
    cache.add(b"b", &[2; 10]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    file.panic_on(Call::Punch, 1);
    assert!(cache.remove(b"a"), "a's blocks are listed for punching");
    file.wait_for_a_panic();
    assert_stopped_and_sound(&cache, &[(b"b", &[2; 10])]);
}

/// The writer thread cuts the file after the value at its tail is removed,
/// and the device panics.
#[test]
fn a_cut_of_the_tail_that_panics_stops_writing() {
    let file = PanickyDevice::mem();
    let first = file.clone();
    let cache = Builder::with_file_factory(move || Ok(first.clone()))
        .build()
        .unwrap();
    cache.add(b"a", &[1; 100]).unwrap();
    cache.add(b"b", &[2; 100]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    file.panic_on(Call::SetLen, 1);
    assert!(cache.remove(b"b"), "the file is due to be cut to 100 bytes");
    file.wait_for_a_panic();
    assert_stopped_and_sound(&cache, &[(b"a", &[1; 100])]);
}

/// `clear` truncates on the caller's thread: a panic there used to unwind
/// into the caller, with the file's length forgotten.
#[test]
fn a_truncation_that_panics_in_clear_is_reported() {
    let file = PanickyDevice::mem();
    let first = file.clone();
    let cache = Builder::with_file_factory(move || Ok(first.clone()))
        .build()
        .unwrap();
    cache.add(b"a", &[1; 100]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    file.panic_on(Call::SetLen, 1);
    let cleared = catch_unwind(AssertUnwindSafe(|| cache.clear()));
    assert!(
        matches!(cleared, Ok(Err(Error::WriterStopped))),
        "clear unwound or said {:?}",
        cleared
            .as_ref()
            .map(|r| r.as_ref().map_err(ToString::to_string))
    );
    assert_eq!(file.panics(), 1);
    assert!(cache.is_empty(), "the values are gone all the same");
    assert_stopped_and_sound(&cache, &[]);
}

/// The writer thread's cipher thread dies writing a piece of a long value
/// (the writer thread's own piece waits until it has): writing stops for
/// good, as if the writer thread had panicked, instead of retrying.
#[test]
fn a_write_that_panics_on_the_cipher_thread_stops_writing() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let device = HookedDevice::new(MemDevice::new(), move || match thread::current().name() {
        Some("spillcache-cipher") => {
            seen.fetch_add(1, SeqCst);
            panic!("device write panicked on the cipher thread (expected by the test)");
        }
        Some("spillcache-writer") => {
            let deadline = Instant::now() + WAIT;
            while seen.load(SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the cipher thread never wrote");
                thread::yield_now();
            }
        }
        _ => {}
    });
    let cache = Builder::with_file_factory(move || Ok(device.clone()))
        .build()
        .unwrap();
    let value = vec![9u8; 1 << 20];
    cache.add(b"long", &value).unwrap();
    let deadline = Instant::now() + WAIT;
    while panics.load(SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the value was never written");
        thread::sleep(std::time::Duration::from_millis(1));
    }
    let waited = cache.wait_for_write(WAIT);
    assert!(
        matches!(waited, Err(Error::WriterStopped)),
        "{:?}",
        waited.map_err(|e| e.to_string())
    );
    assert_eq!(cache.size_on_disk(), 0, "the reservation was given back");
    assert_stopped_and_sound(&cache, &[(b"long", &value)]);
}

/// A read that panics (on the caller's thread, or on the thread helping
/// it decrypt) fails that read only: the value stays readable and writing
/// goes on.
#[test]
fn a_read_that_panics_leaves_the_value_readable() {
    let file = PanickyDevice::mem();
    let first = file.clone();
    let cache = Builder::with_file_factory(move || Ok(first.clone()))
        .build()
        .unwrap();
    let value: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    cache.add(b"long", &value).unwrap();
    cache.add(b"short", b"value").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    for key in [&b"long"[..], b"short"] {
        file.panic_on(Call::Read, 1);
        let read = catch_unwind(AssertUnwindSafe(|| cache.get(key)));
        assert!(
            matches!(read, Err(_) | Ok(Err(_))),
            "a read whose device panicked returned bytes"
        );
        assert_eq!(file.panics(), if key == b"long" { 1 } else { 2 });
    }
    assert_eq!(cache.get(b"long").unwrap(), Some(value));
    assert_eq!(cache.get(b"short").unwrap(), Some(b"value".to_vec()));
    cache.add(b"after", b"read").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap(), "writing goes on");
    cache.check_invariants().unwrap();
}
