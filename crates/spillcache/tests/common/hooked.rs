//! An in-memory device that runs a test's hook ahead of every write, the
//! one pass-through device the tests that hold, record or kill writes share.

use std::io;
use std::sync::Arc;

use blockdev::{MemDevice, ReadAt, WriteAt};

/// An in-memory device that calls its hook before every write; the hook may
/// wait, record or panic. Clones share the bytes and the hook.
#[derive(Clone)]
pub struct HookedDevice {
    pub inner: MemDevice,
    before_write: Arc<dyn Fn() + Send + Sync>,
}

impl HookedDevice {
    pub fn new(inner: MemDevice, before_write: impl Fn() + Send + Sync + 'static) -> Self {
        HookedDevice {
            inner,
            before_write: Arc::new(before_write),
        }
    }
}

impl ReadAt for HookedDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

impl WriteAt for HookedDevice {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        (self.before_write)();
        self.inner.write_at(pos, buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
