//! `copy_range` on real files through every method, and on mixed devices.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;

use blockdev::{
    CopyMethod, CopyStats, Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt, anonymous_file,
    copy_range, copy_range_with,
};
use common::TestDir;

const METHODS: [CopyMethod; 3] = [
    CopyMethod::CopyFileRange,
    CopyMethod::Sendfile,
    CopyMethod::ReadWrite,
];

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 509) as u8).collect()
}

fn temp_file() -> File {
    anonymous_file(&std::env::temp_dir()).unwrap()
}

fn file_with(bytes: &[u8]) -> File {
    let file = temp_file();
    file.write_all_at(0, bytes).unwrap();
    file
}

fn contents<D: ReadAt + ?Sized>(dev: &D) -> Vec<u8> {
    let mut bytes = vec![0u8; dev.size().unwrap() as usize];
    dev.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

/// The bytes `method` itself copied.
fn by_method(stats: CopyStats, method: CopyMethod) -> u64 {
    match method {
        CopyMethod::CopyFileRange => stats.copy_file_range,
        CopyMethod::Sendfile => stats.sendfile,
        CopyMethod::ReadWrite => stats.read_write,
    }
}

#[test]
fn each_method_copies_unaligned_ranges_between_files() {
    let source = pattern(3 << 20);
    let src = file_with(&source);
    let (src_pos, dst_pos, len) = (4097u64, 12_345u64, (1u64 << 20) + 77);
    for method in METHODS {
        let dst = file_with(&[0xee; 100]);
        let stats = copy_range_with(method, &src, src_pos, &dst, dst_pos, len).unwrap();
        assert_eq!(stats.total(), len, "{method:?}");
        assert_eq!(
            by_method(stats, method),
            len,
            "{method:?} did not do the copy"
        );

        let copied = contents(&dst);
        assert_eq!(copied.len() as u64, dst_pos + len, "{method:?}");
        assert_eq!(
            &copied[..100],
            &[0xee; 100],
            "{method:?} clobbered the head"
        );
        assert!(copied[100..dst_pos as usize].iter().all(|&b| b == 0));
        assert_eq!(
            &copied[dst_pos as usize..],
            &source[src_pos as usize..(src_pos + len) as usize],
            "{method:?}"
        );
    }
}

#[test]
fn each_method_overwrites_inside_an_existing_file_without_touching_the_rest() {
    let src = file_with(&pattern(10_000));
    for method in METHODS {
        let dst = file_with(&[0x55; 10_000]);
        copy_range_with(method, &src, 1, &dst, 333, 5000).unwrap();
        let copied = contents(&dst);
        assert_eq!(copied.len(), 10_000, "{method:?} changed the size");
        assert_eq!(&copied[..333], &[0x55; 333][..]);
        assert_eq!(&copied[333..5333], &pattern(10_000)[1..5001]);
        assert!(copied[5333..].iter().all(|&b| b == 0x55), "{method:?}");
    }
}

#[test]
fn each_method_fails_with_unexpected_eof_when_the_range_crosses_the_source_end() {
    let src = file_with(&pattern(1000));
    for method in METHODS {
        let dst = temp_file();
        let error = copy_range_with(method, &src, 800, &dst, 0, 500).unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::UnexpectedEof,
            "{method:?}: {error}"
        );
        assert!(error.to_string().contains("300 of 500"), "{error}");
        assert_eq!(contents(&dst), &pattern(1000)[800..], "{method:?}");
    }
}

#[test]
fn each_method_fails_when_the_source_starts_past_its_end() {
    let src = file_with(&pattern(10));
    for method in METHODS {
        let dst = temp_file();
        let error = copy_range_with(method, &src, 11, &dst, 0, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "{method:?}");
        assert_eq!(dst.size().unwrap(), 0);
    }
}

#[test]
fn each_method_copies_within_one_file_to_a_disjoint_range() {
    for method in METHODS {
        let file = file_with(&pattern(200_000));
        let stats = copy_range_with(method, &file, 3, &file, 150_001, 65_536).unwrap();
        assert_eq!(by_method(stats, method), 65_536, "{method:?}");
        let after = contents(&file);
        assert_eq!(after.len(), 215_537);
        assert_eq!(&after[150_001..], &pattern(200_000)[3..65_539]);
        assert_eq!(&after[..150_001], &pattern(200_000)[..150_001]);
    }
}

#[test]
fn overlapping_ranges_in_one_file_are_rejected_even_through_another_descriptor() {
    let dir = TestDir::new("copy-overlap");
    let path = dir.path().join("data");
    std::fs::write(&path, pattern(4096)).unwrap();
    let file = File::options().read(true).write(true).open(&path).unwrap();
    let other = File::options().read(true).write(true).open(&path).unwrap();
    for method in METHODS {
        for (src, dst) in [(&file, &file), (&file, &other)] {
            let error = copy_range_with(method, src, 0, dst, 100, 200).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{method:?}");
        }
    }
    assert_eq!(std::fs::read(&path).unwrap(), pattern(4096));
}

