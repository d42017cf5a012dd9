//! Proptest: random op sequences against the flat `Vec<u8>` model, through
//! the same checking functions the fuzz targets call.

use pagecache::fuzz::{
    At, Endian, ReadInput, ReadOp, Setup, Width, WriteInput, WriteOp, read_ops, write_ops,
};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

fn width() -> impl Strategy<Value = Width> {
    proptest::sample::select(Width::ALL.to_vec())
}

fn endian() -> impl Strategy<Value = Endian> {
    proptest::sample::select(Endian::ALL.to_vec())
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        4 => (0u16..700).prop_map(At::Start),
        4 => (0u16..40).prop_map(At::FromEnd),
        1 => (0u16..20).prop_map(At::PastEnd),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 7), any::<u64>()].prop_map(At::Raw),
    ]
}

/// Devices of length 0 and of lengths that are rarely a multiple of the
/// page size; pages of 1 to 4096 bytes; 1 to 64 pages.
fn setup() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![1 => Just(0u16), 6 => 1u16..3000],
        0u8..13,
        0u8..7,
        any::<u8>(),
    )
        .prop_map(
            |(device_len, page_shift, capacity_shift, batch_shift)| Setup {
                device_len,
                page_shift,
                capacity_shift,
                batch_shift,
            },
        )
}

fn read_op() -> impl Strategy<Value = ReadOp> {
    prop_oneof![
        8 => (width(), endian(), at()).prop_map(|(width, endian, at)| ReadOp::Get { width, endian, at }),
        4 => (at(), 0u16..300).prop_map(|(at, len)| ReadOp::Read { at, len }),
        3 => (at(), prop_oneof![0u16..9, 0u16..5000]).prop_map(|(at, min_len)| ReadOp::Load { at, min_len }),
        1 => (at(), 0u8..6).prop_map(|(at, steps)| ReadOp::Next { at, steps }),
        1 => (at(), 0u8..6).prop_map(|(at, take)| ReadOp::Seq { at, take }),
        1 => (at(), proptest::option::of(0u16..200)).prop_map(|(at, len)| ReadOp::Iter { at, len }),
        2 => (at(), 0u16..400).prop_map(|(at, len)| ReadOp::Syscalls { at, len }),
        2 => at().prop_map(|at| ReadOp::IsCached { at }),
        2 => (at(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(at, bytes)| ReadOp::Write { at, bytes }),
        1 => (0u16..3200).prop_map(|len| ReadOp::SetLen { len }),
        2 => (at(), prop_oneof![0u32..3, 0u32..5000]).prop_map(|(at, len)| ReadOp::Invalidate { at, len }),
        1 => Just(ReadOp::InvalidateAll),
        1 => (at(), 0u16..100).prop_map(|(at, len)| ReadOp::ReadFailing { at, len }),
    ]
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        8 => (width(), endian(), at(), any::<u128>())
            .prop_map(|(width, endian, at, value)| WriteOp::Set { width, endian, at, value }),
        5 => (width(), endian(), at()).prop_map(|(width, endian, at)| WriteOp::Get { width, endian, at }),
        2 => (at(), proptest::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(at, bytes)| WriteOp::WriteBytes { at, bytes }),
        3 => (at(), 0u16..300).prop_map(|(at, len)| WriteOp::Read { at, len }),
        1 => (at(), 0u16..20).prop_map(|(at, min_len)| WriteOp::Load { at, min_len }),
        2 => (at(), 0u16..500).prop_map(|(at, len)| WriteOp::Persist { at, len }),
        2 => Just(WriteOp::Commit),
        2 => (1u8..4, any::<bool>(), prop_oneof![Just(0u8), 1u8..20])
            .prop_map(|(nth, no_space, short)| WriteOp::FailWrites { nth, no_space, short }),
        1 => Just(WriteOp::Heal),
        1 => (at(), 0u16..100).prop_map(|(at, len)| WriteOp::Invalidate { at, len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn read_ops_agree_with_the_model(
        setup in setup(),
        ops in proptest::collection::vec(read_op(), 1..60),
    ) {
        let input = ReadInput { setup, ops };
        if let Err(mismatch) = read_ops(&input) {
            prop_assert!(false, "{mismatch}\n{:?}", input.setup);
        }
    }

    #[test]
    fn write_back_agrees_with_the_model_and_loses_nothing_under_faults(
        setup in setup(),
        max_dirty_pages in any::<u8>(),
        ops in proptest::collection::vec(write_op(), 1..60),
    ) {
        let input = WriteInput { setup, max_dirty_pages, ops };
        if let Err(mismatch) = write_ops(&input) {
            prop_assert!(false, "{mismatch}\n{:?}", input.setup);
        }
    }
}
