//! `Slice`: shared bytes of one page at their device address.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Bytes of one page at their address on the device (Cachet's `slice`).
///
/// The bytes are shared with the cache and stay valid after the page is
/// evicted or invalidated: a `Slice` is a snapshot, cheap to clone.
///
/// ```
/// use blockdev::MemDevice;
/// use pagecache::PageCache;
///
/// let cache = PageCache::builder().page_size(4).build(MemDevice::from_vec(b"abcdefghij".to_vec()))?;
/// let slice = cache.load(5, 1)?.expect("5 is inside the device");
/// assert_eq!((slice.offset(), slice.len(), slice.bytes()), (4, 4, &b"efgh"[..]));
/// assert_eq!(slice.view(6), Some(&b"gh"[..]));
/// cache.invalidate(0, 10)?;
/// assert_eq!(slice.bytes(), b"efgh");
/// # Ok::<(), pagecache::Error>(())
/// ```
#[derive(Clone)]
pub struct Slice {
    offset: u64,
    data: Arc<[u8]>,
    start: usize,
    end: usize,
}

impl Slice {
    /// `data[start..end]`, whose first byte is at device address `offset`.
    pub(crate) fn new(offset: u64, data: Arc<[u8]>, start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= data.len());
        Slice {
            offset,
            data,
            start,
            end,
        }
    }

    /// The part of this slice from device address `addr` (clamped to it).
    pub(crate) fn view_slice(&self, addr: u64) -> Slice {
        let skip = addr.saturating_sub(self.offset).min(self.len() as u64) as usize;
        Slice::new(
            self.offset + skip as u64,
            self.data.clone(),
            self.start + skip,
            self.end,
        )
    }

    pub(crate) fn empty(offset: u64) -> Self {
        Slice::new(offset, Arc::from(&[][..]), 0, 0)
    }

    /// Device address of the first byte.
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(8).build(MemDevice::from_vec(vec![0; 20]))?;
    /// assert_eq!(cache.load(13, 1)?.unwrap().offset(), 8);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of bytes.
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(8).build(MemDevice::from_vec(vec![0; 20]))?;
    /// // The last page is short: the device ends at 20.
    /// assert_eq!(cache.load(19, 1)?.unwrap().len(), 4);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the slice holds no bytes (a page past the end of the device).
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(8).build(MemDevice::from_vec(vec![0; 20]))?;
    /// assert!(cache.load(64, 0)?.unwrap().is_empty());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Device address one past the last byte.
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(8).build(MemDevice::from_vec(vec![0; 20]))?;
    /// assert_eq!(cache.load(0, 1)?.unwrap().end(), 8);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn end(&self) -> u64 {
        self.offset + self.len() as u64
    }

    /// The bytes.
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(2).build(MemDevice::from_vec(vec![1, 2, 3]))?;
    /// assert_eq!(cache.load(2, 1)?.unwrap().bytes(), [3]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The bytes from device address `addr` to the end of the slice
    /// (Cachet's `bstr_of_slice ~logical_address`); `None` when `addr` is
    /// not inside `offset..=end`. `addr == end` gives an empty view.
    ///
    /// ```
    /// # use blockdev::MemDevice;
    /// # let cache = pagecache::PageCache::builder().page_size(4).build(MemDevice::from_vec(b"abcdef".to_vec()))?;
    /// let last = cache.load(4, 1)?.unwrap(); // "ef", a short last page
    /// assert_eq!(last.view(5), Some(&b"f"[..]));
    /// assert_eq!(last.view(6), Some(&b""[..]));
    /// assert_eq!(last.view(7), None);
    /// assert_eq!(last.view(3), None);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn view(&self, addr: u64) -> Option<&[u8]> {
        let skip = usize::try_from(addr.checked_sub(self.offset)?).ok()?;
        self.bytes().get(skip..)
    }
}

impl Deref for Slice {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

/// Two slices are equal when they start at the same address and hold the
/// same bytes.
impl PartialEq for Slice {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset && self.bytes() == other.bytes()
    }
}

impl Eq for Slice {}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl fmt::Debug for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slice")
            .field("offset", &self.offset)
            .field("len", &self.len())
            .finish()
    }
}
