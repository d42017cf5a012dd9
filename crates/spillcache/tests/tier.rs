//! `SpillTier`: bytes always equal the device's, against a model; one
//! device read per run of missing pieces, and one for all the readers that
//! miss the same piece; nothing fetched before a clear or an invalidation
//! is kept after it; the budget holds; device and spill-file faults give
//! errors or re-reads, never wrong bytes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use blockdev::{Corruption, Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt};
use parking_lot::Mutex;
use proptest::prelude::*;
use spillcache::{Builder, Error, SpillTier};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A tier over `device` whose spill files are in-memory fault-injecting
/// devices; the newest file is handed back for the test to damage.
type SpillFile = Arc<FaultyDevice<MemDevice>>;

fn mem_tier<D: ReadAt>(
    device: D,
    budget: u64,
    chunk: u64,
) -> (SpillTier<D, SpillFile>, Arc<Mutex<Option<SpillFile>>>) {
    let latest: Arc<Mutex<Option<SpillFile>>> = Arc::default();
    let made = Arc::clone(&latest);
    let cache = Builder::with_file_factory(move || {
        let file = Arc::new(FaultyDevice::new(MemDevice::new()));
        *made.lock() = Some(Arc::clone(&file));
        Ok(file)
    })
    .build()
    .expect("in-memory spill cache");
    let tier = SpillTier::with_cache(device, cache, budget, chunk).expect("valid shape");
    (tier, latest)
}

/// Steps a linear congruential sequence: a cheap random walk, seeded per
/// thread, the same on every run.
fn step(state: &mut u64) {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
}

fn read(tier: &impl ReadAt, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    tier.read_exact_at(pos, &mut buf)?;
    Ok(buf)
}

#[test]
fn a_run_of_missing_chunks_is_one_device_read() {
    let device = FaultyDevice::new(MemDevice::from_vec(pattern(10_000)));
    let (tier, _) = mem_tier(&device, 1 << 20, 1000);
    assert_eq!(
        read(&tier, 1500, 5000).unwrap(),
        pattern(10_000)[1500..6500]
    );
    assert_eq!(device.reads(), 1, "chunks 1..=6 in one call");
    // Chunks 0 and 7 are missing on either side of cached ones: two runs.
    assert_eq!(read(&tier, 0, 8000).unwrap(), pattern(10_000)[..8000]);
    assert_eq!(device.reads(), 3);
    assert_eq!(read(&tier, 0, 8000).unwrap(), pattern(10_000)[..8000]);
    assert_eq!(device.reads(), 3, "warm: no device read");
    let stats = tier.stats();
    assert_eq!((stats.chunk_misses, stats.device_reads), (8, 3));
}

#[test]
fn the_short_last_chunk_and_reads_past_the_end() {
    let (tier, _) = mem_tier(MemDevice::from_vec(pattern(2500)), 4096, 1024);
    assert_eq!(read(&tier, 2000, 500).unwrap(), pattern(2500)[2000..]);
    let mut buf = [0u8; 10];
    assert_eq!(tier.read_at(2495, &mut buf).unwrap(), 5);
    assert_eq!(tier.read_at(2500, &mut buf).unwrap(), 0);
    assert_eq!(tier.stats().resident_bytes, 1024 + 452, "chunks 1 and 2");
    assert_eq!(tier.size().unwrap(), 2500);
}

#[test]
fn clock_keeps_a_chunk_read_again_through_a_scan() {
    let device = FaultyDevice::new(MemDevice::from_vec(pattern(100 * 64)));
    let (tier, _) = mem_tier(&device, 4 * 64, 64);
    read(&tier, 0, 1).unwrap(); // chunk 0 arrives
    read(&tier, 0, 1).unwrap(); // and is read again: marked
    for chunk in 1..20 {
        read(&tier, chunk * 64, 64).unwrap(); // a one-off scan
    }
    let before = device.reads();
    read(&tier, 0, 64).unwrap();
    assert_eq!(device.reads(), before, "chunk 0 survived the scan");
    assert!(tier.stats().evictions >= 16);
    assert!(tier.stats().resident_bytes <= 4 * 64);
}

