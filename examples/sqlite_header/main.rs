//! `sqlite-header`: prints a SQLite database's page size, page count, text
//! encoding, schema cookie and user version from its 100-byte header, read
//! through a `PageCache` and bincodec's getters.
//!
//! ```text
//! cargo run -p examples --example sqlite-header -- app.db
//! cargo run -p examples --example sqlite-header -- s3://bucket/app.db
//! ```
//!
//! An object URL is read with `objectdev`, the store's options taken from
//! the environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).

mod header;
#[path = "../common/input.rs"]
mod input;

use std::process::ExitCode;

use pagecache::PageCache;

use header::Header;

const USAGE: &str = "usage: sqlite-header <database | object URL>";

/// The header is all we read: one small page is enough.
fn one_page(input: input::Input) -> Result<PageCache<input::Input>, pagecache::Error> {
    PageCache::with_geometry(input, 4096, 1)
}

fn main() -> ExitCode {
    input::one_input_main("sqlite-header", USAGE, |source, options| {
        input::render(source, options, one_page, Header::read)
    })
}
