//! The lock-free hit: find the page's frame (its home, else a hint) and
//! copy the bytes out under the frame's sequence lock.

use std::sync::atomic::Ordering::Relaxed;

use crate::cache::PageCache;
use crate::frames::{Copied, FrameId};

impl<D> PageCache<D> {
    /// The frame `page` lives in whenever it can: its page number modulo
    /// the capacity. A hit on a page at home needs no table lookup at all.
    #[inline]
    pub(crate) fn home(&self, page: u64) -> FrameId {
        (page & self.home_mask) as FrameId
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
}