#[test]
fn a_failing_device_is_an_error_and_caches_nothing() {
    let device = FaultyDevice::new(MemDevice::from_vec(pattern(4096)));
    let (tier, _) = mem_tier(&device, 4096, 1024);
    device.fail_reads(Fault::Always(Errno::IO));
    let err = read(&tier, 100, 2000).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::IO.raw()));
    assert_eq!(tier.stats().resident_bytes, 0);
    device.clear_faults();
    assert_eq!(read(&tier, 100, 2000).unwrap(), pattern(4096)[100..2100]);
}

#[test]
fn a_damaged_spill_file_is_read_again_from_the_device_never_served() {
    let device = FaultyDevice::new(MemDevice::from_vec(pattern(4096)));
    let (tier, latest) = mem_tier(&device, 4096, 1024);
    read(&tier, 0, 4096).unwrap();
    assert!(
        tier.spill_cache()
            .wait_for_write(Duration::from_secs(30))
            .unwrap()
    );
    let file = latest.lock().clone().expect("the spill file");
    file.corrupt_reads(Corruption::EveryRead {
        index: 3,
        mask: 0x40,
    });
    let reads_before = device.reads();
    assert_eq!(read(&tier, 0, 4096).unwrap(), pattern(4096));
    assert!(tier.stats().dropped_unreadable > 0);
    assert!(device.reads() > reads_before, "re-read from the device");
    file.clear_faults();
    file.fail_reads(Fault::Always(Errno::IO));
    assert_eq!(read(&tier, 0, 4096).unwrap(), pattern(4096));
}

#[test]
fn invalidate_and_clear_send_reads_back_to_the_device() {
    let device = FaultyDevice::new(MemDevice::from_vec(pattern(4096)));
    let (tier, _) = mem_tier(&device, 4096, 1024);
    read(&tier, 0, 4096).unwrap();
    tier.invalidate(1500, 1);
    read(&tier, 0, 4096).unwrap();
    assert_eq!(device.reads(), 2);
    assert_eq!(tier.stats().chunk_misses, 5, "only chunk 1 again");
    tier.clear().unwrap();
    assert_eq!(tier.stats().resident_bytes, 0);
    read(&tier, 0, 4096).unwrap();
    assert_eq!(device.reads(), 3);
}

#[test]
fn threads_reading_at_once_get_the_right_bytes_within_the_budget() {
    let bytes = pattern(64 * 1024);
    let (tier, _) = mem_tier(MemDevice::from_vec(bytes.clone()), 16 * 1024, 1024);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (tier, bytes) = (&tier, &bytes);
            scope.spawn(move || {
                let mut state = t + 1;
                for _ in 0..300 {
                    step(&mut state);
                    let pos = (state >> 33) % 60_000;
                    let len = ((state >> 20) % 4000) as usize;
                    let got = read(tier, pos, len).unwrap();
                    assert!(
                        got == bytes[pos as usize..pos as usize + len],
                        "at {pos}+{len}"
                    );
                }
            });
        }
    });
    let stats = tier.stats();
    assert!(stats.resident_bytes <= 16 * 1024);
    assert_eq!(stats.resident_bytes, tier.spill_cache().total_size());
}

#[test]
fn bad_shapes_are_errors() {
    let dir = std::env::temp_dir();
    for (budget, chunk, option) in [(10, 0, "chunk_size"), (10, 11, "budget")] {
        let result = SpillTier::with_chunk_size(MemDevice::new(), &dir, budget, chunk);
        assert!(
            matches!(result, Err(Error::InvalidOption { option: o, .. }) if o == option),
            "{budget} {chunk}"
        );
    }
}

#[derive(Clone, Debug)]
enum Op {
    Read {
        pos: u64,
        len: usize,
    },
    Invalidate {
        off: u64,
        len: u64,
    },
    /// The device changes under the tier, which is told with `invalidate`.
    Overwrite {
        off: u64,
        len: u64,
        byte: u8,
    },
    /// The device grows; the tier is not told (its short last piece no
    /// longer matches and must not be served).
    Append {
        len: u64,
        byte: u8,
    },
    Clear,
}

