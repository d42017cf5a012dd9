//! `CountingStore`: an `ObjectStore` wrapper that counts what a workload
//! asks of the store.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use object_store::path::Path;
use object_store::{GetOptions, GetResult, ObjectStore, Result};
use parking_lot::RwLock;

/// Requests a [`CountingStore`] has forwarded.
///
/// ```
/// let counts = objectdev::RequestCounts::default();
/// assert_eq!(counts.gets + counts.heads + counts.get_bytes + counts.other, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// GET requests (ranged or whole), HEADs excluded.
    pub gets: u64,
    /// HEAD requests.
    pub heads: u64,
    /// Bytes the GETs returned (the ranges the store answered with).
    pub get_bytes: u64,
    /// Every other request (PUT, LIST, DELETE, COPY, multipart).
    pub other: u64,
    /// The most GETs in flight at once: forwarded and not yet answered by
    /// the inner store (over a [`LatencyStore`](crate::LatencyStore), until
    /// their last byte arrived).
    pub max_gets_in_flight: u64,
}

/// A function [`CountingStore::before_request`] calls before each GET or HEAD.
///
/// ```
/// let hook: objectdev::RequestHook = std::sync::Arc::new(|counts| eprintln!("{counts:?}"));
/// # drop(hook);
/// ```
pub type RequestHook = Arc<dyn Fn(&RequestCounts) + Send + Sync>;

/// An [`ObjectStore`] that forwards every request to another and counts
/// GETs, HEADs and bytes, to show what a cache saves.
///
/// ```
/// use std::sync::Arc;
/// use blockdev::ReadAt;
/// use objectdev::{CountingStore, ObjectDevice};
/// use object_store::{memory::InMemory, path::Path, ObjectStoreExt};
///
/// let counting = Arc::new(CountingStore::new(Arc::new(InMemory::new())));
/// let path = Path::from("k");
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(counting.put(&path, vec![5u8; 100].into()))?;
/// let dev = ObjectDevice::new(counting.clone(), path)?;
/// dev.read_exact_at(10, &mut [0u8; 20])?;
/// let counts = counting.counts();
/// assert_eq!((counts.heads, counts.gets, counts.get_bytes, counts.other), (1, 1, 20, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    gets: AtomicU64,
    heads: AtomicU64,
    get_bytes: AtomicU64,
    other: AtomicU64,
    gets_in_flight: AtomicU64,
    max_gets_in_flight: AtomicU64,
    before_request: RwLock<Option<RequestHook>>,
}

impl CountingStore {
    /// A store forwarding to `inner`, with all counts at zero.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectdev::CountingStore::new(Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!(store.counts(), objectdev::RequestCounts::default());
    /// ```
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore {
            inner,
            gets: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            get_bytes: AtomicU64::new(0),
            other: AtomicU64::new(0),
            gets_in_flight: AtomicU64::new(0),
            max_gets_in_flight: AtomicU64::new(0),
            before_request: RwLock::new(None),
        }
    }

    /// The counts so far.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectdev::CountingStore::new(Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!(store.counts().gets, 0);
    /// ```
    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            gets: self.gets.load(Relaxed),
            heads: self.heads.load(Relaxed),
            get_bytes: self.get_bytes.load(Relaxed),
            other: self.other.load(Relaxed),
            max_gets_in_flight: self.max_gets_in_flight.load(Relaxed),
        }
    }

    /// Sets every count back to zero (the most GETs in flight to those in
    /// flight now).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectdev::CountingStore::new(Arc::new(object_store::memory::InMemory::new()));
    /// store.reset();
    /// assert_eq!(store.counts().heads, 0);
    /// ```
    pub fn reset(&self) {
        for counter in [&self.gets, &self.heads, &self.get_bytes, &self.other] {
            counter.store(0, Relaxed);
        }
        self.max_gets_in_flight
            .store(self.gets_in_flight.load(Relaxed), Relaxed);
    }

    /// Calls `hook` before each GET or HEAD is forwarded, with the counts
    /// including that request (for tracing, or to inject a fault, such as
    /// stopping a test server, at an exact request). `None` removes it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let store = objectdev::CountingStore::new(Arc::new(object_store::memory::InMemory::new()));
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let seen2 = seen.clone();
    /// store.before_request(Some(Arc::new(move |c: &objectdev::RequestCounts| {
    ///     seen2.store(c.heads, Ordering::Relaxed);
    /// })));
    /// let dev = objectdev::ObjectDevice::new(Arc::new(store), "absent".into());
    /// assert!(dev.is_err());
    /// assert_eq!(seen.load(Ordering::Relaxed), 1);
    /// ```
    pub fn before_request(&self, hook: Option<RequestHook>) {
        *self.before_request.write() = hook;
    }

    fn run_hook(&self) {
        let hook = self.before_request.read().clone();
        if let Some(hook) = hook {
            hook(&self.counts());
        }
    }

    /// A GET or HEAD, counted and forwarded.
    async fn counted_get(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let counter = if head { &self.heads } else { &self.gets };
        counter.fetch_add(1, Relaxed);
        self.run_hook();
        let in_flight = (!head).then(|| InFlight::enter(self));
        let result = self.inner.get_opts(location, options).await;
        drop(in_flight);
        let result = result?;
        if !head {
            let Range { start, end } = result.range;
            self.get_bytes.fetch_add(end.saturating_sub(start), Relaxed);
        }
        Ok(result)
    }

    /// Any other request, counted before it is forwarded.
    fn count_other(&self) {
        self.other.fetch_add(1, Relaxed);
    }
}

/// One GET in flight, counted until dropped (also when the request is
/// cancelled).
struct InFlight<'a>(&'a CountingStore);

impl<'a> InFlight<'a> {
    fn enter(store: &'a CountingStore) -> Self {
        let now = store.gets_in_flight.fetch_add(1, Relaxed) + 1;
        store.max_gets_in_flight.fetch_max(now, Relaxed);
        InFlight(store)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.gets_in_flight.fetch_sub(1, Relaxed);
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore")
            .field("inner", &self.inner)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

crate::forward_object_store!(CountingStore => inner, get_opts: counted_get, before_forwarding: count_other);
