//! Types the builder and the cache state share: the options a cache runs
//! with and where its files come from.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use blockdev::{ReadAt, WriteAt};

use crate::error::Error;

/// Makes the files a cache writes to: the first one, and a fresh one for
/// every defragmentation.
///
/// The default, [`AnonymousFiles`], makes nameless files with
/// [`blockdev::anonymous_file`]. Any `Fn() -> io::Result<D>` is a factory
/// too, which lets tests hand in in-memory or fault-injecting devices.
///
/// ```
/// use blockdev::MemDevice;
/// use spillcache::Builder;
///
/// let cache = Builder::with_file_factory(|| Ok(MemDevice::new())).build()?;
/// cache.add(b"key", b"value")?;
/// assert!(cache.wait_for_write(std::time::Duration::from_secs(5))?);
/// # Ok::<(), spillcache::Error>(())
/// ```
pub trait FileFactory: Send + Sync + 'static {
    /// The device type made.
    type File: ReadAt + WriteAt + Send + Sync + 'static;

    /// Makes a new, empty file.
    ///
    /// # Errors
    /// The I/O error of creating it.
    fn create(&self) -> io::Result<Self::File>;
}

impl<F, D> FileFactory for F
where
    F: Fn() -> io::Result<D> + Send + Sync + 'static,
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    type File = D;

    fn create(&self) -> io::Result<D> {
        self()
    }
}

/// The default factory: [`blockdev::anonymous_file`] in a directory (no
/// name while in use, mode 0600, close-on-exec).
///
/// ```
/// use spillcache::{AnonymousFiles, FileFactory};
///
/// let factory = AnonymousFiles::new(std::env::temp_dir());
/// let file = factory.create()?;
/// assert_eq!(file.metadata()?.len(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AnonymousFiles {
    dir: PathBuf,
}

impl AnonymousFiles {
    /// Files in `dir`.
    ///
    /// ```
    /// let factory = spillcache::AnonymousFiles::new("/tmp");
    /// assert_eq!(factory.dir(), std::path::Path::new("/tmp"));
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory the files are made in.
    ///
    /// ```
    /// let factory = spillcache::AnonymousFiles::new("/var/tmp");
    /// assert_eq!(factory.dir().to_str(), Some("/var/tmp"));
    /// ```
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl FileFactory for AnonymousFiles {
    type File = File;

    fn create(&self) -> io::Result<File> {
        blockdev::anonymous_file(&self.dir)
    }
}

/// Bytes of values waiting to be written that a cache holds by default
/// before `add` waits: 256 MiB. A fixed figure rather than a share of RAM,
/// so the bound does not depend on the machine (or on reading
/// `/proc/meminfo`); at the ~0.8 GB/s the writer encrypts, it is about a
/// third of a second of writing, enough to absorb bursts.
pub(crate) const DEFAULT_MAX_PENDING_BYTES: u64 = 256 << 20;

/// The longest retry backoff accepted: a cache that waits longer than this
/// before retrying a failed write is not making progress.
pub(crate) const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(3600);

/// The options a cache runs with, fixed when it is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_key_len: usize,
    pub(crate) defrag_factor: f64,
    pub(crate) small_hole_threshold: u64,
    pub(crate) ram_budget: u64,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) max_pending_bytes: u64,
    pub(crate) max_memory_only_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_key_len: 256,
            defrag_factor: 2.0,
            small_hole_threshold: 0,
            ram_budget: 0,
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_secs(1),
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_memory_only_bytes: u64::MAX,
        }
    }
}

impl Config {
    /// Checks every option; the first one out of range is the error.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid =
            |option: &'static str, reason: String| Err(Error::InvalidOption { option, reason });
        if !self.defrag_factor.is_finite() || self.defrag_factor < 1.0 {
            return invalid(
                "defrag_factor",
                format!("{} is not a number of at least 1", self.defrag_factor),
            );
        }
        if self.retry_min.is_zero() {
            // A zero backoff would let a failing defrag retry forever
            // without the writer ever getting to its writes.
            return invalid("retry_backoff", "minimum must be above zero".into());
        }
        if self.retry_min > self.retry_max {
            return invalid(
                "retry_backoff",
                format!(
                    "minimum {:?} is above maximum {:?}",
                    self.retry_min, self.retry_max
                ),
            );
        }
        if self.retry_max > MAX_RETRY_BACKOFF {
            return invalid(
                "retry_backoff",
                format!(
                    "maximum {:?} is above {MAX_RETRY_BACKOFF:?}: failed writes would wait too long to be retried",
                    self.retry_max
                ),
            );
        }
        Ok(())
    }
}
