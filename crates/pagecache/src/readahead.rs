//! Sequential detection: which misses continue a stream, and how far
//! ahead to hint the device to fetch.
//!
//! Windows follow mountpoint-s3's prefetcher and Linux's readahead: a
//! stream starts small, doubles while the reader stays sequential, is
//! capped, and is forgotten when the reader jumps elsewhere. The device
//! is hinted the whole window again once half of it has been consumed, so
//! it sees which of its parts are still wanted.

/// Streams followed at once (a few readers scanning side by side); the
/// least recently extended one makes room for a new one.
const STREAMS: usize = 8;

/// The first window: 4 runs of the miss that confirmed the stream, and at
/// least this many bytes (mountpoint-s3 starts at about 1 MiB too).
const MIN_WINDOW: u64 = 1 << 20;

/// Bytes a stream must have missed in order before it hints: a random
/// read that straddles pages, or finds some of its pages resident, misses
/// two or three runs in a row, and must not look like a scan.
const MIN_SEQUENTIAL: u64 = 256 << 10;

/// Most pages a stream's reader may have hit between two of its misses
/// (see [`Streams::after_miss`]): bounds the residency check.
pub(crate) const MAX_GAP_PAGES: u64 = 256;

#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    /// Where the stream's first miss began.
    begin: u64,
    /// Where the next miss of this stream is expected.
    next: u64,
    /// The read-ahead window; 0 until the stream is long enough to hint.
    window: u64,
    /// End of the range hinted so far.
    hinted_end: u64,
    /// When it was last extended (0: never used).
    used: u64,
}

/// The streams a cache follows, behind their own small lock, taken once
/// per run of missing pages.
#[derive(Debug)]
pub(crate) struct Streams {
    /// Largest window; 0 turns read-ahead off.
    max_window: u64,
    streams: [Stream; STREAMS],
    clock: u64,
}

impl Streams {
    pub(crate) fn new(max_window: u64) -> Self {
        Streams {
            max_window,
            streams: [Stream::default(); STREAMS],
            clock: 0,
        }
    }

    pub(crate) fn max_window(&self) -> u64 {
        self.max_window
    }

