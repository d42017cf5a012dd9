//! The varint decoders against their encoders (proptest), the published
//! examples, and every way a varint can be truncated or overflow.

use bincodec::OutOfBounds;
use bincodec::varint::{
    MAX_VARINT_LEN, ReadVarintError, VarintError, decode_git_offset, decode_git_offset_at,
    decode_sleb128, decode_sleb128_at, decode_uleb128, decode_uleb128_at, encode_git_offset,
    encode_sleb128, encode_uleb128,
};
use proptest::prelude::*;

fn with_trailing(encoded: &[u8], trailing: &[u8]) -> Vec<u8> {
    let mut bytes = encoded.to_vec();
    bytes.extend_from_slice(trailing);
    bytes
}

proptest! {
    #[test]
    fn uleb128_decodes_what_it_encodes(value: u64, trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
        let encoded = encode_uleb128(value);
        prop_assert_eq!(decode_uleb128(&with_trailing(&encoded, &trailing)), Ok((value, encoded.len())));
    }

    #[test]
    fn sleb128_decodes_what_it_encodes(value: i64, trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
        let encoded = encode_sleb128(value);
        prop_assert_eq!(decode_sleb128(&with_trailing(&encoded, &trailing)), Ok((value, encoded.len())));
    }

    #[test]
    fn git_offset_decodes_what_it_encodes(value: u64, trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
        let encoded = encode_git_offset(value);
        prop_assert_eq!(decode_git_offset(&with_trailing(&encoded, &trailing)), Ok((value, encoded.len())));
    }

    #[test]
    fn small_values_take_few_bytes(value in 0u64..1 << 14) {
        let expected = if value < 1 << 7 { 1 } else { 2 };
        prop_assert_eq!(encode_uleb128(value).len(), expected);
        // git's offsets reach one past LEB128's two-byte limit: 16511.
        prop_assert_eq!(encode_git_offset(value).len(), expected);
    }

    #[test]
    fn every_proper_prefix_of_an_encoding_is_truncated(value: u64, signed: i64) {
        let encoded = encode_uleb128(value);
        for len in 0..encoded.len() {
            prop_assert_eq!(decode_uleb128(&encoded[..len]), Err(VarintError::Truncated { len }));
        }
        let encoded = encode_git_offset(value);
        for len in 0..encoded.len() {
            prop_assert_eq!(decode_git_offset(&encoded[..len]), Err(VarintError::Truncated { len }));
        }
        let encoded = encode_sleb128(signed);
        for len in 0..encoded.len() {
            prop_assert_eq!(decode_sleb128(&encoded[..len]), Err(VarintError::Truncated { len }));
        }
    }

    #[test]
    fn decoding_at_a_position_matches_decoding_the_tail(
        prefix in proptest::collection::vec(any::<u8>(), 0..8),
        value: u64,
    ) {
        let pos = prefix.len() as u64;
        let bytes = with_trailing(&prefix, &encode_uleb128(value));
        prop_assert_eq!(decode_uleb128_at(bytes.as_slice(), pos), Ok((value, encode_uleb128(value).len())));
        let bytes = with_trailing(&prefix, &encode_sleb128(value as i64));
        prop_assert_eq!(decode_sleb128_at(bytes.as_slice(), pos), Ok((value as i64, encode_sleb128(value as i64).len())));
        let bytes = with_trailing(&prefix, &encode_git_offset(value));
        prop_assert_eq!(decode_git_offset_at(bytes.as_slice(), pos), Ok((value, encode_git_offset(value).len())));
    }
}

