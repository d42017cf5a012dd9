//! Reader of git pack files (`.pack`): the pack header and each object's
//! header, through a page cache.
//!
//! A pack starts with `PACK`, a version (2 or 3) and an object count, all
//! big-endian, and ends with a 20-byte checksum. Each object starts with a
//! header: bits 6..4 of the first byte are the type, its low 4 bits and the
//! low 7 bits of each following byte (while the top bit is set) the
//! uncompressed size, little-endian. An `OFS_DELTA` then holds the distance
//! back to its base in git's offset varint, a `REF_DELTA` its base's SHA-1.

use std::fmt;

use bincodec::varint::{ReadVarintError, VarintError, decode_git_offset_at, decode_uleb128_at};
use blockdev::ReadAt;
use pagecache::{ByteSourceExt, PageCache};

/// The first four bytes of a pack.
pub(crate) const PACK_MAGIC: [u8; 4] = *b"PACK";
/// Length of the pack header: magic, version, object count.
pub(crate) const PACK_HEADER_LEN: u64 = 12;
/// Length of the checksum that ends a pack.
pub(crate) const PACK_TRAILER_LEN: u64 = 20;
const SHA1_LEN: usize = 20;

/// Why a pack, or one object header in it, cannot be read.
#[derive(Debug)]
pub(crate) enum PackError {
    /// The page cache could not deliver bytes (device error).
    Read(pagecache::Error),
    /// An object offset points into the 12-byte pack header.
    OffsetInHeader {
        /// The offset.
        offset: u64,
    },
    /// The pack is shorter than its header and checksum.
    TooShort {
        /// The file size.
        size: u64,
    },
    /// The pack does not start with `PACK`.
    BadMagic([u8; 4]),
    /// The version is neither 2 nor 3.
    UnsupportedVersion(u32),
    /// An object header would start or continue past the last object byte.
    Truncated {
        /// Where the object starts.
        offset: u64,
        /// The file size.
        size: u64,
    },
    /// The type bits are 0 or 5, which git never writes.
    BadType {
        /// Where the object starts.
        offset: u64,
        /// The three type bits.
        type_bits: u8,
    },
    /// The size does not fit in 64 bits.
    SizeOverflow {
        /// Where the object starts.
        offset: u64,
    },
    /// The `OFS_DELTA` base distance does not decode.
    BadBaseDistance {
        /// Where the object starts.
        offset: u64,
        /// What is wrong with the varint.
        error: VarintError,
    },
    /// The `OFS_DELTA` base distance is zero or reaches back before the
    /// first object.
    BaseOutOfPack {
        /// Where the object starts.
        offset: u64,
        /// The distance back to the base.
        distance: u64,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Read(err) => write!(f, "cannot read the pack: {err}"),
            PackError::TooShort { size } => write!(
                f,
                "truncated pack: {size} bytes, shorter than its {PACK_HEADER_LEN}-byte header \
                 and {PACK_TRAILER_LEN}-byte checksum"
            ),
            PackError::BadMagic(magic) => {
                write!(
                    f,
                    "not a git pack: it starts with {magic:02x?} instead of \"PACK\""
                )
            }
            PackError::OffsetInHeader { offset } => write!(
                f,
                "no object can start at offset {offset}, inside the {PACK_HEADER_LEN}-byte pack header"
            ),
            PackError::UnsupportedVersion(version) => {
                write!(f, "pack version {version} is not supported (only 2 and 3)")
            }
            PackError::Truncated { offset, size } => write!(
                f,
                "truncated pack: the object header at offset {offset} runs into the \
                 checksum or past the end of the {size}-byte file"
            ),
            PackError::BadType { offset, type_bits } => write!(
                f,
                "corrupt pack: the object at offset {offset} has type {type_bits}, \
                 which is not a git object type"
            ),
            PackError::SizeOverflow { offset } => write!(
                f,
                "corrupt pack: the size of the object at offset {offset} does not fit in 64 bits"
            ),
            PackError::BadBaseDistance { offset, error } => write!(
                f,
                "corrupt pack: the delta base distance of the object at offset {offset}: {error}"
            ),
            PackError::BaseOutOfPack { offset, distance } => write!(
                f,
                "corrupt pack: the delta at offset {offset} names a base {distance} bytes \
                 back, which is not an earlier object"
            ),
        }
    }
}

impl std::error::Error for PackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PackError::Read(err) => Some(err),
            PackError::BadBaseDistance { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<pagecache::Error> for PackError {
    fn from(err: pagecache::Error) -> Self {
        PackError::Read(err)
    }
}

/// The pack header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackHeader {
    /// Pack format version: 2 or 3.
    pub(crate) version: u32,
    /// Number of objects the pack says it holds.
    pub(crate) objects: u32,
}

/// What an object is, and for a delta where its base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    /// A commit (type 1).
    Commit,
    /// A tree (type 2).
    Tree,
    /// A blob (type 3).
    Blob,
    /// An annotated tag (type 4).
    Tag,
    /// A delta against the object at an earlier offset (type 6).
    OfsDelta {
        /// Absolute pack offset of the base object.
        base_offset: u64,
    },
    /// A delta against the object with this name (type 7).
    RefDelta {
        /// SHA-1 of the base object.
        base: [u8; SHA1_LEN],
    },
}

