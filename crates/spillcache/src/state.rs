//! The state shared by the callers and the writer thread, and the
//! bookkeeping every change to it must keep consistent.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::{Config, FileFactory};
use crate::entry::{Entries, Entry, Place};
use crate::handoff::{ReadHelper, SplitWrite};
use crate::hole::HoleIndex;
use crate::recycle::Recycler;
use crate::stats::Stats;

/// What the callers and the writer thread share.
pub(crate) struct Shared<D> {
    pub(crate) state: Mutex<State<D>>,
    /// Wakes the writer: new work, removals (the file may shrink), shutdown.
    pub(crate) work: Condvar,
    /// Wakes waiters: every entry written, a write failed, a defrag attempt
    /// finished, the writer stopped.
    pub(crate) progress: Condvar,
    /// Wakes callers waiting for room (backpressure): bytes waiting to be
    /// written went down, or the writer stopped.
    pub(crate) room: Condvar,
    pub(crate) factory: Box<dyn FileFactory<File = D>>,
    pub(crate) config: Config,
    /// Buffers of large values written, for the next `add`s.
    pub(crate) recycler: Recycler,
    /// Decrypts pieces of long values beside their readers; started by the
    /// first such read (`None` if it could not start).
    pub(crate) read_helper: OnceLock<Option<ReadHelper<D>>>,
}

/// Everything behind the lock.
pub(crate) struct State<D> {
    /// The current cache file. Readers clone the `Arc`, so a file replaced
    /// by a defragmentation stays readable until they are done.
    pub(crate) file: Arc<D>,
    /// Bumped whenever `file` or the meaning of its offsets changes (a
    /// defragmentation or `clear`): a reservation or read made before is void.
    pub(crate) file_epoch: u64,
    /// How far the writer may have extended `file` (to cut it back when idle).
    pub(crate) file_len: u64,
    pub(crate) entries: Entries,
    /// Slots with a dirty entry, in the order they became dirty; each slot
    /// at most once (see `Entries::is_queued`), so overwrites of a waiting
    /// key never grow it. Slots whose entry has since been written or
    /// removed are skipped when popped.
    pub(crate) queue: VecDeque<usize>,
    /// Slots whose write failed, retried after a backoff (or sooner when
    /// space is freed), so that they never block the queue behind them.
    pub(crate) retry: VecDeque<usize>,
    /// Bytes of dirty values (waiting to be written, or being written):
    /// what `max_pending_bytes` bounds.
    pub(crate) pending_bytes: u64,
    /// Bytes of memory-only values (bounded by `max_memory_only_bytes`).
    pub(crate) memory_only_bytes: u64,
    /// Bytes of values that `add` calls are copying in without the lock,
    /// held against `max_pending_bytes` (room first, then the copy, so a
    /// caller that waits holds no copy). `clear` keeps them: those values
    /// arrive after it.
    pub(crate) held_pending: u64,
    /// The same for memory-only values and `max_memory_only_bytes`.
    pub(crate) held_memory_only: u64,
    /// Whole blocks of the current file's holes to give back to the file
    /// system, each listed once, by the free that made it whole. The
    /// writer punches them before it reserves space again, so a listed
    /// block is still free when it is punched.
    pub(crate) to_punch: Vec<(u64, u64)>,
    /// The file system's block size, the unit holes are punched in
    /// (`u64::MAX`: the device cannot punch holes).
    pub(crate) punch_block: u64,
    /// Space was freed since the last failed write: retry now.
    pub(crate) space_freed: bool,
    pub(crate) holes: HoleIndex,
    /// Bytes of the file in use: written entries plus the write under way.
    pub(crate) disk_bytes: u64,
    /// Bytes reserved by the write under way (0 when none).
    pub(crate) in_flight: u64,
    /// The slot being written (out of the queue, still dirty), and the
    /// thread writing it.
    pub(crate) writing: Option<(usize, Mark)>,
    /// The thread copying a value down while compacting in place, whose
    /// move the bytes of `in_flight` are reserved for.
    pub(crate) moving: Option<Mark>,
    /// Bytes of every value in the cache.
    pub(crate) total_size: u64,
    /// Entries waiting to be written (including the one being written).
    pub(crate) dirty: usize,
    /// Written entries that also keep their value in RAM, and their bytes.
    pub(crate) ram_copies: usize,
    pub(crate) ram_copy_bytes: u64,
    next_generation: u64,
    pub(crate) stats: Stats,
    /// The error of the last write attempt, while writes are failing.
    pub(crate) write_error: Option<io::Error>,
    pub(crate) failures_in_a_row: u32,
    /// No write is tried before this (backoff after a failure).
    pub(crate) retry_at: Option<Instant>,
    /// Defragmentation requests made (`SpillCache::defrag`), numbered from 1.
    pub(crate) defrag_tickets: u64,
    /// The highest request number a finished defragmentation started after;
    /// requests up to it are served.
    pub(crate) defrag_served: u64,
    /// Whether the last finished defragmentation failed.
    pub(crate) defrag_last_failed: bool,
    pub(crate) defrag_error: Option<io::Error>,
    pub(crate) defrag_failures_in_a_row: u32,
    /// No automatic defragmentation before this (backoff after a failure).
    pub(crate) defrag_not_before: Option<Instant>,
    pub(crate) shutting_down: bool,
    /// Writes still happen: false for good once the writer thread ended or
    /// a write panicked on a caller's thread (the writer thread then ends
    /// too). Values not written stay in RAM.
    pub(crate) writer_alive: bool,
    /// The writer thread is asleep waiting for work: a caller waiting for
    /// the queue to drain may write it itself (see `writer::write_here`).
    pub(crate) writer_idle: bool,
    /// While `writer_idle`: when the writer thread wakes by itself at the
    /// latest (`None`: only when woken), so that whoever leaves it work due
    /// earlier (a spare buffer to free) knows to wake it.
    pub(crate) writer_wakes_at: Option<Instant>,
    /// A caller is writing queued values itself; the writer thread only
    /// helps with `split` meanwhile. At most one thread writes at a time.
    pub(crate) caller_writing: Option<Mark>,
    /// The pieces of the long value that caller is writing, offered to the
    /// writer thread.
    pub(crate) split: Option<Arc<SplitWrite<D>>>,
    /// The scratch buffer of the caller writing the queue, kept between
    /// callers (one writes at a time) so none pays a fresh, zeroed buffer.
    pub(crate) caller_scratch: Vec<u8>,
}

