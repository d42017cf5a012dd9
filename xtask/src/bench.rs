//! `cargo xtask bench`: runs the criterion benches and reports them as one table.
//!
//! The comparisons come from `benches/targets.txt`; the times from criterion's
//! `<target>/criterion/<id>/new/estimates.json` (mean point estimate, ns per
//! iteration). The markdown report goes to `<target>/bench-report.md`, followed
//! by every `<target>/bench-extra/*.md` a bench wrote (the benches find that
//! directory in the `BENCH_EXTRA_DIR` environment variable).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::flags::BenchFlags;
use crate::report::{self, Row};
use crate::{TaskResult, json, machine, targets};

/// Criterion's defaults for the short run. Benches that set their own group
/// times keep them; these only shorten benches that rely on criterion's
/// defaults (3 s warm-up, 5 s measurement), so the whole run stays short.
const SHORT_RUN_ARGS: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "2"];

/// Runs the benches (unless `--report-only`), prints the table, writes the report.
pub(crate) fn run(root: &Path, flags: &BenchFlags) -> TaskResult {
    let targets_path = root.join("benches/targets.txt");
    let targets_text = fs::read_to_string(&targets_path)
        .map_err(|err| format!("cannot read {}: {err}", targets_path.display()))?;
    // Parse before running, so a typo fails in a second rather than after the run.
    let comparisons = targets::parse(&targets_text)?;
    let target_dir = target_dir(root)?;
    let criterion_dir = target_dir.join("criterion");
    let extra_dir = target_dir.join("bench-extra");

    let started = SystemTime::now();
    let mut bench_status = Ok(());
    if !flags.report_only {
        fs::create_dir_all(&extra_dir)?;
        let mut cargo = Command::new("cargo");
        cargo
            .current_dir(root)
            .args(["bench", "--package", "benches", "--", "--noplot"])
            .env("BENCH_EXTRA_DIR", &extra_dir);
        if flags.full {
            cargo.env("BENCH_FULL", "1");
        } else {
            cargo.args(SHORT_RUN_ARGS).env_remove("BENCH_FULL");
        }
        if let Some(filter) = &flags.filter {
            cargo.arg(filter);
        }
        bench_status = crate::check(crate::run(&mut cargo)?, "cargo bench");
    }
    // After a run, results it did not write are stale: report them as missing.
    let fresh_since = (!flags.report_only).then_some(started);

    let mut problems: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for comparison in &comparisons {
        rows.push(Row::measure(comparison, |id| {
            match read_mean_ns(&criterion_dir, id, fresh_since) {
                Ok(ns) => Some(ns),
                Err(problem) => {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                    None
                }
            }
        }));
    }

    let table = report::render_table(&rows);
    let summary = report::summary(&rows);
    let when = machine::utc_timestamp(SystemTime::now());
    let machine = machine::describe();
    let mode = if flags.full { "full run" } else { "short run" };
    println!("\n{table}\n{summary}");
    for problem in &problems {
        println!("missing: {problem}");
    }

    let extras = extra_reports(&extra_dir, fresh_since)?;
    let report_path = target_dir.join("bench-report.md");
    let mut markdown = format!(
        "## Benchmarks\n\n\
         Measured {when} on {machine} by `cargo xtask bench` ({mode}).\n\
         Ratio = best peer's time / our time per iteration, so above 1 means ours is faster;\n\
         target = the least ratio that meets the goal.\n\n\
         {table}\n{summary}\n"
    );
    for (path, text) in &extras {
        println!("\nincluded {}", path.display());
        markdown.push('\n');
        markdown.push_str(text.trim_end());
        markdown.push('\n');
    }
    fs::write(&report_path, markdown)
        .map_err(|err| format!("cannot write {}: {err}", report_path.display()))?;
    println!("\nwrote {} ({when}; {machine})", report_path.display());

    bench_status?;
    if flags.filter.is_none() && !problems.is_empty() {
        return Err(format!(
            "{} benchmark result(s) missing: is every id in benches/targets.txt a real criterion id?",
            problems.len()
        )
        .into());
    }
    Ok(())
}

