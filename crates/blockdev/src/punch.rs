//! Giving file space back: punching holes in byte ranges of a file.

use std::io;

use rustix::fs::{FallocateFlags, fallocate, fstat};

use crate::WriteAt;

/// Frees the file-system blocks that lie wholly inside `pos..pos + len` of
/// `dev`, keeping its size (`fallocate(PUNCH_HOLE | KEEP_SIZE)`); that part
/// of the range reads as zeros afterwards. Returns how many bytes were
/// punched.
///
/// Partial blocks at either end are left alone (punching them would only
/// zero bytes and free nothing). Returns `Ok(0)` when `dev` is not a plain
/// file ([`WriteAt::as_file`] is `None`), when the range covers no whole
/// block, and when the file system cannot punch holes (`EOPNOTSUPP`,
/// `ENOSYS`, or `EINVAL` from an old kernel): the space then simply stays in
/// use until the file is cut or closed.
///
/// # Errors
/// Any other error of `fstat` or `fallocate`, e.g. `EIO`.
///
/// ```
/// use blockdev::{anonymous_file, punch_hole, MemDevice, ReadAt, WriteAt};
///
/// let file = anonymous_file(&std::env::temp_dir())?;
/// file.write_all_at(0, &[7u8; 1 << 16])?;
/// let punched = punch_hole(&file, 1000, 40_000)?;
/// assert!(punched <= 40_000 && punched % 512 == 0);
/// let mut buf = [0u8; 4];
/// file.read_exact_at(0, &mut buf)?;
/// assert_eq!(buf, [7; 4]); // bytes outside the punched blocks stay
/// assert_eq!(file.size()?, 1 << 16); // the size is kept
/// assert_eq!(punch_hole(&MemDevice::new(), 0, 4096)?, 0); // not a file
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn punch_hole<D: WriteAt + ?Sized>(dev: &D, pos: u64, len: u64) -> io::Result<u64> {
    let Some(file) = dev.as_file() else {
        return Ok(0);
    };
    let block = u64::try_from(fstat(file)?.st_blksize).unwrap_or(0).max(1);
    let Some(stop) = pos.checked_add(len) else {
        return Ok(0);
    };
    let start = pos.div_ceil(block).saturating_mul(block);
    let stop = stop / block * block;
    if stop <= start {
        return Ok(0);
    }
    let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    match fallocate(file, flags, start, stop - start) {
        Ok(()) => Ok(stop - start),
        Err(e)
            if e == rustix::io::Errno::OPNOTSUPP
                || e == rustix::io::Errno::NOSYS
                || e == rustix::io::Errno::INVAL =>
        {
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReadAt, anonymous_file};

    /// Bytes the file system has allocated to `file`.
    fn allocated(file: &std::fs::File) -> u64 {
        use std::os::unix::fs::MetadataExt;
        file.metadata().unwrap().blocks() * 512
    }

    #[test]
    fn punched_blocks_free_space_and_read_as_zeros() {
        let file = anonymous_file(&std::env::temp_dir()).unwrap();
        file.write_all_at(0, &vec![9u8; 1 << 20]).unwrap();
        file.sync_data().unwrap();
        let before = allocated(&file);
        let punched = punch_hole(&file, 4096, 512 * 1024).unwrap();
        if punched == 0 {
            eprintln!("skipped: the temp dir's file system cannot punch holes");
            return;
        }
        assert!(allocated(&file) < before, "space given back");
        let mut buf = vec![0u8; 4096];
        file.read_exact_at(8192, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        file.read_exact_at(0, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 9), "the block before is kept");
        assert_eq!(file.size().unwrap(), 1 << 20);
    }

    #[test]
    fn a_range_inside_one_block_or_overflowing_punches_nothing() {
        let file = anonymous_file(&std::env::temp_dir()).unwrap();
        file.write_all_at(0, &[1u8; 8192]).unwrap();
        assert_eq!(punch_hole(&file, 1, 100).unwrap(), 0);
        assert_eq!(punch_hole(&file, u64::MAX - 1, 10).unwrap(), 0);
        let mut buf = [0u8; 100];
        file.read_exact_at(1, &mut buf).unwrap();
        assert_eq!(buf, [1u8; 100]);
    }
}
