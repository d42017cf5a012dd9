//! The writer thread: takes dirty entries in the order they were added,
//! encrypts and writes each outside the lock, records it if it is still the
//! current value, retries failures with backoff, and defragments and trims
//! the file when due.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use blockdev::{ReadAt, WriteAt};
use parking_lot::MutexGuard;

use crate::cipher;
use crate::defrag;
use crate::entry::Place;
use crate::state::{Shared, State};

/// Starts the writer thread.
pub(crate) fn spawn<D>(shared: Arc<Shared<D>>) -> io::Result<JoinHandle<()>>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    thread::Builder::new()
        .name("spillcache-writer".into())
        .spawn(move || run(&shared))
}

/// Marks the writer gone when the thread ends, even by a panic, so waiters
/// get [`Error::WriterStopped`](crate::Error::WriterStopped) instead of a hang.
struct AliveGuard<'a, D>(&'a Shared<D>);

impl<D> Drop for AliveGuard<'_, D> {
    fn drop(&mut self) {
        self.0.state.lock().writer_alive = false;
        self.0.progress.notify_all();
    }
}

/// One dirty value to write.
struct Job {
    slot: usize,
    generation: u64,
    data: Arc<[u8]>,
}

fn run<D>(shared: &Shared<D>)
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    let _alive = AliveGuard(shared);
    let mut scratch = Vec::new();
    // Defrags and writes alternate while both are due, so removals racing
    // with each defrag can never starve the writes.
    let mut defragged_last = false;
    let mut state = shared.state.lock();
    loop {
        if state.shutting_down {
            return;
        }
        let now = Instant::now();
        if state.defrag_not_before.is_some_and(|t| now >= t) {
            state.defrag_not_before = None;
        }
        let writes_waiting = defragged_last && !state.queue.is_empty();
        if !writes_waiting && state.defrag_due(&shared.config, now) {
            defrag::run(shared, &mut state);
            defragged_last = true;
            continue;
        }
        if let Some(at) = state.retry_at {
            if now < at {
                shared.work.wait_until(&mut state, at);
                continue;
            }
            state.retry_at = None;
        }
        match next_job(&mut state) {
            Some(job) => {
                write_one(shared, &mut state, job, &mut scratch);
                defragged_last = false;
            }
            None if defragged_last => {
                // The queue held only stale items: a due defrag may run now.
                defragged_last = false;
            }
            None => {
                trim(&mut state);
                match state.defrag_not_before {
                    Some(t) => {
                        shared.work.wait_until(&mut state, t);
                    }
                    None => shared.work.wait(&mut state),
                }
            }
        }
    }
}

/// Pops queue items until one names an entry that is still dirty with the
/// same value; stale items cost O(1) each.
fn next_job<D>(state: &mut State<D>) -> Option<Job> {
    while let Some((slot, generation)) = state.queue.pop_front() {
        if let Some(entry) = state.entries.current_mut(slot, generation)
            && let Place::Dirty(data) = &entry.place
        {
            return Some(Job {
                slot,
                generation,
                data: Arc::clone(data),
            });
        }
    }
    None
}

fn write_one<D>(
    shared: &Shared<D>,
    guard: &mut MutexGuard<'_, State<D>>,
    job: Job,
    scratch: &mut Vec<u8>,
) where
    D: ReadAt + WriteAt,
{
    let len = job.data.len() as u64;
    let offset = guard.reserve(len);
    guard.in_flight = len;
    let file = Arc::clone(&guard.file);
    let epoch = guard.file_epoch;

    let result = MutexGuard::unlocked(guard, || {
        cipher::write_sealed(&*file, offset, &job.data, scratch)
    });

    let state = &mut **guard;
    if Arc::ptr_eq(&file, &state.file) {
        state.file_len = state.file_len.max(offset + len);
    }
    if epoch != state.file_epoch {
        // `clear` ran meanwhile: it forgot this reservation and the entry.
        state.stats.discarded_writes += 1;
        return;
    }
    state.in_flight = 0;
    let current = state
        .entries
        .current_mut(job.slot, job.generation)
        .filter(|e| matches!(e.place, Place::Dirty(_)));
    match (result, current) {
        (Ok(seal), Some(entry)) => {
            let keep_copy = state.ram_copy_bytes + len <= shared.config.ram_budget;
            entry.place = Place::OnDisk {
                offset,
                seal: Box::new(seal),
                ram_copy: keep_copy.then_some(job.data),
            };
            if keep_copy {
                state.ram_copies += 1;
                state.ram_copy_bytes += len;
            }
            state.dirty -= 1;
            state.stats.writes += 1;
            state.stats.bytes_written += len;
            state.write_error = None;
            state.failures_in_a_row = 0;
            if state.dirty == 0 {
                shared.progress.notify_all();
            }
        }
        (Ok(_), None) => {
            // Overwritten or removed while being written: never attach it.
            state.free_region(offset, len);
            state.stats.discarded_writes += 1;
            state.write_error = None;
            state.failures_in_a_row = 0;
        }
        (Err(e), current) => {
            let retry = current.is_some();
            state.free_region(offset, len);
            if retry {
                state.queue.push_front((job.slot, job.generation));
            }
            state.stats.write_errors += 1;
            state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
            state.retry_at =
                Some(Instant::now() + State::<D>::backoff(&shared.config, state.failures_in_a_row));
            state.write_error = Some(e);
            shared.progress.notify_all();
        }
    }
}

/// Cuts the file back to the end of data while nothing is being written.
fn trim<D: WriteAt>(state: &mut State<D>) {
    let end = state.holes.end();
    if state.file_len > end && state.file.set_len(end).is_ok() {
        state.file_len = end;
    }
}
