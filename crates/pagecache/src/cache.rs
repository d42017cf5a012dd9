//! `PageCache`: the page table, the read path (hits, coalesced misses,
//! in-flight reads) and invalidation.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use bincodec::ByteSource;
use blockdev::ReadAt;
use parking_lot::Mutex;

use crate::builder::{Builder, Geometry};
use crate::error::check_range;
use crate::iter::{Bytes, Chunks};
use crate::policy::Policy;
use crate::shard::{Frame, Loading, Shard, Slot};
use crate::{Error, Slice, Stats};

/// Number of page-table shards. Hits on pages of different shards never
/// touch the same lock; 64 keeps two to sixteen threads mostly apart.
const SHARDS: usize = 64;

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
///
/// # Threads
/// `PageCache<D>` is `Send + Sync` when `D` is. The page table is split in
/// 64 shards by page number, each behind a reader-writer lock taken only to
/// look a page up and copy bytes out, so hits proceed in parallel. A miss
/// marks the page as being read, drops the lock and reads the device; a
/// second thread missing the same page waits for that read instead of
/// issuing its own. The eviction policy has one lock, taken only when pages
/// are inserted or dropped.
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
    device: D,
    geometry: Geometry,
    size: AtomicU64,
    shards: Box<[Shard]>,
    policy: Mutex<Policy>,
    /// Counts batches of pages inserted; see [`Frame::touch`].
    epoch: AtomicU32,
    device_reads: AtomicU64,
    evictions: AtomicU64,
}

#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<blockdev::MemDevice>: Send, Sync);
#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<std::fs::File>: Send, Sync);

