//! `copy_range`: copy a byte range between devices, inside the kernel when both are files.
//!
//! The fallback rules are documented on [`copy_range`]; the kernel calls sit
//! behind a small trait so unit tests can script errors and zero returns.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::{ReadAt, WriteAt};

/// Largest chunk handed to `copy_file_range` at once; the kernel caps a call
/// near 2 GiB anyway, and smaller calls keep a huge copy interruptible.
const MAX_KERNEL_CHUNK: u64 = 1 << 30;

/// Largest buffer of the `pread`/`pwrite` loop (smaller when the range is).
const MAX_BUFFER_LEN: u64 = 1 << 20;

/// Copies `len` bytes from `src` at `src_pos` to `dst` at `dst_pos`, returning
/// the number of bytes copied (always `len` on success).
///
/// When both devices are plain files ([`ReadAt::as_file`] and
/// [`WriteAt::as_file`] are `Some`), the kernel copies: `copy_file_range`,
/// else `sendfile`, else a `pread`/`pwrite` loop, each taking over from where
/// the last stopped (see "Fallbacks" below). Any other pair of devices, such
/// as a [`MemDevice`](crate::MemDevice) or a
/// [`FaultyDevice`](crate::FaultyDevice), uses the loop. `dst` grows as
/// needed; bytes outside the range are untouched.
///
/// Neither file's cursor moves: `sendfile` writes at a file cursor, so it
/// writes through a second open of the destination (`/proc/self/fd/N`) that
/// has a cursor of its own; when that open fails the loop takes over.
///
/// # Fallbacks
///
/// 1. `copy_file_range(2)`: the filesystem copies (reflinks on btrfs/XFS,
///    server-side copies on NFS) without the data entering user space.
/// 2. `sendfile(2)`: the kernel moves the data through the page cache; works
///    across filesystems where `copy_file_range` says `EXDEV`.
/// 3. `pread`/`pwrite` with one reused buffer of up to 1 MiB.
///
/// A method hands over to the next one, keeping the bytes it already copied,
/// when the kernel says it cannot do this copy: `ENOSYS` (no such system
/// call), `EXDEV` (different filesystems), `EINVAL` (a file type or flag it
/// does not support), `EOPNOTSUPP`/`ENOTSUP` (the filesystem does not),
/// `EPERM` (seccomp or an immutable file), `EOVERFLOW` (offsets beyond what
/// it handles), or `EBADF` from `copy_file_range` alone (it refuses
/// `O_APPEND` files, which plain writes accept). It also hands over when it
/// returns 0 before the range is done: some kernels' `copy_file_range`
/// returns 0 for `/proc` files that are not empty. The loop turns a zero read
/// into [`ErrorKind::UnexpectedEof`], so a source that ends early is an
/// error, never an endless loop. `EINTR` is retried in every method; every
/// other error is returned as the device gave it, `raw_os_error` intact.
///
/// `sendfile` is skipped when the destination is open read-only or with
/// `O_APPEND` (its private reopen would grant more than the caller's
/// descriptor), and when `/proc/self/fd` cannot reopen it.
///
/// Ranges in the same file must not overlap (an error for files; for other
/// devices sharing storage, such as two clones of one `MemDevice`, the result
/// of an overlapping copy is unspecified).
///
/// ```
/// use blockdev::{anonymous_file, copy_range, MemDevice, ReadAt, WriteAt};
///
/// let dir = std::env::temp_dir();
/// let src = anonymous_file(&dir)?;
/// let dst = anonymous_file(&dir)?;
/// src.write_all_at(0, b"0123456789")?;
///
/// assert_eq!(copy_range(&src, 2, &dst, 100, 5)?, 5);  // kernel copy
/// let mut buf = [0u8; 5];
/// dst.read_exact_at(100, &mut buf)?;
/// assert_eq!(&buf, b"23456");
///
/// let mem = MemDevice::new();
/// copy_range(&src, 0, &mem, 0, 3)?;                   // file to memory: the loop
/// assert_eq!(mem.to_vec(), b"012");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// - [`ErrorKind::UnexpectedEof`] when `src` ends before `src_pos + len`
///   (the bytes before its end have been copied).
/// - [`ErrorKind::InvalidInput`] when `src_pos + len` or `dst_pos + len`
///   overflows `u64`, or when both are the same file and the ranges overlap.
/// - [`ErrorKind::WriteZero`] when `dst` accepts no more bytes.
/// - Any other error of either device, as the device returned it (for example
///   `ENOSPC` from the destination).
pub fn copy_range<S, D>(src: &S, src_pos: u64, dst: &D, dst_pos: u64, len: u64) -> io::Result<u64>
where
    S: ReadAt + ?Sized,
    D: WriteAt + ?Sized,
{
    copy_range_with(CopyMethod::CopyFileRange, src, src_pos, dst, dst_pos, len)
        .map(|stats| stats.total())
}

