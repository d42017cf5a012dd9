//! `SpillCache`: the public API.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blockdev::{ReadAt, WriteAt};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::builder::Builder;
use crate::cipher::{self, ReadFailure, Seal};
use crate::config::{Config, FileFactory};
use crate::entry::Place;
use crate::error::{Error, Result, copy_io_error};
use crate::handoff;
use crate::recycle::Recycler;
use crate::state::{Keep, Shared, State};
use crate::stats::Stats;
use crate::writer;

/// A key-to-bytes cache that keeps each value in RAM until its writer
/// thread has spilled it, encrypted, into one nameless file; from then on
/// the value is read back from the file.
///
/// All methods take `&self`; share the cache between threads with an `Arc`.
/// Dropping it stops and joins the writer thread and closes the file.
///
/// ```
/// use std::time::Duration;
/// use spillcache::SpillCache;
///
/// let cache = SpillCache::new(std::env::temp_dir())?;
/// cache.add(b"image:1", &[42u8; 4096])?;
/// assert!(cache.wait_for_write(Duration::from_secs(5))?); // now on disk, encrypted
/// assert_eq!(cache.get(b"image:1")?.as_deref(), Some(&[42u8; 4096][..]));
/// assert_eq!(cache.size_on_disk(), 4096);
/// assert!(cache.remove(b"image:1"));
/// assert_eq!(cache.get(b"image:1")?, None);
/// # Ok::<(), spillcache::Error>(())
/// ```
pub struct SpillCache<D = File>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    shared: Arc<Shared<D>>,
    writer: Option<JoinHandle<()>>,
}

/// How long an `add` may wait for room.
#[derive(Clone, Copy, Debug)]
enum Wait {
    No,
    Until(Instant),
    Forever,
}

/// Values up to this long are copied under the lock, once room is made
/// for them: a second round of the lock would cost more than the copy.
/// Longer ones are copied without it, their room held meanwhile.
const COPY_UNDER_LOCK_MAX: usize = 16 << 10;

/// Room held under a bound for a value a caller copies in without the
/// lock; given back if the copy never arrives (a panic while copying).
struct HeldRoom<'a, D> {
    shared: &'a Shared<D>,
    keep: Keep,
    len: u64,
}

impl<D> HeldRoom<'_, D> {
    /// Gives the room back as the value it was held for is stored.
    fn release(self, state: &mut State<D>) {
        state.release_room(self.keep, self.len);
        std::mem::forget(self);
    }
}

impl<D> Drop for HeldRoom<'_, D> {
    fn drop(&mut self) {
        self.shared.state.lock().release_room(self.keep, self.len);
        self.shared.room.notify_all();
    }
}

/// What a lookup found, copied out from under the lock.
enum Lookup<D> {
    Missing,
    Ram(Arc<[u8]>),
    Disk(DiskRead<D>),
}

/// Everything needed to read one written value without the lock.
struct DiskRead<D> {
    file: Arc<D>,
    epoch: u64,
    slot: usize,
    generation: u64,
    offset: u64,
    len: usize,
    seal: Seal,
}

impl SpillCache<File> {
    /// A cache with default options whose file is an anonymous file in
    /// `dir` (see [`Builder`] for the options).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created in `dir` or the writer
    /// thread cannot start.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// assert_eq!(cache.len(), 0);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        Builder::new(dir).build()
    }

    /// A [`Builder`] for a cache whose files are anonymous files in `dir`.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::builder(std::env::temp_dir())
    ///     .defrag_factor(4.0)
    ///     .build()?;
    /// # drop(cache);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn builder(dir: impl Into<PathBuf>) -> Builder<File> {
        Builder::new(dir)
    }
}

impl<D: ReadAt + WriteAt + Send + Sync + 'static> Builder<D> {
    /// Creates the first file and starts the writer thread.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a defrag factor below 1 (or not finite),
    /// a retry minimum of zero or above the maximum, or a retry maximum above
    /// an hour; [`Error::Io`] when the file
    /// cannot be created or the thread cannot start.
    ///
    /// ```
    /// let missing = std::env::temp_dir().join("spillcache-no-such-dir/x/y");
    /// let result = spillcache::Builder::new(missing).build();
    /// assert!(matches!(result, Err(spillcache::Error::Io(_))));
    /// ```
    pub fn build(self) -> Result<SpillCache<D>> {
        self.config.validate()?;
        SpillCache::start(self.factory, self.config)
    }
}

