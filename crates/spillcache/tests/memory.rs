//! Bounded memory: resident memory (from /proc/self/statm) while producers
//! outrun the writer. Alone in this binary, one test at a time, so no other
//! test's allocations blur the figures.

mod common;

use common::WAIT;
use parking_lot::Mutex;
use spillcache::SpillCache;

/// Serializes the tests of this binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Resident memory of this process, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

/// A producer adding four times the bound as fast as it can stays within
/// the bound (plus a small constant) of memory, because `add` waits.
#[test]
fn memory_stays_bounded_while_a_producer_outruns_the_disk() {
    let _alone = ONE_AT_A_TIME.lock();
    let dir = common::TempDir::new("rss");
    let limit: u64 = 64 << 20;
    let cache = SpillCache::builder(dir.path())
        .max_pending_bytes(limit)
        .build()
        .unwrap();
    let chunk = vec![0x5Au8; 1 << 20];
    let base = rss_bytes();
    let mut peak = base;
    for i in 0..(4 * limit / chunk.len() as u64) {
        cache.add(&(i % 1024).to_le_bytes(), &chunk).unwrap();
        assert!(cache.pending_bytes() <= limit);
        peak = peak.max(rss_bytes());
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    let grown = peak.saturating_sub(base);
    eprintln!(
        "RSS grew by at most {} MiB while adding {} MiB (bound {} MiB)",
        grown >> 20,
        (4 * limit) >> 20,
        limit >> 20
    );
    assert!(grown <= limit + (32 << 20), "RSS grew by {grown} bytes");
}

/// Millions of overwrites of one waiting key keep one queue entry: memory
/// does not grow with the number of adds. The disk is full meanwhile, so the
/// writer cannot drain anything (and waits seconds between retries).
#[test]
fn overwriting_one_key_millions_of_times_does_not_grow_memory() {
    let _alone = ONE_AT_A_TIME.lock();
    let devices = common::Devices::default();
    let cache = devices
        .builder()
        .retry_backoff(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(2),
        )
        .build()
        .unwrap();
    devices
        .latest()
        .fail_writes(blockdev::Fault::Always(blockdev::Errno::NOSPC));
    for i in 0..100_000u32 {
        cache.add(b"k", &i.to_le_bytes()).unwrap();
    }
    let base = rss_bytes();
    for i in 0..2_000_000u32 {
        cache.add(b"k", &i.to_le_bytes()).unwrap();
    }
    let grown = rss_bytes().saturating_sub(base);
    eprintln!("RSS grew by {} KiB over 2M overwrites", grown >> 10);
    assert!(grown < 8 << 20, "RSS grew by {grown} bytes");
    cache.check_invariants().unwrap();
    devices.latest().clear_faults();
    common::wait_through_errors(&cache);
    assert_eq!(
        cache.get(b"k").unwrap(),
        Some(1_999_999u32.to_le_bytes().to_vec())
    );
}
