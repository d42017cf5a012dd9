//! Defragmentation: copy the written entries, packed, into a fresh file
//! with `blockdev::copy_range`, then swap files; when the file system has no
//! room for that second copy, compact in place instead: move values down
//! into holes of the same file, one at a time.
//!
//! Runs on the writer thread, so nothing writes to the file meanwhile; the
//! copies run outside the lock. Entries removed or overwritten during a copy
//! leave holes; a `clear` during a copy voids it.
//!
//! An in-place move never makes a value unreadable or readable as wrong
//! bytes: it copies the ciphertext (which does not depend on its offset)
//! into a reserved hole while the entry still points at the old place, then,
//! under the lock and only if the entry still holds the same generation at
//! the same offset, points it at the new place and frees the old one. A read
//! that started before the switch reads the old place; if that place was
//! reused meanwhile the integrity check fails, the reader sees the entry
//! moved, and looks again. The file has no name and the state lives in RAM,
//! so there is no crash state to keep consistent.
//!
//! A copy that panics (a device that panics on a read or a write) ends the
//! writer thread like any panic there: a copy to a new file leaves the old
//! one in use, and an in-place move gives its reservation back and leaves
//! the value at its old place.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use blockdev::{ReadAt, WriteAt};
use parking_lot::MutexGuard;

use crate::entry::Place;
use crate::hole::HoleIndex;
use crate::space;
use crate::state::{Presence, Shared, State};

/// One written entry's move from the old file to the new.
#[derive(Clone, Copy, Debug)]
struct Move {
    slot: usize,
    generation: u64,
    from: u64,
    to: u64,
    len: u64,
}

enum Outcome {
    /// The new file is in use; `copied` bytes were moved.
    Done { copied: u64 },
    /// There was no room for a new file; values were moved in place.
    Compacted { moved: u64 },
    /// Nothing was in the file, or the cache was cleared or began shutting
    /// down during the copy (which was then dropped).
    Skipped,
}

/// Defragments once and records the outcome (a failure keeps the old file
/// and backs automatic defragmentation off).
pub(crate) fn run<D>(shared: &Shared<D>, guard: &mut MutexGuard<'_, State<D>>)
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    // Requests made from here on need a later run: this one may have taken
    // its snapshot before them.
    let serving = guard.defrag_tickets;
    let outcome = match copy_to_new_file(shared, guard) {
        Err(e) if is_out_of_space(&e) => compact_in_place(shared, guard).map_err(|in_place| {
            io::Error::new(
                in_place.kind(),
                format!(
                    "no room for a second copy ({e}), and compacting in place failed: {in_place}"
                ),
            )
        }),
        other => other,
    };
    let state = &mut **guard;
    state.defrag_last_failed = outcome.is_err();
    match outcome {
        Ok(Outcome::Done { copied }) => {
            state.stats.defrags += 1;
            state.stats.bytes_defragged += copied;
            state.defrag_error = None;
            state.defrag_failures_in_a_row = 0;
            state.defrag_not_before = None;
        }
        Ok(Outcome::Compacted { moved }) => {
            state.stats.defrags += 1;
            state.stats.compactions += 1;
            state.stats.bytes_compacted += moved;
            state.defrag_error = None;
            state.defrag_failures_in_a_row = 0;
            // Values that fit no hole below them stay where they are, so the
            // file may still be over the factor: then wait the longest
            // backoff before trying again.
            let still_over =
                state.holes.end() as f64 > shared.config.defrag_factor * state.disk_bytes as f64;
            state.defrag_not_before = still_over.then(|| {
                State::<D>::retry_deadline(&shared.config, u32::MAX, Instant::now())
                    .unwrap_or_else(far_future)
            });
        }
        Ok(Outcome::Skipped) => {}
        Err(e) => {
            state.stats.defrag_failures += 1;
            state.defrag_failures_in_a_row = state.defrag_failures_in_a_row.saturating_add(1);
            // Checked: past what an Instant holds, the earliest the clock
            // can say is as good as never.
            state.defrag_not_before = State::<D>::retry_deadline(
                &shared.config,
                state.defrag_failures_in_a_row,
                Instant::now(),
            )
            .or(Some(far_future()));
            state.defrag_error = Some(e);
        }
    }
    state.defrag_served = serving;
    shared.progress.notify_all();
}

/// A deadline no backoff reaches (validated backoffs are at most an hour).
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(std::time::Duration::from_secs(86_400 * 365))
        .unwrap_or(now)
}

/// Whether `e` says the file system (or device) has no room.
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge
            | io::ErrorKind::WriteZero
    )
}

