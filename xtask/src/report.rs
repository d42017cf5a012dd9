//! The benchmark table: rows from comparisons and measured times, rendered as markdown.
//!
//! Pure functions only (no I/O), so that every formatting rule is unit-tested.

use crate::targets::Comparison;

/// One benchmark's time per iteration (ns) over its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timing {
    /// Lower quartile.
    pub(crate) q1: f64,
    /// Median: robust to the stalls of a shared machine, unlike the mean.
    pub(crate) median: f64,
    /// Upper quartile.
    pub(crate) q3: f64,
}

impl Timing {
    /// Quartiles of the positive finite samples (linear interpolation), or
    /// `None` when there are none.
    pub(crate) fn from_samples(mut samples: Vec<f64>) -> Option<Timing> {
        samples.retain(|ns| ns.is_finite() && *ns > 0.0);
        samples.sort_by(f64::total_cmp);
        let last = samples.len().checked_sub(1)?;
        let quantile = |q: f64| {
            let at = q * last as f64;
            let (below, above) = (samples[at.floor() as usize], samples[at.ceil() as usize]);
            below + (above - below) * at.fract()
        };
        Some(Timing {
            q1: quantile(0.25),
            median: quantile(0.5),
            q3: quantile(0.75),
        })
    }
}

/// One row of the table, with whatever was measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// What is measured, in words.
    pub(crate) operation: String,
    /// Criterion id of our benchmark.
    pub(crate) ours_id: String,
    /// Our time per iteration, if measured.
    pub(crate) ours: Option<Timing>,
    /// The fastest peer (by median): label and time.
    pub(crate) best_peer: Option<(String, Timing)>,
    /// Peer ids that have no result; any makes the ratio unknown.
    pub(crate) missing_peers: Vec<String>,
    /// Least ratio that meets the goal.
    pub(crate) target: f64,
}

/// Whether a row meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Met,
    NotMet,
    /// Our time or a peer's is missing, so there is no honest ratio.
    Missing,
}

impl Row {
    /// Builds a row, looking each criterion id up with `timing`.
    pub(crate) fn measure(
        comparison: &Comparison,
        mut timing: impl FnMut(&str) -> Option<Timing>,
    ) -> Row {
        let ours = timing(&comparison.ours);
        let mut best_peer: Option<(String, Timing)> = None;
        let mut missing_peers = Vec::new();
        for peer in &comparison.peers {
            match timing(peer) {
                Some(t)
                    if best_peer
                        .as_ref()
                        .is_none_or(|(_, best)| t.median < best.median) =>
                {
                    best_peer = Some((peer_label(&comparison.ours, peer), t));
                }
                Some(_) => {}
                None => missing_peers.push(peer.clone()),
            }
        }
        Row {
            operation: comparison.operation.clone(),
            ours_id: comparison.ours.clone(),
            ours,
            best_peer,
            missing_peers,
            target: comparison.target,
        }
    }

    fn both(&self) -> Option<(Timing, Timing)> {
        match (self.ours, &self.best_peer) {
            (Some(ours), Some((_, peer))) if self.missing_peers.is_empty() => Some((ours, *peer)),
            _ => None,
        }
    }

    /// Peer median / our median, or `None` when any time is missing.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.both().map(|(ours, peer)| peer.median / ours.median)
    }

    /// The ratio's range when both sides move within their quartiles: from
    /// the peer's lower quartile over our upper one to the reverse.
    pub(crate) fn spread(&self) -> Option<(f64, f64)> {
        self.both()
            .map(|(ours, peer)| (peer.q1 / ours.q3, peer.q3 / ours.q1))
    }

    /// Met, not met, or missing.
    pub(crate) fn verdict(&self) -> Verdict {
        match self.ratio() {
            Some(ratio) if ratio >= self.target => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::Missing,
        }
    }

    /// Whether the target lies within the spread, so that another run may
    /// well give the other verdict.
    pub(crate) fn on_edge(&self) -> bool {
        self.spread()
            .is_some_and(|(low, high)| low < self.target && self.target <= high)
    }
}

/// The peer id without the path components it shares with ours, e.g.
/// `bincodec_seq/from_le_bytes` beside `bincodec_seq/ours` is `from_le_bytes`.
pub(crate) fn peer_label(ours: &str, peer: &str) -> String {
    let shared = ours
        .split('/')
        .zip(peer.split('/'))
        .take_while(|(a, b)| a == b)
        .count();
    let rest: Vec<&str> = peer.split('/').skip(shared).collect();
    if rest.is_empty() {
        peer.to_string()
    } else {
        rest.join("/")
    }
}

