//! `PageCache`: the lock-free hit path, the locked path (misses coalesced
//! into one device read, in-flight reads shared, stale pages replaced),
//! eviction and invalidation.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use bincodec::ByteSource;
use blockdev::ReadAt;
use parking_lot::{Condvar, Mutex};

use crate::builder::{Builder, Geometry};
use crate::counters::StripedCounter;
use crate::error::check_range;
use crate::frames::{Copied, FrameId, Frames};
use crate::hints::{Hints, PageHasher};
use crate::iter::{Bytes, Chunks};
use crate::policy::{NodeId, Policy};
use crate::{Error, Slice, Stats};

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
/// `PageCache<D>` is `Send + Sync` when `D` is. A hit takes no lock and
/// writes nothing shared: it finds the page's frame in a hint table, copies
/// the bytes out of an arena of atomic words with plain loads, and checks
/// the frame's sequence number to know that no writer changed it meanwhile,
/// so hits on any pages, from any number of threads, proceed in parallel.
/// Everything else (misses, eviction, invalidation, `load`) takes one
/// state lock, never held during device I/O: a miss marks its pages as
/// being read, drops the lock and reads the device; a second thread
/// missing the same page waits for that read instead of issuing its own.
///
/// # Memory
/// The frames are allocated when the cache is built: for each page of
/// capacity, the page rounded up to 8 bytes plus 8, a 32-byte head and 16
/// bytes of hint table. A page handed out as a [`Slice`] (by `load`,
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
    device: D,
    geometry: Geometry,
    size: AtomicU64,
    frames: Frames,
    hints: Hints,
    hits: StripedCounter,
    state: Mutex<State>,
    /// Counts batches of pages inserted; see `frames::touch`.
    epoch: AtomicU32,
    device_reads: AtomicU64,
}

#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<blockdev::MemDevice>: Send, Sync);
#[cfg(test)]
static_assertions::assert_impl_all!(PageCache<std::fs::File>: Send, Sync);

/// Everything but the hit path, behind the state lock.
#[derive(Debug)]
struct State {
    /// The truth about which frame holds which page (hints may lag).
    resident: HashMap<u64, FrameId, PageHasher>,
    /// Pages being read from the device, and who waits for them.
    loading: HashMap<u64, Arc<Loading>, PageHasher>,
    policy: Policy,
    /// Per frame: its node in the policy.
    nodes: Vec<NodeId>,
    /// Per frame: the bytes last handed out as a `Slice`.
    slices: Vec<Option<Arc<[u8]>>>,
    /// Free frames (entries whose `is_free` was cleared since are stale and
    /// skipped), and whether each frame is free.
    free: Vec<FrameId>,
    is_free: Vec<bool>,
    misses: u64,
    evictions: u64,
}

/// A device read in progress; threads wanting the same pages wait on it.
#[derive(Debug, Default)]
struct Loading {
    done: Mutex<bool>,
    finished: Condvar,
}