#[test]
fn zero_length_copies_nothing_even_past_the_end() {
    let src = file_with(b"abc");
    let dst = temp_file();
    assert_eq!(copy_range(&src, 1 << 40, &dst, 1 << 40, 0).unwrap(), 0);
    assert_eq!(dst.size().unwrap(), 0);
}

#[test]
fn ranges_ending_past_u64_max_are_invalid_input() {
    let src = file_with(b"abc");
    let dst = temp_file();
    for (src_pos, dst_pos) in [(u64::MAX, 0), (0, u64::MAX)] {
        let error = copy_range(&src, src_pos, &dst, dst_pos, 2).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }
    let mem = MemDevice::new();
    let error = copy_range(&mem, u64::MAX - 1, &mem, 0, 5).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn memory_and_file_devices_mix_through_the_loop() {
    let source = pattern(300_000);
    let file = file_with(&source);
    let mem = MemDevice::from_vec(source.clone());

    let to_mem = MemDevice::new();
    let stats = copy_range_with(CopyMethod::CopyFileRange, &file, 5, &to_mem, 2, 250_000).unwrap();
    assert_eq!(
        stats.read_write, 250_000,
        "file -> memory must use the loop"
    );
    assert_eq!(&to_mem.to_vec()[2..], &source[5..250_005]);

    let to_file = temp_file();
    let stats = copy_range_with(CopyMethod::CopyFileRange, &mem, 7, &to_file, 9, 250_000).unwrap();
    assert_eq!(stats.read_write, 250_000);
    assert_eq!(&contents(&to_file)[9..], &source[7..250_007]);

    let mem_to_mem = MemDevice::new();
    assert_eq!(
        copy_range(&mem, 0, &mem_to_mem, 0, 300_000).unwrap(),
        300_000
    );
    assert_eq!(mem_to_mem.to_vec(), source);

    let slice: &[u8] = &source;
    let from_slice = temp_file();
    assert_eq!(copy_range(slice, 100, &from_slice, 0, 1000).unwrap(), 1000);
    assert_eq!(contents(&from_slice), &source[100..1100]);

    let error = copy_range(&mem, 299_999, &to_mem, 0, 2).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn trait_objects_and_wrappers_keep_the_kernel_path() {
    let src = file_with(&pattern(10_000));
    let dst: Box<dyn WriteAt> = Box::new(temp_file());
    let src_ref: &dyn ReadAt = &src;
    let stats = copy_range_with(CopyMethod::CopyFileRange, src_ref, 0, &*dst, 0, 10_000).unwrap();
    assert_eq!(stats.copy_file_range, 10_000);
    let shared = std::sync::Arc::new(temp_file());
    let stats = copy_range_with(CopyMethod::Sendfile, &src, 0, &shared, 0, 10_000).unwrap();
    assert_eq!(stats.sendfile, 10_000);
}

#[test]
fn a_proc_source_falls_back_from_copy_file_range_and_copies_everything() {
    let expected = std::fs::read("/proc/self/mountinfo").unwrap();
    assert!(!expected.is_empty());
    let expected_version = std::fs::read("/proc/version").unwrap();
    // /proc/version does not change while we run; its size is reported as 0.
    let src = File::open("/proc/version").unwrap();
    assert_eq!(src.metadata().unwrap().len(), 0);
    let dst = temp_file();
    let len = expected_version.len() as u64;
    let stats = copy_range_with(CopyMethod::CopyFileRange, &src, 0, &dst, 0, len).unwrap();
    assert_eq!(
        stats.copy_file_range, 0,
        "copy_file_range cannot copy from /proc"
    );
    assert_eq!(stats.total(), len);
    assert_eq!(contents(&dst), expected_version);
}

#[test]
fn a_character_device_source_falls_back_to_a_method_that_works() {
    let zero = File::open("/dev/zero").unwrap();
    let dst = file_with(&[0xff; 100_000]);
    let stats = copy_range(&zero, 0, &dst, 10, 80_000).unwrap();
    assert_eq!(stats, 80_000);
    let after = contents(&dst);
    assert!(after[10..80_010].iter().all(|&b| b == 0));
    assert!(after[80_010..].iter().all(|&b| b == 0xff));
    assert!(after[..10].iter().all(|&b| b == 0xff));
}

#[test]
fn a_copy_across_filesystems_uses_sendfile() {
    let shm = std::path::Path::new("/dev/shm");
    let temp = std::env::temp_dir();
    let (Ok(shm_meta), Ok(temp_meta)) = (shm.metadata(), temp.metadata()) else {
        eprintln!("skipped: /dev/shm or the temp dir is missing");
        return;
    };
    if shm_meta.dev() == temp_meta.dev() {
        eprintln!("skipped: /dev/shm and the temp dir are one filesystem");
        return;
    }
    let src = anonymous_file(shm).unwrap();
    src.write_all_at(0, &pattern(100_000)).unwrap();
    let dst = temp_file();
    let stats = copy_range_with(CopyMethod::CopyFileRange, &src, 0, &dst, 0, 100_000).unwrap();
    assert_eq!(
        stats.copy_file_range, 0,
        "copy_file_range says EXDEV across filesystems"
    );
    assert_eq!(stats.total(), 100_000);
    assert_eq!(stats.read_write, 0, "sendfile works across filesystems");
    assert_eq!(contents(&dst), pattern(100_000));
}

#[test]
fn a_pipe_source_is_an_error_not_a_loop() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(b"0123456789").unwrap();
    let src = File::from(std::os::fd::OwnedFd::from(reader));
    let dst = temp_file();
    for method in METHODS {
        let error = copy_range_with(method, &src, 0, &dst, 0, 10).unwrap_err();
        assert_eq!(
            Errno::from_raw(error.raw_os_error().unwrap()),
            Errno::from_raw(29), // ESPIPE: a pipe has no positions
            "{method:?}: {error}"
        );
    }
}

#[test]
fn a_read_only_destination_is_an_error_from_every_method() {
    let dir = TestDir::new("copy-readonly");
    let path = dir.path().join("ro");
    std::fs::write(&path, b"").unwrap();
    let read_only = File::open(&path).unwrap();
    let src = file_with(&pattern(100));
    for method in METHODS {
        let error = copy_range_with(method, &src, 0, &read_only, 0, 100).unwrap_err();
        assert_eq!(
            error.raw_os_error(),
            Some(9),
            "{method:?}: EBADF expected, {error}"
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[test]
fn sendfile_is_not_used_on_an_append_only_destination() {
    let dir = TestDir::new("copy-append");
    let path = dir.path().join("log");
    std::fs::write(&path, b"head").unwrap();
    let append = File::options().append(true).open(&path).unwrap();
    let src = file_with(b"tail");
    let stats = copy_range_with(CopyMethod::Sendfile, &src, 0, &append, 4, 4).unwrap();
    assert_eq!(stats.read_write, 4, "the reopen would drop O_APPEND");
    assert_eq!(std::fs::read(&path).unwrap(), b"headtail");
}

#[test]
fn destination_errors_reach_the_caller_with_their_errno() {
    let src = MemDevice::from_vec(pattern(5 << 20));
    let dst = FaultyDevice::new(MemDevice::new());
    dst.fail_writes(Fault::Nth(3, Errno::NOSPC));
    let error = copy_range(&src, 0, &dst, 0, 5 << 20).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(Errno::NOSPC.raw()));
    assert_eq!(
        dst.inner().size().unwrap(),
        2 << 20,
        "two 1 MiB writes landed"
    );
}

#[test]
fn short_writes_and_interrupted_reads_still_complete_the_copy() {
    let src = FaultyDevice::new(file_with(&pattern(100_000)));
    src.fail_reads(Fault::Every(2, Errno::INTR));
    src.short_reads(4096);
    let dst = FaultyDevice::new(temp_file());
    dst.short_writes(1000);
    dst.fail_writes(Fault::Every(3, Errno::INTR));
    let stats = copy_range_with(CopyMethod::CopyFileRange, &src, 0, &dst, 0, 100_000).unwrap();
    assert_eq!(
        stats.read_write, 100_000,
        "a FaultyDevice is never bypassed"
    );
    assert_eq!(contents(dst.inner()), pattern(100_000));
    assert_eq!(
        src.reads(),
        49,
        "25 reads of up to 4096 bytes and the 24 interruptions between them"
    );
}

#[test]
fn read_errors_reach_the_caller_with_their_errno() {
    let src = FaultyDevice::new(MemDevice::from_vec(pattern(1000)));
    src.fail_reads(Fault::Always(Errno::IO));
    let dst = MemDevice::new();
    let error = copy_range(&src, 0, &dst, 0, 1000).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(Errno::IO.raw()));
    assert!(dst.to_vec().is_empty());
}

#[test]
fn a_destination_that_accepts_nothing_ends_with_write_zero() {
    let src = MemDevice::from_vec(pattern(1000));
    let dst = FaultyDevice::new(MemDevice::new());
    dst.short_writes(0);
    let error = copy_range(&src, 0, &dst, 0, 1000).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WriteZero);
    assert_eq!(dst.writes(), 1);
}
