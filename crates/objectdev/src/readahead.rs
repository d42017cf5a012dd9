//! Read-ahead: `will_need` hints become ranged GETs running in the
//! background, one per part, whose bytes wait in a bounded buffer until a
//! read takes them.
//!
//! The buffer knows nothing of stores: it fetches through a function it is
//! given, and tags each part with the version (`V`) of the object it was
//! fetched for, so a read only ever takes bytes of its own version.
//!
//! A GET in flight that is no longer wanted (the reader left its window,
//! the cap was lowered, the object changed) is aborted, not left to run:
//! it would hold a connection, a slot and bandwidth for bytes nobody reads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable, BoxFuture};
use parking_lot::{Condvar, Mutex};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::Error;

/// Default cap on the bytes fetched ahead and not yet read: 128 MiB, room
/// for 16 parts of 8 MiB in flight, which is what a store streaming 90 MB/s
/// per request after 25 ms needs to reach about 1 GB/s. A cache above
/// lowers it to its own bound with
/// [`ReadAt::limit_read_ahead`](blockdev::ReadAt::limit_read_ahead).
///
/// ```
/// assert_eq!(objectdev::DEFAULT_READ_AHEAD, 128 << 20);
/// ```
pub const DEFAULT_READ_AHEAD: u64 = 128 << 20;

/// Most read-ahead GETs in flight at once.
const MAX_IN_FLIGHT: usize = 16;

/// What read-ahead did so far, from [`ObjectDevice::read_ahead_stats`](crate::ObjectDevice::read_ahead_stats).
///
/// `fetched_bytes - used_bytes - unused_bytes` are held now (fetched, not
/// yet read nor dropped). A GET is either in flight, or it landed
/// (`fetched_bytes`), failed (`failed`) or was aborted (`cancelled`).
///
/// ```
/// let stats = objectdev::ReadAheadStats::default();
/// assert_eq!(stats.gets + stats.fetched_bytes + stats.used_bytes + stats.unused_bytes, 0);
/// assert_eq!(stats.cancelled + stats.peak_buffered_bytes, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadAheadStats {
    /// Read-ahead GETs started.
    pub gets: u64,
    /// Bytes those GETs brought in.
    pub fetched_bytes: u64,
    /// Fetched bytes that reads took.
    pub used_bytes: u64,
    /// Fetched bytes dropped without being read: the reader left the
    /// window, another window needed the room, or the object changed.
    pub unused_bytes: u64,
    /// Read-ahead GETs that failed; a read that needed their bytes made
    /// its own GET.
    pub failed: u64,
    /// Bytes held or in flight now (at most the cap).
    pub buffered_bytes: u64,
    /// Read-ahead GETs aborted before they landed: the reader left their
    /// window, the cap was lowered below them, or the object changed.
    /// Their bytes were never fetched, so they are in no other count.
    pub cancelled: u64,
    /// The most bytes held or in flight at once so far (at most the cap
    /// in force when they were reserved).
    pub peak_buffered_bytes: u64,
}

/// Fetches `len` bytes at `start` of version `V` of the object.
pub(crate) type Fetch<V> =
    Arc<dyn Fn(V, u64, u64) -> BoxFuture<'static, Result<Bytes, Error>> + Send + Sync>;

/// One part fetched ahead, or being fetched.
#[derive(Debug)]
struct Part<V> {
    len: u64,
    version: V,
    /// Tells this part from a later one at the same start.
    id: u64,
    /// The last hint that named it; the oldest yields first.
    stamp: u64,
    /// Bytes reads took from it.
    used: u64,
    /// `None` while in flight.
    bytes: Option<Bytes>,
    /// Aborts its GET while in flight.
    abort: Option<AbortHandle>,
    /// Reads waiting for it to land: a hint never cancels it under them.
    waiters: usize,
}

