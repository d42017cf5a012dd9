//! `wait_for_write` writes the queue on the calling thread when the writer
//! thread sleeps, the writer thread helping with long values. Which thread
//! gets there first is timing, so these tests assert only what holds
//! whoever wrote: values come back exact, also with many threads adding
//! and waiting at once, and a caller never writes another thread's value.
//! That the caller writes, and shares long values with the writer thread,
//! is tested where the thread that writes is fixed (`writer.rs`).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use blockdev::MemDevice;
use common::WAIT;
use common::gate::{Gate, gated_device};
use common::hooked::HookedDevice;
use parking_lot::Mutex;
use spillcache::{Builder, SpillCache};

/// A cache whose device records the name of the thread behind every write.
fn recording_cache() -> (SpillCache<HookedDevice>, Arc<Mutex<Vec<String>>>) {
    let writers: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&writers);
    let file = HookedDevice::new(MemDevice::new(), move || {
        let name = thread::current().name().unwrap_or("unnamed").to_owned();
        recorded.lock().push(name);
    });
    let cache = Builder::with_file_factory(move || Ok(file.clone()))
        .build()
        .unwrap();
    (cache, writers)
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
fn values_added_and_waited_for_come_back_exact_whoever_wrote_them() {
    let (cache, writers_seen) = recording_cache();
    on_thread("waiter", || {
        for i in 0..20u8 {
            let value = pattern(1000, i);
            cache.add(&[i], &value).unwrap();
            assert!(cache.wait_for_write(WAIT).unwrap());
            assert_eq!(cache.get(&[i]).unwrap(), Some(value));
            let writers = std::mem::take(&mut *writers_seen.lock());
            assert!(!writers.is_empty(), "value {i} was written");
        }
    });
    assert_eq!(cache.stats().writes, 20);
    assert_eq!(cache.num_cached_in_ram(), 0);
}

#[test]
fn long_values_come_back_exact_whoever_wrote_their_pieces() {
    let (cache, _) = recording_cache();
    on_thread("waiter", || {
        for i in 0..10u8 {
            // Odd lengths: the last piece is short.
            let value = pattern((1 << 20) + 4097 * usize::from(i), i);
            cache.add(&[i], &value).unwrap();
            assert!(cache.wait_for_write(WAIT).unwrap());
            assert_eq!(cache.get(&[i]).unwrap(), Some(value), "value {i}");
        }
    });
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

/// Issue 16, item 8: a caller whose device hangs on another thread's value
/// returns at its timeout; it writes only values it added itself. Whether
/// the writer thread or nobody has started on that value when the caller
/// waits, the caller never enters the device for it.
#[test]
fn a_caller_with_a_timeout_never_waits_on_another_threads_hung_write() {
    let gate = Arc::new(Gate::closed());
    let device_gate = Arc::clone(&gate);
    let cache = Arc::new(
        Builder::with_file_factory(move || Ok(gated_device(MemDevice::new(), &device_gate)))
            .build()
            .unwrap(),
    );
    on_thread("adder", || cache.add(b"theirs", &pattern(1000, 1)).unwrap());
    let waiter_returned = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (cache, gate) = (Arc::clone(&cache), Arc::clone(&gate));
        let returned = Arc::clone(&waiter_returned);
        thread::Builder::new()
            .name("waiter".into())
            .spawn(move || {
                cache.add(b"mine", &pattern(100, 2)).unwrap();
                let result = cache.wait_for_write(std::time::Duration::from_millis(100));
                returned.store(true, Ordering::SeqCst);
                gate.wake();
                result
            })
            .unwrap()
    };
    // Until the caller either returned or wrote.
    let reached_by_waiter = gate
        .wait_until(|held| {
            waiter_returned.load(Ordering::SeqCst) || held.iter().any(|n| n == "waiter")
        })
        .iter()
        .any(|n| n == "waiter");
    // With the write hung: other keys are added and read as usual.
    cache.add(b"other", b"x").unwrap();
    assert_eq!(cache.get(b"other").unwrap(), Some(b"x".to_vec()));
    assert_eq!(cache.get(b"theirs").unwrap(), Some(pattern(1000, 1)));
    gate.open();
    let waited = waiter.join().unwrap();
    assert!(
        !reached_by_waiter,
        "the caller wrote another thread's value"
    );
    assert!(
        !waited.unwrap(),
        "returned at its timeout, values still waiting"
    );
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"theirs").unwrap(), Some(pattern(1000, 1)));
    assert_eq!(cache.get(b"mine").unwrap(), Some(pattern(100, 2)));
}