impl<D> SpillCache<D>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    pub(crate) fn start(factory: Box<dyn FileFactory<File = D>>, config: Config) -> Result<Self> {
        let file = factory.create()?;
        // Only plain files can give space back, a block at a time; the size
        // is the one `blockdev::punch_hole` aligns to (every file the
        // factory makes is on the same file system).
        let punch_block = WriteAt::as_file(&file).map_or(u64::MAX, |file| {
            file.metadata().map_or(4096, |meta| meta.blksize().max(1))
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(file, &config, punch_block)),
            work: Condvar::new(),
            progress: Condvar::new(),
            room: Condvar::new(),
            factory,
            config,
            recycler: Recycler::default(),
            read_helper: OnceLock::new(),
        });
        let writer = writer::spawn(Arc::clone(&shared))?;
        Ok(SpillCache {
            shared,
            writer: Some(writer),
        })
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        let max = self.shared.config.max_key_len;
        if key.len() > max {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max,
            });
        }
        Ok(())
    }

    /// Stores a copy of `data` under `key`, replacing any earlier value; the
    /// writer thread spills it to the file soon after. Until then (and if
    /// writing fails) it is served from RAM.
    ///
    /// When the bytes waiting to be written would pass
    /// [`Builder::max_pending_bytes`], it first waits (with no deadline) for
    /// the writer to make room; see [`try_add`](Self::try_add) and
    /// [`add_timeout`](Self::add_timeout) for calls that do not wait long.
    /// It copies `data` only once there is room, so a waiting `add` holds
    /// no copy of it.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] when `key` is longer than the maximum;
    /// [`Error::WriterStopped`] when it would wait but the writer is gone.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"first")?;
    /// cache.add(b"k", b"second")?;
    /// assert_eq!(cache.get(b"k")?.as_deref(), Some(&b"second"[..]));
    /// assert_eq!(cache.total_size(), 6);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn add(&self, key: &[u8], data: &[u8]) -> Result<()> {
        self.check_key(key)?;
        self.insert_copy(key, data, Keep::Spill, Wait::Forever)
    }

    /// Like [`add`](Self::add), but shares `data` instead of copying it:
    /// the cache keeps a reference until the value is written, so a caller
    /// that already holds its bytes in an `Arc<[u8]>` saves a copy (for a
    /// 64 MiB value, a pass over 64 MiB of RAM before the writer can start).
    /// `Arc<[u8]>` is immutable, so the value cannot change under the cache.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// let frame: Arc<[u8]> = vec![9u8; 1 << 20].into();
    /// cache.add_shared(b"frame", Arc::clone(&frame))?; // no copy
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.get(b"frame")?.as_deref(), Some(&frame[..]));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn add_shared(&self, key: &[u8], data: Arc<[u8]>) -> Result<()> {
        self.check_key(key)?;
        let state = self.shared.state.lock();
        let state = self.make_room(state, key, data.len() as u64, Keep::Spill, Wait::Forever)?;
        self.store(state, key, data, Keep::Spill, None);
        Ok(())
    }

    /// Like [`add`](Self::add), but when the cache is full (the value would
    /// take the bytes waiting to be written past
    /// [`Builder::max_pending_bytes`]) it returns at once instead of waiting,
    /// having copied and allocated nothing of `data`.
    ///
    /// # Errors
    /// [`Error::Full`] when the cache is full (nothing is stored), else as
    /// [`add`](Self::add).
    ///
    /// ```
    /// use std::time::Duration;
    /// use blockdev::{Errno, Fault, FaultyDevice, MemDevice};
    ///
    /// // A disk that is full: nothing written ever leaves RAM.
    /// let cache = spillcache::Builder::with_file_factory(|| {
    ///     let disk = FaultyDevice::new(MemDevice::new());
    ///     disk.fail_writes(Fault::Always(Errno::NOSPC));
    ///     Ok(disk)
    /// })
    /// .max_pending_bytes(100)
    /// .build()?;
    /// cache.try_add(b"a", &[0u8; 60])?;
    /// let full = cache.try_add(b"b", &[0u8; 60]).unwrap_err();
    /// assert!(matches!(full, spillcache::Error::Full { waiting: 60, len: 60, limit: 100 }));
    /// cache.try_add(b"a", &[0u8; 90])?; // an overwrite replaces the waiting bytes
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn try_add(&self, key: &[u8], data: &[u8]) -> Result<()> {
        self.check_key(key)?;
        self.insert_copy(key, data, Keep::Spill, Wait::No)
    }

    /// Like [`add`](Self::add), but waits at most `timeout` for room (and,
    /// like `add`, copies `data` only once there is room).
    ///
    /// # Errors
    /// [`Error::Full`] when there was no room by the timeout (nothing is
    /// stored), else as [`add`](Self::add).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::builder(std::env::temp_dir())
    ///     .max_pending_bytes(1 << 20)
    ///     .build()?;
    /// cache.add_timeout(b"k", &[3u8; 1000], Duration::from_secs(5))?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn add_timeout(&self, key: &[u8], data: &[u8], timeout: Duration) -> Result<()> {
        let wait = match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Forever,
        };
        self.check_key(key)?;
        self.insert_copy(key, data, Keep::Spill, wait)
    }

    /// Stores a copy of `data` under `key` in RAM only: it is never written
    /// to the file.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] when `key` is longer than the maximum;
    /// [`Error::MemoryOnlyFull`] past [`Builder::max_memory_only_bytes`]
    /// (checked before `data` is copied).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add_memory_only(b"k", b"secret")?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.size_on_disk(), 0);
    /// assert_eq!(cache.get(b"k")?.as_deref(), Some(&b"secret"[..]));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn add_memory_only(&self, key: &[u8], data: &[u8]) -> Result<()> {
        self.check_key(key)?;
        self.insert_copy(key, data, Keep::MemoryOnly, Wait::No)
    }

    /// Stores a copy of `data` (its key checked) under `key`: room first
    /// (waiting as `wait` allows), then the copy, so a caller that waits or
    /// is refused holds no copy of its value.
    fn insert_copy(&self, key: &[u8], data: &[u8], keep: Keep, wait: Wait) -> Result<()> {
        let len = data.len() as u64;
        let state = self.shared.state.lock();
        let mut state = self.make_room(state, key, len, keep, wait)?;
        if data.len() <= COPY_UNDER_LOCK_MAX {
            // Cheaper than taking the lock twice.
            let copy = self.copy_of(data, keep);
            self.store(state, key, copy, keep, None);
            return Ok(());
        }
        // Large values are copied without the lock, so they do not stall
        // others; the room stays held for them meanwhile.
        state.hold_room(keep, len);
        drop(state);
        let held = HeldRoom {
            shared: &self.shared,
            keep,
            len,
        };
        let copy = self.copy_of(data, keep);
        self.store(self.shared.state.lock(), key, copy, keep, Some(held));
        Ok(())
    }

    /// A copy of `data`; a value to be written goes into a spare buffer
    /// of its length when there is one.
    fn copy_of(&self, data: &[u8], keep: Keep) -> Arc<[u8]> {
        match keep {
            Keep::Spill => self.shared.recycler.copy_of(data),
            Keep::MemoryOnly => Arc::from(data),
        }
    }

    /// Returns the lock once a value of `len` bytes for `key` fits under
    /// its bound (held room counted), having waited as `wait` allows;
    /// memory-only values (and empty ones, which are kept in RAM whatever
    /// `keep` says) never wait.
    fn make_room<'a>(
        &self,
        mut state: MutexGuard<'a, State<D>>,
        key: &[u8],
        len: u64,
        keep: Keep,
        wait: Wait,
    ) -> Result<MutexGuard<'a, State<D>>> {
        let config = &self.shared.config;
        if keep == Keep::MemoryOnly || len == 0 {
            let would_be = state.memory_only_with(key, len);
            if would_be > config.max_memory_only_bytes {
                return Err(Error::MemoryOnlyFull {
                    would_be,
                    limit: config.max_memory_only_bytes,
                });
            }
        } else {
            self.wait_for_room(&mut state, key, len, wait)?;
        }
        Ok(state)
    }

    /// Stores `data` under `key` (its room made, and `held` for it given
    /// back), then wakes whoever has news.
    fn store(
        &self,
        mut state: MutexGuard<'_, State<D>>,
        key: &[u8],
        data: Arc<[u8]>,
        keep: Keep,
        held: Option<HeldRoom<'_, D>>,
    ) {
        let dirty_before = state.dirty;
        let room_before = state.pending_bytes + state.held_pending;
        if let Some(held) = held {
            held.release(&mut state);
        }
        let wake_writer = state.insert(key, data, keep);
        if state.pending_bytes + state.held_pending < room_before {
            // A waiting value was replaced by a smaller or unwritten one.
            self.shared.room.notify_all();
        }
        let wake_waiters = dirty_before > 0 && state.dirty == 0;
        drop(state);
        if wake_writer {
            self.shared.work.notify_one();
        }
        if wake_waiters {
            self.shared.progress.notify_all();
        }
    }

    /// Waits until a dirty value of `len` bytes for `key` fits under the
    /// bound (or nothing else waits or is held), as `wait` allows.
    fn wait_for_room(
        &self,
        state: &mut MutexGuard<'_, State<D>>,
        key: &[u8],
        len: u64,
        wait: Wait,
    ) -> Result<()> {
        let limit = self.shared.config.max_pending_bytes;
        let mut counted = false;
        loop {
            let (would_be, others) = state.pending_with(key, len);
            if would_be <= limit || others == 0 {
                return Ok(());
            }
            if !state.writer_alive {
                return Err(Error::WriterStopped);
            }
            let deadline = match wait {
                Wait::No => {
                    return Err(Error::Full {
                        waiting: others,
                        len,
                        limit,
                    });
                }
                Wait::Until(deadline) => Some(deadline),
                Wait::Forever => None,
            };
            if !counted {
                state.stats.room_waits += 1;
                counted = true;
            }
            match deadline {
                Some(deadline) => {
                    if self.shared.room.wait_until(state, deadline).timed_out() {
                        let (would_be, others) = state.pending_with(key, len);
                        if would_be <= limit || others == 0 {
                            return Ok(());
                        }
                        return Err(Error::Full {
                            waiting: others,
                            len,
                            limit,
                        });
                    }
                }
                None => self.shared.room.wait(state),
            }
        }
    }

    fn lookup(&self, key: &[u8]) -> Lookup<D> {
        let state = self.shared.state.lock();
        let Some(slot) = state.entries.slot_of(key) else {
            return Lookup::Missing;
        };
        let Some(entry) = state.entries.get(slot) else {
            return Lookup::Missing;
        };
        match &entry.place {
            Place::MemoryOnly(data)
            | Place::Dirty(data)
            | Place::OnDisk {
                ram_copy: Some(data),
                ..
            } => Lookup::Ram(Arc::clone(data)),
            Place::OnDisk {
                offset,
                seal,
                ram_copy: None,
            } => Lookup::Disk(DiskRead {
                file: Arc::clone(&state.file),
                epoch: state.file_epoch,
                slot,
                generation: entry.generation,
                offset: *offset,
                len: entry.len as usize,
                seal: Seal::clone(seal),
            }),
        }
    }

    /// Reads and decrypts a written value into `out` (`read.len` bytes)
    /// without the lock. `Ok(false)` means the entry changed meanwhile (the
    /// bytes read may belong to someone else) and the caller must look again.
    fn read_from_disk(
        &self,
        key: &[u8],
        read: &DiskRead<D>,
        out: &mut [u8],
        store_in_ram: bool,
    ) -> Result<bool> {
        let helper = if read.len >= cipher::SPLIT_MIN {
            self.shared
                .read_helper
                .get_or_init(|| handoff::ReadHelper::spawn().ok())
                .as_ref()
        } else {
            None
        };
        let result = handoff::read_sealed_shared(&read.file, read.offset, out, &read.seal, helper);
        let mut state = self.shared.state.lock();
        if result.is_ok() {
            if store_in_ram {
                state.keep_ram_copy(read.slot, read.generation, read.offset, read.epoch, out);
            }
            return Ok(true);
        }
        let unchanged = state.file_epoch == read.epoch
            && state.entries.get(read.slot).is_some_and(|e| {
                e.generation == read.generation
                    && matches!(e.place, Place::OnDisk { offset, .. } if offset == read.offset)
            });
        if !unchanged {
            return Ok(false);
        }
        match result {
            Ok(()) => Ok(true),
            Err(ReadFailure::Corrupt) => {
                state.stats.corrupt_reads += 1;
                Err(Error::Corrupt { key: key.to_vec() })
            }
            Err(ReadFailure::Io(e)) => {
                state.stats.read_errors += 1;
                Err(Error::Io(e))
            }
        }
    }

    /// The value of `key`, or `None`.
    ///
    /// A written value is read and decrypted outside the lock, so gets on
    /// many threads run in parallel.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::Corrupt`] when the bytes in the file
    /// fail their integrity check; [`Error::Io`] when reading the file fails.
    /// Never wrong bytes.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"v")?;
    /// assert_eq!(cache.get(b"k")?, Some(b"v".to_vec()));
    /// assert_eq!(cache.get(b"other")?, None);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_vec(key, false)
    }

    /// Like [`get`](Self::get), and keeps a copy of a written value in RAM
    /// so later gets skip the file (kitty's `store_in_ram`); see
    /// [`remove_from_ram`](Self::remove_from_ram).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"v")?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.num_cached_in_ram(), 0);
    /// cache.get_and_store_in_ram(b"k")?;
    /// assert_eq!(cache.num_cached_in_ram(), 1);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn get_and_store_in_ram(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_vec(key, true)
    }

    fn get_vec(&self, key: &[u8], store_in_ram: bool) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        Ok(self
            .get_into_impl(key, &mut out, store_in_ram)?
            .then_some(out))
    }

    /// Puts the value of `key` into `out` (replacing its contents) and
    /// returns `true`, or clears `out` and returns `false` when there is none.
    /// Reusing `out` across calls saves an allocation per get.
    ///
    /// # Errors
    /// As [`get`](Self::get); `out` is left empty.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"value")?;
    /// let mut buf = Vec::new();
    /// assert!(cache.get_into(b"k", &mut buf)?);
    /// assert_eq!(buf, b"value");
    /// assert!(!cache.get_into(b"missing", &mut buf)?);
    /// assert!(buf.is_empty());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        self.get_into_impl(key, out, false)
    }

    fn get_into_impl(&self, key: &[u8], out: &mut Vec<u8>, store_in_ram: bool) -> Result<bool> {
        self.check_key(key)?;
        loop {
            match self.lookup(key) {
                Lookup::Missing => {
                    out.clear();
                    return Ok(false);
                }
                Lookup::Ram(data) => {
                    out.clear();
                    out.extend_from_slice(&data);
                    return Ok(true);
                }
                Lookup::Disk(read) => {
                    // The read overwrites every byte, so bytes already in
                    // `out` serve as they are; only growth is zeroed.
                    if out.len() > read.len {
                        out.truncate(read.len);
                    } else {
                        out.resize(read.len, 0);
                    }
                    match self.read_from_disk(key, &read, out, store_in_ram) {
                        Ok(true) => return Ok(true),
                        Ok(false) => out.clear(),
                        Err(e) => {
                            out.clear();
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// Copies the value of `key` into the front of `out` and returns its
    /// length, or `None` when there is no value.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `out` is shorter than the value, else
    /// as [`get`](Self::get) (then `out` holds no part of the value).
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"abc")?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(cache.get_into_slice(b"k", &mut buf)?, Some(3));
    /// assert_eq!(&buf[..3], b"abc");
    /// assert!(cache.get_into_slice(b"k", &mut [0u8; 2]).is_err());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn get_into_slice(&self, key: &[u8], out: &mut [u8]) -> Result<Option<usize>> {
        self.check_key(key)?;
        loop {
            match self.lookup(key) {
                Lookup::Missing => return Ok(None),
                Lookup::Ram(data) => {
                    let got = out.len();
                    let target = out.get_mut(..data.len()).ok_or(Error::BufferTooSmall {
                        needed: data.len(),
                        got,
                    })?;
                    target.copy_from_slice(&data);
                    return Ok(Some(data.len()));
                }
                Lookup::Disk(read) => {
                    let got = out.len();
                    let target = out.get_mut(..read.len).ok_or(Error::BufferTooSmall {
                        needed: read.len,
                        got,
                    })?;
                    if self.read_from_disk(key, &read, target, false)? {
                        return Ok(Some(read.len));
                    }
                    // The entry changed during the read; look again.
                }
            }
        }
    }

    /// Whether `key` has a value (without reading it).
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"")?;
    /// assert!(cache.contains_key(b"k"));
    /// assert!(!cache.contains_key(b"j"));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.shared.state.lock().entries.slot_of(key).is_some()
    }

    /// Removes the value of `key` (its file space becomes a hole, its key is
    /// wiped); returns whether there was one. A key longer than the maximum
    /// can never have a value, so it returns `false`.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"v")?;
    /// assert!(cache.remove(b"k"));
    /// assert!(!cache.remove(b"k"));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn remove(&self, key: &[u8]) -> bool {
        let (removed, wake_waiters) = {
            let mut state = self.shared.state.lock();
            let dirty_before = state.dirty;
            let removed = state.remove(key);
            if state.dirty < dirty_before {
                self.shared.room.notify_all();
            }
            (removed, dirty_before > 0 && state.dirty == 0)
        };
        if removed {
            // The file may be due for trimming or defragmenting now.
            self.shared.work.notify_one();
        }
        if wake_waiters {
            self.shared.progress.notify_all();
        }
        removed
    }

    /// Drops the RAM copies of written values whose key satisfies
    /// `predicate` (values not yet written, and memory-only values, stay);
    /// returns how many were dropped.
    ///
    /// `predicate` runs under the cache's lock: it must not call the cache.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"1:a", b"x")?;
    /// cache.add(b"2:a", b"y")?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// cache.get_and_store_in_ram(b"1:a")?;
    /// cache.get_and_store_in_ram(b"2:a")?;
    /// assert_eq!(cache.remove_from_ram(|key| key.starts_with(b"1:")), 1);
    /// assert_eq!(cache.num_cached_in_ram(), 1);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn remove_from_ram(&self, predicate: impl FnMut(&[u8]) -> bool) -> usize {
        self.shared.state.lock().remove_from_ram(predicate)
    }

    /// How many written values also have a copy in RAM.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// assert_eq!(cache.num_cached_in_ram(), 0);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn num_cached_in_ram(&self) -> usize {
        self.shared.state.lock().ram_copies
    }

    /// Removes every value and truncates the file to 0 bytes before
    /// returning. A write under way is discarded when it finishes.
    ///
    /// # Errors
    /// [`Error::Io`] when truncating the file fails (the values are gone
    /// anyway, and the writer cuts the file back when it is next idle).
    /// [`Error::WriterStopped`] when the device panicked while truncating:
    /// as for any device call that panics, writing stops for good (the
    /// values are gone all the same).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", b"v")?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// cache.clear()?;
    /// assert_eq!((cache.len(), cache.size_on_disk()), (0, 0));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        let result = {
            let mut state = self.shared.state.lock();
            let old_len = state.file_len;
            state.clear();
            // Under the lock, so no new write can land before the cut.
            let file = Arc::clone(&state.file);
            let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| file.set_len(0)));
            match cut {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    state.file_len = old_len;
                    Err(Error::Io(e))
                }
                Err(_) => {
                    // The tail stays to be cut; nothing will cut it now.
                    state.file_len = old_len;
                    self.shared.stop_writing(&mut state);
                    Err(Error::WriterStopped)
                }
            }
        };
        self.shared.work.notify_one();
        self.shared.progress.notify_all();
        self.shared.room.notify_all();
        result
    }

    /// How many keys have a value.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"a", b"1")?;
    /// cache.add_memory_only(b"b", b"2")?;
    /// assert_eq!(cache.len(), 2);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shared.state.lock().entries.len()
    }

    /// Whether no key has a value.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// assert!(cache.is_empty());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of all values (in RAM or in the file).
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"a", b"123")?;
    /// cache.add_memory_only(b"b", b"45")?;
    /// assert_eq!(cache.total_size(), 5);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn total_size(&self) -> u64 {
        self.shared.state.lock().total_size
    }

    /// The end of data in the file: written values, holes between them, and
    /// the write under way. Holes at the end do not count.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"a", &[0u8; 100])?;
    /// cache.add(b"b", &[0u8; 50])?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.size_on_disk(), 150);
    /// cache.remove(b"b");
    /// assert_eq!(cache.size_on_disk(), 100);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn size_on_disk(&self) -> u64 {
        self.shared.state.lock().holes.end()
    }

    /// The tracked holes of the file as `(offset, length)`, in offset order.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"a", &[1u8; 10])?;
    /// cache.add(b"b", &[2u8; 10])?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// cache.remove(b"a");
    /// assert_eq!(cache.holes(), [(0, 10)]);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn holes(&self) -> Vec<(u64, u64)> {
        self.shared.state.lock().holes.holes().collect()
    }

    /// Bytes of values waiting to be written. With the bytes of values
    /// that `add` calls are copying in at the moment, this is what
    /// [`Builder::max_pending_bytes`] bounds.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// cache.add(b"k", &[0u8; 10])?;
    /// assert!(cache.pending_bytes() <= 10);
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// assert_eq!(cache.pending_bytes(), 0);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn pending_bytes(&self) -> u64 {
        self.shared.state.lock().pending_bytes
    }

    /// The most bytes of values waiting to be written
    /// ([`Builder::max_pending_bytes`]).
    ///
    /// ```
    /// let cache = spillcache::SpillCache::builder(std::env::temp_dir())
    ///     .max_pending_bytes(1 << 20)
    ///     .build()?;
    /// assert_eq!(cache.max_pending_bytes(), 1 << 20);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn max_pending_bytes(&self) -> u64 {
        self.shared.config.max_pending_bytes
    }

    /// Counters of writes, errors and defragmentations so far.
    ///
    /// ```
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// assert_eq!(cache.stats().defrags, 0);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.state.lock().stats.clone()
    }

    /// Waits until every value (except memory-only ones) is in the file, for
    /// at most `timeout` (`Duration::MAX` waits without limit). Sleeps on a
    /// condition variable; nothing polls. When the writer thread is asleep
    /// (say, right after an `add`), the calling thread writes the waiting
    /// values itself, the writer thread helping with long ones: one value
    /// added and waited for is on disk without two thread wake-ups.
    ///
    /// How long it can take: the calling thread writes only values that
    /// it added itself, in queue order, and starts none after the timeout;
    /// values of other threads are left to the writer thread. So the call
    /// returns at the timeout, or, if the calling thread is then writing
    /// one of its own values, when that one write ends: a device that hangs
    /// holds it for one write of its own, never for another thread's value.
    /// `add`s and `get`s of other keys go on meanwhile (the lock is not held
    /// during a write).
    ///
    /// Returns `Ok(true)` when every value is in the file, `Ok(false)` when
    /// the time ran out while writes were succeeding.
    ///
    /// # Errors
    /// [`Error::WriteFailed`] with the device's error as soon as a write
    /// fails during the wait, or at the timeout if the last write attempt
    /// failed: the values stay in RAM and are retried, so calling again
    /// later may succeed. [`Error::WriterStopped`] once writing stopped for
    /// good (a device write panicked, on the writer thread or on a caller's):
    /// the values not written stay in RAM and readable.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// assert!(cache.wait_for_write(Duration::ZERO)?); // nothing to write
    /// cache.add(b"k", &[1u8; 1 << 16])?;
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn wait_for_write(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.state.lock();
        let errors_before = state.stats.write_errors;
        loop {
            if state.dirty == 0 {
                return Ok(true);
            }
            // Before write errors: a write that failed because its helper
            // panicked will never be retried.
            if !state.writer_alive {
                return Err(Error::WriterStopped);
            }
            if state.stats.write_errors != errors_before
                && let Some(e) = &state.write_error
            {
                return Err(Error::WriteFailed(copy_io_error(e)));
            }
            // With the writer thread asleep, writing here saves waking it
            // and being woken by it.
            if writer::write_here(&self.shared, &mut state, deadline) {
                continue;
            }
            let timed_out = match deadline {
                Some(deadline) => self
                    .shared
                    .progress
                    .wait_until(&mut state, deadline)
                    .timed_out(),
                None => {
                    self.shared.progress.wait(&mut state);
                    false
                }
            };
            if timed_out {
                if state.dirty == 0 {
                    return Ok(true);
                }
                if !state.writer_alive {
                    return Err(Error::WriterStopped);
                }
                return match &state.write_error {
                    Some(e) => Err(Error::WriteFailed(copy_io_error(e))),
                    None => Ok(false),
                };
            }
        }
    }

    /// Asks the writer thread to defragment now (whatever the defrag factor
    /// says) and waits up to `timeout` for it to finish. Returns `Ok(true)`
    /// when it finished (or there was nothing to move), `Ok(false)` on
    /// timeout.
    ///
    /// # Errors
    /// [`Error::DefragFailed`] when it failed (the old file stays in use),
    /// for instance with no room for a second copy and too few free blocks
    /// to compact in place (see the crate docs for what that needs);
    /// [`Error::WriterStopped`] if the writer thread died.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = spillcache::SpillCache::new(std::env::temp_dir())?;
    /// for key in [b"a", b"b", b"c"] {
    ///     cache.add(key, &[7u8; 100])?;
    /// }
    /// assert!(cache.wait_for_write(Duration::from_secs(5))?);
    /// cache.remove(b"a");
    /// assert!(cache.defrag(Duration::from_secs(5))?);
    /// assert_eq!((cache.size_on_disk(), cache.holes().len()), (200, 0));
    /// assert_eq!(cache.get(b"c")?, Some(vec![7u8; 100]));
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn defrag(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.state.lock();
        state.defrag_tickets += 1;
        let ticket = state.defrag_tickets;
        self.shared.work.notify_one();
        while state.defrag_served < ticket {
            if !state.writer_alive {
                return Err(Error::WriterStopped);
            }
            match deadline {
                Some(deadline) => {
                    if self
                        .shared
                        .progress
                        .wait_until(&mut state, deadline)
                        .timed_out()
                        && state.defrag_served < ticket
                    {
                        return Ok(false);
                    }
                }
                None => self.shared.progress.wait(&mut state),
            }
        }
        if state.defrag_last_failed
            && let Some(e) = &state.defrag_error
        {
            return Err(Error::DefragFailed(copy_io_error(e)));
        }
        Ok(true)
    }

    /// The file in use now, for tests that inspect its bytes or metadata.
    #[doc(hidden)]
    pub fn current_file(&self) -> Arc<D> {
        Arc::clone(&self.shared.state.lock().file)
    }

    /// Where the value of `key` is in the file, if it has been written; for
    /// tests of the file layout.
    #[doc(hidden)]
    pub fn disk_offset(&self, key: &[u8]) -> Option<u64> {
        let state = self.shared.state.lock();
        let entry = state.entries.get(state.entries.slot_of(key)?)?;
        match entry.place {
            Place::OnDisk { offset, .. } => Some(offset),
            _ => None,
        }
    }

    /// Checks every internal invariant (counters, file layout, holes); for
    /// tests and fuzzing.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        self.shared.state.lock().check()
    }
}

