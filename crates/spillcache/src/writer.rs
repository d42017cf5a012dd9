//! The writer thread: takes dirty entries in the order they were queued,
//! encrypts and writes each outside the lock, records it if it is still the
//! current value, sets failed writes aside for a later retry (so they never
//! block the values behind them), gives freed space back to the file
//! system, and defragments when due.
//!
//! A caller waiting for the queue to drain while this thread sleeps writes
//! the queue itself ([`write_here`]): the value is on disk without two
//! thread wake-ups (writer, then waiter), and this thread, once awake, helps
//! with the pieces of a long value instead. One thread writes at a time:
//! the caller takes over only from a sleeping writer, and the writer thread
//! does nothing but help until the caller is done.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use blockdev::{ReadAt, WriteAt};
use parking_lot::MutexGuard;

use crate::cipher;
use crate::defrag;
use crate::entry::Place;
use crate::recycle::RECYCLE_MIN;
use crate::space;
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
        self.0.room.notify_all();
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
    // Started by the first long value, ended when this thread ends.
    let mut helper = None;
    // Defrags and writes alternate while both are due, so removals racing
    // with each defrag can never starve the writes.
    let mut defragged_last = false;
    let mut state = shared.state.lock();
    loop {
        if state.shutting_down {
            return;
        }
        if state.caller_writing {
            help(shared, &mut state, &mut scratch);
            continue;
        }
        // Before any reservation: a region listed for punching must still be
        // free when it is punched. The file is cut when no write waits, and
        // always while writes are failing: then the space may be what a
        // failed write needs.
        let cut = state.queue.is_empty() || !state.retry.is_empty();
        space::give_back(&mut state, cut);
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
        // Failed writes go again after their backoff, or as soon as space
        // was freed, behind what is queued now.
        if !state.retry.is_empty()
            && (state.space_freed || state.retry_at.is_some_and(|t| now >= t))
        {
            requeue_failed(&mut state);
        }
        match next_job(&mut state) {
            Some(job) => {
                let spare = write_one(shared, &mut state, job, &mut scratch, &mut helper);
                keep_spare(shared, &mut state, spare);
                defragged_last = false;
            }
            None if defragged_last => {
                // The queue held only stale items: a due defrag may run now.
                defragged_last = false;
            }
            None => sleep(shared, &mut state),
        }
    }
}

/// Offers the buffer of a value just written to the next `add`s (large
/// ones only; small buffers are freed here, under the lock).
fn keep_spare<D>(
    shared: &Shared<D>,
    state: &mut MutexGuard<'_, State<D>>,
    spare: Option<Arc<[u8]>>,
) {
    if let Some(buf) = spare.filter(|buf| buf.len() >= RECYCLE_MIN) {
        // Spares may hold a quarter of the pending bound.
        let limit = shared.config.max_pending_bytes / 4;
        if let Some(unused) = shared.recycler.put_back(buf, limit, Instant::now()) {
            MutexGuard::unlocked(state, || drop(unused));
        }
    }
}

/// While a caller writes: takes pieces of the long value it offers, or
/// sleeps until it offers one or is done.
fn help<D>(shared: &Shared<D>, state: &mut MutexGuard<'_, State<D>>, scratch: &mut Vec<u8>)
where
    D: WriteAt,
{
    match state.split.clone().filter(|job| job.has_work()) {
        Some(job) => {
            if scratch.len() < cipher::PIECE {
                scratch.resize(cipher::PIECE, 0);
            }
            MutexGuard::unlocked(state, || {
                job.take_pieces(&mut scratch[..cipher::PIECE]);
                drop(job);
            });
        }
        None => sleep(shared, state),
    }
}

/// Sleeps until woken or until the next deadline (a retry, a defrag
/// backoff, a spare buffer to free), then frees expired spares.
fn sleep<D>(shared: &Shared<D>, state: &mut MutexGuard<'_, State<D>>) {
    let retry_at = if state.retry.is_empty() {
        None
    } else {
        state.retry_at
    };
    let until = earliest(retry_at, state.defrag_not_before);
    state.writer_idle = true;
    wait(shared, state, earliest(until, shared.recycler.expires_at()));
    state.writer_idle = false;
    let expired = shared.recycler.expire(Instant::now());
    drop_outside(state, expired);
}

/// Offers the pieces of a long value a caller writes to the writer thread.
struct WriterHelps<'a, D>(&'a Shared<D>);

impl<D: WriteAt + Send + Sync + 'static> cipher::Helpers<D> for WriterHelps<'_, D> {
    fn offer(&mut self, job: &Arc<cipher::SplitWrite<D>>) {
        self.0.state.lock().split = Some(Arc::clone(job));
        self.0.work.notify_one();
    }

    fn withdraw(&mut self) {
        let offered = self.0.state.lock().split.take();
        drop(offered);
    }
}

