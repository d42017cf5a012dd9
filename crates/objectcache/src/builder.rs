//! `Builder`: the budgets and shape of a caching store.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use pagecache::PageCache;
use spillcache::SpillTier;

use crate::error::Error;
use crate::regions::Regions;
use crate::store::CachingStore;
use crate::tiers::Tiers;

/// Default page size of the RAM tier: 64 KiB, about one Parquet data page.
pub const DEFAULT_PAGE_SIZE: usize = 64 << 10;

/// Default RAM budget: 64 MiB of pages.
pub const DEFAULT_RAM_BYTES: u64 = 64 << 20;

/// Default disk budget: 1 GiB of encrypted chunks.
pub const DEFAULT_DISK_BYTES: u64 = 1 << 30;

/// Default chunk size of the disk tier, and the most a cold miss reads at
/// once: 1 MiB (the disk tier's default).
pub const DEFAULT_CHUNK_SIZE: u64 = spillcache::DEFAULT_CHUNK_SIZE;

/// Most bytes the RAM tier asks of the disk tier in one read: as objectdev's
/// GET parts, so a long cold read is few large GETs.
const MAX_BATCH_BYTES: u64 = 8 << 20;

/// The options of a [`CachingStore`]: the same budgets as the synchronous
/// stack (`PageCache` over `SpillTier`), one of each for every object.
///
/// - `ram_bytes`: all the RAM the cache holds: bytes fetched ahead (at
///   most `read_ahead_bytes`) plus pages (the rest, rounded down to a power
///   of two number of pages; the frames are allocated when built).
/// - `read_ahead_bytes`: the part of `ram_bytes` that GETs started ahead
///   of sequential readers may hold, in flight or waiting to be read
///   (half of `ram_bytes` by default; 0 turns read-ahead off).
/// - `disk_bytes`: bytes of chunks kept on disk, encrypted.
/// - `page_size`: the RAM tier's page (a power of two).
/// - `chunk_size`: the disk tier's chunk, a multiple of the page size;
///   every object starts on a chunk boundary, so an object smaller than a
///   chunk still takes one chunk on disk.
/// - `dir`: where the disk tier's anonymous file lives (the system temp
///   directory by default).
///
/// ```
/// use std::sync::Arc;
///
/// let store = objectcache::CachingStore::builder()
///     .ram_bytes(256 << 20)
///     .read_ahead_bytes(64 << 20)
///     .disk_bytes(4 << 30)
///     .page_size(16 << 10)
///     .chunk_size(256 << 10)
///     .dir(std::env::temp_dir())
///     .build(Arc::new(object_store::memory::InMemory::new()))?;
/// assert_eq!(store.stats().objects, 0);
/// # Ok::<(), objectcache::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Builder {
    ram_bytes: u64,
    read_ahead_bytes: Option<u64>,
    disk_bytes: u64,
    page_size: usize,
    chunk_size: u64,
    dir: PathBuf,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            ram_bytes: DEFAULT_RAM_BYTES,
            read_ahead_bytes: None,
            disk_bytes: DEFAULT_DISK_BYTES,
            page_size: DEFAULT_PAGE_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
            dir: std::env::temp_dir(),
        }
    }
}

impl CachingStore {
    /// A builder with the defaults: 64 MiB of RAM (32 MiB of 64 KiB pages,
    /// up to 32 MiB fetched ahead), 1 GiB of 1 MiB chunks on disk in the
    /// system temp directory.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectcache::CachingStore::builder()
    ///     .build(Arc::new(object_store::memory::InMemory::new()))?;
    /// assert_eq!(store.stats().disk.resident_bytes, 0);
    /// # Ok::<(), objectcache::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A caching store in front of `inner` with the default budgets (see
    /// [`builder`](Self::builder)).
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectcache::CachingStore::new(Arc::new(object_store::memory::InMemory::new()))?;
    /// assert_eq!(store.to_string(), "Caching(InMemory)");
    /// # Ok::<(), objectcache::Error>(())
    /// ```
    pub fn new(inner: Arc<dyn ObjectStore>) -> Result<Self, Error> {
        Self::builder().build(inner)
    }
}

impl Builder {
    /// The defaults (see [`CachingStore::builder`]).
    ///
    /// ```
    /// let builder = objectcache::Builder::new();
    /// # drop(builder);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of RAM the cache keeps: pages, and what read-ahead holds
    /// (see [`read_ahead_bytes`](Self::read_ahead_bytes)); what is left
    /// for pages must hold at least one.
    ///
    /// ```
    /// let builder = objectcache::Builder::new().ram_bytes(16 << 20);
    /// # drop(builder);
    /// ```
    pub fn ram_bytes(mut self, bytes: u64) -> Self {
        self.ram_bytes = bytes;
        self
    }

