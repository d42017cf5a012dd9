//! Defragmentation: copy the written entries, packed, into a fresh file
//! with `blockdev::copy_range`, then swap files.
//!
//! Runs on the writer thread, so nothing writes to the old file meanwhile;
//! the copy runs outside the lock. Entries removed or overwritten during the
//! copy leave holes in the new file; a `clear` during the copy voids it.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use blockdev::{ReadAt, WriteAt};
use parking_lot::MutexGuard;

use crate::entry::Place;
use crate::hole::HoleIndex;
use crate::state::{Shared, State};

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
    let outcome = compact(shared, guard);
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
        Ok(Outcome::Skipped) => {}
        Err(e) => {
            state.stats.defrag_failures += 1;
            state.defrag_failures_in_a_row = state.defrag_failures_in_a_row.saturating_add(1);
            state.defrag_not_before = Some(
                Instant::now()
                    + State::<D>::backoff(&shared.config, state.defrag_failures_in_a_row),
            );
            state.defrag_error = Some(e);
        }
    }
    state.defrag_served = serving;
    shared.progress.notify_all();
}

fn compact<D>(shared: &Shared<D>, guard: &mut MutexGuard<'_, State<D>>) -> io::Result<Outcome>
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
    state.holes = holes;
    state.disk_bytes = disk_bytes;
    state.file = Arc::new(new_file);
    state.file_epoch += 1;
    state.file_len = end;
    Ok(Outcome::Done { copied: end })
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