#[derive(Debug)]
struct State<V> {
    /// The cap in force: the least of `opened` and `limit`; 0 turns
    /// read-ahead off.
    max_bytes: u64,
    /// The cap the device was opened with.
    opened: u64,
    /// The cap a cache above asked for (`u64::MAX` until one does).
    limit: u64,
    /// Parts by their first byte.
    parts: BTreeMap<u64, Part<V>>,
    /// Parts the last hint named that did not fit yet: `(start, len)`.
    wanted: VecDeque<(u64, u64)>,
    wanted_version: Option<V>,
    /// Bytes of every part held or in flight.
    reserved: u64,
    in_flight: usize,
    stamp: u64,
    next_id: u64,
    stats: ReadAheadStats,
}

impl<V> State<V> {
    /// The part holding byte `at`, if any.
    fn part_at(&mut self, at: u64) -> Option<(u64, &mut Part<V>)> {
        let (&start, part) = self.parts.range_mut(..=at).next_back()?;
        (at < start + part.len).then_some((start, part))
    }

    /// Drops the part at `start`: held, counting what was never read; in
    /// flight, aborting its GET (whose landing then finds it gone, so its
    /// bytes or failure are never taken for the part's).
    fn remove(&mut self, start: u64) {
        if let Some(part) = self.parts.remove(&start) {
            self.reserved -= part.len;
            if part.bytes.is_some() {
                self.stats.unused_bytes += part.len.saturating_sub(part.used);
            } else {
                self.stats.cancelled += 1;
                if let Some(abort) = part.abort {
                    abort.abort();
                }
            }
        }
    }

    /// Drops parts until the bytes held or in flight fit the cap: those
    /// the oldest hint named first, the furthest ahead among them first
    /// (the last a reader would reach).
    fn fit(&mut self) {
        while self.reserved > self.max_bytes {
            let victim = self
                .parts
                .iter()
                .min_by_key(|(start, part)| (part.stamp, std::cmp::Reverse(**start)))
                .map(|(&start, _)| start);
            match victim {
                Some(start) => self.remove(start),
                None => break,
            }
        }
        if self.max_bytes == 0 {
            self.wanted.clear();
        }
    }
}

struct Shared<V> {
    state: Mutex<State<V>>,
    /// Signalled whenever a part in flight lands or fails.
    landed: Condvar,
    handle: Handle,
    /// Whether the runtime runs spawned GETs by itself: a current-thread
    /// runtime runs them only while its owner blocks on it, so a read
    /// waiting for one could wait forever; there hints are ignored.
    background: bool,
    fetch: Fetch<V>,
}

/// The read-ahead buffer of one device.
pub(crate) struct ReadAhead<V> {
    shared: Arc<Shared<V>>,
}

