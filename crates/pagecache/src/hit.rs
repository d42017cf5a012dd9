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
        (page & (self.geometry.capacity as u64 - 1)) as FrameId
    }

    /// The lock-free hit: copies `dst.len()` bytes at in-page offset `off`
    /// of `page` from its home frame, or else from the frame a hint names.
    #[inline]
    pub(crate) fn try_hit(&self, page: u64, off: usize, dst: &mut [u8]) -> bool {
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
}
