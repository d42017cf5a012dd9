//! `wait_for_write` writes the queue on the calling thread when the writer
//! thread sleeps, the writer thread helping with long values: which thread
//! wrote is recorded by the device, and values must come back exact
//! whoever wrote them, also with many threads adding and waiting at once.

mod common;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::thread;

use blockdev::{MemDevice, ReadAt, WriteAt};
use common::WAIT;
use parking_lot::Mutex;
use spillcache::{Builder, SpillCache};

/// Records the name of the thread behind every write.
#[derive(Clone, Default)]
struct Recording {
    inner: MemDevice,
    writers: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn take_writers(&self) -> Vec<String> {
        std::mem::take(&mut *self.writers.lock())
    }
}

impl ReadAt for Recording {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(pos, buf)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

impl WriteAt for Recording {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        let name = thread::current().name().unwrap_or("unnamed").to_owned();
        self.writers.lock().push(name);
        self.inner.write_at(pos, buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

fn recording_cache() -> (SpillCache<Recording>, Recording) {
    let device = Recording::default();
    let file = device.clone();
    let cache = Builder::with_file_factory(move || Ok(file.clone()))
        .build()
        .unwrap();
    (cache, device)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Runs `f` on a thread with a known name.
fn on_thread<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

#[test]
fn a_waiting_caller_writes_when_the_writer_sleeps() {
    let (cache, device) = recording_cache();
    let wrote_here = on_thread("waiter", || {
        let mut wrote_here = 0;
        for i in 0..20u8 {
            let value = pattern(1000, i);
            cache.add(&[i], &value).unwrap();
            assert!(cache.wait_for_write(WAIT).unwrap());
            assert_eq!(cache.get(&[i]).unwrap(), Some(value));
            let writers = device.take_writers();
            assert!(!writers.is_empty(), "value {i} was written");
            wrote_here += usize::from(writers.iter().all(|w| w == "waiter"));
        }
        wrote_here
    });
    // The writer thread wakes tens of microseconds after an `add`; the
    // caller reaches the lock first nearly always.
    assert!(wrote_here > 0, "the caller never wrote its own value");
    assert_eq!(cache.stats().writes, 20);
    assert_eq!(cache.num_cached_in_ram(), 0);
}

#[test]
fn a_long_value_written_by_a_caller_is_shared_with_the_writer_thread() {
    let (cache, device) = recording_cache();
    let shared = on_thread("waiter", || {
        let mut shared = 0;
        for i in 0..10u8 {
            // Odd lengths: the last piece is short.
            let value = pattern((1 << 20) + 4097 * usize::from(i), i);
            cache.add(&[i], &value).unwrap();
            assert!(cache.wait_for_write(WAIT).unwrap());
            let writers = device.take_writers();
            shared += usize::from(
                writers.iter().any(|w| w == "waiter")
                    && writers.iter().any(|w| w == "spillcache-writer"),
            );
            assert_eq!(cache.get(&[i]).unwrap(), Some(value), "value {i}");
        }
        shared
    });
    // Encrypting a piece takes far longer than the writer's wake-up.
    assert!(shared > 0, "the writer thread never helped the caller");
    for i in 0..10u8 {
        let value = pattern((1 << 20) + 4097 * usize::from(i), i);
        assert_eq!(cache.get(&[i]).unwrap(), Some(value));
    }
}

#[test]
fn many_threads_adding_and_waiting_lose_and_mix_up_nothing() {
    let cache = SpillCache::new(std::env::temp_dir()).unwrap();
    let sizes = [0usize, 1, 1000, 300 << 10, 4096, (256 << 10) + 3];
    let finals: Vec<HashMap<Vec<u8>, Vec<u8>>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..4u8)
            .map(|t| {
                let cache = &cache;
                scope.spawn(move || {
                    let mut mine = HashMap::new();
                    for round in 0..24usize {
                        // Eight keys per thread, overwritten as rounds go.
                        let key = vec![t, (round % 8) as u8];
                        let value = pattern(sizes[round % sizes.len()], t ^ round as u8);
                        cache.add(&key, &value).unwrap();
                        if round % 3 != 2 {
                            assert!(cache.wait_for_write(WAIT).unwrap());
                        }
                        if round % 7 == 6 {
                            cache.defrag(WAIT).unwrap();
                        }
                        assert_eq!(cache.get(&key).unwrap().as_ref(), Some(&value));
                        mine.insert(key, value);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(cache.wait_for_write(WAIT).unwrap());
    for (key, value) in finals.iter().flatten() {
        assert_eq!(cache.get(key).unwrap().as_ref(), Some(value), "key {key:?}");
    }
    assert_eq!(cache.len(), 32);
}
