//! The SVG charts of `cargo xtask bench`: hit ratio against cache size (the
//! data a bench wrote to `bench-extra/`), and every row's ratio against its
//! target.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

use crate::report::Row;

/// Where `benches/benches/pagecache_hit_ratio.rs` writes its curves.
const CURVES_FILE: &str = "pagecache-hit-ratio-curves.json";
/// The chart files, in the order [`draw_all`] returns them.
pub(crate) const HIT_RATIO_SVG: &str = "bench-hit-ratio.svg";
pub(crate) const RATIOS_SVG: &str = "bench-ratios.svg";

/// Ours, then the peers: colours that stay apart in print and for the
/// common kinds of colour blindness.
const LINE_COLORS: [RGBColor; 3] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(120, 120, 120),
];

/// Hit ratios at several cache sizes, per workload and cache policy.
#[derive(Debug, Deserialize)]
struct Curves {
    capacity_pages: u64,
    policies: Vec<String>,
    workloads: Vec<Workload>,
}

#[derive(Debug, Deserialize)]
struct Workload {
    name: String,
    points: Vec<Point>,
}

#[derive(Debug, Deserialize)]
struct Point {
    /// Cache capacity divided by the working set.
    cache_per_working_set: f64,
    /// One per policy, in [`Curves::policies`] order, from 0 to 1.
    hit_ratios: Vec<f64>,
}

