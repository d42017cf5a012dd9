//! objectdev over a store that answers like S3 does across a network,
//! modelled in memory by `objectdev::LatencyStore` (25 ms to the first
//! byte, then 90 MB/s per request), on a 256 MiB object:
//!
//! - a cold sequential scan through a fresh stack (RAM pages over the
//!   encrypted disk tier over the object; the page cache's read-ahead
//!   set to 128 MiB, which bounds the device's buffer too),
//!   against 8 MiB ranged GETs 16 in flight (what object_store users do)
//!   and against one whole-object GET;
//! - cold random 4 KiB reads from 8 threads through a fresh stack whose
//!   RAM (1 MiB) and disk tier (16 MiB) are far smaller than the object,
//!   against one 4 KiB GET per read from 8 threads (8 in flight);
//! - what each costs (GETs, bytes fetched per byte read, most GETs in
//!   flight), written as an extra table (`objectdev-model.md` in
//!   `BENCH_EXTRA_DIR`).
//!
//! Needs no server: the object lives in an `InMemory` store.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blockdev::ReadAt;
use criterion::{BatchSize, Criterion, Throughput};
use objectdev::object_store::memory::InMemory;
use objectdev::object_store::path::Path;
use objectdev::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objectdev::{CountingStore, LatencyStore, ObjectDevice};
use pagecache::PageCache;
use spillcache::SpillTier;

const OBJECT_LEN: usize = 256 << 20;
const PAGE: usize = 4096;
/// Reads of the scan: 1 MiB, as a user copying the object out would.
const SCAN_READ: usize = 1 << 20;
/// RAM of the scanning stack: 16 MiB, far below the object.
const SCAN_RAM_PAGES: usize = 4096;
/// One device read fetches up to 1 MiB of missing pages.
const BATCH_PAGES: usize = 256;
/// Tier chunks: 32 KiB, so a cold 4 KiB read fetches 32 KiB (at most
/// 64 KiB), not a whole large chunk; read-ahead keeps a scan's GETs large
/// (8 MiB parts) whatever the chunk.
const CHUNK: u64 = 32 << 10;
const SCAN_TIER: u64 = 64 << 20;
/// Read-ahead of the scanning stack: 128 MiB, 16 GETs of 8 MiB in flight,
/// what a user scanning a remote object sets (the page cache's default is
/// its frames' bytes, 16 MiB here: two GETs in flight).
const SCAN_READ_AHEAD: u64 = 128 << 20;
/// The random readers' stack: RAM and tier far smaller than the object.
const RANDOM_RAM_PAGES: usize = 256;
const RANDOM_TIER: u64 = 16 << 20;
const THREADS: usize = 8;
/// Random reads per measured iteration, over all threads.
const RANDOM_READS: usize = 256;
const RANDOM_LEN: usize = 4096;
/// The ranged GETs users make.
const RANGED_PART: u64 = 8 << 20;

