//! Options of a cache and where its files come from.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use blockdev::{ReadAt, WriteAt};

use crate::cache::SpillCache;
use crate::error::{Error, Result};

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

/// The options a cache runs with, fixed when it is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_key_len: usize,
    pub(crate) defrag_factor: f64,
    pub(crate) small_hole_threshold: u64,
    pub(crate) ram_budget: u64,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
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
        }
    }
}

/// Options for a [`SpillCache`], then [`Builder::build`].
///
/// ```
/// use spillcache::Builder;
///
/// let cache = Builder::new(std::env::temp_dir())
///     .max_key_len(64)
///     .defrag_factor(3.0)
///     .small_hole_threshold(128)
///     .ram_budget(1 << 20)
///     .build()?;
/// assert!(cache.add(&[1u8; 65], b"v").is_err());
/// # Ok::<(), spillcache::Error>(())
/// ```
pub struct Builder<D = File> {
    factory: Box<dyn FileFactory<File = D>>,
    config: Config,
}

impl Builder<File> {
    /// A builder for a cache whose files are anonymous files in `dir`.
    ///
    /// ```
    /// let cache = spillcache::Builder::new(std::env::temp_dir()).build()?;
    /// assert!(cache.is_empty());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_file_factory(AnonymousFiles::new(dir))
    }
}

impl<D: ReadAt + WriteAt + Send + Sync + 'static> Builder<D> {
    /// A builder for a cache whose files come from `factory`.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = spillcache::Builder::with_file_factory(|| Ok(MemDevice::new())).build()?;
    /// cache.add_memory_only(b"k", b"v")?;
    /// assert_eq!(cache.len(), 1);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn with_file_factory<F: FileFactory<File = D>>(factory: F) -> Self {
        Builder {
            factory: Box::new(factory),
            config: Config::default(),
        }
    }

    /// The longest key accepted, in bytes (default 256). A longer key is
    /// [`Error::KeyTooLong`].
    ///
    /// ```
    /// let cache = spillcache::Builder::new(std::env::temp_dir()).max_key_len(4).build()?;
    /// assert!(cache.add(b"12345", b"v").is_err());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn max_key_len(mut self, max: usize) -> Self {
        self.config.max_key_len = max;
        self
    }

    /// Defragment when the end of data exceeds `factor` times the bytes of
    /// the entries in the file (default 2; at least 1).
    ///
    /// ```
    /// let result = spillcache::Builder::new(std::env::temp_dir()).defrag_factor(0.5).build();
    /// assert!(matches!(result, Err(spillcache::Error::InvalidOption { option: "defrag_factor", .. })));
    /// ```
    pub fn defrag_factor(mut self, factor: f64) -> Self {
        self.config.defrag_factor = factor;
        self
    }

    /// Holes of at most this many bytes are not tracked (default 0: every
    /// hole is); their space comes back only with a defragmentation.
    ///
    /// ```
    /// let cache = spillcache::Builder::new(std::env::temp_dir()).small_hole_threshold(512).build()?;
    /// assert!(cache.holes().is_empty());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn small_hole_threshold(mut self, bytes: u64) -> Self {
        self.config.small_hole_threshold = bytes;
        self
    }

    /// How many bytes of values may stay in RAM after they were written, so
    /// reads of them skip the file (default 0). Copies asked for with
    /// [`SpillCache::get_and_store_in_ram`] are kept whatever the budget.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::Builder::new(std::env::temp_dir()).ram_budget(1024).build()?;
    /// cache.add(b"small", &[7u8; 100])?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.num_cached_in_ram(), 1);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn ram_budget(mut self, bytes: u64) -> Self {
        self.config.ram_budget = bytes;
        self
    }

    /// After a failed write (or defragmentation), wait `min` before retrying,
    /// doubling per failure in a row up to `max` (default 10 ms to 1 s).
    /// `min` must be above zero and not exceed `max`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::Builder::new(std::env::temp_dir())
    ///     .retry_backoff(Duration::from_millis(1), Duration::from_millis(50))
    ///     .build()?;
    /// # drop(cache);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.retry_min = min;
        self.config.retry_max = max;
        self
    }

    /// Creates the first file and starts the writer thread.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a defrag factor below 1 (or not finite)
    /// or a retry minimum of zero or above the maximum; [`Error::Io`] when the file
    /// cannot be created or the thread cannot start.
    ///
    /// ```
    /// let missing = std::env::temp_dir().join("spillcache-no-such-dir/x/y");
    /// let result = spillcache::Builder::new(missing).build();
    /// assert!(matches!(result, Err(spillcache::Error::Io(_))));
    /// ```
    pub fn build(self) -> Result<SpillCache<D>> {
        let config = self.config;
        if !config.defrag_factor.is_finite() || config.defrag_factor < 1.0 {
            return Err(Error::InvalidOption {
                option: "defrag_factor",
                reason: format!("{} is not a number of at least 1", config.defrag_factor),
            });
        }
        if config.retry_min.is_zero() {
            // A zero backoff would let a failing defrag retry forever
            // without the writer ever getting to its writes.
            return Err(Error::InvalidOption {
                option: "retry_backoff",
                reason: "minimum must be above zero".into(),
            });
        }
        if config.retry_min > config.retry_max {
            return Err(Error::InvalidOption {
                option: "retry_backoff",
                reason: format!(
                    "minimum {:?} is above maximum {:?}",
                    config.retry_min, config.retry_max
                ),
            });
        }
        SpillCache::start(self.factory, config)
    }
}

impl<D> std::fmt::Debug for Builder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
