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
//! - a new version of an object never shares an address with the old
//!   one, so no response mixes the two, and the old one's pages and chunks
//!   are dropped.
//!
//! See [`CachingStore`] for what each request does, which ones go to the
//! inner store unchanged, and how a version changed by another writer is
//! noticed.
//!
//! # Threads and runtime
//! The tiers block (disk I/O, decryption, waiting for GETs); the store
//! runs them with `tokio::task::spawn_blocking`, never on a runtime worker.
//! Use it from inside a tokio runtime, as object_store's own stores are.
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
