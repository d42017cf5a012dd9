//! `cargo xtask fuzz`: builds every cargo-fuzz target once, runs each for a
//! while, and reports how many inputs per second each one ran.
//!
//! Targets are those `cargo fuzz list` names. Nightly (with AddressSanitizer, cargo-fuzz's default) is used when
//! installed; otherwise the stable toolchain with `--sanitizer none`, which
//! needs only stable `-C` flags. A crash fails the task; libFuzzer leaves the
//! input in `fuzz/artifacts/<target>/`. New corpus entries go to
//! `fuzz/corpus/<target>/`, where git tracks only `seed-*`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::TaskResult;
use crate::flags::Fuzz;

/// Longest time one input may run before libFuzzer reports it as a hang.
/// A hang is a bug too (kitty's defrag once looped forever on a zero return).
const PER_INPUT_TIMEOUT_SECS: u64 = 60;

/// Seconds per target when `--secs` is not given.
const DEFAULT_SECS: u64 = 60;

/// How one target's run ended.
struct Outcome {
    target: String,
    crashed: bool,
    elapsed: Duration,
    stats: FinalStats,
}

/// Installs cargo-fuzz if needed, builds, then runs the targets one after another.
pub(crate) fn run(root: &Path, flags: &Fuzz) -> TaskResult {
    let secs = flags.secs.unwrap_or(DEFAULT_SECS);
    ensure_cargo_fuzz(root)?;
    let list = Command::new("cargo")
        .current_dir(root)
        .args(["fuzz", "list"])
        .output()?;
    crate::check(list.status, "cargo fuzz list")?;
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    let targets = match &flags.target {
        Some(target) if names.contains(target) => vec![target.clone()],
        Some(target) => {
            return Err(format!(
                "no fuzz target {target:?}; fuzz/Cargo.toml has: {}",
                names.join(", ")
            )
            .into());
        }
        None if names.is_empty() => return Err("fuzz/Cargo.toml has no fuzz target".into()),
        None => names,
    };

    let nightly = !flags.stable && nightly_installed();
    let cargo_fuzz = |subcommand: &str| {
        let mut cargo = Command::new("cargo");
        cargo.current_dir(root).args(["fuzz", subcommand]);
        if nightly {
            cargo.env("RUSTUP_TOOLCHAIN", "nightly");
        } else {
            cargo.args(["--sanitizer", "none"]);
        }
        cargo
    };
    let toolchain = if nightly {
        "nightly (AddressSanitizer)"
    } else {
        "stable (no sanitizer)"
    };
    eprintln!("fuzz: {toolchain}, {secs} s per target");

    let build_started = Instant::now();
    let mut build = cargo_fuzz("build");
    build.args(&flags.target);
    crate::check(crate::run(&mut build)?, "cargo fuzz build")?;
    let build_time = build_started.elapsed();

    let mut outcomes = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let mut fuzz = cargo_fuzz("run");
        fuzz.arg(target).arg("--").args([
            format!("-max_total_time={secs}"),
            format!("-timeout={PER_INPUT_TIMEOUT_SECS}"),
            "-print_final_stats=1".into(),
        ]);
        let (crashed, stats) = run_fuzzer(&mut fuzz)?;
        outcomes.push(Outcome {
            target: target.clone(),
            crashed,
            elapsed: started.elapsed(),
            stats,
        });
    }

    println!(
        "\nfuzz build: {:.0} s ({toolchain})",
        build_time.as_secs_f64()
    );
    for outcome in &outcomes {
        let verdict = if outcome.crashed {
            format!("FAILED: input in fuzz/artifacts/{}/", outcome.target)
        } else {
            "ok".into()
        };
        let speed = match (outcome.stats.inputs, outcome.stats.inputs_per_sec) {
            (Some(inputs), Some(per_sec)) => format!("{inputs} inputs, {per_sec} inputs/s"),
            _ => "libFuzzer printed no final stats".into(),
        };
        println!(
            "fuzz {}: {verdict} ({:.0} s, {speed})",
            outcome.target,
            outcome.elapsed.as_secs_f64()
        );
    }
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashed)
        .map(|o| o.target.as_str())
        .collect();
    // The plain closing line that CI's log reader understands.
    println!(
        "fuzz: {} passed, {} failed",
        outcomes.len() - crashed.len(),
        crashed.len()
    );
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", crashed.join(", ")).into())
    }
}

/// Runs `cargo fuzz run`, passing its stderr through line by line while
/// reading libFuzzer's final stats from it. Returns whether it failed.
fn run_fuzzer(command: &mut Command) -> Result<(bool, FinalStats), Box<dyn std::error::Error>> {
    eprintln!("$ {command:?}");
    let mut child = command.stderr(Stdio::piped()).spawn()?;
    let mut stats = FinalStats::default();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            eprintln!("{line}");
            stats.read_line(&line);
        }
    }
    Ok((!child.wait()?.success(), stats))
}

/// What libFuzzer's `-print_final_stats=1` reports, as far as it was read.
#[derive(Debug, Default, PartialEq)]
struct FinalStats {
    inputs: Option<u64>,
    inputs_per_sec: Option<u64>,
}

impl FinalStats {
    /// Takes the numbers from a `stat::number_of_executed_units: N` or
    /// `stat::average_exec_per_sec: N` line; ignores any other line.
    fn read_line(&mut self, line: &str) {
        let Some((key, value)) = line.trim().rsplit_once(':') else {
            return;
        };
        let value = value.trim().parse().ok();
        match key.trim() {
            "stat::number_of_executed_units" => self.inputs = value,
            "stat::average_exec_per_sec" => self.inputs_per_sec = value,
            _ => {}
        }
    }
}

/// Installs cargo-fuzz with `cargo install --locked` when `cargo fuzz` is absent.
fn ensure_cargo_fuzz(root: &Path) -> TaskResult {
    let present = Command::new("cargo")
        .current_dir(root)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-fuzz is not installed; installing it");
    let mut install = Command::new("cargo");
    install.args(["install", "cargo-fuzz", "--locked"]);
    crate::check(crate::run(&mut install)?, "cargo install cargo-fuzz")
}

/// Whether rustup lists a nightly toolchain (false when rustup is absent).
fn nightly_installed() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|line| line.starts_with("nightly"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inputs_and_speed_from_libfuzzer_final_stats() {
        let stderr = "\
#1048576\tpulse  cov: 312 ft: 1203 corp: 88/2104b exec/s: 20971 rss: 61Mb
Done 1258291 runs in 61 second(s)
stat::number_of_executed_units: 1258291
stat::average_exec_per_sec:     20627
stat::new_units_added:          12
stat::peak_rss_mb:              61
";
        let mut stats = FinalStats::default();
        stderr.lines().for_each(|line| stats.read_line(line));
        assert_eq!(
            stats,
            FinalStats {
                inputs: Some(1_258_291),
                inputs_per_sec: Some(20_627),
            }
        );
    }
}
