//! Helpers shared by the integration tests: temporary directories and
//! caches over in-memory, fault-injecting or gated devices.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blockdev::{FaultyDevice, MemDevice};
use parking_lot::Mutex;
use spillcache::{Builder, Error, SpillCache};

pub mod gate;
pub mod hooked;
pub mod panicky;

/// Long enough for a loaded CI machine; tests normally finish in microseconds.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "spillcache-{tag}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
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

/// A builder whose files are in-memory devices.
pub fn mem_builder() -> Builder<MemDevice> {
    Builder::with_file_factory(|| Ok(MemDevice::new()))
}

/// Programs faults into a newly made device.
type Setup = Box<dyn Fn(&FaultyDevice<MemDevice>) + Send>;

/// The fault-injecting devices a cache has made, newest last, so a test can
/// program faults into the file in use or the next defrag target.
#[derive(Clone, Default)]
pub struct Devices {
    made: Arc<Mutex<Vec<Arc<FaultyDevice<MemDevice>>>>>,
    /// Applied to every new device.
    setup: Arc<Mutex<Option<Setup>>>,
}

impl Devices {
    pub fn builder(&self) -> Builder<Arc<FaultyDevice<MemDevice>>> {
        let devices = self.clone();
        Builder::with_file_factory(move || {
            let device = Arc::new(FaultyDevice::new(MemDevice::new()));
            if let Some(setup) = &*devices.setup.lock() {
                setup(&device);
            }
            devices.made.lock().push(Arc::clone(&device));
            Ok(device)
        })
        .retry_backoff(Duration::from_micros(100), Duration::from_millis(2))
    }

    /// The newest device (the one in use, unless a defrag failed after it).
    pub fn latest(&self) -> Arc<FaultyDevice<MemDevice>> {
        Arc::clone(self.made.lock().last().expect("a device was made"))
    }

    pub fn count(&self) -> usize {
        self.made.lock().len()
    }

    pub fn on_new(&self, setup: impl Fn(&FaultyDevice<MemDevice>) + Send + 'static) {
        *self.setup.lock() = Some(Box::new(setup));
    }
}

/// Waits until everything is written, retrying through write errors;
/// returns how many `WriteFailed` errors were reported on the way.
pub fn wait_through_errors<D>(cache: &SpillCache<D>) -> usize
where
    D: blockdev::ReadAt + blockdev::WriteAt + Send + Sync + 'static,
{
    let mut errors = 0;
    loop {
        match cache.wait_for_write(WAIT) {
            Ok(true) => return errors,
            Ok(false) => panic!("wait_for_write timed out"),
            Err(Error::WriteFailed(_)) => errors += 1,
            Err(e) => panic!("wait_for_write: {e}"),
        }
        assert!(errors < 100_000, "writes never succeed");
    }
}

/// A tmpfs of a given size mounted on a fresh directory, unmounted on drop.
pub struct SmallFs {
    dir: TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`, e.g. `"2m"`), or
    /// returns why it cannot. Under CI (env `CI` set) failing to mount is a
    /// test failure, not a reason to skip: CI runs as root.
    pub fn mount(size: &str) -> Option<Self> {
        let dir = TempDir::new("tmpfs");
        let result = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        let reason = match result {
            Ok(out) if out.status.success() => return Some(SmallFs { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (run as root): {reason}"
        );
        eprintln!("skipped: cannot mount a {size} tmpfs: {reason}");
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}
