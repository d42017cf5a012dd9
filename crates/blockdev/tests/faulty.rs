//! `FaultyDevice`: each programmed fault hits exactly the calls it names.

use std::io::ErrorKind;
use std::sync::Arc;

use blockdev::{
    Corruption, Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt, anonymous_file,
};

#[test]
fn nth_write_fails_once_with_the_chosen_errno_and_leaves_the_device_untouched() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_writes(Fault::Nth(3, Errno::NOSPC));
    dev.write_all_at(0, b"a").unwrap();
    dev.write_all_at(1, b"b").unwrap();
    let error = dev.write_all_at(2, b"c").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(Errno::NOSPC.raw()));
    assert_eq!(error.kind(), ErrorKind::StorageFull);
    assert_eq!(dev.inner().to_vec(), b"ab");
    dev.write_all_at(2, b"c").unwrap();
    assert_eq!(dev.inner().to_vec(), b"abc");
    assert_eq!(dev.writes(), 4);
}

#[test]
fn every_kth_read_fails() {
    let dev = FaultyDevice::new(vec![9u8; 16]);
    dev.fail_reads(Fault::Every(3, Errno::IO));
    let outcomes: Vec<bool> = (0..9)
        .map(|_| dev.read_at(0, &mut [0u8; 4]).is_ok())
        .collect();
    assert_eq!(
        outcomes,
        [true, true, false, true, true, false, true, true, false]
    );
    assert_eq!(dev.reads(), 9);
}

#[test]
fn always_fails_until_cleared() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_writes(Fault::Always(Errno::IO));
    for _ in 0..5 {
        assert_eq!(
            dev.write_at(0, b"x").unwrap_err().raw_os_error(),
            Some(Errno::IO.raw())
        );
    }
    dev.clear_faults();
    assert_eq!(dev.write_at(0, b"x").unwrap(), 1);
}

#[test]
fn setting_a_new_fault_replaces_the_old_and_restarts_the_count() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_writes(Fault::Nth(2, Errno::IO));
    dev.write_at(0, b"x").unwrap();
    dev.fail_writes(Fault::Nth(2, Errno::NOSPC));
    dev.write_at(0, b"x").unwrap();
    let error = dev.write_at(0, b"x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(Errno::NOSPC.raw()));
}

#[test]
fn write_all_at_completes_through_short_writes() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.short_writes(3);
    let data: Vec<u8> = (0..100).collect();
    dev.write_all_at(7, &data).unwrap();
    assert_eq!(dev.writes(), 34);
    assert_eq!(&dev.inner().to_vec()[7..], &data[..]);
}

#[test]
fn read_exact_at_completes_through_short_reads() {
    let data: Vec<u8> = (0..100).collect();
    let dev = FaultyDevice::new(data.clone());
    dev.short_reads(7);
    let mut buf = vec![0u8; 90];
    dev.read_exact_at(10, &mut buf).unwrap();
    assert_eq!(buf, &data[10..]);
    assert_eq!(dev.reads(), 13);
}

#[test]
fn interrupted_calls_are_retried_by_the_exact_helpers() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_writes(Fault::Every(2, Errno::INTR));
    dev.short_writes(1);
    dev.write_all_at(0, b"abcd").unwrap();
    assert_eq!(dev.inner().to_vec(), b"abcd");
    assert_eq!(dev.writes(), 7, "4 writes of 1 byte and 3 interruptions");

    dev.fail_reads(Fault::Every(2, Errno::INTR));
    dev.short_reads(1);
    let mut buf = [0u8; 4];
    dev.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    assert_eq!(dev.reads(), 7);
}

#[test]
fn zero_length_writes_end_write_all_at_with_write_zero() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.short_writes(0);
    let error = dev.write_all_at(0, b"x").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WriteZero);
    assert_eq!(dev.writes(), 1, "no retry loop on a zero return");
}

#[test]
fn zero_length_reads_end_read_exact_at_with_unexpected_eof() {
    let dev = FaultyDevice::new(vec![1u8; 8]);
    dev.short_reads(0);
    let error = dev.read_exact_at(0, &mut [0u8; 4]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    assert_eq!(dev.reads(), 1);
}

#[test]
fn corruption_flips_the_byte_in_every_covering_read_but_not_the_device() {
    let dev = FaultyDevice::new(MemDevice::from_vec(vec![0xaa; 32]));
    dev.corrupt_reads(Corruption::AtOffset {
        offset: 20,
        mask: 0x01,
    });
    let mut whole = [0u8; 32];
    dev.read_exact_at(0, &mut whole).unwrap();
    let flipped: Vec<usize> = (0..32).filter(|&i| whole[i] != 0xaa).collect();
    assert_eq!(flipped, [20]);
    assert_eq!(whole[20], 0xab);

    // Short reads still see the flip only in the call that covers offset 20.
    dev.short_reads(5);
    let mut again = [0u8; 32];
    dev.read_exact_at(0, &mut again).unwrap();
    assert_eq!(again, whole);

    dev.clear_faults();
    dev.read_exact_at(0, &mut whole).unwrap();
    assert_eq!(whole, [0xaa; 32]);
    assert_eq!(dev.inner().to_vec(), vec![0xaa; 32]);
}

#[test]
fn every_read_corruption_hits_each_read() {
    let dev = FaultyDevice::new(vec![0u8; 16]);
    dev.corrupt_reads(Corruption::EveryRead {
        index: 1,
        mask: 0x80,
    });
    for pos in [0u64, 5, 14] {
        let mut buf = [0u8; 2];
        dev.read_exact_at(pos, &mut buf).unwrap();
        assert_eq!(buf, [0, 0x80], "read at {pos}");
    }
}

#[test]
fn set_len_and_sync_faults() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_set_len(Fault::Nth(1, Errno::NOSPC));
    dev.fail_sync(Fault::Always(Errno::IO));
    assert_eq!(
        dev.set_len(100).unwrap_err().raw_os_error(),
        Some(Errno::NOSPC.raw())
    );
    assert_eq!(dev.size().unwrap(), 0, "failed set_len changed the size");
    dev.set_len(100).unwrap();
    assert_eq!(dev.size().unwrap(), 100);
    for _ in 0..3 {
        assert!(dev.sync_data().is_err());
    }
    assert_eq!(dev.syncs(), 3);
}

#[test]
fn a_faulty_file_hides_its_file_so_kernel_copies_cannot_bypass_it() {
    let file = anonymous_file(&std::env::temp_dir()).unwrap();
    assert!(ReadAt::as_file(&file).is_some());
    let dev = FaultyDevice::new(file);
    assert!(ReadAt::as_file(&dev).is_none());
    assert!(WriteAt::as_file(&dev).is_none());
}

#[test]
fn faults_programmed_from_one_thread_hit_calls_from_another() {
    let dev = Arc::new(FaultyDevice::new(MemDevice::new()));
    dev.fail_writes(Fault::Always(Errno::NOSPC));
    let writer = Arc::clone(&dev);
    let failed = std::thread::spawn(move || writer.write_all_at(0, b"x").is_err())
        .join()
        .unwrap();
    assert!(failed);
}

#[test]
fn hints_are_kept_in_order_while_reads_fail_and_after_faults_are_cleared() {
    let dev = FaultyDevice::new(MemDevice::from_vec(vec![0; 64]));
    dev.fail_reads(Fault::Always(Errno::IO));
    dev.will_need(0, 16);
    assert!(dev.read_at(0, &mut [0u8; 4]).is_err());
    dev.clear_faults();
    dev.will_need(32, u64::MAX);
    assert_eq!(dev.hints(), [(0, 16), (32, u64::MAX)]);
}
