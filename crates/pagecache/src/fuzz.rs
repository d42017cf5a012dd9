//! Op sequences applied to a cache and to a flat `Vec<u8>` model side by
//! side; the fuzz targets and the proptests both call these functions.
//!
//! [`read_ops`] drives a [`PageCache`] over an in-memory device that the
//! ops also change (then invalidate), and whose reads they can make fail.
//! [`write_ops`] drives a [`WriteBackCache`] whose device writes the ops
//! can make fail or come back short, and checks that nothing is lost.
//! Both return the first disagreement as a [`Mismatch`] instead of
//! panicking; the fuzz targets turn it into a crash.
//!
//! This module exists only with the cargo feature `fuzzing`, which also
//! derives `arbitrary::Arbitrary` for every input type.
//!
//! ```
//! use pagecache::fuzz::{At, Endian, ReadInput, ReadOp, Setup, Width, read_ops};
//!
//! let input = ReadInput {
//!     setup: Setup { device_len: 100, page_shift: 3, capacity_shift: 1, batch_shift: 1 },
//!     ops: vec![
//!         ReadOp::Get { width: Width::U64, endian: Endian::Be, at: At::FromEnd(4) },
//!         ReadOp::Read { at: At::Start(5), len: 40 },
//!         ReadOp::Write { at: At::FromEnd(1), bytes: vec![1, 2, 3] },
//!         ReadOp::Iter { at: At::Start(90), len: None },
//!     ],
//! };
//! read_ops(&input)?;
//! # Ok::<(), pagecache::fuzz::Mismatch>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use bincodec::{ByteSink, ByteSinkExt, ByteSource, ByteSourceExt, OutOfBounds};
use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};

use crate::{Builder, Error, PageCache, Slice, WriteBackCache};

/// Width and signedness of an integer getter or setter.
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Width {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    U128,
    I128,
}

/// Byte order of an integer getter or setter (ignored for 8-bit ones).
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Little-endian.
    Le,
    /// Big-endian.
    Be,
    /// Native-endian.
    Ne,
}

impl Width {
    /// Every width, for tests that go through all of them.
    ///
    /// ```
    /// assert_eq!(pagecache::fuzz::Width::ALL.len(), 10);
    /// ```
    pub const ALL: [Width; 10] = [
        Width::U8,
        Width::I8,
        Width::U16,
        Width::I16,
        Width::U32,
        Width::I32,
        Width::U64,
        Width::I64,
        Width::U128,
        Width::I128,
    ];
}

impl Width {
    /// Size of the integer in bytes.
    ///
    /// ```
    /// assert_eq!(pagecache::fuzz::Width::I64.bytes(), 8);
    /// ```
    pub fn bytes(self) -> u64 {
        match self {
            Width::U8 | Width::I8 => 1,
            Width::U16 | Width::I16 => 2,
            Width::U32 | Width::I32 => 4,
            Width::U64 | Width::I64 => 8,
            Width::U128 | Width::I128 => 16,
        }
    }
}

impl Endian {
    /// Every byte order.
    ///
    /// ```
    /// assert_eq!(pagecache::fuzz::Endian::ALL.len(), 3);
    /// ```
    pub const ALL: [Endian; 3] = [Endian::Le, Endian::Be, Endian::Ne];
}

macro_rules! by_width {
    ($width:expr, $endian:expr, $call:ident!($($arg:tt)*)) => {
        match ($width, $endian) {
            (Width::U8, _) => $call!(u8, get_u8, set_u8, $($arg)*),
            (Width::I8, _) => $call!(i8, get_i8, set_i8, $($arg)*),
            (Width::U16, Endian::Le) => $call!(u16, get_u16_le, set_u16_le, $($arg)*),
            (Width::U16, Endian::Be) => $call!(u16, get_u16_be, set_u16_be, $($arg)*),
            (Width::U16, Endian::Ne) => $call!(u16, get_u16_ne, set_u16_ne, $($arg)*),
            (Width::I16, Endian::Le) => $call!(i16, get_i16_le, set_i16_le, $($arg)*),
            (Width::I16, Endian::Be) => $call!(i16, get_i16_be, set_i16_be, $($arg)*),
            (Width::I16, Endian::Ne) => $call!(i16, get_i16_ne, set_i16_ne, $($arg)*),
            (Width::U32, Endian::Le) => $call!(u32, get_u32_le, set_u32_le, $($arg)*),
            (Width::U32, Endian::Be) => $call!(u32, get_u32_be, set_u32_be, $($arg)*),
            (Width::U32, Endian::Ne) => $call!(u32, get_u32_ne, set_u32_ne, $($arg)*),
            (Width::I32, Endian::Le) => $call!(i32, get_i32_le, set_i32_le, $($arg)*),
            (Width::I32, Endian::Be) => $call!(i32, get_i32_be, set_i32_be, $($arg)*),
            (Width::I32, Endian::Ne) => $call!(i32, get_i32_ne, set_i32_ne, $($arg)*),
            (Width::U64, Endian::Le) => $call!(u64, get_u64_le, set_u64_le, $($arg)*),
            (Width::U64, Endian::Be) => $call!(u64, get_u64_be, set_u64_be, $($arg)*),
            (Width::U64, Endian::Ne) => $call!(u64, get_u64_ne, set_u64_ne, $($arg)*),
            (Width::I64, Endian::Le) => $call!(i64, get_i64_le, set_i64_le, $($arg)*),
            (Width::I64, Endian::Be) => $call!(i64, get_i64_be, set_i64_be, $($arg)*),
            (Width::I64, Endian::Ne) => $call!(i64, get_i64_ne, set_i64_ne, $($arg)*),
            (Width::U128, Endian::Le) => $call!(u128, get_u128_le, set_u128_le, $($arg)*),
            (Width::U128, Endian::Be) => $call!(u128, get_u128_be, set_u128_be, $($arg)*),
            (Width::U128, Endian::Ne) => $call!(u128, get_u128_ne, set_u128_ne, $($arg)*),
            (Width::I128, Endian::Le) => $call!(i128, get_i128_le, set_i128_le, $($arg)*),
            (Width::I128, Endian::Be) => $call!(i128, get_i128_be, set_i128_be, $($arg)*),
            (Width::I128, Endian::Ne) => $call!(i128, get_i128_ne, set_i128_ne, $($arg)*),
        }
    };
}

