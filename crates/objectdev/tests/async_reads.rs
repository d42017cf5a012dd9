//! The async face: reads awaited from a runtime's task, with no thread per
//! read, and vectored reads merged as object_store's `get_ranges` merges.

mod support;

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use objectdev::{CountingStore, Error, MIN_PART_SIZE, ObjectDevice};
use support::{noise, upload};

/// A device (64 KiB parts) over `bytes` in a counting in-memory store,
/// opened off the runtime (opening blocks).
async fn device(bytes: Vec<u8>) -> (Arc<CountingStore>, ObjectDevice) {
    tokio::task::spawn_blocking(move || {
        let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
        let path = Path::from("async");
        upload(counting.as_ref(), &path, &bytes);
        let device = ObjectDevice::new(counting.clone(), path)
            .unwrap()
            .with_part_size(MIN_PART_SIZE)
            .unwrap();
        counting.reset();
        (counting, device)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn reads_are_awaited_inside_the_runtime() {
    let bytes = noise(5, 300_000);
    let (counting, device) = device(bytes.clone()).await;
    let mut buf = vec![0u8; 200_000];
    let n = device.read_at_async(50_000, &mut buf).await.unwrap();
    assert_eq!(n, 200_000);
    assert!(buf == bytes[50_000..250_000]);
    assert_eq!(counting.counts().gets, 4, "200 000 bytes in 64 KiB parts");
    // Past the end: short, then nothing, with no request.
    assert_eq!(device.read_at_async(299_990, &mut buf).await.unwrap(), 10);
    assert_eq!(device.read_at_async(300_000, &mut buf).await.unwrap(), 0);
    assert_eq!(counting.counts().gets, 5);
}

#[tokio::test(flavor = "current_thread")]
async fn read_ranges_merges_near_ranges_like_get_ranges() {
    let bytes = noise(6, 4 << 20);
    let (counting, device) = device(bytes.clone()).await;
    // Two ranges 10 bytes apart and one 3 MiB further: two merged GETs.
    let ranges = [3_000_000..3_000_100, 10..20, 30..40];
    let parts = device.read_ranges(&ranges).await.unwrap();
    for (range, part) in ranges.iter().zip(&parts) {
        assert!(part[..] == bytes[range.start as usize..range.end as usize]);
    }
    assert_eq!(counting.counts().gets, 2);

    let err = device
        .read_ranges(&[0..10, (4 << 20) - 1..(4 << 20) + 1])
        .await;
    assert!(matches!(err, Err(Error::InvalidRange { .. })), "{err:?}");
    assert_eq!(counting.counts().gets, 2, "a bad range fetches nothing");
}
