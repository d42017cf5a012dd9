//! Issue 16 item 13, for a `SpillTier` used alone (no page cache above to
//! assemble reads): a read that spans several pieces while `refresh()`
//! moves the device to a new version returns the bytes of one version
//! whole (or an error), never pieces of both.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use blockdev::{MemDevice, ReadAt, WriteAt};
use parking_lot::Mutex;
use spillcache::{Builder, SpillTier};

const SIZE: usize = 64 << 10;
const CHUNK: u64 = 4096;
const PIECE: u64 = 1024;

/// Long enough for a loaded machine; the waits normally take microseconds.
const WAIT: Duration = Duration::from_secs(30);

/// What a refresh runs once the bytes changed, before it returns.
type AfterChange = Box<dyn FnMut() + Send>;

/// A device whose every byte is its version number. `refresh` moves it to
/// the next version, as an object device does: the bytes change inside the
/// call, in one write, so each device read returns one version. A refresh
/// runs `after_change`, if set, once the bytes changed and before it
/// returns (while the tier above still holds the old pieces), as a refresh
/// that asks the store for the new version's metadata takes a while.
struct Versions {
    bytes: MemDevice,
    version: AtomicU64,
    after_change: Mutex<Option<AfterChange>>,
}

impl Versions {
    fn new() -> Self {
        Versions {
            bytes: MemDevice::from_vec(vec![0; SIZE]),
            version: AtomicU64::new(0),
            after_change: Mutex::new(None),
        }
    }
}

impl ReadAt for Versions {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.bytes.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.bytes.size()
    }

    fn refresh(&self) -> io::Result<bool> {
        let next = self.version.fetch_add(1, SeqCst) + 1;
        self.bytes.write_all_at(0, &vec![next as u8; SIZE])?;
        if let Some(after_change) = &mut *self.after_change.lock() {
            after_change();
        }
        Ok(true)
    }
}

fn tier(device: &Versions) -> SpillTier<&Versions, MemDevice> {
    let cache = Builder::with_file_factory(|| Ok(MemDevice::new()))
        .build()
        .unwrap();
    SpillTier::with_cache(device, cache, SIZE as u64, CHUNK)
        .unwrap()
        .with_piece_size(PIECE)
        .unwrap()
}

/// `Ok(version)` if every byte of `buf` is the same, else the versions seen.
fn one_version(buf: &[u8]) -> Result<u8, Vec<u8>> {
    let first = buf[0];
    if buf.iter().all(|&b| b == first) {
        return Ok(first);
    }
    let mut seen: Vec<u8> = buf.to_vec();
    seen.dedup();
    Err(seen)
}

/// Waits until `reads` grew by `more`; a stall past `deadline` fails.
fn wait_for_reads(reads: &AtomicUsize, more: usize, deadline: Instant) {
    let before = reads.load(SeqCst);
    while reads.load(SeqCst) < before + more {
        assert!(Instant::now() < deadline, "the readers stalled");
        thread::yield_now();
    }
}

/// Sets the flag when dropped, even by a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// The read runs inside the refresh, after the device moved on and before
/// the tier dropped its pieces: its first piece is in the tier (old), its
/// second is not (fetched new). It used to return both.
#[test]
fn a_read_inside_a_refresh_returns_one_version() {
    let device = Versions::new();
    let tier = tier(&device);
    let mut buf = vec![0u8; 2 * PIECE as usize];
    tier.read_exact_at(0, &mut buf[..PIECE as usize]).unwrap();
    assert_eq!(tier.stats().resident_bytes, PIECE, "piece 0 is in the tier");
    thread::scope(|scope| {
        let (read_now, request) = mpsc::channel::<()>();
        let (read_done, done) = mpsc::channel();
        let tier = &tier;
        scope.spawn(move || {
            request.recv().unwrap();
            let mut buf = vec![0u8; 2 * PIECE as usize];
            let read = tier.read_exact_at(0, &mut buf).map(|()| buf);
            read_done.send(read).unwrap();
        });
        *device.after_change.lock() = Some(Box::new(move || {
            read_now.send(()).unwrap();
            // The read's verdict, taken while the refresh is under way; a
            // read that waits for the refresh to end fails the test here
            // instead of hanging it.
            let read = done.recv_timeout(WAIT).expect("the read never ended");
            if let Ok(buf) = read {
                assert!(
                    one_version(&buf).is_ok(),
                    "a read inside the refresh mixed versions: {:?}",
                    one_version(&buf)
                );
            }
        }));
        assert!(tier.refresh().unwrap());
    });
    tier.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(
        one_version(&buf),
        Ok(1),
        "the new version after the refresh"
    );
}

