//! Byte sources and the getters every source gets.

use crate::OutOfBounds;

/// Something that `len` bytes can be read from at a position.
///
/// In-memory sources fail only with [`OutOfBounds`]; a source whose reads can
/// fail for other reasons (a page cache over a disk) chooses a richer
/// [`Error`](ByteSource::Error) that out-of-bounds converts into, and every
/// getter of [`ByteSourceExt`] reports through it.
///
/// ```
/// use bincodec::{ByteSource, OutOfBounds};
///
/// let mut out = [0u8; 2];
/// [1u8, 2, 3].as_slice().read_bytes_at(1, &mut out)?;
/// assert_eq!(out, [2, 3]);
/// # Ok::<(), OutOfBounds>(())
/// ```
pub trait ByteSource {
    /// What a failed read reports.
    type Error: From<OutOfBounds>;

    /// Fills all of `buf` with the bytes at `pos..pos + buf.len()`.
    ///
    /// # Errors
    /// Out of bounds when the range does not lie wholly inside the source
    /// (the buffer's contents are then unspecified), or the source's own error.
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// A shortcut for reads of at most eight bytes, which every getter of
    /// [`ByteSourceExt`] up to 64 bits tries first: the `len` bytes at
    /// `pos` as the low bytes of a little-endian `u64` (the bytes above
    /// them are unspecified), if the source has them at hand. `None` sends
    /// the getter to [`read_bytes_at`](ByteSource::read_bytes_at), which
    /// decides whether the read succeeds; `None` is always a correct answer.
    ///
    /// The default returns `None`, which costs nothing once inlined. A
    /// source whose common read is short (a page cache finding the page
    /// resident) overrides it so a hit keeps the value in registers, with
    /// no buffer and no error path. An override returns `Some` only for a
    /// range that lies inside the source, with exactly the bytes
    /// `read_bytes_at` would give.
    ///
    /// ```
    /// use bincodec::{ByteSource, ByteSourceExt, OutOfBounds};
    ///
    /// /// Eight bytes repeated forever; a word read needs no buffer.
    /// struct Pattern(u64);
    ///
    /// impl ByteSource for Pattern {
    ///     type Error = OutOfBounds;
    ///
    ///     fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
    ///         for (i, byte) in buf.iter_mut().enumerate() {
    ///             *byte = self.0.to_le_bytes()[(pos as usize + i) % 8];
    ///         }
    ///         Ok(())
    ///     }
    ///
    ///     fn read_word_le(&self, pos: u64, _len: usize) -> Option<u64> {
    ///         Some(self.0.rotate_right((pos % 8) as u32 * 8))
    ///     }
    /// }
    ///
    /// let source = Pattern(0x0807_0605_0403_0201);
    /// assert_eq!(source.get_u32_be(6)?, 0x0708_0102);
    /// assert_eq!(source.get_u128_le(0)?, 0x0807_0605_0403_0201_0807_0605_0403_0201);
    /// // Slices keep the default: `None`, then the bounds-checked copy.
    /// assert_eq!([1u8, 2, 3].as_slice().read_word_le(0, 2), None);
    /// # Ok::<(), OutOfBounds>(())
    /// ```
    #[inline(always)]
    fn read_word_le(&self, pos: u64, len: usize) -> Option<u64> {
        let _ = (pos, len);
        None
    }
}

impl ByteSource for [u8] {
    type Error = OutOfBounds;

    #[inline(always)]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let (start, end) = OutOfBounds::check(pos, buf.len(), self.len())?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

impl<const N: usize> ByteSource for [u8; N] {
    type Error = OutOfBounds;

    #[inline(always)]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.as_slice().read_bytes_at(pos, buf)
    }
}

#[cfg(feature = "alloc")]
impl ByteSource for alloc::vec::Vec<u8> {
    type Error = OutOfBounds;

    #[inline(always)]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.as_slice().read_bytes_at(pos, buf)
    }
}

impl<S: ByteSource + ?Sized> ByteSource for &S {
    type Error = S::Error;

    #[inline(always)]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), S::Error> {
        (**self).read_bytes_at(pos, buf)
    }

    #[inline(always)]
    fn read_word_le(&self, pos: u64, len: usize) -> Option<u64> {
        (**self).read_word_le(pos, len)
    }
}

impl<S: ByteSource + ?Sized> ByteSource for &mut S {
    type Error = S::Error;

    #[inline(always)]
    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), S::Error> {
        (**self).read_bytes_at(pos, buf)
    }

    #[inline(always)]
    fn read_word_le(&self, pos: u64, len: usize) -> Option<u64> {
        (**self).read_word_le(pos, len)
    }
}

