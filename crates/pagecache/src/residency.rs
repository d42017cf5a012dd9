//! Which frame holds which page: taking a frame (home first), eviction,
//! relocation, installing written pages, and invalidation, each under the
//! state lock.

use std::sync::atomic::Ordering::Relaxed;

use blockdev::ReadAt;

use crate::Error;
use crate::cache::PageCache;
use crate::frames::FrameId;
use crate::state::State;

impl<D> PageCache<D> {
    /// A frame for `page`: its home frame if free; else a free frame or the
    /// frame of the page the policy evicts, and then, if the home frame
    /// holds a page that is not at home there, that page moves to the new
    /// frame so `page` can live at home. `None` only if the capacity holds
    /// no page at all.
    pub(crate) fn take_frame(&self, state: &mut State, page: u64) -> Option<FrameId> {
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
    pub(crate) fn evict(&self, state: &mut State) -> Option<FrameId> {
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
    pub(crate) fn relocate(&self, state: &mut State, page: u64, from: FrameId, to: FrameId) {
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
    pub(crate) fn place(
        &self,
        state: &mut State,
        frame: FrameId,
        page: u64,
        bytes: &[u8],
        epoch: u32,
    ) {
        self.frames.write(frame, page, bytes, epoch);
        state.nodes[frame as usize] = state.policy.insert(page);
        state.resident.insert(page, frame);
        if frame != self.home(page) {
            self.hints.insert(page, frame);
        }
    }

    /// Drops `page` if resident: invalidated, or cached short.
    pub(crate) fn drop_page(&self, state: &mut State, page: u64) {
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

    /// Makes `pages`, just written to the device from `first` on, the
    /// clean contents of their pages: resident copies are replaced, reads
    /// of them in flight are discarded (they may predate the write), and
    /// those from page `cache_from` on, at most the last `capacity`, are
    /// cached; earlier ones would only evict each other. Costs the fewer
    /// of `pages` and the resident or loading pages, not a lookup per page
    /// written.
    pub(crate) fn install_written(&self, first: u64, pages: &[&[u8]], cache_from: u64) {
        let count = pages.len() as u64;
        let written = first..first.saturating_add(count);
        let keep_from = (first + pages.len().saturating_sub(self.geometry.capacity) as u64)
            .max(cache_from)
            .min(written.end);
        let mut state = self.state.lock();
        let epoch = self.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        if (state.loading.len() as u64) < count {
            state.loading.retain(|page, _| !written.contains(page));
        } else {
            for page in written.clone() {
                state.loading.remove(&page);
            }
        }
        let resident: Vec<(u64, FrameId)> = if (state.resident.len() as u64) < count {
            let in_range = |(page, _): &(u64, FrameId)| written.contains(page);
            state
                .resident
                .iter()
                .map(|(&p, &f)| (p, f))
                .filter(in_range)
                .collect()
        } else {
            written
                .clone()
                .filter_map(|page| Some((page, *state.resident.get(&page)?)))
                .collect()
        };
        for (page, frame) in resident {
            if let Some(data) = pages.get((page - first) as usize) {
                self.frames.write(frame, page, data, epoch);
                state.slices[frame as usize] = None;
            }
        }
        for (page, data) in (keep_from..).zip(&pages[(keep_from - first) as usize..]) {
            if !state.resident.contains_key(&page)
                && let Some(frame) = self.take_frame(&mut state, page)
            {
                self.place(&mut state, frame, page, data, epoch);
            }
        }
    }

    /// Drops every cached page, every read in flight and the eviction
    /// history.
    pub(crate) fn drop_all(&self, state: &mut State) {
        let pages: Vec<u64> = state.resident.keys().copied().collect();
        for page in pages {
            self.drop_page(state, page);
        }
        state.policy.clear();
        state.loading.clear();
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
    /// Reads the device size again and keeps it; returns it. Pages reaching
    /// past a smaller size are dropped first, so reads that start after
    /// this returns are out of bounds past the new end.
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
        let mut state = self.state.lock();
        // Lock-free hits trust a whole page without a size check, so no
        // page reaching past the new size may stay (nor be installed by a
        // read in flight) once the smaller size is out.
        // Only a smaller size can leave such pages behind; `invalidate`
        // calls this too, and must not scan every resident page each time.
        if size < self.size.load(Relaxed) {
            let first_cut = size >> self.geometry.page_shift;
            let cut: Vec<u64> = state
                .resident
                .keys()
                .filter(|&&page| page >= first_cut)
                .copied()
                .collect();
            for page in cut {
                self.drop_page(&mut state, page);
            }
            state.loading.retain(|&page, _| page < first_cut);
        }
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
    /// device size again. After the device moved to a new version as a
    /// whole, call [`refresh`](Self::refresh) instead: it also refreshes
    /// the layers below, and no read running meanwhile mixes versions.
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
        self.drop_all(&mut self.state.lock());
        self.refresh_size().map(drop)
    }
}
