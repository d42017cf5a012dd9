//! The source and sink implementations (slices, arrays, `Vec`, references,
//! trait objects), byte-range reads and writes, and a custom source whose
//! richer error reaches the caller through every getter.

use bincodec::varint::{ReadVarintError, decode_uleb128_at};
use bincodec::{ByteSink, ByteSinkExt, ByteSource, ByteSourceExt, OutOfBounds};

const BYTES: [u8; 6] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06];

/// Reads the same values through any source holding `BYTES`.
fn assert_reads_bytes<S: ByteSource<Error = OutOfBounds> + ?Sized>(src: &S) {
    assert_eq!(src.get_u8(5), Ok(0x06));
    assert_eq!(src.get_u16_be(0), Ok(0x0102));
    assert_eq!(src.get_u32_le(2), Ok(0x0605_0403));
    assert_eq!(src.get_array::<2>(4), Ok([0x05, 0x06]));
    assert_eq!(
        src.get_u32_le(3),
        Err(OutOfBounds {
            pos: 3,
            len: 4,
            size: 6
        })
    );
}

/// Writes the same values through any sink of 6 bytes, returning what it wrote.
fn write_pattern<S: ByteSink<Error = OutOfBounds> + ?Sized>(sink: &mut S) {
    assert_eq!(sink.set_u16_be(0, 0x0102), Ok(()));
    assert_eq!(sink.set_u32_le(2, 0x0605_0403), Ok(()));
    assert_eq!(
        sink.set_u32_le(3, 0),
        Err(OutOfBounds {
            pos: 3,
            len: 4,
            size: 6
        })
    );
}

#[test]
fn slices_arrays_and_references_are_sources() {
    let slice: &[u8] = &BYTES;
    assert_reads_bytes(slice);
    assert_reads_bytes(&slice);
    assert_reads_bytes(&BYTES);
    assert_reads_bytes(&&BYTES);
    let mut array = BYTES;
    let as_mut: &mut [u8] = &mut array;
    assert_reads_bytes(&as_mut);
}

#[cfg(feature = "alloc")]
#[test]
fn vecs_and_references_to_vecs_are_sources() {
    let vec = BYTES.to_vec();
    assert_reads_bytes(&vec);
    assert_reads_bytes(&&vec);
    let mut vec = vec;
    assert_reads_bytes(&&mut vec);
}

#[test]
fn trait_objects_are_sources_and_sinks() {
    let src: &dyn ByteSource<Error = OutOfBounds> = &BYTES;
    assert_reads_bytes(src);

    let mut buf = [0u8; 6];
    let sink: &mut dyn ByteSink<Error = OutOfBounds> = &mut buf;
    write_pattern(sink);
    assert_eq!(buf, BYTES);
}

#[test]
fn mutable_slices_arrays_and_references_are_sinks() {
    let mut array = [0u8; 6];
    write_pattern(&mut array);
    assert_eq!(array, BYTES);

    let mut array = [0u8; 6];
    write_pattern(array.as_mut_slice());
    assert_eq!(array, BYTES);

    let mut array = [0u8; 6];
    let mut as_mut: &mut [u8] = &mut array;
    write_pattern(&mut as_mut);
    assert_eq!(array, BYTES);
}

#[cfg(feature = "alloc")]
#[test]
fn a_vec_is_a_fixed_size_sink_that_never_grows() {
    let mut vec = vec![0u8; 6];
    write_pattern(&mut vec);
    assert_eq!(vec, BYTES);
    assert_eq!(
        vec.set_u8(6, 1),
        Err(OutOfBounds {
            pos: 6,
            len: 1,
            size: 6
        })
    );
    assert_eq!(vec.len(), 6);
}

#[test]
fn read_bytes_at_fills_the_buffer_from_pos() {
    let mut out = [0u8; 3];
    assert_eq!(BYTES.read_bytes_at(3, &mut out), Ok(()));
    assert_eq!(out, [4, 5, 6]);
}

#[test]
fn read_bytes_at_rejects_ranges_past_the_end() {
    let mut out = [0u8; 3];
    assert_eq!(
        BYTES.read_bytes_at(4, &mut out),
        Err(OutOfBounds {
            pos: 4,
            len: 3,
            size: 6
        })
    );
}