struct Model {
    store: Arc<CountingStore>,
    path: Path,
    bytes: Vec<u8>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn model() -> Model {
    let mut state = 7;
    let bytes: Vec<u8> = (0..OBJECT_LEN / 8)
        .flat_map(|_| splitmix64(&mut state).to_le_bytes())
        .collect();
    let memory = Arc::new(InMemory::new());
    let path = Path::from("object");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(memory.put(&path, PutPayload::from(bytes.clone())))
        .expect("put the object");
    let store = Arc::new(CountingStore::new(Arc::new(LatencyStore::s3(memory))));
    Model { store, path, bytes }
}

fn tier_dir() -> PathBuf {
    std::env::var_os("SPILLCACHE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn device(model: &Model, part_size: u64) -> Arc<ObjectDevice> {
    let store: Arc<dyn ObjectStore> = model.store.clone();
    let device = ObjectDevice::new(store, model.path.clone())
        .and_then(|device| device.with_part_size(part_size))
        .expect("open the object");
    Arc::new(device)
}

type Stack = PageCache<SpillTier<Arc<ObjectDevice>>>;

/// A fresh, empty stack over a fresh device (no read-ahead held); its
/// page cache bounds what the device fetches ahead at `read_ahead`, or at
/// its default when `None`.
fn stack(model: &Model, ram_pages: usize, tier_budget: u64, read_ahead: Option<u64>) -> Stack {
    let device = device(model, objectdev::DEFAULT_PART_SIZE);
    let tier = SpillTier::with_chunk_size(device, tier_dir(), tier_budget, CHUNK)
        .expect("create the disk tier");
    let builder = PageCache::builder()
        .page_size(PAGE)
        .capacity(ram_pages)
        .max_batch_pages(BATCH_PAGES.min(ram_pages));
    match read_ahead {
        Some(bytes) => builder.read_ahead(bytes),
        None => builder,
    }
    .build(tier)
    .expect("valid shape")
}

fn scan(cache: &Stack, out: &mut [u8]) {
    for start in (0..OBJECT_LEN).step_by(SCAN_READ) {
        cache
            .blit(
                start as u64,
                &mut out[start..start + SCAN_READ],
                0,
                SCAN_READ,
            )
            .expect("read through the stack");
    }
}

/// `RANDOM_READS` positions, split among the threads.
fn positions(seed: u64) -> Vec<Vec<u64>> {
    let mut state = seed;
    (0..THREADS)
        .map(|_| {
            (0..RANDOM_READS / THREADS)
                .map(|_| splitmix64(&mut state) % (OBJECT_LEN - RANDOM_LEN) as u64)
                .collect()
        })
        .collect()
}

/// Every thread reads its positions with `read`, all at once.
fn on_threads(positions: &[Vec<u64>], read: impl Fn(u64, &mut [u8]) + Sync) {
    std::thread::scope(|scope| {
        for mine in positions {
            let read = &read;
            scope.spawn(move || {
                let mut buf = [0u8; RANDOM_LEN];
                for &pos in mine {
                    read(pos, &mut buf);
                }
            });
        }
    });
}

fn stack_read(cache: &Stack) -> impl Fn(u64, &mut [u8]) + Sync + '_ {
    move |pos, buf| {
        cache
            .blit(pos, buf, 0, RANDOM_LEN)
            .expect("read through the stack")
    }
}

fn get_read(device: &ObjectDevice) -> impl Fn(u64, &mut [u8]) + Sync + '_ {
    move |pos, buf| device.read_exact_at(pos, buf).expect("GET")
}

/// What one pass of a workload asked of the store.
struct Cost {
    name: &'static str,
    gets: u64,
    get_bytes: u64,
    read_bytes: u64,
    max_in_flight: u64,
}

fn counted(model: &Model, name: &'static str, read_bytes: u64, work: impl FnOnce()) -> Cost {
    model.store.reset();
    work();
    let counts = model.store.counts();
    Cost {
        name,
        gets: counts.gets,
        get_bytes: counts.get_bytes,
        read_bytes,
        max_in_flight: counts.max_gets_in_flight,
    }
}

fn measurement_time() -> Duration {
    if std::env::var_os("BENCH_FULL").is_some() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(1)
    }
}

