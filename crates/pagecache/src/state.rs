//! What the cache's state lock guards: which frame holds which page, the
//! reads in flight, the eviction policy and the miss counters. Shared by
//! the miss path and residency, below both.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::frames::FrameId;
use crate::hints::PageHasher;
use crate::policy::{NodeId, Policy};

/// Everything but the hit path, behind the state lock.
#[derive(Debug)]
pub(crate) struct State {
    /// The truth about which frame holds which page (hints may lag).
    pub(crate) resident: HashMap<u64, FrameId, PageHasher>,
    /// Pages being read from the device, and who waits for them.
    pub(crate) loading: HashMap<u64, Arc<Loading>, PageHasher>,
    pub(crate) policy: Policy,
    /// Per frame: its node in the policy.
    pub(crate) nodes: Vec<NodeId>,
    /// Per frame: the bytes last handed out as a `Slice`.
    pub(crate) slices: Vec<Option<Arc<[u8]>>>,
    /// Free frames (entries whose `is_free` was cleared since are stale and
    /// skipped), and whether each frame is free.
    pub(crate) free: Vec<FrameId>,
    pub(crate) is_free: Vec<bool>,
    /// Free frames a long read was copying when they were to be rewritten
    /// (see `Frames::claim`): taken again once the free list is empty,
    /// before anything more is evicted. May hold stale or repeated entries.
    pub(crate) busy: Vec<FrameId>,
    pub(crate) misses: u64,
    pub(crate) evictions: u64,
}

impl State {
    /// The state of an empty cache of `capacity` frames, all free.
    pub(crate) fn new(capacity: usize) -> Self {
        State {
            resident: HashMap::default(),
            loading: HashMap::default(),
            policy: Policy::new(capacity),
            nodes: vec![NodeId::MAX; capacity],
            slices: vec![None; capacity],
            free: (0..capacity as FrameId).rev().collect(),
            is_free: vec![true; capacity],
            busy: Vec::new(),
            misses: 0,
            evictions: 0,
        }
    }
}

/// How long a thread that finds the state lock held spins before it
/// blocks. The lock is held for bookkeeping only (a few microseconds; an
/// install of a 64-page run with its evictions, some more), so a holder
/// that is running releases it well within this.
const SPIN: Duration = Duration::from_micros(50);

/// The state lock: a mutex whose waiters spin for up to [`SPIN`] before
/// they block.
///
/// Why not the plain `parking_lot::Mutex`: its waiters spin for a few
/// hundred nanoseconds, then yield the CPU, then park. On a machine with
/// more busy threads than cores, a yield or a park hands the CPU to
/// another thread for a whole time slice, so a miss that met the lock for
/// a microsecond's bookkeeping waited for the scheduler instead: measured
/// with an instrumented copy of the miss-latency bench (4 threads
/// scanning through the cache beside one missing random pages; 2 cores,
/// other builds running), the misses' p99 was 33 to 65 us with the plain
/// lock, most of them with involuntary context switches, and 10 to 12 us
/// spinning for up to 50 us, with almost none, against 13.5 us with 4
/// threads copying plain memory instead of scanning. On one core the holder cannot run while a waiter spins, so
/// there waiters block at once.
pub(crate) struct StateLock {
    mutex: Mutex<State>,
    /// Times the lock was taken, for tests that count what a hold does.
    #[cfg(test)]
    holds: std::sync::atomic::AtomicU64,
}

impl StateLock {
    pub(crate) fn new(state: State) -> Self {
        StateLock {
            mutex: Mutex::new(state),
            #[cfg(test)]
            holds: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Locks the state: at once if free, else after spinning (see the
    /// type's docs), else by blocking.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let state = match self.mutex.try_lock() {
            Some(state) => state,
            None => self.lock_contended(),
        };
        #[cfg(test)]
        self.holds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state
    }

    /// How many times the lock has been taken.
    #[cfg(test)]
    pub(crate) fn holds(&self) -> u64 {
        self.holds.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, State> {
        if spinning_pays() {
            let start = Instant::now();
            loop {
                // Test before trying: a failed try is a write to the
                // lock's line, which the holder then has to fetch back.
                for _ in 0..64 {
                    if !self.mutex.is_locked()
                        && let Some(state) = self.mutex.try_lock()
                    {
                        return state;
                    }
                    std::hint::spin_loop();
                }
                if start.elapsed() >= SPIN {
                    break;
                }
            }
        }
        self.mutex.lock()
    }

    /// Whether any thread holds the lock now.
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.mutex.is_locked()
    }
}

impl std::fmt::Debug for StateLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.mutex.fmt(f)
    }
}

/// Whether a waiter's spin can end before its time slice does: only with
/// another core for the holder to run on. Asked once per process.
fn spinning_pays() -> bool {
    static CORES: OnceLock<bool> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// A device read in progress; threads wanting the same pages wait on it.
#[derive(Debug, Default)]
pub(crate) struct Loading {
    done: Mutex<bool>,
    finished: Condvar,
}

impl Loading {
    /// Blocks until the read is finished (or abandoned).
    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.finished.wait(&mut done);
        }
    }

    /// Wakes every waiter.
    pub(crate) fn finish(&self) {
        *self.done.lock() = true;
        self.finished.notify_all();
    }
}