/// A time in nanoseconds with three significant digits and a unit, e.g. `12.3 µs`.
pub(crate) fn format_time(ns: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")];
    let (scale, unit) = UNITS
        .iter()
        .copied()
        .find(|(scale, _)| ns >= *scale)
        .unwrap_or((1.0, "ns"));
    format!("{} {unit}", three_digits(ns / scale))
}

/// A ratio such as `0.97x` or `25.3x`.
pub(crate) fn format_ratio(ratio: f64) -> String {
    format!("{}x", three_digits(ratio))
}

fn three_digits(value: f64) -> String {
    let decimals = match value {
        v if v < 1.0 => 3,
        v if v < 10.0 => 2,
        v if v < 100.0 => 1,
        _ => 0,
    };
    format!("{value:.decimals$}")
}

/// The table as markdown, columns padded so it reads well in a terminal too.
pub(crate) fn render_table(rows: &[Row]) -> String {
    let header = [
        "operation",
        "ours",
        "best peer",
        "ratio",
        "spread",
        "target",
        "met?",
    ]
    .map(String::from);
    let mut cells: Vec<[String; 7]> = vec![header];
    for row in rows {
        let ours = row
            .ours
            .map_or_else(|| "missing".into(), |t| format_time(t.median));
        let peer = match (&row.best_peer, row.missing_peers.first()) {
            (_, Some(missing)) => format!("missing ({})", peer_label(&row.ours_id, missing)),
            (Some((label, t)), None) => format!("{} ({label})", format_time(t.median)),
            (None, None) => "missing".into(),
        };
        let ratio = row.ratio().map_or_else(|| "missing".into(), format_ratio);
        let spread = row.spread().map_or_else(
            || "-".into(),
            |(low, high)| format!("{}-{}", three_digits(low), format_ratio(high)),
        );
        let met = match (row.verdict(), row.on_edge()) {
            (Verdict::Met, false) => "yes",
            (Verdict::Met, true) => "yes (edge)",
            (Verdict::NotMet, false) => "NO",
            (Verdict::NotMet, true) => "NO (edge)",
            (Verdict::Missing, _) => "missing",
        };
        cells.push([
            row.operation.clone(),
            ours,
            peer,
            ratio,
            spread,
            format!(">= {}x", row.target),
            met.into(),
        ]);
    }
    let mut widths = [0; 7];
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (index, line) in cells.iter().enumerate() {
        out.push('|');
        for (cell, width) in line.iter().zip(widths) {
            let pad = width - cell.chars().count();
            out.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
        }
        out.push('\n');
        if index == 0 {
            out.push('|');
            for width in widths {
                out.push_str(&format!("{}|", "-".repeat(width + 2)));
            }
            out.push('\n');
        }
    }
    out
}

