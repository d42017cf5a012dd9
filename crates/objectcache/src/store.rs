//! `CachingStore`: the `ObjectStore` that serves reads from the tiers and
//! passes everything else through.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

use crate::coalesce::coalesce;
use crate::regions::{Regions, Version};
use crate::stats::CacheStats;
use crate::tiers::Tiers;
use crate::upload::InvalidatingUpload;

/// Rounds of "learn the version, read through the tiers" before a read
/// gives up on the cache and goes to the inner store: each round lost
/// means the object changed (or was written through this store) during it.
const MAX_ATTEMPTS: usize = 3;

/// Most reads of one request through the tiers at once (each a blocking
/// thread), as object_store's `get_ranges` bounds its own GETs.
const MAX_PARALLEL_READS: usize = 10;

/// The name object_store errors raised here carry.
const STORE_NAME: &str = "objectcache";

/// An [`ObjectStore`] in front of another that serves reads from RAM pages
/// over an encrypted local disk tier, keyed by location and ETag.
///
/// Build one with [`CachingStore::builder`] (or [`CachingStore::new`] for
/// the defaults). What it does with each request:
///
/// - **`get_opts`** (so `get`, `get_range`, `head`) with at most a range
///   and `head`: served from the cache. The first request for a location
///   makes one HEAD to learn its size and ETag; missing bytes are read
///   with ranged GETs (`If-Match` that ETag) in whole chunks of the disk
///   tier; bytes in RAM or on disk cost no request. Conditional requests
///   (`if_match`, `if_none_match`, `if_(un)modified_since`), a `version`,
///   extensions, objects without an ETag, and ranges outside the object
///   go to the inner store unchanged, which answers them (and their
///   errors) as it always does.
/// - **`get_ranges`**: every range from the same version of the object.
/// - **Sequential readers**: a request that continues the previous one for
///   the same object lets the RAM tier hint what comes next, and the
///   object's GETs run ahead of the reader, several in flight, within
///   the read-ahead bound (see the crate docs, "Read-ahead").
/// - **Writes** (`put_opts`, a completed multipart upload), **deletes**,
///   **copies** and **renames** go to the inner store; what is cached for
///   every location they touch is dropped, before and after.
/// - **Lists** go to the inner store.
///
/// # Versions
/// Once known, a version is served without asking the store again. A
/// version changed by another writer is noticed at the next GET the
/// cache has to make for that object (a missing range, or a pass-through
/// GET answering with another ETag): its pages and chunks are dropped,
/// the new version is learnt with one HEAD, and the read is made again,
/// all of it from the new version. One response never holds bytes of two
/// versions. [`CachingStore::invalidate`] drops a location at once.
///
/// # Threads
/// The tiers block (disk reads, decryption, and the GETs they wait for);
/// the store runs them with `tokio::task::spawn_blocking`, never on a
/// worker thread, so it must be used from within a tokio runtime. The
/// GETs themselves run on the store's own small runtime (2 threads).
///
/// ```
/// use std::sync::Arc;
/// use object_store::{memory::InMemory, path::Path, ObjectStore, ObjectStoreExt};
/// use objectcache::CachingStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inner = Arc::new(InMemory::new());
/// inner.put(&Path::from("a"), vec![7u8; 5000].into()).await?;
/// let cached = CachingStore::builder().ram_bytes(1 << 20).disk_bytes(4 << 20).build(inner)?;
/// assert_eq!(cached.get_range(&Path::from("a"), 10..20).await?, vec![7u8; 10]);
/// assert_eq!(cached.stats().objects, 1);
/// # Ok(())
/// # }
/// ```
pub struct CachingStore {
    inner: Arc<dyn ObjectStore>,
    regions: Arc<Regions>,
    tiers: Arc<Tiers>,
}

/// How a cacheable GET is answered: its range and whether only the
/// metadata is wanted.
struct Plan {
    range: Option<GetRange>,
    head: bool,
}

impl Plan {
    /// The parts of `options` the cache models, or `None` when it must go
    /// to the inner store.
    fn of(options: &GetOptions) -> Option<Plan> {
        let GetOptions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
            range,
            version,
            head,
            extensions,
        } = options;
        let modelled = if_match.is_none()
            && if_none_match.is_none()
            && if_modified_since.is_none()
            && if_unmodified_since.is_none()
            && version.is_none()
            && extensions.is_empty();
        modelled.then(|| Plan {
            range: range.clone(),
            head: *head,
        })
    }
}

