//! Concurrency stress: threads add, overwrite, remove and get over a small
//! key space while the writer spills and defragments often. Every value is
//! tagged with its key and version, so a get can tell a wrong or stale value.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{TempDir, WAIT};
use spillcache::SpillCache;

/// Operations per run, split between the threads.
const OPS: usize = 100_000;
const KEYS: usize = 32;
/// Defragmentations a run must see while the threads work.
const MIN_DEFRAGS: u64 = 10;
/// Versions announced per key; 0 means "removed".
type Announced = Vec<AtomicU64>;

/// The value of `key` at `version`: a header naming both, then bytes derived
/// from them, 16..=1040 bytes long.
fn value(key: usize, version: u64) -> Vec<u8> {
    let len = 16 + (version as usize * 7919 + key * 131) % 1025;
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&(key as u64).to_le_bytes());
    bytes.extend_from_slice(&version.to_le_bytes());
    let seed = version.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key as u64;
    bytes.extend((16..len).map(|i| (seed >> (i % 57)) as u8 ^ i as u8));
    bytes
}

/// Parses and fully checks a value read for `key`; returns its version.
fn version_of(key: usize, bytes: &[u8]) -> u64 {
    assert!(bytes.len() >= 16, "value for key {key} too short");
    let tagged_key = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let version = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert_eq!(tagged_key, key as u64, "a value of another key");
    assert!(
        bytes == value(key, version),
        "value bytes of key {key} v{version} damaged"
    );
    version
}

/// Small xorshift, so each thread's op sequence is fixed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Each thread owns the keys `k` with `k % threads == thread`: for them it
/// knows the exact current value. Keys of other threads must read as `None`
/// or a value of that key whose version was announced (the owner announces a
/// version before adding it), never older than one this thread saw before.
fn worker(cache: &SpillCache, announced: &Announced, thread: usize, threads: usize) {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((thread as u64 + 1) * 0x9E37));
    let mut own: Vec<Option<u64>> = vec![None; KEYS];
    let mut last_seen = vec![0u64; KEYS];
    let mut next_version = 1u64;
    let mut buf = Vec::new();
    // The writer's share of a loaded machine varies: past the planned ops,
    // go on (up to 20 times as many) until it has defragmented often, so
    // that the defrags surely raced with the reads and writes.
    for done in 0.. {
        if done >= OPS / threads
            && (cache.stats().defrags >= MIN_DEFRAGS || done >= 20 * OPS / threads)
        {
            break;
        }
        let r = rng.next();
        let key = (r >> 8) as usize % KEYS;
        let key_bytes = [key as u8];
        let owner = key % threads == thread;
        match r % 10 {
            0..=3 if owner => {
                let version = ((thread as u64) << 48) | next_version;
                next_version += 1;
                announced[key].fetch_max(version, Ordering::SeqCst);
                cache.add(&key_bytes, &value(key, version)).unwrap();
                own[key] = Some(version);
            }
            4 if owner => {
                let removed = cache.remove(&key_bytes);
                assert_eq!(removed, own[key].is_some(), "remove of own key {key}");
                own[key] = None;
            }
            _ => {
                let found = cache.get_into(&key_bytes, &mut buf).unwrap();
                if owner {
                    let got = found.then(|| version_of(key, &buf));
                    assert_eq!(got, own[key], "own key {key}");
                } else if found {
                    let version = version_of(key, &buf);
                    assert!(
                        version <= announced[key].load(Ordering::SeqCst),
                        "key {key} v{version} was never added"
                    );
                    assert!(version >= last_seen[key], "key {key} went back in time");
                    last_seen[key] = version;
                }
            }
        }
    }
}

#[test]
fn two_threads_never_see_wrong_values() {
    stress(2);
}

#[test]
fn eight_threads_never_see_wrong_values() {
    stress(8);
}

