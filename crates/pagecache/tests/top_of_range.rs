//! Devices whose last bytes lie just below 2^64: every position formed
//! near the top of the range (page ends, extent ends, run ends) must not
//! wrap. A sparse device stands for a device of that size.

use std::collections::BTreeMap;
use std::io;

use blockdev::{ReadAt, WriteAt};
use pagecache::{ByteSource, ByteSourceExt, PageCache, WriteBackCache};
use parking_lot::Mutex;
use proptest::prelude::*;

/// A device of any size up to `u64::MAX` bytes, zero but where written.
/// A write reaching past its size is an error, never clipped.
#[derive(Debug)]
struct SparseDevice {
    size: u64,
    bytes: Mutex<BTreeMap<u64, u8>>,
}

impl SparseDevice {
    fn new(size: u64) -> Self {
        SparseDevice {
            size,
            bytes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The nonzero bytes written.
    fn written(&self) -> BTreeMap<u64, u8> {
        let bytes = self.bytes.lock();
        bytes
            .iter()
            .filter(|(_, b)| **b != 0)
            .map(|(&p, &b)| (p, b))
            .collect()
    }
}

impl ReadAt for SparseDevice {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        if pos >= self.size {
            return Ok(0);
        }
        let n = (self.size - pos).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        let bytes = self.bytes.lock();
        for (&at, &byte) in bytes.range(pos..pos + n as u64) {
            buf[(at - pos) as usize] = byte;
        }
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

impl WriteAt for SparseDevice {
    fn write_at(&self, pos: u64, buf: &[u8]) -> io::Result<usize> {
        if pos
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a write of {} bytes at {pos} past the end {}",
                    buf.len(),
                    self.size
                ),
            ));
        }
        let mut bytes = self.bytes.lock();
        // By index: `(pos..)` would step past `u64::MAX` after the last byte.
        for (i, &byte) in buf.iter().enumerate() {
            bytes.insert(pos + i as u64, byte);
        }
        Ok(buf.len())
    }

    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::other("a sparse test device has a fixed size"))
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

fn write_back(size: u64, page_size: usize) -> WriteBackCache<SparseDevice> {
    PageCache::builder()
        .page_size(page_size)
        .capacity(8)
        .max_batch_pages(4)
        .build_write_back(SparseDevice::new(size))
        .unwrap()
}

#[test]
fn a_write_into_the_last_page_below_2_pow_64_reaches_the_device() {
    for size in [u64::MAX, u64::MAX - 1, u64::MAX - 4095, u64::MAX - 4096] {
        let cache = write_back(size, 4096);
        cache.write_bytes(size - 10, b"top").unwrap();
        assert_eq!(cache.get_array::<3>(size - 10).unwrap(), *b"top");
        cache.commit().unwrap();
        let device = cache.device().written();
        let want: BTreeMap<u64, u8> = (size - 10..size - 7).zip(*b"top").collect();
        assert_eq!(device, want, "size {size}");
        assert_eq!(cache.cache().get_array::<3>(size - 10).unwrap(), *b"top");
    }
}

#[test]
fn one_byte_pages_at_the_top_of_the_range_are_written_and_read() {
    let size = u64::MAX;
    let cache = write_back(size, 1);
    cache.write_bytes(size - 5, b"abcde").unwrap();
    assert_eq!(cache.dirty_pages(), 5);
    cache.commit().unwrap();
    assert_eq!(cache.device().written().len(), 5);
    // Long reads (bulk runs, batched misses) reaching the last byte.
    let mut buf = vec![0; 700];
    cache.read_bytes_at(size - 700, &mut buf).unwrap();
    assert_eq!(buf[695..], *b"abcde");
    assert_eq!(cache.cache().get_u8(size - 1).unwrap(), b'e');
    assert!(cache.cache().get_u8(size).is_err());
}

#[test]
fn reads_at_the_top_of_the_range_return_the_device_bytes() {
    for page_size in [1, 2, 4096] {
        let device = SparseDevice::new(u64::MAX);
        device.write_at(u64::MAX - 3, &[7, 8, 9]).unwrap();
        let cache = PageCache::builder()
            .page_size(page_size)
            .capacity(4)
            .build(device)
            .unwrap();
        let mut buf = vec![0; 1000];
        cache.read_bytes_at(u64::MAX - 1000, &mut buf).unwrap();
        assert_eq!(buf[997..], [7, 8, 9], "{page_size}");
        let mut seen = Vec::new();
        cache
            .for_each_chunk(u64::MAX - 3, 3, |_, piece| seen.extend_from_slice(piece))
            .unwrap();
        assert_eq!(seen, [7, 8, 9]);
        let last = cache.load(u64::MAX - 1, 1).unwrap().unwrap();
        assert_eq!(*last.bytes().last().unwrap(), 9);
        let tail: Vec<u8> = cache
            .get_seq(u64::MAX - 3)
            .unwrap()
            .flat_map(|slice| slice.unwrap().to_vec())
            .collect();
        assert_eq!(tail, [7, 8, 9]);
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Writes bytes at `back` bytes before the end.
    Write {
        back: u64,
        bytes: Vec<u8>,
    },
    /// Reads `len` bytes at `back` bytes before the end.
    Read {
        back: u64,
        len: usize,
    },
    Persist {
        back: u64,
        len: u64,
    },
    Commit,
}

fn op(span: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..=span, proptest::collection::vec(1u8..=255, 1..80))
            .prop_map(|(back, bytes)| Op::Write { back, bytes }),
        3 => (1..=span, 0usize..700).prop_map(|(back, len)| Op::Read { back, len }),
        1 => (1..=span, 0..=span).prop_map(|(back, len)| Op::Persist { back, len }),
        1 => Just(Op::Commit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
    ))]

    /// A write-back cache over a device ending within a few pages of 2^64
    /// agrees with a sparse model after every step, and `commit` leaves
    /// the model's bytes on the device.
    #[test]
    fn a_write_back_cache_near_2_pow_64_agrees_with_a_sparse_model(
        below_max in 0u64..5000,
        page_shift in 0u32..13,
        ops in proptest::collection::vec(op(3 * 4096 + 100), 1..24),
    ) {
        let size = u64::MAX - below_max;
        let cache = write_back(size, 1 << page_shift);
        let mut model: BTreeMap<u64, u8> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Write { back, bytes } => {
                    let pos = size - back;
                    let result = cache.write_bytes(pos, &bytes);
                    if back < bytes.len() as u64 {
                        prop_assert!(result.is_err(), "a write past the end at {pos}");
                    } else {
                        result.unwrap();
                        model.extend((pos..pos + bytes.len() as u64).zip(bytes));
                    }
                }
                Op::Read { back, len } => {
                    let pos = size - back;
                    let mut buf = vec![0; len];
                    let result = cache.read_bytes_at(pos, &mut buf);
                    if back < len as u64 {
                        prop_assert!(result.is_err());
                    } else {
                        result.unwrap();
                        let want: Vec<u8> = (pos..pos + len as u64)
                            .map(|at| model.get(&at).copied().unwrap_or(0))
                            .collect();
                        prop_assert_eq!(buf, want, "{} bytes at {}", len, pos);
                    }
                }
                Op::Persist { back, len } => cache.persist(size - back, len).unwrap(),
                Op::Commit => cache.commit().unwrap(),
            }
        }
        cache.commit().unwrap();
        prop_assert_eq!(cache.dirty_pages(), 0);
        prop_assert_eq!(cache.device().written(), model);
    }
}
