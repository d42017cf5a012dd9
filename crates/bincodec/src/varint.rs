//! Variable-length integers: LEB128 (unsigned and signed) and git's pack offset varint.
//!
//! Every decoder comes in two forms: from a byte slice (`decode_*`) and from
//! any [`ByteSource`] at a position (`decode_*_at`), so a varint can be read
//! straight through a page cache. Both return the value and the number of
//! bytes it took. Every encoder returns an [`EncodedVarint`], a small
//! stack buffer that derefs to `&[u8]`.
//!
//! No decoder panics or wraps on any input: a varint that would not fit in 64
//! bits is [`VarintError::Overflow`], one cut short is [`VarintError::Truncated`].

use core::fmt;
use core::ops::Deref;

use crate::{ByteSource, ByteSourceExt};

/// The longest encoding of a 64-bit value, in bytes, for every varint kind here.
///
/// Decoders never look at more than this many bytes.
///
/// ```
/// use bincodec::varint::{MAX_VARINT_LEN, encode_git_offset, encode_sleb128, encode_uleb128};
///
/// assert_eq!(encode_uleb128(u64::MAX).len(), MAX_VARINT_LEN);
/// assert_eq!(encode_sleb128(i64::MIN).len(), MAX_VARINT_LEN);
/// assert_eq!(encode_git_offset(u64::MAX).len(), MAX_VARINT_LEN);
/// ```
pub const MAX_VARINT_LEN: usize = 10;

/// Why bytes do not decode to a 64-bit varint.
///
/// ```
/// use bincodec::varint::{VarintError, decode_uleb128};
///
/// assert_eq!(decode_uleb128(&[0x80, 0x80]), Err(VarintError::Truncated { len: 2 }));
/// assert_eq!(
///     decode_uleb128(&[0xff; 11]).unwrap_err().to_string(),
///     "varint does not fit in 64 bits (certain after 10 bytes)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarintError {
    /// The input ended inside the varint: all `len` bytes there were had the
    /// continuation bit (0x80) set.
    Truncated {
        /// How many bytes the input had.
        len: usize,
    },
    /// The varint encodes a value that does not fit in 64 bits, or is longer
    /// than [`MAX_VARINT_LEN`] bytes; this was certain after `len` bytes.
    Overflow {
        /// How many bytes were read when the overflow was detected.
        len: usize,
    },
}

impl fmt::Display for VarintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarintError::Truncated { len } => write!(
                f,
                "varint is truncated: the input ends after {len} bytes, all with the continuation bit set"
            ),
            VarintError::Overflow { len } => write!(
                f,
                "varint does not fit in 64 bits (certain after {len} bytes)"
            ),
        }
    }
}

impl core::error::Error for VarintError {}

/// Why a varint could not be read from a [`ByteSource`].
///
/// `E` is the source's error type. Running off the end of an in-memory
/// source is the source's own [`OutOfBounds`](crate::OutOfBounds) error
/// (it tells where the source ends), reported as [`Source`](Self::Source);
/// [`Varint`](Self::Varint) means the bytes themselves are bad.
///
/// Both variants are transparent: `Display` shows the inner error's message.
///
/// ```
/// use bincodec::OutOfBounds;
/// use bincodec::varint::{ReadVarintError, VarintError, decode_uleb128_at};
///
/// let data = [0x00, 0x80];
/// assert_eq!(
///     decode_uleb128_at(&data, 1),
///     Err(ReadVarintError::Source(OutOfBounds { pos: 2, len: 1, size: 2 }))
/// );
/// let overlong = [0xffu8; 12];
/// assert_eq!(
///     decode_uleb128_at(&overlong, 1),
///     Err(ReadVarintError::Varint(VarintError::Overflow { len: 10 }))
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadVarintError<E> {
    /// The bytes read are not a valid 64-bit varint.
    Varint(VarintError),
    /// The source failed to deliver a byte of the varint.
    Source(E),
}

impl<E> From<VarintError> for ReadVarintError<E> {
    fn from(error: VarintError) -> Self {
        ReadVarintError::Varint(error)
    }
}

impl<E: fmt::Display> fmt::Display for ReadVarintError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadVarintError::Varint(error) => error.fmt(f),
            ReadVarintError::Source(error) => error.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for ReadVarintError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        // Transparent: the inner error's cause, not the inner error, since
        // Display already shows the inner message.
        match self {
            ReadVarintError::Varint(error) => error.source(),
            ReadVarintError::Source(error) => error.source(),
        }
    }
}

