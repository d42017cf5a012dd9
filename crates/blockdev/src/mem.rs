//! In-memory devices: read-only byte slices, and a shared growable buffer.

use std::io;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::{ReadAt, WriteAt};

fn read_from_slice(data: &[u8], pos: u64, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(pos) else {
        return 0;
    };
    let Some(tail) = data.get(start..) else {
        return 0;
    };
    let n = tail.len().min(buf.len());
    buf[..n].copy_from_slice(&tail[..n]);
    n
}

impl ReadAt for [u8] {
    #[inline]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_from_slice(self, pos, buf))
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    /// Nothing can change these bytes while they are shared.
    fn refresh(&self) -> io::Result<bool> {
        Ok(false)
    }
}

impl<const N: usize> ReadAt for [u8; N] {
    #[inline]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_from_slice(self, pos, buf))
    }

    fn size(&self) -> io::Result<u64> {
        Ok(N as u64)
    }

    /// Nothing can change these bytes while they are shared.
    fn refresh(&self) -> io::Result<bool> {
        Ok(false)
    }
}

impl ReadAt for Vec<u8> {
    #[inline]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_from_slice(self, pos, buf))
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    /// Nothing can change these bytes while they are shared.
    fn refresh(&self) -> io::Result<bool> {
        Ok(false)
    }
}

/// A growable in-memory device, shared by every clone, readable and writable
/// from many threads.
///
/// Writes past the end zero-fill the gap, as a sparse file would read back.
///
/// ```
/// use blockdev::{MemDevice, ReadAt, WriteAt};
///
/// let dev = MemDevice::from_vec(b"abc".to_vec());
/// let other = dev.clone();
/// other.write_all_at(5, b"z")?;
/// assert_eq!(dev.to_vec(), b"abc\0\0z");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default, Debug)]
pub struct MemDevice {
    bytes: Arc<RwLock<Vec<u8>>>,
}

impl MemDevice {
    /// An empty device.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// assert_eq!(MemDevice::new().size()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A device holding `bytes`.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// assert_eq!(MemDevice::from_vec(vec![1, 2]).size()?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Arc::new(RwLock::new(bytes)),
        }
    }

    /// A copy of the whole contents.
    ///
    /// ```
    /// use blockdev::MemDevice;
    ///
    /// assert_eq!(MemDevice::from_vec(vec![1, 2]).to_vec(), [1, 2]);
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.read().clone()
    }
}

fn to_index(pos: u64) -> io::Result<usize> {
    usize::try_from(pos).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("position {pos} does not fit in memory"),
        )
    })
}

impl ReadAt for MemDevice {
    #[inline]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_from_slice(&self.bytes.read(), pos, buf))
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.read().len() as u64)
    }
}

impl WriteAt for MemDevice {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        let start = to_index(pos)?;
        let end = start.checked_add(buf.len()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "write end overflows usize")
        })?;
        let mut bytes = self.bytes.write();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(buf);
        Ok(buf.len())
    }

    /// All buffers under one lock: no reader sees some of them written.
    fn write_all_vectored_at(&self, pos: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let start = to_index(pos)?;
        let end = bufs
            .iter()
            .try_fold(start, |end, buf| end.checked_add(buf.len()))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "write end overflows usize")
            })?;
        let mut bytes = self.bytes.write();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        let mut at = start;
        for buf in bufs {
            bytes[at..at + buf.len()].copy_from_slice(buf);
            at += buf.len();
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = to_index(len)?;
        self.bytes.write().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
