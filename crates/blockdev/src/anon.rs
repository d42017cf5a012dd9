//! Anonymous temporary files: no name while in use, mode 0600, close-on-exec.

use std::collections::hash_map::RandomState;
use std::fs::{File, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::context::with_context;

/// Permission bits of every anonymous file: read and write for the owner only.
const PRIVATE_MODE: u32 = 0o600;

/// How many random names the fallback tries before giving up on `EEXIST`.
const NAME_ATTEMPTS: usize = 32;

/// Creates a file in `dir` that has no name, so no other process can open it
/// by path and it disappears when the last descriptor closes (even on a crash).
///
/// The file is opened read-write with mode `0600` and close-on-exec. Linux's
/// `O_TMPFILE` creates it without a name at all; on filesystems or kernels
/// without `O_TMPFILE` (`EOPNOTSUPP`, `EISDIR`, `EINVAL`, `ENOENT`), it is
/// created under a random name with `O_CREAT | O_EXCL` and unlinked at once,
/// so a name exists only for the moment between the two calls.
///
/// If the umask stripped owner bits from `0600`, they are put back with
/// `fchmod`; no group or other bit is ever set.
///
/// ```
/// use blockdev::{anonymous_file, ReadAt, WriteAt};
///
/// let file = anonymous_file(&std::env::temp_dir())?;
/// file.write_all_at(0, b"spilled bytes")?;
/// let mut buf = [0u8; 7];
/// file.read_exact_at(0, &mut buf)?;
/// assert_eq!(&buf, b"spilled");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The OS error of the creation (for example [`io::ErrorKind::NotFound`] when
/// `dir` does not exist, or `PermissionDenied`), with `dir` in the message and
/// the error kind kept.
pub fn anonymous_file(dir: &Path) -> io::Result<File> {
    anonymous_file_with(dir, AnonymousMethod::TmpfileOrNamed)
}

/// Which way [`anonymous_file_with`] creates the file. For tests: the default
/// is [`AnonymousMethod::TmpfileOrNamed`], which is what [`anonymous_file`] does.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnonymousMethod {
    /// `O_TMPFILE`, and the random name when the filesystem lacks it.
    TmpfileOrNamed,
    /// `O_TMPFILE` only; its error is returned as it is.
    Tmpfile,
    /// Only the random name, created and unlinked at once.
    Named,
    /// [`AnonymousMethod::Named`] where the first `failures` unlink calls
    /// fail with `EBUSY`, as on a filesystem that refuses to unlink an open
    /// file: shows that no name is left behind on the error path.
    NamedFailingUnlink {
        /// How many unlink calls fail before they succeed.
        failures: u32,
    },
}

/// [`anonymous_file`] with the creation method chosen by the caller, so tests
/// can reach the fallback on filesystems that support `O_TMPFILE`.
///
/// ```
/// use blockdev::{anonymous_file_with, AnonymousMethod, ReadAt};
///
/// let file = anonymous_file_with(&std::env::temp_dir(), AnonymousMethod::Named)?;
/// assert_eq!(file.size()?, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`anonymous_file`].
#[doc(hidden)]
pub fn anonymous_file_with(dir: &Path, method: AnonymousMethod) -> io::Result<File> {
    let fd = match method {
        AnonymousMethod::Tmpfile => open_tmpfile(dir),
        AnonymousMethod::Named => open_named_and_unlink(dir, &mut unlinkat),
        AnonymousMethod::TmpfileOrNamed => match open_tmpfile(dir) {
            Err(e) if tmpfile_unsupported(e) => open_named_and_unlink(dir, &mut unlinkat),
            other => other,
        },
        AnonymousMethod::NamedFailingUnlink { mut failures } => {
            open_named_and_unlink(dir, &mut |dir_fd, name| {
                if failures > 0 {
                    failures -= 1;
                    return Err(Errno::BUSY);
                }
                unlinkat(dir_fd, name)
            })
        }
    };
    let fd = fd.map_err(|e| {
        with_context(
            e.into(),
            format!("creating an anonymous file in {}", dir.display()),
        )
    })?;
    let file = File::from(fd);
    make_private(&file, dir)?;
    Ok(file)
}

