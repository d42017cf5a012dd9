//! The S3 server the tests talk to: found through the environment that
//! `.ci/run` exports, loopback only; stores with short retries; a server
//! of the test's own for fault injection.
#![allow(dead_code, unreachable_pub)]

use std::env;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use objectdev::CountingStore;

/// How to reach an S3 server: endpoint, bucket, keys.
#[derive(Clone, Debug)]
pub struct Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Whether this is a CI run, where an absent server is a failure.
pub fn on_ci() -> bool {
    env::var("CI").is_ok_and(|value| {
        !value.is_empty() && value != "0" && !value.eq_ignore_ascii_case("false")
    })
}

/// Panics unless `endpoint` is on this machine: no test reaches further.
pub fn assert_loopback(endpoint: &str) {
    let url = url::Url::parse(endpoint).unwrap_or_else(|e| panic!("bad endpoint {endpoint}: {e}"));
    let host = url.host_str().unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "tests only talk to a server on loopback, not {endpoint}"
    );
}

/// The server `.ci/run` started (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, and `OBJECTDEV_TEST_BUCKET` naming its bucket).
/// Absent: `None` with a printed reason, or a panic under CI.
pub fn server() -> Option<Server> {
    let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Server {
            endpoint: var("AWS_ENDPOINT")?,
            bucket: var("OBJECTDEV_TEST_BUCKET")?,
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
        })
    })();
    match found {
        Some(server) => {
            assert_loopback(&server.endpoint);
            Some(server)
        }
        None => {
            let message = "S3 test not run: no server (set AWS_ENDPOINT, AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY and OBJECTDEV_TEST_BUCKET; .ci/run starts s3s-fs)";
            assert!(!on_ci(), "{message}, and CI is set");
            eprintln!("{message}");
            None
        }
    }
}

/// A store over `server`'s bucket that retries once, quickly, so a stopped
/// server is an error in about a second rather than minutes.
pub fn store(server: &Server) -> Arc<dyn ObjectStore> {
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            base: 2.0,
        },
        max_retries: 1,
        retry_timeout: Duration::from_secs(2),
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_bucket_name(&server.bucket)
        .with_access_key_id(&server.access_key)
        .with_secret_access_key(&server.secret_key)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_retry(retry)
        .build()
        .expect("an S3 store over the test server");
    Arc::new(store)
}

/// A counting store over `server`.
pub fn counting(server: &Server) -> Arc<CountingStore> {
    Arc::new(CountingStore::new(store(server)))
}

/// A key no other test (or run) uses.
pub fn unique_key(label: &str) -> ObjectPath {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    ObjectPath::from(format!(
        "objectdev-tests/{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs a future on a throwaway runtime (uploads and replacements).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// Uploads `bytes` to `key`.
pub fn upload(store: &dyn ObjectStore, key: &ObjectPath, bytes: &[u8]) {
    block_on(store.put(key, PutPayload::from(bytes.to_vec()))).expect("upload to the test server");
}

/// `len` bytes of xorshift noise from `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = env::temp_dir().join(format!(
            "objectdev-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An s3s-fs server of the test's own on 127.0.0.1, which the test can
/// stop and start again on the same port and data.
pub struct OwnServer {
    binary: PathBuf,
    root: TempDir,
    port: u16,
    child: Option<Child>,
    pub server: Server,
}

impl OwnServer {
    /// Starts one, or `None` (a panic under CI) when the s3s-fs binary is
    /// not found (`OBJECTDEV_S3S_FS`, else `PATH`).
    pub fn start() -> Option<Self> {
        let binary = env::var_os("OBJECTDEV_S3S_FS")
            .map(PathBuf::from)
            .or_else(|| {
                env::split_paths(&env::var_os("PATH")?)
                    .map(|dir| dir.join("s3s-fs"))
                    .find(|path| path.is_file())
            });
        let Some(binary) = binary else {
            let message = "fault test not run: no s3s-fs binary (set OBJECTDEV_S3S_FS or put \
                 it in PATH; .ci/run installs it)";
            assert!(!on_ci(), "{message}, and CI is set");
            eprintln!("{message}");
            return None;
        };
        let root = TempDir::new("own-server");
        let bucket = "faults";
        std::fs::create_dir_all(root.path().join(bucket)).expect("create the bucket");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.into(),
            access_key: "own-key".into(),
            secret_key: "own-secret".into(),
        };
        let mut own = OwnServer {
            binary,
            root,
            port,
            child: None,
            server,
        };
        own.resume();
        Some(own)
    }

    /// Starts the server process (again) and waits until it accepts.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.server.access_key])
            .args(["--secret-key", &self.server.secret_key])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server process and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}
