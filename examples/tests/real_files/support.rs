//! Helpers of the real-file tests: scratch directories (testsupport's),
//! finding the tools, running them, and the cache shapes every file is read
//! with.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockdev::ReadAt;
use pagecache::PageCache;
// Scratch directories; noise, which compresses badly, so packs and
// databases get real sizes.
pub(crate) use testsupport::{TempDir, noise};

/// Page size and capacity of each cache a file is read through: the
/// default, a tiny one where most multi-byte reads straddle two pages and
/// pages are evicted all the time, and a one-byte page.
pub(crate) const GEOMETRIES: [(usize, usize); 3] = [(4096, 1024), (64, 4), (1, 1)];

/// One cache per entry of [`GEOMETRIES`], each over its own clone of `device`.
pub(crate) fn caches<D: ReadAt + Clone>(device: &D) -> Vec<PageCache<D>> {
    GEOMETRIES
        .iter()
        .map(|&(page_size, capacity)| {
            PageCache::with_geometry(device.clone(), page_size, capacity)
                .expect("every test geometry is valid")
        })
        .collect()
}

/// The same, over files opened from `path`.
pub(crate) fn file_caches(path: &Path) -> Vec<PageCache<fs::File>> {
    GEOMETRIES
        .iter()
        .map(|&(page_size, capacity)| {
            let file = fs::File::open(path).expect("the tool wrote this file");
            PageCache::with_geometry(file, page_size, capacity).expect("valid geometry")
        })
        .collect()
}

/// Whether this is a CI run, where an absent tool is a failure.
pub(crate) fn on_ci() -> bool {
    env::var("CI").is_ok_and(|value| {
        !value.is_empty() && value != "0" && !value.eq_ignore_ascii_case("false")
    })
}

/// The path of the tool `name`, searched in `PATH` and then in the sbin
/// directories (where `mkfs.ext4` and `dumpe2fs` live, often outside a
/// user's `PATH`).
///
/// When it is absent, says so on stderr and returns `None` so the test can
/// stop early; under CI (`CI` set) it panics instead, failing the test.
pub(crate) fn require_tool(name: &str) -> Option<PathBuf> {
    let path_dirs = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate));
    if found.is_none() {
        let message = format!(
            "real-file test not run: `{name}` is not installed \
             (.ci/run installs it; set CI=true to make this a failure)"
        );
        assert!(!on_ci(), "{message}, and CI is set");
        eprintln!("{message}");
    }
    found
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `command`, panicking with its stderr unless it succeeds; returns
/// its stdout.
pub(crate) fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

#[test]
fn an_absent_tool_is_skipped_outside_ci_and_fails_under_ci() {
    let found = std::panic::catch_unwind(|| require_tool("pagecache-no-such-tool"));
    if on_ci() {
        assert!(found.is_err(), "under CI an absent tool fails the test");
    } else {
        assert_eq!(found.ok(), Some(None));
    }
}