fn join_error(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE_NAME,
        source: Box::new(e),
    }
}

/// The object_store error a failed read through the tiers stands for: the
/// inner store's own when it is one, else the tier's, as `Generic`.
fn read_error(e: pagecache::Error) -> object_store::Error {
    if let pagecache::Error::Io(io) = e {
        match io
            .into_inner()
            .map(|inner| inner.downcast::<objectdev::Error>())
        {
            Some(Ok(inner)) => match *inner {
                objectdev::Error::Store(e) => e,
                other => object_store::Error::Generic {
                    store: STORE_NAME,
                    source: Box::new(other),
                },
            },
            Some(Err(other)) => object_store::Error::Generic {
                store: STORE_NAME,
                source: other,
            },
            None => object_store::Error::Generic {
                store: STORE_NAME,
                source: "the disk tier failed without a message".into(),
            },
        }
    } else {
        object_store::Error::Generic {
            store: STORE_NAME,
            source: Box::new(e),
        }
    }
}

impl CachingStore {
    pub(crate) fn from_parts(inner: Arc<dyn ObjectStore>, tiers: Tiers) -> Self {
        let regions = tiers.pages().device().device().clone();
        CachingStore {
            inner,
            regions,
            tiers: Arc::new(tiers),
        }
    }

    /// The store behind the cache.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectcache::CachingStore::new(Arc::new(object_store::memory::InMemory::new()))?;
    /// assert_eq!(store.inner().to_string(), "InMemory");
    /// # Ok::<(), objectcache::Error>(())
    /// ```
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// What the tiers hold and have done.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectcache::CachingStore::new(Arc::new(object_store::memory::InMemory::new()))?;
    /// assert_eq!(store.stats().ram.hits, 0);
    /// # Ok::<(), objectcache::Error>(())
    /// ```
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            objects: self.regions.len(),
            ram: self.tiers.pages().stats(),
            disk: self.tiers.pages().device().stats(),
            read_ahead: self.regions.read_ahead_stats(),
        }
    }

    /// Forgets what is cached for `location` (after another writer changed
    /// it, say); its pages and chunks are dropped by the next read.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::{memory::InMemory, path::Path, ObjectStoreExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = objectcache::CachingStore::new(Arc::new(InMemory::new()))?;
    /// store.inner().put(&Path::from("a"), vec![1u8; 10].into()).await?;
    /// store.head(&Path::from("a")).await?;
    /// store.invalidate(&Path::from("a"));
    /// assert_eq!(store.stats().objects, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn invalidate(&self, location: &Path) {
        self.regions.forget_for_write(location);
    }

    /// The cached version of `location`, learnt with one HEAD if unknown;
    /// `Ok(None)` when it cannot be cached (no ETag, or a write raced the
    /// HEAD).
    async fn version(&self, location: &Path) -> Result<Option<Arc<Version>>> {
        if let Some(version) = self.regions.lookup(location) {
            return Ok(Some(version));
        }
        let epoch = self.regions.write_epoch();
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let head = self.inner.get_opts(location, options).await?;
        Ok(self.regions.insert(head.meta, head.attributes, epoch))
    }

    /// The bytes of `ranges` of one version of `location`, read through the
    /// tiers; `Ok(None)` when the cache cannot answer (the caller asks the
    /// inner store). `ranges` come from `resolve`, given the object size;
    /// `None` from it means ranges the inner store must judge.
    async fn read<F>(
        &self,
        location: &Path,
        resolve: F,
    ) -> Result<Option<(Arc<Version>, Vec<Range<u64>>, Vec<Bytes>)>>
    where
        F: Fn(u64) -> Option<Vec<Range<u64>>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let Some(version) = self.version(location).await? else {
                return Ok(None);
            };
            let Some(ranges) = resolve(version.meta.size) else {
                return Ok(None);
            };
            // Groups share no chunk: read in parallel, none fetched twice.
            let groups = coalesce(&ranges, self.tiers.pages().device().chunk_size());
            let spans: Vec<Range<u64>> = groups.iter().map(|group| group.span.clone()).collect();
            // What the request covers, for read-ahead to tell whether it
            // continues the previous one.
            let first = spans.iter().map(|span| span.start).min();
            let last = spans.iter().map(|span| span.end).max();
            if let (Some(first), Some(last)) = (first, last) {
                version.note_request(first, last, self.tiers.pages().device().chunk_size());
            }
            let (tiers, reading) = (self.tiers.clone(), version.clone());
            let read_span = move |span: Range<u64>| {
                let (tiers, reading) = (tiers.clone(), reading.clone());
                tokio::task::spawn_blocking(move || tiers.read(&reading, &[span]))
            };
            let spans: Vec<_> = stream::iter(spans)
                .map(read_span)
                .buffered(MAX_PARALLEL_READS)
                .collect()
                .await;
            // Bytes of a version dropped during the read may be zeros
            // (or the read failed because of it): read the new one.
            if !self.regions.is_live(&version) {
                continue;
            }
            let mut out = vec![Bytes::new(); ranges.len()];
            for (group, read) in groups.iter().zip(spans) {
                let bytes = read.map_err(join_error)?.map_err(read_error)?;
                let bytes = bytes.into_iter().next().unwrap_or_default();
                for &index in &group.members {
                    let range = &ranges[index];
                    let start = (range.start - group.span.start) as usize;
                    out[index] = bytes.slice(start..start + (range.end - range.start) as usize);
                }
            }
            return Ok(Some((version, ranges, out)));
        }
        Ok(None)
    }

    /// Forwards `options` to the inner store; an answer naming another ETag
    /// than the cached one drops the cached version.
    async fn pass_through(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        if let Some(version) = self.regions.lookup(location)
            && result.meta.e_tag.is_some()
            && result.meta.e_tag != version.meta.e_tag
        {
            self.regions.forget_version(&version);
        }
        Ok(result)
    }
}

