//! Pack indexes and packs written by `git repack` and `git index-pack`, read
//! by the `git-idx` example's code and compared with `git show-index` and
//! `git verify-pack -v`.

#[path = "../../git_idx/idx.rs"]
mod idx;
#[path = "../../git_idx/listing.rs"]
mod listing;
#[path = "../../git_idx/pack.rs"]
mod pack;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockdev::{Errno, Fault, FaultyDevice};
use pagecache::PageCache;

use super::input::{self, StoreOptions};
use super::object::Remote;
use super::support::{TempDir, caches, file_caches, noise, require_tool, run};
use idx::{IdxError, hex};
use listing::{ListError, Listing, list};
use pack::{ObjectKind, Pack, PackError};

/// A scratch git repository driven through the real `git` binary, isolated
/// from the user's and the system's configuration.
struct Repo {
    dir: TempDir,
    git: PathBuf,
}

impl Repo {
    /// A new repository, or `None` when git is absent (outside CI).
    fn new(label: &str) -> Option<Repo> {
        let git = require_tool("git")?;
        let repo = Repo {
            dir: TempDir::new(label),
            git,
        };
        fs::create_dir(repo.work()).expect("create the work tree");
        repo.git(&["init", "-q"]);
        Some(repo)
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.git);
        command.current_dir(self.work());
        for inherited in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
        ] {
            command.env_remove(inherited);
        }
        command
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            // Older gits ignore GIT_CONFIG_GLOBAL and read $HOME/.gitconfig.
            .env("HOME", self.dir.path())
            .env_remove("XDG_CONFIG_HOME")
            .env("GIT_AUTHOR_NAME", "Real Files")
            .env("GIT_AUTHOR_EMAIL", "real-files@example.invalid")
            .env("GIT_AUTHOR_DATE", "1700000000 +0000")
            .env("GIT_COMMITTER_NAME", "Real Files")
            .env("GIT_COMMITTER_EMAIL", "real-files@example.invalid")
            .env("GIT_COMMITTER_DATE", "1700000000 +0000")
            .env("LC_ALL", "C");
        command
    }

    fn git(&self, args: &[&str]) -> String {
        run(self.command().args(args))
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.work().join(name);
        fs::create_dir_all(path.parent().expect("inside the work tree")).expect("mkdir");
        fs::write(path, bytes).expect("write a work-tree file");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Three commits of files from 0 bytes to half a megabyte, each version
    /// of the large ones a small edit of the last (so they deltify), and an
    /// annotated tag: every object type git has.
    fn with_history(label: &str) -> Option<Repo> {
        let repo = Repo::new(label)?;
        let big = big_text(12_000);
        let binary = noise(7, 100_000);
        repo.write("empty", b"");
        repo.write("tiny.txt", b"hello\n");
        repo.write("medium.txt", &big[..4_000]);
        repo.write("big.txt", &big);
        repo.write("noise.bin", &binary);
        repo.write("dir/nested/leaf.txt", b"a file two trees down\n");
        repo.commit("first");

        let mut big2 = big.clone();
        big2[100_000..100_006].copy_from_slice(b"EDITED");
        big2.extend_from_slice(b"one more line\n");
        let mut binary2 = binary.clone();
        binary2[50_000..50_010].fill(0);
        repo.write("big.txt", &big2);
        repo.write("noise.bin", &binary2);
        repo.commit("second");

        big2.splice(200_000..200_000, b"inserted line\n".iter().copied());
        repo.write("big.txt", &big2);
        repo.write("tiny.txt", b"hello again\n");
        repo.commit("third");
        repo.git(&["tag", "-a", "v1", "-m", "an annotated tag object"]);
        Some(repo)
    }

    /// Repacks everything into one pack, with `OFS_DELTA`s or `REF_DELTA`s,
    /// and returns its `.idx` and `.pack`.
    fn repack(&self, offset_deltas: bool) -> (PathBuf, PathBuf) {
        let use_offsets = format!("repack.useDeltaBaseOffset={offset_deltas}");
        self.git(&[
            "-c",
            &use_offsets,
            "repack",
            "-a",
            "-d",
            "-f",
            "-q",
            "--window=250",
            "--depth=50",
        ]);
        let pack_dir = self.work().join(".git/objects/pack");
        let packs: Vec<PathBuf> = fs::read_dir(&pack_dir)
            .expect("the pack directory exists after a repack")
            .map(|entry| entry.expect("read the pack directory").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "pack"))
            .collect();
        assert_eq!(packs.len(), 1, "repack -a -d leaves one pack: {packs:?}");
        let pack = packs[0].clone();
        (pack.with_extension("idx"), pack)
    }

    /// Indexes a copy of `pack` with `git index-pack`, putting every offset
    /// above `threshold` in the 8-byte offset table (as git does past
    /// 2 GiB with its default threshold); returns the new `.idx` and `.pack`.
    fn index_pack_with_large_offsets(&self, pack: &Path, threshold: u64) -> (PathBuf, PathBuf) {
        let copy = self.dir.path().join(format!("large-{threshold}.pack"));
        fs::copy(pack, &copy).expect("copy the pack");
        let large_idx = copy.with_extension("idx");
        let index_version = format!("--index-version=2,{threshold}");
        run(self.command().args([
            "index-pack".as_ref(),
            index_version.as_ref(),
            "-o".as_ref(),
            large_idx.as_os_str(),
            copy.as_os_str(),
        ]));
        (large_idx, copy)
    }

    /// `git show-index` of `idx`: (offset, SHA-1, CRC32) per object.
    fn show_index(&self, idx: &Path) -> Vec<(u64, String, u32)> {
        let stdin = fs::File::open(idx).expect("open the index for show-index");
        let output = run(self.command().arg("show-index").stdin(stdin));
        output
            .lines()
            .map(|line| {
                let mut fields = line.split_whitespace();
                let offset = fields.next().and_then(|f| f.parse().ok());
                let sha1 = fields.next().map(str::to_owned);
                let crc = fields
                    .next()
                    .and_then(|f| f.strip_prefix('(')?.strip_suffix(')'))
                    .and_then(|f| u32::from_str_radix(f, 16).ok());
                match (offset, sha1, crc) {
                    (Some(offset), Some(sha1), Some(crc)) => (offset, sha1, crc),
                    _ => panic!("unexpected show-index line {line:?}"),
                }
            })
            .collect()
    }

    /// `git verify-pack -v` of `idx`, by SHA-1.
    fn verify_pack(&self, idx: &Path) -> HashMap<String, Verified> {
        let output = self.git(&["verify-pack", "-v", idx.to_str().expect("UTF-8 path")]);
        output
            .lines()
            .filter(|line| line.split(' ').next().is_some_and(is_sha1_hex))
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let number = |i: usize| -> u64 {
                    fields[i]
                        .parse()
                        .unwrap_or_else(|_| panic!("field {i} of {line:?}"))
                };
                let verified = Verified {
                    kind: fields[1].to_owned(),
                    size: number(2),
                    packed_len: number(3),
                    offset: number(4),
                    base: fields.get(6).map(|&base| base.to_owned()),
                };
                (fields[0].to_owned(), verified)
            })
            .collect()
    }
}