/// The copy methods, in the order [`copy_range`] tries them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CopyMethod {
    /// `copy_file_range(2)`, then the others.
    CopyFileRange,
    /// `sendfile(2)`, then the loop.
    Sendfile,
    /// The `pread`/`pwrite` loop only.
    ReadWrite,
}

/// How many bytes each method copied.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Bytes copied by `copy_file_range`.
    pub copy_file_range: u64,
    /// Bytes copied by `sendfile`.
    pub sendfile: u64,
    /// Bytes copied by the `pread`/`pwrite` loop.
    pub read_write: u64,
}

impl CopyStats {
    /// All bytes copied.
    ///
    /// ```
    /// use blockdev::CopyStats;
    ///
    /// let stats = CopyStats { copy_file_range: 1, sendfile: 2, read_write: 3 };
    /// assert_eq!(stats.total(), 6);
    /// ```
    pub fn total(&self) -> u64 {
        self.copy_file_range + self.sendfile + self.read_write
    }
}

/// [`copy_range`] starting at method `first` (for files; other devices always
/// use the loop), and saying how many bytes each method copied. For tests and
/// benchmarks that must reach a particular method.
///
/// ```
/// use blockdev::{anonymous_file, copy_range_with, CopyMethod, WriteAt};
///
/// let dir = std::env::temp_dir();
/// let (src, dst) = (anonymous_file(&dir)?, anonymous_file(&dir)?);
/// src.write_all_at(0, &[7; 100])?;
/// let stats = copy_range_with(CopyMethod::ReadWrite, &src, 0, &dst, 0, 100)?;
/// assert_eq!(stats.read_write, 100);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`copy_range`].
#[doc(hidden)]
pub fn copy_range_with<S, D>(
    first: CopyMethod,
    src: &S,
    src_pos: u64,
    dst: &D,
    dst_pos: u64,
    len: u64,
) -> io::Result<CopyStats>
where
    S: ReadAt + ?Sized,
    D: WriteAt + ?Sized,
{
    copy_with(&Os, first, src, src_pos, dst, dst_pos, len)
}

/// The two kernel copy calls, behind a trait so unit tests can script their
/// results (errors after partial progress, zero returns) around the real ones.
trait KernelCopy {
    fn copy_file_range(
        &self,
        src: &File,
        src_pos: u64,
        dst: &File,
        dst_pos: u64,
        len: usize,
    ) -> io::Result<usize>;

    /// `sendfile` from `src` at `src_pos` to `out` at its cursor.
    fn sendfile(&self, out: &File, src: &File, src_pos: u64, len: usize) -> io::Result<usize>;
}

/// The real system calls.
struct Os;

impl KernelCopy for Os {
    fn copy_file_range(
        &self,
        src: &File,
        mut src_pos: u64,
        dst: &File,
        mut dst_pos: u64,
        len: usize,
    ) -> io::Result<usize> {
        Ok(rustix::fs::copy_file_range(
            src,
            Some(&mut src_pos),
            dst,
            Some(&mut dst_pos),
            len,
        )?)
    }

    fn sendfile(&self, out: &File, src: &File, mut src_pos: u64, len: usize) -> io::Result<usize> {
        Ok(rustix::fs::sendfile(out, src, Some(&mut src_pos), len)?)
    }
}

