//! `cargo xtask fuzz`: builds every cargo-fuzz target once, runs each for a while.
//!
//! Targets are the `[[bin]]` entries of `fuzz/Cargo.toml`. Nightly (with
//! AddressSanitizer, cargo-fuzz's default) is used when installed; otherwise the
//! stable toolchain with `--sanitizer none`, which needs only stable `-C` flags.
//! A crash fails the task; libFuzzer leaves the input in `fuzz/artifacts/<target>/`.
//! New corpus entries go to `fuzz/corpus/<target>/`, where git tracks only `seed-*`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TaskResult;
use crate::flags::FuzzFlags;

/// Longest time one input may run before libFuzzer reports it as a hang.
/// A hang is a bug too (kitty's defrag once looped forever on a zero return).
const PER_INPUT_TIMEOUT_SECS: u64 = 60;

/// Which toolchain builds the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    Nightly,
    Stable,
}

impl Toolchain {
    /// A `cargo` command on this toolchain (through rustup's proxy).
    fn cargo(self, root: &Path) -> Command {
        let mut cargo = Command::new("cargo");
        cargo.current_dir(root);
        if self == Toolchain::Nightly {
            cargo.env("RUSTUP_TOOLCHAIN", "nightly");
        }
        cargo
    }

    /// Sanitizer flags for `cargo fuzz build` and `cargo fuzz run`.
    fn sanitizer_args(self) -> &'static [&'static str] {
        match self {
            Toolchain::Nightly => &[],
            Toolchain::Stable => &["--sanitizer", "none"],
        }
    }
}

/// How one target's run ended.
struct Outcome {
    target: String,
    crashed: bool,
    elapsed: Duration,
}

/// Installs cargo-fuzz if needed, builds, then runs the targets one after another.
pub(crate) fn run(root: &Path, flags: &FuzzFlags) -> TaskResult {
    let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml"))
        .map_err(|err| format!("cannot read fuzz/Cargo.toml: {err}"))?;
    let registered = registered_targets(&manifest);
    check_every_file_is_registered(&root.join("fuzz/fuzz_targets"), &registered)?;
    let targets: Vec<String> = match &flags.target {
        Some(target) if registered.iter().any(|t| t.name == *target) => vec![target.clone()],
        Some(target) => {
            return Err(format!(
                "no fuzz target {target:?}; fuzz/Cargo.toml has: {}",
                names(&registered).join(", ")
            )
            .into());
        }
        None => names(&registered),
    };
    if targets.is_empty() {
        return Err("fuzz/Cargo.toml registers no [[bin]] fuzz target".into());
    }

    ensure_cargo_fuzz(root)?;
    let toolchain = if !flags.stable && nightly_installed() {
        Toolchain::Nightly
    } else {
        Toolchain::Stable
    };
    eprintln!("fuzz: {toolchain:?} toolchain, {} s per target", flags.secs);

    let build_started = Instant::now();
    let mut build = toolchain.cargo(root);
    build
        .args(["fuzz", "build"])
        .args(toolchain.sanitizer_args());
    if let Some(target) = &flags.target {
        build.arg(target);
    }
    crate::check(crate::run(&mut build)?, "cargo fuzz build")?;
    let build_time = build_started.elapsed();

    let mut outcomes = Vec::new();
    for target in &targets {
        if !has_seed(&root.join("fuzz/corpus").join(target)) {
            eprintln!("warning: fuzz/corpus/{target}/ has no committed seed-* file");
        }
        let started = Instant::now();
        let mut fuzz = toolchain.cargo(root);
        fuzz.args(["fuzz", "run"])
            .args(toolchain.sanitizer_args())
            .arg(target)
            .arg("--")
            .arg(format!("-max_total_time={}", flags.secs))
            .arg(format!("-timeout={PER_INPUT_TIMEOUT_SECS}"));
        let status = crate::run(&mut fuzz)?;
        outcomes.push(Outcome {
            target: target.clone(),
            crashed: !status.success(),
            elapsed: started.elapsed(),
        });
    }

    println!("\nfuzz build: {:.0} s", build_time.as_secs_f64());
    for outcome in &outcomes {
        let verdict = if outcome.crashed {
            format!("FAILED: input in fuzz/artifacts/{}/", outcome.target)
        } else {
            "ok".into()
        };
        println!(
            "fuzz {}: {verdict} ({:.0} s)",
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

/// A `[[bin]]` of the fuzz crate.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    name: String,
    path: Option<String>,
}

fn names(targets: &[Target]) -> Vec<String> {
    targets.iter().map(|t| t.name.clone()).collect()
}

/// The `[[bin]]` entries of a cargo-fuzz manifest, in order. Reads the plain
/// `key = "value"` lines cargo-fuzz writes; other TOML forms are not needed here.
fn registered_targets(manifest: &str) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let mut in_bin = false;
    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_bin = line.replace(' ', "") == "[[bin]]";
            if in_bin {
                targets.push(Target {
                    name: String::new(),
                    path: None,
                });
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_bin) else {
            continue;
        };
        let Some(current) = targets.last_mut() else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "name" => current.name = value,
            "path" => current.path = Some(value),
            _ => {}
        }
    }
    targets.retain(|t| !t.name.is_empty());
    targets
}

