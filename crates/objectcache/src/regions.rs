//! `Regions`: one address space in which every cached object version has a
//! range of its own, and the `ReadAt` device that fills it from the inner
//! store.
//!
//! The page cache and the disk tier each cache one device; giving every
//! (location, ETag) its own never-reused range of that device lets one RAM
//! budget and one disk budget serve every object, and makes mixing two
//! versions impossible by construction: a new version lives at new
//! addresses, so no page or chunk of the old one can be found for it.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Range;
use std::sync::Arc;

use blockdev::ReadAt;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use object_store::path::Path;
use object_store::{Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore};
use parking_lot::Mutex;
use tokio::runtime::Handle;

/// Size of the address space the device reports: far more than any run of
/// object versions will use (2^62 bytes), and it never changes, so the
/// page cache learns it once.
pub(crate) const ADDRESS_SPACE: u64 = 1 << 62;

/// Bytes of one GET when a device read is split (as objectdev does), so a
/// long cold read is several ranged GETs in flight at once.
const PART_SIZE: u64 = 8 << 20;

/// Most GETs of one device read in flight at once.
const MAX_PARTS_IN_FLIGHT: usize = 16;

/// One version of one object, as the cache knows it.
#[derive(Debug)]
pub(crate) struct Version {
    /// First address of the version's range.
    pub(crate) base: u64,
    /// The metadata of the HEAD that introduced it (location, size, ETag).
    pub(crate) meta: ObjectMeta,
    /// The attributes of that HEAD, returned with every cached GET.
    pub(crate) attributes: Attributes,
}

impl Version {
    /// The ETag; every version in the map has one.
    fn e_tag(&self) -> Option<&str> {
        self.meta.e_tag.as_deref()
    }
}

#[derive(Debug, Default)]
struct State {
    by_location: HashMap<Path, Arc<Version>>,
    by_base: BTreeMap<u64, Arc<Version>>,
    next_base: u64,
    /// Bumped by every write through the store: a HEAD answered before a
    /// write finished must not be taken as the current version after it.
    write_epoch: u64,
    /// Address ranges of dropped versions whose pages and chunks the
    /// caches above still have to drop.
    dead: Vec<Range<u64>>,
}

impl State {
    fn forget(&mut self, version: &Version, align: u64) {
        self.by_base.remove(&version.base);
        self.dead
            .push(version.base..version.base + padded_len(version.meta.size, align));
    }
}

fn padded_len(size: u64, align: u64) -> u64 {
    size.max(1).div_ceil(align).saturating_mul(align)
}

/// The map of cached versions, and the device over their address space.
#[derive(Debug)]
pub(crate) struct Regions {
    store: Arc<dyn ObjectStore>,
    /// Every range starts on a chunk boundary, so a chunk of the disk tier
    /// never holds bytes of two objects.
    align: u64,
    state: Mutex<State>,
}

impl Regions {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, align: u64) -> Self {
        Regions {
            store,
            align,
            state: Mutex::new(State::default()),
        }
    }

    /// The version cached for `location`.
    pub(crate) fn lookup(&self, location: &Path) -> Option<Arc<Version>> {
        self.state.lock().by_location.get(location).cloned()
    }

    /// Whether `version` is still the one cached (not dropped since).
    pub(crate) fn is_live(&self, version: &Version) -> bool {
        self.state.lock().by_base.contains_key(&version.base)
    }

    /// How many versions are cached.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().by_location.len()
    }

    /// The write epoch now (see [`insert`](Self::insert)).
    pub(crate) fn write_epoch(&self) -> u64 {
        self.state.lock().write_epoch
    }

    /// Takes `meta` as the current version of its location, replacing
    /// any other; `None` when a write went through since `epoch` was read,
    /// when the object has no ETag, or when the address space is used up.
    pub(crate) fn insert(
        &self,
        meta: ObjectMeta,
        attributes: Attributes,
        epoch: u64,
    ) -> Option<Arc<Version>> {
        meta.e_tag.as_ref()?;
        let mut state = self.state.lock();
        if state.write_epoch != epoch {
            return None;
        }
        if let Some(current) = state.by_location.get(&meta.location)
            && current.meta.e_tag == meta.e_tag
            && current.meta.size == meta.size
        {
            return Some(current.clone());
        }
        let base = state.next_base;
        let next = base
            .checked_add(padded_len(meta.size, self.align))
            .filter(|&next| next <= ADDRESS_SPACE)?;
        state.next_base = next;
        let location = meta.location.clone();
        let version = Arc::new(Version {
            base,
            meta,
            attributes,
        });
        state.by_base.insert(base, version.clone());
        if let Some(old) = state.by_location.insert(location, version.clone()) {
            state.forget(&old, self.align);
        }
        Some(version)
    }

    /// Drops what is cached for `location` because a write touches it.
    pub(crate) fn forget_for_write(&self, location: &Path) {
        let mut state = self.state.lock();
        state.write_epoch += 1;
        if let Some(old) = state.by_location.remove(location) {
            state.forget(&old, self.align);
        }
    }

    /// Drops `version` if it is still the one cached for its location
    /// (the store answered with another ETag).
    pub(crate) fn forget_version(&self, version: &Version) {
        let mut state = self.state.lock();
        let current = state.by_location.get(&version.meta.location);
        if current.is_some_and(|current| current.base == version.base) {
            state.by_location.remove(&version.meta.location);
            state.forget(version, self.align);
        }
    }

    /// The address ranges of dropped versions not yet taken.
    pub(crate) fn take_dead(&self) -> Vec<Range<u64>> {
        std::mem::take(&mut self.state.lock().dead)
    }

    /// The live versions overlapping `pos..end`, each with the part of the
    /// object inside it.
    fn overlapping(&self, pos: u64, end: u64) -> Vec<(Arc<Version>, Range<u64>)> {
        let state = self.state.lock();
        let mut found = Vec::new();
        for (&base, version) in state.by_base.range(..end).rev() {
            let object_end = base + version.meta.size;
            if object_end <= pos {
                break; // ranges are disjoint and sorted: all earlier ones end before `pos`
            }
            let start = pos.max(base) - base;
            let stop = end.min(object_end) - base;
            if start < stop {
                found.push((version.clone(), start..stop));
            }
        }
        found
    }
}

