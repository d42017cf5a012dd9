//! Test devices: a `ReadAt` that counts and logs its calls, can be slowed
//! down, and can hold reads of one position until the test opens a gate.
#![allow(dead_code)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use blockdev::{MemDevice, ReadAt};
use parking_lot::{Condvar, Mutex};

/// A memory device that records every `read_at` call.
#[derive(Debug, Default)]
pub(crate) struct CountingDevice {
    inner: MemDevice,
    reads: AtomicU64,
    log: Mutex<Vec<(u64, usize)>>,
    delay: Duration,
    /// Reads at this position wait until `open` is called.
    held_pos: Option<u64>,
    gate_open: Mutex<bool>,
    gate: Condvar,
    waiting_at_gate: AtomicU64,
}

impl CountingDevice {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        CountingDevice {
            inner: MemDevice::from_vec(bytes),
            ..Default::default()
        }
    }

    /// Every read sleeps this long first.
    pub(crate) fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Reads at `pos` block until [`open`](Self::open).
    pub(crate) fn hold_reads_at(mut self, pos: u64) -> Self {
        self.held_pos = Some(pos);
        self
    }

    pub(crate) fn open(&self) {
        *self.gate_open.lock() = true;
        self.gate.notify_all();
    }

    /// Reads currently blocked at the gate (or that went through it).
    pub(crate) fn arrived_at_gate(&self) -> u64 {
        self.waiting_at_gate.load(SeqCst)
    }

    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(SeqCst)
    }

    /// `(pos, len)` of every read so far.
    pub(crate) fn log(&self) -> Vec<(u64, usize)> {
        self.log.lock().clone()
    }

    pub(crate) fn reset(&self) {
        self.reads.store(0, SeqCst);
        self.log.lock().clear();
    }

    pub(crate) fn mem(&self) -> &MemDevice {
        &self.inner
    }
}

impl ReadAt for CountingDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, SeqCst);
        self.log.lock().push((pos, buf.len()));
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if self.held_pos == Some(pos) {
            self.waiting_at_gate.fetch_add(1, SeqCst);
            let mut open = self.gate_open.lock();
            while !*open {
                self.gate.wait(&mut open);
            }
        }
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

/// A small deterministic generator (xorshift64*), so tests need no `rand`.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Device bytes that differ at every position of a page.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}
