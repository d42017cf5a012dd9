//! A real S3 server for tests and benches, on 127.0.0.1 in the test's own
//! process (s3s serves the protocol, s3s-fs keeps the bucket in a scratch
//! directory), or an external one named by the environment; and one that
//! keeps every version of an object ([`S3Server::start_versioned`]).
//!
//! ```
//! use object_store::{ObjectStoreExt, PutPayload};
//! use testsupport::s3::S3Server;
//!
//! let server = S3Server::start();
//! let store = server.store();
//! let key = testsupport::s3::unique_key("doc");
//! testsupport::block_on(store.put(&key, PutPayload::from_static(b"hello")))?;
//! let bytes = testsupport::block_on(async { store.get(&key).await?.bytes().await })?;
//! assert_eq!(&bytes[..], b"hello");
//! # Ok::<(), object_store::Error>(())
//! ```

use std::env;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

use crate::TempDir;

mod versioned;

use versioned::Versioned;

/// The bucket of a server started in process.
const BUCKET: &str = "testsupport";
/// The region every store is built with (s3s-fs accepts any).
const REGION: &str = "us-east-1";

/// An S3 server the tests talk to: the external one the environment names
/// (`AWS_ENDPOINT` on loopback, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `OBJECTDEV_TEST_BUCKET`), else one started in
/// this process on 127.0.0.1 with a fresh bucket, stopped (and its files
/// removed) on drop.
pub struct S3Server {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    in_process: Option<InProcess>,
}

/// The parts of a server running in this process.
struct InProcess {
    backend: Backend,
    /// Access key and secret the server accepts.
    auth: (String, String),
    port: u16,
    running: Option<Running>,
}

/// Where a server in this process keeps its objects.
enum Backend {
    /// s3s-fs: one file per object (the latest version only).
    Files(TempDir),
    /// Every version of every object, in memory.
    Versions(Versioned),
}

