//! Fallible endian getters and setters over any byte source.
//!
//! `bincodec` reads and writes fixed-width integers (8 to 128 bits, signed
//! and unsigned, little-, big- and native-endian) at a position inside
//! anything that can hand out bytes: a slice, a `Vec`, an array, or a page
//! cache over a disk. Every getter and setter returns a `Result`; none of
//! them panics, whatever the position.
//!
//! ```
//! use bincodec::{ByteSourceExt, ByteSinkExt, OutOfBounds};
//!
//! let mut buf = [0u8; 8];
//! buf.as_mut_slice().set_u32_be(2, 0xdead_beef)?;
//! assert_eq!(buf.as_slice().get_u32_be(2)?, 0xdead_beef);
//! assert_eq!(buf.as_slice().get_u16_le(2)?, 0xadde);
//! assert!(buf.as_slice().get_u64_le(1).is_err());
//! # Ok::<(), OutOfBounds>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod error;
pub mod fuzz;
mod sink;
mod source;
pub mod varint;

pub use error::OutOfBounds;
pub use sink::{ByteSink, ByteSinkExt};
pub use source::{ByteSource, ByteSourceExt};
