//! `ReadAt::will_need`: a hint that reaches the device through every
//! wrapper, and changes nothing a read returns.

use std::io;
use std::sync::Arc;

use blockdev::{FaultyDevice, MemDevice, ReadAt, WriteAt};

/// Hints through a device taken by value, so `&D` forwards too.
fn hint(device: impl ReadAt, pos: u64, len: u64) {
    device.will_need(pos, len);
}

#[test]
fn a_hint_passes_through_arc_box_reference_and_faulty_device() {
    let faulty = Arc::new(FaultyDevice::new(FaultyDevice::new(MemDevice::new())));
    let boxed: Box<dyn ReadAt + Send + Sync> = Box::new(Arc::clone(&faulty));
    hint(&boxed, 4096, 8192);
    assert_eq!(faulty.hints(), [(4096, 8192)]);
    assert_eq!(faulty.inner().hints(), [(4096, 8192)]);
}

#[test]
fn a_hint_changes_nothing_a_file_or_memory_reads() -> io::Result<()> {
    let file = blockdev::anonymous_file(&std::env::temp_dir())?;
    file.write_all_at(0, b"0123456789")?;
    file.will_need(2, 5);
    file.will_need(100, 0);
    file.will_need(u64::MAX - 1, u64::MAX);
    let mem = MemDevice::from_vec(b"0123456789".to_vec());
    mem.will_need(0, u64::MAX);
    for dev in [&file as &dyn ReadAt, &mem] {
        let mut buf = [0u8; 5];
        dev.read_exact_at(2, &mut buf)?;
        assert_eq!(&buf, b"23456");
    }
    Ok(())
}