fn copy_to_new_file<D>(
    shared: &Shared<D>,
    guard: &mut MutexGuard<'_, State<D>>,
) -> io::Result<Outcome>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    if guard.disk_bytes == 0 {
        return Ok(Outcome::Skipped);
    }
    let new_file = MutexGuard::unlocked(guard, || shared.factory.create())?;
    if guard.shutting_down {
        return Ok(Outcome::Skipped);
    }
    let epoch = guard.file_epoch;
    let old_file = Arc::clone(&guard.file);
    let mut moves: Vec<Move> = guard
        .entries
        .iter()
        .filter_map(|(slot, entry)| match entry.place {
            Place::OnDisk { offset, .. } => Some(Move {
                slot,
                generation: entry.generation,
                from: offset,
                to: 0,
                len: entry.len,
            }),
            _ => None,
        })
        .collect();
    // In file order, so neighbours merge into one copy and reads are sequential.
    moves.sort_unstable_by_key(|m| m.from);
    let mut end = 0;
    for m in &mut moves {
        m.to = end;
        end += m.len;
    }

    let copied = MutexGuard::unlocked(guard, || copy_moves(&*old_file, &new_file, &moves));

    let state = &mut **guard;
    // A `clear` during the copy may have cut the old file short: that is no
    // failure, the copy is simply void.
    if state.file_epoch != epoch || state.shutting_down {
        return Ok(Outcome::Skipped);
    }
    copied?;
    let mut holes = HoleIndex::packed(end, shared.config.small_hole_threshold);
    // Frees in the new file are not punched: it is packed but for values
    // changed during the copy, and those regions are reused first.
    let mut disk_bytes = 0;
    for m in &moves {
        match state.entries.current_mut(m.slot, m.generation) {
            Some(entry) => match &mut entry.place {
                Place::OnDisk { offset, .. } if *offset == m.from => {
                    *offset = m.to;
                    disk_bytes += m.len;
                }
                _ => holes.free(m.to, m.len),
            },
            None => holes.free(m.to, m.len),
        }
    }
    if disk_bytes == 0 {
        holes.reset();
    }
    state.swap_file(new_file, holes, disk_bytes, end);
    Ok(Outcome::Done { copied: end })
}

/// One written entry that may move down.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    slot: usize,
    generation: u64,
    offset: u64,
    len: u64,
}

/// Moves written values down into holes of the same file, the values at the
/// highest offsets first (they hold the end of data up), each to the lowest
/// hole that takes it. Needs room for one value at a time, not a second
/// file: the holes were punched, so a move needs the whole blocks of the
/// hole it fills free in the file system (at most the value's length in
/// blocks, plus one). Freed space is punched and the tail cut after every
/// move, so the next move finds the blocks of the last.
fn compact_in_place<D>(
    shared: &Shared<D>,
    guard: &mut MutexGuard<'_, State<D>>,
) -> io::Result<Outcome>
where
    D: ReadAt + WriteAt + Send + Sync + 'static,
{
    let epoch = guard.file_epoch;
    let file = Arc::clone(&guard.file);
    let mut candidates: Vec<Candidate> = guard
        .entries
        .iter()
        .filter_map(|(slot, entry)| match entry.place {
            Place::OnDisk { offset, .. } => Some(Candidate {
                slot,
                generation: entry.generation,
                offset,
                len: entry.len,
            }),
            _ => None,
        })
        .collect();
    candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.offset));
    let mut moved = 0;
    // A value that fit nowhere may fit into the holes the moves after it
    // left: go over them again while that helps. Every move is to a lower
    // offset, so this ends; the cap bounds the time spent.
    for _pass in 0..IN_PLACE_PASSES {
        let moved_before = moved;
        let mut stayed = Vec::new();
        for c in candidates {
            match move_down(shared, guard, &file, epoch, c)? {
                Step::Moved(to) => {
                    moved += c.len;
                    stayed.push(Candidate { offset: to, ..c });
                }
                Step::Stayed => stayed.push(c),
                Step::Gone => {}
                Step::Stop => return finish(guard, epoch, moved),
            }
        }
        if moved == moved_before {
            break;
        }
        stayed.sort_unstable_by_key(|c| std::cmp::Reverse(c.offset));
        candidates = stayed;
    }
    finish(guard, epoch, moved)
}

/// Passes over the written values an in-place compaction makes at most.
const IN_PLACE_PASSES: usize = 4;

/// What became of one candidate.
enum Step {
    Moved(u64),
    Stayed,
    Gone,
    Stop,
}

fn finish<D: WriteAt>(
    guard: &mut MutexGuard<'_, State<D>>,
    epoch: u64,
    moved: u64,
) -> io::Result<Outcome> {
    space::give_back(guard, true);
    if guard.file_epoch != epoch || guard.shutting_down {
        return Ok(Outcome::Skipped);
    }
    Ok(Outcome::Compacted { moved })
}

