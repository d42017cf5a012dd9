//! Page frames: the bytes of resident pages in an arena of `AtomicU64`
//! words, each frame guarded by a sequence lock, so hits read without
//! taking a lock or doing any atomic read-modify-write.
//!
//! Why atomics and a sequence lock: a lock (even a reader lock) costs an
//! atomic read-modify-write per hit, which on x86 is a full barrier: the
//! CPU can no longer overlap the cache misses of consecutive reads, and a
//! random hit costs several times a plain array read. Relaxed atomic loads
//! compile to plain loads, and the sequence lock detects a frame
//! rewritten during the copy.
//!
//! Writers (installing, evicting, invalidating) run one at a time, under
//! the cache's state lock.
//!
//! Long reads (at least [`BULK_MIN`] bytes, or runs of pages, as in a
//! scan) do not use the sequence lock: they raise the frames' reader
//! counts, and a writer rewrites a frame only once it has seen its count
//! at zero (after making its version odd, so no new reader trusts it), so
//! the copy runs with no writer and can be one `memcpy` per page
//! ([`copy_excluded`], the module's one `unsafe` block). A writer that
//! finds a reader inside does not wait (it holds the state lock, and a
//! reader may be descheduled mid-copy for as long as the scheduler
//! likes): it leaves the frame as it was and takes another
//! ([`Frames::claim`]). Relaxed atomic loads are never vectorized: on an Intel Xeon
//! the word-by-word copy of resident pages was about 30% slower than
//! `memcpy`. Two atomic read-modify-writes per read are little next to a
//! page, but would double the cost of a small read, which keeps the
//! sequence lock. See the crate docs, "Scans".

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::*, fence};

/// Reads at least this long exclude writers and copy with one `memcpy`
/// (see the module docs); shorter ones copy word by word under the
/// sequence lock.
pub(crate) const BULK_MIN: usize = 512;

/// Most pages [`Frames::read_run`] is given at once: their frames cannot
/// be rewritten during the copy of all of them (64 KiB of 4 KiB pages, a
/// few microseconds unless the reader is descheduled).
pub(crate) const RUN_PAGES: usize = 16;

/// A reader count at or past this is not incremented further (the read
/// takes the locked path instead), so it never wraps: that would take
/// 2^31 threads inside one copy.
const MAX_READERS: u32 = 1 << 31;

/// Index of a frame (`< capacity`).
pub(crate) type FrameId = u32;

/// `page` of a frame that holds no page.
const NO_PAGE: u64 = u64::MAX;

/// Most re-use credit a page can hold; bounds the work of one eviction pass.
const MAX_CREDIT: u8 = 3;

/// What a reader checks before trusting a frame's words.
///
/// The lock-free reader loads `version` and `key` (one cache line, two
/// heads to a line) and checks only that the key is its page: a writer
/// hides the key before it makes the version odd and shows the new one
/// (with release) only when the words are in place, so a reader needs no
/// parity check, just the version unchanged after its copy. `page` and
/// `len` are for the locked paths.
#[derive(Debug)]
#[repr(C, align(32))]
struct FrameHead {
    /// Sequence lock: odd while the frame is being rewritten (and then
    /// `key` is `NO_PAGE` or, at the very end, the new key). 32 bits: a
    /// reader is fooled only if the frame is rewritten 2^31 times during
    /// one copy.
    version: AtomicU32,
    /// Miss epoch of the last access that earned credit.
    seen_epoch: AtomicU32,
    /// The page held if it is a whole page, else `NO_PAGE`: a short page
    /// (the device's last) never matches, so the reader needs no length
    /// check and short pages take the locked path.
    key: AtomicU64,
    /// The page held, or `NO_PAGE`.
    page: AtomicU64,
    /// Valid bytes of the page (short for the device's last page).
    len: AtomicU32,
    /// Re-use credit, taken by eviction passes.
    credit: AtomicU8,
}

const _: () = assert!(std::mem::size_of::<FrameHead>() == 32);

impl FrameHead {
    fn new() -> Self {
        FrameHead {
            version: AtomicU32::new(0),
            seen_epoch: AtomicU32::new(0),
            key: AtomicU64::new(NO_PAGE),
            page: AtomicU64::new(NO_PAGE),
            len: AtomicU32::new(0),
            credit: AtomicU8::new(0),
        }
    }
}

/// The arena of frames, allocated up front: a head (32 bytes) and the
/// page's words for every page of capacity. Hits pay no indirection or
/// lazy-allocation check, which keeps the hit path short enough for the
/// CPU to overlap the memory accesses of consecutive reads.
#[derive(Debug)]
pub(crate) struct Frames {
    heads: Box<[FrameHead]>,
    words: Box<[AtomicU64]>,
    /// Per frame: long reads copying its words now; a writer changes them
    /// only after seeing zero (else it takes another frame). Apart from the heads, so that long
    /// readers do not dirty the lines lock-free hits read.
    readers: Box<[AtomicU32]>,
    /// Words per frame: the page rounded up to words. Frames lie back to
    /// back, so a run of pages in adjacent frames copies with one
    /// `memcpy`, and one spare word ends the arena, so that a small read
    /// can always load two adjacent words (the second may be the next
    /// frame's first: bytes past the page, which the reader drops).
    stride: usize,
    /// Bytes of a whole page.
    page_size: usize,
    /// Claims refused because a long read was inside the frame.
    busy_claims: AtomicU64,
    /// Bytes of pages copied into frames with the state lock held.
    #[cfg(test)]
    locked_copies: parking_lot::Mutex<LockedCopies>,
}

