//! `PageCache::refresh`: one call moves the cache and the device below it
//! to the device's current version, and no read returns bytes of two.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::thread;

use blockdev::ReadAt;
use pagecache::{ByteSource, Error, PageCache};
use parking_lot::{Condvar, Mutex};

const PAGE: usize = 64;

/// A device over an object that can be replaced, as an object store is:
/// version `v` is `size` bytes that all equal `v`. Reads are pinned to the
/// version the device adopted (the store's `If-Match`): once the store
/// holds another, they fail rather than return it. `refresh` adopts the
/// store's current version. One read position can be held at a gate.
#[derive(Default)]
struct Versioned {
    /// (version, size) in the store.
    store: Mutex<(u8, u64)>,
    /// (version, size) the device reads.
    adopted: Mutex<(u8, u64)>,
    refreshes: AtomicU64,
    reads: AtomicU64,
    fail_next_refresh: AtomicBool,
    held_pos: Mutex<Option<u64>>,
    gate_open: Mutex<bool>,
    gate: Condvar,
    arrived: AtomicU64,
}

impl Versioned {
    fn new(size: u64) -> Self {
        let device = Versioned::default();
        *device.store.lock() = (1, size);
        *device.adopted.lock() = (1, size);
        device
    }

    /// Puts version `version` of `size` bytes in the store.
    fn replace(&self, version: u8, size: u64) {
        *self.store.lock() = (version, size);
    }

    /// The next read at `pos` waits at the gate until `open`.
    fn hold_next_read_at(&self, pos: u64) {
        *self.held_pos.lock() = Some(pos);
    }

    fn open(&self) {
        *self.gate_open.lock() = true;
        self.gate.notify_all();
    }
}

impl ReadAt for Versioned {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, SeqCst);
        let held = {
            let mut held_pos = self.held_pos.lock();
            *held_pos == Some(pos) && held_pos.take().is_some()
        };
        if held {
            self.arrived.fetch_add(1, SeqCst);
            let mut open = self.gate_open.lock();
            while !*open {
                self.gate.wait(&mut open);
            }
        }
        let (version, size) = *self.adopted.lock();
        if self.store.lock().0 != version {
            return Err(io::Error::new(
                io::ErrorKind::StaleNetworkFileHandle,
                "the object was replaced",
            ));
        }
        let n = buf.len().min(size.saturating_sub(pos) as usize);
        buf[..n].fill(version);
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.adopted.lock().1)
    }

    fn refresh(&self) -> io::Result<bool> {
        self.refreshes.fetch_add(1, SeqCst);
        if self.fail_next_refresh.swap(false, SeqCst) {
            return Err(io::Error::other("HEAD failed"));
        }
        let current = *self.store.lock();
        let mut adopted = self.adopted.lock();
        let changed = *adopted != current;
        *adopted = current;
        Ok(changed)
    }
}

fn cache(device: &Versioned) -> PageCache<&Versioned> {
    PageCache::builder()
        .page_size(PAGE)
        .capacity(64)
        .build(device)
        .unwrap()
}

fn read(cache: &PageCache<&Versioned>, pos: u64, len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0; len];
    cache.read_bytes_at(pos, &mut buf)?;
    Ok(buf)
}

/// Waits until a read arrived at the device's gate.
fn wait_for_gate(device: &Versioned) {
    while device.arrived.load(SeqCst) == 0 {
        thread::yield_now();
    }
}

#[test]
fn a_read_across_pages_that_a_refresh_crosses_is_read_again_whole() {
    let device = Versioned::new(4 * PAGE as u64);
    let cache = cache(&device);
    assert_eq!(read(&cache, 0, PAGE).unwrap(), [1; PAGE]); // page 0 cached
    device.hold_next_read_at(PAGE as u64);
    thread::scope(|s| {
        // Copies page 0 (version 1), then waits in the device for page 1.
        let reader = s.spawn(|| read(&cache, 0, 2 * PAGE));
        wait_for_gate(&device);
        device.replace(2, 4 * PAGE as u64);
        assert!(cache.refresh().unwrap());
        // Page 1 is now read from version 2.
        device.open();
        let bytes = reader.join().unwrap().unwrap();
        assert!(
            bytes == [2; 2 * PAGE],
            "one version, the new one, not {:?}",
            bytes.iter().map(|&b| b as usize).sum::<usize>()
        );
    });
    assert_eq!(read(&cache, 0, 4 * PAGE).unwrap(), [2; 4 * PAGE]);
}

#[test]
fn a_read_pinned_to_the_old_version_fails_until_the_refresh() {
    let device = Versioned::new(4 * PAGE as u64);
    let cache = cache(&device);
    assert_eq!(read(&cache, 0, PAGE).unwrap(), [1; PAGE]);
    device.replace(2, 4 * PAGE as u64);
    // Cached pages stay whole; a page of the new version is refused.
    assert_eq!(read(&cache, 0, PAGE).unwrap(), [1; PAGE]);
    let err = read(&cache, 0, 2 * PAGE).unwrap_err();
    assert!(
        matches!(&err, Error::Io(io) if io.kind() == io::ErrorKind::StaleNetworkFileHandle),
        "{err}"
    );
    assert!(cache.refresh().unwrap());
    assert_eq!(read(&cache, 0, 4 * PAGE).unwrap(), [2; 4 * PAGE]);
}

