//! Stress: 2 to 8 threads read random ranges through a small cache while
//! another thread invalidates random ranges; every read equals the model.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use blockdev::MemDevice;
use common::{Rng, pattern};
use pagecache::{ByteSource, ByteSourceExt, PageCache};

fn stress(readers: usize, page_size: usize, capacity: usize, reads_per_thread: usize) {
    let len = 97 * page_size + page_size / 3;
    let model = Arc::new(pattern(len));
    let cache = Arc::new(
        PageCache::builder()
            .page_size(page_size)
            .capacity(capacity)
            .max_batch_pages(capacity.min(4))
            .build(MemDevice::from_vec(model.to_vec()))
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let invalidator = {
        let (cache, stop) = (Arc::clone(&cache), Arc::clone(&stop));
        thread::spawn(move || {
            let mut rng = Rng::new(99);
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let off = rng.below(len as u64 + 10);
                let n = rng.below(3 * page_size as u64);
                cache.invalidate(off, n).unwrap();
                rounds += 1;
                if rounds.is_multiple_of(64) {
                    cache.invalidate_all().unwrap();
                }
                thread::yield_now();
            }
            rounds
        })
    };
    let workers: Vec<_> = (0..readers)
        .map(|id| {
            let (cache, model) = (Arc::clone(&cache), Arc::clone(&model));
            thread::spawn(move || {
                let mut rng = Rng::new(id as u64 + 1);
                let mut buf = vec![0u8; 5 * page_size];
                for _ in 0..reads_per_thread {
                    let pos = rng.below(len as u64 + 4);
                    match rng.below(3) {
                        0 => {
                            let got = cache.get_u64_be(pos);
                            let want = model.get_u64_be(pos);
                            match (got, want) {
                                (Ok(a), Ok(b)) => assert_eq!(a, b, "u64 at {pos}"),
                                (Err(a), Err(b)) => assert_eq!(a.out_of_bounds(), Some(b)),
                                (a, b) => panic!("at {pos}: cache {a:?}, model {b:?}"),
                            }
                        }
                        1 => {
                            let n = rng.below(buf.len() as u64) as usize;
                            let got = cache.read_bytes_at(pos, &mut buf[..n]);
                            if pos as usize + n <= len {
                                got.unwrap();
                                assert_eq!(buf[..n], model[pos as usize..pos as usize + n]);
                            } else {
                                assert!(got.unwrap_err().out_of_bounds().is_some());
                            }
                        }
                        _ => {
                            if let Some(slice) = cache.load(pos, 1).unwrap() {
                                let start = slice.offset() as usize;
                                assert_eq!(slice.bytes(), &model[start..start + slice.len()]);
                            } else {
                                assert!(pos as usize >= len);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(invalidator.join().unwrap() > 0);
    assert!(cache.stats().resident_pages <= capacity);
    let mut whole = vec![0; len];
    cache.read_bytes_at(0, &mut whole).unwrap();
    assert_eq!(whole, *model);
}

#[test]
fn two_readers_and_an_invalidator_agree_with_the_model() {
    stress(2, 64, 8, 20_000);
}

#[test]
fn four_readers_on_one_page_slot_agree_with_the_model() {
    stress(4, 16, 1, 10_000);
}

#[test]
fn eight_readers_and_an_invalidator_agree_with_the_model() {
    stress(8, 256, 32, 6_000);
}