macro_rules! call_getter {
    ($ty:ident, $get:ident, $set:ident, $src:expr, $pos:expr) => {
        $src.$get($pos).map(|value| value as u128)
    };
}

macro_rules! call_setter {
    ($ty:ident, $get:ident, $set:ident, $sink:expr, $pos:expr, $value:expr) => {
        $sink.$set($pos, $value as $ty)
    };
}

/// Reads the integer `width`/`endian` names at `pos` from any source; its
/// bits (sign-extended for signed types) come back as a `u128`.
///
/// # Errors
/// The source's error.
///
/// ```
/// use pagecache::fuzz::{get, Endian, Width};
///
/// let bytes = vec![0xff, 0x01];
/// assert_eq!(get(&bytes, Width::U16, Endian::Be, 0), Ok(0xff01));
/// assert_eq!(get(&bytes, Width::I8, Endian::Le, 0), Ok(u128::MAX));
/// ```
pub fn get<S: ByteSource + ?Sized>(
    src: &S,
    width: Width,
    endian: Endian,
    pos: u64,
) -> Result<u128, S::Error> {
    by_width!(width, endian, call_getter!(src, pos))
}

/// Writes the low bits of `value` as the integer `width`/`endian` names at
/// `pos` into any sink.
///
/// # Errors
/// The sink's error.
///
/// ```
/// use pagecache::fuzz::{set, Endian, Width};
///
/// let mut bytes = vec![0u8; 4];
/// set(&mut bytes, Width::U32, Endian::Be, 0, 0x0102_0304)?;
/// assert_eq!(bytes, [1, 2, 3, 4]);
/// # Ok::<(), pagecache::OutOfBounds>(())
/// ```
pub fn set<S: ByteSink + ?Sized>(
    sink: &mut S,
    width: Width,
    endian: Endian,
    pos: u64,
    value: u128,
) -> Result<(), S::Error> {
    by_width!(width, endian, call_setter!(sink, pos, value))
}

/// An address, given relative to the start or the end of the device so
/// that short inputs reach both edges.
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// This many bytes from the start.
    Start(u16),
    /// This many bytes before the end (the start if the device is shorter).
    FromEnd(u16),
    /// This many bytes past the end.
    PastEnd(u16),
    /// Exactly this address, however large.
    Raw(u64),
}

impl At {
    /// The address on a device of `len` bytes.
    ///
    /// ```
    /// use pagecache::fuzz::At;
    ///
    /// assert_eq!(At::FromEnd(3).resolve(10), 7);
    /// assert_eq!(At::PastEnd(3).resolve(10), 13);
    /// ```
    pub fn resolve(self, len: u64) -> u64 {
        match self {
            At::Start(n) => u64::from(n),
            At::FromEnd(n) => len.saturating_sub(u64::from(n)),
            At::PastEnd(n) => len + u64::from(n),
            At::Raw(addr) => addr,
        }
    }
}

/// Devices stay below this many bytes (see [`Setup::device_len`]).
const MAX_DEVICE_LEN: u32 = 5000;
/// Devices stay below this many pages (see [`Setup::device_len`]).
const MAX_DEVICE_PAGES: u32 = 64;

/// The shape of the cache and the initial device length.
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Initial device length is `device_len` modulo the smaller of 5000
    /// bytes and 64 pages (filled with a fixed pattern); small devices keep
    /// each fuzz run fast.
    pub device_len: u16,
    /// Page size is `1 << (page_shift % 13)`: 1 to 4096 bytes.
    pub page_shift: u8,
    /// Capacity is `1 << (capacity_shift % 7)`: 1 to 64 pages, and at
    /// most 16 KiB of pages.
    pub capacity_shift: u8,
    /// Batch is `1 << (batch_shift % (capacity bits + 1))` pages.
    pub batch_shift: u8,
}

