//! Single flight: one device read for a run of missing pieces, whatever
//! the number of readers that want them; the others wait for its outcome.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use parking_lot::{Condvar, Mutex};

/// How a device read that others wait for ended.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// Still reading.
    Pending,
    /// Read: the bytes from device position `start`.
    Fetched { start: u64, bytes: Arc<[u8]> },
    /// The read failed with this error (kind and message: `io::Error` is
    /// not `Clone`).
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
    /// The reader that owned it stopped (it panicked): nothing was read.
    Abandoned,
}

/// One device read under way, that readers of the same pieces join.
#[derive(Debug)]
pub(super) struct Flight {
    outcome: Mutex<Outcome>,
    done: Condvar,
    /// Readers that joined. Joining and publishing both happen under the
    /// tier's lock, so when the owner publishes, this count is final.
    waiters: AtomicUsize,
}

impl Flight {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Flight {
            outcome: Mutex::new(Outcome::Pending),
            done: Condvar::new(),
            waiters: AtomicUsize::new(0),
        })
    }

    /// Counts one more reader waiting (call under the tier's lock).
    pub(super) fn join(&self) {
        self.waiters.fetch_add(1, Relaxed);
    }

    /// Whether any reader joined (final once the flight has left the
    /// tier's table, under the tier's lock).
    pub(super) fn has_waiters(&self) -> bool {
        self.waiters.load(Relaxed) > 0
    }

    /// Ends the flight; the first outcome set wins.
    pub(super) fn finish(&self, outcome: Outcome) {
        let mut current = self.outcome.lock();
        if matches!(*current, Outcome::Pending) {
            *current = outcome;
            self.done.notify_all();
        }
    }

    /// Waits for the outcome.
    pub(super) fn wait(&self) -> Outcome {
        let mut outcome = self.outcome.lock();
        while matches!(*outcome, Outcome::Pending) {
            self.done.wait(&mut outcome);
        }
        outcome.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_outcome_wins_and_every_waiter_sees_it() {
        let flight = Flight::new();
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..4).map(|_| scope.spawn(|| flight.wait())).collect();
            flight.finish(Outcome::Abandoned);
            flight.finish(Outcome::Pending);
            for waiter in waiters {
                assert!(matches!(waiter.join().unwrap(), Outcome::Abandoned));
            }
        });
    }
}
