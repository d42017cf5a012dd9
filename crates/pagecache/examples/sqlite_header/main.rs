//! `sqlite-header`: prints a SQLite database's page size, page count, text
//! encoding, schema cookie and user version from its 100-byte header, read
//! through a `PageCache` and bincodec's getters.
//!
//! ```text
//! cargo run -p pagecache --example sqlite-header -- app.db
//! ```

mod header;

use std::fs::File;
use std::process::ExitCode;

use pagecache::PageCache;

use header::Header;

const USAGE: &str = "usage: sqlite-header <database>";

fn run(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|err| format!("cannot open {path}: {err}"))?;
    // The header is all we read: one small page is enough.
    let cache = PageCache::with_geometry(file, 4096, 1)
        .map_err(|err| format!("cannot read {path}: {err}"))?;
    let header = Header::read(&cache).map_err(|err| format!("{path}: {err}"))?;
    print!("{header}");
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
            eprintln!("sqlite-header: error: {message}");
            ExitCode::FAILURE
        }
    }
}
