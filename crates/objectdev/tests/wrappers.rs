//! `CountingStore` and `LatencyStore` pass every request through to the
//! store they wrap: each once, and the ones object_store builds on others
//! (`get_ranges`, `rename`, `list_with_offset`) as those others.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objectdev::{CountingStore, LatencyStore, RequestCounts};

/// One of each request a user of `ObjectStore` makes, through `store`.
async fn every_request(store: &dyn ObjectStore) -> object_store::Result<()> {
    let (a, b, c, d) = ("a".into(), "b".into(), "c".into(), "d".into());
    store.put(&a, vec![7u8; 10].into()).await?;
    let mut upload = store.put_multipart(&b).await?;
    upload.put_part(vec![8u8; 5].into()).await?;
    upload.complete().await?;
    assert_eq!(store.head(&a).await?.size, 10);
    assert_eq!(store.get_range(&a, 2..6).await?.len(), 4);
    // Close enough to be merged into one ranged GET of 0..8.
    let parts = store.get_ranges(&a, &[0..2, 5..8]).await?;
    assert_eq!((parts[0].len(), parts[1].len()), (2, 3));
    assert_eq!(store.get(&b).await?.bytes().await?.len(), 5);
    assert_eq!(store.list(None).try_collect::<Vec<_>>().await?.len(), 2);
    let after_a = store.list_with_offset(None, &a);
    assert_eq!(after_a.try_collect::<Vec<_>>().await?.len(), 1);
    assert_eq!(store.list_with_delimiter(None).await?.objects.len(), 2);
    store.copy(&a, &c).await?;
    store.rename(&c, &d).await?;
    store.delete(&b).await?;
    let left: Vec<Path> = store
        .list(None)
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    assert_eq!(left.len(), 2);
    assert!(left.contains(&a) && left.contains(&d));
    Ok(())
}

/// What [`every_request`] asks of the store below it.
fn every_request_counts() -> RequestCounts {
    let mut counts = RequestCounts::default();
    counts.heads = 1;
    // get_range, the merged get_ranges, get.
    counts.gets = 3;
    counts.get_bytes = 4 + 8 + 5;
    // put, put_multipart, list, list_with_offset (a list), list_with_delimiter,
    // copy, rename (a copy and a delete), delete, the last list.
    counts.other = 10;
    counts.max_gets_in_flight = 1;
    counts
}

#[tokio::test]
async fn a_counting_store_counts_each_request_once_and_every_one_but_gets_and_heads_as_other()
-> object_store::Result<()> {
    let counting = CountingStore::new(Arc::new(InMemory::new()));
    every_request(&counting).await?;
    assert_eq!(counting.counts(), every_request_counts());
    Ok(())
}

#[tokio::test]
async fn a_latency_store_passes_each_request_once_to_the_store_it_wraps() -> object_store::Result<()>
{
    let below = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
    let latency = LatencyStore::new(below.clone(), Duration::ZERO, u64::MAX).expect("valid");
    every_request(&latency).await?;
    assert_eq!(below.counts(), every_request_counts());
    Ok(())
}
