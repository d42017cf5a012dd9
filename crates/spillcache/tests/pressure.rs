//! Progress under pressure: a small filesystem that fills up, values that
//! cannot be written next to values that can, defragmentation without room
//! for a second copy.

mod common;

use std::time::{Duration, Instant};

use common::{SmallFs, WAIT};
use spillcache::{Error, SpillCache};

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
    let (done, errors) = wait_up_to(&cache, Duration::from_secs(3));
    let stats = cache.stats();
    eprintln!("written: {done}, write errors reported: {errors}, stats: {stats:?}");
    assert!(done, "everything written within 3 s ({stats:?})");

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
