//! The positional read and write traits.

use std::fs::File;
use std::io::{self, ErrorKind};

/// A device that can be read at any position through a shared reference.
///
/// ```
/// use blockdev::ReadAt;
///
/// let dev: &[u8] = b"hello world";
/// let mut buf = [0u8; 5];
/// dev.read_exact_at(6, &mut buf)?;
/// assert_eq!(&buf, b"world");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `pos`, returning how many were read.
    ///
    /// Zero means `pos` is at or past the end of the device (or `buf` is empty).
    ///
    /// # Errors
    /// The device's I/O error.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// The current size of the device in bytes.
    ///
    /// # Errors
    /// The device's I/O error.
    fn size(&self) -> io::Result<u64>;

    /// Moves this device, and every device below it, to the current
    /// contents of what it reads (for an object in a store: its current
    /// version), dropping what it caches of the old ones. Returns whether
    /// the contents may have changed: `Ok(true)` tells a cache above to
    /// drop its bytes too, `Ok(false)` that everything it holds is still
    /// the device's. A wrapper calls its inner device first, then drops
    /// its own bytes when that says `true` or fails.
    ///
    /// The default says `Ok(true)`: a device that cannot tell whether it
    /// changed (a file, a shared buffer others write) must not let a cache
    /// above keep bytes it can no longer vouch for. Devices whose bytes
    /// cannot change under a shared reference (`[u8]`, `Vec<u8>`) say
    /// `Ok(false)`.
    ///
    /// # Errors
    /// The device's I/O error, e.g. the request that asks a store for the
    /// current version. A cache above drops its bytes all the same.
    ///
    /// ```
    /// use blockdev::{MemDevice, ReadAt};
    ///
    /// assert!(MemDevice::new().refresh()?); // others may have written to it
    /// assert!(!vec![1u8, 2, 3].refresh()?); // nothing can have changed
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn refresh(&self) -> io::Result<bool> {
        Ok(true)
    }

    /// Fills all of `buf` from `pos`, retrying short reads and `EINTR`.
    ///
    /// # Errors
    /// [`ErrorKind::UnexpectedEof`] when the device ends before `buf` is full,
    /// or the device's I/O error.
    fn read_exact_at(&self, mut pos: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(pos, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "device ends before position {pos}, {} bytes short",
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Says that `len` bytes from `pos` will probably be read soon, like
    /// `posix_fadvise(POSIX_FADV_WILLNEED)`: a device may start fetching
    /// them in the background so the reads that follow find them ready.
    ///
    /// A hint only: it never fails, never changes what a read returns, and
    /// may be ignored (the default does nothing). Layers that wrap a device
    /// pass it down, translated to what they read from theirs; a range
    /// past the end is clipped or ignored.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let dev: &[u8] = b"hello world";
    /// dev.will_need(6, 5); // nothing to fetch for memory
    /// let mut buf = [0u8; 5];
    /// dev.read_exact_at(6, &mut buf)?;
    /// assert_eq!(&buf, b"world");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn will_need(&self, pos: u64, len: u64) {
        let _ = (pos, len);
    }

    /// Caps the bytes this device holds in memory fetched ahead of reads
    /// (after [`will_need`](ReadAt::will_need)) and not yet read, at
    /// `max_bytes`; 0 turns read-ahead off.
    ///
    /// A cache above calls it with its own read-ahead bound, so the bytes
    /// fetched ahead count toward the memory the cache bounds instead of
    /// adding to it. A device never raises its cap above what it was
    /// opened with; one that holds nothing ahead ignores this (the
    /// default). Layers that wrap a device pass it down.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let dev: &[u8] = b"hello world";
    /// dev.limit_read_ahead(0); // memory fetches nothing ahead
    /// assert_eq!(dev.size()?, 11);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn limit_read_ahead(&self, max_bytes: u64) {
        let _ = max_bytes;
    }

    /// The file behind this device, when it is a plain file.
    ///
    /// `copy_range` uses it to copy inside the kernel. Wrappers that must see
    /// every byte (fault injection, encryption) keep the default `None`.
    fn as_file(&self) -> Option<&File> {
        None
    }
}

