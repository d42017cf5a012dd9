//! Sharing one long value's pieces between threads: the calling thread and
//! a scoped thread ([`write_sealed`], [`read_sealed`]), the writer's
//! persistent cipher [`Helper`] or the writer thread itself ([`SplitWrite`],
//! [`write_sealed_shared`]), and a cache's persistent [`ReadHelper`]
//! ([`read_sealed_shared`]).
//!
//! Values of [`SPLIT_MIN`] bytes or more are cut into [`PIECE`]-byte pieces
//! that the thread writing the value and its helpers (a cipher thread, or
//! the writer thread when a caller writes) take turns at, so while one
//! thread writes a piece the other encrypts the next. How a piece is
//! encrypted, decrypted and tagged, and how the pieces' tags combine, is
//! the cipher module's; this one decides which thread does which piece.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use crossbeam_utils::sync::{Parker, Unparker};
use parking_lot::Mutex;

use blockdev::{ReadAt, WriteAt};
use zeroize::{Zeroize, Zeroizing};

use crate::cipher::{
    PIECE, ReadFailure, SPLIT_MIN, Seal, combine, decrypt_piece, encrypt_piece, read_whole,
    write_whole,
};

/// Without a [`ReadHelper`] (it could not start), split values this long
/// or longer are decrypted on two threads with a scoped thread spawned per
/// read. On the idle development machine that
/// made 1 MiB `get_into` 1.26-1.29x the single-thread ChaCha20 XOR
/// (376-386 us against 484 us; one thread: 0.80-0.85x); 512 KiB saves about
/// 120 us of decryption against a spawn of tens of microseconds. With no
/// idle core (another build running) the spawn cost 120-290 us and a split
/// 1 MiB read lost to one thread, so the threshold is no lower.
const THREADED_READ_MIN: usize = 512 << 10;

/// Encrypts `plain` under a fresh seal and writes it at `offset`, `IO_CHUNK`
/// bytes per call through `scratch`; returns the seal with its tag.
pub(crate) fn write_sealed<D: WriteAt + Sync + ?Sized>(
    device: &D,
    offset: u64,
    plain: &[u8],
    scratch: &mut Vec<u8>,
) -> io::Result<Seal> {
    if plain.len() >= SPLIT_MIN {
        let mut seal = Seal::random()?;
        seal.tag = write_split(device, offset, plain, &seal, scratch)?;
        return Ok(seal);
    }
    write_whole(device, offset, plain, scratch)
}

/// Reads `out.len()` bytes at `offset`, checks them against the seal's tag
/// and decrypts them into `out`. On any failure `out` is zeroed: a caller
/// never sees bytes that did not pass the check.
pub(crate) fn read_sealed<D: ReadAt + Sync + ?Sized>(
    device: &D,
    offset: u64,
    out: &mut [u8],
    seal: &Seal,
) -> Result<(), ReadFailure> {
    if out.len() >= SPLIT_MIN {
        let result = read_split(device, offset, out, seal);
        if result.is_err() {
            out.zeroize();
        }
        return result;
    }
    read_whole(device, offset, out, seal)
}

/// Encrypts, tags and writes the pieces of a long value on the calling
/// thread and a scoped helper thread; returns the value's tag.
fn write_split<D: WriteAt + Sync + ?Sized>(
    device: &D,
    offset: u64,
    plain: &[u8],
    seal: &Seal,
    scratch: &mut Vec<u8>,
) -> io::Result<u64> {
    if scratch.len() < 2 * PIECE {
        scratch.resize(2 * PIECE, 0);
    }
    let (mine, theirs) = scratch[..2 * PIECE].split_at_mut(PIECE);
    let tags = on_two_threads(
        plain.chunks(PIECE),
        [mine, theirs],
        true,
        |scratch: &mut &mut [u8], index, plain: &[u8]| {
            encrypt_piece(device, offset, seal, index, plain, scratch)
        },
    )?;
    Ok(combine(seal.tag_seed, tags))
}

/// Whether a helper thread joined a split job, or its owner finished the
/// job first and called the helper off. A helper that is woken late (on a
/// busy machine, hundreds of microseconds after the hand-over) then costs
/// the owner nothing: it never waits for a helper that did not start.
struct Claim(AtomicU8);

impl Claim {
    const PENDING: u8 = 0;
    const JOINED: u8 = 1;
    const CALLED_OFF: u8 = 2;

    fn new() -> Self {
        Claim(AtomicU8::new(Self::PENDING))
    }

