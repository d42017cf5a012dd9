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
//! does nothing but help until the caller is done. The caller writes only
//! the values it added itself, so a device that hangs holds it no longer
//! than the write of one of its own values.
//!
//! A device call that panics, on whichever thread (a write, or a piece of
//! one on a helper thread; a defragmentation's copy; a punch; a cut),
//! stops writing for good (waiters get
//! [`Error::WriterStopped`](crate::Error::WriterStopped)): a value being
//! written goes back to the queue, in RAM and readable, a value being moved
//! stays readable at its old place, and the reservation of either is freed.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use blockdev::{ReadAt, WriteAt};
use parking_lot::MutexGuard;

use crate::cipher;
use crate::defrag;
use crate::entry::Place;
use crate::handoff;
use crate::recycle::RECYCLE_MIN;
use crate::space;
use crate::state::{Presence, Shared, State};

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
    let presence = Presence::default();
    let mut scratch = Vec::new();
    // Started by the first long value, ended when this thread ends.
    let mut helper = None;
    // Defrags and writes alternate while both are due, so removals racing
    // with each defrag can never starve the writes.
    let mut defragged_last = false;
    let mut state = shared.state.lock();
    loop {
        // A caller's write that panicked stopped writing for good.
        if state.shutting_down || !state.writer_alive {
            return;
        }
        if state.caller_writing.is_some() {
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
                let spare = write_one(
                    shared,
                    &mut state,
                    job,
                    &mut scratch,
                    &mut helper,
                    &presence,
                );
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
/// ones only; small buffers are freed here, under the lock). A writer
/// thread asleep past the time the spares are due to be freed (a caller
/// wrote) is woken to free them on time.
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
        if state.writer_idle
            && let Some(expiry) = shared.recycler.expires_at()
            && state.writer_wakes_at.is_none_or(|wake| wake > expiry)
        {
            state.writer_wakes_at = Some(expiry);
            shared.work.notify_one();
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
    let until = earliest(until, shared.recycler.expires_at());
    // Checked again under the lock just before waiting: the loop's checks
    // may be older than a release of the lock (punching holes, writing),
    // and a drop that set `shutting_down` and notified meanwhile would
    // otherwise be missed, leaving the drop joining a sleeping thread.
    if state.shutting_down || !state.writer_alive {
        return;
    }
    state.writer_idle = true;
    state.writer_wakes_at = until;
    wait(shared, state, until);
    state.writer_idle = false;
    let expired = shared.recycler.expire(Instant::now());
    drop_outside(state, expired);
}

/// Offers the pieces of a long value a caller writes to the writer thread.
struct WriterHelps<'a, D>(&'a Shared<D>);

impl<D: WriteAt + Send + Sync + 'static> handoff::Helpers<D> for WriterHelps<'_, D> {
    fn offer(&mut self, job: &Arc<handoff::SplitWrite<D>>) {
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
/// thread helping with long values, until it is empty, its front is a
/// value another thread added (left to the writer thread), a write fails,
/// or `deadline` passes: so a device that hangs holds the caller past its
/// deadline by one write of its own at most. Returns whether it wrote
/// (tried to write) anything; a write that panicked stopped writing for
/// good (see [`AbandonedWrite`]) and counts as tried.
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
        || state.caller_writing.is_some()
        || state.shutting_down
        || !state.writer_alive
        || state.queue.is_empty()
        || writer_work
    {
        return false;
    }
    let me = thread::current().id();
    let presence = Presence::default();
    state.caller_writing = Some(presence.mark());
    let mut scratch = std::mem::take(&mut state.caller_scratch);
    let mut wrote = false;
    // A device write that panics ends here, the state already put back by
    // `AbandonedWrite`: it is reported as the writer thread's death would
    // be, not unwound into a caller whose thread wrote by an accident of
    // timing.
    let finished = panic::catch_unwind(AssertUnwindSafe(|| {
        while state.writer_alive
            && deadline.is_none_or(|d| Instant::now() < d)
            && state.write_error.is_none()
        {
            // As the writer thread does: no region listed for punching may
            // be reserved before it is punched.
            space::give_back(state, false);
            let Some(job) = next_job_of(state, me) else {
                break;
            };
            let spare = write_one(
                shared,
                state,
                job,
                &mut scratch,
                &mut WriterHelps(shared),
                &presence,
            );
            keep_spare(shared, state, spare);
            wrote = true;
        }
    }));
    state.caller_writing = None;
    state.caller_scratch = scratch;
    if finished.is_err() {
        shared.stop_writing(state);
        return true;
    }
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
    while !state.queue.is_empty() {
        if let Some(job) = pop_job(state) {
            return Some(job);
        }
    }
    None
}

/// [`next_job`] for a caller writing the queue: `None` as soon as the
/// next dirty value is one another thread added (it stays queued).
fn next_job_of<D>(state: &mut State<D>, owner: ThreadId) -> Option<Job> {
    while let Some(&slot) = state.queue.front() {
        let foreign = state
            .entries
            .get(slot)
            .is_some_and(|e| matches!(e.place, Place::Dirty(_)) && e.added_by != owner);
        if foreign {
            return None;
        }
        if let Some(job) = pop_job(state) {
            return Some(job);
        }
    }
    None
}

/// Pops the front item of the queue: its job when its entry is dirty.
fn pop_job<D>(state: &mut State<D>) -> Option<Job> {
    let slot = state.queue.pop_front()?;
    state.entries.set_queued(slot, false);
    let entry = state.entries.get(slot)?;
    match &entry.place {
        Place::Dirty(data) => Some(Job {
            slot,
            generation: entry.generation,
            data: Arc::clone(data),
        }),
        _ => None,
    }
}

/// Armed around a device write while the lock is released: if the write
/// unwinds (a device that panics), puts the value back at the front of the
/// queue (it is still in RAM), frees its reservation and stops writing for
/// good, so nothing waits for a write that will never finish and the state
/// stays consistent. Unwinding from inside `MutexGuard::unlocked` drops it
/// before the lock is taken back, so it takes the lock itself.
struct AbandonedWrite<'a, D> {
    shared: &'a Shared<D>,
    slot: usize,
    generation: u64,
    offset: u64,
    len: u64,
    epoch: u64,
}

impl<D> AbandonedWrite<'_, D> {
    /// The write returned: nothing to undo.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl<D> Drop for AbandonedWrite<'_, D> {
    fn drop(&mut self) {
        let mut guard = self.shared.state.lock();
        let state = &mut *guard;
        state.writing = None;
        state.split = None;
        // After a `clear` the reservation and the entry are forgotten.
        if state.file_epoch == self.epoch {
            state.in_flight = 0;
            state.free_region(self.offset, self.len);
        }
        let dirty = state
            .entries
            .current_mut(self.slot, self.generation)
            .is_some_and(|e| matches!(e.place, Place::Dirty(_)));
        if dirty && !state.entries.is_queued(self.slot) {
            state.entries.set_queued(self.slot, true);
            state.queue.push_front(self.slot);
        }
        self.shared.stop_writing(state);
    }
}