/// A target file that no `[[bin]]` points at would silently never be fuzzed.
fn check_every_file_is_registered(dir: &Path, registered: &[Target]) -> TaskResult {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let file_name = entry?.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(stem) = file_name.strip_suffix(".rs") else {
            continue;
        };
        let path = format!("fuzz_targets/{file_name}");
        if !registered
            .iter()
            .any(|t| t.path.as_deref() == Some(path.as_str()) || t.name == stem)
        {
            return Err(format!(
                "fuzz/{path} is not registered: add a [[bin]] with name = \"{stem}\" to fuzz/Cargo.toml"
            )
            .into());
        }
    }
    Ok(())
}

fn has_seed(corpus_dir: &Path) -> bool {
    fs::read_dir(corpus_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("seed-"))
    })
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
            out.status.success() && lists_nightly(&String::from_utf8_lossy(&out.stdout))
        })
}

fn lists_nightly(toolchain_list: &str) -> bool {
    toolchain_list
        .lines()
        .any(|line| line.trim_start().starts_with("nightly"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[package]
name = "diskcaches-fuzz"

[dependencies]
libfuzzer-sys = "0.4"

[[bin]]
name = "leb128"
path = "fuzz_targets/leb128.rs"
test = false

[ [bin] ]
# a comment
name = "getters"   # trailing comment
path = "fuzz_targets/getters.rs"

[profile.release]
debug = 1
"#;

    #[test]
    fn lists_the_bin_targets_of_the_fuzz_manifest() {
        assert_eq!(
            registered_targets(MANIFEST),
            [
                Target {
                    name: "leb128".into(),
                    path: Some("fuzz_targets/leb128.rs".into()),
                },
                Target {
                    name: "getters".into(),
                    path: Some("fuzz_targets/getters.rs".into()),
                },
            ]
        );
    }

    #[test]
    fn package_name_is_not_a_target() {
        assert!(registered_targets("[package]\nname = \"fuzz\"\n").is_empty());
    }

    #[test]
    fn an_unregistered_target_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("leb128.rs"), "").unwrap();
        let registered = registered_targets(MANIFEST);
        assert!(check_every_file_is_registered(&dir, &registered).is_ok());

        fs::write(dir.join("forgotten.rs"), "").unwrap();
        let err = check_every_file_is_registered(&dir, &registered).unwrap_err();
        assert!(err.to_string().contains("forgotten"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_nightly_in_rustup_toolchain_list() {
        let with =
            "stable-x86_64-unknown-linux-gnu (active, default)\nnightly-x86_64-unknown-linux-gnu\n";
        let without =
            "stable-x86_64-unknown-linux-gnu (default)\n1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(lists_nightly(with));
        assert!(!lists_nightly(without));
    }
}
