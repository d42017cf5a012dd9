//! Fuzz target: write-back op sequences on a WriteBackCache (setters,
//! getters, persist, commit, failing and short device writes) against a
//! model of what reads and the device must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: pagecache::fuzz::WriteInput| {
    if let Err(mismatch) = pagecache::fuzz::write_ops(&input) {
        panic!("{mismatch}");
    }
});