/// The `O_TMPFILE` errors that mean "not here", not "cannot create a file":
/// the filesystem lacks it (`EOPNOTSUPP`), or the kernel predates it and saw
/// only the `O_DIRECTORY` bit it contains (`EISDIR`, `EINVAL`, `ENOENT`). A
/// real `ENOENT` (no such directory) fails the fallback too, so nothing is lost.
fn tmpfile_unsupported(error: Errno) -> bool {
    matches!(
        error,
        Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT
    )
}

fn open_tmpfile(dir: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(PRIVATE_MODE),
    )
}

fn unlinkat(dir_fd: &OwnedFd, name: &str) -> Result<(), Errno> {
    rustix::fs::unlinkat(dir_fd, name, AtFlags::empty())
}

/// Creates a random name with `O_EXCL` (never an existing file, never through a
/// symlink) and unlinks it at once. Both calls go through one descriptor of
/// `dir`, so a rename of `dir` in between cannot make us unlink something else.
///
/// If the unlink fails, the name must not outlive the call: it is retried
/// once, then once more after closing the file (some filesystems refuse to
/// unlink an open file), and the first error is returned.
fn open_named_and_unlink(
    dir: &Path,
    unlink: &mut dyn FnMut(&OwnedFd, &str) -> Result<(), Errno>,
) -> Result<OwnedFd, Errno> {
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut last_error = Errno::EXIST;
    for _ in 0..NAME_ATTEMPTS {
        let name = random_name();
        match rustix::fs::openat(
            &dir_fd,
            name.as_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(PRIVATE_MODE),
        ) {
            Ok(fd) => {
                let Err(error) = unlink(&dir_fd, &name).or_else(|_| unlink(&dir_fd, &name)) else {
                    return Ok(fd);
                };
                drop(fd);
                // Nothing more can be done if this fails too; the caller
                // gets the error either way.
                let _ = unlink(&dir_fd, &name);
                return Err(error);
            }
            Err(Errno::EXIST) => last_error = Errno::EXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

/// A hidden file name with 128 random bits. The kernel's random source is
/// preferred; a hash of time, pid and a counter under std's randomly keyed
/// hasher is the fallback (names only need to be unlikely to collide, since
/// `O_EXCL` makes a collision a retry, never a shared file).
fn random_name() -> String {
    let mut bytes = [0u8; 16];
    let from_kernel = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::NONBLOCK);
    if !matches!(from_kernel, Ok(n) if n == bytes.len()) {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            hasher.write_usize(i);
            half.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    let mut name = String::from(".anon-");
    for byte in bytes {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Puts back owner bits a restrictive umask removed (the umask can only remove
/// bits, so nothing beyond `0600` is ever granted).
fn make_private(file: &File, dir: &Path) -> io::Result<()> {
    let mode = file.metadata()?.mode() & 0o777;
    if mode != PRIVATE_MODE {
        file.set_permissions(Permissions::from_mode(PRIVATE_MODE))
            .map_err(|e| {
                with_context(
                    e,
                    format!(
                        "setting mode 0600 on an anonymous file in {} (it has {mode:o})",
                        dir.display()
                    ),
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_differ_and_are_hidden() {
        let first = random_name();
        let second = random_name();
        assert_ne!(first, second);
        assert!(first.starts_with(".anon-"));
        assert_eq!(first.len(), ".anon-".len() + 32);
    }

    #[test]
    fn unsupported_tmpfile_errors_are_recognised() {
        for errno in [Errno::OPNOTSUPP, Errno::ISDIR, Errno::INVAL, Errno::NOENT] {
            assert!(tmpfile_unsupported(errno), "{errno:?}");
        }
        for errno in [Errno::ACCESS, Errno::NOSPC, Errno::ROFS, Errno::MFILE] {
            assert!(!tmpfile_unsupported(errno), "{errno:?}");
        }
    }
}
