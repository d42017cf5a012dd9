//! Free space of the cache file: holes indexed by offset and by size.

use std::collections::{BTreeMap, BTreeSet};

/// The free regions ("holes") of a file that is filled from offset 0 up to an
/// end of data, with best-fit allocation in `O(log n)`.
///
/// - Holes are indexed by offset (to coalesce a freed region with both
///   neighbours) and by `(length, offset)` (to find the smallest hole that
///   fits, the lowest offset among equals).
/// - Offset 0 is an ordinary offset: a hole may start there.
/// - A freed region that ends at the end of data (after coalescing) is not a
///   hole: the end of data moves back to its start instead.
/// - Holes of at most `small_hole_threshold` bytes are not tracked; their
///   bytes stay unusable until the file is rewritten (defragmented).
///
/// ```
/// use spillcache::HoleIndex;
///
/// let mut holes = HoleIndex::new(0);
/// let a = holes.allocate(10);
/// let b = holes.allocate(20);
/// let _c = holes.allocate(5);
/// assert_eq!((a, b, holes.end()), (0, 10, 35));
/// holes.free(a, 10);
/// holes.free(b, 20);
/// assert_eq!(holes.holes().collect::<Vec<_>>(), [(0, 30)]);
/// assert_eq!(holes.allocate(30), 0); // exact fit
/// ```
#[derive(Clone, Debug, Default)]
pub struct HoleIndex {
    by_offset: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
    end: u64,
    small_hole_threshold: u64,
}

impl HoleIndex {
    /// An empty index (end of data 0) that drops holes of at most
    /// `small_hole_threshold` bytes.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let holes = HoleIndex::new(64);
    /// assert_eq!(holes.end(), 0);
    /// assert_eq!(holes.small_hole_threshold(), 64);
    /// ```
    pub fn new(small_hole_threshold: u64) -> Self {
        Self {
            small_hole_threshold,
            ..Self::default()
        }
    }

    /// The size at or below which holes are not tracked.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// assert_eq!(HoleIndex::new(8).small_hole_threshold(), 8);
    /// ```
    pub fn small_hole_threshold(&self) -> u64 {
        self.small_hole_threshold
    }

    /// The end of data: one past the last allocated byte (holes at the end
    /// are never kept, so this is where the file may be cut).
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::new(0);
    /// let a = holes.allocate(4);
    /// assert_eq!(holes.end(), 4);
    /// holes.free(a, 4);
    /// assert_eq!(holes.end(), 0);
    /// ```
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Reserves `len` bytes and returns their offset: the smallest tracked
    /// hole that fits (lowest offset among equal sizes), else the end of data.
    ///
    /// What is left of the hole stays a hole (if it is above the threshold).
    /// `len == 0` reserves nothing and returns the end of data.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::new(0);
    /// let offsets: Vec<u64> = [8, 4, 8, 1].iter().map(|&n| holes.allocate(n)).collect();
    /// assert_eq!(offsets, [0, 8, 12, 20]);
    /// holes.free(0, 8);
    /// holes.free(12, 8);
    /// assert_eq!(holes.allocate(3), 0); // best fit among two 8-byte holes: lowest offset
    /// assert_eq!(holes.holes().collect::<Vec<_>>(), [(3, 5), (12, 8)]);
    /// ```
    pub fn allocate(&mut self, len: u64) -> u64 {
        if len == 0 {
            return self.end;
        }
        let Some(&(hole_len, offset)) = self.by_size.range((len, 0)..).next() else {
            let offset = self.end;
            self.end += len;
            return offset;
        };
        self.remove_hole(offset, hole_len);
        let rest = hole_len - len;
        if rest > self.small_hole_threshold {
            self.insert_hole(offset + len, rest);
        }
        offset
    }