/// One sentence per verdict: how many targets are met, and which are not.
pub(crate) fn summary(rows: &[Row]) -> String {
    let names = |verdict: Verdict| -> Vec<&str> {
        rows.iter()
            .filter(|row| row.verdict() == verdict)
            .map(|row| row.operation.as_str())
            .collect()
    };
    let met = names(Verdict::Met);
    let not_met = names(Verdict::NotMet);
    let missing = names(Verdict::Missing);
    let mut out = format!("{} of {} targets met.", met.len(), rows.len());
    if !not_met.is_empty() {
        out.push_str(&format!(" Not met: {}.", not_met.join("; ")));
    }
    if !missing.is_empty() {
        out.push_str(&format!(" No result: {}.", missing.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison(peers: &[&str], target: f64) -> Comparison {
        Comparison {
            operation: "get_u32".into(),
            ours: "seq/ours".into(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
            target,
        }
    }

    /// A timing with quartiles 10% either side of the median.
    fn around(median: f64) -> Timing {
        Timing {
            q1: median * 0.9,
            median,
            q3: median * 1.1,
        }
    }

    fn times(id: &str) -> Option<Timing> {
        match id {
            "seq/ours" => Some(around(2.0)),
            "seq/std" => Some(around(1.9)),
            "seq/byteorder" => Some(around(2.2)),
            "seq/slow" => Some(around(40.0)),
            _ => None,
        }
    }

    #[test]
    fn timing_takes_quartiles_of_the_usable_samples() {
        let timing = Timing::from_samples(vec![4.0, f64::NAN, 1.0, 3.0, 2.0, 0.0, 5.0]).unwrap();
        assert_eq!((timing.q1, timing.median, timing.q3), (2.0, 3.0, 4.0));
        let even = Timing::from_samples(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((even.q1, even.median, even.q3), (1.75, 2.5, 3.25));
        assert_eq!(Timing::from_samples(vec![-1.0, f64::INFINITY]), None);
    }

    #[test]
    fn formats_times_with_three_significant_digits_and_a_unit() {
        assert_eq!(format_time(0.4567), "0.457 ns");
        assert_eq!(format_time(1.234), "1.23 ns");
        assert_eq!(format_time(999.0), "999 ns");
        assert_eq!(format_time(12_345.0), "12.3 µs");
        assert_eq!(format_time(123_456_789.0), "123 ms");
        assert_eq!(format_time(2.5e9), "2.50 s");
        assert_eq!(format_time(3.0e12), "3000 s");
    }

    #[test]
    fn formats_ratios() {
        assert_eq!(format_ratio(0.9512), "0.951x");
        assert_eq!(format_ratio(1.5), "1.50x");
        assert_eq!(format_ratio(25.34), "25.3x");
        assert_eq!(format_ratio(253.4), "253x");
    }

    #[test]
    fn peer_label_drops_the_shared_group() {
        assert_eq!(peer_label("seq/ours", "seq/std"), "std");
        assert_eq!(peer_label("copy/ours/256", "copy/io/256"), "io/256");
        assert_eq!(peer_label("a/ours", "b/peer"), "b/peer");
        assert_eq!(peer_label("same/id", "same/id"), "same/id");
    }

    #[test]
    fn ratio_uses_the_fastest_peer() {
        let row = Row::measure(
            &comparison(&["seq/slow", "seq/std", "seq/byteorder"], 0.95),
            times,
        );
        assert_eq!(row.best_peer, Some(("std".into(), around(1.9))));
        assert_eq!(row.ratio(), Some(1.9 / 2.0));
        assert_eq!(row.verdict(), Verdict::Met);
        let (low, high) = row.spread().unwrap();
        assert!((low - 1.71 / 2.2).abs() < 1e-12 && (high - 2.09 / 1.8).abs() < 1e-12);
        assert!(row.on_edge(), "0.95 lies between {low} and {high}");
    }

    #[test]
    fn a_ratio_below_target_is_not_met() {
        let row = Row::measure(&comparison(&["seq/std"], 1.0), times);
        assert_eq!(row.verdict(), Verdict::NotMet);
        let far = Row::measure(&comparison(&["seq/std"], 2.0), times);
        assert_eq!(far.verdict(), Verdict::NotMet);
        assert!(!far.on_edge());
    }

    #[test]
    fn a_missing_peer_or_ours_gives_no_ratio() {
        let row = Row::measure(&comparison(&["seq/std", "seq/gone"], 0.5), times);
        assert_eq!(row.missing_peers, ["seq/gone"]);
        assert_eq!(row.ratio(), None);
        assert_eq!(row.verdict(), Verdict::Missing);

        let mut no_ours = comparison(&["seq/std"], 0.5);
        no_ours.ours = "seq/gone".into();
        assert_eq!(Row::measure(&no_ours, times).verdict(), Verdict::Missing);
    }

    #[test]
    fn renders_an_aligned_markdown_table_that_says_missing() {
        let rows = [
            Row::measure(&comparison(&["seq/std"], 0.95), times),
            Row::measure(&comparison(&["seq/gone"], 20.0), times),
        ];
        let table = render_table(&rows);
        let expected = "\
| operation | ours    | best peer      | ratio   | spread      | target   | met?       |
|-----------|---------|----------------|---------|-------------|----------|------------|
| get_u32   | 2.00 ns | 1.90 ns (std)  | 0.950x  | 0.777-1.16x | >= 0.95x | yes (edge) |
| get_u32   | 2.00 ns | missing (gone) | missing | -           | >= 20x   | missing    |
";
        assert_eq!(table, expected);
    }

    #[test]
    fn summary_names_unmet_and_missing_rows() {
        let mut unmet = comparison(&["seq/std"], 1.0);
        unmet.operation = "slow op".into();
        let mut gone = comparison(&["seq/gone"], 1.0);
        gone.operation = "gone op".into();
        let rows = [
            Row::measure(&comparison(&["seq/slow"], 2.0), times),
            Row::measure(&unmet, times),
            Row::measure(&gone, times),
        ];
        assert_eq!(
            summary(&rows),
            "1 of 3 targets met. Not met: slow op. No result: gone op."
        );
    }
}
