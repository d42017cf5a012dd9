//! `ext4-super`: prints an ext2/3/4 image's block count, block size, inode
//! count, free blocks, volume name, UUID and magic from its superblock,
//! read through a `PageCache` and bincodec's getters.
//!
//! ```text
//! cargo run -p examples --example ext4-super -- disk.img
//! cargo run -p examples --example ext4-super -- s3://bucket/disk.img
//! ```
//!
//! The lines are named as `dumpe2fs -h` names them. An object URL is read
//! with `objectdev`, the store's options taken from the environment
//! (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).

#[path = "../common/input.rs"]
mod input;
mod superblock;

use std::process::ExitCode;

use pagecache::PageCache;

use superblock::Superblock;

const USAGE: &str = "usage: ext4-super <image | object URL>";

fn main() -> ExitCode {
    input::one_input_main("ext4-super", USAGE, |source, options| {
        input::render(source, options, PageCache::new, Superblock::read)
    })
}