impl<D> Drop for SpillCache<D>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.shared.state.lock().shutting_down = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.take() {
            // A panic in the writer has already been reported on stderr.
            let _ = writer.join();
        }
    }
}

impl<D> std::fmt::Debug for SpillCache<D>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("SpillCache")
            .field("len", &state.entries.len())
            .field("total_size", &state.total_size)
            .field("size_on_disk", &state.holes.end())
            .field("dirty", &state.dirty)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockdev::MemDevice;

    #[test]
    fn room_held_for_a_copy_that_never_arrives_is_given_back() {
        let cache = Builder::with_file_factory(|| Ok(MemDevice::new()))
            .max_pending_bytes(100)
            .build()
            .unwrap();
        cache.shared.state.lock().hold_room(Keep::Spill, 100);
        let held = HeldRoom {
            shared: &cache.shared,
            keep: Keep::Spill,
            len: 100,
        };
        assert!(matches!(
            cache.try_add(b"k", &[0; 10]),
            Err(Error::Full { waiting: 100, .. })
        ));
        // The copy panics: its hold is dropped, not released into a value.
        let copy = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = held;
            panic!("the copy failed (expected by the test)");
        }));
        assert!(copy.is_err());
        assert_eq!(cache.shared.state.lock().held_pending, 0);
        cache.try_add(b"k", &[0; 10]).unwrap();
    }
}
