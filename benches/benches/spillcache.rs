//! spillcache against its raw limits and its peers.
//!
//! - `spillcache_spill_1mib`: `add` + `wait_for_write` of a 1 MiB value
//!   against the work it cannot avoid, done one after the other: ChaCha20
//!   keystream XOR (rand_chacha) and `pwrite` of the same bytes.
//!   `spillcache_spill_64mib`: the same with 64 MiB values. `ours_shared`
//!   hands the value over with `add_shared` (an `Arc<[u8]>`, no copy).
//! - `spillcache_small_1kib`: add + wait of 1,000 values of 1 KiB
//!   (overwrites, so holes are reused) in a cache holding 100k (and 1M)
//!   values against one holding 10k: the per-entry cost must not grow with
//!   the cache.
//! - `spillcache_get_1mib`: `get_into` / `get` of a spilled 1 MiB value
//!   against the ChaCha20 keystream XOR of 1 MiB in memory.
//! - `spillcache_defrag`: a forced defragmentation of N MiB of live values
//!   (1 MiB each; 64 MiB by default, 256 MiB with `BENCH_FULL=1`) against
//!   `copy_range` (copy_file_range) of the same bytes into a fresh anonymous
//!   file. The file is packed after the first run, so neighbours merge into
//!   few `copy_range` calls.
//! - `spillcache_peers`: write 1,000 values of 4 KiB, wait until they are on
//!   disk, read them all back: ours, cacache's synchronous API, and one file
//!   per entry.
//! - `spillcache_foyer`: foyer's `HybridCache`, the hybrid RAM+disk cache
//!   Rust users pick today, against ours on the same work: insert N values,
//!   wait until they are on disk, read them all back from disk (foyer's
//!   memory tier is emptied first, and its device statistics must show one
//!   disk read per value). 1000 x 4 KiB and 100 x 1 MiB. foyer does not
//!   encrypt; ours does, so the ratio includes the price of ChaCha20. For
//!   1 MiB values `foyer_1m_encrypting` is foyer behind the encryption an
//!   application would add to match ours: each value ChaCha20-encrypted
//!   before `insert` and decrypted after `get`.
//!
//! The sides of the spill, small, get and foyer groups are timed interleaved
//! ([`benches::bench_interleaved`]), so their ratios do not depend on how
//! the machine's load changed between them.
//!
//! Files live in `SPILLCACHE_BENCH_DIR` (default: the system temp dir).

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use benches::{Interleave, Side, bench_interleaved};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use spillcache::SpillCache;

const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(60);

fn bench_dir() -> PathBuf {
    std::env::var_os("SPILLCACHE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn full() -> bool {
    std::env::var_os("BENCH_FULL").is_some()
}

fn measurement_time() -> Duration {
    Duration::from_secs(if full() { 10 } else { 2 })
}

/// splitmix64 bytes: incompressible, deterministic.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// The raw ChaCha20 work of one value: keystream for `src.len()` bytes from
/// rand_chacha, XORed into `dst`.
fn chacha_xor(key: u8, src: &[u8], keystream: &mut [u8], dst: &mut [u8]) {
    let mut rng = ChaCha20Rng::from_seed([key; 32]);
    rng.set_stream(u64::from(key));
    rng.fill_bytes(keystream);
    for ((d, s), k) in dst.iter_mut().zip(src).zip(keystream.iter()) {
        *d = s ^ k;
    }
}

fn group_settings(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time());
}

fn spill_1mib(c: &mut Criterion) {
    spill(c, "spillcache_spill_1mib", MIB);
}

fn spill_64mib(c: &mut Criterion) {
    spill(c, "spillcache_spill_64mib", 64 * MIB);
}

/// How the interleaved groups are timed: both sides of a row alternate
/// ([`bench_interleaved`]), so a change of the machine's load between them
/// does not move their ratio.
fn plan() -> Interleave {
    Interleave {
        warm_up: Duration::from_millis(500),
        measurement: measurement_time(),
        samples: 10,
    }
}

