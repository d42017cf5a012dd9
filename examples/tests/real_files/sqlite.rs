//! SQLite databases made by the `sqlite3` shell, read by the
//! `sqlite-header` example's code and compared with the shell's pragmas.

#[path = "../../sqlite_header/header.rs"]
mod header;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockdev::{Errno, Fault, FaultyDevice};
use pagecache::PageCache;

use super::input::{StoreOptions, render};
use super::object::Remote;
use super::support::{TempDir, caches, file_caches, require_tool, run};
use header::{HEADER_LEN, Header, HeaderError, PageCountSource, TextEncoding};

/// Runs `sql` in the `sqlite3` shell on `db`, without any `~/.sqliterc`.
fn sqlite3(shell: &Path, db: &Path, sql: &str) -> String {
    run(Command::new(shell)
        .args(["-batch", "-init", "/dev/null"])
        .arg(db)
        .arg(sql))
}

/// What the shell says about a database, in the header's terms.
#[derive(Debug, PartialEq, Eq)]
struct Pragmas {
    page_size: String,
    page_count: String,
    encoding: String,
    schema_version: String,
    user_version: String,
}

fn pragmas(shell: &Path, db: &Path) -> Pragmas {
    let output = sqlite3(
        shell,
        db,
        "PRAGMA page_size; PRAGMA page_count; PRAGMA encoding; \
         PRAGMA schema_version; PRAGMA user_version;",
    );
    let lines: Vec<String> = output.lines().map(str::to_owned).collect();
    let [
        page_size,
        page_count,
        encoding,
        schema_version,
        user_version,
    ] = <[String; 5]>::try_from(lines).expect("one line per pragma");
    Pragmas {
        page_size,
        page_count,
        encoding,
        schema_version,
        user_version,
    }
}

fn header_pragmas(header: &Header) -> Pragmas {
    Pragmas {
        page_size: header.page_size.to_string(),
        page_count: header.page_count.to_string(),
        encoding: header.text_encoding.name().to_owned(),
        schema_version: header.schema_cookie.to_string(),
        user_version: header.user_version.to_string(),
    }
}

/// The value after `name:` on the printed line starting with it, up to
/// any parenthesis.
fn printed_value<'a>(printed: &'a str, name: &str) -> &'a str {
    let line = printed
        .lines()
        .find(|line| line.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} is printed"));
    let value = &line[name.len() + 1..];
    value.split(" (").next().unwrap_or(value).trim()
}

/// Databases of every page size class, text encoding and journal mode,
/// with a schema changed several times and user versions of both signs.
const CASES: [(&str, &str); 4] = [
    (
        "utf8",
        "PRAGMA user_version=42; CREATE TABLE t(a INTEGER PRIMARY KEY, b BLOB); \
         CREATE INDEX tb ON t(b); \
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<300) \
         INSERT INTO t SELECT x, randomblob(100) FROM c;",
    ),
    (
        "utf16le",
        "PRAGMA page_size=512; PRAGMA encoding='UTF-16le'; PRAGMA user_version=-7; \
         CREATE TABLE t(s TEXT); CREATE TABLE u(x); DROP TABLE u; \
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<500) \
         INSERT INTO t SELECT printf('row %d', x) FROM c;",
    ),
    (
        "utf16be",
        "PRAGMA page_size=65536; PRAGMA encoding='UTF-16be'; \
         PRAGMA user_version=2147483647; CREATE TABLE t(b BLOB); \
         INSERT INTO t VALUES (randomblob(300000));",
    ),
    (
        "wal",
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA user_version=-2147483648; \
         CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    ),
];

fn make_databases(shell: &Path, dir: &TempDir) -> Vec<PathBuf> {
    CASES
        .iter()
        .map(|(name, sql)| {
            let db = dir.path().join(format!("{name}.db"));
            sqlite3(shell, &db, sql);
            db
        })
        .collect()
}

#[test]
fn sqlite_header_matches_the_shells_pragmas() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite");
    for db in make_databases(&shell, &dir) {
        let expected = pragmas(&shell, &db);
        for cache in file_caches(&db) {
            let header = Header::read(&cache).expect("sqlite3 wrote a header");
            assert_eq!(header_pragmas(&header), expected, "{}", db.display());
            assert_eq!(header.page_count_source, PageCountSource::Header);
            let printed = header.to_string();
            assert_eq!(printed_value(&printed, "page size"), expected.page_size);
            assert_eq!(printed_value(&printed, "page count"), expected.page_count);
            assert_eq!(printed_value(&printed, "text encoding"), expected.encoding);
            assert_eq!(
                printed_value(&printed, "schema cookie"),
                expected.schema_version
            );
            assert_eq!(
                printed_value(&printed, "user version"),
                expected.user_version
            );
        }
    }
    // The cases cover what they say they cover.
    let read = |name: &str| {
        let file = fs::File::open(dir.path().join(name)).expect("database");
        Header::read(&PageCache::new(file).expect("cache")).expect("header")
    };
    let utf16le = read("utf16le.db");
    let utf16be = read("utf16be.db");
    let wal = read("wal.db");
    assert_eq!(read("utf8.db").text_encoding, TextEncoding::Utf8);
    assert_eq!(
        (utf16le.text_encoding, utf16le.page_size),
        (TextEncoding::Utf16Le, 512)
    );
    assert!(utf16le.schema_cookie >= 3, "three schema changes");
    assert_eq!(
        (utf16be.text_encoding, utf16be.page_size),
        (TextEncoding::Utf16Be, 65536)
    );
    assert_eq!(utf16be.user_version, i32::MAX);
    assert_eq!((wal.write_version, wal.read_version), (2, 2));
    assert_eq!(wal.user_version, i32::MIN);
}