fn cold_scan(c: &mut Criterion, model: &Model, costs: &mut Vec<Cost>) {
    let ranged = device(model, RANGED_PART);
    let whole = device(model, OBJECT_LEN as u64);
    let mut out = vec![0u8; OBJECT_LEN];
    let cache = stack(model, SCAN_RAM_PAGES, SCAN_TIER, Some(SCAN_READ_AHEAD));
    costs.push(counted(
        model,
        "cold scan, stack",
        OBJECT_LEN as u64,
        || scan(&cache, &mut out),
    ));
    drop(cache);
    assert!(out == model.bytes, "the stack returns the object's bytes");
    costs.push(counted(
        model,
        "cold scan, 8 MiB ranged GETs 16 in flight",
        OBJECT_LEN as u64,
        || ranged.read_exact_at(0, &mut out).expect("GETs"),
    ));

    let mut group = c.benchmark_group("objectdev_model_scan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(measurement_time())
        .throughput(Throughput::Bytes(OBJECT_LEN as u64));
    group.bench_function("stack", |b| {
        // A fresh, empty stack per scan; building and dropping it (a HEAD,
        // the tier's file and writer thread) is not measured.
        b.iter_batched(
            || stack(model, SCAN_RAM_PAGES, SCAN_TIER, Some(SCAN_READ_AHEAD)),
            |cache| {
                scan(&cache, &mut out);
                cache
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("ranged_gets_16", |b| {
        b.iter(|| ranged.read_exact_at(0, &mut out).expect("GETs"))
    });
    group.bench_function("whole_object_get", |b| {
        b.iter(|| whole.read_exact_at(0, &mut out).expect("GET"))
    });
    group.finish();
}

fn cold_random(c: &mut Criterion, model: &Model, costs: &mut Vec<Cost>) {
    let direct = device(model, objectdev::DEFAULT_PART_SIZE);
    let read_bytes = (RANDOM_READS * RANDOM_LEN) as u64;
    let cache = stack(model, RANDOM_RAM_PAGES, RANDOM_TIER, None);
    costs.push(counted(
        model,
        "cold random 4 KiB, stack, 8 threads",
        read_bytes,
        || on_threads(&positions(1), stack_read(&cache)),
    ));
    let read_ahead = cache.device().device().read_ahead_stats();
    assert_eq!(read_ahead.gets, 0, "random reads make no read-ahead GET");
    drop(cache);
    costs.push(counted(
        model,
        "cold random 4 KiB, one GET per read, 8 threads",
        read_bytes,
        || on_threads(&positions(1), get_read(&direct)),
    ));

    let mut group = c.benchmark_group("objectdev_model_random_4k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(measurement_time())
        .throughput(Throughput::Elements(RANDOM_READS as u64));
    let mut seed = 100;
    group.bench_function("stack", |b| {
        b.iter_batched(
            || {
                seed += 1;
                (
                    stack(model, RANDOM_RAM_PAGES, RANDOM_TIER, None),
                    positions(seed),
                )
            },
            |(cache, positions)| {
                on_threads(&positions, stack_read(&cache));
                cache
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("get_range_8", |b| {
        b.iter_batched(
            || {
                seed += 1;
                positions(seed)
            },
            |positions| on_threads(&positions, get_read(&direct)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn write_costs(costs: &[Cost]) {
    let mut table = String::from(
        "| read (256 MiB object, 25 ms + 90 MB/s per request, in memory) | GETs | bytes fetched per byte read | most GETs in flight |\n|---|---|---|---|\n",
    );
    for cost in costs {
        writeln!(
            table,
            "| {} | {} | {:.2} | {} |",
            cost.name,
            cost.gets,
            cost.get_bytes as f64 / cost.read_bytes as f64,
            cost.max_in_flight
        )
        .expect("write to a String");
    }
    println!("{table}");
    let dir = benches::extra_report_dir();
    std::fs::create_dir_all(&dir).expect("create the bench-extra directory");
    let report = format!(
        "### objectdev over a modelled remote store: requests\n\n{table}\nCounted by objectdev's \
         `CountingStore` over `LatencyStore::s3` in one pass of each workload. Stack: 4 KiB pages, \
         batches of 1 MiB, 32 KiB tier chunks, 8 MiB GET parts; scan: 16 MiB of RAM, \
         `read_ahead(128 MiB)` (window and device buffer); random readers: 1 MiB of RAM, \
         16 MiB of tier, read-ahead at the page cache's default.\n"
    );
    std::fs::write(dir.join("objectdev-model.md"), report).expect("write the extra table");
}

fn main() {
    let model = model();
    let mut criterion = Criterion::default().configure_from_args();
    let mut costs = Vec::new();
    cold_scan(&mut criterion, &model, &mut costs);
    cold_random(&mut criterion, &model, &mut costs);
    criterion.final_summary();
    write_costs(&costs);
}
