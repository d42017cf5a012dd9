//! `ObjectDevice`: `ReadAt` over one object, one ranged GET per part.

use std::fmt;
use std::io;
use std::sync::Arc;

use blockdev::ReadAt;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore};
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

/// Most GETs of one read in flight at once (as object_store's
/// `get_ranges` bounds its own), so a tiny part size cannot open thousands
/// of connections.
const MAX_PARTS_IN_FLIGHT: usize = 16;

/// Prefixes of the environment variables [`ObjectDevice::open`] passes to
/// the store as options (lower-cased, as object_store's keys are).
const ENV_PREFIXES: [&str; 1] = ["AWS_"];

/// What identifies the object a device reads: its size and ETag, from one
/// HEAD when the device is opened (or [refreshed](ObjectDevice::refresh)).
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
///   is returned, so caches above never mix versions. Call
///   [`refresh`](Self::refresh) to adopt the new version, then drop the
///   caches above (`PageCache::invalidate_all`, `SpillTier::clear`).
/// - Errors keep the store's message; retries and timeouts are
///   object_store's (set through its options, e.g. `AWS_TIMEOUT`).
/// - [`ReadAt::will_need`] starts read-ahead: one GET per part of the
///   range hinted, up to 16 in flight, into a buffer of at most
///   [`read_ahead`](Self::read_ahead) bytes that later reads take from
///   (see the crate docs, "Read-ahead").
///
/// # Runtime
/// object_store is async; reads block the calling thread on a tokio
/// runtime. The constructors [`open`](Self::open) and [`new`](Self::new)
/// start the device's own multi-thread runtime with 2 worker threads (shut
/// down when the device is dropped); [`with_handle`](Self::with_handle)
/// uses the caller's runtime instead. Either way, reading from inside an
/// async task is refused with [`Error::InsideRuntime`]: use
/// `spawn_blocking`.
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
    read_ahead: ReadAhead<Identity>,
    executor: Executor,
}

