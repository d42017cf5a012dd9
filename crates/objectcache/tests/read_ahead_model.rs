//! proptest: readers that scan objects in consecutive requests (so the
//! cache reads ahead), jump, and see the objects replaced through the
//! cache or behind its back, read what a map of location to bytes says.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use objectcache::CachingStore;
use proptest::prelude::*;

const KEYS: usize = 2;
const LEN: usize = 1 << 20;

#[derive(Clone, Debug)]
enum Op {
    /// Reads `len` bytes from where the last read of `key` ended.
    ReadNext {
        key: usize,
        len: usize,
    },
    /// The next read of `key` starts at `to`.
    Jump {
        key: usize,
        to: usize,
    },
    Put {
        key: usize,
        seed: u8,
    },
    /// Another writer replaces the object; the cache is told.
    PutBehind {
        key: usize,
        seed: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    prop_oneof![
        6 => (key.clone(), 1usize..(128 << 10)).prop_map(|(key, len)| Op::ReadNext { key, len }),
        1 => (key.clone(), 0..LEN).prop_map(|(key, to)| Op::Jump { key, to }),
        1 => (key.clone(), any::<u8>()).prop_map(|(key, seed)| Op::Put { key, seed }),
        1 => (key, any::<u8>()).prop_map(|(key, seed)| Op::PutBehind { key, seed }),
    ]
}

fn bytes(seed: u8) -> Vec<u8> {
    (0..LEN)
        .map(|i| seed.wrapping_mul(31) ^ (i / 7) as u8)
        .collect()
}

fn path(key: usize) -> Path {
    Path::from(format!("k{key}"))
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let inner = Arc::new(InMemory::new());
    let cached = CachingStore::builder()
        .page_size(4 << 10)
        .chunk_size(16 << 10)
        .ram_bytes(2 << 20)
        .read_ahead_bytes(1 << 20)
        .disk_bytes(1 << 20)
        .build(inner.clone())
        .unwrap();
    let mut model: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut next = [0usize; KEYS];
    for key in 0..KEYS {
        inner
            .put(&path(key), PutPayload::from(bytes(0)))
            .await
            .unwrap();
        model.insert(key, bytes(0));
    }
    for op in ops {
        match op {
            Op::ReadNext { key, len } => {
                let start = next[key];
                let end = (start + len).min(LEN);
                if start == end {
                    next[key] = 0;
                    continue;
                }
                let got = cached
                    .get_range(&path(key), start as u64..end as u64)
                    .await
                    .unwrap();
                prop_assert!(got == model[&key][start..end], "{key} {start}..{end}");
                next[key] = end;
            }
            Op::Jump { key, to } => next[key] = to,
            Op::Put { key, seed } => {
                cached
                    .put(&path(key), PutPayload::from(bytes(seed)))
                    .await
                    .unwrap();
                model.insert(key, bytes(seed));
            }
            Op::PutBehind { key, seed } => {
                inner
                    .put(&path(key), PutPayload::from(bytes(seed)))
                    .await
                    .unwrap();
                cached.invalidate(&path(key));
                model.insert(key, bytes(seed));
            }
        }
        let held = cached.stats().read_ahead.buffered_bytes;
        prop_assert!(held <= 1 << 20, "{held} bytes held ahead");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn scans_through_the_cache_agree_with_a_map_of_objects(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