impl<D> Shared<D> {
    /// Stops writing for good after a device call panicked: waiters and
    /// the writer thread (which then ends) are told.
    pub(crate) fn stop_writing(&self, state: &mut State<D>) {
        state.writer_alive = false;
        self.progress.notify_all();
        self.room.notify_all();
        self.work.notify_all();
    }
}

/// Held by a thread while it does what the state records as under way (a
/// write, a caller writing the queue); the state keeps its [`Mark`]. A
/// thread that unwinds drops it, so [`State::check`] tells a record left
/// behind (a leaked reservation, a flag stuck on) from work under way.
#[derive(Default)]
pub(crate) struct Presence(Arc<()>);

impl Presence {
    pub(crate) fn mark(&self) -> Mark {
        Mark(Arc::downgrade(&self.0))
    }
}

/// The state's side of a [`Presence`].
#[derive(Debug)]
pub(crate) struct Mark(Weak<()>);

impl Mark {
    /// Whether the thread that held the presence let go of it.
    pub(crate) fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// What `insert` makes of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Write it to the file.
    Spill,
    /// Keep it in RAM only.
    MemoryOnly,
}

impl<D> State<D> {
    /// `punch_block`: the file system's block size (`u64::MAX` for a
    /// device that cannot punch holes).
    pub(crate) fn new(file: D, config: &Config, punch_block: u64) -> Self {
        State {
            file: Arc::new(file),
            file_epoch: 0,
            file_len: 0,
            entries: Entries::default(),
            queue: VecDeque::new(),
            retry: VecDeque::new(),
            writing: None,
            moving: None,
            pending_bytes: 0,
            memory_only_bytes: 0,
            held_pending: 0,
            held_memory_only: 0,
            to_punch: Vec::new(),
            punch_block,
            space_freed: false,
            holes: HoleIndex::new(config.small_hole_threshold),
            disk_bytes: 0,
            in_flight: 0,
            total_size: 0,
            dirty: 0,
            ram_copies: 0,
            ram_copy_bytes: 0,
            next_generation: 1,
            stats: Stats::default(),
            write_error: None,
            failures_in_a_row: 0,
            retry_at: None,
            defrag_tickets: 0,
            defrag_served: 0,
            defrag_last_failed: false,
            defrag_error: None,
            defrag_failures_in_a_row: 0,
            defrag_not_before: None,
            shutting_down: false,
            writer_alive: true,
            writer_idle: false,
            writer_wakes_at: None,
            caller_writing: None,
            split: None,
            caller_scratch: Vec::new(),
        }
    }

