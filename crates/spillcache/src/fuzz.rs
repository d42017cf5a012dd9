//! Op sequences applied to a cache and to a `HashMap` model side by side.
//!
//! The fuzz target `spillcache_ops` and the crate's proptests both call
//! [`run`]; `spillcache_pressure` and the pressure tests call
//! [`run_pressure`] (backpressure and a disk that fills up and gets space
//! back, [`LimitedDisk`]). Built with the `fuzzing` feature, which also derives
//! `arbitrary::Arbitrary` for the types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice};

use crate::builder::Builder;
use crate::cache::SpillCache;
use crate::error::Error;

/// Keys are `b"k"` plus one byte below this, so ops collide often.
///
/// ```
/// // Key bytes 3 and 19 name the same key.
/// assert_eq!(3 % spillcache::fuzz::KEY_SPACE, 19 % spillcache::fuzz::KEY_SPACE);
/// ```
pub const KEY_SPACE: u8 = 16;

/// How long a checking step may wait for the writer before it is a failure.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// One operation on the cache.
///
/// ```
/// use spillcache::fuzz::Op;
///
/// let op = Op::Add { key: 3, len: 100, fill: 7 };
/// assert!(format!("{op:?}").starts_with("Add"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// `add` a value of `len % 4097` bytes made from `fill` (and a serial number).
    Add {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
        /// Value length.
        len: u16,
        /// Value pattern.
        fill: u8,
    },
    /// `add_memory_only` a value like [`Op::Add`]'s.
    AddMemoryOnly {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
        /// Value length.
        len: u16,
        /// Value pattern.
        fill: u8,
    },
    /// `remove` a key.
    Remove {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
    },
    /// `get` a key, optionally storing a copy in RAM.
    Get {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
        /// Use `get_and_store_in_ram`.
        store_in_ram: bool,
    },
    /// `remove_from_ram` for keys whose byte is a multiple of `divisor + 1`.
    RemoveFromRam {
        /// Picks the keys.
        divisor: u8,
    },
    /// `clear` the cache.
    Clear,
    /// `wait_for_write` until everything is on disk (retrying through
    /// injected write errors).
    Wait,
    /// Force a defragmentation.
    Defrag,
}

/// A cache configuration and the ops to run on it.
///
/// ```
/// use spillcache::fuzz::{run, Op, Scenario};
///
/// let scenario = Scenario {
///     small_hole_threshold: 0,
///     defrag_factor: 0,
///     ram_budget: 0,
///     write_fault_every: 0,
///     ops: vec![Op::Add { key: 1, len: 10, fill: 0 }, Op::Wait, Op::Remove { key: 1 }],
/// };
/// run(&scenario)?;
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct Scenario {
    /// Picks [`Builder::small_hole_threshold`]: 0 (even) or 64 (odd).
    pub small_hole_threshold: u8,
    /// Picks [`Builder::defrag_factor`] by its value modulo 3: 1, 1.5 or 16.9.
    pub defrag_factor: u8,
    /// Picks [`Builder::ram_budget`]: 0 (even) or 4096 (odd).
    pub ram_budget: u16,
    /// Picks the injected write faults by its value modulo 3: none, or every
    /// 3rd or 7th device write fails with `EIO`.
    pub write_fault_every: u8,
    /// The ops, in order (the first [`MAX_OPS`] of them).
    pub ops: Vec<Op>,
}

/// A cache over fault-injecting in-memory devices.
type FuzzCache = Arc<SpillCache<FaultyDevice<MemDevice>>>;

thread_local! {
    /// One cache per configuration, reused by every run on this thread.
    static CACHES: std::cell::RefCell<HashMap<ConfigKey, FuzzCache>> =
        std::cell::RefCell::new(HashMap::new());
}

/// The options a scenario picks, each from a few levels (so that few
/// caches serve every input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConfigKey {
    small_hole_threshold: u64,
    /// `defrag_factor` is `1 + defrag_sixteenths / 16`.
    defrag_sixteenths: u8,
    ram_budget: u64,
    write_fault_every: u8,
}

impl ConfigKey {
    fn of(scenario: &Scenario) -> Self {
        ConfigKey {
            small_hole_threshold: [0, 64][usize::from(scenario.small_hole_threshold % 2)],
            defrag_sixteenths: [0, 8, 255][usize::from(scenario.defrag_factor % 3)],
            ram_budget: [0, 4096][usize::from(scenario.ram_budget % 2)],
            write_fault_every: [0, 3, 7][usize::from(scenario.write_fault_every % 3)],
        }
    }

