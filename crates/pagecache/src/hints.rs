//! The lock-free lookup of hits: a set-associative table from page
//! numbers to frames, read with plain loads.
//!
//! It only gives hints: a reader checks in the frame itself that it holds
//! the page, so a hint that is missing, stale or shared by two pages only
//! sends the read to the locked path. The state lock's map is the truth.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::frames::FrameId;

/// Hashes page numbers with one widening multiply; SipHash would cost more
/// than the rest of a hit.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PageHash(u64);

impl Hasher for PageHash {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = mix(n ^ self.0);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hasher of every page-number map in the crate.
pub(crate) type PageHasher = BuildHasherDefault<PageHash>;

/// Folding both halves of a 128-bit product mixes every input bit into
/// every output bit; `mix(0) == 0`.
#[inline]
fn mix(n: u64) -> u64 {
    let product = u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    (product as u64) ^ ((product >> 64) as u64)
}

/// An entry is `VALID | tag << FRAME_BITS | frame`, 0 when empty; frames
/// fit in `FRAME_BITS` since the capacity is at most `MAX_CAPACITY`.
const FRAME_BITS: u32 = 20;
const FRAME_MASK: u32 = (1 << FRAME_BITS) - 1;
const TAG_MASK: u32 = (1 << 11) - 1;
const VALID: u32 = 1 << 31;

/// A bucket is two entries in one atomic word, read with a single load.
///
/// Page `p` goes to bucket `p` while `p` is below the bucket count, so on
/// a device of up to two pages per page of capacity every page has its
/// own bucket and neighbouring pages share cache lines of the table: the
/// part of the table a workload touches is as small as an array of one
/// word per device page. Higher pages are spread by hashing their high
/// bits; their tag is those high bits, checked first here and for good
/// in the frame head.
#[derive(Debug)]
pub(crate) struct Hints {
    buckets: Box<[AtomicU64]>,
    mask: u64,
    shift: u32,
}

impl Hints {
    /// Two buckets (four entries, 16 bytes) per page of capacity.
    pub(crate) fn new(capacity: usize) -> Self {
        let buckets = (2 * capacity).next_power_of_two();
        Hints {
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            mask: buckets as u64 - 1,
            shift: buckets.trailing_zeros(),
        }
    }

    /// The bucket of `page` and its entry's tag.
    #[inline]
    fn slot(&self, page: u64) -> (Option<&AtomicU64>, u32) {
        let high = page >> self.shift;
        // One multiply spreads the high bits; `high == 0` keeps `page`.
        let spread = high.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(32);
        let index = (page ^ spread) & self.mask;
        let tag = VALID | ((high as u32) & TAG_MASK) << FRAME_BITS;
        (self.buckets.get(index as usize), tag)
    }

    /// The frame that probably holds `page` (any frame when none is
    /// hinted: the caller checks the frame's head anyway). Branch-free and
    /// short, so the CPU overlaps consecutive hits.
    #[inline]
    pub(crate) fn find(&self, page: u64) -> FrameId {
        let (bucket, tag) = self.slot(page);
        let pair = bucket.map_or(0, |b| b.load(Relaxed));
        let first_differs = (pair as u32 ^ tag) & !FRAME_MASK;
        let chosen = if first_differs == 0 {
            pair as u32
        } else {
            (pair >> 32) as u32
        };
        chosen & FRAME_MASK
    }

    fn entry(tag: u32, frame: FrameId) -> u32 {
        tag | (frame & FRAME_MASK)
    }

    /// Records that `frame` holds `page`, replacing another hint if the
    /// bucket is full (state lock held).
    pub(crate) fn insert(&self, page: u64, frame: FrameId) {
        let (Some(bucket), tag) = self.slot(page) else {
            return;
        };
        let entry = u64::from(Self::entry(tag, frame));
        let pair = bucket.load(Relaxed);
        let pair = if pair as u32 == 0 || (pair >> 32 != 0 && page.is_multiple_of(2)) {
            pair & !0xffff_ffff | entry
        } else {
            pair & 0xffff_ffff | entry << 32
        };
        bucket.store(pair, Relaxed);
    }

    /// Forgets that `frame` holds `page` (state lock held).
    pub(crate) fn remove(&self, page: u64, frame: FrameId) {
        let (Some(bucket), tag) = self.slot(page) else {
            return;
        };
        let entry = Self::entry(tag, frame);
        let mut pair = bucket.load(Relaxed);
        if pair as u32 == entry {
            pair &= !0xffff_ffff;
        }
        if (pair >> 32) as u32 == entry {
            pair &= 0xffff_ffff;
        }
        bucket.store(pair, Relaxed);
    }

    /// Whether a hint for `page` points at `frame` (state lock held).
    pub(crate) fn contains(&self, page: u64, frame: FrameId) -> bool {
        let (bucket, tag) = self.slot(page);
        let entry = Self::entry(tag, frame);
        bucket.is_some_and(|b| {
            let pair = b.load(Relaxed);
            pair as u32 == entry || (pair >> 32) as u32 == entry
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn hints_are_found_until_removed() {
        let hints = Hints::new(64);
        for page in 0..64u64 {
            hints.insert(page * 1000, page as FrameId);
        }
        let found = (0..64u64)
            .filter(|&p| hints.find(p * 1000) == p as FrameId)
            .count();
        assert!(found >= 60, "only {found} of 64 hints survived");
        hints.remove(1000, 1);
        assert!(!hints.contains(1000, 1));
        // Pages below the bucket count get their own bucket: no conflicts.
        let hints = Hints::new(64);
        for page in 0..128u64 {
            hints.insert(page, (127 - page) as FrameId);
        }
        assert!((0..128u64).all(|p| hints.find(p) == (127 - p) as FrameId));
    }

    #[test]
    fn a_full_bucket_replaces_an_entry() {
        let hints = Hints::new(1);
        for page in 0..20u64 {
            hints.insert(page, page as FrameId);
            assert!(hints.contains(page, page as FrameId));
        }
    }

    #[test]
    fn page_hash_spreads_pages_of_one_residue_over_low_bits() {
        let hasher = PageHasher::default();
        let buckets: std::collections::HashSet<u64> = (0..256u64)
            .map(|i| hasher.hash_one(i * 64 + 5) & 255)
            .collect();
        assert!(
            buckets.len() > 128,
            "only {} distinct buckets",
            buckets.len()
        );
    }
}