    /// For the helper: whether it may work on the job.
    fn join(&self) -> bool {
        self.0
            .compare_exchange(
                Self::PENDING,
                Self::JOINED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// For the owner, with no piece left to take: whether the helper never
    /// joined (and now never will), so there is nothing to wait for.
    fn call_off(&self) -> bool {
        self.0
            .compare_exchange(
                Self::PENDING,
                Self::CALLED_OFF,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// The error of a long value's write when a thread helping with its
/// pieces panicked (the device's own errors win when there are both).
#[derive(Debug)]
pub(crate) struct HelperPanicked;

impl std::fmt::Display for HelperPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a thread helping with the write panicked")
    }
}

impl std::error::Error for HelperPanicked {}

/// Whether a write failed because a thread helping with it panicked.
pub(crate) fn helper_panicked(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<HelperPanicked>())
}

/// A long value being written by several threads at once: its owner (the
/// thread writing the value) and whoever it offers the job to (the cipher
/// [`Helper`], or the writer thread while a caller writes). Each takes the
/// next piece until none is left; the owner then closes the job and waits
/// only for the pieces others took, never for a helper that had not
/// started (on a busy machine one is woken hundreds of microseconds late).
pub(crate) struct SplitWrite<D> {
    device: Arc<D>,
    offset: u64,
    /// The value, until the owner is done: taken back then, so that a
    /// helper still holding the job (one woken late) does not keep the
    /// buffer from being reused by the next `add`.
    plain: Mutex<Option<Arc<[u8]>>>,
    /// A copy of the value's seal (wiped when the last holder drops it).
    seal: Seal,
    /// The next piece to take; [`CLOSED`] and up once the owner closed the job.
    next: AtomicUsize,
    /// Pieces done (written, or failed), published with release.
    finished: AtomicUsize,
    /// Each piece's tag, valid once it is counted in `finished`.
    tags: Box<[AtomicU64]>,
    failed: AtomicBool,
    error: Mutex<Option<io::Error>>,
    /// Wakes the owner when a piece is done.
    owner: Unparker,
}

/// Added to `SplitWrite::next` when the owner closes the job: every later
/// take lands past the last piece, however many threads still try.
const CLOSED: usize = usize::MAX / 2;

impl<D: WriteAt> SplitWrite<D> {
    fn count(&self) -> usize {
        self.tags.len()
    }

    /// Whether a piece is left to take (a hint: another thread may take it first).
    pub(crate) fn has_work(&self) -> bool {
        !self.failed.load(Ordering::Relaxed) && self.next.load(Ordering::Relaxed) < self.count()
    }

    /// Takes pieces and does them until none is left or one failed.
    pub(crate) fn take_pieces(&self, scratch: &mut [u8]) {
        while !self.failed.load(Ordering::Relaxed) {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.count() {
                return;
            }
            // Counted as done even if this thread unwinds, so the owner
            // never waits for a piece nobody will finish.
            let mut piece = PieceDone {
                job: self,
                ok: false,
            };
            // Declared after `piece`, so dropped before it: the owner, once
            // every taken piece is done, holds the value's only reference.
            let Some(value) = self.plain.lock().clone() else {
                return;
            };
            let start = index * PIECE;
            let plain = &value[start..(start + PIECE).min(value.len())];
            match encrypt_piece(
                &*self.device,
                self.offset,
                &self.seal,
                index,
                plain,
                scratch,
            ) {
                Ok(tag) => {
                    if let Some(slot) = self.tags.get(index) {
                        slot.store(tag, Ordering::Relaxed);
                    }
                    piece.ok = true;
                }
                Err(e) => {
                    self.error.lock().get_or_insert(e);
                }
            }
        }
    }

    /// For the owner, once it found no piece left: stops further takes,
    /// waits for the pieces others took, and returns every piece's tag.
    fn close_and_wait(&self, parker: &Parker) -> io::Result<Vec<u64>> {
        let taken = self
            .next
            .fetch_add(CLOSED, Ordering::AcqRel)
            .min(self.count());
        while self.finished.load(Ordering::Acquire) < taken {
            parker.park();
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(self
                .error
                .lock()
                .take()
                .unwrap_or_else(|| io::Error::other(HelperPanicked)));
        }
        if taken < self.count() {
            return Err(io::Error::other("a piece of the value was not written"));
        }
        Ok(self
            .tags
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect())
    }
}

/// Marks one taken piece done when dropped: failed unless `ok`.
struct PieceDone<'a, D> {
    job: &'a SplitWrite<D>,
    ok: bool,
}

impl<D> Drop for PieceDone<'_, D> {
    fn drop(&mut self) {
        if !self.ok {
            self.job.failed.store(true, Ordering::Release);
        }
        self.job.finished.fetch_add(1, Ordering::Release);
        self.job.owner.unpark();
    }
}