    fn build(self) -> Result<SpillCache<FaultyDevice<MemDevice>>, String> {
        let fault_every = u64::from(self.write_fault_every);
        Builder::with_file_factory(move || {
            let device = FaultyDevice::new(MemDevice::new());
            if fault_every >= 2 {
                device.fail_writes(Fault::Every(fault_every, Errno::IO));
            }
            Ok(device)
        })
        .small_hole_threshold(self.small_hole_threshold)
        .defrag_factor(1.0 + f64::from(self.defrag_sixteenths) / 16.0)
        .ram_budget(self.ram_budget)
        .retry_backoff(Duration::from_micros(50), Duration::from_millis(1))
        .build()
        .map_err(|e| format!("build: {e}"))
    }
}

/// Ops of a scenario that are run (the rest are ignored): keeps every
/// input cheap; longer sequences mostly repeat what shorter ones reach.
pub const MAX_OPS: usize = 32;

/// Longest value an op adds: keeps every input cheap.
const MAX_VALUE_LEN: u16 = 4096;

/// What the model knows of one key.
#[derive(Clone, Debug)]
struct Expected {
    value: Vec<u8>,
    memory_only: bool,
}

fn key_bytes(key: u8) -> [u8; 2] {
    [b'k', key % KEY_SPACE]
}

/// A value unique to `serial`, so a stale value can never pass for a new one.
fn value(len: u16, fill: u8, serial: u64) -> Vec<u8> {
    let mut bytes = vec![fill; usize::from(len)];
    for (b, s) in bytes.iter_mut().zip(serial.to_le_bytes()) {
        *b = s;
    }
    bytes
}

/// Runs `scenario` against a cache over in-memory devices and a `HashMap`
/// model (each thread keeps one cache per configuration and reuses it,
/// cleared, so an input costs no thread or file), checking after every op
/// that the keys it touched (all keys after a clear, wait, defrag or
/// `remove_from_ram`) read as the model says and that the counters and
/// internal invariants hold. At the end (without injected
/// faults), after a wait and a forced defragmentation, the file holds exactly
/// the spilled values.
///
/// # Errors
/// A description of the first disagreement.
///
/// ```
/// use spillcache::fuzz::{run, Op, Scenario};
///
/// let ops = vec![
///     Op::Add { key: 0, len: 500, fill: 1 },
///     Op::Add { key: 1, len: 20, fill: 2 },
///     Op::Wait,
///     Op::Remove { key: 0 },
///     Op::Defrag,
///     Op::Get { key: 1, store_in_ram: true },
/// ];
/// run(&Scenario { small_hole_threshold: 4, defrag_factor: 16, ram_budget: 0, write_fault_every: 3, ops })?;
/// # Ok::<(), String>(())
/// ```
pub fn run(scenario: &Scenario) -> Result<(), String> {
    let key = ConfigKey::of(scenario);
    let cache = CACHES.with(|caches| -> Result<FuzzCache, String> {
        let mut caches = caches.borrow_mut();
        if let Some(cache) = caches.get(&key) {
            return Ok(Arc::clone(cache));
        }
        let cache = Arc::new(key.build()?);
        caches.insert(key, Arc::clone(&cache));
        Ok(cache)
    })?;
    // A reused cache starts empty, with its fault counting re-armed. (An
    // empty one is left alone: a clear wakes the writer, a thread handoff
    // that costs more than many ops.)
    if !cache.is_empty() || cache.size_on_disk() != 0 {
        cache
            .clear()
            .map_err(|e| format!("clear before the run: {e}"))?;
    }
    let fault_every = u64::from(key.write_fault_every);
    if fault_every >= 2 {
        cache
            .current_file()
            .fail_writes(Fault::Every(fault_every, Errno::IO));
    }
    let cache = &*cache;
    let mut model: HashMap<u8, Expected> = HashMap::new();
    for (serial, op) in scenario.ops.iter().take(MAX_OPS).enumerate() {
        apply(cache, &mut model, op, serial as u64)
            .map_err(|e| format!("op {serial} {op:?}: {e}"))?;
        // The op's own key after each op; every key after ops that touch
        // many, and at the end (reading all 16 keys each time was most of
        // an input's cost).
        match touched(op) {
            Some(key) => check_keys(cache, &model, std::iter::once(key)),
            None => check(cache, &model),
        }
        .map_err(|e| format!("after op {serial} {op:?}: {e}"))?;
    }

    wait_all(cache)?;
    // A defrag copies through the faulty device too, so with faults it may
    // keep failing; without them it must leave exactly the spilled bytes.
    if fault_every < 2 && cache.size_on_disk() > 0 {
        match cache.defrag(STEP_TIMEOUT) {
            Ok(true) => {}
            other => return Err(format!("final defrag: {other:?}")),
        }
        let spilled: u64 = model
            .values()
            .filter(|e| !e.memory_only)
            .map(|e| e.value.len() as u64)
            .sum();
        if cache.size_on_disk() != spilled || !cache.holes().is_empty() {
            return Err(format!(
                "after a final defrag: size_on_disk {} with holes {:?}, spilled values hold {spilled} bytes",
                cache.size_on_disk(),
                cache.holes()
            ));
        }
    }
    check(cache, &model)
}