/// Page bytes copied into frames under the state lock, for tests.
#[cfg(test)]
#[derive(Debug, Default)]
struct LockedCopies {
    total: u64,
    /// The hold of the lock the last copy was made in, and its bytes.
    hold: u64,
    in_hold: u64,
    most_in_one_hold: u64,
}

/// A reader count raised by [`Frames::hold_reader`], dropped with it.
#[cfg(test)]
pub(crate) struct HeldReader<'a>(&'a AtomicU32);

#[cfg(test)]
impl Drop for HeldReader<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Release);
    }
}

/// The bytes of a page, copied out of a frame.
pub(crate) enum Copied {
    Done,
    /// The frame does not hold the page with enough bytes, or was rewritten
    /// during the copy: take the locked path.
    Retry,
}

impl Frames {
    /// Frames for `capacity` pages of `page_size` bytes; `None` if they do
    /// not fit in memory.
    pub(crate) fn new(capacity: usize, page_size: usize) -> Option<Self> {
        let stride = page_size.div_ceil(8);
        let total = capacity.checked_mul(stride)?.checked_add(1)?;
        let mut words = Vec::new();
        words.try_reserve_exact(total).ok()?;
        // A hint, asked before the memory is first touched: without huge
        // pages hits are slower, never wrong.
        let _ = crate::huge_pages::advise(words.spare_capacity_mut());
        words.extend((0..total).map(|_| AtomicU64::new(0)));
        let mut heads = Vec::new();
        heads.try_reserve_exact(capacity).ok()?;
        heads.extend((0..capacity).map(|_| FrameHead::new()));
        let mut readers = Vec::new();
        readers.try_reserve_exact(capacity).ok()?;
        readers.extend((0..capacity).map(|_| AtomicU32::new(0)));
        Some(Frames {
            heads: heads.into_boxed_slice(),
            words: words.into_boxed_slice(),
            readers: readers.into_boxed_slice(),
            stride,
            page_size,
            busy_claims: AtomicU64::new(0),
            #[cfg(test)]
            locked_copies: parking_lot::Mutex::default(),
        })
    }

    /// An address in the middle of the arena's words, for the huge-page test.
    #[cfg(test)]
    pub(crate) fn arena_middle(&self) -> usize {
        self.words.as_ptr() as usize + std::mem::size_of_val(&*self.words) / 2
    }

    /// The eight bytes at in-page offset `off` of `page` (little-endian;
    /// bytes past the page are garbage), if `frame` holds that whole page;
    /// on success records the access for the eviction policy. Lock-free:
    /// one head line and the one or two words of the value are read.
    #[inline(always)]
    pub(crate) fn read_word(
        &self,
        frame: FrameId,
        page: u64,
        off: usize,
        epoch: u32,
    ) -> Option<u64> {
        let head = self.heads.get(frame as usize)?;
        let before = head.version.load(Acquire);
        // No parity check: a frame being rewritten shows no key, or the
        // new key once its words are complete (see `FrameHead`).
        if head.key.load(Acquire) != page {
            return None;
        }
        // The next frame's first word, or the spare word after the last
        // frame, makes the second word exist for any `off` inside a page
        // (it is loaded atomically; its bytes are past the page and
        // dropped); `get(first..)` then `first_chunk` is the one bounds
        // check.
        let first = frame as usize * self.stride + off / 8;
        let [lo, hi] = self.words.get(first..)?.first_chunk::<2>()?;
        let both = u128::from(hi.load(Relaxed)) << 64 | u128::from(lo.load(Relaxed));
        let value = (both >> ((off % 8) * 8)) as u64;
        fence(Acquire);
        if head.version.load(Relaxed) != before {
            return None;
        }
        touch(head, epoch);
        Some(value)
    }

    /// Copies `dst.len()` bytes at in-page offset `off` of `page` out of
    /// `frame`, if the frame holds that whole page; on success records the
    /// access for the eviction policy. Lock-free. The caller keeps
    /// `off + dst.len()` within a page.
    #[inline]
    pub(crate) fn read(
        &self,
        frame: FrameId,
        page: u64,
        off: usize,
        dst: &mut [u8],
        epoch: u32,
    ) -> Copied {
        debug_assert!(off + dst.len() <= self.page_size);
        if dst.len() <= 8 {
            let Some(value) = self.read_word(frame, page, off, epoch) else {
                return Copied::Retry;
            };
            dst.copy_from_slice(&value.to_le_bytes()[..dst.len()]);
            return Copied::Done;
        }
        if dst.len() >= BULK_MIN {
            let copied = self.read_run(&[(frame, page)], off, dst, epoch);
            return if copied == dst.len() {
                Copied::Done
            } else {
                Copied::Retry
            };
        }
        self.read_sequenced(frame, page, off, dst, epoch)
    }