/// A persistent named thread fed jobs through a channel of `capacity`
/// (0: a rendezvous). Dropping it closes the channel and joins the thread,
/// so the thread's loop over its jobs must end when they run out.
struct Worker<J> {
    jobs: Option<Sender<J>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<J: Send + 'static> Worker<J> {
    fn spawn(
        name: &str,
        capacity: usize,
        run: impl FnOnce(Receiver<J>) + Send + 'static,
    ) -> io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::bounded(capacity);
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || run(queue))?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Hands `job` over without waiting.
    fn try_send(&self, job: J) -> Result<(), TrySendError<J>> {
        match &self.jobs {
            Some(jobs) => jobs.try_send(job),
            None => Err(TrySendError::Disconnected(job)),
        }
    }
}

impl<J> Drop for Worker<J> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panic there was already reported as a failed write or read.
            let _ = thread.join();
        }
    }
}

/// A thread beside the writer thread that takes pieces of long values, so
/// one thread encrypts while the other writes. Persistent, because a
/// thread spawned per value costs ~120-290 us on the loaded development
/// machine, a hand-over through a channel ~15-40 us. Ends when dropped.
pub(crate) struct Helper<D> {
    worker: Worker<Arc<SplitWrite<D>>>,
}

impl<D: WriteAt + Send + Sync + 'static> Helper<D> {
    fn spawn() -> io::Result<Self> {
        let worker = Worker::spawn("spillcache-cipher", 1, move |job_queue| {
            let mut scratch = vec![0u8; PIECE];
            for job in job_queue {
                let job: Arc<SplitWrite<D>> = job;
                job.take_pieces(&mut scratch);
            }
        })?;
        Ok(Helper { worker })
    }
}

/// Threads that can take pieces of a long value beside the thread writing it.
pub(crate) trait Helpers<D> {
    /// Offers `job` to them; never blocks.
    fn offer(&mut self, job: &Arc<SplitWrite<D>>);

    /// The owner took the last piece: the job need not be offered any more.
    fn withdraw(&mut self) {}
}

/// The writer thread's own helper: started on first use, started again
/// after it stopped.
impl<D: WriteAt + Send + Sync + 'static> Helpers<D> for Option<Helper<D>> {
    fn offer(&mut self, job: &Arc<SplitWrite<D>>) {
        if self.is_none() {
            *self = Helper::spawn().ok();
        }
        // A helper still on an earlier job leaves this one to its owner.
        let stopped = self.as_ref().is_some_and(|helper| {
            matches!(
                helper.worker.try_send(Arc::clone(job)),
                Err(TrySendError::Disconnected(_))
            )
        });
        if stopped {
            *self = None;
        }
    }
}

/// [`write_sealed`] for threads that hold the value and the device in
/// `Arc`s: a long value is split between the calling thread and `helpers`
/// (without any, the calling thread does every piece).
pub(crate) fn write_sealed_shared<D: WriteAt + Send + Sync + 'static>(
    device: &Arc<D>,
    offset: u64,
    plain: &Arc<[u8]>,
    scratch: &mut Vec<u8>,
    helpers: &mut impl Helpers<D>,
) -> io::Result<Seal> {
    if plain.len() < SPLIT_MIN {
        return write_sealed(&**device, offset, plain, scratch);
    }
    let mut seal = Seal::random()?;
    let parker = Parker::new();
    let job = Arc::new(SplitWrite {
        device: Arc::clone(device),
        offset,
        plain: Mutex::new(Some(Arc::clone(plain))),
        seal: seal.clone(),
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        tags: (0..plain.len().div_ceil(PIECE))
            .map(|_| AtomicU64::new(0))
            .collect(),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        owner: parker.unparker().clone(),
    });
    helpers.offer(&job);
    if scratch.len() < PIECE {
        scratch.resize(PIECE, 0);
    }
    job.take_pieces(&mut scratch[..PIECE]);
    helpers.withdraw();
    // Waits for the pieces others took: the reservation must not be
    // reused while one may still write there.
    let tags = job.close_and_wait(&parker);
    // Every taken piece is done and has let go of the value: the caller
    // can reuse its buffer even while a late helper holds the job.
    let value = job.plain.lock().take();
    drop((value, job));
    let tags = tags?;
    seal.tag = combine(seal.tag_seed, tags);
    Ok(seal)
}

/// Reads, checks and decrypts the pieces of a long value on two threads
/// (from [`THREADED_READ_MIN`]; a scoped thread per read).
fn read_split<D: ReadAt + Sync + ?Sized>(
    device: &D,
    offset: u64,
    out: &mut [u8],
    seal: &Seal,
) -> Result<(), ReadFailure> {
    let threaded = out.len() >= THREADED_READ_MIN;
    let tags = on_two_threads(
        out.chunks_mut(PIECE),
        [(), ()],
        threaded,
        |_: &mut (), index, piece: &mut [u8]| decrypt_piece(device, offset, seal, index, piece),
    )?;
    if combine(seal.tag_seed, tags) == seal.tag {
        Ok(())
    } else {
        Err(ReadFailure::Corrupt)
    }
}

