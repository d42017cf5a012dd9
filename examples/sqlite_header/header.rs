//! Reader of the 100-byte SQLite database header through a page cache.
//!
//! Every integer in it is big-endian. See <https://sqlite.org/fileformat.html>,
//! section 1.3.

use std::fmt;

use blockdev::ReadAt;
use pagecache::{ByteSourceExt, PageCache};

/// The first 16 bytes of every SQLite 3 database.
pub(crate) const SQLITE_MAGIC: [u8; 16] = *b"SQLite format 3\0";
/// Length of the database header.
pub(crate) const HEADER_LEN: u64 = 100;

// Field offsets in the header.
const PAGE_SIZE: u64 = 16;
const WRITE_VERSION: u64 = 18;
const READ_VERSION: u64 = 19;
const CHANGE_COUNTER: u64 = 24;
const DATABASE_SIZE: u64 = 28;
const SCHEMA_COOKIE: u64 = 40;
const TEXT_ENCODING: u64 = 56;
const USER_VERSION: u64 = 60;
const VERSION_VALID_FOR: u64 = 92;
const SQLITE_VERSION_NUMBER: u64 = 96;

/// Why a file has no readable SQLite header.
#[derive(Debug)]
pub(crate) enum HeaderError {
    /// The page cache could not deliver bytes (device error).
    Read(pagecache::Error),
    /// The file is shorter than the header.
    Truncated {
        /// The file size.
        size: u64,
    },
    /// The file does not start with `SQLite format 3\0`.
    BadMagic([u8; 16]),
    /// The page size is not a power of two from 512 to 65536.
    BadPageSize(u16),
    /// The text encoding is not 1, 2 or 3.
    BadTextEncoding(u32),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Read(err) => write!(f, "cannot read the database header: {err}"),
            HeaderError::Truncated { size } => write!(
                f,
                "truncated database: {size} bytes, shorter than the {HEADER_LEN}-byte SQLite header"
            ),
            HeaderError::BadMagic(magic) => write!(
                f,
                "not a SQLite 3 database: it starts with {:?} instead of \"SQLite format 3\\0\"",
                String::from_utf8_lossy(magic)
            ),
            HeaderError::BadPageSize(raw) => write!(
                f,
                "corrupt header: page size field {raw} is not a power of two from 512 \
                 to 32768 (or 1 for 65536)"
            ),
            HeaderError::BadTextEncoding(raw) => write!(
                f,
                "corrupt header: text encoding {raw} is not 1 (UTF-8), 2 (UTF-16le) or 3 (UTF-16be)"
            ),
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeaderError::Read(err) => Some(err),
            _ => None,
        }
    }
}

impl From<pagecache::Error> for HeaderError {
    fn from(err: pagecache::Error) -> Self {
        HeaderError::Read(err)
    }
}

/// How the database stores text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    /// 1.
    Utf8,
    /// 2.
    Utf16Le,
    /// 3.
    Utf16Be,
}

impl TextEncoding {
    /// The name `PRAGMA encoding` returns.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16Le => "UTF-16le",
            TextEncoding::Utf16Be => "UTF-16be",
        }
    }
}

/// Where [`Header::page_count`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageCountSource {
    /// The in-header database size, valid since its version-valid-for
    /// number matches the change counter.
    Header,
    /// The file size over the page size: the in-header size was zero or
    /// stale (written by a SQLite older than 3.7.0), as SQLite itself does.
    FileSize,
}

/// The header fields `sqlite-header` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Page size in bytes (the stored 1 means 65536).
    pub(crate) page_size: u32,
    /// Pages in the database.
    pub(crate) page_count: u64,
    /// Where `page_count` comes from.
    pub(crate) page_count_source: PageCountSource,
    /// Text encoding of the whole database.
    pub(crate) text_encoding: TextEncoding,
    /// Schema cookie, bumped on every schema change (`PRAGMA schema_version`).
    pub(crate) schema_cookie: u32,
    /// `PRAGMA user_version`, a signed 32-bit integer.
    pub(crate) user_version: i32,
    /// File format write version: 1 legacy, 2 WAL.
    pub(crate) write_version: u8,
    /// File format read version: 1 legacy, 2 WAL.
    pub(crate) read_version: u8,
    /// Change counter.
    pub(crate) change_counter: u32,
    /// `SQLITE_VERSION_NUMBER` of the library that last wrote the file.
    pub(crate) sqlite_version: u32,
}

impl Header {
    /// Reads and checks the header of the database behind `cache`.
    pub(crate) fn read<D: ReadAt>(cache: &PageCache<D>) -> Result<Self, HeaderError> {
        let size = cache.size();
        if size < HEADER_LEN {
            return Err(HeaderError::Truncated { size });
        }
        let magic = cache.get_array::<16>(0)?;
        if magic != SQLITE_MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        let raw_page_size = cache.get_u16_be(PAGE_SIZE)?;
        let page_size = match raw_page_size {
            1 => 65536,
            512..=32768 if raw_page_size.is_power_of_two() => u32::from(raw_page_size),
            _ => return Err(HeaderError::BadPageSize(raw_page_size)),
        };
        let text_encoding = match cache.get_u32_be(TEXT_ENCODING)? {
            1 => TextEncoding::Utf8,
            2 => TextEncoding::Utf16Le,
            3 => TextEncoding::Utf16Be,
            raw => return Err(HeaderError::BadTextEncoding(raw)),
        };
        let change_counter = cache.get_u32_be(CHANGE_COUNTER)?;
        let header_pages = cache.get_u32_be(DATABASE_SIZE)?;
        let header_pages_valid =
            header_pages != 0 && cache.get_u32_be(VERSION_VALID_FOR)? == change_counter;
        let (page_count, page_count_source) = if header_pages_valid {
            (u64::from(header_pages), PageCountSource::Header)
        } else {
            (size / u64::from(page_size), PageCountSource::FileSize)
        };
        Ok(Header {
            page_size,
            page_count,
            page_count_source,
            text_encoding,
            schema_cookie: cache.get_u32_be(SCHEMA_COOKIE)?,
            user_version: cache.get_i32_be(USER_VERSION)?,
            write_version: cache.get_u8(WRITE_VERSION)?,
            read_version: cache.get_u8(READ_VERSION)?,
            change_counter,
            sqlite_version: cache.get_u32_be(SQLITE_VERSION_NUMBER)?,
        })
    }
}

impl fmt::Display for Header {
    /// One `name: value` line per field; the first five carry the values of
    /// `PRAGMA page_size`, `page_count`, `encoding`, `schema_version` and
    /// `user_version`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.page_count_source {
            PageCountSource::Header => "in-header database size",
            PageCountSource::FileSize => "file size; in-header size stale",
        };
        let version = self.sqlite_version;
        writeln!(f, "page size:       {}", self.page_size)?;
        writeln!(f, "page count:      {} ({source})", self.page_count)?;
        writeln!(f, "text encoding:   {}", self.text_encoding.name())?;
        writeln!(f, "schema cookie:   {}", self.schema_cookie)?;
        writeln!(f, "user version:    {}", self.user_version)?;
        writeln!(
            f,
            "format versions: write {}, read {} ({})",
            self.write_version,
            self.read_version,
            if self.write_version == 2 {
                "WAL"
            } else {
                "rollback journal"
            }
        )?;
        writeln!(f, "change counter:  {}", self.change_counter)?;
        writeln!(
            f,
            "written by:      SQLite {}.{}.{}",
            version / 1_000_000,
            version / 1000 % 1000,
            version % 1000
        )
    }
}
