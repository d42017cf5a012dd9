//! `SpillTier`: an encrypted local disk tier in front of a slower device.
//!
//! # Why chunks are kept in pieces
//!
//! A chunk (1 MiB by default) is the unit of the budget and of eviction;
//! a **piece** (32 KiB by default, [`SpillTier::piece_size`]) is the unit of
//! fetching and storing: each piece present is one value of the spill
//! cache, and a chunk records which of its pieces are present. A miss
//! fetches the missing pieces the read needs, every run of consecutive
//! missing pieces with one device call. So a cold random 4 KiB read
//! fetches 32 KiB (64 KiB when it straddles two pieces): at most 16 bytes
//! from the device per byte read, where a whole 1 MiB chunk cost 256;
//! while a large read (a scan below a page cache's batch, a read-ahead)
//! is still one large device read. The other way, small chunks, would make
//! the user choose between small reads and large ones, and would multiply
//! the entries S3-FIFO tracks; pieces keep eviction at chunk granularity
//! whatever the chunk size. The price: a warm read of a whole chunk is 32
//! reads of the spill cache instead of one (each a `pread` and a
//! decryption of 32 KiB, without the two-thread decryption of large
//! values): warm sequential 1 MiB reads ran at ~330 MiB/s with 32 KiB
//! pieces against ~390 MiB/s with whole-chunk pieces (one thread, a
//! `MemDevice` below, a shared machine), while warm random 4 KiB reads
//! went from ~420 to ~10,800 a second. A workload of large reads only can
//! take larger pieces with [`SpillTier::with_piece_size`].
//!
//! # One device read per missing piece (single flight)
//!
//! A read plans under the tier's lock: each piece it needs is present,
//! already being fetched by another read (it joins that read's *flight*),
//! or missing (it claims it, registering a flight). It then fetches its
//! claimed runs, with no lock held, so independent misses run in
//! parallel; publishes them (adds the pieces, hands the bytes to the
//! readers that joined); then reads its present pieces and waits for the
//! flights it joined. It never waits while it holds a claim it has not
//! published, so no two reads wait for each other. A reader whose flight
//! failed tries again (and then fetches itself); the second failure it
//! sees is its error. A claim is a guard: a read that panics or returns
//! early abandons its flights, and their readers try again.
//!
//! # Never a stale piece after `clear` or `invalidate`
//!
//! A fetched piece is added only if its flight is still the one registered
//! for that piece when the fetch ends: `invalidate` unregisters the flights
//! of its range and `clear` all of them, so bytes fetched before either are
//! never kept after it. `clear` also bumps the tier's epoch; a read that
//! sees the epoch change between its plan and its end starts again, so it
//! returns bytes fetched after the clear, never a mix of both sides (after
//! 16 tries raced by clears it reads the device directly, in one call).
//! What the device itself returns between its change and the `clear` is
//! the device's to guard: change the device first, then clear the tier.
//!
//! # One version per read across `refresh`
//!
//! [`ReadAt::refresh`] moves the device to its new version and then
//! clears: between the two the device returns new bytes while the tier
//! still holds old pieces, so a read of several pieces could take some of
//! each. A refresh therefore counts itself in the epoch for its whole
//! length (the epoch's low bits; `clear` steps the high ones). A read that
//! plans while a refresh is under way reads the device directly, in one
//! call, keeping nothing; a read whose epoch changed between its plan and
//! its end (a refresh began, or a clear ran) starts again. So a read
//! returns the bytes of one version whole, as the device returns them for
//! one call.

mod flight;
mod residents;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

use blockdev::{ReadAt, WriteAt};
use parking_lot::Mutex;

use crate::cache::SpillCache;
use crate::error::{Error, Result};

use self::flight::{Flight, Outcome};
use self::residents::Residents;

/// Default chunk size of a [`SpillTier`]: 1 MiB.
///
/// ```
/// assert_eq!(spillcache::DEFAULT_CHUNK_SIZE, 1 << 20);
/// ```
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// Default piece size: a cold random 4 KiB read fetches at most 16 times
/// its bytes (two pieces when it straddles them).
const DEFAULT_PIECE_SIZE: u64 = 32 << 10;

/// The most pieces in a chunk: a chunk's set of pieces present is a bitmap
/// of at most 8 KiB.
const MAX_PIECES_PER_CHUNK: u64 = 1 << 16;

