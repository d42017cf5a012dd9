//! A caching [`object_store::ObjectStore`]: put it in front of any store
//! (S3, GCS, Azure, HTTP, local files, memory) and reads are served from
//! RAM pages over an encrypted local disk tier, keyed by location and
//! ETag, within a RAM budget and a disk budget.
//!
//! It is an `ObjectStore` itself, so whatever reads through object_store
//! uses it unchanged: the `parquet` crate's `ParquetObjectReader`,
//! DataFusion, delta-rs. Three lines put it in front of a store you have:
//!
//! ```
//! # use std::sync::Arc;
//! # use object_store::{ObjectStore, ObjectStoreExt, path::Path};
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
//! # store.put(&Path::from("data/part-0.parquet"), vec![42u8; 4096].into()).await?;
//! use objectcache::CachingStore;
//!
//! let cached: Arc<dyn ObjectStore> =
//!     Arc::new(CachingStore::builder().ram_bytes(256 << 20).disk_bytes(4 << 30).build(store)?);
//! # let bytes = cached.get_range(&Path::from("data/part-0.parquet"), 0..4).await?;
//! # assert_eq!(bytes, vec![42u8; 4]);
//! # Ok(())
//! # }
//! ```
//!
//! and `cached` goes wherever `store` went (for Parquet,
//! `ParquetObjectReader::new(cached, path)`).
//!
//! # What it keeps, and where
//! Below the store is the synchronous stack of this workspace:
//! `pagecache::PageCache` (RAM pages, LRU-like, scan resistant) over
//! `spillcache::SpillTier` (aligned chunks in one anonymous file, each
//! encrypted with a fresh ChaCha20 key that lives only in RAM, checked
//! on read, S3-FIFO eviction) over one address space in which every
//! object version has a range of its own. So:
//!
//! - one RAM budget and one disk budget hold for all objects together;
//! - a cold miss is one ranged GET per run of missing chunks (split into
//!   8 MiB parts in flight at once); a warm read makes no request;
//! - each version is read by an `objectdev::ObjectDevice` pinned to its
//!   ETag, so a sequential reader gets objectdev's read-ahead (below);
//! - a new version of an object never shares an address with the old
//!   one, so no response mixes the two, and the old one's pages and chunks
//!   are dropped.
//!
//! # Read-ahead
//! Requests that continue one another (each starting where the previous
//! one for that object ended, give or take a chunk) are a sequential
//! reader: the RAM tier hints what it will want next, and the object's
//! device fetches it with ranged GETs in the background, several in
//! flight, into a bounded buffer the next requests take from. A request
//! that does not continue the previous one fetches nothing ahead, however
//! large it is: callers of object_store name the ranges they want
//! (Parquet's column chunks), and bytes past them are other columns.
//!
//! What is fetched ahead is part of the RAM budget:
//! [`Builder::read_ahead_bytes`] (half of [`Builder::ram_bytes`] by
//! default) bounds the bytes held or in flight over all objects together;
//! up to 4 objects read ahead at once, a quarter of the bound each.
//! Bytes fetched ahead are tagged with their version's ETag and go with
//! it: a version dropped (written through the store, or found changed)
//! never answers a request with what was fetched for it.
//! [`CacheStats::read_ahead`] says what was fetched, used and dropped.
//!
//! See [`CachingStore`] for what each request does, which ones go to the
//! inner store unchanged, and how a version changed by another writer is
//! noticed.
//!
//! # Threads and runtime
//! The tiers block (disk I/O, decryption, waiting for GETs); the store
//! runs them with `tokio::task::spawn_blocking`, never on a runtime worker.
//! Use it from inside a tokio runtime, as object_store's own stores are.
//! The GETs of the tiers (read-ahead included) run on a small runtime of
//! the store's own (2 threads), so they proceed in the background
//! whatever runtime the caller uses, a current_thread one included.
#![forbid(unsafe_code)]

mod builder;
mod coalesce;
mod devices;
mod error;
mod regions;
mod stats;
mod store;
mod tiers;
mod upload;

pub use builder::{
    Builder, DEFAULT_CHUNK_SIZE, DEFAULT_DISK_BYTES, DEFAULT_PAGE_SIZE, DEFAULT_RAM_BYTES,
};
pub use error::Error;
pub use object_store;
pub use stats::CacheStats;
pub use store::CachingStore;
