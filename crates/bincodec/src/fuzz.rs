//! Fuzz checks: plain functions that take arbitrary bytes and panic when a
//! getter, setter or varint codec disagrees with an independent model.
//!
//! The cargo-fuzz targets in `fuzz/` only call these functions, and the
//! crate's ordinary tests call them with random inputs too, so a fuzz
//! finding is one `#[test]` away from a regression test.
//!
//! ```
//! bincodec::fuzz::getters(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09");
//! bincodec::fuzz::setters(b"any bytes at all");
//! bincodec::fuzz::varints(&[0xe5, 0x8e, 0x26]);
//! ```

use core::fmt::Debug;

use crate::varint::{
    EncodedVarint, MAX_VARINT_LEN, ReadVarintError, VarintError, decode_git_offset,
    decode_git_offset_at, decode_sleb128, decode_sleb128_at, decode_uleb128, decode_uleb128_at,
    encode_git_offset, encode_sleb128, encode_uleb128,
};
use crate::{ByteSink, ByteSinkExt, ByteSource, ByteSourceExt, OutOfBounds};

/// The setters work on a stack copy of at most this many input bytes.
const SINK_CAPACITY: usize = 64;

/// At most this many fixed-size chunks of an input are read as values
/// (bounds triples, words to encode), so that a long input costs no more
/// than a short one.
const MAX_CHUNKS: usize = 16;

/// Varints are decoded from this many first start positions of an input,
/// and from the last [`MAX_VARINT_LEN`] + 2 (where they run into the end).
/// A varint is at most 10 bytes long, so a start in the middle of a long
/// input finds nothing the first ones do not; decoding at every start made
/// a long input hundreds of times the work of a short one.
const VARINT_HEAD_STARTS: usize = 16;

/// The start positions [`check_decoder`] tries in `len` bytes.
fn varint_starts(len: usize) -> impl Iterator<Item = usize> {
    let tail = len
        .saturating_sub(MAX_VARINT_LEN + 2)
        .max(VARINT_HEAD_STARTS);
    (0..VARINT_HEAD_STARTS.min(len + 1)).chain(tail..=len)
}

/// The positions worth trying for a `width`-byte access to `len` bytes:
/// the start, the last that fits (`len - width`) and the first that does
/// not, `u64::MAX - width` (out of bounds, `pos + width` still fits in a
/// `u64`) and `u64::MAX - width + 1` (where `pos + width` overflows), and
/// two that the input picks (`chosen`, and `chosen` folded into `0..=len+1`).
///
/// A getter does not care where in the middle it reads, and every width
/// has its own edges; trying each width at its own few positions, rather
/// than every width at every position near the end, keeps each input
/// cheap (about 4x more inputs per second) while the fuzzer varies the
/// input's length and the positions it picks.
fn positions(len: usize, width: usize, chosen: u64) -> [u64; 7] {
    let (len, width) = (len as u64, width as u64);
    [
        0,
        len.saturating_sub(width),
        len.saturating_sub(width) + 1,
        u64::MAX - width,
        u64::MAX - width.saturating_sub(1),
        chosen,
        chosen % (len + 2),
    ]
}

/// The position the input picks: its first eight bytes, little-endian.
fn chosen_position(data: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    for (slot, byte) in head.iter_mut().zip(data) {
        *slot = *byte;
    }
    u64::from_le_bytes(head)
}

/// The `W` bytes at `pos` of `data`, or `None` when they are not all there.
/// Deliberately computed without [`OutOfBounds::check`], which it checks.
fn window<const W: usize>(data: &[u8], pos: u64) -> Option<[u8; W]> {
    let start = usize::try_from(pos).ok()?;
    let bytes = data.get(start..start.checked_add(W)?)?;
    bytes.try_into().ok()
}

