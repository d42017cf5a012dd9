//! A device wrapper that injects I/O faults on demand, for testing the layers above.

use std::fmt;
use std::fs::File;
use std::io;

use parking_lot::Mutex;

use crate::{ReadAt, WriteAt};

/// An OS error number to inject, such as [`Errno::NOSPC`] or [`Errno::IO`].
///
/// It becomes an `io::Error` with [`io::Error::from_raw_os_error`], so the
/// code under test sees exactly what the kernel would return: `raw_os_error()`
/// is the number and `kind()` the matching [`io::ErrorKind`].
///
/// ```
/// use blockdev::Errno;
///
/// let error = std::io::Error::from(Errno::NOSPC);
/// assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
/// assert_eq!(Errno::from_raw(Errno::IO.raw()), Errno::IO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    /// `ENOSPC`: no space left on device.
    pub const NOSPC: Self = Self(rustix::io::Errno::NOSPC.raw_os_error());
    /// `EIO`: input/output error (a failing disk).
    pub const IO: Self = Self(rustix::io::Errno::IO.raw_os_error());
    /// `EDQUOT`: disk quota exceeded.
    pub const DQUOT: Self = Self(rustix::io::Errno::DQUOT.raw_os_error());
    /// `EROFS`: read-only filesystem.
    pub const ROFS: Self = Self(rustix::io::Errno::ROFS.raw_os_error());
    /// `EINTR`: interrupted by a signal; `read_exact_at`/`write_all_at` retry it.
    pub const INTR: Self = Self(rustix::io::Errno::INTR.raw_os_error());
    /// `EAGAIN`: try again.
    pub const AGAIN: Self = Self(rustix::io::Errno::AGAIN.raw_os_error());

    /// Any other error number.
    ///
    /// ```
    /// use blockdev::Errno;
    ///
    /// let efbig = Errno::from_raw(27);
    /// assert_eq!(efbig.raw(), 27);
    /// ```
    pub const fn from_raw(code: i32) -> Self {
        Self(code)
    }

    /// The error number.
    ///
    /// ```
    /// use blockdev::Errno;
    ///
    /// assert_eq!(Errno::IO.raw(), 5);
    /// ```
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.0,
            io::Error::from_raw_os_error(self.0)
        )
    }
}

impl From<Errno> for io::Error {
    fn from(errno: Errno) -> Self {
        io::Error::from_raw_os_error(errno.0)
    }
}

/// Which calls of one kind (reads, writes, `set_len`, `sync_data`) fail.
///
/// Calls are counted from the moment the fault is set: `Nth(1, _)` is the very
/// next call. A new fault for the same kind of call replaces the old one and
/// restarts the count. A failing call never reaches the wrapped device.
///
/// ```
/// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
///
/// let dev = FaultyDevice::new(MemDevice::new());
/// dev.fail_writes(Fault::Every(2, Errno::IO));
/// assert!(dev.write_at(0, b"a").is_ok());
/// assert!(dev.write_at(0, b"b").is_err());
/// assert!(dev.write_at(0, b"c").is_ok());
/// assert!(dev.write_at(0, b"d").is_err());
/// dev.fail_writes(Fault::Never);
/// assert!(dev.write_at(0, b"e").is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// No call fails.
    #[default]
    Never,
    /// The `n`th call from now fails, once (`n` counts from 1; 0 never fires).
    Nth(u64, Errno),
    /// Calls `k`, `2k`, `3k`, ... from now fail (`k` = 0 never fires).
    Every(u64, Errno),
    /// Every call fails until the fault is replaced or cleared.
    Always(Errno),
}

/// Bytes that reads return flipped, to simulate corruption on the medium.
///
/// The flip happens in the caller's buffer only; the wrapped device keeps the
/// right bytes, so clearing the corruption makes reads correct again.
///
/// ```
/// use blockdev::{Corruption, FaultyDevice, MemDevice, ReadAt};
///
/// let dev = FaultyDevice::new(MemDevice::from_vec(vec![0; 8]));
/// dev.corrupt_reads(Corruption::AtOffset { offset: 5, mask: 0xff });
/// let mut buf = [0u8; 8];
/// dev.read_exact_at(0, &mut buf)?;
/// assert_eq!(buf, [0, 0, 0, 0, 0, 0xff, 0, 0]);
/// let mut tail = [0u8; 2];
/// dev.read_exact_at(6, &mut tail)?; // does not cover offset 5: untouched
/// assert_eq!(tail, [0, 0]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Corruption {
    /// Reads return what the device holds.
    #[default]
    Never,
    /// Every read that covers device byte `offset` returns it XOR `mask`.
    AtOffset {
        /// The device position of the flipped byte.
        offset: u64,
        /// The bits to flip.
        mask: u8,
    },
    /// Every read returns its `index`th byte (counted in the caller's buffer)
    /// XOR `mask`, when it returns that many bytes.
    EveryRead {
        /// The position in each read's buffer.
        index: usize,
        /// The bits to flip.
        mask: u8,
    },
}

