//! The behaviour kitty's own disk-cache tests check, on this crate's API,
//! with the file layouts written out.

mod common;

use blockdev::{MemDevice, ReadAt};
use common::{TempDir, WAIT, mem_builder};
use spillcache::{Error, SpillCache};

/// kitty's test values: the decimal digits of `i`, repeated `i` times.
fn digits(i: usize) -> Vec<u8> {
    i.to_string().repeat(i).into_bytes()
}

fn key(i: usize) -> Vec<u8> {
    i.to_string().into_bytes()
}

/// Adds kitty's 25 entries (`0` is empty) and waits for them.
fn twenty_five(cache: &SpillCache<MemDevice>) {
    for i in 0..25 {
        cache.add(&key(i), &digits(i)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
}

fn assert_all_read_back(cache: &SpillCache<MemDevice>, entries: &[(Vec<u8>, Vec<u8>)]) {
    for (k, v) in entries {
        assert_eq!(cache.get(k).unwrap().as_ref(), Some(v), "key {k:?}");
    }
}

#[test]
fn sequential_adds_are_laid_out_in_add_order() {
    let cache = mem_builder().build().unwrap();
    twenty_five(&cache);
    // Lengths 1..=9 for one digit, 20..=48 for two.
    let expected = [
        (1, 0),
        (2, 1),
        (3, 3),
        (4, 6),
        (5, 10),
        (6, 15),
        (7, 21),
        (8, 28),
        (9, 36),
        (10, 45),
        (11, 65),
        (12, 87),
        (24, 507),
    ];
    for (i, offset) in expected {
        assert_eq!(cache.disk_offset(&key(i)), Some(offset), "key {i}");
    }
    assert_eq!(
        cache.disk_offset(b"0"),
        None,
        "an empty value takes no space"
    );
    assert_eq!(cache.get(b"0").unwrap(), Some(Vec::new()));
    assert_eq!(cache.total_size(), 555);
    assert_eq!(cache.size_on_disk(), 555);
    assert!(cache.holes().is_empty());
    assert_eq!(cache.current_file().size().unwrap(), 555);
}

#[test]
fn removals_leave_holes_of_their_sizes_and_exact_fits_fill_them() {
    let cache = mem_builder().build().unwrap();
    twenty_five(&cache);
    let mut live: Vec<(Vec<u8>, Vec<u8>)> = (0..25).map(|i| (key(i), digits(i))).collect();

    let mut holes = Vec::new();
    for (i, hole) in [(2, (1, 2)), (4, (6, 4)), (6, (15, 6)), (8, (28, 8))] {
        assert!(cache.remove(&key(i)));
        live.retain(|(k, _)| *k != key(i));
        holes.push(hole);
        assert_eq!(cache.holes(), holes);
        assert_eq!(cache.get(&key(i)).unwrap(), None);
        assert_eq!(cache.size_on_disk(), 555);
        assert_all_read_back(&cache, &live);
    }

    // Largest first, so no small value lands in a large hole.
    for (fill, len, offset) in [(b'A', 8, 28), (b'B', 6, 15), (b'C', 4, 6), (b'D', 2, 1)] {
        let value = vec![fill; len];
        cache.add(&value, &value).unwrap();
        assert!(cache.wait_for_write(WAIT).unwrap());
        assert_eq!(cache.disk_offset(&value), Some(offset));
        holes.retain(|&(o, _)| o != offset);
        assert_eq!(cache.holes(), holes);
        assert_eq!(cache.size_on_disk(), 555, "the file did not grow");
        live.push((value.clone(), value));
        assert_all_read_back(&cache, &live);
    }
    cache.check_invariants().unwrap();
}

#[test]
fn clear_leaves_an_empty_file() {
    let cache = mem_builder().build().unwrap();
    twenty_five(&cache);
    cache.clear().unwrap();
    assert_eq!(cache.size_on_disk(), 0);
    assert_eq!(
        cache.current_file().size().unwrap(),
        0,
        "truncated before clear returned"
    );
    assert_eq!((cache.len(), cache.total_size()), (0, 0));
    assert_eq!(cache.get(b"3").unwrap(), None);
    // And the cache is usable again from offset 0.
    cache.add(b"again", b"xyz").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.disk_offset(b"again"), Some(0));
}

#[test]
fn defrag_shrinks_the_file_and_keeps_every_value() {
    let cache = mem_builder().build().unwrap();
    twenty_five(&cache);
    let before = cache.size_on_disk();
    // A fixed order standing in for kitty's random one: remove until the
    // live bytes are at most a third of the file.
    let order = [
        13, 2, 21, 7, 18, 24, 5, 11, 16, 23, 9, 20, 1, 14, 22, 17, 19,
    ];
    let mut live: Vec<usize> = (0..25).collect();
    for i in order {
        if cache.total_size() <= before / 3 {
            break;
        }
        assert!(cache.remove(&key(i)));
        live.retain(|&j| j != i);
    }
    assert!(cache.total_size() <= before / 3);
    cache.add(b"trigger defrag", b"XXX").unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert!(
        cache.size_on_disk() < before,
        "{} >= {before}",
        cache.size_on_disk()
    );
    assert!(cache.stats().defrags >= 1);
    for &i in &live {
        assert_eq!(cache.get(&key(i)).unwrap(), Some(digits(i)), "key {i}");
    }
    assert_eq!(cache.get(b"trigger defrag").unwrap(), Some(b"XXX".to_vec()));

    // A forced defrag packs the file exactly.
    assert!(cache.defrag(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), cache.total_size());
    assert!(cache.holes().is_empty());
    assert_eq!(cache.current_file().size().unwrap(), cache.total_size());
    cache.check_invariants().unwrap();
}

#[test]
fn defrag_counts_each_entry_once() {
    // kitty's defrag counted entries twice and sized the new file for double.
    let cache = mem_builder().defrag_factor(100.0).build().unwrap();
    for i in 0..10u8 {
        cache.add(&[i], &[i; 100]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    for i in (0..10u8).step_by(2) {
        cache.remove(&[i]);
    }
    assert!(cache.defrag(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 500);
    assert_eq!(cache.stats().bytes_defragged, 500);
    let offsets: Vec<_> = (1..10u8)
        .step_by(2)
        .map(|i| cache.disk_offset(&[i]).unwrap())
        .collect();
    assert_eq!(offsets, [0, 100, 200, 300, 400], "packed in file order");
    for i in (1..10u8).step_by(2) {
        assert_eq!(cache.get(&[i]).unwrap(), Some(vec![i; 100]));
    }
}

#[test]
fn ram_copies_are_counted_and_dropped_by_predicate() {
    let cache = mem_builder().build().unwrap();
    let frame_key = |f: usize| format!("1:{f}").into_bytes();
    for f in 0..32 {
        cache
            .add(&frame_key(f), format!("{f:02}").repeat(8).as_bytes())
            .unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 32 * 16);
    assert_eq!(cache.num_cached_in_ram(), 0);
    for f in 0..32 {
        cache.get(&frame_key(f)).unwrap().unwrap();
    }
    assert_eq!(cache.num_cached_in_ram(), 0, "a plain get keeps no copy");
    for f in 0..32 {
        let value = cache.get_and_store_in_ram(&frame_key(f)).unwrap().unwrap();
        assert_eq!(value, format!("{f:02}").repeat(8).into_bytes());
        assert_eq!(cache.num_cached_in_ram(), f + 1);
    }
    assert_eq!(cache.remove_from_ram(|k| k.starts_with(b"2:")), 0);
    assert_eq!(cache.remove_from_ram(|k| k.starts_with(b"1:")), 32);
    assert_eq!(cache.num_cached_in_ram(), 0);
    assert_eq!(cache.get(b"1:31").unwrap(), Some(b"31".repeat(8)));
    cache.check_invariants().unwrap();
}

#[test]
fn ram_budget_keeps_copies_until_full() {
    let cache = mem_builder().ram_budget(250).build().unwrap();
    for i in 0..5u8 {
        cache.add(&[i], &[i; 100]).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.num_cached_in_ram(), 2, "two of 100 bytes fit in 250");
    assert_eq!(cache.size_on_disk(), 500, "all are on disk anyway");
}

#[test]
fn small_holes_are_not_tracked() {
    let cache = mem_builder()
        .small_hole_threshold(512)
        .defrag_factor(20.0)
        .build()
        .unwrap();
    cache.add(b"1", &[b'1'; 1024]).unwrap();
    cache.add(b"2", &[b'2'; 1024]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 2048);
    cache.remove(b"1");
    assert_eq!(cache.holes(), [(0, 1024)]);
    assert_eq!(cache.size_on_disk(), 2048);

    cache.add(b"3", &[b'3'; 800]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.disk_offset(b"3"), Some(0));
    assert!(
        cache.holes().is_empty(),
        "the 224-byte rest is below the threshold"
    );
    assert_eq!(cache.size_on_disk(), 2048);

    cache.add(b"4", &[b'4'; 100]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 2148);
    assert!(cache.holes().is_empty());
    cache.remove(b"4");
    assert!(cache.holes().is_empty());
    // kitty keeps 2148 here (its file size); our end of data moves back.
    assert_eq!(cache.size_on_disk(), 2048);

    cache.add(b"5", &[b'5'; 10]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 2058);
    for (k, fill, len) in [(b"2", b'2', 1024), (b"3", b'3', 800), (b"5", b'5', 10)] {
        assert_eq!(cache.get(k).unwrap(), Some(vec![fill; len]));
    }
}

#[test]
fn neighbouring_holes_coalesce_including_offset_zero() {
    let cache = mem_builder().defrag_factor(20.0).build().unwrap();
    for i in 1..=5 {
        cache.add(&key(i), &digits(i)).unwrap();
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.remove(b"2");
    cache.remove(b"4");
    assert_eq!(cache.holes(), [(1, 2), (6, 4)]);
    cache.remove(b"3");
    assert_eq!(cache.holes(), [(1, 9)]);
    cache.remove(b"1");
    assert_eq!(cache.holes(), [(0, 10)]);
    assert_eq!(cache.size_on_disk(), 15);
    cache.remove(b"5");
    assert!(cache.holes().is_empty());
    assert_eq!(cache.size_on_disk(), 0);
}

#[test]
fn the_file_is_truncated_when_the_cache_becomes_empty() {
    let dir = TempDir::new("empty");
    let cache = SpillCache::new(dir.path()).unwrap();
    cache.add(b"a", &[1; 5000]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    let file = cache.current_file();
    assert_eq!(file.metadata().unwrap().len(), 5000);
    cache.remove(b"a");
    // The writer trims when idle; a wait is a barrier only for writes, so
    // poll the file size briefly (a test of eventual state, not speed).
    let deadline = std::time::Instant::now() + WAIT;
    while file.metadata().unwrap().len() != 0 {
        assert!(std::time::Instant::now() < deadline, "file never trimmed");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn memory_only_values_never_reach_the_file() {
    let cache = mem_builder().build().unwrap();
    cache.add_memory_only(b"m", &[9; 300]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.size_on_disk(), 0);
    assert_eq!(cache.current_file().size().unwrap(), 0);
    assert_eq!(cache.get(b"m").unwrap(), Some(vec![9; 300]));
    assert_eq!(
        cache.num_cached_in_ram(),
        0,
        "not a copy of a written value"
    );
    assert_eq!(cache.remove_from_ram(|_| true), 0, "its only copy is kept");
    assert_eq!(cache.get(b"m").unwrap(), Some(vec![9; 300]));

    // Spilled, then made memory-only: its file space is freed.
    cache.add(b"d", &[1; 100]).unwrap();
    cache.add(b"e", &[2; 100]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.add_memory_only(b"d", &[3; 10]).unwrap();
    assert_eq!(cache.holes(), [(0, 100)]);
    assert_eq!(cache.get(b"d").unwrap(), Some(vec![3; 10]));
    assert_eq!(cache.total_size(), 300 + 10 + 100);
}

#[test]
fn overwrite_gets_a_new_position_never_the_old_one_resized() {
    let cache = mem_builder().build().unwrap();
    cache.add(b"a", &[1; 10]).unwrap();
    cache.add(b"b", &[2; 10]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    cache.add(b"a", &[3; 30]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.disk_offset(b"a"), Some(20));
    assert_eq!(cache.holes(), [(0, 10)]);
    assert_eq!(cache.get(b"b").unwrap(), Some(vec![2; 10]));
    assert_eq!(cache.get(b"a").unwrap(), Some(vec![3; 30]));

    // Shrinking: the 30 bytes at the end are freed, the 5 take the best fit.
    cache.add(b"a", &[4; 5]).unwrap();
    assert!(cache.wait_for_write(WAIT).unwrap());
    assert_eq!(cache.disk_offset(b"a"), Some(0));
    assert_eq!(cache.holes(), [(5, 5)]);
    assert_eq!(cache.size_on_disk(), 20);
    assert_eq!(cache.get(b"a").unwrap(), Some(vec![4; 5]));
    cache.check_invariants().unwrap();
}

#[test]
fn keys_longer_than_the_maximum_are_refused() {
    let cache = mem_builder().build().unwrap();
    let long = vec![b'k'; 257];
    assert!(matches!(
        cache.add(&long, b"v"),
        Err(Error::KeyTooLong { len: 257, max: 256 })
    ));
    assert!(matches!(
        cache.add_memory_only(&long, b"v"),
        Err(Error::KeyTooLong { .. })
    ));
    assert!(matches!(cache.get(&long), Err(Error::KeyTooLong { .. })));
    assert!(!cache.remove(&long));
    cache.add(&long[..256], b"v").unwrap();
    assert_eq!(cache.get(&long[..256]).unwrap(), Some(b"v".to_vec()));

    let short = mem_builder().max_key_len(3).build().unwrap();
    assert!(short.add(b"abc", b"").is_ok());
    assert!(matches!(
        short.add(b"abcd", b""),
        Err(Error::KeyTooLong { len: 4, max: 3 })
    ));
}

#[test]
fn invalid_options_are_errors() {
    for factor in [0.0, 0.99, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            mem_builder().defrag_factor(factor).build(),
            Err(Error::InvalidOption {
                option: "defrag_factor",
                ..
            })
        ));
    }
    let backwards = mem_builder().retry_backoff(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(1),
    );
    assert!(matches!(
        backwards.build(),
        Err(Error::InvalidOption {
            option: "retry_backoff",
            ..
        })
    ));
    let zero = mem_builder().retry_backoff(std::time::Duration::ZERO, std::time::Duration::ZERO);
    assert!(matches!(
        zero.build(),
        Err(Error::InvalidOption {
            option: "retry_backoff",
            ..
        })
    ));
}