/// Tries of a read before it reads the device directly, keeping nothing:
/// only clears, or flights that fail or are abandoned, at every try lead
/// there.
const MAX_TRIES: u32 = 16;

/// What the tier's lock guards: which pieces are held, which are being
/// fetched.
#[derive(Debug)]
struct State {
    residents: Residents,
    /// Pieces being fetched, by piece number, each with the flight readers
    /// join; a fetch keeps its pieces only while it is still registered.
    flights: BTreeMap<u64, Arc<Flight>>,
}

/// One piece of one chunk, clipped to the device's size.
#[derive(Clone, Copy, Debug)]
struct Piece {
    chunk: u64,
    index: u32,
    start: u64,
    end: u64,
}

impl Piece {
    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// Consecutive pieces a read claimed, fetched with one device call.
#[derive(Debug)]
struct Run {
    pieces: Vec<Piece>,
    flight: Arc<Flight>,
}

impl Run {
    fn start(&self) -> u64 {
        self.pieces.first().map_or(0, |piece| piece.start)
    }

    fn end(&self) -> u64 {
        self.pieces.last().map_or(0, |piece| piece.end)
    }
}

/// Added to the epoch by `clear`; the bits below count the refreshes
/// under way (see [`Refreshing`]).
const EPOCH_STEP: u64 = 1 << 32;

/// Whether `epoch` counts a refresh under way.
fn refreshing(epoch: u64) -> bool {
    epoch & (EPOCH_STEP - 1) != 0
}

/// What one try of a read will do, decided under the lock.
#[derive(Debug, Default)]
struct Plan {
    /// The epoch when it was made; nothing else is planned when it says a
    /// refresh is under way.
    epoch: u64,
    present: Vec<Piece>,
    joined: Vec<(Piece, Arc<Flight>)>,
    runs: Vec<Run>,
}

/// How one try of a read ended.
enum Try {
    Done,
    Again,
    /// A refresh is under way: read the device directly.
    Direct,
}

/// A [`ReadAt`] that keeps aligned chunks of a slower device `D` (object
/// storage, a network disk) in a [`SpillCache`] on local disk, encrypted at
/// rest, within a budget of bytes.
///
/// Chunk `i` covers `i * chunk_size .. (i + 1) * chunk_size` and is made
/// of pieces of [`piece_size`](Self::piece_size) bytes (the last one of a
/// chunk, or of the device, possibly shorter). A piece in the tier is read
/// back from the spill cache (decrypted, its integrity checked); the
/// pieces a read needs and the tier lacks are read from `D`, every run of
/// consecutive ones with **one** call, and added. Readers missing the same
/// piece at once make one device read between them; readers missing
/// different pieces read in parallel. So a read below a `PageCache` whose
/// batch is one chunk costs one device read when cold and none when warm,
/// and a small random read fetches one piece, not a chunk. The module
/// docs say why pieces, and how a read never keeps bytes from before a
/// [`clear`](Self::clear) or an [`invalidate`](Self::invalidate).
///
/// # Budget and eviction: S3-FIFO's two queues
/// The tier holds at most `budget` bytes of pieces, and evicts whole
/// chunks. A new chunk enters a
/// probation queue; when space is needed, chunks leave from its front while
/// it holds at least a tenth of the budget, except a chunk read again since
/// it arrived, which moves to the protected queue instead. The protected
/// queue is a CLOCK (a chunk read again gets one more trip round). Why not
/// plain FIFO: the RAM cache above absorbs every re-read it can, so a chunk
/// read again *from the tier* is one the RAM cache could not keep, exactly
/// a chunk worth keeping, and FIFO (or a plain CLOCK) loses it to any scan
/// longer than the budget; here a scan only cycles through probation. Why
/// not LRU: a tier hit only sets a flag under a short lock and never
/// relinks a list. Insertion, eviction and removal are O(1) amortized: a
/// removed chunk's queue entry stays, marked stale by a stamp, until it
/// reaches the front or a compaction sweeps it, so invalidating `k` chunks
/// costs O(k log n) whatever the `n` held.
///
/// # Encryption
/// Pieces are values of the spill cache, so each is encrypted with a fresh
/// ChaCha20 key and nonce that live only in RAM and checked on read: the
/// disk never holds plaintext of `D`, and a damaged file is never served
/// (the piece is dropped and read again from `D`).
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
/// assert_eq!((stats.bytes_read, stats.bytes_fetched), (6, 8192));
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
    piece_size: u64,
    pieces_per_chunk: u32,
    budget: u64,
    state: Mutex<State>,
    /// Stepped by `clear` (by [`EPOCH_STEP`], under the lock); its low
    /// bits count the refreshes under way.
    epoch: AtomicU64,
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
    bytes_read: AtomicU64,
    bytes_fetched: AtomicU64,
    fetch_waits: AtomicU64,
}