#[test]
fn uleb128_matches_the_dwarf_examples() {
    let examples: [(u64, &[u8]); 7] = [
        (2, &[0x02]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (129, &[0x81, 0x01]),
        (130, &[0x82, 0x01]),
        (12857, &[0xb9, 0x64]),
        (624_485, &[0xe5, 0x8e, 0x26]),
    ];
    for (value, bytes) in examples {
        assert_eq!(&encode_uleb128(value)[..], bytes, "encoding {value}");
        assert_eq!(decode_uleb128(bytes), Ok((value, bytes.len())));
    }
}

#[test]
fn sleb128_matches_the_dwarf_examples() {
    let examples: [(i64, &[u8]); 9] = [
        (2, &[0x02]),
        (-2, &[0x7e]),
        (127, &[0xff, 0x00]),
        (-127, &[0x81, 0x7f]),
        (128, &[0x80, 0x01]),
        (-128, &[0x80, 0x7f]),
        (129, &[0x81, 0x01]),
        (-129, &[0xff, 0x7e]),
        (-123_456, &[0xc0, 0xbb, 0x78]),
    ];
    for (value, bytes) in examples {
        assert_eq!(&encode_sleb128(value)[..], bytes, "encoding {value}");
        assert_eq!(decode_sleb128(bytes), Ok((value, bytes.len())));
    }
}

#[test]
fn git_offset_adds_one_per_continuation() {
    // Each length starts where the previous one ends: no value has two forms.
    let examples: [(u64, &[u8]); 6] = [
        (0, &[0x00]),
        (127, &[0x7f]),
        (128, &[0x80, 0x00]),
        (16_511, &[0xff, 0x7f]),
        (16_512, &[0x80, 0x80, 0x00]),
        (2_113_663, &[0xff, 0xff, 0x7f]),
    ];
    for (value, bytes) in examples {
        assert_eq!(&encode_git_offset(value)[..], bytes, "encoding {value}");
        assert_eq!(decode_git_offset(bytes), Ok((value, bytes.len())));
    }
}

#[test]
fn extremes_take_ten_bytes_and_round_trip() {
    let uleb_max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(&encode_uleb128(u64::MAX)[..], uleb_max);
    assert_eq!(decode_uleb128(&uleb_max), Ok((u64::MAX, MAX_VARINT_LEN)));

    let sleb_min = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f];
    assert_eq!(&encode_sleb128(i64::MIN)[..], sleb_min);
    assert_eq!(decode_sleb128(&sleb_min), Ok((i64::MIN, MAX_VARINT_LEN)));
    let sleb_max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
    assert_eq!(&encode_sleb128(i64::MAX)[..], sleb_max);
    assert_eq!(decode_sleb128(&sleb_max), Ok((i64::MAX, MAX_VARINT_LEN)));

    let git_max = encode_git_offset(u64::MAX);
    assert_eq!(git_max.len(), MAX_VARINT_LEN);
    assert_eq!(decode_git_offset(&git_max), Ok((u64::MAX, MAX_VARINT_LEN)));
}

#[test]
fn redundant_leb128_padding_is_accepted_within_ten_bytes() {
    assert_eq!(decode_uleb128(&[0x80, 0x00]), Ok((0, 2)));
    assert_eq!(decode_uleb128(&[0x81, 0x80, 0x80, 0x00]), Ok((1, 4)));
    assert_eq!(decode_sleb128(&[0xff, 0x7f]), Ok((-1, 2)));
    let mut zero_in_ten = [0x80u8; 10];
    zero_in_ten[9] = 0x00;
    assert_eq!(decode_uleb128(&zero_in_ten), Ok((0, 10)));
    assert_eq!(decode_sleb128(&zero_in_ten), Ok((0, 10)));
}

#[test]
fn empty_input_is_truncated_at_zero_bytes() {
    let truncated = Err(VarintError::Truncated { len: 0 });
    assert_eq!(decode_uleb128(&[]), truncated);
    assert_eq!(decode_sleb128(&[]), truncated.map(|(v, n)| (v as i64, n)));
    assert_eq!(decode_git_offset(&[]), truncated);
}

#[test]
fn continuation_bytes_up_to_nine_are_truncated() {
    for len in 1..MAX_VARINT_LEN {
        let bytes = vec![0x80; len];
        assert_eq!(decode_uleb128(&bytes), Err(VarintError::Truncated { len }));
        assert_eq!(decode_sleb128(&bytes), Err(VarintError::Truncated { len }));
        assert_eq!(
            decode_git_offset(&bytes),
            Err(VarintError::Truncated { len })
        );
    }
}

#[test]
fn uleb128_overflows_past_bit_63_or_past_ten_bytes() {
    let mut bytes = [0xffu8; 10];
    bytes[9] = 0x02; // bit 64
    assert_eq!(
        decode_uleb128(&bytes),
        Err(VarintError::Overflow { len: 10 })
    );
    bytes[9] = 0x7f;
    assert_eq!(
        decode_uleb128(&bytes),
        Err(VarintError::Overflow { len: 10 })
    );
    // Zero padding past ten bytes: the value fits, the encoding does not.
    let mut padded = [0x80u8; 11];
    padded[10] = 0x00;
    assert_eq!(
        decode_uleb128(&padded),
        Err(VarintError::Overflow { len: 10 })
    );
    // Ten continuation bytes overflow even when the input then ends.
    assert_eq!(
        decode_uleb128(&[0x80; 10]),
        Err(VarintError::Overflow { len: 10 })
    );
}

