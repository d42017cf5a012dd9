//! Reader of git pack index files (`.idx`, version 2) through a page cache.
//!
//! Layout (all integers big-endian): magic `ff 74 4f 63`, version 2, a
//! 256-entry fanout table (entry `b` counts the objects whose SHA-1 starts
//! with a byte `<= b`), then per object, each in its own table: the 20-byte
//! SHA-1s (sorted), the CRC32s of the packed data, the 4-byte pack offsets
//! (MSB set: the low 31 bits index the table of 8-byte offsets that
//! follows), and finally two 20-byte checksums.

use std::fmt;

use blockdev::ReadAt;
use pagecache::{ByteSourceExt, PageCache};

/// The first four bytes of a version 2 (or later) pack index.
pub(crate) const IDX_MAGIC: [u8; 4] = [0xff, 0x74, 0x4f, 0x63];
/// Length of a SHA-1 object name in bytes.
pub(crate) const SHA1_LEN: usize = 20;

const FANOUT_START: u64 = 8;
const FANOUT_ENTRIES: usize = 256;
const SHA1_TABLE_START: u64 = FANOUT_START + 4 * FANOUT_ENTRIES as u64;
/// The pack checksum and the index checksum.
const TRAILER_LEN: u64 = 2 * SHA1_LEN as u64;
/// Bytes each object takes in the fixed tables: SHA-1, CRC32, 4-byte offset.
const ENTRY_LEN: u64 = SHA1_LEN as u64 + 4 + 4;
/// A 4-byte offset with this bit set indexes the 8-byte offset table.
const LARGE_OFFSET_FLAG: u32 = 0x8000_0000;

/// Why a file is not a readable version 2 pack index.
#[derive(Debug)]
pub(crate) enum IdxError {
    /// The page cache could not deliver bytes (device error).
    Read(pagecache::Error),
    /// The file ends before the tables its header promises.
    Truncated {
        /// The file size.
        size: u64,
        /// The size the header requires at least.
        needed: u64,
        /// What does not fit.
        what: &'static str,
    },
    /// The file does not start with the version 2 magic.
    BadMagic([u8; 4]),
    /// The version is not 2.
    UnsupportedVersion(u32),
    /// The fanout table decreases, so it does not count sorted objects.
    FanoutDecreases {
        /// The first byte value whose count is below the previous one.
        byte: usize,
        /// The count at `byte`.
        count: u32,
        /// The count at `byte - 1`.
        previous: u32,
    },
    /// An object's SHA-1 is not in the fanout bucket of its first byte, or
    /// not after the previous one.
    Unsorted {
        /// Index of the object in the tables.
        entry: u32,
    },
    /// A 4-byte offset points past the end of the 8-byte offset table.
    LargeOffsetIndex {
        /// Index of the object in the tables.
        entry: u32,
        /// The index it holds.
        index: u32,
        /// How many 8-byte offsets the file holds.
        available: u64,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::Read(err) => write!(f, "cannot read the pack index: {err}"),
            IdxError::Truncated { size, needed, what } => write!(
                f,
                "truncated pack index: {what} need {needed} bytes but the file has {size}"
            ),
            IdxError::BadMagic(magic) => write!(
                f,
                "not a version 2 pack index: it starts with {} instead of ff744f63 \
                 (version 1 indexes have no magic and are not supported)",
                hex(magic)
            ),
            IdxError::UnsupportedVersion(version) => {
                write!(f, "pack index version {version} is not supported (only 2)")
            }
            IdxError::FanoutDecreases {
                byte,
                count,
                previous,
            } => write!(
                f,
                "corrupt pack index: fanout entry {byte:#04x} counts {count} objects, \
                 fewer than the {previous} of the entry before"
            ),
            IdxError::Unsorted { entry } => write!(
                f,
                "corrupt pack index: the SHA-1 of object {entry} is out of order"
            ),
            IdxError::LargeOffsetIndex {
                entry,
                index,
                available,
            } => write!(
                f,
                "corrupt or truncated pack index: object {entry} refers to 64-bit \
                 offset {index}, but the file holds only {available}"
            ),
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdxError::Read(err) => Some(err),
            _ => None,
        }
    }
}

impl From<pagecache::Error> for IdxError {
    fn from(err: pagecache::Error) -> Self {
        IdxError::Read(err)
    }
}

/// One object of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdxEntry {
    /// The object name.
    pub(crate) sha1: [u8; SHA1_LEN],
    /// Where the object starts in the pack.
    pub(crate) offset: u64,
    /// CRC32 of the object's packed bytes.
    pub(crate) crc32: u32,
}

/// A version 2 pack index whose header and fanout table have been checked.
pub(crate) struct PackIndex<'c, D> {
    cache: &'c PageCache<D>,
    fanout: [u32; FANOUT_ENTRIES],
    large_offsets: u64,
}