#[test]
fn an_unchanged_device_keeps_every_page() {
    let device = Versioned::new(4 * PAGE as u64);
    let cache = cache(&device);
    read(&cache, 0, 4 * PAGE).unwrap();
    let reads = device.reads.load(SeqCst);
    assert!(!cache.refresh().unwrap());
    assert_eq!(device.refreshes.load(SeqCst), 1, "the device was asked");
    read(&cache, 0, 4 * PAGE).unwrap();
    assert_eq!(device.reads.load(SeqCst), reads, "every page still cached");
    assert_eq!(cache.stats().resident_pages, 4);
}

#[test]
fn a_refresh_reads_the_new_size() {
    let device = Versioned::new(4 * PAGE as u64);
    let cache = cache(&device);
    read(&cache, 0, 4 * PAGE).unwrap();
    device.replace(2, 2 * PAGE as u64 + 1);
    assert!(cache.refresh().unwrap());
    assert_eq!(cache.size(), 2 * PAGE as u64 + 1);
    assert!(matches!(
        read(&cache, 0, 4 * PAGE),
        Err(Error::OutOfBounds(_))
    ));
    assert_eq!(read(&cache, 0, 2 * PAGE + 1).unwrap(), [2; 2 * PAGE + 1]);
    device.replace(3, 5 * PAGE as u64);
    assert!(cache.refresh().unwrap());
    assert_eq!(read(&cache, 0, 5 * PAGE).unwrap(), [3; 5 * PAGE]);
}

#[test]
fn a_failed_refresh_drops_the_pages_all_the_same() {
    let device = Versioned::new(4 * PAGE as u64);
    let cache = cache(&device);
    read(&cache, 0, 4 * PAGE).unwrap();
    device.fail_next_refresh.store(true, SeqCst);
    let err = cache.refresh().unwrap_err();
    assert!(err.to_string().contains("HEAD failed"), "{err}");
    assert_eq!(cache.stats().resident_pages, 0);
}

#[test]
fn a_scan_that_a_refresh_crosses_stops_with_an_error() {
    let device = Versioned::new(8 * PAGE as u64);
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(64)
        .max_batch_pages(2)
        .build(&device)
        .unwrap();
    let mut seen = Vec::new();
    let err = cache
        .for_each_chunk(0, 8 * PAGE as u64, |_, piece| {
            if seen.is_empty() {
                device.replace(2, 8 * PAGE as u64);
                cache.refresh().unwrap();
            }
            seen.extend_from_slice(piece);
        })
        .unwrap_err();
    assert!(matches!(err, Error::VersionChanged), "{err}");
    assert!(
        seen.iter().all(|&b| b == 1),
        "only the old version was visited"
    );

    let mut pages = cache.get_seq(0).unwrap();
    assert_eq!(pages.next().unwrap().unwrap().bytes(), [2; PAGE]);
    device.replace(3, 8 * PAGE as u64);
    cache.refresh().unwrap();
    assert!(matches!(pages.next(), Some(Err(Error::VersionChanged))));
    assert!(pages.next().is_none());
}

#[test]
fn readers_across_pages_never_see_two_versions() {
    const VERSIONS: u8 = 40;
    const SIZE: u64 = 32 * PAGE as u64;
    let device = Versioned::new(SIZE);
    let cache = cache(&device);
    let done = AtomicBool::new(false);
    let mixed = AtomicU64::new(0);
    let reads_ok = AtomicU64::new(0);
    thread::scope(|s| {
        for reader in 0..3u64 {
            let (cache, done, mixed, reads_ok) = (&cache, &done, &mixed, &reads_ok);
            s.spawn(move || {
                let mut at = reader * 7;
                while !done.load(SeqCst) {
                    at = (at * 31 + 17) % (SIZE - 5 * PAGE as u64);
                    if let Ok(bytes) = read(cache, at, 5 * PAGE) {
                        reads_ok.fetch_add(1, SeqCst);
                        if bytes.iter().any(|&b| b != bytes[0]) {
                            mixed.fetch_add(1, SeqCst);
                        }
                    }
                }
            });
        }
        for version in 2..=VERSIONS {
            device.replace(version, SIZE);
            thread::yield_now();
            cache.refresh().unwrap();
            // After the call, only the new version.
            assert_eq!(
                read(&cache, 0, SIZE as usize).unwrap(),
                [version; SIZE as usize]
            );
            // Let the readers read this version before the next one.
            let before = reads_ok.load(SeqCst);
            while reads_ok.load(SeqCst) < before + 3 {
                thread::yield_now();
            }
        }
        done.store(true, SeqCst);
    });
    assert_eq!(mixed.load(SeqCst), 0, "buffers holding two versions");
}
