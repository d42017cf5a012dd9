//! `Regions`: one address space in which every cached object version has a
//! range of its own, and the `ReadAt` device that fills it from the inner
//! store.
//!
//! The page cache and the disk tier each cache one device; giving every
//! (location, ETag) its own never-reused range of that device lets one RAM
//! budget and one disk budget serve every object, and makes mixing two
//! versions impossible by construction: a new version lives at new
//! addresses, so no page or chunk of the old one can be found for it.
//!
//! Each version's range is read by an objectdev `ObjectDevice` pinned to
//! that version's ETag; read-ahead hints of the tiers above go to it, so
//! the read-ahead is objectdev's (background ranged GETs into a bounded
//! buffer, tagged by ETag).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use blockdev::ReadAt;
use object_store::path::Path;
use object_store::{Attributes, ObjectMeta, ObjectStore};
use objectdev::{ObjectDevice, ReadAheadStats};
use parking_lot::Mutex;

use crate::devices::{Devices, add_stats};

/// Size of the address space the device reports: far more than any run of
/// object versions will use (2^62 bytes), and it never changes, so the
/// page cache learns it once.
pub(crate) const ADDRESS_SPACE: u64 = 1 << 62;

/// Versions that read ahead at once (readers scanning different objects
/// side by side); each holds an equal share of the read-ahead bound, so
/// together they never hold more than it.
pub(crate) const READERS: usize = 4;

/// One version of one object, as the cache knows it.
#[derive(Debug)]
pub(crate) struct Version {
    /// First address of the version's range.
    pub(crate) base: u64,
    /// The metadata of the HEAD that introduced it (location, size, ETag).
    pub(crate) meta: ObjectMeta,
    /// The attributes of that HEAD, returned with every cached GET.
    pub(crate) attributes: Attributes,
    /// Reads this version's bytes (`If-Match` its ETag); replaced by one
    /// with a share of the read-ahead bound when the version starts
    /// reading ahead, and back when it stops.
    device: Mutex<Arc<ObjectDevice>>,
    /// End of the latest request read through the store (`u64::MAX`
    /// before the first).
    last_end: AtomicU64,
    /// Whether the latest request continued the one before it.
    sequential: AtomicBool,
}

impl Version {
    fn device(&self) -> Arc<ObjectDevice> {
        self.device.lock().clone()
    }