/// Where the copy stands; each method advances it and the next goes on.
struct Progress {
    src_pos: u64,
    dst_pos: u64,
    remaining: u64,
    stats: CopyStats,
}

impl Progress {
    fn advance(&mut self, n: u64, method: CopyMethod) {
        self.src_pos += n;
        self.dst_pos += n;
        self.remaining -= n;
        match method {
            CopyMethod::CopyFileRange => self.stats.copy_file_range += n,
            CopyMethod::Sendfile => self.stats.sendfile += n,
            CopyMethod::ReadWrite => self.stats.read_write += n,
        }
    }
}

/// How a kernel method ended without an error.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// The whole range is copied.
    Done,
    /// The method cannot go on; the next one continues from `Progress`.
    FallBack,
}

fn copy_with<K, S, D>(
    kernel: &K,
    first: CopyMethod,
    src: &S,
    src_pos: u64,
    dst: &D,
    dst_pos: u64,
    len: u64,
) -> io::Result<CopyStats>
where
    K: KernelCopy,
    S: ReadAt + ?Sized,
    D: WriteAt + ?Sized,
{
    check_range("source", src_pos, len)?;
    check_range("destination", dst_pos, len)?;
    let mut progress = Progress {
        src_pos,
        dst_pos,
        remaining: len,
        stats: CopyStats::default(),
    };
    if len == 0 {
        return Ok(progress.stats);
    }
    if let (Some(src_file), Some(dst_file)) = (src.as_file(), dst.as_file()) {
        reject_overlap(src_file, src_pos, dst_file, dst_pos, len)?;
        if first <= CopyMethod::CopyFileRange
            && copy_file_range_stage(kernel, src_file, dst_file, &mut progress)? == Stage::Done
        {
            return Ok(progress.stats);
        }
        if first <= CopyMethod::Sendfile
            && sendfile_stage(kernel, src_file, dst_file, &mut progress)? == Stage::Done
        {
            return Ok(progress.stats);
        }
    }
    read_write_stage(src, dst, &mut progress, len)?;
    Ok(progress.stats)
}

fn check_range(which: &str, pos: u64, len: u64) -> io::Result<()> {
    if pos.checked_add(len).is_none() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("copy_range: {which} range of {len} bytes at {pos} ends past u64::MAX"),
        ));
    }
    Ok(())
}

/// Copying a file onto an overlapping range of itself would read bytes it has
/// already overwritten; the kernel refuses it too (`EINVAL`).
fn reject_overlap(src: &File, src_pos: u64, dst: &File, dst_pos: u64, len: u64) -> io::Result<()> {
    let (src_meta, dst_meta) = (src.metadata()?, dst.metadata()?);
    let same_file = src_meta.dev() == dst_meta.dev() && src_meta.ino() == dst_meta.ino();
    // Both ends were checked not to overflow.
    let overlap = src_pos < dst_pos + len && dst_pos < src_pos + len;
    if same_file && src_meta.is_file() && overlap {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "copy_range: source {src_pos}..{} and destination {dst_pos}..{} overlap in the same file",
                src_pos + len,
                dst_pos + len
            ),
        ));
    }
    Ok(())
}

/// Whether `error` from a kernel copy method means "this method cannot do
/// this copy", as opposed to a real I/O error.
fn kernel_cannot_copy(error: &io::Error, method: CopyMethod) -> bool {
    let Some(errno) = Errno::from_io_error(error) else {
        return false;
    };
    // ENOTSUP has the value of EOPNOTSUPP on Linux.
    matches!(
        errno,
        Errno::NOSYS
            | Errno::XDEV
            | Errno::INVAL
            | Errno::OPNOTSUPP
            | Errno::PERM
            | Errno::OVERFLOW
    ) || (errno == Errno::BADF && method == CopyMethod::CopyFileRange)
}

fn kernel_chunk(progress: &Progress) -> usize {
    // Fits: MAX_KERNEL_CHUNK is below usize::MAX on 64-bit and 32-bit targets.
    progress.remaining.min(MAX_KERNEL_CHUNK) as usize
}