/// One object line of `git verify-pack -v`.
#[derive(Debug)]
struct Verified {
    /// The object's type, resolved through any deltas.
    kind: String,
    /// The size in the object's header (for a delta, of the delta).
    size: u64,
    /// Bytes in the pack.
    packed_len: u64,
    offset: u64,
    /// The delta base's SHA-1, for a delta.
    base: Option<String>,
}

fn is_sha1_hex(word: &str) -> bool {
    word.len() == 40 && word.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Numbered lines of hex noise: text that compresses about 2:1.
fn big_text(lines: usize) -> Vec<u8> {
    let noise = noise(3, lines * 12);
    noise
        .chunks(12)
        .enumerate()
        .flat_map(|(i, chunk)| format!("{i:06} {}\n", hex(chunk)).into_bytes())
        .collect()
}

/// Checks a listing against `git show-index`: same objects, offsets and
/// CRCs, in the same order, and the same printed line per object.
fn assert_matches_show_index(listing: &Listing, shown: &[(u64, String, u32)]) {
    assert_eq!(listing.rows.len(), shown.len());
    assert_eq!(listing.objects as usize, shown.len());
    let printed = listing.to_string();
    let mut lines = printed.lines();
    assert!(
        lines
            .next()
            .is_some_and(|line| line.starts_with("# pack index v2: "))
    );
    for ((row, (offset, sha1, crc)), line) in listing.rows.iter().zip(shown).zip(lines) {
        assert_eq!(hex(&row.entry.sha1), *sha1);
        assert_eq!(row.entry.offset, *offset, "offset of {sha1}");
        assert_eq!(row.entry.crc32, *crc, "CRC32 of {sha1}");
        assert!(
            line.starts_with(&format!("{sha1} {offset} {crc:08x}")),
            "printed {line:?}"
        );
    }
}

/// Checks a listing with a pack against `git verify-pack -v`; returns how
/// many objects were deltas of each kind (OFS_DELTA, REF_DELTA).
fn assert_matches_verify_pack(
    listing: &Listing,
    verified: &HashMap<String, Verified>,
) -> (usize, usize) {
    assert_eq!(listing.rows.len(), verified.len());
    let sha1_at: HashMap<u64, String> = listing
        .rows
        .iter()
        .map(|row| (row.entry.offset, hex(&row.entry.sha1)))
        .collect();
    let (mut ofs_deltas, mut ref_deltas) = (0, 0);
    for row in &listing.rows {
        let sha1 = hex(&row.entry.sha1);
        let expected = &verified[&sha1];
        let packed = row.packed.expect("listed with a pack");
        assert_eq!(row.entry.offset, expected.offset, "{sha1}");
        assert_eq!(packed.header.size, expected.size, "size of {sha1}");
        assert_eq!(
            packed.packed_len, expected.packed_len,
            "packed size of {sha1}"
        );
        let base = match packed.header.kind {
            ObjectKind::OfsDelta { base_offset } => {
                ofs_deltas += 1;
                assert!(base_offset < row.entry.offset);
                Some(sha1_at[&base_offset].clone())
            }
            ObjectKind::RefDelta { base } => {
                ref_deltas += 1;
                let base_sha1 = hex(&base);
                assert_eq!(
                    packed.ref_base_offset,
                    Some(verified[&base_sha1].offset),
                    "the index finds the base of {sha1}"
                );
                Some(base_sha1)
            }
            kind => {
                assert_eq!(kind.name(), expected.kind, "type of {sha1}");
                None
            }
        };
        assert_eq!(base, expected.base, "delta base of {sha1}");
    }
    (ofs_deltas, ref_deltas)
}

#[test]
fn git_idx_lists_what_git_show_index_lists() {
    let Some(repo) = Repo::with_history("show-index") else {
        return;
    };
    let (idx, _) = repo.repack(true);
    let shown = repo.show_index(&idx);
    assert!(shown.len() >= 15, "a history of {} objects", shown.len());
    for cache in file_caches(&idx) {
        let listing = list(&cache, None::<&PageCache<fs::File>>).expect("git's index lists");
        assert_eq!(listing.large_offsets, 0);
        assert_matches_show_index(&listing, &shown);
    }
}

#[test]
fn git_pack_headers_match_verify_pack_with_offset_deltas() {
    let Some(repo) = Repo::with_history("ofs-delta") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let verified = repo.verify_pack(&idx);
    for (idx_cache, pack_cache) in file_caches(&idx).iter().zip(file_caches(&pack)) {
        let listing = list(idx_cache, Some(&pack_cache)).expect("git's pack lists");
        let pack_header = listing.pack.expect("listed with a pack");
        assert_eq!(pack_header.version, 2);
        assert_eq!(pack_header.objects, listing.objects);
        let (ofs_deltas, ref_deltas) = assert_matches_verify_pack(&listing, &verified);
        assert!(ofs_deltas >= 2, "the edited files deltify: {ofs_deltas}");
        assert_eq!(ref_deltas, 0);
        for kind in ["commit", "tree", "blob", "tag"] {
            assert!(
                listing.to_string().contains(&format!(" {kind} ")),
                "a {kind}"
            );
        }
        if pack_cache.page_size() == 64 {
            // The tiny caches really did straddle and evict.
            assert!(pack_cache.stats().evictions > 0);
            assert!(idx_cache.stats().evictions > 0);
        }
    }
}

#[test]
fn git_pack_headers_match_verify_pack_with_ref_deltas() {
    let Some(repo) = Repo::with_history("ref-delta") else {
        return;
    };
    let (idx, pack) = repo.repack(false);
    let verified = repo.verify_pack(&idx);
    for (idx_cache, pack_cache) in file_caches(&idx).iter().zip(file_caches(&pack)) {
        let listing = list(idx_cache, Some(&pack_cache)).expect("git's pack lists");
        let (ofs_deltas, ref_deltas) = assert_matches_verify_pack(&listing, &verified);
        assert_eq!(ofs_deltas, 0);
        assert!(ref_deltas >= 2, "the edited files deltify: {ref_deltas}");
        assert!(listing.to_string().contains(" ref-delta "));
    }
}

#[test]
fn git_idx_reads_64_bit_offsets_written_by_index_pack() {
    let Some(repo) = Repo::with_history("large-offsets") else {
        return;
    };
    let (_, pack) = repo.repack(true);
    let threshold = 100_000u64;
    let (large_idx, copy) = repo.index_pack_with_large_offsets(&pack, threshold);
    let shown = repo.show_index(&large_idx);
    let verified = repo.verify_pack(&large_idx);
    let above = shown
        .iter()
        .filter(|(offset, ..)| *offset > threshold)
        .count();
    assert!(above >= 3, "{above} objects above the threshold");
    for (idx_cache, pack_cache) in file_caches(&large_idx).iter().zip(file_caches(&copy)) {
        let listing = list(idx_cache, Some(&pack_cache)).expect("index-pack's index lists");
        assert_eq!(listing.large_offsets, above as u64);
        assert_matches_show_index(&listing, &shown);
        assert_matches_verify_pack(&listing, &verified);
    }
}

#[test]
fn git_truncated_idx_is_an_error_at_every_length() {
    let Some(repo) = Repo::with_history("truncated-idx") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let (large_idx, _) = repo.index_pack_with_large_offsets(&pack, 100_000);
    for idx in [idx, large_idx] {
        let bytes = fs::read(&idx).expect("read the index");
        for len in 0..bytes.len() {
            let prefix = bytes[..len].to_vec();
            // The tiny cache at every length, all shapes at some.
            let mut shapes = vec![PageCache::with_geometry(prefix.clone(), 64, 4).expect("cache")];
            if len % 11 == 0 {
                shapes.extend(caches(&prefix));
            }
            for cache in shapes {
                let err = list(&cache, None::<&PageCache<Vec<u8>>>)
                    .expect_err("a truncated index does not list");
                assert!(err.to_string().contains("truncated"), "{len} bytes: {err}");
            }
        }
    }
}

#[test]
fn git_truncated_pack_is_an_error() {
    let Some(repo) = Repo::with_history("truncated-pack") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let pack_bytes = fs::read(&pack).expect("read the pack");
    let idx_cache = PageCache::new(fs::File::open(&idx).expect("open the index")).expect("cache");
    let full = list(
        &idx_cache,
        Some(&PageCache::new(pack_bytes.clone()).expect("cache")),
    )
    .expect("the whole pack lists");
    let header_ends: Vec<(u64, u64)> = full
        .rows
        .iter()
        .map(|row| {
            let packed = row.packed.expect("listed with a pack");
            (
                row.entry.offset,
                row.entry.offset + packed.header.header_len,
            )
        })
        .collect();
    // Every cut in and around the pack header and each object header, and
    // one every 499 bytes elsewhere.
    let mut cuts: Vec<usize> = (0..64).chain((0..pack_bytes.len()).step_by(499)).collect();
    for &(start, end) in &header_ends {
        cuts.extend(start as usize..end as usize + 21);
    }
    cuts.push(pack_bytes.len() - 1);
    cuts.retain(|&cut| cut < pack_bytes.len());
    for &cut in &cuts {
        let truncated = PageCache::with_geometry(pack_bytes[..cut].to_vec(), 64, 4).expect("cache");
        // The index's copy of the pack checksum no longer matches the end.
        let err = list(&idx_cache, Some(&truncated)).expect_err("a truncated pack does not list");
        assert!(err.to_string().contains("truncated"), "{cut} bytes: {err}");
        // And the header reader alone, which knows no checksum, never reads
        // a header that runs into the last 20 bytes or past the end.
        let Ok(pack) = Pack::open(&truncated) else {
            assert!(cut < 32, "a {cut}-byte pack has a header and checksum");
            continue;
        };
        for &(start, end) in &header_ends {
            let result = pack.object_header(start);
            if (cut as u64) < end + 20 {
                let err = result.expect_err("the header is cut");
                assert!(
                    matches!(err, PackError::Truncated { .. }),
                    "{cut} bytes: {err}"
                );
            }
        }
    }
}

#[test]
fn git_wrong_magic_version_and_corrupt_tables_are_clear_errors() {
    let Some(repo) = Repo::with_history("corrupt") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let idx_bytes = fs::read(&idx).expect("read the index");
    let pack_bytes = fs::read(&pack).expect("read the pack");
    let list_idx = |bytes: Vec<u8>| {
        list(
            &PageCache::new(bytes).expect("cache"),
            None::<&PageCache<Vec<u8>>>,
        )
    };
    let list_both = |idx: Vec<u8>, pack: Vec<u8>| {
        list(
            &PageCache::with_geometry(idx, 64, 4).expect("cache"),
            Some(&PageCache::with_geometry(pack, 64, 4).expect("cache")),
        )
    };

    // A pack given as its index.
    let err = list_idx(pack_bytes.clone()).unwrap_err();
    assert!(matches!(err, ListError::Idx(IdxError::BadMagic(magic)) if magic == *b"PACK"));
    assert!(
        err.to_string().contains("not a version 2 pack index"),
        "{err}"
    );

    let mut version3 = idx_bytes.clone();
    version3[4..8].copy_from_slice(&3u32.to_be_bytes());
    let err = list_idx(version3).unwrap_err();
    assert!(
        matches!(err, ListError::Idx(IdxError::UnsupportedVersion(3))),
        "{err}"
    );

    // Fanout entry 0x10 below entry 0x0f.
    let mut fanout = idx_bytes.clone();
    let at_0x0f = 8 + 4 * 0x0f;
    fanout[at_0x0f..at_0x0f + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = list_idx(fanout).unwrap_err();
    assert!(
        matches!(
            err,
            ListError::Idx(IdxError::FanoutDecreases { byte: 0x10, .. })
        ),
        "{err}"
    );

    // The first two SHA-1s swapped, in the same bucket or not.
    let mut swapped = idx_bytes.clone();
    let (first, second) = swapped[1032..1072].split_at_mut(20);
    first.swap_with_slice(second);
    let err = list_idx(swapped).unwrap_err();
    assert!(
        matches!(err, ListError::Idx(IdxError::Unsorted { .. })),
        "{err}"
    );

    // A pack of the same objects, packed differently.
    let other = Repo::with_history("other").expect("git is present");
    let (_, other_pack) = other.repack(false);
    let other_pack = fs::read(other_pack).expect("read the other pack");
    let err = list_both(idx_bytes.clone(), other_pack).unwrap_err();
    assert!(matches!(err, ListError::ChecksumMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("not the pack this index was made for"),
        "{err}"
    );

    // The pack says it holds one object more than the index lists.
    let mut one_more = pack_bytes.clone();
    one_more[8..12].copy_from_slice(&(full_count(&idx_bytes) + 1).to_be_bytes());
    let err = list_both(idx_bytes.clone(), one_more).unwrap_err();
    assert!(matches!(err, ListError::CountMismatch { .. }), "{err}");

    let mut not_pack = pack_bytes.clone();
    not_pack[..4].copy_from_slice(b"KCAP");
    let err = list_both(idx_bytes.clone(), not_pack).unwrap_err();
    assert!(
        matches!(err, ListError::Pack(PackError::BadMagic(_))),
        "{err}"
    );

    // Type 5 does not exist; type 6 with a base before the pack's start
    // is not a delta of anything.
    let first_object = 12;
    let mut bad_type = pack_bytes.clone();
    bad_type[first_object] = (bad_type[first_object] & 0x8f) | (5 << 4);
    let err = list_both(idx_bytes.clone(), bad_type).unwrap_err();
    assert!(
        matches!(
            err,
            ListError::Pack(PackError::BadType {
                offset: 12,
                type_bits: 5
            })
        ),
        "{err}"
    );
    let mut base_before_start = pack_bytes.clone();
    base_before_start[first_object] = (base_before_start[first_object] & 0x8f) | (6 << 4);
    let err = list_both(idx_bytes.clone(), base_before_start).unwrap_err();
    assert!(
        matches!(
            err,
            ListError::Pack(PackError::BaseOutOfPack { offset: 12, .. })
        ),
        "{err}"
    );
}

fn full_count(idx_bytes: &[u8]) -> u32 {
    let last = 8 + 4 * 255;
    u32::from_be_bytes(idx_bytes[last..last + 4].try_into().expect("4 bytes"))
}

#[test]
fn git_device_errors_are_reported_at_every_read() {
    let Some(repo) = Repo::with_history("device-errors") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let idx_bytes = fs::read(&idx).expect("read the index");
    let pack_bytes = fs::read(&pack).expect("read the pack");
    // Fail the n-th device read of the index, then of the pack, for every
    // n until the listing needs fewer reads than that.
    for failing_file in ["idx", "pack"] {
        for nth in 1.. {
            let idx_device = FaultyDevice::new(idx_bytes.clone());
            let pack_device = FaultyDevice::new(pack_bytes.clone());
            let fault = Fault::Nth(nth, Errno::IO);
            match failing_file {
                "idx" => idx_device.fail_reads(fault),
                _ => pack_device.fail_reads(fault),
            }
            let idx_cache = PageCache::with_geometry(idx_device, 64, 4).expect("cache");
            let pack_cache = PageCache::with_geometry(pack_device, 64, 4).expect("cache");
            match list(&idx_cache, Some(&pack_cache)) {
                Ok(_) => {
                    assert!(nth > 1, "the {failing_file} is read at least once");
                    break;
                }
                Err(err) => {
                    let message = err.to_string();
                    assert!(
                        message.contains("device I/O failed"),
                        "read {nth}: {message}"
                    );
                    assert!(matches!(
                        err,
                        ListError::Idx(IdxError::Read(_)) | ListError::Pack(PackError::Read(_))
                    ));
                }
            }
        }
    }
}

#[test]
fn git_idx_finds_every_object_by_name() {
    let Some(repo) = Repo::with_history("find") else {
        return;
    };
    let (idx, _) = repo.repack(true);
    for cache in file_caches(&idx) {
        let index = idx::PackIndex::open(&cache).expect("git's index opens");
        for entry in 0..index.len() {
            let sha1 = index.entry(entry).expect("an entry").sha1;
            assert_eq!(index.find(&sha1).expect("search"), Some(entry));
        }
        let mut absent = index.entry(0).expect("an entry").sha1;
        absent[19] ^= 1;
        assert_eq!(index.find(&absent).expect("search"), None);
    }
}

#[test]
fn git_any_flipped_byte_in_the_index_or_an_object_header_is_no_panic() {
    let Some(repo) = Repo::with_history("flips") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let (large_idx, large_pack) = repo.index_pack_with_large_offsets(&pack, 100_000);
    for (idx, pack) in [(idx, pack), (large_idx, large_pack)] {
        let idx_bytes = fs::read(&idx).expect("read the index");
        let pack_bytes = fs::read(&pack).expect("read the pack");
        let list_both = |idx: Vec<u8>, pack: Vec<u8>| {
            list(
                &PageCache::with_geometry(idx, 64, 4).expect("cache"),
                Some(&PageCache::with_geometry(pack, 64, 4).expect("cache")),
            )
        };
        let full = list_both(idx_bytes.clone(), pack_bytes.clone()).expect("intact files list");
        for at in 0..idx_bytes.len() {
            let mut flipped = idx_bytes.clone();
            flipped[at] ^= 0xff;
            // Either an error that says something, or a listing of the
            // same length (a flipped CRC or offset byte is not detectable
            // without hashing the pack).
            match list_both(flipped, pack_bytes.clone()) {
                Err(err) => assert!(!err.to_string().is_empty()),
                Ok(listing) => assert_eq!(listing.rows.len(), full.rows.len(), "byte {at}"),
            }
        }
        let mut header_bytes: Vec<usize> = (0..12).collect();
        for row in &full.rows {
            let packed = row.packed.expect("listed with a pack");
            let start = row.entry.offset as usize;
            header_bytes.extend(start..start + packed.header.header_len as usize);
        }
        for at in header_bytes {
            for flip in [0x80, 0x70, 0x7f, 0xff] {
                let mut flipped = pack_bytes.clone();
                flipped[at] ^= flip;
                if let Err(err) = list_both(idx_bytes.clone(), flipped) {
                    assert!(!err.to_string().is_empty());
                }
            }
        }
    }
}

/// What `git-idx --pack` prints for `idx` and `pack`, each a path or a URL
/// of a store `options` reach.
fn git_idx_output(idx: &str, pack: &str, options: &StoreOptions) -> String {
    let open = |source: &str| PageCache::new(input::open(source, options).unwrap()).unwrap();
    let (idx, pack) = (open(idx), open(pack));
    list(&idx, Some(&pack))
        .expect("git's pack lists")
        .to_string()
}

#[test]
fn git_idx_prints_the_same_for_object_urls() {
    let Some(repo) = Repo::with_history("url") else {
        return;
    };
    let (idx, pack) = repo.repack(true);
    let remote = Remote::start();
    let (idx_url, pack_url) = (remote.upload(&idx), remote.upload(&pack));
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let local = git_idx_output(&path(&idx), &path(&pack), &StoreOptions::Environment);
    let remote = git_idx_output(&idx_url, &pack_url, &remote.options());
    assert_eq!(remote, local);
    assert!(local.lines().count() >= 15, "{local}");
}
