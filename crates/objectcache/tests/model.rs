//! proptest: any sequence of writes, deletes, copies, renames and reads
//! through the caching store (and writes behind its back followed by
//! `invalidate`) reads what a map of location to bytes says, with budgets
//! small enough that pages and chunks are evicted all the time.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objectcache::CachingStore;
use proptest::prelude::*;

const KEYS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: usize,
        seed: u8,
        len: usize,
    },
    PutBehind {
        key: usize,
        seed: u8,
        len: usize,
    },
    Delete {
        key: usize,
    },
    Copy {
        from: usize,
        to: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
    GetRange {
        key: usize,
        start: usize,
        len: usize,
    },
    GetRanges {
        key: usize,
        ranges: Vec<(usize, usize)>,
    },
    Head {
        key: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let len = 0usize..40_000;
    prop_oneof![
        (key.clone(), any::<u8>(), len.clone()).prop_map(|(key, seed, len)| Op::Put {
            key,
            seed,
            len
        }),
        (key.clone(), any::<u8>(), len).prop_map(|(key, seed, len)| Op::PutBehind {
            key,
            seed,
            len
        }),
        key.clone().prop_map(|key| Op::Delete { key }),
        // Onto itself a rename deletes (copy, then delete): not modelled.
        (key.clone(), 1..KEYS).prop_map(|(from, step)| Op::Copy {
            from,
            to: (from + step) % KEYS
        }),
        (key.clone(), 1..KEYS).prop_map(|(from, step)| Op::Rename {
            from,
            to: (from + step) % KEYS
        }),
        (key.clone(), 0usize..40_000, 1usize..20_000).prop_map(|(key, start, len)| Op::GetRange {
            key,
            start,
            len
        }),
        (
            key.clone(),
            prop::collection::vec((0usize..40_000, 1usize..9_000), 1..4)
        )
            .prop_map(|(key, ranges)| Op::GetRanges { key, ranges }),
        key.prop_map(|key| Op::Head { key }),
    ]
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i / 7) as u8)).collect()
}

fn path(key: usize) -> Path {
    Path::from(format!("k{key}"))
}

/// What a read of `range` of `object` gives: the bytes, or `None` when the
/// range is not inside it (the store's error).
fn expected(object: &[u8], range: Range<usize>) -> Option<Vec<u8>> {
    (range.start < range.end && range.end <= object.len()).then(|| object[range].to_vec())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let inner = Arc::new(InMemory::new());
    let cached = CachingStore::builder()
        .page_size(1 << 10)
        .chunk_size(4 << 10)
        .ram_bytes(16 << 10)
        .disk_bytes(32 << 10)
        .build(inner.clone())
        .unwrap();
    let mut model: HashMap<usize, Vec<u8>> = HashMap::new();
    for op in ops {
        match op {
            Op::Put { key, seed, len } => {
                cached
                    .put(&path(key), PutPayload::from(bytes(seed, len)))
                    .await
                    .unwrap();
                model.insert(key, bytes(seed, len));
            }
            Op::PutBehind { key, seed, len } => {
                inner
                    .put(&path(key), PutPayload::from(bytes(seed, len)))
                    .await
                    .unwrap();
                cached.invalidate(&path(key));
                model.insert(key, bytes(seed, len));
            }
            Op::Delete { key } => {
                cached.delete(&path(key)).await.unwrap();
                model.remove(&key);
            }
            Op::Copy { from, to } => {
                let result = cached.copy(&path(from), &path(to)).await;
                prop_assert_eq!(result.is_ok(), model.contains_key(&from));
                if let Some(object) = model.get(&from).cloned() {
                    model.insert(to, object);
                }
            }
            Op::Rename { from, to } => {
                let result = cached.rename(&path(from), &path(to)).await;
                prop_assert_eq!(result.is_ok(), model.contains_key(&from));
                if let Some(object) = model.remove(&from) {
                    model.insert(to, object);
                }
            }
            Op::GetRange { key, start, len } => {
                let range = start..start + len;
                let got = cached
                    .get_range(&path(key), range.start as u64..range.end as u64)
                    .await;
                let want = model.get(&key).map(|object| {
                    // get_range clamps an end past the object, as the store does.
                    let end = range.end.min(object.len());
                    expected(object, range.start..end)
                });
                match want {
                    Some(Some(want)) => prop_assert_eq!(got.unwrap().to_vec(), want),
                    _ => prop_assert!(got.is_err()),
                }
            }
            Op::GetRanges { key, ranges } => {
                let ranges: Vec<Range<u64>> = ranges
                    .into_iter()
                    .map(|(start, len)| start as u64..(start + len) as u64)
                    .collect();
                let got = cached.get_ranges(&path(key), &ranges).await;
                let want: Option<Vec<Vec<u8>>> = model.get(&key).and_then(|object| {
                    ranges
                        .iter()
                        .map(|r| expected(object, r.start as usize..r.end as usize))
                        .collect()
                });
                match want {
                    Some(want) => {
                        let got: Vec<Vec<u8>> = got.unwrap().iter().map(|b| b.to_vec()).collect();
                        prop_assert_eq!(got, want);
                    }
                    // Ranges outside the object are the inner store's to judge.
                    None => {
                        let direct = inner.get_ranges(&path(key), &ranges).await;
                        prop_assert_eq!(
                            got.map_err(|e| e.to_string()),
                            direct.map_err(|e| e.to_string())
                        );
                    }
                }
            }
            Op::Head { key } => {
                let got = cached.head(&path(key)).await;
                match model.get(&key) {
                    Some(object) => prop_assert_eq!(got.unwrap().size, object.len() as u64),
                    None => prop_assert!(got.is_err()),
                }
            }
        }
        let stats = cached.stats();
        prop_assert!(stats.ram.resident_pages <= 16);
        prop_assert!(stats.disk.resident_bytes <= 32 << 10);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_through_the_cache_agree_with_a_map_of_objects(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
