//! ext4 images made by `mkfs.ext4`, read by the `ext4-super` example's
//! code and compared with `dumpe2fs -h`.

#[path = "../../ext4_super/superblock.rs"]
mod superblock;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockdev::{Errno, Fault, FaultyDevice};
use pagecache::PageCache;

use super::input::{StoreOptions, render};
use super::object::Remote;
use super::support::{TempDir, caches, file_caches, require_tool, run};
use superblock::{EXT4_MAGIC, SUPERBLOCK_LEN, SUPERBLOCK_START, Superblock, SuperblockError};

/// The two e2fsprogs tools, or `None` when either is absent (outside CI).
struct E2fsprogs {
    mkfs: PathBuf,
    dumpe2fs: PathBuf,
}

impl E2fsprogs {
    fn find() -> Option<Self> {
        Some(E2fsprogs {
            mkfs: require_tool("mkfs.ext4")?,
            dumpe2fs: require_tool("dumpe2fs")?,
        })
    }

    /// Makes a file system of `size` bytes in `image` with extra `mkfs.ext4`
    /// arguments.
    fn mkfs(&self, image: &Path, size: u64, args: &[&str]) {
        let file = fs::File::create(image).expect("create the image");
        file.set_len(size).expect("size the image");
        drop(file);
        run(Command::new(&self.mkfs)
            .args(["-q", "-F", "-E", "nodiscard"])
            .args(args)
            .arg(image));
    }

    /// `dumpe2fs -h` as field name -> value.
    fn dumpe2fs(&self, image: &Path) -> HashMap<String, String> {
        run(Command::new(&self.dumpe2fs)
            .arg("-h")
            .arg(image)
            .env("LC_ALL", "C"))
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
    }
}

/// mkfs.ext4 argument sets: with and without `64bit`, every block size
/// from 1 KiB to 4 KiB, a label of the full 16 bytes, no label, a set UUID.
const CASES: [(&str, u64, &[&str]); 4] = [
    ("small", 8 << 20, &["-O", "^64bit", "-L", "small-label"]),
    (
        "64bit",
        16 << 20,
        &["-O", "64bit", "-b", "4096", "-L", "sixteen-chars-ab"],
    ),
    (
        "no-label",
        12 << 20,
        &["-b", "2048", "-U", "01234567-89ab-cdef-0123-456789abcdef"],
    ),
    (
        "inodes",
        32 << 20,
        &["-O", "64bit", "-N", "5000", "-L", "inodes"],
    ),
];

fn assert_matches_dumpe2fs(superblock: &Superblock, dumped: &HashMap<String, String>) {
    let field = |name: &str| -> &str {
        dumped
            .get(name)
            .unwrap_or_else(|| panic!("dumpe2fs -h prints {name:?}"))
    };
    assert_eq!(superblock.magic, EXT4_MAGIC);
    assert_eq!(field("Filesystem magic number"), "0xEF53");
    assert_eq!(superblock.block_count.to_string(), field("Block count"));
    assert_eq!(superblock.block_size.to_string(), field("Block size"));
    assert_eq!(superblock.inode_count.to_string(), field("Inode count"));
    assert_eq!(superblock.free_blocks.to_string(), field("Free blocks"));
    assert_eq!(superblock.free_inodes.to_string(), field("Free inodes"));
    assert_eq!(
        superblock.volume_name().as_deref().unwrap_or("<none>"),
        field("Filesystem volume name")
    );
    assert_eq!(
        superblock.uuid().as_deref().unwrap_or("<none>"),
        field("Filesystem UUID")
    );
    let has_64bit = field("Filesystem features")
        .split(' ')
        .any(|f| f == "64bit");
    assert_eq!(superblock.is_64bit, has_64bit);
    // What the example prints: every line named like dumpe2fs's agrees.
    let printed = superblock.to_string();
    let mut compared = 0;
    for line in printed.lines() {
        let (name, value) = line.split_once(':').expect("name: value");
        if let Some(expected) = dumped.get(name) {
            assert_eq!(value.trim(), expected, "printed {name}");
            compared += 1;
        }
    }
    assert_eq!(compared, 8, "{printed}");
}

#[test]
fn ext4_superblock_matches_dumpe2fs() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let dir = TempDir::new("ext4");
    for (name, size, args) in CASES {
        let image = dir.path().join(format!("{name}.img"));
        tools.mkfs(&image, size, args);
        let dumped = tools.dumpe2fs(&image);
        for cache in file_caches(&image) {
            let superblock = Superblock::read(&cache).expect("mkfs.ext4 wrote a superblock");
            assert_matches_dumpe2fs(&superblock, &dumped);
        }
    }
    // The cases cover what they say they cover.
    let read = |name: &str| {
        let cache = PageCache::new(fs::File::open(dir.path().join(name)).expect("image"));
        Superblock::read(&cache.expect("cache")).expect("superblock")
    };
    let small = read("small.img");
    let wide = read("64bit.img");
    let unnamed = read("no-label.img");
    assert!(!small.is_64bit && wide.is_64bit);
    assert_eq!(
        (small.block_size, unnamed.block_size, wide.block_size),
        (1024, 2048, 4096)
    );
    assert_eq!(wide.volume_name().as_deref(), Some("sixteen-chars-ab"));
    assert_eq!(unnamed.volume_name(), None);
    assert_eq!(
        unnamed.uuid().as_deref(),
        Some("01234567-89ab-cdef-0123-456789abcdef")
    );
}

