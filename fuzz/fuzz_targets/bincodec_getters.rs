//! Fuzz target: every bincodec getter and setter against from/to_*_bytes
//! (the first byte picks which; see `bincodec::fuzz::getters_or_setters`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bincodec::fuzz::getters_or_setters(data);
});
