//! Proptests: `MemDevice`, `File` and `FaultyDevice` agree with a plain `Vec` model.

use std::fs::File;

use blockdev::{Errno, Fault, FaultyDevice, MemDevice, ReadAt, WriteAt, anonymous_file};
use proptest::prelude::*;

/// Positions stay small so sparse writes do not allocate much.
const MAX_POS: u64 = 5000;

#[derive(Clone, Debug)]
enum Op {
    Write { pos: u64, data: Vec<u8> },
    Read { pos: u64, len: usize },
    ReadExact { pos: u64, len: usize },
    SetLen { len: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..MAX_POS, prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(pos, data)| Op::Write { pos, data }),
        3 => (0..MAX_POS + 100, 0usize..400).prop_map(|(pos, len)| Op::Read { pos, len }),
        2 => (0..MAX_POS + 100, 0usize..400).prop_map(|(pos, len)| Op::ReadExact { pos, len }),
        1 => (0..MAX_POS).prop_map(|len| Op::SetLen { len }),
    ]
}

/// The model: a byte vector that zero-fills gaps, like a sparse file.
#[derive(Default)]
struct Model {
    bytes: Vec<u8>,
}

impl Model {
    fn write(&mut self, pos: u64, data: &[u8]) {
        if data.is_empty() {
            return; // like pwrite of 0 bytes: the size does not change
        }
        let (start, end) = (pos as usize, pos as usize + data.len());
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[start..end].copy_from_slice(data);
    }

    /// What a read of `len` bytes at `pos` returns.
    fn read(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos as usize).min(self.bytes.len());
        let end = (start + len).min(self.bytes.len());
        &self.bytes[start..end]
    }
}

/// Applies `ops` to `dev` and the model, checking every result and the size.
fn check_against_model<D: ReadAt + WriteAt>(dev: &D, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Write { pos, data } => {
                dev.write_all_at(*pos, data).unwrap();
                model.write(*pos, data);
            }
            Op::Read { pos, len } => {
                let mut buf = vec![0u8; *len];
                let n = dev.read_at(*pos, &mut buf).unwrap();
                prop_assert_eq!(&buf[..n], model.read(*pos, *len), "step {}: {:?}", step, op);
            }
            Op::ReadExact { pos, len } => {
                let mut buf = vec![0u8; *len];
                let expected = model.read(*pos, *len);
                match dev.read_exact_at(*pos, &mut buf) {
                    Ok(()) => prop_assert_eq!(&buf[..], expected, "step {}", step),
                    Err(e) => {
                        prop_assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                        prop_assert!(expected.len() < *len, "step {}: spurious EOF", step);
                    }
                }
            }
            Op::SetLen { len } => {
                dev.set_len(*len).unwrap();
                model.bytes.resize(*len as usize, 0);
            }
        }
        prop_assert_eq!(
            dev.size().unwrap(),
            model.bytes.len() as u64,
            "step {}",
            step
        );
    }
    let mut all = vec![0u8; model.bytes.len()];
    dev.read_exact_at(0, &mut all).unwrap();
    prop_assert_eq!(all, model.bytes);
    Ok(())
}

fn temp_file() -> File {
    anonymous_file(&std::env::temp_dir()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mem_device_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        check_against_model(&MemDevice::new(), &ops)?;
    }

    #[test]
    fn file_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        check_against_model(&temp_file(), &ops)?;
    }

    #[test]
    fn file_and_mem_device_agree_byte_for_byte(ops in prop::collection::vec(op(), 1..60)) {
        let (file, mem) = (temp_file(), MemDevice::new());
        check_against_model(&file, &ops)?;
        check_against_model(&mem, &ops)?;
        let mut from_file = vec![0u8; file.size().unwrap() as usize];
        file.read_exact_at(0, &mut from_file).unwrap();
        prop_assert_eq!(from_file, mem.to_vec());
    }

    /// Short calls and interruptions are invisible through the exact helpers.
    #[test]
    fn faulty_device_with_short_and_interrupted_calls_matches_the_model(
        ops in prop::collection::vec(op(), 1..60),
        max_write in 1usize..64,
        max_read in 1usize..64,
        interrupt_every in 2u64..5,
    ) {
        let dev = FaultyDevice::new(MemDevice::new());
        dev.short_writes(max_write);
        dev.fail_writes(Fault::Every(interrupt_every, Errno::INTR));
        // Reads: only the exact helper retries EINTR, so plain reads stay clean.
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|op| match op {
                Op::Read { pos, len } => Op::ReadExact { pos, len },
                other => other,
            })
            .collect();
        dev.short_reads(max_read);
        dev.fail_reads(Fault::Every(interrupt_every, Errno::INTR));
        check_against_model(&dev, &ops)?;
    }
}
