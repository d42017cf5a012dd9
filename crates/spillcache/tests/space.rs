//! Space given back to the file system: the file is cut back after a
//! `clear` that races an in-place compaction, and freed blocks are punched
//! (and counted) once.

mod common;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use blockdev::{MemDevice, ReadAt};
use common::gate::{Gate, gated_device};
use common::{TempDir, WAIT};
use spillcache::{Builder, SpillCache};

/// Issue 16 item 6: the compaction's copy lands after `clear` cut the file
/// to 0; the cache is empty, so once the compaction ends the file must be
/// empty too, not hold the copy's 100 kB.
#[test]
fn a_clear_during_an_in_place_compaction_leaves_no_tail() {
    let gate = Arc::new(Gate::opened());
    let file = gated_device(MemDevice::new(), &gate);
    let made = AtomicBool::new(false);
    let first = file.clone();
    // No room for a second file: defragmentation compacts in place.
    let cache = Builder::with_file_factory(move || {
        if made.swap(true, Ordering::SeqCst) {
            Err(io::Error::from(io::ErrorKind::StorageFull))
        } else {
            Ok(first.clone())
        }
    })
    .build()
    .unwrap();
    for key in [b"a", b"b", b"c"] {
        cache.add(key, &[7u8; 100_000]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert!(cache.remove(b"a")); // c moves down into a's place
    let cache = Arc::new(cache);
    gate.close();
    let defrag = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || cache.defrag(WAIT))
    };
    gate.wait_for_a_write(); // the compaction's copy is under way

    cache.clear().unwrap();
    gate.open();
    assert!(defrag.join().unwrap().unwrap(), "served");

    assert_eq!((cache.len(), cache.size_on_disk()), (0, 0));
    assert_eq!(file.inner.size().unwrap(), 0, "bytes left in the file");
    cache.check_invariants().unwrap();
    cache.add(b"after", b"clear").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.get(b"after").unwrap(), Some(b"clear".to_vec()));
    assert_eq!(file.inner.size().unwrap(), 5);
}

/// Issue 16 item 7: removing neighbouring values one by one used to punch
/// (and count) the whole growing hole again on every free. Each block is
/// punched once: the blocks inside the freed span, no more.
#[test]
fn neighbouring_frees_punch_each_block_once() {
    let dir = TempDir::new("punch");
    // No defragmentation: it would move the last value to a new file.
    let cache = SpillCache::builder(dir.path())
        .defrag_factor(1e9)
        .build()
        .unwrap();
    let (n, len) = (2_000u64, 1_000u64);
    for i in 0..=n {
        cache.add(&i.to_le_bytes(), &[9u8; 1_000]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    // Neighbours in a scrambled order, so holes grow on both sides; the
    // last value stays, so the span is a hole, not a cut tail.
    for k in 0..n {
        assert!(cache.remove(&(k * 7919 % n).to_le_bytes()));
    }
    // Punching is done before the next write reserves space.
    cache.add(b"next", b"x").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());

    assert_eq!(cache.stats().defrags, 0);
    let punched = cache.stats().bytes_punched;
    let freed = n * len;
    let file = cache.current_file();
    let block = file.metadata().unwrap().blksize();
    eprintln!("punched {punched} bytes of {freed} freed (block {block})");
    assert!(punched <= freed, "punched {punched} of {freed} bytes freed");
    if punched == 0 {
        eprintln!("skipped: this file system punches no holes");
        return;
    }
    assert_eq!(
        punched,
        freed / block * block,
        "the whole blocks of the span"
    );
    // And the blocks are really given back: what stays allocated is the
    // blocks of the two values left (and file system metadata).
    let allocated = file.metadata().unwrap().blocks() * 512;
    assert!(allocated <= 8 * block, "{allocated} bytes still allocated");
}

/// Issue 16 item 9: compacting in place needs free blocks. The holes it
/// moves values into were punched, their blocks given back to the file
/// system, so each move needs the blocks of the value it moves (its length
/// rounded up to whole blocks, plus one for an edge); on a file system
/// with none free the compaction fails and keeps every value readable,
/// and with that many free it succeeds.
#[test]
fn compacting_in_place_needs_the_blocks_of_one_value() {
    let Some(fs) = common::SmallFs::mount("2m") else {
        return;
    };
    let len = 200_000;
    let value = |i: u8| vec![i; len];
    let cache = SpillCache::builder(fs.path())
        .defrag_factor(1e9) // only asked-for defragmentations
        .build()
        .unwrap();
    for i in 0..8 {
        cache.add(&[i], &value(i)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    for i in [0, 2, 4] {
        assert!(cache.remove(&[i]));
    }
    // Punching is done before the next write reserves space.
    cache.add(b"tiny", b"t").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert!(cache.stats().bytes_punched > 0, "{:?}", cache.stats());

    // Another file takes every free block, the punched ones too.
    let filler_path = fs.path().join("filler");
    let filler = std::fs::File::create(&filler_path).unwrap();
    let block = filler.metadata().unwrap().blksize();
    let mut filled = 0u64;
    while std::os::unix::fs::FileExt::write_all_at(&filler, &vec![1u8; block as usize], filled)
        .is_ok()
    {
        filled += block;
    }
    let failed = cache.defrag(WAIT);
    assert!(
        matches!(failed, Err(spillcache::Error::DefragFailed(_))),
        "{failed:?}"
    );
    for i in [1, 3, 5, 6, 7] {
        assert_eq!(cache.get(&[i]).unwrap(), Some(value(i)), "{i}");
    }

    // One value's blocks, plus one, free: the values move one at a time.
    let needed = (len as u64).div_ceil(block) + 1;
    filler.set_len(filled - needed * block).unwrap();
    let end_before = cache.size_on_disk();
    assert!(cache.defrag(WAIT).unwrap());
    let stats = cache.stats();
    assert_eq!(
        (stats.compactions, stats.defrag_failures),
        (1, 1),
        "{stats:?}"
    );
    assert!(cache.size_on_disk() < end_before, "{stats:?}");
    for i in [1, 3, 5, 6, 7] {
        assert_eq!(cache.get(&[i]).unwrap(), Some(value(i)), "{i}");
    }
    cache.check_invariants().unwrap();
    drop(filler);
}
