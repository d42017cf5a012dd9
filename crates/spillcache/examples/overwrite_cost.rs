//! Per-entry cost of overwriting 1 KiB values in a cache of N values, for
//! instruction counts under callgrind. With `PAUSE=1` it prints `filled`
//! after the cache is full and waits for a line on stdin, so that
//! `callgrind_control -z PID` can zero the counts there: what is collected
//! then is `BATCHES * 1000` overwrites alone.
//!
//! `cargo run --release -p spillcache --example overwrite_cost -- N BATCHES`

use std::io::Write;
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
    if std::env::var_os("PAUSE").is_some() {
        println!("filled");
        std::io::stdout().flush()?;
        std::io::stdin().read_line(&mut String::new())?;
    }
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