/// Asserts that a getter returned `expected`, or exactly the out-of-bounds
/// error for `width` bytes at `pos` when `expected` is `None`.
#[track_caller]
fn assert_read<T: PartialEq + Debug>(
    what: &str,
    got: Result<T, OutOfBounds>,
    expected: Option<T>,
    pos: u64,
    width: usize,
    size: usize,
) {
    let expected = expected.ok_or(OutOfBounds {
        pos,
        len: width as u64,
        size: size as u64,
    });
    assert_eq!(got, expected, "{what} at {pos} of a {size}-byte source");
}

/// Runs every getter on `src`, whose bytes are `data`, at the positions
/// [`positions`] gives for its width.
fn check_getters<S: ByteSource<Error = OutOfBounds> + ?Sized>(src: &S, data: &[u8], chosen: u64) {
    let size = data.len();
    for pos in positions(size, 1, chosen) {
        let byte = window::<1>(data, pos).map(|b| b[0]);
        assert_read("get_u8", src.get_u8(pos), byte, pos, 1, size);
        assert_read(
            "get_i8",
            src.get_i8(pos),
            byte.map(|b| b as i8),
            pos,
            1,
            size,
        );
    }
    macro_rules! check_widths {
        ($($ty:ident: $le:ident, $be:ident, $ne:ident;)*) => {$(
            {
                const W: usize = size_of::<$ty>();
                for pos in positions(size, W, chosen) {
                    let bytes = window::<W>(data, pos);
                    assert_read(stringify!($le), src.$le(pos), bytes.map($ty::from_le_bytes), pos, W, size);
                    assert_read(stringify!($be), src.$be(pos), bytes.map($ty::from_be_bytes), pos, W, size);
                    assert_read(stringify!($ne), src.$ne(pos), bytes.map($ty::from_ne_bytes), pos, W, size);
                }
            }
        )*};
    }
    check_widths! {
        u16: get_u16_le, get_u16_be, get_u16_ne;
        i16: get_i16_le, get_i16_be, get_i16_ne;
        u32: get_u32_le, get_u32_be, get_u32_ne;
        i32: get_i32_le, get_i32_be, get_i32_ne;
        u64: get_u64_le, get_u64_be, get_u64_ne;
        i64: get_i64_le, get_i64_be, get_i64_ne;
        u128: get_u128_le, get_u128_be, get_u128_ne;
        i128: get_i128_le, get_i128_be, get_i128_ne;
    }
    macro_rules! check_arrays {
        ($($n:literal),*) => {$(
            for pos in positions(size, $n, chosen) {
                let what = concat!("get_array::<", $n, ">");
                assert_read(what, src.get_array::<$n>(pos), window::<$n>(data, pos), pos, $n, size);
            }
        )*};
    }
    check_arrays!(0, 3, 33);

    // Byte ranges of several lengths into a caller buffer.
    let mut buf = [0u8; 64];
    for len in [0, 1, 7, 64] {
        for pos in positions(size, len, chosen) {
            let out = &mut buf[..len];
            let got = src.read_bytes_at(pos, out).map(|()| &*out);
            let expected = usize::try_from(pos)
                .ok()
                .and_then(|start| data.get(start..start.checked_add(len)?));
            assert_read("read_bytes_at", got, expected, pos, len, size);
        }
    }
}

/// Checks [`OutOfBounds::check`] against wide arithmetic for the first 16
/// 24-byte chunks of `data`, each read as `(pos, len, size)`.
fn check_bounds(data: &[u8]) {
    for chunk in data.chunks_exact(24).take(MAX_CHUNKS) {
        let word = |i: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
            u64::from_le_bytes(bytes)
        };
        let (pos, len, size) = (word(0), word(1) as usize, word(2) as usize);
        let fits = u128::from(pos) + len as u128 <= size as u128;
        let expected = if fits {
            Ok((pos as usize, pos as usize + len))
        } else {
            Err(OutOfBounds {
                pos,
                len: len as u64,
                size: size as u64,
            })
        };
        assert_eq!(OutOfBounds::check(pos, len, size), expected);
    }
}