impl<V: Clone + PartialEq + Send + Sync + 'static> ReadAhead<V> {
    /// A buffer of up to [`DEFAULT_READ_AHEAD`] bytes whose GETs run on `handle`.
    pub(crate) fn new(handle: Handle, fetch: Fetch<V>) -> Self {
        let state = State {
            max_bytes: DEFAULT_READ_AHEAD,
            opened: DEFAULT_READ_AHEAD,
            limit: u64::MAX,
            parts: BTreeMap::new(),
            wanted: VecDeque::new(),
            wanted_version: None,
            reserved: 0,
            in_flight: 0,
            stamp: 0,
            next_id: 0,
            stats: ReadAheadStats::default(),
        };
        let background = handle.runtime_flavor() == RuntimeFlavor::MultiThread;
        ReadAhead {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                landed: Condvar::new(),
                background,
                handle,
                fetch,
            }),
        }
    }

    /// Sets the cap the device is opened with.
    pub(crate) fn set_max_bytes(&self, max_bytes: u64) {
        self.set_caps(|state| state.opened = max_bytes);
    }

    /// Sets the cap a cache above asks for; the one in force is the least
    /// of it and the cap opened with. Lowering it drops, and aborts, what
    /// no longer fits; raising it lets waiting parts start.
    pub(crate) fn limit(&self, max_bytes: u64) {
        self.set_caps(|state| state.limit = max_bytes);
    }

    fn set_caps(&self, set: impl FnOnce(&mut State<V>)) {
        let mut state = self.shared.state.lock();
        set(&mut state);
        state.max_bytes = state.opened.min(state.limit);
        state.fit();
        let launches = self.pump(&mut state);
        drop(state);
        // Readers waiting for a part aborted here read it themselves.
        self.shared.landed.notify_all();
        self.launch(launches);
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.shared.state.lock().max_bytes
    }

    pub(crate) fn stats(&self) -> ReadAheadStats {
        let state = self.shared.state.lock();
        ReadAheadStats {
            buffered_bytes: state.reserved,
            ..state.stats
        }
    }

    /// Drops every part (the object changed), aborting GETs in flight.
    pub(crate) fn clear(&self) {
        Self::drop_all(&mut self.shared.state.lock());
        self.shared.landed.notify_all();
    }

    fn drop_all(state: &mut State<V>) {
        let starts: Vec<u64> = state.parts.keys().copied().collect();
        for start in starts {
            state.remove(start);
        }
        state.wanted.clear();
    }

    /// Starts fetching the parts of `pos..pos + len` (clipped to `size`)
    /// not held or in flight, nearest first, as far as the cap allows; the
    /// rest wait for room until the next hint replaces them.
    ///
    /// GETs in flight that neither this hint nor the one before named are
    /// aborted: their reader left the window (jumped, or was served from a
    /// cache above). The hint before is spared so that two readers
    /// scanning side by side, hinting in turn, do not abort each other's
    /// parts; a part a read is waiting for is never aborted by a hint.
    pub(crate) fn hint(&self, version: V, pos: u64, len: u64, size: u64, part_size: u64) {
        let end = pos.saturating_add(len).min(size);
        if part_size == 0 || pos >= end || !self.shared.background {
            return;
        }
        let mut state = self.shared.state.lock();
        if state.max_bytes == 0 {
            return;
        }
        state.stamp += 1;
        let stamp = state.stamp;
        state.wanted.clear();
        state.wanted_version = Some(version.clone());
        let mut start = pos - pos % part_size;
        while start < end {
            let part_len = part_size.min(size - start);
            match state.part_at(start) {
                Some((_, part)) if part.version == version => part.stamp = stamp,
                _ => state.wanted.push_back((start, part_len)),
            }
            start += part_len;
        }
        let left: Vec<u64> = state
            .parts
            .iter()
            .filter(|(_, part)| part.bytes.is_none() && part.waiters == 0 && part.stamp + 1 < stamp)
            .map(|(&start, _)| start)
            .collect();
        for start in left {
            state.remove(start);
        }
        let launches = self.pump(&mut state);
        drop(state);
        self.launch(launches);
    }

    /// Starts wanted parts while GETs and bytes allow, making room by
    /// dropping fetched parts no recent hint named (an abandoned window).
    /// Returns the GETs to spawn once the lock is released: a runtime
    /// that is shutting down drops a task at once, and its `Landing`
    /// takes the lock.
    fn pump(&self, state: &mut State<V>) -> Vec<BoxFuture<'static, ()>> {
        let mut launches = Vec::new();
        while state.in_flight < MAX_IN_FLIGHT {
            let Some(&(start, len)) = state.wanted.front() else {
                break;
            };
            let Some(version) = state.wanted_version.clone() else {
                break;
            };
            if state.part_at(start).is_some() {
                state.wanted.pop_front();
                continue;
            }
            if state.reserved + len > state.max_bytes {
                let current = state.stamp;
                let stale = state
                    .parts
                    .iter()
                    .filter(|(_, part)| part.bytes.is_some() && part.stamp < current)
                    .min_by_key(|(_, part)| part.stamp)
                    .map(|(&start, _)| start);
                match stale {
                    Some(stale) => {
                        state.remove(stale);
                        continue;
                    }
                    None => break,
                }
            }
            state.wanted.pop_front();
            state.next_id += 1;
            let id = state.next_id;
            let stamp = state.stamp;
            let (abort, registration) = AbortHandle::new_pair();
            state.parts.insert(
                start,
                Part {
                    len,
                    version: version.clone(),
                    id,
                    stamp,
                    used: 0,
                    bytes: None,
                    abort: Some(abort),
                    waiters: 0,
                },
            );
            state.reserved += len;
            state.stats.peak_buffered_bytes = state.stats.peak_buffered_bytes.max(state.reserved);
            state.in_flight += 1;
            state.stats.gets += 1;
            let landing = Landing {
                owner: ReadAhead {
                    shared: Arc::clone(&self.shared),
                },
                start,
                id,
                bytes: None,
            };
            // Aborted, the GET's future is dropped at once (closing its
            // request) and the landing finds its part gone.
            let fetch = Abortable::new((self.shared.fetch)(version, start, len), registration);
            launches.push(Box::pin(async move {
                let mut landing = landing;
                if let Ok(Ok(bytes)) = fetch.await {
                    landing.bytes = Some(bytes);
                }
            }) as BoxFuture<'static, ()>);
        }
        launches
    }

    fn launch(&self, launches: Vec<BoxFuture<'static, ()>>) {
        for launch in launches {
            drop(self.shared.handle.spawn(launch));
        }
    }

    /// Fills `buf` from `pos`: bytes held are copied, bytes in flight
    /// waited for, and every other range read by `direct`.
    pub(crate) fn read(
        &self,
        version: &V,
        pos: u64,
        buf: &mut [u8],
        mut direct: impl FnMut(u64, &mut [u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let end = pos + buf.len() as u64;
        let mut at = pos;
        while at < end {
            let mut state = self.shared.state.lock();
            let found = state
                .part_at(at)
                .filter(|(_, part)| part.version == *version)
                .map(|(start, part)| {
                    if part.bytes.is_none() {
                        part.waiters += 1;
                    }
                    (start, part.len, part.id, part.bytes.clone())
                });
            match found {
                Some((start, _, id, None)) => {
                    // Woken when it lands, fails or is aborted; then looked
                    // up again (gone: read directly).
                    self.shared.landed.wait(&mut state);
                    if let Some(part) = state.parts.get_mut(&start)
                        && part.id == id
                    {
                        part.waiters -= 1;
                    }
                }
                Some((start, len, _, Some(bytes))) => {
                    let part_end = start + len;
                    let n = part_end.min(end) - at;
                    let from = (at - start) as usize;
                    let to = (at - pos) as usize;
                    buf[to..to + n as usize].copy_from_slice(&bytes[from..from + n as usize]);
                    state.stats.used_bytes += n;
                    at += n;
                    if at == part_end {
                        // Read to its end: a sequential reader is done with
                        // it; what it skipped (read before the hint, say)
                        // was fetched for nothing.
                        let used = state.parts.remove(&start).map_or(0, |part| part.used);
                        state.reserved -= len;
                        state.stats.unused_bytes += len.saturating_sub(used + n);
                        let launches = self.pump(&mut state);
                        drop(state);
                        self.launch(launches);
                    } else if let Some(part) = state.parts.get_mut(&start) {
                        part.used += n;
                    }
                }
                None => {
                    let gap_end = state
                        .parts
                        .range(at + 1..end)
                        .next()
                        .map_or(end, |(&start, _)| start);
                    drop(state);
                    let from = (at - pos) as usize;
                    let to = (gap_end - pos) as usize;
                    direct(at, &mut buf[from..to])?;
                    at = gap_end;
                }
            }
        }
        Ok(())
    }
}

/// A GET in flight; dropping it lands its bytes, or, without bytes (the
/// GET failed, or its task was dropped with the runtime), removes the part
/// so that readers fetch it themselves. Either way waiters wake.
struct Landing<V: Clone + PartialEq + Send + Sync + 'static> {
    owner: ReadAhead<V>,
    start: u64,
    id: u64,
    bytes: Option<Bytes>,
}