macro_rules! getters {
    ($($ty:ident: $le:ident, $be:ident, $ne:ident;)*) => {$(
        #[doc = concat!("Reads a little-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not lie wholly inside the source,
        /// or the source's own read error.
        ///
        /// ```
        /// use bincodec::ByteSourceExt;
        ///
        #[doc = concat!("let bytes = 0x12", stringify!($ty), ".to_le_bytes();")]
        #[doc = concat!("assert_eq!(bytes.", stringify!($le), "(0), Ok(0x12));")]
        /// ```
        #[inline(always)]
        fn $le(&self, pos: u64) -> Result<$ty, Self::Error> {
            Ok($ty::from_le_bytes(self.get_array(pos)?))
        }

        #[doc = concat!("Reads a big-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not lie wholly inside the source,
        /// or the source's own read error.
        ///
        /// ```
        /// use bincodec::ByteSourceExt;
        ///
        #[doc = concat!("let bytes = 0x12", stringify!($ty), ".to_be_bytes();")]
        #[doc = concat!("assert_eq!(bytes.", stringify!($be), "(0), Ok(0x12));")]
        /// ```
        #[inline(always)]
        fn $be(&self, pos: u64) -> Result<$ty, Self::Error> {
            Ok($ty::from_be_bytes(self.get_array(pos)?))
        }

        #[doc = concat!("Reads a native-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not lie wholly inside the source,
        /// or the source's own read error.
        ///
        /// ```
        /// use bincodec::ByteSourceExt;
        ///
        #[doc = concat!("let bytes = 0x12", stringify!($ty), ".to_ne_bytes();")]
        #[doc = concat!("assert_eq!(bytes.", stringify!($ne), "(0), Ok(0x12));")]
        /// ```
        #[inline(always)]
        fn $ne(&self, pos: u64) -> Result<$ty, Self::Error> {
            Ok($ty::from_ne_bytes(self.get_array(pos)?))
        }
    )*};
}

/// Every getter, for every [`ByteSource`].
///
/// Implemented for all sources; there is nothing to implement by hand.
///
/// ```
/// use bincodec::{ByteSourceExt, OutOfBounds};
///
/// let data = vec![0xff, 0x01, 0x02, 0x03, 0x04];
/// assert_eq!(data.get_i8(0)?, -1);
/// assert_eq!(data.get_u32_be(1)?, 0x0102_0304);
/// assert_eq!(data.get_u32_be(2), Err(OutOfBounds { pos: 2, len: 4, size: 5 }));
/// # Ok::<(), OutOfBounds>(())
/// ```
pub trait ByteSourceExt: ByteSource {
    /// Reads `N` bytes at `pos` into an array.
    ///
    /// # Errors
    /// Out of bounds when the bytes do not lie wholly inside the source, or
    /// the source's own read error.
    ///
    /// ```
    /// use bincodec::ByteSourceExt;
    ///
    /// assert_eq!(b"hello".get_array::<3>(1), Ok(*b"ell"));
    /// ```
    #[inline(always)]
    fn get_array<const N: usize>(&self, pos: u64) -> Result<[u8; N], Self::Error> {
        if N <= 8
            && let Some(word) = self.read_word_le(pos, N)
        {
            let mut out = [0u8; N];
            out.copy_from_slice(&word.to_le_bytes()[..N]);
            return Ok(out);
        }
        let mut out = [0u8; N];
        self.read_bytes_at(pos, &mut out)?;
        Ok(out)
    }

    /// Reads the byte at `pos`.
    ///
    /// # Errors
    /// Out of bounds when `pos` is not inside the source, or the source's own
    /// read error.
    ///
    /// ```
    /// use bincodec::ByteSourceExt;
    ///
    /// assert_eq!([7u8].get_u8(0), Ok(7));
    /// assert!([7u8].get_u8(1).is_err());
    /// ```
    #[inline(always)]
    fn get_u8(&self, pos: u64) -> Result<u8, Self::Error> {
        Ok(self.get_array::<1>(pos)?[0])
    }

    /// Reads the byte at `pos` as a signed integer.
    ///
    /// # Errors
    /// Out of bounds when `pos` is not inside the source, or the source's own
    /// read error.
    ///
    /// ```
    /// use bincodec::ByteSourceExt;
    ///
    /// assert_eq!([0x80u8].get_i8(0), Ok(-128));
    /// ```
    #[inline(always)]
    fn get_i8(&self, pos: u64) -> Result<i8, Self::Error> {
        Ok(i8::from_ne_bytes(self.get_array(pos)?))
    }

    getters! {
        u16: get_u16_le, get_u16_be, get_u16_ne;
        i16: get_i16_le, get_i16_be, get_i16_ne;
        u32: get_u32_le, get_u32_be, get_u32_ne;
        i32: get_i32_le, get_i32_be, get_i32_ne;
        u64: get_u64_le, get_u64_be, get_u64_ne;
        i64: get_i64_le, get_i64_be, get_i64_ne;
        u128: get_u128_le, get_u128_be, get_u128_ne;
        i128: get_i128_le, get_i128_be, get_i128_ne;
    }
}

impl<S: ByteSource + ?Sized> ByteSourceExt for S {}
