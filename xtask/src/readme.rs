//! The top-level README's examples, run as doctests so that they cannot drift
//! from the API: `cargo test -p xtask --doc` (part of `cargo test --workspace`)
//! compiles and runs every Rust code block of `README.md`.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