impl<V: Clone + PartialEq + Send + Sync + 'static> Drop for Landing<V> {
    fn drop(&mut self) {
        let shared = &self.owner.shared;
        let mut state = shared.state.lock();
        state.in_flight -= 1;
        let ours = matches!(state.parts.get(&self.start), Some(part) if part.id == self.id);
        if ours {
            match self.bytes.take() {
                Some(bytes) if state.parts[&self.start].len == bytes.len() as u64 => {
                    state.stats.fetched_bytes += bytes.len() as u64;
                    if let Some(part) = state.parts.get_mut(&self.start) {
                        part.bytes = Some(bytes);
                    }
                }
                _ => {
                    // Failed: not an abort, so not counted as one.
                    state.stats.failed += 1;
                    if let Some(part) = state.parts.remove(&self.start) {
                        state.reserved -= part.len;
                    }
                }
            }
        }
        let launches = self.owner.pump(&mut state);
        drop(state);
        shared.landed.notify_all();
        self.owner.launch(launches);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
    }

    /// A buffer over `object` whose fetches fail at `fail_at`, counting calls.
    fn buffer(
        runtime: &tokio::runtime::Runtime,
        object: Arc<Vec<u8>>,
        fail_at: Option<u64>,
        calls: Arc<AtomicU64>,
    ) -> ReadAhead<u32> {
        let fetch: Fetch<u32> = Arc::new(move |_version, start, len| {
            let object = Arc::clone(&object);
            calls.fetch_add(1, Relaxed);
            Box::pin(async move {
                if Some(start) == fail_at {
                    return Err(Error::ShortResponse {
                        start,
                        expected: len,
                        got: 0,
                    });
                }
                let range = start as usize..(start + len) as usize;
                Ok(Bytes::copy_from_slice(&object[range]))
            })
        });
        ReadAhead::new(runtime.handle().clone(), fetch)
    }

    /// A buffer over `object` whose fetches at or past `hang_from` never
    /// finish (until aborted), counting the fetches dropped unfinished.
    fn hanging_buffer(
        runtime: &tokio::runtime::Runtime,
        object: Arc<Vec<u8>>,
        hang_from: u64,
        dropped: Arc<AtomicU64>,
    ) -> ReadAhead<u32> {
        struct Unfinished {
            dropped: Arc<AtomicU64>,
            finished: bool,
        }
        impl Drop for Unfinished {
            fn drop(&mut self) {
                if !self.finished {
                    self.dropped.fetch_add(1, Relaxed);
                }
            }
        }
        let fetch: Fetch<u32> = Arc::new(move |_version, start, len| {
            let object = Arc::clone(&object);
            // Made with the future, so a GET aborted before it first ran
            // counts too.
            let unfinished = Unfinished {
                dropped: Arc::clone(&dropped),
                finished: false,
            };
            Box::pin(async move {
                let mut unfinished = unfinished;
                if start >= hang_from {
                    futures_util::future::pending::<()>().await;
                }
                unfinished.finished = true;
                let range = start as usize..(start + len) as usize;
                Ok(Bytes::copy_from_slice(&object[range]))
            })
        });
        ReadAhead::new(runtime.handle().clone(), fetch)
    }

    /// Waits until `landed` parts have landed or failed.
    fn wait_for_landed(buffer: &ReadAhead<u32>, landed: u64) {
        let mut state = buffer.shared.state.lock();
        while state.stats.fetched_bytes / 128 + state.stats.failed < landed {
            buffer.shared.landed.wait(&mut state);
        }
    }

    fn wait_until_settled(buffer: &ReadAhead<u32>) {
        let mut state = buffer.shared.state.lock();
        while state.in_flight > 0 {
            buffer.shared.landed.wait(&mut state);
        }
    }

    #[test]
    fn hinted_parts_are_read_from_the_buffer_and_freed() {
        let runtime = runtime();
        let object: Arc<Vec<u8>> = Arc::new((0..1000u32).map(|i| i as u8).collect());
        let calls = Arc::new(AtomicU64::new(0));
        let buffer = buffer(&runtime, Arc::clone(&object), None, Arc::clone(&calls));
        buffer.hint(1, 100, 300, 1000, 128);
        let mut buf = vec![0u8; 300];
        let mut direct = 0;
        buffer
            .read(&1, 100, &mut buf, |_, out| {
                direct += out.len();
                Ok(())
            })
            .unwrap();
        assert_eq!(buf, object[100..400]);
        assert_eq!(direct, 0);
        // Parts 0..128, 128..256, 256..384 and 384..512.
        assert_eq!(calls.load(Relaxed), 4);
        let stats = buffer.stats();
        assert_eq!(
            (stats.gets, stats.used_bytes, stats.buffered_bytes),
            (4, 300, 128)
        );
        // Bytes 0..100 of the first part were fetched and never read.
        assert_eq!(stats.unused_bytes, 100);
    }

    #[test]
    fn a_failed_part_is_read_directly_and_others_serve() {
        let runtime = runtime();
        let object: Arc<Vec<u8>> = Arc::new(vec![9; 512]);
        let calls = Arc::new(AtomicU64::new(0));
        let buffer = buffer(&runtime, Arc::clone(&object), Some(128), calls);
        buffer.hint(1, 0, 512, 512, 128);
        wait_until_settled(&buffer);
        let mut buf = vec![0u8; 512];
        let mut direct = Vec::new();
        buffer
            .read(&1, 0, &mut buf, |at, out| {
                out.fill(9);
                direct.push((at, out.len()));
                Ok(())
            })
            .unwrap();
        assert_eq!(direct, [(128, 128)]);
        assert_eq!(buf, *object);
        assert_eq!(buffer.stats().failed, 1);
    }

    #[test]
    fn a_current_thread_runtime_reads_nothing_ahead() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let buffer = buffer(&runtime, Arc::new(vec![0; 256]), None, Arc::clone(&calls));
        buffer.hint(1, 0, 256, 256, 128);
        assert_eq!((calls.load(Relaxed), buffer.stats().gets), (0, 0));
    }

    #[test]
    fn another_version_is_never_served() {
        let runtime = runtime();
        let object: Arc<Vec<u8>> = Arc::new(vec![1; 256]);
        let buffer = buffer(&runtime, object, None, Arc::new(AtomicU64::new(0)));
        buffer.hint(1, 0, 256, 256, 128);
        wait_until_settled(&buffer);
        let mut buf = vec![0u8; 256];
        buffer
            .read(&2, 0, &mut buf, |_, out| {
                out.fill(2);
                Ok(())
            })
            .unwrap();
        assert!(buf.iter().all(|&b| b == 2));
    }

    #[test]
    fn the_cap_bounds_bytes_ahead_and_a_new_window_replaces_an_abandoned_one() {
        let runtime = runtime();
        let object: Arc<Vec<u8>> = Arc::new(vec![0; 4096]);
        let buffer = buffer(&runtime, object, None, Arc::new(AtomicU64::new(0)));
        buffer.set_max_bytes(256);
        buffer.hint(1, 0, 1024, 4096, 128);
        wait_until_settled(&buffer);
        assert_eq!(buffer.stats().buffered_bytes, 256);
        // The reader jumped: the old window's unread parts make room.
        buffer.hint(1, 2048, 256, 4096, 128);
        wait_until_settled(&buffer);
        let stats = buffer.stats();
        assert_eq!(
            (stats.gets, stats.unused_bytes, stats.buffered_bytes),
            (4, 256, 256)
        );
        buffer.set_max_bytes(0);
        assert_eq!(buffer.stats().buffered_bytes, 0);
    }

    #[test]
    fn lowering_the_cap_drops_held_parts_and_aborts_those_in_flight() {
        let runtime = runtime();
        let dropped = Arc::new(AtomicU64::new(0));
        let object: Arc<Vec<u8>> = Arc::new((0..512u32).map(|i| i as u8).collect());
        let buffer = hanging_buffer(&runtime, object, 256, Arc::clone(&dropped));
        buffer.hint(1, 0, 512, 512, 128);
        // 0..256 lands; 256..512 hangs in flight.
        wait_for_landed(&buffer, 2);
        assert_eq!(buffer.stats().buffered_bytes, 512);
        buffer.limit(128);
        let stats = buffer.stats();
        // The furthest ahead go first: both GETs in flight, then 128..256.
        assert_eq!(
            (stats.cancelled, stats.unused_bytes, stats.buffered_bytes),
            (2, 128, 128)
        );
        // Aborted, their GETs are dropped unfinished and free their slots.
        wait_until_settled(&buffer);
        assert_eq!(dropped.load(Relaxed), 2);
        assert_eq!(
            (buffer.stats().fetched_bytes, buffer.stats().failed),
            (256, 0)
        );
        // The part kept still serves; the rest is read directly.
        let mut buf = vec![0u8; 256];
        let mut direct = Vec::new();
        buffer
            .read(&1, 0, &mut buf, |at, out| {
                direct.push((at, out.len()));
                out.fill(7);
                Ok(())
            })
            .unwrap();
        assert_eq!(direct, [(128, 128)]);
        assert_eq!(
            buf[..128],
            (0..128u32).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
        // The cap opened with still bounds a higher limit; 0 turns it off.
        buffer.set_max_bytes(256);
        buffer.limit(1 << 20);
        assert_eq!(buffer.max_bytes(), 256);
        buffer.limit(0);
        buffer.hint(1, 0, 512, 512, 128);
        assert_eq!((buffer.max_bytes(), buffer.stats().gets), (0, 4));
    }

    #[test]
    fn a_hint_elsewhere_aborts_the_old_window_but_not_the_part_a_read_waits_for() {
        let runtime = runtime();
        let dropped = Arc::new(AtomicU64::new(0));
        let object: Arc<Vec<u8>> = Arc::new(vec![5; 4096]);
        let buffer = hanging_buffer(&runtime, object, 0, Arc::clone(&dropped));
        buffer.hint(1, 0, 512, 4096, 128);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut buf = vec![0u8; 128];
                let mut direct = 0;
                buffer
                    .read(&1, 0, &mut buf, |_, out| {
                        direct += out.len();
                        out.fill(9);
                        Ok(())
                    })
                    .unwrap();
                (buf, direct)
            });
            // Until the reader waits for part 0.
            let mut state = buffer.shared.state.lock();
            while state.parts.get(&0).is_none_or(|part| part.waiters == 0) {
                drop(state);
                std::thread::yield_now();
                state = buffer.shared.state.lock();
            }
            drop(state);
            // The reader jumped: the hint after next forgets the old window.
            buffer.hint(1, 2048, 128, 4096, 128);
            assert_eq!(buffer.stats().cancelled, 0, "the hint before is spared");
            buffer.hint(1, 2048, 256, 4096, 128);
            let stats = buffer.stats();
            // Parts 128..512 aborted; part 0 has a reader waiting.
            assert_eq!((stats.cancelled, stats.buffered_bytes), (3, 128 + 256));
            // Lowering the cap aborts it too: the reader reads it itself,
            // never taking an aborted part for data.
            buffer.limit(256);
            let (buf, direct) = reader.join().unwrap();
            assert_eq!((direct, buf), (128, vec![9; 128]));
        });
        let stats = buffer.stats();
        assert_eq!(
            (stats.cancelled, stats.unused_bytes, stats.used_bytes),
            (4, 0, 0)
        );
        // The old window and the first part of the new one.
        assert_eq!(stats.peak_buffered_bytes, 512 + 128);
        buffer.limit(0);
        wait_until_settled(&buffer);
        assert_eq!(dropped.load(Relaxed), 6);
    }

    #[test]
    fn two_readers_hinting_in_turn_abort_none_of_each_others_parts() {
        let runtime = runtime();
        let dropped = Arc::new(AtomicU64::new(0));
        let buffer = hanging_buffer(&runtime, Arc::new(vec![0; 8192]), 0, Arc::clone(&dropped));
        for _ in 0..4 {
            buffer.hint(1, 0, 512, 8192, 128);
            buffer.hint(1, 4096, 512, 8192, 128);
        }
        let stats = buffer.stats();
        assert_eq!((stats.cancelled, stats.gets), (0, 8));
        // Both left: the first hint elsewhere aborts the older window, the
        // second the other.
        buffer.hint(1, 6144, 512, 8192, 128);
        assert_eq!(buffer.stats().cancelled, 4);
        buffer.hint(1, 6144, 512, 8192, 128);
        let stats = buffer.stats();
        assert_eq!((stats.cancelled, stats.gets), (8, 12));
    }
}