/// What the page table holds for a page, seen under the shard lock.
enum Lookup<R> {
    /// Resident and long enough; the callback ran on its bytes.
    Hit(R),
    /// Another thread is reading it.
    Wait(Arc<Loading>),
    /// Nobody has it.
    Absent,
    /// Resident, but cached when the device was shorter.
    Stale(Arc<[u8]>),
}

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
        Ok(Self::from_parts(device, geometry, size))
    }

    fn from_parts(device: D, geometry: Geometry, size: u64) -> Self {
        PageCache {
            device,
            geometry,
            size: AtomicU64::new(size),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            policy: Mutex::new(Policy::new(geometry.capacity)),
            epoch: AtomicU32::new(0),
            device_reads: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// A new, empty cache of the same shape over a clone of the device
    /// (Cachet's `copy`). Clone a shared handle (`MemDevice`, `Arc<File>`)
    /// to share the device itself. The device size is copied, not re-read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![5; 8]))?;
    /// cache.get_u8(0)?;
    /// let copy = cache.empty_copy();
    /// assert!(!copy.is_cached(0));
    /// assert_eq!((copy.hits(), copy.misses(), copy.get_u8(7)?), (0, 0, 5));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn empty_copy(&self) -> Self
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
        self.shards.iter().map(|s| s.hits.load(Relaxed)).sum()
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
        self.shards.iter().map(|s| s.misses.load(Relaxed)).sum()
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
        Stats {
            hits: self.hits(),
            misses: self.misses(),
            device_reads: self.device_reads.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            resident_pages: self.policy.lock().len(),
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
        for shard in self.shards.iter() {
            shard.hits.store(0, Relaxed);
            shard.misses.store(0, Relaxed);
        }
        self.device_reads.store(0, Relaxed);
        self.evictions.store(0, Relaxed);
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
        matches!(
            self.shard(page).map.read().get(&page),
            Some(Slot::Ready(frame)) if frame.data.len() > off
        )
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

    fn shard(&self, page: u64) -> &Shard {
        &self.shards[(page as usize) & (SHARDS - 1)]
    }

    /// Looks `page` up; on a hit with at least `need` bytes, records the
    /// access and runs `on_hit` on the bytes under the shard lock.
    #[inline]
    fn lookup<R>(&self, page: u64, need: usize, on_hit: impl FnOnce(&Arc<[u8]>) -> R) -> Lookup<R> {
        let map = self.shard(page).map.read();
        match map.get(&page) {
            Some(Slot::Ready(frame)) if frame.data.len() >= need => {
                frame.touch(self.epoch.load(Relaxed));
                Lookup::Hit(on_hit(&frame.data))
            }
            Some(Slot::Ready(frame)) => Lookup::Stale(frame.data.clone()),
            Some(Slot::Loading(loading)) => Lookup::Wait(loading.clone()),
            None => Lookup::Absent,
        }
    }

    /// Drops `page` if it still holds `data` (a page cached short).
    fn drop_stale(&self, page: u64, data: &Arc<[u8]>) {
        let mut policy = self.policy.lock();
        let mut map = self.shard(page).map.write();
        if let Some(Slot::Ready(frame)) = map.get(&page)
            && Arc::ptr_eq(&frame.data, data)
        {
            policy.remove(frame.node);
            map.remove(&page);
        }
    }

    /// Evicts one page chosen by the policy.
    fn evict_one(&self, policy: &mut Policy) -> bool {
        let victim = policy.evict(&mut |page| match self.shard(page).map.read().get(&page) {
            Some(Slot::Ready(frame)) => frame.take_credit(),
            _ => false,
        });
        let Some(page) = victim else {
            return false;
        };
        let mut map = self.shard(page).map.write();
        if matches!(map.get(&page), Some(Slot::Ready(_))) {
            map.remove(&page);
        }
        self.evictions.fetch_add(1, Relaxed);
        true
    }

    /// Installs `data` as the clean contents of `page`, replacing whatever
    /// is there (a resident copy, or another thread's in-flight read, whose
    /// result is then discarded).
    pub(crate) fn install_clean(&self, page: u64, data: Arc<[u8]>) {
        let mut policy = self.policy.lock();
        let epoch = self.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        if let Some(Slot::Ready(frame)) = self.shard(page).map.write().remove(&page) {
            policy.remove(frame.node);
        }
        while policy.len() >= self.geometry.capacity && self.evict_one(&mut policy) {}
        let node = policy.insert(page);
        self.shard(page)
            .map
            .write()
            .insert(page, Slot::Ready(Frame::new(data, node, epoch)));
    }

    /// Drops exactly the cached pages overlapping `[off, off + len)`, and
    /// any read of them in flight, without re-reading the device size.
    pub(crate) fn drop_range(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let shift = self.geometry.page_shift;
        let first = off >> shift;
        let last = off.saturating_add(len - 1) >> shift;
        let mut policy = self.policy.lock();
        let resident = policy.len() as u64;
        let mut drop_slot = |slot: Slot| {
            if let Slot::Ready(frame) = slot {
                policy.remove(frame.node);
            }
        };
        if last - first <= resident + SHARDS as u64 {
            for page in first..=last {
                if let Some(slot) = self.shard(page).map.write().remove(&page) {
                    drop_slot(slot);
                }
            }
        } else {
            for shard in self.shards.iter() {
                let mut map = shard.map.write();
                let doomed: Vec<u64> = map
                    .keys()
                    .copied()
                    .filter(|page| (first..=last).contains(page))
                    .collect();
                for page in doomed {
                    if let Some(slot) = map.remove(&page) {
                        drop_slot(slot);
                    }
                }
            }
        }
    }
}

impl<D: ReadAt> PageCache<D> {
    /// Reads the device size again and keeps it; returns it.
    ///
    /// # Errors
    /// [`Error::Io`] when the device size cannot be read (the old size is kept).
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::ByteSourceExt;
    ///
    /// let dev = MemDevice::from_vec(vec![1; 4]);
    /// let cache = pagecache::PageCache::new(dev.clone())?;
    /// dev.write_all_at(4, &[2])?;
    /// assert!(cache.get_u8(4).is_err());
    /// assert_eq!(cache.refresh_size()?, 5);
    /// assert_eq!(cache.get_u8(4)?, 2);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn refresh_size(&self) -> Result<u64, Error> {
        let size = self.device.size()?;
        self.size.store(size, Relaxed);
        Ok(size)
    }

    /// Drops exactly the cached pages overlapping `[off, off + len)` (a range
    /// inside one page drops that page; an empty range drops nothing), then
    /// reads the device size again. Call it after changing the device.
    ///
    /// # Errors
    /// [`Error::Io`] when the device size cannot be read; the pages are
    /// dropped all the same.
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::ByteSourceExt;
    ///
    /// let dev = MemDevice::from_vec(vec![0; 8192]);
    /// let cache = pagecache::PageCache::new(dev.clone())?;
    /// assert_eq!(cache.get_u8(100)?, 0);
    /// dev.write_all_at(100, &[7])?;
    /// assert_eq!(cache.get_u8(100)?, 0); // still the cached page
    /// cache.invalidate(100, 1)?;
    /// assert_eq!(cache.get_u8(100)?, 7);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn invalidate(&self, off: u64, len: u64) -> Result<(), Error> {
        self.drop_range(off, len);
        self.refresh_size().map(drop)
    }

    /// Drops every cached page and the eviction history, then reads the
    /// device size again.
    ///
    /// # Errors
    /// As [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![0; 9000]))?;
    /// cache.get_u64_le(4090)?;
    /// cache.invalidate_all()?;
    /// assert_eq!(cache.stats().resident_pages, 0);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn invalidate_all(&self) -> Result<(), Error> {
        {
            let mut policy = self.policy.lock();
            for shard in self.shards.iter() {
                shard.map.write().clear();
            }
            policy.clear();
        }
        self.refresh_size().map(drop)
    }

    /// The page holding `addr`, clipped to the device end, as a [`Slice`]
    /// starting at the page start; `None` when fewer than `min_len` bytes
    /// exist from `addr` to the end of that page (past the end of the device,
    /// or on a short last page). With `min_len == 0` the result is never
    /// `None`; a page wholly past the end gives an empty slice. Reads at
    /// most one page, and nothing when the answer is `None` or empty.
    ///
    /// # Errors
    /// [`Error::MinLenTooLarge`] when `min_len` exceeds the page size;
    /// [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdef".to_vec()))?;
    /// assert_eq!(cache.load(1, 3)?.unwrap().bytes(), b"abcd");
    /// assert!(cache.load(1, 4)?.is_none()); // only 3 bytes left in page 0
    /// assert!(cache.load(5, 2)?.is_none()); // short last page "ef"
    /// assert!(cache.load(6, 1)?.is_none()); // past the end
    /// assert!(cache.load(0, 5).is_err()); // more than a page
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn load(&self, addr: u64, min_len: usize) -> Result<Option<Slice>, Error> {
        self.load_within(addr, min_len, self.size())
    }

    /// [`load`](Self::load) for a device of `size` bytes.
    pub(crate) fn load_within(
        &self,
        addr: u64,
        min_len: usize,
        size: u64,
    ) -> Result<Option<Slice>, Error> {
        let page_size = self.page_size();
        if min_len > page_size {
            return Err(Error::MinLenTooLarge { min_len, page_size });
        }
        let page = addr >> self.geometry.page_shift;
        let page_start = page << self.geometry.page_shift;
        let page_end = page_start.saturating_add(page_size as u64).min(size);
        if page_end.saturating_sub(addr) < min_len as u64 {
            return Ok(None);
        }
        if page_start >= size {
            return Ok(Some(Slice::empty(page_start)));
        }
        Ok(Some(self.page_slice(page, size)?))
    }

    /// The slice after `slice` (Cachet's `next`): the page holding
    /// `slice.end()`, or `None` at the end of the device.
    ///
    /// # Errors
    /// [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdef".to_vec()))?;
    /// let first = cache.load(0, 1)?.unwrap();
    /// let second = cache.next(&first)?.unwrap();
    /// assert_eq!(second.bytes(), b"ef");
    /// assert!(cache.next(&second)?.is_none());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn next(&self, slice: &Slice) -> Result<Option<Slice>, Error> {
        let size = self.size();
        let addr = slice.end();
        if slice.is_empty() || addr >= size {
            return Ok(None);
        }
        self.page_slice(addr >> self.geometry.page_shift, size)
            .map(Some)
    }

    /// The pages from `addr` to the end of the device, as slices (Cachet's
    /// `get_seq`): the first starts at `addr`, the others are whole pages,
    /// the last may be short. Each page is one lookup.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when `addr` is past the end of the device
    /// (`addr == size` gives an empty iterator). The iterator yields
    /// [`Error::Io`] if the device fails, then stops.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdefghij".to_vec()))?;
    /// let chunks: Vec<Vec<u8>> = cache.get_seq(2)?.map(|s| s.map(|s| s.to_vec())).collect::<Result<_, _>>()?;
    /// assert_eq!(chunks, [&b"cd"[..], b"efgh", b"ij"]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn get_seq(&self, addr: u64) -> Result<Chunks<'_, D>, Error> {
        let size = self.size();
        check_range(addr, 0, size)?;
        Ok(Chunks::new(self, addr, size))
    }

    /// The bytes of `[addr, addr + len)`, or from `addr` to the end of the
    /// device when `len` is `None` (Cachet's `iter`).
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device. The
    /// iterator yields [`Error::Io`] if the device fails, then stops.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// assert_eq!(cache.iter(1, Some(3))?.collect::<Result<Vec<u8>, _>>()?, b"ell");
    /// assert_eq!(cache.iter(3, None)?.collect::<Result<Vec<u8>, _>>()?, b"lo");
    /// assert!(cache.iter(3, Some(3)).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn iter(&self, addr: u64, len: Option<u64>) -> Result<Bytes<'_, D>, Error> {
        let size = self.size();
        let len = match len {
            Some(len) => len,
            None => size.saturating_sub(addr),
        };
        check_range(addr, len, size)?;
        Ok(Bytes::new(Chunks::new(self, addr, size), len))
    }

    /// Copies `len` bytes at device address `src_off` into
    /// `dst[dst_off..dst_off + len]` (Cachet's `blit_to_bytes`), across any
    /// number of pages.
    ///
    /// # Errors
    /// [`Error::BufferRange`] when the range does not fit in `dst`,
    /// [`Error::OutOfBounds`] when it does not fit in the device (`dst` is
    /// then unchanged), [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// let mut dst = *b"[.....]";
    /// cache.blit(0, &mut dst, 1, 5)?;
    /// assert_eq!(&dst, b"[hello]");
    /// assert!(cache.blit(0, &mut dst, 3, 5).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn blit(
        &self,
        src_off: u64,
        dst: &mut [u8],
        dst_off: usize,
        len: usize,
    ) -> Result<(), Error> {
        let buf_len = dst.len();
        let range = dst_off
            .checked_add(len)
            .filter(|&end| end <= buf_len)
            .map(|end| dst_off..end)
            .ok_or(Error::BufferRange {
                dst_off,
                len,
                buf_len,
            })?;
        self.read_bytes_at(src_off, &mut dst[range])
    }

    /// The `len` bytes at `addr` in a new vector (Cachet's `get_string`).
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device
    /// (checked before allocating), [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// assert_eq!(cache.get_bytes(1, 4)?, b"ello");
    /// assert!(cache.get_bytes(1, usize::MAX).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn get_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Error> {
        let size = self.size();
        check_range(addr, len as u64, size)?;
        let mut out = vec![0; len];
        self.read_in_bounds(addr, &mut out, size)?;
        Ok(out)
    }

    /// The whole page `page` (which starts before `size`) as a slice.
    pub(crate) fn page_slice(&self, page: u64, size: u64) -> Result<Slice, Error> {
        let page_start = page << self.geometry.page_shift;
        let len = (size - page_start).min(self.page_size() as u64) as usize;
        let data = self.page_data(page, len, size)?;
        Ok(Slice::new(page_start, data, 0, len))
    }

    /// The bytes of `page`, at least `need` of them, from the cache or the device.
    fn page_data(&self, page: u64, need: usize, size: u64) -> Result<Arc<[u8]>, Error> {
        let shard = self.shard(page);
        let mut counted = false;
        loop {
            match self.lookup(page, need, Arc::clone) {
                Lookup::Hit(data) => {
                    if !counted {
                        shard.count_hit();
                    }
                    return Ok(data);
                }
                Lookup::Stale(data) => self.drop_stale(page, &data),
                Lookup::Wait(loading) => {
                    if !counted {
                        shard.count_miss();
                        counted = true;
                    }
                    loading.wait();
                }
                Lookup::Absent => {
                    if !counted {
                        shard.count_miss();
                        counted = true;
                    }
                    if let Some(run) = self.reserve_run(page, page)
                        && let Some(data) = run.fetch(size)?.pop()
                    {
                        return Ok(data);
                    }
                }
            }
        }
    }

    /// Reads `buf.len()` bytes at `pos`, already checked to lie inside `size`.
    #[inline]
    pub(crate) fn read_in_bounds(&self, pos: u64, buf: &mut [u8], size: u64) -> Result<(), Error> {
        let off = (pos & self.geometry.page_mask()) as usize;
        let end = off + buf.len();
        if end <= self.page_size() && !buf.is_empty() {
            let page = pos >> self.geometry.page_shift;
            let copied = self.lookup(page, end, |data| {
                if let Some(src) = data.get(off..end) {
                    buf.copy_from_slice(src);
                }
            });
            if let Lookup::Hit(()) = copied {
                self.shard(page).count_hit();
                return Ok(());
            }
        }
        self.read_slow(pos, buf, size)
    }

    /// The general read: page by page, waiting for pages other threads are
    /// reading, and fetching each run of missing pages with one device read.
    #[inline(never)]
    fn read_slow(&self, pos: u64, buf: &mut [u8], size: u64) -> Result<(), Error> {
        let shift = self.geometry.page_shift;
        let mask = self.geometry.page_mask();
        let page_size = self.page_size();
        let last_page = match buf.len() {
            0 => return Ok(()),
            len => (pos + len as u64 - 1) >> shift,
        };
        let mut done = 0;
        // Whether the current page's lookup was already counted (as a miss).
        let mut counted = false;
        while done < buf.len() {
            let addr = pos + done as u64;
            let page = addr >> shift;
            let off = (addr & mask) as usize;
            let n = (page_size - off).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            let shard = self.shard(page);
            match self.lookup(page, off + n, |data| {
                if let Some(src) = data.get(off..off + n) {
                    dst.copy_from_slice(src);
                }
            }) {
                Lookup::Hit(()) => {
                    if !counted {
                        shard.count_hit();
                    }
                    counted = false;
                    done += n;
                }
                Lookup::Stale(data) => self.drop_stale(page, &data),
                Lookup::Wait(loading) => {
                    if !counted {
                        shard.count_miss();
                        counted = true;
                    }
                    loading.wait();
                }
                Lookup::Absent => {
                    if !counted {
                        shard.count_miss();
                        counted = true;
                    }
                    let Some(run) = self.reserve_run(page, last_page) else {
                        continue;
                    };
                    for data in run.fetch(size)? {
                        let addr = pos + done as u64;
                        let off = (addr & mask) as usize;
                        let n = (page_size - off).min(buf.len() - done);
                        let src = data.get(off..off + n).ok_or_else(short_page)?;
                        buf[done..done + n].copy_from_slice(src);
                        done += n;
                    }
                    counted = false;
                }
            }
        }
        Ok(())
    }

    /// Marks the missing pages from `first` (at most up to `last`, and at
    /// most a batch) as being read by this thread. Stops at the first page
    /// that is resident or being read; `None` if `first` itself is.
    fn reserve_run(&self, first: u64, last: u64) -> Option<Reservation<'_, D>> {
        let max = (last - first)
            .saturating_add(1)
            .min(self.geometry.max_batch_pages as u64);
        let loading = Arc::new(Loading::default());
        let mut count = 0;
        while count < max {
            let page = first + count;
            let shard = self.shard(page);
            match shard.map.write().entry(page) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Slot::Loading(loading.clone()));
                }
                std::collections::hash_map::Entry::Occupied(_) => break,
            }
            if count > 0 {
                shard.count_miss();
            }
            count += 1;
        }
        (count > 0).then(|| Reservation {
            cache: self,
            first,
            count,
            loading,
        })
    }

    /// Fills `buf` from the device at `pos`, counting every call.
    fn read_device(&self, mut pos: u64, mut buf: &mut [u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            self.device_reads.fetch_add(1, Relaxed);
            match self.device.read_at(pos, buf) {
                Ok(0) => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "device ended at {pos}, before its known size of {}; \
                             call refresh_size or invalidate after shrinking it",
                            self.size()
                        ),
                    )));
                }
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Error::Io(err)),
            }
        }
        Ok(())
    }
}

