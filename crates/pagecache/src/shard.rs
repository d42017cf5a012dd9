//! One shard of the page table: resident pages and in-flight reads, behind
//! a reader-writer lock, with its own hit and miss counters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::policy::NodeId;

/// Most credit a page can hold; bounds the work of one eviction pass.
const MAX_ACCESS_CREDIT: u8 = 3;

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
        // Folding both halves of the 128-bit product mixes every input bit
        // into the low bits the table indexes with.
        let product =
            u128::from(n ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hasher of every page-number map in the crate.
pub(crate) type PageHasher = BuildHasherDefault<PageHash>;

/// A resident page.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The page's bytes, clipped to the device size when it was read.
    pub(crate) data: Arc<[u8]>,
    /// The page's node in the eviction policy.
    pub(crate) node: NodeId,
    /// Re-use credit, taken by eviction passes.
    credit: AtomicU8,
    /// Miss epoch of the last access that earned credit.
    seen_epoch: AtomicU32,
}

impl Frame {
    pub(crate) fn new(data: Arc<[u8]>, node: NodeId, epoch: u32) -> Self {
        Frame {
            data,
            node,
            credit: AtomicU8::new(0),
            seen_epoch: AtomicU32::new(epoch),
        }
    }

    /// Records a hit. Accesses with no miss in between count once, so that
    /// reading many values from one page (a scan decoding every field) does
    /// not look like re-use; only the first access of each miss epoch earns
    /// credit. Racing updates may lose a count, which only nudges eviction.
    #[inline]
    pub(crate) fn touch(&self, epoch: u32) {
        if self.seen_epoch.load(Relaxed) != epoch {
            self.seen_epoch.store(epoch, Relaxed);
            let credit = self.credit.load(Relaxed);
            if credit < MAX_ACCESS_CREDIT {
                self.credit.store(credit + 1, Relaxed);
            }
        }
    }

    /// Takes one unit of credit, if any (see [`crate::policy::AccessCounts`]).
    pub(crate) fn take_credit(&self) -> bool {
        self.credit
            .fetch_update(Relaxed, Relaxed, |c| c.checked_sub(1))
            .is_ok()
    }
}

/// A device read in progress; threads wanting the same pages wait on it.
#[derive(Debug, Default)]
pub(crate) struct Loading {
    done: Mutex<bool>,
    finished: Condvar,
}

impl Loading {
    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.finished.wait(&mut done);
        }
    }

    pub(crate) fn finish(&self) {
        *self.done.lock() = true;
        self.finished.notify_all();
    }
}

/// What the page table holds for a page number.
#[derive(Debug)]
pub(crate) enum Slot {
    Ready(Frame),
    Loading(Arc<Loading>),
}

pub(crate) type PageMap = HashMap<u64, Slot, PageHasher>;

/// One shard, aligned to its own cache lines so that threads working on
/// different shards never write to the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) map: RwLock<PageMap>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl Shard {
    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn touch_earns_credit_once_per_epoch_up_to_the_cap() {
        let frame = Frame::new(Arc::from(&[0u8][..]), 0, 7);
        frame.touch(7);
        assert!(!frame.take_credit());
        for epoch in 8..20 {
            frame.touch(epoch);
            frame.touch(epoch);
        }
        let taken = (0..10).filter(|_| frame.take_credit()).count();
        assert_eq!(taken, usize::from(MAX_ACCESS_CREDIT));
    }

    #[test]
    fn page_hash_spreads_pages_of_one_shard_over_low_bits() {
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
