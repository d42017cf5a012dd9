//! Which frame holds which page: taking a frame (home first), eviction,
//! relocation, installing written pages, and invalidation, each under the
//! state lock.

use std::sync::atomic::Ordering::Relaxed;

use blockdev::ReadAt;

use crate::Error;
use crate::cache::PageCache;
use crate::frames::{FrameId, RUN_PAGES};
use crate::state::State;

impl<D> PageCache<D> {
    /// A frame for `page`, claimed for its rewrite (see `Frames::claim`):
    /// its home frame if free; else a free frame or the frame of the page
    /// the policy evicts, and then, with `make_home`, if the home frame
    /// holds a page that is not at home there, that page moves to the new
    /// frame so `page` can live at home (a copy of one page under the
    /// state lock: misses of runs, as scans make, do without). A frame a long read is copying is never waited for:
    /// the next candidate is taken instead (it waits in `state.busy`).
    /// `None` only if no frame can be had without waiting, or the capacity
    /// holds no page at all.
    pub(crate) fn take_frame(
        &self,
        state: &mut State,
        page: u64,
        make_home: bool,
    ) -> Option<FrameId> {
        let home = self.home(page);
        if state.is_free[home as usize] {
            if self.frames.claim(home) {
                state.is_free[home as usize] = false;
                return Some(home);
            }
            state.busy.push(home);
        }
        let frame = loop {
            match state.free.pop() {
                Some(frame) if state.is_free[frame as usize] => {
                    if self.frames.claim(frame) {
                        state.is_free[frame as usize] = false;
                        break frame;
                    }
                    state.busy.push(frame);
                }
                Some(_) => {}
                None => {
                    if let Some(frame) = self.claim_busy(state) {
                        break frame;
                    }
                    let frame = self.evict(state)?;
                    if self.frames.claim(frame) {
                        break frame;
                    }
                    // Evicted all the same: free, kept until its reader leaves.
                    self.frames.clear(frame);
                    state.is_free[frame as usize] = true;
                    state.busy.push(frame);
                }
            }
        };
        if make_home
            && frame != home
            && let Some(guest) = self.frames.page_of(home)
            && self.home(guest) != home
            && self.frames.claim(home)
        {
            self.relocate(state, guest, home, frame);
            return Some(home);
        }
        Some(frame)
    }

    /// Claims a free frame whose long read has left since, dropping the
    /// stale entries of `state.busy` on the way.
    fn claim_busy(&self, state: &mut State) -> Option<FrameId> {
        let State { busy, is_free, .. } = state;
        if busy.is_empty() {
            return None;
        }
        busy.retain(|&frame| is_free[frame as usize]);
        // A frame freed, taken and freed again may be listed twice.
        if busy.len() > is_free.len() {
            let mut listed = vec![false; is_free.len()];
            busy.retain(|&frame| !std::mem::replace(&mut listed[frame as usize], true));
        }
        let at = busy.iter().position(|&frame| self.frames.claim(frame))?;
        let frame = busy.swap_remove(at);
        is_free[frame as usize] = false;
        Some(frame)
    }

    /// Evicts the page the policy chooses; returns its frame (still
    /// holding the page's bytes, to be claimed by the caller).
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

    /// Moves resident `page` from frame `from` to frame `to`, both claimed
    /// (`from` stays claimed, for its next page). Readers of `page` still
    /// on `from` retry and find it through its new hint. One page copied
    /// under the state lock: the price of keeping pages at home.
    pub(crate) fn relocate(&self, state: &mut State, page: u64, from: FrameId, to: FrameId) {
        let len = self.frames.len(from);
        #[cfg(test)]
        self.frames.count_locked_copy(len, self.state.holds());
        self.frames.move_words(from, to, len);
        self.frames.publish(to, page, len, self.epoch.load(Relaxed));
        state.resident.insert(page, to);
        state.nodes[to as usize] = state.nodes[from as usize];
        state.slices[to as usize] = state.slices[from as usize].take();
        self.hints.remove(page, from);
        self.hints.insert(page, to);
    }

    /// Copies `bytes` into the words of `frame`, claimed by this thread
    /// (see `Frames::fill_words`: no lock needed). Tests count the bytes
    /// copied while the state lock is held, which every miss, invalidation
    /// and `stats()` would wait for.
    pub(crate) fn copy_into_frame(&self, frame: FrameId, bytes: &[u8]) {
        #[cfg(test)]
        if self.state.is_locked() {
            self.frames
                .count_locked_copy(bytes.len(), self.state.holds());
        }
        self.frames.fill_words(frame, bytes);
    }

