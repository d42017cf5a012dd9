//! The buffers of the last large values written, kept for the next values
//! of the same length: `add` copies into pages that are already mapped
//! instead of fresh ones (a fresh 64 MiB buffer costs 16,384 page faults and the
//! kernel's zeroing, about a third of spilling it), and the writer does not
//! unmap the old one under the lock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Values shorter than this are not recycled: the allocator reuses their
/// memory itself.
pub(crate) const RECYCLE_MIN: usize = 256 << 10;

/// A kept buffer unused this long is freed, so an idle cache holds no
/// spare memory.
pub(crate) const RECYCLE_IDLE: Duration = Duration::from_secs(1);

/// At most this many spare buffers: a burst of adds that outruns the
/// writer finds the buffers of the last burst (100 values of 1 MiB paid
/// a tenth of their CPU time in page faults with one spare).
pub(crate) const MAX_SPARES: usize = 64;

/// Spare buffers, oldest first, each with when it was put back.
#[derive(Default)]
pub(crate) struct Recycler {
    spares: Mutex<Spares>,
}

#[derive(Default)]
struct Spares {
    buffers: VecDeque<(Arc<[u8]>, Instant)>,
    bytes: u64,
}

impl Recycler {
    /// A shared copy of `data`, in a spare buffer when one has that length.
    pub(crate) fn copy_of(&self, data: &[u8]) -> Arc<[u8]> {
        if data.len() >= RECYCLE_MIN {
            let spare = {
                let mut spares = self.spares.lock();
                // The most recent first: its pages are the likeliest in cache.
                let found = spares
                    .buffers
                    .iter()
                    .rposition(|(b, _)| b.len() == data.len());
                let spare = found.and_then(|at| spares.buffers.remove(at));
                if let Some((buf, _)) = &spare {
                    spares.bytes -= buf.len() as u64;
                }
                spare
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

    /// Keeps `buf` (a written value nobody else holds) as a spare if it is
    /// long enough and the spares stay within `max_bytes` and
    /// [`MAX_SPARES`]; returns what the caller should drop (outside any
    /// lock: freeing a large buffer takes time).
    #[must_use]
    pub(crate) fn put_back(
        &self,
        mut buf: Arc<[u8]>,
        max_bytes: u64,
        now: Instant,
    ) -> Option<Arc<[u8]>> {
        let len = buf.len() as u64;
        if buf.len() < RECYCLE_MIN || Arc::get_mut(&mut buf).is_none() {
            return Some(buf);
        }
        let mut spares = self.spares.lock();
        if spares.buffers.len() >= MAX_SPARES || spares.bytes.saturating_add(len) > max_bytes {
            return Some(buf);
        }
        spares.bytes += len;
        spares.buffers.push_back((buf, now));
        None
    }

    /// When the oldest spare (if any) is due to be freed.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        let spares = self.spares.lock();
        let (_, at) = spares.buffers.front()?;
        at.checked_add(RECYCLE_IDLE)
    }

    /// Takes out the spares unused for [`RECYCLE_IDLE`] at `now`, for the
    /// caller to drop outside any lock.
    #[must_use]
    pub(crate) fn expire(&self, now: Instant) -> Vec<Arc<[u8]>> {
        let mut spares = self.spares.lock();
        let mut expired = Vec::new();
        while spares
            .buffers
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) >= RECYCLE_IDLE)
        {
            if let Some((buf, _)) = spares.buffers.pop_front() {
                spares.bytes -= buf.len() as u64;
                expired.push(buf);
            }
        }
        expired
    }

    /// Bytes of the spare buffers.
    #[cfg(test)]
    pub(crate) fn spare_bytes(&self) -> u64 {
        self.spares.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: u64 = RECYCLE_MIN as u64;

    #[test]
    fn a_spare_of_the_same_length_is_reused_with_the_new_bytes() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let first = recycler.copy_of(&vec![1u8; RECYCLE_MIN]);
        let address = first.as_ptr();
        assert!(recycler.put_back(first, u64::MAX, now).is_none());
        assert_eq!(recycler.spare_bytes(), LEN);
        let second = recycler.copy_of(&vec![2u8; RECYCLE_MIN]);
        assert_eq!(second.as_ptr(), address, "the same pages");
        assert!(second.iter().all(|&b| b == 2), "holds the new value only");
        assert_eq!(recycler.spare_bytes(), 0, "taken out");
    }

    #[test]
    fn other_lengths_short_values_shared_buffers_and_those_past_the_bounds_are_not_kept() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let kept = recycler.copy_of(&vec![1u8; RECYCLE_MIN + 1]);
        assert!(recycler.put_back(kept, u64::MAX, now).is_none());
        let other = recycler.copy_of(&vec![3u8; RECYCLE_MIN]);
        assert!(other.iter().all(|&b| b == 3));
        assert_eq!(recycler.spare_bytes(), LEN + 1, "not taken");
        let short: Arc<[u8]> = Arc::from(&[0u8; 100][..]);
        assert!(recycler.put_back(short, u64::MAX, now).is_some());
        let shared: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
        let reader = Arc::clone(&shared);
        assert!(recycler.put_back(shared, u64::MAX, now).is_some());
        drop(reader);
        let big: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
        assert!(
            recycler.put_back(big, 2 * LEN, now).is_some(),
            "over the bytes"
        );
        assert_eq!(recycler.spare_bytes(), LEN + 1);
        for _ in 1..MAX_SPARES {
            let buf: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
            assert!(recycler.put_back(buf, u64::MAX, now).is_none());
        }
        let one_more: Arc<[u8]> = Arc::from(vec![0u8; RECYCLE_MIN]);
        assert!(
            recycler.put_back(one_more, u64::MAX, now).is_some(),
            "over the count"
        );
    }

    #[test]
    fn unused_spares_are_freed_after_the_idle_time_oldest_first() {
        let recycler = Recycler::default();
        let now = Instant::now();
        let later = now + RECYCLE_IDLE / 2;
        let old = recycler.copy_of(&vec![1u8; RECYCLE_MIN]);
        let new = recycler.copy_of(&vec![1u8; RECYCLE_MIN + 64]);
        assert!(recycler.put_back(old, u64::MAX, now).is_none());
        assert!(recycler.put_back(new, u64::MAX, later).is_none());
        assert_eq!(recycler.expires_at(), Some(now + RECYCLE_IDLE));
        assert!(recycler.expire(now).is_empty());
        assert_eq!(recycler.expire(now + RECYCLE_IDLE).len(), 1);
        assert_eq!(recycler.spare_bytes(), LEN + 64, "the newer one stays");
        assert_eq!(recycler.expires_at(), Some(later + RECYCLE_IDLE));
        assert_eq!(recycler.expire(later + RECYCLE_IDLE).len(), 1);
        assert_eq!((recycler.spare_bytes(), recycler.expires_at()), (0, None));
    }
}
