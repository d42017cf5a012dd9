//! `ObjectDevice`: `ReadAt` over one object, one ranged GET per part.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use blockdev::ReadAt;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, OBJECT_STORE_COALESCE_DEFAULT, ObjectMeta, ObjectStore};
use parking_lot::RwLock;
use tokio::runtime::Handle;

use crate::error::Error;
use crate::readahead::{Fetch, ReadAhead, ReadAheadStats};
use crate::runtime::Executor;

/// Default size of the parts a large read is split into: 8 MiB, so a cold
/// 64 MiB read is 8 GETs in flight at once.
///
/// ```
/// assert_eq!(objectdev::DEFAULT_PART_SIZE, 8 << 20);
/// ```
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// The smallest part size [`ObjectDevice::with_part_size`] accepts: 64 KiB,
/// so a 1 MiB read is at most 16 GETs (a GET costs tens of milliseconds
/// whatever its size).
///
/// ```
/// assert_eq!(objectdev::MIN_PART_SIZE, 64 << 10);
/// ```
pub const MIN_PART_SIZE: u64 = 64 << 10;

/// Default deadline of one read, all its parts and retries included: 20 s.
/// A cache in front of the store would rather fail a read (and let the
/// caller retry or fall back) than hold it for object_store's 3 minutes.
///
/// ```
/// assert_eq!(objectdev::DEFAULT_DEADLINE, std::time::Duration::from_secs(20));
/// ```
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

/// Most GETs of one read in flight at once (as object_store's
/// `get_ranges` bounds its own), so a tiny part size cannot open thousands
/// of connections.
const MAX_PARTS_IN_FLIGHT: usize = 16;

/// What identifies the object a device reads: its size and ETag, from one
/// HEAD when the device is opened (or [refreshed](ReadAt::refresh)).
///
/// ```
/// use objectdev::ObjectDevice;
///
/// let dev = ObjectDevice::from_bytes(b"12345".to_vec())?;
/// assert_eq!(dev.identity().size, 5);
/// assert!(dev.identity().e_tag.is_some());
/// # Ok::<(), objectdev::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Size of the object in bytes.
    pub size: u64,
    /// The store's ETag for this version of the object, if it gives one.
    pub e_tag: Option<String>,
}

impl From<&ObjectMeta> for Identity {
    fn from(meta: &ObjectMeta) -> Self {
        Identity {
            size: meta.size,
            e_tag: meta.e_tag.clone(),
        }
    }
}

/// A [`ReadAt`] device over one object of any [`ObjectStore`].
///
/// - Each `read_at` is one ranged GET, or, when longer than the
///   [part size](Self::with_part_size), several GETs of one part each, up
///   to 16 in flight at once.
/// - The size comes from one HEAD at opening, kept; [`ReadAt::size`] makes
///   no request.
/// - Every GET asks `If-Match` with the ETag remembered, and its response's
///   ETag is compared with it too (some servers ignore `If-Match`). A
///   mismatch fails the read with [`Error::ObjectChanged`] (inside the
///   `io::Error`, kind `StaleNetworkFileHandle`): no byte of the new object
///   is returned, so caches above never mix versions. To move to the new
///   version, call `refresh` on the top of the stack
///   (`PageCache::refresh`): it calls this device's
///   [`ReadAt::refresh`] (one HEAD, the new ETag and size adopted), and
///   every layer on the way back up drops its bytes of the old version,
///   atomically for readers (see the crate docs, "A replaced object").
/// - Errors keep the store's message. Each read has a deadline
///   ([`DEFAULT_DEADLINE`]); retries are the store's (for a store opened
///   by URL, [`DEFAULT_MAX_RETRIES`](crate::DEFAULT_MAX_RETRIES) within
///   [`DEFAULT_RETRY_TIMEOUT`](crate::DEFAULT_RETRY_TIMEOUT); see
///   [`ObjectDevice::builder`]).
/// - [`ReadAt::will_need`] starts read-ahead: one GET per part of the
///   range hinted, up to 16 in flight, into a buffer of at most
///   [`read_ahead`](Self::read_ahead) bytes that later reads take from
///   (see the crate docs, "Read-ahead"); a cache above bounds that
///   buffer with [`ReadAt::limit_read_ahead`].
///
/// # Runtime
/// object_store is async; requests run as tasks of a tokio runtime. The
/// constructors [`open`](Self::open) and [`new`](Self::new) start the
/// device's own multi-thread runtime with 2 worker threads (shut down when
/// the device is dropped); [`with_handle`](Self::with_handle) uses the
/// caller's instead. Blocking reads work from plain threads,
/// `spawn_blocking`, `block_in_place` and threads inside `Runtime::enter`,
/// and are refused with [`Error::InsideRuntime`] on a thread that runs
/// async tasks; there, await [`read_at_async`](Self::read_at_async) or
/// [`read_ranges`](Self::read_ranges).
///
/// ```
/// use blockdev::ReadAt;
/// use objectdev::ObjectDevice;
///
/// let dev = ObjectDevice::from_bytes(b"hello, object".to_vec())?;
/// let mut buf = [0u8; 6];
/// dev.read_exact_at(7, &mut buf)?;
/// assert_eq!(&buf, b"object");
/// assert_eq!(dev.size()?, 13);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ObjectDevice {
    store: Arc<dyn ObjectStore>,
    path: Path,
    identity: RwLock<Identity>,
    part_size: u64,
    settings: Settings,
    read_ahead: ReadAhead<Identity>,
    executor: Executor,
}