fn write_one<D>(
    shared: &Shared<D>,
    guard: &mut MutexGuard<'_, State<D>>,
    job: Job,
    scratch: &mut Vec<u8>,
    helpers: &mut impl handoff::Helpers<D>,
    presence: &Presence,
) -> Option<Arc<[u8]>>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    let len = job.data.len() as u64;
    let offset = guard.reserve(len);
    guard.in_flight = len;
    guard.writing = Some((job.slot, presence.mark()));
    let file = Arc::clone(&guard.file);
    let epoch = guard.file_epoch;

    let result = MutexGuard::unlocked(guard, || {
        let abandoned = AbandonedWrite {
            shared,
            slot: job.slot,
            generation: job.generation,
            offset,
            len,
            epoch,
        };
        let result = handoff::write_sealed_shared(&file, offset, &job.data, scratch, helpers);
        abandoned.disarm();
        result
    });

    let state = &mut **guard;
    state.writing = None;
    if result.as_ref().is_err_and(handoff::helper_panicked) {
        // A thread helping with the pieces (the cipher thread, or the
        // writer thread for a caller) died in the device: writing stops
        // for good, as if the panic had been here. The value is set aside
        // below, still dirty.
        shared.stop_writing(state);
    }
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

#[cfg(test)]
mod tests {
    //! Which thread writes is decided by timing in the public API (the
    //! writer thread may wake before a waiting caller takes the lock); here
    //! a test holds the lock from the moment the writer thread sleeps, so a
    //! caller's write happens for sure.

