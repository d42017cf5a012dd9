//! Positional I/O through `&self`, over files and memory.
//!
//! This crate is the bottom layer of the workspace's disk caches: the page
//! cache reads through [`ReadAt`], the spill cache writes through [`WriteAt`],
//! copies with [`copy_range`] and keeps its data in an [`anonymous_file`],
//! and both prove in their tests, with [`FaultyDevice`], that they lose
//! nothing when the disk fails. Linux only (it uses `O_TMPFILE`,
//! `copy_file_range` and `sendfile` through [rustix]; no `unsafe`).
//!
//! # Devices
//!
//! [`ReadAt`] and [`WriteAt`] read and write at an absolute position without a
//! shared cursor, like `pread`/`pwrite`, so one device can serve many threads
//! at once. Both take `&self` and are object safe.
//!
//! | Device | Reads | Writes | Notes |
//! |---|---|---|---|
//! | [`std::fs::File`] | yes | yes | `pread`/`pwrite`; kernel copies in [`copy_range`] |
//! | `[u8]`, `[u8; N]`, `Vec<u8>` | yes | no | fixed contents |
//! | [`MemDevice`] | yes | yes | shared, growable, `Send + Sync + Clone` |
//! | [`FaultyDevice<D>`] | yes | yes | wraps any device, injects faults |
//! | `&D`, `Box<D>`, `Arc<D>` | as `D` | as `D` | forwarding, also for `dyn ReadAt` |
//!
//! ```
//! use blockdev::{MemDevice, ReadAt, WriteAt};
//!
//! let dev = MemDevice::new();
//! dev.write_all_at(4, b"data")?;          // the gap before 4 reads as zeros
//! let mut buf = [0u8; 4];
//! dev.read_exact_at(4, &mut buf)?;
//! assert_eq!(&buf, b"data");
//! assert_eq!(dev.size()?, 8);
//!
//! // Reading past the end is an error, never a short buffer or a panic.
//! let error = dev.read_exact_at(6, &mut buf).unwrap_err();
//! assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`ReadAt::read_exact_at`] and [`WriteAt::write_all_at`] retry short calls
//! and `EINTR`; a read that ends early fails with `UnexpectedEof`, a write
//! the device will not take with `WriteZero`.
//!
//! # Versions: one `refresh` for a whole stack
//!
//! [`ReadAt::refresh`] moves a device, and every device below it, to the
//! current contents of what it reads, and says whether they may have
//! changed. A layer that caches bytes (a page cache, a disk tier) calls the
//! layer below, then drops its own bytes when told `true`, so one call on
//! the top of a stack moves all of it; the wrappers here (`&D`, `Box<D>`,
//! `Arc<D>`, [`FaultyDevice`]) pass it through. A device that cannot tell
//! says `true`.
//!
//! # Anonymous files
//!
//! [`anonymous_file`] creates a read-write file with mode `0600` and
//! close-on-exec that has no name: `O_TMPFILE` where the filesystem supports
//! it, and where it does not (the kernel says `EOPNOTSUPP`, or an old kernel
//! says `EISDIR`, `EINVAL` or `ENOENT`), a random name created with `O_EXCL`
//! and unlinked at once. Either way the data vanishes when the file is closed,
//! crash included.
//!
//! ```
//! use blockdev::{anonymous_file, ReadAt, WriteAt};
//!
//! let file = anonymous_file(&std::env::temp_dir())?;
//! file.write_all_at(0, b"secret")?;
//! assert_eq!(file.size()?, 6);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Copying
//!
//! [`copy_range`] copies a byte range from any [`ReadAt`] to any [`WriteAt`].
//! Between two files it lets the kernel do the work and falls back step by
//! step, keeping what each step already copied:
//!
//! 1. `copy_file_range`: the filesystem copies; on btrfs or XFS it shares the
//!    blocks (reflink), on NFS the server copies.
//! 2. `sendfile`, when `copy_file_range` cannot: different filesystems
//!    (`EXDEV`), an old kernel (`ENOSYS`), a file it does not support
//!    (`EINVAL`, `EOPNOTSUPP`), seccomp (`EPERM`), or a zero return (the
//!    kernel's `/proc` quirk). `sendfile` writes at a file cursor, so it goes
//!    through a private reopen of the destination; neither file's cursor moves.
//! 3. A `pread`/`pwrite` loop with one buffer (up to 1 MiB), for the same
//!    reasons, and for every pair of devices that are not both files.
//!
//! A source that ends before the range does is an `UnexpectedEof` error from
//! the loop, never an endless retry; every other error comes back as the
//! device returned it, errno included.
//!
//! ```
//! use blockdev::{anonymous_file, copy_range, MemDevice, ReadAt};
//!
//! let src = MemDevice::from_vec(b"hello, world".to_vec());
//! let dst = anonymous_file(&std::env::temp_dir())?;
//! assert_eq!(copy_range(&src, 7, &dst, 0, 5)?, 5);
//! let mut buf = [0u8; 5];
//! dst.read_exact_at(0, &mut buf)?;
//! assert_eq!(&buf, b"world");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Giving space back
//!
//! [`punch_hole`] frees the file-system blocks inside a byte range of a file
//! (`fallocate(PUNCH_HOLE | KEEP_SIZE)`), so a cache can return freed space
//! without rewriting the file; on other devices, or file systems that
//! cannot, it does nothing and says so (0 bytes punched).
//!
//! # Fault injection
//!
//! [`FaultyDevice`] wraps a device and, as told at run time through `&self`,
//! fails the Nth, every k-th or every read/write/`set_len`/`sync_data` with a
//! chosen [`Errno`] (see [`Fault`]), shortens reads and writes, or flips bytes
//! on read (see [`Corruption`]). It counts the calls it sees and keeps the
//! read-ahead hints it passes on ([`FaultyDevice::hints`]).
//!
//! ```
//! use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
//!
//! let disk = FaultyDevice::new(MemDevice::new());
//! disk.fail_writes(Fault::Nth(1, Errno::NOSPC));
//! let error = disk.write_all_at(0, b"lost?").unwrap_err();
//! assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
//! disk.write_all_at(0, b"kept")?;
//! assert_eq!(disk.inner().to_vec(), b"kept");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [rustix]: https://docs.rs/rustix
#![forbid(unsafe_code)]

mod anon;
mod context;
mod copy;
mod device;
mod faulty;
mod file;
mod mem;
mod punch;

pub use anon::anonymous_file;
#[doc(hidden)]
pub use anon::{AnonymousMethod, anonymous_file_with};
pub use copy::copy_range;
#[doc(hidden)]
pub use copy::{CopyMethod, CopyStats, copy_range_with};
pub use device::{ReadAt, WriteAt};
pub use faulty::{Corruption, Errno, Fault, FaultyDevice};
pub use mem::MemDevice;
pub use punch::punch_hole;