impl fmt::Display for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Caching({})", self.inner)
    }
}

impl fmt::Debug for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingStore")
            .field("inner", &self.inner)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ObjectStore for CachingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.regions.forget_for_write(location);
        let result = self.inner.put_opts(location, payload, opts).await;
        self.regions.forget_for_write(location);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(InvalidatingUpload {
            inner,
            regions: self.regions.clone(),
            location: location.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let Some(plan) = Plan::of(&options) else {
            return self.pass_through(location, options).await;
        };
        if plan.head {
            return match self.version(location).await? {
                Some(version) => Ok(GetResult {
                    payload: GetResultPayload::Stream(stream::empty().boxed()),
                    meta: version.meta.clone(),
                    range: 0..version.meta.size,
                    attributes: version.attributes.clone(),
                }),
                None => self.pass_through(location, options).await,
            };
        }
        let resolve = |size: u64| {
            let whole = GetRange::Offset(0);
            let range = plan.range.as_ref().unwrap_or(&whole);
            // An empty object has no offset 0; its whole is the empty range.
            let range = if size == 0 && plan.range.is_none() {
                Ok(0..0)
            } else {
                range.as_range(size)
            };
            range.ok().map(|range| Vec::from([range]))
        };
        match self.read(location, resolve).await? {
            Some((version, mut ranges, mut bytes)) => {
                let (range, bytes) = (ranges.remove(0), bytes.remove(0));
                Ok(GetResult {
                    payload: GetResultPayload::Stream(stream::once(async { Ok(bytes) }).boxed()),
                    meta: version.meta.clone(),
                    range,
                    attributes: version.attributes.clone(),
                })
            }
            None => self.pass_through(location, options).await,
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let resolve = |size: u64| {
            // Empty and outside ranges are the inner store's to judge.
            let inside = |range: &Range<u64>| range.start < range.end && range.end <= size;
            ranges.iter().all(inside).then(|| ranges.to_vec())
        };
        match self.read(location, resolve).await? {
            Some((_, _, bytes)) => Ok(bytes),
            None => self.inner.get_ranges(location, ranges).await,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let (before, after) = (self.regions.clone(), self.regions.clone());
        let locations = locations
            .inspect_ok(move |location| before.forget_for_write(location))
            .boxed();
        self.inner
            .delete_stream(locations)
            .inspect_ok(move |location| after.forget_for_write(location))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.regions.forget_for_write(to);
        let result = self.inner.copy_opts(from, to, options).await;
        self.regions.forget_for_write(to);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        for location in [from, to] {
            self.regions.forget_for_write(location);
        }
        let result = self.inner.rename_opts(from, to, options).await;
        for location in [from, to] {
            self.regions.forget_for_write(location);
        }
        result
    }
}