/// What a device is opened with besides its store and path.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Longest time one read (or HEAD) may take, retries included.
    pub(crate) deadline: Duration,
    /// The version of the object to read; `None` for the latest.
    pub(crate) version: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            deadline: DEFAULT_DEADLINE,
            version: None,
        }
    }
}

/// What one read asks of the store, owned, so that it runs as a task of
/// the device's runtime.
#[derive(Clone)]
struct Request {
    store: Arc<dyn ObjectStore>,
    path: Path,
    identity: Identity,
    version: Option<String>,
}

impl ObjectDevice {
    /// A device over `path` in `store`, with its own runtime; makes one HEAD
    /// request.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the runtime cannot start; [`Error::Store`]
    /// when the HEAD fails.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::{memory::InMemory, path::Path, ObjectStore, ObjectStoreExt};
    ///
    /// let store = Arc::new(InMemory::new());
    /// let path = Path::from("data/blob");
    /// futures_executor(store.put(&path, vec![1u8; 10].into()));
    /// let dev = objectdev::ObjectDevice::new(store, path)?;
    /// assert_eq!(dev.identity().size, 10);
    /// # fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>, path: Path) -> Result<Self, Error> {
        Self::assemble(store, path, Executor::own()?, Settings::default())
    }

    /// A device over `path` in `store` whose requests run as tasks of the
    /// caller's runtime (`handle`); makes one HEAD request.
    ///
    /// The runtime must be a multi-thread one built with `enable_all` (its
    /// tasks run on their own, and the HTTP client needs its I/O and
    /// timers), and must outlive the device: after it is dropped, reads
    /// fail with [`Error::RuntimeGone`].
    ///
    /// # Errors
    /// [`Error::UnusableRuntime`] for a current_thread runtime's handle (its
    /// tasks run only while its owner blocks on it, so a read could wait
    /// forever); [`Error::RuntimeGone`] when the runtime is shut down, or
    /// its task fails for want of I/O or timers (the panic message is
    /// printed by the panic hook); [`Error::Store`] when the HEAD fails;
    /// [`Error::InsideRuntime`] when called from one of a runtime's tasks.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::{memory::InMemory, path::Path, ObjectStoreExt};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    /// let store = Arc::new(InMemory::new());
    /// let path = Path::from("k");
    /// runtime.block_on(store.put(&path, b"abc".to_vec().into()))?;
    /// let dev = objectdev::ObjectDevice::with_handle(store, path, runtime.handle().clone())?;
    /// assert_eq!(dev.identity().size, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_handle(
        store: Arc<dyn ObjectStore>,
        path: Path,
        handle: Handle,
    ) -> Result<Self, Error> {
        Self::assemble(
            store,
            path,
            Executor::borrowed(handle)?,
            Settings::default(),
        )
    }

    /// A device over an in-memory object holding `bytes` (for examples and
    /// tests).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 3])?;
    /// assert_eq!(dev.path().as_ref(), "object");
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("object");
        let executor = Executor::own()?;
        put(&executor, &store, &path, bytes)?;
        Self::assemble(store, path, executor, Settings::default())
    }

    /// A device over `path` in `store`, its requests run by `executor`;
    /// makes one HEAD request.
    pub(crate) fn assemble(
        store: Arc<dyn ObjectStore>,
        path: Path,
        executor: Executor,
        settings: Settings,
    ) -> Result<Self, Error> {
        let identity = head(&executor, &store, &path, &settings)?;
        Ok(Self::assemble_known(
            store, path, executor, settings, identity,
        ))
    }

    /// A device over `path` in `store` whose size and ETag are known
    /// (`identity`), its requests run by `executor`; makes no request.
    pub(crate) fn assemble_known(
        store: Arc<dyn ObjectStore>,
        path: Path,
        executor: Executor,
        settings: Settings,
        identity: Identity,
    ) -> Self {
        let (fetch_store, fetch_path) = (Arc::clone(&store), path.clone());
        let (version, deadline) = (settings.version.clone(), settings.deadline);
        let fetch: Fetch<Identity> = Arc::new(move |identity, start, len| {
            let request = Request {
                store: Arc::clone(&fetch_store),
                path: fetch_path.clone(),
                identity,
                version: version.clone(),
            };
            Box::pin(async move {
                with_deadline(deadline, request.get(start..start.saturating_add(len))).await
            })
        });
        ObjectDevice {
            read_ahead: ReadAhead::new(executor.handle().clone(), fetch),
            store,
            path,
            identity: RwLock::new(identity),
            part_size: DEFAULT_PART_SIZE,
            settings,
            executor,
        }
    }

    /// Sets the part size: a read longer than this is split into parts of
    /// this many bytes, fetched by parallel GETs (default
    /// [`DEFAULT_PART_SIZE`]).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] below [`MIN_PART_SIZE`] (64 KiB).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 10])?.with_part_size(1 << 20)?;
    /// assert_eq!(dev.part_size(), 1 << 20);
    /// assert!(objectdev::ObjectDevice::from_bytes(vec![])?.with_part_size(1).is_err());
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn with_part_size(mut self, bytes: u64) -> Result<Self, Error> {
        check_part_size(bytes)?;
        self.part_size = bytes;
        Ok(self)
    }

    /// Sets the cap on bytes fetched ahead and not yet read (default
    /// [`DEFAULT_READ_AHEAD`](crate::DEFAULT_READ_AHEAD), 128 MiB); 0
    /// turns read-ahead off, so [`will_need`](ReadAt::will_need) does
    /// nothing. A cap below the part size also fetches nothing ahead.
    /// A cache above may lower it further, never raise it
    /// ([`limit_read_ahead`](ReadAt::limit_read_ahead)).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 10])?.with_read_ahead(0);
    /// assert_eq!(dev.read_ahead(), 0);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn with_read_ahead(self, max_bytes: u64) -> Self {
        self.read_ahead.set_max_bytes(max_bytes);
        self
    }

    /// The cap in force on bytes fetched ahead and not yet read: the
    /// least of the one set by [`with_read_ahead`](Self::with_read_ahead)
    /// and the last [`limit_read_ahead`](ReadAt::limit_read_ahead).
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?.with_read_ahead(64 << 20);
    /// assert_eq!(dev.read_ahead(), 64 << 20);
    /// dev.limit_read_ahead(16 << 20);
    /// assert_eq!(dev.read_ahead(), 16 << 20);
    /// dev.limit_read_ahead(1 << 30); // never above the cap opened with
    /// assert_eq!(dev.read_ahead(), 64 << 20);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn read_ahead(&self) -> u64 {
        self.read_ahead.max_bytes()
    }

    /// What read-ahead fetched, what reads took of it and what was dropped
    /// unread.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let part = objectdev::MIN_PART_SIZE;
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![7; 2 * part as usize])?.with_part_size(part)?;
    /// dev.will_need(0, 2 * part);
    /// dev.read_exact_at(0, &mut vec![0u8; 2 * part as usize])?; // waits for both parts
    /// let stats = dev.read_ahead_stats();
    /// assert_eq!((stats.gets, stats.used_bytes, stats.buffered_bytes), (2, 2 * part, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_ahead_stats(&self) -> ReadAheadStats {
        self.read_ahead.stats()
    }

    /// The deadline of one read (all its parts and retries).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.deadline(), objectdev::DEFAULT_DEADLINE);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    /// The version of the object this device reads (from `?versionId=` or
    /// the builder), or `None` for the latest.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.version(), None);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn version(&self) -> Option<&str> {
        self.settings.version.as_deref()
    }

    /// The part size in bytes.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.part_size(), objectdev::DEFAULT_PART_SIZE);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The size and ETag remembered.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 7])?;
    /// assert_eq!(dev.identity().size, 7);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn identity(&self) -> Identity {
        self.identity.read().clone()
    }

    /// The store.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.store().to_string(), "InMemory");
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object's location in the store.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.path().to_string(), "object");
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads into `buf` from `pos` (`read_at` of [`ReadAt`], without
    /// blocking): the number of bytes read, short only at the end of the
    /// object. One GET per part, as the blocking read; the GETs run on the
    /// device's runtime, so this may be awaited from any executor, a tokio
    /// worker included.
    ///
    /// # Errors
    /// As the blocking read: [`Error::Store`], [`Error::ObjectChanged`],
    /// [`Error::ShortResponse`], [`Error::Deadline`],
    /// [`Error::RuntimeGone`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), objectdev::Error> {
    /// let dev = tokio::task::spawn_blocking(|| objectdev::ObjectDevice::from_bytes(b"hello, object".to_vec()))
    ///     .await
    ///     .unwrap()?;
    /// let mut buf = [0u8; 6];
    /// assert_eq!(dev.read_at_async(7, &mut buf).await?, 6);
    /// assert_eq!(&buf, b"object");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_at_async(&self, pos: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let (request, range) = match self.clamp(pos, buf.len()) {
            Some(found) => found,
            None => return Ok(0),
        };
        let parts = self.split(range.clone());
        let deadline = self.settings.deadline;
        let parts = self
            .executor
            .run(with_deadline(deadline, request.get_parts(parts)))
            .await??;
        Ok(copy_parts(&parts, buf))
    }

    /// Fetches several ranges of the object without blocking, as
    /// object_store's `get_ranges` does: ranges less than 1 MiB apart are
    /// merged into one GET (longer ones split into parts), up to 16 GETs in
    /// flight. Returns one buffer per range, in the order asked.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] for a reversed range or one past the end of
    /// the object (nothing is fetched); else as [`read_at_async`](Self::read_at_async).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), objectdev::Error> {
    /// let dev = tokio::task::spawn_blocking(|| objectdev::ObjectDevice::from_bytes(b"0123456789".to_vec()))
    ///     .await
    ///     .unwrap()?;
    /// let parts = dev.read_ranges(&[7..10, 0..2]).await?;
    /// assert_eq!(parts, [&b"789"[..], &b"01"[..]]);
    /// assert!(dev.read_ranges(&[5..11]).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, Error> {
        let request = self.request();
        let size = request.identity.size;
        if let Some(bad) = ranges.iter().find(|r| r.start > r.end || r.end > size) {
            return Err(Error::InvalidRange {
                range: bad.clone(),
                size,
            });
        }
        let ranges = ranges.to_vec();
        let part_size = self.part_size;
        let fetch = async move {
            object_store::coalesce_ranges(
                &ranges,
                |range| request.clone().get_joined(split(range, part_size)),
                OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await
        };
        let deadline = self.settings.deadline;
        self.executor.run(with_deadline(deadline, fetch)).await?
    }

    /// What a read asks of the store now.
    fn request(&self) -> Request {
        Request {
            store: Arc::clone(&self.store),
            path: self.path.clone(),
            identity: self.identity(),
            version: self.settings.version.clone(),
        }
    }

    /// The request and the range of a read of `len` bytes at `pos`, clamped
    /// to the object; `None` when nothing is to be read.
    fn clamp(&self, pos: u64, len: usize) -> Option<(Request, Range<u64>)> {
        let request = self.request();
        let size = request.identity.size;
        if len == 0 || pos >= size {
            return None;
        }
        let end = pos.saturating_add(len as u64).min(size);
        Some((request, pos..end))
    }

    fn split(&self, range: Range<u64>) -> Vec<Range<u64>> {
        split(range, self.part_size)
    }
}