impl Setup {
    fn builder(&self) -> Builder {
        let page_bits = u32::from(self.page_shift % 13);
        // At most 16 KiB of frames: the device is smaller than that, and
        // each input builds its cache anew.
        let capacity_bits = u32::from(self.capacity_shift % 7).min(14u32.saturating_sub(page_bits));
        let batch_bits = u32::from(self.batch_shift) % (capacity_bits + 1);
        Builder::new()
            .page_size(1 << page_bits)
            .capacity(1 << capacity_bits)
            .max_batch_pages(1 << batch_bits)
    }

    /// Devices of this setup stay below this many bytes: 5000, and at most
    /// 64 pages, so that every input (which ends reading the whole device)
    /// costs a bounded number of page misses.
    fn max_device_len(&self) -> u32 {
        MAX_DEVICE_LEN.min(MAX_DEVICE_PAGES << (self.page_shift % 13))
    }

    fn initial_bytes(&self) -> Vec<u8> {
        (0..u32::from(self.device_len) % self.max_device_len())
            .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
            .collect()
    }
}

/// One step of [`read_ops`].
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// An integer getter.
    Get {
        /// Width and signedness.
        width: Width,
        /// Byte order.
        endian: Endian,
        /// Position.
        at: At,
    },
    /// `read_bytes_at`, `blit` and `get_bytes` of a range.
    Read {
        /// Start.
        at: At,
        /// Length, modulo 8192.
        len: u16,
    },
    /// `load`.
    Load {
        /// Address.
        at: At,
        /// Minimum length.
        min_len: u16,
    },
    /// `load(at, 0)` then `next` until the end, at most `steps` times.
    Next {
        /// Address of the first page.
        at: At,
        /// Most `next` calls.
        steps: u8,
    },
    /// `get_seq`, at most `take` chunks.
    Seq {
        /// Start.
        at: At,
        /// Most chunks read.
        take: u8,
    },
    /// `iter` with an optional length.
    Iter {
        /// Start.
        at: At,
        /// Length, or to the end.
        len: Option<u16>,
    },
    /// `syscalls`, checked against the device reads of a cold read.
    Syscalls {
        /// Start.
        at: At,
        /// Length, modulo 8192.
        len: u16,
    },
    /// `is_cached`, which must not count anything, and must be right.
    IsCached {
        /// Address.
        at: At,
    },
    /// Writes to the device behind the cache's back, then invalidates the range.
    Write {
        /// Where (past the end grows the device).
        at: At,
        /// What.
        bytes: Vec<u8>,
    },
    /// Cuts or zero-extends the device, then invalidates from the new end.
    SetLen {
        /// New length, modulo the setup's bound (5000 bytes, 64 pages).
        len: u16,
    },
    /// `invalidate` without changing the device.
    Invalidate {
        /// Start.
        at: At,
        /// Length.
        len: u32,
    },
    /// `invalidate_all`.
    InvalidateAll,
    /// A read while every device read fails with `EIO`: it must succeed
    /// from cached pages or fail with the I/O error, and leave the cache sound.
    ReadFailing {
        /// Start.
        at: At,
        /// Length, modulo 8192.
        len: u16,
    },
}

/// Input of [`read_ops`].
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInput {
    /// Shape and initial device.
    pub setup: Setup,
    /// Steps.
    pub ops: Vec<ReadOp>,
}

/// The first disagreement between a cache and its model.
///
/// ```
/// let mismatch = pagecache::fuzz::Mismatch { step: 3, op: "Commit".into(), detail: "lost".into() };
/// assert_eq!(mismatch.to_string(), "step 3 (Commit): lost");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Index of the op (the number of ops for the final checks).
    pub step: usize,
    /// The op, formatted.
    pub op: String,
    /// What differed.
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({}): {}", self.step, self.op, self.detail)
    }
}

impl std::error::Error for Mismatch {}

type Check = Result<(), String>;

fn ensure(ok: bool, detail: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(detail()) }
}

/// `got` is what the cache said, `want` what the model says.
fn agree<T: PartialEq + fmt::Debug>(
    what: &str,
    got: Result<T, Error>,
    want: Result<T, OutOfBounds>,
) -> Check {
    match (&got, &want) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Err(Error::OutOfBounds(a)), Err(b)) if a == b => Ok(()),
        _ => Err(format!("{what}: cache gave {got:?}, model {want:?}")),
    }
}

fn bounds(pos: u64, len: u64, size: u64) -> Result<(), OutOfBounds> {
    crate::error::check_range(pos, len, size)
}

/// The model of `load`: (page start, bytes) or `None`.
fn model_load(model: &[u8], page_size: u64, addr: u64, min_len: u64) -> Option<(u64, Vec<u8>)> {
    let size = model.len() as u64;
    let page_start = addr & !(page_size - 1);
    let page_end = page_start.saturating_add(page_size).min(size);
    if page_end.saturating_sub(addr) < min_len {
        return None;
    }
    let bytes = model
        .get(page_start as usize..page_end.max(page_start) as usize)
        .unwrap_or(&[])
        .to_vec();
    Some((page_start, bytes))
}

fn as_pair(slice: &Slice) -> (u64, Vec<u8>) {
    (slice.offset(), slice.to_vec())
}

