//! Blocking reads from async programs: allowed wherever tokio allows
//! blocking, refused (an error, never a panic or a hang) on the threads
//! that run async tasks, and on runtimes the device cannot use.

mod support;

use std::sync::Arc;

use blockdev::ReadAt;
use object_store::memory::InMemory;
use object_store::path::Path;
use objectdev::{Error, ObjectDevice};
use support::{noise, upload};
use testsupport::s3::S3Server;
use tokio::runtime::{Builder, Runtime};

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn read(device: &ObjectDevice) -> Result<Vec<u8>, std::io::Error> {
    let mut buf = vec![0u8; 5];
    device.read_exact_at(2, &mut buf).map(|()| buf)
}

fn is_inside_runtime(result: &Result<Vec<u8>, std::io::Error>) -> bool {
    matches!(
        result.as_ref().map_err(Error::from_io),
        Err(Some(Error::InsideRuntime))
    )
}

#[test]
fn blocking_reads_work_from_spawn_blocking_block_in_place_and_entered_threads() {
    let runtime = multi_thread();
    let device = Arc::new(ObjectDevice::from_bytes(b"0123456789".to_vec()).unwrap());
    let want = b"23456".to_vec();

    let d = Arc::clone(&device);
    let from_blocking = runtime.block_on(runtime.spawn_blocking(move || read(&d)));
    assert_eq!(from_blocking.unwrap().unwrap(), want, "spawn_blocking");

    let d = Arc::clone(&device);
    let in_place = runtime.spawn(async move { tokio::task::block_in_place(|| read(&d)) });
    assert_eq!(
        runtime.block_on(in_place).unwrap().unwrap(),
        want,
        "block_in_place"
    );

    let entered = {
        let _guard = runtime.enter();
        read(&device)
    };
    assert_eq!(entered.unwrap(), want, "inside Runtime::enter");

    // A worker thread is still refused, with an error.
    let d = Arc::clone(&device);
    let on_worker = runtime
        .block_on(runtime.spawn(async move { read(&d) }))
        .unwrap();
    assert!(is_inside_runtime(&on_worker), "{on_worker:?}");
    let in_block_on = runtime.block_on(async { read(&device) });
    assert!(is_inside_runtime(&in_block_on), "{in_block_on:?}");
}

#[test]
fn a_current_thread_handle_is_refused_not_a_hang() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    let store = Arc::new(InMemory::new());
    let path = Path::from("k");
    upload(store.as_ref(), &path, b"abc");
    let err = ObjectDevice::with_handle(store, path, runtime.handle().clone()).unwrap_err();
    assert!(matches!(err, Error::UnusableRuntime { .. }), "{err}");
}

#[test]
fn a_read_after_the_borrowed_runtime_is_dropped_is_an_error() {
    let runtime = multi_thread();
    let store = Arc::new(InMemory::new());
    let path = Path::from("k");
    upload(store.as_ref(), &path, &noise(1, 100));
    let device = ObjectDevice::with_handle(store, path, runtime.handle().clone()).unwrap();
    assert!(read(&device).is_ok());
    drop(runtime);
    let err = read(&device).unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::RuntimeGone { .. })),
        "{err}"
    );
}

#[test]
fn a_runtime_without_io_is_an_error_not_a_panic() {
    let server = S3Server::start();
    let key = testsupport::s3::unique_key("no-io");
    upload(&server.store(), &key, b"bytes");
    let runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let err = ObjectDevice::with_handle(Arc::new(server.store()), key, runtime.handle().clone())
        .unwrap_err();
    assert!(matches!(err, Error::RuntimeGone { .. }), "{err}");
    assert!(err.to_string().contains("enable_all"), "{err}");
}
