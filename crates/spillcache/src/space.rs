//! Giving file space back to the file system: punching freed holes and
//! cutting the file at the end of data.
//!
//! Only the thread writing the queue calls this (the writer thread, or a
//! caller that took over; never both at once), and it does before it
//! reserves space again: so a region listed for punching is still free when it is punched,
//! and nothing is written beyond the end of data while the file is cut.

use blockdev::WriteAt;
use parking_lot::MutexGuard;

use crate::state::State;

/// Punches every listed hole (outside the lock) and, with `cut`, cuts the
/// file back to the end of data (under it). Returns with the lock held and
/// the punch list empty. Failures only leave space in use; they lose nothing.
///
/// The writer cuts when no write waits, or while writes are failing: a
/// value overwritten in place on a healthy disk (the end of data back at 0,
/// then the same bytes again) would otherwise cost the file system a
/// truncate and fresh blocks for every write.
pub(crate) fn give_back<D: WriteAt>(guard: &mut MutexGuard<'_, State<D>>, cut: bool) {
    while !guard.to_punch.is_empty() {
        let regions = std::mem::take(&mut guard.to_punch);
        let file = std::sync::Arc::clone(&guard.file);
        let punched: u64 = MutexGuard::unlocked(guard, || {
            regions
                .iter()
                .map(|&(offset, len)| blockdev::punch_hole(&*file, offset, len).unwrap_or(0))
                .sum()
        });
        guard.stats.bytes_punched += punched;
    }
    if cut {
        trim(guard);
    }
}

/// Cuts the file back to the end of data. Under the lock, so that a `clear`
/// (which cuts to 0) cannot interleave with it.
fn trim<D: WriteAt>(state: &mut State<D>) {
    let end = state.holes.end();
    if state.file_len > end && state.file.set_len(end).is_ok() {
        state.file_len = end;
    }
}