#[test]
fn sqlite_stale_in_header_size_falls_back_to_the_file_size_as_sqlite_does() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-stale");
    let db = make_databases(&shell, &dir).remove(0);
    // A change counter the version-valid-for number does not match is what
    // a SQLite older than 3.7.0 leaves after writing.
    let mut bytes = fs::read(&db).expect("read the database");
    let counter = u32::from_be_bytes(bytes[24..28].try_into().expect("4 bytes"));
    bytes[24..28].copy_from_slice(&(counter + 1).to_be_bytes());
    // And a wrong in-header size, which must then be ignored.
    bytes[28..32].copy_from_slice(&1u32.to_be_bytes());
    let stale = dir.path().join("stale.db");
    fs::write(&stale, &bytes).expect("write the stale copy");
    let expected = pragmas(&shell, &stale);
    for cache in caches(&bytes) {
        let header = Header::read(&cache).expect("header");
        assert_eq!(header.page_count_source, PageCountSource::FileSize);
        assert_eq!(header_pragmas(&header), expected);
    }
}

#[test]
fn sqlite_truncated_header_is_an_error_at_every_length() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-truncated");
    let db = make_databases(&shell, &dir).remove(0);
    let bytes = fs::read(&db).expect("read the database");
    for len in 0..HEADER_LEN as usize {
        for cache in caches(&bytes[..len].to_vec()) {
            let err = Header::read(&cache).expect_err("truncated");
            assert!(
                matches!(err, HeaderError::Truncated { size } if size == len as u64),
                "{len} bytes: {err}"
            );
            assert!(err.to_string().starts_with("truncated database"), "{err}");
        }
    }
    // The header alone reads; the page count then comes from it.
    let header_only = Header::read(&PageCache::new(bytes[..100].to_vec()).expect("cache"));
    assert_eq!(
        header_only
            .expect("100 bytes are a header")
            .page_count
            .to_string(),
        pragmas(&shell, &db).page_count
    );
}

#[test]
fn sqlite_wrong_magic_page_size_or_encoding_is_a_clear_error() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-corrupt");
    let db = make_databases(&shell, &dir).remove(0);
    let bytes = fs::read(&db).expect("read the database");
    let read = |bytes: Vec<u8>| Header::read(&PageCache::new(bytes).expect("cache"));

    let mut not_sqlite = bytes.clone();
    not_sqlite[..16].copy_from_slice(b"SQLite format 2\0");
    let err = read(not_sqlite).unwrap_err();
    assert!(matches!(err, HeaderError::BadMagic(_)), "{err}");
    assert!(err.to_string().contains("not a SQLite 3 database"), "{err}");

    for bad_page_size in [0u16, 2, 256, 1000, 4097] {
        let mut corrupt = bytes.clone();
        corrupt[16..18].copy_from_slice(&bad_page_size.to_be_bytes());
        let err = read(corrupt).unwrap_err();
        assert!(
            matches!(err, HeaderError::BadPageSize(size) if size == bad_page_size),
            "{err}"
        );
    }

    for bad_encoding in [0u32, 4, u32::MAX] {
        let mut corrupt = bytes.clone();
        corrupt[56..60].copy_from_slice(&bad_encoding.to_be_bytes());
        let err = read(corrupt).unwrap_err();
        assert!(
            matches!(err, HeaderError::BadTextEncoding(e) if e == bad_encoding),
            "{err}"
        );
    }
}

#[test]
fn sqlite_device_error_is_reported() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-device");
    let db = make_databases(&shell, &dir).remove(0);
    let device = FaultyDevice::new(fs::read(&db).expect("read the database"));
    device.fail_reads(Fault::Always(Errno::IO));
    let err = Header::read(&PageCache::new(device).expect("cache")).unwrap_err();
    assert!(matches!(err, HeaderError::Read(_)), "{err}");
    assert!(err.to_string().contains("device I/O failed"), "{err}");
}

#[test]
fn sqlite_any_flipped_header_byte_is_no_panic() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-flips");
    let db = make_databases(&shell, &dir).remove(0);
    let bytes = fs::read(&db).expect("read the database");
    for at in 0..HEADER_LEN as usize {
        for flip in [0x01, 0x80, 0xff] {
            let mut flipped = bytes.clone();
            flipped[at] ^= flip;
            let cache = PageCache::with_geometry(flipped, 64, 4).expect("cache");
            if let Err(err) = Header::read(&cache) {
                assert!(
                    matches!(
                        err,
                        HeaderError::BadMagic(_)
                            | HeaderError::BadPageSize(_)
                            | HeaderError::BadTextEncoding(_)
                    ),
                    "byte {at}: {err}"
                );
            }
        }
    }
}

#[test]
fn sqlite_header_prints_the_same_for_an_object_url() {
    let Some(shell) = require_tool("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite-url");
    // The example's cache: one page is enough for the header.
    let one_page = |input| PageCache::with_geometry(input, 4096, 1);
    let remote = Remote::start();
    for db in make_databases(&shell, &dir) {
        let url = remote.upload(&db);
        let local = render(
            db.to_str().expect("UTF-8 path"),
            &StoreOptions::Environment,
            one_page,
            Header::read,
        )
        .unwrap();
        let remote = render(&url, &remote.options(), one_page, Header::read).unwrap();
        assert_eq!(remote, local, "{url}");
        assert!(local.contains("page size:"), "{local}");
    }
}