    /// Returns `len` bytes at `offset` to the free space, coalescing with the
    /// holes just before and just after; a region that reaches the end of
    /// data moves the end back instead of becoming a hole.
    ///
    /// The caller frees only what it allocated (and each region once); the
    /// index cannot tell a double free from a neighbour.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::new(0);
    /// for len in 1..=5 {
    ///     holes.allocate(len); // at 0, 1, 3, 6, 10; end 15
    /// }
    /// holes.free(1, 2);
    /// holes.free(6, 4);
    /// assert_eq!(holes.holes().collect::<Vec<_>>(), [(1, 2), (6, 4)]);
    /// holes.free(3, 3);
    /// assert_eq!(holes.holes().collect::<Vec<_>>(), [(1, 9)]);
    /// holes.free(10, 5); // reaches the end: the end moves back to 1
    /// assert_eq!((holes.holes().count(), holes.end()), (0, 1));
    /// ```
    pub fn free(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (mut start, mut stop) = (offset, offset + len);
        if let Some((&prev_offset, &prev_len)) = self.by_offset.range(..start).next_back()
            && prev_offset + prev_len == start
        {
            self.remove_hole(prev_offset, prev_len);
            start = prev_offset;
        }
        if let Some(&next_len) = self.by_offset.get(&stop) {
            self.remove_hole(stop, next_len);
            stop += next_len;
        }
        if stop >= self.end {
            self.end = start;
            // The region may now touch a hole that ended where it began.
            if let Some((&prev_offset, &prev_len)) = self.by_offset.range(..start).next_back()
                && prev_offset + prev_len == start
            {
                self.remove_hole(prev_offset, prev_len);
                self.end = prev_offset;
            }
        } else if stop - start > self.small_hole_threshold {
            self.insert_hole(start, stop - start);
        }
    }

    /// Forgets every hole and sets the end of data to 0 (the file was emptied).
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::new(0);
    /// holes.allocate(10);
    /// holes.reset();
    /// assert_eq!(holes.end(), 0);
    /// ```
    pub fn reset(&mut self) {
        self.by_offset.clear();
        self.by_size.clear();
        self.end = 0;
    }

    /// An index for a file whose data ends at `end`, with no holes (a freshly
    /// packed file).
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::packed(100, 0);
    /// assert_eq!(holes.allocate(1), 100);
    /// ```
    pub fn packed(end: u64, small_hole_threshold: u64) -> Self {
        Self {
            end,
            ..Self::new(small_hole_threshold)
        }
    }

    /// The tracked holes as `(offset, length)`, in offset order.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// let mut holes = HoleIndex::new(0);
    /// holes.allocate(3);
    /// holes.allocate(3);
    /// holes.free(0, 3);
    /// assert_eq!(holes.holes().collect::<Vec<_>>(), [(0, 3)]);
    /// ```
    pub fn holes(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_offset.iter().map(|(&offset, &len)| (offset, len))
    }

