//! `WriteBackCache`: setters into dirty pages, written back by `persist`
//! and `commit` one run of contiguous pages per device write.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use bincodec::{ByteSink, ByteSource};
use blockdev::{ReadAt, WriteAt};
use parking_lot::{Mutex, RwLock};

use crate::dirty::{Base, DirtyPages, Extent};
use crate::error::check_range;
use crate::{Error, PageCache, Slice};

/// A page cache that also takes writes (Cachet's `Cachet_wr`).
///
/// Every setter of [`bincodec::ByteSinkExt`] writes into *dirty pages* kept
/// beside the clean cache; every getter sees them at once. Nothing reaches
/// the device until [`persist`](Self::persist) (the dirty pages overlapping
/// a range), [`commit`](Self::commit) (all of them) or a write that finds
/// the dirty pages at their bound, which write each run of contiguous
/// dirty pages with one vectored device write (per 1024 pages).
///
/// - Reads never see half of a write: every read (a getter,
///   `read_bytes_at`, [`load`](Self::load)) returns the bytes as of one
///   moment between whole `write_bytes`/setter calls, also while other
///   threads write and commit. A read with nothing dirty takes no lock and
///   checks afterwards that no write-back overlapped it (retrying under the
///   dirty lock if one did); otherwise it holds the dirty map's read lock
///   for the whole read. Two separate calls are two moments: a value
///   written by two setter calls can be seen between them.
/// - Dirty pages are bounded ([`Builder::max_dirty_pages`](crate::Builder::max_dirty_pages),
///   64 MiB worth by default): a write that would go past the bound first
///   writes back the oldest dirty runs itself. If that write-back fails,
///   the write returns the error and changes nothing; the dirty pages stay
///   dirty, nothing is lost. A single write larger than the bound is kept
///   whole, all of it dirty, until the next write-back.
/// - Dirty pages live in extents: a write makes the clean pages it
///   covers dirty in buffers of up to 1 MiB (or one page) each, so a
///   large write is a few buffers, not one per page. The bound holds for
///   the memory they keep alive too: at most twice the dirty pages' bytes
///   (plus the buffers of slices still held). When pages are written back
///   from the middle of an extent, what stays dirty of it moves to a
///   buffer of its own once it uses less than half of the shared one.
/// - Write-back writes each run straight from those buffers, one vectored
///   device write (`pwritev` for files) per 1024 pages, without copying
///   them into one buffer. Written pages already cached are updated, and
///   the last `capacity` pages of each run written are kept as clean
///   cached pages.
/// - A [`Slice`] of a dirty page from [`load`](Self::load) keeps its
///   bytes: a later write copies the pages it changes into a new buffer
///   (copy-on-write) instead of changing the slice's. The slice shares its
///   extent's buffer, so it keeps up to 1 MiB (or its page) alive.
/// - When a device write fails, its pages stay dirty and the error is
///   returned: nothing is lost, a later `commit` tries again. Runs written
///   before the failure are clean.
/// - The device size is fixed: a write past the end is
///   [`Error::OutOfBounds`], like any sink of bincodec. To grow the device,
///   commit, grow it, then [`refresh_size`](Self::refresh_size).
/// - A new version of the device (an object replaced, a file rewritten
///   as a whole): [`refresh`](Self::refresh), once nothing is pending;
///   writes made against the old version are committed or discarded
///   first, never carried into the new one.
/// - Dropping the cache commits what is pending and ignores errors, like
///   `std::io::BufWriter`; call `commit` to see them.
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::{ByteSinkExt, ByteSourceExt, WriteBackCache};
///
/// let dev = MemDevice::from_vec(vec![0; 64]);
/// let mut cache = WriteBackCache::new(dev.clone())?;
/// cache.set_i64_be(30, -2)?;
/// assert_eq!(cache.get_i64_be(30)?, -2);
/// assert_eq!(dev.to_vec()[30..38], [0; 8]); // not written yet
/// cache.commit()?;
/// assert_eq!(dev.to_vec()[30..38], (-2i64).to_be_bytes());
/// # Ok::<(), pagecache::Error>(())
/// ```
pub struct WriteBackCache<D: ReadAt + WriteAt> {
    cache: PageCache<D>,
    /// The size every dirty page is cut to; changes only with no dirty
    /// pages, so it stays right even if `cache()` re-reads its own.
    size: AtomicU64,
    /// The dirty pages, as extents of contiguous pages.
    dirty: RwLock<DirtyPages>,
    /// `dirty.len()`, readable without the lock: reads skip the dirty map
    /// when nothing is pending.
    dirty_count: AtomicUsize,
    /// Serializes writers and write-back, so a page's dirty bytes cannot
    /// change between being written to the device and being marked clean.
    /// Holds the first page of each extent in the order they became dirty
    /// (with stale entries for pages written back since), oldest first.
    writer: Mutex<VecDeque<u64>>,
    /// The most dirty pages kept; see `max_dirty_pages`.
    max_dirty: usize,
    /// Odd while a write-back changes the device and the clean pages: a
    /// read that took no lock checks it did not overlap one (a sequence
    /// lock).
    write_back_seq: AtomicU64,
}