    /// Stores `data` as the value of `key`, replacing any earlier value.
    /// Returns whether the writer has new work.
    pub(crate) fn insert(&mut self, key: &[u8], data: Arc<[u8]>, keep: Keep) -> bool {
        let generation = self.next_generation;
        self.next_generation += 1;
        let len = data.len() as u64;
        // Nothing to write for an empty value.
        let spill = keep == Keep::Spill && len > 0;
        let entry = Entry {
            generation,
            len,
            added_by: thread::current().id(),
            place: if spill {
                Place::Dirty(data)
            } else {
                Place::MemoryOnly(data)
            },
        };
        let (slot, old) = self.entries.insert(key, entry);
        if let Some(old) = old {
            self.release(old);
        }
        self.total_size += len;
        if spill {
            self.dirty += 1;
            self.pending_bytes += len;
            if !self.entries.is_queued(slot) {
                self.entries.set_queued(slot, true);
                self.queue.push_back(slot);
            }
        } else {
            self.memory_only_bytes += len;
        }
        spill
    }

    /// Removes the value of `key`; returns whether there was one.
    pub(crate) fn remove(&mut self, key: &[u8]) -> bool {
        match self.entries.remove(key) {
            Some(old) => {
                self.release(old);
                true
            }
            None => false,
        }
    }

    /// Undoes an entry's share of the counters and frees its file space.
    /// Its seal (the key) is wiped as it drops.
    fn release(&mut self, old: Entry) {
        self.total_size -= old.len;
        if old.is_ram_copy() {
            self.ram_copies -= 1;
            self.ram_copy_bytes -= old.len;
        }
        match old.place {
            Place::MemoryOnly(_) => self.memory_only_bytes -= old.len,
            Place::Dirty(_) => {
                self.dirty -= 1;
                self.pending_bytes -= old.len;
            }
            Place::OnDisk { offset, .. } => self.free_region(offset, old.len),
        }
    }

    /// The bytes that would wait to be written (or be held for values
    /// being copied in) if `key` got a dirty value of `len` bytes, and
    /// those of them that belong to other keys.
    pub(crate) fn pending_with(&self, key: &[u8], len: u64) -> (u64, u64) {
        let own = self
            .entries
            .slot_of(key)
            .and_then(|slot| self.entries.get(slot))
            .filter(|e| matches!(e.place, Place::Dirty(_)))
            .map_or(0, |e| e.len);
        let others = self.pending_bytes - own + self.held_pending;
        (others.saturating_add(len), others)
    }

    /// The memory-only bytes there would be (held ones included) if `key`
    /// got a memory-only value of `len` bytes.
    pub(crate) fn memory_only_with(&self, key: &[u8], len: u64) -> u64 {
        let own = self
            .entries
            .slot_of(key)
            .and_then(|slot| self.entries.get(slot))
            .filter(|e| matches!(e.place, Place::MemoryOnly(_)))
            .map_or(0, |e| e.len);
        (self.memory_only_bytes - own + self.held_memory_only).saturating_add(len)
    }

    /// Holds room for a value of `len` bytes that a caller copies in
    /// without the lock (`keep`: under which bound).
    pub(crate) fn hold_room(&mut self, keep: Keep, len: u64) {
        match keep {
            Keep::Spill => self.held_pending += len,
            Keep::MemoryOnly => self.held_memory_only += len,
        }
    }

    /// Gives back room held with [`hold_room`](Self::hold_room).
    pub(crate) fn release_room(&mut self, keep: Keep, len: u64) {
        match keep {
            Keep::Spill => self.held_pending -= len,
            Keep::MemoryOnly => self.held_memory_only -= len,
        }
    }

