//! `std::fs::File` as a device: `pread`/`pwrite` through std's `FileExt`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

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

    fn as_file(&self) -> Option<&File> {
        Some(self)
    }
}