/// What a [`ReadHelper`] sends back while it works on one read.
enum HelperPiece {
    /// Piece `index`, decrypted (and checked against `tag` by the reader).
    Done {
        index: usize,
        tag: u64,
        bytes: Vec<u8>,
    },
    /// It takes no more pieces of this read; the error if one failed.
    Finished(Result<(), ReadFailure>),
}

/// A long value being read by a caller and the [`ReadHelper`] at once;
/// each takes the next piece until none is left.
struct SplitRead<D> {
    device: Arc<D>,
    offset: u64,
    len: usize,
    /// A copy of the value's seal (wiped when the last holder drops it).
    seal: Seal,
    next: AtomicUsize,
    failed: AtomicBool,
    claim: Claim,
}

impl<D> SplitRead<D> {
    /// The index of the next piece to do, or `None` when none is left or
    /// one failed.
    fn take(&self) -> Option<usize> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.len.div_ceil(PIECE)).then_some(index)
    }

    fn piece_len(&self, index: usize) -> usize {
        PIECE.min(self.len - index * PIECE)
    }
}

/// A read handed to the [`ReadHelper`], and where to send its pieces.
type ReadJob<D> = (Arc<SplitRead<D>>, Sender<HelperPiece>);

/// A thread that decrypts pieces of long values beside the thread reading
/// them, shared by every reader of a cache. Persistent, because a thread
/// spawned per read cost the reader ~50-100 us on the idle development
/// machine and 120-290 us on the loaded one before it could start; handing
/// a read over costs a channel send. It only takes a read when it is idle
/// (a rendezvous channel), so a reader never waits behind another read.
/// The pieces it does come back in buffers of its own that the reader
/// copies into place (a 64 KiB copy from cache is a small fraction of
/// decrypting the piece) and sends back for the next pieces: they hold
/// plaintext between reads, like the values a cache keeps in RAM. Ends
/// when dropped.
pub(crate) struct ReadHelper<D> {
    /// Takes a read, and where to send its pieces (the helper holds the
    /// only sender, so a reader waiting for it learns if the thread died).
    worker: Worker<ReadJob<D>>,
    /// Piece buffers going back to the thread.
    spares: Sender<Vec<u8>>,
}

impl<D: ReadAt + Send + Sync + 'static> ReadHelper<D> {
    /// Starts the thread.
    pub(crate) fn spawn() -> io::Result<Self> {
        let (spares, returned) = crossbeam_channel::unbounded::<Vec<u8>>();
        let worker = Worker::spawn("spillcache-reader", 0, move |job_queue| {
            for (job, results) in job_queue {
                let job: Arc<SplitRead<D>> = job;
                let results: Sender<HelperPiece> = results;
                if !job.claim.join() {
                    // The reader finished it alone and waits for nothing.
                    continue;
                }
                let mut result = Ok(());
                while let Some(index) = job.take() {
                    let mut bytes = returned.try_recv().unwrap_or_default();
                    // Every byte is overwritten by the read.
                    bytes.resize(job.piece_len(index), 0);
                    match decrypt_piece(&*job.device, job.offset, &job.seal, index, &mut bytes) {
                        Ok(tag) => {
                            let done = HelperPiece::Done { index, tag, bytes };
                            if results.send(done).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            job.failed.store(true, Ordering::Relaxed);
                            result = Err(e);
                            break;
                        }
                    }
                }
                // The reader may have gone (it never does before this).
                let _ = results.send(HelperPiece::Finished(result));
            }
        })?;
        Ok(ReadHelper { worker, spares })
    }

    /// Hands `job` to the thread if it is idle now.
    fn offer(&self, job: Arc<SplitRead<D>>, results: Sender<HelperPiece>) -> bool {
        self.worker.try_send((job, results)).is_ok()
    }
}

/// [`read_sealed`] for a cache's readers: a long value is decrypted by the
/// calling thread and `helper`, if it is idle (else by the calling thread
/// alone). On any failure `out` is zeroed.
pub(crate) fn read_sealed_shared<D: ReadAt + Send + Sync + 'static>(
    device: &Arc<D>,
    offset: u64,
    out: &mut [u8],
    seal: &Seal,
    helper: Option<&ReadHelper<D>>,
) -> Result<(), ReadFailure> {
    let Some(helper) = helper.filter(|_| out.len() >= SPLIT_MIN) else {
        return read_sealed(&**device, offset, out, seal);
    };
    let result = read_with_helper(device, offset, out, seal, helper);
    if result.is_err() {
        out.zeroize();
    }
    result
}