    /// Reserves `len` bytes of the file for a write.
    pub(crate) fn reserve(&mut self, len: u64) -> u64 {
        debug_assert!(self.to_punch.is_empty(), "punch before reserving");
        self.disk_bytes += len;
        self.holes.allocate(len)
    }

    /// Reserves `len` bytes at the start of the hole at `offset`; returns
    /// whether it could.
    pub(crate) fn reserve_in_hole(&mut self, offset: u64, len: u64) -> bool {
        debug_assert!(self.to_punch.is_empty(), "punch before reserving");
        let reserved = self.holes.allocate_in_hole(offset, len);
        if reserved {
            self.disk_bytes += len;
        }
        reserved
    }

    /// Returns file space; when nothing is left in the file, every hole
    /// (tracked or not) goes and the end of data returns to 0. The blocks
    /// the region completes, in the hole it becomes part of, are listed for
    /// punching.
    pub(crate) fn free_region(&mut self, offset: u64, len: u64) {
        self.disk_bytes -= len;
        self.space_freed = true;
        if self.disk_bytes == 0 {
            self.holes.reset();
            return;
        }
        self.holes.free(offset, len);
        if offset < self.holes.end() {
            // An untracked (small) hole is free all the same.
            let hole = self.holes.containing(offset).unwrap_or((offset, len));
            if let Some(blocks) = blocks_completed(hole, (offset, len), self.punch_block) {
                self.to_punch.push(blocks);
            }
        }
    }

    /// Points the state at a new file whose data ends at `end` (after a
    /// defragmentation): offsets into the old one are void.
    pub(crate) fn swap_file(&mut self, file: D, holes: HoleIndex, disk_bytes: u64, end: u64) {
        self.holes = holes;
        self.disk_bytes = disk_bytes;
        self.file = Arc::new(file);
        self.file_epoch += 1;
        self.file_len = end;
        self.to_punch.clear();
    }

    /// Drops every entry and forgets the file layout (including any write
    /// under way, whose result will be discarded).
    pub(crate) fn clear(&mut self) {
        self.entries.drain().for_each(drop);
        self.queue.clear();
        self.retry.clear();
        self.pending_bytes = 0;
        self.memory_only_bytes = 0;
        self.to_punch.clear();
        self.holes.reset();
        self.disk_bytes = 0;
        self.in_flight = 0;
        self.total_size = 0;
        self.dirty = 0;
        self.ram_copies = 0;
        self.ram_copy_bytes = 0;
        self.file_epoch += 1;
        self.file_len = 0;
        // Nothing is left to write, so nothing is failing.
        self.write_error = None;
        self.failures_in_a_row = 0;
        self.retry_at = None;
    }

    /// Keeps `data` as the RAM copy of the written entry `slot` if it still
    /// holds `generation` at `offset` of the current file and has no copy.
    pub(crate) fn keep_ram_copy(
        &mut self,
        slot: usize,
        generation: u64,
        offset: u64,
        epoch: u64,
        data: &[u8],
    ) {
        if epoch != self.file_epoch {
            return;
        }
        let Some(entry) = self.entries.current_mut(slot, generation) else {
            return;
        };
        if let Place::OnDisk {
            offset: at,
            ram_copy: ram_copy @ None,
            ..
        } = &mut entry.place
            && *at == offset
        {
            *ram_copy = Some(Arc::from(data));
            self.ram_copies += 1;
            self.ram_copy_bytes += entry.len;
        }
    }

    /// Drops the RAM copies of written entries whose key matches.
    pub(crate) fn remove_from_ram(&mut self, mut predicate: impl FnMut(&[u8]) -> bool) -> usize {
        let slots: Vec<usize> = self
            .entries
            .keys()
            .filter(|&(key, slot)| {
                self.entries.get(slot).is_some_and(Entry::is_ram_copy) && predicate(key)
            })
            .map(|(_, slot)| slot)
            .collect();
        for &slot in &slots {
            if let Some(entry) = self.entries.get_mut(slot)
                && let Place::OnDisk { ram_copy, .. } = &mut entry.place
                && ram_copy.take().is_some()
            {
                self.ram_copies -= 1;
                self.ram_copy_bytes -= entry.len;
            }
        }
        slots.len()
    }

