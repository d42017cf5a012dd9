//! Opening a device: by URL (with store options, retries, deadline, part
//! size, version) or over a store the caller built.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{BackoffConfig, ObjectMeta, ObjectStore, RetryConfig};
use tokio::runtime::Handle;

use crate::device::{DEFAULT_DEADLINE, DEFAULT_PART_SIZE, Identity, ObjectDevice, Settings, put};
use crate::error::Error;
use crate::location::locate;
use crate::runtime::Executor;

/// Default number of retries of a failed request of a store opened by URL:
/// 3 (object_store's default is 10).
///
/// ```
/// assert_eq!(objectdev::DEFAULT_MAX_RETRIES, 3);
/// ```
pub const DEFAULT_MAX_RETRIES: usize = 3;

/// Default time after a request's first try past which it is not retried,
/// for a store opened by URL: 10 s (object_store's default is 3 minutes).
///
/// ```
/// assert_eq!(objectdev::DEFAULT_RETRY_TIMEOUT, std::time::Duration::from_secs(10));
/// ```
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prefixes of the environment variables [`ObjectDevice::open`] passes on
/// as options (lower-cased, as object_store's keys are).
const ENV_PREFIXES: [&str; 2] = ["AWS_", "OBJECTDEV_"];

/// Options of ours among a URL's options; the rest go to the store.
const OPTION_MAX_RETRIES: &str = "objectdev_max_retries";
const OPTION_RETRY_TIMEOUT: &str = "objectdev_retry_timeout";
const OPTION_DEADLINE: &str = "objectdev_deadline";
const OPTION_PART_SIZE: &str = "objectdev_part_size";

/// How to open an [`ObjectDevice`]: retries, deadline, part size, version,
/// runtime, store options. Made by [`ObjectDevice::builder`].
///
/// | setting | default | applies to |
/// |---|---|---|
/// | [`max_retries`](Self::max_retries) | [`DEFAULT_MAX_RETRIES`] (3) | stores opened by URL |
/// | [`retry_timeout`](Self::retry_timeout) | [`DEFAULT_RETRY_TIMEOUT`] (10 s) | stores opened by URL |
/// | [`deadline`](Self::deadline) of one read, retries included | [`DEFAULT_DEADLINE`] (20 s) | every device |
/// | [`part_size`](Self::part_size) | [`DEFAULT_PART_SIZE`] (8 MiB) | every device |
///
/// A store passed to [`build`](Self::build) keeps its own retry settings.
///
/// ```
/// use std::time::Duration;
/// use objectdev::ObjectDevice;
///
/// let path = std::env::temp_dir().join(format!("objectdev-builder-{}", std::process::id()));
/// std::fs::write(&path, b"built")?;
/// let dev = ObjectDevice::builder()
///     .max_retries(1)
///     .deadline(Duration::from_secs(5))
///     .part_size(1 << 20)
///     .open(&format!("file://{}", path.display()))?;
/// assert_eq!((dev.deadline(), dev.part_size()), (Duration::from_secs(5), 1 << 20));
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ObjectDeviceBuilder {
    options: Vec<(String, String)>,
    max_retries: usize,
    retry_timeout: Duration,
    deadline: Duration,
    part_size: u64,
    version: Option<String>,
    handle: Option<Handle>,
}