/// The first 2048 bytes of a fresh image: all a superblock read touches.
fn image_head(tools: &E2fsprogs, args: &[&str]) -> Vec<u8> {
    let dir = TempDir::new("ext4-head");
    let image = dir.path().join("fs.img");
    tools.mkfs(&image, 8 << 20, args);
    let mut bytes = fs::read(&image).expect("read the image");
    bytes.truncate((SUPERBLOCK_START + SUPERBLOCK_LEN) as usize);
    bytes
}

fn put_u32_le(bytes: &mut [u8], field: usize, value: u32) {
    let at = SUPERBLOCK_START as usize + field;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn ext4_high_halves_count_only_with_the_64bit_feature() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    // No 8 MiB image has 2^32 blocks, so set the high halves by hand.
    for (args, is_64bit) in [(&["-O", "64bit"], true), (&["-O", "^64bit"], false)] {
        let mut bytes = image_head(&tools, args);
        let before =
            Superblock::read(&PageCache::new(bytes.clone()).expect("cache")).expect("superblock");
        put_u32_le(&mut bytes, 0x150, 1);
        put_u32_le(&mut bytes, 0x158, 2);
        for cache in caches(&bytes) {
            let after = Superblock::read(&cache).expect("superblock");
            let (blocks_hi, free_hi) = if is_64bit { (1 << 32, 2 << 32) } else { (0, 0) };
            assert_eq!(after.block_count, before.block_count + blocks_hi);
            assert_eq!(after.free_blocks, before.free_blocks + free_hi);
        }
    }
}

#[test]
fn ext4_truncated_image_is_an_error_up_to_the_end_of_the_superblock() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let bytes = image_head(&tools, &[]);
    let whole = Superblock::read(&PageCache::new(bytes.clone()).expect("cache"))
        .expect("the first 2048 bytes hold the superblock");
    for len in 0..bytes.len() {
        for cache in caches(&bytes[..len].to_vec()) {
            let err = Superblock::read(&cache).expect_err("truncated");
            assert!(
                matches!(err, SuperblockError::Truncated { size } if size == len as u64),
                "{len} bytes: {err}"
            );
            assert!(err.to_string().starts_with("truncated image"), "{err}");
        }
    }
    assert_eq!(whole.magic, EXT4_MAGIC);
}

#[test]
fn ext4_wrong_magic_or_block_size_is_a_clear_error() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let bytes = image_head(&tools, &[]);
    let mut not_ext4 = bytes.clone();
    not_ext4[SUPERBLOCK_START as usize + 0x38] ^= 0xff;
    let err = Superblock::read(&PageCache::new(not_ext4).expect("cache")).unwrap_err();
    assert!(matches!(err, SuperblockError::BadMagic(0xefac)), "{err}");
    assert!(
        err.to_string().contains("not an ext2/3/4 file system"),
        "{err}"
    );

    let mut huge_blocks = bytes.clone();
    put_u32_le(&mut huge_blocks, 0x18, 7);
    let err = Superblock::read(&PageCache::new(huge_blocks.clone()).expect("cache")).unwrap_err();
    assert!(matches!(err, SuperblockError::BadLogBlockSize(7)), "{err}");
    assert!(err.to_string().contains("blocks of 2^17 bytes"), "{err}");
    put_u32_le(&mut huge_blocks, 0x18, u32::MAX);
    assert!(Superblock::read(&PageCache::new(huge_blocks).expect("cache")).is_err());
}

#[test]
fn ext4_device_error_is_reported() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let device = FaultyDevice::new(image_head(&tools, &[]));
    device.fail_reads(Fault::Always(Errno::IO));
    let err = Superblock::read(&PageCache::new(device).expect("cache")).unwrap_err();
    assert!(matches!(err, SuperblockError::Read(_)), "{err}");
    assert!(err.to_string().contains("device I/O failed"), "{err}");
}

#[test]
fn ext4_any_flipped_superblock_byte_is_no_panic() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let bytes = image_head(&tools, &["-O", "64bit"]);
    let intact = Superblock::read(&PageCache::new(bytes.clone()).expect("cache")).expect("intact");
    for at in SUPERBLOCK_START as usize..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xff;
        let cache = PageCache::with_geometry(flipped, 64, 4).expect("cache");
        match Superblock::read(&cache) {
            // Only the magic and the block size are checked.
            Err(err) => assert!(
                matches!(
                    err,
                    SuperblockError::BadMagic(_) | SuperblockError::BadLogBlockSize(_)
                ),
                "byte {at}: {err}"
            ),
            Ok(superblock) => assert_eq!(superblock.magic, intact.magic),
        }
    }
}

#[test]
fn ext4_super_prints_the_same_for_an_object_url() {
    let Some(tools) = E2fsprogs::find() else {
        return;
    };
    let dir = TempDir::new("ext4-url");
    let remote = Remote::start();
    for (name, size, args) in &CASES[..2] {
        let image = dir.path().join(format!("{name}.img"));
        tools.mkfs(&image, *size, args);
        let url = remote.upload(&image);
        let local = render(
            image.to_str().expect("UTF-8 path"),
            &StoreOptions::Environment,
            PageCache::new,
            Superblock::read,
        );
        let remote = render(&url, &remote.options(), PageCache::new, Superblock::read);
        assert_eq!(remote, local, "{url}");
        assert!(local.unwrap().contains("Block count:"));
    }
}
