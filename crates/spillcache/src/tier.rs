//! `SpillTier`: an encrypted local disk tier in front of a slower device.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use blockdev::{ReadAt, WriteAt};
use parking_lot::Mutex;

use crate::cache::SpillCache;
use crate::error::{Error, Result};

/// Default chunk size of a [`SpillTier`]: 1 MiB.
///
/// ```
/// assert_eq!(spillcache::DEFAULT_CHUNK_SIZE, 1 << 20);
/// ```
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// Share of the budget for chunks on probation (new, not read again yet).
const PROBATION_SHARE: u64 = 10;

/// One chunk in the tier.
#[derive(Debug, Clone, Copy)]
struct Resident {
    len: u64,
    /// Read again since it arrived, or since its last second chance.
    referenced: bool,
    protected: bool,
}

/// Which chunks the tier holds: S3-FIFO's two queues, without its ghost
/// queue. New chunks wait on probation; a chunk read again while there is
/// promoted when it reaches the front, the others leave; the protected
/// queue is a CLOCK.
#[derive(Debug, Default)]
struct Residents {
    chunks: HashMap<u64, Resident>,
    probation: VecDeque<u64>,
    protected: VecDeque<u64>,
    probation_bytes: u64,
    bytes: u64,
}

impl Residents {
    /// Marks `chunk` as read again.
    fn touch(&mut self, chunk: u64) {
        if let Some(resident) = self.chunks.get_mut(&chunk) {
            resident.referenced = true;
        }
    }

    fn push(&mut self, chunk: u64, len: u64) {
        let resident = Resident {
            len,
            referenced: false,
            protected: false,
        };
        if self.chunks.insert(chunk, resident).is_none() {
            self.probation.push_back(chunk);
            self.probation_bytes += len;
            self.bytes += len;
        }
    }

    /// Takes `chunk` out; `false` when it was not there.
    fn remove(&mut self, chunk: u64) -> bool {
        let Some(resident) = self.chunks.remove(&chunk) else {
            return false;
        };
        self.bytes -= resident.len;
        if resident.protected {
            self.protected.retain(|&c| c != chunk);
        } else {
            self.probation_bytes -= resident.len;
            self.probation.retain(|&c| c != chunk);
        }
        true
    }

    /// Chooses and takes out the chunk to evict, if any.
    fn evict_one(&mut self, budget: u64) -> Option<u64> {
        let probation_target = budget / PROBATION_SHARE;
        loop {
            let from_probation = !self.probation.is_empty()
                && (self.probation_bytes >= probation_target || self.protected.is_empty());
            let queue = if from_probation {
                &mut self.probation
            } else {
                &mut self.protected
            };
            let chunk = queue.pop_front()?;
            let resident = self.chunks.get_mut(&chunk)?;
            if resident.referenced {
                // A second chance: promoted from probation, or around the CLOCK.
                resident.referenced = false;
                if !resident.protected {
                    resident.protected = true;
                    self.probation_bytes -= resident.len;
                }
                self.protected.push_back(chunk);
                continue;
            }
            let len = resident.len;
            self.chunks.remove(&chunk);
            self.bytes -= len;
            if from_probation {
                self.probation_bytes -= len;
            }
            return Some(chunk);
        }
    }
}