    /// Copies a range that starts at in-page offset `off` of the first
    /// page of `run` (pairs of a frame and the page it should hold) and
    /// goes on through the next ones, page by page, into `dst` (at most
    /// through the last page of `run`); on success records each access for
    /// the eviction policy. Returns the bytes copied: all of them, or up
    /// to the first page whose frame does not hold it. Lock-free and never
    /// waits: a frame being rewritten ends the copy there.
    ///
    /// Writers are excluded instead of detected: each frame's reader
    /// count is raised before its version is checked, and a writer claims
    /// a frame only with the count at zero, so the copy is one `memcpy`
    /// per page. The
    /// counts of the whole run are raised first and dropped last: each
    /// atomic read-modify-write waits for the stores before it, so one
    /// per page would wait for each page's copy to reach the cache before
    /// the next page's can start.
    #[inline(never)]
    pub(crate) fn read_run(
        &self,
        run: &[(FrameId, u64)],
        off: usize,
        dst: &mut [u8],
        epoch: u32,
    ) -> usize {
        // Dekker with `claim`: each increment and the writer's odd version
        // are both SeqCst, so either the writer's check of the count sees
        // this reader (and leaves the frame unchanged), or the version
        // load below sees the odd version (or a later, even one: that
        // writer is done). A count past `MAX_READERS` is not raised: the run ends.
        let mut entered = 0;
        for &(frame, _) in run {
            let (Some(head), Some(readers)) = (
                self.heads.get(frame as usize),
                self.readers.get(frame as usize),
            ) else {
                break;
            };
            // A frame seen being rewritten is not entered: once a writer's
            // odd version shows, no new reader makes its claim fail.
            if head.version.load(Relaxed) % 2 != 0 {
                break;
            }
            if readers.fetch_add(1, SeqCst) >= MAX_READERS {
                readers.fetch_sub(1, Release);
                break;
            }
            entered += 1;
        }
        // The pages that may be copied: from the first, each in a frame
        // entered, with an even version and the page's key (loaded once
        // the version is known even: it names the page the words hold
        // until this reader leaves).
        let mut valid = 0;
        for &(frame, page) in &run[..entered] {
            let Some(head) = self.heads.get(frame as usize) else {
                break;
            };
            if head.version.load(SeqCst) % 2 != 0 || head.key.load(Acquire) != page {
                break;
            }
            touch(head, epoch);
            valid += 1;
        }
        // Bytes from the start of the first page: copy `off..end`, one
        // `memcpy` per group of frames that lie back to back in the arena
        // (whole frames are back to back when a page is whole words).
        let end = (valid * self.page_size).min(off + dst.len());
        let back_to_back = self.stride * 8 == self.page_size;
        let (mut at, mut first) = (off, 0);
        while at < end {
            let mut next = first + 1;
            while back_to_back && next < valid && run[next].0 == run[next - 1].0.wrapping_add(1) {
                next += 1;
            }
            let group_end = (next * self.page_size).min(end);
            let base = run[first].0 as usize * self.stride;
            let from = at - first * self.page_size;
            let copied = self
                .words
                .get(base..base + (next - first) * self.stride)
                .is_some_and(|words| {
                    copy_excluded(words, from, &mut dst[at - off..group_end - off])
                });
            if !copied {
                break;
            }
            (at, first) = (group_end, next);
        }
        for &(frame, _) in &run[..entered] {
            // Release: the copy happens before the changes of the writer
            // that sees the count at zero.
            if let Some(readers) = self.readers.get(frame as usize) {
                readers.fetch_sub(1, Release);
            }
        }
        at.saturating_sub(off)
    }

    /// [`read`](Self::read) under the sequence lock: copies word by word,
    /// then checks that no writer changed the frame meanwhile.
    #[inline]
    fn read_sequenced(
        &self,
        frame: FrameId,
        page: u64,
        off: usize,
        dst: &mut [u8],
        epoch: u32,
    ) -> Copied {
        let Some(head) = self.heads.get(frame as usize) else {
            return Copied::Retry;
        };
        let before = head.version.load(Acquire);
        if head.key.load(Acquire) != page || !self.copy_out(frame, off, dst) {
            return Copied::Retry;
        }
        fence(Acquire);
        if head.version.load(Relaxed) != before {
            return Copied::Retry;
        }
        touch(head, epoch);
        Copied::Done
    }

    /// Copies page bytes `off..off + dst.len()` of `frame` out of its
    /// words with atomic loads; `false` if out of the arena.
    #[inline]
    fn copy_out(&self, frame: FrameId, off: usize, dst: &mut [u8]) -> bool {
        let base = frame as usize * self.stride;
        // One word past the frame: an unaligned copy to the end of the
        // page loads it, and drops its bytes.
        self.words
            .get(base..base + self.stride + 1)
            .is_some_and(|words| copy_words(words, off, dst))
    }

    /// Copies bytes out of `frame` (writers excluded by the state lock).
    pub(crate) fn read_locked(&self, frame: FrameId, off: usize, dst: &mut [u8]) {
        self.copy_out(frame, off, dst);
    }

