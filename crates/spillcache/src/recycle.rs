//! The buffer of the last large value written, kept for the next value of
//! the same length: `add` copies into pages that are already mapped instead
//! of fresh ones (a fresh 64 MiB buffer costs 16,384 page faults and the
//! kernel's zeroing, about a third of spilling it), and the writer does not
//! unmap the old one under the lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Values shorter than this are not recycled: the allocator reuses their
/// memory itself.
pub(crate) const RECYCLE_MIN: usize = 256 << 10;

/// A kept buffer unused this long is freed, so an idle cache holds no
/// spare memory.
pub(crate) const RECYCLE_IDLE: Duration = Duration::from_secs(1);

/// At most one spare buffer, and when it was put back.
#[derive(Default)]
pub(crate) struct Recycler {
    spare: Mutex<Option<(Arc<[u8]>, Instant)>>,
}

impl Recycler {
    /// A shared copy of `data`, in the spare buffer when it has that length.
    pub(crate) fn copy_of(&self, data: &[u8]) -> Arc<[u8]> {
        if data.len() >= RECYCLE_MIN {
            let spare = {
                let mut spare = self.spare.lock();
                if spare.as_ref().is_some_and(|(b, _)| b.len() == data.len()) {
                    spare.take()
                } else {
                    None
                }
            };
            if let Some((mut buf, _)) = spare
                && let Some(bytes) = Arc::get_mut(&mut buf)
            {
                bytes.copy_from_slice(data);
                return buf;
            }
        }
        Arc::from(data)
    }

    /// Keeps `buf` (a written value nobody else holds) as the spare if it
    /// is long enough and at most `max_len` bytes; returns what the caller
    /// should drop (outside any lock: freeing a large buffer takes time).
    #[must_use]
    pub(crate) fn put_back(
        &self,
        mut buf: Arc<[u8]>,
        max_len: u64,
        now: Instant,
    ) -> Option<Arc<[u8]>> {
        if buf.len() < RECYCLE_MIN || buf.len() as u64 > max_len || Arc::get_mut(&mut buf).is_none()
        {
            return Some(buf);
        }
        self.spare.lock().replace((buf, now)).map(|(old, _)| old)
    }

    /// When the spare (if any) is due to be freed.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.spare
            .lock()
            .as_ref()
            .and_then(|(_, at)| at.checked_add(RECYCLE_IDLE))
    }

    /// Takes the spare out if it has been unused for [`RECYCLE_IDLE`] at
    /// `now`, for the caller to drop outside any lock.
    #[must_use]
    pub(crate) fn expire(&self, now: Instant) -> Option<Arc<[u8]>> {
        let mut spare = self.spare.lock();
        let due = spare
            .as_ref()
            .is_some_and(|(_, at)| now.duration_since(*at) >= RECYCLE_IDLE);
        if due {
            spare.take().map(|(buf, _)| buf)
        } else {
            None
        }
    }

    /// Bytes of the spare buffer (0 when none).
    #[cfg(test)]
    pub(crate) fn spare_len(&self) -> usize {
        self.spare.lock().as_ref().map_or(0, |(b, _)| b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_of_the_same_length_is_reused_with_the_new_bytes() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let first = recycler.copy_of(&vec![1u8; RECYCLE_MIN]);
        let address = first.as_ptr();
        assert!(recycler.put_back(first, u64::MAX, now).is_none());
        assert_eq!(recycler.spare_len(), RECYCLE_MIN);
        let second = recycler.copy_of(&vec![2u8; RECYCLE_MIN]);
        assert_eq!(second.as_ptr(), address, "the same pages");
        assert!(second.iter().all(|&b| b == 2), "holds the new value only");
        assert_eq!(recycler.spare_len(), 0, "taken out");
    }

    #[test]
    fn other_lengths_short_values_shared_buffers_and_oversized_ones_are_not_kept() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let kept = recycler.copy_of(&vec![1u8; RECYCLE_MIN + 1]);
        assert!(recycler.put_back(kept, u64::MAX, now).is_none());
        let other = recycler.copy_of(&vec![3u8; RECYCLE_MIN]);
        assert!(other.iter().all(|&b| b == 3));
        assert_eq!(recycler.spare_len(), RECYCLE_MIN + 1, "not taken");
        let short: Arc<[u8]> = Arc::from(&[0u8; 100][..]);
        assert!(recycler.put_back(short, u64::MAX, now).is_some());
        let shared: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
        let reader = Arc::clone(&shared);
        assert!(recycler.put_back(shared, u64::MAX, now).is_some());
        drop(reader);
        let big: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
        assert!(
            recycler
                .put_back(big, RECYCLE_MIN as u64 - 1, now)
                .is_some()
        );
        assert_eq!(recycler.spare_len(), RECYCLE_MIN + 1);
    }

    #[test]
    fn an_unused_spare_is_freed_after_the_idle_time() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let buf = recycler.copy_of(&vec![1u8; RECYCLE_MIN]);
        assert!(recycler.put_back(buf, u64::MAX, now).is_none());
        assert_eq!(recycler.expires_at(), Some(now + RECYCLE_IDLE));
        assert!(recycler.expire(now).is_none());
        assert!(recycler.expire(now + RECYCLE_IDLE).is_some());
        assert_eq!((recycler.spare_len(), recycler.expires_at()), (0, None));
    }
}