/// A [`ReadAt`] that keeps aligned chunks of a slower device `D` (object
/// storage, a network disk) in a [`SpillCache`] on local disk, encrypted at
/// rest, within a budget of bytes.
///
/// A read is split at chunk boundaries (chunk `i` covers
/// `i * chunk_size .. (i + 1) * chunk_size`); a chunk in the tier is read
/// back from the spill cache (decrypted, its integrity checked), and every
/// run of consecutive missing chunks is read from `D` with **one** call,
/// then each chunk is added. So a read below a `PageCache` whose batch
/// is one chunk costs one device read when cold and none when warm.
///
/// # Budget and eviction: S3-FIFO's two queues
/// The tier holds at most `budget` bytes of chunks. A new chunk enters a
/// probation queue; when space is needed, chunks leave from its front while
/// it holds at least a tenth of the budget, except a chunk read again since
/// it arrived, which moves to the protected queue instead. The protected
/// queue is a CLOCK (a chunk read again gets one more trip round). Why not
/// plain FIFO: the RAM cache above absorbs every re-read it can, so a chunk
/// read again *from the tier* is one the RAM cache could not keep, exactly
/// a chunk worth keeping, and FIFO (or a plain CLOCK) loses it to any scan
/// longer than the budget; here a scan only cycles through probation. Why
/// not LRU: a tier hit only sets a flag under a short lock and never
/// relinks a list; insertion and eviction are O(1) amortized.
///
/// # Encryption
/// Chunks are values of the spill cache, so each is encrypted with a fresh
/// ChaCha20 key and nonce that live only in RAM and checked on read: the
/// disk never holds plaintext of `D`, and a damaged file is never served
/// (the chunk is dropped and read again from `D`).
///
/// ```
/// use blockdev::{MemDevice, ReadAt};
/// use spillcache::SpillTier;
///
/// let slow = MemDevice::from_vec((0..=255u8).cycle().take(10_000).collect());
/// let tier = SpillTier::with_chunk_size(slow, std::env::temp_dir(), 8192, 4096)?;
/// let mut buf = [0u8; 3];
/// tier.read_exact_at(4095, &mut buf)?;          // chunks 0 and 1: one device read
/// assert_eq!(buf, [255, 0, 1]);
/// tier.read_exact_at(4095, &mut buf)?;          // both from the disk tier
/// let stats = tier.stats();
/// assert_eq!((stats.device_reads, stats.chunk_hits, stats.chunk_misses), (1, 2, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpillTier<D, F = File>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    device: D,
    cache: SpillCache<F>,
    chunk_size: u64,
    budget: u64,
    residents: Mutex<Residents>,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    chunk_hits: AtomicU64,
    chunk_misses: AtomicU64,
    device_reads: AtomicU64,
    evictions: AtomicU64,
    dropped_corrupt: AtomicU64,
    skipped_full: AtomicU64,
}

/// What a [`SpillTier`] has done, from [`SpillTier::stats`].
///
/// ```
/// use blockdev::MemDevice;
///
/// let tier = spillcache::SpillTier::new(MemDevice::new(), std::env::temp_dir(), 1 << 20)?;
/// assert_eq!(tier.stats(), spillcache::TierStats::default());
/// # Ok::<(), spillcache::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Chunks served from the tier.
    pub chunk_hits: u64,
    /// Chunks read from the device.
    pub chunk_misses: u64,
    /// Calls to the device's `read_exact_at` (one per run of missing chunks).
    pub device_reads: u64,
    /// Chunks evicted to stay within the budget.
    pub evictions: u64,
    /// Chunks whose stored bytes could not be read back (failed integrity
    /// check or I/O error), dropped and read again from the device.
    pub dropped_unreadable: u64,
    /// Chunks read from the device but not kept, because the spill cache
    /// was full of bytes still waiting to be written (a full or failing
    /// disk); the read itself was served.
    pub skipped_full: u64,
    /// Bytes of chunks in the tier now.
    pub resident_bytes: u64,
}

impl<D: ReadAt> SpillTier<D, File> {
    /// A tier over `device` whose chunks (1 MiB, [`DEFAULT_CHUNK_SIZE`])
    /// live in an anonymous file in `dir`, at most `budget` bytes of them.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `budget` is below one chunk;
    /// [`Error::Io`] when the spill file cannot be created in `dir`.
    ///
    /// ```
    /// use blockdev::MemDevice;
    /// use spillcache::{Error, SpillTier};
    ///
    /// let tier = SpillTier::new(MemDevice::new(), std::env::temp_dir(), 64 << 20)?;
    /// assert_eq!((tier.chunk_size(), tier.budget()), (1 << 20, 64 << 20));
    /// let small = SpillTier::new(MemDevice::new(), std::env::temp_dir(), 1000);
    /// assert!(matches!(small, Err(Error::InvalidOption { option: "budget", .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(device: D, dir: impl Into<PathBuf>, budget: u64) -> Result<Self> {
        Self::with_chunk_size(device, dir, budget, DEFAULT_CHUNK_SIZE)
    }

    /// As [`new`](Self::new), with chunks of `chunk_size` bytes.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`Error::InvalidOption`] for a chunk size
    /// of 0 or one that does not fit in memory.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let tier = spillcache::SpillTier::with_chunk_size(MemDevice::new(), "/tmp", 1 << 20, 4096)?;
    /// assert_eq!(tier.chunk_size(), 4096);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn with_chunk_size(
        device: D,
        dir: impl Into<PathBuf>,
        budget: u64,
        chunk_size: u64,
    ) -> Result<Self> {
        check_shape(budget, chunk_size)?;
        Self::with_cache(device, SpillCache::new(dir)?, budget, chunk_size)
    }
}

