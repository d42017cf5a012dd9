//! Page frames: the bytes of resident pages in an arena of `AtomicU64`
//! words, each frame guarded by a sequence lock, so hits read without
//! taking a lock or doing any atomic read-modify-write.
//!
//! Why atomics and a sequence lock: a lock (even a reader lock) costs an
//! atomic read-modify-write per hit, which on x86 is a full barrier: the
//! CPU can no longer overlap the cache misses of consecutive reads, and a
//! random hit costs several times a plain array read. Relaxed atomic loads
//! compile to plain loads, the sequence lock detects a frame rewritten
//! during the copy, and everything stays safe Rust.
//!
//! Writers (installing, evicting, invalidating) run one at a time, under
//! the cache's state lock.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::*, fence};

/// Index of a frame (`< capacity`).
pub(crate) type FrameId = u32;

/// `page` of a frame that holds no page.
const NO_PAGE: u64 = u64::MAX;

/// Most re-use credit a page can hold; bounds the work of one eviction pass.
const MAX_CREDIT: u8 = 3;

/// What a reader checks before trusting a frame's words.
#[derive(Debug)]
#[repr(C, align(32))]
struct FrameHead {
    /// Sequence lock: odd while the frame is being rewritten.
    version: AtomicU64,
    /// The page held, or `NO_PAGE`.
    page: AtomicU64,
    /// Valid bytes of the page (short for the device's last page).
    len: AtomicU32,
    /// Miss epoch of the last access that earned credit.
    seen_epoch: AtomicU32,
    /// Re-use credit, taken by eviction passes.
    credit: AtomicU8,
}

impl FrameHead {
    fn new() -> Self {
        FrameHead {
            version: AtomicU64::new(0),
            page: AtomicU64::new(NO_PAGE),
            len: AtomicU32::new(0),
            seen_epoch: AtomicU32::new(0),
            credit: AtomicU8::new(0),
        }
    }
}

/// The arena of frames, allocated up front: a head (32 bytes) and the
/// page's words for every page of capacity. Hits pay no indirection or
/// lazy-allocation check, which keeps the hit path short enough for the
/// CPU to overlap the memory accesses of consecutive reads.
#[derive(Debug)]
pub(crate) struct Frames {
    heads: Box<[FrameHead]>,
    words: Box<[AtomicU64]>,
    /// Words per frame: the page rounded up to words, plus one spare word
    /// so that a small read can always load two adjacent words.
    stride: usize,
}

/// The bytes of a page, copied out of a frame.
pub(crate) enum Copied {
    Done,
    /// The frame does not hold the page with enough bytes, or was rewritten
    /// during the copy: take the locked path.
    Retry,
}

impl Frames {
    /// Frames for `capacity` pages of `page_size` bytes; `None` if they do
    /// not fit in memory.
    pub(crate) fn new(capacity: usize, page_size: usize) -> Option<Self> {
        let stride = page_size.div_ceil(8) + 1;
        let total = capacity.checked_mul(stride)?;
        let mut words = Vec::new();
        words.try_reserve_exact(total).ok()?;
        words.extend((0..total).map(|_| AtomicU64::new(0)));
        let mut heads = Vec::new();
        heads.try_reserve_exact(capacity).ok()?;
        heads.extend((0..capacity).map(|_| FrameHead::new()));
        Some(Frames {
            heads: heads.into_boxed_slice(),
            words: words.into_boxed_slice(),
            stride,
        })
    }

    /// Copies `dst.len()` bytes at in-page offset `off` of `page` out of
    /// `frame`, if the frame holds that page with enough bytes; on success
    /// records the access for the eviction policy. Lock-free.
    #[inline]
    pub(crate) fn read(
        &self,
        frame: FrameId,
        page: u64,
        off: usize,
        dst: &mut [u8],
        epoch: u32,
    ) -> Copied {
        let Some(head) = self.heads.get(frame as usize) else {
            return Copied::Retry;
        };
        let before = head.version.load(Acquire);
        if before & 1 != 0
            || head.page.load(Relaxed) != page
            || (head.len.load(Relaxed) as usize) < off + dst.len()
        {
            return Copied::Retry;
        }
        if !self.copy_out(frame, off, dst) {
            return Copied::Retry;
        }
        fence(Acquire);
        if head.version.load(Relaxed) != before {
            return Copied::Retry;
        }
        touch(head, epoch);
        Copied::Done
    }

