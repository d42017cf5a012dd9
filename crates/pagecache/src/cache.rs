//! `PageCache`: the type, its construction, accessors and counters.
//!
//! The rest of it lives by concern: the lock-free hit in `hit`, misses and
//! run reservations in `miss`, frame placement, eviction and invalidation
//! in `residency`, Cachet's slice vocabulary in `cachet`.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use bincodec::ByteSource;
use blockdev::ReadAt;
use parking_lot::Mutex;

use crate::builder::{Builder, Geometry};
use crate::counters::StripedCounter;
use crate::error::check_range;
use crate::frames::Frames;
use crate::hints::Hints;
use crate::readahead::Streams;
use crate::state::{State, StateLock};
use crate::{Error, Stats};

/// A cache of fixed-size pages over a [`ReadAt`] device.
///
/// Pages are `page_size` bytes (a power of two) and at most `capacity` of
/// them (a power of two) stay resident; the last page of the device may be
/// short. Every getter of [`bincodec::ByteSourceExt`] works on it, and a
/// value straddling two pages is assembled from both.
///
/// # Device size
/// The cache reads the device size when it is built and keeps it: reads
/// beyond it are [`Error::OutOfBounds`]. [`invalidate`](Self::invalidate)
/// and [`refresh_size`](Self::refresh_size) read it again, so a device that
/// grew shows its new bytes after either. A page cached short (it was the
/// last page) is read again when a later read needs bytes past its end.
/// When the size read is smaller, the pages reaching past it are dropped
/// before either returns: a read that starts after that is
/// [`Error::OutOfBounds`] past the new end (a read racing the call may
/// still return the bytes it found before the cut).
///
/// # A new version of the device
/// When the device changed as a whole (an object replaced in its store, a
/// file rewritten), call [`refresh`](Self::refresh): one call that
/// refreshes the device and every layer below it
/// ([`ReadAt::refresh`]), drops the pages and reads the size, atomically
/// for readers (a read returns bytes of one version, or an error).
/// `invalidate` and `invalidate_all` do not stop a read running
/// meanwhile from returning old and new pages in one buffer.
///
/// # Threads
/// `PageCache<D>` is `Send + Sync` when `D` is. A hit takes no lock and
/// writes nothing shared: it finds the page's frame in a hint table, copies
/// the bytes out of an arena of atomic words with plain loads, and checks
/// the frame's sequence number to know that no writer changed it meanwhile,
/// so hits on any pages, from any number of threads, proceed in parallel.
/// Everything else (misses, eviction, invalidation, `load`) takes one
/// state lock, never held during device I/O: a miss marks its pages as
/// being read, drops the lock and reads the device; a second thread
/// missing the same page waits for that read instead of issuing its own.
/// The pages read are copied into frames taken under the lock, with the
/// lock released, then published under it: the lock is held for
/// bookkeeping only (and one page's copy when a one-page miss moves a page
/// to make room at home). A write-back installs the pages it wrote under
/// the lock, but one run of 16 pages per hold.
///
/// # Memory
/// The frames are allocated when the cache is built: for each page of
/// capacity, the page rounded up to 8 bytes, a 32-byte head, a 4-byte
/// reader count and 16 bytes of hint table. On Linux the page arena's whole 2 MiB pages are
/// advised as huge pages before first use (fewer TLB misses on random
/// hits; see the crate docs). A page handed out as a [`Slice`](crate::Slice) (by `load`,
/// `next`, `get_seq`, `iter`) also keeps that copy until it is evicted or
/// invalidated, so repeated loads share it.
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::{ByteSourceExt, PageCache};
///
/// let mut bytes = vec![0u8; 10_000];
/// bytes[4094..4102].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
/// let cache = PageCache::new(MemDevice::from_vec(bytes))?;
/// // Straddles pages 0 and 1: both are read with one device call.
/// assert_eq!(cache.get_u64_be(4094)?, 0x0102_0304_0506_0708);
/// assert_eq!(cache.stats().device_reads, 1);
/// assert!(cache.get_u8(10_000).is_err());
/// # Ok::<(), pagecache::Error>(())
/// ```
pub struct PageCache<D> {
    pub(crate) device: D,
    pub(crate) geometry: Geometry,
    /// `capacity - 1`: a page's home frame is its number masked by it.
    pub(crate) home_mask: u64,
    /// How far into a page a word hit may read: the page size, or 0 for
    /// one-byte pages, whose page numbers include the frames' empty key.
    pub(crate) word_hit_end: usize,
    pub(crate) size: AtomicU64,
    pub(crate) frames: Frames,
    pub(crate) hints: Hints,
    pub(crate) hits: StripedCounter,
    pub(crate) state: StateLock,
    /// Counts batches of pages inserted; see `frames::touch`.
    pub(crate) epoch: AtomicU32,
    pub(crate) device_reads: AtomicU64,
    /// Odd while a refresh is under way; see `version`.
    pub(crate) version: AtomicU64,
    /// Held by a refresh from start to end; readers wait on it.
    pub(crate) refreshing: Mutex<()>,
    /// Sequential streams, for read-ahead hints.
    pub(crate) streams: Mutex<Streams>,
}

