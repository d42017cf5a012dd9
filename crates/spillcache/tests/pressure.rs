//! Progress under pressure: a small filesystem that fills up, values that
//! cannot be written next to values that can, defragmentation without room
//! for a second copy.

mod common;

use std::time::{Duration, Instant};

use common::{SmallFs, WAIT};
use spillcache::fuzz::LimitedDisk;
use spillcache::{Builder, Error, SpillCache};

const BIG: usize = 190_000;

fn value(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 131 + j * 7) as u8).collect()
}

/// Waits up to `limit` for every value to be written, counting the write
/// errors reported on the way.
fn wait_up_to(cache: &SpillCache, limit: Duration) -> (bool, usize) {
    let start = Instant::now();
    let mut errors = 0;
    while start.elapsed() < limit {
        match cache.wait_for_write(limit.saturating_sub(start.elapsed())) {
            Ok(done) => return (done, errors),
            Err(Error::WriteFailed(_)) => errors += 1,
            Err(e) => panic!("wait_for_write: {e}"),
        }
    }
    (false, errors)
}

/// Issue 8's reproduction: on a 2 MiB tmpfs, ten 190 kB values, five of
/// them removed, then one 400 kB value (which does not fit in any hole) and
/// five 10 kB values (which do).
#[test]
fn a_value_that_does_not_fit_never_blocks_the_ones_behind_it() {
    let Some(fs) = SmallFs::mount("2m") else {
        return;
    };
    let cache = SpillCache::builder(fs.path())
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(50))
        .build()
        .unwrap();
    for i in 0..10 {
        cache.add(&[i as u8], &value(i, BIG)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    for i in (0..10).step_by(2) {
        assert!(cache.remove(&[i as u8]));
    }
    cache.add(b"large", &value(100, 400_000)).unwrap();
    for i in 0..5 {
        cache
            .add(&[b's', i], &value(200 + usize::from(i), 10_000))
            .unwrap();
    }
    // A value that blocked the ones behind it would block them for good;
    // how fast the rest is written depends on the machine's load.
    let (done, errors) = wait_up_to(&cache, WAIT);
    let stats = cache.stats();
    eprintln!("written: {done}, write errors reported: {errors}, stats: {stats:?}");
    assert!(done, "everything written ({stats:?})");

    // A second copy does not fit beside the first: the defrag compacts in
    // place instead of failing.
    let before = cache.size_on_disk();
    assert!(cache.defrag(WAIT).unwrap(), "defrag finished");
    let stats = cache.stats();
    let live = 5 * BIG as u64 + 400_000 + 5 * 10_000;
    eprintln!(
        "defrag: size_on_disk {before} -> {} (live {live}), {stats:?}",
        cache.size_on_disk()
    );
    assert_eq!(stats.compactions, 1, "{stats:?}");
    assert!(cache.size_on_disk() < before, "the file shrank");
    assert!(cache.size_on_disk() <= live + BIG as u64, "nearly packed");
    assert!(cache.wait_for_write(WAIT).unwrap());
    for i in (1..10).step_by(2) {
        assert_eq!(cache.get(&[i as u8]).unwrap(), Some(value(i, BIG)), "{i}");
    }
    assert_eq!(cache.get(b"large").unwrap(), Some(value(100, 400_000)));
    for i in 0..5 {
        let want = value(200 + usize::from(i), 10_000);
        assert_eq!(cache.get(&[b's', i]).unwrap(), Some(want));
    }
    cache.check_invariants().unwrap();
    assert_eq!(
        cache.num_cached_in_ram(),
        0,
        "every value read from the file"
    );
}

/// Without hole punching (a device that is not a file): a value that does
/// not fit on the disk is set aside while the values behind it are written.
#[test]
fn values_behind_one_that_does_not_fit_are_written_first() {
    let disk = LimitedDisk::new(100_000);
    let factory_disk = disk.clone();
    let cache = Builder::with_file_factory(move || Ok(factory_disk.file()))
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    for i in 0..4 {
        cache.add(&[i], &value(usize::from(i), 20_000)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.remove(&[0]);
    cache.remove(&[2]);
    cache.add(b"large", &value(9, 50_000)).unwrap(); // fits no hole, nor the disk
    for i in 0..4 {
        cache
            .add(&[b's', i], &value(20 + usize::from(i), 5_000))
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while cache.stats().writes < 8 && Instant::now() < deadline {
        let _ = cache.wait_for_write(Duration::from_millis(10));
    }
    assert_eq!(cache.stats().writes, 8, "all four small values written");
    assert_eq!(cache.disk_offset(b"large"), None, "the large one waits");
    assert!(cache.stats().write_errors > 0);

    disk.set_capacity(1 << 20); // space comes back
    assert!(common::wait_through_errors(&cache) < 100_000);
    assert_eq!(cache.get(b"large").unwrap(), Some(value(9, 50_000)));
    for i in 0..4 {
        let want = value(20 + usize::from(i), 5_000);
        assert_eq!(cache.get(&[b's', i]).unwrap(), Some(want));
    }
    cache.check_invariants().unwrap();
}

/// On the 2 MiB tmpfs with the disk full, `try_add` says the cache is full
/// instead of holding ever more in RAM.
#[test]
fn try_add_reports_full_on_a_full_disk() {
    let Some(fs) = SmallFs::mount("2m") else {
        return;
    };
    let limit = 1 << 20;
    let cache = SpillCache::builder(fs.path())
        .max_pending_bytes(limit)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    let mut stored = 0u64;
    let mut full = None;
    for i in 0..100u32 {
        match cache.try_add(&i.to_le_bytes(), &value(i as usize, 100_000)) {
            Ok(()) => stored += 100_000,
            Err(e @ Error::Full { .. }) => {
                full = Some(e);
                break;
            }
            Err(e) => panic!("try_add: {e}"),
        }
        // Give the writer time to fill the disk.
        let _ = cache.wait_for_write(Duration::from_millis(20));
    }
    let full = full.expect("try_add reported full");
    eprintln!(
        "{full}; stored {stored} bytes, {} waiting",
        cache.pending_bytes()
    );
    assert!(cache.pending_bytes() <= limit);
    assert!(stored < 10_000_000, "stopped long before 100 values");
    // What was taken is all there.
    cache.check_invariants().unwrap();
    let mut buf = Vec::new();
    for i in 0..(stored / 100_000) as u32 {
        assert!(cache.get_into(&i.to_le_bytes(), &mut buf).unwrap());
        assert_eq!(buf, value(i as usize, 100_000));
    }
}

#[test]
fn pressure_scenarios_agree_with_the_model() {
    use spillcache::fuzz::{PressureOp::*, PressureScenario, run_pressure};
    let scenarios = [
        vec![
            Capacity { kib: 0 },
            Add {
                key: 0,
                len: 3000,
                fill: 1,
            },
            TryAdd {
                key: 1,
                len: 3000,
                fill: 2,
            },
            Wait,
            Capacity { kib: 8 },
            Add {
                key: 2,
                len: 8000,
                fill: 3,
            },
            Remove { key: 0 },
            Defrag,
            Capacity { kib: 255 },
        ],
        vec![
            Add {
                key: 0,
                len: 8000,
                fill: 1,
            },
            Add {
                key: 1,
                len: 8000,
                fill: 1,
            },
            Wait,
            Capacity { kib: 16 },
            Remove { key: 0 },
            Add {
                key: 2,
                len: 2000,
                fill: 2,
            },
            Add {
                key: 3,
                len: 2000,
                fill: 2,
            },
            Add {
                key: 4,
                len: 9000,
                fill: 2,
            },
            Wait,
            Defrag,
            Remove { key: 1 },
            Defrag,
        ],
    ];
    for (i, ops) in scenarios.into_iter().enumerate() {
        for max_pending in 0..5 {
            run_pressure(&PressureScenario {
                max_pending,
                ops: ops.clone(),
            })
            .unwrap_or_else(|e| panic!("scenario {i}, bound {max_pending}: {e}"));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn random_pressure_scenarios_agree_with_the_model(
        max_pending in 0u16..20_000,
        ops in proptest::collection::vec(pressure_op(), 0..40),
    ) {
        spillcache::fuzz::run_pressure(&spillcache::fuzz::PressureScenario { max_pending, ops })
            .map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}

fn pressure_op() -> impl proptest::strategy::Strategy<Value = spillcache::fuzz::PressureOp> {
    use proptest::prelude::*;
    use spillcache::fuzz::PressureOp;
    prop_oneof![
        (0u8..8, 0u16..9000, any::<u8>()).prop_map(|(key, len, fill)| PressureOp::Add {
            key,
            len,
            fill
        }),
        (0u8..8, 0u16..9000, any::<u8>()).prop_map(|(key, len, fill)| PressureOp::TryAdd {
            key,
            len,
            fill
        }),
        (0u8..8).prop_map(|key| PressureOp::Remove { key }),
        (0u8..64).prop_map(|kib| PressureOp::Capacity { kib }),
        Just(PressureOp::Wait),
        Just(PressureOp::Defrag),
    ]
}

/// While defragmentations compact in place (no room for a second copy),
/// reader threads see every value that stays, exactly, at every moment.
#[test]
fn values_stay_readable_and_exact_while_compacted_in_place() {
    const N: u8 = 24;
    const LEN: usize = 10_000;
    let disk = LimitedDisk::new(u64::MAX);
    let factory_disk = disk.clone();
    let cache = std::sync::Arc::new(
        Builder::with_file_factory(move || Ok(factory_disk.file()))
            .defrag_factor(1.0)
            .retry_backoff(Duration::from_micros(100), Duration::from_millis(5))
            .build()
            .unwrap(),
    );
    for i in 0..N {
        cache.add(&[i], &value(usize::from(i), LEN)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    // Room for the file as it is, not for a copy of the half that stays.
    disk.set_capacity(disk.used() + 4 * LEN as u64);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let cache = std::sync::Arc::clone(&cache);
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for i in (1..N).step_by(2) {
                        assert!(cache.get_into(&[i], &mut buf).unwrap(), "key {i} missing");
                        assert!(
                            buf == value(usize::from(i), LEN),
                            "key {i} read wrong bytes"
                        );
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    for round in 0..10 {
        for i in (0..N).step_by(2) {
            cache.remove(&[i]);
        }
        match cache.defrag(WAIT) {
            Ok(true) | Err(Error::DefragFailed(_)) => {}
            other => panic!("round {round}: defrag {other:?}"),
        }
        for i in (0..N).step_by(2) {
            cache
                .add(&[i], &value(usize::from(i) + round, LEN))
                .unwrap();
        }
        common::wait_through_errors(&*cache);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let stats = cache.stats();
    eprintln!("{reads} reads during {stats:?}");
    assert!(stats.compactions >= 1, "compacted in place: {stats:?}");
    assert_eq!(stats.corrupt_reads, 0);
    cache.check_invariants().unwrap();
}

/// The file is cut back as soon as its tail is free, also while a write
/// keeps failing (the writer is never idle then).
#[test]
fn the_tail_is_cut_while_writes_keep_failing() {
    let devices = common::Devices::default();
    let cache = devices.builder().build().unwrap();
    cache.add(b"a", &[1; 1000]).unwrap();
    cache.add(b"b", &[2; 5000]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    devices
        .latest()
        .fail_writes(blockdev::Fault::Always(blockdev::Errno::NOSPC));
    cache.add(b"c", &[3; 100]).unwrap();
    assert!(matches!(
        cache.wait_for_write(WAIT),
        Err(Error::WriteFailed(_))
    ));
    assert!(cache.remove(b"b"));
    let deadline = Instant::now() + WAIT;
    let size = || blockdev::ReadAt::size(devices.latest().inner()).unwrap();
    while size() != 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(size(), 1000, "cut at the end of data");
    assert_eq!(cache.get(b"c").unwrap(), Some(vec![3; 100]));
}