impl ObjectKind {
    /// The name `git verify-pack` would print for a non-delta, and git's
    /// internal name for the two delta types.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
            ObjectKind::Tag => "tag",
            ObjectKind::OfsDelta { .. } => "ofs-delta",
            ObjectKind::RefDelta { .. } => "ref-delta",
        }
    }
}

/// An object's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectHeader {
    /// The type, and the base of a delta.
    pub(crate) kind: ObjectKind,
    /// Size in bytes of the object's data once inflated: for a delta, of
    /// the delta instructions.
    pub(crate) size: u64,
    /// Length of the header, base reference included; the compressed data
    /// follows it.
    pub(crate) header_len: u64,
}

/// A pack whose header has been checked.
pub(crate) struct Pack<'c, D> {
    cache: &'c PageCache<D>,
    header: PackHeader,
}

impl<'c, D: ReadAt> Pack<'c, D> {
    /// Checks the magic and version and reads the object count.
    pub(crate) fn open(cache: &'c PageCache<D>) -> Result<Self, PackError> {
        let size = cache.size();
        if size < PACK_HEADER_LEN + PACK_TRAILER_LEN {
            return Err(PackError::TooShort { size });
        }
        let magic = cache.get_array::<4>(0)?;
        if magic != PACK_MAGIC {
            return Err(PackError::BadMagic(magic));
        }
        let version = cache.get_u32_be(4)?;
        if version != 2 && version != 3 {
            return Err(PackError::UnsupportedVersion(version));
        }
        let objects = cache.get_u32_be(8)?;
        Ok(Pack {
            cache,
            header: PackHeader { version, objects },
        })
    }

    /// The pack header.
    pub(crate) fn header(&self) -> PackHeader {
        self.header
    }

    /// Where the objects end and the checksum starts.
    pub(crate) fn objects_end(&self) -> u64 {
        self.cache.size() - PACK_TRAILER_LEN
    }

    /// The checksum that ends the pack (git's SHA-1 of everything before it).
    pub(crate) fn checksum(&self) -> Result<[u8; SHA1_LEN], PackError> {
        Ok(self.cache.get_array(self.objects_end())?)
    }

    /// The header of the object at `offset`.
    pub(crate) fn object_header(&self, offset: u64) -> Result<ObjectHeader, PackError> {
        if offset < PACK_HEADER_LEN {
            return Err(PackError::OffsetInHeader { offset });
        }
        let end = self.objects_end();
        if offset >= end {
            return Err(self.truncated(offset));
        }
        let first = self.cache.get_u8(offset)?;
        let type_bits = (first >> 4) & 0x7;
        let mut size = u64::from(first & 0x0f);
        let mut header_len = 1;
        if first & 0x80 != 0 {
            // The remaining size bytes are plain LEB128, shifted past the
            // first byte's 4 bits.
            let (high, len) = decode_uleb128_at(self.cache, offset + 1)
                .map_err(|error| self.varint_error(offset, error))?;
            if high >> 60 != 0 {
                return Err(PackError::SizeOverflow { offset });
            }
            size |= high << 4;
            header_len += len as u64;
        }
        let kind = match type_bits {
            1 => ObjectKind::Commit,
            2 => ObjectKind::Tree,
            3 => ObjectKind::Blob,
            4 => ObjectKind::Tag,
            6 => {
                let (distance, len) = decode_git_offset_at(self.cache, offset + header_len)
                    .map_err(|error| match error {
                        ReadVarintError::Varint(error @ VarintError::Overflow { .. }) => {
                            PackError::BadBaseDistance { offset, error }
                        }
                        error => self.varint_error(offset, error),
                    })?;
                header_len += len as u64;
                if distance == 0 || distance > offset - PACK_HEADER_LEN {
                    return Err(PackError::BaseOutOfPack { offset, distance });
                }
                ObjectKind::OfsDelta {
                    base_offset: offset - distance,
                }
            }
            7 => {
                let base = self
                    .cache
                    .get_array::<SHA1_LEN>(offset + header_len)
                    .map_err(|error| self.read_error(offset, error))?;
                header_len += SHA1_LEN as u64;
                ObjectKind::RefDelta { base }
            }
            _ => return Err(PackError::BadType { offset, type_bits }),
        };
        // Header bytes read from the checksum are not a header either.
        if offset + header_len > end {
            return Err(self.truncated(offset));
        }
        Ok(ObjectHeader {
            kind,
            size,
            header_len,
        })
    }

    fn truncated(&self, offset: u64) -> PackError {
        PackError::Truncated {
            offset,
            size: self.cache.size(),
        }
    }

    /// Running off the end of the file is truncation; a device error stays one.
    fn read_error(&self, offset: u64, error: pagecache::Error) -> PackError {
        match error.out_of_bounds() {
            Some(_) => self.truncated(offset),
            None => PackError::Read(error),
        }
    }

    fn varint_error(&self, offset: u64, error: ReadVarintError<pagecache::Error>) -> PackError {
        match error {
            ReadVarintError::Source(error) => self.read_error(offset, error),
            ReadVarintError::Varint(VarintError::Overflow { .. }) => {
                PackError::SizeOverflow { offset }
            }
            ReadVarintError::Varint(VarintError::Truncated { .. }) => self.truncated(offset),
        }
    }
}