/// What a [`SpillTier`] has done, from [`SpillTier::stats`].
///
/// `bytes_fetched / bytes_read` is what the tier costs the device per byte
/// a user reads: below 1 when the tier serves re-reads, up to
/// `piece_size / read size` (doubled for a read that straddles two
/// pieces) for cold random reads.
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
    /// Pieces served from the tier (a piece is a whole chunk when the chunk
    /// is no larger than [`SpillTier::piece_size`]).
    pub chunk_hits: u64,
    /// Pieces read from the device.
    pub chunk_misses: u64,
    /// Calls to the device's `read_exact_at` (one per run of missing pieces).
    pub device_reads: u64,
    /// Chunks evicted to stay within the budget.
    pub evictions: u64,
    /// Pieces whose stored bytes could not be read back (failed integrity
    /// check or I/O error), dropped and read again from the device.
    pub dropped_unreadable: u64,
    /// Pieces read from the device but not kept, because the spill cache
    /// was full of bytes still waiting to be written (a full or failing
    /// disk); the read itself was served.
    pub skipped_full: u64,
    /// Bytes of pieces in the tier now.
    pub resident_bytes: u64,
    /// Bytes returned to readers.
    pub bytes_read: u64,
    /// Bytes read from the device.
    pub bytes_fetched: u64,
    /// Pieces a read waited for while another read fetched them, instead
    /// of reading them from the device itself.
    pub fetch_waits: u64,
}

impl<D: ReadAt> SpillTier<D, File> {
    /// A tier over `device` whose chunks (1 MiB, [`DEFAULT_CHUNK_SIZE`])
    /// live in an anonymous file in `dir`, at most `budget` bytes of them.
    /// Pieces waiting in RAM to be encrypted and written are bounded by a
    /// quarter of the budget (at least 8 MiB, at most 256 MiB); a piece
    /// read past that bound is served and not kept
    /// ([`TierStats::skipped_full`]).
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
        let cache = crate::Builder::new(dir)
            .max_pending_bytes(pending_bound(budget))
            .build()?;
        Self::with_cache(device, cache, budget, chunk_size)
    }
}

/// The most bytes of pieces waiting in RAM for the writer, for a tier it
/// builds: a quarter of the budget, at least 8 MiB, at most the spill
/// cache's default (256 MiB). A scan faster than the writer encrypts and
/// writes would otherwise copy up to 256 MiB of pieces into fresh memory
/// (a page fault per 4 KiB: a third of a cold scan's reader CPU), most of
/// them evicted before they are written; past the bound a piece is served
/// and not kept (`TierStats::skipped_full`).
fn pending_bound(budget: u64) -> u64 {
    (budget / 4).clamp(MIN_PENDING, crate::config::DEFAULT_MAX_PENDING_BYTES)
}

/// The least [`pending_bound`]: room for many pieces and for a whole
/// chunk of any default size.
const MIN_PENDING: u64 = 8 << 20;

