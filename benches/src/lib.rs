//! Shared helpers for the benchmarks in `benches/`.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, SamplingMode};

/// The directory where a bench writes an extra markdown table (such as a
/// hit-ratio table) for `cargo xtask bench` to append to
/// `target/bench-report.md`.
///
/// `cargo xtask bench` sets `BENCH_EXTRA_DIR` to `<target dir>/bench-extra`;
/// under a plain `cargo bench` this falls back to `bench-extra` in
/// `CARGO_TARGET_DIR` or the workspace's `target/`. The directory may not
/// exist yet: create it before writing.
///
/// ```
/// let dir = benches::extra_report_dir();
/// assert!(dir.ends_with("bench-extra"));
/// ```
pub fn extra_report_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_EXTRA_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("bench-extra")
}

/// How long [`bench_interleaved`] measures, per side of the comparison.
///
/// ```
/// use std::time::Duration;
///
/// let plan = benches::Interleave {
///     warm_up: Duration::from_millis(500),
///     measurement: Duration::from_secs(2),
///     samples: 30,
/// };
/// assert_eq!(plan.samples, 30);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Interleave {
    /// Time spent running the sides (interleaved) before measuring, also
    /// used to estimate each side's time per iteration.
    pub warm_up: Duration,
    /// Measurement time per side; the interleaved run takes this times the
    /// number of sides, as when each side was measured on its own.
    pub measurement: Duration,
    /// Samples per side (criterion needs at least 10).
    pub samples: usize,
}

/// One routine of an interleaved comparison: its criterion function id and
/// one iteration of the work (which should `black_box` its result).
pub type Side<'a> = (&'a str, Box<dyn FnMut() + 'a>);

/// How long one palindromic round of [`measure_interleaved`] aims to last.
const ROUND: Duration = Duration::from_millis(2);