fn short_page() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "a page read from the device is shorter than the range asked for",
    ))
}

/// Pages this thread marked as being read; dropping it wakes the waiters and
/// clears the marks it still owns (after an error, or a panic).
struct Reservation<'a, D> {
    cache: &'a PageCache<D>,
    first: u64,
    count: u64,
    loading: Arc<Loading>,
}

impl<D: ReadAt> Reservation<'_, D> {
    /// Reads the reserved pages (clipped to `size`) with one device read,
    /// caches them and returns their bytes in order.
    fn fetch(mut self, size: u64) -> Result<Vec<Arc<[u8]>>, Error> {
        let cache = self.cache;
        let shift = cache.geometry.page_shift;
        let start = self.first << shift;
        let end = (u128::from(self.first + self.count) << shift).min(u128::from(size)) as u64;
        let len = usize::try_from(end - start).map_err(|_| {
            Error::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "a run of pages does not fit in memory",
            ))
        })?;
        let mut bytes = vec![0u8; len];
        cache.read_device(start, &mut bytes)?;
        let pages: Vec<Arc<[u8]>> = bytes.chunks(cache.page_size()).map(Arc::from).collect();
        self.install(&pages);
        Ok(pages)
    }

    /// Replaces this reservation's marks by the pages, evicting as needed.
    /// Marks dropped meanwhile (an invalidation) are not replaced: the bytes
    /// read may predate the change that caused it.
    fn install(&mut self, pages: &[Arc<[u8]>]) {
        let cache = self.cache;
        let mut policy = cache.policy.lock();
        let epoch = cache.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        for (page, data) in (self.first..).zip(pages) {
            let map = cache.shard(page).map.read();
            if !self.owns(map.get(&page)) {
                continue;
            }
            drop(map);
            while policy.len() >= cache.geometry.capacity && cache.evict_one(&mut policy) {}
            // Only invalidation (which takes the policy lock, held here)
            // removes another thread's mark, so the mark is still ours.
            let mut map = cache.shard(page).map.write();
            if self.owns(map.get(&page)) {
                let node = policy.insert(page);
                map.insert(page, Slot::Ready(Frame::new(data.clone(), node, epoch)));
            }
        }
        self.count = 0;
    }

    fn owns(&self, slot: Option<&Slot>) -> bool {
        matches!(slot, Some(Slot::Loading(loading)) if Arc::ptr_eq(loading, &self.loading))
    }
}

impl<D> Drop for Reservation<'_, D> {
    fn drop(&mut self) {
        for page in self.first..self.first + self.count {
            let mut map = self.cache.shard(page).map.write();
            if matches!(map.get(&page), Some(Slot::Loading(loading)) if Arc::ptr_eq(loading, &self.loading))
            {
                map.remove(&page);
            }
        }
        self.loading.finish();
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
