//! Byte sinks and the setters every sink gets.

use crate::OutOfBounds;

/// Something that bytes can be written to at a position, without growing.
///
/// ```
/// use bincodec::{ByteSink, OutOfBounds};
///
/// let mut buf = [0u8; 4];
/// buf.write_bytes_at(1, &[9, 9])?;
/// assert_eq!(buf, [0, 9, 9, 0]);
/// assert!(buf.write_bytes_at(3, &[1, 2]).is_err());
/// # Ok::<(), OutOfBounds>(())
/// ```
pub trait ByteSink {
    /// What a failed write reports.
    type Error: From<OutOfBounds>;

    /// Writes all of `bytes` at `pos..pos + bytes.len()`.
    ///
    /// # Errors
    /// Out of bounds when the range does not lie wholly inside the sink (then
    /// nothing is written), or the sink's own error.
    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl ByteSink for [u8] {
    type Error = OutOfBounds;

    #[inline(always)]
    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let (start, end) = OutOfBounds::check(pos, bytes.len(), self.len())?;
        self[start..end].copy_from_slice(bytes);
        Ok(())
    }
}

impl<const N: usize> ByteSink for [u8; N] {
    type Error = OutOfBounds;

    #[inline(always)]
    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.as_mut_slice().write_bytes_at(pos, bytes)
    }
}

/// A `Vec` is a fixed-size sink here: writes past its length are out of
/// bounds rather than growing it, like every other sink.
#[cfg(feature = "alloc")]
impl ByteSink for alloc::vec::Vec<u8> {
    type Error = OutOfBounds;

    #[inline(always)]
    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.as_mut_slice().write_bytes_at(pos, bytes)
    }
}

impl<S: ByteSink + ?Sized> ByteSink for &mut S {
    type Error = S::Error;

    #[inline(always)]
    fn write_bytes_at(&mut self, pos: u64, bytes: &[u8]) -> Result<(), S::Error> {
        (**self).write_bytes_at(pos, bytes)
    }
}

macro_rules! setters {
    ($($ty:ident: $le:ident, $be:ident, $ne:ident;)*) => {$(
        #[doc = concat!("Writes `value` as a little-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not fit wholly inside the sink,
        /// or the sink's own write error.
        ///
        /// ```
        /// use bincodec::ByteSinkExt;
        ///
        #[doc = concat!("let mut buf = [0u8; core::mem::size_of::<", stringify!($ty), ">()];")]
        #[doc = concat!("buf.", stringify!($le), "(0, 0x12).unwrap();")]
        #[doc = concat!("assert_eq!(buf, 0x12", stringify!($ty), ".to_le_bytes());")]
        /// ```
        #[inline(always)]
        fn $le(&mut self, pos: u64, value: $ty) -> Result<(), Self::Error> {
            self.write_bytes_at(pos, &value.to_le_bytes())
        }

        #[doc = concat!("Writes `value` as a big-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not fit wholly inside the sink,
        /// or the sink's own write error.
        ///
        /// ```
        /// use bincodec::ByteSinkExt;
        ///
        #[doc = concat!("let mut buf = [0u8; core::mem::size_of::<", stringify!($ty), ">()];")]
        #[doc = concat!("buf.", stringify!($be), "(0, 0x12).unwrap();")]
        #[doc = concat!("assert_eq!(buf, 0x12", stringify!($ty), ".to_be_bytes());")]
        /// ```
        #[inline(always)]
        fn $be(&mut self, pos: u64, value: $ty) -> Result<(), Self::Error> {
            self.write_bytes_at(pos, &value.to_be_bytes())
        }

        #[doc = concat!("Writes `value` as a native-endian `", stringify!($ty), "` at `pos`.")]
        ///
        /// # Errors
        /// Out of bounds when the value does not fit wholly inside the sink,
        /// or the sink's own write error.
        ///
        /// ```
        /// use bincodec::ByteSinkExt;
        ///
        #[doc = concat!("let mut buf = [0u8; core::mem::size_of::<", stringify!($ty), ">()];")]
        #[doc = concat!("buf.", stringify!($ne), "(0, 0x12).unwrap();")]
        #[doc = concat!("assert_eq!(buf, 0x12", stringify!($ty), ".to_ne_bytes());")]
        /// ```
        #[inline(always)]
        fn $ne(&mut self, pos: u64, value: $ty) -> Result<(), Self::Error> {
            self.write_bytes_at(pos, &value.to_ne_bytes())
        }
    )*};
}

/// Every setter, for every [`ByteSink`].
///
/// Implemented for all sinks; there is nothing to implement by hand.
///
/// ```
/// use bincodec::{ByteSinkExt, OutOfBounds};
///
/// let mut buf = vec![0u8; 4];
/// buf.set_u16_be(0, 0x0102)?;
/// buf.set_i8(3, -1)?;
/// assert_eq!(buf, [1, 2, 0, 0xff]);
/// assert!(buf.set_u32_le(1, 0).is_err());
/// # Ok::<(), OutOfBounds>(())
/// ```
pub trait ByteSinkExt: ByteSink {
    /// Writes the byte `value` at `pos`.
    ///
    /// # Errors
    /// Out of bounds when `pos` is not inside the sink, or the sink's own
    /// write error.
    ///
    /// ```
    /// use bincodec::ByteSinkExt;
    ///
    /// let mut buf = [0u8; 1];
    /// buf.set_u8(0, 7).unwrap();
    /// assert_eq!(buf, [7]);
    /// ```
    #[inline(always)]
    fn set_u8(&mut self, pos: u64, value: u8) -> Result<(), Self::Error> {
        self.write_bytes_at(pos, &[value])
    }

    /// Writes the signed byte `value` at `pos`.
    ///
    /// # Errors
    /// Out of bounds when `pos` is not inside the sink, or the sink's own
    /// write error.
    ///
    /// ```
    /// use bincodec::ByteSinkExt;
    ///
    /// let mut buf = [0u8; 1];
    /// buf.set_i8(0, -2).unwrap();
    /// assert_eq!(buf, [0xfe]);
    /// ```
    #[inline(always)]
    fn set_i8(&mut self, pos: u64, value: i8) -> Result<(), Self::Error> {
        self.write_bytes_at(pos, &value.to_ne_bytes())
    }

    setters! {
        u16: set_u16_le, set_u16_be, set_u16_ne;
        i16: set_i16_le, set_i16_be, set_i16_ne;
        u32: set_u32_le, set_u32_be, set_u32_ne;
        i32: set_i32_le, set_i32_be, set_i32_ne;
        u64: set_u64_le, set_u64_be, set_u64_ne;
        i64: set_i64_le, set_i64_be, set_i64_ne;
        u128: set_u128_le, set_u128_be, set_u128_ne;
        i128: set_i128_le, set_i128_be, set_i128_ne;
    }
}

impl<S: ByteSink + ?Sized> ByteSinkExt for S {}
