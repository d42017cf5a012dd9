//! The one error every in-memory getter and setter returns.

use core::fmt;

/// A read or write of `len` bytes at `pos` does not fit in a source of `size` bytes.
///
/// ```
/// use bincodec::{ByteSourceExt, OutOfBounds};
///
/// let err = [1u8, 2, 3].as_slice().get_u32_le(1).unwrap_err();
/// assert_eq!(err, OutOfBounds { pos: 1, len: 4, size: 3 });
/// assert_eq!(err.to_string(), "4 bytes at position 1 are out of bounds of a source of 3 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutOfBounds {
    /// Position of the first byte asked for.
    pub pos: u64,
    /// Number of bytes asked for.
    pub len: u64,
    /// Size of the source (or sink) in bytes.
    pub size: u64,
}

impl OutOfBounds {
    /// Checks that `len` bytes at `pos` fit in `size` bytes, without overflow.
    ///
    /// Returns the start and end as `usize` indices ready for slicing.
    ///
    /// ```
    /// use bincodec::OutOfBounds;
    ///
    /// assert_eq!(OutOfBounds::check(2, 4, 6), Ok((2, 6)));
    /// assert!(OutOfBounds::check(u64::MAX, 1, 6).is_err());
    /// ```
    #[inline(always)]
    pub const fn check(pos: u64, len: usize, size: usize) -> Result<(usize, usize), OutOfBounds> {
        let err = OutOfBounds {
            pos,
            len: len as u64,
            size: size as u64,
        };
        if pos > size as u64 {
            return Err(err);
        }
        // `pos <= size` so it fits in usize.
        let start = pos as usize;
        if len > size - start {
            return Err(err);
        }
        Ok((start, start + len))
    }
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at position {} are out of bounds of a source of {} bytes",
            self.len, self.pos, self.size
        )
    }
}

impl core::error::Error for OutOfBounds {}
