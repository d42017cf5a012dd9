//! objectcache: the `parquet` crate reads a Parquet file (4 row groups, 3
//! columns, ~10 MB) with `ParquetObjectReader`, through the caching store
//! (warm: every page in RAM) against directly from the store it caches.
//!
//! The inner store is object_store's `InMemory` behind objectdev's
//! `LatencyStore`, which makes each GET or HEAD wait 2 ms (and nothing
//! more), about what an S3 server on loopback costs per request (a real
//! one costs tens of ms): so the direct read pays per request what a
//! remote reader pays, and the cached read shows what is left once nothing
//! goes to the store. A second row
//! reads `InMemory` with no wait: the cost of the cache's own path
//! (a blocking-pool hop per request, a copy out of the pages).
//!
//! A third pair reads from testsupport's S3 server (the one the environment
//! names, else one in the bench's own process on loopback): warm through
//! the cache against directly from the server.
//!
//! A last pair reads one 128 MiB object cold, sequentially in 8 MiB
//! requests, through the caching store (objectdev's read-ahead below it)
//! over objectdev's `LatencyStore::s3` model (25 ms to the first byte,
//! 90 MB/s per request), against 8 MiB ranged GETs 16 in flight straight
//! from that store.
//!
//! Also writes the requests each read makes (`objectcache-requests.md` in
//! `BENCH_EXTRA_DIR`), counted by objectdev's `CountingStore`.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures_util::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objectcache::CachingStore;
use objectdev::{CountingStore, LatencyStore};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::file::properties::WriterProperties;
use tokio::runtime::Runtime;

const ROWS: i64 = 400_000;
const ROW_GROUP_ROWS: usize = 100_000;
/// Per-request wait of the "remote" inner store.
const LATENCY: Duration = Duration::from_millis(2);

fn parquet_file() -> Vec<u8> {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..ROWS));
    let values: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..ROWS).map(|i| (i as f64).sqrt()),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..ROWS).map(|i| format!("row-{:07}", i * 7919 % ROWS)),
    ));
    let batch = RecordBatch::try_from_iter([("id", ids), ("value", values), ("name", names)])
        .expect("a batch of three columns");
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false)
        .build();
    let mut file = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), Some(properties))
        .expect("a Parquet writer");
    writer.write(&batch).expect("write the batch");
    writer.close().expect("finish the file");
    file
}

async fn read_all(store: Arc<dyn ObjectStore>, path: &Path) -> usize {
    let reader = ParquetObjectReader::new(store, path.clone());
    let stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .expect("read the footer")
        .build()
        .expect("a stream of batches");
    let batches: Vec<RecordBatch> = stream.try_collect().await.expect("read the batches");
    batches.iter().map(RecordBatch::num_rows).sum()
}

struct Setup {
    runtime: Runtime,
    path: Path,
    file_len: u64,
    /// The slow store, counted.
    slow: Arc<CountingStore>,
    slow_cached: Arc<CachingStore>,
    fast: Arc<dyn ObjectStore>,
    fast_cached: Arc<CachingStore>,
    s3: Arc<dyn ObjectStore>,
    s3_cached: Arc<CachingStore>,
    s3_path: Path,
    /// Kept alive for the bench: dropping it stops an in-process server.
    _server: testsupport::s3::S3Server,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let path = Path::from("tables/t/part-0.parquet");
    let file = parquet_file();
    let file_len = file.len() as u64;
    let server = testsupport::s3::S3Server::start();
    let s3: Arc<dyn ObjectStore> = Arc::new(server.store());
    let s3_path = testsupport::s3::unique_key("objectcache-bench");
    runtime
        .block_on(s3.put(&s3_path, file.clone().into()))
        .expect("put the file on S3");
    let memory = Arc::new(InMemory::new());
    runtime
        .block_on(memory.put(&path, file.into()))
        .expect("put the file");
    // No cap on bandwidth: each GET or HEAD waits LATENCY, nothing more.
    let slow = LatencyStore::new(memory.clone(), LATENCY, u64::MAX).expect("a valid latency");
    let slow = Arc::new(CountingStore::new(Arc::new(slow)));
    let cache = |inner: Arc<dyn ObjectStore>| {
        let store = CachingStore::builder()
            .ram_bytes(64 << 20)
            .disk_bytes(256 << 20)
            .dir(tier_dir())
            .build(inner)
            .expect("build the caching store");
        Arc::new(store)
    };
    Setup {
        s3_cached: cache(s3.clone()),
        s3,
        s3_path,
        _server: server,
        slow_cached: cache(slow.clone()),
        fast_cached: cache(memory.clone()),
        fast: memory,
        slow,
        runtime,
        path,
        file_len,
    }
}