fn read_with_helper<D: ReadAt + Send + Sync + 'static>(
    device: &Arc<D>,
    offset: u64,
    out: &mut [u8],
    seal: &Seal,
    helper: &ReadHelper<D>,
) -> Result<(), ReadFailure> {
    let count = out.len().div_ceil(PIECE);
    let (results, from_helper) = crossbeam_channel::unbounded();
    let job = Arc::new(SplitRead {
        device: Arc::clone(device),
        offset,
        len: out.len(),
        seal: seal.clone(),
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        claim: Claim::new(),
    });
    let mut helper_busy = helper.offer(Arc::clone(&job), results);
    let mut tags = Zeroizing::new(vec![0u64; count]);
    let mut done = 0;
    let mut result = Ok(());
    // Places a piece the helper did; false once it has finished.
    let place =
        |message: HelperPiece, out: &mut [u8], tags: &mut [u64], done: &mut usize| match message {
            HelperPiece::Done { index, tag, bytes } => {
                out[index * PIECE..][..bytes.len()].copy_from_slice(&bytes);
                tags[index] = tag;
                *done += 1;
                // For its next piece (lost only if the thread has ended).
                let _ = helper.spares.send(bytes);
                Ok(true)
            }
            HelperPiece::Finished(outcome) => outcome.map(|()| false),
        };
    while let Some(index) = job.take() {
        let piece = &mut out[index * PIECE..][..job.piece_len(index)];
        match decrypt_piece(&**device, offset, seal, index, piece) {
            Ok(tag) => {
                tags[index] = tag;
                done += 1;
            }
            Err(e) => {
                job.failed.store(true, Ordering::Relaxed);
                result = Err(e);
                break;
            }
        }
        // Place what the helper has done so far, so its pieces wait in
        // RAM only briefly.
        while helper_busy && let Ok(message) = from_helper.try_recv() {
            match place(message, out, &mut tags, &mut done) {
                Ok(more) => helper_busy = more,
                Err(e) => {
                    helper_busy = false;
                    result = result.and(Err(e));
                }
            }
        }
    }
    // Wait for a helper that joined: it may still be reading this value.
    if helper_busy && job.claim.call_off() {
        helper_busy = false;
    }
    while helper_busy {
        let Ok(message) = from_helper.recv() else {
            result = result.and(Err(ReadFailure::Io(io::Error::other(
                "the spillcache reader thread stopped",
            ))));
            break;
        };
        match place(message, out, &mut tags, &mut done) {
            Ok(more) => helper_busy = more,
            Err(e) => {
                helper_busy = false;
                result = result.and(Err(e));
            }
        }
    }
    result?;
    if done != count {
        return Err(ReadFailure::Io(io::Error::other(
            "a piece of the value was not read",
        )));
    }
    if combine(seal.tag_seed, tags.to_vec()) == seal.tag {
        Ok(())
    } else {
        Err(ReadFailure::Corrupt)
    }
}