fn check_shape(budget: u64, chunk_size: u64) -> Result<()> {
    if chunk_size == 0 || usize::try_from(chunk_size).is_err() {
        return Err(Error::InvalidOption {
            option: "chunk_size",
            reason: format!("{chunk_size} is not a number of bytes from 1 to usize::MAX"),
        });
    }
    if budget < chunk_size {
        return Err(Error::InvalidOption {
            option: "budget",
            reason: format!("{budget} bytes cannot hold one chunk of {chunk_size} bytes"),
        });
    }
    Ok(())
}

impl<D, F> SpillTier<D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    /// A tier over `device` that keeps its chunks in `cache` (built with
    /// whatever options or files the caller chose). The tier owns the cache
    /// and clears it first.
    ///
    /// # Errors
    /// As [`SpillTier::with_chunk_size`], and [`Error::Io`] when clearing
    /// the cache's file fails.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let spill = spillcache::Builder::with_file_factory(|| Ok(MemDevice::new())).build()?;
    /// let tier = spillcache::SpillTier::with_cache(MemDevice::from_vec(vec![1; 100]), spill, 64, 32)?;
    /// assert_eq!(tier.budget(), 64);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn with_cache(
        device: D,
        cache: SpillCache<F>,
        budget: u64,
        chunk_size: u64,
    ) -> Result<Self> {
        check_shape(budget, chunk_size)?;
        cache.clear()?;
        Ok(SpillTier {
            device,
            cache,
            chunk_size,
            budget,
            residents: Mutex::new(Residents::default()),
            stats: Counters::default(),
        })
    }

    /// The chunk size in bytes.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let tier = spillcache::SpillTier::new(MemDevice::new(), "/tmp", 1 << 20)?;
    /// assert_eq!(tier.chunk_size(), spillcache::DEFAULT_CHUNK_SIZE);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The most bytes of chunks the tier keeps.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let tier = spillcache::SpillTier::new(MemDevice::new(), "/tmp", 3 << 20)?;
    /// assert_eq!(tier.budget(), 3 << 20);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The device behind the tier.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let tier = spillcache::SpillTier::new(MemDevice::from_vec(vec![0; 5]), "/tmp", 1 << 20)?;
    /// assert_eq!(tier.device().size()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The spill cache holding the chunks (keys are chunk numbers, 8 bytes
    /// big-endian).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let tier = spillcache::SpillTier::new(MemDevice::new(), "/tmp", 1 << 20)?;
    /// assert!(tier.spill_cache().is_empty());
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn spill_cache(&self) -> &SpillCache<F> {
        &self.cache
    }

    /// What the tier has done, and how many bytes it holds.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let tier = spillcache::SpillTier::with_chunk_size(MemDevice::from_vec(vec![0; 100]), "/tmp", 64, 64)?;
    /// tier.read_exact_at(0, &mut [0u8; 10])?;
    /// assert_eq!((tier.stats().chunk_misses, tier.stats().resident_bytes), (1, 64));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> TierStats {
        TierStats {
            chunk_hits: self.stats.chunk_hits.load(Relaxed),
            chunk_misses: self.stats.chunk_misses.load(Relaxed),
            device_reads: self.stats.device_reads.load(Relaxed),
            evictions: self.stats.evictions.load(Relaxed),
            dropped_unreadable: self.stats.dropped_corrupt.load(Relaxed),
            skipped_full: self.stats.skipped_full.load(Relaxed),
            resident_bytes: self.residents.lock().bytes,
        }
    }

    /// Drops every chunk (e.g. after the device's contents changed).
    ///
    /// # Errors
    /// [`Error::Io`] when truncating the spill file fails (the chunks are
    /// gone anyway).
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let tier = spillcache::SpillTier::with_chunk_size(MemDevice::from_vec(vec![0; 100]), "/tmp", 64, 64)?;
    /// tier.read_exact_at(0, &mut [0u8; 10])?;
    /// tier.clear()?;
    /// assert_eq!(tier.stats().resident_bytes, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        let mut residents = self.residents.lock();
        *residents = Residents::default();
        self.cache.clear()
    }

    /// Drops the chunks that overlap `len` bytes from `off`.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let tier = spillcache::SpillTier::with_chunk_size(MemDevice::from_vec(vec![0; 100]), "/tmp", 128, 64)?;
    /// tier.read_exact_at(0, &mut [0u8; 100])?;
    /// tier.invalidate(70, 1);
    /// assert_eq!(tier.stats().resident_bytes, 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invalidate(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = off / self.chunk_size;
        let last = off.saturating_add(len - 1) / self.chunk_size;
        let mut residents = self.residents.lock();
        let doomed: Vec<u64> = if last - first < residents.chunks.len() as u64 {
            (first..=last).collect()
        } else {
            let in_range = |chunk: &&u64| (first..=last).contains(*chunk);
            residents.chunks.keys().filter(in_range).copied().collect()
        };
        for chunk in doomed {
            if residents.remove(chunk) {
                self.cache.remove(&key(chunk));
            }
        }
    }

    /// Copies chunk `chunk` (of `chunk_len` bytes) from the spill cache into
    /// `scratch`; `false` when it is not there (or unreadable, then dropped).
    fn read_chunk(&self, chunk: u64, chunk_len: usize, scratch: &mut [u8]) -> bool {
        match self.cache.get_into_slice(&key(chunk), scratch) {
            Ok(Some(len)) if len == chunk_len => {
                self.stats.chunk_hits.fetch_add(1, Relaxed);
                self.residents.lock().touch(chunk);
                true
            }
            Ok(None) => false,
            // A length that disagrees with the device (its size changed), a
            // failed integrity check or an unreadable file: never served.
            Ok(Some(_)) | Err(_) => {
                self.stats.dropped_corrupt.fetch_add(1, Relaxed);
                self.forget(chunk);
                false
            }
        }
    }

    fn forget(&self, chunk: u64) {
        let mut residents = self.residents.lock();
        residents.remove(chunk);
        self.cache.remove(&key(chunk));
    }

    /// Adds chunk `chunk`, evicting until it fits.
    fn insert(&self, chunk: u64, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        let mut residents = self.residents.lock();
        if residents.chunks.contains_key(&chunk) {
            return Ok(()); // another reader added it meanwhile
        }
        while residents.bytes + len > self.budget {
            let Some(evicted) = residents.evict_one(self.budget) else {
                break;
            };
            self.cache.remove(&key(evicted));
            self.stats.evictions.fetch_add(1, Relaxed);
        }
        // Under the lock, so the index and the cache agree for every reader.
        // `try_add`, never `add`: on a disk that stays full the bytes
        // waiting to be written never drain, and a read must not wait for
        // them; the chunk is served from the device and simply not kept.
        if let Err(err) = self.cache.try_add(&key(chunk), bytes) {
            if matches!(err, Error::Full { .. }) {
                self.stats.skipped_full.fetch_add(1, Relaxed);
            }
            return Err(err);
        }
        residents.push(chunk, len);
        Ok(())
    }

    /// Reads chunks `first..first + count` (the last one possibly short)
    /// from the device with one call, adds each, and copies the part of
    /// them inside `pos..pos + buf.len()` into `buf`.
    fn fetch_run(
        &self,
        first: u64,
        count: u64,
        size: u64,
        pos: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let start = first * self.chunk_size;
        let end = ((first + count) * self.chunk_size).min(size);
        self.stats.device_reads.fetch_add(1, Relaxed);
        let inside = start >= pos && end <= pos + buf.len() as u64;
        let mut scratch = Vec::new();
        // A run inside the read lands in `buf` directly: no second copy.
        let run = if inside {
            let at = (start - pos) as usize;
            &mut buf[at..at + (end - start) as usize]
        } else {
            scratch.resize((end - start) as usize, 0);
            &mut scratch[..]
        };
        self.device.read_exact_at(start, run)?;
        self.stats.chunk_misses.fetch_add(count, Relaxed);
        for (index, bytes) in run.chunks(self.chunk_size as usize).enumerate() {
            // A tier that cannot store a chunk still serves the read.
            let _ = self.insert(first + index as u64, bytes);
        }
        if !inside {
            copy_overlap(start, &scratch, pos, buf);
        }
        Ok(())
    }
}

