//! `cargo xtask bench`: runs the criterion benches and reports them as one
//! table and two charts.
//!
//! The comparisons come from `benches/targets.txt`; the times from each
//! criterion result's `new/sample.json` (time per iteration of every
//! sample: the table uses the median and the quartiles). The markdown report
//! goes to `<target>/bench-report.md`, followed by every
//! `<target>/bench-extra/*.md` a bench wrote (the benches find that directory
//! in the `BENCH_EXTRA_DIR` environment variable); the charts go beside it,
//! and to `docs/` when every bench ran.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Deserialize;

use crate::flags::Bench;
use crate::report::{self, Row, Timing};
use crate::{TaskResult, charts, targets};

/// Criterion's defaults for the short run. Benches that set their own group
/// times keep them; these only shorten benches that rely on criterion's
/// defaults (3 s warm-up, 5 s measurement), so the whole run stays short.
const SHORT_RUN_ARGS: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "2"];

/// Runs the benches (unless `--report-only`), prints the table, writes the
/// report and the charts.
pub(crate) fn run(root: &Path, flags: &Bench) -> TaskResult {
    let targets_path = root.join("benches/targets.txt");
    let targets_text = fs::read_to_string(&targets_path)
        .map_err(|err| format!("cannot read {}: {err}", targets_path.display()))?;
    // Parse before running, so a typo fails in a second rather than after the run.
    let comparisons = targets::parse(&targets_text)?;
    let target_dir = cargo_metadata::MetadataCommand::new()
        .current_dir(root)
        .no_deps()
        .exec()?
        .target_directory
        .into_std_path_buf();
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
    let rows: Vec<Row> = comparisons
        .iter()
        .map(|comparison| {
            Row::measure(comparison, |id| {
                read_timing(&criterion_dir, id, fresh_since)
                    .map_err(|problem| {
                        if !problems.contains(&problem) {
                            problems.push(problem);
                        }
                    })
                    .ok()
            })
        })
        .collect();

    let table = report::render_table(&rows);
    let summary = report::summary(&rows);
    let when = utc_now();
    let machine = describe_machine();
    let mode = if flags.full { "full run" } else { "short run" };
    println!("\n{table}\n{summary}");
    for problem in &problems {
        println!("missing: {problem}");
    }

    let mut markdown = format!(
        "## Benchmarks\n\n\
         Measured {when} on {machine} by `cargo xtask bench` ({mode}).\n\
         Ratio = best peer's median time / our median time per iteration, so above 1\n\
         means ours is faster; spread = the ratio's range between the quartiles of\n\
         both sides' samples; target = the least ratio that meets the goal\n\
         (\"edge\": the target lies within the spread).\n\n\
         {table}\n{summary}\n"
    );
    for (path, text) in extra_reports(&extra_dir, fresh_since)? {
        println!("\nincluded {}", path.display());
        markdown.push('\n');
        markdown.push_str(text.trim_end());
        markdown.push('\n');
    }
    let report_path = target_dir.join("bench-report.md");
    fs::write(&report_path, markdown)
        .map_err(|err| format!("cannot write {}: {err}", report_path.display()))?;
    println!("\nwrote {} ({when}; {machine})", report_path.display());

    // A filtered run draws only beside the report, so that the committed
    // charts always show a whole run.
    let mut chart_dirs = vec![target_dir.clone()];
    if flags.filter.is_none() {
        chart_dirs.push(root.join("docs"));
    }
    for dir in &chart_dirs {
        for path in charts::draw_all(&rows, &extra_dir, dir)? {
            println!("wrote {}", path.display());
        }
    }

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

/// What criterion writes to `<id>/new/sample.json`: the samples' iteration
/// counts and total times (ns).
#[derive(Deserialize)]
struct Samples {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// The median and quartiles of criterion id `id`'s time per iteration, or
/// why there are none.
fn read_timing(
    criterion_dir: &Path,
    id: &str,
    fresh_since: Option<SystemTime>,
) -> Result<Timing, String> {
    let path = criterion_dir.join(id).join("new/sample.json");
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
    timing(&text).map_err(|err| format!("{id}: {}: {err}", path.display()))
}

/// The [`Timing`] of a criterion `sample.json`.
fn timing(text: &str) -> Result<Timing, String> {
    let samples: Samples = serde_json::from_str(text).map_err(|err| err.to_string())?;
    if samples.iters.len() != samples.times.len() {
        return Err("iters and times differ in length".into());
    }
    let per_iteration: Vec<f64> = samples
        .times
        .iter()
        .zip(&samples.iters)
        .map(|(time, iters)| time / iters)
        .collect();
    Timing::from_samples(per_iteration).ok_or_else(|| "no positive finite sample".into())
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
        let fresh = fresh_since.is_none_or(|since| {
            entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since)
        });
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

/// The first line `command args` prints, if it runs and prints one.
fn first_line_of(command: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(command).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_string())
}

/// `YYYY-MM-DD HH:MM UTC`, from `date`.
fn utc_now() -> String {
    first_line_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "(date unknown)".into())
}

/// `x86_64, Intel(R) Xeon(R) Processor @ 2.50GHz, 2 cores` for this machine.
fn describe_machine() -> String {
    let arch = first_line_of("uname", &["-m"]).unwrap_or_else(|| std::env::consts::ARCH.into());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpu_model(&cpuinfo).unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{arch}, {cpu}, {cores} cores")
}

/// The `model name` in the text of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_is_the_median_and_quartiles_of_time_per_iteration() {
        // Five samples of 10, 20, ... iterations at 2, 1, 3, 5, 4 ns each.
        let text =
            r#"{"sampling_mode":"Linear","iters":[10,20,30,40,50],"times":[20,20,90,200,200]}"#;
        let timing = timing(text).unwrap();
        assert_eq!((timing.q1, timing.median, timing.q3), (2.0, 3.0, 4.0));
    }

    #[test]
    fn rejects_samples_without_a_usable_time() {
        for text in [
            "{}",
            r#"{"iters":[1,2],"times":[5]}"#,
            r#"{"iters":[],"times":[]}"#,
            r#"{"iters":[1],"times":[0]}"#,
            r#"{"iters":["x"],"times":[1]}"#,
            "not json",
        ] {
            assert!(timing(text).is_err(), "{text}");
        }
    }

    #[test]
    fn read_timing_reports_missing_and_stale_results() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let result_dir = dir.join("group/ours/new");
        fs::create_dir_all(&result_dir).unwrap();
        fs::write(
            result_dir.join("sample.json"),
            r#"{"iters":[1,1,1],"times":[7,8,9]}"#,
        )
        .unwrap();

        assert_eq!(read_timing(&dir, "group/ours", None).unwrap().median, 8.0);
        let missing = read_timing(&dir, "group/peer", None).unwrap_err();
        assert!(missing.starts_with("group/peer: no "), "{missing}");
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        let stale = read_timing(&dir, "group/ours", Some(future)).unwrap_err();
        assert!(stale.contains("older than this run"), "{stale}");

        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extra_reports_are_the_fresh_markdown_files_in_name_order() {
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

    #[test]
    fn reads_the_model_name_from_cpuinfo() {
        let x86 =
            "processor\t: 0\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.50GHz\n";
        assert_eq!(cpu_model(x86), Some("Intel(R) Xeon(R) Processor @ 2.50GHz"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }
}
