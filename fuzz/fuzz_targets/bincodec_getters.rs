//! Fuzz target: every bincodec getter and setter against from/to_*_bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bincodec::fuzz::getters(data);
    bincodec::fuzz::setters(data);
});
