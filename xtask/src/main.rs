//! `cargo xtask`: the project's tasks as one small binary, run through the
//! alias in `.cargo/config.toml`.
//!
//! - `cargo xtask bench`: run the criterion benches, print one comparison
//!   table, draw the charts.
//! - `cargo xtask fuzz`: build and run every cargo-fuzz target for a while.
//! - `cargo xtask ci`: what CI runs (`.ci/run`).
//!
//! It finds the workspace root from its own manifest directory, so it works
//! from any current directory.

mod bench;
mod charts;
mod flags;
mod fuzz;
mod report;
mod targets;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

/// The error type of every task: a message for the user.
pub(crate) type TaskResult = Result<(), Box<dyn Error>>;

fn main() -> ExitCode {
    let flags = match flags::Xtask::from_env() {
        Ok(flags) => flags,
        Err(help) if help.is_help() => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}\n(`cargo xtask --help` lists the commands)");
            return ExitCode::from(2);
        }
    };
    let root = project_root();
    let result = match flags.subcommand {
        flags::XtaskCmd::Bench(flags) => bench::run(&root, &flags),
        flags::XtaskCmd::Fuzz(flags) => fuzz::run(&root, &flags),
        flags::XtaskCmd::Ci(_) => run(Command::new("bash")
            .arg(root.join(".ci/run"))
            .current_dir(&root))
        .and_then(|status| check(status, "CI")),
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

/// Prints a command the way a shell user would type it, then runs it with the
/// terminal attached.
pub(crate) fn run(command: &mut Command) -> Result<ExitStatus, Box<dyn Error>> {
    let envs = command
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.display(), value?.display())));
    let words = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.display().to_string());
    let line = envs.chain(words).collect::<Vec<_>>().join(" ");
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
