//! Fuzz target: op sequences (add, memory-only add, remove, get, store in
//! RAM, clear, wait, defrag, injected write errors) on a SpillCache against
//! a HashMap model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: spillcache::fuzz::Scenario| {
    if let Err(mismatch) = spillcache::fuzz::run(&scenario) {
        panic!("{mismatch}");
    }
});