/// Runs one kernel copy method until the range is done or the method hands
/// over: a zero return or an errno that means "cannot do this copy" falls
/// back, keeping the progress made; `EINTR` retries; other errors return.
fn kernel_stage(
    progress: &mut Progress,
    method: CopyMethod,
    mut copy: impl FnMut(&Progress, usize) -> io::Result<usize>,
) -> io::Result<Stage> {
    while progress.remaining > 0 {
        let chunk = kernel_chunk(progress);
        match copy(progress, chunk) {
            Ok(0) => return Ok(Stage::FallBack),
            Ok(n) => progress.advance(n.min(chunk) as u64, method),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if kernel_cannot_copy(&e, method) => return Ok(Stage::FallBack),
            Err(e) => return Err(e),
        }
    }
    Ok(Stage::Done)
}

fn copy_file_range_stage(
    kernel: &impl KernelCopy,
    src: &File,
    dst: &File,
    progress: &mut Progress,
) -> io::Result<Stage> {
    kernel_stage(progress, CopyMethod::CopyFileRange, |progress, chunk| {
        kernel.copy_file_range(src, progress.src_pos, dst, progress.dst_pos, chunk)
    })
}

fn sendfile_stage(
    kernel: &impl KernelCopy,
    src: &File,
    dst: &File,
    progress: &mut Progress,
) -> io::Result<Stage> {
    let Ok(mut out) = reopen_for_writing(dst) else {
        return Ok(Stage::FallBack);
    };
    if out.seek(SeekFrom::Start(progress.dst_pos)).is_err() {
        return Ok(Stage::FallBack);
    }
    kernel_stage(progress, CopyMethod::Sendfile, |progress, chunk| {
        kernel.sendfile(&out, src, progress.src_pos, chunk)
    })
}

/// A second open file description of `file`, with a cursor of its own, so
/// `sendfile` can write at a chosen position without moving the cursor that
/// the caller (or another thread's copy) shares.
///
/// The reopen must not grant more than the caller's descriptor: a read-only
/// descriptor is refused (the loop then reports `EBADF`, as `pwrite` does), and
/// so is an `O_APPEND` one, whose writes the loop leaves to the kernel's rules.
/// `O_SYNC`/`O_DSYNC` carry over so the copy is as durable as a plain write.
fn reopen_for_writing(file: &File) -> io::Result<File> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    let access = flags & OFlags::ACCMODE;
    if access != OFlags::WRONLY && access != OFlags::RDWR {
        return Err(io::Error::other("destination is not open for writing"));
    }
    if flags.contains(OFlags::APPEND) {
        return Err(io::Error::other("destination is open for appending"));
    }
    let sync_flags = flags & (OFlags::SYNC | OFlags::DSYNC);
    let reopened = OpenOptions::new()
        .write(true)
        .custom_flags(sync_flags.bits() as i32)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let (theirs, ours) = (file.metadata()?, reopened.metadata()?);
    if theirs.dev() != ours.dev() || theirs.ino() != ours.ino() {
        return Err(io::Error::other("/proc/self/fd reopened a different file"));
    }
    Ok(reopened)
}