impl Corruption {
    /// Flips the chosen byte of `buf`, which holds device bytes from `pos`.
    fn apply(self, pos: u64, buf: &mut [u8]) {
        let (index, mask) = match self {
            Corruption::Never => return,
            Corruption::AtOffset { offset, mask } => {
                match offset
                    .checked_sub(pos)
                    .and_then(|delta| usize::try_from(delta).ok())
                {
                    Some(index) => (index, mask),
                    None => return,
                }
            }
            Corruption::EveryRead { index, mask } => (index, mask),
        };
        if let Some(byte) = buf.get_mut(index) {
            *byte ^= mask;
        }
    }
}

/// One kind of call: how many were made, and which of them fail.
#[derive(Debug, Default)]
struct CallFaults {
    calls: u64,
    fault: Fault,
    /// `calls` when `fault` was set; faults count from there.
    armed_at: u64,
}

impl CallFaults {
    fn set(&mut self, fault: Fault) {
        self.fault = fault;
        self.armed_at = self.calls;
    }

    /// Counts one call and says whether it must fail.
    fn next_call(&mut self) -> Result<(), Errno> {
        self.calls += 1;
        let since_armed = self.calls - self.armed_at;
        match self.fault {
            Fault::Nth(n, errno) if since_armed == n => Err(errno),
            Fault::Every(k, errno) if k != 0 && since_armed.is_multiple_of(k) => Err(errno),
            Fault::Always(errno) => Err(errno),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
struct Plan {
    reads: CallFaults,
    writes: CallFaults,
    set_lens: CallFaults,
    syncs: CallFaults,
    max_read_len: Option<usize>,
    max_write_len: Option<usize>,
    corruption: Corruption,
    /// The `will_need` hints passed on, oldest first.
    hints: Vec<(u64, u64)>,
    /// The `limit_read_ahead` bounds passed on, oldest first.
    read_ahead_limits: Vec<u64>,
}

/// A device that forwards to `D` but fails, shortens or corrupts the calls a
/// test asks for.
///
/// Faults are programmed at run time through `&self`, so a test can share the
/// device with the code under test (behind an `Arc`, or by reference) and
/// change the faults between steps:
///
/// ```
/// use std::sync::Arc;
/// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
///
/// let disk = Arc::new(FaultyDevice::new(MemDevice::new()));
/// let for_cache = Arc::clone(&disk);          // hand this one to the code under test
/// disk.fail_writes(Fault::Nth(2, Errno::NOSPC)); // its second write from now fails
/// for_cache.write_all_at(0, b"one")?;
/// let error = for_cache.write_all_at(3, b"two").unwrap_err();
/// assert_eq!(error.raw_os_error(), Some(Errno::NOSPC.raw()));
/// for_cache.write_all_at(3, b"two")?;          // and only that one
/// assert_eq!(disk.inner().to_vec(), b"onetwo");
/// assert_eq!(disk.writes(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// It is `Send + Sync` when `D` is, and its [`ReadAt::as_file`] /
/// [`WriteAt::as_file`] are `None` even over a [`File`], so
/// [`copy_range`](crate::copy_range) cannot bypass the faults with a kernel copy.
///
/// Counters ([`reads`](Self::reads), [`writes`](Self::writes),
/// [`syncs`](Self::syncs)) count every call made, including the ones a fault
/// failed, and [`clear_faults`](Self::clear_faults) does not reset them.
///
/// ```
/// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt};
///
/// let dev = FaultyDevice::new(MemDevice::new());
/// dev.short_writes(2);                       // at most 2 bytes per write_at call
/// dev.write_all_at(0, b"hello")?;            // write_all_at keeps going
/// assert_eq!(dev.writes(), 3);
/// dev.fail_reads(Fault::Always(Errno::IO));
/// let mut buf = [0u8; 5];
/// assert_eq!(dev.read_exact_at(0, &mut buf).unwrap_err().raw_os_error(), Some(5));
/// dev.clear_faults();
/// dev.read_exact_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FaultyDevice<D> {
    plan: Mutex<Plan>,
    inner: D,
}

impl<D> FaultyDevice<D> {
    /// Wraps `inner` with no faults programmed.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(vec![1u8, 2, 3]);
    /// assert_eq!(dev.size()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: D) -> Self {
        Self {
            plan: Mutex::new(Plan::default()),
            inner,
        }
    }

    /// The wrapped device, to inspect what really reached it.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.write_all_at(0, b"x")?;
    /// assert_eq!(dev.inner().to_vec(), b"x");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Unwraps the device.
    ///
    /// ```
    /// use blockdev::FaultyDevice;
    ///
    /// assert_eq!(FaultyDevice::new(vec![7u8]).into_inner(), [7]);
    /// ```
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// Makes `read_at` calls fail as `fault` says (replacing any read fault).
    ///
    /// ```
    /// use blockdev::{Errno, Fault, FaultyDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(vec![1u8, 2, 3]);
    /// dev.fail_reads(Fault::Nth(1, Errno::IO));
    /// let mut buf = [0u8; 3];
    /// assert!(dev.read_exact_at(0, &mut buf).is_err());
    /// assert!(dev.read_exact_at(0, &mut buf).is_ok());
    /// ```
    pub fn fail_reads(&self, fault: Fault) {
        self.plan.lock().reads.set(fault);
    }

    /// Makes `write_at` calls fail as `fault` says (replacing any write fault).
    ///
    /// ```
    /// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.fail_writes(Fault::Always(Errno::NOSPC));
    /// let error = dev.write_all_at(0, b"x").unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
    /// assert!(dev.inner().to_vec().is_empty(), "a failed write changes nothing");
    /// ```
    pub fn fail_writes(&self, fault: Fault) {
        self.plan.lock().writes.set(fault);
    }

    /// Makes `set_len` calls fail as `fault` says.
    ///
    /// ```
    /// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.fail_set_len(Fault::Always(Errno::IO));
    /// assert!(dev.set_len(10).is_err());
    /// ```
    pub fn fail_set_len(&self, fault: Fault) {
        self.plan.lock().set_lens.set(fault);
    }

    /// Makes `sync_data` calls fail as `fault` says.
    ///
    /// ```
    /// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.fail_sync(Fault::Nth(1, Errno::IO));
    /// assert!(dev.sync_data().is_err());
    /// assert!(dev.sync_data().is_ok());
    /// ```
    pub fn fail_sync(&self, fault: Fault) {
        self.plan.lock().syncs.set(fault);
    }

    /// Makes every `read_at` return at most `max_len` bytes (0: every read
    /// returns 0, as at end of device).
    ///
    /// ```
    /// use blockdev::{FaultyDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(vec![1u8, 2, 3, 4]);
    /// dev.short_reads(1);
    /// let mut buf = [0u8; 4];
    /// assert_eq!(dev.read_at(0, &mut buf)?, 1);
    /// dev.read_exact_at(0, &mut buf)?; // retries the short reads
    /// assert_eq!(buf, [1, 2, 3, 4]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn short_reads(&self, max_len: usize) {
        self.plan.lock().max_read_len = Some(max_len);
    }

