//! Real files written by other tools (git, mkfs.ext4, sqlite3), read by the
//! examples' parsers through a page cache and compared with those tools'
//! own view of the same files.
//!
//! Each test builds its input with the real tool in a scratch directory.
//! When a tool is absent the test says so on stderr and passes, except
//! under CI (`CI` set), where it fails: `.ci/run` installs the tools.
//! Every file is read through three cache shapes (see
//! [`support::GEOMETRIES`]), so values straddling pages and pages evicted
//! mid-parse are part of every comparison. Each tool's files are also
//! uploaded to an S3 server (testsupport's, one per test in this process,
//! or the one the environment names) and read through an object URL as the
//! examples take it, the store options given explicitly: the printed output
//! must be identical.

// The store options reach the examples as arguments, so nothing here needs
// to change the process's environment (`set_var` is unsafe).
#![forbid(unsafe_code)]

#[path = "real_files/ext4.rs"]
mod ext4;
#[path = "real_files/git.rs"]
mod git;
#[path = "../common/input.rs"]
mod input;
#[path = "real_files/object.rs"]
mod object;
#[path = "real_files/sqlite.rs"]
mod sqlite;
#[path = "real_files/support.rs"]
mod support;
