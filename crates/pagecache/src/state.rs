//! What the cache's state lock guards: which frame holds which page, the
//! reads in flight, the eviction policy and the miss counters. Shared by
//! the miss path and residency, below both.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

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
