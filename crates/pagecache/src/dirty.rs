//! The dirty pages of a write-back cache, kept as extents: runs of
//! contiguous pages in one shared buffer each, so a large write makes one
//! buffer, write-back hands the device few large pieces, and freeing the
//! written pages is one deallocation per extent.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Slice;

/// Most bytes in one extent's buffer (at least one page): a `Slice` of a
/// dirty page keeps its whole buffer alive, so this bounds what a slice
/// can pin.
const MAX_EXTENT_BYTES: usize = 1 << 20;

/// Dirty pages `first..first + pages` (`first` is the map key) whose bytes
/// are `data[start..start + len]`: whole pages but for the device's short
/// last page. Extents split from one buffer share it.
#[derive(Clone)]
pub(crate) struct Extent {
    data: Arc<[u8]>,
    start: usize,
    len: usize,
}

impl Extent {
    /// The extent's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }

    /// This extent, moved to a buffer of its own if it uses less than half
    /// of the one it shares. Applied to what stays dirty when an extent is
    /// split, so that every buffer the map keeps is at least half used by
    /// its (at most two) extents: the dirty pages pin at most twice their
    /// bytes, whatever was written back from the middle of an extent. A
    /// buffer halves at least with each copy, so an extent's bytes are
    /// copied at most log2(extent pages) times.
    fn compacted(self) -> Extent {
        if self.len.saturating_mul(2) >= self.data.len() {
            return self;
        }
        Extent {
            data: Arc::from(self.bytes()),
            start: 0,
            len: self.len,
        }
    }
}

/// A page that a write covers only in part and that was clean: its
/// current bytes, read before the write changes anything.
pub(crate) struct Base {
    pub(crate) page: u64,
    pub(crate) bytes: Slice,
}

/// Dirty pages as non-overlapping extents keyed by their first page.
pub(crate) struct DirtyPages {
    extents: BTreeMap<u64, Extent>,
    page_shift: u32,
    /// Dirty pages in all extents.
    pages: usize,
}

impl DirtyPages {
    pub(crate) fn new(page_size: usize) -> Self {
        DirtyPages {
            extents: BTreeMap::new(),
            page_shift: page_size.trailing_zeros(),
            pages: 0,
        }
    }

    /// Number of dirty pages.
    pub(crate) fn len(&self) -> usize {
        self.pages
    }

    /// Bytes of the buffers the extents keep alive (each buffer once).
    #[cfg(test)]
    pub(crate) fn pinned_bytes(&self) -> usize {
        let mut buffers: Vec<*const u8> = Vec::new();
        let mut pinned = 0;
        for extent in self.extents.values() {
            let buffer = extent.data.as_ptr();
            if !buffers.contains(&buffer) {
                buffers.push(buffer);
                pinned += extent.data.len();
            }
        }
        pinned
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pages == 0
    }

    fn page_size(&self) -> usize {
        1 << self.page_shift
    }

    /// Pages of `extent`.
    fn pages_of(&self, extent: &Extent) -> u64 {
        extent.len.div_ceil(self.page_size()) as u64
    }

    /// The extent holding `page`, with its first page.
    fn find(&self, page: u64) -> Option<(u64, &Extent)> {
        let (&first, extent) = self.extents.range(..=page).next_back()?;
        (page < first + self.pages_of(extent)).then_some((first, extent))
    }

    /// Whether `page` is dirty.
    pub(crate) fn contains(&self, page: u64) -> bool {
        self.find(page).is_some()
    }

    /// The dirty bytes from the start of `page` to the end of its extent
    /// (several pages' worth when the following pages share the extent).
    pub(crate) fn bytes_from(&self, page: u64) -> Option<&[u8]> {
        let (first, extent) = self.find(page)?;
        extent
            .bytes()
            .get(((page - first) as usize) << self.page_shift..)
    }

    /// Dirty page `page` as a slice sharing its extent's buffer.
    pub(crate) fn slice(&self, page: u64) -> Option<Slice> {
        let (first, extent) = self.find(page)?;
        let start = extent.start + (((page - first) as usize) << self.page_shift);
        let end = (start + self.page_size()).min(extent.start + extent.len);
        Some(Slice::new(
            page << self.page_shift,
            extent.data.clone(),
            start,
            end,
        ))
    }

    /// The first dirty page at or after `page`.
    pub(crate) fn next_dirty(&self, page: u64) -> Option<u64> {
        if self.contains(page) {
            return Some(page);
        }
        self.extents.range(page..).next().map(|(&first, _)| first)
    }

