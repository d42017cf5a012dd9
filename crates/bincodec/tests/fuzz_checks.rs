//! The fuzz targets' checks (`bincodec::fuzz`) run on random inputs, so a
//! plain `cargo test` covers what the fuzzer does; plus inputs built to
//! reach the deep paths (long varints, inputs past 300 bytes).

use bincodec::fuzz;
use bincodec::varint::{encode_git_offset, encode_sleb128, encode_uleb128};
use proptest::prelude::*;

/// Bytes that are mostly varint continuation bytes, so that random inputs
/// reach the 10-byte limit and the overflow checks often.
fn varint_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => 0x80u8..=0xff,
            1 => 0x00u8..=0x7f,
            1 => Just(0xffu8),
            1 => Just(0x80u8),
            1 => prop_oneof![Just(0x00u8), Just(0x01), Just(0x7f), Just(0x7e), Just(0x40)],
        ],
        0..40,
    )
}

/// Encodings of random values, concatenated, with random bytes between.
fn encoded_values() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<u64>(), 0u8..3, any::<u8>()), 0..6).prop_map(|parts| {
        let mut bytes = Vec::new();
        for (value, kind, junk) in parts {
            match kind {
                0 => bytes.extend_from_slice(&encode_uleb128(value)),
                1 => bytes.extend_from_slice(&encode_sleb128(value as i64)),
                _ => bytes.extend_from_slice(&encode_git_offset(value)),
            }
            bytes.push(junk);
        }
        bytes
    })
}

proptest! {
    #[test]
    fn getters_agree_with_from_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        fuzz::getters(&data);
    }

    #[test]
    fn setters_agree_with_to_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        fuzz::setters(&data);
    }

    #[test]
    fn the_getters_target_agrees_whichever_check_the_input_picks(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        fuzz::getters_or_setters(&data);
    }

    #[test]
    fn the_varint_target_agrees_whichever_codec_the_input_picks(data in varint_like_bytes()) {
        fuzz::one_varint(&data);
    }

    #[test]
    fn varints_agree_with_models_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        fuzz::varints(&data);
    }

    #[test]
    fn varints_agree_with_models_on_continuation_heavy_bytes(data in varint_like_bytes()) {
        fuzz::varints(&data);
    }

    #[test]
    fn varints_agree_with_models_on_encoded_values(data in encoded_values()) {
        fuzz::varints(&data);
    }
}

#[test]
fn getters_and_setters_hold_on_long_inputs() {
    let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + i / 256) as u8).collect();
    fuzz::getters(&data);
    fuzz::setters(&data);
}

#[test]
fn checks_hold_on_empty_input() {
    fuzz::getters(&[]);
    fuzz::setters(&[]);
    fuzz::varints(&[]);
}

#[test]
fn varint_checks_hold_at_the_ten_byte_limit() {
    for last in [0x00, 0x01, 0x02, 0x40, 0x7e, 0x7f, 0x80, 0xff] {
        for fill in [0x80u8, 0xff] {
            let mut data = vec![fill; 9];
            data.push(last);
            data.push(0x00);
            fuzz::varints(&data);
        }
    }
}
