//! `std::fs::File` as a device: `pread`/`pwrite` through std's `FileExt`,
//! `pwritev` through rustix.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

/// Buffers per `pwritev` call: Linux's `IOV_MAX`.
const MAX_IOVECS: usize = 1024;

use crate::{ReadAt, WriteAt};

impl ReadAt for File {
    #[inline]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        // The kernel takes a signed offset and says EINVAL beyond i64::MAX; no
        // file reaches that far, so report end of file like the memory devices.
        if pos > i64::MAX as u64 {
            return Ok(0);
        }
        FileExt::read_at(self, buf, pos)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    /// `posix_fadvise(WILLNEED)`: the kernel starts reading the range into
    /// its page cache. Its error (a pipe, an unsupported filesystem) is
    /// dropped, as a hint's must be.
    fn will_need(&self, pos: u64, len: u64) {
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(self, pos, Some(len), rustix::fs::Advice::WillNeed);
        }
    }

    fn as_file(&self) -> Option<&File> {
        Some(self)
    }
}

impl WriteAt for File {
    #[inline]
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        FileExt::write_at(self, buf, pos)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    /// One `pwritev` per 1024 buffers (`IOV_MAX`), continuing after short
    /// writes and `EINTR`.
    fn write_all_vectored_at(&self, mut pos: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(bufs.len().min(MAX_IOVECS));
        for group in bufs.chunks(MAX_IOVECS) {
            slices.clear();
            slices.extend(
                group
                    .iter()
                    .filter(|b| !b.is_empty())
                    .map(|b| IoSlice::new(b)),
            );
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                match rustix::io::pwritev(self, rest, pos) {
                    Ok(0) => {
                        let left: usize = rest.iter().map(|s| s.len()).sum();
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!("file accepted no bytes at position {pos}, {left} bytes left"),
                        ));
                    }
                    Ok(n) => {
                        pos += n as u64;
                        IoSlice::advance_slices(&mut rest, n);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    fn as_file(&self) -> Option<&File> {
        Some(self)
    }
}
