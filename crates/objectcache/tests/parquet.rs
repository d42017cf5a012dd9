//! The real consumer: the `parquet` crate reads a file it wrote through
//! `ParquetObjectReader` over the caching store over a counting store.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objectcache::CachingStore;
use objectdev::CountingStore;
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::properties::WriterProperties;

const ROWS: i64 = 200_000;
const ROW_GROUP_ROWS: usize = 50_000;
const PAGE_SIZE: usize = 4 << 10;
const CHUNK_SIZE: u64 = 16 << 10;

/// A Parquet file of three columns in four row groups, as the parquet
/// crate writes it.
fn parquet_file() -> Vec<u8> {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..ROWS));
    let values: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..ROWS).map(|i| (i as f64).sqrt()),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..ROWS).map(|i| format!("row-{:07}", i * 7919 % ROWS)),
    ));
    let batch =
        RecordBatch::try_from_iter([("id", ids), ("value", values), ("name", names)]).unwrap();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false)
        .build();
    let mut file = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    file
}

struct Setup {
    counting: Arc<CountingStore>,
    cached: Arc<CachingStore>,
    path: Path,
    file_len: u64,
}

async fn setup() -> Setup {
    setup_over(
        Arc::new(InMemory::new()),
        Path::from("tables/t/part-0.parquet"),
    )
    .await
}

/// The file at `path` in `inner`, counted, and a caching store in front.
async fn setup_over(inner: Arc<dyn ObjectStore>, path: Path) -> Setup {
    let counting = Arc::new(CountingStore::new(inner));
    let file = parquet_file();
    let file_len = file.len() as u64;
    counting.put(&path, file.into()).await.unwrap();
    let cached = CachingStore::builder()
        .page_size(PAGE_SIZE)
        .chunk_size(CHUNK_SIZE)
        .ram_bytes(16 << 20)
        .disk_bytes(64 << 20)
        .build(counting.clone())
        .unwrap();
    counting.reset();
    Setup {
        counting,
        cached: Arc::new(cached),
        path,
        file_len,
    }
}

async fn read_all(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    columns: Option<&[usize]>,
) -> Vec<RecordBatch> {
    let reader = ParquetObjectReader::new(store, path.clone());
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader).await.unwrap();
    if let Some(columns) = columns {
        let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
        builder = builder.with_projection(mask);
    }
    builder.build().unwrap().try_collect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_reads_through_the_cache_the_same_batches_and_warm_reads_make_no_get() {
    same_batches_and_no_warm_get(setup().await).await;
}

async fn same_batches_and_no_warm_get(setup: Setup) {
    let direct = read_all(setup.counting.clone(), &setup.path, None).await;
    assert_eq!(
        direct.iter().map(RecordBatch::num_rows).sum::<usize>(),
        ROWS as usize
    );
    setup.counting.reset();

    let cold = read_all(setup.cached.clone(), &setup.path, None).await;
    assert_eq!(cold, direct);
    let cold_counts = setup.counting.counts();
    assert!(cold_counts.gets > 0);
    assert_eq!(cold_counts.heads, 1);
    setup.counting.reset();

    let warm = read_all(setup.cached.clone(), &setup.path, None).await;
    assert_eq!(warm, direct);
    let warm_counts = setup.counting.counts();
    eprintln!(
        "requests of a read of {} bytes: cold {cold_counts:?}, warm {warm_counts:?}",
        setup.file_len
    );
    assert_eq!(
        (warm_counts.gets, warm_counts.heads),
        (0, 0),
        "{warm_counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_reads_through_the_cache_over_s3_the_same_batches_and_warm_reads_make_no_get() {
    // The S3 server the environment names, else one in this process.
    let server = testsupport::s3::S3Server::start();
    let inner: Arc<dyn ObjectStore> = Arc::new(server.store());
    let path = testsupport::s3::unique_key("objectcache-parquet");
    same_batches_and_no_warm_get(setup_over(inner, path).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_of_one_column_fetches_only_that_columns_pages() {
    let setup = setup().await;
    let reader = ParquetObjectReader::new(setup.counting.clone(), setup.path.clone());
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.unwrap();
    let metadata = builder.metadata().clone();
    let footer_start = metadata
        .row_groups()
        .iter()
        .flat_map(|group| group.columns())
        .map(|column| column.byte_range().0 + column.byte_range().1)
        .max()
        .unwrap();
    let value_ranges: Vec<(u64, u64)> = metadata
        .row_groups()
        .iter()
        .map(|group| group.column(1).byte_range())
        .collect();
    assert_eq!(value_ranges.len(), 4);
    setup.counting.reset();

    let direct = read_all(setup.counting.clone(), &setup.path, Some(&[1])).await;
    setup.counting.reset();
    let cached = read_all(setup.cached.clone(), &setup.path, Some(&[1])).await;
    assert_eq!(cached, direct);
    assert_eq!(cached[0].num_columns(), 1);

    // What a chunk-aligned fetch may add: the chunk around each end of
    // each column chunk, and of the footer.
    let column_bytes: u64 = value_ranges.iter().map(|&(_, len)| len).sum();
    let footer_bytes = setup.file_len - footer_start;
    let slack = (value_ranges.len() as u64 + 1) * 2 * CHUNK_SIZE;
    let fetched = setup.counting.counts().get_bytes;
    assert!(fetched >= column_bytes, "{fetched} < {column_bytes}");
    assert!(
        fetched <= column_bytes + footer_bytes + slack,
        "fetched {fetched} bytes; column {column_bytes}, footer {footer_bytes}, slack {slack}, file {}",
        setup.file_len
    );
    // And the other two columns were not read: they are most of the file.
    assert!(
        fetched < setup.file_len / 2,
        "{fetched} of {}",
        setup.file_len
    );

    // Every byte the inner store sent lies in a chunk that holds some of
    // the projected column or the footer: no chunk of another column alone.
    let stats = setup.cached.stats();
    let useful_chunks: u64 = value_ranges
        .iter()
        .map(|&(start, len)| (start + len - 1) / CHUNK_SIZE - start / CHUNK_SIZE + 1)
        .sum::<u64>()
        + ((setup.file_len - 1) / CHUNK_SIZE - footer_start / CHUNK_SIZE + 1);
    assert!(
        stats.disk.chunk_misses <= useful_chunks,
        "{} chunks fetched, {useful_chunks} hold the column or the footer",
        stats.disk.chunk_misses
    );
}