    /// Makes every `write_at` write at most `max_len` bytes (0: every write
    /// returns 0, a device that accepts nothing).
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.short_writes(3);
    /// assert_eq!(dev.write_at(0, b"abcdef")?, 3);
    /// assert_eq!(dev.inner().to_vec(), b"abc");
    /// dev.short_writes(0);
    /// assert_eq!(dev.write_all_at(3, b"def").unwrap_err().kind(), std::io::ErrorKind::WriteZero);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn short_writes(&self, max_len: usize) {
        self.plan.lock().max_write_len = Some(max_len);
    }

    /// Makes reads return flipped bytes as `corruption` says (replacing any
    /// earlier corruption).
    ///
    /// ```
    /// use blockdev::{Corruption, FaultyDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(vec![0u8; 4]);
    /// dev.corrupt_reads(Corruption::EveryRead { index: 0, mask: 1 });
    /// let mut buf = [0u8; 2];
    /// dev.read_exact_at(2, &mut buf)?;
    /// assert_eq!(buf, [1, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn corrupt_reads(&self, corruption: Corruption) {
        self.plan.lock().corruption = corruption;
    }

    /// Removes every fault, short-call limit and corruption; counters stay.
    ///
    /// ```
    /// use blockdev::{Errno, Fault, FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.fail_writes(Fault::Always(Errno::IO));
    /// dev.short_writes(1);
    /// dev.clear_faults();
    /// assert_eq!(dev.write_at(0, b"ab")?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear_faults(&self) {
        let plan = &mut *self.plan.lock();
        for calls in [
            &mut plan.reads,
            &mut plan.writes,
            &mut plan.set_lens,
            &mut plan.syncs,
        ] {
            calls.set(Fault::Never);
        }
        plan.max_read_len = None;
        plan.max_write_len = None;
        plan.corruption = Corruption::Never;
    }

    /// How many `read_at` calls were made, failed ones included.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(vec![0u8; 4]);
    /// dev.read_at(0, &mut [0u8; 4])?;
    /// assert_eq!(dev.reads(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reads(&self) -> u64 {
        self.plan.lock().reads.calls
    }

    /// How many `write_at` calls were made, failed ones included.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.write_all_at(0, b"abc")?;
    /// assert_eq!(dev.writes(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn writes(&self) -> u64 {
        self.plan.lock().writes.calls
    }

    /// How many `sync_data` calls were made, failed ones included.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, WriteAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.sync_data()?;
    /// assert_eq!(dev.syncs(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn syncs(&self) -> u64 {
        self.plan.lock().syncs.calls
    }

    /// The read-ahead hints ([`ReadAt::will_need`]`(pos, len)`) passed on to
    /// the wrapped device, oldest first: what a layer above asked to have
    /// fetched ahead. Kept for the device's life, like the counters.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::from_vec(vec![0; 100]));
    /// dev.will_need(10, 20);
    /// dev.will_need(30, 40);
    /// assert_eq!(dev.hints(), [(10, 20), (30, 40)]);
    /// ```
    pub fn hints(&self) -> Vec<(u64, u64)> {
        self.plan.lock().hints.clone()
    }

    /// The read-ahead bounds ([`ReadAt::limit_read_ahead`]) passed on to
    /// the wrapped device, oldest first: what a cache above gave it.
    ///
    /// ```
    /// use blockdev::{FaultyDevice, MemDevice, ReadAt};
    ///
    /// let dev = FaultyDevice::new(MemDevice::new());
    /// dev.limit_read_ahead(8 << 20);
    /// dev.limit_read_ahead(0);
    /// assert_eq!(dev.read_ahead_limits(), [8 << 20, 0]);
    /// ```
    pub fn read_ahead_limits(&self) -> Vec<u64> {
        self.plan.lock().read_ahead_limits.clone()
    }
}

