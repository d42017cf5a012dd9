//! Fallible endian getters and setters over any byte source, plus varints.
//!
//! `bincodec` reads and writes fixed-width integers (8 to 128 bits, signed
//! and unsigned, little-, big- and native-endian) at a position inside
//! anything that can hand out bytes: a slice, a `Vec`, an array, or a page
//! cache over a disk. It also decodes and encodes the variable-length
//! integers real formats use: LEB128 (DWARF, WebAssembly, Android DEX) and
//! git's pack offset varint. Every getter, setter and decoder returns a
//! `Result`; none of them panics, whatever the input or the position.
//!
//! # Overview
//!
//! - [`ByteSource`] is one method: fill a buffer with the bytes at a
//!   position, or fail. It is implemented for `[u8]`, `[u8; N]`, `Vec<u8>`
//!   and references to any source, and a page cache implements it too.
//!   An optional second method, [`ByteSource::read_word_le`], lets a
//!   source answer reads of up to eight bytes in a register (a page cache
//!   hit does); its default declines, at no cost.
//! - [`ByteSourceExt`] gives every source all the getters:
//!   `get_u8`, `get_i8`, and `get_{u,i}{16,32,64,128}_{le,be,ne}`, plus
//!   [`get_array`](ByteSourceExt::get_array) for a fixed number of bytes.
//!   [`ByteSource::read_bytes_at`] itself reads a byte range into a caller
//!   buffer.
//! - [`ByteSink`] and [`ByteSinkExt`] are the same for writing, with
//!   `set_*` methods. A sink never grows: writing past its end is an error.
//! - [`OutOfBounds`] is the error of every in-memory source and sink: it
//!   says the position, the length asked for and the size there is.
//! - [`varint`] decodes and encodes LEB128 and git offsets, from slices or
//!   through any source.
//!
//! Positions are `u64`, as file offsets are, so one API serves memory and
//! disks alike; on a slice a position past `usize::MAX` is simply out of
//! bounds. A getter over a slice compiles to one bounds check and one load,
//! as fast as hand-written `u32::from_le_bytes(s[i..i + 4].try_into()?)`
//! (the `benches` crate measures it against that and against byteorder).
//!
//! # Reading
//!
//! ```
//! use bincodec::{ByteSourceExt, OutOfBounds};
//!
//! // A 12-byte record: a big-endian magic number, a little-endian length,
//! // a signed 16-bit delta and a flags byte.
//! let record = [0xca, 0xfe, 0xba, 0xbe, 0x10, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x01, 0x00];
//! assert_eq!(record.get_u32_be(0)?, 0xcafe_babe);
//! assert_eq!(record.get_u32_le(4)?, 16);
//! assert_eq!(record.get_i16_be(8)?, -2);
//! assert_eq!(record.get_u8(10)?, 1);
//! assert_eq!(record.get_array::<2>(10)?, [0x01, 0x00]);
//!
//! // Past the end is an error that says where and how far, never a panic.
//! let error = record.get_u64_le(8).unwrap_err();
//! assert_eq!(error, OutOfBounds { pos: 8, len: 8, size: 12 });
//! assert!(record.get_u8(u64::MAX).is_err());
//! # Ok::<(), OutOfBounds>(())
//! ```
//!
//! # Writing
//!
//! ```
//! use bincodec::{ByteSinkExt, ByteSourceExt, OutOfBounds};
//!
//! let mut header = [0u8; 8];
//! header.set_u32_be(0, 0x7f45_4c46)?;
//! header.set_u16_le(4, 0x3e)?;
//! header.set_i8(6, -1)?;
//! assert_eq!(header, [0x7f, 0x45, 0x4c, 0x46, 0x3e, 0x00, 0xff, 0x00]);
//! assert_eq!(header.get_u16_le(4)?, 0x3e);
//!
//! // A write that does not fit writes nothing.
//! assert!(header.set_u32_le(6, 0).is_err());
//! assert_eq!(header[6..], [0xff, 0x00]);
//! # Ok::<(), OutOfBounds>(())
//! ```
//!
//! # Varints
//!
//! ```
//! use bincodec::varint::{self, VarintError};
//!
//! // Decoders return the value and how many bytes it took.
//! let bytes = [0xe5, 0x8e, 0x26, 0x7f];
//! let (value, len) = varint::decode_uleb128(&bytes)?;
//! assert_eq!((value, len), (624_485, 3));
//! assert_eq!(varint::decode_sleb128(&bytes[len..])?, (-1, 1));
//!
//! // Encoders return a small stack buffer.
//! assert_eq!(&varint::encode_git_offset(300)[..], [0x81, 0x2c]);
//!
//! // Cut-short and oversized varints are errors, not panics or wrap-around.
//! assert_eq!(varint::decode_uleb128(&[0x80]), Err(VarintError::Truncated { len: 1 }));
//! assert!(matches!(varint::decode_uleb128(&[0xff; 11]), Err(VarintError::Overflow { .. })));
//! # Ok::<(), VarintError>(())
//! ```
//!
//! # Your own source, with a richer error
//!
//! A source whose reads can fail for reasons other than bounds (a file, a
//! page cache over a disk) picks its own error type. It only has to convert
//! from [`OutOfBounds`]; every getter and every `*_at` varint decoder then
//! reports through it.
//!
//! ```
//! use bincodec::varint::{ReadVarintError, decode_uleb128_at};
//! use bincodec::{ByteSource, ByteSourceExt, OutOfBounds};
//!
//! #[derive(Debug, PartialEq)]
//! enum DeviceError {
//!     OutOfBounds(OutOfBounds),
//!     Unreadable { sector: u64 },
//! }
//!
//! impl From<OutOfBounds> for DeviceError {
//!     fn from(error: OutOfBounds) -> Self {
//!         DeviceError::OutOfBounds(error)
//!     }
//! }
//!
//! /// A device of 512-byte sectors where sector 1 has gone bad.
//! struct Device {
//!     bytes: Vec<u8>,
//! }
//!
//! impl ByteSource for Device {
//!     type Error = DeviceError;
//!
//!     fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
//!         let (start, end) = OutOfBounds::check(pos, buf.len(), self.bytes.len())?;
//!         if (start..end).any(|i| i / 512 == 1) {
//!             return Err(DeviceError::Unreadable { sector: 1 });
//!         }
//!         buf.copy_from_slice(&self.bytes[start..end]);
//!         Ok(())
//!     }
//! }
//!
//! let device = Device { bytes: vec![0x81; 2048] };
//! assert_eq!(device.get_u16_be(0), Ok(0x8181));
//! assert_eq!(device.get_u32_le(510), Err(DeviceError::Unreadable { sector: 1 }));
//! assert!(matches!(device.get_u8(4096), Err(DeviceError::OutOfBounds(_))));
//! // A varint of 0x81 bytes runs on into the bad sector.
//! assert_eq!(
//!     decode_uleb128_at(&device, 505),
//!     Err(ReadVarintError::Source(DeviceError::Unreadable { sector: 1 }))
//! );
//! ```
//!
//! # Features
//!
//! The crate is `no_std` and has no dependencies. The default feature
//! `alloc` implements the traits for `Vec<u8>`; without it everything else
//! still works. The feature `fuzzing` adds the `fuzz` module: the checks
//! the cargo-fuzz targets run (every getter, setter and decoder against an
//! independent model), as plain functions that the ordinary tests call too.
//! It is not part of the stable API.
//!
//! # Alternatives
//!
//! - `u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap())` in the
//!   standard library is all you need for one slice whose bounds you have
//!   already checked; it panics otherwise.
//! - [byteorder](https://docs.rs/byteorder) reads from slices (panicking
//!   when short) and from `std::io::Read` streams; it has 24- and 48-bit
//!   integers and floats, which this crate does not.
//! - [zerocopy](https://docs.rs/zerocopy) reinterprets whole structs in
//!   place, when the layout is fixed and the bytes are in memory.
//! - [leb128](https://docs.rs/leb128) reads and writes LEB128 over
//!   `std::io` streams.
//!
//! Reach for `bincodec` when the bytes are not all in one slice (a page
//! cache, a device) and the getters must work the same on both, or when
//! untrusted input must never make the program panic.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod sink;
mod source;
pub mod varint;

pub use error::OutOfBounds;
pub use sink::{ByteSink, ByteSinkExt};
pub use source::{ByteSource, ByteSourceExt};

// The README's example runs as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