fn read_write_stage<S, D>(src: &S, dst: &D, progress: &mut Progress, len: u64) -> io::Result<()>
where
    S: ReadAt + ?Sized,
    D: WriteAt + ?Sized,
{
    // Fits: at most MAX_BUFFER_LEN.
    let mut buf = vec![0u8; progress.remaining.min(MAX_BUFFER_LEN) as usize];
    while progress.remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(progress.remaining).unwrap_or(usize::MAX));
        let n = loop {
            match src.read_at(progress.src_pos, &mut buf[..want]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "copy_range: source ends at byte {}, {} of {len} bytes not copied",
                    progress.src_pos, progress.remaining
                ),
            ));
        }
        let n = n.min(want);
        dst.write_all_at(progress.dst_pos, &buf[..n])?;
        progress.advance(n as u64, CopyMethod::ReadWrite);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use crate::anonymous_file;

    /// What a scripted kernel call does; an empty script calls the real kernel.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        /// The real call, copying at most this many bytes.
        Copy(usize),
        /// Returns 0 without copying.
        Zero,
        /// Fails with this errno without copying.
        Fail(Errno),
    }

    #[derive(Default)]
    struct Scripted {
        copy_file_range: RefCell<VecDeque<Step>>,
        sendfile: RefCell<VecDeque<Step>>,
        copy_file_range_calls: RefCell<usize>,
        sendfile_calls: RefCell<usize>,
    }

    impl Scripted {
        fn new(copy_file_range: &[Step], sendfile: &[Step]) -> Self {
            Self {
                copy_file_range: RefCell::new(copy_file_range.iter().copied().collect()),
                sendfile: RefCell::new(sendfile.iter().copied().collect()),
                ..Self::default()
            }
        }
    }

    fn run_step(
        script: &RefCell<VecDeque<Step>>,
        len: usize,
        real: impl FnOnce(usize) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match script.borrow_mut().pop_front() {
            None => real(len),
            Some(Step::Copy(max)) => real(len.min(max)),
            Some(Step::Zero) => Ok(0),
            Some(Step::Fail(errno)) => Err(errno.into()),
        }
    }

    impl KernelCopy for Scripted {
        fn copy_file_range(
            &self,
            src: &File,
            src_pos: u64,
            dst: &File,
            dst_pos: u64,
            len: usize,
        ) -> io::Result<usize> {
            *self.copy_file_range_calls.borrow_mut() += 1;
            run_step(&self.copy_file_range, len, |len| {
                Os.copy_file_range(src, src_pos, dst, dst_pos, len)
            })
        }

        fn sendfile(&self, out: &File, src: &File, src_pos: u64, len: usize) -> io::Result<usize> {
            *self.sendfile_calls.borrow_mut() += 1;
            run_step(&self.sendfile, len, |len| {
                Os.sendfile(out, src, src_pos, len)
            })
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// A source file holding `pattern(len)` and an empty destination.
    fn files(len: usize) -> (File, File) {
        let dir = std::env::temp_dir();
        let src = anonymous_file(&dir).unwrap();
        src.write_all_at(0, &pattern(len)).unwrap();
        (src, anonymous_file(&dir).unwrap())
    }

    fn contents(file: &File) -> Vec<u8> {
        let mut bytes = vec![0u8; file.size().unwrap() as usize];
        file.read_exact_at(0, &mut bytes).unwrap();
        bytes
    }

    fn copy_scripted(
        kernel: &Scripted,
        src: &File,
        src_pos: u64,
        dst: &File,
        dst_pos: u64,
        len: u64,
    ) -> io::Result<CopyStats> {
        copy_with(
            kernel,
            CopyMethod::CopyFileRange,
            src,
            src_pos,
            dst,
            dst_pos,
            len,
        )
    }

    #[test]
    fn each_fallback_errno_hands_over_after_partial_progress() {
        let fallback_errnos = [
            Errno::NOSYS,
            Errno::XDEV,
            Errno::INVAL,
            Errno::OPNOTSUPP,
            Errno::PERM,
            Errno::OVERFLOW,
        ];
        for errno in fallback_errnos {
            let (src, dst) = files(50_000);
            let kernel = Scripted::new(
                &[Step::Copy(1000), Step::Fail(errno)],
                &[Step::Copy(2000), Step::Fail(errno)],
            );
            let stats = copy_scripted(&kernel, &src, 10, &dst, 3, 40_000).unwrap();
            assert_eq!(
                stats,
                CopyStats {
                    copy_file_range: 1000,
                    sendfile: 2000,
                    read_write: 37_000
                },
                "{errno:?}"
            );
            assert_eq!(
                &contents(&dst)[3..],
                &pattern(50_000)[10..40_010],
                "{errno:?}"
            );
            assert_eq!(&contents(&dst)[..3], &[0, 0, 0]);
        }
    }

    #[test]
    fn ebadf_hands_over_from_copy_file_range_but_not_from_sendfile() {
        let (src, dst) = files(100);
        let kernel = Scripted::new(&[Step::Fail(Errno::BADF)], &[]);
        let stats = copy_scripted(&kernel, &src, 0, &dst, 0, 100).unwrap();
        assert_eq!(stats.sendfile, 100);

        let kernel = Scripted::new(&[Step::Fail(Errno::BADF)], &[Step::Fail(Errno::BADF)]);
        let error = copy_scripted(&kernel, &src, 0, &dst, 0, 100).unwrap_err();
        assert_eq!(Errno::from_io_error(&error), Some(Errno::BADF));
    }

    #[test]
    fn real_errors_stop_the_copy_without_trying_other_methods() {
        let (src, dst) = files(100);
        let kernel = Scripted::new(&[Step::Copy(10), Step::Fail(Errno::IO)], &[]);
        let error = copy_scripted(&kernel, &src, 0, &dst, 0, 100).unwrap_err();
        assert_eq!(Errno::from_io_error(&error), Some(Errno::IO));
        assert_eq!(*kernel.sendfile_calls.borrow(), 0);

        let kernel = Scripted::new(&[Step::Fail(Errno::XDEV)], &[Step::Fail(Errno::NOSPC)]);
        let error = copy_scripted(&kernel, &src, 0, &dst, 0, 100).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StorageFull);
    }

    #[test]
    fn interrupted_calls_are_retried_in_place() {
        let (src, dst) = files(5000);
        let kernel = Scripted::new(
            &[
                Step::Fail(Errno::INTR),
                Step::Copy(100),
                Step::Fail(Errno::INTR),
            ],
            &[],
        );
        let stats = copy_scripted(&kernel, &src, 0, &dst, 0, 5000).unwrap();
        assert_eq!(stats.copy_file_range, 5000);
        assert_eq!(*kernel.copy_file_range_calls.borrow(), 4);
        assert_eq!(contents(&dst), pattern(5000));
    }

    #[test]
    fn zero_returns_hand_over_instead_of_looping() {
        // The /proc bug: copy_file_range and sendfile both claim end of file
        // although the source has data; the loop copies it.
        let (src, dst) = files(3000);
        let kernel = Scripted::new(&[Step::Zero, Step::Zero], &[Step::Zero, Step::Zero]);
        let stats = copy_scripted(&kernel, &src, 0, &dst, 0, 3000).unwrap();
        assert_eq!(stats.read_write, 3000);
        assert_eq!(*kernel.copy_file_range_calls.borrow(), 1);
        assert_eq!(*kernel.sendfile_calls.borrow(), 1);
        assert_eq!(contents(&dst), pattern(3000));
    }

    #[test]
    fn a_source_that_really_ends_is_an_error_after_one_zero_per_method() {
        let (src, dst) = files(1000);
        let kernel = Scripted::new(&[], &[]);
        let error = copy_scripted(&kernel, &src, 500, &dst, 0, 1000).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("500 of 1000"), "{error}");
        // One call that copies, one that returns 0; then one sendfile zero.
        assert_eq!(*kernel.copy_file_range_calls.borrow(), 2);
        assert_eq!(*kernel.sendfile_calls.borrow(), 1);
        assert_eq!(contents(&dst), &pattern(1000)[500..]);
    }

    #[test]
    fn sendfile_does_not_move_the_destination_cursor() {
        let (src, mut dst) = files(100);
        dst.seek(SeekFrom::Start(7)).unwrap();
        let kernel = Scripted::new(&[Step::Fail(Errno::XDEV)], &[]);
        let stats = copy_scripted(&kernel, &src, 0, &dst, 50, 100).unwrap();
        assert_eq!(stats.sendfile, 100);
        assert_eq!(dst.stream_position().unwrap(), 7);
    }

    #[test]
    fn only_documented_errnos_mean_fall_back() {
        for errno in [
            Errno::IO,
            Errno::NOSPC,
            Errno::ACCESS,
            Errno::SPIPE,
            Errno::ROFS,
        ] {
            let error = io::Error::from(errno);
            assert!(
                !kernel_cannot_copy(&error, CopyMethod::CopyFileRange),
                "{errno:?}"
            );
            assert!(
                !kernel_cannot_copy(&error, CopyMethod::Sendfile),
                "{errno:?}"
            );
        }
        let not_os = io::Error::new(ErrorKind::InvalidInput, "not from the kernel");
        assert!(!kernel_cannot_copy(&not_os, CopyMethod::CopyFileRange));
    }
}
