//! `Stats`: a snapshot of the cache's counters.

/// A snapshot of a cache's counters (see [`PageCache::stats`](crate::PageCache::stats)).
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::ByteSourceExt;
///
/// let cache = pagecache::PageCache::new(MemDevice::from_vec(vec![0; 100]))?;
/// cache.get_u32_le(0)?;
/// cache.get_u32_le(4)?;
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses), (1, 1));
/// assert_eq!(stats.hit_ratio(), 0.5);
/// # Ok::<(), pagecache::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Page lookups that found the page resident.
    pub hits: u64,
    /// Page lookups that did not.
    pub misses: u64,
    /// Calls to the device's `read_at`.
    pub device_reads: u64,
    /// Pages evicted to make room.
    pub evictions: u64,
    /// Pages resident now.
    pub resident_pages: usize,
}

impl Stats {
    /// Hits over lookups, or 0 before any lookup.
    ///
    /// ```
    /// assert_eq!(pagecache::Stats::default().hit_ratio(), 0.0);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