    /// Records a request for `start..end` of the object, about to be read.
    /// Read-ahead hints for this version are passed on only while requests
    /// continue one another (the next starting at most `gap` bytes after
    /// the last ended): a caller of object_store names each range it
    /// wants, so one large request, however long, says nothing of the
    /// next (Parquet reads column chunks, and fetching past one would
    /// fetch columns nobody asked for).
    pub(crate) fn note_request(&self, start: u64, end: u64, gap: u64) {
        let last = self.last_end.swap(end, Relaxed);
        let continues = start >= last && start - last <= gap;
        self.sequential.store(continues, Relaxed);
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
    /// The versions reading ahead, the most recently hinted last; at most
    /// [`READERS`].
    readers: VecDeque<Arc<Version>>,
    /// Bytes all versions together may hold fetched ahead.
    read_ahead: u64,
    /// What devices no longer in use read ahead.
    retired: ReadAheadStats,
}

impl State {
    fn forget(&mut self, version: &Version, align: u64) {
        self.by_base.remove(&version.base);
        self.dead
            .push(version.base..version.base + padded_len(version.meta.size, align));
        self.readers.retain(|reader| reader.base != version.base);
        // Its buffer goes with it, and its GETs in flight are aborted.
        let device = version.device();
        device.limit_read_ahead(0);
        add_stats(&mut self.retired, retired_stats(&device));
    }
}

/// What `device`, no longer in use, read ahead: it holds nothing for the
/// cache any more.
fn retired_stats(device: &ObjectDevice) -> ReadAheadStats {
    let mut stats = device.read_ahead_stats();
    stats.buffered_bytes = 0;
    stats
}

fn padded_len(size: u64, align: u64) -> u64 {
    size.max(1).div_ceil(align).saturating_mul(align)
}

/// Whether a read failed because the store holds another version of the
/// object (or none) now.
fn is_changed(error: &io::Error) -> bool {
    matches!(
        objectdev::Error::from_io(error),
        Some(
            objectdev::Error::ObjectChanged { .. }
                | objectdev::Error::Store(object_store::Error::NotFound { .. })
        )
    )
}

/// The map of cached versions, and the device over their address space.
#[derive(Debug)]
pub(crate) struct Regions {
    store: Arc<dyn ObjectStore>,
    /// Every range starts on a chunk boundary, so a chunk of the disk tier
    /// never holds bytes of two objects.
    align: u64,
    /// The bound given when built: `limit_read_ahead` never raises above it.
    max_read_ahead: u64,
    devices: Devices,
    state: Mutex<State>,
}

impl Regions {
    /// The versions of `store`'s objects, each starting on a multiple of
    /// `align`, holding at most `read_ahead` bytes fetched ahead in all.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        align: u64,
        read_ahead: u64,
    ) -> io::Result<Self> {
        Ok(Regions {
            store,
            align,
            max_read_ahead: read_ahead,
            devices: Devices::new()?,
            state: Mutex::new(State {
                read_ahead,
                ..State::default()
            }),
        })
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

    /// What read-ahead did, over every version's device so far.
    pub(crate) fn read_ahead_stats(&self) -> ReadAheadStats {
        let state = self.state.lock();
        let mut total = state.retired;
        for version in state.by_base.values() {
            add_stats(&mut total, version.device().read_ahead_stats());
        }
        total
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
        let device = self.devices.make(&self.store, &meta, 0)?;
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
            device: Mutex::new(Arc::new(device)),
            last_end: AtomicU64::new(u64::MAX),
            sequential: AtomicBool::new(false),
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

    /// The live version whose object holds address `pos`.
    fn holding(&self, pos: u64) -> Option<Arc<Version>> {
        let state = self.state.lock();
        let (&base, version) = state.by_base.range(..=pos).next_back()?;
        (pos - base < version.meta.size).then(|| version.clone())
    }

    /// The device of `version` with its share of the read-ahead bound,
    /// given to it now if it had none (taken from the least recently
    /// hinted version when [`READERS`] read ahead already); `None` when
    /// the version is gone or read-ahead is off.
    fn reader(&self, version: &Arc<Version>) -> Option<Arc<ObjectDevice>> {
        let mut state = self.state.lock();
        if !state.by_base.contains_key(&version.base) {
            return None;
        }
        if let Some(at) = state.readers.iter().position(|r| r.base == version.base) {
            let reader = state.readers.remove(at)?;
            state.readers.push_back(reader);
            return Some(version.device());
        }
        let share = state.read_ahead / READERS as u64;
        if share == 0 {
            return None;
        }
        if state.readers.len() >= READERS
            && let Some(oldest) = state.readers.pop_front()
        {
            self.reshape(&mut state, &oldest, 0);
        }
        self.reshape(&mut state, version, share);
        state.readers.push_back(version.clone());
        Some(version.device())
    }

    /// Gives `version` a device holding at most `read_ahead` bytes ahead;
    /// the old one drops what it holds and aborts its GETs in flight.
    fn reshape(&self, state: &mut State, version: &Version, read_ahead: u64) {
        let Some(device) = self.devices.make(&self.store, &version.meta, read_ahead) else {
            return;
        };
        let old = std::mem::replace(&mut *version.device.lock(), Arc::new(device));
        old.limit_read_ahead(0);
        add_stats(&mut state.retired, retired_stats(&old));
    }
}

impl ReadAt for Regions {
    /// Fills `buf` with the bytes at `pos`: each version's part through its
    /// device (bytes read ahead, or ranged GETs `If-Match` its ETag),
    /// zeros between objects and for versions found changed, which are
    /// dropped instead; the caller sees that its version is gone and reads
    /// again. Blocks: call it where blocking is allowed (`spawn_blocking`).
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || pos >= ADDRESS_SPACE {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(ADDRESS_SPACE - pos).unwrap_or(usize::MAX));
        let buf = &mut buf[..len];
        buf.fill(0);
        for (version, range) in self.overlapping(pos, pos + len as u64) {
            let at = (version.base + range.start - pos) as usize;
            let out = &mut buf[at..at + (range.end - range.start) as usize];
            match version.device().read_exact_at(range.start, out) {
                Ok(()) => {}
                Err(e) if is_changed(&e) => {
                    out.fill(0);
                    self.forget_version(&version);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(ADDRESS_SPACE)
    }

    /// Passes the hint to the device of the version holding `pos`, clipped
    /// to its object (the addresses after it are other objects'), when
    /// that version's requests continue one another.
    fn will_need(&self, pos: u64, len: u64) {
        let Some(version) = self.holding(pos) else {
            return;
        };
        if !version.sequential.load(Relaxed) {
            return;
        }
        let start = pos - version.base;
        let len = len.min(version.meta.size - start);
        if let Some(device) = self.reader(&version) {
            device.will_need(start, len);
        }
    }

    /// Caps the bytes all versions together hold fetched ahead (never
    /// above the bound the store was built with); when the cap changes,
    /// every version stops reading ahead, and the next ones to be hinted
    /// get shares of the new cap.
    fn limit_read_ahead(&self, max_bytes: u64) {
        let mut state = self.state.lock();
        let cap = max_bytes.min(self.max_read_ahead);
        if cap == state.read_ahead {
            return; // a cache above repeating its bound changes nothing
        }
        state.read_ahead = cap;
        let readers = std::mem::take(&mut state.readers);
        for reader in readers {
            self.reshape(&mut state, &reader, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    const ALIGN: u64 = 64 << 10;
    const LEN: u64 = 4 << 20;

    /// `Regions` over `objects` objects of `LEN` bytes in memory, holding
    /// at most `read_ahead` bytes ahead, and the objects' metadata.
    fn regions(objects: usize, read_ahead: u64) -> (Regions, Vec<ObjectMeta>) {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let metas = (0..objects)
            .map(|i| {
                let path = Path::from(format!("o{i}"));
                let bytes = PutPayload::from(vec![i as u8; LEN as usize]);
                runtime.block_on(store.put(&path, bytes)).unwrap();
                runtime.block_on(store.head(&path)).unwrap()
            })
            .collect();
        (Regions::new(store, ALIGN, read_ahead).unwrap(), metas)
    }

    /// Inserts `meta`, makes it look read sequentially and hints all of it.
    fn hint_all(regions: &Regions, meta: &ObjectMeta) {
        let epoch = regions.write_epoch();
        let version = regions
            .insert(meta.clone(), Attributes::new(), epoch)
            .unwrap();
        version.note_request(0, ALIGN, ALIGN);
        version.note_request(ALIGN, 2 * ALIGN, ALIGN);
        regions.will_need(version.base, LEN);
    }

    #[test]
    fn versions_reading_ahead_together_hold_at_most_the_bound() {
        let bound = 2 << 20;
        let (regions, metas) = regions(READERS + 2, bound);
        for meta in &metas {
            hint_all(&regions, meta);
            let held = regions.read_ahead_stats().buffered_bytes;
            assert!(held <= bound, "{held} bytes held ahead, bound {bound}");
        }
        let stats = regions.read_ahead_stats();
        assert!(stats.gets > 0 && stats.buffered_bytes > 0, "{stats:?}");
    }

    #[test]
    fn a_limit_of_zero_applies_to_current_and_future_versions() {
        let (regions, metas) = regions(2, 2 << 20);
        hint_all(&regions, &metas[0]);
        let before = regions.read_ahead_stats().gets;
        assert!(before > 0);
        regions.limit_read_ahead(0);
        assert_eq!(regions.read_ahead_stats().buffered_bytes, 0);
        hint_all(&regions, &metas[0]);
        hint_all(&regions, &metas[1]);
        assert_eq!(regions.read_ahead_stats().gets, before);
    }

    #[test]
    fn a_request_that_does_not_continue_the_last_one_hints_nothing() {
        let (regions, metas) = regions(1, 2 << 20);
        let version = regions
            .insert(metas[0].clone(), Attributes::new(), 0)
            .unwrap();
        version.note_request(0, ALIGN, ALIGN);
        version.note_request(3 * ALIGN, 4 * ALIGN, ALIGN);
        regions.will_need(version.base + 4 * ALIGN, LEN);
        assert_eq!(regions.read_ahead_stats().gets, 0);
    }
}