struct ReadRig {
    mem: MemDevice,
    device: Arc<FaultyDevice<MemDevice>>,
    cache: PageCache<Arc<FaultyDevice<MemDevice>>>,
    model: Vec<u8>,
    builder: Builder,
    /// Bound of the device length (see `Setup::max_device_len`).
    max_device_len: u32,
    /// The cache `Syscalls` checks against, once one needed it.
    cold: Option<PageCache<Arc<FaultyDevice<MemDevice>>>>,
}

impl ReadRig {
    fn size(&self) -> u64 {
        self.model.len() as u64
    }

    fn page_size(&self) -> u64 {
        self.cache.page_size() as u64
    }

    fn step(&mut self, op: &ReadOp) -> Check {
        let size = self.size();
        match op {
            ReadOp::Get { width, endian, at } => {
                let pos = at.resolve(size);
                agree(
                    "getter",
                    get(&self.cache, *width, *endian, pos),
                    get(&self.model, *width, *endian, pos),
                )
            }
            ReadOp::Read { at, len } => {
                let pos = at.resolve(size);
                let len = read_len(*len);
                let want = bounds(pos, len as u64, size)
                    .map(|()| self.model[pos as usize..pos as usize + len].to_vec());
                let mut buf = vec![0xa5; len];
                agree(
                    "read_bytes_at",
                    self.cache.read_bytes_at(pos, &mut buf).map(|()| buf),
                    want.clone(),
                )?;
                agree("get_bytes", self.cache.get_bytes(pos, len), want.clone())?;
                let mut framed = vec![0x5a; len + 2];
                let blitted = self
                    .cache
                    .blit(pos, &mut framed, 1, len)
                    .map(|()| framed[1..=len].to_vec());
                agree("blit", blitted, want)?;
                ensure(framed[0] == 0x5a && framed[len + 1] == 0x5a, || {
                    "blit wrote outside its range".into()
                })?;
                ensure(
                    matches!(
                        self.cache.blit(pos, &mut framed, 3, len),
                        Err(Error::BufferRange { .. })
                    ),
                    || "blit past the buffer end was not a BufferRange error".into(),
                )
            }
            ReadOp::Load { at, min_len } => {
                let addr = at.resolve(size);
                let min_len = usize::from(*min_len);
                let got = self.cache.load(addr, min_len);
                if min_len > self.cache.page_size() {
                    return ensure(matches!(got, Err(Error::MinLenTooLarge { .. })), || {
                        format!("load with min_len {min_len} gave {got:?}")
                    });
                }
                let want = model_load(&self.model, self.page_size(), addr, min_len as u64);
                agree("load", got.map(|s| s.as_ref().map(as_pair)), Ok(want))
            }
            ReadOp::Next { at, steps } => {
                let addr = at.resolve(size);
                let mut got = self.cache.load(addr, 0).map_err(|e| format!("load: {e}"))?;
                let mut want = model_load(&self.model, self.page_size(), addr, 0);
                for _ in 0..*steps {
                    let Some(slice) = got else { break };
                    agree("next", Ok(Some(as_pair(&slice))), Ok(want.clone()))?;
                    got = self.cache.next(&slice).map_err(|e| format!("next: {e}"))?;
                    want = want.and_then(|(start, bytes)| {
                        let end = start + bytes.len() as u64;
                        (!bytes.is_empty() && end < size)
                            .then(|| model_load(&self.model, self.page_size(), end, 1))
                            .flatten()
                    });
                }
                Ok(())
            }
            ReadOp::Seq { at, take } => {
                let addr = at.resolve(size);
                let got = self.cache.get_seq(addr).and_then(|chunks| {
                    chunks
                        .take(usize::from(*take))
                        .map(|chunk| chunk.map(|s| as_pair(&s)))
                        .collect::<Result<Vec<_>, _>>()
                });
                let want = bounds(addr, 0, size).map(|()| {
                    let mut chunks = Vec::new();
                    let mut pos = addr;
                    while pos < size && chunks.len() < usize::from(*take) {
                        let end = ((pos | (self.page_size() - 1)) + 1).min(size);
                        chunks.push((pos, self.model[pos as usize..end as usize].to_vec()));
                        pos = end;
                    }
                    chunks
                });
                agree("get_seq", got, want)
            }
            ReadOp::Iter { at, len } => {
                let addr = at.resolve(size);
                let len = len.map(u64::from);
                let got = self
                    .cache
                    .iter(addr, len)
                    .and_then(|bytes| bytes.collect::<Result<Vec<u8>, _>>());
                let want_len = len.unwrap_or(size.saturating_sub(addr));
                let want = bounds(addr, want_len, size)
                    .map(|()| self.model[addr as usize..(addr + want_len) as usize].to_vec());
                agree("iter", got, want)
            }
            ReadOp::Syscalls { at, len } => {
                let addr = at.resolve(size);
                let len = read_len(*len) as u64;
                let predicted = match (self.cache.syscalls(addr, len), bounds(addr, len, size)) {
                    (Ok(predicted), Ok(())) => predicted,
                    (Err(Error::OutOfBounds(got)), Err(want)) if got == want => return Ok(()),
                    (got, want) => {
                        return Err(format!("syscalls: cache gave {got:?}, model {want:?}"));
                    }
                };
                // A cold read of the range through a second cache of the
                // same shape, emptied first (built once per input).
                let cold = match &mut self.cold {
                    Some(cold) => cold,
                    cold => {
                        let counter = Arc::new(FaultyDevice::new(self.mem.clone()));
                        let built = self
                            .builder
                            .build(counter)
                            .map_err(|e| format!("build: {e}"))?;
                        cold.insert(built)
                    }
                };
                cold.invalidate_all()
                    .map_err(|e| format!("invalidate_all: {e}"))?;
                let before = cold.device().reads();
                let mut buf = vec![0; len as usize];
                cold.read_bytes_at(addr, &mut buf)
                    .map_err(|e| format!("cold read: {e}"))?;
                let reads = cold.device().reads() - before;
                ensure(reads == predicted, || {
                    format!("syscalls said {predicted}, a cold read made {reads}")
                })
            }
            ReadOp::IsCached { at } => {
                let addr = at.resolve(size);
                let before = self.cache.stats();
                let cached = self.cache.is_cached(addr);
                ensure(self.cache.stats() == before, || {
                    "is_cached changed the counters".into()
                })?;
                if cached {
                    ensure(addr < size, || {
                        format!("byte {addr} past the end is cached")
                    })?;
                    let reads = self.device.reads();
                    let hits = self.cache.hits();
                    agree(
                        "cached byte",
                        self.cache.get_u8(addr),
                        self.model.get_u8(addr),
                    )?;
                    ensure(
                        self.device.reads() == reads && self.cache.hits() == hits + 1,
                        || "a byte said cached was not a hit".into(),
                    )?;
                }
                Ok(())
            }
            ReadOp::Write { at, bytes } => {
                let pos = at.resolve(size).min(size + 64);
                self.mem
                    .write_all_at(pos, bytes)
                    .map_err(|e| format!("device write: {e}"))?;
                let end = pos as usize + bytes.len();
                // An empty write does not grow the device.
                if self.model.len() < end && !bytes.is_empty() {
                    self.model.resize(end, 0);
                }
                if let Some(dst) = self.model.get_mut(pos as usize..end) {
                    dst.copy_from_slice(bytes);
                }
                self.cache
                    .invalidate(pos, bytes.len() as u64)
                    .map_err(|e| format!("invalidate: {e}"))
            }
            ReadOp::SetLen { len } => {
                let len = u64::from(*len) % u64::from(self.max_device_len);
                self.mem.set_len(len).map_err(|e| format!("set_len: {e}"))?;
                self.model.resize(len as usize, 0);
                let from = len.min(size);
                self.cache
                    .invalidate(from, u64::MAX - from)
                    .map_err(|e| format!("invalidate: {e}"))
            }
            ReadOp::Invalidate { at, len } => {
                let off = at.resolve(size);
                let len = u64::from(*len);
                self.cache
                    .invalidate(off, len)
                    .map_err(|e| format!("invalidate: {e}"))?;
                // Nothing overlapping the range may still be cached.
                let last = off.saturating_add(len.max(1) - 1);
                for addr in [off, last, off.saturating_add(len / 2)] {
                    ensure(len == 0 || !self.cache.is_cached(addr), || {
                        format!("{addr} still cached after invalidate({off}, {len})")
                    })?;
                }
                Ok(())
            }
            ReadOp::InvalidateAll => {
                self.cache
                    .invalidate_all()
                    .map_err(|e| format!("invalidate_all: {e}"))?;
                ensure(self.cache.stats().resident_pages == 0, || {
                    "pages left after invalidate_all".into()
                })
            }
            ReadOp::ReadFailing { at, len } => {
                let pos = at.resolve(size);
                let len = read_len(*len);
                let want = bounds(pos, len as u64, size)
                    .map(|()| self.model[pos as usize..pos as usize + len].to_vec());
                self.device.fail_reads(Fault::Always(Errno::IO));
                let reads = self.device.reads();
                let mut buf = vec![0; len];
                let got = self.cache.read_bytes_at(pos, &mut buf).map(|()| buf);
                let device_touched = self.device.reads() != reads;
                self.device.clear_faults();
                match got {
                    Err(Error::Io(err))
                        if device_touched && err.raw_os_error() == Some(Errno::IO.raw()) =>
                    {
                        Ok(())
                    }
                    got if !device_touched => agree("read from cache alone", got, want),
                    got => Err(format!("a failing device read gave {got:?}")),
                }
            }
        }
    }
}