#[test]
fn sleb128_overflows_outside_i64_or_past_ten_bytes() {
    let mut above_max = [0xffu8; 10];
    above_max[9] = 0x01; // 2^63 and up: positive, too big
    assert_eq!(
        decode_sleb128(&above_max),
        Err(VarintError::Overflow { len: 10 })
    );
    let mut below_min = [0x80u8; 10];
    below_min[9] = 0x7e; // below -2^63
    assert_eq!(
        decode_sleb128(&below_min),
        Err(VarintError::Overflow { len: 10 })
    );
    let mut sign_only = [0x80u8; 10];
    sign_only[9] = 0x40;
    assert_eq!(
        decode_sleb128(&sign_only),
        Err(VarintError::Overflow { len: 10 })
    );
    assert_eq!(
        decode_sleb128(&[0xff; 11]),
        Err(VarintError::Overflow { len: 10 })
    );
}

#[test]
fn git_offset_overflows_as_soon_as_no_next_byte_could_fit() {
    // After nine 0xff the value is past 2^57 - 1: (value + 1) << 7 cannot fit.
    assert_eq!(
        decode_git_offset(&[0xff; 9]),
        Err(VarintError::Overflow { len: 9 })
    );
    assert_eq!(
        decode_git_offset(&[0xff; 20]),
        Err(VarintError::Overflow { len: 9 })
    );
    // The largest value is ten bytes; the same nine-byte prefix plus one
    // more in its last continuation byte overflows.
    let max = encode_git_offset(u64::MAX);
    let mut one_more = [0u8; 10];
    one_more.copy_from_slice(&max);
    one_more[8] += 1;
    assert_eq!(
        decode_git_offset(&one_more),
        Err(VarintError::Overflow { len: 9 })
    );
}

#[test]
fn decoding_past_the_end_of_a_source_is_its_out_of_bounds_error() {
    let bytes = [0x00, 0x80, 0x80];
    let expected = Err(ReadVarintError::Source(OutOfBounds {
        pos: 3,
        len: 1,
        size: 3,
    }));
    assert_eq!(decode_uleb128_at(&bytes, 1), expected);
    assert_eq!(
        decode_sleb128_at(&bytes, 1),
        expected.map(|(v, n)| (v as i64, n))
    );
    assert_eq!(decode_git_offset_at(&bytes, 1), expected);
}

#[test]
fn decoding_at_u64_max_does_not_panic() {
    let bytes = [0x00u8; 4];
    let error = ReadVarintError::Source(OutOfBounds {
        pos: u64::MAX,
        len: 1,
        size: 4,
    });
    assert_eq!(decode_uleb128_at(&bytes, u64::MAX), Err(error));
    assert_eq!(decode_sleb128_at(&bytes, u64::MAX), Err(error));
    assert_eq!(decode_git_offset_at(&bytes, u64::MAX), Err(error));
}

#[test]
fn overflow_through_a_source_is_a_varint_error() {
    let bytes = [0xffu8; 12];
    let error = Err(ReadVarintError::Varint(VarintError::Overflow { len: 10 }));
    assert_eq!(decode_uleb128_at(&bytes, 2), error);
    assert_eq!(
        decode_git_offset_at(&bytes, 2),
        Err(ReadVarintError::Varint(VarintError::Overflow { len: 9 }))
    );
}

#[test]
fn errors_explain_themselves() {
    assert_eq!(
        VarintError::Truncated { len: 2 }.to_string(),
        "varint is truncated: the input ends after 2 bytes, all with the continuation bit set"
    );
    assert_eq!(
        VarintError::Overflow { len: 10 }.to_string(),
        "varint does not fit in 64 bits (certain after 10 bytes)"
    );
    let source_error: ReadVarintError<OutOfBounds> = ReadVarintError::Source(OutOfBounds {
        pos: 3,
        len: 1,
        size: 3,
    });
    assert_eq!(
        source_error.to_string(),
        "1 bytes at position 3 are out of bounds of a source of 3 bytes"
    );
}

#[test]
fn encoded_varints_debug_as_their_bytes() {
    assert_eq!(
        format!("{:?}", encode_uleb128(300)),
        "EncodedVarint([172, 2])"
    );
    assert_eq!(encode_git_offset(128).as_ref(), &[0x80, 0x00]);
}
