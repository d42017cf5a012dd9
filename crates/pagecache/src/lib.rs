//! A cache of fixed-size pages over any positional-read device, with typed
//! endian getters, coalesced misses, scan-resistant eviction and a
//! write-back layer.
//!
//! [`PageCache`] keeps up to `capacity` pages of `page_size` bytes (both
//! powers of two; 1024 x 4096 by default) read from a [`blockdev::ReadAt`]
//! device. It implements [`bincodec::ByteSource`], so every getter of
//! [`ByteSourceExt`] (`get_u8` to `get_i128_be`) decodes straight from the
//! cached page, without allocating; a value straddling two pages is
//! assembled from both. [`WriteBackCache`] adds every setter of
//! [`ByteSinkExt`] over a bounded set of dirty pages, written back (from
//! the dirty buffers, vectored) by `persist`, `commit`, or a write that
//! finds the bound reached; a read never sees half of a write.
//!
//! ```
//! use blockdev::MemDevice;
//! use pagecache::{ByteSourceExt, PageCache};
//!
//! let mut disk = vec![0u8; 1 << 20];
//! disk[8190..8194].copy_from_slice(&0xcafe_f00du32.to_le_bytes());
//! let cache = PageCache::new(MemDevice::from_vec(disk))?;
//! assert_eq!(cache.get_u32_le(8190)?, 0xcafe_f00d); // straddles pages 1 and 2
//! assert_eq!(cache.syscalls(0, 1 << 20)?, 4); // 256 pages, 64 per device read
//! let err = cache.get_u16_be((1 << 20) - 1).unwrap_err();
//! assert_eq!(err.to_string(), "2 bytes at position 1048575 are out of bounds of a source of 1048576 bytes");
//! # Ok::<(), pagecache::Error>(())
//! ```
//!
//! # Eviction: S3-FIFO
//! The policy is S3-FIFO (Yang et al., "FIFO queues are all you need for
//! cache eviction", SOSP 2023): new pages enter a small FIFO queue (10% of
//! the capacity); a page re-used while there moves to the main queue, the
//! others leave and are remembered in a ghost queue of page numbers; a
//! remembered page that comes back enters the main queue directly; the
//! main queue is a CLOCK with up to 3 units of credit per page. Why this
//! one:
//! - A hit only sets a little credit beside the page, with plain stores and
//!   no lock: no list to relink, so hits on any pages run in parallel
//!   (strict LRU moves the page on every hit, under an exclusive lock).
//! - A one-off scan passes through the small queue and leaves without
//!   touching the main queue, so a hot working set survives it (strict LRU
//!   loses it all; see the hit-ratio table below).
//! - Insertion and eviction are O(1) amortized (each page's credit is
//!   bounded), with one policy lock taken only on misses.
//!
//! A page earns credit once per *miss epoch* (the cache counts batches of
//! pages it inserts): decoding many fields of one page in a row counts as
//! one use, as 2Q's "correlated reference period" does, so a scan that
//! reads every value of every page is still a one-off scan. With several
//! threads missing at once epochs advance faster and this filter is looser.
//!
//! The same rule, in a cache of a few pages (where the small queue is one
//! page): a page loaded last and then only hit, with no other miss in
//! between, has no credit, so the first page of a one-off scan evicts it
//! (at capacity 2, the single hot page). This is deliberate: its hits look
//! exactly like a scan decoding one page, and counting them would let
//! every such scan into the main queue. What keeps the loss to once: the
//! ghost queue remembers at least 64 page numbers (not just `capacity`),
//! so the page comes back straight into the main queue, where later scans
//! pass it by; and a page used again after any other miss keeps its place
//! from the start.
//!
//! Any working set of up to `capacity` pages hits 100% once loaded: the
//! cache is fully associative (any page can use any frame), so nothing is
//! evicted while it fits.
//!
//! # Hits without locks
//! A hit takes no lock and does no atomic read-modify-write: it finds the
//! page's frame, copies the bytes out of an arena of `AtomicU64` words with
//! plain loads, and checks the frame's sequence number to know no writer
//! changed the frame meanwhile (a sequence lock, in safe Rust). A page
//! lives in its *home frame*, its page number modulo the capacity,
//! whenever it can (a page away from home moves when its frame's owner
//! comes), so most hits compute their frame with no table lookup; the
//! others find it in a small hint table. Placement does not limit which
//! pages stay: eviction stays fully associative. A lock, even a reader lock, would cost a locked
//! instruction per hit, which on x86 is a full barrier: the CPU could no
//! longer overlap the memory accesses of consecutive reads, and random
//! hits measured 5 to 8 times slower. Misses, eviction and invalidation
//! take one state lock, never held during device I/O, nor while a miss
//! copies the pages it read into their frames (taken under the lock,
//! filled with it released, published under it; see "Scans" below).
//!
//! ## What a hit does, per read
//! A getter of up to 64 bits, such as `get_u64_le(pos)`, first asks the
//! source for the value as a word ([`ByteSource::read_word_le`], which
//! `PageCache` overrides); when the page is resident and whole it does,
//! in order (all inlined into the caller; no call, no lock, no atomic
//! read-modify-write, no buffer, no `Result` until the end):
//! 1. checks that the value lies inside one page (`pos & (page_size - 1)`
//!    plus its width, against the page size: one field load). There is
//!    no device-size check: a frame whose key is the page holds the whole
//!    page, no frame is keyed by a page reaching past the device size
//!    (pages are installed, and [`PageCache::refresh_size`] drops the ones
//!    past a smaller size, under the state lock), so "key matches and the
//!    value is inside the page" already means "inside the device";
//! 2. computes the page (`pos >> page_shift`) and its home frame (`page &
//!    (capacity - 1)`): shifts and masks, no division;
//! 3. loads the frame head's sequence number, then its key, and checks
//!    the key is the page (one compare). No parity check: a writer hides
//!    the key before its version turns odd and shows the new key (with
//!    release) only once the words are complete. A short page (the
//!    device's last) has no key, so this also stands for a length check;
//! 4. loads the two adjacent words the value lies in (the second may be
//!    the next frame's first, or a spare word that ends the arena, so it
//!    always exists; its bytes are past the page and dropped) and shifts
//!    them together,
//!    in registers; their address depends only on `pos`, not on the head,
//!    so the CPU fetches head and bytes at the same time;
//! 5. loads the sequence number again (after an acquire fence, which costs
//!    no instruction on x86): unchanged means the bytes belong to the page;
//! 6. records the access for eviction: if the frame's epoch differs from
//!    the cache's, two plain stores give the page a unit of credit;
//!    otherwise nothing is written, so hits on a hot page do not dirty its
//!    line;
//! 7. adds one to the calling thread's hit-counter stripe with a plain
//!    load and store. The stripe is picked by hashing the stack address
//!    (no thread-local lookup), which the compiler hoists out of a loop;
//!    the stripes live inline in the cache, so no pointer is loaded.
//!
//! Anything else (a page away from home: a hint-table lookup out of line,
//! then the same steps; a miss, a short page, a value straddling pages,
//! a read past the end, one-byte pages) falls through to
//! [`ByteSource::read_bytes_at`], which checks the size and takes the
//! general path. Reads of 9 to 511 bytes copy whole words with one load
//! and one store per eight bytes, and check the sequence number once per
//! page; longer ones exclude writers and copy with `memcpy` (see "Scans"
//! below).
//!
//! Measured with callgrind (`get_u64_le` at random offsets over 10,000
//! resident 4 KiB pages, the loop included): 51 instructions per hit,
//! against 17 for indexing a `Vec` of pages and 10 for one flat slice.
//! Before the word path it took 63 (the size check, the value copied
//! through a buffer and a `Result`, and a parity check on the version),
//! and 89 before that. Of the 51, the hit counter costs 2 (as 3, with
//! its stripes behind a pointer, it measured about 10% of a hit's time)
//! and the bounds checks on head and words 7.
//! Criterion's timings (which count cache misses, the bulk of a random
//! hit) are in the README's table.
//!
//! ## Huge pages: the first `unsafe` block
//! Random hits touch a different 4 KiB page almost every read, so with
//! base pages nearly every hit also misses the TLB and walks the page
//! table before its memory access starts. On Linux the frame arena is
//! advised with `madvise(MADV_HUGEPAGE)` when it is allocated (before it
//! is first touched; only its whole 2 MiB pages, so small caches are left
//! alone); where transparent huge pages are in `madvise` mode, a common
//! default, nothing else gives an allocation huge pages. Measured on the
//! hit above (16k random reads, interleaved runs on an otherwise busy
//! machine): 157 to 182 µs without, 112 to 125 µs with, about 30% less
//! time per hit at the same instruction count. That is past the 20% this
//! crate asks of `unsafe`, so `huge_pages.rs` holds one block, the system
//! call, with its safety argument beside it (the range lies inside memory
//! the function borrows mutably, and the advice changes only the page
//! size, never contents, mapping or protection). The crate is otherwise
//! `#![deny(unsafe_code)]`, but for the scan copy below. Miri cannot run
//! the system call, so under Miri (and off Linux) the hint is not given;
//! `cargo +nightly miri test -p pagecache --lib -- frames:: huge_pages`
//! passes (the frames' sequence lock and reader counts included, under
//! Miri's weak-memory emulation).
//!
//! What `unsafe` could further remove from a hit is the bounds check on
//! the head and the one on the words: 7 of the 51 instructions, all
//! predictable compares with no memory access, about 14% if time followed
//! instruction count; not done.
//!
//! ## Scans: the second `unsafe` block
//! A scan copies whole pages ([`PageCache::blit`], `for_each_chunk`, any
//! read of 512 bytes or more). Copied word by word with relaxed atomic
//! loads, which the compiler never vectorizes, a scan of 40 MiB of
//! resident 4 KiB pages took 0.83x the time of a `memcpy` out of an
//! `mmap` of the same file on an Intel Xeon (AVX-512), though 1.34x on an
//! AMD machine. A `memcpy` out of the arena is not allowed to race a
//! writer, even under a sequence lock (a data race is undefined
//! behaviour whatever the check after it finds), so long reads exclude
//! writers instead of detecting them, in `frames.rs`:
//! - each frame has a reader count, beside the heads (so that bulk reads
//!   do not dirty the lines random hits read);
//! - a long read raises the counts of the frames of up to 16 pages with
//!   SeqCst read-modify-writes (skipping a frame whose version is already
//!   odd), then, per page, loads the version (SeqCst) and the key: an
//!   even version and the page's key mean the frame holds the page and no
//!   writer is inside. It copies those pages with one `memcpy` per group
//!   of frames that lie back to back in the arena (the pages' home
//!   frames, for a run of resident pages: frames have no gap between
//!   them), then drops the counts (release). A frame being rewritten ends
//!   the run; that page takes the one-page paths (the sequence lock, then
//!   the state lock). It never waits;
//! - a writer (under the state lock) makes the version odd (SeqCst), then
//!   checks the frame's count (SeqCst): at zero the frame is its own
//!   until it publishes a page there (a miss copies the page in after
//!   releasing the state lock, and publishes it under the lock again).
//!   Both sides are SeqCst, Dekker-style: either the writer sees the
//!   reader's count, or the reader sees the odd version. A writer that
//!   sees a reader never waits for it (a reader holds its count for one
//!   run's copy, 64 KiB of 4 KiB pages, but a descheduled reader holds it
//!   as long as the scheduler decides, and every miss would wait behind
//!   the state lock meanwhile): it gives the frame back unchanged and
//!   takes another free frame or victim, which keeps the busy frame free
//!   until its reader leaves; a page rewritten by a write-back is dropped
//!   instead. No thread ever waits for a reader while it holds the state
//!   lock.
//!
//! Reading the atomic words as bytes is what needs `unsafe`, in one
//! block, `frames::copy_excluded`, with its safety argument; random hits
//! keep reading the same words with atomic loads meanwhile, which is
//! allowed (reads do not race with reads). The counts are raised for a
//! whole run rather than per page because a locked instruction on x86
//! waits for every store before it: one per page made each page's copy
//! reach the cache before the next could start. And one `memcpy` of 64
//! KiB ran about 10% faster than 16 of 4 KiB (a page-sized copy between
//! addresses 4 KiB apart also suffers 4K aliasing). Small reads keep the
//! sequence lock, which costs them no read-modify-write. The copy is little-endian only (the words hold
//! little-endian bytes); elsewhere it copies word by word under the
//! count. Measured (`cargo bench -p benches --bench pagecache --
//! pagecache_scan`, `ours_blit` against `mmap_copy` in the same run, on
//! a 2-core Intel Xeon shared with other builds; three runs of each): the
//! word-by-word copy took 4.39, 4.14 and 3.66 ms against 2.91, 2.88 and
//! 2.93 ms for `mmap_copy` (0.66x, 0.70x, 0.80x); this copy takes 3.10,
//! 3.12 and 3.09 ms against 2.88, 2.88 and 2.88 ms (0.93x each time), 24%
//! less time on average. With runs but a spare word after each frame
//! (one `memcpy` per page) it was 0.79x, 0.78x and 0.89x; a count raised
//! per page rather than per run was 5 to 10% slower still, in noisier
//! runs of a standalone copy loop. Random hits do not use the
//! counts and did not change (`pagecache_get_u64`: 105, 102 and 101 µs
//! before, 104, 103 and 101 µs after; `pagecache_threads` alike, within
//! its noise).
//! Tested by `frames::tests` (rewrites and clears racing whole,
//! unaligned and two-frame reads, also under Miri, which reports the data
//! race there if the writer does not check the count), by
//! `residency::tests` (a miss, a write-back and four scanning threads
//! never wait for a reader) and by `tests/scan.rs` (installs, evictions
//! and invalidations racing blits, never a torn page).
//!
//! ## Misses beside scans
//! A miss takes the state lock three times (to look up and reserve its
//! pages, to take frames, to publish them), each for bookkeeping only:
//! the device read and the copy of the pages into their frames run with
//! it released (a write-back's install copies under it, but one run of
//! 16 pages per hold, so a miss waits for at most that). Waiters spin up to 50 us before they block, since a
//! yield or a park on a machine with more busy threads than cores costs
//! a time slice (see `state::StateLock`). Measured by `cargo bench -p
//! benches --bench pagecache -- pagecache_miss_latency` (one thread
//! missing random pages, each evicting one, beside 4 threads scanning
//! twice the cache in 64 KiB reads, against the same misses beside 4
//! threads copying 64 KiB of their own memory; 2 cores, load average 8
//! to 12 from other builds; three runs each): p99 of a miss was 66.5,
//! 62.7 and 4.7 us scanning against 3.2, 3.6 and 3.4 us copying before,
//! and is 5.1, 7.7 and 6.3 us against 3.3, 3.3 and 4.1 us now (0.64x,
//! 0.43x, 0.65x). What it took:
//! - a miss installed its pages by copying them into frames under the
//!   state lock: 16 pages per install of a scanner (16 us mean, longer
//!   whenever the holder was descheduled), and every other miss waited;
//! - a random miss within a quarter of a scan's read-ahead window
//!   counted as continuing the scan, and hinted its window: a file's
//!   `fadvise` of up to 128 MiB, about 100 us of that miss (see
//!   "Read-ahead");
//! - lock waiters yielded the CPU after a few hundred nanoseconds.
//!
//! What is left of the gap is the misses' share of the device (the
//! scanners read the same file) and of the lock, and the worst miss on
//! either side is a time slice of the scheduler (milliseconds).
//!
//! # Hit ratios
//! Measured by `cargo bench -p benches --bench pagecache_hit_ratio` (1024 pages,
//! one-byte reads; the table is also written to
//! `target/bench-extra/pagecache-hit-ratio.md`). The direct-mapped column
//! reproduces Cachet's slot scheme (page `p` may only live in slot
//! `p mod capacity`).
//!
//! | workload (1024-page cache) | pagecache (S3-FIFO) | strict LRU | direct-mapped (Cachet) |
//! |---|---|---|---|
//! | uniform over 0.5x capacity | 100.0% | 100.0% | 79.7% |
//! | uniform over 1x capacity | 100.0% | 100.0% | 65.2% |
//! | uniform over 2x capacity | 50.1% | 50.0% | 43.9% |
//! | zipf 0.9 over 10x capacity | 62.8% | 55.8% | 49.5% |
//! | scan + hot set of 0.5x capacity | 50.0% | 36.1% | 27.8% |
//! | scan + hot set of 0.5x capacity: hot accesses only | 100.0% | 72.2% | 55.7% |
//!
//! (Half the accesses of the scan workload are the scan's, which no cache
//! can hit: 50% is the best possible there.)
//!
//! # Misses, batches and `syscalls`
//! A read that misses contiguous pages fetches them with one device call
//! (at most [`Builder::max_batch_pages`] pages per call, 256 KiB worth by
//! default) and caches them all. [`PageCache::syscalls`] returns exactly
//! how many device reads a cold read of a range costs under that rule.
//!
//! # Read-ahead
//! The cache reads no page nobody asked for, but it tells the device what
//! a sequential reader will want next, with [`blockdev::ReadAt::will_need`]
//! (like `posix_fadvise(WILLNEED)`), and each device decides what to do:
//! a file asks the kernel to read ahead, `spillcache::SpillTier` passes on
//! the chunks it lacks, `objectdev::ObjectDevice` starts ranged GETs in
//! the background.
//! - A run of missing pages that starts where an earlier one ended (or
//!   past up to 256 pages, all cached: pages the reader hit on its way)
//!   continues a stream, the one furthest along if several. Once a stream spans
//!   256 KiB it hints a window of 1 MiB (or 4 runs, if larger) past its
//!   end, and each further miss doubles the window, up to
//!   [`Builder::read_ahead`]. The whole window is
//!   hinted again once half of it has been consumed.
//! - Random reads start streams that never reach 256 KiB (a read that
//!   straddles pages misses two runs in a row, still far short): they
//!   hint nothing, so they cost no byte more than without read-ahead. A
//!   single read longer than 256 KiB counts as sequential. A reader that
//!   jumps starts a new stream; the old window is no longer hinted, and
//!   the devices drop what they fetched for it when they need the room.
//! - Random reads of another thread a little ahead of a scan neither
//!   hint nor move the scan's stream: the pages between are not cached.
//!   (They used to, whenever they fell within a quarter of the scan's
//!   window: each such miss paid for a hint of up to the whole window, a
//!   file's `fadvise` of 128 MiB, about 100 us.)
//! - Up to 8 streams are followed at once (readers scanning side by
//!   side); a new one replaces one that never hinted before one that did.
//!   A device may abort what it fetches for an abandoned window
//!   (`objectdev::ObjectDevice` does).
//! - **Memory**: the cache's memory is its frames (capacity × page size)
//!   plus at most [`Builder::read_ahead`] bytes fetched ahead by the
//!   devices below it: when built, the cache gives that bound to its
//!   device with [`blockdev::ReadAt::limit_read_ahead`], which layers
//!   pass down (a device opened with a lower cap keeps it). By default
//!   it is the frames' bytes, between [`MIN_DEFAULT_READ_AHEAD`] (8 MiB)
//!   and [`DEFAULT_READ_AHEAD`] (128 MiB): one number, set at the top.
//!   The cache itself keeps a few words per stream.
//! - **Off**: `Builder::read_ahead(0)` turns it off all the way down:
//!   no hint, and no byte fetched ahead by the devices below.
//!
//! # A new version of the device
//! [`PageCache::refresh`] moves the cache and every layer below it (a
//! disk tier, an object in a store; see [`blockdev::ReadAt::refresh`]) to
//! the device's current version with one call, atomically for readers: a
//! read returns bytes of one version, or an error. A version counter, odd
//! while a refresh runs, is compared before and after each read across
//! pages (and each read that missed), which starts again when a refresh
//! crossed it; pages read while a refresh runs are not cached. A read
//! within one resident page needs no check: every page is read whole
//! while no refresh runs, so it is of one version.
//!
//! # Cachet's API, and ours
//!
//! | Cachet | `pagecache` |
//! |---|---|
//! | `make ?cachesize ?pagesize ~map fd` | [`PageCache::new`], [`PageCache::with_geometry`], [`PageCache::builder`] (errors instead of `Invalid_argument`) |
//! | `fd`, `pagesize` | [`PageCache::device`], [`PageCache::page_size`] (and [`PageCache::capacity`]) |
//! | `cache_hit`, `cache_miss` | [`PageCache::hits`], [`PageCache::misses`], [`PageCache::stats`] |
//! | `copy` | [`PageCache::empty_copy`] (clones the device handle) |
//! | `load ?len addr` | [`PageCache::load`] (`Result<Option<Slice>>`) |
//! | `slice` {`offset`, `length`, `payload`} | [`Slice::offset`], [`Slice::len`], [`Slice::bytes`] |
//! | `bstr_of_slice ?logical_address` | [`Slice::view`] (`None` instead of `Invalid_argument`) |
//! | `next` | [`PageCache::next`] |
//! | `invalidate ~off ~len` | [`PageCache::invalidate`] (also drops a page a range lies inside) |
//! | `is_cached` | [`PageCache::is_cached`] (counts nothing) |
//! | `get_int8`, `get_uint8`, `get_{u,}int{16,32,64}_{ne,le,be}` | every getter of [`ByteSourceExt`], 8 to 128 bits, signed and unsigned, `_le`/`_be`/`_ne` |
//! | `get_string ~len addr` | [`PageCache::get_bytes`] |
//! | `blit_to_bytes ~src_off dst ~dst_off ~len` | [`PageCache::blit`], [`ByteSource::read_bytes_at`] |
//! | `get_seq addr` | [`PageCache::get_seq`] (an iterator of [`Slice`]s) |
//! | `iter ?len ~fn addr` | [`PageCache::iter`] (an iterator of bytes) |
//! | `syscalls ~logical_address ~len` | [`PageCache::syscalls`] (exact, with coalescing) |
//! | `exception Out_of_bounds` | [`Error::OutOfBounds`], the same value for every address |
//! | `Cachet_wr` setters, `persist`, `commit` | [`WriteBackCache`]: every setter of [`ByteSinkExt`], [`WriteBackCache::persist`], [`WriteBackCache::commit`] |
//!
//! # Cachet's defects, and what happens here
//! - Direct-mapped slots (conflict misses at a quarter of the capacity):
//!   S3-FIFO over a global capacity.
//! - In-page offset wrong on a short last page: pages know their length;
//!   the model tests cover devices of every length.
//! - Unaligned reads byte by byte through the cache, and an allocation per
//!   integer: one copy out of the page (two when straddling).
//! - Errors differing by address: one [`Error::OutOfBounds`] everywhere.
//! - `invalidate` of a range inside one page doing nothing: it drops it.
//! - int64 big-endian decoded as little-endian on writes: setters and
//!   getters are bincodec's, tested for every width and endianness.
// Two `unsafe` blocks: in `huge_pages` and in `frames::copy_excluded`
// (see "Huge pages" and "Scans" above).
#![deny(unsafe_code)]

mod builder;
mod cache;
mod cachet;
mod counters;
mod dirty;
mod error;
mod frames;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod hints;
mod hit;
mod huge_pages;
mod iter;
mod miss;
mod policy;
mod readahead;
mod residency;
mod scan;
mod slice;
mod state;
mod stats;
mod version;
mod write_back;

pub use bincodec::{ByteSink, ByteSinkExt, ByteSource, ByteSourceExt, OutOfBounds};
pub use builder::{
    Builder, DEFAULT_CAPACITY, DEFAULT_DIRTY_BYTES, DEFAULT_PAGE_SIZE, DEFAULT_READ_AHEAD,
    MAX_CAPACITY, MAX_PAGE_SIZE, MIN_DEFAULT_READ_AHEAD,
};
pub use cache::PageCache;
pub use error::Error;
pub use iter::{Bytes, Chunks};
pub use slice::Slice;
pub use stats::Stats;
pub use write_back::WriteBackCache;
