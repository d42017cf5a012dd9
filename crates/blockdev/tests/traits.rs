//! Properties of the types themselves: thread safety, object safety, errors at the end.

use std::fmt::Debug;
use std::fs::File;
use std::io::ErrorKind;
use std::sync::Arc;

use blockdev::{FaultyDevice, MemDevice, ReadAt, WriteAt, anonymous_file};
use static_assertions::{assert_impl_all, assert_not_impl_any, assert_obj_safe};

assert_obj_safe!(ReadAt, WriteAt);
assert_impl_all!(MemDevice: Send, Sync, Clone, Debug, Default, ReadAt, WriteAt);
assert_impl_all!(FaultyDevice<MemDevice>: Send, Sync, Debug, ReadAt, WriteAt);
assert_impl_all!(FaultyDevice<File>: Send, Sync, ReadAt, WriteAt);
assert_not_impl_any!(FaultyDevice<std::rc::Rc<MemDevice>>: Send, Sync);
assert_impl_all!(File: ReadAt, WriteAt);
assert_impl_all!([u8]: ReadAt);
assert_impl_all!([u8; 16]: ReadAt);
assert_impl_all!(Vec<u8>: ReadAt);
assert_not_impl_any!(Vec<u8>: WriteAt);
assert_impl_all!(&'static MemDevice: ReadAt, WriteAt);
assert_impl_all!(Box<dyn ReadAt + Send + Sync>: ReadAt);
assert_impl_all!(Arc<dyn WriteAt + Send + Sync>: WriteAt);

#[test]
fn read_exact_at_past_the_end_is_unexpected_eof_on_every_device() {
    let bytes = b"0123456789".to_vec();
    let file = anonymous_file(&std::env::temp_dir()).unwrap();
    file.write_all_at(0, &bytes).unwrap();
    let devices: Vec<Box<dyn ReadAt>> = vec![
        Box::new(bytes.clone()),
        Box::new(MemDevice::from_vec(bytes.clone())),
        Box::new(file),
        Box::new(FaultyDevice::new(bytes.clone())),
        Box::new(*b"0123456789"),
    ];
    for (i, dev) in devices.iter().enumerate() {
        let mut buf = [0u8; 4];
        let error = dev.read_exact_at(8, &mut buf).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "device {i}");
        assert!(
            error.to_string().contains("position 10"),
            "device {i}: {error}"
        );
        let error = dev.read_exact_at(u64::MAX, &mut buf).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "device {i}");
        // Exactly to the end is fine.
        dev.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"6789");
        dev.read_exact_at(10, &mut []).unwrap();
    }
}

#[test]
fn memory_devices_reject_positions_beyond_memory_instead_of_panicking() {
    let dev = MemDevice::new();
    let error = dev.write_at(u64::MAX, b"x").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let error = dev.write_at(usize::MAX as u64, b"xy").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let mut buf = [0u8; 2];
    assert_eq!(dev.read_at(u64::MAX, &mut buf).unwrap(), 0);
    assert_eq!(b"ab"[..].read_at(u64::MAX, &mut buf).unwrap(), 0);
}

#[test]
fn clones_of_a_mem_device_share_bytes_across_threads() {
    let dev = MemDevice::new();
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let dev = dev.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    dev.write_all_at(u64::from(t) * 100 + i, &[t]).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let bytes = dev.to_vec();
    assert_eq!(bytes.len(), 400);
    for (i, byte) in bytes.iter().enumerate() {
        assert_eq!(usize::from(*byte), i / 100);
    }
}

#[test]
fn one_file_serves_positional_reads_from_many_threads() {
    let file = Arc::new(anonymous_file(&std::env::temp_dir()).unwrap());
    let data: Vec<u8> = (0..=255).collect();
    file.write_all_at(0, &data).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let file = Arc::clone(&file);
            std::thread::spawn(move || {
                for pos in 0..256u64 {
                    let mut byte = [0u8];
                    file.read_exact_at(pos, &mut byte).unwrap();
                    assert_eq!(u64::from(byte[0]), pos);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

/// A device that counts the refreshes that reach it, and says what it is told.
struct Versioned {
    refreshes: std::sync::atomic::AtomicU64,
    changed: bool,
}

impl ReadAt for Versioned {
    fn read_at(&self, _pos: u64, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(0)
    }

    fn refresh(&self) -> std::io::Result<bool> {
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.changed)
    }
}

#[test]
fn every_wrapper_passes_refresh_down_and_its_answer_up() {
    for changed in [false, true] {
        let device = Arc::new(Versioned {
            refreshes: Default::default(),
            changed,
        });
        let wrapped: Box<dyn ReadAt> = Box::new(FaultyDevice::new(Arc::clone(&device)));
        let by_ref: &dyn ReadAt = &wrapped;
        assert_eq!(by_ref.refresh().unwrap(), changed);
        assert_eq!(
            device.refreshes.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}

#[test]
fn devices_that_cannot_tell_say_they_may_have_changed() {
    let file = anonymous_file(&std::env::temp_dir()).unwrap();
    assert!(file.refresh().unwrap());
    assert!(MemDevice::new().refresh().unwrap());
    assert!(!vec![0u8; 4].refresh().unwrap());
    assert!(![0u8; 4].refresh().unwrap());
    assert!(!b"fixed"[..].refresh().unwrap());
}