    /// Copies page bytes `off..off + dst.len()` of `frame` out of its
    /// little-endian words; `false` if out of the arena.
    #[inline]
    fn copy_out(&self, frame: FrameId, off: usize, dst: &mut [u8]) -> bool {
        let base = frame as usize * self.stride;
        let first = base + off / 8;
        if dst.len() <= 8 {
            // Two adjacent words (the spare word makes the second always
            // exist), combined in registers: no byte copies through memory.
            let Some([lo, hi]) = self.words.get(first..first + 2) else {
                return false;
            };
            let both = u128::from(hi.load(Relaxed)) << 64 | u128::from(lo.load(Relaxed));
            let value = (both >> ((off % 8) * 8)) as u64;
            dst.copy_from_slice(&value.to_le_bytes()[..dst.len()]);
            return true;
        }
        let Some(words) = self.words.get(first..base + self.stride) else {
            return false;
        };
        let mut done = 0;
        for word in words {
            if done == dst.len() {
                break;
            }
            let bytes = word.load(Relaxed).to_le_bytes();
            let skip = if done == 0 { off % 8 } else { 0 };
            let n = (8 - skip).min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&bytes[skip..skip + n]);
            done += n;
        }
        true
    }

    /// Copies bytes out of `frame` (writers excluded by the state lock).
    pub(crate) fn read_locked(&self, frame: FrameId, off: usize, dst: &mut [u8]) {
        self.copy_out(frame, off, dst);
    }

    /// The page `frame` holds, if any (state lock held).
    pub(crate) fn page_of(&self, frame: FrameId) -> Option<u64> {
        let page = self.head(frame)?.page.load(Relaxed);
        (page != NO_PAGE).then_some(page)
    }

    /// Length of the page `frame` holds (state lock held).
    pub(crate) fn len(&self, frame: FrameId) -> usize {
        self.head(frame).map_or(0, |h| h.len.load(Relaxed) as usize)
    }

    #[inline]
    fn head(&self, frame: FrameId) -> Option<&FrameHead> {
        self.heads.get(frame as usize)
    }

    /// Records a locked-path hit (see [`touch`]).
    pub(crate) fn touch_locked(&self, frame: FrameId, epoch: u32) {
        if let Some(head) = self.head(frame) {
            touch(head, epoch);
        }
    }

    /// Takes one unit of re-use credit from `frame`, if it has any.
    pub(crate) fn take_credit(&self, frame: FrameId) -> bool {
        let Some(head) = self.head(frame) else {
            return false;
        };
        let credit = head.credit.load(Relaxed);
        if credit == 0 {
            return false;
        }
        head.credit.store(credit - 1, Relaxed);
        true
    }

    /// Makes `frame` hold `page` with `bytes` (at most a page), with no
    /// credit yet (state lock held). Readers see the old or the new page,
    /// never a mix.
    pub(crate) fn write(&self, frame: FrameId, page: u64, bytes: &[u8], epoch: u32) {
        let base = frame as usize * self.stride;
        let (Some(head), Some(words)) = (
            self.heads.get(frame as usize),
            self.words.get(base..base + self.stride),
        ) else {
            return;
        };
        let version = head.version.load(Relaxed);
        head.version.store(version.wrapping_add(1), Relaxed);
        fence(Release);
        head.page.store(page, Relaxed);
        head.len
            .store(u32::try_from(bytes.len()).unwrap_or(u32::MAX), Relaxed);
        head.seen_epoch.store(epoch, Relaxed);
        head.credit.store(0, Relaxed);
        for (word, chunk) in words.iter().zip(bytes.chunks(8)) {
            let mut le = [0u8; 8];
            le[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(le), Relaxed);
        }
        head.version.store(version.wrapping_add(2), Release);
    }

    /// Makes `frame` hold no page (state lock held).
    pub(crate) fn clear(&self, frame: FrameId) {
        if let Some(head) = self.head(frame) {
            let version = head.version.load(Relaxed);
            head.version.store(version.wrapping_add(1), Relaxed);
            fence(Release);
            head.page.store(NO_PAGE, Relaxed);
            head.len.store(0, Relaxed);
            head.version.store(version.wrapping_add(2), Release);
        }
    }
}