    /// The extents overlapping pages `first..end`, with their first pages.
    fn overlapping(&self, first: u64, end: u64) -> impl Iterator<Item = (u64, &Extent)> {
        let before = self.find(first).filter(|&(start, _)| start < first);
        before
            .into_iter()
            .chain(self.extents.range(first..end).map(|(&page, e)| (page, e)))
    }

    /// Dirty pages among `first..end`.
    pub(crate) fn count_in(&self, first: u64, end: u64) -> u64 {
        self.overlapping(first, end)
            .map(|(start, extent)| {
                let stop = start + self.pages_of(extent);
                stop.min(end) - start.max(first)
            })
            .sum()
    }

    /// The runs of contiguous dirty pages among `first..end`, as page
    /// ranges, in order.
    pub(crate) fn runs(&self, first: u64, end: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (start, extent) in self.overlapping(first, end) {
            let (from, to) = (start.max(first), (start + self.pages_of(extent)).min(end));
            match runs.last_mut() {
                Some(run) if run.1 == from => run.1 = to,
                _ => runs.push((from, to)),
            }
        }
        runs
    }

    /// The first page of the run of contiguous dirty pages holding `page`.
    pub(crate) fn run_start(&self, page: u64) -> u64 {
        let mut start = match self.find(page) {
            Some((first, _)) => first,
            None => return page,
        };
        while let Some((first, _)) = start.checked_sub(1).and_then(|before| self.find(before)) {
            start = first;
        }
        start
    }

    /// One past the last page of the run of contiguous dirty pages from
    /// `page` on (`page` itself when it is clean).
    pub(crate) fn run_end(&self, page: u64) -> u64 {
        let mut end = page;
        while let Some((first, extent)) = self.find(end) {
            end = first + self.pages_of(extent);
        }
        end
    }

    /// Pages `from..to` of the extent at `first` as an extent of their own
    /// sharing its buffer.
    fn part(&self, first: u64, extent: &Extent, from: u64, to: u64) -> Extent {
        let skip = ((from - first) as usize) << self.page_shift;
        let stop = (((to - first) as usize) << self.page_shift).min(extent.len);
        Extent {
            data: extent.data.clone(),
            start: extent.start + skip,
            len: stop - skip,
        }
    }

    /// The dirty bytes of pages `first..end` (all dirty), as pieces that
    /// share the extents' buffers, in order.
    pub(crate) fn pieces(&self, first: u64, end: u64) -> Vec<Extent> {
        self.overlapping(first, end)
            .map(|(start, extent)| {
                let stop = start + self.pages_of(extent);
                self.part(start, extent, start.max(first), stop.min(end))
            })
            .collect()
    }

    /// Makes pages `first..end` clean. Returns the extents taken out of
    /// the map, so their buffers can be freed after the caller's lock.
    pub(crate) fn remove(&mut self, first: u64, end: u64) -> Vec<Extent> {
        let starts: Vec<u64> = self
            .overlapping(first, end)
            .map(|(start, _)| start)
            .collect();
        let mut removed = Vec::with_capacity(starts.len());
        for start in starts {
            let Some(extent) = self.extents.remove(&start) else {
                continue;
            };
            let stop = start + self.pages_of(&extent);
            if start < first {
                let head = self.part(start, &extent, start, first).compacted();
                self.extents.insert(start, head);
            }
            if stop > end {
                let tail = self.part(start, &extent, end, stop).compacted();
                self.extents.insert(end, tail);
            }
            self.pages -= (stop.min(end) - start.max(first)) as usize;
            removed.push(extent);
        }
        removed
    }

    /// Writes `bytes` at `pos` into the pages `pos` to `pos + len` (inside
    /// a device of `size` bytes; `bytes` is not empty), making the clean
    /// ones dirty. `bases` holds the clean pages the write covers only in
    /// part. A buffer shared with a `Slice` handed out earlier is not
    /// changed: the pages written are copied first. Returns the first page
    /// of every new extent, oldest first.
    pub(crate) fn write(&mut self, pos: u64, bytes: &[u8], size: u64, bases: &[Base]) -> Vec<u64> {
        let end = pos + bytes.len() as u64;
        let (first, last) = (pos >> self.page_shift, (end - 1) >> self.page_shift);
        let mut new_extents = Vec::new();
        let mut page = first;
        while page <= last {
            if let Some((start, extent)) = self.find(page) {
                let to = (start + self.pages_of(extent)).min(last + 1);
                self.write_dirty(start, page, to, pos, bytes);
                page = to;
            } else {
                let per_extent = (MAX_EXTENT_BYTES >> self.page_shift).max(1) as u64;
                let gap_end = self
                    .extents
                    .range(page..=last)
                    .next()
                    .map_or(last + 1, |(&next, _)| next);
                // Saturating: near 2^64 the extent ends at the write's end.
                let to = gap_end.min(page.saturating_add(per_extent));
                let extent = self.new_extent(page, to, pos, bytes, size, bases);
                self.pages += (to - page) as usize;
                self.extents.insert(page, extent);
                new_extents.push(page);
                page = to;
            }
        }
        new_extents
    }