/// Most ops of one input that run; the rest are ignored, so that every
/// input stays cheap (a longer sequence is two inputs).
pub const MAX_OPS: usize = 64;

/// Longest range a read op reads: past any device (which stays below
/// 5000 bytes), without allocating what the op's `u16` could ask for.
const MAX_READ_LEN: usize = 8192;

fn read_len(len: u16) -> usize {
    usize::from(len) % MAX_READ_LEN
}

fn run_steps<T: fmt::Debug>(ops: &[T], mut step: impl FnMut(&T) -> Check) -> Result<(), Mismatch> {
    for (index, op) in ops.iter().take(MAX_OPS).enumerate() {
        step(op).map_err(|detail| Mismatch {
            step: index,
            op: format!("{op:?}"),
            detail,
        })?;
    }
    Ok(())
}

/// Applies `input.ops` to a [`PageCache`] over a device initialised from
/// `input.setup`, and to a `Vec<u8>` model; every result must agree
/// (values, or the same out-of-bounds error), and the cache must never
/// hold more than its capacity.
///
/// # Errors
/// The first [`Mismatch`].
///
/// ```
/// use pagecache::fuzz::{At, ReadInput, ReadOp, Setup, read_ops};
///
/// let setup = Setup { device_len: 0, page_shift: 0, capacity_shift: 0, batch_shift: 0 };
/// let ops = vec![ReadOp::Read { at: At::Start(0), len: 1 }, ReadOp::Load { at: At::Start(0), min_len: 0 }];
/// read_ops(&ReadInput { setup, ops })?;
/// # Ok::<(), pagecache::fuzz::Mismatch>(())
/// ```
pub fn read_ops(input: &ReadInput) -> Result<(), Mismatch> {
    let setup_failed = |detail: String| Mismatch {
        step: 0,
        op: "setup".into(),
        detail,
    };
    let model = input.setup.initial_bytes();
    let mem = MemDevice::from_vec(model.clone());
    let device = Arc::new(FaultyDevice::new(mem.clone()));
    let builder = input.setup.builder();
    let cache = builder
        .build(Arc::clone(&device))
        .map_err(|e| setup_failed(e.to_string()))?;
    let capacity = cache.capacity();
    let mut rig = ReadRig {
        mem,
        device,
        cache,
        model,
        builder,
        max_device_len: input.setup.max_device_len(),
        cold: None,
    };
    run_steps(&input.ops, |op| {
        rig.step(op)?;
        let resident = rig.cache.stats().resident_pages;
        ensure(resident <= capacity, || {
            format!("{resident} pages resident, capacity {capacity}")
        })
    })?;
    // Finally, the whole device reads back right.
    let mut whole = vec![0; rig.model.len()];
    let final_read = rig.cache.read_bytes_at(0, &mut whole).map(|()| whole);
    agree("final read", final_read, Ok(rig.model.clone())).map_err(|detail| Mismatch {
        step: input.ops.len().min(MAX_OPS),
        op: "final read".into(),
        detail,
    })
}