/// For a caller about to wait for the queue to drain: if the writer thread
/// sleeps and nothing but plain writes is due (no failures being retried,
/// no defragmentation), writes the queue on the calling thread, the writer
/// thread helping with long values, until it is empty, a write fails or
/// `deadline` passes. Returns whether it wrote (tried to write) anything.
pub(crate) fn write_here<D>(
    shared: &Shared<D>,
    state: &mut MutexGuard<'_, State<D>>,
    deadline: Option<Instant>,
) -> bool
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    let now = Instant::now();
    let writer_work = !state.retry.is_empty()
        || state.write_error.is_some()
        || state.defrag_due(&shared.config, now);
    if !state.writer_idle
        || state.caller_writing
        || state.shutting_down
        || !state.writer_alive
        || state.queue.is_empty()
        || writer_work
    {
        return false;
    }
    state.caller_writing = true;
    let mut scratch = std::mem::take(&mut state.caller_scratch);
    let mut wrote = false;
    while deadline.is_none_or(|d| Instant::now() < d) && state.write_error.is_none() {
        // As the writer thread does: no region listed for punching may be
        // reserved before it is punched.
        space::give_back(state, false);
        let Some(job) = next_job(state) else {
            break;
        };
        let spare = write_one(shared, state, job, &mut scratch, &mut WriterHelps(shared));
        keep_spare(shared, state, spare);
        wrote = true;
    }
    state.caller_writing = false;
    state.caller_scratch = scratch;
    // Wake the writer thread only for work of its own (punching, cutting,
    // retries, defragmentation, values queued meanwhile): woken for
    // nothing, it would take the lock just as this caller's next `add` wants it.
    let writer_due = !state.to_punch.is_empty()
        || state.file_len > state.holes.end()
        || !state.queue.is_empty()
        || !state.retry.is_empty()
        || state.defrag_due(&shared.config, Instant::now());
    if writer_due {
        shared.work.notify_one();
    }
    wrote
}

/// The earlier of two deadlines, where `None` is no deadline.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Frees `buffers` (spares, all large) without the lock: unmapping takes
/// time.
fn drop_outside<D>(state: &mut MutexGuard<'_, State<D>>, buffers: Vec<Arc<[u8]>>) {
    if !buffers.is_empty() {
        MutexGuard::unlocked(state, || drop(buffers));
    }
}

/// Sleeps until woken, or until `until` when there is one.
fn wait<D>(shared: &Shared<D>, state: &mut MutexGuard<'_, State<D>>, until: Option<Instant>) {
    match until {
        Some(t) => {
            shared.work.wait_until(state, t);
        }
        None => shared.work.wait(state),
    }
}

/// Puts the failed writes back into the queue for another try: those that
/// fit into a hole first, since a full disk may still take them.
fn requeue_failed<D>(state: &mut State<D>) {
    state.retry_at = None;
    state.space_freed = false;
    let failed = std::mem::take(&mut state.retry);
    let (fits, rest): (Vec<usize>, Vec<usize>) = failed.into_iter().partition(|&slot| {
        state
            .entries
            .get(slot)
            .is_some_and(|e| state.holes.fits(e.len))
    });
    state.queue.extend(fits);
    state.queue.extend(rest);
}

/// Pops queue items until one names a slot whose entry is dirty; stale
/// items cost O(1) each.
fn next_job<D>(state: &mut State<D>) -> Option<Job> {
    while let Some(slot) = state.queue.pop_front() {
        state.entries.set_queued(slot, false);
        if let Some(entry) = state.entries.get(slot)
            && let Place::Dirty(data) = &entry.place
        {
            return Some(Job {
                slot,
                generation: entry.generation,
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
    helpers: &mut impl cipher::Helpers<D>,
) -> Option<Arc<[u8]>>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    let len = job.data.len() as u64;
    let offset = guard.reserve(len);
    guard.in_flight = len;
    guard.writing = Some(job.slot);
    let file = Arc::clone(&guard.file);
    let epoch = guard.file_epoch;

    let result = MutexGuard::unlocked(guard, || {
        cipher::write_sealed_shared(&file, offset, &job.data, scratch, helpers)
    });

    let state = &mut **guard;
    state.writing = None;
    if Arc::ptr_eq(&file, &state.file) {
        state.file_len = state.file_len.max(offset.saturating_add(len));
    }
    if epoch != state.file_epoch {
        // `clear` ran meanwhile: it forgot this reservation and the entry.
        state.stats.discarded_writes += 1;
        return None;
    }
    state.in_flight = 0;
    let current = state
        .entries
        .current_mut(job.slot, job.generation)
        .filter(|e| matches!(e.place, Place::Dirty(_)));
    match (result, current) {
        (Ok(seal), Some(entry)) => {
            let keep_copy = state.ram_copy_bytes.saturating_add(len) <= shared.config.ram_budget;
            let (ram_copy, spare) = if keep_copy {
                (Some(job.data), None)
            } else {
                (None, Some(job.data))
            };
            entry.place = Place::OnDisk {
                offset,
                seal: Box::new(seal),
                ram_copy,
            };
            if keep_copy {
                state.ram_copies += 1;
                state.ram_copy_bytes += len;
            }
            state.dirty -= 1;
            state.pending_bytes -= len;
            state.stats.writes += 1;
            state.stats.bytes_written += len;
            if state.retry.is_empty() {
                state.write_error = None;
                state.failures_in_a_row = 0;
            }
            shared.room.notify_all();
            if state.dirty == 0 {
                shared.progress.notify_all();
            }
            spare
        }
        (Ok(_), None) => {
            // Overwritten or removed while being written: never attach it.
            state.free_region(offset, len);
            state.stats.discarded_writes += 1;
            Some(job.data)
        }
        (Err(e), current) => {
            if current.is_some() && !state.entries.is_queued(job.slot) {
                // Set aside: the values behind it go first.
                state.entries.set_queued(job.slot, true);
                state.retry.push_back(job.slot);
            }
            state.free_region(offset, len);
            // Only a retry round that follows freed space counts as such.
            state.space_freed = false;
            state.stats.write_errors += 1;
            state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
            // Past what an Instant holds (validated options never get
            // there), wait for a wake-up instead of a deadline.
            state.retry_at =
                State::<D>::retry_deadline(&shared.config, state.failures_in_a_row, Instant::now());
            state.write_error = Some(e);
            shared.progress.notify_all();
            None
        }
    }
}
