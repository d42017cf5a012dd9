//! Counters of what the cache has done.

/// What a cache has done since it was built, from [`SpillCache::stats`](crate::SpillCache::stats).
///
/// ```
/// use std::time::Duration;
///
/// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
/// cache.add(b"k", b"12345")?;
/// assert!(cache.wait_for_write(Duration::from_secs(5))?);
/// let stats = cache.stats();
/// assert_eq!((stats.writes, stats.bytes_written, stats.write_errors), (1, 5, 0));
/// # Ok::<(), spillcache::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Values written to the file and recorded.
    pub writes: u64,
    /// Bytes of those values.
    pub bytes_written: u64,
    /// Write attempts that failed (each is retried later).
    pub write_errors: u64,
    /// Writes that finished after their value was overwritten, removed or
    /// cleared, and were thrown away.
    pub discarded_writes: u64,
    /// Defragmentations done.
    pub defrags: u64,
    /// Defragmentations that failed (the old file stayed in use).
    pub defrag_failures: u64,
    /// Bytes copied by defragmentations.
    pub bytes_defragged: u64,
    /// Defragmentations done in place (values moved down into holes of the
    /// same file) because a second copy of the file did not fit.
    pub compactions: u64,
    /// Bytes moved by in-place compactions.
    pub bytes_compacted: u64,
    /// Bytes of freed file space given back to the file system by punching
    /// holes.
    pub bytes_punched: u64,
    /// Reads whose bytes failed the integrity check.
    pub corrupt_reads: u64,
    /// Reads the device failed.
    pub read_errors: u64,
    /// Calls of `add` (or `add_timeout`, `add_shared`) that found the bytes
    /// waiting to be written at [`Builder::max_pending_bytes`](crate::Builder::max_pending_bytes)
    /// and waited for room (backpressure).
    pub room_waits: u64,
}
