//! `Devices`: the objectdev devices that read each cached version, and
//! the runtime their GETs (read-ahead included) run on.
//!
//! Read-ahead is objectdev's: a version's `ObjectDevice`, pinned to the
//! ETag its HEAD gave, turns `will_need` hints into background ranged
//! GETs in a bounded buffer tagged by that ETag. This module only decides
//! how each device is shaped.

use std::io;
use std::sync::Arc;

use object_store::{ObjectMeta, ObjectStore};
use objectdev::{MIN_PART_SIZE, ObjectDevice, ReadAheadStats};
use tokio::runtime::{Builder, Handle, Runtime};

/// Bytes of one GET of a device that does not read ahead: a long cold read
/// is several ranged GETs of this size in flight at once (objectdev's
/// default).
const PART_SIZE: u64 = objectdev::DEFAULT_PART_SIZE;

/// GETs a reading-ahead device keeps in flight when its whole share is
/// wanted: its parts are its share split this many ways.
const PARTS_AHEAD: u64 = 8;

/// Worker threads of the runtime the GETs run on: they receive and copy
/// the bodies while the reading thread waits.
const WORKER_THREADS: usize = 2;

/// Makes the device of each version; owns the runtime they all share.
#[derive(Debug)]
pub(crate) struct Devices {
    /// Shut down in the background when dropped: a store may be dropped
    /// inside an async task, where dropping a runtime would panic.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Devices {
    /// Starts the runtime. Its own, not the caller's: read-ahead needs a
    /// runtime that runs GETs while nobody waits on them, which a
    /// current_thread runtime does not.
    pub(crate) fn new() -> io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("objectcache")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Devices {
            runtime: Some(runtime),
            handle,
        })
    }

    /// A device over the version `meta` describes (no request made), that
    /// holds at most `read_ahead` bytes fetched ahead; `None` if objectdev
    /// refuses it (it does not for a multi-thread runtime and these part
    /// sizes).
    pub(crate) fn make(
        &self,
        store: &Arc<dyn ObjectStore>,
        meta: &ObjectMeta,
        read_ahead: u64,
    ) -> Option<ObjectDevice> {
        ObjectDevice::builder()
            .runtime(self.handle.clone())
            .part_size(part_size(read_ahead))
            .build_from_meta(store.clone(), meta.clone())
            .ok()
            .map(|device| device.with_read_ahead(read_ahead))
    }
}

impl Drop for Devices {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Part size of a device holding up to `read_ahead` bytes ahead: its share
/// in [`PARTS_AHEAD`] parts (a power of two, at least objectdev's
/// minimum), so a sequential reader keeps several GETs in flight; large
/// parts when it reads nothing ahead.
fn part_size(read_ahead: u64) -> u64 {
    if read_ahead == 0 {
        return PART_SIZE;
    }
    let part = (read_ahead / PARTS_AHEAD).clamp(MIN_PART_SIZE, PART_SIZE);
    1 << part.ilog2()
}

/// Adds `more` to `total`, field by field.
pub(crate) fn add_stats(total: &mut ReadAheadStats, more: ReadAheadStats) {
    total.gets += more.gets;
    total.fetched_bytes += more.fetched_bytes;
    total.used_bytes += more.used_bytes;
    total.unused_bytes += more.unused_bytes;
    total.failed += more.failed;
    total.buffered_bytes += more.buffered_bytes;
    total.cancelled += more.cancelled;
    // Peaks of different devices need not coincide: the largest is what
    // is known to have been held at once.
    total.peak_buffered_bytes = total.peak_buffered_bytes.max(more.peak_buffered_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_split_into_power_of_two_parts_within_objectdevs_limits() {
        assert_eq!(part_size(0), PART_SIZE);
        assert_eq!(part_size(8 << 20), 1 << 20);
        assert_eq!(part_size(12 << 20), 1 << 20);
        assert_eq!(part_size(1 << 10), MIN_PART_SIZE);
        assert_eq!(part_size(1 << 40), PART_SIZE);
    }

    #[test]
    fn stats_of_several_devices_add_their_counts_and_keep_the_largest_peak() {
        let mut total = ReadAheadStats::default();
        for (cancelled, peak) in [(2, 5 << 20), (3, 1 << 20)] {
            let mut more = ReadAheadStats::default();
            more.cancelled = cancelled;
            more.peak_buffered_bytes = peak;
            more.gets = 1;
            add_stats(&mut total, more);
        }
        assert_eq!(total.gets, 2);
        assert_eq!(total.cancelled, 5);
        assert_eq!(total.peak_buffered_bytes, 5 << 20);
    }
}