/// Checks every getter (all widths, all byte orders, arrays and byte
/// ranges) at the positions that matter for its width, of `data`, through
/// a slice, a trait object and an array, against `from_le_bytes`/
/// `from_be_bytes`/`from_ne_bytes` on the slice, or the exact
/// [`OutOfBounds`] error when out of range. Also checks
/// [`OutOfBounds::check`] itself.
///
/// # Panics
/// When any getter disagrees with the model: that is a bug to report.
///
/// ```
/// bincodec::fuzz::getters(&[]);
/// bincodec::fuzz::getters(&[0xff; 40]);
/// ```
pub fn getters(data: &[u8]) {
    let chosen = chosen_position(data);
    check_getters(data, data, chosen);
    let as_dyn: &dyn ByteSource<Error = OutOfBounds> = &data;
    check_getters(as_dyn, data, chosen.rotate_left(17));
    if let Some(prefix) = window::<8>(data, 0) {
        check_getters(&prefix, &prefix, chosen.swap_bytes());
    }
    check_getters(&WordShortcut(data), data, chosen.rotate_left(29));
    check_bounds(data);
}

/// A slice that answers [`ByteSource::read_word_le`] for every range inside
/// it, with junk in the bytes above the range: the getters must take the
/// low bytes only, and fall back to `read_bytes_at` on `None`.
struct WordShortcut<'a>(&'a [u8]);

impl ByteSource for WordShortcut<'_> {
    type Error = OutOfBounds;

    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.0.read_bytes_at(pos, buf)
    }

    fn read_word_le(&self, pos: u64, len: usize) -> Option<u64> {
        let (start, end) = OutOfBounds::check(pos, len, self.0.len()).ok()?;
        let mut word = [0xa5; 8];
        word.get_mut(..len)?
            .copy_from_slice(self.0.get(start..end)?);
        Some(u64::from_le_bytes(word))
    }
}

/// Checks a setter's effect on `sink`, which held `before`: either exactly
/// `encoded` written at `pos` and nothing else touched, or the exact
/// out-of-bounds error and nothing touched at all.
#[track_caller]
fn assert_written(
    what: &str,
    result: Result<(), OutOfBounds>,
    sink: &[u8],
    before: &[u8],
    pos: u64,
    encoded: &[u8],
) {
    let size = before.len();
    let start = usize::try_from(pos).ok().filter(|start| {
        start
            .checked_add(encoded.len())
            .is_some_and(|end| end <= size)
    });
    match start {
        Some(start) => {
            assert_eq!(result, Ok(()), "{what} at {pos} of a {size}-byte sink");
            let end = start + encoded.len();
            assert_eq!(
                &sink[start..end],
                encoded,
                "{what} wrote wrong bytes at {pos}"
            );
            assert_eq!(
                &sink[..start],
                &before[..start],
                "{what} at {pos} touched bytes before"
            );
            assert_eq!(
                &sink[end..],
                &before[end..],
                "{what} at {pos} touched bytes after"
            );
        }
        None => {
            let error = OutOfBounds {
                pos,
                len: encoded.len() as u64,
                size: size as u64,
            };
            assert_eq!(result, Err(error), "{what} at {pos} of a {size}-byte sink");
            assert_eq!(sink, before, "{what} at {pos} wrote although out of bounds");
        }
    }
}