/// Readers of spans of 2 to 12 pieces (over up to four chunks) run while
/// the main thread refreshes the tier again and again: every buffer is
/// one version, and versions never go back for a reader (a read that
/// returned version v is followed by none of an older one).
#[test]
fn readers_racing_refreshes_never_see_two_versions_in_one_buffer() {
    const READERS: usize = 4;
    const REFRESHES: u64 = 100;
    let device = Versions::new();
    let tier = tier(&device);
    let stop = AtomicBool::new(false);
    let reads = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + WAIT;
    // Each refresh lets every reader read once more between the change and
    // its end: reads inside the window happen on every run.
    let counted = Arc::clone(&reads);
    *device.after_change.lock() = Some(Box::new(move || {
        wait_for_reads(&counted, READERS, deadline);
    }));
    let went_back = AtomicUsize::new(0);
    let mixed: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        // Ends the readers however the refreshes end.
        let _stop = StopOnDrop(&stop);
        for seed in 0..READERS as u64 {
            let (tier, stop, reads, mixed) = (&tier, &stop, &*reads, &mixed);
            let went_back = &went_back;
            scope.spawn(move || {
                let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut buf = vec![0u8; 12 * PIECE as usize];
                let mut last = 0;
                while !stop.load(SeqCst) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let len = (2 + state % 11) * PIECE;
                    let pos = (state >> 8) % (SIZE as u64 - len);
                    let buf = &mut buf[..len as usize];
                    tier.read_exact_at(pos, buf).unwrap();
                    reads.fetch_add(1, SeqCst);
                    match one_version(buf) {
                        Ok(version) if version < last => {
                            went_back.fetch_add(1, SeqCst);
                        }
                        Ok(version) => last = version,
                        Err(seen) => mixed.lock().push(seen),
                    }
                }
            });
        }
        for _ in 0..REFRESHES {
            // Let the readers fill the tier with the current version.
            wait_for_reads(&reads, READERS, deadline);
            assert!(tier.refresh().unwrap());
        }
    });
    let mixed = mixed.into_inner();
    let went_back = went_back.load(SeqCst);
    assert!(
        mixed.is_empty() && went_back == 0,
        "of {} reads, {} mixed versions (e.g. {:?}) and {went_back} went back a version",
        reads.load(SeqCst),
        mixed.len(),
        &mixed[..mixed.len().min(5)]
    );
}

/// A device whose refresh panics after its bytes changed: the tier drops
/// its pieces before the panic goes on (it used to keep serving the old
/// ones), and reads are served from the tier again afterwards (the
/// refresh is not left counted as under way).
#[test]
fn a_refresh_that_panics_leaves_no_old_piece_and_no_refresh_under_way() {
    let device = Versions::new();
    let tier = tier(&device);
    let mut buf = vec![0u8; 4 * PIECE as usize];
    tier.read_exact_at(0, &mut buf).unwrap();
    *device.after_change.lock() = Some(Box::new(|| {
        panic!("the device's refresh panicked (expected by the test)")
    }));
    let refreshed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tier.refresh()));
    assert!(refreshed.is_err(), "the panic goes on up");
    *device.after_change.lock() = None;
    tier.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(one_version(&buf), Ok(1), "no piece of the old version");
    let fetched = tier.stats().device_reads;
    tier.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(one_version(&buf), Ok(1));
    assert_eq!(
        tier.stats().device_reads,
        fetched,
        "served from the tier, not read directly"
    );
}
