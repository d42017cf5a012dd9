//! A gate the test opens and closes, and a device whose writes wait at
//! it, so a test can act while a write is under way.

use std::sync::Arc;
use std::thread;

use blockdev::MemDevice;
use parking_lot::{Condvar, Mutex};

use super::WAIT;
use super::hooked::HookedDevice;

/// Holds writes while closed and names the threads whose writes arrived
/// while it was closed.
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

struct GateState {
    closed: bool,
    /// The thread behind each write that arrived while closed, in order.
    held: Vec<String>,
}

impl Gate {
    /// A gate that holds every write until `open`.
    pub fn closed() -> Self {
        Self::new(true)
    }

    /// A gate that lets writes through until `close`.
    pub fn opened() -> Self {
        Self::new(false)
    }

    fn new(closed: bool) -> Self {
        Gate {
            state: Mutex::new(GateState {
                closed,
                held: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Called by a write: waits while the gate is closed.
    fn pass(&self) {
        let mut state = self.state.lock();
        if state.closed {
            let name = thread::current().name().unwrap_or("unnamed").to_owned();
            state.held.push(name);
            self.changed.notify_all();
        }
        while state.closed {
            self.changed.wait(&mut state);
        }
    }

    /// Holds writes again and forgets the ones already held.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.held.clear();
    }

    pub fn open(&self) {
        self.state.lock().closed = false;
        self.changed.notify_all();
    }

    /// Waits until a write is held at the closed gate.
    pub fn wait_for_a_write(&self) {
        self.wait_until(|held| !held.is_empty());
    }

    /// Waits, woken by every held write and every `wake`, until `done`
    /// holds for the threads held so far; returns them.
    pub fn wait_until(&self, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut state = self.state.lock();
        while !done(&state.held) {
            let timed_out = self.changed.wait_for(&mut state, WAIT).timed_out();
            assert!(!timed_out, "waited {WAIT:?} at the gate");
        }
        state.held.clone()
    }

    /// Wakes `wait_until` to look again, after the test changed what its
    /// `done` reads. Taking the lock first means the wake-up cannot fall
    /// between a look and the wait that follows it.
    pub fn wake(&self) {
        let _state = self.state.lock();
        self.changed.notify_all();
    }
}

/// An in-memory device whose writes pass `gate`.
pub fn gated_device(inner: MemDevice, gate: &Arc<Gate>) -> HookedDevice {
    let gate = Arc::clone(gate);
    HookedDevice::new(inner, move || gate.pass())
}