/// Runs every setter on `sink` (holding `before`) at the positions
/// [`positions`] gives for its width, writing values made from `pattern`,
/// and restores `sink` after each.
fn check_setters(sink: &mut [u8], before: &[u8], chosen: u64, pattern: [u8; 16]) {
    let size = before.len();
    let [first, ..] = pattern;
    for pos in positions(size, 1, chosen) {
        let result = sink.set_u8(pos, first);
        assert_written("set_u8", result, sink, before, pos, &[first]);
        sink.copy_from_slice(before);
        let result = sink.set_i8(pos, first as i8);
        assert_written("set_i8", result, sink, before, pos, &[first]);
        sink.copy_from_slice(before);
    }

    macro_rules! check_widths {
        ($($ty:ident: $le:ident, $be:ident, $ne:ident;)*) => {$(
            {
                const W: usize = size_of::<$ty>();
                let mut bytes = [0u8; W];
                bytes.copy_from_slice(&pattern[..W]);
                let value = $ty::from_le_bytes(bytes);
                for pos in positions(size, W, chosen) {
                    let result = sink.$le(pos, value);
                    assert_written(stringify!($le), result, sink, before, pos, &value.to_le_bytes());
                    sink.copy_from_slice(before);
                    let result = sink.$be(pos, value);
                    assert_written(stringify!($be), result, sink, before, pos, &value.to_be_bytes());
                    sink.copy_from_slice(before);
                    let result = sink.$ne(pos, value);
                    assert_written(stringify!($ne), result, sink, before, pos, &value.to_ne_bytes());
                    sink.copy_from_slice(before);
                }
            }
        )*};
    }
    check_widths! {
        u16: set_u16_le, set_u16_be, set_u16_ne;
        i16: set_i16_le, set_i16_be, set_i16_ne;
        u32: set_u32_le, set_u32_be, set_u32_ne;
        i32: set_i32_le, set_i32_be, set_i32_ne;
        u64: set_u64_le, set_u64_be, set_u64_ne;
        i64: set_i64_le, set_i64_be, set_i64_ne;
        u128: set_u128_le, set_u128_be, set_u128_ne;
        i128: set_i128_le, set_i128_be, set_i128_ne;
    }

    let range = &pattern[..pattern.len().min(usize::from(first % 17))];
    for pos in positions(size, range.len(), chosen) {
        let result = sink.write_bytes_at(pos, range);
        assert_written("write_bytes_at", result, sink, before, pos, range);
        sink.copy_from_slice(before);
    }

    // A trait object cannot be viewed as bytes, so one setter through it is
    // checked by looking at the sink behind it.
    for pos in positions(size, 4, chosen.rotate_left(17)) {
        let mut sink_ref: &mut [u8] = sink;
        let as_dyn: &mut dyn ByteSink<Error = OutOfBounds> = &mut sink_ref;
        let result = as_dyn.set_u32_be(pos, 0x0102_0304);
        assert_written("dyn set_u32_be", result, sink, before, pos, &[1, 2, 3, 4]);
        sink.copy_from_slice(before);
    }
}

/// Checks every setter (all widths, all byte orders, byte ranges) at the
/// positions that matter for its width, of a copy of `data` (its first 64 bytes), through a slice
/// and a trait object: each writes exactly `to_le_bytes`/
/// `to_be_bytes`/`to_ne_bytes` of the value and touches nothing else, or
/// returns the exact [`OutOfBounds`] error and writes nothing.
///
/// # Panics
/// When any setter disagrees with the model: that is a bug to report.
///
/// ```
/// bincodec::fuzz::setters(&[]);
/// bincodec::fuzz::setters(&[7; 33]);
/// ```
pub fn setters(data: &[u8]) {
    let len = data.len().min(SINK_CAPACITY);
    let before = &data[..len];
    let mut storage = [0u8; SINK_CAPACITY];
    let sink = &mut storage[..len];
    sink.copy_from_slice(before);

    // Values to write come from the input, cycled to 16 bytes.
    let mut pattern = [0xa5u8; 16];
    for (slot, byte) in pattern.iter_mut().zip(data.iter().rev().cycle()) {
        *slot = *byte;
    }

    check_setters(sink, before, chosen_position(data), pattern);
    // The same setters at other positions, with other values.
    pattern.rotate_left(5);
    check_setters(sink, before, chosen_position(data).swap_bytes(), pattern);
}