impl<D: fmt::Debug> fmt::Debug for FaultyDevice<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyDevice")
            .field("inner", &self.inner)
            .field("plan", &*self.plan.lock())
            .finish()
    }
}

impl<D: ReadAt> ReadAt for FaultyDevice<D> {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let (max_len, corruption) = {
            let mut plan = self.plan.lock();
            plan.reads.next_call()?;
            (plan.max_read_len, plan.corruption)
        };
        let len = max_len.map_or(buf.len(), |max| max.min(buf.len()));
        let buf = &mut buf[..len];
        if len == 0 {
            return Ok(0);
        }
        let n = self.inner.read_at(pos, buf)?;
        corruption.apply(pos, &mut buf[..n]);
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn refresh(&self) -> io::Result<bool> {
        self.inner.refresh()
    }

    /// Recorded (see [`hints`](FaultyDevice::hints)) and passed on: a hint
    /// reads nothing, so there is no fault to inject.
    fn will_need(&self, pos: u64, len: u64) {
        self.plan.lock().hints.push((pos, len));
        self.inner.will_need(pos, len);
    }

    /// Recorded (see [`read_ahead_limits`](FaultyDevice::read_ahead_limits))
    /// and passed on, like [`will_need`](ReadAt::will_need).
    fn limit_read_ahead(&self, max_bytes: u64) {
        self.plan.lock().read_ahead_limits.push(max_bytes);
        self.inner.limit_read_ahead(max_bytes);
    }

    fn as_file(&self) -> Option<&File> {
        None
    }
}