fn op(size: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..size + 10, 0..600usize).prop_map(|(pos, len)| Op::Read { pos, len }),
        1 => (0..size + 10, 0..300u64).prop_map(|(off, len)| Op::Invalidate { off, len }),
        1 => (0..size, 1..300u64, any::<u8>()).prop_map(|(off, len, byte)| Op::Overwrite { off, len, byte }),
        1 => (1..300u64, any::<u8>()).prop_map(|(len, byte)| Op::Append { len, byte }),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The model is the device's bytes: every read returns exactly what a
    /// plain read of the device would, after any change the tier was told
    /// of, whatever the chunk and piece sizes; and the budget always holds.
    #[test]
    fn reads_agree_with_the_device(
        (size, chunk, piece, budget_chunks, ops) in (1u64..3000, 1u64..300, 1u64..8)
            .prop_flat_map(|(size, chunk, budget)| {
                (Just(size), Just(chunk), 1..=chunk, Just(budget), prop::collection::vec(op(size), 1..40))
            })
    ) {
        let device = MemDevice::from_vec(pattern(size as usize));
        let (tier, _) = mem_tier(&device, budget_chunks * chunk, chunk);
        let tier = tier.with_piece_size(piece).unwrap();
        for op in ops {
            match op {
                Op::Read { pos, len } => {
                    let bytes = device.to_vec();
                    let mut got = vec![0u8; len];
                    let n = tier.read_at(pos, &mut got).unwrap();
                    let want = bytes.get(pos as usize..).map_or(&[][..], |tail| &tail[..tail.len().min(len)]);
                    prop_assert_eq!(&got[..n], want);
                }
                Op::Invalidate { off, len } => tier.invalidate(off, len),
                Op::Overwrite { off, len, byte } => {
                    let len = len.min(size - off);
                    device.write_all_at(off, &vec![byte; len as usize]).unwrap();
                    tier.invalidate(off, len);
                }
                Op::Append { len, byte } => {
                    let end = device.size().unwrap();
                    device.write_all_at(end, &vec![byte; len as usize]).unwrap();
                }
                Op::Clear => tier.clear().unwrap(),
            }
            let stats = tier.stats();
            prop_assert!(stats.resident_bytes <= tier.budget());
            prop_assert_eq!(stats.resident_bytes, tier.spill_cache().total_size());
        }
    }
}

/// A disk that stays full: the spill cache's waiting bytes never drain, so a
/// blocking `add` would wedge every read that misses. Reads are served from
/// the device and the chunks that do not fit are counted, not kept.
#[test]
fn a_full_disk_never_blocks_a_read() {
    let data = pattern(64 * 20);
    let cache = Builder::with_file_factory(|| {
        let file = FaultyDevice::new(MemDevice::new());
        file.fail_writes(Fault::Always(Errno::NOSPC));
        Ok(file)
    })
    .max_pending_bytes(64 * 4)
    .build()
    .expect("spill cache");
    let tier = SpillTier::with_cache(MemDevice::from_vec(data.clone()), cache, 64 * 20, 64)
        .expect("valid shape");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let all = read(&tier, 0, 64 * 20);
        let again = read(&tier, 0, 64 * 20);
        done_tx.send((all, again, tier.stats())).unwrap();
    });
    let (all, again, stats) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("reads on a full disk wedged");
    assert_eq!(all.unwrap(), data);
    assert_eq!(again.unwrap(), data);
    assert!(stats.skipped_full >= 16, "{stats:?}");
    assert!(stats.resident_bytes <= 64 * 4, "{stats:?}");
}

/// What the gate does to the read it holds, once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    Read,
    Fail,
    Panic,
}

/// A device whose first read after [`Gate::hold`] reads, then waits until
/// the test releases it (then returns, fails or panics), and that counts the reads
/// and bytes asked of it. Other reads pass.
#[derive(Default)]
struct Gate {
    bytes: MemDevice,
    /// `Some` while armed or holding.
    hold: Mutex<Option<Then>>,
    armed: AtomicBool,
    released: AtomicBool,
    arrived: AtomicU64,
    reads: AtomicU64,
    bytes_read: AtomicU64,
}