/// The `bincodec_getters` fuzz target: the input's first byte picks one of
/// four checks, run on the rest: the getters through a slice (with
/// [`OutOfBounds::check`]), through a trait object, or through an 8-byte
/// array, or the setters.
///
/// One check per input rather than all four keeps each input cheap, so the
/// fuzzer tries about four times as many; coverage guidance keeps inputs
/// for every choice.
///
/// # Panics
/// When the chosen check finds a disagreement: that is a bug to report.
///
/// ```
/// for choice in 0..4 {
///     bincodec::fuzz::getters_or_setters(&[choice, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
/// }
/// bincodec::fuzz::getters_or_setters(&[]);
/// ```
pub fn getters_or_setters(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let chosen = chosen_position(data);
    match choice % 4 {
        0 => {
            check_getters(data, data, chosen);
            check_bounds(data);
        }
        1 => {
            let as_dyn: &dyn ByteSource<Error = OutOfBounds> = &data;
            check_getters(as_dyn, data, chosen);
        }
        2 => {
            let mut prefix = [0u8; 8];
            for (slot, byte) in prefix.iter_mut().zip(data) {
                *slot = *byte;
            }
            check_getters(&prefix, &prefix, chosen);
        }
        _ => setters(data),
    }
}

/// One varint kind as the checks see it: its decoders, an independent model
/// of its decoder, and its encoder.
trait Codec {
    type Value: Copy + PartialEq + Debug;

    fn decode(bytes: &[u8]) -> Result<(Self::Value, usize), VarintError>;

    fn decode_at<S: ByteSource + ?Sized>(
        src: &S,
        pos: u64,
    ) -> Result<(Self::Value, usize), ReadVarintError<S::Error>>;

    /// The decoder's behaviour, written from the format's definition in
    /// 128-bit arithmetic, independently of the decoder under test.
    fn model(bytes: &[u8]) -> Result<(Self::Value, usize), VarintError>;

    fn encode(value: Self::Value) -> EncodedVarint;
}

struct Uleb128;

impl Codec for Uleb128 {
    type Value = u64;

    fn decode(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
        decode_uleb128(bytes)
    }

    fn decode_at<S: ByteSource + ?Sized>(
        src: &S,
        pos: u64,
    ) -> Result<(u64, usize), ReadVarintError<S::Error>> {
        decode_uleb128_at(src, pos)
    }

    fn model(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
        let mut value = 0u128;
        for (i, &byte) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
            value |= u128::from(byte & 0x7f) << (7 * i);
            let more = byte & 0x80 != 0;
            if value > u128::from(u64::MAX) || (more && i == MAX_VARINT_LEN - 1) {
                return Err(VarintError::Overflow { len: i + 1 });
            }
            if !more {
                return Ok((value as u64, i + 1));
            }
        }
        Err(VarintError::Truncated { len: bytes.len() })
    }

    fn encode(value: u64) -> EncodedVarint {
        encode_uleb128(value)
    }
}

struct Sleb128;

impl Codec for Sleb128 {
    type Value = i64;

    fn decode(bytes: &[u8]) -> Result<(i64, usize), VarintError> {
        decode_sleb128(bytes)
    }

    fn decode_at<S: ByteSource + ?Sized>(
        src: &S,
        pos: u64,
    ) -> Result<(i64, usize), ReadVarintError<S::Error>> {
        decode_sleb128_at(src, pos)
    }

    fn model(bytes: &[u8]) -> Result<(i64, usize), VarintError> {
        let mut bits = 0u128;
        for (i, &byte) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
            bits |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let width = 7 * (i as u32 + 1);
                let value = ((bits << (128 - width)) as i128) >> (128 - width);
                return i64::try_from(value)
                    .map(|value| (value, i + 1))
                    .map_err(|_| VarintError::Overflow { len: i + 1 });
            }
        }
        if bytes.len() >= MAX_VARINT_LEN {
            Err(VarintError::Overflow {
                len: MAX_VARINT_LEN,
            })
        } else {
            Err(VarintError::Truncated { len: bytes.len() })
        }
    }

    fn encode(value: i64) -> EncodedVarint {
        encode_sleb128(value)
    }
}

struct GitOffset;

impl Codec for GitOffset {
    type Value = u64;

    fn decode(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
        decode_git_offset(bytes)
    }

    fn decode_at<S: ByteSource + ?Sized>(
        src: &S,
        pos: u64,
    ) -> Result<(u64, usize), ReadVarintError<S::Error>> {
        decode_git_offset_at(src, pos)
    }