/// Times `sides` alternately and returns, per side, the time per iteration
/// (ns) of each of `plan.samples` samples.
///
/// Each sample is a run of short rounds (about 2 ms); a round runs `r`
/// iterations of every side in a palindrome: the first half of `r` for
/// sides `0, 1, …, n-1`, then the second half for `n-1, …, 1, 0` (ABBA for
/// two sides). So every side of a sample sees the same load, and a load
/// that rises or falls steadily during a round costs every side the same.
/// The number of rounds per sample is chosen from the warm-up so that the
/// run lasts about `plan.measurement` per side. A sample's time per
/// iteration of a side is its median round, so a round that the scheduler
/// preempted on one side does not count against that side.
///
/// ```
/// use std::hint::black_box;
/// use std::time::Duration;
///
/// let plan = benches::Interleave {
///     warm_up: Duration::from_millis(5),
///     measurement: Duration::from_millis(20),
///     samples: 10,
/// };
/// let short = || black_box((0..100u64).sum::<u64>());
/// let long = || black_box((0..10_000u64).map(black_box).sum::<u64>());
/// let mut sides: Vec<benches::Side<'_>> = vec![
///     ("short", Box::new(move || drop(short()))),
///     ("long", Box::new(move || drop(long()))),
/// ];
/// let rates = benches::measure_interleaved(&plan, &mut sides);
/// assert_eq!(rates.len(), 2);
/// assert!(rates.iter().all(|side| side.len() == 10));
/// let median = |side: &[f64]| {
///     let mut side = side.to_vec();
///     side.sort_by(f64::total_cmp);
///     side[side.len() / 2]
/// };
/// assert!(median(&rates[1]) > median(&rates[0]));
/// ```
pub fn measure_interleaved(plan: &Interleave, sides: &mut [Side<'_>]) -> Vec<Vec<f64>> {
    // One palindromic round of `k` iterations per side: the time of each side.
    fn round(sides: &mut [Side<'_>], k: u64) -> Vec<Duration> {
        let (first, second) = (k / 2, k - k / 2);
        let mut times = vec![Duration::ZERO; sides.len()];
        let mut run = |index: usize, count: u64, sides: &mut [Side<'_>]| {
            let routine = &mut sides[index].1;
            let start = Instant::now();
            for _ in 0..count {
                routine();
            }
            times[index] += start.elapsed();
        };
        for index in 0..sides.len() {
            run(index, first, sides);
        }
        for index in (0..sides.len()).rev() {
            run(index, second, sides);
        }
        times
    }

    // Warm up with doubling rounds; the last round's times estimate the cost.
    let warm_up_start = Instant::now();
    let mut k = 2;
    let mut round_time = loop {
        let total: Duration = round(sides, k).iter().sum();
        if warm_up_start.elapsed() >= plan.warm_up {
            break total.as_secs_f64() / k as f64;
        }
        k *= 2;
    };
    round_time = round_time.max(1e-9);
    let samples = plan.samples.max(1);
    let budget = plan.measurement.as_secs_f64() * sides.len() as f64;
    // Short rounds (about 2 ms, at least 2 iterations so both halves of the
    // palindrome run), so the sides alternate faster than the load changes.
    let round_len = ((ROUND.as_secs_f64() / round_time).ceil() as u64).max(2);
    let rounds = ((budget / samples as f64 / (round_time * round_len as f64)).ceil() as u64).max(1);

    let mut rates = vec![Vec::with_capacity(samples); sides.len()];
    let mut per_round = vec![Vec::with_capacity(rounds as usize); sides.len()];
    for _ in 0..samples {
        per_round.iter_mut().for_each(Vec::clear);
        for _ in 0..rounds {
            for (side, time) in per_round.iter_mut().zip(round(sides, round_len)) {
                side.push(time.as_nanos() as f64 / round_len as f64);
            }
        }
        for (side, times) in rates.iter_mut().zip(per_round.iter_mut()) {
            // The median round: a round in which the scheduler preempted the
            // bench (milliseconds lost to one side on a loaded machine) does
            // not count against that side.
            times.sort_by(f64::total_cmp);
            side.push(times[times.len() / 2]);
        }
    }
    rates
}

/// Benchmarks `sides` as criterion functions of `group`, measured
/// interleaved by [`measure_interleaved`], so that the ratio of two sides
/// does not depend on how the machine's load changed between them.
///
/// Criterion still writes `<group>/<id>/new/{estimates,sample}.json` for
/// every side. The interleaved run happens once, at the first side
/// criterion measures (a filtered-out group costs nothing); criterion's
/// warm-up of each side is one real iteration, and its samples of each side
/// are that side's interleaved samples, scaled to the iteration count
/// criterion asks for (so each sample's time per iteration is the measured
/// one). In `--test` mode every side runs once. This sets the group's
/// warm-up time, measurement time, sample size and sampling mode.
///
/// ```
/// use std::hint::black_box;
/// use std::time::Duration;
///
/// let out = std::env::temp_dir().join(format!("benches-doctest-{}", std::process::id()));
/// let mut criterion = criterion::Criterion::default()
///     .without_plots()
///     .output_directory(&out);
/// let mut group = criterion.benchmark_group("interleaved");
/// let plan = benches::Interleave {
///     warm_up: Duration::from_millis(5),
///     measurement: Duration::from_millis(20),
///     samples: 10,
/// };
/// benches::bench_interleaved(
///     &mut group,
///     &plan,
///     vec![
///         ("ours", Box::new(|| drop(black_box((0..100u64).sum::<u64>())))),
///         ("peer", Box::new(|| drop(black_box((0..200u64).sum::<u64>())))),
///     ],
/// );
/// group.finish();
/// for side in ["ours", "peer"] {
///     let result = out.join("interleaved").join(side).join("new");
///     assert!(result.join("sample.json").is_file());
///     assert!(result.join("estimates.json").is_file());
/// }
/// std::fs::remove_dir_all(&out).unwrap();
/// ```
pub fn bench_interleaved<'a>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    plan: &Interleave,
    sides: Vec<Side<'a>>,
) {
    struct Shared<'a> {
        sides: Vec<Side<'a>>,
        /// Per side, the interleaved samples' time per iteration (ns).
        rates: Option<Vec<Vec<f64>>>,
    }
    let ids: Vec<&str> = sides.iter().map(|(id, _)| *id).collect();
    let shared = RefCell::new(Shared { sides, rates: None });
    let plan = *plan;
    group
        // Criterion's warm-up only plans the iteration counts: one iteration.
        .warm_up_time(Duration::from_nanos(1))
        .measurement_time(plan.measurement)
        .sample_size(plan.samples)
        .sampling_mode(SamplingMode::Flat);
    for (index, id) in ids.into_iter().enumerate() {
        let mut calls = 0usize;
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                calls += 1;
                let mut shared = shared.borrow_mut();
                if calls == 1 {
                    // Warm-up (or `--test`): real iterations of this side alone.
                    let routine = &mut shared.sides[index].1;
                    let start = Instant::now();
                    for _ in 0..iters {
                        routine();
                    }
                    // More than the 1 ns warm-up, so criterion calls once.
                    return start.elapsed().max(Duration::from_nanos(2));
                }
                if shared.rates.is_none() {
                    let rates = measure_interleaved(&plan, &mut shared.sides);
                    shared.rates = Some(rates);
                }
                let rates = &shared.rates.as_ref().expect("measured above")[index];
                // Calls 2..: criterion's samples, in order.
                let rate = rates[(calls - 2) % rates.len()];
                Duration::from_nanos((rate * iters as f64).round() as u64)
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn every_sample_runs_the_sides_as_a_palindrome() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let side = |index: usize| -> Side<'static> {
            let order = Rc::clone(&order);
            (
                "side",
                Box::new(move || {
                    order.borrow_mut().push(index);
                    // Longer than a round, so a round is 2 iterations.
                    std::thread::sleep(Duration::from_millis(1));
                }),
            )
        };
        let mut sides = vec![side(0), side(1), side(2)];
        // No time to spend: one warm-up round, then samples of one round
        // each, of the least length 2, so every half is one iteration.
        let plan = Interleave {
            warm_up: Duration::ZERO,
            measurement: Duration::ZERO,
            samples: 3,
        };
        let rates = measure_interleaved(&plan, &mut sides);
        assert_eq!(rates.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3]);
        assert!(
            rates
                .iter()
                .flatten()
                .all(|rate| rate.is_finite() && *rate >= 0.0)
        );
        assert_eq!(*order.borrow(), [0, 1, 2, 2, 1, 0].repeat(4));
    }
}
