//! Fuzz target: the LEB128 and git offset varint decoders against their
//! models and encoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bincodec::fuzz::varints(data);
});