/// Draws both charts into `out_dir`: the hit-ratio curves when the bench
/// wrote them to `extra_dir`, the ratio bars when any row has a ratio.
/// Returns the files written.
pub(crate) fn draw_all(
    rows: &[Row],
    extra_dir: &Path,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    fs::create_dir_all(out_dir)?;
    let mut written = Vec::new();
    let curves_path = extra_dir.join(CURVES_FILE);
    if let Ok(text) = fs::read_to_string(&curves_path) {
        let curves: Curves = serde_json::from_str(&text)
            .map_err(|err| format!("{}: {err}", curves_path.display()))?;
        let path = out_dir.join(HIT_RATIO_SVG);
        draw_hit_ratio_curves(&curves, &path)?;
        written.push(path);
    }
    if rows.iter().any(|row| row.ratio().is_some()) {
        let path = out_dir.join(RATIOS_SVG);
        draw_ratio_bars(rows, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// One panel per workload: hit ratio (0-100%) against cache size / working
/// set on a log scale, one line per policy.
fn draw_hit_ratio_curves(curves: &Curves, path: &Path) -> Result<(), Box<dyn Error>> {
    let panels = curves.workloads.len().max(1);
    let root = SVGBackend::new(path, (480 * panels as u32, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (low, high) = curves
        .workloads
        .iter()
        .flat_map(|w| &w.points)
        .map(|p| p.cache_per_working_set)
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if low > high {
        return Err(format!("{}: no points", path.display()).into());
    }
    for (panel, workload) in root.split_evenly((1, panels)).iter().zip(&curves.workloads) {
        let mut chart = ChartBuilder::on(panel)
            .caption(&workload.name, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(
                (low..high)
                    .log_scale()
                    .with_key_points(powers_of_two(low, high)),
                0.0..100.0,
            )?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "cache size / working set ({} pages)",
                curves.capacity_pages
            ))
            .y_desc("hit ratio (%)")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| format_fraction(*x))
            .draw()?;
        for (index, policy) in curves.policies.iter().enumerate() {
            let color = LINE_COLORS[index % LINE_COLORS.len()];
            let points: Vec<(f64, f64)> = workload
                .points
                .iter()
                .filter_map(|p| Some((p.cache_per_working_set, 100.0 * p.hit_ratios.get(index)?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(policy)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The powers of two from `low` to `high`: the log axes' labels.
fn powers_of_two(low: f64, high: f64) -> Vec<f64> {
    (-20..=20)
        .map(|exponent| 2f64.powi(exponent))
        .filter(|x| (low * 0.999..=high * 1.001).contains(x))
        .collect()
}

/// `1/8`, `1/4`, `1`, `2`... for the log axes.
fn format_fraction(x: f64) -> String {
    if x < 1.0 && (1.0 / x - (1.0 / x).round()).abs() < 1e-6 {
        format!("1/{}", (1.0 / x).round())
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .into()
    }
}

/// One horizontal bar per row: its ratio divided by its target, on a log2
/// scale, so that every bar right of the line at 1 meets its target; a
/// whisker through it shows the ratio's spread.
fn draw_ratio_bars(rows: &[Row], path: &Path) -> Result<(), Box<dyn Error>> {
    // Name, ratio, target, and the spread (ratios too).
    let bars: Vec<(String, f64, f64, (f64, f64))> = rows
        .iter()
        .filter_map(|row| {
            let ratio = row.ratio()?;
            let spread = row.spread().unwrap_or((ratio, ratio));
            Some((short(&row.operation, 80), ratio, row.target, spread))
        })
        .collect();
    let count = bars.len();
    let height = 70 + 22 * count as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (label_area, plot_area) = root.split_horizontally(540);
    // The axis reaches at least 2x either way, and a little past the longest
    // bar or whisker.
    let reach = bars
        .iter()
        .flat_map(|(_, ratio, target, (low, high))| {
            [ratio, low, high].map(|r| (r / target).log2().abs())
        })
        .fold(1.0, f64::max)
        .ceil()
        + 0.5;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            "ratio / target per row (right of 1 = met; whisker = spread)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .build_cartesian_2d(-reach..reach, 0.0..count as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(2 * reach as usize + 1)
        .x_label_formatter(&|log2| format_fraction(2f64.powf(*log2)))
        .draw()?;
    // Row `index` (top first) spans y from `count - index - 1` to `count - index`.
    let top = |index: usize| (count - index) as f64;
    chart.draw_series(
        bars.iter()
            .enumerate()
            .map(|(index, (_, ratio, target, _))| {
                let color = if ratio >= target {
                    GREEN.mix(0.7)
                } else {
                    RED.mix(0.7)
                };
                let x = (ratio / target).log2();
                Rectangle::new(
                    [(0.0, top(index) - 0.15), (x, top(index) - 0.85)],
                    color.filled(),
                )
            }),
    )?;
    let at = |ratio: f64, target: f64| (ratio / target).log2().clamp(-reach, reach);
    // The spread of each ratio as a whisker through its bar.
    chart.draw_series(
        bars.iter()
            .enumerate()
            .map(|(index, (.., target, (low, high)))| {
                let y = top(index) - 0.5;
                PathElement::new([(at(*low, *target), y), (at(*high, *target), y)], BLACK)
            }),
    )?;
    // The numbers beyond the bar and its whisker.
    chart.draw_series(bars.iter().enumerate().map(
        |(index, (_, ratio, target, (low, high)))| {
            let (x, anchor) = if ratio >= target {
                (at(ratio.max(*high), *target) + 0.05, HPos::Left)
            } else {
                (at(ratio.min(*low), *target) - 0.05, HPos::Right)
            };
            let style = TextStyle::from(("sans-serif", 12)).pos(Pos::new(anchor, VPos::Center));
            Text::new(
                format!("{ratio:.3}x / {target}x"),
                (x, top(index) - 0.5),
                style,
            )
        },
    ))?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (0.0, count as f64)], BLACK))?;
    // Row names right-aligned at the left of the plot, level with their bars.
    let label_style = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Right, VPos::Center));
    for (index, (name, ..)) in bars.iter().enumerate() {
        let (_, y) = chart.backend_coord(&(0.0, top(index) - 0.5));
        label_area.draw(&Text::new(name.as_str(), (530, y), label_style.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// `text`, cut to `max` characters with an ellipsis.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Timing;

    fn row(operation: &str, ours: f64, peer: f64, target: f64) -> Row {
        let timing = |median| Timing {
            q1: median,
            median,
            q3: median,
        };
        Row {
            operation: operation.into(),
            ours_id: "g/ours".into(),
            ours: Some(timing(ours)),
            best_peer: Some(("peer".into(), timing(peer))),
            missing_peers: Vec::new(),
            target,
        }
    }

    #[test]
    fn draws_both_charts_from_rows_and_curve_data() {
        let dir = std::env::temp_dir().join(format!("xtask-charts-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let curves = r#"{"capacity_pages":1024,"policies":["ours","lru"],"workloads":[
            {"name":"zipf","points":[{"cache_per_working_set":0.125,"hit_ratios":[0.3,0.2]},
                                     {"cache_per_working_set":2.0,"hit_ratios":[1.0,1.0]}]}]}"#;
        fs::write(dir.join(CURVES_FILE), curves).unwrap();
        let rows = [
            row("fast op", 1.0, 3.0, 1.5),
            row(
                "slow op with a name far longer than any label should be allowed to grow",
                2.0,
                1.0,
                1.0,
            ),
        ];
        let written = draw_all(&rows, &dir, &dir).unwrap();
        assert_eq!(written, [dir.join(HIT_RATIO_SVG), dir.join(RATIOS_SVG)]);
        let curves_svg = fs::read_to_string(&written[0]).unwrap();
        assert!(
            curves_svg.contains("zipf") && curves_svg.contains("1/8"),
            "{curves_svg}"
        );
        let bars_svg = fs::read_to_string(&written[1]).unwrap();
        assert!(bars_svg.contains("fast op") && bars_svg.contains("3.000x / 1.5x"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_data_draws_nothing() {
        let dir = std::env::temp_dir().join(format!("xtask-charts-none-{}", std::process::id()));
        assert!(draw_all(&[], &dir.join("absent"), &dir).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_fractions_of_the_working_set() {
        assert_eq!(format_fraction(0.125), "1/8");
        assert_eq!(format_fraction(0.5), "1/2");
        assert_eq!(format_fraction(1.0), "1");
        assert_eq!(format_fraction(0.75), "0.75");
        assert_eq!(format_fraction(2.0), "2");
    }
}