impl<'c, D: ReadAt> PackIndex<'c, D> {
    /// Checks the magic, the version, the fanout table and that the file is
    /// long enough for every table; reads nothing else.
    pub(crate) fn open(cache: &'c PageCache<D>) -> Result<Self, IdxError> {
        let size = cache.size();
        require(size, SHA1_TABLE_START, "the header and fanout table")?;
        let magic = cache.get_array::<4>(0)?;
        if magic != IDX_MAGIC {
            return Err(IdxError::BadMagic(magic));
        }
        let version = cache.get_u32_be(4)?;
        if version != 2 {
            return Err(IdxError::UnsupportedVersion(version));
        }
        let mut fanout = [0u32; FANOUT_ENTRIES];
        let mut previous = 0;
        for (byte, count) in fanout.iter_mut().enumerate() {
            *count = cache.get_u32_be(FANOUT_START + 4 * byte as u64)?;
            if *count < previous {
                return Err(IdxError::FanoutDecreases {
                    byte,
                    count: *count,
                    previous,
                });
            }
            previous = *count;
        }
        let objects = u64::from(previous);
        let tables_end = SHA1_TABLE_START + ENTRY_LEN * objects;
        require(
            size,
            tables_end + TRAILER_LEN,
            "the object tables and checksums",
        )?;
        Ok(PackIndex {
            cache,
            fanout,
            large_offsets: (size - tables_end - TRAILER_LEN) / 8,
        })
    }

    /// Number of objects.
    pub(crate) fn len(&self) -> u32 {
        self.fanout[FANOUT_ENTRIES - 1]
    }

    /// Number of entries in the 8-byte offset table, from the file size.
    pub(crate) fn large_offsets(&self) -> u64 {
        self.large_offsets
    }

    /// The checksum of the pack this index was made for: a copy of the
    /// pack's last 20 bytes, kept in the index's trailer.
    pub(crate) fn pack_checksum(&self) -> Result<[u8; SHA1_LEN], IdxError> {
        Ok(self.cache.get_array(self.cache.size() - TRAILER_LEN)?)
    }

    fn crc_table(&self) -> u64 {
        SHA1_TABLE_START + SHA1_LEN as u64 * u64::from(self.len())
    }

    fn offset_table(&self) -> u64 {
        self.crc_table() + 4 * u64::from(self.len())
    }

    fn large_offset_table(&self) -> u64 {
        self.offset_table() + 4 * u64::from(self.len())
    }

    /// The SHA-1 of object `entry`, checked against its fanout bucket.
    fn sha1(&self, entry: u32) -> Result<[u8; SHA1_LEN], IdxError> {
        let sha1 = self
            .cache
            .get_array::<SHA1_LEN>(SHA1_TABLE_START + SHA1_LEN as u64 * u64::from(entry))?;
        let bucket = usize::from(sha1[0]);
        let bucket_start = bucket.checked_sub(1).map_or(0, |below| self.fanout[below]);
        if entry < bucket_start || entry >= self.fanout[bucket] {
            return Err(IdxError::Unsorted { entry });
        }
        Ok(sha1)
    }

    /// Object `entry` (below [`len`](Self::len)): its SHA-1, CRC32 and offset.
    pub(crate) fn entry(&self, entry: u32) -> Result<IdxEntry, IdxError> {
        let sha1 = self.sha1(entry)?;
        let crc32 = self
            .cache
            .get_u32_be(self.crc_table() + 4 * u64::from(entry))?;
        let short = self
            .cache
            .get_u32_be(self.offset_table() + 4 * u64::from(entry))?;
        let offset = if short & LARGE_OFFSET_FLAG == 0 {
            u64::from(short)
        } else {
            let index = short & !LARGE_OFFSET_FLAG;
            if u64::from(index) >= self.large_offsets {
                return Err(IdxError::LargeOffsetIndex {
                    entry,
                    index,
                    available: self.large_offsets,
                });
            }
            self.cache
                .get_u64_be(self.large_offset_table() + 8 * u64::from(index))?
        };
        Ok(IdxEntry {
            sha1,
            offset,
            crc32,
        })
    }

    /// Every object in SHA-1 order, checking that the order is strict.
    pub(crate) fn entries(&self) -> Result<Vec<IdxEntry>, IdxError> {
        let mut entries: Vec<IdxEntry> = Vec::with_capacity(self.len() as usize);
        for entry in 0..self.len() {
            let next = self.entry(entry)?;
            if entries.last().is_some_and(|last| last.sha1 >= next.sha1) {
                return Err(IdxError::Unsorted { entry });
            }
            entries.push(next);
        }
        Ok(entries)
    }

    /// The index of the object named `sha1`, by binary search inside its
    /// fanout bucket: a handful of page-cache reads however large the index.
    pub(crate) fn find(&self, sha1: &[u8; SHA1_LEN]) -> Result<Option<u32>, IdxError> {
        let bucket = usize::from(sha1[0]);
        let mut low = bucket.checked_sub(1).map_or(0, |below| self.fanout[below]);
        let mut high = self.fanout[bucket];
        while low < high {
            let middle = low + (high - low) / 2;
            match self.sha1(middle)?.cmp(sha1) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(Some(middle)),
            }
        }
        Ok(None)
    }
}

/// Lower-case hex of `bytes`, as git prints object names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn require(size: u64, needed: u64, what: &'static str) -> Result<(), IdxError> {
    if size < needed {
        Err(IdxError::Truncated { size, needed, what })
    } else {
        Ok(())
    }
}
