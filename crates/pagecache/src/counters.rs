//! The hit counter: striped by thread, bumped with plain loads and stores.
//!
//! A shared atomic counter would cost every hit an atomic read-modify-write
//! (a full barrier on x86) and make threads fight over one cache line.
//! Each thread instead bumps its own stripe; when two threads share a
//! stripe (their stacks hash alike), a racing bump may be lost.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

const STRIPES: usize = 64;

/// One stripe per cache line (two on CPUs that prefetch pairs), so threads
/// bumping different stripes do not share a line.
type Stripe = CachePadded<AtomicU64>;

/// The stripe of the calling thread: its stack address, hashed. Threads'
/// stacks lie megabytes apart, so two threads rarely share a stripe; this
/// costs two instructions where a thread-local costs a call.
#[inline]
fn thread_stripe() -> usize {
    let marker = 0u8;
    let stack = std::ptr::addr_of!(marker).addr() >> 21;
    (stack.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize) >> 27) % STRIPES
}

#[derive(Debug)]
pub(crate) struct StripedCounter {
    /// Inline rather than boxed: a hit then needs no pointer load to reach
    /// its stripe.
    stripes: [Stripe; STRIPES],
}

impl StripedCounter {
    pub(crate) fn new() -> Self {
        StripedCounter {
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
        }
    }

    #[inline]
    pub(crate) fn add_one(&self) {
        self.add(1);
    }

    /// Adds `n` (see [`add_one`](Self::add_one)).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let stripe = &self.stripes[thread_stripe() % STRIPES];
        stripe.store(stripe.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.load(Relaxed)).sum()
    }

    pub(crate) fn reset(&self) {
        for stripe in self.stripes.iter() {
            stripe.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_from_a_few_threads() {
        let counter = StripedCounter::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..10_000).for_each(|_| counter.add_one()));
            }
        });
        counter.add(7);
        assert_eq!(counter.sum(), 40_007);
        counter.reset();
        assert_eq!(counter.sum(), 0);
    }
}
