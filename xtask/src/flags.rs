//! The command line of `cargo xtask`, declared with `xflags`.
//!
//! xflags (as rust-analyzer's xtask uses) rather than clap: it has no
//! runtime dependencies and builds in about a second, which matters for a
//! tool that `cargo xtask` compiles before every first run, and it still
//! writes the `--help` text and the error for a bad flag itself.

// The generated types are `pub`; this module is private.
#![allow(unreachable_pub)]

// Expands to `Xtask { subcommand: XtaskCmd }`, `XtaskCmd::{Bench, Fuzz, Ci}`
// and one struct per command with a field per flag (`Bench { full, filter,
// report_only }`, `Fuzz { secs, target, stable }`).
xflags::xflags! {
    /// The project's tasks: benchmarks, fuzzing, CI.
    cmd xtask {
        /// Run the criterion benches in benches/ and print one table
        /// (operation, ours, best peer, ratio and its spread, target, met?)
        /// from benches/targets.txt; write it, with SVG charts, beside
        /// <target>/bench-report.md. Short measurements (under 10 minutes).
        cmd bench {
            /// Long measurements: sets BENCH_FULL=1, keeps criterion's times.
            optional --full
            /// Run only the benchmark ids this criterion regex matches.
            optional --filter regex: String
            /// Do not run: report and chart the results already on disk.
            optional --report-only
        }
        /// Build every cargo-fuzz target once, run each for a while, print
        /// inputs per second per target. Nightly with AddressSanitizer when
        /// installed, else (or with --stable) stable with --sanitizer none.
        cmd fuzz {
            /// Seconds per target (default 60).
            optional --secs secs: u64
            /// Run only this target.
            optional --target name: String
            /// Use the stable toolchain even if nightly is installed.
            optional --stable
        }
        /// Run .ci/run, which is what CI runs.
        cmd ci {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> xflags::Result<XtaskCmd> {
        Xtask::from_vec(line.split_whitespace().map(Into::into).collect()).map(|x| x.subcommand)
    }

    #[test]
    fn bench_takes_full_filter_and_report_only() {
        let Ok(XtaskCmd::Bench(bench)) = parse("bench --full --filter pagecache --report-only")
        else {
            panic!("not a bench command");
        };
        assert!(bench.full && bench.report_only);
        assert_eq!(bench.filter.as_deref(), Some("pagecache"));
    }

    #[test]
    fn fuzz_takes_secs_target_and_stable() {
        let Ok(XtaskCmd::Fuzz(fuzz)) = parse("fuzz --secs 20 --target bincodec_varint --stable")
        else {
            panic!("not a fuzz command");
        };
        assert_eq!(fuzz.secs, Some(20));
        assert_eq!(fuzz.target.as_deref(), Some("bincodec_varint"));
        assert!(fuzz.stable);
    }

    #[test]
    fn rejects_bad_command_lines() {
        for line in [
            "",
            "bench --fast",
            "fuzz --secs soon",
            "fuzz --secs",
            "deploy",
        ] {
            assert!(parse(line).is_err(), "{line:?}");
        }
    }
}