    /// Whether the file is larger than the defrag factor allows, or a
    /// defragmentation was asked for.
    pub(crate) fn defrag_due(&self, config: &Config, now: Instant) -> bool {
        if self.defrag_tickets > self.defrag_served {
            return true;
        }
        if self.disk_bytes == 0 || self.defrag_not_before.is_some_and(|t| now < t) {
            return false;
        }
        self.holes.end() as f64 > config.defrag_factor * self.disk_bytes as f64
    }

    /// When the next try is due after `failures` failures in a row, or
    /// `None` when that is beyond what an `Instant` can hold (wait for a
    /// wake-up instead).
    pub(crate) fn retry_deadline(config: &Config, failures: u32, now: Instant) -> Option<Instant> {
        now.checked_add(Self::backoff(config, failures))
    }

    /// The wait before the next try after `failures` failures in a row.
    pub(crate) fn backoff(config: &Config, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(20);
        config
            .retry_min
            .saturating_mul(factor)
            .min(config.retry_max)
    }

    /// Checks every counter and the file layout against the entries.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.entries.check()?;
        self.holes.check()?;
        let (mut total, mut dirty, mut copies, mut copy_bytes, mut on_disk) = (0, 0, 0, 0, 0);
        let (mut pending, mut memory_only) = (0, 0);
        let mut regions = Vec::new();
        for (_, entry) in self.entries.iter() {
            total += entry.len;
            if entry.is_ram_copy() {
                copies += 1;
                copy_bytes += entry.len;
            }
            if entry
                .ram()
                .is_some_and(|data| data.len() as u64 != entry.len)
            {
                return Err(format!(
                    "an entry of {} bytes holds a different value",
                    entry.len
                ));
            }
            match &entry.place {
                Place::MemoryOnly(_) => memory_only += entry.len,
                Place::Dirty(_) => {
                    dirty += 1;
                    pending += entry.len;
                }
                Place::OnDisk { offset, .. } => {
                    on_disk += entry.len;
                    regions.push((*offset, entry.len));
                }
            }
        }
        let expect = |what: &str, have: u64, want: u64| {
            if have == want {
                Ok(())
            } else {
                Err(format!("{what} is {have}, entries say {want}"))
            }
        };
        if let Some((slot, by)) = &self.writing
            && by.is_gone()
        {
            return Err(format!(
                "slot {slot} is recorded as being written by a thread that is gone \
                 ({} bytes reserved for it, never freed)",
                self.in_flight
            ));
        }
        // Bytes reserved for a write or a move belong to a thread doing it:
        // one that unwound without giving them back leaked them.
        let reserved_for = self
            .writing
            .as_ref()
            .map(|(_, by)| by)
            .or(self.moving.as_ref());
        if self.in_flight > 0 && reserved_for.is_none_or(Mark::is_gone) {
            return Err(format!(
                "{} bytes are reserved for a write or a move that no thread is doing",
                self.in_flight
            ));
        }
        if self.caller_writing.as_ref().is_some_and(Mark::is_gone) {
            return Err("a caller is recorded as writing the queue but is gone: \
                 nothing would be written again"
                .into());
        }
        expect("total_size", self.total_size, total)?;
        expect("dirty", self.dirty as u64, dirty)?;
        expect("ram_copies", self.ram_copies as u64, copies)?;
        expect("ram_copy_bytes", self.ram_copy_bytes, copy_bytes)?;
        expect("disk_bytes", self.disk_bytes, on_disk + self.in_flight)?;
        expect("pending_bytes", self.pending_bytes, pending)?;
        expect("memory_only_bytes", self.memory_only_bytes, memory_only)?;
        for (slot, entry) in self.entries.iter() {
            if matches!(entry.place, Place::Dirty(_))
                && !self.entries.is_queued(slot)
                && self.writing.as_ref().is_none_or(|(at, _)| *at != slot)
            {
                return Err(format!("dirty slot {slot} is not queued"));
            }
        }
        let queued = self.queue.len() + self.retry.len();
        if queued > self.entries.slot_count() {
            return Err(format!(
                "{queued} queued items for {} slots: a slot is queued twice",
                self.entries.slot_count()
            ));
        }
        regions.extend(self.holes.holes());
        regions.sort_unstable();
        let mut stop = 0;
        for &(offset, len) in &regions {
            if offset < stop {
                return Err(format!(
                    "region ({offset}, {len}) overlaps one ending at {stop}"
                ));
            }
            stop = offset + len;
        }
        if stop > self.holes.end() {
            return Err(format!(
                "data ends at {stop}, past the end {}",
                self.holes.end()
            ));
        }
        Ok(())
    }
}