impl<D: WriteAt> WriteAt for FaultyDevice<D> {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        let max_len = {
            let mut plan = self.plan.lock();
            plan.writes.next_call()?;
            plan.max_write_len
        };
        let len = max_len.map_or(buf.len(), |max| max.min(buf.len()));
        if len == 0 {
            return Ok(0);
        }
        self.inner.write_at(pos, &buf[..len])
    }

    /// Each call to the inner device counts as one write, faults and
    /// short-write limits included, as for [`write_all_at`](WriteAt::write_all_at):
    /// a failed call after partial progress leaves the earlier bytes written.
    fn write_all_vectored_at(&self, mut pos: u64, mut bufs: &[&[u8]]) -> io::Result<()> {
        let mut skip = 0;
        loop {
            while bufs.first().is_some_and(|b| b.len() == skip) {
                bufs = &bufs[1..];
                skip = 0;
            }
            if bufs.is_empty() {
                return Ok(());
            }
            let max_len = {
                let mut plan = self.plan.lock();
                if let Err(errno) = plan.writes.next_call() {
                    if errno == Errno::INTR {
                        continue;
                    }
                    return Err(errno.into());
                }
                plan.max_write_len
            };
            // The part of `bufs` this call writes: at most `max_len` bytes.
            let mut budget = max_len.unwrap_or(usize::MAX);
            let mut call: Vec<&[u8]> = Vec::new();
            for (i, buf) in bufs.iter().enumerate() {
                let buf = if i == 0 { &buf[skip..] } else { buf };
                let n = buf.len().min(budget);
                call.push(&buf[..n]);
                budget -= n;
                if budget == 0 {
                    break;
                }
            }
            let n: usize = call.iter().map(|b| b.len()).sum();
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("device accepted no bytes at position {pos}"),
                ));
            }
            self.inner.write_all_vectored_at(pos, &call)?;
            pos += n as u64;
            // Step past the bytes written.
            let mut left = n;
            while left > 0 {
                let rest = bufs[0].len() - skip;
                if left >= rest {
                    left -= rest;
                    bufs = &bufs[1..];
                    skip = 0;
                } else {
                    skip += left;
                    left = 0;
                }
            }
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.plan.lock().set_lens.next_call()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.plan.lock().syncs.next_call()?;
        self.inner.sync_data()
    }

    fn as_file(&self) -> Option<&File> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_counts_from_when_it_is_set() {
        let mut calls = CallFaults::default();
        for _ in 0..5 {
            calls.next_call().unwrap();
        }
        calls.set(Fault::Nth(2, Errno::IO));
        assert_eq!(calls.next_call(), Ok(()));
        assert_eq!(calls.next_call(), Err(Errno::IO));
        assert_eq!(calls.next_call(), Ok(()));
        assert_eq!(calls.calls, 8);
    }

    #[test]
    fn zero_nth_and_zero_every_never_fire() {
        for fault in [Fault::Nth(0, Errno::IO), Fault::Every(0, Errno::IO)] {
            let mut calls = CallFaults::default();
            calls.set(fault);
            for _ in 0..10 {
                assert_eq!(calls.next_call(), Ok(()), "{fault:?}");
            }
        }
    }

    #[test]
    fn corruption_at_offset_only_touches_reads_covering_it() {
        let corruption = Corruption::AtOffset {
            offset: 10,
            mask: 0x0f,
        };
        let mut before = [0u8; 10];
        corruption.apply(0, &mut before);
        assert_eq!(before, [0; 10]);
        let mut covering = [0u8; 4];
        corruption.apply(9, &mut covering);
        assert_eq!(covering, [0, 0x0f, 0, 0]);
        let mut after = [0u8; 4];
        corruption.apply(11, &mut after);
        assert_eq!(after, [0; 4]);
        let mut far = [0u8; 1];
        Corruption::AtOffset {
            offset: u64::MAX,
            mask: 1,
        }
        .apply(0, &mut far);
        assert_eq!(far, [0]);
    }

    #[test]
    fn every_read_corruption_skips_reads_too_short_for_the_index() {
        let corruption = Corruption::EveryRead { index: 3, mask: 1 };
        let mut short = [0u8; 3];
        corruption.apply(100, &mut short);
        assert_eq!(short, [0; 3]);
        let mut long = [0u8; 4];
        corruption.apply(100, &mut long);
        assert_eq!(long, [0, 0, 0, 1]);
    }

    #[test]
    fn errno_debug_names_the_error() {
        let text = format!("{:?}", Errno::NOSPC);
        assert!(text.contains("28"), "{text}");
    }
}
