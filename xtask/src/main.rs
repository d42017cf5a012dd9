//! `cargo xtask`: the project's tasks as one small binary, run through the
//! alias in `.cargo/config.toml`.
//!
//! - `cargo xtask bench`: run the criterion benches, print one comparison table.
//! - `cargo xtask fuzz`: build and run every cargo-fuzz target for a while.
//! - `cargo xtask ci`: what CI runs (`.ci/run`).
//!
//! It has no dependencies; it finds the workspace root from its own manifest
//! directory, so it works from any current directory.

mod bench;
mod flags;
mod fuzz;
mod json;
mod machine;
mod report;
mod targets;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

/// The error type of every task: a message for the user.
pub(crate) type TaskResult = Result<(), Box<dyn Error>>;

fn main() -> ExitCode {
    let task = match flags::parse(std::env::args().skip(1)) {
        Ok(task) => task,
        Err(usage) => {
            eprintln!("error: {usage}");
            return ExitCode::from(2);
        }
    };
    let root = project_root();
    let result = match task {
        flags::Task::Bench(flags) => bench::run(&root, &flags),
        flags::Task::Fuzz(flags) => fuzz::run(&root, &flags),
        flags::Task::Ci => run_ci(&root),
        flags::Task::Help => {
            print!("{}", flags::USAGE);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `.ci/run` is the one definition of CI; this only runs it.
fn run_ci(root: &Path) -> TaskResult {
    let status = run(Command::new("bash")
        .arg(root.join(".ci/run"))
        .current_dir(root))?;
    check(status, "CI")
}

/// Prints a command the way a shell user would type it, then runs it with the
/// terminal attached.
pub(crate) fn run(command: &mut Command) -> Result<ExitStatus, Box<dyn Error>> {
    let envs: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.display(), value?.display())))
        .collect();
    let args: Vec<String> = command
        .get_args()
        .map(|arg| arg.display().to_string())
        .collect();
    let program = command.get_program().display().to_string();
    let line = [envs, vec![program], args].concat().join(" ");
    eprintln!("$ {line}");
    command
        .status()
        .map_err(|err| format!("could not start `{line}`: {err}").into())
}

/// Turns a failed exit status into an error naming what failed.
pub(crate) fn check(status: ExitStatus, what: &str) -> TaskResult {
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}
