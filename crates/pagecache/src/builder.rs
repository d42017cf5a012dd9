//! Page size, capacity and batch size: chosen by a builder, checked once.

use blockdev::ReadAt;

use crate::{Error, PageCache, WriteBackCache};

/// Default page size in bytes.
pub const DEFAULT_PAGE_SIZE: usize = 4096;
/// Default capacity in pages.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Largest page size accepted (1 GiB).
pub const MAX_PAGE_SIZE: usize = 1 << 30;
/// Largest capacity accepted, in pages (4 GiB of 4 KiB pages).
pub const MAX_CAPACITY: usize = 1 << 20;
/// Upper bound of the default batch: one device read fetches at most this
/// many bytes of contiguous missing pages, unless told otherwise.
const DEFAULT_BATCH_BYTES: usize = 256 * 1024;
/// Default bound of a write-back cache's dirty pages, in bytes: large
/// enough that write-back stays long sequential writes, small enough to
/// bound memory on any machine this runs on.
pub const DEFAULT_DIRTY_BYTES: usize = 64 << 20;
/// The most the default read-ahead grows to, in bytes: 128 MiB, enough for
/// a device over a remote store to keep 16 requests of 8 MiB in flight
/// (more buys no speed there). The default is the frames' bytes, between
/// [`MIN_DEFAULT_READ_AHEAD`] and this; see [`Builder::read_ahead`].
///
/// ```
/// use blockdev::MemDevice;
///
/// // 64 MiB of pages: room for 128 MiB ahead would dwarf them.
/// let cache = pagecache::Builder::new().capacity(16384).build(MemDevice::new())?;
/// assert_eq!(cache.read_ahead(), 64 << 20);
/// let cache = pagecache::Builder::new().capacity(65536).build(MemDevice::new())?;
/// assert_eq!(cache.read_ahead(), pagecache::DEFAULT_READ_AHEAD);
/// # Ok::<(), pagecache::Error>(())
/// ```
pub const DEFAULT_READ_AHEAD: u64 = 128 << 20;
/// The least the default read-ahead is, in bytes: 8 MiB, one GET part of
/// an `objectdev` device by default, so that even a small cache overlaps
/// fetching the next part with reading this one.
///
/// ```
/// use blockdev::MemDevice;
///
/// // The default cache: 4 MiB of pages.
/// let cache = pagecache::PageCache::new(MemDevice::new())?;
/// assert_eq!(cache.read_ahead(), pagecache::MIN_DEFAULT_READ_AHEAD);
/// # Ok::<(), pagecache::Error>(())
/// ```
pub const MIN_DEFAULT_READ_AHEAD: u64 = 8 << 20;

/// The checked shape of a cache: page size, capacity and largest device read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) page_shift: u32,
    /// `1 << page_shift`, kept so hits need not compute it.
    page_size: usize,
    pub(crate) capacity: usize,
    pub(crate) max_batch_pages: usize,
    pub(crate) max_read_ahead: u64,
}

impl Geometry {
    #[inline]
    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    #[inline]
    pub(crate) fn page_mask(&self) -> u64 {
        self.page_size as u64 - 1
    }
}

/// Chooses the page size, capacity and batch size of a [`PageCache`].
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::PageCache;
///
/// let cache = PageCache::builder()
///     .page_size(512)
///     .capacity(64)
///     .max_batch_pages(8)
///     .build(MemDevice::from_vec(vec![7; 2000]))?;
/// assert_eq!((cache.page_size(), cache.capacity(), cache.max_batch_pages()), (512, 64, 8));
/// # Ok::<(), pagecache::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Builder {
    page_size: usize,
    capacity: usize,
    max_batch_pages: Option<usize>,
    max_dirty_pages: Option<usize>,
    /// `None`: sized from the frames.
    read_ahead: Option<u64>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            page_size: DEFAULT_PAGE_SIZE,
            capacity: DEFAULT_CAPACITY,
            max_batch_pages: None,
            max_dirty_pages: None,
            read_ahead: None,
        }
    }
}