fn spill(c: &mut Criterion, name: &str, len: usize) {
    let dir = bench_dir();
    let value = pseudo_random(len, 1);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(len as u64));

    let cache = SpillCache::new(&dir).expect("cache");
    let shared: std::sync::Arc<[u8]> = value.as_slice().into();
    let file = blockdev::anonymous_file(&dir).expect("file");
    let mut keystream = vec![0u8; len];
    let mut cipher = vec![0u8; len];
    let mut key = 0u8;
    let sides: Vec<Side<'_>> = vec![
        (
            "ours",
            Box::new(|| {
                // One key: each add frees the previous copy, so every write
                // lands at offset 0 like the raw pwrite below.
                cache.add(b"value", black_box(&value)).unwrap();
                assert!(cache.wait_for_write(WAIT).unwrap());
            }),
        ),
        (
            "ours_shared",
            Box::new(|| {
                // The caller's bytes, shared instead of copied.
                cache
                    .add_shared(b"value", black_box(std::sync::Arc::clone(&shared)))
                    .unwrap();
                assert!(cache.wait_for_write(WAIT).unwrap());
            }),
        ),
        (
            "chacha_xor_pwrite",
            Box::new(|| {
                key = key.wrapping_add(1);
                chacha_xor(key, black_box(&value), &mut keystream, &mut cipher);
                file.write_all_at(&cipher, 0).unwrap();
            }),
        ),
    ];
    bench_interleaved(&mut group, &plan(), sides);
    group.finish();
}

/// Whether a run's name filter may select `id`: plain filters as
/// substrings; a filter with regex syntax is assumed to match.
fn criterion_filter_matches(id: &str) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--noise-threshold",
        "--significance-level",
        "--confidence-level",
        "--nresamples",
        "--output-format",
        "--color",
        "--profile-time",
        "--plotting-backend",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            let plain = arg
                .chars()
                .all(|c| c.is_alphanumeric() || "_/-".contains(c));
            return !plain || id.contains(&arg);
        }
    }
    true
}

/// A cache holding `n` values of 1 KiB, all on disk.
fn filled_cache(dir: &Path, n: usize, value: &[u8]) -> SpillCache {
    let cache = SpillCache::new(dir).expect("cache");
    for i in 0..n {
        cache.add(&(i as u64).to_le_bytes(), value).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache
}

fn small_1kib(c: &mut Criterion) {
    const BATCH: usize = 1000;
    let dir = bench_dir();
    let value = pseudo_random(1024, 2);
    let mut group = c.benchmark_group("spillcache_small_1kib");
    group.throughput(Throughput::Elements(BATCH as u64));
    let sizes = [
        ("at_10k", 10_000usize),
        ("at_100k", 100_000),
        ("at_1m", 1_000_000),
    ];
    // A filtered-out group builds no cache (1M takes seconds).
    if !sizes
        .iter()
        .any(|(name, _)| criterion_filter_matches(&format!("spillcache_small_1kib/{name}")))
    {
        return;
    }
    let caches: Vec<(SpillCache, usize)> = sizes
        .iter()
        .map(|&(_, n)| (filled_cache(&dir, n, &value), n))
        .collect();
    // All three timed interleaved: the ratios compare cache sizes, not
    // moments of the machine's load.
    let sides: Vec<Side<'_>> = sizes
        .iter()
        .zip(&caches)
        .map(|(&(name, _), (cache, n))| {
            let (value, n) = (&value, *n);
            let mut next = 0usize;
            let side: Side<'_> = (
                name,
                Box::new(move || {
                    // Overwrite the next BATCH keys, cycling through all n.
                    for _ in 0..BATCH {
                        cache
                            .add(&(next as u64).to_le_bytes(), black_box(value))
                            .unwrap();
                        next = (next + 1) % n;
                    }
                    assert!(cache.wait_for_write(WAIT).unwrap());
                }),
            );
            side
        })
        .collect();
    bench_interleaved(&mut group, &plan(), sides);
    group.finish();
    for (cache, n) in &caches {
        assert_eq!(cache.len(), *n);
    }
}

fn get_1mib(c: &mut Criterion) {
    let dir = bench_dir();
    let value = pseudo_random(MIB, 3);
    let cache = SpillCache::new(&dir).expect("cache");
    cache.add(b"value", &value).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());

    let mut group = c.benchmark_group("spillcache_get_1mib");
    group.throughput(Throughput::Bytes(MIB as u64));
    // Checked before, not after: a filtered run skips the bench body.
    let mut out = Vec::new();
    assert!(cache.get_into(b"value", &mut out).unwrap());
    assert!(out == value);
    let mut keystream = vec![0u8; MIB];
    let mut plain = vec![0u8; MIB];
    let mut key = 0u8;
    let sides: Vec<Side<'_>> = vec![
        (
            "get_into",
            Box::new(|| assert!(cache.get_into(black_box(b"value"), &mut out).unwrap())),
        ),
        (
            "get",
            Box::new(|| drop(black_box(cache.get(black_box(b"value")).unwrap().unwrap()))),
        ),
        (
            "chacha_xor",
            Box::new(|| {
                key = key.wrapping_add(1);
                chacha_xor(key, black_box(&value), &mut keystream, &mut plain);
            }),
        ),
    ];
    bench_interleaved(&mut group, &plan(), sides);
    group.finish();
}

