//! Versions: [`PageCache::refresh`] moves the cache and every layer below
//! it to the device's current contents, and a read never returns bytes of
//! two versions.
//!
//! A version counter, odd while a refresh is under way, works like a
//! sequence lock over the whole cache:
//! - a refresh makes it odd (under the state lock), refreshes the device
//!   below, drops every page and every read in flight if the device says
//!   it changed, then makes it even again (under the state lock);
//! - a read in flight installs its pages only if the counter is still the
//!   even value it saw when it reserved them, so every resident page was
//!   read whole while no refresh ran: a page is always of one version;
//! - a read of several pages, or one that went to the device, compares the
//!   counter before and after; if a refresh came between, its buffer may
//!   hold both versions, so it waits for the refresh to end and reads
//!   again. A read within one resident page needs no check.

use std::sync::atomic::{Ordering, fence};

use blockdev::ReadAt;

use crate::cache::PageCache;
use crate::error::check_range;
use crate::{Error, Slice};

/// How often a read starts again because a refresh crossed it before it
/// gives up with [`Error::VersionChanged`]. Each attempt first waits for
/// the refresh that crossed the previous one to end, so only refreshes
/// back to back exhaust them.
const MAX_ATTEMPTS: u32 = 16;

impl<D> PageCache<D> {
    /// The version counter once no refresh is under way (waiting for one
    /// to end if needed): an even number.
    pub(crate) fn stable_version(&self) -> u64 {
        loop {
            let version = self.version.load(Ordering::Acquire);
            if version & 1 == 0 {
                return version;
            }
            // The refresh holds this lock from start to end.
            drop(self.refreshing.lock());
        }
    }

    /// Whether the version is still `version`: nothing read since that
    /// value was loaded can come from after a refresh began.
    pub(crate) fn version_unchanged(&self, version: u64) -> bool {
        // Orders the reads of the bytes before the load of the counter.
        fence(Ordering::Acquire);
        self.version.load(Ordering::Relaxed) == version
    }

    /// Runs `read` until it runs with no refresh across it, and returns
    /// what that run returned (bytes or an error of one version). `read`
    /// gets the device size to read within (the one a refresh just read,
    /// after the first attempt).
    fn one_version<T>(
        &self,
        size: u64,
        mut read: impl FnMut(u64) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut size = size;
        for attempt in 0..MAX_ATTEMPTS {
            let version = self.stable_version();
            if attempt > 0 {
                size = self.size();
            }
            let result = read(size);
            if self.version_unchanged(version) {
                return result;
            }
        }
        Err(Error::VersionChanged)
    }
}

impl<D: ReadAt> PageCache<D> {
    /// Moves the cache, and every layer below it, to the device's current
    /// contents: calls the device's [`ReadAt::refresh`] (which does the
    /// same for the layers below it, down to, say, an object store asked
    /// for the object's current version), then, unless the device says
    /// nothing changed, drops every cached page and reads the device size
    /// again. Returns whether anything changed.
    ///
    /// Atomic for readers: a read returns bytes of one version, or an
    /// error, never some of each. Reads that begin after this returns see
    /// only the new contents. A read across several pages (or one that
    /// misses) that a refresh crosses starts again once the refresh ends;
    /// pages read while a refresh runs are not cached. The one call
    /// replaces `invalidate_all` and `refresh_size` (and whatever the
    /// layers below needed) after the device changed as a whole.
    ///
    /// A device that cannot tell whether it changed (a file, a
    /// [`MemDevice`](blockdev::MemDevice)) says it may have, so its pages
    /// are dropped; an [`objectdev`](https://docs.rs/objectdev) object whose
    /// ETag is the same keeps them, at the cost of one HEAD.
    ///
    /// # Errors
    /// [`Error::Io`] when the device's refresh or its size fails. The pages
    /// are dropped all the same (the device may have moved on); the old size
    /// is kept when the new one cannot be read.
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    /// use pagecache::{ByteSourceExt, PageCache};
    ///
    /// let dev = MemDevice::from_vec(vec![1; 8192]);
    /// let cache = PageCache::new(dev.clone())?;
    /// assert_eq!(cache.get_u8(5000)?, 1);
    /// dev.write_all_at(0, &[2; 10_000])?; // a new version, larger
    /// assert_eq!(cache.get_u8(5000)?, 1); // the cached page
    /// assert!(cache.refresh()?);
    /// assert_eq!((cache.get_u8(5000)?, cache.get_u8(9999)?), (2, 2));
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn refresh(&self) -> Result<bool, Error> {
        let _one_at_a_time = self.refreshing.lock();
        {
            let _state = self.state.lock();
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        let below = self.device.refresh();
        let changed = !matches!(below, Ok(false));
        let size = changed.then(|| self.device.size());
        {
            let mut state = self.state.lock();
            if changed {
                self.drop_all(&mut state);
                if let Some(Ok(size)) = size {
                    self.size.store(size, Ordering::Relaxed);
                }
            }
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        let changed = below?;
        if let Some(size) = size {
            size?;
        }
        Ok(changed)
    }

    /// [`read_slow`](Self::read_slow), read again until no refresh
    /// crossed it. Out of line, as `read_slow` was, so the getters that
    /// inline the hit path stay small.
    #[inline(never)]
    pub(crate) fn read_one_version(
        &self,
        pos: u64,
        buf: &mut [u8],
        size: u64,
    ) -> Result<(), Error> {
        self.one_version(size, |size| {
            check_range(pos, buf.len() as u64, size)?;
            self.read_slow(pos, buf, size)
        })
    }

    /// [`page_slice_once`](Self::page_slice_once), read again until no
    /// refresh crossed it.
    pub(crate) fn page_slice(&self, page: u64, size: u64) -> Result<Slice, Error> {
        self.one_version(size, |size| {
            // A refresh may have cut the device before this page.
            check_range(page << self.geometry.page_shift, 1, size)?;
            self.page_slice_once(page, size)
        })
    }
}