#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<blockdev::MemDevice>: Send, Sync);
#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<std::fs::File>: Send, Sync);
impl<D: ReadAt> PageCache<D> {
    /// A cache with 4096-byte pages and room for 1024 of them.
    ///
    /// # Errors
    /// [`Error::Io`] when the device size cannot be read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![1; 100]))?;
    /// assert_eq!((cache.page_size(), cache.capacity(), cache.size()), (4096, 1024, 100));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn new(device: D) -> Result<Self, Error> {
        Builder::new().build(device)
    }

    /// A cache with `page_size`-byte pages and room for `capacity` pages.
    ///
    /// # Errors
    /// [`Error::InvalidPageSize`] or [`Error::InvalidCapacity`] unless both
    /// are powers of two in range; [`Error::Io`] when the device size
    /// cannot be read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{Error, PageCache};
    ///
    /// assert!(PageCache::with_geometry(MemDevice::new(), 512, 8).is_ok());
    /// assert!(matches!(
    ///     PageCache::with_geometry(MemDevice::new(), 0, 8),
    ///     Err(Error::InvalidPageSize { page_size: 0 })
    /// ));
    /// ```
    pub fn with_geometry(device: D, page_size: usize, capacity: usize) -> Result<Self, Error> {
        Builder::new()
            .page_size(page_size)
            .capacity(capacity)
            .build(device)
    }

    pub(crate) fn from_geometry(device: D, geometry: Geometry) -> Result<Self, Error> {
        let size = device.size()?;
        Self::from_parts(device, geometry, size)
    }

    fn from_parts(device: D, geometry: Geometry, size: u64) -> Result<Self, Error> {
        let frames =
            Frames::new(geometry.capacity, geometry.page_size()).ok_or(Error::TooLarge {
                capacity: geometry.capacity,
                page_size: geometry.page_size(),
            })?;
        // What the devices below fetch ahead counts toward this cache's
        // bound, not on top of it.
        device.limit_read_ahead(geometry.max_read_ahead);
        Ok(PageCache {
            device,
            geometry,
            home_mask: geometry.capacity as u64 - 1,
            word_hit_end: if geometry.page_size() > 1 {
                geometry.page_size()
            } else {
                0
            },
            size: AtomicU64::new(size),
            frames,
            hints: Hints::new(geometry.capacity),
            hits: StripedCounter::new(),
            state: StateLock::new(State::new(geometry.capacity)),
            epoch: AtomicU32::new(0),
            device_reads: AtomicU64::new(0),
            version: AtomicU64::new(0),
            refreshing: Mutex::new(()),
            streams: Mutex::new(Streams::new(geometry.max_read_ahead)),
        })
    }

    /// A new, empty cache of the same shape over a clone of the device
    /// (Cachet's `copy`). Clone a shared handle (`MemDevice`, `Arc<File>`)
    /// to share the device itself. The device size is copied, not re-read.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the new cache's frames cannot be allocated.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![5; 8]))?;
    /// cache.get_u8(0)?;
    /// let copy = cache.empty_copy()?;
    /// assert!(!copy.is_cached(0));
    /// assert_eq!((copy.hits(), copy.misses(), copy.get_u8(7)?), (0, 0, 5));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn empty_copy(&self) -> Result<Self, Error>
    where
        D: Clone,
    {
        Self::from_parts(self.device.clone(), self.geometry, self.size())
    }
}