    /// The page `frame` holds, if any (state lock held; without it, what
    /// it held a moment ago: a hint).
    pub(crate) fn page_of(&self, frame: FrameId) -> Option<u64> {
        let page = self.head(frame)?.page.load(Relaxed);
        (page != NO_PAGE).then_some(page)
    }

    /// Length of the page `frame` holds (state lock held).
    pub(crate) fn len(&self, frame: FrameId) -> usize {
        self.head(frame).map_or(0, |h| h.len.load(Relaxed) as usize)
    }

    #[inline]
    fn head(&self, frame: FrameId) -> Option<&FrameHead> {
        self.heads.get(frame as usize)
    }

    /// Records a locked-path hit (see [`touch`]).
    pub(crate) fn touch_locked(&self, frame: FrameId, epoch: u32) {
        if let Some(head) = self.head(frame) {
            touch(head, epoch);
        }
    }

    /// Takes one unit of re-use credit from `frame`, if it has any.
    pub(crate) fn take_credit(&self, frame: FrameId) -> bool {
        let Some(head) = self.head(frame) else {
            return false;
        };
        let credit = head.credit.load(Relaxed);
        if credit == 0 {
            return false;
        }
        head.credit.store(credit - 1, Relaxed);
        true
    }

    /// Takes `frame` for a rewrite (state lock held), if no long read is
    /// copying it: hides its key and makes its version odd, so no new
    /// reader trusts its words, then checks its reader count. `true`: the
    /// frame is the caller's until [`fill`](Self::fill), which it must
    /// call next. `false`: a reader is inside; the frame is left exactly
    /// as it was (its words were not touched, so readers inside or still
    /// to come read the page it holds) and the caller takes another frame
    /// or drops the page. Never waits: a reader holds a count for the
    /// copy of a run, but the scheduler may stop it there for as long as
    /// it likes, and a wait here would hold the state lock that long.
    pub(crate) fn claim(&self, frame: FrameId) -> bool {
        let (Some(head), Some(readers)) = (
            self.heads.get(frame as usize),
            self.readers.get(frame as usize),
        ) else {
            return false;
        };
        // A reader inside now is not worth the stores below.
        if readers.load(Relaxed) != 0 {
            self.busy_claims.fetch_add(1, Relaxed);
            return false;
        }
        let version = head.version.load(Relaxed);
        let key = head.key.load(Relaxed);
        // Hide the key before the version turns odd (see `FrameHead`).
        head.key.store(NO_PAGE, Relaxed);
        // SeqCst, with the load below: the writer's half of the Dekker
        // check in `read_run`.
        head.version.store(version.wrapping_add(1), SeqCst);
        // SeqCst: the Dekker check; also an acquire, so the copies of the
        // readers that left happen before the caller's stores.
        if readers.load(SeqCst) == 0 {
            // Until it is published, the frame holds no page for the
            // locked paths either (the lookup trusts a frame's page).
            head.page.store(NO_PAGE, Relaxed);
            return true;
        }
        // Give the frame back unchanged: its words never changed, so a
        // reader that sees the key again reads the page it names.
        head.key.store(key, Release);
        head.version.store(version.wrapping_add(2), Release);
        self.busy_claims.fetch_add(1, Relaxed);
        false
    }

    /// Makes `frame`, claimed by [`claim`](Self::claim), hold `page` with
    /// `bytes` (at most a page), with no credit yet (state lock held).
    /// Readers see the old or the new page, never a mix.
    #[cfg(test)]
    pub(crate) fn fill(&self, frame: FrameId, page: u64, bytes: &[u8], epoch: u32) {
        self.fill_words(frame, bytes);
        self.publish(frame, page, bytes.len(), epoch);
    }

