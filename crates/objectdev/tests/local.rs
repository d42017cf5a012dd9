//! `ObjectDevice` over the stores that need no server (memory, local
//! files): reads agree with the bytes for every position, length and part
//! size; URLs; the runtime rules.

mod support;

use std::io;
use std::sync::Arc;

use blockdev::ReadAt;
use object_store::memory::InMemory;
use object_store::path::Path;
use objectdev::{CountingStore, Error, MIN_PART_SIZE, ObjectDevice};
use proptest::prelude::*;
use support::{TempDir, noise, upload};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The model is the object's bytes: `read_at` returns what a slice
    /// read would, with one GET per part of the clamped length.
    #[test]
    fn reads_agree_with_the_bytes(
        size in 0usize..400_000,
        part_size in MIN_PART_SIZE..150_000,
        reads in prop::collection::vec((0u64..420_000, 0usize..300_000), 1..12),
    ) {
        let bytes = noise(size as u64, size);
        let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
        let path = Path::from("model");
        upload(counting.as_ref(), &path, &bytes);
        let device = ObjectDevice::new(counting.clone(), path).unwrap().with_part_size(part_size).unwrap();
        prop_assert_eq!(device.size().unwrap(), size as u64);
        for (pos, len) in reads {
            let before = counting.counts().gets;
            let mut buf = vec![0u8; len];
            let n = device.read_at(pos, &mut buf).unwrap();
            let want = bytes.get(pos as usize..).map_or(&[][..], |tail| &tail[..tail.len().min(len)]);
            prop_assert_eq!(&buf[..n], want);
            prop_assert_eq!(counting.counts().gets - before, (n as u64).div_ceil(part_size));
        }
    }
}

#[test]
fn file_and_memory_urls_open() {
    let dir = TempDir::new("file-url");
    let file = dir.path().join("data.bin");
    std::fs::write(&file, noise(9, 3000)).unwrap();
    let device = ObjectDevice::open(&format!("file://{}", file.display())).unwrap();
    let mut buf = vec![0u8; 3000];
    device.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(buf, noise(9, 3000));

    // A memory:// URL names a fresh, empty store.
    let err = ObjectDevice::open("memory:///nothing").unwrap_err();
    assert!(
        matches!(err, Error::Store(object_store::Error::NotFound { .. })),
        "{err}"
    );
}

#[test]
fn bad_urls_and_options_are_errors() {
    for url in ["", "no-scheme", "gopher://host/key"] {
        let err = ObjectDevice::open(url).unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
    }
    let missing = ObjectDevice::open("file:///objectdev/no/such/file").unwrap_err();
    let io: io::Error = missing.into();
    assert_eq!(io.kind(), io::ErrorKind::NotFound, "{io}");
}

#[test]
fn a_read_inside_a_runtime_is_refused_not_a_panic() {
    let device = ObjectDevice::from_bytes(vec![1; 10]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime
        .block_on(async { device.read_at(0, &mut [0u8; 4]) })
        .unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::InsideRuntime)),
        "{err}"
    );
    // From a plain thread it works, and dropping inside a runtime is fine.
    assert_eq!(device.read_at(0, &mut [0u8; 4]).unwrap(), 4);
    runtime.block_on(async move { drop(device) });
}

#[test]
fn a_borrowed_runtime_serves_reads_from_plain_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(InMemory::new());
    let path = Path::from("shared");
    upload(store.as_ref(), &path, &noise(11, 1_000_000));
    let device = Arc::new(
        ObjectDevice::with_handle(store, path, runtime.handle().clone())
            .unwrap()
            .with_part_size(MIN_PART_SIZE)
            .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let device = Arc::clone(&device);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 300_000];
                device.read_exact_at(t * 200_000, &mut buf).unwrap();
                buf
            })
        })
        .collect();
    let bytes = noise(11, 1_000_000);
    for (t, thread) in threads.into_iter().enumerate() {
        assert!(thread.join().unwrap() == bytes[t * 200_000..t * 200_000 + 300_000]);
    }
}
