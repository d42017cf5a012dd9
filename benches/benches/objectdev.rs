//! objectdev through the whole stack against the plain ways to read an
//! object, on an S3 server on 127.0.0.1 (s3s-fs, started in the bench's
//! own process by `testsupport`):
//!
//! - random 8-byte reads over a 64 MiB object: RAM pages over the
//!   encrypted disk tier over the object, warm, against one ranged GET per
//!   read;
//! - a cold sequential scan of the object in 16 MiB reads through a fresh
//!   stack (empty RAM cache and tier, so every byte comes from the store
//!   and is added to the tier), against one GET of the whole object;
//! - the requests and bytes each costs per MiB read, written as an extra
//!   table (`objectdev-requests.md` in `BENCH_EXTRA_DIR`).
//!
//! An external server named by the environment takes precedence:
//! `AWS_ENDPOINT` (loopback only), `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, and the bucket in `OBJECTDEV_TEST_BUCKET`.
//! Every variant reads through the same object_store client (the
//! whole-object GET is an `ObjectDevice` read whose one part is the whole
//! object).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blockdev::ReadAt;
use criterion::{BatchSize, Criterion, Throughput};
use objectdev::object_store::ObjectStore;
use objectdev::object_store::path::Path;
use objectdev::{CountingStore, ObjectDevice};
use pagecache::{ByteSourceExt, PageCache};
use spillcache::SpillTier;
use testsupport::s3::S3Server;

const OBJECT_LEN: usize = 64 << 20;
const PAGE: usize = 4096;
/// RAM for the whole object, so warm reads never leave it.
const CAPACITY_PAGES: usize = OBJECT_LEN / PAGE;
/// One device read fetches up to 16 MiB of missing pages...
const BATCH_PAGES: usize = 4096;
const SCAN_READ: usize = BATCH_PAGES * PAGE;
/// ...which the tier keeps as 1 MiB chunks, and the device fetches as four
/// parallel 4 MiB GETs.
const CHUNK: u64 = 1 << 20;
const PART: u64 = 4 << 20;
const TIER_BUDGET: u64 = 2 * OBJECT_LEN as u64;

struct Server {
    store: Arc<CountingStore>,
    path: Path,
    bytes: Vec<u8>,
    /// Serves until the bench ends.
    _s3: S3Server,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The server with the 64 MiB object uploaded.
fn server() -> Server {
    let s3 = S3Server::start();
    let store = s3.builder().build().expect("an S3 client over the server");
    let mut state = 7;
    let bytes: Vec<u8> = (0..OBJECT_LEN / 8)
        .flat_map(|_| splitmix64(&mut state).to_le_bytes())
        .collect();
    let path = Path::from(format!("objectdev-bench/object-{}", std::process::id()));
    testsupport::s3::upload(&store, &path, &bytes);
    Server {
        store: Arc::new(CountingStore::new(Arc::new(store))),
        path,
        bytes,
        _s3: s3,
    }
}

fn tier_dir() -> PathBuf {
    std::env::var_os("SPILLCACHE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn device(server: &Server, part_size: u64) -> Arc<ObjectDevice> {
    let store: Arc<dyn ObjectStore> = server.store.clone();
    let device = ObjectDevice::new(store, server.path.clone())
        .and_then(|device| device.with_part_size(part_size))
        .expect("open the object");
    Arc::new(device)
}

type Stack = PageCache<SpillTier<Arc<ObjectDevice>>>;

/// RAM pages over the encrypted disk tier over the object, all empty.
fn stack(device: &Arc<ObjectDevice>) -> Stack {
    let tier = SpillTier::with_chunk_size(Arc::clone(device), tier_dir(), TIER_BUDGET, CHUNK)
        .expect("create the disk tier");
    PageCache::builder()
        .page_size(PAGE)
        .capacity(CAPACITY_PAGES)
        .max_batch_pages(BATCH_PAGES)
        .build(tier)
        .expect("valid shape")
}

/// Reads the whole object through `cache` in 16 MiB pieces, in order.
fn scan(cache: &Stack, out: &mut [u8]) {
    for start in (0..OBJECT_LEN).step_by(SCAN_READ) {
        let piece = &mut out[start..start + SCAN_READ];
        cache
            .blit(start as u64, piece, 0, SCAN_READ)
            .expect("read through the stack");
    }
}

fn positions(n: usize) -> Vec<u64> {
    let mut state = 3;
    (0..n)
        .map(|_| splitmix64(&mut state) % (OBJECT_LEN as u64 - 8))
        .collect()
}

fn measurement_time() -> Duration {
    if std::env::var_os("BENCH_FULL").is_some() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(3)
    }
}

/// Requests and bytes fetched per MiB the reader got.
struct Cost {
    name: &'static str,
    gets: u64,
    get_bytes: u64,
    read_bytes: u64,
}

fn counted(server: &Server, name: &'static str, read_bytes: u64, work: impl FnOnce()) -> Cost {
    let before = server.store.counts();
    work();
    let after = server.store.counts();
    Cost {
        name,
        gets: after.gets - before.gets,
        get_bytes: after.get_bytes - before.get_bytes,
        read_bytes,
    }
}

fn random_reads(c: &mut Criterion, server: &Server, costs: &mut Vec<Cost>) {
    let device = device(server, PART);
    let cache = stack(&device);
    let mut sink = vec![0u8; OBJECT_LEN];
    scan(&cache, &mut sink);
    assert!(sink == server.bytes, "the stack returns the object's bytes");
    let positions = positions(1 << 16);
    let sample = 4096;
    costs.push(counted(
        server,
        "random 8 B, stack (warm)",
        8 * sample,
        || {
            for &pos in &positions[..sample as usize] {
                black_box(cache.get_u64_le(pos).expect("warm read"));
            }
        },
    ));
    costs.push(counted(
        server,
        "random 8 B, one GET per read",
        8 * 64,
        || {
            for &pos in &positions[..64] {
                device.read_exact_at(pos, &mut [0u8; 8]).expect("GET");
            }
        },
    ));

    let mut group = c.benchmark_group("objectdev_random_8b");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time())
        .throughput(Throughput::Bytes(8));
    let mut next = 0;
    group.bench_function("stack_warm", |b| {
        b.iter(|| {
            next = (next + 1) % positions.len();
            black_box(cache.get_u64_le(positions[next]).expect("warm read"))
        })
    });
    let mut buf = [0u8; 8];
    group.bench_function("get_per_read", |b| {
        b.iter(|| {
            next = (next + 1) % positions.len();
            device
                .read_exact_at(positions[next], &mut buf)
                .expect("GET");
            black_box(buf)
        })
    });
    group.finish();
}

