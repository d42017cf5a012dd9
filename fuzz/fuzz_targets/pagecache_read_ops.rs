//! Fuzz target: read-only op sequences on a PageCache (getters, ranges,
//! load, iterators, syscalls, device changes, invalidation, failing reads)
//! against a flat Vec<u8> model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: pagecache::fuzz::ReadInput| {
    if let Err(mismatch) = pagecache::fuzz::read_ops(&input) {
        panic!("{mismatch}");
    }
});
