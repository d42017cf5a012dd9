//! The lock-free hit: find the page's frame (its home, else a hint) and
//! copy the bytes out under the frame's sequence lock.

use std::sync::atomic::Ordering::Relaxed;

use crate::MAX_PAGE_SIZE;
use crate::cache::PageCache;
use crate::frames::{Copied, FrameId, RUN_PAGES};

impl<D> PageCache<D> {
    /// The frame `page` lives in whenever it can: its page number modulo
    /// the capacity. A hit on a page at home needs no table lookup at all.
    #[inline]
    pub(crate) fn home(&self, page: u64) -> FrameId {
        (page & self.home_mask) as FrameId
    }

    /// The lock-free hit of a read of `len` bytes (1 to 8) at `pos` that
    /// lies inside one page: the bytes as the low bytes of a little-endian
    /// word, if the page is resident and whole. No device-size check: a
    /// frame keyed by its page holds the whole page, and no frame is keyed
    /// by a page that reaches past the device size (installs check it
    /// under the state lock; `refresh_size` drops such pages before it
    /// returns a smaller size). `None` sends the read to the general path.
    #[inline(always)]
    pub(crate) fn hit_word(&self, pos: u64, len: usize) -> Option<u64> {
        // `word_hit_end` is the page size or 0: one load gives the mask
        // too (for 0, a mask below `MAX_PAGE_SIZE` keeps `off + len` small).
        let end = self.word_hit_end;
        let off = pos as usize & end.wrapping_sub(1) & (MAX_PAGE_SIZE - 1);
        if len == 0 || len > 8 || off + len > end {
            return None;
        }
        let page = pos >> self.geometry.page_shift;
        let epoch = self.epoch.load(Relaxed);
        let word = match self.frames.read_word(self.home(page), page, off, epoch) {
            Some(word) => word,
            None => self.hit_word_away(page, off, epoch)?,
        };
        self.hits.add_one();
        Some(word)
    }

    /// [`hit_word`](Self::hit_word) on a page away from home, found
    /// through the hint table; out of line so the home hit stays short.
    #[cold]
    #[inline(never)]
    fn hit_word_away(&self, page: u64, off: usize, epoch: u32) -> Option<u64> {
        let frame = self.hints.find(page);
        if frame == self.home(page) {
            return None;
        }
        self.frames.read_word(frame, page, off, epoch)
    }

    /// The lock-free hit: copies `dst.len()` bytes at in-page offset `off`
    /// of `page` (`off + dst.len()` within a page) from its home frame, or
    /// else from the frame a hint names.
    #[inline(always)]
    pub(crate) fn try_hit(&self, page: u64, off: usize, dst: &mut [u8]) -> bool {
        let epoch = self.epoch.load(Relaxed);
        let copied = match self.frames.read(self.home(page), page, off, dst, epoch) {
            Copied::Done => true,
            Copied::Retry => self.try_hit_away(page, off, dst, epoch),
        };
        if copied {
            self.hits.add_one();
        }
        copied
    }

    /// The hit on a page away from home, found through the hint table;
    /// out of line so the home hit stays short.
    #[cold]
    #[inline(never)]
    fn try_hit_away(&self, page: u64, off: usize, dst: &mut [u8], epoch: u32) -> bool {
        let frame = self.hints.find(page);
        frame != self.home(page)
            && matches!(self.frames.read(frame, page, off, dst, epoch), Copied::Done)
    }

    /// The lock-free hit of a range across pages: copies the bytes at
    /// in-page offset `off` of `page` and on, page by page, into `dst`
    /// from the pages' home frames (at most [`RUN_PAGES`] pages). Returns
    /// the bytes copied: all, or up to the first page not at home (the
    /// caller takes that one by the one-page paths).
    #[inline]
    pub(crate) fn try_hit_run(&self, page: u64, off: usize, dst: &mut [u8]) -> usize {
        let epoch = self.epoch.load(Relaxed);
        let pages = (off + dst.len()).div_ceil(self.page_size()).min(RUN_PAGES);
        let mut run = [(0, 0); RUN_PAGES];
        for (i, slot) in run[..pages].iter_mut().enumerate() {
            let page = page.wrapping_add(i as u64);
            *slot = (self.home(page), page);
        }
        let copied = self.frames.read_run(&run[..pages], off, dst, epoch);
        // Pages started: the first one, if it was copied at all, and each
        // page boundary crossed.
        let started = (off + copied).div_ceil(self.page_size()) as u64;
        self.hits.add(if copied == 0 { 0 } else { started });
        copied
    }

    /// Whether every page of the bytes `from..to` looks cached, read
    /// without the state lock (a hint for read-ahead, which may be stale
    /// by the time it is used); `false` past
    /// [`MAX_GAP_PAGES`](crate::readahead::MAX_GAP_PAGES) pages.
    pub(crate) fn looks_cached(&self, from: u64, to: u64) -> bool {
        if to <= from {
            return true;
        }
        let shift = self.geometry.page_shift;
        let (first, last) = (from >> shift, (to - 1) >> shift);
        if last - first >= crate::readahead::MAX_GAP_PAGES {
            return false;
        }
        (first..=last).all(|page| {
            let home = self.home(page);
            self.frames.page_of(home) == Some(page) || {
                let frame = self.hints.find(page);
                frame != home && self.frames.page_of(frame) == Some(page)
            }
        })
    }
}