impl Default for ObjectDeviceBuilder {
    fn default() -> Self {
        ObjectDeviceBuilder {
            options: Vec::new(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            part_size: DEFAULT_PART_SIZE,
            version: None,
            handle: None,
        }
    }
}

impl ObjectDeviceBuilder {
    /// Retries of a failed request (stores opened by URL).
    ///
    /// ```
    /// let builder = objectdev::ObjectDevice::builder().max_retries(0);
    /// # drop(builder);
    /// ```
    pub fn max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// Time after a request's first try past which it is not retried
    /// (stores opened by URL).
    ///
    /// ```
    /// let builder = objectdev::ObjectDevice::builder().retry_timeout(std::time::Duration::from_secs(2));
    /// # drop(builder);
    /// ```
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// Longest time one read (or the opening HEAD) may take, all its parts
    /// and retries included; past it the read fails with
    /// [`Error::Deadline`].
    ///
    /// ```
    /// let builder = objectdev::ObjectDevice::builder().deadline(std::time::Duration::from_secs(3));
    /// # drop(builder);
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Part size of large reads (see [`ObjectDevice::with_part_size`];
    /// checked when the device is opened).
    ///
    /// ```
    /// let builder = objectdev::ObjectDevice::builder().part_size(4 << 20);
    /// # drop(builder);
    /// ```
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Reads this version of the object (S3's `versionId`; what
    /// object_store's `GetOptions::version` means for the store) instead
    /// of the latest. Opening fails with [`Error::VersionNotFound`] if the
    /// store has no such version, and with [`Error::InvalidOption`] if it
    /// does not answer for that version (it ignores versions). The device
    /// reads that version only: [`refresh`](blockdev::ReadAt::refresh)
    /// finds it unchanged however the object is overwritten.
    ///
    /// ```
    /// let builder = objectdev::ObjectDevice::builder().version("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
    /// # drop(builder);
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Runs the requests on the caller's runtime (see
    /// [`ObjectDevice::with_handle`] for what it must be) instead of the
    /// device's own.
    ///
    /// ```
    /// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    /// let builder = objectdev::ObjectDevice::builder().runtime(runtime.handle().clone());
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Adds store options (object_store's keys, e.g.
    /// `("aws_endpoint", "http://127.0.0.1:9000")`), and ours:
    /// `objectdev_max_retries`, `objectdev_retry_timeout`,
    /// `objectdev_deadline`, `objectdev_part_size` (durations as `500ms`,
    /// `5s`, `2m` or seconds; sizes in bytes).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a value of ours that does not parse.
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::builder()
    ///     .options([("objectdev_deadline", "1500ms")])?
    ///     .build_from_bytes(vec![1, 2, 3])?;
    /// assert_eq!(dev.deadline(), std::time::Duration::from_millis(1500));
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn options<I, K, V>(mut self, options: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        for (key, value) in options {
            let (key, value) = (key.as_ref().to_ascii_lowercase(), value.into());
            match key.as_str() {
                OPTION_MAX_RETRIES => self.max_retries = parse_number(OPTION_MAX_RETRIES, &value)?,
                OPTION_RETRY_TIMEOUT => {
                    self.retry_timeout = parse_duration(OPTION_RETRY_TIMEOUT, &value)?;
                }
                OPTION_DEADLINE => self.deadline = parse_duration(OPTION_DEADLINE, &value)?,
                OPTION_PART_SIZE => self.part_size = parse_number(OPTION_PART_SIZE, &value)?,
                _ => self.options.push((key, value)),
            }
        }
        Ok(self)
    }

    /// Opens the object `url` names (see [`ObjectDevice::open`] for the
    /// schemes); makes one HEAD request.
    ///
    /// # Errors
    /// As [`ObjectDevice::open_with_options`].
    ///
    /// ```
    /// let err = objectdev::ObjectDevice::builder().open("s3://bucket").unwrap_err();
    /// assert!(err.to_string().contains("not an object"), "{err}");
    /// ```
    pub fn open(self, url: &str) -> Result<ObjectDevice, Error> {
        let location = locate(url, &self.options, &self.retry())?;
        let builder = match location.version {
            Some(version) => self.version(version),
            None => self,
        };
        builder.build(location.store, location.path)
    }

    /// A device over `path` in `store` (whose retries are its own); makes
    /// one HEAD request.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a part size below
    /// [`MIN_PART_SIZE`](crate::MIN_PART_SIZE); else as
    /// [`ObjectDevice::new`] and [`ObjectDevice::with_handle`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    ///
    /// let err = objectdev::ObjectDevice::builder().build(Arc::new(InMemory::new()), "absent".into());
    /// assert!(matches!(err, Err(objectdev::Error::Store(object_store::Error::NotFound { .. }))));
    /// ```
    pub fn build(self, store: Arc<dyn ObjectStore>, path: Path) -> Result<ObjectDevice, Error> {
        let executor = self.executor()?;
        self.assemble(store, path, executor)
    }

    /// A device over an in-memory object holding `bytes` (for examples and
    /// tests).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::builder().build_from_bytes(vec![0; 4])?;
    /// assert_eq!(dev.identity().size, 4);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn build_from_bytes(self, bytes: Vec<u8>) -> Result<ObjectDevice, Error> {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("object");
        let executor = self.executor()?;
        put(&executor, &store, &path, bytes)?;
        self.assemble(store, path, executor)
    }

    /// A device over the object `meta` describes (its location, size and
    /// ETag, from a HEAD or a listing the caller made): it makes no
    /// request, and reads only that version, as a device opened by
    /// [`build`](Self::build) reads the version its HEAD found (a
    /// replaced object fails reads with [`Error::ObjectChanged`]).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a part size below
    /// [`MIN_PART_SIZE`](crate::MIN_PART_SIZE), or when a
    /// [`version`](Self::version) was set and `meta` is of another;
    /// [`Error::Runtime`] and [`Error::UnusableRuntime`] as
    /// [`build`](Self::build).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use blockdev::ReadAt;
    /// use object_store::{memory::InMemory, path::Path, ObjectStore, ObjectStoreExt};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    /// let store = Arc::new(InMemory::new());
    /// let path = Path::from("k");
    /// runtime.block_on(store.put(&path, b"known".to_vec().into()))?;
    /// let meta = runtime.block_on(store.head(&path))?;
    /// let dev = objectdev::ObjectDevice::builder()
    ///     .runtime(runtime.handle().clone())
    ///     .part_size(1 << 20)
    ///     .build_from_meta(store, meta)?;
    /// let mut buf = [0u8; 5];
    /// dev.read_exact_at(0, &mut buf)?;
    /// assert_eq!(&buf, b"known");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_from_meta(
        self,
        store: Arc<dyn ObjectStore>,
        meta: ObjectMeta,
    ) -> Result<ObjectDevice, Error> {
        crate::device::check_part_size(self.part_size)?;
        if let Some(wanted) = &self.version
            && meta.version.as_deref() != Some(wanted.as_str())
        {
            return Err(Error::InvalidOption {
                option: "version",
                reason: format!(
                    "the metadata given is of version {:?}, not {wanted:?}",
                    meta.version.as_deref().unwrap_or("none")
                ),
            });
        }
        let executor = self.executor()?;
        let settings = Settings {
            deadline: self.deadline,
            version: self.version,
        };
        let identity = Identity::from(&meta);
        ObjectDevice::assemble_known(store, meta.location, executor, settings, identity)
            .with_part_size(self.part_size)
    }

    fn executor(&self) -> Result<Executor, Error> {
        match &self.handle {
            Some(handle) => Executor::borrowed(handle.clone()),
            None => Executor::own(),
        }
    }

    fn assemble(
        self,
        store: Arc<dyn ObjectStore>,
        path: Path,
        executor: Executor,
    ) -> Result<ObjectDevice, Error> {
        let settings = Settings {
            deadline: self.deadline,
            version: self.version.clone(),
        };
        let part_size = self.part_size;
        // Checked before the HEAD, so a bad size costs no request.
        crate::device::check_part_size(part_size)?;
        let location = path.to_string();
        ObjectDevice::assemble(store, path, executor, settings)
            .map_err(|e| match (e, self.version) {
                // S3 answers a HEAD of an unknown version 404, as for an
                // unknown key: say which version was asked for.
                (Error::Store(source @ object_store::Error::NotFound { .. }), Some(version)) => {
                    Error::VersionNotFound {
                        path: location,
                        version,
                        source,
                    }
                }
                (e, _) => e,
            })?
            .with_part_size(part_size)
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

fn parse_number<T: std::str::FromStr>(option: &'static str, value: &str) -> Result<T, Error> {
    value.trim().parse().map_err(|_| Error::InvalidOption {
        option,
        reason: format!("{value:?} is not a whole number"),
    })
}

/// `500ms`, `5s`, `2m`, or a number of seconds (`1.5`).
fn parse_duration(option: &'static str, value: &str) -> Result<Duration, Error> {
    let text = value.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => f64::NAN,
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| Error::InvalidOption {
            option,
            reason: format!("{value:?} is not a duration (500ms, 5s, 2m, or seconds)"),
        })
}

impl ObjectDevice {
    /// A builder of devices with settings other than the defaults
    /// (retries, deadline, part size, version, runtime).
    ///
    /// ```
    /// let dev = objectdev::ObjectDevice::builder().build_from_bytes(vec![7; 3])?;
    /// assert_eq!(dev.deadline(), objectdev::DEFAULT_DEADLINE);
    /// # Ok::<(), objectdev::Error>(())
    /// ```
    pub fn builder() -> ObjectDeviceBuilder {
        ObjectDeviceBuilder::default()
    }

    /// A device over the object `meta` describes, with its own runtime;
    /// makes no request (the caller's HEAD or listing gave the size and
    /// ETag). See [`ObjectDeviceBuilder::build_from_meta`].
    ///
    /// # Errors
    /// [`Error::Runtime`] when the runtime cannot start.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use blockdev::ReadAt;
    /// use object_store::{memory::InMemory, path::Path, ObjectStore, ObjectStoreExt};
    ///
    /// let store = Arc::new(InMemory::new());
    /// let path = Path::from("k");
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(store.put(&path, b"abc".to_vec().into()))?;
    /// let meta = runtime.block_on(store.head(&path))?;
    /// let dev = objectdev::ObjectDevice::from_meta(store, meta)?;
    /// assert_eq!(dev.size()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_meta(store: Arc<dyn ObjectStore>, meta: ObjectMeta) -> Result<Self, Error> {
        Self::builder().build_from_meta(store, meta)
    }

    /// Opens the object a URL names, with options taken from the
    /// environment: every `AWS_*` and `OBJECTDEV_*` variable, lower-cased
    /// (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`, `AWS_TIMEOUT`, ...,
    /// `OBJECTDEV_DEADLINE`, `OBJECTDEV_MAX_RETRIES`, ... as in
    /// [`ObjectDeviceBuilder::options`]). Starts the device's own runtime
    /// and makes one HEAD request.
    ///
    /// The URLs: `s3://bucket/key` (and `s3a://`, S3's https URLs;
    /// `?versionId=` reads that version), `file:///path`, `memory:///key`
    /// (an empty store); with cargo features, `gs://bucket/key` (`gcp`),
    /// `az://container/key` and `abfs://` (`azure`), `http(s)://host/path`
    /// (`http`). Retries: [`DEFAULT_MAX_RETRIES`], no retry past
    /// [`DEFAULT_RETRY_TIMEOUT`]; each read has
    /// [`DEFAULT_DEADLINE`](crate::DEFAULT_DEADLINE).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that does not parse, names a bucket
    /// without a key, a store this build lacks (the message names the
    /// feature), or a query it would ignore; [`Error::InvalidOption`] for
    /// an `OBJECTDEV_*` value that does not parse; [`Error::Store`] when
    /// the store cannot be built or the HEAD fails (`NotFound` for a
    /// missing object); [`Error::Deadline`] when the HEAD takes too long.
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
        Self::builder().options(env_options())?.open(url)
    }

    /// Opens the object a URL names with the given options (as
    /// [`ObjectDeviceBuilder::options`] takes them), and nothing from the
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
        Self::builder().options(options)?.open(url)
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
        let builder = Self::builder().options(env_options())?;
        let location = locate(url, &builder.options, &builder.retry())?;
        let executor = builder.executor()?;
        put(&executor, &location.store, &location.path, bytes)?;
        let builder = match location.version {
            Some(version) => builder.version(version),
            None => builder,
        };
        builder.assemble(location.store, location.path, executor)
    }
}

/// The options in the environment: every `AWS_*` and `OBJECTDEV_*`
/// variable, lower-cased.
fn env_options() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter_map(|(key, value)| {
        ENV_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
            .then(|| (key.to_ascii_lowercase(), value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_bad_ones_are_errors() {
        let parse = |text| parse_duration(OPTION_DEADLINE, text);
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5h", "-1s", "fast", "NaN"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
