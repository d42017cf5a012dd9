//! A positional-read device over one object in object storage: S3 and
//! S3-compatible servers, local files, memory, through the
//! [object_store](https://docs.rs/object_store) crate.
//!
//! [`ObjectDevice`] implements [`blockdev::ReadAt`], so every layer of this
//! workspace stacks on it: RAM pages (`pagecache::PageCache`) over an encrypted
//! local disk tier (`spillcache::SpillTier`) over the object.
//!
//! ```no_run
//! use objectdev::ObjectDevice;
//! use pagecache::{ByteSourceExt, PageCache};
//! use spillcache::SpillTier;
//!
//! // AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ... come from the environment.
//! let object = ObjectDevice::open("s3://bucket/images/disk.img")?;
//! let tier = SpillTier::new(object, std::env::temp_dir(), 1 << 30)?; // 1 GiB on disk
//! let cache = PageCache::builder().max_batch_pages(256).build(tier)?; // 1 MiB GETs
//! let magic = cache.get_u16_le(1024 + 56)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same, runnable here over an in-memory object:
//!
//! ```
//! use objectdev::ObjectDevice;
//! use pagecache::{ByteSourceExt, PageCache};
//! use spillcache::SpillTier;
//!
//! let mut bytes = vec![0u8; 4 << 20];
//! bytes[3 << 20..(3 << 20) + 8].copy_from_slice(&42u64.to_le_bytes());
//! let object = ObjectDevice::from_bytes(bytes)?;
//! let tier = SpillTier::new(object, std::env::temp_dir(), 2 << 20)?;
//! let cache = PageCache::builder().max_batch_pages(256).build(tier)?;
//! assert_eq!(cache.get_u64_le(3 << 20)?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What a read costs
//! - Each `read_at` is one ranged GET; a read longer than the part size
//!   (8 MiB by default, [`ObjectDevice::with_part_size`]) is one GET per
//!   part, up to 16 in flight at once, as object_store's `get_ranges` does.
//! - The object's size and ETag come from one HEAD at opening; `size()`
//!   asks nothing.
//! - Above it, `PageCache` turns a run of missing pages into one device
//!   read (up to `max_batch_pages`), and `SpillTier` reads whole aligned
//!   chunks, so a cold sequential scan of N pages is about N / batch GETs
//!   and a warm one is none.
//!
//! # A replaced object
//! Every GET sends `If-Match` with the ETag remembered and compares the
//! ETag of the response with it (not every server honours `If-Match`). A
//! different one fails the read with [`Error::ObjectChanged`]: the caches
//! above never receive a byte of the new version next to pages of the old
//! one. To move to the new version, call [`ObjectDevice::refresh`], clear
//! the tier and invalidate the page cache, then call `refresh_size`:
//!
//! ```
//! use blockdev::ReadAt;
//! use object_store::{ObjectStoreExt, PutPayload};
//! use objectdev::{Error, ObjectDevice};
//!
//! let dev = ObjectDevice::from_bytes(b"version 1".to_vec())?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(dev.store().put(dev.path(), PutPayload::from_static(b"version 2!")))?;
//! let err = dev.read_exact_at(0, &mut [0u8; 4]).unwrap_err();
//! assert!(Error::from_io(&err).is_some_and(Error::is_object_changed));
//! dev.refresh()?;
//! let mut buf = [0u8; 10];
//! dev.read_exact_at(0, &mut buf)?;
//! assert_eq!(&buf, b"version 2!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors, retries, timeouts
//! A failed request becomes an `io::Error` whose inner error is an
//! [`Error`] keeping the store's message (`NotFound` and
//! `PermissionDenied` keep their kinds). Retries with backoff, timeouts and
//! credentials are object_store's: set them through its options (with
//! [`ObjectDevice::open`], `AWS_TIMEOUT`, `AWS_CONNECT_TIMEOUT`, ...), or
//! build the store yourself (e.g. `AmazonS3Builder::with_retry`) and pass
//! it to [`ObjectDevice::new`].
//!
//! # Runtime
//! This is the workspace's only crate with an async runtime. A device
//! made by [`ObjectDevice::open`] or [`ObjectDevice::new`] owns a tokio
//! runtime with 2 worker threads; [`ObjectDevice::with_handle`] borrows
//! the caller's. Reads block the calling thread and are refused from
//! inside an async task ([`Error::InsideRuntime`]).
#![forbid(unsafe_code)]

mod counting;
mod device;
mod error;
mod latency;
mod readahead;
mod runtime;

pub use counting::{CountingStore, RequestCounts, RequestHook};
pub use device::{DEFAULT_PART_SIZE, Identity, ObjectDevice};
pub use error::Error;
pub use latency::LatencyStore;
pub use object_store;
pub use readahead::{DEFAULT_READ_AHEAD, ReadAheadStats};