fn apply<D>(
    cache: &SpillCache<D>,
    model: &mut HashMap<u8, Expected>,
    op: &Op,
    serial: u64,
) -> Result<(), String>
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    match *op {
        Op::Add { key, len, fill } | Op::AddMemoryOnly { key, len, fill } => {
            let memory_only = matches!(op, Op::AddMemoryOnly { .. });
            let bytes = value(len % (MAX_VALUE_LEN + 1), fill, serial);
            if memory_only {
                cache.add_memory_only(&key_bytes(key), &bytes)
            } else {
                cache.add(&key_bytes(key), &bytes)
            }
            .map_err(|e| e.to_string())?;
            model.insert(
                key % KEY_SPACE,
                Expected {
                    value: bytes,
                    memory_only,
                },
            );
        }
        Op::Remove { key } => {
            let was = model.remove(&(key % KEY_SPACE)).is_some();
            let removed = cache.remove(&key_bytes(key));
            if removed != was {
                return Err(format!(
                    "remove returned {removed}, model had the key: {was}"
                ));
            }
        }
        Op::Get { key, store_in_ram } => {
            let got = if store_in_ram {
                cache.get_and_store_in_ram(&key_bytes(key))
            } else {
                cache.get(&key_bytes(key))
            }
            .map_err(|e| e.to_string())?;
            let want = model.get(&(key % KEY_SPACE)).map(|e| &e.value);
            if got.as_ref() != want {
                return Err("get disagrees with the model".into());
            }
        }
        Op::RemoveFromRam { divisor } => {
            let divisor = divisor % KEY_SPACE + 1;
            cache.remove_from_ram(|k| k.len() == 2 && k[1] % divisor == 0);
        }
        Op::Clear => {
            cache.clear().map_err(|e| e.to_string())?;
            model.clear();
            if cache.size_on_disk() != 0 {
                return Err(format!("size_on_disk {} after clear", cache.size_on_disk()));
            }
        }
        Op::Wait => wait_all(cache)?,
        Op::Defrag => match cache.defrag(STEP_TIMEOUT) {
            Ok(true) | Err(Error::DefragFailed(_)) => {}
            other => return Err(format!("defrag: {other:?}")),
        },
    }
    Ok(())
}

/// Waits until every value is on disk, retrying through write errors.
fn wait_all<D>(cache: &SpillCache<D>) -> Result<(), String>
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    for _ in 0..10_000 {
        match cache.wait_for_write(STEP_TIMEOUT) {
            Ok(true) => return Ok(()),
            Ok(false) => return Err("wait_for_write timed out".into()),
            Err(Error::WriteFailed(_)) => {}
            Err(e) => return Err(format!("wait_for_write: {e}")),
        }
    }
    Err("writes kept failing".into())
}

/// Every key reads as the model says; counters and invariants agree.
fn check<D>(cache: &SpillCache<D>, model: &HashMap<u8, Expected>) -> Result<(), String>
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    check_keys(cache, model, 0..KEY_SPACE)
}

/// The key an op touches, when it touches one key only.
fn touched(op: &Op) -> Option<u8> {
    match *op {
        Op::Add { key, .. }
        | Op::AddMemoryOnly { key, .. }
        | Op::Remove { key }
        | Op::Get { key, .. } => Some(key % KEY_SPACE),
        _ => None,
    }
}