impl ObjectDevice {
    /// Opens the object a URL names: `s3://bucket/key`, `file:///path`,
    /// `memory:///key` (an empty store), with options for the store taken
    /// from the environment: every `AWS_*` variable, lower-cased, as
    /// object_store's `parse_url_opts` reads them (`AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`, `AWS_TIMEOUT`, ...). Starts the device's own
    /// runtime and makes one HEAD request.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that does not parse or names an
    /// unsupported store; [`Error::Store`] when the store cannot be built
    /// or the HEAD fails (`NotFound` for a missing object).
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let path = std::env::temp_dir().join(format!("objectdev-doc-{}", std::process::id()));
    /// std::fs::write(&path, b"local bytes")?;
    /// let dev = objectdev::ObjectDevice::open(&format!("file://{}", path.display()))?;
    /// assert_eq!(dev.size()?, 11);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(url: &str) -> Result<Self, Error> {
        Self::open_with_options(url, env_options())
    }

    /// Opens the object a URL names with the given store options (keys as
    /// object_store's `parse_url_opts` takes them, e.g.
    /// `("aws_endpoint", "http://127.0.0.1:9000")`), and nothing from the
    /// environment.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    ///
    /// ```
    /// let err = objectdev::ObjectDevice::open_with_options("memory:///absent", [("k", "v")]);
    /// assert!(matches!(err, Err(objectdev::Error::Store(object_store::Error::NotFound { .. }))));
    /// ```
    pub fn open_with_options<I, K, V>(url: &str, options: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let (store, path) = parse_url(url, options)?;
        Self::new(store, path)
    }

    /// Writes `bytes` as the object at `url` (one PUT, replacing any object
    /// there; options from the environment as for [`open`](Self::open)),
    /// then opens it.
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`Error::Store`] when the PUT fails.
    ///
    /// ```
    /// use blockdev::ReadAt;
    ///
    /// let path = std::env::temp_dir().join(format!("objectdev-create-{}", std::process::id()));
    /// let dev = objectdev::ObjectDevice::create(&format!("file://{}", path.display()), b"new".to_vec())?;
    /// assert_eq!(dev.size()?, 3);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(url: &str, bytes: Vec<u8>) -> Result<Self, Error> {
        let (store, path) = parse_url(url, env_options())?;
        let executor = Executor::own()?;
        executor.block_on(store.put_opts(&path, bytes.into(), Default::default()))??;
        Self::with_executor(store, path, executor)
    }

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
        Self::with_executor(store, path, Executor::own()?)
    }

    /// A device over `path` in `store` whose requests run on the caller's
    /// runtime (`handle`); makes one HEAD request. The device blocks the
    /// calling thread, so it must not be used from one of that runtime's
    /// tasks (see [`Error::InsideRuntime`]). Read-ahead needs a
    /// multi-thread runtime (a current-thread one runs background GETs
    /// only while its owner blocks on it): on another, hints are ignored.
    ///
    /// # Errors
    /// [`Error::Store`] when the HEAD fails; [`Error::InsideRuntime`] when
    /// called from inside a runtime.
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
        Self::with_executor(store, path, Executor::Borrowed(handle))
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
        executor.block_on(store.put_opts(&path, bytes.into(), Default::default()))??;
        Self::with_executor(store, path, executor)
    }

    fn with_executor(
        store: Arc<dyn ObjectStore>,
        path: Path,
        executor: Executor,
    ) -> Result<Self, Error> {
        let identity = head(&executor, store.as_ref(), &path)?;
        let (fetch_store, fetch_path) = (Arc::clone(&store), path.clone());
        let fetch: Fetch<Identity> = Arc::new(move |identity, start, len| {
            let (store, path) = (Arc::clone(&fetch_store), fetch_path.clone());
            Box::pin(async move { get_range(store.as_ref(), &path, &identity, start, len).await })
        });
        Ok(ObjectDevice {
            read_ahead: ReadAhead::new(executor.handle().clone(), fetch),
            store,
            path,
            identity: RwLock::new(identity),
            part_size: DEFAULT_PART_SIZE,
            executor,
        })
    }

    /// Sets the part size: a read longer than this is split into parts of
    /// this many bytes, fetched by parallel GETs (default
    /// [`DEFAULT_PART_SIZE`]).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for 0.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![0; 10])?.with_part_size(4)?;
    /// assert_eq!(dev.part_size(), 4);
    /// assert!(objectdev::ObjectDevice::from_bytes(vec![])?.with_part_size(0).is_err());
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn with_part_size(mut self, bytes: u64) -> Result<Self, Error> {
        if bytes == 0 {
            return Err(Error::InvalidOption {
                option: "part_size",
                reason: "must be at least 1 byte".into(),
            });
        }
        self.part_size = bytes;
        Ok(self)
    }

    /// Sets the cap on bytes fetched ahead and not yet read (default
    /// [`DEFAULT_READ_AHEAD`](crate::DEFAULT_READ_AHEAD), 128 MiB); 0
    /// turns read-ahead off, so [`will_need`](ReadAt::will_need) does
    /// nothing. A cap below the part size also fetches nothing ahead.
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

    /// The cap on bytes fetched ahead and not yet read.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![])?;
    /// assert_eq!(dev.read_ahead(), objectdev::DEFAULT_READ_AHEAD);
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
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![7; 100])?.with_part_size(50)?;
    /// dev.will_need(0, 100);
    /// dev.read_exact_at(0, &mut [0u8; 100])?; // waits for both parts
    /// let stats = dev.read_ahead_stats();
    /// assert_eq!((stats.gets, stats.used_bytes, stats.buffered_bytes), (2, 100, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_ahead_stats(&self) -> ReadAheadStats {
        self.read_ahead.stats()
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

    /// Asks the store again (one HEAD) and adopts the object's current size
    /// and ETag; returns them. After a read failed with
    /// [`Error::ObjectChanged`], call this, then drop what caches above
    /// hold of the old version.
    ///
    /// # Errors
    /// [`Error::Store`] when the HEAD fails (the old identity stays).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::from_bytes(vec![1, 2, 3])?;
    /// assert_eq!(dev.refresh()?, dev.identity());
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn refresh(&self) -> Result<Identity, Error> {
        let identity = head(&self.executor, self.store.as_ref(), &self.path)?;
        *self.identity.write() = identity.clone();
        self.read_ahead.clear();
        Ok(identity)
    }

    /// Fills `buf` from `pos` (already clamped to the object) with one GET
    /// per part, up to [`MAX_PARTS_IN_FLIGHT`] in flight at once.
    fn read_parts(&self, identity: &Identity, pos: u64, buf: &mut [u8]) -> Result<(), Error> {
        let part_size = usize::try_from(self.part_size).unwrap_or(usize::MAX);
        let gets = buf.chunks_mut(part_size).enumerate().map(|(index, part)| {
            let start = pos + (index * part_size) as u64;
            self.get_part(identity, start, part)
        });
        let all = stream::iter(gets)
            .buffer_unordered(MAX_PARTS_IN_FLIGHT)
            .try_collect::<Vec<()>>();
        self.executor.block_on(all)?.map(|_| ())
    }

    async fn get_part(&self, identity: &Identity, start: u64, out: &mut [u8]) -> Result<(), Error> {
        let bytes = get_range(
            self.store.as_ref(),
            &self.path,
            identity,
            start,
            out.len() as u64,
        )
        .await?;
        out.copy_from_slice(&bytes);
        Ok(())
    }
}

