//! The error type of every fallible call.

use std::fmt;
use std::io;

/// What went wrong in a [`SpillCache`](crate::SpillCache) call.
///
/// ```
/// use spillcache::{Error, SpillCache};
///
/// let cache = SpillCache::new(std::env::temp_dir())?;
/// let err = cache.add(&[0u8; 300], b"value").unwrap_err();
/// assert!(matches!(err, Error::KeyTooLong { len: 300, max: 256 }));
/// assert_eq!(err.to_string(), "key of 300 bytes is longer than the maximum of 256");
/// # Ok::<(), spillcache::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The key is longer than the cache's maximum key length.
    KeyTooLong {
        /// Length of the key given.
        len: usize,
        /// The maximum ([`Builder::max_key_len`](crate::Builder::max_key_len)).
        max: usize,
    },
    /// A builder option is out of range.
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The caller's buffer cannot hold the value.
    BufferTooSmall {
        /// Length of the value.
        needed: usize,
        /// Length of the buffer given.
        got: usize,
    },
    /// Creating the cache file or reading a spilled entry failed.
    Io(io::Error),
    /// The background writer could not write entries: they stay in RAM and
    /// readable, and are retried with backoff.
    WriteFailed(io::Error),
    /// Defragmenting failed; the old file stays in use.
    DefragFailed(io::Error),
    /// The bytes read back for this key do not match their integrity tag
    /// (the file was changed or damaged). No data is returned.
    Corrupt {
        /// The key whose entry failed the check.
        key: Vec<u8>,
    },
    /// Writing stopped for good: a device call panicked (a write, a
    /// defragmentation's copy, a hole punch, a truncation), on the writer
    /// thread, a thread helping it, or a caller's thread writing for
    /// [`wait_for_write`](crate::SpillCache::wait_for_write) or truncating
    /// for [`clear`](crate::SpillCache::clear). Nothing more will be
    /// written; values not yet written stay in RAM and readable, written
    /// ones where they are.
    WriterStopped,
    /// The cache is full: the value would take the bytes waiting to be
    /// written past the bound ([`Builder::max_pending_bytes`](crate::Builder::max_pending_bytes)).
    /// Returned by `try_add` at once and by `add_timeout` at its timeout;
    /// `add` waits instead.
    Full {
        /// Bytes of other values waiting to be written (or being copied
        /// in by other calls).
        waiting: u64,
        /// Bytes of the value refused.
        len: u64,
        /// The bound.
        limit: u64,
    },
    /// Memory-only values would exceed their bound
    /// ([`Builder::max_memory_only_bytes`](crate::Builder::max_memory_only_bytes)).
    /// Nothing but the caller frees them, so this never waits.
    MemoryOnlyFull {
        /// Bytes of memory-only values there would be.
        would_be: u64,
        /// The bound.
        limit: u64,
    },
}

/// `Result` with [`Error`] as the default error.
///
/// ```
/// fn lookup(cache: &spillcache::SpillCache, key: &[u8]) -> spillcache::Result<bool> {
///     Ok(cache.get(key)?.is_some())
/// }
/// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
/// assert!(!lookup(&cache, b"k")?);
/// # Ok::<(), spillcache::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyTooLong { len, max } => {
                write!(f, "key of {len} bytes is longer than the maximum of {max}")
            }
            Error::InvalidOption { option, reason } => write!(f, "invalid {option}: {reason}"),
            Error::BufferTooSmall { needed, got } => {
                write!(
                    f,
                    "buffer of {got} bytes cannot hold a value of {needed} bytes"
                )
            }
            Error::Io(e) => write!(f, "cache file I/O failed: {e}"),
            Error::WriteFailed(e) => write!(
                f,
                "writing entries to the cache file failed (they stay in RAM and are retried): {e}"
            ),
            Error::DefragFailed(e) => {
                write!(
                    f,
                    "defragmenting the cache file failed (the old file stays in use): {e}"
                )
            }
            Error::Corrupt { key } => write!(
                f,
                "the cached bytes of key {} fail their integrity check",
                EscapedKey(key)
            ),
            Error::WriterStopped => write!(
                f,
                "the cache's writer stopped after a panic; nothing more is written"
            ),
            Error::Full {
                waiting,
                len,
                limit,
            } => write!(
                f,
                "the cache is full: {waiting} bytes wait to be written and {len} more would pass the limit of {limit}; try again later, or use add, which waits"
            ),
            Error::MemoryOnlyFull { would_be, limit } => write!(
                f,
                "memory-only values would take {would_be} bytes, above their limit of {limit}; remove some first"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::WriteFailed(e) | Error::DefragFailed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Shows a byte key as an escaped string, shortened when long.
struct EscapedKey<'a>(&'a [u8]);

impl fmt::Display for EscapedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "\"{}\"", shown.escape_ascii())?;
        if self.0.len() > SHOWN {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// A copy of an I/O error for a second reader (io::Error is not `Clone`):
/// the OS code when there is one, else the kind and message.
pub(crate) fn copy_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_key_is_escaped_and_shortened() {
        let e = Error::Corrupt {
            key: vec![b'a'; 70],
        };
        let text = e.to_string();
        assert!(text.contains(&"a".repeat(64)), "{text}");
        assert!(
            text.ends_with("... (70 bytes) fail their integrity check"),
            "{text}"
        );
        let e = Error::Corrupt { key: vec![0, b'x'] };
        assert!(e.to_string().contains("\"\\x00x\""), "{e}");
    }

    #[test]
    fn copied_io_error_keeps_the_os_code() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(copy_io_error(&e).raw_os_error(), Some(28));
        let e = io::Error::new(io::ErrorKind::WriteZero, "short");
        let copy = copy_io_error(&e);
        assert_eq!(
            (copy.kind(), copy.to_string()),
            (io::ErrorKind::WriteZero, "short".into())
        );
    }

    #[test]
    fn io_errors_are_sources() {
        use std::error::Error as _;
        let e = Error::WriteFailed(io::Error::from_raw_os_error(28));
        assert!(e.source().is_some());
        assert!(Error::WriterStopped.source().is_none());
    }
}
