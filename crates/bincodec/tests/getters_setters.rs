//! Every getter and setter, for every width and byte order, against
//! `from_*_bytes`/`to_*_bytes`: round trips, agreement on random data,
//! the boundary at the end of the source, and positions that overflow.
//!
//! One macro generates a module of tests per getter/setter pair, so that
//! every width and byte order gets exactly the same checks.

use bincodec::{ByteSinkExt, ByteSourceExt, OutOfBounds};
use proptest::prelude::*;

/// Positions where `pos + width` cannot be computed in `u64` or `usize`, or
/// lies far past any real source.
fn huge_positions(width: usize) -> [u64; 6] {
    [
        u64::MAX,
        u64::MAX - (width as u64 - 1),
        u64::MAX - width as u64 / 2,
        1 << 63,
        usize::MAX as u64,
        u64::from(u32::MAX) + 1,
    ]
}

macro_rules! width_and_order_tests {
    ($($module:ident: $ty:ident, $get:ident, $set:ident, $from:ident, $to:ident;)*) => {$(
        mod $module {
            use super::*;

            const WIDTH: usize = size_of::<$ty>();

            fn out_of_bounds(pos: u64, size: usize) -> OutOfBounds {
                OutOfBounds { pos, len: WIDTH as u64, size: size as u64 }
            }

            proptest! {
                #[test]
                fn set_then_get_round_trips(
                    value: $ty,
                    prefix in 0usize..24,
                    suffix in 0usize..24,
                    fill: u8,
                ) {
                    let mut buf = vec![fill; prefix + WIDTH + suffix];
                    prop_assert_eq!(buf.as_mut_slice().$set(prefix as u64, value), Ok(()));
                    prop_assert_eq!(&buf[prefix..prefix + WIDTH], &value.$to()[..]);
                    prop_assert!(buf[..prefix].iter().chain(&buf[prefix + WIDTH..]).all(|&b| b == fill));
                    prop_assert_eq!(buf.as_slice().$get(prefix as u64), Ok(value));
                }

                #[test]
                fn get_agrees_with_from_bytes(
                    data in proptest::collection::vec(any::<u8>(), 0..48),
                    pos in 0u64..56,
                ) {
                    let start = pos as usize;
                    let expected = match data.get(start..start + WIDTH) {
                        Some(bytes) => Ok($ty::$from(bytes.try_into().unwrap())),
                        None => Err(out_of_bounds(pos, data.len())),
                    };
                    prop_assert_eq!(data.as_slice().$get(pos), expected);
                }

                #[test]
                fn set_agrees_with_to_bytes_or_writes_nothing(
                    data in proptest::collection::vec(any::<u8>(), 0..48),
                    pos in 0u64..56,
                    value: $ty,
                ) {
                    let start = pos as usize;
                    let mut expected = data.clone();
                    let expected_result = match expected.get_mut(start..start + WIDTH) {
                        Some(bytes) => {
                            bytes.copy_from_slice(&value.$to());
                            Ok(())
                        }
                        None => Err(out_of_bounds(pos, data.len())),
                    };
                    let mut buf = data.clone();
                    prop_assert_eq!(buf.as_mut_slice().$set(pos, value), expected_result);
                    prop_assert_eq!(buf, expected);
                }
            }

            #[test]
            fn reads_and_writes_at_size_minus_width_but_not_one_past() {
                for size in WIDTH..WIDTH + 20 {
                    let mut data: Vec<u8> = (0..size as u8).map(|b| b.wrapping_mul(37)).collect();
                    let last = (size - WIDTH) as u64;
                    let expected = $ty::$from(data[size - WIDTH..].try_into().unwrap());
                    assert_eq!(data.as_slice().$get(last), Ok(expected), "size {size}");
                    assert_eq!(data.as_slice().$get(last + 1), Err(out_of_bounds(last + 1, size)));

                    let before = data.clone();
                    assert_eq!(data.as_mut_slice().$set(last + 1, expected), Err(out_of_bounds(last + 1, size)));
                    assert_eq!(data, before, "an out-of-bounds write changed the sink");
                    assert_eq!(data.as_mut_slice().$set(last, expected), Ok(()));
                    assert_eq!(data, before, "writing back the same value changed the sink");
                }
            }

            #[test]
            fn sources_shorter_than_the_width_fail_at_zero() {
                for size in 0..WIDTH {
                    let mut data = vec![0xaa; size];
                    assert_eq!(data.as_slice().$get(0), Err(out_of_bounds(0, size)));
                    assert_eq!(data.as_mut_slice().$set(0, $ty::default()), Err(out_of_bounds(0, size)));
                    assert!(data.iter().all(|&b| b == 0xaa));
                }
            }

            #[test]
            fn huge_and_overflowing_positions_are_out_of_bounds() {
                let mut data = vec![0x55u8; 64];
                for pos in huge_positions(WIDTH) {
                    assert_eq!(data.as_slice().$get(pos), Err(out_of_bounds(pos, 64)), "pos {pos}");
                    assert_eq!(data.as_mut_slice().$set(pos, $ty::MAX), Err(out_of_bounds(pos, 64)));
                }
                assert!(data.iter().all(|&b| b == 0x55));
            }
        }
    )*};
}