/// The `len` bytes at `start` of the object `identity` names, with one
/// ranged GET; any other version, or another length, is an error.
async fn get_range(
    store: &dyn ObjectStore,
    path: &Path,
    identity: &Identity,
    start: u64,
    len: u64,
) -> Result<Bytes, Error> {
    let changed = |found: Option<String>| Error::ObjectChanged {
        path: path.to_string(),
        expected: identity.e_tag.clone(),
        found,
    };
    let options = GetOptions {
        range: Some(GetRange::Bounded(start..start + len)),
        if_match: identity.e_tag.clone(),
        ..GetOptions::default()
    };
    let result = match store.get_opts(path, options).await {
        Ok(result) => result,
        Err(object_store::Error::Precondition { .. }) => return Err(changed(None)),
        Err(e) => return Err(Error::Store(e)),
    };
    // Checked before any byte is taken: a server that ignores If-Match
    // still names the version it served.
    if result.meta.e_tag != identity.e_tag || result.meta.size != identity.size {
        return Err(changed(result.meta.e_tag.clone()));
    }
    let bytes = result.bytes().await?;
    if bytes.len() as u64 != len {
        return Err(Error::ShortResponse {
            start,
            expected: len,
            got: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The store options in the environment: every `AWS_*` variable, lower-cased.
fn env_options() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter_map(|(key, value)| {
        ENV_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
            .then(|| (key.to_ascii_lowercase(), value))
    })
}

/// The store and path a URL names, as object_store's `parse_url_opts` makes them.
fn parse_url<I, K, V>(url: &str, options: I) -> Result<(Arc<dyn ObjectStore>, Path), Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let (store, path) = object_store::parse_url_opts(&parsed, options).map_err(|e| match e {
        object_store::Error::Generic { .. } | object_store::Error::NotImplemented { .. } => {
            invalid(e.to_string())
        }
        e => Error::Store(e),
    })?;
    Ok((Arc::from(store), path))
}

fn head(executor: &Executor, store: &dyn ObjectStore, path: &Path) -> Result<Identity, Error> {
    let options = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let result = executor.block_on(store.get_opts(path, options))??;
    Ok(Identity::from(&result.meta))
}

impl ReadAt for ObjectDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let identity = self.identity();
        if buf.is_empty() || pos >= identity.size {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(identity.size - pos).unwrap_or(usize::MAX));
        self.read_ahead
            .read(&identity, pos, &mut buf[..len], |at, out| {
                self.read_parts(&identity, at, out)
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

    fn size(&self) -> io::Result<u64> {
        Ok(self.identity.read().size)
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