fn pieces_per_chunk(chunk_size: u64, piece_size: u64) -> u32 {
    u32::try_from(chunk_size.div_ceil(piece_size)).unwrap_or(u32::MAX)
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
        let piece_size = chunk_size
            .min(DEFAULT_PIECE_SIZE)
            .max(chunk_size.div_ceil(MAX_PIECES_PER_CHUNK));
        Ok(SpillTier {
            device,
            cache,
            chunk_size,
            piece_size,
            pieces_per_chunk: pieces_per_chunk(chunk_size, piece_size),
            budget,
            state: Mutex::new(State {
                residents: Residents::new(piece_size),
                flights: BTreeMap::new(),
            }),
            epoch: AtomicU64::new(0),
            stats: Counters::default(),
        })
    }

    /// The same tier with pieces of `piece_size` bytes: the least a miss
    /// fetches from the device, and the unit stored in the spill cache.
    /// Smaller pieces fetch fewer bytes for small random reads and cost
    /// more spill-cache values per chunk. The tier is emptied (pieces of
    /// another size cannot be kept).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `piece_size` is 0, larger than the
    /// chunk size, or cuts a chunk into more than 65,536 pieces;
    /// [`Error::Io`] as [`clear`](Self::clear).
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// let slow = MemDevice::from_vec(vec![5; 1 << 20]);
    /// let tier = spillcache::SpillTier::new(slow, "/tmp", 4 << 20)?.with_piece_size(4096)?;
    /// tier.read_exact_at(10_000, &mut [0u8; 100])?;
    /// assert_eq!((tier.stats().bytes_read, tier.stats().bytes_fetched), (100, 4096));
    /// assert!(tier.with_piece_size(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_piece_size(mut self, piece_size: u64) -> Result<Self> {
        if piece_size == 0
            || piece_size > self.chunk_size
            || self.chunk_size.div_ceil(piece_size) > MAX_PIECES_PER_CHUNK
        {
            return Err(Error::InvalidOption {
                option: "piece_size",
                reason: format!(
                    "{piece_size} is not a number of bytes from 1 to the chunk size \
                     ({}) that cuts a chunk into at most {MAX_PIECES_PER_CHUNK} pieces",
                    self.chunk_size
                ),
            });
        }
        self.clear()?;
        self.piece_size = piece_size;
        self.pieces_per_chunk = pieces_per_chunk(self.chunk_size, piece_size);
        self.state.get_mut().residents = Residents::new(piece_size);
        Ok(self)
    }

    /// The piece size in bytes: the least a miss fetches from the device
    /// (32 KiB, or the chunk size when smaller, unless set with
    /// [`with_piece_size`](Self::with_piece_size)).
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// let tier = spillcache::SpillTier::new(MemDevice::new(), "/tmp", 1 << 20)?;
    /// assert_eq!(tier.piece_size(), 32 << 10);
    /// # Ok::<(), spillcache::Error>(())
    /// ```
    pub fn piece_size(&self) -> u64 {
        self.piece_size
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

    /// The spill cache holding the pieces (keys are piece numbers,
    /// `chunk * pieces_per_chunk + piece`, 8 bytes big-endian).
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
            resident_bytes: self.state.lock().residents.bytes(),
            bytes_read: self.stats.bytes_read.load(Relaxed),
            bytes_fetched: self.stats.bytes_fetched.load(Relaxed),
            fetch_waits: self.stats.fetch_waits.load(Relaxed),
        }
    }

    /// Drops every chunk (e.g. after the device's contents changed), and
    /// every fetch under way: bytes a read fetched before the call are
    /// never kept after it, and a read that spans the call starts again,
    /// so it returns bytes fetched after it.
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
        let mut state = self.state.lock();
        self.epoch.fetch_add(EPOCH_STEP, SeqCst);
        state.residents = Residents::new(self.piece_size);
        state.flights.clear();
        self.cache.clear()
    }

    /// Drops the pieces that overlap `len` bytes from `off`, and forgets
    /// the fetches of them under way, whose bytes are then not kept. The
    /// work is proportional to the chunks dropped, not to those held.
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
        let last_pos = off.saturating_add(len - 1);
        let (first_chunk, first_piece) = self.locate(off);
        let (last_chunk, last_piece) = self.locate(last_pos);
        let mut state = self.state.lock();
        let first_key = self.key_of(first_chunk, first_piece);
        let last_key = self.key_of(last_chunk, last_piece);
        let fetching: Vec<u64> = state
            .flights
            .range(first_key..=last_key)
            .map(|(&key, _)| key)
            .collect();
        for key in fetching {
            state.flights.remove(&key);
        }
        let all = self.pieces_per_chunk - 1;
        for chunk in state.residents.chunks_in(first_chunk, last_chunk) {
            let from = if chunk == first_chunk { first_piece } else { 0 };
            let to = if chunk == last_chunk { last_piece } else { all };
            if from == 0 && to == all {
                for piece in state.residents.remove_chunk(chunk) {
                    self.cache.remove(&key(self.key_of(chunk, piece)));
                }
            } else {
                for piece in from..=to {
                    if state.residents.remove_piece(chunk, piece) {
                        self.cache.remove(&key(self.key_of(chunk, piece)));
                    }
                }
            }
        }
    }

    /// The chunk and the piece in it that hold byte `pos`.
    fn locate(&self, pos: u64) -> (u64, u32) {
        let chunk = pos / self.chunk_size;
        let piece = (pos % self.chunk_size) / self.piece_size;
        (chunk, piece as u32)
    }

    /// The piece's number over the whole device: its spill-cache key.
    fn key_of(&self, chunk: u64, piece: u32) -> u64 {
        // Pieces tile the device, so this cannot overflow for a position
        // below 2^64; saturating keeps a debug build quiet regardless.
        chunk
            .saturating_mul(u64::from(self.pieces_per_chunk))
            .saturating_add(u64::from(piece))
    }

    /// The piece holding byte `pos`, clipped to the chunk and to `size`.
    fn piece_at(&self, pos: u64, size: u64) -> Piece {
        let (chunk, index) = self.locate(pos);
        let chunk_start = chunk * self.chunk_size;
        let start = chunk_start + u64::from(index) * self.piece_size;
        let end = start
            .saturating_add(self.piece_size)
            .min(chunk_start.saturating_add(self.chunk_size))
            .min(size);
        Piece {
            chunk,
            index,
            start,
            end,
        }
    }

    /// Decides, under the lock, what a read of `pos..end` does with each
    /// piece: read it from the tier, join the flight fetching it, or claim
    /// it (consecutive claims make one run, one device read).
    fn plan(&self, pos: u64, end: u64, size: u64) -> Plan {
        let mut plan = Plan::default();
        let mut state = self.state.lock();
        plan.epoch = self.epoch.load(SeqCst);
        if refreshing(plan.epoch) {
            // A refresh is under way: neither the pieces held nor the
            // device's bytes are sure to be of one version.
            return plan;
        }
        let mut claimed_last = false;
        let mut at = pos;
        while at < end {
            let piece = self.piece_at(at, size);
            at = piece.end;
            let key = self.key_of(piece.chunk, piece.index);
            let claimed = if state.residents.contains(piece.chunk, piece.index) {
                state.residents.touch(piece.chunk);
                plan.present.push(piece);
                false
            } else if let Some(flight) = state.flights.get(&key) {
                flight.join();
                self.stats.fetch_waits.fetch_add(1, Relaxed);
                plan.joined.push((piece, Arc::clone(flight)));
                false
            } else {
                match plan.runs.last_mut() {
                    Some(run) if claimed_last => run.pieces.push(piece),
                    _ => plan.runs.push(Run {
                        pieces: vec![piece],
                        flight: Flight::new(),
                    }),
                }
                if let Some(run) = plan.runs.last() {
                    state.flights.insert(key, Arc::clone(&run.flight));
                }
                true
            };
            claimed_last = claimed;
        }
        plan
    }

    /// One try of a read of `buf.len()` bytes at `pos`: fetch what it
    /// claimed, read what the tier holds, wait for what others fetch.
    /// `failures` counts the failed flights this read has joined.
    fn try_read(&self, pos: u64, buf: &mut [u8], size: u64, failures: &mut u32) -> io::Result<Try> {
        let end = pos + buf.len() as u64;
        let plan = self.plan(pos, end, size);
        if refreshing(plan.epoch) {
            return Ok(Try::Direct);
        }
        // Fetch first, so no read waits for this one longer than its fetch.
        let mut claims: Vec<Claim<'_, D, F>> = plan
            .runs
            .into_iter()
            .map(|run| Claim {
                tier: self,
                run,
                done: false,
            })
            .collect();
        for claim in &mut claims {
            self.fetch(claim, pos, buf)?;
        }
        drop(claims);
        let mut scratch = Vec::new();
        for piece in &plan.present {
            if !self.read_present(piece, pos, buf, &mut scratch) {
                // Evicted or cleared since the plan, or unreadable.
                self.read_direct(piece, pos, buf)?;
            }
        }
        for (piece, flight) in &plan.joined {
            match flight.wait() {
                Outcome::Fetched { start, bytes } => {
                    let from = (piece.start - start) as usize;
                    match bytes.get(from..from + piece.len() as usize) {
                        Some(piece_bytes) => copy_overlap(piece.start, piece_bytes, pos, buf),
                        // The device's size changed between the fetcher's
                        // plan and this one: its piece is shorter.
                        None => self.read_direct(piece, pos, buf)?,
                    }
                }
                Outcome::Failed { kind, message } => {
                    *failures += 1;
                    if *failures > 1 {
                        return Err(io::Error::new(kind, message));
                    }
                    return Ok(Try::Again);
                }
                Outcome::Abandoned | Outcome::Pending => return Ok(Try::Again),
            }
        }
        if self.epoch.load(SeqCst) != plan.epoch {
            return Ok(Try::Again);
        }
        Ok(Try::Done)
    }

    /// Reads the run of `claim` from the device with one call, keeps its
    /// pieces if no clear or invalidation forgot the flight meanwhile,
    /// hands the bytes to the readers that joined, and copies the part
    /// inside `pos..pos + buf.len()` into `buf`.
    fn fetch(&self, claim: &mut Claim<'_, D, F>, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let (start, end) = (claim.run.start(), claim.run.end());
        let inside = start >= pos && end <= pos + buf.len() as u64;
        let mut scratch = Vec::new();
        // A run inside the read lands in `buf` directly: no second copy.
        let bytes = if inside {
            let at = (start - pos) as usize;
            &mut buf[at..at + (end - start) as usize]
        } else {
            scratch.resize((end - start) as usize, 0);
            &mut scratch[..]
        };
        self.count_fetch(end - start);
        if let Err(err) = self.device.read_exact_at(start, bytes) {
            claim.finish(Outcome::Failed {
                kind: err.kind(),
                message: err.to_string(),
            });
            return Err(err);
        }
        self.stats
            .chunk_misses
            .fetch_add(claim.run.pieces.len() as u64, Relaxed);
        let waited = {
            let mut state = self.state.lock();
            for piece in &claim.run.pieces {
                let key = self.key_of(piece.chunk, piece.index);
                let ours = state
                    .flights
                    .get(&key)
                    .is_some_and(|flight| Arc::ptr_eq(flight, &claim.run.flight));
                if ours {
                    state.flights.remove(&key);
                    let at = (piece.start - start) as usize;
                    self.insert(&mut state, piece, &bytes[at..at + piece.len() as usize]);
                }
            }
            // Final: the flight is out of the table, no reader can join.
            claim.run.flight.has_waiters()
        };
        if waited {
            claim.run.flight.finish(Outcome::Fetched {
                start,
                bytes: Arc::from(&*bytes),
            });
        }
        claim.done = true;
        if !inside {
            copy_overlap(start, &scratch, pos, buf);
        }
        Ok(())
    }

    fn count_fetch(&self, len: u64) {
        self.stats.device_reads.fetch_add(1, Relaxed);
        self.stats.bytes_fetched.fetch_add(len, Relaxed);
    }

    /// Copies the part of `piece` inside the read from the spill cache into
    /// `buf`; `false` when it is not there (or unreadable, then dropped).
    fn read_present(&self, piece: &Piece, pos: u64, buf: &mut [u8], scratch: &mut Vec<u8>) -> bool {
        let len = piece.len() as usize;
        let cache_key = key(self.key_of(piece.chunk, piece.index));
        let inside = piece.start >= pos && piece.end <= pos + buf.len() as u64;
        let result = if inside {
            // A whole piece inside the read goes straight into `buf`.
            let at = (piece.start - pos) as usize;
            self.cache
                .get_into_slice(&cache_key, &mut buf[at..at + len])
        } else {
            scratch.resize(len, 0);
            self.cache.get_into_slice(&cache_key, scratch)
        };
        match result {
            Ok(Some(got)) if got == len => {
                self.stats.chunk_hits.fetch_add(1, Relaxed);
                if !inside {
                    copy_overlap(piece.start, scratch, pos, buf);
                }
                true
            }
            Ok(None) => false,
            // A length that disagrees with the device (its size changed), a
            // failed integrity check or an unreadable file: never served.
            Ok(Some(_)) | Err(_) => {
                self.stats.dropped_corrupt.fetch_add(1, Relaxed);
                let mut state = self.state.lock();
                state.residents.remove_piece(piece.chunk, piece.index);
                self.cache.remove(&cache_key);
                false
            }
        }
    }

    /// Reads the part of `piece` inside the read straight from the device,
    /// keeping nothing: a piece that left the tier after the plan.
    fn read_direct(&self, piece: &Piece, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = piece.start.max(pos);
        let end = piece.end.min(pos + buf.len() as u64);
        self.count_fetch(end - start);
        let at = (start - pos) as usize;
        self.device
            .read_exact_at(start, &mut buf[at..at + (end - start) as usize])
    }

    /// Adds `piece`, evicting chunks until it fits (under the lock, so the
    /// index and the cache agree for every reader).
    fn insert(&self, state: &mut State, piece: &Piece, bytes: &[u8]) {
        let len = piece.len();
        if state.residents.contains(piece.chunk, piece.index) {
            return;
        }
        while state.residents.bytes() + len > self.budget {
            let Some((chunk, pieces)) = state.residents.evict_one(self.budget) else {
                break;
            };
            for evicted in pieces {
                self.cache.remove(&key(self.key_of(chunk, evicted)));
            }
            self.stats.evictions.fetch_add(1, Relaxed);
        }
        // `try_add`, never `add`: on a disk that stays full the bytes
        // waiting to be written never drain, and a read must not wait for
        // them; the piece is served from the device and simply not kept.
        let cache_key = key(self.key_of(piece.chunk, piece.index));
        match self.cache.try_add(&cache_key, bytes) {
            Ok(()) => {
                state
                    .residents
                    .add_piece(piece.chunk, piece.index, self.pieces_per_chunk, len);
            }
            Err(Error::Full { .. }) => {
                self.stats.skipped_full.fetch_add(1, Relaxed);
            }
            // Nothing kept; the read itself was served.
            Err(_) => {}
        }
    }
}