/// Refuses a part size that would turn a read into a flood of GETs.
pub(crate) fn check_part_size(bytes: u64) -> Result<(), Error> {
    if bytes < MIN_PART_SIZE {
        return Err(Error::InvalidOption {
            option: "part_size",
            reason: format!(
                "{bytes} bytes would make one GET per {bytes} bytes read; \
                 at least {MIN_PART_SIZE} (64 KiB)"
            ),
        });
    }
    Ok(())
}

/// `range` cut into parts of `part_size` bytes (the last one shorter).
fn split(range: Range<u64>, part_size: u64) -> Vec<Range<u64>> {
    (range.start..range.end)
        .step_by(usize::try_from(part_size).unwrap_or(usize::MAX))
        .map(|start| start..start.saturating_add(part_size).min(range.end))
        .collect()
}

/// Copies `parts`, in order, to the front of `buf`; returns the bytes copied.
fn copy_parts(parts: &[Bytes], buf: &mut [u8]) -> usize {
    let mut filled = 0;
    for part in parts {
        buf[filled..filled + part.len()].copy_from_slice(part);
        filled += part.len();
    }
    filled
}

/// `future`'s output, or [`Error::Deadline`] if it takes longer than `deadline`.
async fn with_deadline<T>(
    deadline: Duration,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(deadline, future)
        .await
        .unwrap_or(Err(Error::Deadline { after: deadline }))
}

