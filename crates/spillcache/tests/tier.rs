//! `SpillTier`: bytes always equal the device's, against a model; one
//! device read per run of missing chunks; the budget holds; device and
//! spill-file faults give errors or re-reads, never wrong bytes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use blockdev::{Corruption, Errno, Fault, FaultyDevice, MemDevice, ReadAt};
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
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
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
    Read { pos: u64, len: usize },
    Invalidate { off: u64, len: u64 },
    Clear,
}

fn op(size: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..size + 10, 0..600usize).prop_map(|(pos, len)| Op::Read { pos, len }),
        1 => (0..size + 10, 0..300u64).prop_map(|(off, len)| Op::Invalidate { off, len }),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The model is the device's bytes: every read returns exactly what a
    /// plain read of the device would, and the budget always holds.
    #[test]
    fn reads_agree_with_the_device(
        (size, chunk, budget_chunks, ops) in (1u64..3000, 1u64..300, 1u64..8)
            .prop_flat_map(|(size, chunk, budget)| {
                (Just(size), Just(chunk), Just(budget), prop::collection::vec(op(size), 1..40))
            })
    ) {
        let bytes = pattern(size as usize);
        let (tier, _) = mem_tier(MemDevice::from_vec(bytes.clone()), budget_chunks * chunk, chunk);
        for op in ops {
            match op {
                Op::Read { pos, len } => {
                    let mut got = vec![0u8; len];
                    let n = tier.read_at(pos, &mut got).unwrap();
                    let want = bytes.get(pos as usize..).map_or(&[][..], |tail| &tail[..tail.len().min(len)]);
                    prop_assert_eq!(&got[..n], want);
                }
                Op::Invalidate { off, len } => tier.invalidate(off, len),
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