/// Runs `work` on every piece, on the calling thread and one helper thread
/// at once (each with its own `state`), and returns the pieces' results in
/// order. Pieces are handed out one at a time, so a thread that the
/// scheduler delays takes fewer. After a failure no further piece starts.
/// Without `use_helper`, or if no helper thread can be started, the calling
/// thread does all pieces.
fn on_two_threads<I, S, E, F>(
    pieces: I,
    states: [S; 2],
    use_helper: bool,
    work: F,
) -> Result<Vec<u64>, E>
where
    I: Iterator + Send,
    I::Item: Send,
    S: Send,
    E: Send,
    F: Fn(&mut S, usize, I::Item) -> Result<u64, E> + Sync,
{
    struct Queue<I> {
        pieces: std::iter::Enumerate<I>,
        failed: bool,
    }
    let queue = parking_lot::Mutex::new(Queue {
        pieces: pieces.enumerate(),
        failed: false,
    });
    let worker = |state: &mut S| -> Result<Vec<(usize, u64)>, E> {
        let mut done = Vec::new();
        loop {
            let next = {
                let mut queue = queue.lock();
                if queue.failed {
                    None
                } else {
                    queue.pieces.next()
                }
            };
            let Some((index, piece)) = next else {
                return Ok(done);
            };
            match work(state, index, piece) {
                Ok(tag) => done.push((index, tag)),
                Err(e) => {
                    queue.lock().failed = true;
                    return Err(e);
                }
            }
        }
    };
    let [mut mine, mut theirs] = states;
    let (first, second) = thread::scope(|scope| {
        let helper = if use_helper {
            thread::Builder::new()
                .name("spillcache-cipher".into())
                .spawn_scoped(scope, || worker(&mut theirs))
        } else {
            Err(io::Error::other("not wanted"))
        };
        let first = worker(&mut mine);
        let second = match helper {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => Ok(Vec::new()),
        };
        (first, second)
    });
    let (first, second) = (first?, second?);
    let mut tags = vec![0u64; first.len() + second.len()];
    for (index, tag) in first.into_iter().chain(second) {
        tags[index] = tag;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::tests::{pattern, stream};
    use crate::cipher::{IO_CHUNK, KEYSTREAM_BLOCK};
    use blockdev::MemDevice;

    #[test]
    fn round_trip_at_chunk_boundaries() {
        for len in [
            0,
            1,
            3,
            KEYSTREAM_BLOCK - 1,
            KEYSTREAM_BLOCK + 5,
            IO_CHUNK,
            IO_CHUNK + 1,
            2 * IO_CHUNK + 4099,
        ] {
            let device = MemDevice::new();
            let plain = pattern(len);
            let mut scratch = Vec::new();
            let seal = write_sealed(&device, 10, &plain, &mut scratch).unwrap();
            let mut out = vec![0u8; len];
            read_sealed(&device, 10, &mut out, &seal).unwrap();
            assert!(out == plain, "len {len}");
        }
    }

    #[test]
    fn multi_chunk_corruption_is_detected() {
        let device = MemDevice::new();
        let plain = pattern(IO_CHUNK + 100);
        let seal = write_sealed(&device, 0, &plain, &mut Vec::new()).unwrap();
        let mut damaged = device.to_vec();
        damaged[IO_CHUNK + 50] ^= 0x80;
        let mut out = vec![0u8; plain.len()];
        let result = read_sealed(&MemDevice::from_vec(damaged), 0, &mut out, &seal);
        assert!(matches!(result, Err(ReadFailure::Corrupt)));
    }

    #[test]
    fn ciphertext_is_exactly_the_chacha20_stream_at_every_piece_boundary() {
        for len in [
            1,
            3,
            1024,
            KEYSTREAM_BLOCK + 3,
            3 * KEYSTREAM_BLOCK,
            SPLIT_MIN - 1,
            SPLIT_MIN,
            SPLIT_MIN + 1,
            SPLIT_MIN + PIECE - 1,
            SPLIT_MIN + 63,
            7 * PIECE + 4099,
            THREADED_READ_MIN - 1,
            THREADED_READ_MIN + 4099,
        ] {
            let device = MemDevice::new();
            let plain = pattern(len);
            let seal = write_sealed(&device, 3, &plain, &mut Vec::new()).unwrap();
            let written = device.to_vec();
            let keystream = stream(&seal, len);
            // Each piece continues the one ChaCha20 stream: no seek is off.
            for (at, ((&c, &p), &k)) in written[3..].iter().zip(&plain).zip(&keystream).enumerate()
            {
                assert_eq!(c, p ^ k, "len {len}, byte {at} (piece {})", at / PIECE);
            }
            let mut out = vec![0u8; len];
            read_sealed(&device, 3, &mut out, &seal).unwrap();
            assert!(out == plain, "len {len}");
        }
    }

    #[test]
    fn split_tags_cover_every_piece_and_their_order() {
        // Decrypted on two threads; 6 * PIECE + 100 is covered through the
        // cache in tests/faults.rs on one.
        let len = THREADED_READ_MIN + 6 * PIECE + 100;
        let device = MemDevice::new();
        let plain = pattern(len);
        let seal = write_sealed(&device, 0, &plain, &mut Vec::new()).unwrap();
        let clean = device.to_vec();
        // Both ends of every piece, the first and the last byte, and both
        // halves of the value.
        let mut spots = vec![0, len - 1, len / 2 - 1, len / 2];
        for piece in 1..=6 {
            spots.extend([piece * PIECE - 1, piece * PIECE]);
        }
        for at in spots {
            let mut damaged = clean.clone();
            damaged[at] ^= 0x10;
            let mut out = vec![0xAA; len];
            let result = read_sealed(&MemDevice::from_vec(damaged), 0, &mut out, &seal);
            assert!(matches!(result, Err(ReadFailure::Corrupt)), "flip at {at}");
            assert!(
                out.iter().all(|&b| b == 0),
                "output zeroed after flip at {at}"
            );
        }
        // Two pieces swapped: every byte is some piece's ciphertext, but not
        // in its place.
        let mut swapped = clean.clone();
        let (first, rest) = swapped.split_at_mut(PIECE);
        first.swap_with_slice(&mut rest[..PIECE]);
        let mut out = vec![0u8; len];
        let result = read_sealed(&MemDevice::from_vec(swapped), 0, &mut out, &seal);
        assert!(matches!(result, Err(ReadFailure::Corrupt)));
        // And untouched, it reads back.
        read_sealed(&MemDevice::from_vec(clean), 0, &mut out, &seal).unwrap();
        assert!(out == plain);
    }

    #[test]
    fn a_split_value_on_a_short_device_is_an_io_failure_and_nothing_is_returned() {
        let len = 5 * PIECE;
        let device = MemDevice::new();
        let seal = write_sealed(&device, 0, &pattern(len), &mut Vec::new()).unwrap();
        device.set_len((3 * PIECE + 10) as u64).unwrap();
        let mut out = vec![0xAA; len];
        let result = read_sealed(&device, 0, &mut out, &seal);
        assert!(matches!(result, Err(ReadFailure::Io(_))));
        assert!(out.iter().all(|&b| b == 0), "output zeroed");
    }

    #[test]
    fn the_writer_helper_splits_values_exactly_and_survives_failures() {
        let device = Arc::new(Injected::failing_from(u64::MAX));
        let mut helper = None;
        let mut scratch = Vec::new();
        for len in [SPLIT_MIN - 1, SPLIT_MIN, 9 * PIECE + 4097] {
            let plain: Arc<[u8]> = pattern(len).into();
            let seal = write_sealed_shared(&device, 5, &plain, &mut scratch, &mut helper).unwrap();
            if len >= SPLIT_MIN {
                assert!(helper.is_some(), "a helper for a long value");
            }
            // Whether or not the helper still holds the job, the buffer is
            // the caller's alone again (so `add` can reuse it).
            assert_eq!(Arc::strong_count(&plain), 1, "len {len}");
            let written = device.inner.to_vec();
            let keystream = stream(&seal, len);
            let exact = written[5..5 + len]
                .iter()
                .zip(plain.iter())
                .zip(&keystream)
                .all(|((&c, &p), &k)| c == p ^ k);
            assert!(exact, "len {len}: the ChaCha20 stream at every piece");
            let mut out = vec![0u8; len];
            read_sealed(&device.inner, 5, &mut out, &seal).unwrap();
            assert!(out[..] == plain[..], "len {len}");
        }
        // A failing piece (whichever thread meets it) fails the value...
        device
            .fail_from
            .store((6 * PIECE) as u64, Ordering::Relaxed);
        let plain: Arc<[u8]> = pattern(8 * PIECE).into();
        let result = write_sealed_shared(&device, 0, &plain, &mut scratch, &mut helper);
        assert_eq!(result.unwrap_err().to_string(), "injected");
        // ...and the next long value is split again.
        device.fail_from.store(u64::MAX, Ordering::Relaxed);
        let seal = write_sealed_shared(&device, 0, &plain, &mut scratch, &mut helper).unwrap();
        assert!(helper.is_some());
        let mut out = vec![0u8; plain.len()];
        read_sealed(&device.inner, 0, &mut out, &seal).unwrap();
        assert!(out[..] == plain[..]);
    }

    #[test]
    fn reads_shared_with_the_read_helper_are_exact_and_checked() {
        let helper = ReadHelper::spawn().unwrap();
        for len in [
            SPLIT_MIN - 1,
            SPLIT_MIN,
            SPLIT_MIN + 1,
            7 * PIECE + 4099,
            3 * IO_CHUNK + 5,
        ] {
            let device = Arc::new(MemDevice::new());
            let plain = pattern(len);
            let seal = write_sealed(&*device, 7, &plain, &mut Vec::new()).unwrap();
            // Several rounds, so the helper is idle (and takes pieces) in some.
            for _ in 0..4 {
                let mut out = vec![0xAA; len];
                read_sealed_shared(&device, 7, &mut out, &seal, Some(&helper)).unwrap();
                assert!(out == plain, "len {len}");
            }
            let clean = device.to_vec();
            for at in [7, 7 + len / 2, 7 + len - 1] {
                let mut damaged = clean.clone();
                damaged[at] ^= 0x04;
                let damaged = Arc::new(MemDevice::from_vec(damaged));
                let mut out = vec![0xAA; len];
                let result = read_sealed_shared(&damaged, 7, &mut out, &seal, Some(&helper));
                assert!(
                    matches!(result, Err(ReadFailure::Corrupt)),
                    "len {len}, flip at {at}"
                );
                assert!(out.iter().all(|&b| b == 0), "output zeroed");
            }
            device.set_len(7 + len as u64 / 2).unwrap();
            let mut out = vec![0xAA; len];
            let result = read_sealed_shared(&device, 7, &mut out, &seal, Some(&helper));
            assert!(
                matches!(result, Err(ReadFailure::Io(_))),
                "len {len}: short"
            );
            assert!(out.iter().all(|&b| b == 0), "output zeroed");
        }
    }

    #[test]
    fn readers_on_many_threads_share_one_read_helper() {
        let helper = ReadHelper::spawn().unwrap();
        let device = Arc::new(MemDevice::new());
        let len = 9 * PIECE + 1;
        let values: Vec<(u64, Vec<u8>, Seal)> = (0..4)
            .map(|i| {
                let offset = (i * len) as u64;
                let plain: Vec<u8> = pattern(len).iter().map(|b| b ^ i as u8).collect();
                let seal = write_sealed(&*device, offset, &plain, &mut Vec::new()).unwrap();
                (offset, plain, seal)
            })
            .collect();
        thread::scope(|scope| {
            for (offset, plain, seal) in &values {
                let (device, helper) = (&device, &helper);
                scope.spawn(move || {
                    for _ in 0..10 {
                        let mut out = vec![0u8; len];
                        read_sealed_shared(device, *offset, &mut out, seal, Some(helper)).unwrap();
                        assert!(out == *plain, "value at {offset}");
                    }
                });
            }
        });
    }

    #[test]
    fn a_claim_goes_to_the_helper_or_is_called_off_never_both() {
        let joined = Claim::new();
        assert!(joined.join(), "a pending job can be joined");
        assert!(!joined.call_off(), "a joined helper must be waited for");
        let called_off = Claim::new();
        assert!(called_off.call_off(), "nobody joined: nothing to wait for");
        assert!(!called_off.join(), "a late helper must not touch the job");
        // Raced from two threads: exactly one side wins.
        for _ in 0..100 {
            let claim = Claim::new();
            let (joined, called_off) = thread::scope(|scope| {
                let helper = scope.spawn(|| claim.join());
                let called_off = claim.call_off();
                (helper.join().unwrap(), called_off)
            });
            assert!(joined != called_off);
        }
    }

    #[test]
    fn many_long_values_in_a_row_are_exact_whether_or_not_the_helper_joins() {
        let device = Arc::new(MemDevice::new());
        let mut helper = None;
        let mut scratch = Vec::new();
        for round in 0..30u8 {
            let len = SPLIT_MIN + usize::from(round) * 4099;
            let plain: Arc<[u8]> = pattern(len).iter().map(|b| b ^ round).collect();
            let seal = write_sealed_shared(&device, 0, &plain, &mut scratch, &mut helper).unwrap();
            let mut out = vec![0u8; len];
            read_sealed(&*device, 0, &mut out, &seal).unwrap();
            assert!(out[..] == plain[..], "round {round}");
        }
        assert!(helper.is_some(), "a busy helper is kept, not replaced");
    }

    /// Fails every write that starts at or past its limit.
    /// A device that fails every write from a position on, and, if asked,
    /// panics on every write made by the cipher helper thread (and holds
    /// other threads' writes until the helper has made one, so that it
    /// surely takes a piece).
    struct Injected {
        inner: MemDevice,
        fail_from: std::sync::atomic::AtomicU64,
        panic_on_helper: bool,
        helper_wrote: AtomicBool,
    }

    impl Injected {
        fn failing_from(pos: u64) -> Self {
            Injected {
                inner: MemDevice::new(),
                fail_from: pos.into(),
                panic_on_helper: false,
                helper_wrote: AtomicBool::new(false),
            }
        }
    }

    impl WriteAt for Injected {
        fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
            if self.panic_on_helper {
                if thread::current().name() == Some("spillcache-cipher") {
                    self.helper_wrote.store(true, Ordering::SeqCst);
                    panic!("injected panic on the helper");
                }
                // Bounded, so a helper that never starts fails the test
                // instead of hanging it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while !self.helper_wrote.load(Ordering::SeqCst)
                    && std::time::Instant::now() < deadline
                {
                    thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            if pos >= self.fail_from.load(Ordering::Relaxed) {
                return Err(io::Error::other("injected"));
            }
            self.inner.write_at(pos, buf)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_piece_write_fails_the_value() {
        let device = Injected::failing_from((4 * PIECE) as u64);
        let result = write_sealed(&device, 0, &pattern(8 * PIECE), &mut Vec::new());
        assert_eq!(result.unwrap_err().to_string(), "injected");
    }

    #[test]
    fn a_helper_that_panics_mid_piece_fails_the_value_and_is_replaced() {
        let device = Arc::new(Injected {
            panic_on_helper: true,
            ..Injected::failing_from(u64::MAX)
        });
        let plain: Arc<[u8]> = pattern(16 * PIECE).into();
        let mut helper = None;
        let mut scratch = Vec::new();
        // The owner's first write waits for the helper's, which panics.
        let failed = write_sealed_shared(&device, 0, &plain, &mut scratch, &mut helper)
            .expect_err("the helper's panic must fail the value");
        assert!(helper_panicked(&failed), "{failed}");
        // The dead helper is noticed and replaced: values still split.
        let mut replaced = false;
        for _ in 0..200 {
            let _ = write_sealed_shared(&device, 0, &plain, &mut scratch, &mut helper);
            if helper.is_some() {
                replaced = true;
                break;
            }
        }
        assert!(replaced);
    }
}