/// One step of [`write_ops`].
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// An integer setter.
    Set {
        /// Width and signedness.
        width: Width,
        /// Byte order.
        endian: Endian,
        /// Position.
        at: At,
        /// Value (its low bits are written).
        value: u128,
    },
    /// An integer getter.
    Get {
        /// Width and signedness.
        width: Width,
        /// Byte order.
        endian: Endian,
        /// Position.
        at: At,
    },
    /// `write_bytes`.
    WriteBytes {
        /// Position.
        at: At,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `read_bytes_at`.
    Read {
        /// Start.
        at: At,
        /// Length, modulo 8192.
        len: u16,
    },
    /// `load`.
    Load {
        /// Address.
        at: At,
        /// Minimum length.
        min_len: u16,
    },
    /// `persist`.
    Persist {
        /// Start.
        at: At,
        /// Length.
        len: u16,
    },
    /// `commit`.
    Commit,
    /// From now on, the `nth` device write fails (`ENOSPC` or `EIO`), and
    /// writes move at most `short` bytes per call when `short > 0`.
    FailWrites {
        /// Which write fails, counting from 1.
        nth: u8,
        /// `ENOSPC` rather than `EIO`.
        no_space: bool,
        /// Most bytes per write call, or 0 for whole writes.
        short: u8,
    },
    /// Clears the faults.
    Heal,
    /// `invalidate` (clean pages only).
    Invalidate {
        /// Start.
        at: At,
        /// Length.
        len: u16,
    },
}

/// Input of [`write_ops`].
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteInput {
    /// Shape and initial device.
    pub setup: Setup,
    /// Bound on dirty pages: `1 + max_dirty_pages % 16` pages, or the
    /// default bound when 0.
    pub max_dirty_pages: u8,
    /// Steps.
    pub ops: Vec<WriteOp>,
}

struct WriteRig {
    device: Arc<FaultyDevice<MemDevice>>,
    cache: WriteBackCache<Arc<FaultyDevice<MemDevice>>>,
    /// What reads must return.
    logical: Vec<u8>,
    /// What the device must hold.
    on_device: Vec<u8>,
    /// Pages written since they were last persisted.
    dirty: BTreeSet<u64>,
    page_shift: u32,
}

impl WriteRig {
    fn size(&self) -> u64 {
        self.logical.len() as u64
    }

    fn mark_dirty(&mut self, pos: u64, len: u64) {
        if len > 0 {
            self.dirty
                .extend((pos >> self.page_shift)..=((pos + len - 1) >> self.page_shift));
        }
    }

    fn page_bytes(&self, page: u64) -> std::ops::Range<usize> {
        let start = (page << self.page_shift).min(self.size()) as usize;
        let end = ((page + 1) << self.page_shift).min(self.size()) as usize;
        start..end
    }

