//! The error of building a cache.

use std::fmt;

/// What went wrong building a [`CachingStore`](crate::CachingStore).
///
/// ```
/// let err = objectcache::CachingStore::builder()
///     .ram_bytes(1)
///     .build(std::sync::Arc::new(object_store::memory::InMemory::new()))
///     .unwrap_err();
/// assert!(matches!(err, objectcache::Error::InvalidOption { option: "ram_bytes", .. }));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An option is out of range, or two options do not fit together.
    InvalidOption {
        /// The option's name (the builder method).
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The RAM page cache could not be built.
    PageCache(pagecache::Error),
    /// The disk tier could not be built (its file could not be created).
    DiskTier(spillcache::Error),
    /// The runtime the cache's GETs run on could not start.
    Runtime(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOption { option, reason } => write!(f, "invalid {option}: {reason}"),
            Error::PageCache(e) => write!(f, "cannot build the RAM page cache: {e}"),
            Error::DiskTier(e) => write!(f, "cannot build the disk tier: {e}"),
            Error::Runtime(e) => write!(f, "cannot start the runtime of the GETs: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidOption { .. } => None,
            Error::PageCache(e) => Some(e),
            Error::DiskTier(e) => Some(e),
            Error::Runtime(e) => Some(e),
        }
    }
}