impl Builder {
    /// A builder with the defaults: 4096-byte pages, 1024 pages.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().build(MemDevice::new())?;
    /// assert_eq!((cache.page_size(), cache.capacity()), (4096, 1024));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Page size in bytes: a power of two from 1 to [`MAX_PAGE_SIZE`].
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().page_size(1).build(MemDevice::new())?;
    /// assert_eq!(cache.page_size(), 1);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// Capacity in pages: a power of two from 1 to [`MAX_CAPACITY`].
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().capacity(1).build(MemDevice::new())?;
    /// assert_eq!(cache.capacity(), 1);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most pages one device read fetches when a read misses several
    /// contiguous pages: from 1 to the capacity. The default is the capacity,
    /// or 256 KiB worth of pages when that is fewer.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().max_batch_pages(1).build(MemDevice::new())?;
    /// assert_eq!(cache.max_batch_pages(), 1);
    /// assert!(pagecache::Builder::new().max_batch_pages(0).build(MemDevice::new()).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn max_batch_pages(mut self, pages: usize) -> Self {
        self.max_batch_pages = Some(pages);
        self
    }

    /// The largest read-ahead window in bytes; 0 turns read-ahead off,
    /// in the cache and every device below it. When runs of missing pages
    /// follow each other, the cache tells the device, with
    /// [`ReadAt::will_need`], what a sequential reader will want next:
    /// 1 MiB at first, doubling while the reader stays sequential, up to
    /// this cap (see the crate docs, "Read-ahead").
    ///
    /// It is also the cache's memory bound for read-ahead: when built,
    /// the cache calls [`ReadAt::limit_read_ahead`] with it, so the
    /// devices below hold at most this many bytes fetched ahead and not
    /// yet read. The cache's memory is its frames (capacity × page size)
    /// plus at most this.
    ///
    /// The default is the frames' bytes, at least
    /// [`MIN_DEFAULT_READ_AHEAD`] (8 MiB) and at most
    /// [`DEFAULT_READ_AHEAD`] (128 MiB): read-ahead at most doubles a
    /// cache's memory, so a small cache stays small. A scan of a remote
    /// object wants more than a small cache gives it (128 MiB keeps 16
    /// GETs of 8 MiB in flight): set it here.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().read_ahead(0).build(MemDevice::new())?;
    /// assert_eq!(cache.read_ahead(), 0);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn read_ahead(mut self, max_bytes: u64) -> Self {
        self.read_ahead = Some(max_bytes);
        self
    }

    /// The most dirty pages a [`WriteBackCache`] holds (at least 1; by
    /// default [`DEFAULT_DIRTY_BYTES`] worth of pages). A write that would
    /// go past it first writes back the oldest dirty runs; see
    /// [`WriteBackCache::max_dirty_pages`].
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::Builder::new().max_dirty_pages(16).build_write_back(MemDevice::new())?;
    /// assert_eq!(cache.max_dirty_pages(), 16);
    /// assert!(pagecache::Builder::new().max_dirty_pages(0).build_write_back(MemDevice::new()).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn max_dirty_pages(mut self, pages: usize) -> Self {
        self.max_dirty_pages = Some(pages);
        self
    }

    /// The dirty-page bound, checked.
    pub(crate) fn dirty_bound(&self) -> Result<usize, Error> {
        match self.max_dirty_pages {
            Some(0) => Err(Error::InvalidDirtyBound { max_dirty_pages: 0 }),
            Some(pages) => Ok(pages),
            None => Ok((DEFAULT_DIRTY_BYTES / self.page_size.max(1)).max(1)),
        }
    }

    pub(crate) fn geometry(&self) -> Result<Geometry, Error> {
        let page_size = self.page_size;
        if !page_size.is_power_of_two() || page_size > MAX_PAGE_SIZE {
            return Err(Error::InvalidPageSize { page_size });
        }
        let capacity = self.capacity;
        if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(Error::InvalidCapacity { capacity });
        }
        let max_batch_pages = match self.max_batch_pages {
            Some(pages) if pages == 0 || pages > capacity => {
                return Err(Error::InvalidBatch {
                    max_batch_pages: pages,
                    capacity,
                });
            }
            Some(pages) => pages,
            None => capacity.min((DEFAULT_BATCH_BYTES / page_size).max(1)),
        };
        Ok(Geometry {
            page_shift: page_size.trailing_zeros(),
            page_size,
            capacity,
            max_batch_pages,
            // Read-ahead at most doubles the cache's memory (see
            // `Builder::read_ahead`).
            max_read_ahead: self.read_ahead.unwrap_or_else(|| {
                (capacity as u64)
                    .saturating_mul(page_size as u64)
                    .clamp(MIN_DEFAULT_READ_AHEAD, DEFAULT_READ_AHEAD)
            }),
        })
    }

    /// Builds a cache over `device`, learning the device size once.
    ///
    /// # Errors
    /// [`Error::InvalidPageSize`], [`Error::InvalidCapacity`] or
    /// [`Error::InvalidBatch`] for a bad shape; [`Error::Io`] when the
    /// device size cannot be read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{Builder, Error};
    ///
    /// assert!(matches!(
    ///     Builder::new().capacity(1000).build(MemDevice::new()),
    ///     Err(Error::InvalidCapacity { capacity: 1000 })
    /// ));
    /// ```
    pub fn build<D: ReadAt>(self, device: D) -> Result<PageCache<D>, Error> {
        PageCache::from_geometry(device, self.geometry()?)
    }

    /// Builds a write-back cache over `device` (see [`WriteBackCache`]).
    ///
    /// # Errors
    /// As [`Builder::build`], and [`Error::InvalidDirtyBound`] for a
    /// dirty-page bound of zero.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{ByteSinkExt, ByteSourceExt};
    ///
    /// let mut cache = pagecache::Builder::new()
    ///     .page_size(16)
    ///     .build_write_back(MemDevice::from_vec(vec![0; 64]))?;
    /// cache.set_u64_be(12, 42)?;
    /// assert_eq!(cache.get_u64_be(12)?, 42);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn build_write_back<D: ReadAt + blockdev::WriteAt>(
        self,
        device: D,
    ) -> Result<WriteBackCache<D>, Error> {
        let bound = self.dirty_bound()?;
        Ok(WriteBackCache::with_bound(self.build(device)?, bound))
    }
}