fn cold_scan(c: &mut Criterion, server: &Server, costs: &mut Vec<Cost>) {
    let device = device(server, PART);
    let whole = device_whole(server);
    let mut out = vec![0u8; OBJECT_LEN];
    costs.push(counted(
        server,
        "cold scan, stack",
        OBJECT_LEN as u64,
        || {
            scan(&stack(&device), &mut out);
        },
    ));
    assert!(out == server.bytes);
    costs.push(counted(
        server,
        "cold scan, one whole-object GET",
        OBJECT_LEN as u64,
        || whole.read_exact_at(0, &mut out).expect("GET"),
    ));

    let mut group = c.benchmark_group("objectdev_cold_scan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time())
        .throughput(Throughput::Bytes(OBJECT_LEN as u64));
    group.bench_function("stack", |b| {
        // A fresh, empty stack per scan; building and dropping it (the
        // tier's file and writer thread) is not measured.
        b.iter_batched(
            || stack(&device),
            |cache| {
                scan(&cache, &mut out);
                cache
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("whole_object_get", |b| {
        b.iter(|| whole.read_exact_at(0, &mut out).expect("GET"))
    });
    group.finish();
}

/// A device whose one part is the whole object: one GET reads it all.
fn device_whole(server: &Server) -> Arc<ObjectDevice> {
    device(server, OBJECT_LEN as u64)
}

fn write_costs(costs: &[Cost]) {
    let mut table = String::from(
        "| read (64 MiB object, s3s-fs on 127.0.0.1) | GETs per MiB read | bytes fetched per byte read |\n|---|---|---|\n",
    );
    for cost in costs {
        let mib = cost.read_bytes as f64 / (1 << 20) as f64;
        writeln!(
            table,
            "| {} | {:.3} | {:.2} |",
            cost.name,
            cost.gets as f64 / mib,
            cost.get_bytes as f64 / cost.read_bytes as f64
        )
        .expect("write to a String");
    }
    println!("{table}");
    let dir = benches::extra_report_dir();
    std::fs::create_dir_all(&dir).expect("create the bench-extra directory");
    let report = format!(
        "### objectdev: requests per MiB read\n\n{table}\nCounted by objectdev's `CountingStore` \
         in one pass of each workload (the warm stack was filled by one scan first). \
         Stack: 4 KiB pages, batches of 16 MiB, 1 MiB tier chunks, 4 MiB GET parts.\n"
    );
    std::fs::write(dir.join("objectdev-requests.md"), report).expect("write the extra table");
}

fn main() {
    let server = server();
    let mut criterion = Criterion::default().configure_from_args();
    let mut costs = Vec::new();
    random_reads(&mut criterion, &server, &mut costs);
    cold_scan(&mut criterion, &server, &mut costs);
    criterion.final_summary();
    write_costs(&costs);
}
