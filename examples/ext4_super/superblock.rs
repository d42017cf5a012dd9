//! Reader of the ext2/3/4 superblock through a page cache.
//!
//! The superblock is 1024 bytes at byte 1024 of the volume, little-endian
//! whatever the host. Block counts are 32 bits, extended by a high half at
//! 0x150.. when the `64bit` incompatible feature is set.

use std::fmt;

use blockdev::ReadAt;
use pagecache::{ByteSourceExt, PageCache};

/// Where the superblock starts on the volume.
pub(crate) const SUPERBLOCK_START: u64 = 1024;
/// Length of the superblock.
pub(crate) const SUPERBLOCK_LEN: u64 = 1024;
/// The value of `s_magic`.
pub(crate) const EXT4_MAGIC: u16 = 0xef53;
/// `s_feature_incompat` bit: block counts have a high half.
const INCOMPAT_64BIT: u32 = 0x80;
/// Largest `s_log_block_size` the kernel mounts (64 KiB blocks).
const MAX_LOG_BLOCK_SIZE: u32 = 6;

// Field offsets inside the superblock (struct ext4_super_block).
const INODES_COUNT: u64 = 0x00;
const BLOCKS_COUNT_LO: u64 = 0x04;
const FREE_BLOCKS_COUNT_LO: u64 = 0x0c;
const FREE_INODES_COUNT: u64 = 0x10;
const LOG_BLOCK_SIZE: u64 = 0x18;
const MAGIC: u64 = 0x38;
const FEATURE_INCOMPAT: u64 = 0x60;
const UUID: u64 = 0x68;
const VOLUME_NAME: u64 = 0x78;
const BLOCKS_COUNT_HI: u64 = 0x150;
const FREE_BLOCKS_COUNT_HI: u64 = 0x158;

/// Why a file holds no readable ext2/3/4 superblock.
#[derive(Debug)]
pub(crate) enum SuperblockError {
    /// The page cache could not deliver bytes (device error).
    Read(pagecache::Error),
    /// The file ends before the end of the superblock.
    Truncated {
        /// The file size.
        size: u64,
    },
    /// `s_magic` is not 0xEF53.
    BadMagic(u16),
    /// `s_log_block_size` gives a block size above 64 KiB.
    BadLogBlockSize(u32),
}

impl fmt::Display for SuperblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuperblockError::Read(err) => write!(f, "cannot read the superblock: {err}"),
            SuperblockError::Truncated { size } => write!(
                f,
                "truncated image: {size} bytes, but the ext4 superblock spans bytes \
                 {SUPERBLOCK_START} to {}",
                SUPERBLOCK_START + SUPERBLOCK_LEN
            ),
            SuperblockError::BadMagic(magic) => write!(
                f,
                "not an ext2/3/4 file system: the superblock magic is {magic:#06x}, not {EXT4_MAGIC:#06x}"
            ),
            SuperblockError::BadLogBlockSize(log) => write!(
                f,
                "corrupt superblock: s_log_block_size {log} means blocks of 2^{} bytes \
                 (at most 2^{} are valid)",
                u64::from(*log) + 10,
                MAX_LOG_BLOCK_SIZE + 10
            ),
        }
    }
}

impl std::error::Error for SuperblockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SuperblockError::Read(err) => Some(err),
            _ => None,
        }
    }
}

impl From<pagecache::Error> for SuperblockError {
    fn from(err: pagecache::Error) -> Self {
        SuperblockError::Read(err)
    }
}

/// The superblock fields `ext4-super` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superblock {
    /// `s_magic`, always [`EXT4_MAGIC`] once read.
    pub(crate) magic: u16,
    /// Block size in bytes: 1024 << `s_log_block_size`.
    pub(crate) block_size: u32,
    /// Blocks in the file system, high half included when 64-bit.
    pub(crate) block_count: u64,
    /// Free blocks, high half included when 64-bit.
    pub(crate) free_blocks: u64,
    /// Inodes in the file system.
    pub(crate) inode_count: u32,
    /// Free inodes.
    pub(crate) free_inodes: u32,
    /// Whether the `64bit` feature is set.
    pub(crate) is_64bit: bool,
    /// `s_uuid`.
    pub(crate) uuid: [u8; 16],
    /// `s_volume_name`, NUL-padded.
    pub(crate) volume_name: [u8; 16],
}

