//! bincodec getters over a slice against hand-written `from_le_bytes` and
//! byteorder, at sequential and at random offsets.
//!
//! Every variant reads the same precomputed offsets out of the same 64 KiB
//! buffer and sums the values, and every variant panics on a bad offset
//! (ours by `unwrap`, the others by slice indexing), so they do the same work.
//! The three readers of a group are timed interleaved
//! ([`benches::bench_interleaved`]), so their ratios do not depend on how the
//! machine's load changed between them.

use std::hint::black_box;
use std::time::Duration;

use benches::{Interleave, Side, bench_interleaved};
use bincodec::ByteSourceExt;
use byteorder::{ByteOrder, LittleEndian};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BUFFER_LEN: usize = 64 * 1024;
const READS: usize = 16 * 1024;

/// splitmix64: deterministic bytes and offsets without a dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn buffer() -> Vec<u8> {
    let mut state = 1;
    (0..BUFFER_LEN)
        .map(|_| splitmix64(&mut state) as u8)
        .collect()
}

/// Offsets of `READS` consecutive values of `width` bytes, wrapping around.
fn sequential_offsets(width: usize) -> Vec<usize> {
    (0..READS)
        .map(|i| (i * width) % (BUFFER_LEN - width + 1))
        .collect()
}

/// `READS` unaligned offsets spread over the whole buffer.
fn random_offsets(width: usize) -> Vec<usize> {
    let mut state = 7;
    (0..READS)
        .map(|_| (splitmix64(&mut state) % (BUFFER_LEN - width + 1) as u64) as usize)
        .collect()
}

fn sum_u32_ours(data: &[u8], offsets: &[usize]) -> u32 {
    offsets.iter().fold(0u32, |sum, &offset| {
        sum.wrapping_add(data.get_u32_le(offset as u64).unwrap())
    })
}

fn sum_u32_from_le_bytes(data: &[u8], offsets: &[usize]) -> u32 {
    offsets.iter().fold(0u32, |sum, &offset| {
        sum.wrapping_add(u32::from_le_bytes(
            data[offset..offset + 4].try_into().unwrap(),
        ))
    })
}

fn sum_u32_byteorder(data: &[u8], offsets: &[usize]) -> u32 {
    offsets.iter().fold(0u32, |sum, &offset| {
        sum.wrapping_add(LittleEndian::read_u32(&data[offset..]))
    })
}

fn sum_u64_ours(data: &[u8], offsets: &[usize]) -> u64 {
    offsets.iter().fold(0u64, |sum, &offset| {
        sum.wrapping_add(data.get_u64_le(offset as u64).unwrap())
    })
}

fn sum_u64_from_le_bytes(data: &[u8], offsets: &[usize]) -> u64 {
    offsets.iter().fold(0u64, |sum, &offset| {
        sum.wrapping_add(u64::from_le_bytes(
            data[offset..offset + 8].try_into().unwrap(),
        ))
    })
}

fn sum_u64_byteorder(data: &[u8], offsets: &[usize]) -> u64 {
    offsets.iter().fold(0u64, |sum, &offset| {
        sum.wrapping_add(LittleEndian::read_u64(&data[offset..]))
    })
}

/// The three readers of one width, as (criterion function id, reader).
type Readers<T> = [(&'static str, fn(&[u8], &[usize]) -> T); 3];

fn compare<T: 'static>(
    c: &mut Criterion,
    group_name: &str,
    offsets: &[usize],
    readers: Readers<T>,
) {
    let data = buffer();
    let full = std::env::var_os("BENCH_FULL").is_some_and(|v| v == "1");
    let plan = Interleave {
        warm_up: Duration::from_millis(if full { 2000 } else { 500 }),
        measurement: Duration::from_secs(if full { 10 } else { 2 }),
        samples: if full { 100 } else { 30 },
    };
    let sides: Vec<Side<'_>> = readers
        .into_iter()
        .map(|(name, read)| -> Side<'_> {
            let data = &data;
            (
                name,
                Box::new(move || drop(black_box(read(black_box(data), black_box(offsets))))),
            )
        })
        .collect();
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(READS as u64));
    bench_interleaved(&mut group, &plan, sides);
    group.finish();
}

fn u32_le(c: &mut Criterion) {
    let readers: Readers<u32> = [
        ("ours", sum_u32_ours),
        ("from_le_bytes", sum_u32_from_le_bytes),
        ("byteorder", sum_u32_byteorder),
    ];
    compare(c, "bincodec_seq", &sequential_offsets(4), readers);
    compare(c, "bincodec_random", &random_offsets(4), readers);
}

fn u64_le(c: &mut Criterion) {
    let readers: Readers<u64> = [
        ("ours", sum_u64_ours),
        ("from_le_bytes", sum_u64_from_le_bytes),
        ("byteorder", sum_u64_byteorder),
    ];
    compare(c, "bincodec_seq_u64", &sequential_offsets(8), readers);
    compare(c, "bincodec_random_u64", &random_offsets(8), readers);
}

criterion_group!(benches, u32_le, u64_le);
criterion_main!(benches);
