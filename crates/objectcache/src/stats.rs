//! `CacheStats`: what the RAM and disk tiers of a caching store hold and did.

/// A snapshot of a [`CachingStore`](crate::CachingStore)'s tiers, from
/// [`CachingStore::stats`](crate::CachingStore::stats).
///
/// ```
/// let store = objectcache::CachingStore::builder()
///     .ram_bytes(1 << 20)
///     .disk_bytes(4 << 20)
///     .build(std::sync::Arc::new(object_store::memory::InMemory::new()))?;
/// let stats = store.stats();
/// assert_eq!((stats.objects, stats.ram.resident_pages, stats.disk.resident_bytes), (0, 0, 0));
/// # Ok::<(), objectcache::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Object versions the cache knows (location, size, ETag).
    pub objects: usize,
    /// The RAM page cache: hits, misses, device reads, resident pages.
    pub ram: pagecache::Stats,
    /// The encrypted disk tier: chunk hits and misses, resident bytes.
    pub disk: spillcache::TierStats,
    /// What read-ahead fetched, what reads took of it and what was dropped
    /// unread, over every object version's device.
    pub read_ahead: objectdev::ReadAheadStats,
}