/// Like [`check`] for some keys only (counters and invariants in full).
fn check_keys<D>(
    cache: &SpillCache<D>,
    model: &HashMap<u8, Expected>,
    keys: impl Iterator<Item = u8>,
) -> Result<(), String>
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    let mut buf = Vec::new();
    for key in keys {
        let found = cache
            .get_into(&key_bytes(key), &mut buf)
            .map_err(|e| format!("get of key {key}: {e}"))?;
        match model.get(&key) {
            Some(expected) if !found || buf != expected.value => {
                return Err(format!(
                    "key {key}: found {found} ({} bytes), model has {} bytes",
                    buf.len(),
                    expected.value.len()
                ));
            }
            None if found => return Err(format!("key {key}: found, model has none")),
            _ => {}
        }
    }
    let total: u64 = model.values().map(|e| e.value.len() as u64).sum();
    if cache.total_size() != total || cache.len() != model.len() {
        return Err(format!(
            "len {} total_size {}, model {} and {total}",
            cache.len(),
            cache.total_size(),
            model.len()
        ));
    }
    cache.check_invariants()
}

/// Bytes a [`LimitedDisk`] holds at most, shared by every file made on it.
///
/// ```
/// use blockdev::WriteAt;
/// use spillcache::fuzz::LimitedDisk;
///
/// let disk = LimitedDisk::new(10);
/// let file = disk.file();
/// assert!(file.write_all_at(0, &[1u8; 11]).is_err()); // out of space
/// disk.set_capacity(20); // space comes back
/// file.write_all_at(0, &[1u8; 11])?;
/// assert_eq!(disk.used(), 11);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct LimitedDisk {
    space: Arc<Mutex<DiskSpace>>,
}

#[derive(Debug, Default)]
struct DiskSpace {
    capacity: u64,
    used: u64,
}

impl LimitedDisk {
    /// A disk of `capacity` bytes.
    ///
    /// ```
    /// assert_eq!(spillcache::fuzz::LimitedDisk::new(5).capacity(), 5);
    /// ```
    pub fn new(capacity: u64) -> Self {
        let disk = Self::default();
        disk.set_capacity(capacity);
        disk
    }

    /// Changes the capacity (files already bigger keep their bytes, but
    /// cannot grow).
    ///
    /// ```
    /// let disk = spillcache::fuzz::LimitedDisk::new(5);
    /// disk.set_capacity(50);
    /// assert_eq!(disk.capacity(), 50);
    /// ```
    pub fn set_capacity(&self, capacity: u64) {
        self.space.lock().capacity = capacity;
    }

    /// The capacity.
    ///
    /// ```
    /// assert_eq!(spillcache::fuzz::LimitedDisk::new(7).capacity(), 7);
    /// ```
    pub fn capacity(&self) -> u64 {
        self.space.lock().capacity
    }

    /// Bytes the files on the disk hold (their sizes).
    ///
    /// ```
    /// assert_eq!(spillcache::fuzz::LimitedDisk::new(7).used(), 0);
    /// ```
    pub fn used(&self) -> u64 {
        self.space.lock().used
    }

    /// A new empty file on the disk; its size counts as used until dropped.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let disk = spillcache::fuzz::LimitedDisk::new(7);
    /// assert_eq!(disk.file().size()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file(&self) -> LimitedFile {
        LimitedFile {
            disk: self.clone(),
            bytes: MemDevice::new(),
        }
    }
}

/// A file on a [`LimitedDisk`]: growing it past the disk's capacity fails
/// with `ENOSPC`; cutting it gives the space back.
///
/// ```
/// use blockdev::WriteAt;
///
/// let disk = spillcache::fuzz::LimitedDisk::new(100);
/// let file = disk.file();
/// file.write_all_at(0, &[0u8; 100])?;
/// file.set_len(40)?;
/// assert_eq!(disk.used(), 40);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LimitedFile {
    disk: LimitedDisk,
    bytes: MemDevice,
}

impl LimitedFile {
    /// Runs `change` (which sets the file's size to at most `new_len`, or to
    /// exactly it) if the disk has room, with the disk's count locked so that
    /// concurrent changes (the writer's writes, a `clear`'s cut) keep it
    /// exact.
    fn resize<T>(
        &self,
        new_len: u64,
        change: impl FnOnce() -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut space = self.disk.space.lock();
        let old_len = blockdev::ReadAt::size(&self.bytes)?;
        if new_len > old_len && space.used + (new_len - old_len) > space.capacity {
            return Err(std::io::Error::from(Errno::NOSPC));
        }
        let result = change();
        let now_len = blockdev::ReadAt::size(&self.bytes)?;
        space.used = (space.used + now_len).saturating_sub(old_len);
        result
    }
}