    /// Overflow is certain once a continuation byte leaves a value whose
    /// smallest successor, `(value + 1) << 7`, exceeds `u64::MAX`.
    fn model(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
        let mut value = 0u128;
        for (i, &byte) in bytes.iter().enumerate() {
            value = if i == 0 {
                u128::from(byte & 0x7f)
            } else {
                ((value + 1) << 7) | u128::from(byte & 0x7f)
            };
            if byte & 0x80 == 0 {
                return Ok((value as u64, i + 1));
            }
            if (value + 1) << 7 > u128::from(u64::MAX) {
                return Err(VarintError::Overflow { len: i + 1 });
            }
        }
        Err(VarintError::Truncated { len: bytes.len() })
    }

    fn encode(value: u64) -> EncodedVarint {
        encode_git_offset(value)
    }
}

/// A source holding `bytes` at the very end of the `u64` position space,
/// so that a varint running past it hits the end of positions, not of data.
struct AtEndOfPositions<'a> {
    bytes: &'a [u8],
}

impl AtEndOfPositions<'_> {
    /// Where the first byte lives; `bytes` must not be empty.
    fn first_pos(&self) -> u64 {
        u64::MAX - (self.bytes.len() as u64 - 1)
    }
}

impl ByteSource for AtEndOfPositions<'_> {
    type Error = OutOfBounds;

    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let offset = pos.wrapping_sub(self.first_pos());
        self.bytes.read_bytes_at(offset, buf)
    }
}

/// The checks every varint decoder gets, at the [`varint_starts`] of `data`:
/// agreement with its model; its `ByteSource` form agreeing with its slice
/// form (also where the varint runs into the end of the `u64` positions);
/// and the canonical re-encoding decoding to the same value in no more
/// bytes (the very same bytes when it is as long).
fn check_decoder<C: Codec>(data: &[u8]) {
    for start in varint_starts(data.len()) {
        let tail = &data[start..];
        let decoded = C::decode(tail);
        assert_eq!(
            decoded,
            C::model(tail),
            "decoder disagrees with model on {tail:02x?}"
        );

        // Running off the end of a slice source is its out-of-bounds error.
        let expected_at = decoded.map_err(|error| match error {
            VarintError::Truncated { len } => ReadVarintError::Source(OutOfBounds {
                pos: (start + len) as u64,
                len: 1,
                size: data.len() as u64,
            }),
            overflow => ReadVarintError::Varint(overflow),
        });
        assert_eq!(
            C::decode_at(data, start as u64),
            expected_at,
            "decoding at {start}"
        );

        // Running off the end of positions is truncation.
        if !tail.is_empty() {
            let at_end = AtEndOfPositions { bytes: data };
            let pos = at_end.first_pos() + start as u64;
            assert_eq!(
                C::decode_at(&at_end, pos),
                decoded.map_err(ReadVarintError::Varint),
                "decoding at the end of positions"
            );
        }

        if let Ok((value, len)) = decoded {
            assert!((1..=MAX_VARINT_LEN).contains(&len));
            let canonical = C::encode(value);
            assert!(
                canonical.len() <= len,
                "canonical encoding longer than input"
            );
            assert_eq!(C::decode(&canonical), Ok((value, canonical.len())));
            if canonical.len() == len {
                assert_eq!(&canonical[..], &tail[..len]);
            }
        }
    }
    let expected = OutOfBounds {
        pos: u64::MAX,
        len: 1,
        size: data.len() as u64,
    };
    assert_eq!(
        C::decode_at(data, u64::MAX),
        Err(ReadVarintError::Source(expected))
    );
}

/// The first [`MAX_CHUNKS`] 8-byte words of `data`, read little-endian, as
/// values to encode.
fn words(data: &[u8]) -> impl Iterator<Item = u64> + '_ {
    data.chunks_exact(8).take(MAX_CHUNKS).map(|chunk| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        u64::from_le_bytes(bytes)
    })
}