impl Loading {
    fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.finished.wait(&mut done);
        }
    }

    fn finish(&self) {
        *self.done.lock() = true;
        self.finished.notify_all();
    }
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
        Self::from_parts(device, geometry, size)
    }

    fn from_parts(device: D, geometry: Geometry, size: u64) -> Result<Self, Error> {
        let frames =
            Frames::new(geometry.capacity, geometry.page_size()).ok_or(Error::TooLarge {
                capacity: geometry.capacity,
                page_size: geometry.page_size(),
            })?;
        Ok(PageCache {
            device,
            geometry,
            size: AtomicU64::new(size),
            frames,
            hints: Hints::new(geometry.capacity),
            hits: StripedCounter::new(),
            state: Mutex::new(State {
                resident: HashMap::default(),
                loading: HashMap::default(),
                policy: Policy::new(geometry.capacity),
                nodes: vec![NodeId::MAX; geometry.capacity],
                slices: vec![None; geometry.capacity],
                free: (0..geometry.capacity as FrameId).rev().collect(),
                is_free: vec![true; geometry.capacity],
                misses: 0,
                evictions: 0,
            }),
            epoch: AtomicU32::new(0),
            device_reads: AtomicU64::new(0),
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

    /// The frame `page` lives in whenever it can: its page number modulo
    /// the capacity. A hit on a page at home needs no table lookup at all.
    #[inline]
    fn home(&self, page: u64) -> FrameId {
        (page & (self.geometry.capacity as u64 - 1)) as FrameId
    }

    /// The lock-free hit: copies `dst.len()` bytes at in-page offset `off`
    /// of `page` from its home frame, or else from the frame a hint names.
    #[inline]
    fn try_hit(&self, page: u64, off: usize, dst: &mut [u8]) -> bool {
        let epoch = self.epoch.load(Relaxed);
        let home = self.home(page);
        let copied = match self.frames.read(home, page, off, dst, epoch) {
            Copied::Done => true,
            Copied::Retry => {
                let frame = self.hints.find(page);
                frame != home
                    && matches!(self.frames.read(frame, page, off, dst, epoch), Copied::Done)
            }
        };
        if copied {
            self.hits.add_one();
        }
        copied
    }

    /// A frame for `page`: its home frame if free; else a free frame or the
    /// frame of the page the policy evicts, and then, if the home frame
    /// holds a page that is not at home there, that page moves to the new
    /// frame so `page` can live at home. `None` only if the capacity holds
    /// no page at all.
    fn take_frame(&self, state: &mut State, page: u64) -> Option<FrameId> {
        let home = self.home(page);
        if state.is_free[home as usize] {
            state.is_free[home as usize] = false;
            return Some(home);
        }
        let frame = loop {
            match state.free.pop() {
                Some(frame) if state.is_free[frame as usize] => {
                    state.is_free[frame as usize] = false;
                    break frame;
                }
                Some(_) => {}
                None => break self.evict(state)?,
            }
        };
        if frame != home
            && let Some(guest) = self.frames.page_of(home)
            && self.home(guest) != home
        {
            self.relocate(state, guest, home, frame);
            return Some(home);
        }
        Some(frame)
    }

    /// Evicts the page the policy chooses; returns its frame.
    fn evict(&self, state: &mut State) -> Option<FrameId> {
        let State {
            policy, resident, ..
        } = state;
        let frames = &self.frames;
        let victim = policy.evict(&mut |page| {
            resident
                .get(&page)
                .is_some_and(|&frame| frames.take_credit(frame))
        })?;
        let frame = state.resident.remove(&victim)?;
        self.hints.remove(victim, frame);
        state.slices[frame as usize] = None;
        state.evictions += 1;
        Some(frame)
    }

    /// Moves resident `page` from frame `from` to the free frame `to`.
    /// Readers of `page` still on `from` see valid bytes until `from` is
    /// rewritten, then retry and find it through its new hint.
    fn relocate(&self, state: &mut State, page: u64, from: FrameId, to: FrameId) {
        let mut bytes = vec![0; self.frames.len(from)];
        self.frames.read_locked(from, 0, &mut bytes);
        self.frames
            .write(to, page, &bytes, self.epoch.load(Relaxed));
        state.resident.insert(page, to);
        state.nodes[to as usize] = state.nodes[from as usize];
        state.slices[to as usize] = state.slices[from as usize].take();
        self.hints.remove(page, from);
        self.hints.insert(page, to);
    }

    /// Makes `frame` hold `page`, and tells the policy (and the hints, for
    /// a page away from home).
    fn place(&self, state: &mut State, frame: FrameId, page: u64, bytes: &[u8], epoch: u32) {
        self.frames.write(frame, page, bytes, epoch);
        state.nodes[frame as usize] = state.policy.insert(page);
        state.resident.insert(page, frame);
        if frame != self.home(page) {
            self.hints.insert(page, frame);
        }
    }

    /// Drops `page` if resident: invalidated, or cached short.
    fn drop_page(&self, state: &mut State, page: u64) {
        if let Some(frame) = state.resident.remove(&page) {
            self.hints.remove(page, frame);
            self.frames.clear(frame);
            let node = state.nodes[frame as usize];
            state.policy.remove(node);
            state.slices[frame as usize] = None;
            state.free.push(frame);
            state.is_free[frame as usize] = true;
            // Frames taken as homes leave stale entries; keep the list short.
            if state.free.len() > 2 * self.geometry.capacity {
                let State { free, is_free, .. } = state;
                let mut listed = vec![false; is_free.len()];
                free.retain(|&f| {
                    is_free[f as usize] && !std::mem::replace(&mut listed[f as usize], true)
                });
            }
        }
    }

    /// Installs `data` as the clean contents of `page`, replacing whatever
    /// is there (a resident copy, or another thread's in-flight read, whose
    /// result is then discarded).
    pub(crate) fn install_clean(&self, page: u64, data: Arc<[u8]>) {
        let mut state = self.state.lock();
        let epoch = self.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        state.loading.remove(&page);
        if let Some(&frame) = state.resident.get(&page) {
            self.frames.write(frame, page, &data, epoch);
            state.slices[frame as usize] = Some(data);
            return;
        }
        if let Some(frame) = self.take_frame(&mut state, page) {
            self.place(&mut state, frame, page, &data, epoch);
            state.slices[frame as usize] = Some(data);
        }
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
        let mut state = self.state.lock();
        let doomed: Vec<u64> = if last - first <= state.resident.len() as u64 {
            (first..=last).collect()
        } else {
            let in_range = |page: &&u64| (first..=last).contains(*page);
            state.resident.keys().filter(in_range).copied().collect()
        };
        for page in doomed {
            self.drop_page(&mut state, page);
        }
        state
            .loading
            .retain(|page, _| !(first..=last).contains(page));
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
            let mut state = self.state.lock();
            let pages: Vec<u64> = state.resident.keys().copied().collect();
            for page in pages {
                self.drop_page(&mut state, page);
            }
            state.policy.clear();
            state.loading.clear();
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
        let mut counted = false;
        loop {
            let mut state = self.state.lock();
            // Most pages are at home: skip the map then.
            let home = self.home(page);
            let resident = if self.frames.page_of(home) == Some(page) {
                Some(home)
            } else {
                state.resident.get(&page).copied()
            };
            if let Some(frame) = resident {
                if self.frames.len(frame) >= len {
                    if !counted {
                        self.hits.add_one();
                    }
                    self.frames.touch_locked(frame, self.epoch.load(Relaxed));
                    let shared = &mut state.slices[frame as usize];
                    let data = match shared {
                        Some(data) if data.len() >= len => data.clone(),
                        _ => {
                            let mut bytes = vec![0; self.frames.len(frame)];
                            self.frames.read_locked(frame, 0, &mut bytes);
                            let data: Arc<[u8]> = Arc::from(bytes);
                            *shared = Some(data.clone());
                            data
                        }
                    };
                    return Ok(Slice::new(page_start, data, 0, len));
                }
                self.drop_page(&mut state, page);
            }
            if !counted {
                state.misses += 1;
                counted = true;
            }
            if let Some(loading) = state.loading.get(&page).cloned() {
                drop(state);
                loading.wait();
                continue;
            }
            let run = self.reserve_run(&mut state, page, page);
            drop(state);
            let bytes = run.fetch(size)?;
            return Ok(Slice::new(page_start, Arc::from(bytes), 0, len));
        }
    }

    /// Reads `buf.len()` bytes at `pos`, already checked to lie inside `size`.
    #[inline]
    pub(crate) fn read_in_bounds(&self, pos: u64, buf: &mut [u8], size: u64) -> Result<(), Error> {
        let off = (pos & self.geometry.page_mask()) as usize;
        if off + buf.len() <= self.geometry.page_size()
            && !buf.is_empty()
            && self.try_hit(pos >> self.geometry.page_shift, off, buf)
        {
            return Ok(());
        }
        self.read_slow(pos, buf, size)
    }

    /// The general read: page by page, hits without the lock when possible,
    /// waiting for pages other threads are reading, and fetching each run
    /// of missing pages with one device read.
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
            if !counted && self.try_hit(page, off, &mut buf[done..done + n]) {
                done += n;
                continue;
            }
            let mut state = self.state.lock();
            if let Some(&frame) = state.resident.get(&page) {
                if self.frames.len(frame) >= off + n {
                    self.frames
                        .read_locked(frame, off, &mut buf[done..done + n]);
                    self.frames.touch_locked(frame, self.epoch.load(Relaxed));
                    if frame != self.home(page) && !self.hints.contains(page, frame) {
                        self.hints.insert(page, frame);
                    }
                    if !counted {
                        self.hits.add_one();
                    }
                    counted = false;
                    done += n;
                    continue;
                }
                // Cached when the device was shorter: read it again.
                self.drop_page(&mut state, page);
            }
            if !counted {
                state.misses += 1;
                counted = true;
            }
            if let Some(loading) = state.loading.get(&page).cloned() {
                drop(state);
                loading.wait();
                continue;
            }
            let run = self.reserve_run(&mut state, page, last_page);
            drop(state);
            let run_start = page << shift;
            let bytes = run.fetch(size)?;
            let from = (addr - run_start) as usize;
            let n = bytes.len().saturating_sub(from).min(buf.len() - done);
            let src = bytes.get(from..from + n).ok_or_else(short_page)?;
            buf[done..done + n].copy_from_slice(src);
            done += n;
            counted = false;
        }
        Ok(())
    }

    /// Marks the missing pages from `first` (which is missing; at most up
    /// to `last`, and at most a batch) as being read by this thread. Stops
    /// at the first page that is resident or being read.
    fn reserve_run(&self, state: &mut State, first: u64, last: u64) -> Reservation<'_, D> {
        let max = (last - first)
            .saturating_add(1)
            .min(self.geometry.max_batch_pages as u64);
        let loading = Arc::new(Loading::default());
        let mut count = 0;
        while count < max {
            let page = first + count;
            if state.resident.contains_key(&page) || state.loading.contains_key(&page) {
                break;
            }
            state.loading.insert(page, loading.clone());
            if count > 0 {
                state.misses += 1;
            }
            count += 1;
        }
        Reservation {
            cache: self,
            first,
            count,
            loading,
        }
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
    /// caches them and returns their bytes.
    fn fetch(mut self, size: u64) -> Result<Vec<u8>, Error> {
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
        self.install(&bytes);
        Ok(bytes)
    }

    /// Puts the pages read into frames, evicting as needed. Pages whose
    /// mark was dropped meanwhile (an invalidation) are not cached: the
    /// bytes read may predate the change that caused it.
    fn install(&mut self, bytes: &[u8]) {
        let cache = self.cache;
        let mut state = cache.state.lock();
        let epoch = cache.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        for (page, data) in (self.first..).zip(bytes.chunks(cache.page_size())) {
            let ours = matches!(state.loading.get(&page), Some(l) if Arc::ptr_eq(l, &self.loading));
            if !ours {
                continue;
            }
            state.loading.remove(&page);
            if let Some(frame) = cache.take_frame(&mut state, page) {
                cache.place(&mut state, frame, page, data, epoch);
            }
        }
        self.count = 0;
    }
}

impl<D> Drop for Reservation<'_, D> {
    fn drop(&mut self) {
        if self.count > 0 {
            let mut state = self.cache.state.lock();
            for page in self.first..self.first + self.count {
                if matches!(state.loading.get(&page), Some(l) if Arc::ptr_eq(l, &self.loading)) {
                    state.loading.remove(&page);
                }
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
