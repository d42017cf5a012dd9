//! `LatencyStore`: an `ObjectStore` wrapper that answers like a store
//! across a network (first-byte latency, bandwidth per request, a cap on
//! connections), so tests and benches over memory pay what users pay.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use object_store::path::Path;
use object_store::{GetOptions, GetResult, GetResultPayload, ObjectStore};
use tokio::sync::Semaphore;

use crate::error::Error;

/// An [`ObjectStore`] that forwards every request to another and makes each
/// GET and HEAD take as long as over a network: the first byte after
/// `first_byte`, then `bytes_per_second` for that request alone, with
/// optionally at most `max_connections` requests served at once (the others
/// wait for a free connection first).
///
/// Real object stores answer each request after tens of milliseconds and
/// stream one request at about 90 MB/s; throughput comes from many requests
/// in flight. [`LatencyStore::s3`] is that shape (25 ms, 90 MB/s); put it in
/// front of an in-memory store to measure a workload as users of S3 pay
/// for it, without a network.
///
/// - A GET resolves when its last byte would have arrived (`first_byte +
///   len / bytes_per_second` after its connection was free), its body in
///   one piece; a HEAD after `first_byte`.
/// - Other requests (PUT, LIST, DELETE, COPY, multipart) are forwarded at
///   once, so setting up a test costs nothing.
/// - Time is tokio's: the store runs on any tokio runtime with its time
///   driver enabled (the runtimes [`ObjectDevice`](crate::ObjectDevice)
///   starts have it).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use blockdev::ReadAt;
/// use object_store::{memory::InMemory, path::Path, ObjectStoreExt};
/// use objectdev::{LatencyStore, ObjectDevice};
///
/// let memory = Arc::new(InMemory::new());
/// let path = Path::from("k");
/// tokio::runtime::Builder::new_current_thread().build()?
///     .block_on(memory.put(&path, vec![7u8; 1000].into()))?;
/// let slow = LatencyStore::new(memory, Duration::from_millis(20), 1_000_000)?;
/// let dev = ObjectDevice::new(Arc::new(slow), path)?;
/// let started = Instant::now();
/// dev.read_exact_at(0, &mut [0u8; 1000])?; // 20 ms + 1 ms
/// assert!(started.elapsed() >= Duration::from_millis(21));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LatencyStore {
    inner: Arc<dyn ObjectStore>,
    first_byte: Duration,
    bytes_per_second: u64,
    connections: Option<(usize, Semaphore)>,
}

impl LatencyStore {
    /// A store forwarding to `inner` whose GETs and HEADs wait `first_byte`
    /// for their first byte and then stream `bytes_per_second` each, with
    /// no cap on connections.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `bytes_per_second` is 0.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let memory = Arc::new(object_store::memory::InMemory::new());
    /// let store = objectdev::LatencyStore::new(memory.clone(), Duration::from_millis(5), 50_000_000)?;
    /// assert_eq!(store.first_byte(), Duration::from_millis(5));
    /// assert!(objectdev::LatencyStore::new(memory, Duration::ZERO, 0).is_err());
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        first_byte: Duration,
        bytes_per_second: u64,
    ) -> Result<Self, Error> {
        if bytes_per_second == 0 {
            return Err(Error::InvalidOption {
                option: "bytes_per_second",
                reason: "must be at least 1 byte per second".into(),
            });
        }
        Ok(LatencyStore {
            inner,
            first_byte,
            bytes_per_second,
            connections: None,
        })
    }

    /// A store forwarding to `inner` that answers like S3 seen from a
    /// machine in the same region: 25 ms to the first byte, then 90 MB/s
    /// per request, no cap on connections.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let store = objectdev::LatencyStore::s3(Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!((store.first_byte(), store.bytes_per_second()), (Duration::from_millis(25), 90_000_000));
    /// ```
    pub fn s3(inner: Arc<dyn ObjectStore>) -> Self {
        LatencyStore {
            inner,
            first_byte: Duration::from_millis(25),
            bytes_per_second: 90_000_000,
            connections: None,
        }
    }

    /// Serves at most `max` GETs and HEADs at once, like a client with a
    /// pool of `max` connections; the others wait for one to be free.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `max` is 0.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let store = objectdev::LatencyStore::s3(Arc::new(object_store::memory::InMemory::new()))
    ///     .with_max_connections(4)?;
    /// assert_eq!(store.max_connections(), Some(4));
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn with_max_connections(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(Error::InvalidOption {
                option: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        let permits = max.min(Semaphore::MAX_PERMITS);
        self.connections = Some((max, Semaphore::new(permits)));
        Ok(self)
    }

    /// The wait before a request's first byte.
    ///
    /// ```
    /// let store = objectdev::LatencyStore::s3(std::sync::Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!(store.first_byte().as_millis(), 25);
    /// ```
    pub fn first_byte(&self) -> Duration {
        self.first_byte
    }

    /// The bytes per second one request streams.
    ///
    /// ```
    /// let store = objectdev::LatencyStore::s3(std::sync::Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!(store.bytes_per_second(), 90_000_000);
    /// ```
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// The cap on requests served at once, if any.
    ///
    /// ```
    /// let store = objectdev::LatencyStore::s3(std::sync::Arc::new(object_store::memory::InMemory::new()));
    /// assert_eq!(store.max_connections(), None);
    /// ```
    pub fn max_connections(&self) -> Option<usize> {
        self.connections.as_ref().map(|(max, _)| *max)
    }

    /// How long `len` bytes take to stream over one connection.
    fn transfer_time(&self, len: u64) -> Duration {
        let nanos = u128::from(len) * 1_000_000_000 / u128::from(self.bytes_per_second);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A GET or HEAD, answered as late as over a network.
    async fn delayed_get(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        // Held until the last byte is delivered, as a connection would be.
        let _connection = match &self.connections {
            Some((_, semaphore)) => {
                Some(
                    semaphore
                        .acquire()
                        .await
                        .map_err(|err| object_store::Error::Generic {
                            store: "LatencyStore",
                            source: Box::new(err),
                        })?,
                )
            }
            None => None,
        };
        tokio::time::sleep(self.first_byte).await;
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if head {
            return Ok(result);
        }
        let GetResult {
            meta,
            range,
            attributes,
            ..
        } = &result;
        let (meta, range, attributes) = (meta.clone(), range.clone(), attributes.clone());
        let body = result.bytes().await?;
        tokio::time::sleep(self.transfer_time(body.len() as u64)).await;
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async { Ok(body) }).boxed()),
            meta,
            range,
            attributes,
        })
    }
}

impl fmt::Display for LatencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Latency({:?}, {} B/s, {})",
            self.first_byte, self.bytes_per_second, self.inner
        )
    }
}

impl fmt::Debug for LatencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyStore")
            .field("inner", &self.inner)
            .field("first_byte", &self.first_byte)
            .field("bytes_per_second", &self.bytes_per_second)
            .field("max_connections", &self.max_connections())
            .finish()
    }
}

crate::forward_object_store!(LatencyStore => inner, get_opts: delayed_get);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_time_is_bytes_over_bandwidth() {
        let memory = Arc::new(object_store::memory::InMemory::new());
        let store = LatencyStore::s3(memory);
        assert_eq!(store.transfer_time(90_000_000), Duration::from_secs(1));
        assert_eq!(store.transfer_time(0), Duration::ZERO);
        assert!(store.transfer_time(u64::MAX) > Duration::from_secs(1 << 30));
    }
}