/// One run of the server: its thread and the signal that ends it.
struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl S3Server {
    /// The external server if the environment names one, else a new one in
    /// this process.
    ///
    /// # Panics
    /// When the environment names a server off loopback (no test reaches
    /// further), or the in-process server cannot start.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start();
    /// assert!(server.endpoint().starts_with("http://127.0.0.1:") || server.is_external());
    /// ```
    pub fn start() -> Self {
        Self::from_env().unwrap_or_else(Self::start_in_process)
    }

    /// A new server in this process, even when the environment names one
    /// (for tests that [stop](Self::stop) and [resume](Self::resume) it).
    ///
    /// # Panics
    /// When it cannot start.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start_in_process();
    /// assert!(!server.is_external());
    /// assert_eq!(server.bucket(), "testsupport");
    /// ```
    pub fn start_in_process() -> Self {
        let root = TempDir::new("s3");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("create the bucket");
        Self::start_backend(Backend::Files(root))
    }

    /// A new server in this process whose bucket keeps every version of
    /// every object, as an S3 bucket with versioning enabled: each PUT
    /// answers a new `versionId`, and GET and HEAD read the version asked
    /// for (`versionId`) or the latest. A DELETE without a version id adds
    /// a delete marker; with one, it removes that version. Objects are
    /// kept in memory; only the operations of object_store's `get_opts`,
    /// `head`, `put` and `delete` are served.
    ///
    /// # Panics
    /// When it cannot start.
    ///
    /// ```
    /// use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
    /// use testsupport::block_on;
    ///
    /// let mut server = testsupport::s3::S3Server::start_versioned();
    /// let store = server.store();
    /// let key = testsupport::s3::unique_key("versions");
    /// let first = block_on(store.put(&key, PutPayload::from_static(b"one")))?;
    /// block_on(store.put(&key, PutPayload::from_static(b"two")))?;
    /// server.stop();
    /// server.resume(); // the versions outlive a stop
    /// let old = GetOptions { version: first.version, ..GetOptions::default() };
    /// let bytes = block_on(async { store.get_opts(&key, old).await?.bytes().await })?;
    /// assert_eq!(&bytes[..], b"one");
    /// # Ok::<(), object_store::Error>(())
    /// ```
    pub fn start_versioned() -> Self {
        Self::start_backend(Backend::Versions(Versioned::with_bucket(BUCKET)))
    }

    fn start_backend(backend: Backend) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let access_key = format!("testsupport-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let secret_key = format!("secret-{}", std::process::id());
        let mut own = InProcess {
            backend,
            auth: (access_key.clone(), secret_key.clone()),
            port: 0,
            running: None,
        };
        own.run(Duration::from_secs(10));
        S3Server {
            endpoint: format!("http://127.0.0.1:{}", own.port),
            bucket: BUCKET.into(),
            access_key,
            secret_key,
            in_process: Some(own),
        }
    }

    fn from_env() -> Option<Self> {
        let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
        let server = S3Server {
            endpoint: var("AWS_ENDPOINT")?,
            bucket: var("OBJECTDEV_TEST_BUCKET")?,
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
            in_process: None,
        };
        assert_loopback(&server.endpoint);
        Some(server)
    }

    /// `http://127.0.0.1:<port>`.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start_in_process();
    /// assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bucket the tests write to.
    ///
    /// ```
    /// assert!(!testsupport::s3::S3Server::start().bucket().is_empty());
    /// ```
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id.
    ///
    /// ```
    /// assert!(!testsupport::s3::S3Server::start().access_key().is_empty());
    /// ```
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key.
    ///
    /// ```
    /// assert!(!testsupport::s3::S3Server::start().secret_key().is_empty());
    /// ```
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Whether the environment named this server (it was not started here).
    ///
    /// ```
    /// assert!(!testsupport::s3::S3Server::start_in_process().is_external());
    /// ```
    pub fn is_external(&self) -> bool {
        self.in_process.is_none()
    }

    /// `s3://<bucket>/<key>`.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start_in_process();
    /// assert_eq!(server.url("a/b"), "s3://testsupport/a/b");
    /// ```
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The store options (object_store's `parse_url_opts` keys) that reach
    /// this server: endpoint, keys, region, plain HTTP.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start_in_process();
    /// let options = server.url_options();
    /// assert!(options.iter().any(|(k, v)| k == "aws_endpoint" && v == server.endpoint()));
    /// ```
    pub fn url_options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_access_key_id", &self.access_key),
            ("aws_secret_access_key", &self.secret_key),
            ("aws_region", REGION),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// A builder of stores over this server's bucket, for a test to adjust.
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start_in_process();
    /// let store = server.builder().with_bucket_name("other").build()?;
    /// # drop(store);
    /// # Ok::<(), object_store::Error>(())
    /// ```
    pub fn builder(&self) -> AmazonS3Builder {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_region(REGION)
            .with_allow_http(true)
    }

    /// A store over the bucket that retries once, quickly, so a stopped
    /// server is an error in about a second rather than minutes.
    ///
    /// # Panics
    /// When the store cannot be built (a test cannot go on).
    ///
    /// ```
    /// let server = testsupport::s3::S3Server::start();
    /// assert!(server.store().to_string().contains("AmazonS3"));
    /// ```
    pub fn store(&self) -> AmazonS3 {
        self.builder()
            .with_retry(quick_retry())
            .build()
            .expect("an S3 store over the test server")
    }

    /// Stops the in-process server: it refuses connections, and those open
    /// are closed, until [`resume`](Self::resume). The bucket's data stays.
    ///
    /// # Panics
    /// For an external server.
    ///
    /// ```
    /// let mut server = testsupport::s3::S3Server::start_in_process();
    /// server.stop();
    /// let port = server.endpoint().rsplit(':').next().unwrap().to_owned();
    /// assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    /// server.resume();
    /// assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok());
    /// ```
    pub fn stop(&mut self) {
        self.own().stop();
    }

    /// Starts the in-process server again, on the same port and data.
    ///
    /// # Panics
    /// For an external server, or when the port cannot be bound again
    /// within 10 s.
    ///
    /// ```
    /// let mut server = testsupport::s3::S3Server::start_in_process();
    /// server.stop();
    /// server.resume();
    /// ```
    pub fn resume(&mut self) {
        self.own().run(Duration::from_secs(10));
    }

    fn own(&mut self) -> &mut InProcess {
        self.in_process
            .as_mut()
            .expect("only a server started in this process can be stopped")
    }
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("in_process", &self.in_process.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(own) = &mut self.in_process {
            own.stop();
        }
    }
}

impl InProcess {
    /// Starts a run on `self.port` (a free one when 0), retrying the bind
    /// for up to `patience` (the previous run's port may be in TIME_WAIT).
    fn run(&mut self, patience: Duration) {
        assert!(self.running.is_none(), "the server is already running");
        let deadline = Instant::now() + patience;
        loop {
            match self.try_run() {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot start the S3 server on 127.0.0.1:{}: {e}", self.port),
            }
        }
    }

    fn try_run(&mut self) -> std::io::Result<()> {
        let mut service = match &self.backend {
            Backend::Files(root) => S3ServiceBuilder::new(
                s3s_fs::FileSystem::new(root.path())
                    .map_err(|e| std::io::Error::other(format!("s3s-fs: {e:?}")))?,
            ),
            Backend::Versions(versions) => S3ServiceBuilder::new(versions.clone()),
        };
        let (access_key, secret_key) = &self.auth;
        service.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let service = service.build();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let (bound_tx, bound_rx) = mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("s3-server")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match bind(address) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = bound_tx.send(listener.local_addr());
                    tokio::spawn(async move {
                        let connections = ConnectionBuilder::new(TokioExecutor::new());
                        while let Ok((socket, _)) = listener.accept().await {
                            let connection = connections
                                .serve_connection(TokioIo::new(socket), service.clone())
                                .into_owned();
                            tokio::spawn(connection);
                        }
                    });
                    // Until stopped, or the server is dropped.
                    let _ = stop_rx.await;
                });
                // Dropping the runtime here, outside it, drops every task:
                // the listener and all connections are closed when the
                // thread ends.
                drop(runtime);
            })?;
        match bound_rx.recv() {
            Ok(Ok(local)) => {
                self.port = local.port();
                self.running = Some(Running { stop, thread });
                Ok(())
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other("the S3 server thread died"))
            }
        }
    }

    /// Ends the run and waits until its sockets are closed.
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }
}

