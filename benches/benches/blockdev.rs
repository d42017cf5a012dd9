//! blockdev's `copy_range` against `std::io::copy` and a plain pread/pwrite
//! loop, copying 256 MiB from one file to another.
//!
//! The files are anonymous files in `BLOCKDEV_BENCH_DIR` (default: the system
//! temp dir), so the filesystem under test is whatever that directory is on;
//! the bench prints which copy method `copy_range` used there. The source is
//! written once; every variant overwrites the same destination range, so all
//! of them copy between page-cached files and none pays for block allocation
//! that another did not (the first, allocating copy happens before measuring,
//! and both files are flushed with `fdatasync` before the first measurement).
//!
//! A second group copies from a file on `/dev/shm` (tmpfs) when that is a
//! different filesystem: `copy_file_range` then says `EXDEV` and `copy_range`
//! goes on with `sendfile`.
//!
//! The three copies of a group are timed interleaved
//! ([`benches::bench_interleaved`]), so their ratios do not depend on how the
//! machine's load changed between them.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use benches::{Interleave, Side, bench_interleaved};
use blockdev::{CopyMethod, anonymous_file, copy_range, copy_range_with};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const COPY_LEN: u64 = 256 << 20;
const LOOP_BUFFER_LEN: usize = 1 << 20;

fn bench_dir() -> PathBuf {
    std::env::var_os("BLOCKDEV_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// splitmix64: incompressible bytes without a dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An anonymous file in `dir` holding `COPY_LEN` pseudo-random bytes.
fn source_file(dir: &Path) -> File {
    let file = anonymous_file(dir).expect("create the source file");
    let mut state = 42;
    let mut chunk = vec![0u8; LOOP_BUFFER_LEN];
    for offset in (0..COPY_LEN).step_by(LOOP_BUFFER_LEN) {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        file.write_all_at(&chunk, offset)
            .expect("fill the source file");
    }
    // Flush now, so write-back of the setup does not land in a measurement.
    file.sync_data().expect("flush the source file");
    file
}

fn std_io_copy(src: &File, dst: &File) -> io::Result<u64> {
    let (mut src, mut dst) = (src, dst);
    src.seek(SeekFrom::Start(0))?;
    dst.seek(SeekFrom::Start(0))?;
    io::copy(&mut src.take(COPY_LEN), &mut dst)
}

fn pread_pwrite(src: &File, dst: &File, buf: &mut [u8]) -> io::Result<u64> {
    let mut pos = 0;
    while pos < COPY_LEN {
        let want = buf.len().min((COPY_LEN - pos) as usize);
        let n = src.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        dst.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(pos)
}

fn measurement_time() -> Duration {
    if std::env::var_os("BENCH_FULL").is_some() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(3)
    }
}

fn bench_copy(c: &mut Criterion, group_name: &str, src: &File, dst: &File) {
    let stats =
        copy_range_with(CopyMethod::CopyFileRange, src, 0, dst, 0, COPY_LEN).expect("first copy");
    eprintln!("{group_name}: copy_range moved its bytes with {stats:?}");
    // The first copy allocated the destination's blocks; every measured copy
    // overwrites them. Flush so that first copy's write-back is not measured.
    dst.sync_data().expect("flush the destination file");

    let plan = Interleave {
        warm_up: Duration::from_millis(500),
        measurement: measurement_time(),
        samples: 10,
    };
    let mut buf = vec![0u8; LOOP_BUFFER_LEN];
    let sides: Vec<Side<'_>> = vec![
        (
            "copy_range",
            Box::new(|| {
                black_box(copy_range(black_box(src), 0, black_box(dst), 0, COPY_LEN).unwrap());
            }),
        ),
        (
            "std_io_copy",
            Box::new(|| {
                black_box(std_io_copy(black_box(src), black_box(dst)).unwrap());
            }),
        ),
        (
            "pread_pwrite",
            Box::new(move || {
                black_box(pread_pwrite(black_box(src), black_box(dst), &mut buf).unwrap());
            }),
        ),
    ];
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(COPY_LEN));
    bench_interleaved(&mut group, &plan, sides);
    group.finish();
}

fn copy_same_filesystem(c: &mut Criterion) {
    let dir = bench_dir();
    let src = source_file(&dir);
    let dst = anonymous_file(&dir).expect("create the destination file");
    bench_copy(c, "blockdev_copy", &src, &dst);
}

fn copy_across_filesystems(c: &mut Criterion) {
    let (dir, shm) = (bench_dir(), Path::new("/dev/shm"));
    let (Ok(dir_meta), Ok(shm_meta)) = (dir.metadata(), shm.metadata()) else {
        eprintln!("blockdev_copy_xfs: skipped, no /dev/shm");
        return;
    };
    if dir_meta.dev() == shm_meta.dev() {
        eprintln!("blockdev_copy_xfs: skipped, /dev/shm is the bench dir's filesystem");
        return;
    }
    let src = source_file(shm);
    let dst = anonymous_file(&dir).expect("create the destination file");
    bench_copy(c, "blockdev_copy_xfs", &src, &dst);
}

criterion_group!(benches, copy_same_filesystem, copy_across_filesystems);
criterion_main!(benches);