#[test]
fn empty_ranges_fit_up_to_and_including_the_end() {
    assert_eq!(BYTES.read_bytes_at(6, &mut []), Ok(()));
    assert_eq!(BYTES.get_array::<0>(6), Ok([]));
    assert_eq!(
        BYTES.read_bytes_at(7, &mut []),
        Err(OutOfBounds {
            pos: 7,
            len: 0,
            size: 6
        })
    );
    let mut buf = BYTES;
    assert_eq!(buf.write_bytes_at(6, &[]), Ok(()));
    assert!(buf.write_bytes_at(7, &[]).is_err());
}

#[test]
fn ranges_whose_end_overflows_u64_are_out_of_bounds() {
    let mut out = [0u8; 4];
    for pos in [u64::MAX, u64::MAX - 2, u64::MAX - 3] {
        assert_eq!(
            BYTES.read_bytes_at(pos, &mut out),
            Err(OutOfBounds {
                pos,
                len: 4,
                size: 6
            })
        );
        let mut buf = BYTES;
        assert!(buf.write_bytes_at(pos, &out).is_err());
        assert_eq!(buf, BYTES);
    }
}

#[test]
fn write_bytes_at_writes_nothing_when_out_of_bounds() {
    let mut buf = BYTES;
    assert_eq!(
        buf.write_bytes_at(5, &[9, 9]),
        Err(OutOfBounds {
            pos: 5,
            len: 2,
            size: 6
        })
    );
    assert_eq!(buf, BYTES);
}

#[test]
fn out_of_bounds_check_returns_slice_indices() {
    assert_eq!(OutOfBounds::check(2, 4, 6), Ok((2, 6)));
    assert_eq!(OutOfBounds::check(6, 0, 6), Ok((6, 6)));
    assert!(OutOfBounds::check(7, 0, 6).is_err());
    assert!(OutOfBounds::check(3, usize::MAX, usize::MAX).is_err());
    assert_eq!(
        OutOfBounds::check(u64::MAX, 1, usize::MAX),
        Err(OutOfBounds {
            pos: u64::MAX,
            len: 1,
            size: usize::MAX as u64
        })
    );
}

#[test]
fn out_of_bounds_says_position_length_and_size() {
    let error = BYTES.get_u64_be(2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "8 bytes at position 2 are out of bounds of a source of 6 bytes"
    );
}

/// The error of a source over a device: out of bounds, or the device failed.
#[derive(Debug, PartialEq)]
enum DiskError {
    OutOfBounds(OutOfBounds),
    Io { pos: u64 },
}

impl From<OutOfBounds> for DiskError {
    fn from(error: OutOfBounds) -> Self {
        DiskError::OutOfBounds(error)
    }
}

/// A source over `bytes` whose byte at `bad_pos` cannot be read, as a disk
/// with a bad sector.
struct BadSectorDisk {
    bytes: [u8; 8],
    bad_pos: u64,
}

impl ByteSource for BadSectorDisk {
    type Error = DiskError;

    fn read_bytes_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let (start, end) = OutOfBounds::check(pos, buf.len(), self.bytes.len())?;
        if (start as u64..end as u64).contains(&self.bad_pos) {
            return Err(DiskError::Io { pos: self.bad_pos });
        }
        buf.copy_from_slice(&self.bytes[start..end]);
        Ok(())
    }
}

#[test]
fn a_custom_source_reports_its_own_errors_through_every_getter() {
    let disk = BadSectorDisk {
        bytes: [0x10, 0x20, 0x30, 0x40, 0xd0, 0x60, 0x70, 0x80],
        bad_pos: 5,
    };
    assert_eq!(disk.get_u32_be(0), Ok(0x1020_3040));
    assert_eq!(disk.get_u32_be(3), Err(DiskError::Io { pos: 5 }));
    assert_eq!(disk.get_i8(5), Err(DiskError::Io { pos: 5 }));
    assert_eq!(
        disk.get_u16_le(7),
        Err(DiskError::OutOfBounds(OutOfBounds {
            pos: 7,
            len: 2,
            size: 8
        }))
    );
    // A varint read through the source carries its error too: 0xd0 at 4
    // continues into the bad byte.
    assert_eq!(
        decode_uleb128_at(&disk, 4),
        Err(ReadVarintError::Source(DiskError::Io { pos: 5 }))
    );
}
