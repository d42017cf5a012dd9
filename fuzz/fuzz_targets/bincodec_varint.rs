//! Fuzz target: the LEB128 and git offset varint decoders against their
//! models and encoders (the first byte picks which; see
//! `bincodec::fuzz::one_varint`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bincodec::fuzz::one_varint(data);
});
