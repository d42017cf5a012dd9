//! The miss path: one locked lookup shared by every read (count the miss,
//! wait for a read of the page in flight, or reserve a run of missing
//! pages), and the reservation that reads the run with one device call and
//! installs it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use blockdev::ReadAt;
use parking_lot::MutexGuard;

use crate::cache::PageCache;
use crate::frames::{BULK_MIN, FrameId, RUN_PAGES};
use crate::state::{Loading, State};
use crate::{Error, Slice};

/// What the locked lookup of one page found.
enum Lookup<'a, D> {
    /// The page is resident with the bytes asked for; the lock is held.
    Resident(MutexGuard<'a, State>, FrameId),
    /// The page is missing; this thread reserved a run starting at it.
    Reserved(Reservation<'a, D>),
}

impl<D: ReadAt> PageCache<D> {
    /// The locked lookup of `page`, needing its first `need` bytes. A
    /// resident page that long is a hit; a page cached short (the device
    /// grew) is dropped. Otherwise the lookup counts one miss, waits for a
    /// read of the page in flight and looks again, or reserves the run of
    /// missing pages from `page` up to at most `last`.
    fn lookup(&self, page: u64, need: usize, last: u64) -> Lookup<'_, D> {
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
                if self.frames.len(frame) >= need {
                    if !counted {
                        self.hits.add_one();
                    }
                    self.frames.touch_locked(frame, self.epoch.load(Relaxed));
                    if frame != home && !self.hints.contains(page, frame) {
                        self.hints.insert(page, frame);
                    }
                    return Lookup::Resident(state, frame);
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
            return Lookup::Reserved(self.reserve_run(&mut state, page, last));
        }
    }

    /// The whole page `page` (which starts before `size`) as a slice.
    pub(crate) fn page_slice_once(&self, page: u64, size: u64) -> Result<Slice, Error> {
        let page_start = page << self.geometry.page_shift;
        let len = (size - page_start).min(self.page_size() as u64) as usize;
        match self.lookup(page, len, page) {
            Lookup::Resident(mut state, frame) => {
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
                Ok(Slice::new(page_start, data, 0, len))
            }
            Lookup::Reserved(run) => {
                let bytes = run.fetch(size)?;
                Ok(Slice::new(page_start, Arc::from(bytes), 0, len))
            }
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
        self.read_one_version(pos, buf, size)
    }

    /// The general read: page by page, hits without the lock when possible,
    /// and each run of missing pages fetched with one device read.
    #[inline(never)]
    pub(crate) fn read_slow(&self, pos: u64, buf: &mut [u8], size: u64) -> Result<(), Error> {
        let shift = self.geometry.page_shift;
        let mask = self.geometry.page_mask();
        let page_size = self.page_size();
        let last_page = match buf.len() {
            0 => return Ok(()),
            len => (pos + len as u64 - 1) >> shift,
        };
        let mut done = 0;
        while done < buf.len() {
            let addr = pos + done as u64;
            let page = addr >> shift;
            let off = (addr & mask) as usize;
            let left = buf.len() - done;
            // Long reads across pages copy runs of pages at once.
            if left >= BULK_MIN && off + left > page_size {
                let span = left.min(RUN_PAGES * page_size - off);
                let copied = self.try_hit_run(page, off, &mut buf[done..done + span]);
                if copied > 0 {
                    done += copied;
                    continue;
                }
            }
            let n = (page_size - off).min(left);
            let dst = &mut buf[done..done + n];
            if self.try_hit(page, off, dst) {
                done += n;
                continue;
            }
            match self.lookup(page, off + n, last_page) {
                Lookup::Resident(_state, frame) => {
                    self.frames.read_locked(frame, off, dst);
                    done += n;
                }
                Lookup::Reserved(mut run) => {
                    let run_start = page << shift;
                    let (start, len) = run.range(size)?;
                    if off == 0 && len <= buf.len() - done {
                        // The run lies inside the read: read it straight
                        // into `buf` and install the pages from there, with
                        // no buffer to allocate and zero and no second copy.
                        run.read_into(start, &mut buf[done..done + len])?;
                        done += len;
                        continue;
                    }
                    let bytes = run.fetch(size)?;
                    let from = (addr - run_start) as usize;
                    let n = bytes.len().saturating_sub(from).min(buf.len() - done);
                    let src = bytes.get(from..from + n).ok_or_else(short_page)?;
                    buf[done..done + n].copy_from_slice(src);
                    done += n;
                }
            }
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
            version: self.version.load(Relaxed),
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
    /// The cache's version when the pages were reserved.
    version: u64,
}

impl<D: ReadAt> Reservation<'_, D> {
    /// Reads the reserved pages (clipped to `size`) with one device read,
    /// caches them and returns their bytes.
    fn fetch(mut self, size: u64) -> Result<Vec<u8>, Error> {
        let (start, len) = self.range(size)?;
        let mut bytes = vec![0u8; len];
        self.read_into(start, &mut bytes)?;
        Ok(bytes)
    }

    /// Where the reserved pages start on the device, and their length
    /// clipped to `size`.
    fn range(&self, size: u64) -> Result<(u64, usize), Error> {
        let shift = self.cache.geometry.page_shift;
        let start = self.first << shift;
        let end = (u128::from(self.first + self.count) << shift).min(u128::from(size)) as u64;
        let len = usize::try_from(end - start).map_err(|_| {
            Error::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "a run of pages does not fit in memory",
            ))
        })?;
        Ok((start, len))
    }

    /// Reads the reserved pages, `bytes.len()` of them from `start` (as
    /// [`range`](Self::range) says), with one device read into `bytes`,
    /// and caches them.
    fn read_into(&mut self, start: u64, bytes: &mut [u8]) -> Result<(), Error> {
        let cache = self.cache;
        let end = start + bytes.len() as u64;
        let hint = cache
            .streams
            .lock()
            .after_miss(start, end, |from, to| cache.looks_cached(from, to));
        if let Some((pos, len)) = hint {
            cache.device.will_need(pos, len);
        }
        cache.read_device(start, bytes)?;
        self.install(bytes);
        Ok(())
    }

    /// Puts the pages read into frames, evicting as needed. Pages whose
    /// mark was dropped meanwhile (an invalidation) are not cached: the
    /// bytes read may predate the change that caused it.
    ///
    /// The state lock is held twice, for bookkeeping only: once to take a
    /// frame per page (claimed: no reader trusts it, no other writer
    /// touches it), once to publish the pages still marked as this
    /// thread's. The bytes are copied in between, with the lock released:
    /// a run of 16 pages copied under it held every other miss for that
    /// copy, and for as long as the scheduler kept its holder off the CPU.
    /// Meanwhile the pages stay marked as being read, so a reader of one
    /// waits for this read to end, as before.
    fn install(&mut self, bytes: &[u8]) {
        let cache = self.cache;
        let page_size = cache.page_size();
        let shift = cache.geometry.page_shift;
        // Pages by index: `(self.first..)` would step past `u64::MAX` after
        // the device's last page (one-byte pages near 2^64).
        let pages = || {
            bytes
                .chunks(page_size)
                .enumerate()
                .map(|(index, data)| (self.first + index as u64, data))
        };
        let mut taken: Vec<(u64, FrameId, &[u8])> = Vec::with_capacity(self.count as usize);
        {
            let mut state = cache.state.lock();
            // A page moved to make room at home is copied under the lock:
            // one page for a one-page miss, none for a run.
            let make_home = self.count == 1;
            if !self.refreshed() {
                // Only the last `capacity` pages of a longer run: earlier
                // ones would only evict each other.
                let skip = (self.count as usize).saturating_sub(cache.capacity());
                for (page, data) in pages().skip(skip) {
                    if self.owns(&state, page)
                        && self.fits(page << shift, data.len())
                        && let Some(frame) = cache.take_frame(&mut state, page, make_home)
                    {
                        taken.push((page, frame, data));
                    }
                }
            }
        }
        for &(_, frame, data) in &taken {
            cache.copy_into_frame(frame, data);
        }
        let mut state = cache.state.lock();
        let epoch = cache.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        // Checked again under this lock: a refresh, a shrink or an
        // invalidation may have come while the bytes were copied.
        let refreshed = self.refreshed();
        for &(page, frame, data) in &taken {
            if !refreshed && self.owns(&state, page) && self.fits(page << shift, data.len()) {
                cache.publish_page(&mut state, frame, page, data.len(), epoch);
            } else {
                cache.give_back(&mut state, frame);
            }
        }
        for (page, _) in pages() {
            if self.owns(&state, page) {
                state.loading.remove(&page);
            }
        }
        self.count = 0;
    }
}

impl<D> Reservation<'_, D> {
    /// Whether `page` is still marked as being read by this reservation
    /// (an invalidation drops the marks of the pages it covers).
    fn owns(&self, state: &State, page: u64) -> bool {
        matches!(state.loading.get(&page), Some(l) if Arc::ptr_eq(l, &self.loading))
    }

    /// Whether a refresh began since the reservation (under the state
    /// lock, which the caller holds): the bytes may be of the old version,
    /// or of both.
    fn refreshed(&self) -> bool {
        self.cache.version.load(Relaxed) != self.version || self.version & 1 == 1
    }

    /// Whether `len` bytes at `start` lie inside the device size now
    /// (under the state lock, which `refresh_size` holds to shrink it):
    /// bytes read before a shrink must not be cached past the new end.
    fn fits(&self, start: u64, len: usize) -> bool {
        u128::from(start) + len as u128 <= u128::from(self.cache.size())
    }
}

impl<D> Drop for Reservation<'_, D> {
    fn drop(&mut self) {
        if self.count > 0 {
            let mut state = self.cache.state.lock();
            for page in self.first..self.first + self.count {
                if self.owns(&state, page) {
                    state.loading.remove(&page);
                }
            }
        }
        self.loading.finish();
    }
}