    /// Checks a write-back of the dirty pages in `first..=last` that
    /// returned `result`, and updates the model.
    fn written_back(&mut self, first: u64, last: u64, result: Result<(), Error>) -> Check {
        let attempted: Vec<u64> = self.dirty.range(first..=last).copied().collect();
        let actual = self.device.inner().to_vec();
        ensure(actual.len() == self.on_device.len(), || {
            "the device changed size".into()
        })?;
        match result {
            Ok(()) => {
                for &page in &attempted {
                    let range = self.page_bytes(page);
                    self.on_device[range.clone()].copy_from_slice(&self.logical[range]);
                    self.dirty.remove(&page);
                }
                ensure(actual == self.on_device, || {
                    "device differs from the model after write-back".into()
                })?;
            }
            Err(Error::Io(_)) => {
                // Whatever reached the device must be the logical bytes of
                // an attempted page; pages still dirty may hold anything of
                // theirs; pages now clean must be wholly written.
                for (index, (&now, &before)) in actual.iter().zip(&self.on_device).enumerate() {
                    let page = (index as u64) >> self.page_shift;
                    if now != before {
                        ensure(
                            attempted.contains(&page) && now == self.logical[index],
                            || format!("byte {index} changed to {now} outside a written page"),
                        )?;
                    }
                }
                for &page in &attempted {
                    if !self.cache.is_dirty(page << self.page_shift) {
                        let range = self.page_bytes(page);
                        ensure(actual[range.clone()] == self.logical[range], || {
                            format!("page {page} marked clean but not written")
                        })?;
                        self.dirty.remove(&page);
                    }
                }
                self.on_device = actual;
            }
            Err(other) => return Err(format!("write-back failed with {other}")),
        }
        ensure(self.cache.dirty_pages() == self.dirty.len(), || {
            format!(
                "{} dirty pages, model has {}",
                self.cache.dirty_pages(),
                self.dirty.len()
            )
        })
    }

    /// Checks a write of `len` bytes at `pos` that returned `got` where the
    /// model says `want` (with `next` the logical bytes after it). A write
    /// may first write back older dirty runs (the dirty-page bound): those
    /// pages must be clean and on the device; an I/O error there must
    /// leave this write out.
    fn written(
        &mut self,
        pos: u64,
        len: u64,
        next: Vec<u8>,
        got: Result<(), Error>,
        want: Result<(), OutOfBounds>,
    ) -> Check {
        match (&got, &want) {
            (Ok(()), Ok(())) | (Err(Error::Io(_)), Ok(())) => {}
            (Err(Error::OutOfBounds(got)), Err(want)) if got == want => return Ok(()),
            _ => return Err(format!("write: cache gave {got:?}, model {want:?}")),
        }
        // Written back before this write: the old logical bytes.
        let actual = self.device.inner().to_vec();
        for (index, (&now, &before)) in actual.iter().zip(&self.on_device).enumerate() {
            let page = (index as u64) >> self.page_shift;
            if now != before {
                ensure(
                    self.dirty.contains(&page) && now == self.logical[index],
                    || format!("byte {index} changed to {now} outside a written-back page"),
                )?;
            }
        }
        let cleaned: Vec<u64> = self
            .dirty
            .iter()
            .copied()
            .filter(|&page| !self.cache.is_dirty(page << self.page_shift))
            .collect();
        for page in cleaned {
            let range = self.page_bytes(page);
            ensure(actual[range.clone()] == self.logical[range], || {
                format!("page {page} written back but not on the device")
            })?;
            self.dirty.remove(&page);
        }
        self.on_device = actual;
        if got.is_ok() {
            self.logical = next;
            self.mark_dirty(pos, len);
        }
        let bound = self.cache.max_dirty_pages();
        let pages = if len == 0 {
            0
        } else {
            ((pos + len - 1) >> self.page_shift) - (pos >> self.page_shift) + 1
        };
        ensure(
            self.cache.dirty_pages() == self.dirty.len()
                && (got.is_err()
                    || len == 0
                    || self.dirty.len() as u64 <= (bound as u64).max(pages)),
            || {
                format!(
                    "{} dirty pages, model has {}, bound {bound}",
                    self.cache.dirty_pages(),
                    self.dirty.len()
                )
            },
        )
    }