/// A device that can be written at any position through a shared reference.
///
/// ```
/// use blockdev::{MemDevice, ReadAt, WriteAt};
///
/// let dev = MemDevice::new();
/// dev.write_all_at(0, b"abc")?;
/// dev.set_len(2)?;
/// assert_eq!(dev.to_vec(), b"ab");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait WriteAt {
    /// Writes up to `buf.len()` bytes at `pos`, returning how many were written.
    ///
    /// # Errors
    /// The device's I/O error.
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize>;

    /// Sets the size of the device, cutting or zero-extending it.
    ///
    /// # Errors
    /// The device's I/O error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes written data durable (`fdatasync` for files).
    ///
    /// # Errors
    /// The device's I/O error.
    fn sync_data(&self) -> io::Result<()>;

    /// Writes all of `buf` at `pos`, retrying short writes and `EINTR`.
    ///
    /// # Errors
    /// [`ErrorKind::WriteZero`] when the device accepts no more bytes, or the
    /// device's I/O error.
    fn write_all_at(&self, mut pos: u64, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(pos, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::WriteZero,
                        format!(
                            "device accepted no bytes at position {pos}, {} bytes left",
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => {
                    buf = &buf[n..];
                    pos += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `bufs`, one after the other, at `pos` (a vectored
    /// `pwrite`): callers hand over many buffers without copying them into
    /// one. Files do it with `pwritev`; the default calls
    /// [`write_all_at`](Self::write_all_at) for each buffer.
    ///
    /// # Errors
    /// As [`write_all_at`](Self::write_all_at); bytes before the failing
    /// one may have been written.
    ///
    /// ```
    /// use blockdev::{MemDevice, WriteAt};
    ///
    /// let dev = MemDevice::from_vec(vec![0; 6]);
    /// dev.write_all_vectored_at(1, &[b"ab", b"", b"cde"])?;
    /// assert_eq!(dev.to_vec(), b"\0abcde");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn write_all_vectored_at(&self, mut pos: u64, bufs: &[&[u8]]) -> io::Result<()> {
        for buf in bufs {
            self.write_all_at(pos, buf)?;
            pos += buf.len() as u64;
        }
        Ok(())
    }

    /// The file behind this device, when it is a plain file (see [`ReadAt::as_file`]).
    fn as_file(&self) -> Option<&File> {
        None
    }
}

macro_rules! forward {
    ($($wrapper:ty),*) => {$(
        impl<D: ReadAt + ?Sized> ReadAt for $wrapper {
            #[inline]
            fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
                (**self).read_at(pos, buf)
            }
            #[inline]
            fn size(&self) -> io::Result<u64> {
                (**self).size()
            }
            #[inline]
            fn refresh(&self) -> io::Result<bool> {
                (**self).refresh()
            }
            #[inline]
            fn read_exact_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
                (**self).read_exact_at(pos, buf)
            }
            #[inline]
            fn will_need(&self, pos: u64, len: u64) {
                (**self).will_need(pos, len)
            }
            #[inline]
            fn limit_read_ahead(&self, max_bytes: u64) {
                (**self).limit_read_ahead(max_bytes)
            }
            #[inline]
            fn as_file(&self) -> Option<&File> {
                ReadAt::as_file(&**self)
            }
        }

        impl<D: WriteAt + ?Sized> WriteAt for $wrapper {
            #[inline]
            fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
                (**self).write_at(pos, buf)
            }
            #[inline]
            fn set_len(&self, len: u64) -> io::Result<()> {
                (**self).set_len(len)
            }
            #[inline]
            fn sync_data(&self) -> io::Result<()> {
                (**self).sync_data()
            }
            #[inline]
            fn write_all_at(&self, pos: u64, buf: &[u8]) -> io::Result<()> {
                (**self).write_all_at(pos, buf)
            }
            #[inline]
            fn write_all_vectored_at(&self, pos: u64, bufs: &[&[u8]]) -> io::Result<()> {
                (**self).write_all_vectored_at(pos, bufs)
            }
            #[inline]
            fn as_file(&self) -> Option<&File> {
                WriteAt::as_file(&**self)
            }
        }
    )*};
}

forward!(&D, Box<D>, std::sync::Arc<D>);
