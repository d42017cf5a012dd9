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
    /// earlier one (right after it, or past a few resident pages) extends
    /// a stream, and a stream hints once it spans [`MIN_SEQUENTIAL`]
    /// bytes, so random reads never hint anything.
    pub(crate) fn after_miss(&mut self, start: u64, end: u64) -> Option<(u64, u64)> {
        if self.max_window == 0 || end <= start {
            return None;
        }
        self.clock += 1;
        let clock = self.clock;
        let continued = self
            .streams
            .iter_mut()
            .find(|s| s.used != 0 && start >= s.next && start - s.next <= s.window / 4);
        let Some(stream) = continued else {
            let oldest = self
                .streams
                .iter_mut()
                .min_by_key(|s| s.used)
                .expect("STREAMS > 0");
            *oldest = Stream {
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

    #[test]
    fn a_second_contiguous_miss_hints_and_windows_double_to_the_cap() {
        let mut streams = Streams::new(8 << 20);
        for page in 0..63 {
            assert_eq!(streams.after_miss(page * 4096, page * 4096 + 4096), None);
        }
        assert_eq!(
            streams.after_miss(252 << 10, 256 << 10),
            Some((256 << 10, 1 << 20))
        );
        let mut at = 256 << 10;
        let mut hints = Vec::new();
        while at < 64 << 20 {
            if let Some((pos, len)) = streams.after_miss(at, at + 4096) {
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
            assert_eq!(streams.after_miss(page * 4096, page * 4096 + 4096), None);
        }
    }

    #[test]
    fn a_jump_starts_over_and_a_cap_of_zero_turns_it_off() {
        let mut streams = Streams::new(128 << 20);
        streams.after_miss(0, 128 << 10);
        assert!(streams.after_miss(128 << 10, 256 << 10).is_some());
        let far = 1 << 30;
        assert_eq!(streams.after_miss(far, far + (128 << 10)), None);
        assert_eq!(
            streams.after_miss(far + (128 << 10), far + (256 << 10)),
            Some((far + (256 << 10), 1 << 20))
        );
        let mut off = Streams::new(0);
        off.after_miss(0, 128 << 10);
        assert_eq!(off.after_miss(128 << 10, 256 << 10), None);
    }
}