impl Drop for LimitedFile {
    fn drop(&mut self) {
        let len = blockdev::ReadAt::size(&self.bytes).unwrap_or(0);
        let mut space = self.disk.space.lock();
        space.used = space.used.saturating_sub(len);
    }
}

impl blockdev::ReadAt for LimitedFile {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.bytes.read_at(pos, buf)
    }

    fn size(&self) -> std::io::Result<u64> {
        self.bytes.size()
    }
}

impl blockdev::WriteAt for LimitedFile {
    fn write_at(&self, pos: u64, buf: &[u8]) -> std::io::Result<usize> {
        self.resize(pos.saturating_add(buf.len() as u64), || {
            self.bytes.write_at(pos, buf)
        })
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.resize(len, || self.bytes.set_len(len))
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One operation of a [`PressureScenario`].
///
/// ```
/// let op = spillcache::fuzz::PressureOp::Capacity { kib: 4 };
/// assert!(format!("{op:?}").contains("Capacity"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum PressureOp {
    /// `add_timeout` (0.1 ms) a value of `len` bytes; a `Full` answer means
    /// it was not stored.
    Add {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
        /// Value length.
        len: u16,
        /// Value pattern.
        fill: u8,
    },
    /// `try_add` a value, like [`PressureOp::Add`] without waiting.
    TryAdd {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
        /// Value length.
        len: u16,
        /// Value pattern.
        fill: u8,
    },
    /// `remove` a key.
    Remove {
        /// Key byte (taken modulo [`KEY_SPACE`]).
        key: u8,
    },
    /// Set the disk's capacity to `kib` KiB: the disk fills up or space
    /// comes back.
    Capacity {
        /// New capacity in KiB.
        kib: u8,
    },
    /// `wait_for_write` briefly (it may time out or report a failure).
    Wait,
    /// `defrag` (it may compact in place or fail for lack of space).
    Defrag,
}

/// A cache with a bound on waiting bytes over a [`LimitedDisk`], and the
/// ops to run on it.
///
/// ```
/// use spillcache::fuzz::{run_pressure, PressureOp, PressureScenario};
///
/// let ops = vec![
///     PressureOp::Capacity { kib: 1 },
///     PressureOp::Add { key: 0, len: 3000, fill: 1 },
///     PressureOp::TryAdd { key: 1, len: 3000, fill: 2 },
///     PressureOp::Capacity { kib: 64 },
/// ];
/// run_pressure(&PressureScenario { max_pending: 4000, ops })?;
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct PressureScenario {
    /// Picks [`Builder::max_pending_bytes`] by its value modulo 5: 0, 1,
    /// 3000, 10 000 or 65 535 bytes.
    pub max_pending: u16,
    /// The ops, in order (the first [`MAX_OPS`] of them).
    pub ops: Vec<PressureOp>,
}

/// The bounds on waiting bytes a pressure scenario picks from (by
/// `max_pending` modulo their number), so that a few reused caches serve
/// every input.
const PRESSURE_BOUNDS: [u64; 5] = [0, 1, 3000, 10_000, 65_535];

/// A cache over a [`LimitedDisk`], with the disk.
type PressureCache = (Arc<SpillCache<LimitedFile>>, LimitedDisk);

thread_local! {
    /// One pressure cache per bound, reused by every run on this thread.
    static PRESSURE_CACHES: std::cell::RefCell<HashMap<u64, PressureCache>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Longest value a pressure scenario adds: keeps inputs cheap.
const PRESSURE_MAX_LEN: u16 = 8192;

/// Runs `scenario` against a cache over a disk that runs out of space and
/// gets it back, and a `HashMap` model (each thread reuses one cache per
/// bound, cleared). After every op: every key reads as
/// the model says, the bytes waiting to be written stay within the bound
/// (or are one value), and the invariants hold. At the end, with space
/// back, everything is written, and a defrag packs the file.
///
/// # Errors
/// A description of the first disagreement.
///
/// ```
/// use spillcache::fuzz::{run_pressure, PressureOp, PressureScenario};
///
/// let ops = vec![
///     PressureOp::Add { key: 0, len: 4000, fill: 1 },
///     PressureOp::Wait,
///     PressureOp::Capacity { kib: 4 },
///     PressureOp::Add { key: 1, len: 4000, fill: 2 },
///     PressureOp::Remove { key: 0 },
///     PressureOp::Defrag,
/// ];
/// run_pressure(&PressureScenario { max_pending: 100, ops })?;
/// # Ok::<(), String>(())
/// ```
pub fn run_pressure(scenario: &PressureScenario) -> Result<(), String> {
    let limit = PRESSURE_BOUNDS[usize::from(scenario.max_pending) % PRESSURE_BOUNDS.len()];
    let (cache, disk) = PRESSURE_CACHES.with(|caches| -> Result<_, String> {
        let mut caches = caches.borrow_mut();
        if let Some(reused) = caches.get(&limit) {
            return Ok(reused.clone());
        }
        let disk = LimitedDisk::new(u64::MAX);
        let factory_disk = disk.clone();
        let cache = Builder::with_file_factory(move || Ok(factory_disk.file()))
            .max_pending_bytes(limit)
            .retry_backoff(Duration::from_micros(50), Duration::from_millis(1))
            .build()
            .map_err(|e| format!("build: {e}"))?;
        let made = (Arc::new(cache), disk);
        caches.insert(limit, made.clone());
        Ok(made)
    })?;
    // A reused cache starts empty, on a disk with room.
    disk.set_capacity(u64::MAX);
    if !cache.is_empty() || cache.size_on_disk() != 0 {
        cache
            .clear()
            .map_err(|e| format!("clear before the run: {e}"))?;
    }
    let cache = &*cache;
    let mut model: HashMap<u8, Expected> = HashMap::new();
    for (serial, op) in scenario.ops.iter().take(MAX_OPS).enumerate() {
        apply_pressure(cache, &disk, &mut model, op, serial as u64)
            .map_err(|e| format!("op {serial} {op:?}: {e}"))?;
        let pending = cache.pending_bytes();
        let largest = model
            .values()
            .map(|e| e.value.len() as u64)
            .max()
            .unwrap_or(0);
        if pending > limit && pending > largest {
            return Err(format!(
                "after op {serial} {op:?}: {pending} bytes wait, bound {limit}"
            ));
        }
        check(cache, &model).map_err(|e| format!("after op {serial} {op:?}: {e}"))?;
    }
    disk.set_capacity(u64::MAX);
    wait_all(cache)?;
    match cache.defrag(STEP_TIMEOUT) {
        Ok(true) => {}
        other => return Err(format!("final defrag: {other:?}")),
    }
    let live: u64 = model.values().map(|e| e.value.len() as u64).sum();
    if cache.size_on_disk() != live {
        return Err(format!(
            "after the final defrag size_on_disk is {}, values hold {live} bytes",
            cache.size_on_disk()
        ));
    }
    check(cache, &model)
}

fn apply_pressure(
    cache: &SpillCache<LimitedFile>,
    disk: &LimitedDisk,
    model: &mut HashMap<u8, Expected>,
    op: &PressureOp,
    serial: u64,
) -> Result<(), String> {
    match *op {
        PressureOp::Add { key, len, fill } | PressureOp::TryAdd { key, len, fill } => {
            let bytes = value(len % (PRESSURE_MAX_LEN + 1), fill, serial);
            let result = match op {
                PressureOp::Add { .. } => {
                    cache.add_timeout(&key_bytes(key), &bytes, Duration::from_micros(100))
                }
                _ => cache.try_add(&key_bytes(key), &bytes),
            };
            match result {
                Ok(()) => {
                    model.insert(
                        key % KEY_SPACE,
                        Expected {
                            value: bytes,
                            memory_only: false,
                        },
                    );
                }
                Err(Error::Full { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        PressureOp::Remove { key } => {
            let was = model.remove(&(key % KEY_SPACE)).is_some();
            if cache.remove(&key_bytes(key)) != was {
                return Err("remove disagrees with the model".into());
            }
        }
        PressureOp::Capacity { kib } => disk.set_capacity(u64::from(kib) * 1024),
        PressureOp::Wait => match cache.wait_for_write(Duration::from_millis(1)) {
            Ok(_) | Err(Error::WriteFailed(_)) => {}
            Err(e) => return Err(format!("wait_for_write: {e}")),
        },
        PressureOp::Defrag => match cache.defrag(STEP_TIMEOUT) {
            Ok(true) | Err(Error::DefragFailed(_)) => {}
            other => return Err(format!("defrag: {other:?}")),
        },
    }
    Ok(())
}