impl Gate {
    fn new(bytes: Vec<u8>) -> Self {
        Gate {
            bytes: MemDevice::from_vec(bytes),
            ..Gate::default()
        }
    }

    fn hold(&self, then: Then) {
        *self.hold.lock() = Some(then);
        self.released.store(false, SeqCst);
        self.armed.store(true, SeqCst);
    }

    fn release(&self) {
        self.released.store(true, SeqCst);
    }

    fn reads(&self) -> u64 {
        self.reads.load(SeqCst)
    }

    fn wait_for_the_held_read(&self) {
        wait_until("the held read to reach the device", || {
            self.arrived.load(SeqCst) == 1
        });
    }
}

impl ReadAt for Gate {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, SeqCst);
        self.bytes_read.fetch_add(buf.len() as u64, SeqCst);
        // Read before holding: a held read carries the bytes of the moment
        // it reached the device, whatever changes while it is held.
        let n = self.bytes.read_at(pos, buf)?;
        if self.armed.swap(false, SeqCst) {
            let then = self.hold.lock().take();
            self.arrived.fetch_add(1, SeqCst);
            wait_until("the test releases the held read", || {
                self.released.load(SeqCst)
            });
            match then {
                Some(Then::Fail) => return Err(io::Error::from_raw_os_error(Errno::IO.raw())),
                Some(Then::Panic) => panic!("the device panics, as the test asked"),
                Some(Then::Read) | None => {}
            }
        }
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        self.bytes.size()
    }
}

/// Polls `done` until it holds; a verdict never depends on how long that
/// takes, but a broken build must not hang forever.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn other_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| !(i * 7 + i / 251) as u8).collect()
}

/// Reads the first 2048 bytes (chunks 0 and 1, in one device read) with
/// that device read held while `during` runs; returns what the read got.
fn read_held_during(
    gate: &Gate,
    tier: &SpillTier<&Gate, SpillFile>,
    during: impl FnOnce(),
) -> Vec<u8> {
    gate.hold(Then::Read);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| read(tier, 0, 2048).unwrap());
        gate.wait_for_the_held_read();
        during();
        gate.release();
        reader.join().unwrap()
    })
}

#[test]
fn a_fetch_spanning_clear_is_not_kept_and_the_read_starts_again() {
    let (old, new) = (pattern(4096), other_pattern(4096));
    let gate = Gate::new(old.clone());
    let (tier, _) = mem_tier(&gate, 4096, 1024);
    let got = read_held_during(&gate, &tier, || {
        gate.bytes.write_all_at(0, &new).unwrap();
        tier.clear().unwrap();
    });
    assert!(
        got == new[..2048],
        "a read spanning clear returns new bytes"
    );
    assert!(
        read(&tier, 0, 4096).unwrap() == new,
        "no stale chunk after clear"
    );
    assert_eq!(tier.stats().resident_bytes, 4096);
}

#[test]
fn a_fetch_under_way_during_invalidate_keeps_only_what_was_not_invalidated() {
    let (old, new) = (pattern(4096), other_pattern(4096));
    let gate = Gate::new(old.clone());
    let (tier, _) = mem_tier(&gate, 4096, 1024);
    let got = read_held_during(&gate, &tier, || {
        gate.bytes.write_all_at(1024, &new[1024..2048]).unwrap();
        tier.invalidate(1024, 1024);
    });
    // It began before the invalidation: the old bytes are its answer.
    assert!(got == old[..2048]);
    assert_eq!(
        tier.stats().resident_bytes,
        1024,
        "chunk 0 kept, chunk 1 not"
    );
    let mut now = old.clone();
    now[1024..2048].copy_from_slice(&new[1024..2048]);
    assert!(
        read(&tier, 0, 4096).unwrap() == now,
        "no stale chunk after invalidate"
    );
}