/// An encoded varint: at most [`MAX_VARINT_LEN`] bytes on the stack.
///
/// Derefs to the encoded bytes.
///
/// ```
/// use bincodec::ByteSinkExt;
/// use bincodec::ByteSink;
/// use bincodec::varint::encode_uleb128;
///
/// let encoded = encode_uleb128(300);
/// assert_eq!(&encoded[..], [0xac, 0x02]);
/// let mut buf = [0u8; 4];
/// buf.write_bytes_at(1, &encoded)?;
/// assert_eq!(buf, [0, 0xac, 0x02, 0]);
/// # Ok::<(), bincodec::OutOfBounds>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedVarint {
    buf: [u8; MAX_VARINT_LEN],
    // The encoding is `buf[start..end]`: git's offset varint is written back
    // to front, LEB128 front to back.
    start: usize,
    end: usize,
}

impl EncodedVarint {
    /// The encoded bytes.
    ///
    /// ```
    /// use bincodec::varint::encode_git_offset;
    ///
    /// assert_eq!(encode_git_offset(128).as_bytes(), [0x80, 0x00]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }
}

impl Deref for EncodedVarint {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for EncodedVarint {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for EncodedVarint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedVarint")
            .field(&self.as_bytes())
            .finish()
    }
}

/// Encodes `value` as unsigned LEB128, in the fewest bytes (1 to 10).
///
/// ```
/// use bincodec::varint::encode_uleb128;
///
/// assert_eq!(&encode_uleb128(0)[..], [0x00]);
/// assert_eq!(&encode_uleb128(624_485)[..], [0xe5, 0x8e, 0x26]);
/// ```
pub fn encode_uleb128(value: u64) -> EncodedVarint {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let mut rest = value;
    let mut len = 0;
    for slot in &mut buf {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        len += 1;
        if rest == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    EncodedVarint {
        buf,
        start: 0,
        end: len,
    }
}

/// Encodes `value` as signed LEB128 (two's complement, sign in bit 6 of the
/// last byte), in the fewest bytes (1 to 10).
///
/// ```
/// use bincodec::varint::encode_sleb128;
///
/// assert_eq!(&encode_sleb128(-1)[..], [0x7f]);
/// assert_eq!(&encode_sleb128(64)[..], [0xc0, 0x00]);
/// assert_eq!(&encode_sleb128(-123_456)[..], [0xc0, 0xbb, 0x78]);
/// ```
pub fn encode_sleb128(value: i64) -> EncodedVarint {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let mut rest = value;
    let mut len = 0;
    for slot in &mut buf {
        let low = (rest & 0x7f) as u8;
        // Arithmetic shift keeps the sign, so `rest` ends at 0 or -1.
        rest >>= 7;
        len += 1;
        let sign_bit_set = low & 0x40 != 0;
        if (rest == 0 && !sign_bit_set) || (rest == -1 && sign_bit_set) {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    EncodedVarint {
        buf,
        start: 0,
        end: len,
    }
}

/// Encodes `value` as git's pack offset varint (the base offset of an
/// `OFS_DELTA` object): big-endian groups of 7 bits where every continuation
/// adds one, so each value has exactly one encoding (1 to 10 bytes).
///
/// ```
/// use bincodec::varint::encode_git_offset;
///
/// assert_eq!(&encode_git_offset(127)[..], [0x7f]);
/// assert_eq!(&encode_git_offset(128)[..], [0x80, 0x00]);
/// assert_eq!(&encode_git_offset(16_511)[..], [0xff, 0x7f]);
/// assert_eq!(&encode_git_offset(16_512)[..], [0x80, 0x80, 0x00]);
/// ```
pub fn encode_git_offset(value: u64) -> EncodedVarint {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let mut start = MAX_VARINT_LEN - 1;
    buf[start] = (value & 0x7f) as u8;
    let mut rest = value >> 7;
    // Each step removes 7 bits, so at most 9 more bytes: `start` never wraps.
    while rest != 0 && start > 0 {
        rest -= 1;
        start -= 1;
        buf[start] = 0x80 | (rest & 0x7f) as u8;
        rest >>= 7;
    }
    EncodedVarint {
        buf,
        start,
        end: MAX_VARINT_LEN,
    }
}

/// Decodes unsigned LEB128 from the start of `bytes`.
///
/// Returns the value and the number of bytes it took. Redundant padding
/// (`0x80 0x00` for zero) is accepted, as DWARF and WebAssembly readers do,
/// within the 10-byte limit.
///
/// # Errors
/// [`VarintError::Truncated`] when `bytes` ends inside the varint;
/// [`VarintError::Overflow`] when it is longer than 10 bytes or has bits set
/// above bit 63.
///
/// ```
/// use bincodec::varint::{VarintError, decode_uleb128};
///
/// assert_eq!(decode_uleb128(&[0xe5, 0x8e, 0x26, 0xff]), Ok((624_485, 3)));
/// assert_eq!(decode_uleb128(&[0xe5, 0x8e]), Err(VarintError::Truncated { len: 2 }));
/// let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
/// assert_eq!(decode_uleb128(&too_big), Err(VarintError::Overflow { len: 10 }));
/// ```
#[inline]
pub fn decode_uleb128(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    // One-byte values are the common case in every format that uses LEB128.
    if let Some(&first) = bytes.first()
        && first < 0x80
    {
        return Ok((u64::from(first), 1));
    }
    uleb128_from(|i| Ok(bytes.get(i).copied())).map_err(slice_error)
}

/// Decodes signed LEB128 from the start of `bytes`.
///
/// Returns the value and the number of bytes it took. Redundant padding
/// (`0xff 0x7f` for -1) is accepted within the 10-byte limit.
///
/// # Errors
/// [`VarintError::Truncated`] when `bytes` ends inside the varint;
/// [`VarintError::Overflow`] when it is longer than 10 bytes or its value is
/// outside `i64` (the 10th byte must be `0x00` or `0x7f`).
///
/// ```
/// use bincodec::varint::{VarintError, decode_sleb128};
///
/// assert_eq!(decode_sleb128(&[0xc0, 0xbb, 0x78]), Ok((-123_456, 3)));
/// assert_eq!(decode_sleb128(&[0x7f]), Ok((-1, 1)));
/// assert_eq!(decode_sleb128(&[0xc0]), Err(VarintError::Truncated { len: 1 }));
/// ```
#[inline]
pub fn decode_sleb128(bytes: &[u8]) -> Result<(i64, usize), VarintError> {
    sleb128_from(|i| Ok(bytes.get(i).copied())).map_err(slice_error)
}

/// Decodes git's pack offset varint (the `OFS_DELTA` base offset) from the
/// start of `bytes`.
///
/// Returns the value and the number of bytes it took. Each continuation
/// byte computes `value = ((value + 1) << 7) | (byte & 0x7f)`.
///
/// # Errors
/// [`VarintError::Truncated`] when `bytes` ends inside the varint;
/// [`VarintError::Overflow`] as soon as the bytes read guarantee a value
/// above `u64::MAX` (git itself rejects such offsets as bogus).
///
/// ```
/// use bincodec::varint::{VarintError, decode_git_offset};
///
/// assert_eq!(decode_git_offset(&[0x80, 0x00]), Ok((128, 2)));
/// assert_eq!(decode_git_offset(&[0x91, 0x2e, 0x00]), Ok((((0x11 + 1) << 7) | 0x2e, 2)));
/// // Nine continuation bytes of 0xff already exceed 2^63, so a tenth cannot fit.
/// assert_eq!(decode_git_offset(&[0xff; 10]), Err(VarintError::Overflow { len: 9 }));
/// ```
#[inline]
pub fn decode_git_offset(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    git_offset_from(|i| Ok(bytes.get(i).copied())).map_err(slice_error)
}

/// Decodes unsigned LEB128 at `pos` of a [`ByteSource`], such as a page cache.
///
/// Same rules as [`decode_uleb128`]. Reads one byte at a time, at most 10,
/// so it never asks the source for a byte past the varint's end.
///
/// # Errors
/// [`ReadVarintError::Source`] with the source's error when a byte cannot be
/// read (for an in-memory source: the varint runs past its end);
/// [`ReadVarintError::Varint`] when the bytes overflow 64 bits, or are
/// truncated by the end of the `u64` position space.
///
/// ```
/// use bincodec::OutOfBounds;
/// use bincodec::varint::{ReadVarintError, decode_uleb128_at};
///
/// let data = [0xac, 0x02, 0xaa];
/// assert_eq!(decode_uleb128_at(&data, 0), Ok((300, 2)));
/// assert_eq!(
///     decode_uleb128_at(&data, 2),
///     Err(ReadVarintError::Source(OutOfBounds { pos: 3, len: 1, size: 3 }))
/// );
/// ```
pub fn decode_uleb128_at<S: ByteSource + ?Sized>(
    src: &S,
    pos: u64,
) -> Result<(u64, usize), ReadVarintError<S::Error>> {
    uleb128_from(|i| source_byte(src, pos, i))
}

/// Decodes signed LEB128 at `pos` of a [`ByteSource`].
///
/// Same rules as [`decode_sleb128`]; reads like [`decode_uleb128_at`].
///
/// # Errors
/// As [`decode_uleb128_at`].
///
/// ```
/// use bincodec::varint::decode_sleb128_at;
///
/// let data = vec![0x00, 0x00, 0x7e];
/// assert_eq!(decode_sleb128_at(data.as_slice(), 2), Ok((-2, 1)));
/// ```
pub fn decode_sleb128_at<S: ByteSource + ?Sized>(
    src: &S,
    pos: u64,
) -> Result<(i64, usize), ReadVarintError<S::Error>> {
    sleb128_from(|i| source_byte(src, pos, i))
}

/// Decodes git's pack offset varint at `pos` of a [`ByteSource`].
///
/// Same rules as [`decode_git_offset`]; reads like [`decode_uleb128_at`].
///
/// # Errors
/// As [`decode_uleb128_at`].
///
/// ```
/// use bincodec::varint::decode_git_offset_at;
///
/// // A pack entry header byte, then the OFS_DELTA base offset.
/// let entry = [0x6a, 0x81, 0x05];
/// assert_eq!(decode_git_offset_at(&entry, 1), Ok((((1 + 1) << 7) | 0x05, 2)));
/// ```
pub fn decode_git_offset_at<S: ByteSource + ?Sized>(
    src: &S,
    pos: u64,
) -> Result<(u64, usize), ReadVarintError<S::Error>> {
    git_offset_from(|i| source_byte(src, pos, i))
}

/// The `i`th byte of the varint at `pos`; `None` past the last `u64` position.
#[inline(always)]
fn source_byte<S: ByteSource + ?Sized>(
    src: &S,
    pos: u64,
    i: usize,
) -> Result<Option<u8>, S::Error> {
    match pos.checked_add(i as u64) {
        Some(at) => src.get_u8(at).map(Some),
        None => Ok(None),
    }
}

/// Slices never fail to deliver a byte, only run out of them.
#[inline(always)]
fn slice_error(error: ReadVarintError<core::convert::Infallible>) -> VarintError {
    match error {
        ReadVarintError::Varint(error) => error,
        ReadVarintError::Source(never) => match never {},
    }
}

/// Fetches byte `i` of a varint: `Ok(None)` when the input has ended.
#[inline(always)]
fn next_byte<E>(
    byte_at: &mut impl FnMut(usize) -> Result<Option<u8>, E>,
    i: usize,
) -> Result<u8, ReadVarintError<E>> {
    match byte_at(i) {
        Ok(Some(byte)) => Ok(byte),
        Ok(None) => Err(VarintError::Truncated { len: i }.into()),
        Err(error) => Err(ReadVarintError::Source(error)),
    }
}

// The decoders are written once over a byte-fetching closure, so the slice
// and the `ByteSource` forms cannot drift apart.

#[inline(always)]
fn uleb128_from<E>(
    mut byte_at: impl FnMut(usize) -> Result<Option<u8>, E>,
) -> Result<(u64, usize), ReadVarintError<E>> {
    let mut value = 0u64;
    // Bytes 0..9 carry bits 0..63 whole.
    for i in 0..MAX_VARINT_LEN - 1 {
        let byte = next_byte(&mut byte_at, i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok((value, i + 1));
        }
    }
    // The 10th byte holds only bit 63: anything else is more than 64 bits.
    let last = next_byte(&mut byte_at, MAX_VARINT_LEN - 1)?;
    if last > 1 {
        return Err(VarintError::Overflow {
            len: MAX_VARINT_LEN,
        }
        .into());
    }
    Ok((value | (u64::from(last) << 63), MAX_VARINT_LEN))
}

#[inline(always)]
fn sleb128_from<E>(
    mut byte_at: impl FnMut(usize) -> Result<Option<u8>, E>,
) -> Result<(i64, usize), ReadVarintError<E>> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT_LEN - 1 {
        let byte = next_byte(&mut byte_at, i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            // Sign-extend from the top payload bit (bit 6 of this byte).
            let unused = 64 - 7 * (i as u32 + 1);
            return Ok((((value << unused) as i64) >> unused, i + 1));
        }
    }
    // The 10th byte holds bit 63 and six copies of it: 0x00 or 0x7f.
    match next_byte(&mut byte_at, MAX_VARINT_LEN - 1)? {
        0x00 => Ok((value as i64, MAX_VARINT_LEN)),
        0x7f => Ok(((value | (1 << 63)) as i64, MAX_VARINT_LEN)),
        _ => Err(VarintError::Overflow {
            len: MAX_VARINT_LEN,
        }
        .into()),
    }
}

#[inline(always)]
fn git_offset_from<E>(
    mut byte_at: impl FnMut(usize) -> Result<Option<u8>, E>,
) -> Result<(u64, usize), ReadVarintError<E>> {
    let mut byte = next_byte(&mut byte_at, 0)?;
    let mut value = u64::from(byte & 0x7f);
    let mut len = 1;
    while byte >= 0x80 {
        // The next step computes (value + 1) << 7, which fits only while
        // value + 1 < 2^57. `value` grows every step, so this also bounds
        // the loop to 10 bytes.
        if value >= (1 << 57) - 1 {
            return Err(VarintError::Overflow { len }.into());
        }
        byte = next_byte(&mut byte_at, len)?;
        value = ((value + 1) << 7) | u64::from(byte & 0x7f);
        len += 1;
    }
    Ok((value, len))
}
