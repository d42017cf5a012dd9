//! A device over an object whose size and ETag the caller already knows:
//! no HEAD, and only that version is ever read.

use std::sync::Arc;

use blockdev::ReadAt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objectdev::{CountingStore, Error, ObjectDevice};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_device_from_known_metadata_makes_no_head_and_refuses_a_replaced_object() {
    let runtime = runtime();
    let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
    let path = Path::from("k");
    runtime
        .block_on(counting.put(&path, vec![1u8; 1000].into()))
        .unwrap();
    let meta = runtime.block_on(counting.head(&path)).unwrap();
    counting.reset();
    let device = ObjectDevice::builder()
        .runtime(runtime.handle().clone())
        .build_from_meta(counting.clone(), meta)
        .unwrap();
    let mut buf = [0u8; 10];
    device.read_exact_at(990, &mut buf).unwrap();
    assert_eq!(buf, [1; 10]);
    assert_eq!((counting.counts().heads, counting.counts().gets), (0, 1));

    runtime
        .block_on(counting.put(&path, vec![2u8; 1000].into()))
        .unwrap();
    let err = device.read_exact_at(0, &mut buf).unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(e) if e.is_object_changed()),
        "{err}"
    );
    assert_eq!(buf, [1; 10], "no byte of the new version");
}

#[test]
fn metadata_of_another_version_than_the_one_asked_for_is_refused() {
    let runtime = runtime();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let path = Path::from("k");
    runtime
        .block_on(store.put(&path, vec![1u8; 4].into()))
        .unwrap();
    let meta = runtime.block_on(store.head(&path)).unwrap();
    let err = ObjectDevice::builder()
        .runtime(runtime.handle().clone())
        .version("v7")
        .build_from_meta(store, meta)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "version",
                ..
            }
        ),
        "{err}"
    );
}
