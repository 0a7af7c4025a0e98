//! `docs/benchmarks.svg`: median convergence time against N, both axes
//! logarithmic, for the raw baseline (best create), fan-out, rotation and
//! many objects.

use std::path::Path;

use plotters::prelude::*;

use crate::results::Results;
use crate::util::Result;

type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

pub fn write(path: &Path, results: &Results) -> Result<()> {
    let series = series(results);
    let points = || series.iter().flat_map(|(_, _, p)| p.iter().copied());
    let (Some(x), Some(y)) = (bounds(points().map(|p| p.0)), bounds(points().map(|p| p.1))) else {
        return Err("nothing to plot".into());
    };
    let area = SVGBackend::new(path, (800, 500)).into_drawing_area();
    area.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(
            "Convergence time against resource groups",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(
            (x.0 / 1.5..x.1 * 1.5).log_scale(),
            (y.0 / 2.0..y.1 * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&decade)
        .y_label_formatter(&decade)
        .x_desc("resource groups N")
        .y_desc("seconds (median)")
        .draw()?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    area.present()?;
    Ok(())
}

fn series(results: &Results) -> Vec<Series> {
    let median = |key: &'static str| move |n: usize| results.stats(n, key).map(|s| s.median);
    vec![
        (
            "raw baseline (best create of N)",
            BLACK,
            points(results, |n| results.best_raw_create(n)),
        ),
        (
            "fan-out (1 tenant-wide object)",
            BLUE,
            points(results, median("fanout.secs")),
        ),
        (
            "rotation (5 tenant-wide objects)",
            RED,
            points(results, median("rotation.secs")),
        ),
        (
            "many objects (2N resource-group objects)",
            DARK_GREEN,
            points(results, median("many.secs")),
        ),
    ]
}

const DARK_GREEN: RGBColor = RGBColor(0, 140, 0);

/// Labels at powers of ten only (a log axis gets many ticks).
fn decade(v: &f64) -> String {
    let exponent = v.log10().round();
    match (v.log10() - exponent).abs() < 1e-9 {
        true => format!("{v:.*}", (-exponent).max(0.0) as usize),
        false => String::new(),
    }
}

fn points(results: &Results, value: impl Fn(usize) -> Option<f64>) -> Vec<(f64, f64)> {
    results
        .sizes()
        .into_iter()
        .filter_map(|n| Some((n as f64, value(n)?)))
        .filter(|(_, y)| *y > 0.0)
        .collect()
}

/// (min, max) of `values`.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}
