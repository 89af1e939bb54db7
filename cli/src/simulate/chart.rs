//! The chart of a run, drawn with plotters: one panel per limiter, each
//! with offered, passed and dropped requests per second over time, the
//! limit's rate where it has one, and the worst burst in its caption.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu`
//! crate, through plotters' `ab_glyph` feature), so neither the SVG's
//! layout nor the PNG depends on the fonts installed. plotters' default
//! text backend (font-kit) builds against fontconfig's headers and loads
//! system fonts; a fresh Debian has neither.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::engine::{LaneReport, Report};
use floodgate::Algorithm;

/// The font family every text uses.
const FONT: &str = "sans-serif";

/// The most points a line has; longer runs are summed into wider steps.
const MAX_POINTS: usize = 1500;

const OFFERED: RGBColor = RGBColor(140, 140, 140);
const PASSED: RGBColor = RGBColor(0, 130, 60);
const DROPPED: RGBColor = RGBColor(210, 40, 40);
const LIMIT: RGBColor = RGBColor(40, 80, 200);

fn fonts() -> Result<(), String> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let bytes = match style {
                FontStyle::Bold => dejavu::sans::bold(),
                _ => dejavu::sans::regular(),
            };
            if register_font(FONT, style, bytes).is_err() {
                result = Err("the embedded DejaVu Sans font did not load".to_owned());
            }
        }
    });
    result
}

/// The chart's size in pixels for `lanes` panels.
pub fn size(lanes: usize) -> (u32, u32) {
    (1100, 70 + 260 * lanes.max(1) as u32)
}

/// Writes the chart of `report` as SVG to `path`.
pub fn write_svg(report: &Report, title: &str, path: &Path) -> Result<(), String> {
    fonts()?;
    let root = SVGBackend::new(path, size(report.lanes.len())).into_drawing_area();
    draw(root, report, title)
}

/// Writes the chart of `report` as PNG to `path`.
pub fn write_png(report: &Report, title: &str, path: &Path) -> Result<(), String> {
    fonts()?;
    let root = BitMapBackend::new(path, size(report.lanes.len())).into_drawing_area();
    draw(root, report, title)
}

/// `(x in s, value per s)` points of `bins`, summed into at most
/// [`MAX_POINTS`] steps.
fn points(bins: &[u32], bin_ns: u64) -> Vec<(f64, f64)> {
    let group = bins.len().div_ceil(MAX_POINTS).max(1);
    let width_s = bin_ns as f64 * group as f64 / 1e9;
    bins.chunks(group)
        .enumerate()
        .map(|(i, c)| {
            let sum: u64 = c.iter().map(|&v| u64::from(v)).sum();
            (i as f64 * width_s, sum as f64 / width_s)
        })
        .collect()
}

/// The limit as requests per second, for the algorithms that have one.
fn limit_rate(lane: &LaneReport) -> Option<f64> {
    let per_s = lane.spec.limit as f64 * 1e9 / lane.spec.interval_ns as f64;
    match lane.spec.algorithm {
        Algorithm::Taildrop
        | Algorithm::Red
        | Algorithm::RedProportional
        | Algorithm::Sliding
        | Algorithm::Gcra => Some(per_s),
        Algorithm::Interval if lane.spec.limit > 0 => Some(per_s),
        _ => None,
    }
}

/// A lane's caption: its spec, what passed and the worst burst.
pub fn caption(lane: &LaneReport) -> String {
    let ratio = if lane.offered == 0 {
        100.0
    } else {
        100.0 * lane.passed as f64 / lane.offered as f64
    };
    format!(
        "{}: passed {} of {} ({ratio:.1}%), dropped {}, worst burst {} in 1 s",
        lane.spec.text, lane.passed, lane.offered, lane.dropped, lane.worst_burst
    )
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &Report,
    title: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(70);
    top.draw(&Text::new(
        title.to_owned(),
        (20, 14),
        (FONT, 22).into_font().style(FontStyle::Bold).color(&BLACK),
    ))
    .map_err(err)?;
    top.draw(&Text::new(
        "requests per second: offered (grey), passed (green), dropped (red), limit (blue)"
            .to_owned(),
        (20, 44),
        (FONT, 15).into_font().color(&BLACK),
    ))
    .map_err(err)?;
    let offered = points(&report.offered_bins, report.bin_ns);
    let x_max = offered
        .last()
        .map(|p| p.0 + report.bin_ns as f64 / 1e9)
        .unwrap_or(1.0)
        .max(1e-9);
    let y_max = offered.iter().map(|p| p.1).fold(1.0, f64::max).max(
        report
            .lanes
            .iter()
            .filter_map(limit_rate)
            .fold(0.0, f64::max),
    ) * 1.15;
    let panels = body.split_evenly((report.lanes.len().max(1), 1));
    for (panel, lane) in panels.iter().zip(&report.lanes) {
        let passed = points(&lane.passed_bins, report.bin_ns);
        let dropped: Vec<(f64, f64)> = offered
            .iter()
            .zip(&passed)
            .map(|(o, p)| (o.0, (o.1 - p.1).max(0.0)))
            .collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(caption(lane), (FONT, 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("per second")
            .label_style((FONT, 13))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let series = [
            ("offered", &offered, OFFERED),
            ("dropped", &dropped, DROPPED),
            ("passed", &passed, PASSED),
        ];
        for (name, data, color) in series {
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        if let Some(rate) = limit_rate(lane) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, rate), (x_max, rate)],
                    6,
                    4,
                    LIMIT.stroke_width(1),
                ))
                .map_err(err)?
                .label(format!("limit {rate:.0}/s"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], LIMIT));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_are_summed_into_steps() {
        let bins = vec![2u32; 3000];
        let p = points(&bins, 1_000_000_000);
        assert_eq!(p.len(), 1500);
        assert_eq!(p[1], (2.0, 2.0));
        let p = points(&[5, 10], 500_000_000);
        assert_eq!(p, vec![(0.0, 10.0), (0.5, 20.0)]);
    }
}