    /// How many holes are tracked.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// assert_eq!(HoleIndex::new(0).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.by_offset.len()
    }

    /// Whether no hole is tracked.
    ///
    /// ```
    /// use spillcache::HoleIndex;
    ///
    /// assert!(HoleIndex::new(0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.by_offset.is_empty()
    }

    /// The tracked hole that contains `offset`, as `(offset, length)`.
    pub(crate) fn containing(&self, offset: u64) -> Option<(u64, u64)> {
        let (&start, &len) = self.by_offset.range(..=offset).next_back()?;
        (offset < start + len).then_some((start, len))
    }

    /// Whether some tracked hole can hold `len` bytes.
    pub(crate) fn fits(&self, len: u64) -> bool {
        self.by_size
            .last()
            .is_some_and(|&(hole_len, _)| hole_len >= len)
    }

    /// The lowest hole that holds `len` bytes and starts below `limit`.
    /// Walks the holes in offset order: for compaction, not the write path.
    pub(crate) fn lowest_fit_below(&self, len: u64, limit: u64) -> Option<u64> {
        self.by_offset
            .range(..limit)
            .find(|&(_, &hole_len)| hole_len >= len)
            .map(|(&offset, _)| offset)
    }

    /// Reserves the first `len` bytes of the hole at `offset` (which must
    /// exist and hold them); returns whether it did.
    pub(crate) fn allocate_in_hole(&mut self, offset: u64, len: u64) -> bool {
        let Some(&hole_len) = self.by_offset.get(&offset) else {
            return false;
        };
        if hole_len < len || len == 0 {
            return false;
        }
        self.remove_hole(offset, hole_len);
        let rest = hole_len - len;
        if rest > self.small_hole_threshold {
            self.insert_hole(offset + len, rest);
        }
        true
    }

    fn insert_hole(&mut self, offset: u64, len: u64) {
        self.by_offset.insert(offset, len);
        self.by_size.insert((len, offset));
    }

    fn remove_hole(&mut self, offset: u64, len: u64) {
        self.by_offset.remove(&offset);
        self.by_size.remove(&(len, offset));
    }

    /// Checks the index against itself: both maps agree, holes are disjoint,
    /// not adjacent, above the threshold and inside the data.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.by_offset.len() != self.by_size.len() {
            return Err(format!(
                "{} holes by offset, {} by size",
                self.by_offset.len(),
                self.by_size.len()
            ));
        }
        let mut previous_stop = None;
        for (&offset, &len) in &self.by_offset {
            if !self.by_size.contains(&(len, offset)) {
                return Err(format!(
                    "hole ({offset}, {len}) missing from the size index"
                ));
            }
            if len <= self.small_hole_threshold {
                return Err(format!(
                    "hole ({offset}, {len}) is at or below the threshold"
                ));
            }
            if let Some(stop) = previous_stop
                && offset <= stop
            {
                return Err(format!(
                    "hole at {offset} overlaps or touches one ending at {stop}"
                ));
            }
            if offset + len >= self.end {
                return Err(format!(
                    "hole ({offset}, {len}) reaches the end {}",
                    self.end
                ));
            }
            previous_stop = Some(offset + len);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn holes_of(index: &HoleIndex) -> Vec<(u64, u64)> {
        index.holes().collect()
    }

    #[test]
    fn compaction_helpers_find_and_take_the_lowest_fitting_hole() {
        let mut index = HoleIndex::new(0);
        for len in [10, 5, 20, 5, 30, 5] {
            index.allocate(len); // at 0, 10, 15, 35, 40, 70; end 75
        }
        index.free(0, 10);
        index.free(15, 20);
        index.free(40, 30);
        assert_eq!(index.containing(20), Some((15, 20)));
        assert_eq!(index.containing(35), None);
        assert!(index.fits(30) && !index.fits(31));
        assert_eq!(index.lowest_fit_below(12, 70), Some(15));
        assert_eq!(
            index.lowest_fit_below(25, 40),
            None,
            "the 30-byte hole starts at 40"
        );
        assert!(index.allocate_in_hole(15, 12));
        assert_eq!(holes_of(&index), [(0, 10), (27, 8), (40, 30)]);
        assert!(!index.allocate_in_hole(27, 9), "too small");
        assert!(!index.allocate_in_hole(28, 1), "no hole starts there");
        index.check().unwrap();
    }

    #[test]
    fn sequential_allocations_are_packed_from_zero() {
        let mut index = HoleIndex::new(0);
        let offsets: Vec<u64> = (1..=5).map(|len| index.allocate(len)).collect();
        assert_eq!(offsets, [0, 1, 3, 6, 10]);
        assert_eq!(index.end(), 15);
        assert!(index.is_empty());
    }

    #[test]
    fn a_hole_at_offset_zero_is_reused() {
        let mut index = HoleIndex::new(0);
        index.allocate(10);
        index.allocate(10);
        index.free(0, 10);
        assert_eq!(holes_of(&index), [(0, 10)]);
        assert_eq!(index.allocate(10), 0);
        assert!(index.is_empty());
    }

    #[test]
    fn best_fit_takes_the_smallest_hole_that_fits() {
        let mut index = HoleIndex::new(0);
        for len in [8, 1, 2, 1, 4, 1] {
            index.allocate(len);
        }
        // 8@0, 2@9, 4@12
        index.free(0, 8);
        index.free(9, 2);
        index.free(12, 4);
        assert_eq!(index.allocate(3), 12);
        assert_eq!(holes_of(&index), [(0, 8), (9, 2), (15, 1)]);
        assert_eq!(index.allocate(2), 9);
        assert_eq!(index.allocate(9), 17, "nothing fits: appended");
    }

    #[test]
    fn freeing_between_two_holes_merges_all_three() {
        let mut index = HoleIndex::new(0);
        for len in 1..=5 {
            index.allocate(len);
        }
        index.free(1, 2);
        index.free(6, 4);
        index.free(3, 3);
        assert_eq!(holes_of(&index), [(1, 9)]);
        index.free(0, 1);
        assert_eq!(holes_of(&index), [(0, 10)]);
        assert_eq!(index.end(), 15);
    }

    #[test]
    fn freeing_the_last_region_shrinks_the_end_through_a_hole() {
        let mut index = HoleIndex::new(0);
        for len in [5, 5, 5] {
            index.allocate(len);
        }
        index.free(5, 5);
        index.free(10, 5);
        assert_eq!(index.end(), 5);
        assert!(index.is_empty());
    }

    #[test]
    fn small_holes_are_not_tracked_but_end_still_shrinks() {
        let mut index = HoleIndex::new(512);
        index.allocate(1024);
        index.allocate(1024);
        index.free(0, 1024);
        assert_eq!(holes_of(&index), [(0, 1024)]);
        assert_eq!(index.allocate(800), 0);
        assert!(index.is_empty(), "a 224-byte rest is below the threshold");
        assert_eq!(index.allocate(100), 2048);
        index.free(2048, 100);
        assert_eq!(index.end(), 2048);
        index.free(0, 800);
        assert_eq!(
            holes_of(&index),
            [(0, 800)],
            "not joined with the untracked 224 bytes"
        );
    }

    #[test]
    fn a_small_region_next_to_a_tracked_hole_joins_it() {
        let mut index = HoleIndex::new(4);
        for len in [5, 3, 10] {
            index.allocate(len);
        }
        index.free(0, 5);
        index.free(5, 3);
        assert_eq!(holes_of(&index), [(0, 8)]);
    }

    #[test]
    fn untracked_bytes_stay_lost_below_the_end() {
        let mut index = HoleIndex::new(4);
        for len in [3, 3, 10] {
            index.allocate(len);
        }
        index.free(0, 3);
        index.free(6, 10);
        index.free(3, 3);
        assert_eq!(
            index.end(),
            3,
            "the end moves back over 3@3 but not the dropped 3@0"
        );
        assert!(index.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Step {
        Allocate(u64),
        Free(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u64..40).prop_map(Step::Allocate),
            any::<usize>().prop_map(Step::Free),
        ]
    }

    proptest! {
        /// Against a byte map: allocations never overlap live regions, tracked
        /// holes are exactly free bytes, best fit is the smallest fitting hole.
        #[test]
        fn matches_a_byte_map(threshold in 0u64..6, steps in proptest::collection::vec(step(), 1..120)) {
            let mut index = HoleIndex::new(threshold);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for step in steps {
                match step {
                    Step::Allocate(len) => {
                        let fitting = index.holes().filter(|h| h.1 >= len).min_by_key(|h| (h.1, h.0));
                        let offset = index.allocate(len);
                        if let Some((hole_offset, _)) = fitting {
                            prop_assert_eq!(offset, hole_offset);
                        }
                        for &(o, l) in &live {
                            prop_assert!(offset + len <= o || o + l <= offset, "({offset},{len}) overlaps ({o},{l})");
                        }
                        live.push((offset, len));
                    }
                    Step::Free(pick) => {
                        if !live.is_empty() {
                            let (o, l) = live.swap_remove(pick % live.len());
                            index.free(o, l);
                        }
                    }
                }
                index.check().map_err(TestCaseError::fail)?;
                let live_end = live.iter().map(|&(o, l)| o + l).max().unwrap_or(0);
                prop_assert!(index.end() >= live_end);
                for (o, l) in index.holes() {
                    for &(lo, ll) in &live {
                        prop_assert!(o + l <= lo || lo + ll <= o, "hole ({o},{l}) overlaps live ({lo},{ll})");
                    }
                }
                if threshold == 0 {
                    // Every free byte below the end is in a tracked hole.
                    let free: u64 = index.holes().map(|h| h.1).sum();
                    let used: u64 = live.iter().map(|h| h.1).sum();
                    prop_assert_eq!(free + used, index.end());
                    prop_assert_eq!(index.end(), live_end);
                }
            }
        }
    }
}