    /// Makes `frame` (claimed by `take_frame`) hold `page`, and tells the
    /// policy (and the hints, for a page away from home).
    pub(crate) fn place(
        &self,
        state: &mut State,
        frame: FrameId,
        page: u64,
        bytes: &[u8],
        epoch: u32,
    ) {
        self.copy_into_frame(frame, bytes);
        self.publish_page(state, frame, page, bytes.len(), epoch);
    }

    /// Makes `frame` (claimed by `take_frame`, its `len` bytes copied in
    /// with [`copy_into_frame`](Self::copy_into_frame)) hold `page`, and
    /// tells the policy (and the hints, for a page away from home).
    pub(crate) fn publish_page(
        &self,
        state: &mut State,
        frame: FrameId,
        page: u64,
        len: usize,
        epoch: u32,
    ) {
        self.frames.publish(frame, page, len, epoch);
        state.nodes[frame as usize] = state.policy.insert(page);
        state.resident.insert(page, frame);
        if frame != self.home(page) {
            self.hints.insert(page, frame);
        }
    }

    /// Frees `frame`, claimed by `take_frame` but not published.
    pub(crate) fn give_back(&self, state: &mut State, frame: FrameId) {
        self.frames.abandon(frame);
        state.free.push(frame);
        state.is_free[frame as usize] = true;
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
    ///
    /// The pages are copied under the state lock, but at most
    /// [`RUN_PAGES`] per hold: a miss waits for one run's copy, not for a
    /// whole write-back's. Between holds a miss may read a page not yet
    /// installed; it reads the device, which already holds the new bytes.
    /// (The write-back cache's own readers see these pages in its dirty
    /// map until this returns.)
    pub(crate) fn install_written(&self, first: u64, pages: &[&[u8]], cache_from: u64) {
        let count = pages.len() as u64;
        let written = first..first.saturating_add(count);
        let keep_from = (first + pages.len().saturating_sub(self.geometry.capacity) as u64)
            .max(cache_from)
            .min(written.end);
        let epoch = self.epoch.fetch_add(1, Relaxed).wrapping_add(1);
        let resident: Vec<u64> = {
            let mut state = self.state.lock();
            if (state.loading.len() as u64) < count {
                state.loading.retain(|page, _| !written.contains(page));
            } else {
                for page in written.clone() {
                    state.loading.remove(&page);
                }
            }
            if (state.resident.len() as u64) < count {
                let mut pages: Vec<u64> = state
                    .resident
                    .keys()
                    .copied()
                    .filter(|page| written.contains(page))
                    .collect();
                pages.sort_unstable();
                pages
            } else {
                written
                    .clone()
                    .filter(|page| state.resident.contains_key(page))
                    .collect()
            }
        };
        // Resident copies first (they are stale), then the pages kept.
        for run in resident.chunks(RUN_PAGES) {
            let mut state = self.state.lock();
            for &page in run {
                let (Some(&frame), Some(data)) = (
                    state.resident.get(&page),
                    pages.get((page - first) as usize),
                ) else {
                    continue;
                };
                if self.frames.claim(frame) {
                    self.copy_into_frame(frame, data);
                    self.frames.publish(frame, page, data.len(), epoch);
                    state.slices[frame as usize] = None;
                } else {
                    // A long read is copying the old bytes: drop the page
                    // rather than wait (it is placed again below if kept).
                    self.drop_page(&mut state, page);
                }
            }
        }
        // By index: `(keep_from..)` would step past `u64::MAX` after the
        // device's last page (one-byte pages near 2^64).
        let kept = &pages[(keep_from - first) as usize..];
        for (run_index, run) in kept.chunks(RUN_PAGES).enumerate() {
            let mut state = self.state.lock();
            for (index, data) in run.iter().enumerate() {
                let page = keep_from + (run_index * RUN_PAGES + index) as u64;
                // A miss since the last hold may have read it (the new
                // bytes, from the device) or be reading it: leave it.
                if !state.resident.contains_key(&page)
                    && !state.loading.contains_key(&page)
                    && let Some(frame) = self.take_frame(&mut state, page, false)
                {
                    self.place(&mut state, frame, page, data, epoch);
                }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

    use bincodec::ByteSource;
    use blockdev::MemDevice;

    use crate::PageCache;
    use crate::frames::{BULK_MIN, FrameId, RUN_PAGES};

    const PAGE: usize = 2 * BULK_MIN;

    fn device_bytes(pages: usize) -> Vec<u8> {
        (0..pages * PAGE)
            .map(|i| (i / PAGE * 7 + i % 251) as u8)
            .collect()
    }

    /// The words of every frame, as the bytes a reader inside would copy.
    fn frame_bytes(cache: &PageCache<MemDevice>) -> Vec<Vec<u8>> {
        (0..cache.capacity() as FrameId)
            .map(|frame| {
                let mut bytes = vec![0; PAGE];
                cache.frames.read_locked(frame, 0, &mut bytes);
                bytes
            })
            .collect()
    }

    // On the code before `Frames::claim` both tests below never return:
    // the miss (or write-back) waited, under the state lock, for a reader
    // count that the same thread holds.

    #[test]
    fn a_miss_never_waits_for_a_reader_copying_the_frames_it_could_take() {
        let bytes = device_bytes(8);
        let cache = PageCache::builder()
            .page_size(PAGE)
            .capacity(4)
            .build(MemDevice::from_vec(bytes.clone()))
            .unwrap();
        let mut buf = vec![0; 4 * PAGE];
        cache.read_bytes_at(0, &mut buf).unwrap();
        let before = frame_bytes(&cache);
        // Four readers stopped mid-copy, one in every frame.
        let held: Vec<_> = (0..4)
            .map(|frame| cache.frames.hold_reader(frame))
            .collect();
        let mut page = vec![0; PAGE];
        for at in [4, 5, 0] {
            cache.read_bytes_at((at * PAGE) as u64, &mut page).unwrap();
            assert_eq!(page, bytes[at * PAGE..][..PAGE]);
        }
        assert!(cache.frames.busy_claims() > 0);
        assert_eq!(
            frame_bytes(&cache),
            before,
            "a frame changed under a reader"
        );
        drop(held);
        // The frames given up are taken again once their readers left.
        cache.read_bytes_at((6 * PAGE) as u64, &mut page).unwrap();
        assert_eq!(page, bytes[6 * PAGE..][..PAGE]);
        assert!(cache.is_cached((6 * PAGE) as u64));
    }

    #[test]
    fn a_write_back_never_waits_for_a_reader_copying_a_page_it_rewrites() {
        let bytes = device_bytes(4);
        let device = MemDevice::from_vec(bytes.clone());
        let cache = PageCache::builder()
            .page_size(PAGE)
            .capacity(4)
            .build_write_back(device.clone())
            .unwrap();
        let mut page = vec![0; PAGE];
        cache.read_bytes_at(0, &mut page).unwrap();
        let home = cache.cache().home(0);
        let held = cache.cache().frames.hold_reader(home);
        cache.write_bytes(10, b"new").unwrap();
        cache.commit().unwrap();
        // The reader inside still copies the old page.
        let mut inside = vec![0; PAGE];
        cache.cache().frames.read_locked(home, 0, &mut inside);
        assert_eq!(inside, bytes[..PAGE]);
        drop(held);
        cache.read_bytes_at(0, &mut page).unwrap();
        assert_eq!(page[10..13], *b"new");
        assert_eq!(device.to_vec()[10..13], *b"new");
    }

    /// A miss copies the pages it read into their frames with the state
    /// lock released (every other miss, invalidation and `stats()` waits
    /// for that lock, and its holder may be descheduled mid-copy): runs
    /// read straight into the caller's buffer, pages read through a
    /// buffer of the cache's, and `load`'s slices alike.
    #[test]
    fn a_miss_copies_its_pages_into_frames_without_the_state_lock() {
        let bytes = device_bytes(32);
        let cache = PageCache::builder()
            .page_size(PAGE)
            .capacity(16)
            .build(MemDevice::from_vec(bytes.clone()))
            .unwrap();
        let mut run = vec![0; 8 * PAGE];
        cache.read_bytes_at(0, &mut run).unwrap();
        assert_eq!(run, bytes[..8 * PAGE]);
        let mut byte = [0];
        cache
            .read_bytes_at((8 * PAGE + 5) as u64, &mut byte)
            .unwrap();
        assert_eq!(byte[0], bytes[8 * PAGE + 5]);
        let slice = cache.load((9 * PAGE) as u64, PAGE).unwrap().unwrap();
        assert_eq!(slice.bytes(), &bytes[9 * PAGE..10 * PAGE]);
        assert_eq!(cache.stats().resident_pages, 10);
        // A run that evicts pages, and longer than the cache.
        let mut run = vec![0; 24 * PAGE];
        cache.read_bytes_at((8 * PAGE) as u64, &mut run).unwrap();
        assert_eq!(run, bytes[8 * PAGE..]);
        assert_eq!(cache.stats().resident_pages, 16);
        assert!(cache.stats().evictions > 0);
        assert_eq!(cache.frames.locked_copies(), 0);
        // The pages were published: hits now, with the device's bytes.
        let reads = cache.stats().device_reads;
        let mut again = vec![0; 16 * PAGE];
        cache.read_bytes_at((16 * PAGE) as u64, &mut again).unwrap();
        assert_eq!(again, bytes[16 * PAGE..]);
        assert_eq!(cache.stats().device_reads, reads);
    }

    /// A write-back installs the pages it wrote (rewriting resident ones,
    /// caching the last `capacity`) one run at a time: a miss meanwhile
    /// waits for at most one run's copy under the state lock, not for the
    /// whole write-back's.
    #[test]
    fn a_write_back_copies_at_most_one_run_of_pages_per_hold_of_the_state_lock() {
        let device = MemDevice::from_vec(device_bytes(128));
        let cache = PageCache::builder()
            .page_size(PAGE)
            .capacity(64)
            .build_write_back(device.clone())
            .unwrap();
        let mut old = vec![0; 32 * PAGE];
        cache.read_bytes_at(0, &mut old).unwrap();
        let new: Vec<u8> = (0..96 * PAGE).map(|i| (i % 253) as u8).collect();
        cache.write_bytes(0, &new).unwrap();
        cache.commit().unwrap();
        let frames = &cache.cache().frames;
        assert!(frames.locked_copies() >= (64 * PAGE) as u64);
        assert_eq!(frames.most_copied_in_one_hold(), (RUN_PAGES * PAGE) as u64);
        assert_eq!(device.to_vec()[..96 * PAGE], new[..]);
        assert_eq!(cache.cache().stats().resident_pages, 64);
        let reads = cache.cache().stats().device_reads;
        let mut kept = vec![0; 64 * PAGE];
        cache.read_bytes_at((32 * PAGE) as u64, &mut kept).unwrap();
        assert_eq!(kept, new[32 * PAGE..]);
        assert_eq!(
            cache.cache().stats().device_reads,
            reads,
            "the last 64 pages are cached"
        );
    }

    /// The issue's workload: scanning threads copy resident pages (runs of
    /// 16 frames at a time) while another thread misses pages that evict
    /// them. Every byte read is the device's, and every miss completes.
    #[test]
    fn misses_evicting_the_frames_of_scanning_readers_return_the_device_bytes() {
        let pages = 96;
        let bytes = device_bytes(pages);
        let cache = PageCache::builder()
            .page_size(PAGE)
            .capacity(64)
            .build(MemDevice::from_vec(bytes.clone()))
            .unwrap();
        let missing = AtomicBool::new(true);
        let scans = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for reader in 0..4 {
                let (cache, bytes, missing, scans) = (&cache, &bytes, &missing, &scans);
                scope.spawn(move || {
                    let mut buf = vec![0; 16 * PAGE];
                    let mut round = reader;
                    while missing.load(Relaxed) {
                        let at = round % 48 * PAGE;
                        cache.read_bytes_at(at as u64, &mut buf).unwrap();
                        assert!(buf == bytes[at..at + buf.len()], "wrong bytes at {at}");
                        scans.fetch_add(1, Relaxed);
                        round += 1;
                    }
                });
            }
            let mut page = vec![0; PAGE];
            // Misses go on until the scanners have scanned a while too.
            let mut round = 0;
            while round < 2000 || scans.load(Relaxed) < 400 {
                round += 1;
                let at = (64 + round % 32) * PAGE;
                cache.read_bytes_at(at as u64, &mut page).unwrap();
                assert!(page == bytes[at..at + PAGE], "wrong bytes at {at}");
                if round % 100 == 0 {
                    assert!(cache.stats().resident_pages <= 64);
                }
            }
            missing.store(false, Relaxed);
        });
        assert!(scans.load(Relaxed) > 0);
        assert!(cache.stats().evictions > 0);
    }
}