    /// Records a run of missing pages `start..end` about to be read, and
    /// returns the range to hint, if any: only a miss that continues an
    /// earlier one extends a stream, and a stream hints once it spans
    /// [`MIN_SEQUENTIAL`] bytes, so random reads never hint anything.
    ///
    /// A miss continues a stream if it starts where the stream's last miss
    /// ended, or past a gap of at most [`MAX_GAP_PAGES`] pages (and a
    /// quarter of the window) that `resident(gap_start, gap_end)` says
    /// are all cached: pages the reader hit on its way. A gap of pages
    /// that are not cached is another reader's miss (a random read a
    /// little ahead of a scan), which must neither hint nor move the
    /// scan's stream. A new stream replaces one that never hinted before
    /// one that did, so random misses do not push scans out, and a miss
    /// that may continue several streams continues the one with the
    /// largest window.
    pub(crate) fn after_miss(
        &mut self,
        start: u64,
        end: u64,
        resident: impl Fn(u64, u64) -> bool,
    ) -> Option<(u64, u64)> {
        if self.max_window == 0 || end <= start {
            return None;
        }
        self.clock += 1;
        let clock = self.clock;
        // Of the streams the miss may continue, the one furthest along: a
        // scan that passes a page another reader missed also starts where
        // that reader's one-page stream ends.
        let continued = self
            .streams
            .iter_mut()
            .filter(|s| {
                s.used != 0
                    && start >= s.next
                    && (start == s.next
                        || (start - s.next <= s.window / 4 && resident(s.next, start)))
            })
            .max_by_key(|s| (s.window, s.used));
        let Some(stream) = continued else {
            let replaced = self
                .streams
                .iter_mut()
                .min_by_key(|s| (s.window != 0, s.used))
                .expect("STREAMS > 0");
            *replaced = Stream {
                begin: start,
                next: end,
                window: 0,
                hinted_end: end,
                used: clock,
            };
            return None;
        };
        stream.next = end;
        stream.used = clock;
        if end - stream.begin < MIN_SEQUENTIAL {
            return None;
        }
        stream.window = match stream.window {
            0 => (4 * (end - start)).max(MIN_WINDOW),
            window => window.saturating_mul(2),
        }
        .min(self.max_window);
        if stream.hinted_end.saturating_sub(end) > stream.window / 2 {
            return None;
        }
        stream.hinted_end = end.saturating_add(stream.window);
        Some((end, stream.window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_resident(_: u64, _: u64) -> bool {
        true
    }

    #[test]
    fn a_second_contiguous_miss_hints_and_windows_double_to_the_cap() {
        let mut streams = Streams::new(8 << 20);
        for page in 0..63 {
            assert_eq!(
                streams.after_miss(page * 4096, page * 4096 + 4096, all_resident),
                None
            );
        }
        assert_eq!(
            streams.after_miss(252 << 10, 256 << 10, all_resident),
            Some((256 << 10, 1 << 20))
        );
        let mut at = 256 << 10;
        let mut hints = Vec::new();
        while at < 64 << 20 {
            if let Some((pos, len)) = streams.after_miss(at, at + 4096, all_resident) {
                assert_eq!(pos, at + 4096);
                hints.push((pos, len));
            }
            at += 4096;
        }
        let windows: Vec<u64> = hints.iter().map(|&(_, len)| len).collect();
        assert_eq!(windows[..4], [2 << 20, 4 << 20, 8 << 20, 8 << 20]);
        // At the cap, a hint each time half the window has been read.
        let capped: Vec<u64> = hints[3..].windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(capped.iter().all(|&step| step == 4 << 20), "{capped:?}");
    }

    #[test]
    fn random_misses_never_hint() {
        let mut streams = Streams::new(128 << 20);
        let mut state = 1u64;
        for _ in 0..10_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let page = (state >> 20) % (1 << 20);
            assert_eq!(
                streams.after_miss(page * 4096, page * 4096 + 4096, all_resident),
                None
            );
        }
    }

    #[test]
    fn a_jump_starts_over_and_a_cap_of_zero_turns_it_off() {
        let mut streams = Streams::new(128 << 20);
        streams.after_miss(0, 128 << 10, all_resident);
        assert!(
            streams
                .after_miss(128 << 10, 256 << 10, all_resident)
                .is_some()
        );
        let far = 1 << 30;
        assert_eq!(
            streams.after_miss(far, far + (128 << 10), all_resident),
            None
        );
        assert_eq!(
            streams.after_miss(far + (128 << 10), far + (256 << 10), all_resident),
            Some((far + (256 << 10), 1 << 20))
        );
        let mut off = Streams::new(0);
        off.after_miss(0, 128 << 10, all_resident);
        assert_eq!(off.after_miss(128 << 10, 256 << 10, all_resident), None);
    }

    /// The miss-latency workload: one reader scans while another misses
    /// random pages a little ahead of it. Before the gap had to be
    /// cached, each random miss within a quarter of the scan's window
    /// "continued" the scan: it hinted up to the whole window (a file's
    /// `fadvise` of 128 MiB took about 100 us of that miss) and moved the
    /// stream away from the scan.
    #[test]
    fn misses_of_another_reader_ahead_of_a_scan_neither_hint_nor_break_it() {
        let mut streams = Streams::new(128 << 20);
        let nothing_cached = |_: u64, _: u64| false;
        let run = 64 << 10;
        let mut at = 0;
        let mut scan_hints = 0;
        let mut state = 7u64;
        for _ in 0..400 {
            if let Some((pos, _)) = streams.after_miss(at, at + run, nothing_cached) {
                assert_eq!(pos, at + run, "a hint ahead of the scan");
                scan_hints += 1;
            }
            at += run;
            // Three random one-page misses within 8 MiB past the scan.
            for _ in 0..3 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let page = at + 4096 + (state >> 40) % (8 << 20) / 4096 * 4096;
                assert_eq!(streams.after_miss(page, page + 4096, nothing_cached), None);
            }
        }
        // The scan kept its stream: a hint per miss while its window
        // doubled to the cap (25 MiB scanned: not half of that window).
        assert_eq!(scan_hints, 8, "1 MiB doubled up to 128 MiB");
        // Pages the scan hit between two of its misses do continue it.
        let (start, end) = (at + (128 << 10), at + (192 << 10));
        streams.after_miss(start, end, all_resident);
        assert!(
            streams
                .streams
                .iter()
                .any(|s| s.next == end && s.window > 0)
        );
    }
}