    /// Copies `bytes` (at most a page) into the words of `frame`, claimed
    /// by [`claim`](Self::claim) and not yet published. Needs no lock: a
    /// claimed frame is free to no one else (the state lock's holders
    /// leave it alone, since it is neither free nor resident) and no
    /// reader trusts its words while its version is odd. So a miss copies
    /// its pages in without the state lock, and publishes them under it.
    pub(crate) fn fill_words(&self, frame: FrameId, bytes: &[u8]) {
        let base = frame as usize * self.stride;
        let (Some(head), Some(words)) = (
            self.heads.get(frame as usize),
            self.words.get(base..base + self.stride),
        ) else {
            return;
        };
        debug_assert!(
            head.version.load(Relaxed) % 2 == 1,
            "fill of a frame not claimed"
        );
        // Whole words by `chunks_exact`, so each is one load and one
        // store: a copy of unknown length per word (a `memcpy` call per
        // eight bytes) made this half of a cold scan's CPU.
        let whole = bytes.chunks_exact(8);
        let tail = whole.remainder();
        for (word, chunk) in words.iter().zip(whole) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(le), Relaxed);
        }
        if !tail.is_empty()
            && let Some(word) = words.get(bytes.len() / 8)
        {
            let mut le = [0u8; 8];
            le[..tail.len()].copy_from_slice(tail);
            word.store(u64::from_le_bytes(le), Relaxed);
        }
    }

    /// Copies the first `len` bytes of `from`'s page into `to`, both
    /// claimed by the caller (state lock held): a page moving to another
    /// frame, word to word, with nothing allocated.
    pub(crate) fn move_words(&self, from: FrameId, to: FrameId, len: usize) {
        let words = len.div_ceil(8).min(self.stride);
        let (from, to) = (from as usize * self.stride, to as usize * self.stride);
        if let (Some(src), Some(dst)) = (
            self.words.get(from..from + words),
            self.words.get(to..to + words),
        ) {
            for (dst, src) in dst.iter().zip(src) {
                dst.store(src.load(Relaxed), Relaxed);
            }
        }
    }

    /// Makes `frame`, claimed and filled with [`fill_words`](Self::fill_words),
    /// hold `page`, `len` bytes long, with no credit yet (state lock held):
    /// from here on readers trust its words.
    pub(crate) fn publish(&self, frame: FrameId, page: u64, len: usize, epoch: u32) {
        let Some(head) = self.heads.get(frame as usize) else {
            return;
        };
        let version = head.version.load(Relaxed);
        debug_assert!(version % 2 == 1, "publish of a frame not claimed");
        head.page.store(page, Relaxed);
        head.len
            .store(u32::try_from(len).unwrap_or(u32::MAX), Relaxed);
        head.seen_epoch.store(epoch, Relaxed);
        head.credit.store(0, Relaxed);
        // Shown last, with release: a reader that loads this key sees the
        // whole page (the words were stored before, by this thread or by
        // the one that filled them and released the state lock since).
        let whole = len == self.page_size;
        head.key.store(if whole { page } else { NO_PAGE }, Release);
        head.version.store(version.wrapping_add(1), Release);
    }

    /// Gives back `frame`, claimed but not published, holding no page
    /// (state lock held): its page was invalidated while it was copied in.
    pub(crate) fn abandon(&self, frame: FrameId) {
        if let Some(head) = self.head(frame) {
            let version = head.version.load(Relaxed);
            debug_assert!(version % 2 == 1, "abandon of a frame not claimed");
            head.page.store(NO_PAGE, Relaxed);
            head.len.store(0, Relaxed);
            head.version.store(version.wrapping_add(1), Release);
        }
    }

    /// Counts `len` bytes of a page copied into a frame while the cache's
    /// state lock was held, during its hold number `hold` (see
    /// `PageCache::copy_into_frame`).
    #[cfg(test)]
    pub(crate) fn count_locked_copy(&self, len: usize, hold: u64) {
        let mut copies = self.locked_copies.lock();
        copies.total += len as u64;
        if copies.hold != hold {
            (copies.hold, copies.in_hold) = (hold, 0);
        }
        copies.in_hold += len as u64;
        copies.most_in_one_hold = copies.most_in_one_hold.max(copies.in_hold);
    }

    /// Bytes of pages copied into frames while the state lock was held.
    #[cfg(test)]
    pub(crate) fn locked_copies(&self) -> u64 {
        self.locked_copies.lock().total
    }

    /// The most bytes of pages copied into frames during one hold of the
    /// state lock.
    #[cfg(test)]
    pub(crate) fn most_copied_in_one_hold(&self) -> u64 {
        self.locked_copies.lock().most_in_one_hold
    }

    /// How many claims found a reader inside and were refused (the writer
    /// took another frame, or dropped the page, instead of waiting).
    #[cfg(test)]
    pub(crate) fn busy_claims(&self) -> u64 {
        self.busy_claims.load(Relaxed)
    }

    /// Claims `frame` and fills it, retrying until no reader is inside:
    /// for tests that write frames without a state lock to hold up.
    #[cfg(test)]
    pub(crate) fn write(&self, frame: FrameId, page: u64, bytes: &[u8], epoch: u32) {
        while !self.claim(frame) {
            std::thread::yield_now();
        }
        self.fill(frame, page, bytes, epoch);
    }

    /// Raises `frame`'s reader count as a long read does, until the guard
    /// is dropped: a reader the scheduler stopped mid-copy.
    #[cfg(test)]
    pub(crate) fn hold_reader(&self, frame: FrameId) -> HeldReader<'_> {
        let readers = &self.readers[frame as usize];
        readers.fetch_add(1, SeqCst);
        HeldReader(readers)
    }

    /// Makes `frame` hold no page (state lock held).
    pub(crate) fn clear(&self, frame: FrameId) {
        if let Some(head) = self.head(frame) {
            let version = head.version.load(Relaxed);
            head.key.store(NO_PAGE, Relaxed);
            head.version.store(version.wrapping_add(1), Release);
            fence(Release);
            head.page.store(NO_PAGE, Relaxed);
            head.len.store(0, Relaxed);
            head.version.store(version.wrapping_add(2), Release);
        }
    }
}

