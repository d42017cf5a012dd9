//! The `git-idx` listing: every object of a pack index, optionally with its
//! header decoded from the pack, one line per object.

use std::fmt;

use blockdev::ReadAt;
use pagecache::PageCache;

use super::idx::{IdxEntry, IdxError, PackIndex, hex};
use super::pack::{ObjectHeader, ObjectKind, PACK_HEADER_LEN, Pack, PackError, PackHeader};

/// Why a listing cannot be made.
#[derive(Debug)]
pub(crate) enum ListError {
    /// The index is unreadable.
    Idx(IdxError),
    /// The pack, or an object header in it, is unreadable.
    Pack(PackError),
    /// The pack does not end with the checksum the index records for it.
    ChecksumMismatch {
        /// The pack checksum recorded in the index.
        idx: String,
        /// The pack's last 20 bytes.
        pack: String,
    },
    /// The pack and the index disagree on how many objects there are.
    CountMismatch {
        /// Objects in the index.
        idx: u32,
        /// Objects the pack header announces.
        pack: u32,
    },
    /// An index offset points outside the pack's objects.
    OffsetOutsidePack {
        /// Name of the object.
        sha1: String,
        /// Its offset in the index.
        offset: u64,
        /// Where the pack's objects end.
        objects_end: u64,
    },
    /// Two index entries claim the same pack offset.
    SharedOffset {
        /// The offset.
        offset: u64,
    },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Idx(err) => err.fmt(f),
            ListError::Pack(err) => err.fmt(f),
            ListError::ChecksumMismatch { idx, pack } => write!(
                f,
                "the pack ends with {pack}, not with the checksum {idx} its index records: \
                 it is truncated, damaged at its end, or not the pack this index was made for"
            ),
            ListError::CountMismatch { idx, pack } => write!(
                f,
                "the index lists {idx} objects but the pack holds {pack}: \
                 are they from the same pack?"
            ),
            ListError::OffsetOutsidePack {
                sha1,
                offset,
                objects_end,
            } => write!(
                f,
                "object {sha1} is at offset {offset}, outside the pack's objects \
                 (bytes 12 to {objects_end}): is the pack truncated or the wrong one?"
            ),
            ListError::SharedOffset { offset } => {
                write!(f, "two objects of the index are at pack offset {offset}")
            }
        }
    }
}

impl std::error::Error for ListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListError::Idx(err) => err.source(),
            ListError::Pack(err) => err.source(),
            _ => None,
        }
    }
}

impl From<IdxError> for ListError {
    fn from(err: IdxError) -> Self {
        ListError::Idx(err)
    }
}

impl From<PackError> for ListError {
    fn from(err: PackError) -> Self {
        ListError::Pack(err)
    }
}

/// What the pack says about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedObject {
    /// The decoded object header.
    pub(crate) header: ObjectHeader,
    /// Bytes the object takes in the pack, header included (up to the next
    /// object or the checksum).
    pub(crate) packed_len: u64,
    /// For a `REF_DELTA`: the base's offset, when the index has it.
    pub(crate) ref_base_offset: Option<u64>,
}

/// One line of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    /// What the index says.
    pub(crate) entry: IdxEntry,
    /// What the pack says, when one was given.
    pub(crate) packed: Option<PackedObject>,
}

/// Every object of an index, in SHA-1 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    /// Objects in the index.
    pub(crate) objects: u32,
    /// Entries of the 8-byte offset table (from the index size).
    pub(crate) large_offsets: u64,
    /// The pack header, when a pack was given.
    pub(crate) pack: Option<PackHeader>,
    /// One row per object.
    pub(crate) rows: Vec<Row>,
}

/// Lists the index read through `idx`, decoding each object's header from
/// the pack read through `pack` when there is one.
pub(crate) fn list<I: ReadAt, P: ReadAt>(
    idx: &PageCache<I>,
    pack: Option<&PageCache<P>>,
) -> Result<Listing, ListError> {
    let index = PackIndex::open(idx)?;
    let entries = index.entries()?;
    let mut listing = Listing {
        objects: index.len(),
        large_offsets: index.large_offsets(),
        pack: None,
        rows: entries
            .iter()
            .map(|&entry| Row {
                entry,
                packed: None,
            })
            .collect(),
    };
    let Some(pack) = pack else {
        return Ok(listing);
    };
    let pack = Pack::open(pack)?;
    // The index keeps a copy of the pack's checksum: comparing the two
    // catches a truncated or mismatched pack without hashing anything.
    let (idx_checksum, pack_checksum) = (index.pack_checksum()?, pack.checksum()?);
    if idx_checksum != pack_checksum {
        return Err(ListError::ChecksumMismatch {
            idx: hex(&idx_checksum),
            pack: hex(&pack_checksum),
        });
    }
    let header = pack.header();
    if header.objects != index.len() {
        return Err(ListError::CountMismatch {
            idx: index.len(),
            pack: header.objects,
        });
    }
    listing.pack = Some(header);
    let objects_end = pack.objects_end();
    // An object's packed length runs to the next offset, so sort them.
    let mut offsets: Vec<u64> = entries.iter().map(|entry| entry.offset).collect();
    offsets.sort_unstable();
    if let Some(pair) = offsets.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ListError::SharedOffset { offset: pair[0] });
    }
    for row in &mut listing.rows {
        let offset = row.entry.offset;
        if offset < PACK_HEADER_LEN || offset >= objects_end {
            return Err(ListError::OffsetOutsidePack {
                sha1: hex(&row.entry.sha1),
                offset,
                objects_end,
            });
        }
        let header = pack.object_header(offset)?;
        let next = offsets.partition_point(|&other| other <= offset);
        let packed_end = offsets.get(next).copied().unwrap_or(objects_end);
        let ref_base_offset = match header.kind {
            ObjectKind::RefDelta { base } => match index.find(&base)? {
                Some(base) => Some(index.entry(base)?.offset),
                None => None,
            },
            _ => None,
        };
        row.packed = Some(PackedObject {
            header,
            packed_len: packed_end - offset,
            ref_base_offset,
        });
    }
    Ok(listing)
}

impl fmt::Display for Listing {
    /// A `#` summary line, then one line per object:
    /// `<sha1> <offset> <crc32>`, and with a pack
    /// `<type> <size> <packed length>`, plus for a delta `base <offset>`
    /// (`OFS_DELTA`) or `base <sha1>[ @<offset>]` (`REF_DELTA`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "# pack index v2: {} objects, {} 64-bit offsets",
            self.objects, self.large_offsets
        )?;
        if let Some(pack) = self.pack {
            write!(f, "; pack v{}: {} objects", pack.version, pack.objects)?;
        }
        writeln!(f)?;
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = &self.entry;
        write!(
            f,
            "{} {} {:08x}",
            hex(&entry.sha1),
            entry.offset,
            entry.crc32
        )?;
        let Some(packed) = &self.packed else {
            return Ok(());
        };
        let header = &packed.header;
        write!(
            f,
            " {} {} {}",
            header.kind.name(),
            header.size,
            packed.packed_len
        )?;
        match header.kind {
            ObjectKind::OfsDelta { base_offset } => write!(f, " base {base_offset}"),
            ObjectKind::RefDelta { base } => {
                write!(f, " base {}", hex(&base))?;
                match packed.ref_base_offset {
                    Some(offset) => write!(f, " @{offset}"),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}
