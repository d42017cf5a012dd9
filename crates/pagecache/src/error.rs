//! The error type of every fallible operation in the crate.

use std::fmt;
use std::io;

use bincodec::OutOfBounds;

/// What went wrong in a page-cache operation.
///
/// Out of bounds is always the same value, [`Error::OutOfBounds`], carrying
/// the position, the length asked for and the device size, whatever the
/// address, page size or capacity.
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::{ByteSourceExt, Error, OutOfBounds, PageCache};
///
/// let cache = PageCache::new(MemDevice::from_vec(vec![0; 10]))?;
/// let err = cache.get_u32_le(8).unwrap_err();
/// assert_eq!(err.out_of_bounds(), Some(OutOfBounds { pos: 8, len: 4, size: 10 }));
/// assert!(matches!(
///     PageCache::builder().page_size(3).build(MemDevice::new()),
///     Err(Error::InvalidPageSize { page_size: 3 })
/// ));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The bytes asked for do not lie wholly inside the device.
    OutOfBounds(OutOfBounds),
    /// The device failed.
    Io(io::Error),
    /// The page size is not a power of two between 1 and [`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    InvalidPageSize {
        /// The page size asked for.
        page_size: usize,
    },
    /// The capacity is not a power of two between 1 and [`MAX_CAPACITY`](crate::MAX_CAPACITY) pages.
    InvalidCapacity {
        /// The capacity asked for, in pages.
        capacity: usize,
    },
    /// The largest device read is not between 1 page and the capacity.
    InvalidBatch {
        /// The batch size asked for, in pages.
        max_batch_pages: usize,
        /// The capacity of the cache, in pages.
        capacity: usize,
    },
    /// The bound on dirty pages of a write-back cache is zero.
    InvalidDirtyBound {
        /// The bound asked for, in pages.
        max_dirty_pages: usize,
    },
    /// The frames for `capacity` pages of `page_size` bytes, allocated when
    /// the cache is built, do not fit in memory.
    TooLarge {
        /// The capacity asked for, in pages.
        capacity: usize,
        /// The page size asked for.
        page_size: usize,
    },
    /// `load` was asked for more bytes than a page holds.
    MinLenTooLarge {
        /// The minimum length asked for.
        min_len: usize,
        /// The page size of the cache.
        page_size: usize,
    },
    /// The device moved to a new version ([`PageCache::refresh`](crate::PageCache::refresh))
    /// during a read that must return bytes of one version, and the read
    /// could not be made again whole: a read that had already handed out
    /// pieces of the old version (`for_each_chunk`, `get_seq`, `iter`), or
    /// one that refreshes crossed every time it started again.
    VersionChanged,
    /// [`WriteBackCache::refresh`](crate::WriteBackCache::refresh) was
    /// called with writes pending: they were made against the version the
    /// device had, and would be written into the new one. Commit them
    /// first (into the old version, if the device still takes them) or
    /// discard them.
    DirtyPages {
        /// Dirty pages pending.
        pages: usize,
    },
    /// A destination range does not lie inside the caller's buffer.
    BufferRange {
        /// Start of the range in the buffer.
        dst_off: usize,
        /// Length of the range.
        len: usize,
        /// Length of the buffer.
        buf_len: usize,
    },
}

impl Error {
    /// The out-of-bounds details, when this is an out-of-bounds error.
    ///
    /// ```
    /// use pagecache::{Error, OutOfBounds};
    ///
    /// let oob = OutOfBounds { pos: 9, len: 1, size: 4 };
    /// assert_eq!(Error::from(oob).out_of_bounds(), Some(oob));
    /// ```
    pub fn out_of_bounds(&self) -> Option<OutOfBounds> {
        match self {
            Error::OutOfBounds(oob) => Some(*oob),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfBounds(oob) => oob.fmt(f),
            Error::Io(err) => write!(f, "device I/O failed: {err}"),
            Error::InvalidPageSize { page_size } => write!(
                f,
                "page size {page_size} is not a power of two between 1 and {}",
                crate::MAX_PAGE_SIZE
            ),
            Error::InvalidCapacity { capacity } => write!(
                f,
                "capacity of {capacity} pages is not a power of two between 1 and {}",
                crate::MAX_CAPACITY
            ),
            Error::InvalidBatch {
                max_batch_pages,
                capacity,
            } => write!(
                f,
                "a batch of {max_batch_pages} pages is not between 1 and the capacity ({capacity} pages)"
            ),
            Error::InvalidDirtyBound { max_dirty_pages } => write!(
                f,
                "a bound of {max_dirty_pages} dirty pages is below the least of 1"
            ),
            Error::TooLarge {
                capacity,
                page_size,
            } => write!(
                f,
                "{capacity} pages of {page_size} bytes do not fit in memory"
            ),
            Error::MinLenTooLarge { min_len, page_size } => write!(
                f,
                "minimum length {min_len} exceeds the page size {page_size}"
            ),
            Error::VersionChanged => write!(
                f,
                "the device moved to a new version (a refresh) during a read that \
                 cannot mix versions; read again"
            ),
            Error::DirtyPages { pages } => write!(
                f,
                "{pages} dirty pages are pending; commit or discard them before a refresh"
            ),
            Error::BufferRange {
                dst_off,
                len,
                buf_len,
            } => write!(
                f,
                "{len} bytes at offset {dst_off} do not fit in a buffer of {buf_len} bytes"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::OutOfBounds(oob) => Some(oob),
            Error::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<OutOfBounds> for Error {
    fn from(oob: OutOfBounds) -> Self {
        Error::OutOfBounds(oob)
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

/// Checks that `len` bytes at `pos` lie inside `size` bytes, without overflow.
#[inline(always)]
pub(crate) fn check_range(pos: u64, len: u64, size: u64) -> Result<(), OutOfBounds> {
    if pos > size || len > size - pos {
        Err(OutOfBounds { pos, len, size })
    } else {
        Ok(())
    }
}
