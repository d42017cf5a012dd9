//! A read of a `WriteBackCache` never sees half of a write: every read
//! returns the bytes as of one moment between whole `write_bytes`/setter
//! calls, while another thread writes and commits.
//!
//! The race these tests guard against was rare (a few torn values in
//! 10^8 reads), so they widen its window: several readers, values
//! straddling every page boundary, and reads of a whole run of pages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use blockdev::MemDevice;
use pagecache::{ByteSinkExt, ByteSource, ByteSourceExt, WriteBackCache};

const PAGE: usize = 4096;
const PAGES: usize = 16;
const READERS: usize = 3;
/// The bytes one `write_bytes` call writes: a run of 4 pages.
const RUN: usize = 4 * PAGE;
/// How long the writer keeps writing; the readers stop with it.
const RUN_FOR: Duration = Duration::from_millis(1500);

const A: u64 = 0x1111_1111_1111_1111;
const B: u64 = 0x2222_2222_2222_2222;

fn cache(capacity: usize) -> WriteBackCache<MemDevice> {
    pagecache::Builder::new()
        .page_size(PAGE)
        .capacity(capacity)
        .build_write_back(MemDevice::from_vec(vec![0x11; PAGE * PAGES]))
        .unwrap()
}

/// Runs `write(i)` for i = 0, 1, ... on one thread and `read()` on
/// `READERS` threads until time is up; returns the first torn read a
/// reader reports, with the number of reads done.
fn race(
    write: impl Fn(u64) + Sync,
    read: impl Fn() -> Result<(), String> + Sync,
) -> (Option<String>, u64) {
    // One race at a time: threads of other tests would shrink the window.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let writing = AtomicBool::new(true);
    let reads = AtomicU64::new(0);
    let torn = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let start = Instant::now();
            let mut i = 0;
            while start.elapsed() < RUN_FOR && torn.lock().unwrap().is_none() {
                write(i);
                i += 1;
            }
            writing.store(false, Relaxed);
        });
        for _ in 0..READERS {
            scope.spawn(|| {
                while writing.load(Relaxed) {
                    reads.fetch_add(1, Relaxed);
                    if let Err(what) = read() {
                        torn.lock().unwrap().get_or_insert(what);
                        return;
                    }
                }
            });
        }
    });
    (torn.into_inner().unwrap(), reads.into_inner())
}

#[test]
fn a_value_straddling_pages_is_never_half_old_half_new_across_commits() {
    let cache = cache(PAGES);
    // A u64 across every page boundary, the 4092 first.
    let offsets: Vec<u64> = (1..PAGES as u64).map(|p| p * PAGE as u64 - 4).collect();
    let (torn, reads) = race(
        |i| {
            let value = if i % 2 == 0 { B } else { A };
            for &at in &offsets {
                (&cache).set_u64_le(at, value).unwrap();
            }
            cache.commit().unwrap();
        },
        || {
            for &at in &offsets {
                let got = cache.get_u64_le(at).unwrap();
                if got != A && got != B {
                    return Err(format!("read {got:#018x} at {at}"));
                }
            }
            Ok(())
        },
    );
    assert_eq!(torn, None, "after {reads} reads");
}

/// Races whole-run `write_bytes` + `commit` of all-0x11 and all-0x22 runs
/// against readers of `len` bytes at `pos`, which must see one byte value
/// throughout.
fn whole_runs_race(capacity: usize, pos: u64, len: usize) {
    let cache = cache(capacity);
    let (ones, twos) = (vec![0x11; RUN], vec![0x22; RUN]);
    let (torn, reads) = race(
        |i| {
            cache
                .write_bytes(0, if i % 2 == 0 { &twos } else { &ones })
                .unwrap();
            cache.commit().unwrap();
        },
        || {
            let mut buf = vec![0; len];
            cache.read_bytes_at(pos, &mut buf).unwrap();
            match buf.iter().position(|&b| b != buf[0]) {
                Some(at) => Err(format!("{:#x} first but {:#x} at {at}", buf[0], buf[at])),
                None => Ok(()),
            }
        },
    );
    assert_eq!(torn, None, "after {reads} reads");
}

#[test]
fn a_read_of_a_whole_run_sees_one_write_bytes_call_whole() {
    whole_runs_race(PAGES, 0, RUN);
}

#[test]
fn reads_stay_whole_while_a_small_cache_evicts_and_reloads() {
    // Two frames for four pages: commits evict, reads miss and go to the
    // device while commits write it.
    whole_runs_race(2, PAGE as u64 - 8, 3 * PAGE);
}
