//! `write_all_vectored_at`: the same bytes as one `write_all_at` of the
//! buffers joined, on every device, with faults and short writes injected.

use blockdev::{Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt, anonymous_file};

/// Buffers of varied lengths (some empty), more than one `pwritev` takes.
fn buffers() -> Vec<Vec<u8>> {
    (0..2500u32)
        .map(|i| (0..(i * 7 % 13) as u8).map(|b| b ^ i as u8).collect())
        .collect()
}

fn joined(bufs: &[Vec<u8>]) -> Vec<u8> {
    bufs.concat()
}

fn refs(bufs: &[Vec<u8>]) -> Vec<&[u8]> {
    bufs.iter().map(Vec::as_slice).collect()
}

#[test]
fn a_file_gets_the_buffers_joined_across_several_pwritev_calls() {
    let bufs = buffers();
    let file = anonymous_file(&std::env::temp_dir()).unwrap();
    file.write_all_vectored_at(3, &refs(&bufs)).unwrap();
    let mut back = vec![0; joined(&bufs).len()];
    file.read_exact_at(3, &mut back).unwrap();
    assert_eq!(back, joined(&bufs));
    assert_eq!(file.size().unwrap(), 3 + back.len() as u64);
}

#[test]
fn memory_gets_the_buffers_joined() {
    let bufs = buffers();
    let dev = MemDevice::new();
    dev.write_all_vectored_at(1, &refs(&bufs)).unwrap();
    assert_eq!(dev.to_vec()[1..], joined(&bufs));
}

#[test]
fn short_writes_count_one_call_each_and_still_write_everything() {
    let bufs = buffers();
    let total = joined(&bufs).len();
    let dev = FaultyDevice::new(MemDevice::new());
    dev.short_writes(1000);
    dev.write_all_vectored_at(0, &refs(&bufs)).unwrap();
    assert_eq!(dev.inner().to_vec(), joined(&bufs));
    assert_eq!(dev.writes(), total.div_ceil(1000) as u64);
}

#[test]
fn a_failed_call_returns_its_error_after_the_calls_before_it() {
    let bufs = buffers();
    let dev = FaultyDevice::new(MemDevice::new());
    dev.short_writes(1000);
    dev.fail_writes(Fault::Nth(3, Errno::NOSPC));
    let err = dev.write_all_vectored_at(0, &refs(&bufs)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::NOSPC.raw()));
    assert_eq!(dev.inner().to_vec(), joined(&bufs)[..2000]);
}

#[test]
fn interrupted_calls_are_retried_and_a_zero_limit_is_an_error() {
    let dev = FaultyDevice::new(MemDevice::new());
    dev.fail_writes(Fault::Nth(1, Errno::INTR));
    dev.write_all_vectored_at(0, &[b"ab", b"cd"]).unwrap();
    assert_eq!(dev.inner().to_vec(), b"abcd");
    dev.short_writes(0);
    let err = dev.write_all_vectored_at(0, &[b"x"]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
}