/// The whole blocks of `hole` that `region` (just freed into it) overlaps,
/// as `(offset, length)`, if any: exactly the blocks the free made whole,
/// since each held a byte of the region before. So every block is listed
/// by one free only, however many neighbours are freed around it, and the
/// hole's other blocks (punched before) are not punched again.
fn blocks_completed(hole: (u64, u64), region: (u64, u64), block: u64) -> Option<(u64, u64)> {
    if block == 0 || block == u64::MAX {
        return None;
    }
    let (hole_start, hole_stop) = (hole.0, hole.0.checked_add(hole.1)?);
    let (region_start, region_stop) = (region.0, region.0.checked_add(region.1)?);
    let start = hole_start
        .div_ceil(block)
        .checked_mul(block)?
        .max(region_start / block * block);
    let stop = (hole_stop / block * block).min(region_stop.div_ceil(block).saturating_mul(block));
    (stop > start).then(|| (start, stop - start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = Config {
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            ..Config::default()
        };
        let waits: Vec<u128> = (1..=5)
            .map(|n| State::<()>::backoff(&config, n).as_millis())
            .collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        assert_eq!(State::<()>::backoff(&config, u32::MAX).as_millis(), 50);
    }

    #[test]
    fn overwriting_a_dirty_value_keeps_one_dirty_entry() {
        let mut state = State::new((), &Config::default(), u64::MAX);
        assert!(state.insert(b"k", Arc::from(&b"one"[..]), Keep::Spill));
        assert!(state.insert(b"k", Arc::from(&b"three"[..]), Keep::Spill));
        assert_eq!(
            (state.dirty, state.total_size, state.pending_bytes),
            (1, 5, 5)
        );
        assert!(
            !state.insert(b"e", Arc::from(&b""[..]), Keep::Spill),
            "empty: nothing to write"
        );
        state.check().unwrap();
        assert!(state.remove(b"k"));
        assert_eq!(
            (state.dirty, state.total_size, state.pending_bytes),
            (0, 0, 0)
        );
        state.check().unwrap();
    }

    #[test]
    fn a_waiting_key_is_queued_once_however_often_it_is_overwritten() {
        let mut state = State::new((), &Config::default(), u64::MAX);
        for i in 0..10_000u32 {
            state.insert(b"k", Arc::from(&i.to_le_bytes()[..]), Keep::Spill);
        }
        assert_eq!(state.queue.len(), 1);
        // Removed and re-added, or its slot reused by another key: still once.
        state.remove(b"k");
        state.insert(b"other", Arc::from(&b"v"[..]), Keep::Spill);
        state.insert(b"k", Arc::from(&b"w"[..]), Keep::Spill);
        assert_eq!(state.queue.len(), 2);
        state.check().unwrap();
    }

    const BLOCK: u64 = 4096;

    /// Merges sorted, disjoint `(offset, length)` ranges that touch.
    fn merged(ranges: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (offset, len) in ranges {
            match out.last_mut() {
                Some((start, have)) if *start + *have == offset => *have += len,
                _ => out.push((offset, len)),
            }
        }
        out
    }

    proptest! {
        /// Regions of `lens` laid end to end, the first `count` of `order`
        /// freed (the last region stays, so the end of data never moves):
        /// the blocks listed for punching are whole, each listed once, and
        /// together exactly the whole blocks of the freed space.
        #[test]
        fn each_block_of_freed_space_is_listed_for_punching_once(
            (lens, order, count) in prop::collection::vec(1u64..20_000, 2..40)
                .prop_flat_map(|lens| {
                    let n = lens.len();
                    let order: Vec<usize> = (0..n - 1).collect();
                    (Just(lens), Just(order).prop_shuffle(), 0..n)
                })
        ) {
            let mut state = State::new((), &Config::default(), BLOCK);
            let regions: Vec<(u64, u64)> = lens.iter().map(|&len| (state.reserve(len), len)).collect();
            let mut freed = Vec::new();
            for &i in &order[..count] {
                let (offset, len) = regions[i];
                state.free_region(offset, len);
                freed.push((offset, len));
            }
            state.holes.check().map_err(TestCaseError::fail)?;

            let mut listed = state.to_punch.clone();
            listed.sort_unstable();
            for pair in listed.windows(2) {
                prop_assert!(pair[0].0 + pair[0].1 <= pair[1].0, "listed twice: {:?}", pair);
            }
            for &(offset, len) in &listed {
                prop_assert!(len > 0 && offset % BLOCK == 0 && len % BLOCK == 0, "{offset}+{len}");
            }
            freed.sort_unstable();
            let whole_blocks: Vec<(u64, u64)> = merged(freed.iter().copied())
                .into_iter()
                .filter_map(|(offset, len)| {
                    let start = offset.div_ceil(BLOCK) * BLOCK;
                    let stop = (offset + len) / BLOCK * BLOCK;
                    (stop > start).then(|| (start, stop - start))
                })
                .collect();
            prop_assert_eq!(merged(listed.iter().copied()), whole_blocks);
            let listed_bytes: u64 = listed.iter().map(|r| r.1).sum();
            let freed_bytes: u64 = freed.iter().map(|r| r.1).sum();
            prop_assert!(listed_bytes <= freed_bytes);
        }
    }

    #[test]
    fn a_device_that_cannot_punch_lists_nothing() {
        let mut state = State::new((), &Config::default(), u64::MAX);
        let a = state.reserve(1 << 20);
        state.reserve(1);
        state.free_region(a, 1 << 20);
        assert!(state.to_punch.is_empty());
        assert_eq!(blocks_completed((0, 100), (0, 100), 0), None);
        assert_eq!(
            blocks_completed((u64::MAX - 10, 10), (u64::MAX - 10, 10), BLOCK),
            None,
            "no whole block near the top, and no overflow"
        );
    }

    #[test]
    fn a_write_or_a_caller_whose_thread_is_gone_fails_the_check() {
        let mut state = State::new((), &Config::default(), u64::MAX);
        state.insert(b"k", Arc::from(&b"one"[..]), Keep::Spill);
        // As the writer does: out of the queue, reserved, recorded.
        let writer = Presence::default();
        let slot = state.queue.pop_front().unwrap();
        state.entries.set_queued(slot, false);
        state.reserve(3);
        state.in_flight = 3;
        state.writing = Some((slot, writer.mark()));
        state.check().unwrap();
        drop(writer); // unwound without undoing its record
        let leaked = state.check().unwrap_err();
        assert!(leaked.contains("3 bytes reserved"), "{leaked}");

        state.writing = None;
        state.in_flight = 0;
        state.free_region(0, 3);
        state.entries.set_queued(slot, true);
        state.queue.push_back(slot);
        let caller = Presence::default();
        state.caller_writing = Some(caller.mark());
        state.check().unwrap();
        drop(caller);
        let stuck = state.check().unwrap_err();
        assert!(stuck.contains("writing the queue"), "{stuck}");
    }

    #[test]
    fn bytes_reserved_for_a_move_nobody_makes_fail_the_check() {
        let mut state = State::new((), &Config::default(), u64::MAX);
        // As an in-place move does: reserved, recorded.
        state.reserve(5);
        state.in_flight = 5;
        let mover = Presence::default();
        state.moving = Some(mover.mark());
        state.check().unwrap();
        drop(mover); // unwound without giving the bytes back
        let leaked = state.check().unwrap_err();
        assert!(leaked.contains("5 bytes are reserved"), "{leaked}");
        state.moving = None;
        assert!(state.check().is_err(), "reserved for nobody at all");
    }

    #[test]
    fn retry_deadlines_never_overflow() {
        let config = Config {
            retry_min: Duration::MAX,
            retry_max: Duration::MAX,
            ..Config::default()
        };
        let now = Instant::now();
        assert_eq!(State::<()>::retry_deadline(&config, u32::MAX, now), None);
        let config = Config::default();
        assert!(State::<()>::retry_deadline(&config, 1, now).is_some_and(|t| t > now));
    }
}
