//! Random op sequences against a `HashMap` model (the same checking function
//! the fuzz target runs), with small and large values, forced defrags,
//! clears, waits and injected write errors.

use proptest::prelude::*;
use spillcache::fuzz::{Op, Scenario, run};

fn value_len() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => 0u16..64,
        3 => 64u16..2048,
        1 => 2048u16..=u16::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    prop_oneof![
        8 => (key.clone(), value_len(), any::<u8>()).prop_map(|(key, len, fill)| Op::Add { key, len, fill }),
        2 => (key.clone(), value_len(), any::<u8>())
            .prop_map(|(key, len, fill)| Op::AddMemoryOnly { key, len, fill }),
        4 => key.clone().prop_map(|key| Op::Remove { key }),
        4 => (key, any::<bool>()).prop_map(|(key, store_in_ram)| Op::Get { key, store_in_ram }),
        1 => any::<u8>().prop_map(|divisor| Op::RemoveFromRam { divisor }),
        1 => Just(Op::Clear),
        2 => Just(Op::Wait),
        2 => Just(Op::Defrag),
    ]
}

fn scenario(max_fault: u8) -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(0u8), 1u8..=64],
        prop_oneof![Just(0u8), Just(16u8), any::<u8>()],
        prop_oneof![Just(0u16), any::<u16>()],
        prop_oneof![3 => Just(0u8), 1 => 2..=max_fault],
        proptest::collection::vec(op(), 1..60),
    )
        .prop_map(
            |(small_hole_threshold, defrag_factor, ram_budget, write_fault_every, ops)| Scenario {
                small_hole_threshold,
                defrag_factor,
                ram_budget,
                write_fault_every,
                ops,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_key_reads_as_the_model_says(scenario in scenario(9)) {
        run(&scenario).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn a_defrag_between_overwrites_keeps_the_newest_values() {
    let ops = vec![
        Op::Add {
            key: 1,
            len: 3000,
            fill: 1,
        },
        Op::Add {
            key: 2,
            len: 10,
            fill: 2,
        },
        Op::Wait,
        Op::Add {
            key: 1,
            len: 20,
            fill: 3,
        },
        Op::Remove { key: 2 },
        Op::Defrag,
        Op::Add {
            key: 2,
            len: 5000,
            fill: 4,
        },
        Op::Get {
            key: 1,
            store_in_ram: true,
        },
        Op::Defrag,
        Op::Wait,
        Op::Clear,
        Op::Add {
            key: 3,
            len: 1,
            fill: 5,
        },
    ];
    for write_fault_every in [0, 2, 3] {
        let scenario = Scenario {
            small_hole_threshold: 0,
            defrag_factor: 0,
            ram_budget: 0,
            write_fault_every,
            ops: ops.clone(),
        };
        run(&scenario).unwrap();
    }
}
