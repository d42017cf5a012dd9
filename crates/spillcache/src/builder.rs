//! The builder: options of a cache, collected before it starts.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use blockdev::{ReadAt, WriteAt};

use crate::config::{AnonymousFiles, Config, FileFactory};

/// Options for a [`SpillCache`](crate::SpillCache), then [`Builder::build`].
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
    pub(crate) factory: Box<dyn FileFactory<File = D>>,
    pub(crate) config: Config,
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
    /// [`Error::KeyTooLong`](crate::Error::KeyTooLong).
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
    /// [`SpillCache::get_and_store_in_ram`](crate::SpillCache::get_and_store_in_ram) are kept whatever the budget.
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

    /// Bounds the bytes of values waiting to be written (default 256 MiB,
    /// a fixed figure so the bound does not depend on the machine: about a
    /// third of a second of encrypting and writing).
    ///
    /// When a value would take the waiting bytes past the bound,
    /// [`add`](crate::SpillCache::add) waits for the writer (like a bounded
    /// channel's send, with no deadline),
    /// [`try_add`](crate::SpillCache::try_add) returns [`Error::Full`](crate::Error::Full)
    /// and [`add_timeout`](crate::SpillCache::add_timeout) waits at most its
    /// timeout. A value larger than the bound is taken once nothing else
    /// waits. Overwriting a waiting value replaces its bytes in the count.
    /// Room is made before a value is copied, and values being copied in
    /// count too, so callers waiting for room (or refused) hold no copies.
    /// Memory-only values have their own bound,
    /// [`max_memory_only_bytes`](Self::max_memory_only_bytes).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = spillcache::Builder::with_file_factory(|| Ok(MemDevice::new()))
    ///     .max_pending_bytes(1 << 20)
    ///     .build()?;
    /// cache.add(b"k", &[1u8; 1000])?;
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn max_pending_bytes(mut self, bytes: u64) -> Self {
        self.config.max_pending_bytes = bytes;
        self
    }

    /// Bounds the bytes of memory-only values (default: no bound). They are
    /// never written, so waiting cannot make room: past the bound,
    /// [`add_memory_only`](crate::SpillCache::add_memory_only) returns
    /// [`Error::MemoryOnlyFull`](crate::Error::MemoryOnlyFull) at once.
    /// They do not count against
    /// [`max_pending_bytes`](Self::max_pending_bytes), which bounds only what
    /// the writer will drain.
    ///
    /// ```
    /// let cache = spillcache::Builder::new(std::env::temp_dir())
    ///     .max_memory_only_bytes(10)
    ///     .build()?;
    /// cache.add_memory_only(b"a", &[0u8; 10])?;
    /// assert!(matches!(
    ///     cache.add_memory_only(b"b", b"x"),
    ///     Err(spillcache::Error::MemoryOnlyFull { would_be: 11, limit: 10 })
    /// ));
    /// cache.add_memory_only(b"a", &[0u8; 4])?; // an overwrite replaces its bytes
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn max_memory_only_bytes(mut self, bytes: u64) -> Self {
        self.config.max_memory_only_bytes = bytes;
        self
    }

    /// After a failed write (or defragmentation), wait `min` before retrying,
    /// doubling per failure in a row up to `max` (default 10 ms to 1 s).
    /// `min` must be above zero and not exceed `max`, and `max` must be at
    /// most an hour ([`build`](Self::build) says which was wrong). A failed
    /// write never holds up the values behind it, and freed space makes the
    /// writer retry at once.
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
}

impl<D> std::fmt::Debug for Builder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