/// A run a read claimed: until it is published, a guard that abandons it,
/// so a read that fails or panics never leaves its joiners waiting.
struct Claim<'t, D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    tier: &'t SpillTier<D, F>,
    run: Run,
    done: bool,
}

impl<D, F> Claim<'_, D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    /// Unregisters the run's pieces still registered to it, and ends the
    /// flight with `outcome`.
    fn finish(&mut self, outcome: Outcome) {
        {
            let mut state = self.tier.state.lock();
            for piece in &self.run.pieces {
                let key = self.tier.key_of(piece.chunk, piece.index);
                if state
                    .flights
                    .get(&key)
                    .is_some_and(|flight| Arc::ptr_eq(flight, &self.run.flight))
                {
                    state.flights.remove(&key);
                }
            }
        }
        self.run.flight.finish(outcome);
        self.done = true;
    }
}

impl<D, F> Drop for Claim<'_, D, F>
where
    D: ReadAt,
    F: ReadAt + WriteAt + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::Abandoned);
        }
    }
}

/// Counts one refresh under way in the tier's epoch for as long as it
/// lives, so no read that overlaps it is served from the tier's pieces;
/// a device whose refresh panics does not leave it counted.
struct Refreshing<'a>(&'a AtomicU64);

impl<'a> Refreshing<'a> {
    fn start(epoch: &'a AtomicU64) -> Self {
        epoch.fetch_add(1, SeqCst);
        Refreshing(epoch)
    }
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

fn key(piece: u64) -> [u8; 8] {
    piece.to_be_bytes()
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
        let mut failures = 0;
        let mut done = false;
        for _ in 0..MAX_TRIES {
            match self.try_read(pos, buf, size, &mut failures)? {
                Try::Done => {
                    done = true;
                    break;
                }
                Try::Again => {}
                Try::Direct => break,
            }
        }
        if !done {
            // A refresh is under way, or every try raced with a clear or a
            // failing flight: read the device itself, which returns one
            // version, and keep nothing.
            self.count_fetch(len as u64);
            self.device.read_exact_at(pos, buf)?;
        }
        self.stats.bytes_read.fetch_add(len as u64, Relaxed);
        Ok(len)
    }