/// The workspace's target directory, as cargo itself resolves it
/// (`CARGO_TARGET_DIR`, `build.target-dir`, or `<root>/target`).
fn target_dir(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let output = Command::new("cargo")
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|err| format!("cannot run cargo metadata: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata = json::parse(&String::from_utf8_lossy(&output.stdout))?;
    metadata
        .get("target_directory")
        .and_then(json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".into())
}

/// The mean time per iteration (ns) of criterion id `id`, or why there is none.
fn read_mean_ns(
    criterion_dir: &Path,
    id: &str,
    fresh_since: Option<SystemTime>,
) -> Result<f64, String> {
    let path = criterion_dir.join(id).join("new/estimates.json");
    let text = fs::read_to_string(&path).map_err(|_| format!("{id}: no {}", path.display()))?;
    if let Some(since) = fresh_since {
        let modified = fs::metadata(&path).and_then(|meta| meta.modified());
        if modified.is_ok_and(|modified| modified < since) {
            return Err(format!(
                "{id}: {} is older than this run (the benchmark did not run)",
                path.display()
            ));
        }
    }
    mean_point_estimate(&text).map_err(|err| format!("{id}: {}: {err}", path.display()))
}

/// `mean.point_estimate` of a criterion `estimates.json`, in nanoseconds.
pub(crate) fn mean_point_estimate(text: &str) -> Result<f64, String> {
    let estimates = json::parse(text).map_err(|err| err.to_string())?;
    let mean = estimates
        .get("mean")
        .and_then(|mean| mean.get("point_estimate"))
        .and_then(json::Value::as_f64)
        .ok_or("no mean.point_estimate number")?;
    if mean.is_finite() && mean > 0.0 {
        Ok(mean)
    } else {
        Err(format!("mean.point_estimate {mean} is not a positive time"))
    }
}

/// The `*.md` files in `dir`, sorted by name, and only those written since
/// `fresh_since` when given. A missing directory has none.
fn extra_reports(
    dir: &Path,
    fresh_since: Option<SystemTime>,
) -> Result<Vec<(PathBuf, String)>, Box<dyn std::error::Error>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let fresh = match fresh_since {
            Some(since) => entry.metadata()?.modified()? >= since,
            None => true,
        };
        if path.extension().is_some_and(|ext| ext == "md") && fresh {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            Ok((path, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape criterion 0.8 serializes its `Estimates` in (illustrative numbers).
    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.2219,"upper_bound":1.2415},"point_estimate":1.2309,"standard_error":0.0050},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.2190,"upper_bound":1.2285},"point_estimate":1.2242,"standard_error":0.0026},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.0091,"upper_bound":0.0213},"point_estimate":0.0143,"standard_error":0.0031},"slope":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.2216,"upper_bound":1.2318},"point_estimate":1.2262,"standard_error":0.0026},"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.0316,"upper_bound":0.0666},"point_estimate":0.0502,"standard_error":0.0089}}"#;

    #[test]
    fn reads_the_mean_not_the_median_or_slope() {
        assert_eq!(mean_point_estimate(ESTIMATES), Ok(1.2309));
    }

    #[test]
    fn reads_a_flat_sampling_result_without_slope() {
        let flat = r#"{"mean":{"point_estimate":2.5e8,"standard_error":1e6},"slope":null}"#;
        assert_eq!(mean_point_estimate(flat), Ok(2.5e8));
    }

    #[test]
    fn rejects_estimates_without_a_usable_mean() {
        for text in [
            "{}",
            r#"{"mean":{"point_estimate":"fast"}}"#,
            r#"{"mean":{"point_estimate":0}}"#,
            r#"{"mean":{"point_estimate":-1.0}}"#,
            "not json",
        ] {
            assert!(mean_point_estimate(text).is_err(), "{text}");
        }
    }

    #[test]
    fn read_mean_ns_reports_missing_and_stale_results() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let result_dir = dir.join("group/ours/new");
        fs::create_dir_all(&result_dir).unwrap();
        fs::write(result_dir.join("estimates.json"), ESTIMATES).unwrap();

        assert_eq!(read_mean_ns(&dir, "group/ours", None), Ok(1.2309));
        let missing = read_mean_ns(&dir, "group/peer", None).unwrap_err();
        assert!(missing.starts_with("group/peer: no "), "{missing}");
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        let stale = read_mean_ns(&dir, "group/ours", Some(future)).unwrap_err();
        assert!(stale.contains("older than this run"), "{stale}");

        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extra_reports_are_the_markdown_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("xtask-extra-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("b.md"), "B").unwrap();
        fs::write(dir.join("a.md"), "A").unwrap();
        fs::write(dir.join("notes.txt"), "not markdown").unwrap();

        let texts: Vec<String> = extra_reports(&dir, None)
            .unwrap()
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        assert_eq!(texts, ["A", "B"]);
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(extra_reports(&dir, Some(future)).unwrap().is_empty());
        assert!(extra_reports(&dir.join("absent"), None).unwrap().is_empty());

        fs::remove_dir_all(&dir).unwrap();
    }
}
