//! Per-entry cost of overwriting 1 KiB values in a cache of N values, for
//! instruction counts under callgrind: run it with `BATCHES` = 0 and with
//! `BATCHES` > 0 and divide the difference by `BATCHES * 1000`.
//!
//! `cargo run --release -p spillcache --example overwrite_cost -- N BATCHES`

use std::time::{Duration, Instant};

use spillcache::SpillCache;

const BATCH: usize = 1000;
const WAIT: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "10000".into()).parse()?;
    let batches: usize = args.next().unwrap_or_else(|| "10".into()).parse()?;
    let value: Vec<u8> = (0..1024u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let cache = SpillCache::new(std::env::temp_dir())?;
    for i in 0..n {
        cache.add(&(i as u64).to_le_bytes(), &value)?;
    }
    assert!(cache.wait_for_write(WAIT)?);
    let start = Instant::now();
    let mut next = 0usize;
    for _ in 0..batches {
        // Overwrite the next BATCH keys, cycling through all n, as the bench does.
        for _ in 0..BATCH {
            cache.add(&(next as u64).to_le_bytes(), &value)?;
            next = (next + 1) % n;
        }
        assert!(cache.wait_for_write(WAIT)?);
    }
    let per_entry = start.elapsed() / (batches * BATCH).max(1) as u32;
    println!("n {n}: {per_entry:?} per add+wait (wall clock)");
    Ok(())
}
