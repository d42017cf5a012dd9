//! Cachet's slice vocabulary over `PageCache`: `load`, `next`, `get_seq`,
//! `iter`, `blit` and `get_bytes`.

use bincodec::ByteSource;
use blockdev::ReadAt;

use crate::cache::PageCache;
use crate::error::check_range;
use crate::iter::{Bytes, Chunks};
use crate::{Error, Slice};

impl<D: ReadAt> PageCache<D> {
    /// The page holding `addr`, clipped to the device end, as a [`Slice`]
    /// starting at the page start; `None` when fewer than `min_len` bytes
    /// exist from `addr` to the end of that page (past the end of the device,
    /// or on a short last page). With `min_len == 0` the result is never
    /// `None`; a page wholly past the end gives an empty slice. Reads at
    /// most one page, and nothing when the answer is `None` or empty.
    ///
    /// # Errors
    /// [`Error::MinLenTooLarge`] when `min_len` exceeds the page size;
    /// [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdef".to_vec()))?;
    /// assert_eq!(cache.load(1, 3)?.unwrap().bytes(), b"abcd");
    /// assert!(cache.load(1, 4)?.is_none()); // only 3 bytes left in page 0
    /// assert!(cache.load(5, 2)?.is_none()); // short last page "ef"
    /// assert!(cache.load(6, 1)?.is_none()); // past the end
    /// assert!(cache.load(0, 5).is_err()); // more than a page
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn load(&self, addr: u64, min_len: usize) -> Result<Option<Slice>, Error> {
        self.load_within(addr, min_len, self.size())
    }

    /// [`load`](Self::load) for a device of `size` bytes.
    pub(crate) fn load_within(
        &self,
        addr: u64,
        min_len: usize,
        size: u64,
    ) -> Result<Option<Slice>, Error> {
        let page_size = self.page_size();
        if min_len > page_size {
            return Err(Error::MinLenTooLarge { min_len, page_size });
        }
        let page = addr >> self.geometry.page_shift;
        let page_start = page << self.geometry.page_shift;
        let page_end = page_start.saturating_add(page_size as u64).min(size);
        if page_end.saturating_sub(addr) < min_len as u64 {
            return Ok(None);
        }
        if page_start >= size {
            return Ok(Some(Slice::empty(page_start)));
        }
        Ok(Some(self.page_slice(page, size)?))
    }

    /// The slice after `slice` (Cachet's `next`): the page holding
    /// `slice.end()`, or `None` at the end of the device.
    ///
    /// # Errors
    /// [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdef".to_vec()))?;
    /// let first = cache.load(0, 1)?.unwrap();
    /// let second = cache.next(&first)?.unwrap();
    /// assert_eq!(second.bytes(), b"ef");
    /// assert!(cache.next(&second)?.is_none());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn next(&self, slice: &Slice) -> Result<Option<Slice>, Error> {
        let size = self.size();
        let addr = slice.end();
        if slice.is_empty() || addr >= size {
            return Ok(None);
        }
        self.page_slice(addr >> self.geometry.page_shift, size)
            .map(Some)
    }

    /// The pages from `addr` to the end of the device, as slices (Cachet's
    /// `get_seq`): the first starts at `addr`, the others are whole pages,
    /// the last may be short. Each page is one lookup.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when `addr` is past the end of the device
    /// (`addr == size` gives an empty iterator). The iterator yields
    /// [`Error::Io`] if the device fails, or [`Error::VersionChanged`] if a
    /// [`refresh`](Self::refresh) moved the device to a new version since
    /// it was made (its slices are all of one version), then stops.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"abcdefghij".to_vec()))?;
    /// let chunks: Vec<Vec<u8>> = cache.get_seq(2)?.map(|s| s.map(|s| s.to_vec())).collect::<Result<_, _>>()?;
    /// assert_eq!(chunks, [&b"cd"[..], b"efgh", b"ij"]);
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn get_seq(&self, addr: u64) -> Result<Chunks<'_, D>, Error> {
        let size = self.size();
        check_range(addr, 0, size)?;
        Ok(Chunks::new(self, addr, size))
    }

    /// The bytes of `[addr, addr + len)`, or from `addr` to the end of the
    /// device when `len` is `None` (Cachet's `iter`).
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device. The
    /// iterator yields [`Error::Io`] if the device fails, or
    /// [`Error::VersionChanged`] as [`get_seq`](Self::get_seq)'s does, then
    /// stops.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// assert_eq!(cache.iter(1, Some(3))?.collect::<Result<Vec<u8>, _>>()?, b"ell");
    /// assert_eq!(cache.iter(3, None)?.collect::<Result<Vec<u8>, _>>()?, b"lo");
    /// assert!(cache.iter(3, Some(3)).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn iter(&self, addr: u64, len: Option<u64>) -> Result<Bytes<'_, D>, Error> {
        let size = self.size();
        let len = match len {
            Some(len) => len,
            None => size.saturating_sub(addr),
        };
        check_range(addr, len, size)?;
        Ok(Bytes::new(Chunks::new(self, addr, size), len))
    }

    /// Copies `len` bytes at device address `src_off` into
    /// `dst[dst_off..dst_off + len]` (Cachet's `blit_to_bytes`), across any
    /// number of pages.
    ///
    /// # Errors
    /// [`Error::BufferRange`] when the range does not fit in `dst`,
    /// [`Error::OutOfBounds`] when it does not fit in the device (`dst` is
    /// then unchanged), [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// let mut dst = *b"[.....]";
    /// cache.blit(0, &mut dst, 1, 5)?;
    /// assert_eq!(&dst, b"[hello]");
    /// assert!(cache.blit(0, &mut dst, 3, 5).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn blit(
        &self,
        src_off: u64,
        dst: &mut [u8],
        dst_off: usize,
        len: usize,
    ) -> Result<(), Error> {
        let buf_len = dst.len();
        let range = dst_off
            .checked_add(len)
            .filter(|&end| end <= buf_len)
            .map(|end| dst_off..end)
            .ok_or(Error::BufferRange {
                dst_off,
                len,
                buf_len,
            })?;
        self.read_bytes_at(src_off, &mut dst[range])
    }

    /// The `len` bytes at `addr` in a new vector (Cachet's `get_string`).
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device
    /// (checked before allocating), [`Error::Io`] when the device fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(2)
    ///     .build(MemDevice::from_vec(b"hello".to_vec()))?;
    /// assert_eq!(cache.get_bytes(1, 4)?, b"ello");
    /// assert!(cache.get_bytes(1, usize::MAX).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn get_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Error> {
        let size = self.size();
        check_range(addr, len as u64, size)?;
        let mut out = vec![0; len];
        self.read_in_bounds(addr, &mut out, size)?;
        Ok(out)
    }
}