#[cfg(test)]
static_assertions::assert_impl_all!(WriteBackCache<blockdev::MemDevice>: Send, Sync);

impl<D: ReadAt + WriteAt> WriteBackCache<D> {
    /// A write-back cache with the default shape (4096-byte pages, 1024 of them).
    ///
    /// # Errors
    /// [`Error::Io`] when the device size cannot be read.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::WriteBackCache::new(MemDevice::new())?;
    /// assert_eq!(cache.dirty_pages(), 0);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn new(device: D) -> Result<Self, Error> {
        Ok(Self::from_cache(PageCache::new(device)?))
    }

    /// Adds write-back to an existing cache.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{PageCache, WriteBackCache};
    ///
    /// let cache = PageCache::builder().page_size(64).build(MemDevice::new())?;
    /// assert_eq!(WriteBackCache::from_cache(cache).cache().page_size(), 64);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn from_cache(cache: PageCache<D>) -> Self {
        let bound = (crate::DEFAULT_DIRTY_BYTES / cache.page_size()).max(1);
        Self::with_bound(cache, bound)
    }

    /// Adds write-back with at most `max_dirty` (at least 1) dirty pages.
    pub(crate) fn with_bound(cache: PageCache<D>, max_dirty: usize) -> Self {
        WriteBackCache {
            max_dirty: max_dirty.max(1),
            size: AtomicU64::new(cache.size()),
            dirty: RwLock::new(DirtyPages::new(cache.page_size())),
            cache,
            dirty_count: AtomicUsize::new(0),
            writer: Mutex::new(VecDeque::new()),
            write_back_seq: AtomicU64::new(0),
        }
    }

    /// The clean page cache underneath. Its reads do not see pending writes.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{ByteSinkExt, ByteSourceExt};
    ///
    /// let mut cache = pagecache::WriteBackCache::new(MemDevice::from_vec(vec![0; 4]))?;
    /// cache.set_u8(0, 1)?;
    /// assert_eq!((cache.get_u8(0)?, cache.cache().get_u8(0)?), (1, 0));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn cache(&self) -> &PageCache<D> {
        &self.cache
    }

    /// The device.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::WriteBackCache::new(MemDevice::from_vec(vec![3]))?;
    /// assert_eq!(cache.device().to_vec(), [3]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn device(&self) -> &D {
        self.cache.device()
    }

    /// The device size (fixed; see [`refresh_size`](Self::refresh_size)).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// assert_eq!(pagecache::WriteBackCache::new(MemDevice::from_vec(vec![0; 9]))?.size(), 9);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Number of dirty pages waiting to be written.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSinkExt;
    ///
    /// let mut cache = pagecache::PageCache::builder().page_size(4)
    ///     .build_write_back(MemDevice::from_vec(vec![0; 16]))?;
    /// cache.set_u32_le(2, 7)?; // pages 0 and 1
    /// assert_eq!(cache.dirty_pages(), 2);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn dirty_pages(&self) -> usize {
        self.dirty_count.load(Ordering::Acquire)
    }

    /// The most dirty pages this cache keeps (see
    /// [`Builder::max_dirty_pages`](crate::Builder::max_dirty_pages)). A
    /// write that would go past it first writes back the oldest dirty runs
    /// itself; only a single write larger than the bound goes past it, for
    /// as long as that write's pages stay dirty.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::WriteBackCache::new(MemDevice::new())?;
    /// assert_eq!(cache.max_dirty_pages(), (64 << 20) / 4096); // DEFAULT_DIRTY_BYTES
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn max_dirty_pages(&self) -> usize {
        self.max_dirty
    }

    /// Whether the byte at `addr` has a pending write in its page.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSinkExt;
    ///
    /// let mut cache = pagecache::PageCache::builder().page_size(4)
    ///     .build_write_back(MemDevice::from_vec(vec![0; 16]))?;
    /// cache.set_u8(5, 1)?;
    /// assert!(cache.is_dirty(4) && !cache.is_dirty(8));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn is_dirty(&self, addr: u64) -> bool {
        self.dirty
            .read()
            .contains(addr >> self.cache.page_size().trailing_zeros())
    }

    /// Writes `bytes` at `pos` into dirty pages, all at once for readers.
    /// If the new dirty pages would go past
    /// [`max_dirty_pages`](Self::max_dirty_pages), the oldest dirty runs
    /// are written back first. Pages only partly covered are first read
    /// (from the cache or the device). Any I/O error leaves the bytes of
    /// this write out and everything already written (dirty or not) intact.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device
    /// (nothing is written), [`Error::Io`] when writing back older dirty
    /// pages or reading a partly covered page fails (this write is not
    /// applied; the older pages stay dirty).
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSourceExt;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build_write_back(MemDevice::from_vec(b"abcdefgh".to_vec()))?;
    /// cache.write_bytes(3, b"XY")?;
    /// assert_eq!(cache.get_array::<8>(0)?, *b"abcXYfgh");
    /// assert!(cache.write_bytes(7, b"XY").is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn write_bytes(&self, pos: u64, bytes: &[u8]) -> Result<(), Error> {
        let size = self.size();
        check_range(pos, bytes.len() as u64, size)?;
        if bytes.is_empty() {
            return Ok(());
        }
        let mut order = self.writer.lock();
        // Again under the lock: a refresh or `refresh_size` may have
        // changed the size meanwhile (they hold this lock to do so).
        let size = self.size();
        check_range(pos, bytes.len() as u64, size)?;
        let shift = self.cache.page_size().trailing_zeros();
        let page_size = self.cache.page_size() as u64;
        let end = pos + bytes.len() as u64;
        let (first, last) = (pos >> shift, (end - 1) >> shift);
        self.make_room(&mut order, first, last)?;
        // Only the first and last pages can be partly covered; read their
        // current bytes before changing anything.
        let mut bases: Vec<Base> = Vec::with_capacity(2);
        for page in [first, last] {
            let start = page << shift;
            // Saturating: the device's last page may end at 2^64.
            let stop = start.saturating_add(page_size).min(size);
            let partial = pos > start || end < stop;
            if partial
                && !bases.iter().any(|base| base.page == page)
                && !self.dirty.read().contains(page)
            {
                let bytes = self.cache.page_slice(page, size)?;
                bases.push(Base { page, bytes });
            }
        }
        let mut dirty = self.dirty.write();
        order.extend(dirty.write(pos, bytes, size, &bases));
        self.dirty_count.store(dirty.len(), Ordering::Release);
        Ok(())
    }

    /// Writes back the oldest dirty runs until the pages of `first..=last`
    /// that are not dirty yet fit under the bound (or nothing is dirty).
    /// Called with the writer lock held, before a write changes anything.
    fn make_room(&self, order: &mut VecDeque<u64>, first: u64, last: u64) -> Result<(), Error> {
        loop {
            let (oldest, run_end) = {
                let dirty = self.dirty.read();
                // Pages of the write that would become dirty.
                let already = dirty.count_in(first, last + 1);
                let new = (last - first + 1) - already;
                let fits = (dirty.len() as u64).saturating_add(new) <= self.max_dirty as u64;
                if fits || dirty.is_empty() {
                    if order.len() > 2 * dirty.len() + 64 {
                        order.retain(|&page| dirty.contains(page));
                    }
                    return Ok(());
                }
                let Some(page) = order.pop_front() else {
                    // Only stale entries were left: start over from the map.
                    order.extend(dirty.runs(0, u64::MAX).into_iter().map(|(start, _)| start));
                    continue;
                };
                if !dirty.contains(page) {
                    continue;
                }
                // The whole run of contiguous dirty pages holding `page`.
                let start = dirty.run_start(page);
                (start, dirty.run_end(start))
            };
            if let Err(err) = self.write_run(oldest, run_end) {
                // Still dirty: keep it first in line.
                order.push_front(oldest);
                return Err(err);
            }
        }
    }

    /// Writes the dirty pages overlapping `[off, off + len)` to the device,
    /// each run of contiguous dirty pages with one vectored write per 1024
    /// pages straight from the dirty buffers; the pages become clean (the
    /// last `capacity` of each run stay cached).
    ///
    /// # Errors
    /// [`Error::Io`] from the first write that fails; the pages of that
    /// write and the runs after it stay dirty.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSinkExt;
    ///
    /// let dev = MemDevice::from_vec(vec![0; 16]);
    /// let mut cache = pagecache::PageCache::builder().page_size(4).build_write_back(dev.clone())?;
    /// cache.set_u8(1, 1)?;
    /// cache.set_u8(9, 9)?;
    /// cache.persist(8, 1)?; // page 2 only
    /// assert_eq!(dev.to_vec()[..10], [0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    /// assert_eq!(cache.dirty_pages(), 1);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn persist(&self, off: u64, len: u64) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let shift = self.cache.page_size().trailing_zeros();
        let first = off >> shift;
        let last = off.saturating_add(len - 1) >> shift;
        let mut order = self.writer.lock();
        let runs = self.dirty.read().runs(first, last.saturating_add(1));
        for (start, end) in runs {
            self.write_run(start, end)?;
        }
        if self.dirty_pages() == 0 {
            order.clear();
        }
        Ok(())
    }

    /// Writes every dirty page to the device (see [`persist`](Self::persist)).
    ///
    /// # Errors
    /// As `persist`.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSinkExt;
    ///
    /// let dev = MemDevice::from_vec(vec![0; 8]);
    /// let mut cache = pagecache::WriteBackCache::new(dev.clone())?;
    /// cache.set_u16_le(6, 0x0201)?;
    /// cache.commit()?;
    /// assert_eq!(dev.to_vec(), [0, 0, 0, 0, 0, 0, 1, 2]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn commit(&self) -> Result<(), Error> {
        self.persist(0, u64::MAX)
    }

    /// Commits, then asks the device to make the data durable (`fdatasync`).
    ///
    /// # Errors
    /// As `commit`, or the device's sync error.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::ByteSinkExt;
    ///
    /// let mut cache = pagecache::WriteBackCache::new(MemDevice::from_vec(vec![0; 8]))?;
    /// cache.set_u8(0, 1)?;
    /// cache.sync()?;
    /// assert_eq!(cache.dirty_pages(), 0);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn sync(&self) -> Result<(), Error> {
        self.commit()?;
        self.device().sync_data()?;
        Ok(())
    }

    /// Drops the clean cached pages overlapping `[off, off + len)` so they
    /// are read again; pending writes are kept (they are newer than the
    /// device). The size is not re-read (see [`refresh_size`](Self::refresh_size)).
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::ByteSourceExt;
    ///
    /// let dev = MemDevice::from_vec(vec![0; 8]);
    /// let cache = pagecache::WriteBackCache::new(dev.clone())?;
    /// assert_eq!(cache.get_u8(0)?, 0);
    /// dev.write_all_at(0, &[5])?;
    /// cache.invalidate(0, 1);
    /// assert_eq!(cache.get_u8(0)?, 5);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn invalidate(&self, off: u64, len: u64) {
        self.cache.drop_range(off, len);
    }

    /// Commits, then reads the device size again (after growing or
    /// shrinking the device); returns it.
    ///
    /// # Errors
    /// As `commit`, or the device's error reading its size.
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::ByteSinkExt;
    ///
    /// let dev = MemDevice::from_vec(vec![0; 4]);
    /// let mut cache = pagecache::WriteBackCache::new(dev.clone())?;
    /// assert!(cache.set_u32_le(4, 1).is_err());
    /// dev.set_len(8)?;
    /// assert_eq!(cache.refresh_size()?, 8);
    /// cache.set_u32_le(4, 1)?;
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn refresh_size(&self) -> Result<u64, Error> {
        let _writer = self.writer.lock();
        let runs = self.dirty.read().runs(0, u64::MAX);
        for (start, end) in runs {
            self.write_run(start, end)?;
        }
        let size = self.cache.refresh_size()?;
        self.size.store(size, Ordering::Release);
        Ok(size)
    }

    /// Moves the cache and every layer below it to the device's current
    /// version, as [`PageCache::refresh`] does (atomically for readers; the
    /// size is read again), but only with no write pending: dirty pages
    /// were written against the version the device had, and committed
    /// after the move they would land in the new one. With dirty pages it
    /// changes nothing and returns [`Error::DirtyPages`]: call
    /// [`commit`](Self::commit) (to write them into the old version, if
    /// the device still takes writes there) or [`discard`](Self::discard)
    /// first. Writes wait while it runs, and see the new size after.
    /// Returns whether anything changed.
    ///
    /// # Errors
    /// [`Error::DirtyPages`] with writes pending (nothing is refreshed);
    /// otherwise as [`PageCache::refresh`].
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::{ByteSinkExt, ByteSourceExt, Error, WriteBackCache};
    ///
    /// let dev = MemDevice::from_vec(vec![1; 8]);
    /// let mut cache = WriteBackCache::new(dev.clone())?;
    /// assert_eq!(cache.get_u8(0)?, 1);
    /// cache.set_u8(7, 9)?;
    /// dev.write_all_at(0, &[2; 16])?; // a new version, larger
    /// assert!(matches!(cache.refresh(), Err(Error::DirtyPages { pages: 1 })));
    /// cache.discard();
    /// assert!(cache.refresh()?);
    /// assert_eq!((cache.size(), cache.get_u8(0)?, cache.get_u8(15)?), (16, 2, 2));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn refresh(&self) -> Result<bool, Error> {
        let _writer = self.writer.lock();
        let pages = self.dirty_pages();
        if pages > 0 {
            return Err(Error::DirtyPages { pages });
        }
        // No write can land until the writer lock is released, so the
        // size stays the one every (absent) dirty page would be cut to.
        let refreshed = self.cache.refresh();
        self.size.store(self.cache.size(), Ordering::Release);
        refreshed
    }

    /// Drops every pending write without writing it: reads see the
    /// device's bytes again. Returns how many dirty pages were dropped.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use pagecache::{ByteSinkExt, ByteSourceExt, WriteBackCache};
    ///
    /// let dev = MemDevice::from_vec(vec![0; 8]);
    /// let mut cache = WriteBackCache::new(dev.clone())?;
    /// cache.set_u32_le(2, 7)?;
    /// assert_eq!(cache.discard(), 1);
    /// assert_eq!((cache.get_u32_le(2)?, cache.dirty_pages()), (0, 0));
    /// cache.commit()?;
    /// assert_eq!(dev.to_vec(), [0; 8]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn discard(&self) -> usize {
        let mut order = self.writer.lock();
        order.clear();
        let (pages, removed) = {
            let mut dirty = self.dirty.write();
            let pages = dirty.len();
            let removed = dirty.remove(0, u64::MAX);
            self.dirty_count.store(dirty.len(), Ordering::Release);
            (pages, removed)
        };
        // The buffers are freed here, after the lock.
        drop(removed);
        pages
    }

    /// Like [`PageCache::load`], seeing pending writes.
    ///
    /// # Errors
    /// As [`PageCache::load`].
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build_write_back(MemDevice::from_vec(vec![0; 8]))?;
    /// cache.write_bytes(4, b"new!")?;
    /// assert_eq!(cache.load(5, 1)?.unwrap().bytes(), b"new!");
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn load(&self, addr: u64, min_len: usize) -> Result<Option<Slice>, Error> {
        let page = addr >> self.cache.page_size().trailing_zeros();
        if min_len > self.cache.page_size() {
            return Err(Error::MinLenTooLarge {
                min_len,
                page_size: self.cache.page_size(),
            });
        }
        if self.dirty_pages() > 0
            && let Some(slice) = self.dirty.read().slice(page)
        {
            if slice.end().saturating_sub(addr) < min_len as u64 {
                return Ok(None);
            }
            return Ok(Some(slice));
        }
        self.cache.load_within(addr, min_len, self.size())
    }

    /// Writes the dirty pages `first..end` (all dirty) straight from
    /// their buffers, one vectored device write per group of
    /// [`GROUP_PAGES`], making each group clean once it is written. Called
    /// with the writer lock held. On an error, the groups before stay
    /// clean and the rest stay dirty.
    fn write_run(&self, first: u64, end: u64) -> Result<(), Error> {
        let mut group_start = first;
        while group_start < end {
            let group_end = end.min(group_start.saturating_add(GROUP_PAGES));
            // Readers without the dirty lock retry if they overlap this.
            let seq = self.write_back_seq.load(Ordering::Relaxed);
            self.write_back_seq
                .store(seq.wrapping_add(1), Ordering::Relaxed);
            fence(Ordering::Release);
            let written = self.write_group(group_start, group_end, end);
            self.write_back_seq
                .store(seq.wrapping_add(2), Ordering::Release);
            written?;
            group_start = group_end;
        }
        Ok(())
    }

    /// `write_run` of the pages `first..end`, inside the sequence lock;
    /// the run ends at `run_end`, and only its last `capacity` pages are
    /// worth caching.
    fn write_group(&self, first: u64, end: u64, run_end: u64) -> Result<(), Error> {
        let pieces: Vec<Extent> = self.dirty.read().pieces(first, end);
        let bufs: Vec<&[u8]> = pieces.iter().map(Extent::bytes).collect();
        let shift = self.cache.page_size().trailing_zeros();
        self.device().write_all_vectored_at(first << shift, &bufs)?;
        // Clean copies first, then drop the dirty ones: a reader sees one
        // or the other, both holding the new bytes.
        let pages: Vec<&[u8]> = bufs
            .iter()
            .flat_map(|buf| buf.chunks(self.cache.page_size()))
            .collect();
        let cache_from = run_end.saturating_sub(self.cache.capacity() as u64);
        self.cache.install_written(first, &pages, cache_from);
        let removed = {
            let mut dirty = self.dirty.write();
            let removed = dirty.remove(first, end);
            self.dirty_count.store(dirty.len(), Ordering::Release);
            removed
        };
        // The buffers are freed here, after the lock.
        drop(removed);
        Ok(())
    }
}

