//! A secure spill cache: values wait in RAM until a background thread has
//! written them, encrypted, into one file that has no name; from then on they
//! are read back from the file.
//!
//! This is the design of kitty's graphics disk cache, with its defects
//! fixed. Every value is encrypted with ChaCha20 under a fresh random 256-bit
//! key and nonce per write; the key lives only in RAM and is wiped when the
//! value is overwritten or removed, or the cache is dropped. A keyed tag
//! turns a damaged file into [`Error::Corrupt`], never wrong bytes.
//!
//! ```
//! use std::time::Duration;
//! use spillcache::SpillCache;
//!
//! let cache = SpillCache::new(std::env::temp_dir())?;
//! cache.add(b"frame:1", &vec![0xAB; 100_000])?;       // copied; returns at once
//! cache.add_memory_only(b"cursor", b"never on disk")?;
//! assert!(cache.wait_for_write(Duration::from_secs(5))?);
//! assert_eq!(cache.size_on_disk(), 100_000);         // ciphertext only
//! assert_eq!(cache.get(b"frame:1")?.map(|v| v.len()), Some(100_000));
//! cache.remove(b"frame:1");
//! assert_eq!((cache.len(), cache.size_on_disk()), (1, 0));
//! # Ok::<(), spillcache::Error>(())
//! ```
//!
//! # How it works
//!
//! - [`SpillCache::add`] copies the value into RAM ([`SpillCache::add_shared`]
//!   takes an `Arc<[u8]>` without a copy) and queues its key; the
//!   writer thread, woken through a condition variable, takes queued values
//!   in order, reserves space (best fit in the [`HoleIndex`], else at the
//!   end), encrypts and writes outside the lock, then records the position
//!   if the value is still current. Each value carries a generation number,
//!   so a write that finishes after its key was overwritten, removed or
//!   cleared is thrown away and its space freed. A key waiting to be
//!   written is queued once, however often it is overwritten.
//! - [`SpillCache::wait_for_write`] called while the writer thread sleeps
//!   (right after an `add`, say) writes the caller's own values on the
//!   calling thread: the value is on disk without waking the writer and
//!   then being woken by it. The writer thread, once awake, only helps with
//!   the pieces of long values until that caller is done; one thread writes
//!   at a time. Values of other threads are left to the writer thread, so
//!   a device that hangs never holds a caller for another thread's value.
//! - A device call that panics (a write, a defragmentation's copy, a hole
//!   punch, a truncation), on the writer thread or on a caller's, stops
//!   writing for good: a value being written stays in RAM, one being moved
//!   at its old place, both readable; no reservation is leaked; and
//!   waiters get [`Error::WriterStopped`] instead of a hang. A read that
//!   panics fails that read only (on the caller's thread it unwinds into
//!   the `get`; on the thread helping it decrypt it is an [`Error::Io`]):
//!   the value stays readable and writing goes on.
//! - Memory is bounded: the bytes waiting to be written are at most
//!   [`Builder::max_pending_bytes`] (default 256 MiB). Past it `add` waits
//!   for the writer, [`SpillCache::try_add`] returns [`Error::Full`] and
//!   [`SpillCache::add_timeout`] waits at most its timeout. Room comes
//!   first, the copy after: a caller that waits, or is refused, holds no
//!   copy of its value, and a value being copied in counts against the
//!   bound while it is copied. Memory-only
//!   values are never written, so waiting would not help them: they have
//!   their own bound, [`Builder::max_memory_only_bytes`] (default none).
//! - A write that fails (`ENOSPC`, `EIO`, a short write) leaves the value in
//!   RAM and readable; the error is counted in [`Stats`] and reported by
//!   [`SpillCache::wait_for_write`]. The value is set aside, so the values
//!   behind it are written meanwhile (into holes, where a full disk still
//!   has room), and retried after a backoff, or at once when space is freed.
//! - Freed space goes back to the file system: holes of at least a block are
//!   punched (`fallocate(PUNCH_HOLE | KEEP_SIZE)`, see
//!   [`blockdev::punch_hole`]; nothing on devices or file systems that
//!   cannot), and the file is cut at the end of data as soon as the tail is
//!   free.
//! - [`SpillCache::get`] of a written value copies its position and seal out
//!   under the lock, then reads, checks and decrypts without it; if the value
//!   moved or changed meanwhile it looks again.
//! - When the end of data exceeds `defrag_factor` times the bytes in use,
//!   the writer copies the live values, packed, into a fresh file with
//!   [`blockdev::copy_range`] (outside the lock) and swaps files. When the
//!   file system has no room for that copy, it compacts in place instead:
//!   values move down into holes of the same file, one at a time, copied
//!   while the entry still points at the old place and switched under the
//!   lock only if the value is unchanged, so a value stays readable, and
//!   never as wrong bytes, throughout. A failed defragmentation keeps the
//!   old file and backs off.
//! - Compacting in place is not free of space: the holes values move into
//!   were punched (their blocks given back to the file system, which may
//!   have handed them to other files), so each move needs the file system
//!   to have free the whole blocks of the hole it fills: at most the
//!   value's length rounded up to whole blocks, plus one (and what the
//!   file system needs for its own metadata). The old place is punched, or
//!   cut from the tail, before the next move, so the need is that of the
//!   largest value that moves, not their sum. On a file system with fewer
//!   free blocks the move fails with `ENOSPC`, the defragmentation with it
//!   ([`Error::DefragFailed`]), and the values stay where they were. Holes
//!   never punched (on a device that cannot punch, or no whole block) need
//!   no new blocks.
//! - [`SpillCache::clear`] truncates the file before returning.
//! - No option can make the writer panic: [`Builder::build`] refuses values
//!   out of range with [`Error::InvalidOption`], and time arithmetic is
//!   checked.
//!
//! # Integrity tag
//!
//! The tag is xxh3-64 of the ciphertext with a random per-write seed kept
//! beside the key, not Poly1305: on the development machine rand_chacha's
//! keystream runs at ~0.8 GB/s, Poly1305 at ~1.0 GB/s and seeded xxh3 at
//! ~8.7 GB/s, so Poly1305 would nearly halve write and read throughput while
//! xxh3 costs about a tenth. It detects any damage to the file; it is not a
//! proven MAC against an attacker who can rewrite the file.
//!
//! Values of 256 KiB or more are cut into 64 KiB pieces (ChaCha20 seeks to
//! any block, so each piece is encrypted on its own) that the thread writing
//! the value and a helper (a cipher thread, or the writer thread when a
//! caller writes) take turns at, so one encrypts while the other writes
//! and a long value takes about half the serial time; reads of such values
//! decrypt on two threads likewise: the calling thread and the cache's
//! persistent reader thread, when it is idle (a read never waits behind
//! another; the reader's pieces come back in its own buffers and are copied
//! into place). Their tag is xxh3 of the pieces' xxh3 tags in order, so it
//! covers every byte and every piece's place.
//!
//! The buffers of values of 256 KiB or more, once written, are kept for the
//! next `add`s of the same length (at most 64 of them, a quarter of
//! [`Builder::max_pending_bytes`] in all, each freed after a second unused),
//! so a stream of large values copies into pages already mapped: a fresh
//! 64 MiB buffer costs 16,384 page faults and the kernel's zeroing.
//!
//! # What is and is not protected
//!
//! - The file holds only ciphertext; it has no name (so no other process can
//!   open it by path), mode 0600, and vanishes with the process.
//! - Keys, nonces and tag seeds exist only in RAM, boxed so that moving an
//!   entry leaves no copy behind, and are zeroed when dropped. Writes
//!   generate the keystream straight into the ciphertext buffer (so none is
//!   left once the plaintext is XORed in); the read side's keystream scratch
//!   is zeroed, and the generator state overwritten, after each use;
//!   copies the compiler makes on the stack are beyond reach (best effort).
//! - Values waiting in RAM (and RAM copies, and the spare buffers of large
//!   values written) are plaintext and are not zeroed when freed:
//!   the cache protects what reaches the disk, not the process memory; the
//!   reader thread's piece buffers likewise hold the last pieces it
//!   decrypted until it reuses them.
//!
//! # Differences from kitty
//!
//! - `size_on_disk` is the end of data, and a hole that reaches the end moves
//!   the end back (kitty reports the file's size, which only defragmentation
//!   or emptying shrinks).
//! - Writes are FIFO (while none fails), so the file layout after a series
//!   of adds is their order (kitty's hash-order writer needed a wait after
//!   each add).
//!
//! # A disk tier in front of a slow device
//!
//! [`SpillTier`] is a [`blockdev::ReadAt`] over a slower device (object
//! storage through `objectdev`, a network disk) that keeps aligned chunks
//! (1 MiB by default) of it here, encrypted like every value, within a byte
//! budget (CLOCK eviction). Under a page cache it makes RAM pages over an
//! encrypted local disk over, say, S3:
//! `PageCache::builder().max_batch_pages(256).build(SpillTier::new(ObjectDevice::open(url)?, dir, budget)?)`.
//!
//! ```
//! use blockdev::{MemDevice, ReadAt};
//! use spillcache::SpillTier;
//!
//! let slow = MemDevice::from_vec(vec![7u8; 3 << 20]);
//! let tier = SpillTier::new(slow, std::env::temp_dir(), 2 << 20)?; // two 1 MiB chunks
//! let mut buf = [0u8; 4];
//! tier.read_exact_at(5 << 19, &mut buf)?;                          // chunk 2
//! assert_eq!((buf, tier.stats().device_reads), ([7; 4], 1));
//! tier.read_exact_at(5 << 19, &mut buf)?;                          // from the tier
//! assert_eq!(tier.stats().device_reads, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `fuzzing`: the `fuzz` module, the op-sequence drivers the fuzz targets
//!   and the tests share, with `arbitrary::Arbitrary` for their inputs. It is
//!   not part of the default API.
#![forbid(unsafe_code)]

mod builder;
mod cache;
mod cipher;
mod config;
mod defrag;
mod entry;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handoff;
mod hole;
mod recycle;
mod space;
mod state;
mod stats;
mod tier;
mod writer;

pub use builder::Builder;
pub use cache::SpillCache;
pub use config::{AnonymousFiles, FileFactory};
pub use error::{Error, Result};
pub use hole::HoleIndex;
pub use stats::Stats;
pub use tier::{DEFAULT_CHUNK_SIZE, SpillTier, TierStats};