    fn size(&self) -> io::Result<u64> {
        self.device.size()
    }

    /// Refreshes the device, then, unless it says nothing changed, drops
    /// every chunk ([`clear`](SpillTier::clear)); a device that fails to
    /// refresh may have moved on, so its chunks are dropped too. One call
    /// for a stack: `PageCache::refresh` calls this.
    ///
    /// Reads that overlap the call return the bytes of one version whole:
    /// while it runs they read the device directly, keeping nothing, and
    /// a read that it crosses starts again. A device whose refresh panics
    /// may have moved on too: the chunks are dropped before the panic
    /// unwinds on.
    ///
    /// # Errors
    /// The device's error; or the spill file's, when truncating it fails
    /// (the chunks are gone anyway).
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt, WriteAt};
    ///
    /// let slow = MemDevice::from_vec(vec![1; 100]);
    /// let tier = spillcache::SpillTier::with_chunk_size(slow.clone(), "/tmp", 128, 64)?;
    /// tier.read_exact_at(0, &mut [0u8; 10])?;
    /// slow.write_all_at(0, &[2; 100])?;
    /// assert!(tier.refresh()?); // a MemDevice cannot tell: may have changed
    /// let mut buf = [0u8; 10];
    /// tier.read_exact_at(0, &mut buf)?;
    /// assert_eq!(buf, [2; 10]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn refresh(&self) -> io::Result<bool> {
        let _refreshing = Refreshing::start(&self.epoch);
        let below =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.device.refresh()))
                .unwrap_or_else(|panic| {
                    // The device may have moved on before it panicked: its
                    // chunks go, as after an error, and the panic goes on up.
                    let _ = self.clear();
                    std::panic::resume_unwind(panic)
                });
        if matches!(below, Ok(false)) {
            return below;
        }
        let cleared = self.clear();
        let changed = below?;
        cleared.map_err(|err| match err {
            Error::Io(err) => err,
            err => io::Error::other(err),
        })?;
        Ok(changed)
    }

    /// Passes the hint on, narrowed to the span from the first to the last
    /// piece the tier lacks, widened to whole pieces (what a miss reads).
    fn will_need(&self, pos: u64, len: u64) {
        let Ok(size) = self.device.size() else {
            return;
        };
        let end = pos.saturating_add(len).min(size);
        if pos >= end {
            return;
        }
        let (first, last) = {
            let state = self.state.lock();
            let lacking = |at: u64| {
                let piece = self.piece_at(at, size);
                (!state.residents.contains(piece.chunk, piece.index)).then_some(piece)
            };
            let mut at = pos;
            let first = loop {
                let piece = self.piece_at(at, size);
                if let Some(piece) = lacking(at) {
                    break Some(piece);
                }
                if piece.end >= end {
                    break None;
                }
                at = piece.end;
            };
            let Some(first) = first else {
                return;
            };
            let mut at = end - 1;
            let last = loop {
                if let Some(piece) = lacking(at) {
                    break piece;
                }
                // `first` lacks, so this stops there at the latest.
                at = self.piece_at(at, size).start - 1;
            };
            (first, last)
        };
        self.device.will_need(first.start, last.end - first.start);
    }

    /// Passes the cap on to the device: the tier reads nothing ahead
    /// itself, so what the device below fetches ahead is all of it.
    fn limit_read_ahead(&self, max_bytes: u64) {
        self.device.limit_read_ahead(max_bytes);
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
            .field("piece_size", &self.piece_size)
            .field("budget", &self.budget)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use blockdev::MemDevice;

    use super::*;
    use crate::Builder;

    /// Invalidating `k` chunks of the `n` held visits O(k) queue entries:
    /// with a search of the queue per chunk, 80 k chunks took 12.4 s,
    /// every read waiting on the lock meanwhile.
    #[test]
    fn invalidating_k_chunks_of_n_is_linear_in_k() {
        let n = 20_000u64;
        let chunk = 64;
        let device = MemDevice::from_vec(vec![7; (n * chunk) as usize]);
        let cache = Builder::with_file_factory(|| Ok(MemDevice::new()))
            .build()
            .expect("in-memory spill cache");
        let tier = SpillTier::with_cache(device, cache, n * chunk, chunk).expect("valid shape");
        tier.read_exact_at(0, &mut vec![0; (n * chunk) as usize])
            .expect("read everything");
        assert_eq!(tier.stats().resident_bytes, n * chunk);
        let steps_before = tier.state.lock().residents.steps();
        let k = 500;
        // Scattered, one call each: the worst case of a search per chunk.
        for at in 0..k {
            tier.invalidate(at * 19 * chunk, 1);
        }
        // And a range of `k` more in one call.
        tier.invalidate(n / 2 * chunk, k * chunk);
        let steps = tier.state.lock().residents.steps() - steps_before;
        assert!(
            steps <= 4 * k,
            "{steps} queue steps to drop {} of {n} chunks",
            2 * k
        );
        assert_eq!(tier.stats().resident_bytes, (n - 2 * k) * chunk);
        assert_eq!(tier.spill_cache().len() as u64, n - 2 * k);
    }
}
