//! `git-idx`: lists every object of a git pack index (`.idx`, version 2),
//! and with `--pack` decodes each object's header in the pack, reading both
//! files through a `PageCache` and bincodec's getters.
//!
//! ```text
//! cargo run -p examples --example git-idx -- .git/objects/pack/pack-*.idx \
//!     --pack .git/objects/pack/pack-*.pack
//! cargo run -p examples --example git-idx -- s3://bucket/pack.idx --pack s3://bucket/pack.pack
//! ```
//!
//! Output: a `#` summary line, then per object `<sha1> <offset> <crc32>`,
//! with `--pack` followed by `<type> <size> <packed length>` and, for a
//! delta, `base <offset>` or `base <sha1> @<offset>`. `--stats` prints the
//! page-cache counters to stderr. Either file may be an object URL, read
//! with `objectdev` (the store's options from the environment).

mod idx;
#[path = "../common/input.rs"]
mod input;
mod listing;
mod pack;

use std::io::Write;
use std::process::ExitCode;

use pagecache::PageCache;

use input::{Input, StoreOptions};

const USAGE: &str = "usage: git-idx <pack.idx | URL> [--pack <pack.pack | URL>] [--stats]";

struct Args {
    idx: String,
    pack: Option<String>,
    stats: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut idx = None;
    let mut pack = None;
    let mut stats = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pack" => pack = Some(args.next().ok_or("--pack needs a file")?),
            "--stats" => stats = true,
            "-h" | "--help" => return Err(String::new()),
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if idx.is_none() => idx = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let idx = idx.ok_or("missing the .idx file")?;
    Ok(Args { idx, pack, stats })
}

/// A cache over `source`, an object URL's store options taken from the
/// environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).
fn open(source: &str) -> Result<PageCache<Input>, String> {
    let input = input::open(source, &StoreOptions::Environment)?;
    PageCache::new(input).map_err(|err| format!("cannot read {source}: {err}"))
}

/// The page-cache counters of `cache`, on stderr.
fn print_stats(path: &str, cache: &PageCache<Input>) {
    let stats = cache.stats();
    eprintln!(
        "# {path}: {} bytes, {} page lookups ({} hits), {} device reads, {} evictions",
        cache.size(),
        stats.hits + stats.misses,
        stats.hits,
        stats.device_reads,
        stats.evictions
    );
}

fn run(args: Args) -> Result<(), String> {
    let idx = open(&args.idx)?;
    let pack = args.pack.as_deref().map(open).transpose()?;
    let listing = listing::list(&idx, pack.as_ref()).map_err(|err| err.to_string())?;
    let mut out = std::io::stdout().lock();
    write!(out, "{listing}").map_err(|err| format!("cannot write the listing: {err}"))?;
    if args.stats {
        print_stats(&args.idx, &idx);
        if let (Some(path), Some(pack)) = (&args.pack, &pack) {
            print_stats(path, pack);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        // An empty message is a request for help.
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("git-idx: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("git-idx: error: {message}");
            ExitCode::FAILURE
        }
    }
}