/// Why one ranged GET of the device gave no bytes.
enum PartError {
    /// The store holds another version (or none) now.
    Changed,
    Failed(objectdev::Error),
}

async fn get_part(
    store: &dyn ObjectStore,
    version: &Version,
    range: Range<u64>,
) -> Result<Bytes, PartError> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        if_match: version.meta.e_tag.clone(),
        ..GetOptions::default()
    };
    let result = match store.get_opts(&version.meta.location, options).await {
        Ok(result) => result,
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            return Err(PartError::Changed);
        }
        Err(e) => return Err(PartError::Failed(objectdev::Error::Store(e))),
    };
    // Checked before any byte is taken: a server that ignores If-Match
    // still names the version it served.
    if result.meta.e_tag.as_deref() != version.e_tag() || result.meta.size != version.meta.size {
        return Err(PartError::Changed);
    }
    let bytes = result
        .bytes()
        .await
        .map_err(|e| PartError::Failed(objectdev::Error::Store(e)))?;
    if bytes.len() as u64 != range.end - range.start {
        return Err(PartError::Failed(objectdev::Error::ShortResponse {
            start: range.start,
            expected: range.end - range.start,
            got: bytes.len() as u64,
        }));
    }
    Ok(bytes)
}

impl ReadAt for Regions {
    /// Fills `buf` with the bytes at `pos`: object bytes from ranged GETs
    /// (`If-Match` the version's ETag), zeros between objects and for
    /// versions found changed, which are dropped instead; the caller sees
    /// that its version is gone and reads again. Must run on a thread
    /// with a tokio runtime context that may block (`spawn_blocking`).
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || pos >= ADDRESS_SPACE {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(ADDRESS_SPACE - pos).unwrap_or(usize::MAX));
        let buf = &mut buf[..len];
        buf.fill(0);
        let end = pos + len as u64;
        let mut parts = Vec::new();
        for (version, range) in self.overlapping(pos, end) {
            let mut start = range.start;
            while start < range.end {
                let stop = range.end.min(start.saturating_add(PART_SIZE));
                parts.push((version.clone(), start..stop));
                start = stop;
            }
        }
        if parts.is_empty() {
            return Ok(len);
        }
        let handle = Handle::try_current().map_err(|_| {
            io::Error::other("objectcache: the cache was read outside a tokio runtime context")
        })?;
        let store = self.store.as_ref();
        let gets = parts.into_iter().map(|(version, range)| async move {
            let result = get_part(store, &version, range.clone()).await;
            (version, range, result)
        });
        let answers: Vec<_> = handle.block_on(
            stream::iter(gets)
                .buffer_unordered(MAX_PARTS_IN_FLIGHT)
                .collect(),
        );
        for (version, range, result) in answers {
            match result {
                Ok(bytes) => {
                    let at = (version.base + range.start - pos) as usize;
                    buf[at..at + bytes.len()].copy_from_slice(&bytes);
                }
                Err(PartError::Changed) => self.forget_version(&version),
                Err(PartError::Failed(e)) => return Err(e.into()),
            }
        }
        Ok(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(ADDRESS_SPACE)
    }
}