fn tier_dir() -> std::path::PathBuf {
    std::env::var_os("SPILLCACHE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into)
}

fn write_requests(setup: &Setup) {
    let mut table = String::from(
        "| Parquet read (whole file, 4 row groups x 3 columns) | GETs | HEADs | bytes fetched |\n|---|---|---|---|\n",
    );
    let mut row = |name: &str, store: Arc<dyn ObjectStore>| {
        setup.slow.reset();
        let rows = setup.runtime.block_on(read_all(store, &setup.path));
        assert_eq!(rows, ROWS as usize);
        let counts = setup.slow.counts();
        writeln!(
            table,
            "| {name} | {} | {} | {} |",
            counts.gets, counts.heads, counts.get_bytes
        )
        .expect("write to a String");
    };
    row("direct from the store", setup.slow.clone());
    row("through the caching store, cold", setup.slow_cached.clone());
    row("through the caching store, warm", setup.slow_cached.clone());
    println!("{table}");
    let dir = benches::extra_report_dir();
    std::fs::create_dir_all(&dir).expect("create the bench-extra directory");
    let report = format!(
        "### objectcache: requests of a Parquet read\n\n{table}\nThe file is {} bytes. Counted by \
         objectdev's `CountingStore` in front of the inner store. Caching store: 64 KiB pages, \
         1 MiB chunks, 64 MiB RAM, 256 MiB disk.\n",
        setup.file_len
    );
    std::fs::write(dir.join("objectcache-requests.md"), report).expect("write the extra table");
}

fn measurement_time() -> Duration {
    if std::env::var_os("BENCH_FULL").is_some() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(3)
    }
}

fn parquet_reads(c: &mut Criterion, setup: &Setup) {
    let mut group = c.benchmark_group("objectcache_parquet");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time())
        .throughput(Throughput::Bytes(setup.file_len));
    let read = |store: Arc<dyn ObjectStore>| setup.runtime.block_on(read_all(store, &setup.path));
    group.bench_function("cached_warm", |b| {
        b.iter(|| read(setup.slow_cached.clone()))
    });
    group.bench_function("direct_2ms", |b| b.iter(|| read(setup.slow.clone())));
    group.bench_function("cached_warm_over_memory", |b| {
        b.iter(|| read(setup.fast_cached.clone()))
    });
    group.bench_function("direct_memory", |b| b.iter(|| read(setup.fast.clone())));
    let read_s3 =
        |store: Arc<dyn ObjectStore>| setup.runtime.block_on(read_all(store, &setup.s3_path));
    group.bench_function("cached_warm_s3", |b| {
        b.iter(|| read_s3(setup.s3_cached.clone()))
    });
    group.bench_function("direct_s3", |b| b.iter(|| read_s3(setup.s3.clone())));
    group.finish();
}

/// The object a sequential reader reads cold, and what it asks at a time.
const SEQUENTIAL_LEN: u64 = 128 << 20;
const SEQUENTIAL_STEP: u64 = 8 << 20;

fn sequential_reads(c: &mut Criterion, runtime: &Runtime) {
    let memory = Arc::new(InMemory::new());
    let path = Path::from("big/object");
    runtime
        .block_on(memory.put(&path, vec![7u8; SEQUENTIAL_LEN as usize].into()))
        .expect("put the object");
    let s3: Arc<dyn ObjectStore> = Arc::new(LatencyStore::s3(memory));
    let cached = CachingStore::builder()
        .ram_bytes(256 << 20)
        .disk_bytes(512 << 20)
        .dir(tier_dir())
        .build(s3.clone())
        .expect("build the caching store");
    let ranges: Vec<Range<u64>> = (0..SEQUENTIAL_LEN)
        .step_by(SEQUENTIAL_STEP as usize)
        .map(|start| start..start + SEQUENTIAL_STEP)
        .collect();
    let mut group = c.benchmark_group("objectcache_sequential");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time())
        .throughput(Throughput::Bytes(SEQUENTIAL_LEN));
    group.bench_function("cached_cold_s3_model", |b| {
        b.iter(|| {
            // A new version for the cache: every byte fetched again.
            cached.invalidate(&path);
            runtime.block_on(async {
                for range in &ranges {
                    let bytes = cached.get_range(&path, range.clone()).await;
                    assert_eq!(bytes.expect("a range").len() as u64, SEQUENTIAL_STEP);
                }
            });
        });
    });
    group.bench_function("direct_8mib_x16_s3_model", |b| {
        b.iter(|| {
            let parts: Vec<Bytes> = runtime
                .block_on(
                    futures_util::stream::iter(ranges.clone())
                        .map(|range| s3.get_range(&path, range))
                        .buffered(16)
                        .try_collect(),
                )
                .expect("the ranges");
            assert_eq!(parts.len(), ranges.len());
        });
    });
    group.finish();
}

fn main() {
    let setup = setup();
    write_requests(&setup);
    // Fill the other caches too, so every cached row is warm.
    setup
        .runtime
        .block_on(read_all(setup.fast_cached.clone(), &setup.path));
    setup
        .runtime
        .block_on(read_all(setup.s3_cached.clone(), &setup.s3_path));
    let mut criterion = Criterion::default().configure_from_args();
    parquet_reads(&mut criterion, &setup);
    sequential_reads(&mut criterion, &setup.runtime);
    criterion.final_summary();
}