fn defrag(c: &mut Criterion) {
    let dir = bench_dir();
    let mib = if full() { 256 } else { 64 };
    let cache = SpillCache::builder(&dir)
        .defrag_factor(1e9) // only the forced defrags below
        .build()
        .expect("cache");
    for i in 0..mib {
        cache
            .add(&(i as u64).to_le_bytes(), &pseudo_random(MIB, i as u64))
            .unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    let bytes = (mib * MIB) as u64;
    assert_eq!(cache.size_on_disk(), bytes);

    let mut group = c.benchmark_group("spillcache_defrag");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement_time() * 2);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("ours", |b| b.iter(|| assert!(cache.defrag(WAIT).unwrap())));
    assert_eq!(cache.stats().bytes_defragged % bytes, 0);

    let src = cache.current_file();
    group.bench_function("copy_file_range", |b| {
        b.iter(|| {
            let dst = blockdev::anonymous_file(&dir).unwrap();
            assert_eq!(
                blockdev::copy_range(&*src, 0, &dst, 0, bytes).unwrap(),
                bytes
            );
            dst
        })
    });
    group.finish();
}

/// A fresh directory under the bench dir, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = bench_dir().join(format!(
            "spillcache-bench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn peers(c: &mut Criterion) {
    const ENTRIES: usize = 1000;
    let values: Vec<Vec<u8>> = (0..ENTRIES)
        .map(|i| pseudo_random(4096, 100 + i as u64))
        .collect();
    let keys: Vec<String> = (0..ENTRIES).map(|i| format!("entry-{i}")).collect();
    let mut group = c.benchmark_group("spillcache_peers");
    group_settings(&mut group);
    group.throughput(Throughput::Elements(ENTRIES as u64));

    group.bench_function("ours", |b| {
        b.iter_batched(
            || ScratchDir::new("ours"),
            |dir| {
                let cache = SpillCache::new(&dir.0).unwrap();
                for (key, value) in keys.iter().zip(&values) {
                    cache.add(key.as_bytes(), value).unwrap();
                }
                assert!(cache.wait_for_write(WAIT).unwrap());
                let mut buf = Vec::new();
                for key in &keys {
                    assert!(cache.get_into(key.as_bytes(), &mut buf).unwrap());
                    black_box(&buf);
                }
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("cacache", |b| {
        b.iter_batched(
            || ScratchDir::new("cacache"),
            |dir| {
                for (key, value) in keys.iter().zip(&values) {
                    cacache::write_sync(&dir.0, key, value).unwrap();
                }
                for key in &keys {
                    black_box(cacache::read_sync(&dir.0, key).unwrap());
                }
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("file_per_entry", |b| {
        b.iter_batched(
            || ScratchDir::new("files"),
            |dir| {
                for (key, value) in keys.iter().zip(&values) {
                    std::fs::write(dir.0.join(key), value).unwrap();
                }
                for key in &keys {
                    black_box(std::fs::read(dir.0.join(key)).unwrap());
                }
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The foyer workload against ours: both caches are built once, and every
/// iteration overwrites the same keys, waits for the disk, and reads them back
/// from the disk.
fn foyer_peer(c: &mut Criterion) {
    use foyer::{
        BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
        HybridCachePolicy,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("spillcache_foyer");

    for (name, entries, len) in [("4k", 1000usize, 4096usize), ("1m", 100, MIB)] {
        let values: Vec<Vec<u8>> = (0..entries)
            .map(|i| pseudo_random(len, 1000 + i as u64))
            .collect();
        let bytes = (entries * len) as u64;
        group.throughput(Throughput::Bytes(bytes));

        let ours_dir = ScratchDir::new("foyer-ours");
        let cache = SpillCache::new(&ours_dir.0).unwrap();
        let foyer_dir = ScratchDir::new("foyer");
        // Room for every value twice over, and queues that take a whole
        // batch: foyer drops insertions past its submit queue, and a dropped
        // value would make its side of the comparison cheaper.
        let capacity = (4 * bytes).max(64 * MIB as u64) as usize;
        let hybrid: HybridCache<u64, Vec<u8>> = runtime.block_on(async {
            let device = FsDeviceBuilder::new(&foyer_dir.0)
                .with_capacity(capacity)
                .build()
                .expect("foyer device");
            HybridCacheBuilder::new()
                .with_policy(HybridCachePolicy::WriteOnInsertion)
                .memory(len / 2) // holds no value: reads must come from disk
                .with_weighter(|_, value: &Vec<u8>| value.len())
                .storage()
                .with_engine_config(
                    BlockEngineConfig::new(device)
                        .with_block_size(16 * MIB)
                        .with_buffer_pool_size(capacity / 2)
                        .with_submit_queue_size_threshold(capacity / 2),
                )
                .build()
                .await
                .expect("foyer hybrid cache")
        });
        let mut buf = Vec::new();
        let ours_id = format!("ours_{name}");
        let foyer_id = format!("foyer_{name}");
        let sides: Vec<Side<'_>> = vec![
            (
                &ours_id,
                Box::new(|| {
                    for (i, value) in values.iter().enumerate() {
                        cache.add(&(i as u64).to_le_bytes(), value).unwrap();
                    }
                    assert!(cache.wait_for_write(WAIT).unwrap());
                    for i in 0..entries {
                        assert!(cache.get_into(&(i as u64).to_le_bytes(), &mut buf).unwrap());
                        black_box(&buf);
                    }
                }),
            ),
            (
                &foyer_id,
                Box::new(|| {
                    runtime.block_on(async {
                        for (i, value) in values.iter().enumerate() {
                            hybrid.insert(i as u64, value.clone());
                        }
                        hybrid.storage().wait().await;
                        hybrid.memory().clear();
                        let reads_before = hybrid.statistics().disk_read_ios();
                        for i in 0..entries {
                            let entry = hybrid.get(&(i as u64)).await.unwrap();
                            black_box(entry.expect("foyer lost a value").value().len());
                        }
                        let disk_reads = hybrid.statistics().disk_read_ios() - reads_before;
                        assert!(
                            disk_reads >= entries,
                            "foyer served {entries} gets with {disk_reads} disk reads"
                        );
                    })
                }),
            ),
        ];
        // For 1 MiB values, also foyer behind the encryption an application
        // would need to match ours: each value ChaCha20-encrypted (the same
        // rand_chacha keystream as the other peers) before `insert` and
        // decrypted after `get`, on the calling thread.
        let foyer_encrypting_id = format!("foyer_{name}_encrypting");
        let mut keystream = vec![0u8; len];
        let mut plain = Vec::new();
        let mut sides = sides;
        if len >= MIB {
            sides.push((
                &foyer_encrypting_id,
                Box::new(|| {
                    runtime.block_on(async {
                        for (i, value) in values.iter().enumerate() {
                            let mut sealed = vec![0u8; value.len()];
                            chacha_xor(i as u8, value, &mut keystream, &mut sealed);
                            hybrid.insert(i as u64, sealed);
                        }
                        hybrid.storage().wait().await;
                        hybrid.memory().clear();
                        let reads_before = hybrid.statistics().disk_read_ios();
                        for i in 0..entries {
                            let entry = hybrid.get(&(i as u64)).await.unwrap();
                            let sealed = entry.expect("foyer lost a value");
                            plain.resize(sealed.value().len(), 0);
                            chacha_xor(i as u8, sealed.value(), &mut keystream, &mut plain);
                            black_box(&plain);
                        }
                        let disk_reads = hybrid.statistics().disk_read_ios() - reads_before;
                        assert!(disk_reads >= entries, "foyer read {disk_reads} times");
                    })
                }),
            ));
        }
        bench_interleaved(&mut group, &plan(), sides);
        assert_eq!(cache.num_cached_in_ram(), 0, "ours must read from disk");
        drop(cache);
        runtime.block_on(hybrid.close()).unwrap();
    }
    group.finish();
}

criterion_group!(
    benches,
    spill_1mib,
    spill_64mib,
    small_1kib,
    get_1mib,
    defrag,
    peers,
    foyer_peer
);
criterion_main!(benches);