fn stress(threads: usize) {
    let dir = TempDir::new("stress");
    let cache = Arc::new(
        SpillCache::builder(dir.path())
            .defrag_factor(1.25)
            .small_hole_threshold(32)
            .build()
            .unwrap(),
    );
    let announced: Arc<Announced> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let cache = Arc::clone(&cache);
            let announced = Arc::clone(&announced);
            std::thread::spawn(move || worker(&cache, &announced, thread, threads))
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.check_invariants().unwrap();
    let stats = cache.stats();
    assert!(
        stats.defrags >= MIN_DEFRAGS,
        "defragmented often: {stats:?}"
    );
    assert_eq!(stats.write_errors, 0);
    for key in 0..KEYS {
        if let Some(bytes) = cache.get(&[key as u8]).unwrap() {
            version_of(key, &bytes);
        }
    }
    assert!(cache.defrag(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), {
        let mut total = 0;
        for key in 0..KEYS {
            total += cache
                .get(&[key as u8])
                .unwrap()
                .map_or(0, |v| v.len() as u64);
        }
        total
    });
}

/// Large values of one length (whose buffers the cache recycles, and which
/// are read on two threads) on four threads: two overwrite keys with new
/// versions, two read them, whether in RAM or on disk; every read is a
/// whole version of its own key.
#[test]
fn large_values_of_one_length_never_mix_while_buffers_are_recycled() {
    const LEN: usize = 600 << 10;
    const LARGE_KEYS: usize = 3;
    let large = |key: usize, version: u64| -> Vec<u8> {
        let mut bytes = vec![(key as u8) ^ (version as u8).wrapping_mul(31); LEN];
        bytes[..8].copy_from_slice(&(key as u64).to_le_bytes());
        bytes[8..16].copy_from_slice(&version.to_le_bytes());
        bytes
    };
    let dir = TempDir::new("recycle");
    let cache = SpillCache::new(dir.path()).unwrap();
    for key in 0..LARGE_KEYS {
        cache.add(&[key as u8], &large(key, 0)).unwrap();
    }
    std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let (cache, large) = (&cache, &large);
            scope.spawn(move || {
                for version in 1..=40u64 {
                    let key = (version as usize + writer as usize) % LARGE_KEYS;
                    cache
                        .add(&[key as u8], &large(key, version * 2 + writer))
                        .unwrap();
                    if version % 8 == 0 {
                        assert!(cache.wait_for_write(WAIT).unwrap());
                    }
                }
            });
        }
        for _ in 0..2 {
            let (cache, large) = (&cache, &large);
            scope.spawn(move || {
                let mut buf = Vec::new();
                for i in 0..200 {
                    let key = i % LARGE_KEYS;
                    assert!(cache.get_into(&[key as u8], &mut buf).unwrap());
                    let version = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                    assert!(buf == large(key, version), "key {key}: a mixed value");
                }
            });
        }
    });
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.check_invariants().unwrap();
}

/// A value added with `add_shared` is the caller's buffer, not a copy: the
/// caller's `Arc` stays unchanged while the cache writes it, and while its
/// buffer-recycling takes later values of the same length.
#[test]
fn a_shared_value_is_never_recycled_while_its_caller_holds_it() {
    const LEN: usize = 512 << 10;
    let dir = TempDir::new("shared");
    let cache = SpillCache::new(dir.path()).unwrap();
    let frame: Arc<[u8]> = vec![0x11u8; LEN].into();
    cache.add_shared(b"frame", Arc::clone(&frame)).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    for round in 0..4u8 {
        cache.add(b"other", &vec![round; LEN]).unwrap();
        assert!(cache.wait_for_write(WAIT).unwrap());
        assert_eq!(cache.get(b"other").unwrap(), Some(vec![round; LEN]));
    }
    assert!(frame.iter().all(|&b| b == 0x11), "the caller's bytes");
    assert_eq!(cache.get(b"frame").unwrap().as_deref(), Some(&frame[..]));
    // Dropped by the caller, the written value's buffer may be recycled;
    // the value on disk is unaffected.
    drop(frame);
    cache
        .add_shared(b"frame", vec![0x22u8; LEN].into())
        .unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.add(b"next", &vec![0x33u8; LEN]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"frame").unwrap(), Some(vec![0x22u8; LEN]));
    assert_eq!(cache.get(b"next").unwrap(), Some(vec![0x33u8; LEN]));
    assert!(matches!(
        cache.add_shared(&[0u8; 1000], vec![1u8].into()),
        Err(spillcache::Error::KeyTooLong { .. })
    ));
}
