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
//! let cache = PageCache::builder()
//!     .max_batch_pages(256) // 1 MiB GETs
//!     .read_ahead(128 << 20) // scans keep 16 GETs of 8 MiB in flight
//!     .build(tier)?;
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
//!   chunks; a cold sequential scan is served by read-ahead (below): 8 MiB
//!   GETs, up to 16 in flight; a warm one asks nothing.
//!
//! # Read-ahead
//! Real object stores answer each request after tens of milliseconds and
//! stream one request at about 90 MB/s: throughput comes from many
//! requests in flight. The layer that sees the access pattern says what
//! will be read next with [`blockdev::ReadAt::will_need`] (`PageCache`
//! does, for sequential readers; `SpillTier` passes on the chunks it
//! lacks), and the device turns that hint into GETs in the background:
//! - one ranged GET per part (8 MiB by default) of the range hinted, not
//!   already held or in flight, nearest first, up to 16 in flight;
//! - their bytes wait in a buffer until a read takes them; a read that
//!   needs bytes still in flight waits for that GET rather than asking
//!   again; a part read to its end is freed at once;
//! - **memory**: the bytes held or in flight are capped, and the cap is
//!   part of the memory bound of the cache above, not extra: a
//!   `PageCache` gives the device its own read-ahead setting with
//!   [`blockdev::ReadAt::limit_read_ahead`] when built (through
//!   `SpillTier`), so its memory is its frames plus at most that many
//!   bytes fetched ahead (by default the frames' bytes, 8 MiB to
//!   128 MiB). The device's own cap, [`ObjectDevice::with_read_ahead`]
//!   ([`DEFAULT_READ_AHEAD`], 128 MiB), is the most it ever holds; the
//!   cap in force is the lower of the two. When it is reached, parts
//!   that the latest hint no longer names are dropped to make room, and
//!   counted as [`unused_bytes`](ReadAheadStats::unused_bytes); parts
//!   still wanted wait for reads to free room. Lowering the cap drops
//!   what no longer fits;
//! - **a reader that jumps**: a GET in flight that neither the latest
//!   hint nor the one before names (the reader left its window) is
//!   aborted, its request dropped, and counted as
//!   [`cancelled`](ReadAheadStats::cancelled); so is one the cap no
//!   longer fits, or of an object `refresh` replaced. An aborted part is
//!   never served: a read that needs its bytes makes its own GET (a read
//!   already waiting for a part keeps it, unless the cap is lowered);
//! - **errors**: a read-ahead GET that fails (or whose object changed)
//!   only drops its part; a read that needs those bytes makes its own GET,
//!   which retries as any read does or reports the error; no other read
//!   sees it, and no byte of another version is ever served (every part
//!   is fetched with, and tagged by, the identity remembered; `refresh`
//!   drops them all);
//! - a device nobody hints never reads ahead: random reads cost what they
//!   did, one GET per read;
//! - **off**: `PageCache::builder().read_ahead(0)` above it (no hint,
//!   and a cap of 0 passed down), or `with_read_ahead(0)` on the device.
//!
//! [`ObjectDevice::read_ahead_stats`] says what was fetched, used and
//! dropped. The windows follow mountpoint-s3's prefetcher (start near
//! 1 MiB, double while sequential, cap, drop on a jump) and Hadoop S3A's
//! prefetching stream (fixed-size blocks fetched by a bounded pool,
//! abandoned on a seek).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use objectdev::{LatencyStore, ObjectDevice};
//! use object_store::{memory::InMemory, path::Path, ObjectStoreExt};
//! use pagecache::PageCache;
//!
//! let memory = Arc::new(InMemory::new());
//! let path = Path::from("big");
//! tokio::runtime::Builder::new_current_thread().build()?
//!     .block_on(memory.put(&path, vec![1u8; 4 << 20].into()))?;
//! let slow = LatencyStore::new(memory, Duration::from_millis(5), 100_000_000)?;
//! let object = ObjectDevice::new(Arc::new(slow), path)?.with_part_size(256 << 10)?;
//! let cache = PageCache::builder()
//!     .max_batch_pages(16)
//!     .read_ahead(1 << 20) // at most 1 MiB fetched ahead, below too
//!     .build(object)?;
//! assert_eq!(cache.device().read_ahead(), 1 << 20);
//! let mut buf = vec![0u8; 4 << 20];
//! cache.blit(0, &mut buf, 0, 4 << 20)?; // 64 KiB misses, in order
//! let stats = cache.device().read_ahead_stats();
//! assert!(stats.gets > 0 && stats.used_bytes > 0);
//! assert!(stats.peak_buffered_bytes <= 1 << 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Measuring as users pay
//! [`LatencyStore`] wraps any store (an in-memory one, say) and makes each
//! GET wait for its first byte and stream at a set bandwidth, optionally
//! over a capped number of connections; [`CountingStore`] counts GETs,
//! bytes and the most GETs in flight. The tests and the
//! `objectdev_model` bench measure the stack over them.
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
//! - The blocking reads ([`ReadAt`]) work from plain
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
mod forward;
mod latency;
mod location;
mod readahead;
mod runtime;

pub use builder::{DEFAULT_MAX_RETRIES, DEFAULT_RETRY_TIMEOUT, ObjectDeviceBuilder};
pub use bytes::Bytes;
pub use counting::{CountingStore, RequestCounts, RequestHook};
pub use device::{DEFAULT_DEADLINE, DEFAULT_PART_SIZE, Identity, MIN_PART_SIZE, ObjectDevice};
pub use error::Error;
pub use latency::LatencyStore;
pub use object_store;
pub use readahead::{DEFAULT_READ_AHEAD, ReadAheadStats};

/// What [`forward_object_store!`] expands to names, so the crates using it
/// need not depend on these themselves. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use futures_util::stream::BoxStream;
}