/// Records an access: accesses with no miss in between count once, so
/// that reading many values from one page (a scan decoding every field)
/// does not look like re-use; only the first access of each miss epoch
/// earns credit. Plain stores: racing updates may lose a count, which
/// only nudges eviction.
#[inline]
fn touch(head: &FrameHead, epoch: u32) {
    if head.seen_epoch.load(Relaxed) != epoch {
        head.seen_epoch.store(epoch, Relaxed);
        let credit = head.credit.load(Relaxed);
        head.credit.store((credit + 1).min(MAX_CREDIT), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 + 1) as u8).collect()
    }

    #[test]
    fn reads_return_the_written_bytes_at_every_offset_and_length() {
        for page_size in [1, 2, 8, 16, 64] {
            let frames = Frames::new(4, page_size).unwrap();
            let page = bytes(page_size);
            frames.write(3, 77, &page, 0);
            for off in 0..page_size {
                for len in 0..=page_size - off {
                    let mut dst = vec![0; len];
                    assert!(matches!(frames.read(3, 77, off, &mut dst, 0), Copied::Done));
                    assert_eq!(dst, page[off..off + len], "{page_size} {off} {len}");
                    let mut locked = vec![0; len];
                    frames.read_locked(3, off, &mut locked);
                    assert_eq!(locked, dst);
                }
            }
        }
    }

    #[test]
    fn reads_of_another_page_or_past_the_length_retry() {
        let frames = Frames::new(2, 16).unwrap();
        frames.write(1, 5, &bytes(10), 0);
        let mut dst = [0; 4];
        assert!(matches!(frames.read(1, 6, 0, &mut dst, 0), Copied::Retry));
        assert!(matches!(frames.read(1, 5, 7, &mut dst, 0), Copied::Retry));
        assert!(matches!(frames.read(0, 5, 0, &mut dst, 0), Copied::Retry));
        assert!(matches!(frames.read(9, 5, 0, &mut dst, 0), Copied::Retry));
        assert!(Frames::new(usize::MAX / 2, 64).is_none());
        frames.clear(1);
        assert!(matches!(frames.read(1, 5, 0, &mut dst, 0), Copied::Retry));
    }

    #[test]
    fn credit_is_earned_once_per_epoch_up_to_the_cap() {
        let frames = Frames::new(1, 8).unwrap();
        frames.write(0, 1, &[0; 8], 7);
        let mut dst = [0; 1];
        frames.read(0, 1, 0, &mut dst, 7);
        assert!(!frames.take_credit(0));
        for epoch in 8..20 {
            frames.read(0, 1, 0, &mut dst, epoch);
            frames.read(0, 1, 0, &mut dst, epoch);
        }
        let taken = (0..10).filter(|_| frames.take_credit(0)).count();
        assert_eq!(taken, usize::from(MAX_CREDIT));
    }

    #[test]
    fn concurrent_rewrites_never_show_a_mix_of_two_pages() {
        use std::sync::atomic::AtomicBool;
        let frames = Frames::new(1, 64).unwrap();
        let a = vec![0xaa; 64];
        let b = vec![0xbb; 64];
        frames.write(0, 1, &a, 0);
        let writing = AtomicBool::new(true);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..20_000 {
                    frames.write(0, 1, if i % 2 == 0 { &b } else { &a }, 0);
                }
                writing.store(false, Relaxed);
            });
            let mut dst = [0u8; 40];
            let (mut seen, mut retried) = (0u64, 0u64);
            while writing.load(Relaxed) || seen == 0 {
                match frames.read(0, 1, 12, &mut dst, 0) {
                    Copied::Done => {
                        assert!(dst == [0xaa; 40] || dst == [0xbb; 40], "torn read {dst:?}");
                        seen += 1;
                    }
                    Copied::Retry => retried += 1,
                }
            }
            assert!(seen > 0, "{retried} retries");
        });
    }
}