    /// Bytes of the RAM budget that read-ahead may hold (default: half of
    /// [`ram_bytes`](Self::ram_bytes)); 0 turns it off.
    ///
    /// A run of requests that continue one another (each starting where
    /// the last one ended, as a sequential reader's do) makes the RAM tier
    /// hint what comes next; the version being read then fetches it with
    /// ranged GETs in the background, several in flight, so the next
    /// requests find it ready (objectdev's read-ahead, see
    /// `objectdev::ObjectDevice`). Up to 4 objects read ahead at once, each
    /// holding at most a quarter of this bound, so all of them together
    /// never hold more. One request, however large, starts none: a reader
    /// that names its ranges (Parquet's column chunks) gets no byte it did
    /// not ask for.
    ///
    /// ```
    /// let store = objectcache::CachingStore::builder()
    ///     .ram_bytes(64 << 20)
    ///     .read_ahead_bytes(16 << 20) // 48 MiB left: 32 MiB of pages (a power of two)
    ///     .build(std::sync::Arc::new(object_store::memory::InMemory::new()))?;
    /// assert_eq!(store.stats().read_ahead.gets, 0);
    /// # Ok::<(), objectcache::Error>(())
    /// ```
    pub fn read_ahead_bytes(mut self, bytes: u64) -> Self {
        self.read_ahead_bytes = Some(bytes);
        self
    }

    /// Bytes of chunks the disk tier keeps (at least one chunk).
    ///
    /// ```
    /// let builder = objectcache::Builder::new().disk_bytes(1 << 30);
    /// # drop(builder);
    /// ```
    pub fn disk_bytes(mut self, bytes: u64) -> Self {
        self.disk_bytes = bytes;
        self
    }

    /// Page size of the RAM tier: a power of two up to
    /// [`pagecache::MAX_PAGE_SIZE`].
    ///
    /// ```
    /// let builder = objectcache::Builder::new().page_size(4096);
    /// # drop(builder);
    /// ```
    pub fn page_size(mut self, bytes: usize) -> Self {
        self.page_size = bytes;
        self
    }

    /// Chunk size of the disk tier: a multiple of the page size; also the
    /// most one cold miss reads from the inner store in one go.
    ///
    /// ```
    /// let builder = objectcache::Builder::new().chunk_size(4 << 20);
    /// # drop(builder);
    /// ```
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// The directory of the disk tier's anonymous file.
    ///
    /// ```
    /// let builder = objectcache::Builder::new().dir("/var/tmp");
    /// # drop(builder);
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// A caching store in front of `inner`. Allocates the RAM tier's frames
    /// and creates the disk tier's file.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a RAM budget below one page (beside
    /// the read-ahead bound), or a chunk size that is not a multiple of
    /// the page size; [`Error::PageCache`]
    /// for a page size the page cache refuses; [`Error::DiskTier`] for a
    /// disk budget below one chunk or a directory where the file cannot be
    /// created; [`Error::Runtime`] when the runtime of the GETs cannot
    /// start.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use objectcache::{CachingStore, Error};
    ///
    /// let inner = Arc::new(object_store::memory::InMemory::new());
    /// let err = CachingStore::builder().page_size(4096).chunk_size(6000).build(inner).unwrap_err();
    /// assert!(matches!(err, Error::InvalidOption { option: "chunk_size", .. }));
    /// ```
    pub fn build(self, inner: Arc<dyn ObjectStore>) -> Result<CachingStore, Error> {
        let page_size = self.page_size as u64;
        if page_size == 0 || self.chunk_size == 0 || !self.chunk_size.is_multiple_of(page_size) {
            return Err(Error::InvalidOption {
                option: "chunk_size",
                reason: format!(
                    "{} is not a multiple of the page size {page_size}",
                    self.chunk_size
                ),
            });
        }
        let read_ahead = self.read_ahead_bytes.unwrap_or(self.ram_bytes / 2);
        let pages = self.ram_bytes.saturating_sub(read_ahead) / page_size;
        if pages == 0 {
            return Err(Error::InvalidOption {
                option: "ram_bytes",
                reason: format!(
                    "{} bytes cannot hold one page of {page_size} bytes beside {read_ahead} \
                     bytes of read-ahead",
                    self.ram_bytes
                ),
            });
        }
        // The page cache's capacity is a power of two: round down, so the
        // budget holds.
        let capacity = usize::try_from(1u64 << pages.ilog2()).unwrap_or(pagecache::MAX_CAPACITY);
        let capacity = capacity.min(pagecache::MAX_CAPACITY);
        // A run of missing pages (never more than a read asks for) is one
        // read of the tier, so one GET per run of missing chunks, up to
        // the larger of a chunk and a GET part.
        let batch = usize::try_from(self.chunk_size.max(MAX_BATCH_BYTES) / page_size)
            .unwrap_or(usize::MAX)
            .clamp(1, capacity);
        let regions = Arc::new(
            Regions::new(inner.clone(), self.chunk_size, read_ahead).map_err(Error::Runtime)?,
        );
        let tier = SpillTier::with_chunk_size(regions, self.dir, self.disk_bytes, self.chunk_size)
            .map_err(Error::DiskTier)?;
        let pages = PageCache::builder()
            .page_size(self.page_size)
            .capacity(capacity)
            .max_batch_pages(batch)
            .read_ahead(read_ahead)
            .build(tier)
            .map_err(Error::PageCache)?;
        Ok(CachingStore::from_parts(inner, Tiers::new(pages)))
    }
}
