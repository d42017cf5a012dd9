//! A device whose writes wait at a gate the test opens and closes, so a
//! test can act while a write is under way.

use std::io;
use std::sync::Arc;
use std::thread;

use blockdev::{MemDevice, ReadAt, WriteAt};
use parking_lot::{Condvar, Mutex};

use super::WAIT;

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

/// An in-memory device whose writes pass a gate. Clones share the bytes
/// and the gate.
#[derive(Clone)]
pub struct GatedDevice {
    pub inner: MemDevice,
    pub gate: Arc<Gate>,
}

impl ReadAt for GatedDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

impl WriteAt for GatedDevice {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        self.gate.pass();
        self.inner.write_at(pos, buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
