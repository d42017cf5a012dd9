//! Fuzz target: backpressure and a full disk. Adds that wait briefly or not
//! at all, removals, a disk whose capacity shrinks and grows, waits and
//! defrags, on a SpillCache with a small bound on waiting bytes, against a
//! HashMap model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: spillcache::fuzz::PressureScenario| {
    if let Err(mismatch) = spillcache::fuzz::run_pressure(&scenario) {
        panic!("{mismatch}");
    }
});