impl Request {
    /// One GET per range, up to [`MAX_PARTS_IN_FLIGHT`] at once; the bytes
    /// in the order of `ranges`.
    async fn get_parts(self, ranges: Vec<Range<u64>>) -> Result<Vec<Bytes>, Error> {
        let this = &self;
        stream::iter(ranges)
            .map(|range| this.get(range))
            .buffered(MAX_PARTS_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// As [`get_parts`](Self::get_parts) for contiguous `ranges`, as one buffer.
    async fn get_joined(self, ranges: Vec<Range<u64>>) -> Result<Bytes, Error> {
        let parts = self.get_parts(ranges).await?;
        Ok(match <[Bytes; 1]>::try_from(parts) {
            Ok([one]) => one,
            Err(parts) => Bytes::from(parts.concat()),
        })
    }

    async fn get(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: self.identity.e_tag.clone(),
            version: self.version.clone(),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&self.path, options).await {
            Ok(result) => result,
            Err(object_store::Error::Precondition { .. }) => return Err(self.changed(None)),
            Err(e) => return Err(Error::Store(e)),
        };
        // Checked before any byte is taken: a server that ignores If-Match
        // still names the version it served.
        if result.meta.e_tag != self.identity.e_tag || result.meta.size != self.identity.size {
            return Err(self.changed(result.meta.e_tag.clone()));
        }
        let bytes = result.bytes().await?;
        let expected = range.end - range.start;
        if bytes.len() as u64 != expected {
            return Err(Error::ShortResponse {
                start: range.start,
                expected,
                got: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    fn changed(&self, found: Option<String>) -> Error {
        Error::ObjectChanged {
            path: self.path.to_string(),
            expected: self.identity.e_tag.clone(),
            found,
        }
    }
}

/// Writes `bytes` as the object at `path` (one PUT), on `executor`.
pub(crate) fn put(
    executor: &Executor,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<(), Error> {
    let (store, path) = (Arc::clone(store), path.clone());
    executor.block_on(async move {
        store
            .put_opts(&path, bytes.into(), Default::default())
            .await
    })??;
    Ok(())
}

fn head(
    executor: &Executor,
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    settings: &Settings,
) -> Result<Identity, Error> {
    let options = GetOptions {
        head: true,
        version: settings.version.clone(),
        ..GetOptions::default()
    };
    let (store, path) = (Arc::clone(store), path.clone());
    let head = async move { Ok(store.get_opts(&path, options).await?) };
    let result = executor.block_on(with_deadline(settings.deadline, head))??;
    // A store that ignores the version asked for (local files, memory,
    // s3s-fs) answers for the latest: refuse rather than read it.
    if let Some(wanted) = &settings.version
        && result.meta.version.as_deref() != Some(wanted.as_str())
    {
        return Err(Error::InvalidOption {
            option: "version",
            reason: format!(
                "the store answered for version {:?}, not {wanted:?}: it does not serve \
                 object versions, and would read the latest",
                result.meta.version.as_deref().unwrap_or("none")
            ),
        });
    }
    Ok(Identity::from(&result.meta))
}

impl ReadAt for ObjectDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some((request, range)) = self.clamp(pos, buf.len()) else {
            return Ok(0);
        };
        let len = (range.end - range.start) as usize;
        // Bytes read ahead are taken as they are; the rest is fetched here,
        // one GET per part, with the identity the read began with.
        self.read_ahead
            .read(&request.identity, pos, &mut buf[..len], |at, out| {
                let range = at..at + out.len() as u64;
                let fetch = with_deadline(
                    self.settings.deadline,
                    request.clone().get_parts(self.split(range)),
                );
                let parts = self.executor.block_on(fetch)??;
                copy_parts(&parts, out);
                Ok(())
            })?;
        Ok(len)
    }

    /// Starts read-ahead of the parts of the range (see [`ObjectDevice`]).
    fn will_need(&self, pos: u64, len: u64) {
        let identity = self.identity();
        let size = identity.size;
        self.read_ahead
            .hint(identity, pos, len, size, self.part_size);
    }

    /// Caps the read-ahead buffer at the least of `max_bytes` and the cap
    /// the device was opened with ([`ObjectDevice::with_read_ahead`]);
    /// may be called again, to lower or raise it. Lowering it drops what
    /// no longer fits: parts held (counted as
    /// [`unused_bytes`](ReadAheadStats::unused_bytes)) and GETs in flight,
    /// aborted (counted as [`cancelled`](ReadAheadStats::cancelled)); 0
    /// turns read-ahead off. A read that needed a dropped part makes its
    /// own GET. The last call wins: caches sharing one device should
    /// agree on it.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 1 << 20])?;
    /// dev.limit_read_ahead(0);
    /// dev.will_need(0, 1 << 20);
    /// assert_eq!(dev.read_ahead_stats().gets, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn limit_read_ahead(&self, max_bytes: u64) {
        self.read_ahead.limit(max_bytes);
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.identity.read().size)
    }

    /// Asks the store again (one HEAD) and adopts the object's current
    /// size and ETag ([`identity`](ObjectDevice::identity) shows them).
    /// `Ok(true)` when they differ from the ones remembered, or when the
    /// store gives no ETag (a same-size replacement would go unseen).
    /// Reads started before the call keep the ETag they started with, so
    /// they return bytes of the old version or fail with
    /// [`Error::ObjectChanged`], never bytes of both.
    ///
    /// # Errors
    /// [`Error::Store`] (inside the `io::Error`) when the HEAD fails; the
    /// old identity stays.
    ///
    /// ```
    /// use blockdev::ReadAt;
    /// use object_store::{ObjectStoreExt, PutPayload};
    ///
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![1, 2, 3])?;
    /// assert!(!dev.refresh()?); // the same version
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(dev.store().put(dev.path(), PutPayload::from_static(b"four")))?;
    /// assert!(dev.refresh()?);
    /// assert_eq!(dev.size()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn refresh(&self) -> io::Result<bool> {
        let current = head(&self.executor, &self.store, &self.path, &self.settings)?;
        let mut identity = self.identity.write();
        let changed = current.e_tag.is_none() || *identity != current;
        *identity = current;
        drop(identity);
        self.read_ahead.clear();
        Ok(changed)
    }
}

impl fmt::Debug for ObjectDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectDevice")
            .field("store", &self.store.to_string())
            .field("path", &self.path.as_ref())
            .field("identity", &*self.identity.read())
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}
