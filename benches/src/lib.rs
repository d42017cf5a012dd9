//! Shared helpers for the benchmarks in `benches/`.

use std::path::PathBuf;

/// The directory where a bench writes an extra markdown table (such as a
/// hit-ratio table) for `cargo xtask bench` to append to
/// `target/bench-report.md`.
///
/// `cargo xtask bench` sets `BENCH_EXTRA_DIR` to `<target dir>/bench-extra`;
/// under a plain `cargo bench` this falls back to `bench-extra` in
/// `CARGO_TARGET_DIR` or the workspace's `target/`. The directory may not
/// exist yet: create it before writing.
///
/// ```
/// let dir = benches::extra_report_dir();
/// assert!(dir.ends_with("bench-extra"));
/// ```
pub fn extra_report_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_EXTRA_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("bench-extra")
}
