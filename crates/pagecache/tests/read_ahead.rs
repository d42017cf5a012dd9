//! Read-ahead hints: a sequential reader makes the cache hint the device
//! ahead of it; random reads never do; a cap of zero turns it off; the
//! cap bounds what the device holds ahead too.

use blockdev::{FaultyDevice, MemDevice};
use pagecache::{ByteSourceExt, PageCache};

/// Zeroed memory that records the hints it is given.
fn hinted(len: usize) -> FaultyDevice<MemDevice> {
    FaultyDevice::new(MemDevice::from_vec(vec![0; len]))
}

const LEN: usize = 64 << 20;

#[test]
fn a_sequential_scan_hints_growing_windows_ahead_of_the_reader() -> Result<(), pagecache::Error> {
    let cache = PageCache::builder()
        .capacity(256)
        .max_batch_pages(16) // 64 KiB misses
        .read_ahead(16 << 20)
        .build(hinted(LEN))?;
    let mut buf = vec![0u8; 1 << 20];
    for start in (0..LEN as u64).step_by(1 << 20) {
        cache.blit(start, &mut buf, 0, 1 << 20)?;
    }
    let hints = cache.device().hints();
    assert_eq!(
        hints[0],
        (256 << 10, 1 << 20),
        "after 256 KiB in order, 1 MiB past it"
    );
    assert!(
        hints
            .windows(2)
            .all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0)
    );
    assert_eq!(hints.last().map(|h| h.1), Some(16 << 20));
    // Every byte read past the first two misses was hinted first.
    let hinted_to = hints.iter().map(|&(pos, len)| pos + len).max();
    assert!(hinted_to >= Some(LEN as u64));
    Ok(())
}

#[test]
fn random_reads_hint_nothing() -> Result<(), pagecache::Error> {
    let cache = PageCache::builder().capacity(64).build(hinted(LEN))?;
    let mut state = 9u64;
    for _ in 0..2000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        cache.get_u32_le((state >> 16) % (LEN as u64 - 4))?;
    }
    assert!(cache.misses() > 1500);
    assert_eq!(cache.device().hints(), []);
    Ok(())
}

#[test]
fn a_cap_of_zero_turns_read_ahead_off() -> Result<(), pagecache::Error> {
    let cache = PageCache::builder().read_ahead(0).build(hinted(1 << 20))?;
    cache.blit(0, &mut vec![0u8; 1 << 20], 0, 1 << 20)?;
    assert_eq!(cache.device().hints(), []);
    Ok(())
}

/// Another reader missing random pages a little ahead of a scan (the
/// miss-latency bench's workload): its misses add no hints (each was a
/// hint of the scan's whole window, a 128 MiB `fadvise` on a file), and
/// the scan keeps its stream, also past the pages those reads cached.
#[test]
fn random_reads_ahead_of_a_scan_neither_hint_nor_take_its_stream() -> Result<(), pagecache::Error> {
    let cache = PageCache::builder()
        .capacity(1024)
        .max_batch_pages(16) // 64 KiB misses
        .read_ahead(16 << 20)
        .build(hinted(LEN))?;
    let piece = 64 << 10;
    let mut buf = vec![0u8; piece];
    let mut state = 5u64;
    for start in (0..(LEN / 2) as u64).step_by(piece) {
        cache.blit(start, &mut buf, 0, piece)?;
        for _ in 0..3 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let ahead = start + piece as u64 + 4096 + (state >> 24) % (4 << 20);
            let hints = cache.device().hints().len();
            cache.get_u8(ahead)?;
            assert_eq!(
                cache.device().hints().len(),
                hints,
                "a random read at {ahead} hinted, the scan being at {start}"
            );
        }
    }
    let hints = cache.device().hints();
    // 1 MiB doubled to the 16 MiB cap, then every 8 MiB: the scan's stream
    // was never lost.
    let windows: Vec<u64> = hints.iter().map(|&(_, len)| len).collect();
    assert_eq!(windows[..5], [1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20]);
    assert!(windows[5..].iter().all(|&w| w == 16 << 20), "{windows:?}");
    Ok(())
}

#[test]
fn the_cache_bounds_its_devices_read_ahead_with_its_own() -> Result<(), pagecache::Error> {
    let limits = |builder: pagecache::Builder| -> Result<Vec<u64>, pagecache::Error> {
        let cache = builder.build(FaultyDevice::new(MemDevice::new()))?;
        Ok(cache.device().read_ahead_limits())
    };
    assert_eq!(limits(PageCache::builder().read_ahead(0))?, [0]);
    assert_eq!(limits(PageCache::builder().read_ahead(3 << 20))?, [3 << 20]);
    // By default: the frames' bytes, within 8 MiB..=128 MiB.
    assert_eq!(
        limits(PageCache::builder())?,
        [pagecache::MIN_DEFAULT_READ_AHEAD]
    );
    assert_eq!(limits(PageCache::builder().capacity(8192))?, [32 << 20]);
    assert_eq!(
        limits(PageCache::builder().capacity(1 << 20))?,
        [pagecache::DEFAULT_READ_AHEAD]
    );
    Ok(())
}
