//! A pass-through device that panics on the Nth call of one kind (read,
//! write, `set_len`, or the `as_file` that hole punching asks for), so a
//! test can kill whichever thread makes that call.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use blockdev::{MemDevice, ReadAt, WriteAt};

use super::WAIT;

/// The kinds of device call that can be made to panic.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Read,
    Write,
    SetLen,
    /// `WriteAt::as_file`, which `blockdev::punch_hole` asks first.
    Punch,
}

/// Calls of each kind left before the one that panics (0: disarmed), and
/// how many panicked.
#[derive(Default)]
struct Arms {
    left: [AtomicU64; 4],
    panics: AtomicU64,
}

/// `inner` with calls that panic once armed. Clones share the arms.
#[derive(Clone)]
pub struct PanickyDevice<D> {
    pub inner: D,
    arms: Arc<Arms>,
}

impl<D> PanickyDevice<D> {
    pub fn new(inner: D) -> Self {
        PanickyDevice {
            inner,
            arms: Arc::default(),
        }
    }

    /// The `nth` call of `call` from now (1: the next) panics.
    pub fn panic_on(&self, call: Call, nth: u64) {
        self.arms.left[call as usize].store(nth, SeqCst);
    }

    /// How many calls panicked so far.
    pub fn panics(&self) -> u64 {
        self.arms.panics.load(SeqCst)
    }

    /// Waits (bounded) until a call panicked.
    pub fn wait_for_a_panic(&self) {
        let deadline = Instant::now() + WAIT;
        while self.panics() == 0 {
            assert!(Instant::now() < deadline, "no device call panicked");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn count(&self, call: Call) {
        let left = &self.arms.left[call as usize];
        let armed = left.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if armed == Ok(1) {
            self.arms.panics.fetch_add(1, SeqCst);
            panic!("device {call:?} panicked (expected by the test)");
        }
    }
}

impl PanickyDevice<MemDevice> {
    pub fn mem() -> Self {
        Self::new(MemDevice::new())
    }
}

impl<D: ReadAt> ReadAt for PanickyDevice<D> {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.count(Call::Read);
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn as_file(&self) -> Option<&File> {
        ReadAt::as_file(&self.inner)
    }
}

impl<D: WriteAt> WriteAt for PanickyDevice<D> {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        self.count(Call::Write);
        self.inner.write_at(pos, buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.count(Call::SetLen);
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn as_file(&self) -> Option<&File> {
        self.count(Call::Punch);
        WriteAt::as_file(&self.inner)
    }
}