/// Copies bytes `off..off + dst.len()` of `words` (a frame's words, as
/// little-endian bytes) into `dst` with relaxed loads; `false` if they are
/// not all inside `words`. Whole words go straight into `dst`, eight bytes
/// per load and store.
#[inline]
fn copy_words(words: &[AtomicU64], off: usize, dst: &mut [u8]) -> bool {
    let Some(words) = words.get(off / 8..) else {
        return false;
    };
    let skip = off % 8;
    let (whole, tail) = dst.split_at_mut(dst.len() / 8 * 8);
    let n = whole.len() / 8;
    // Iterators by value over slices of known length: the loop is one
    // load and one store per eight bytes, with no bounds checks.
    if skip == 0 {
        let Some((body, rest)) = words.split_at_checked(n) else {
            return false;
        };
        for (chunk, word) in whole.chunks_exact_mut(8).zip(body) {
            chunk.copy_from_slice(&word.load(Relaxed).to_le_bytes());
        }
        if !tail.is_empty() {
            let Some(word) = rest.first() else {
                return false;
            };
            tail.copy_from_slice(&word.load(Relaxed).to_le_bytes()[..tail.len()]);
        }
        return true;
    }
    // Unaligned: each eight bytes out are the high part of one word
    // and the low part of the next.
    let (shift_lo, shift_hi) = (skip * 8, 64 - skip * 8);
    let join =
        |pair: &[AtomicU64]| pair[0].load(Relaxed) >> shift_lo | pair[1].load(Relaxed) << shift_hi;
    let Some(body) = words.get(..=n) else {
        return false;
    };
    for (chunk, pair) in whole.chunks_exact_mut(8).zip(body.windows(2)) {
        chunk.copy_from_slice(&join(pair).to_le_bytes());
    }
    if !tail.is_empty() {
        let Some(pair) = words.get(n..n + 2) else {
            return false;
        };
        tail.copy_from_slice(&join(pair).to_le_bytes()[..tail.len()]);
    }
    true
}

/// Copies bytes `off..off + dst.len()` of `words` (the words of one or
/// more frames back to back, as little-endian bytes) into `dst` with one
/// `memcpy`, or returns `false` if they are not all inside `words`. The
/// caller holds the reader count of every frame the bytes lie in, raised
/// before it saw the frame's version even (see [`Frames::read_run`]).
///
/// The crate's second `unsafe` block (see the crate docs, "Scans: the
/// second `unsafe` block"): relaxed loads are never vectorized, and this
/// copy is what lets a scan of resident pages run at `memcpy` speed.
#[allow(unsafe_code)]
fn copy_excluded(words: &[AtomicU64], off: usize, dst: &mut [u8]) -> bool {
    if cfg!(target_endian = "big") {
        // Words hold little-endian bytes: only a little-endian target
        // sees them in order in memory.
        return copy_words(words, off, dst);
    }
    if off
        .checked_add(dst.len())
        .is_none_or(|end| end > std::mem::size_of_val(words))
    {
        return false;
    }
    let src = words.as_ptr().cast::<u8>().wrapping_add(off);
    // SAFETY: `src..src + dst.len()` lies inside `words` (checked above),
    // memory this shared borrow keeps alive and initialized (every byte of
    // an `AtomicU64` is), and `dst` is a distinct, exclusive borrow, so the
    // ranges are valid and do not overlap. Reading an `AtomicU64` through
    // a pointer derived from `&[AtomicU64]` is allowed (its contents are
    // an `UnsafeCell`). It is no data race: the only writes to a frame's
    // words are `Frames::fill`'s, after `Frames::claim` made the version
    // odd (SeqCst) and then saw the reader count at zero (SeqCst); for
    // every frame these bytes lie in, this reader incremented the count
    // (SeqCst) and then saw an even version, so a writer has either
    // finished (its stores happen before the version this reader
    // acquired), or saw this reader's count and left the words alone, or
    // will not claim the frame before this reader's release decrement. Other readers of the same words only
    // read (atomic loads or copies like this one), and reads never race
    // with reads.
    unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    true
}

