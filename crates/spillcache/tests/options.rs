//! Every builder option at its extremes (0, 1, MAX, NaN and infinities for
//! the float) either is refused by `build` with a clear error or survives a
//! full cycle: adds, failed writes, retries, removals and a defrag, with
//! every value read back. No option may panic the writer.

mod common;

use std::time::Duration;

use blockdev::{Errno, Fault};
use common::{Devices, WAIT, wait_through_errors};
use spillcache::{Builder, Error};

type Device = std::sync::Arc<blockdev::FaultyDevice<blockdev::MemDevice>>;

fn value(i: u8) -> Vec<u8> {
    vec![i; 100 + usize::from(i) * 37]
}

/// Adds, fails three writes with ENOSPC, retries, removes, defrags, reads.
fn full_cycle(what: &str, configure: impl FnOnce(Builder<Device>) -> Builder<Device>) {
    let devices = Devices::default();
    let cache = match configure(devices.builder()).build() {
        Ok(cache) => cache,
        Err(Error::InvalidOption { option, reason }) => {
            assert!(
                !reason.is_empty(),
                "{what}: {option} refused without a reason"
            );
            return;
        }
        Err(e) => panic!("{what}: build failed: {e}"),
    };
    devices.latest().fail_writes(Fault::Nth(1, Errno::NOSPC));
    for i in 0..8 {
        cache.add(&[i], &value(i)).unwrap();
    }
    devices.latest().fail_writes(Fault::Nth(2, Errno::NOSPC));
    wait_through_errors(&cache);
    assert!(cache.stats().write_errors >= 1, "{what}: a write failed");
    for i in (0..8).step_by(2) {
        assert!(cache.remove(&[i]), "{what}");
    }
    assert!(cache.defrag(WAIT).unwrap(), "{what}: defrag");
    for i in 0..8u8 {
        let want = (i % 2 == 1).then(|| value(i));
        assert_eq!(cache.get(&[i]).unwrap(), want, "{what}: key {i}");
    }
    cache.check_invariants().unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap(), "{what}: writer alive");
}

#[test]
fn retry_backoff_at_its_extremes_never_panics_the_writer() {
    let d = |n| Duration::from_nanos(n);
    for (min, max) in [
        (d(0), d(0)),
        (d(1), d(1)),
        (d(1), Duration::from_secs(3600)),
        (Duration::MAX, Duration::MAX),
        (d(1), Duration::MAX),
        (Duration::MAX, d(1)),
    ] {
        full_cycle(&format!("retry_backoff({min:?}, {max:?})"), |b| {
            b.retry_backoff(min, max)
        });
    }
    let refused = Builder::new(std::env::temp_dir())
        .retry_backoff(Duration::MAX, Duration::MAX)
        .build();
    assert!(matches!(
        refused,
        Err(Error::InvalidOption {
            option: "retry_backoff",
            ..
        })
    ));
}

#[test]
fn defrag_factor_at_its_extremes() {
    for factor in [
        0.0,
        1.0,
        1.0 + f64::EPSILON,
        f64::MAX,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
    ] {
        full_cycle(&format!("defrag_factor({factor})"), |b| {
            b.defrag_factor(factor)
                .retry_backoff(Duration::from_micros(10), Duration::from_millis(1))
        });
    }
}

#[test]
fn size_options_at_their_extremes() {
    for n in [0, 1, u64::MAX] {
        full_cycle(&format!("small_hole_threshold({n})"), |b| {
            b.small_hole_threshold(n)
        });
        full_cycle(&format!("ram_budget({n})"), |b| b.ram_budget(n));
        full_cycle(&format!("max_pending_bytes({n})"), |b| {
            b.max_pending_bytes(n)
        });
        full_cycle(&format!("max_memory_only_bytes({n})"), |b| {
            b.max_memory_only_bytes(n)
        });
    }
    for n in [1, usize::MAX] {
        full_cycle(&format!("max_key_len({n})"), |b| b.max_key_len(n));
    }
    // Zero refuses every non-empty key, so the cycle cannot run; the empty
    // key still works.
    let cache = common::mem_builder().max_key_len(0).build().unwrap();
    assert!(matches!(
        cache.add(b"k", b"v"),
        Err(Error::KeyTooLong { len: 1, max: 0 })
    ));
    cache.add(b"", b"v").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"").unwrap(), Some(b"v".to_vec()));
}
