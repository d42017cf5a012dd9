//! `Tiers`: the synchronous stack the store reads through, RAM pages
//! (`PageCache`) over the encrypted disk tier (`SpillTier`) over the
//! address space of cached versions. Everything here blocks: the store
//! calls it from `spawn_blocking` only.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use pagecache::{ByteSource, PageCache};
use spillcache::SpillTier;

use crate::regions::{Regions, Version};

/// The RAM and disk tiers over one [`Regions`].
#[derive(Debug)]
pub(crate) struct Tiers {
    pages: PageCache<SpillTier<Arc<Regions>>>,
}

impl Tiers {
    pub(crate) fn new(pages: PageCache<SpillTier<Arc<Regions>>>) -> Self {
        Tiers { pages }
    }

    pub(crate) fn pages(&self) -> &PageCache<SpillTier<Arc<Regions>>> {
        &self.pages
    }

    fn regions(&self) -> &Regions {
        self.pages.device().device()
    }

    /// The bytes of `ranges` (inside the object) of `version`. The caller
    /// checks afterwards that the version is still live: bytes read from a
    /// version dropped meanwhile may be zeros.
    pub(crate) fn read(
        &self,
        version: &Version,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, pagecache::Error> {
        let read = |range: &Range<u64>| {
            let mut buf = vec![0; (range.end - range.start) as usize];
            self.pages
                .read_bytes_at(version.base + range.start, &mut buf)?;
            Ok(Bytes::from(buf))
        };
        let result = ranges.iter().map(read).collect();
        self.drop_dead();
        result
    }

    /// Drops the pages and chunks of versions dropped from the map. A load
    /// racing this may still add a page or chunk of a dead version: it is
    /// never found again (no version reuses addresses) and leaves by
    /// eviction like any cold entry.
    pub(crate) fn drop_dead(&self) {
        for range in self.regions().take_dead() {
            let len = range.end - range.start;
            // The device's size never changes, so refreshing it cannot fail.
            let _ = self.pages.invalidate(range.start, len);
            self.pages.device().invalidate(range.start, len);
        }
    }
}