    /// Writes the part of `bytes` (at `pos`) that falls in pages
    /// `from..to` of the extent at `first`, copying those pages first if
    /// the extent's buffer is shared.
    fn write_dirty(&mut self, first: u64, from: u64, to: u64, pos: u64, bytes: &[u8]) {
        let Some(extent) = self.extents.get(&first) else {
            return;
        };
        // No `Weak` of a buffer is ever made: the count alone tells.
        let target = if Arc::strong_count(&extent.data) > 1 {
            // Copy-on-write of the pages written only: the rest keep
            // sharing the buffer.
            let extent = extent.clone();
            let stop = first + self.pages_of(&extent);
            let middle = self.part(first, &extent, from, to);
            let copy = Extent {
                data: Arc::from(middle.bytes()),
                start: 0,
                len: middle.len,
            };
            self.extents.remove(&first);
            if first < from {
                let head = self.part(first, &extent, first, from).compacted();
                self.extents.insert(first, head);
            }
            if to < stop {
                let tail = self.part(first, &extent, to, stop).compacted();
                self.extents.insert(to, tail);
            }
            self.extents.insert(from, copy);
            from
        } else {
            first
        };
        let extent_pos = target << self.page_shift;
        if let Some(extent) = self.extents.get_mut(&target) {
            copy_overlap(extent, extent_pos, pos, bytes);
        }
    }

    /// A new extent of the clean pages `from..to`, holding the part of
    /// `bytes` (at `pos`) that falls in them over the pages' current bytes.
    fn new_extent(
        &self,
        from: u64,
        to: u64,
        pos: u64,
        bytes: &[u8],
        size: u64,
        bases: &[Base],
    ) -> Extent {
        let shift = self.page_shift;
        let extent_pos = from << shift;
        // `to` may be the page just past 2^64 bytes: compute in u128.
        let len =
            ((u128::from(to) << shift).min(u128::from(size)) - u128::from(extent_pos)) as usize;
        if let Some(whole) = extent_pos
            .checked_sub(pos)
            .and_then(|skip| bytes.get(skip as usize..skip as usize + len))
        {
            // Covered whole: one copy, no zeroing first.
            return Extent {
                data: Arc::from(whole),
                start: 0,
                len,
            };
        }
        let mut extent = Extent {
            data: std::iter::repeat_n(0, len).collect(),
            start: 0,
            len,
        };
        if let Some(buf) = Arc::get_mut(&mut extent.data) {
            for base in bases {
                if (from..to).contains(&base.page) {
                    let at = ((base.page - from) as usize) << shift;
                    let src = base.bytes.bytes();
                    if let Some(dst) = buf.get_mut(at..at + src.len()) {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
        copy_overlap(&mut extent, extent_pos, pos, bytes);
        extent
    }
}

/// Copies the part of `bytes` (at device address `pos`) that overlaps
/// `extent` (at `extent_pos`) into it. Callers hand it unshared buffers;
/// a shared one would be copied whole first, so no reader's bytes change.
fn copy_overlap(extent: &mut Extent, extent_pos: u64, pos: u64, bytes: &[u8]) {
    // Both ends lie inside the device, so within `u64`; saturating keeps
    // a wrong length from wrapping around to a small end.
    let extent_end = extent_pos.saturating_add(extent.len as u64);
    let from = pos.max(extent_pos);
    let to = pos.saturating_add(bytes.len() as u64).min(extent_end);
    if from >= to {
        return;
    }
    let src = &bytes[(from - pos) as usize..(to - pos) as usize];
    let at = extent.start + (from - extent_pos) as usize;
    if let Some(dst) = Arc::make_mut(&mut extent.data).get_mut(at..at + src.len()) {
        dst.copy_from_slice(src);
    }
}