    fn step(&mut self, op: &WriteOp) -> Check {
        let size = self.size();
        match op {
            WriteOp::Set {
                width,
                endian,
                at,
                value,
            } => {
                let pos = at.resolve(size);
                let mut next = self.logical.clone();
                let want = set(&mut next, *width, *endian, pos, *value);
                let got = set(&mut &self.cache, *width, *endian, pos, *value);
                self.written(pos, width.bytes(), next, got, want)
            }
            WriteOp::Get { width, endian, at } => {
                let pos = at.resolve(size);
                agree(
                    "getter",
                    get(&self.cache, *width, *endian, pos),
                    get(&self.logical, *width, *endian, pos),
                )
            }
            WriteOp::WriteBytes { at, bytes } => {
                let pos = at.resolve(size);
                let mut next = self.logical.clone();
                let want = next.write_bytes_at(pos, bytes);
                let got = self.cache.write_bytes(pos, bytes);
                self.written(pos, bytes.len() as u64, next, got, want)
            }
            WriteOp::Read { at, len } => {
                let pos = at.resolve(size);
                let len = read_len(*len);
                let want = bounds(pos, len as u64, size)
                    .map(|()| self.logical[pos as usize..pos as usize + len].to_vec());
                let mut buf = vec![0; len];
                agree(
                    "read_bytes_at",
                    self.cache.read_bytes_at(pos, &mut buf).map(|()| buf),
                    want,
                )
            }
            WriteOp::Load { at, min_len } => {
                let addr = at.resolve(size);
                let min_len = usize::from(*min_len);
                let got = self.cache.load(addr, min_len);
                if min_len > 1 << self.page_shift {
                    return ensure(matches!(got, Err(Error::MinLenTooLarge { .. })), || {
                        format!("load with min_len {min_len} gave {got:?}")
                    });
                }
                let want = model_load(&self.logical, 1 << self.page_shift, addr, min_len as u64);
                agree("load", got.map(|s| s.as_ref().map(as_pair)), Ok(want))
            }
            WriteOp::Persist { at, len } => {
                let off = at.resolve(size);
                let len = u64::from(*len);
                let result = self.cache.persist(off, len);
                if len == 0 {
                    return agree("empty persist", result, Ok(()));
                }
                let (first, last) = (
                    off >> self.page_shift,
                    off.saturating_add(len - 1) >> self.page_shift,
                );
                self.written_back(first, last, result)
            }
            WriteOp::Commit => {
                let result = self.cache.commit();
                self.written_back(0, u64::MAX, result)
            }
            WriteOp::FailWrites {
                nth,
                no_space,
                short,
            } => {
                let errno = if *no_space { Errno::NOSPC } else { Errno::IO };
                self.device
                    .fail_writes(Fault::Nth(u64::from(*nth).max(1), errno));
                if *short > 0 {
                    self.device.short_writes(usize::from(*short));
                }
                Ok(())
            }
            WriteOp::Heal => {
                self.device.clear_faults();
                Ok(())
            }
            WriteOp::Invalidate { at, len } => {
                self.cache.invalidate(at.resolve(size), u64::from(*len));
                Ok(())
            }
        }
    }
}

/// Applies `input.ops` to a [`WriteBackCache`] over a fault-injecting
/// device and to a model (the bytes reads must see, the bytes the device
/// must hold, the dirty pages). Every read agrees with the model, every
/// write-back writes exactly the dirty pages of its range, a failed one
/// loses nothing, and at the end a clean commit makes the device equal the
/// model.
///
/// # Errors
/// The first [`Mismatch`].
///
/// ```
/// use pagecache::fuzz::{At, Endian, Setup, Width, WriteInput, WriteOp, write_ops};
///
/// let setup = Setup { device_len: 64, page_shift: 4, capacity_shift: 1, batch_shift: 0 };
/// let ops = vec![
///     WriteOp::Set { width: Width::I64, endian: Endian::Be, at: At::Start(12), value: 7 },
///     WriteOp::FailWrites { nth: 1, no_space: true, short: 3 },
///     WriteOp::Commit,
///     WriteOp::Get { width: Width::I64, endian: Endian::Be, at: At::Start(12) },
/// ];
/// write_ops(&WriteInput { setup, max_dirty_pages: 2, ops })?;
/// # Ok::<(), pagecache::fuzz::Mismatch>(())
/// ```
pub fn write_ops(input: &WriteInput) -> Result<(), Mismatch> {
    let logical = input.setup.initial_bytes();
    let device = Arc::new(FaultyDevice::new(MemDevice::from_vec(logical.clone())));
    let mut builder = input.setup.builder();
    if input.max_dirty_pages > 0 {
        builder = builder.max_dirty_pages(1 + usize::from(input.max_dirty_pages % 16));
    }
    let cache = builder
        .build_write_back(Arc::clone(&device))
        .map_err(|e| Mismatch {
            step: 0,
            op: "setup".into(),
            detail: e.to_string(),
        })?;
    let page_shift = cache.cache().page_size().trailing_zeros();
    let mut rig = WriteRig {
        device,
        cache,
        on_device: logical.clone(),
        logical,
        dirty: BTreeSet::new(),
        page_shift,
    };
    run_steps(&input.ops, |op| rig.step(op))?;
    let finish = |rig: &mut WriteRig| -> Check {
        rig.device.clear_faults();
        let result = rig.cache.commit();
        rig.written_back(0, u64::MAX, result)?;
        ensure(rig.device.inner().to_vec() == rig.logical, || {
            "device differs from the model after the final commit".into()
        })?;
        let mut whole = vec![0; rig.logical.len()];
        agree(
            "final read",
            rig.cache.read_bytes_at(0, &mut whole).map(|()| whole),
            Ok(rig.logical.clone()),
        )
    };
    finish(&mut rig).map_err(|detail| Mismatch {
        step: input.ops.len().min(MAX_OPS),
        op: "final commit".into(),
        detail,
    })
}