/// `PageCache::builder()` names no device type; the builder's `build`
/// picks it from its argument.
impl PageCache<()> {
    /// A builder to choose page size, capacity and batch size.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().capacity(16).build(MemDevice::new())?;
    /// assert_eq!(cache.capacity(), 16);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<D> PageCache<D> {
    /// The device (Cachet's `fd`).
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![0; 3]))?;
    /// assert_eq!(cache.device().size()?, 3);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn device(&self) -> &D {
        &self.device
    }

    /// Gives the device back, dropping the cached pages.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![9]))?;
    /// assert_eq!(cache.into_device().to_vec(), [9]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn into_device(self) -> D {
        self.device
    }

    /// Page size in bytes (Cachet's `pagesize`).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// assert_eq!(pagecache::PageCache::new(MemDevice::new())?.page_size(), 4096);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn page_size(&self) -> usize {
        self.geometry.page_size()
    }

    /// Capacity in pages.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// assert_eq!(pagecache::PageCache::new(MemDevice::new())?.capacity(), 1024);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.geometry.capacity
    }

    /// The most pages one device read fetches (see
    /// [`Builder::max_batch_pages`]).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// // 256 KiB of 4 KiB pages.
    /// assert_eq!(pagecache::PageCache::new(MemDevice::new())?.max_batch_pages(), 64);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn max_batch_pages(&self) -> usize {
        self.geometry.max_batch_pages
    }

    /// The largest read-ahead window in bytes, and the most the devices
    /// below hold fetched ahead; 0 when off (see [`Builder::read_ahead`]).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// // 4 MiB of frames: the default's floor.
    /// let cache = pagecache::PageCache::new(MemDevice::new())?;
    /// assert_eq!(cache.read_ahead(), pagecache::MIN_DEFAULT_READ_AHEAD);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn read_ahead(&self) -> u64 {
        self.streams.lock().max_window()
    }

    /// The device size as last read (at construction, `invalidate` or
    /// `refresh_size`).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// assert_eq!(pagecache::PageCache::new(MemDevice::from_vec(vec![0; 7]))?.size(), 7);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.size.load(Relaxed)
    }

    /// Number of page lookups that found the page resident (Cachet's
    /// `cache_hit`). A read spanning several pages counts one lookup per page.
    /// Hits are counted per thread without atomic read-modify-writes (see
    /// the type's docs); two threads that happen to share a counter stripe
    /// may lose a few counts, one thread never does.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![0; 8]))?;
    /// cache.get_u8(0)?;
    /// cache.get_u8(1)?;
    /// assert_eq!((cache.misses(), cache.hits()), (1, 1));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn hits(&self) -> u64 {
        self.hits.sum()
    }

    /// Number of page lookups that did not find the page resident (Cachet's
    /// `cache_miss`), including lookups that waited for another thread's read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4).build(MemDevice::from_vec(vec![0; 8]))?;
    /// cache.get_u64_le(0)?;
    /// assert_eq!(cache.misses(), 2);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn misses(&self) -> u64 {
        self.state.lock().misses
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{ByteSourceExt, Stats};
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4).capacity(2)
    ///     .build(MemDevice::from_vec(vec![0; 16]))?;
    /// for addr in [0, 4, 8, 0] {
    ///     cache.get_u8(addr)?;
    /// }
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.device_reads), (0, 4, 4));
    /// assert_eq!((stats.evictions, stats.resident_pages), (2, 2));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let state = self.state.lock();
        Stats {
            hits: self.hits.sum(),
            misses: state.misses,
            device_reads: self.device_reads.load(Relaxed),
            evictions: state.evictions,
            resident_pages: state.resident.len(),
        }
    }

    /// Sets the hit, miss, device-read and eviction counters to zero.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![0; 8]))?;
    /// cache.get_u8(0)?;
    /// cache.reset_stats();
    /// assert_eq!((cache.misses(), cache.stats().device_reads, cache.stats().resident_pages), (0, 0, 1));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn reset_stats(&self) {
        let mut state = self.state.lock();
        state.misses = 0;
        state.evictions = 0;
        self.hits.reset();
        self.device_reads.store(0, Relaxed);
    }

    /// Whether the byte at `addr` is in the cache, without counting a hit or
    /// a miss and without touching the eviction order.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4).build(MemDevice::from_vec(vec![0; 6]))?;
    /// cache.get_u8(5)?;
    /// assert!(cache.is_cached(4) && cache.is_cached(5));
    /// assert!(!cache.is_cached(6) && !cache.is_cached(0));
    /// assert_eq!(cache.hits() + cache.misses(), 1);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn is_cached(&self, addr: u64) -> bool {
        if addr >= self.size() {
            return false;
        }
        let page = addr >> self.geometry.page_shift;
        let off = (addr & self.geometry.page_mask()) as usize;
        let state = self.state.lock();
        state
            .resident
            .get(&page)
            .is_some_and(|&frame| self.frames.len(frame) > off)
    }

    /// The number of device reads that reading `len` bytes at `addr` costs
    /// when none of its pages is cached: contiguous missing pages are read
    /// together, at most [`max_batch_pages`](Self::max_batch_pages) per
    /// read. Exact for devices that return whole reads (files short of the
    /// end, memory); a device returning short reads costs more calls.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(16).max_batch_pages(4)
    ///     .build(MemDevice::from_vec(vec![0; 1000]))?;
    /// assert_eq!(cache.syscalls(0, 0)?, 0);
    /// assert_eq!(cache.syscalls(15, 2)?, 1); // pages 0 and 1, one read
    /// assert_eq!(cache.syscalls(0, 16 * 9)?, 3); // 9 pages, 4 per read
    /// assert!(cache.syscalls(999, 2).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn syscalls(&self, addr: u64, len: u64) -> Result<u64, Error> {
        check_range(addr, len, self.size())?;
        if len == 0 {
            return Ok(0);
        }
        let shift = self.geometry.page_shift;
        let pages = ((addr + len - 1) >> shift) - (addr >> shift) + 1;
        Ok(pages.div_ceil(self.geometry.max_batch_pages as u64))
    }
}

impl<D: ReadAt> ByteSource for PageCache<D> {
    type Error = Error;

    /// Copies the bytes out of the cached pages, reading missing pages
    /// first; no allocation when every page is resident.
    #[inline]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), Error> {
        let size = self.size();
        check_range(pos, buf.len() as u64, size)?;
        self.read_in_bounds(pos, buf, size)
    }

    /// The hit of a getter up to 64 bits on a resident page, in registers
    /// and with no size check (see the crate docs, "What a hit does").
    #[inline(always)]
    fn read_word_le(&self, pos: u64, len: usize) -> Option<u64> {
        self.hit_word(pos, len)
    }
}

impl<D: fmt::Debug> fmt::Debug for PageCache<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageCache")
            .field("device", &self.device)
            .field("page_size", &self.page_size())
            .field("capacity", &self.capacity())
            .field("size", &self.size())
            .field("stats", &self.stats())
            .finish()
    }
}