/// A listening socket on `address` that can take a port still in TIME_WAIT.
fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

/// One quick retry: a stopped server is an error in about a second.
///
/// ```
/// assert_eq!(testsupport::s3::quick_retry().max_retries, 1);
/// ```
pub fn quick_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            base: 2.0,
        },
        max_retries: 1,
        retry_timeout: Duration::from_secs(2),
    }
}

/// Panics unless `endpoint` is on this machine: no test reaches further.
///
/// ```
/// testsupport::s3::assert_loopback("http://127.0.0.1:9000");
/// assert!(std::panic::catch_unwind(|| testsupport::s3::assert_loopback("http://example.com")).is_err());
/// ```
pub fn assert_loopback(endpoint: &str) {
    let url = url::Url::parse(endpoint).unwrap_or_else(|e| panic!("bad endpoint {endpoint}: {e}"));
    let host = url.host_str().unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "tests only talk to a server on loopback, not {endpoint}"
    );
}

/// A key no other test (or run) uses: `tests/<label>-<pid>-<n>`.
///
/// ```
/// assert_ne!(testsupport::s3::unique_key("a"), testsupport::s3::unique_key("a"));
/// ```
pub fn unique_key(label: &str) -> ObjectPath {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    ObjectPath::from(format!(
        "tests/{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Uploads `bytes` to `key` (one PUT), from a plain thread.
///
/// # Panics
/// When the PUT fails (a test cannot go on).
///
/// ```
/// use object_store::memory::InMemory;
///
/// let store = InMemory::new();
/// testsupport::s3::upload(&store, &"k".into(), b"abc");
/// ```
pub fn upload(store: &dyn ObjectStore, key: &ObjectPath, bytes: &[u8]) {
    crate::block_on(store.put(key, PutPayload::from(bytes.to_vec())))
        .expect("upload to the test store");
}
