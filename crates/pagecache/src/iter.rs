//! Iterators over a cache: page by page (`Chunks`) and byte by byte (`Bytes`).

use blockdev::ReadAt;

use crate::{Error, PageCache, Slice};

/// The pages from an address to the end of the device (see
/// [`PageCache::get_seq`]).
///
/// ```
/// use blockdev::MemDevice;
///
/// let cache = pagecache::PageCache::builder().page_size(4)
///     .build(MemDevice::from_vec(vec![1; 10]))?;
/// let lens: Vec<usize> = cache.get_seq(0)?.map(|s| s.map(|s| s.len())).collect::<Result<_, _>>()?;
/// assert_eq!(lens, [4, 4, 2]);
/// # Ok::<(), pagecache::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct Chunks<'a, D> {
    cache: &'a PageCache<D>,
    addr: u64,
    size: u64,
    failed: bool,
    /// The cache's version when the iterator was made: every slice it
    /// yields is of this one.
    version: u64,
}

impl<'a, D> Chunks<'a, D> {
    pub(crate) fn new(cache: &'a PageCache<D>, addr: u64, size: u64) -> Self {
        Chunks {
            cache,
            addr,
            size,
            failed: false,
            version: cache.stable_version(),
        }
    }
}

impl<D: ReadAt> Iterator for Chunks<'_, D> {
    type Item = Result<Slice, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.addr >= self.size {
            return None;
        }
        let shift = self.cache.page_size().trailing_zeros();
        let page = self.addr >> shift;
        match self.cache.page_slice(page, self.size) {
            Ok(_) if !self.cache.version_unchanged(self.version) => {
                self.failed = true;
                Some(Err(Error::VersionChanged))
            }
            Ok(page_slice) => {
                let chunk = page_slice.view_slice(self.addr);
                self.addr = page_slice.end();
                Some(Ok(chunk))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed || self.addr >= self.size {
            return (0, Some(0));
        }
        let shift = self.cache.page_size().trailing_zeros();
        let pages = ((self.size - 1) >> shift) - (self.addr >> shift) + 1;
        let pages = usize::try_from(pages).unwrap_or(usize::MAX);
        // A device error ends the iteration early.
        (pages.min(1), Some(pages))
    }
}

impl<D: ReadAt> std::iter::FusedIterator for Chunks<'_, D> {}

/// The bytes of a range of the device (see [`PageCache::iter`]).
///
/// ```
/// use blockdev::MemDevice;
///
/// let cache = pagecache::PageCache::builder().page_size(2)
///     .build(MemDevice::from_vec(vec![1, 2, 3]))?;
/// let sum: u32 = cache.iter(0, None)?.map(|b| b.map(u32::from)).sum::<Result<u32, _>>()?;
/// assert_eq!(sum, 6);
/// # Ok::<(), pagecache::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct Bytes<'a, D> {
    chunks: Chunks<'a, D>,
    current: Option<Slice>,
    index: usize,
    remaining: u64,
}

impl<'a, D> Bytes<'a, D> {
    pub(crate) fn new(chunks: Chunks<'a, D>, len: u64) -> Self {
        Bytes {
            chunks,
            current: None,
            index: 0,
            remaining: len,
        }
    }
}

impl<D: ReadAt> Iterator for Bytes<'_, D> {
    type Item = Result<u8, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(&byte) = self
                .current
                .as_ref()
                .and_then(|s| s.bytes().get(self.index))
            {
                self.index += 1;
                self.remaining -= 1;
                return Some(Ok(byte));
            }
            match self.chunks.next()? {
                Ok(slice) => {
                    self.current = Some(slice);
                    self.index = 0;
                }
                Err(err) => {
                    self.remaining = 0;
                    return Some(Err(err));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        // A device error ends the iteration early.
        (remaining.min(1), Some(remaining))
    }
}

impl<D: ReadAt> std::iter::FusedIterator for Bytes<'_, D> {}