impl Superblock {
    /// Reads and checks the superblock of the volume behind `cache`.
    pub(crate) fn read<D: ReadAt>(cache: &PageCache<D>) -> Result<Self, SuperblockError> {
        let size = cache.size();
        if size < SUPERBLOCK_START + SUPERBLOCK_LEN {
            return Err(SuperblockError::Truncated { size });
        }
        let field = |offset: u64| SUPERBLOCK_START + offset;
        let magic = cache.get_u16_le(field(MAGIC))?;
        if magic != EXT4_MAGIC {
            return Err(SuperblockError::BadMagic(magic));
        }
        let log_block_size = cache.get_u32_le(field(LOG_BLOCK_SIZE))?;
        if log_block_size > MAX_LOG_BLOCK_SIZE {
            return Err(SuperblockError::BadLogBlockSize(log_block_size));
        }
        let is_64bit = cache.get_u32_le(field(FEATURE_INCOMPAT))? & INCOMPAT_64BIT != 0;
        // Without the feature the high halves are not part of the format and
        // may hold anything.
        let count = |lo: u64, hi: u64| -> Result<u64, pagecache::Error> {
            let low = u64::from(cache.get_u32_le(field(lo))?);
            let high = if is_64bit {
                u64::from(cache.get_u32_le(field(hi))?)
            } else {
                0
            };
            Ok(high << 32 | low)
        };
        Ok(Superblock {
            magic,
            block_size: 1024 << log_block_size,
            block_count: count(BLOCKS_COUNT_LO, BLOCKS_COUNT_HI)?,
            free_blocks: count(FREE_BLOCKS_COUNT_LO, FREE_BLOCKS_COUNT_HI)?,
            inode_count: cache.get_u32_le(field(INODES_COUNT))?,
            free_inodes: cache.get_u32_le(field(FREE_INODES_COUNT))?,
            is_64bit,
            uuid: cache.get_array(field(UUID))?,
            volume_name: cache.get_array(field(VOLUME_NAME))?,
        })
    }

    /// The volume name up to its first NUL (all 16 bytes when it has none),
    /// or `None` when empty.
    pub(crate) fn volume_name(&self) -> Option<String> {
        let len = self
            .volume_name
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(self.volume_name.len());
        (len > 0).then(|| String::from_utf8_lossy(&self.volume_name[..len]).into_owned())
    }

    /// The UUID in its usual 8-4-4-4-12 form, or `None` when all zero.
    pub(crate) fn uuid(&self) -> Option<String> {
        if self.uuid == [0; 16] {
            return None;
        }
        let mut out = String::with_capacity(36);
        for (i, byte) in self.uuid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push_str(&format!("{byte:02x}"));
        }
        Some(out)
    }
}

impl fmt::Display for Superblock {
    /// One `name: value` line per field; names as `dumpe2fs -h` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = || "<none>".to_owned();
        writeln!(
            f,
            "Filesystem volume name:   {}",
            self.volume_name().unwrap_or_else(none)
        )?;
        writeln!(
            f,
            "Filesystem UUID:          {}",
            self.uuid().unwrap_or_else(none)
        )?;
        writeln!(f, "Filesystem magic number:  {:#06X}", self.magic)?;
        writeln!(
            f,
            "64bit feature:            {}",
            if self.is_64bit { "yes" } else { "no" }
        )?;
        writeln!(f, "Inode count:              {}", self.inode_count)?;
        writeln!(f, "Block count:              {}", self.block_count)?;
        writeln!(f, "Free blocks:              {}", self.free_blocks)?;
        writeln!(f, "Free inodes:              {}", self.free_inodes)?;
        writeln!(f, "Block size:               {}", self.block_size)
    }
}