/// Dirty pages per vectored device write: at most Linux's `IOV_MAX`
/// pieces, so that one write-back is one `pwritev` per group.
const GROUP_PAGES: u64 = 1024;

impl<D: ReadAt + WriteAt> ByteSource for WriteBackCache<D> {
    type Error = Error;

    /// Reads bytes, pending writes included.
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), Error> {
        let size = self.size();
        check_range(pos, buf.len() as u64, size)?;
        // With nothing dirty, the clean pages are the truth; they change
        // only during a write-back, which a read here must not overlap.
        let seq = self.write_back_seq.load(Ordering::Acquire);
        if seq.is_multiple_of(2) && self.dirty_pages() == 0 {
            self.cache.read_in_bounds(pos, buf, size)?;
            fence(Ordering::Acquire);
            if self.write_back_seq.load(Ordering::Relaxed) == seq {
                return Ok(());
            }
        }
        // Under the dirty lock no write lands and no write-back finishes:
        // the dirty pages and the clean ones agree for the whole read.
        let shift = self.cache.page_size().trailing_zeros();
        let mask = (1u64 << shift) - 1;
        let dirty = self.dirty.read();
        let mut done = 0;
        while done < buf.len() {
            let addr = pos + done as u64;
            let page = addr >> shift;
            let off = (addr & mask) as usize;
            if let Some(tail) = dirty.bytes_from(page).and_then(|data| data.get(off..)) {
                // Dirty pages are cut to `size`, which holds the range.
                let n = tail.len().min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&tail[..n]);
                done += n;
                continue;
            }
            // A run of clean pages goes to the cache in one read, so its
            // missing pages are fetched together.
            let last_page = (pos + buf.len() as u64 - 1) >> shift;
            let end_page = dirty
                .next_dirty(page + 1)
                .map_or(last_page + 1, |next| next.min(last_page + 1));
            // The run may end at 2^64, past any `u64` address.
            let run_end = (u128::from(end_page) << shift) - u128::from(pos);
            let run_end = run_end.min(buf.len() as u128) as usize;
            self.cache
                .read_in_bounds(addr, &mut buf[done..run_end], size)?;
            done = run_end;
        }
        Ok(())
    }
}

