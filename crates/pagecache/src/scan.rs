//! Scans: a range read in page-sized pieces through one reused buffer,
//! each byte copied once, nothing allocated per page.

use blockdev::ReadAt;

use crate::error::check_range;
use crate::{Error, PageCache};

/// The most bytes the reused buffer of a scan holds (unless a page is larger).
const SCAN_BUFFER: usize = 1 << 20;

impl<D: ReadAt> PageCache<D> {
    /// Calls `visit(addr, bytes)` for the `len` bytes at `addr`, in order,
    /// one page at a time (the first and last pieces may be shorter; the
    /// others start at page boundaries). Each piece is copied once, out of
    /// the cached page into one buffer of a page that every piece reuses;
    /// missing pages are read as with [`blit`](Self::blit), contiguous ones
    /// in one device call. To copy a range into memory of your own, use
    /// [`blit`](Self::blit): it copies straight into your buffer.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the range is not inside the device
    /// (nothing is visited), [`Error::Io`] when the device fails (the
    /// pieces before the failure have been visited),
    /// [`Error::VersionChanged`] when a [`refresh`](Self::refresh) moved
    /// the device to a new version during the scan (the pieces visited
    /// before are all of the old one).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let cache = pagecache::PageCache::builder().page_size(4)
    ///     .build(MemDevice::from_vec(b"hello, world".to_vec()))?;
    /// let mut pieces = Vec::new();
    /// cache.for_each_chunk(2, 9, |addr, bytes| pieces.push((addr, bytes.to_vec())))?;
    /// assert_eq!(pieces, [(2, b"ll".to_vec()), (4, b"o, w".to_vec()), (8, b"orl".to_vec())]);
    /// assert!(cache.for_each_chunk(10, 3, |_, _| {}).is_err());
    /// # Ok::<(), pagecache::Error>(())
    /// ```
    pub fn for_each_chunk<F>(&self, addr: u64, len: u64, mut visit: F) -> Result<(), Error>
    where
        F: FnMut(u64, &[u8]),
    {
        let size = self.size();
        check_range(addr, len, size)?;
        let page_size = self.page_size();
        // Up to a batch of pages per read, so that missing pages are
        // fetched as contiguous runs, then visited page by page.
        let batch = page_size * self.max_batch_pages().min((SCAN_BUFFER / page_size).max(1));
        let end = addr + len;
        let mut buf = vec![0; batch.min(usize::try_from(len).unwrap_or(usize::MAX))];
        let mut at = addr;
        let version = self.stable_version();
        while at < end {
            let in_batch = batch - (at % batch as u64) as usize;
            let n = usize::try_from(end - at).map_or(in_batch, |left| left.min(in_batch));
            let run = &mut buf[..n];
            self.read_in_bounds(at, run, size)?;
            // The pieces visited so far are of the version the scan began with.
            if !self.version_unchanged(version) {
                return Err(Error::VersionChanged);
            }
            let mut piece_at = at;
            for piece in split_at_pages(run, at, page_size) {
                visit(piece_at, piece);
                piece_at += piece.len() as u64;
            }
            at += n as u64;
        }
        Ok(())
    }
}

/// `run` (the bytes at `addr`) cut at page boundaries.
fn split_at_pages(run: &[u8], addr: u64, page_size: usize) -> impl Iterator<Item = &[u8]> {
    let first = (page_size - (addr % page_size as u64) as usize).min(run.len());
    let (head, rest) = run.split_at(first);
    std::iter::once(head)
        .filter(|head| !head.is_empty())
        .chain(rest.chunks(page_size))
}
