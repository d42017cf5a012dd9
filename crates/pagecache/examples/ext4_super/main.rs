//! `ext4-super`: prints an ext2/3/4 image's block count, block size, inode
//! count, free blocks, volume name, UUID and magic from its superblock,
//! read through a `PageCache` and bincodec's getters.
//!
//! ```text
//! cargo run -p pagecache --example ext4-super -- disk.img
//! ```
//!
//! The lines are named as `dumpe2fs -h` names them.

mod superblock;

use std::fs::File;
use std::process::ExitCode;

use pagecache::PageCache;

use superblock::Superblock;

const USAGE: &str = "usage: ext4-super <image>";

fn run(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|err| format!("cannot open {path}: {err}"))?;
    let cache = PageCache::new(file).map_err(|err| format!("cannot read {path}: {err}"))?;
    let superblock = Superblock::read(&cache).map_err(|err| format!("{path}: {err}"))?;
    print!("{superblock}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [path] if !path.starts_with('-') => path,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ext4-super: error: {message}");
            ExitCode::FAILURE
        }
    }
}