/// Moves one value down to the lowest hole that takes it, if any.
fn move_down<D>(
    shared: &Shared<D>,
    guard: &mut MutexGuard<'_, State<D>>,
    file: &Arc<D>,
    epoch: u64,
    c: Candidate,
) -> io::Result<Step>
where
    D: ReadAt + WriteAt,
{
    {
        // Room first: what was freed by the last move (or by removals).
        space::give_back(guard, true);
        if guard.shutting_down || guard.file_epoch != epoch {
            return Ok(Step::Stop);
        }
        let still_there = guard.entries.get(c.slot).is_some_and(|e| {
            e.generation == c.generation
                && matches!(e.place, Place::OnDisk { offset, .. } if offset == c.offset)
        });
        if !still_there {
            return Ok(Step::Gone);
        }
        let Some(to) = guard.holes.lowest_fit_below(c.len, c.offset) else {
            return Ok(Step::Stayed);
        };
        if !guard.reserve_in_hole(to, c.len) {
            return Ok(Step::Stayed);
        }
        guard.in_flight = c.len;
        let presence = Presence::default();
        guard.moving = Some(presence.mark());
        let copied = MutexGuard::unlocked(guard, || {
            let abandoned = AbandonedMove {
                shared,
                file,
                to,
                len: c.len,
                epoch,
            };
            let copied = blockdev::copy_range(&**file, c.offset, &**file, to, c.len);
            abandoned.disarm();
            copied
        });
        guard.moving = None;
        if Arc::ptr_eq(file, &guard.file) {
            // The copy may have written past a cut that a `clear` made
            // meanwhile: `finish` cuts the file back to the end of data.
            guard.file_len = guard.file_len.max(to.saturating_add(c.len));
        }
        if guard.file_epoch != epoch {
            // `clear` forgot the reservation and the entry.
            return Ok(Step::Stop);
        }
        guard.in_flight = 0;
        let copied = match copied {
            Ok(n) if n == c.len => Ok(()),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("moved {n} of {} bytes from offset {}", c.len, c.offset),
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = copied {
            guard.free_region(to, c.len);
            space::give_back(guard, true);
            return Err(e);
        }
        let state = &mut **guard;
        if let Some(entry) = state.entries.current_mut(c.slot, c.generation)
            && let Place::OnDisk { offset, .. } = &mut entry.place
            && *offset == c.offset
        {
            *offset = to;
            state.free_region(c.offset, c.len);
            return Ok(Step::Moved(to));
        }
        // Overwritten or removed during the copy: the copy is nobody's.
        state.free_region(to, c.len);
        Ok(Step::Gone)
    }
}

/// Armed around an in-place move's copy while the lock is released: if the
/// copy unwinds (a device that panics on a read or a write), frees the
/// reservation of the new place and stops writing for good. The entry
/// still points at its old place, untouched, so the value stays readable.
/// Dropped inside `MutexGuard::unlocked`, before the lock is taken back,
/// so it takes the lock itself.
struct AbandonedMove<'a, D> {
    shared: &'a Shared<D>,
    file: &'a Arc<D>,
    to: u64,
    len: u64,
    epoch: u64,
}

impl<D> AbandonedMove<'_, D> {
    /// The copy returned: `move_down` settles the reservation.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl<D> Drop for AbandonedMove<'_, D> {
    fn drop(&mut self) {
        let mut guard = self.shared.state.lock();
        let state = &mut *guard;
        state.moving = None;
        if Arc::ptr_eq(self.file, &state.file) {
            // Part of the copy may have landed past a cut a `clear` made.
            state.file_len = state.file_len.max(self.to.saturating_add(self.len));
        }
        // After a `clear` the reservation is forgotten already.
        if state.file_epoch == self.epoch {
            state.in_flight = 0;
            state.free_region(self.to, self.len);
        }
        self.shared.stop_writing(state);
    }
}

/// Copies every move, one `copy_range` call per run of neighbouring entries.
fn copy_moves<S, T>(src: &S, dst: &T, moves: &[Move]) -> io::Result<()>
where
    S: ReadAt + ?Sized,
    T: WriteAt + ?Sized,
{
    let mut i = 0;
    while i < moves.len() {
        let (from, to) = (moves[i].from, moves[i].to);
        let mut len = moves[i].len;
        let mut next = i + 1;
        while next < moves.len() && moves[next].from == from + len {
            len += moves[next].len;
            next += 1;
        }
        let copied = blockdev::copy_range(src, from, dst, to, len)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("defrag copied {copied} of {len} bytes from offset {from}"),
            ));
        }
        i = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockdev::MemDevice;

    fn moved(from: u64, to: u64, len: u64) -> Move {
        Move {
            slot: 0,
            generation: 0,
            from,
            to,
            len,
        }
    }

    #[test]
    fn neighbours_are_copied_in_one_run() {
        let src = blockdev::FaultyDevice::new(MemDevice::from_vec((0..100).collect()));
        let dst = MemDevice::new();
        let moves = [moved(10, 0, 5), moved(15, 5, 5), moved(50, 10, 2)];
        copy_moves(&src, &dst, &moves).unwrap();
        assert_eq!(
            dst.to_vec(),
            [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 50, 51]
        );
        assert_eq!(src.reads(), 2, "one read per run");
    }

    #[test]
    fn a_short_source_is_an_error() {
        let src = MemDevice::from_vec(vec![1; 10]);
        let result = copy_moves(&src, &MemDevice::new(), &[moved(5, 0, 10)]);
        assert!(result.is_err());
    }
}
