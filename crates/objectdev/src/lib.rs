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
//! # A replaced object: one call moves the stack
//! Every GET sends `If-Match` with the ETag remembered and compares the
//! ETag of the response with it (not every server honours `If-Match`). A
//! different one fails the read with [`Error::ObjectChanged`]: the caches
//! above never receive a byte of the new version next to pages of the old
//! one, and the pages they hold stay whole.
//!
//! To move to the new version, call `refresh` once, on the top of the
//! stack (`PageCache::refresh`, or [`ReadAt::refresh`] on whichever layer
//! is on top). It goes down through every layer: the device makes one
//! HEAD and adopts the new ETag and size, then, on the way back up, the
//! tier drops its chunks and the page cache its pages, each only if the
//! ETag changed. It is atomic for readers: a read running meanwhile
//! returns bytes of the old version, or of the new, or an error, never
//! some of each; a read that starts after it returns sees only the new
//! version. (Calling the layers' own `clear`, `invalidate_all` or
//! `refresh_size` instead, in any order, is not: a read can mix versions,
//! or an old page can stay.)
//!
//! ```
//! use blockdev::ReadAt;
//! use object_store::{ObjectStoreExt, PutPayload};
//! use objectdev::{Error, ObjectDevice};
//! use pagecache::PageCache;
//! use spillcache::SpillTier;
//!
//! let object = ObjectDevice::from_bytes(vec![1; 8192])?;
//! let (store, path) = (object.store().clone(), object.path().clone());
//! let tier = SpillTier::with_chunk_size(object, std::env::temp_dir(), 1 << 20, 4096)?;
//! let cache = PageCache::new(tier)?;
//! assert_eq!(cache.get_bytes(0, 4096)?, [1; 4096]);
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(store.put(&path, PutPayload::from(vec![2u8; 10_000])))?;
//! // The cached page is the old version's, whole; the next is refused.
//! assert_eq!(cache.get_bytes(0, 4096)?, [1; 4096]);
//! let err = cache.get_bytes(0, 8192).unwrap_err();
//! assert!(matches!(&err, pagecache::Error::Io(io)
//!     if Error::from_io(io).is_some_and(Error::is_object_changed)));
//!
//! assert!(cache.refresh()?); // one HEAD; chunks and pages of version 1 dropped
//! assert_eq!(cache.get_bytes(0, 10_000)?, [2; 10_000]);
//! assert!(!cache.refresh()?); // the same ETag: every page stays
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors, retries, deadlines
//! A failed request becomes an `io::Error` whose inner error is an
//! [`Error`] keeping the store's message (`NotFound` and
//! `PermissionDenied` keep their kinds). The defaults suit a cache, which
//! would rather fail a read than hold it for minutes:
//!
//! | setting | default | set with |
//! |---|---|---|
//! | retries of a failed request | [`DEFAULT_MAX_RETRIES`] (3) | [`ObjectDeviceBuilder::max_retries`], `objectdev_max_retries` / `OBJECTDEV_MAX_RETRIES` |
//! | no retry after | [`DEFAULT_RETRY_TIMEOUT`] (10 s) | [`ObjectDeviceBuilder::retry_timeout`], `objectdev_retry_timeout` |
//! | deadline of one read, all parts and retries | [`DEFAULT_DEADLINE`] (20 s) | [`ObjectDeviceBuilder::deadline`], `objectdev_deadline` |
//! | part size of large reads | [`DEFAULT_PART_SIZE`] (8 MiB, at least [`MIN_PART_SIZE`]) | [`ObjectDevice::with_part_size`], `objectdev_part_size` |
//!
//! Retries apply to stores opened by URL; a store passed to
//! [`ObjectDevice::new`] keeps its own (e.g. `AmazonS3Builder::with_retry`),
//! and the deadline applies to every device. A read past its deadline fails
//! with [`Error::Deadline`] (kind `TimedOut`). Other client settings go
//! through object_store's options (`AWS_TIMEOUT`, `AWS_CONNECT_TIMEOUT`, ...).
//!
//! # Stores
//! `s3://` (and S3-compatible servers, `?versionId=` for one version),
//! `file://` and `memory://` are always there. With cargo features:
//! `gcp` for `gs://`, `azure` for `az://` and `abfs://`, `http` for
//! `http(s)://` servers that answer ranged GETs.
//!
//! # Runtime
//! This is the workspace's only crate with an async runtime. A device
//! made by [`ObjectDevice::open`] or [`ObjectDevice::new`] owns a tokio
//! runtime with 2 worker threads; [`ObjectDevice::with_handle`] borrows
//! the caller's (a multi-thread one with `enable_all`, which must outlive
//! the device). Requests run as tasks of that runtime.
//!
//! - The blocking reads ([`ReadAt`](blockdev::ReadAt)) work from plain
//!   threads and, in an async program, from `spawn_blocking`, inside
//!   `block_in_place` and on threads inside `Runtime::enter`. On a thread
//!   that runs async tasks (a worker, or inside `block_on`) they are
//!   refused with [`Error::InsideRuntime`], never a panic or a hang.
//! - The async reads, [`ObjectDevice::read_at_async`] and
//!   [`ObjectDevice::read_ranges`] (merged like object_store's
//!   `get_ranges`), are awaited from anywhere, a worker included:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = tokio::task::spawn_blocking(|| objectdev::ObjectDevice::from_bytes(vec![9; 100])).await??;
//! let parts = dev.read_ranges(&[0..4, 50..60]).await?;
//! assert_eq!(parts[1].len(), 10);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

#[cfg(doc)]
use blockdev::ReadAt;

mod builder;
mod counting;
mod device;
mod error;
mod location;
mod runtime;

pub use builder::{DEFAULT_MAX_RETRIES, DEFAULT_RETRY_TIMEOUT, ObjectDeviceBuilder};
pub use bytes::Bytes;
pub use counting::{CountingStore, RequestCounts, RequestHook};
pub use device::{DEFAULT_DEADLINE, DEFAULT_PART_SIZE, Identity, MIN_PART_SIZE, ObjectDevice};
pub use error::Error;
pub use object_store;