fn key(chunk: u64) -> [u8; 8] {
    chunk.to_be_bytes()
}

/// Copies the bytes of `src` (at device position `src_pos`) that fall inside
/// `dst` (at device position `dst_pos`).
fn copy_overlap(src_pos: u64, src: &[u8], dst_pos: u64, dst: &mut [u8]) {
    let start = src_pos.max(dst_pos);
    let end = (src_pos + src.len() as u64).min(dst_pos + dst.len() as u64);
    if start < end {
        let n = (end - start) as usize;
        let from = (start - src_pos) as usize;
        let to = (start - dst_pos) as usize;
        dst[to..to + n].copy_from_slice(&src[from..from + n]);
    }
}

impl<D, F> ReadAt for SpillTier<D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.device.size()?;
        if buf.is_empty() || pos >= size {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(size - pos).unwrap_or(usize::MAX));
        let buf = &mut buf[..len];
        let end = pos + len as u64;
        let first = pos / self.chunk_size;
        let last = (end - 1) / self.chunk_size;
        let mut scratch = Vec::new();
        // First missing chunk of the current run of misses.
        let mut missing_from = None;
        for chunk in first..=last {
            let chunk_start = chunk * self.chunk_size;
            let chunk_len = (size - chunk_start).min(self.chunk_size) as usize;
            let chunk_end = chunk_start + chunk_len as u64;
            let found = if chunk_start >= pos && chunk_end <= end {
                // A whole chunk inside the read goes straight into `buf`.
                let at = (chunk_start - pos) as usize;
                self.read_chunk(chunk, chunk_len, &mut buf[at..at + chunk_len])
            } else {
                scratch.resize(chunk_len, 0);
                let found = self.read_chunk(chunk, chunk_len, &mut scratch);
                if found {
                    copy_overlap(chunk_start, &scratch, pos, buf);
                }
                found
            };
            if found {
                if let Some(run_first) = missing_from.take() {
                    self.fetch_run(run_first, chunk - run_first, size, pos, buf)?;
                }
            } else if missing_from.is_none() {
                missing_from = Some(chunk);
            }
        }
        if let Some(run_first) = missing_from {
            self.fetch_run(run_first, last + 1 - run_first, size, pos, buf)?;
        }
        Ok(len)
    }

    fn size(&self) -> io::Result<u64> {
        self.device.size()
    }

    /// Passes the hint on, widened to whole chunks (what a miss reads) and
    /// narrowed to the span from the first to the last chunk the tier lacks.
    fn will_need(&self, pos: u64, len: u64) {
        let end = pos.saturating_add(len).min(self.device.size().unwrap_or(0));
        if pos >= end {
            return;
        }
        let chunks = pos / self.chunk_size..=(end - 1) / self.chunk_size;
        let residents = self.residents.lock();
        let mut missing = chunks.filter(|c| !residents.chunks.contains_key(c));
        let (Some(from), to) = (missing.next(), missing.next_back()) else {
            return;
        };
        drop(residents);
        let count = to.unwrap_or(from) - from + 1;
        self.device.will_need(
            from * self.chunk_size,
            count.saturating_mul(self.chunk_size),
        );
    }
}

impl<D, F> std::fmt::Debug for SpillTier<D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillTier")
            .field("chunk_size", &self.chunk_size)
            .field("budget", &self.budget)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
