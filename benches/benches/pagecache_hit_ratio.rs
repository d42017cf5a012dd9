//! Hit ratios of pagecache (S3-FIFO) against strict LRU and a direct-mapped
//! cache like Cachet's, on the same page traces; prints a markdown table
//! and writes it to `<bench-extra>/pagecache-hit-ratio.md`, and the hit
//! ratio at cache sizes from 1/8 to 2x the working set (zipf and scan + hot
//! set) to `<bench-extra>/pagecache-hit-ratio-curves.json`, which
//! `cargo xtask bench` draws as `bench-hit-ratio.svg`.
//!
//! Every cache holds 1024 pages. Working sets are scattered page numbers
//! (real files are not read in slot order), so the direct-mapped cache
//! shows its conflict misses. Ours is the real `PageCache` over an
//! in-memory device, reading one byte per access; the others are
//! simulations of page numbers only. Ratios count accesses after a
//! warm-up of 100k accesses.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::num::NonZeroUsize;

use blockdev::MemDevice;
use pagecache::{ByteSourceExt, PageCache};

const CAPACITY: usize = 1024;
/// Page numbers are drawn from this many pages.
const ADDRESS_PAGES: u64 = 1 << 20;
const PAGE: u64 = 16;
const WARM_UP: usize = 100_000;
const MEASURED: usize = 400_000;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` distinct page numbers scattered over the address space.
fn scattered_pages(n: usize, state: &mut u64) -> Vec<u64> {
    let mut seen = HashSet::new();
    let mut pages = Vec::with_capacity(n);
    while pages.len() < n {
        let page = splitmix64(state) % ADDRESS_PAGES;
        if seen.insert(page) {
            pages.push(page);
        }
    }
    pages
}

/// One access: the page, and whether it belongs to the hot set (for the
/// scan workload's second row).
type Trace = Vec<(u64, bool)>;

fn uniform(set_pages: usize, seed: u64) -> Trace {
    let mut state = seed;
    let set = scattered_pages(set_pages, &mut state);
    (0..WARM_UP + MEASURED)
        .map(|_| {
            (
                set[(splitmix64(&mut state) % set.len() as u64) as usize],
                true,
            )
        })
        .collect()
}

/// Zipf(`exponent`) over `n` scattered pages, by inverse CDF.
fn zipf(n: usize, exponent: f64, seed: u64) -> Trace {
    let mut state = seed;
    let set = scattered_pages(n, &mut state);
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        total += 1.0 / (rank as f64).powf(exponent);
        cdf.push(total);
    }
    (0..WARM_UP + MEASURED)
        .map(|_| {
            let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cdf.partition_point(|&c| c < u).min(n - 1);
            (set[rank], true)
        })
        .collect()
}

/// A hot set of `hot_pages` read uniformly, every other access going to a
/// one-off sequential scan that never comes back.
fn scan_with_hot_set(hot_pages: usize, seed: u64) -> Trace {
    let mut state = seed;
    let hot = scattered_pages(hot_pages, &mut state);
    let scan_start = ADDRESS_PAGES; // beyond every hot page
    (0..WARM_UP + MEASURED)
        .map(|i| {
            if i % 2 == 0 || i < WARM_UP / 2 {
                (
                    hot[(splitmix64(&mut state) % hot.len() as u64) as usize],
                    true,
                )
            } else {
                (scan_start + i as u64, false)
            }
        })
        .collect()
}

/// Hits over measured accesses, overall and for hot accesses.
#[derive(Clone, Copy)]
struct Ratio {
    all: f64,
    hot: f64,
}

fn measure(trace: &Trace, mut access: impl FnMut(u64) -> bool) -> Ratio {
    let (mut hits, mut hot_hits, mut hot) = (0u64, 0u64, 0u64);
    for (i, &(page, is_hot)) in trace.iter().enumerate() {
        let hit = access(page);
        if i >= WARM_UP {
            hits += u64::from(hit);
            hot += u64::from(is_hot);
            hot_hits += u64::from(hit && is_hot);
        }
    }
    Ratio {
        all: hits as f64 / MEASURED as f64,
        hot: hot_hits as f64 / hot.max(1) as f64,
    }
}

fn ours(trace: &Trace) -> Ratio {
    let device = MemDevice::from_vec(vec![
        0;
        ((ADDRESS_PAGES + MEASURED as u64 + WARM_UP as u64) * PAGE)
            as usize
    ]);
    let cache = PageCache::builder()
        .page_size(PAGE as usize)
        .capacity(CAPACITY)
        .build(device)
        .expect("valid shape");
    measure(trace, |page| {
        let misses = cache.misses();
        cache.get_u8(page * PAGE).expect("inside the device");
        cache.misses() == misses
    })
}

fn strict_lru(trace: &Trace) -> Ratio {
    let mut lru = lru::LruCache::new(NonZeroUsize::new(CAPACITY).unwrap());
    measure(trace, |page| {
        let hit = lru.get(&page).is_some();
        if !hit {
            lru.put(page, ());
        }
        hit
    })
}

/// Cachet's scheme: page `p` can only live in slot `p mod capacity`.
fn direct_mapped(trace: &Trace) -> Ratio {
    let mut slots = vec![u64::MAX; CAPACITY];
    measure(trace, |page| {
        let slot = &mut slots[(page % CAPACITY as u64) as usize];
        let hit = *slot == page;
        *slot = page;
        hit
    })
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn main() {
    let workloads: [(&str, Trace); 5] = [
        ("uniform over 0.5x capacity", uniform(CAPACITY / 2, 1)),
        ("uniform over 1x capacity", uniform(CAPACITY, 2)),
        ("uniform over 2x capacity", uniform(2 * CAPACITY, 3)),
        ("zipf 0.9 over 10x capacity", zipf(10 * CAPACITY, 0.9, 4)),
        (
            "scan + hot set of 0.5x capacity",
            scan_with_hot_set(CAPACITY / 2, 5),
        ),
    ];
    let mut table = String::from(
        "| workload (1024-page cache) | pagecache (S3-FIFO) | strict LRU | direct-mapped (Cachet) |\n|---|---|---|---|\n",
    );
    for (name, trace) in &workloads {
        let results = [ours(trace), strict_lru(trace), direct_mapped(trace)];
        let row = |pick: fn(&Ratio) -> f64| -> String {
            results
                .iter()
                .map(|r| percent(pick(r)))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        writeln!(table, "| {name} | {} |", row(|r| r.all)).unwrap();
        if name.starts_with("scan") {
            writeln!(table, "| {name}: hot accesses only | {} |", row(|r| r.hot)).unwrap();
        }
    }
    println!("{table}");
    let dir = benches::extra_report_dir();
    std::fs::create_dir_all(&dir).expect("create the bench-extra directory");
    let path = dir.join("pagecache-hit-ratio.md");
    let report = format!(
        "### pagecache hit ratios\n\n{table}\nAccesses after a warm-up of {WARM_UP}; {MEASURED} measured per workload. \
         Working sets are scattered page numbers; the scan never repeats a page.\n"
    );
    std::fs::write(&path, report).expect("write the hit-ratio table");
    println!("written to {}", path.display());

    let path = dir.join("pagecache-hit-ratio-curves.json");
    std::fs::write(&path, curves().to_string()).expect("write the hit-ratio curves");
    println!("written to {}", path.display());
}

/// Cache size / working set at each point of the curves: the cache keeps
/// its 1024 pages (a power of two, as `PageCache` requires) and the working
/// set changes.
const CURVE_POINTS: [f64; 10] = [0.125, 0.1875, 0.25, 0.375, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0];

/// Hit ratios of the three caches along [`CURVE_POINTS`]: zipf 0.9 over the
/// working set, and the hot accesses of the scan + hot set workload (the
/// scan never hits, whatever the cache).
fn curves() -> serde_json::Value {
    type Make = fn(usize, u64) -> Trace;
    type Pick = fn(&Ratio) -> f64;
    let workloads: [(&str, Make, Pick); 2] = [
        ("zipf 0.9", |pages, seed| zipf(pages, 0.9, seed), |r| r.all),
        (
            "scan + hot set (hits on the hot set)",
            scan_with_hot_set,
            |r| r.hot,
        ),
    ];
    let workloads: Vec<serde_json::Value> = workloads
        .iter()
        .map(|&(name, make, pick)| {
            let points: Vec<serde_json::Value> = CURVE_POINTS
                .iter()
                .zip(10..)
                .map(|(&fraction, seed)| {
                    let working_set = (CAPACITY as f64 / fraction).round() as usize;
                    let trace = make(working_set, seed);
                    let ratios = [ours(&trace), strict_lru(&trace), direct_mapped(&trace)];
                    serde_json::json!({
                        "cache_per_working_set": fraction,
                        "working_set_pages": working_set,
                        "hit_ratios": ratios.iter().map(pick).collect::<Vec<f64>>(),
                    })
                })
                .collect();
            serde_json::json!({ "name": name, "points": points })
        })
        .collect();
    serde_json::json!({
        "capacity_pages": CAPACITY,
        "policies": ["pagecache (S3-FIFO)", "strict LRU", "direct-mapped (Cachet)"],
        "workloads": workloads,
    })
}
