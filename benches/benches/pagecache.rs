//! pagecache hits against the floor and the crates a user would reach for:
//! random `get_u64_le` over 10k resident 4 KiB pages (ours, a `Vec` of
//! pages, `lru::LruCache` behind a `Mutex`, `quick_cache::sync::Cache`, a
//! memmap2 map, `pread` per access), two threads against one, and a
//! sequential scan against an mmap copy-out: `blit` into the caller's
//! buffer (one copy, nothing allocated), `for_each_chunk` (one copy into a
//! reused buffer, then the visitor copies it out: two), and the page
//! iterator `get_seq` (a `Slice` per page, for reference).
//!
//! `pagecache_commit`: `WriteBackCache::commit` of N MiB of dirty pages
//! (64 MiB by default, 1 GiB with `BENCH_FULL=1`; the write into dirty
//! pages is not timed) against a plain `pwrite` loop of the same number of
//! bytes from one buffer, in 1 MiB pieces, each into its own pre-sized file.
//! Both sides write the bytes into memory (untimed) just before each timed
//! write-out: a write-out right behind its producer is what a commit is.
//!
//! `pagecache_miss_latency`: the latency of single-page misses (each one
//! evicts a page) while 4 threads scan 8 MiB (twice the cache), 64 KiB
//! per read,
//! against the same misses while 4 threads copy 64 KiB pieces of their
//! own memory (the same CPU load, no cache). An iteration is a batch of
//! 1000 misses and its time is the batch's p99 (`p99_*`) or worst miss
//! (`max_*`): a miss that waits for a scanning reader shows there.
//!
//! Every variant reads the same precomputed positions and sums the values.
//! `lru` needs `&mut` even to read, so it is shared behind a `Mutex` as a
//! user sharing it between threads would (`lru_unshared` shows the same
//! cache without the lock, for reference). The file is an anonymous file
//! in `PAGECACHE_BENCH_DIR` (default: the system temp dir).

use std::fs::File;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockdev::anonymous_file;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pagecache::{ByteSourceExt, PageCache};

