//! What someone who can read the cache file (or list its directory) learns:
//! no plaintext, no file name, no permission for others.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use blockdev::ReadAt;
use common::{TempDir, WAIT};
use spillcache::SpillCache;

const MARKER: &[u8] = b"TOP-SECRET-MARKER-7f3a";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The whole current file, read through the cache's open descriptor.
fn file_bytes(cache: &SpillCache) -> Vec<u8> {
    let file = cache.current_file();
    let mut bytes = vec![0; file.size().unwrap() as usize];
    file.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

fn assert_private(cache: &SpillCache, dir: &TempDir) {
    let meta = cache.current_file().metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.nlink(), 0, "the file has no name");
    let listing: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(listing.is_empty(), "directory holds {listing:?}");
}

#[test]
fn spilled_values_leave_no_plaintext_in_the_file_or_the_directory() {
    let dir = TempDir::new("security");
    let cache = SpillCache::builder(dir.path())
        .defrag_factor(1.0)
        .build()
        .unwrap();
    let mut values = Vec::new();
    for i in 0..64usize {
        let mut value = Vec::new();
        for _ in 0..(1 + i % 7) * 50 {
            value.extend_from_slice(MARKER);
        }
        value.extend_from_slice(&[0u8; 4096]); // zeros would show the keystream
        cache.add(format!("k{i}").as_bytes(), &value).unwrap();
        values.push(value);
    }
    assert!(cache.wait_for_write(WAIT).unwrap());
    let bytes = file_bytes(&cache);
    assert_eq!(bytes.len() as u64, cache.size_on_disk());
    assert!(!contains(&bytes, MARKER), "marker found in the file");
    assert!(
        !contains(&bytes, &[0u8; 64]),
        "a run of zeros: unencrypted padding"
    );
    assert_private(&cache, &dir);

    // The same after a defragmentation into a new file.
    for i in (0..64).step_by(2) {
        cache.remove(format!("k{i}").as_bytes());
    }
    assert!(cache.defrag(WAIT).unwrap());
    let bytes = file_bytes(&cache);
    assert!(!contains(&bytes, MARKER));
    assert_private(&cache, &dir);
    for i in (1..64).step_by(2) {
        assert_eq!(
            cache.get(format!("k{i}").as_bytes()).unwrap().as_ref(),
            Some(&values[i])
        );
    }
}

#[test]
fn equal_values_encrypt_differently() {
    let dir = TempDir::new("fresh-keys");
    let cache = SpillCache::new(dir.path()).unwrap();
    let value = [b'x'; 1000];
    cache.add(b"a", &value).unwrap();
    cache.add(b"b", &value).unwrap();
    cache.add(b"a", &value).unwrap(); // rewritten under a fresh key
    assert!(cache.wait_for_write(WAIT).unwrap());
    let bytes = file_bytes(&cache);
    let a = cache.disk_offset(b"a").unwrap() as usize;
    let b = cache.disk_offset(b"b").unwrap() as usize;
    assert_ne!(bytes[a..a + 1000], bytes[b..b + 1000]);
}

#[test]
fn dropping_the_cache_leaves_the_directory_empty() {
    let dir = TempDir::new("drop");
    {
        let cache = SpillCache::new(dir.path()).unwrap();
        cache.add(b"k", MARKER).unwrap();
        assert!(cache.wait_for_write(WAIT).unwrap());
        assert_private(&cache, &dir);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