impl<D: ReadAt + WriteAt> ByteSink for WriteBackCache<D> {
    type Error = Error;

    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), Error> {
        self.write_bytes(pos, bytes)
    }
}

/// Writes through a shared reference, so several threads can write.
impl<D: ReadAt + WriteAt> ByteSink for &WriteBackCache<D> {
    type Error = Error;

    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), Error> {
        self.write_bytes(pos, bytes)
    }
}

impl<D: ReadAt + WriteAt> Drop for WriteBackCache<D> {
    fn drop(&mut self) {
        // Best effort, like BufWriter; `commit` reports errors.
        let _ = self.commit();
    }
}

impl<D: ReadAt + WriteAt + std::fmt::Debug> std::fmt::Debug for WriteBackCache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBackCache")
            .field("cache", &self.cache)
            .field("dirty_pages", &self.dirty_pages())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use blockdev::MemDevice;

    use crate::PageCache;

    #[test]
    fn writing_back_the_middle_of_extents_frees_their_buffers() {
        const PAGE: usize = 4096;
        const EXTENT: usize = 1 << 20;
        let cache = PageCache::builder()
            .page_size(PAGE)
            .max_dirty_pages(1024)
            .build_write_back(MemDevice::from_vec(vec![0; 16 * EXTENT]))
            .unwrap();
        for i in 0..16 {
            let at = (i * EXTENT) as u64;
            cache.write_bytes(at, &vec![i as u8 + 1; EXTENT]).unwrap();
            // All but the first and last page of the extent.
            cache
                .persist(at + PAGE as u64, (EXTENT - 2 * PAGE) as u64)
                .unwrap();
        }
        assert_eq!(cache.dirty_pages(), 32);
        let pinned = cache.dirty.read().pinned_bytes();
        assert!(
            pinned <= 2 * cache.dirty_pages() * PAGE,
            "{pinned} bytes pinned by {} dirty pages",
            cache.dirty_pages()
        );
        // Copy-on-write of a page in the middle of a shared extent: its
        // head and tail stay at least half of the buffer they share.
        cache.write_bytes(0, &vec![9; EXTENT]).unwrap();
        let slice = cache.load(0, 1).unwrap().unwrap();
        cache.write_bytes(EXTENT as u64 / 2 + 8, b"x").unwrap();
        drop(slice);
        let pinned = cache.dirty.read().pinned_bytes();
        assert!(pinned <= 2 * cache.dirty_pages() * PAGE, "{pinned}");
        cache.commit().unwrap();
        assert_eq!(cache.dirty.read().pinned_bytes(), 0);
    }
}
