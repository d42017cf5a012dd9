//! The benchmark table: rows from comparisons and measured times, rendered as markdown.
//!
//! Pure functions only (no I/O), so that every formatting rule is unit-tested.

use crate::targets::Comparison;

/// One row of the table, with whatever was measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// What is measured, in words.
    pub(crate) operation: String,
    /// Criterion id of our benchmark.
    pub(crate) ours_id: String,
    /// Our mean time per iteration in nanoseconds, if measured.
    pub(crate) ours_ns: Option<f64>,
    /// The fastest peer: label and mean time in nanoseconds.
    pub(crate) best_peer: Option<(String, f64)>,
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
    /// Builds a row, looking each criterion id up with `mean_ns`.
    pub(crate) fn measure(
        comparison: &Comparison,
        mut mean_ns: impl FnMut(&str) -> Option<f64>,
    ) -> Row {
        let ours_ns = mean_ns(&comparison.ours);
        let mut best_peer: Option<(String, f64)> = None;
        let mut missing_peers = Vec::new();
        for peer in &comparison.peers {
            match mean_ns(peer) {
                Some(ns) if best_peer.as_ref().is_none_or(|(_, best)| ns < *best) => {
                    best_peer = Some((peer_label(&comparison.ours, peer), ns));
                }
                Some(_) => {}
                None => missing_peers.push(peer.clone()),
            }
        }
        Row {
            operation: comparison.operation.clone(),
            ours_id: comparison.ours.clone(),
            ours_ns,
            best_peer,
            missing_peers,
            target: comparison.target,
        }
    }

    /// `peer_time / ours_time`, or `None` when any time is missing.
    pub(crate) fn ratio(&self) -> Option<f64> {
        match (self.ours_ns, &self.best_peer) {
            (Some(ours), Some((_, peer))) if self.missing_peers.is_empty() && ours > 0.0 => {
                Some(peer / ours)
            }
            _ => None,
        }
    }

    /// Met, not met, or missing.
    pub(crate) fn verdict(&self) -> Verdict {
        match self.ratio() {
            Some(ratio) if ratio >= self.target => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::Missing,
        }
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
    let header = ["operation", "ours", "best peer", "ratio", "target", "met?"].map(String::from);
    let mut cells: Vec<[String; 6]> = vec![header];
    for row in rows {
        let ours = row.ours_ns.map_or_else(|| "missing".into(), format_time);
        let peer = match (&row.best_peer, row.missing_peers.first()) {
            (_, Some(missing)) => format!("missing ({})", peer_label(&row.ours_id, missing)),
            (Some((label, ns)), None) => format!("{} ({label})", format_time(*ns)),
            (None, None) => "missing".into(),
        };
        let ratio = row.ratio().map_or_else(|| "missing".into(), format_ratio);
        let met = match row.verdict() {
            Verdict::Met => "yes",
            Verdict::NotMet => "NO",
            Verdict::Missing => "missing",
        };
        cells.push([
            row.operation.clone(),
            ours,
            peer,
            ratio,
            format!(">= {}x", row.target),
            met.into(),
        ]);
    }
    let mut widths = [0; 6];
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

    fn times(id: &str) -> Option<f64> {
        match id {
            "seq/ours" => Some(2.0),
            "seq/std" => Some(1.9),
            "seq/byteorder" => Some(2.2),
            "seq/slow" => Some(40.0),
            _ => None,
        }
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
        assert_eq!(row.best_peer, Some(("std".into(), 1.9)));
        assert_eq!(row.ratio(), Some(1.9 / 2.0));
        assert_eq!(row.verdict(), Verdict::Met);
    }

    #[test]
    fn a_ratio_below_target_is_not_met() {
        let row = Row::measure(&comparison(&["seq/std"], 1.0), times);
        assert_eq!(row.verdict(), Verdict::NotMet);
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
| operation | ours    | best peer      | ratio   | target   | met?    |
|-----------|---------|----------------|---------|----------|---------|
| get_u32   | 2.00 ns | 1.90 ns (std)  | 0.950x  | >= 0.95x | yes     |
| get_u32   | 2.00 ns | missing (gone) | missing | >= 20x   | missing |
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