#[test]
fn eight_readers_of_one_cold_piece_make_one_device_read() {
    let bytes = pattern(4 << 20);
    let gate = Gate::new(bytes.clone());
    let (tier, _) = mem_tier(&gate, 4 << 20, 1 << 20);
    gate.hold(Then::Read);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| read(&tier, 70_000, 4096).unwrap()))
            .collect();
        wait_until("one fetch and seven readers waiting for it", || {
            gate.reads() > 1 || (gate.arrived.load(SeqCst) == 1 && tier.stats().fetch_waits == 7)
        });
        gate.release();
        for reader in readers {
            assert!(reader.join().unwrap() == bytes[70_000..74_096]);
        }
    });
    assert_eq!(gate.reads(), 1, "one device read for eight readers");
    assert_eq!(tier.stats().device_reads, 1);
}

#[test]
fn a_miss_does_not_wait_for_another_pieces_fetch() {
    let bytes = pattern(4 << 20);
    let gate = Gate::new(bytes.clone());
    let (tier, _) = mem_tier(&gate, 4 << 20, 1 << 20);
    gate.hold(Then::Read);
    std::thread::scope(|scope| {
        let held = scope.spawn(|| read(&tier, 0, 4096).unwrap());
        gate.wait_for_the_held_read();
        // Same chunk, another piece; and another chunk: both while the
        // first fetch is held.
        assert!(read(&tier, 100_000, 4096).unwrap() == bytes[100_000..104_096]);
        assert!(read(&tier, 3 << 20, 4096).unwrap() == bytes[3 << 20..(3 << 20) + 4096]);
        assert_eq!(gate.reads(), 3);
        gate.release();
        assert!(held.join().unwrap() == bytes[..4096]);
    });
}

/// Holds the first read of a cold piece at offset 0 (the leader's fetch)
/// until a second reader of the same piece waits for it, then ends it as
/// `then`; checks the waiter's bytes and returns the leader's outcome.
fn leader_ends_under_a_waiter(
    gate: &Gate,
    tier: &SpillTier<&Gate, SpillFile>,
    bytes: &[u8],
    then: Then,
) -> std::thread::Result<io::Result<Vec<u8>>> {
    gate.hold(then);
    std::thread::scope(|scope| {
        let leader = scope.spawn(|| read(tier, 0, 4096));
        gate.wait_for_the_held_read();
        let waiter = scope.spawn(|| read(tier, 1000, 4096).unwrap());
        wait_until("the second reader to wait", || {
            tier.stats().fetch_waits == 1
        });
        gate.release();
        let leader = leader.join();
        assert!(waiter.join().unwrap() == bytes[1000..5096]);
        leader
    })
}

#[test]
fn a_reader_whose_fetcher_panicked_fetches_itself() {
    let bytes = pattern(1 << 20);
    let gate = Gate::new(bytes.clone());
    let (tier, _) = mem_tier(&gate, 1 << 20, 1 << 20);
    let leader = leader_ends_under_a_waiter(&gate, &tier, &bytes, Then::Panic);
    assert!(leader.is_err(), "the device panicked in the first read");
    assert_eq!(gate.reads(), 2, "the waiter read the piece itself");
    assert!(read(&tier, 0, 4096).unwrap() == bytes[..4096]);
    assert_eq!(gate.reads(), 2, "and kept it");
}

#[test]
fn a_reader_whose_fetcher_failed_tries_again() {
    let bytes = pattern(1 << 20);
    let gate = Gate::new(bytes.clone());
    let (tier, _) = mem_tier(&gate, 1 << 20, 1 << 20);
    let leader = leader_ends_under_a_waiter(&gate, &tier, &bytes, Then::Fail);
    let err = leader.unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::IO.raw()));
    assert_eq!(gate.reads(), 2);
}