const PAGE: usize = 4096;
const PAGES: usize = 10_000;
const READS: usize = 16 * 1024;
/// Reads per thread-scaling iteration, large enough to hide thread start-up.
const THREAD_READS: usize = 512 * 1024;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` positions of a `u64` inside one page, on random pages.
fn positions(n: usize, seed: u64) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            let page = splitmix64(&mut state) % PAGES as u64;
            let offset = splitmix64(&mut state) % (PAGE as u64 - 8);
            page * PAGE as u64 + offset
        })
        .collect()
}

fn file_bytes() -> Vec<u8> {
    let mut state = 1;
    (0..PAGES * PAGE / 8)
        .flat_map(|_| splitmix64(&mut state).to_le_bytes())
        .collect()
}

fn bench_file(bytes: &[u8]) -> File {
    let dir =
        std::env::var_os("PAGECACHE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let file = anonymous_file(&dir).expect("create the bench file");
    file.write_all_at(bytes, 0).expect("fill the bench file");
    file
}

/// A cache holding every page of `file`.
fn warm_cache(file: File) -> PageCache<File> {
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(16 * 1024)
        .build(file)
        .expect("valid shape");
    let mut sink = vec![0; PAGE * 64];
    for start in (0..PAGES).step_by(64) {
        let len = (PAGES - start).min(64) * PAGE;
        cache
            .blit((start * PAGE) as u64, &mut sink, 0, len)
            .expect("read the file");
    }
    assert_eq!(cache.stats().resident_pages, PAGES);
    cache
}

fn sum_ours(cache: &PageCache<File>, positions: &[u64]) -> u64 {
    positions.iter().fold(0u64, |sum, &pos| {
        sum.wrapping_add(cache.get_u64_le(pos).unwrap())
    })
}

fn config() -> Criterion {
    let full = std::env::var_os("BENCH_FULL").is_some_and(|v| v == "1");
    let (warm_up, measure, samples) = if full { (2, 8, 50) } else { (1, 2, 10) };
    Criterion::default()
        .warm_up_time(Duration::from_millis(500 * warm_up))
        .measurement_time(Duration::from_secs(measure))
        .sample_size(samples)
}

fn random_hits(c: &mut Criterion) {
    let bytes = file_bytes();
    let file = bench_file(&bytes);
    let reopened = file.try_clone().expect("dup the bench file");
    let cache = warm_cache(file);
    let positions = positions(READS, 7);

    let floor: Vec<Box<[u8]>> = bytes.chunks(PAGE).map(Box::from).collect();
    let mut lru_pages = lru::LruCache::new(NonZeroUsize::new(16 * 1024).unwrap());
    let quick = quick_cache::sync::Cache::new(16 * 1024);
    for (page, data) in bytes.chunks(PAGE).enumerate() {
        lru_pages.put(page as u64, Box::<[u8]>::from(data));
        quick.insert(page as u64, Arc::<[u8]>::from(data));
    }
    let lru_shared = Mutex::new(lru_pages.clone());
    // SAFETY: the file is anonymous (no other process can reach it) and this
    // bench never writes to it while the map exists.
    let map = unsafe { memmap2::Mmap::map(&reopened) }.expect("map the bench file");

    let want = sum_ours(&cache, &positions);
    let mut group = c.benchmark_group("pagecache_get_u64");
    group.throughput(Throughput::Elements(READS as u64));
    group.bench_function("ours", |b| {
        b.iter(|| sum_ours(black_box(&cache), black_box(&positions)))
    });
    let sum_floor = |positions: &[u64]| {
        positions.iter().fold(0u64, |sum, &pos| {
            let page = &floor[(pos / PAGE as u64) as usize];
            let off = (pos % PAGE as u64) as usize;
            sum.wrapping_add(u64::from_le_bytes(page[off..off + 8].try_into().unwrap()))
        })
    };
    assert_eq!(sum_floor(&positions), want);
    group.bench_function("vec_floor", |b| b.iter(|| sum_floor(black_box(&positions))));
    group.bench_function("lru_mutex", |b| {
        b.iter(|| {
            black_box(&positions).iter().fold(0u64, |sum, &pos| {
                let mut lru = lru_shared.lock().unwrap();
                let page = lru.get(&(pos / PAGE as u64)).unwrap();
                let off = (pos % PAGE as u64) as usize;
                sum.wrapping_add(u64::from_le_bytes(page[off..off + 8].try_into().unwrap()))
            })
        })
    });
    group.bench_function("lru_unshared", |b| {
        b.iter(|| {
            black_box(&positions).iter().fold(0u64, |sum, &pos| {
                let page = lru_pages.get(&(pos / PAGE as u64)).unwrap();
                let off = (pos % PAGE as u64) as usize;
                sum.wrapping_add(u64::from_le_bytes(page[off..off + 8].try_into().unwrap()))
            })
        })
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            black_box(&positions).iter().fold(0u64, |sum, &pos| {
                let page = quick.get(&(pos / PAGE as u64)).unwrap();
                let off = (pos % PAGE as u64) as usize;
                sum.wrapping_add(u64::from_le_bytes(page[off..off + 8].try_into().unwrap()))
            })
        })
    });
    group.bench_function("mmap", |b| {
        b.iter(|| {
            black_box(&positions).iter().fold(0u64, |sum, &pos| {
                let pos = pos as usize;
                sum.wrapping_add(u64::from_le_bytes(map[pos..pos + 8].try_into().unwrap()))
            })
        })
    });
    group.bench_function("pread", |b| {
        b.iter(|| {
            black_box(&positions).iter().fold(0u64, |sum, &pos| {
                let mut value = [0u8; 8];
                reopened.read_exact_at(&mut value, pos).unwrap();
                sum.wrapping_add(u64::from_le_bytes(value))
            })
        })
    });
    group.finish();

    // Two threads against one, the same total number of hits.
    let positions = [positions_for_thread(0), positions_for_thread(1)];
    let mut group = c.benchmark_group("pagecache_threads");
    group.throughput(Throughput::Elements(2 * THREAD_READS as u64));
    group.bench_function("one_thread", |b| {
        b.iter(|| sum_ours(&cache, &positions[0]).wrapping_add(sum_ours(&cache, &positions[1])))
    });
    group.bench_function("two_threads", |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| sum_ours(&cache, &positions[1]));
                let mine = sum_ours(&cache, &positions[0]);
                mine.wrapping_add(other.join().unwrap())
            })
        })
    });
    group.finish();

    // A sequential scan copying every byte out: the cache against a copy
    // out of the map.
    let mut out = vec![0u8; PAGES * PAGE];
    cache.blit(0, &mut out, 0, PAGES * PAGE).unwrap();
    assert!(out == bytes, "blit read back different bytes");
    out.fill(0);
    cache
        .for_each_chunk(0, (PAGES * PAGE) as u64, |addr, piece| {
            out[addr as usize..addr as usize + piece.len()].copy_from_slice(piece);
        })
        .unwrap();
    assert!(out == bytes, "for_each_chunk read back different bytes");
    out.fill(0);
    let mut at = 0;
    for slice in cache.get_seq(0).unwrap() {
        let slice = slice.unwrap();
        out[at..at + slice.len()].copy_from_slice(&slice);
        at += slice.len();
    }
    assert!(out == bytes, "the page iterator read back different bytes");
    let mut group = c.benchmark_group("pagecache_scan");
    group.throughput(Throughput::Bytes((PAGES * PAGE) as u64));
    group.bench_function("ours_blit", |b| {
        b.iter(|| {
            cache.blit(0, &mut out, 0, PAGES * PAGE).unwrap();
            black_box(&out);
        })
    });
    group.bench_function("ours_for_each_chunk", |b| {
        b.iter(|| {
            cache
                .for_each_chunk(0, (PAGES * PAGE) as u64, |addr, piece| {
                    out[addr as usize..addr as usize + piece.len()].copy_from_slice(piece);
                })
                .unwrap();
            black_box(&out);
        })
    });
    group.bench_function("ours_get_seq", |b| {
        b.iter(|| {
            let mut at = 0;
            for slice in cache.get_seq(0).unwrap() {
                let slice = slice.unwrap();
                out[at..at + slice.len()].copy_from_slice(&slice);
                at += slice.len();
            }
            black_box(&out);
        })
    });
    group.bench_function("mmap_copy", |b| {
        b.iter(|| {
            out.copy_from_slice(&map);
            black_box(&out);
        })
    });
    // The same copy in page-sized pieces, as the page iterator copies: shows
    // how much of the gap is the size of each copy, not the cache.
    group.bench_function("mmap_copy_per_page", |b| {
        b.iter(|| {
            for (dst, src) in out.chunks_mut(PAGE).zip(map.chunks(PAGE)) {
                dst.copy_from_slice(src);
            }
            black_box(&out);
        })
    });
    group.finish();
    assert_eq!(cache.stats().resident_pages, PAGES);
}

/// Misses per batch; a batch's p99 or max is one iteration's time.
const MISS_BATCH: usize = 1000;
/// Pages the cache of the miss-latency bench holds.
const MISS_CACHE_PAGES: usize = 1024;
/// Pages the scanners read, over and over: twice the cache, so that they
/// miss too and the pages they copy are the ones eviction takes.
const SCANNED_PAGES: usize = 2 * MISS_CACHE_PAGES;
/// Bytes per scanner read (16 pages: one run of reader counts).
const SCAN_PIECE: usize = 64 * 1024;

/// What the 4 background threads of the miss-latency bench do.
#[derive(Clone, Copy)]
enum Background {
    /// Read the cache's pages, `SCAN_PIECE` bytes at a time.
    CacheScans,
    /// Copy `SCAN_PIECE` bytes of memory of their own at a time.
    PlainCopies,
}

/// Runs `batches` batches of `MISS_BATCH` one-byte reads of pages that are
/// not cached (each one evicts a page) beside `background`, and returns
/// the sum over batches of `pick(latencies of the batch)`.
fn miss_latencies(
    cache: &PageCache<File>,
    background: Background,
    batches: u64,
    pick: Pick,
) -> Duration {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let running = AtomicBool::new(true);
    let mut total = Duration::ZERO;
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let running = &running;
            scope.spawn(move || {
                let mut buf = vec![0u8; SCAN_PIECE];
                let own = vec![thread as u8; SCANNED_PAGES * PAGE];
                let pieces = SCANNED_PAGES * PAGE / SCAN_PIECE;
                let mut piece = thread * pieces / 4;
                while running.load(Relaxed) {
                    let at = piece % pieces * SCAN_PIECE;
                    match background {
                        Background::CacheScans => {
                            cache.blit(at as u64, &mut buf, 0, SCAN_PIECE).unwrap();
                        }
                        Background::PlainCopies => buf.copy_from_slice(&own[at..at + SCAN_PIECE]),
                    }
                    black_box(&buf);
                    piece += 1;
                }
            });
        }
        let mut latencies = vec![Duration::ZERO; MISS_BATCH];
        let cold_pages = (PAGES - SCANNED_PAGES) as u64;
        let mut state = 11;
        for _ in 0..batches {
            for latency in &mut latencies {
                let page = SCANNED_PAGES as u64 + splitmix64(&mut state) % cold_pages;
                let start = std::time::Instant::now();
                black_box(cache.get_u8(page * PAGE as u64).unwrap());
                *latency = start.elapsed();
            }
            total += pick(&mut latencies);
        }
        running.store(false, Relaxed);
    });
    total
}

/// What one batch of miss latencies counts as: its p99 or its worst.
type Pick = fn(&mut [Duration]) -> Duration;

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort_unstable();
    latencies[latencies.len() * 99 / 100]
}

fn max(latencies: &mut [Duration]) -> Duration {
    latencies.iter().copied().max().unwrap_or_default()
}

fn miss_latency(c: &mut Criterion) {
    let file = bench_file(&file_bytes());
    let cache = PageCache::builder()
        .page_size(PAGE)
        .capacity(MISS_CACHE_PAGES)
        .build(file)
        .expect("valid shape");
    let mut group = c.benchmark_group("pagecache_miss_latency");
    let variants: [(&str, Background, Pick); 4] = [
        ("p99_scanning", Background::CacheScans, p99),
        ("p99_copying", Background::PlainCopies, p99),
        ("max_scanning", Background::CacheScans, max),
        ("max_copying", Background::PlainCopies, max),
    ];
    for (name, background, pick) in variants {
        group.bench_function(name, |b| {
            b.iter_custom(|batches| miss_latencies(&cache, background, batches, pick))
        });
    }
    group.finish();
}

fn positions_for_thread(thread: u64) -> Vec<u64> {
    positions(THREAD_READS, 100 + thread)
}

fn commit_bytes() -> usize {
    let full = std::env::var_os("BENCH_FULL").is_some_and(|v| v == "1");
    if full { 1 << 30 } else { 64 << 20 }
}

fn commit_vs_pwrite(c: &mut Criterion) {
    let total = commit_bytes();
    let chunk = vec![0x5a_u8; 1 << 20];
    let sized_file = || {
        let file = bench_file(&[]);
        file.set_len(total as u64).expect("size the bench file");
        file
    };
    let mut group = c.benchmark_group("pagecache_commit");
    group.throughput(Throughput::Bytes(total as u64));
    let ours_file = Arc::new(sized_file());
    group.bench_function("ours", |b| {
        b.iter_batched(
            || {
                let cache = PageCache::builder()
                    .capacity(16)
                    .max_dirty_pages(total / PAGE)
                    .build_write_back(Arc::clone(&ours_file))
                    .expect("build the write-back cache");
                for at in (0..total).step_by(chunk.len()) {
                    cache
                        .write_bytes(at as u64, &chunk)
                        .expect("write dirty pages");
                }
                cache
            },
            |cache| {
                cache.commit().expect("commit");
                cache
            },
            criterion::BatchSize::PerIteration,
        );
    });
    // The same bytes from memory as big as the dirty pages, so neither
    // side re-reads a buffer that stays in the CPU cache; and, as ours, the
    // bytes are written into that memory (untimed) just before each timed
    // write-out, not written out back to back.
    let mut bytes = vec![0x5a_u8; total];
    let peer_file = sized_file();
    group.bench_function("pwrite_loop", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                for piece in bytes.chunks_mut(chunk.len()) {
                    piece.copy_from_slice(&chunk[..piece.len()]);
                }
                let start = std::time::Instant::now();
                for (i, piece) in bytes.chunks(chunk.len()).enumerate() {
                    peer_file
                        .write_all_at(piece, (i * chunk.len()) as u64)
                        .expect("pwrite");
                }
                timed += start.elapsed();
            }
            timed
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = random_hits, commit_vs_pwrite, miss_latency
}
criterion_main!(benches);