/// Records an access: accesses with no miss in between count once, so
/// that reading many values from one page (a scan decoding every field)
/// does not look like re-use; only the first access of each miss epoch
/// earns credit. Plain stores: racing updates may lose a count, which
/// only nudges eviction.
#[inline]
fn touch(head: &FrameHead, epoch: u32) {
    if head.seen_epoch.load(Relaxed) != epoch {
        head.seen_epoch.store(epoch, Relaxed);
        let credit = head.credit.load(Relaxed);
        head.credit.store((credit + 1).min(MAX_CREDIT), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 13 + 1) as u8).collect()
    }

    #[test]
    fn reads_return_the_written_bytes_at_every_offset_and_length() {
        for page_size in [1, 2, 8, 16, 64] {
            let frames = Frames::new(4, page_size).unwrap();
            let page = bytes(page_size);
            frames.write(3, 77, &page, 0);
            for off in 0..page_size {
                for len in 0..=page_size - off {
                    let mut dst = vec![0; len];
                    assert!(matches!(frames.read(3, 77, off, &mut dst, 0), Copied::Done));
                    assert_eq!(dst, page[off..off + len], "{page_size} {off} {len}");
                    let mut locked = vec![0; len];
                    frames.read_locked(3, off, &mut locked);
                    assert_eq!(locked, dst);
                }
            }
        }
    }

    /// A short page (the device's last) of any length, whole words and a
    /// tail, reads back as written.
    #[test]
    fn a_short_page_of_any_length_reads_back_as_written() {
        let page_size = 64;
        let frames = Frames::new(2, page_size).unwrap();
        for len in 0..=page_size {
            let page = bytes(len);
            frames.write(1, 5, &page, 0);
            let mut dst = vec![0; len];
            frames.read_locked(1, 0, &mut dst);
            assert_eq!(dst, page, "{len}");
        }
    }

    #[test]
    fn bulk_reads_return_the_written_bytes_at_any_offset() {
        let page_size = 2 * BULK_MIN;
        let frames = Frames::new(2, page_size).unwrap();
        let page = bytes(page_size);
        frames.write(1, 9, &page, 0);
        let lens = [BULK_MIN - 1, BULK_MIN, BULK_MIN + 3, page_size - 9];
        for off in (0..9).chain([BULK_MIN - 1]) {
            for len in lens.into_iter().filter(|len| off + len <= page_size) {
                let mut dst = vec![0; len];
                assert!(matches!(frames.read(1, 9, off, &mut dst, 0), Copied::Done));
                assert_eq!(dst, page[off..off + len], "{off} {len}");
            }
        }
        // No reader is left counted, and another page still retries.
        assert!(frames.readers.iter().all(|r| r.load(Relaxed) == 0));
        let mut dst = vec![0; page_size];
        assert!(matches!(frames.read(1, 8, 0, &mut dst, 0), Copied::Retry));
        assert!(matches!(frames.read(0, 9, 0, &mut dst, 0), Copied::Retry));
    }

    #[test]
    fn a_bulk_read_with_the_reader_count_full_retries_and_leaves_it_unchanged() {
        let page_size = BULK_MIN;
        let frames = Frames::new(1, page_size).unwrap();
        frames.write(0, 3, &bytes(page_size), 0);
        frames.readers[0].store(MAX_READERS, Relaxed);
        let mut dst = vec![0; page_size];
        assert!(matches!(frames.read(0, 3, 0, &mut dst, 0), Copied::Retry));
        assert_eq!(frames.readers[0].load(Relaxed), MAX_READERS);
        frames.readers[0].store(0, Relaxed);
        assert!(matches!(frames.read(0, 3, 0, &mut dst, 0), Copied::Done));
        assert_eq!(dst, bytes(page_size));
    }

    #[test]
    fn a_bulk_reader_inside_a_frame_makes_its_claim_fail_and_keeps_the_page() {
        let page_size = BULK_MIN;
        let frames = Frames::new(2, page_size).unwrap();
        frames.write(1, 4, &bytes(page_size), 0);
        let held = frames.hold_reader(1);
        assert!(!frames.claim(1));
        assert_eq!(frames.busy_claims(), 1);
        // Unchanged: the page is still there for readers, whole.
        assert_eq!(frames.page_of(1), Some(4));
        let mut dst = vec![0; page_size];
        assert!(matches!(frames.read(1, 4, 0, &mut dst, 0), Copied::Done));
        assert_eq!(dst, bytes(page_size));
        drop(held);
        assert!(frames.claim(1));
        frames.fill(1, 5, &vec![7; page_size], 0);
        assert!(matches!(frames.read(1, 5, 0, &mut dst, 0), Copied::Done));
        assert_eq!(dst, vec![7; page_size]);
    }

    #[test]
    fn a_run_read_copies_up_to_the_first_frame_not_holding_its_page() {
        let page_size = 64;
        let frames = Frames::new(4, page_size).unwrap();
        let all = bytes(4 * page_size);
        for (frame, page) in all.chunks(page_size).enumerate() {
            frames.write(frame as FrameId, 10 + frame as u64, page, 0);
        }
        let run = [(1, 11), (2, 12), (3, 13)];
        let mut dst = vec![0; 2 * page_size + 9];
        assert_eq!(frames.read_run(&run, 5, &mut dst, 0), dst.len());
        assert_eq!(dst, all[page_size + 5..3 * page_size + 14]);
        let mut dst = vec![0; 3 * page_size];
        assert_eq!(
            frames.read_run(&[(0, 10), (1, 99), (2, 12)], 0, &mut dst, 0),
            page_size
        );
        assert_eq!(dst[..page_size], all[..page_size]);
        // A run shorter than the range stops at its last page.
        assert_eq!(frames.read_run(&run[..1], 0, &mut dst, 0), page_size);
        // Frames not back to back (the home frames wrap around).
        let mut dst = vec![0; 2 * page_size];
        assert_eq!(
            frames.read_run(&[(3, 13), (0, 10)], 0, &mut dst, 0),
            dst.len()
        );
        assert_eq!(dst[..page_size], all[3 * page_size..]);
        assert_eq!(dst[page_size..], all[..page_size]);
        assert!(frames.readers.iter().all(|r| r.load(Relaxed) == 0));
    }

    #[test]
    fn reads_of_another_page_or_past_the_length_retry() {
        let frames = Frames::new(2, 16).unwrap();
        frames.write(1, 5, &bytes(10), 0);
        let mut dst = [0; 4];
        assert!(matches!(frames.read(1, 6, 0, &mut dst, 0), Copied::Retry));
        // A short page is read under the lock only, even within its length.
        assert!(matches!(frames.read(1, 5, 0, &mut dst, 0), Copied::Retry));
        assert!(frames.read_word(1, 5, 0, 0).is_none());
        let mut locked = [0; 4];
        frames.read_locked(1, 6, &mut locked);
        assert_eq!(locked, bytes(10)[6..10]);
        assert!(matches!(frames.read(0, 5, 0, &mut dst, 0), Copied::Retry));
        assert!(matches!(frames.read(9, 5, 0, &mut dst, 0), Copied::Retry));
        assert!(Frames::new(usize::MAX / 2, 64).is_none());
        frames.clear(1);
        assert!(matches!(frames.read(1, 5, 0, &mut dst, 0), Copied::Retry));
    }

    #[test]
    fn credit_is_earned_once_per_epoch_up_to_the_cap() {
        let frames = Frames::new(1, 8).unwrap();
        frames.write(0, 1, &[0; 8], 7);
        let mut dst = [0; 1];
        frames.read(0, 1, 0, &mut dst, 7);
        assert!(!frames.take_credit(0));
        for epoch in 8..20 {
            frames.read(0, 1, 0, &mut dst, epoch);
            frames.read(0, 1, 0, &mut dst, epoch);
        }
        let taken = (0..10).filter(|_| frames.take_credit(0)).count();
        assert_eq!(taken, usize::from(MAX_CREDIT));
    }

    #[test]
    fn bulk_reads_racing_rewrites_and_clears_never_show_a_mix_of_two_pages() {
        use std::sync::atomic::AtomicBool;
        let page_size = 2 * BULK_MIN;
        // Frame 0 holds page 1 and frame 1 page 2, in turn all 0xaa or all
        // 0xbb; a page is never a mix, whichever way it is read.
        let frames = Frames::new(2, page_size).unwrap();
        let pages = [vec![0xaa; page_size], vec![0xbb; page_size]];
        frames.write(0, 1, &pages[0], 0);
        frames.write(1, 2, &pages[0], 0);
        let whole = |piece: &[u8]| {
            let first = piece[0];
            assert!(
                (first == 0xaa || first == 0xbb) && piece.iter().all(|&b| b == first),
                "torn read {piece:?}"
            );
        };
        let writing = AtomicBool::new(true);
        let rounds = if cfg!(miri) { 30 } else { 20_000 };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..rounds {
                    for frame in 0..2 {
                        // Another page in between, and now and then none.
                        frames.write(frame, 9, &pages[1], 0);
                        if i % 8 == 0 {
                            frames.clear(frame);
                        }
                        frames.write(frame, u64::from(frame) + 1, &pages[i % 2], 0);
                    }
                }
                writing.store(false, Relaxed);
            });
            let mut dst = vec![0u8; 2 * page_size];
            let (mut seen, mut retried) = (0u64, 0u64);
            let mut reads = 0usize;
            while writing.load(Relaxed) || seen == 0 {
                reads += 1;
                let copied = match reads % 3 {
                    // The whole page, and an unaligned piece of it.
                    0 => match frames.read(0, 1, 0, &mut dst[..page_size], 0) {
                        Copied::Done => page_size,
                        Copied::Retry => 0,
                    },
                    1 => match frames.read(0, 1, 5, &mut dst[..BULK_MIN + 7], 0) {
                        Copied::Done => BULK_MIN + 7,
                        Copied::Retry => 0,
                    },
                    // A run across both frames, from inside the first.
                    _ => {
                        let dst = &mut dst[..2 * page_size - 5];
                        let copied = frames.read_run(&[(0, 1), (1, 2)], 5, dst, 0);
                        if copied > page_size - 5 {
                            whole(&dst[page_size - 5..copied]);
                        }
                        copied.min(page_size - 5)
                    }
                };
                if copied == 0 {
                    retried += 1;
                } else {
                    whole(&dst[..copied]);
                    seen += 1;
                }
            }
            assert!(seen > 0, "{retried} retries");
        });
        assert!(frames.readers.iter().all(|r| r.load(Relaxed) == 0));
    }

    #[test]
    fn concurrent_rewrites_never_show_a_mix_of_two_pages() {
        use std::sync::atomic::AtomicBool;
        let frames = Frames::new(1, 64).unwrap();
        let a = vec![0xaa; 64];
        let b = vec![0xbb; 64];
        frames.write(0, 1, &a, 0);
        let writing = AtomicBool::new(true);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..20_000 {
                    frames.write(0, 1, if i % 2 == 0 { &b } else { &a }, 0);
                }
                writing.store(false, Relaxed);
            });
            let mut dst = [0u8; 40];
            let (mut seen, mut retried) = (0u64, 0u64);
            let mut reads = 0usize;
            while writing.load(Relaxed) || seen == 0 {
                // Unaligned and aligned copies, and the one-word read.
                reads += 1;
                let (off, len) = [(12, 40), (8, 40), (3, 8)][reads % 3];
                let dst = &mut dst[..len];
                match frames.read(0, 1, off, dst, 0) {
                    Copied::Done => {
                        let first = dst[0];
                        assert!(
                            (first == 0xaa || first == 0xbb) && dst.iter().all(|&b| b == first),
                            "torn read {dst:?}"
                        );
                        seen += 1;
                    }
                    Copied::Retry => retried += 1,
                }
            }
            assert!(seen > 0, "{retried} retries");
        });
    }
}