    use std::sync::{OnceLock, Weak};
    use std::time::Duration;

    use blockdev::MemDevice;
    use parking_lot::{Condvar, Mutex};

    use super::*;
    use crate::config::Config;
    use crate::recycle::Recycler;
    use crate::state::Keep;

    /// Long enough for a loaded machine; the tests normally take microseconds.
    const WAIT: Duration = Duration::from_secs(30);

    /// A writer thread over `device`, shut down and joined on drop.
    struct Running<D: ReadAt + WriteAt + Send + Sync + 'static> {
        shared: Arc<Shared<D>>,
        thread: Option<JoinHandle<()>>,
    }

    impl<D: ReadAt + WriteAt + Send + Sync + 'static> Running<D> {
        fn start(device: D) -> Self {
            let config = Config::default();
            let shared = Arc::new(Shared {
                state: Mutex::new(State::new(device, &config, u64::MAX)),
                work: Condvar::new(),
                progress: Condvar::new(),
                room: Condvar::new(),
                factory: Box::new(|| Err::<D, _>(io::Error::other("one file per test"))),
                config,
                recycler: Recycler::default(),
                read_helper: OnceLock::new(),
            });
            let thread = spawn(Arc::clone(&shared)).unwrap();
            Running {
                shared,
                thread: Some(thread),
            }
        }

        /// The lock, taken while the writer thread sleeps with nothing to do.
        fn writer_asleep(&self) -> MutexGuard<'_, State<D>> {
            let deadline = Instant::now() + WAIT;
            loop {
                let state = self.shared.state.lock();
                if state.writer_idle && state.queue.is_empty() {
                    return state;
                }
                drop(state);
                assert!(Instant::now() < deadline, "the writer thread never slept");
                thread::sleep(Duration::from_millis(1));
            }
        }

        /// Waits (bounded) until `done` holds of the state.
        fn wait_until(&self, what: &str, done: impl Fn(&State<D>) -> bool) {
            let deadline = Instant::now() + WAIT;
            while !done(&self.shared.state.lock()) {
                assert!(Instant::now() < deadline, "never: {what}");
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    impl<D: ReadAt + WriteAt + Send + Sync + 'static> Drop for Running<D> {
        fn drop(&mut self) {
            self.shared.state.lock().shutting_down = true;
            self.shared.work.notify_all();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Records the thread behind every write; panics instead of writing
    /// when `panics`; with `wait_for_writer_thread`, holds other threads'
    /// writes until the writer thread has made one (and, once `sleeps_in`
    /// is set, until it sleeps again), and the writer thread's until another
    /// thread has begun one.
    #[derive(Default)]
    struct Device {
        inner: MemDevice,
        writers: Mutex<Vec<ThreadId>>,
        panics: bool,
        panics_on_punch: bool,
        panics_on_writer_thread: bool,
        wait_for_writer_thread: bool,
        writer_thread_wrote: Mutex<bool>,
        /// Set (under `writer_thread_wrote`'s lock) once a thread other
        /// than the writer thread has begun a write.
        caller_began: Mutex<bool>,
        changed: Condvar,
        sleeps_in: OnceLock<Weak<Shared<Device>>>,
    }

    impl Device {
        fn writers(&self) -> Vec<ThreadId> {
            self.writers.lock().clone()
        }
    }

    impl ReadAt for Device {
        fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read_at(pos, buf)
        }

        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
    }

    impl WriteAt for Device {
        fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
            self.writers.lock().push(thread::current().id());
            assert!(!self.panics, "device write panicked (expected by the test)");
            let mut wrote = self.writer_thread_wrote.lock();
            if thread::current().name() == Some("spillcache-writer") {
                if self.wait_for_writer_thread {
                    // Not before the caller has begun a write of its own:
                    // else a caller descheduled after handing out the
                    // pieces finds the writer thread has taken them all.
                    let deadline = Instant::now() + WAIT;
                    while !*self.caller_began.lock()
                        && !self.changed.wait_until(&mut wrote, deadline).timed_out()
                    {
                    }
                }
                *wrote = true;
                self.changed.notify_all();
                drop(wrote);
                assert!(
                    !self.panics_on_writer_thread,
                    "device write panicked on the writer thread (expected by the test)"
                );
            } else if self.wait_for_writer_thread {
                *self.caller_began.lock() = true;
                self.changed.notify_all();
                // Bounded: a writer thread that never helps fails the test.
                let deadline = Instant::now() + WAIT;
                while !*wrote && !self.changed.wait_until(&mut wrote, deadline).timed_out() {}
                drop(wrote);
                if let Some(shared) = self.sleeps_in.get().and_then(Weak::upgrade) {
                    while !shared.state.lock().writer_idle && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            self.inner.write_at(pos, buf)
        }

        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }

        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }

        /// What `blockdev::punch_hole` asks first.
        fn as_file(&self) -> Option<&std::fs::File> {
            assert!(
                !self.panics_on_punch,
                "device punch panicked (expected by the test)"
            );
            None
        }
    }

    fn dirty(state: &State<Device>, key: &[u8]) -> bool {
        state
            .entries
            .slot_of(key)
            .and_then(|slot| state.entries.get(slot))
            .is_some_and(|e| matches!(e.place, Place::Dirty(_)))
    }

    #[test]
    fn a_device_panicking_on_a_callers_thread_stops_writing_and_keeps_the_value() {
        let running = Running::start(Device {
            panics: true,
            ..Device::default()
        });
        let mut state = running.writer_asleep();
        state.insert(b"k", Arc::from(&b"value"[..]), Keep::Spill);
        assert!(write_here(&running.shared, &mut state, None), "tried");
        assert!(!state.writer_alive, "reported as stopped");
        assert!(dirty(&state, b"k"), "still in RAM");
        assert_eq!(state.queue.len(), 1, "back in the queue");
        assert_eq!(
            (state.holes.end(), state.in_flight),
            (0, 0),
            "reservation freed"
        );
        state.check().unwrap();
        drop(state);
        // The writer thread ends too, instead of helping a caller forever.
        let deadline = Instant::now() + WAIT;
        while !running.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the writer thread never ended");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_device_panicking_on_a_callers_punch_stops_writing_and_keeps_the_value() {
        let running = Running::start(Device {
            panics_on_punch: true,
            ..Device::default()
        });
        let mut state = running.writer_asleep();
        state.insert(b"k", Arc::from(&b"value"[..]), Keep::Spill);
        // As a free of whole blocks lists them (this device's state was
        // made unable to punch, so list one by hand).
        state.to_punch.push((0, 4096));
        assert!(write_here(&running.shared, &mut state, None), "tried");
        assert!(!state.writer_alive, "reported as stopped");
        assert!(dirty(&state, b"k"), "still in RAM");
        assert_eq!(
            (state.queue.len(), state.in_flight, state.holes.end()),
            (1, 0, 0),
            "still queued, nothing reserved"
        );
        assert!(state.caller_writing.is_none());
        state.check().unwrap();
        drop(state);
        let deadline = Instant::now() + WAIT;
        while !running.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the writer thread never ended");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_writer_thread_panicking_on_a_piece_of_a_callers_value_stops_writing() {
        let running = Running::start(Device {
            panics_on_writer_thread: true,
            wait_for_writer_thread: true,
            ..Device::default()
        });
        let mut state = running.writer_asleep();
        state.insert(b"long", Arc::from(vec![5u8; 1 << 20]), Keep::Spill);
        assert!(write_here(&running.shared, &mut state, None));
        assert!(dirty(&state, b"long"), "still in RAM");
        assert!(!state.writer_alive, "reported as stopped at once");
        drop(state);
        let deadline = Instant::now() + WAIT;
        while !running.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            assert!(Instant::now() < deadline, "the writer thread never ended");
            thread::sleep(Duration::from_millis(1));
        }
        let state = running.shared.state.lock();
        assert!(!state.writer_alive, "reported as stopped");
        assert!(dirty(&state, b"long"));
        assert_eq!((state.retry.len(), state.in_flight), (1, 0), "set aside");
        assert_eq!(state.holes.end(), 0, "reservation freed");
        state.check().unwrap();
    }

    #[test]
    fn a_caller_writes_its_own_values_and_leaves_the_others_to_the_writer_thread() {
        let running = Running::start(Device::default());
        let me = thread::current().id();
        let state = running.writer_asleep();
        drop(state);
        // Queued without waking the writer thread, as an `add` that the
        // writer thread has not yet woken for.
        thread::scope(|scope| {
            scope.spawn(|| {
                let mut state = running.shared.state.lock();
                state.insert(b"theirs", Arc::from(&b"1"[..]), Keep::Spill);
            });
        });
        let mut state = running.shared.state.lock();
        assert!(state.writer_idle, "setup: the writer thread still sleeps");
        let wrote = write_here(&running.shared, &mut state, Some(Instant::now() + WAIT));
        assert!(!wrote, "another thread's value is not written here");
        assert!(dirty(&state, b"theirs"));
        drop(state);
        running.wait_until("the writer thread wrote it", |s| s.dirty == 0);
        let file = Arc::clone(&running.shared.state.lock().file);
        assert!(!file.writers().contains(&me));

        // Its own values, up to the next value of another thread.
        let mut state = running.writer_asleep();
        state.insert(b"mine", Arc::from(&b"2"[..]), Keep::Spill);
        drop(state);
        thread::scope(|scope| {
            scope.spawn(|| {
                let mut state = running.shared.state.lock();
                state.insert(b"theirs", Arc::from(&b"3"[..]), Keep::Spill);
            });
        });
        let mut state = running.shared.state.lock();
        assert!(state.writer_idle, "setup: the writer thread still sleeps");
        assert!(write_here(
            &running.shared,
            &mut state,
            Some(Instant::now() + WAIT)
        ));
        assert!(!dirty(&state, b"mine") && dirty(&state, b"theirs"));
        drop(state);
        running.wait_until("the writer thread wrote theirs", |s| s.dirty == 0);
        let writers = file.writers();
        assert_eq!(
            writers.iter().filter(|&&w| w == me).count(),
            1,
            "{writers:?}"
        );
    }

    #[test]
    fn a_long_value_a_caller_writes_is_shared_with_the_writer_thread() {
        let running = Running::start(Device {
            wait_for_writer_thread: true,
            ..Device::default()
        });
        let writer_thread = running.thread.as_ref().unwrap().thread().id();
        // Odd length: the last piece is short.
        let value: Vec<u8> = (0..(1 << 20) + 4097)
            .map(|i| (i * 31 + i / 997) as u8)
            .collect();
        let mut state = running.writer_asleep();
        state.insert(b"long", Arc::from(&value[..]), Keep::Spill);
        assert!(write_here(&running.shared, &mut state, None));
        let entry = state
            .entries
            .get(state.entries.slot_of(b"long").unwrap())
            .unwrap();
        let Place::OnDisk { offset, seal, .. } = &entry.place else {
            panic!("not written: {:?}", entry.place);
        };
        let mut read = vec![0u8; value.len()];
        handoff::read_sealed(&*state.file, *offset, &mut read, seal).unwrap();
        assert!(read == value, "read back exactly");
        let writers = state.file.writers();
        let me = thread::current().id();
        assert!(writers.contains(&me) && writers.contains(&writer_thread));
        assert!(writers.iter().all(|w| [me, writer_thread].contains(w)));
    }

    #[test]
    fn a_spare_left_by_a_callers_write_is_freed_after_the_idle_time() {
        // The writer thread helps with the value's pieces and is asleep
        // again, with no spare to free yet, before the caller's last piece
        // is written and the spare put back.
        let running = Running::start(Device {
            wait_for_writer_thread: true,
            ..Device::default()
        });
        let file = Arc::clone(&running.shared.state.lock().file);
        file.sleeps_in.set(Arc::downgrade(&running.shared)).unwrap();
        let mut state = running.writer_asleep();
        state.insert(b"big", Arc::from(vec![7u8; RECYCLE_MIN]), Keep::Spill);
        assert!(write_here(&running.shared, &mut state, None));
        assert!(!dirty(&state, b"big"), "written here");
        drop(state);
        assert_eq!(running.shared.recycler.spare_bytes(), RECYCLE_MIN as u64);
        // Freed one idle time after it was put back; the limit is generous.
        let deadline = Instant::now() + 10 * crate::recycle::RECYCLE_IDLE;
        while running.shared.recycler.spare_bytes() != 0 {
            assert!(Instant::now() < deadline, "the spare was never freed");
            thread::sleep(Duration::from_millis(5));
        }
    }
}