#[test]
fn random_4k_reads_fetch_at_most_16_bytes_per_byte_read() {
    let bytes = pattern(16 << 20);
    let gate = Gate::new(bytes.clone());
    // A tier of 4 MiB in 1 MiB chunks over 16 MiB: most reads miss.
    let (tier, _) = mem_tier(&gate, 4 << 20, 1 << 20);
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let (tier, bytes) = (&tier, &bytes);
            scope.spawn(move || {
                let mut state = t + 1;
                for _ in 0..64 {
                    step(&mut state);
                    let pos = (state >> 20) % (bytes.len() as u64 - 4096);
                    let got = read(tier, pos, 4096).unwrap();
                    assert!(got == bytes[pos as usize..pos as usize + 4096]);
                }
            });
        }
    });
    let stats = tier.stats();
    let fetched = gate.bytes_read.load(SeqCst);
    assert_eq!(stats.bytes_fetched, fetched);
    assert_eq!(stats.bytes_read, 8 * 64 * 4096);
    eprintln!(
        "random 4 KiB reads: {fetched} bytes fetched for {} read ({:.1}x)",
        stats.bytes_read,
        fetched as f64 / stats.bytes_read as f64
    );
    assert!(
        fetched <= 16 * stats.bytes_read,
        "{fetched} bytes fetched for {} read",
        stats.bytes_read
    );
}

#[test]
fn reads_racing_clears_and_invalidations_return_the_devices_bytes() {
    let bytes = pattern(256 * 1024);
    let gate = Gate::new(bytes.clone());
    let (tier, _) = mem_tier(&gate, 64 * 1024, 8 * 1024);
    let tier = tier.with_piece_size(1024).unwrap();
    let readers_done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (tier, bytes, readers_done) = (&tier, &bytes, &readers_done);
            scope.spawn(move || {
                let mut state = t + 1;
                for _ in 0..400 {
                    step(&mut state);
                    // Few distinct places, so readers often miss the same piece.
                    let pos = (state >> 33) % 64 * 3000;
                    let len = ((state >> 20) % 6000) as usize;
                    let got = read(tier, pos, len).unwrap();
                    assert!(
                        got == bytes[pos as usize..pos as usize + len],
                        "at {pos}+{len}"
                    );
                }
                readers_done.fetch_add(1, SeqCst);
            });
        }
        let mut round = 0u64;
        while readers_done.load(SeqCst) < 4 {
            round += 1;
            if round.is_multiple_of(8) {
                tier.clear().unwrap();
            } else {
                tier.invalidate(round * 5000 % 250_000, 9000);
            }
            std::thread::yield_now();
        }
    });
    let stats = tier.stats();
    assert!(stats.resident_bytes <= tier.budget());
    assert_eq!(stats.resident_bytes, tier.spill_cache().total_size());
    assert_eq!(stats.bytes_fetched, gate.bytes_read.load(SeqCst));
}

/// A tier that builds its own spill cache bounds the pieces waiting in RAM
/// for the writer by its budget (a quarter, at least 8 MiB), not by the
/// spill cache's 256 MiB default: a scan faster than the writer would
/// otherwise hold up to 256 MiB of copies, most evicted before written.
#[test]
fn a_tiers_own_spill_cache_waits_on_at_most_a_quarter_of_its_budget() {
    let dir = std::env::temp_dir();
    let tier = |budget| SpillTier::new(MemDevice::new(), &dir, budget).expect("tier");
    assert_eq!(tier(64 << 20).spill_cache().max_pending_bytes(), 16 << 20);
    assert_eq!(tier(1 << 20).spill_cache().max_pending_bytes(), 8 << 20);
    assert_eq!(tier(4 << 30).spill_cache().max_pending_bytes(), 256 << 20);
}

/// Past the bound a piece is served and not kept, and counted.
#[test]
fn a_piece_past_the_pending_bound_is_served_and_counted_not_kept() {
    // A disk that is full: nothing written ever leaves RAM.
    let spill = Builder::with_file_factory(|| {
        let disk = FaultyDevice::new(MemDevice::new());
        disk.fail_writes(Fault::Always(Errno::NOSPC));
        Ok(disk)
    })
    .max_pending_bytes(64 << 10)
    .build()
    .expect("spill cache");
    let bytes = pattern(256 << 10);
    let tier = SpillTier::with_cache(MemDevice::from_vec(bytes.clone()), spill, 1 << 20, 1 << 20)
        .expect("tier");
    assert_eq!(read(&tier, 0, bytes.len()).expect("read"), bytes);
    let stats = tier.stats();
    assert_eq!(stats.resident_bytes, 64 << 10, "two pieces kept");
    assert_eq!(stats.skipped_full, 6, "six pieces served, not kept");
}
