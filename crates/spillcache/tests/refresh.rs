//! `SpillTier` as a layer of a stack: `ReadAt::refresh` goes down to the
//! device and drops the chunks only when the device says it changed.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use blockdev::{MemDevice, ReadAt, WriteAt};
use spillcache::SpillTier;

/// A memory device that knows whether it changed since its last refresh,
/// and can be told to fail one.
#[derive(Default)]
struct Versioned {
    bytes: MemDevice,
    changed: AtomicBool,
    fail_next_refresh: AtomicBool,
    refreshes: AtomicU64,
}

impl Versioned {
    fn replace(&self, bytes: &[u8]) {
        self.bytes.write_all_at(0, bytes).unwrap();
        self.changed.store(true, Relaxed);
    }
}

impl ReadAt for Versioned {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.bytes.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.bytes.size()
    }

    fn refresh(&self) -> io::Result<bool> {
        self.refreshes.fetch_add(1, Relaxed);
        if self.fail_next_refresh.swap(false, Relaxed) {
            return Err(io::Error::other("the store is unreachable"));
        }
        Ok(self.changed.swap(false, Relaxed))
    }
}

fn tier(device: &Versioned) -> SpillTier<&Versioned> {
    SpillTier::with_chunk_size(device, std::env::temp_dir(), 1 << 12, 64).unwrap()
}

fn read(tier: &impl ReadAt) -> Vec<u8> {
    let mut buf = vec![0; 256];
    tier.read_exact_at(0, &mut buf).unwrap();
    buf
}

#[test]
fn an_unchanged_device_keeps_the_chunks() {
    let device = Versioned::default();
    device.replace(&[1; 256]);
    let tier = tier(&device);
    device.refresh().unwrap();
    read(&tier);
    assert!(!tier.refresh().unwrap());
    assert_eq!(
        device.refreshes.load(Relaxed),
        2,
        "the tier asked the device"
    );
    read(&tier);
    assert_eq!(
        tier.stats().device_reads,
        1,
        "the second read hit every chunk"
    );
}

#[test]
fn a_changed_device_drops_every_chunk_and_serves_the_new_bytes() {
    let device = Versioned::default();
    device.replace(&[1; 256]);
    let tier = tier(&device);
    assert_eq!(read(&tier), [1; 256]);
    device.replace(&[2; 256]);
    assert_eq!(read(&tier), [1; 256], "the tier still holds the old chunks");
    assert!(tier.refresh().unwrap());
    assert_eq!(tier.stats().resident_bytes, 0);
    assert_eq!(read(&tier), [2; 256]);
}

#[test]
fn a_failed_refresh_drops_the_chunks_too() {
    let device = Versioned::default();
    device.replace(&[1; 256]);
    let tier = tier(&device);
    read(&tier);
    device.replace(&[3; 256]);
    device.fail_next_refresh.store(true, Relaxed);
    let err = tier.refresh().unwrap_err();
    assert_eq!(err.to_string(), "the store is unreachable");
    assert_eq!(tier.stats().resident_bytes, 0);
    assert_eq!(read(&tier), [3; 256]);
}

/// A memory device whose next read, once it has copied its bytes, waits
/// until the test opens the gate.
#[derive(Default)]
struct HeldAfterRead {
    bytes: MemDevice,
    hold_next: AtomicBool,
    arrived: AtomicBool,
    open: AtomicBool,
}

impl ReadAt for HeldAfterRead {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.bytes.read_at(pos, buf)?;
        if self.hold_next.swap(false, Relaxed) {
            self.arrived.store(true, Relaxed);
            while !self.open.load(Relaxed) {
                std::thread::yield_now();
            }
        }
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        self.bytes.size()
    }
}

#[test]
fn a_chunk_read_before_a_refresh_is_not_kept_after_it() {
    let device = HeldAfterRead::default();
    device.bytes.write_all_at(0, &[1; 256]).unwrap();
    let tier = SpillTier::with_chunk_size(&device, std::env::temp_dir(), 1 << 12, 64).unwrap();
    device.hold_next.store(true, Relaxed);
    std::thread::scope(|s| {
        // Reads the old bytes, then waits before adding them to the tier.
        let reader = s.spawn(|| read(&tier));
        while !device.arrived.load(Relaxed) {
            std::thread::yield_now();
        }
        device.bytes.write_all_at(0, &[2; 256]).unwrap();
        assert!(tier.refresh().unwrap());
        device.open.store(true, Relaxed);
        // The read began before the refresh: either version whole (the tier
        // reads again when a clear crossed it), never a mix.
        let during = reader.join().unwrap();
        assert!(
            during == [1; 256] || during == [2; 256],
            "a read the refresh crossed returned a mix: {during:?}"
        );
    });
    assert_eq!(read(&tier), [2; 256], "no chunk of the old bytes kept");
}
