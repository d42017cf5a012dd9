//! Positional I/O through `&self`, over files and memory.
//!
//! [`ReadAt`] and [`WriteAt`] read and write at an absolute position without a
//! shared cursor, like `pread`/`pwrite`, so one device can serve many threads
//! at once.
//!
//! ```
//! use blockdev::{MemDevice, ReadAt, WriteAt};
//!
//! let dev = MemDevice::new();
//! dev.write_all_at(4, b"data")?;
//! let mut buf = [0u8; 4];
//! dev.read_exact_at(4, &mut buf)?;
//! assert_eq!(&buf, b"data");
//! assert_eq!(dev.size()?, 8);
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]

mod anon;
mod context;
mod copy;
mod device;
mod faulty;
mod file;
mod mem;

pub use anon::anonymous_file;
#[doc(hidden)]
pub use anon::{AnonymousMethod, anonymous_file_with};
pub use copy::copy_range;
#[doc(hidden)]
pub use copy::{CopyMethod, CopyStats, copy_range_with};
pub use device::{ReadAt, WriteAt};
pub use faulty::{Corruption, Errno, Fault, FaultyDevice};
pub use mem::MemDevice;
