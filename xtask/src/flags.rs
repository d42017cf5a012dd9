//! Command-line parsing for `cargo xtask`: subcommands and their flags.

use std::fmt;

/// Shown by `cargo xtask help` and after a usage error.
pub(crate) const USAGE: &str = "\
usage: cargo xtask <command> [flags]

commands:
  bench [--full] [--filter REGEX] [--report-only]
      Run the criterion benches in benches/ and print one table (operation, ours,
      best peer, ratio, target, met?) from benches/targets.txt; also write it to
      <target>/bench-report.md. Short measurements by default (under 10 minutes);
      --full sets BENCH_FULL=1 for the long run. --filter passes a criterion filter.
      --report-only prints the table from the results already on disk.
  fuzz [--secs N] [--target NAME] [--stable]
      Install cargo-fuzz if missing, build every fuzz target once, run each for N
      seconds (default 60). Nightly with AddressSanitizer when installed, else (or
      with --stable) the stable toolchain with --sanitizer none. Fails when a target
      crashes; the input stays under fuzz/artifacts/<target>/.
  ci
      Run .ci/run: fmt, clippy, tests, a 20-second fuzz run per target.
  help
      Print this text.
";

/// What `cargo xtask` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Task {
    Bench(BenchFlags),
    Fuzz(FuzzFlags),
    Ci,
    Help,
}

/// Flags of `cargo xtask bench`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BenchFlags {
    /// Long measurements (`BENCH_FULL=1`, criterion's own defaults).
    pub(crate) full: bool,
    /// Criterion filter (a regex over benchmark ids).
    pub(crate) filter: Option<String>,
    /// Skip running; report the results on disk.
    pub(crate) report_only: bool,
}

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FuzzFlags {
    /// Seconds per target.
    pub(crate) secs: u64,
    /// Run only this target.
    pub(crate) target: Option<String>,
    /// Use the stable toolchain even if nightly is installed.
    pub(crate) stable: bool,
}

impl Default for FuzzFlags {
    fn default() -> Self {
        FuzzFlags {
            secs: 60,
            target: None,
            stable: false,
        }
    }
}

/// A command line that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after `cargo xtask`.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Task, UsageError> {
    let mut args = Args::new(args);
    let Some(command) = args.next_raw() else {
        return Ok(Task::Help);
    };
    let task = match command.as_str() {
        "bench" => {
            let mut flags = BenchFlags::default();
            while let Some(flag) = args.next_flag()? {
                match flag.as_str() {
                    "--full" => flags.full = true,
                    "--report-only" => flags.report_only = true,
                    "--filter" => flags.filter = Some(args.value(&flag)?),
                    _ => return Err(unknown(&command, &flag)),
                }
            }
            Task::Bench(flags)
        }
        "fuzz" => {
            let mut flags = FuzzFlags::default();
            while let Some(flag) = args.next_flag()? {
                match flag.as_str() {
                    "--stable" => flags.stable = true,
                    "--target" => flags.target = Some(args.value(&flag)?),
                    "--secs" => {
                        let value = args.value(&flag)?;
                        flags.secs = match value.parse() {
                            Ok(secs) if secs > 0 => secs,
                            _ => {
                                return Err(UsageError(format!(
                                    "--secs takes a positive whole number of seconds, not {value:?}"
                                )));
                            }
                        };
                    }
                    _ => return Err(unknown(&command, &flag)),
                }
            }
            Task::Fuzz(flags)
        }
        "ci" => {
            if let Some(flag) = args.next_flag()? {
                return Err(unknown(&command, &flag));
            }
            Task::Ci
        }
        "help" | "--help" | "-h" => Task::Help,
        other => return Err(UsageError(format!("unknown command {other:?}"))),
    };
    Ok(task)
}

fn unknown(command: &str, flag: &str) -> UsageError {
    UsageError(format!("unknown flag {flag:?} for `cargo xtask {command}`"))
}

/// Splits `--flag=value` so that both `--flag value` and `--flag=value` work.
struct Args {
    rest: std::vec::IntoIter<String>,
    pending_value: Option<String>,
}

impl Args {
    fn new(args: impl IntoIterator<Item = String>) -> Args {
        Args {
            rest: args.into_iter().collect::<Vec<_>>().into_iter(),
            pending_value: None,
        }
    }

    fn next_raw(&mut self) -> Option<String> {
        self.rest.next()
    }

    /// The next flag name; an argument that is not a flag is an error.
    fn next_flag(&mut self) -> Result<Option<String>, UsageError> {
        if let Some(value) = self.pending_value.take() {
            return Err(UsageError(format!("unexpected value {value:?}")));
        }
        let Some(arg) = self.rest.next() else {
            return Ok(None);
        };
        if !arg.starts_with("--") {
            return Err(UsageError(format!("unexpected argument {arg:?}")));
        }
        match arg.split_once('=') {
            Some((flag, value)) => {
                self.pending_value = Some(value.to_string());
                Ok(Some(flag.to_string()))
            }
            None => Ok(Some(arg)),
        }
    }

    /// The value of `flag`, from `--flag=value` or the next argument.
    fn value(&mut self, flag: &str) -> Result<String, UsageError> {
        self.pending_value
            .take()
            .or_else(|| self.rest.next())
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Task, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_arguments_means_help() {
        assert_eq!(parse_str(""), Ok(Task::Help));
        assert_eq!(parse_str("--help"), Ok(Task::Help));
    }

    #[test]
    fn bench_defaults_to_a_short_full_suite_run() {
        assert_eq!(parse_str("bench"), Ok(Task::Bench(BenchFlags::default())));
    }

    #[test]
    fn bench_takes_full_filter_and_report_only() {
        let expected = Task::Bench(BenchFlags {
            full: true,
            filter: Some("bincodec".into()),
            report_only: true,
        });
        assert_eq!(
            parse_str("bench --full --filter bincodec --report-only"),
            Ok(expected.clone())
        );
        assert_eq!(
            parse_str("bench --report-only --filter=bincodec --full"),
            Ok(expected)
        );
    }

    #[test]
    fn fuzz_defaults_to_sixty_seconds_per_target() {
        assert_eq!(
            parse_str("fuzz"),
            Ok(Task::Fuzz(FuzzFlags {
                secs: 60,
                target: None,
                stable: false,
            }))
        );
    }

    #[test]
    fn fuzz_takes_secs_target_and_stable() {
        assert_eq!(
            parse_str("fuzz --secs 20 --target=leb128 --stable"),
            Ok(Task::Fuzz(FuzzFlags {
                secs: 20,
                target: Some("leb128".into()),
                stable: true,
            }))
        );
    }

    #[test]
    fn rejects_bad_command_lines_with_a_reason() {
        for (line, reason) in [
            ("frobnicate", "unknown command"),
            ("bench --fast", "unknown flag \"--fast\""),
            ("bench --filter", "--filter needs a value"),
            ("bench --full=yes", "unexpected value \"yes\""),
            ("bench extra", "unexpected argument"),
            ("fuzz --secs 0", "positive whole number"),
            ("fuzz --secs ten", "positive whole number"),
            ("ci --full", "unknown flag"),
        ] {
            let err = parse_str(line).unwrap_err();
            assert!(err.0.contains(reason), "{line:?}: {}", err.0);
        }
    }
}