width_and_order_tests! {
    u8_: u8, get_u8, set_u8, from_le_bytes, to_le_bytes;
    i8_: i8, get_i8, set_i8, from_le_bytes, to_le_bytes;
    u16_le: u16, get_u16_le, set_u16_le, from_le_bytes, to_le_bytes;
    u16_be: u16, get_u16_be, set_u16_be, from_be_bytes, to_be_bytes;
    u16_ne: u16, get_u16_ne, set_u16_ne, from_ne_bytes, to_ne_bytes;
    i16_le: i16, get_i16_le, set_i16_le, from_le_bytes, to_le_bytes;
    i16_be: i16, get_i16_be, set_i16_be, from_be_bytes, to_be_bytes;
    i16_ne: i16, get_i16_ne, set_i16_ne, from_ne_bytes, to_ne_bytes;
    u32_le: u32, get_u32_le, set_u32_le, from_le_bytes, to_le_bytes;
    u32_be: u32, get_u32_be, set_u32_be, from_be_bytes, to_be_bytes;
    u32_ne: u32, get_u32_ne, set_u32_ne, from_ne_bytes, to_ne_bytes;
    i32_le: i32, get_i32_le, set_i32_le, from_le_bytes, to_le_bytes;
    i32_be: i32, get_i32_be, set_i32_be, from_be_bytes, to_be_bytes;
    i32_ne: i32, get_i32_ne, set_i32_ne, from_ne_bytes, to_ne_bytes;
    u64_le: u64, get_u64_le, set_u64_le, from_le_bytes, to_le_bytes;
    u64_be: u64, get_u64_be, set_u64_be, from_be_bytes, to_be_bytes;
    u64_ne: u64, get_u64_ne, set_u64_ne, from_ne_bytes, to_ne_bytes;
    i64_le: i64, get_i64_le, set_i64_le, from_le_bytes, to_le_bytes;
    i64_be: i64, get_i64_be, set_i64_be, from_be_bytes, to_be_bytes;
    i64_ne: i64, get_i64_ne, set_i64_ne, from_ne_bytes, to_ne_bytes;
    u128_le: u128, get_u128_le, set_u128_le, from_le_bytes, to_le_bytes;
    u128_be: u128, get_u128_be, set_u128_be, from_be_bytes, to_be_bytes;
    u128_ne: u128, get_u128_ne, set_u128_ne, from_ne_bytes, to_ne_bytes;
    i128_le: i128, get_i128_le, set_i128_le, from_le_bytes, to_le_bytes;
    i128_be: i128, get_i128_be, set_i128_be, from_be_bytes, to_be_bytes;
    i128_ne: i128, get_i128_ne, set_i128_ne, from_ne_bytes, to_ne_bytes;
}