/// Checks [`decode_uleb128`] and [`decode_uleb128_at`] at the first 16
/// start positions of `data` and the last 12 against a 128-bit model, and
/// that the canonical re-encoding decodes to the same value; and that the
/// first 16 8-byte words of `data` round-trip through [`encode_uleb128`] in the fewest bytes.
///
/// # Panics
/// When decoder, model and encoder disagree: that is a bug to report.
///
/// ```
/// bincodec::fuzz::uleb128(&[0x80, 0x80, 0x01, 0xff]);
/// ```
pub fn uleb128(data: &[u8]) {
    check_decoder::<Uleb128>(data);
    for value in words(data) {
        let encoded = encode_uleb128(value);
        let significant_bits = 64 - value.leading_zeros() as usize;
        assert_eq!(encoded.len(), significant_bits.div_ceil(7).max(1));
        assert_eq!(decode_uleb128(&encoded), Ok((value, encoded.len())));
    }
}

/// Checks [`decode_sleb128`] and [`decode_sleb128_at`] like [`uleb128`]
/// checks the unsigned decoder, and round-trips the first 16 8-byte words of `data`
/// through [`encode_sleb128`] in the fewest bytes.
///
/// # Panics
/// When decoder, model and encoder disagree: that is a bug to report.
///
/// ```
/// bincodec::fuzz::sleb128(&[0xff, 0x7f, 0x40]);
/// ```
pub fn sleb128(data: &[u8]) {
    check_decoder::<Sleb128>(data);
    for word in words(data) {
        let value = word as i64;
        let encoded = encode_sleb128(value);
        // Bits needed including the sign bit.
        let significant_bits = 65 - (value ^ (value >> 63)).leading_zeros() as usize;
        assert_eq!(encoded.len(), significant_bits.div_ceil(7));
        assert_eq!(decode_sleb128(&encoded), Ok((value, encoded.len())));
    }
}

/// Checks [`decode_git_offset`] and [`decode_git_offset_at`] like
/// [`uleb128`] checks the LEB128 decoder; git's encoding has one form per
/// value, so every decoded input must re-encode to exactly its own bytes.
/// Round-trips the first 16 8-byte words of `data` through [`encode_git_offset`].
///
/// # Panics
/// When decoder, model and encoder disagree: that is a bug to report.
///
/// ```
/// bincodec::fuzz::git_offset(&[0x91, 0x2e, 0x00, 0x80]);
/// ```
pub fn git_offset(data: &[u8]) {
    check_decoder::<GitOffset>(data);
    for start in varint_starts(data.len()).filter(|&start| start < data.len()) {
        let tail = &data[start..];
        if let Ok((value, len)) = decode_git_offset(tail) {
            let encoded = encode_git_offset(value);
            assert_eq!(&encoded[..], &tail[..len], "a second form of {value}");
        }
    }
    for value in words(data) {
        let encoded = encode_git_offset(value);
        assert_eq!(decode_git_offset(&encoded), Ok((value, encoded.len())));
    }
}

/// The `bincodec_varint` fuzz target: the input's first byte picks
/// [`uleb128`], [`sleb128`] or [`git_offset`], run on the rest (one per
/// input keeps each input cheap; see [`getters_or_setters`]).
///
/// # Panics
/// When the chosen check finds a disagreement.
///
/// ```
/// for choice in 0..3 {
///     bincodec::fuzz::one_varint(&[choice, 0xff, 0x80, 0x01]);
/// }
/// bincodec::fuzz::one_varint(&[]);
/// ```
pub fn one_varint(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    match choice % 3 {
        0 => uleb128(data),
        1 => sleb128(data),
        _ => git_offset(data),
    }
}

/// Runs [`uleb128`], [`sleb128`] and [`git_offset`] on the same input.
///
/// # Panics
/// When any of them finds a disagreement.
///
/// ```
/// bincodec::fuzz::varints(&[0xff; 12]);
/// ```
pub fn varints(data: &[u8]) {
    uleb128(data);
    sleb128(data);
    git_offset(data);
}
