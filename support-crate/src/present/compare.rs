//! The comparison charts of `report` (and the README): every run record in
//! one picture. Accuracy is drawn on an axis zoomed to the intervals, which
//! its label states, beside each method's paired difference to the best.

use std::path::PathBuf;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::costs::{total_per_1000, MACHINE_USD_PER_HOUR};
use crate::paired::PairedDifference;
use crate::plot::{
    class_color, draw_error, draw_legend_below, legend_height, mesh, thousands, tick, LegendEntry, Svg, Swatch,
    LABEL_FONT, NOTE_FONT, TITLE_FONT,
};
use crate::results::RunRecord;

/// Chart width: the README shows images at most about 900 px wide.
const WIDTH: u32 = 980;

fn label(r: &RunRecord) -> String {
    format!("{} ({})", r.method, r.model)
}

/// `text` broken at spaces into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// "AG News test accuracy", or "Test accuracy" where the records name no task.
fn accuracy_title(records: &[(PathBuf, RunRecord)]) -> String {
    match records.first().map(|(_, r)| r.data.task.as_str()).filter(|t| !t.is_empty()) {
        Some(task) => format!("{task} test accuracy"),
        None => "Test accuracy".into(),
    }
}

fn chance(records: &[(PathBuf, RunRecord)]) -> f64 {
    100.0 / records.first().map_or(4, |(_, r)| r.metrics.per_class.len().max(1)) as f64
}

/// The accuracy axis of [`accuracy_chart`]: from a multiple of 5 below the
/// lowest interval to one above the highest (at most 100), so one-point
/// differences are visible; with the chance level when it falls inside.
fn accuracy_axis(records: &[(PathBuf, RunRecord)]) -> (f64, f64) {
    let lows = records.iter().map(|(_, r)| 100.0 * r.metrics.accuracy_ci95[0]);
    let highs = records.iter().map(|(_, r)| 100.0 * r.metrics.accuracy_ci95[1]);
    let low = lows.fold(100.0, f64::min);
    let high = highs.fold(0.0, f64::max);
    let from = ((low - 1.0) / 5.0).floor() * 5.0;
    let to = (((high + 1.0) / 5.0).ceil() * 5.0).min(100.0);
    (from.clamp(0.0, to - 5.0), to)
}

/// "-1.24 [-1.79, -0.67], p = 2e-5" (points against the best, on the same
/// items), or "the most accurate".
fn against_best_note(difference: Option<&PairedDifference>) -> String {
    match difference {
        None => "the most accurate".into(),
        Some(d) => format!(
            "{:+.2} [{:+.2}, {:+.2}], p = {}",
            100.0 * d.difference,
            100.0 * d.ci95[0],
            100.0 * d.ci95[1],
            crate::paired::format_p(d.mcnemar_p[0])
        ),
    }
}

/// One row per method, best on top: the test accuracy as a point with its
/// 95% bootstrap interval, on an axis zoomed to the intervals (the chance
/// line where it falls inside), and in a column on the right the accuracy and
/// the paired difference to the most accurate method on the same items
/// (`versus`, from [`super::report::against_best`]; `None` for the best).
pub fn accuracy_chart(records: &[(PathBuf, RunRecord)], versus: &[Option<PairedDifference>]) -> Result<Svg> {
    let n = records.len();
    let row_h = 78u32;
    let (label_w, value_w) = (310u32, 290u32);
    let chance = chance(records);
    let (from, to) = accuracy_axis(records);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 160 + row_h * n as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (labels, rest) = root.split_horizontally(label_w);
        let (plot, values) = rest.split_horizontally(WIDTH - label_w - value_w);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{} (95% bootstrap interval)", accuracy_title(records)), ("sans-serif", TITLE_FONT))
            .margin(15)
            .margin_right(20)
            .x_label_area_size(66)
            .build_cartesian_2d(from..to, 0.0..n as f64)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .disable_y_mesh()
            .y_labels(0)
            .x_labels((((to - from) / 5.0) as usize + 1).min(11))
            .x_label_formatter(&|x| format!("{}%", tick(x)))
            .x_desc(format!("accuracy on the test split (axis from {}%)", tick(&from)))
            .draw()
            .map_err(draw_error)?;
        let grey = RGBColor(90, 90, 90);
        if chance > from {
            chart
                .draw_series(DashedLineSeries::new([(chance, 0.0), (chance, n as f64)], 6, 4, grey.stroke_width(2)))
                .map_err(draw_error)?;
            let note = ("sans-serif", NOTE_FONT).into_font().color(&grey).pos(Pos::new(HPos::Left, VPos::Bottom));
            chart
                .plotting_area()
                .draw(&Text::new(format!(" chance ({}%)", tick(&chance)), (chance, 0.02), note))
                .map_err(draw_error)?;
        }
        for (i, (_, r)) in records.iter().enumerate() {
            let row = (n - 1 - i) as f64;
            let acc = 100.0 * r.metrics.accuracy;
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            chart
                .draw_series([
                    PathElement::new(vec![(lo, row + 0.4), (hi, row + 0.4)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(lo, row + 0.3), (lo, row + 0.5)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(hi, row + 0.3), (hi, row + 0.5)], BLACK.stroke_width(2)).into_dyn(),
                    Circle::new((acc, row + 0.4), 7, class_color(i).filled()).into_dyn(),
                ])
                .map_err(draw_error)?;
        }
        // Labels: the method, wrapped, then the model in grey, centred on the
        // row; on the right, the accuracy and the paired difference.
        let (_, plot_top) = chart.plotting_area().get_pixel_range();
        let (top, bottom) = (plot_top.start, plot_top.end);
        let pixel_row = (bottom - top) as f64 / n as f64;
        let line_h = 21.0;
        let key = ("sans-serif", NOTE_FONT).into_font().color(&grey).pos(Pos::new(HPos::Left, VPos::Top));
        for (j, text) in
            ["above: accuracy [95% CI]", "below: against the best on the same", "items, points [95% CI], McNemar p"]
                .iter()
                .enumerate()
        {
            values.draw(&Text::new(*text, (4, bottom + 10 + 20 * j as i32), key.clone())).map_err(draw_error)?;
        }
        for (i, (_, r)) in records.iter().enumerate() {
            // The method's settings after the first comma are in the table; here its kind and model.
            let kind = r.method.split(',').next().unwrap_or(&r.method);
            let mut lines: Vec<(String, RGBColor, u32)> =
                wrap(kind, 30).into_iter().map(|l| (l, BLACK, LABEL_FONT)).collect();
            lines.push((r.model.clone(), grey, NOTE_FONT));
            let centre = top as f64 + pixel_row * (i as f64 + 0.6);
            let first = centre - line_h * (lines.len() as f64 - 1.0) / 2.0;
            for (j, (text, color, size)) in lines.into_iter().enumerate() {
                let font = ("sans-serif", size).into_font().color(&color).pos(Pos::new(HPos::Right, VPos::Center));
                labels
                    .draw(&Text::new(text, (label_w as i32 - 12, (first + line_h * j as f64) as i32), font))
                    .map_err(draw_error)?;
            }
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            let value = format!("{:.2}% [{lo:.1}, {hi:.1}]", 100.0 * r.metrics.accuracy);
            let note = against_best_note(versus.get(i).and_then(Option::as_ref));
            for (j, (text, color, size)) in
                [(value, BLACK, LABEL_FONT), (note, grey, NOTE_FONT)].into_iter().enumerate()
            {
                let font = ("sans-serif", size).into_font().color(&color).pos(Pos::new(HPos::Left, VPos::Center));
                let y = centre - line_h / 2.0 + line_h * j as f64;
                values.draw(&Text::new(text, (4, y as i32), font)).map_err(draw_error)?;
            }
        }
        root.present().map_err(draw_error)?;
    }
    let points: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, (_, r))| {
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            format!(
                "{}: {:.2}% (95% interval {lo:.1} to {hi:.1}; {})",
                label(r),
                100.0 * r.metrics.accuracy,
                against_best_note(versus.get(i).and_then(Option::as_ref))
            )
        })
        .collect();
    let chance_note = if chance > from { format!(" with the {}% chance line", tick(&chance)) } else { String::new() };
    let alt = format!(
        "{} per method on an axis from {}% to {}%{chance_note}; each against the most accurate on the same test \
         items (paired difference in points, 95% interval, McNemar p). {}.",
        accuracy_title(records),
        tick(&from),
        tick(&to),
        points.join("; ")
    );
    Ok(Svg::new(svg, alt))
}

fn method_legend(records: &[(PathBuf, RunRecord)], numbered: bool) -> Vec<LegendEntry> {
    let entry = |i: usize, r: &RunRecord| {
        LegendEntry::new(if numbered { format!("{}  {}", i + 1, label(r)) } else { label(r) }, class_color(i))
    };
    records.iter().enumerate().map(|(i, (_, r))| entry(i, r)).collect()
}

/// Per-class F1 of each method, one group of bars per class on a 0–100
/// axis, each bar with its value (a zero bar shows as "0"); the legend is
/// below the plot.
pub fn per_class_f1_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let classes: Vec<String> = records[0].1.metrics.per_class.iter().map(|c| c.label.clone()).collect();
    let n = records.len();
    let legend = method_legend(records, false);
    let plot_h = 440u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, plot_h + legend_height(n))).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plot, below) = root.split_vertically(plot_h);
        let mut chart = ChartBuilder::on(&plot)
            .caption("Per-class F1 on the test split", ("sans-serif", TITLE_FONT))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..classes.len() as f64, 0.0..105.0)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .disable_x_mesh()
            .x_labels(classes.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-9 {
                    classes.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_labels(6)
            .y_label_formatter(&tick)
            .y_desc("F1 (%)")
            .draw()
            .map_err(draw_error)?;
        let width = 0.84 / n as f64;
        let value_font = ("sans-serif", 15).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (k, (_, r)) in records.iter().enumerate() {
            let color = class_color(k);
            for (c, s) in r.metrics.per_class.iter().enumerate() {
                let x0 = c as f64 + 0.08 + k as f64 * width;
                let f1 = 100.0 * s.f1;
                chart
                    .draw_series([
                        Rectangle::new([(x0, 0.0), (x0 + width * 0.9, f1)], color.mix(0.85).filled()).into_dyn(),
                        Text::new(format!("{f1:.0}"), (x0 + width * 0.45, f1 + 0.5), value_font.clone()).into_dyn(),
                    ])
                    .map_err(draw_error)?;
            }
        }
        draw_legend_below(&below, &legend)?;
        root.present().map_err(draw_error)?;
    }
    let rows: Vec<String> = records
        .iter()
        .map(|(_, r)| {
            let scores: Vec<String> =
                r.metrics.per_class.iter().map(|c| format!("{} {:.0}", c.label, 100.0 * c.f1)).collect();
            format!("{}: {}", label(r), scores.join(", "))
        })
        .collect();
    Ok(Svg::new(svg, format!("Per-class F1 (%) on the test split. {}.", rows.join("; "))))
}

/// Accuracy against inference speed (items/s) and against cost per 1,000
/// items, both on log scales; each method a numbered point, named in the
/// legend below the two panels.
pub fn accuracy_speed_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let point = |i: usize, r: &RunRecord, x: Option<f64>| Some((x?, 100.0 * r.metrics.accuracy, i));
    let speed: Vec<_> =
        records.iter().enumerate().filter_map(|(i, (_, r))| point(i, r, Some(r.items_per_second()))).collect();
    let cost: Vec<_> =
        records.iter().enumerate().filter_map(|(i, (_, r))| point(i, r, Some(total_per_1000(r)))).collect();
    let legend = method_legend(records, true);
    let plot_h = 460u32;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, plot_h + legend_height(records.len()) + 26)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plots, below) = root.split_vertically(plot_h);
        let (left, right) = plots.split_horizontally(WIDTH / 2);
        scatter(&left, &speed, "Accuracy against speed", "test items per second (log)")?;
        scatter(&right, &cost, "Accuracy against cost", "USD per 1,000 items (log)")?;
        let note = ("sans-serif", NOTE_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top));
        let cost_note = format!("Cost: this machine's time at ${MACHINE_USD_PER_HOUR:.2}/h plus any API price.");
        below.draw(&Text::new(cost_note, (12, 4), note)).map_err(draw_error)?;
        draw_legend_below(&below.margin(26, 0, 0, 0), &legend)?;
        root.present().map_err(draw_error)?;
    }
    let rows: Vec<String> = records
        .iter()
        .map(|(_, r)| {
            let speed = format!("{} items/s", tick(&r.items_per_second()));
            let cost = format!("${} per 1,000", tick(&total_per_1000(r)));
            format!("{}: {:.2}%, {speed}, {cost}", label(r), 100.0 * r.metrics.accuracy)
        })
        .collect();
    Ok(Svg::new(svg, format!("Accuracy against inference speed and against cost, log scales. {}.", rows.join("; "))))
}

/// Numbered points on a log-x, linear-y (accuracy %) panel.
fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[(f64, f64, usize)],
    caption: &str,
    x_desc: &str,
) -> Result<()> {
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (lo, hi) = if points.is_empty() { (1.0, 10.0) } else { (lo, hi) };
    let (y_lo, y_hi) = points.iter().fold((100.0f64, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", TITLE_FONT - 2))
        .margin(15)
        .x_label_area_size(52)
        .y_label_area_size(64)
        .build_cartesian_2d(((lo / 4.0)..hi * 4.0).log_scale(), (y_lo - 6.0).max(0.0)..y_hi + 4.0)
        .map_err(draw_error)?;
    mesh(&mut chart)
        .x_desc(x_desc)
        .y_desc("accuracy (%)")
        .x_labels(4)
        .y_labels(6)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(draw_error)?;
    let font = ("sans-serif", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for &(x, y, i) in points {
        chart.draw_series(std::iter::once(Circle::new((x, y), 7, class_color(i).filled()))).map_err(draw_error)?;
        let number = EmptyElement::at((x, y)) + Text::new(thousands(i as u64 + 1), (10, 0), font.clone());
        chart.draw_series(std::iter::once(number)).map_err(draw_error)?;
    }
    Ok(())
}

/// Bins with fewer items than this are left out of the reliability diagram's
/// upper panel: their accuracy is too noisy to read (they still count in the
/// ECE and in the lower panel).
pub const MIN_BIN_ITEMS: usize = 30;

/// Each method's reliability line and its legend sample.
const RELIABILITY_LINE_WIDTH: u32 = 2;

/// Reliability diagram: each method's accuracy against its confidence, per
/// confidence bin of at least [`MIN_BIN_ITEMS`] items, beside the grey dashed
/// diagonal of perfect calibration, on a confidence axis from 1/classes (the
/// least a top score can be); below, how many items fall in each bin, so a
/// reader sees which points carry weight.
pub fn reliability_chart(
    records: &[(PathBuf, RunRecord)],
    reliabilities: &[Option<crate::metrics::Reliability>],
) -> Result<Svg> {
    let floor = chance(records) / 100.0;
    let shown: Vec<(usize, String, &crate::metrics::Reliability)> = records
        .iter()
        .zip(reliabilities)
        .enumerate()
        .filter_map(|(i, ((_, r), rel))| {
            let rel = rel.as_ref()?;
            let method = r.method.split(',').next().unwrap_or(&r.method);
            Some((i, format!("{method}, {} (ECE {:.3})", r.model, rel.ece), rel))
        })
        .collect();
    let legend: Vec<LegendEntry> = shown
        .iter()
        .map(|(i, name, _)| {
            LegendEntry::new(name.clone(), class_color(*i)).with_swatch(Swatch::Line { width: RELIABILITY_LINE_WIDTH })
        })
        .collect();
    let (plot_w, upper_h, lower_h) = (620u32, 470u32, 210u32);
    let legend_w = crate::plot::legend_width(&legend);
    let grey = RGBColor(120, 120, 120);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (plot_w + legend_w, upper_h + lower_h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plots, side) = root.split_horizontally(plot_w);
        let (upper, lower) = plots.split_vertically(upper_h);
        let mut chart = ChartBuilder::on(&upper)
            .caption("Reliability on test: accuracy against confidence", ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(72)
            .build_cartesian_2d(floor..1.0, 0.0..1.0)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .y_desc(format!("accuracy in the bin (bins of ≥ {MIN_BIN_ITEMS} items)"))
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(DashedLineSeries::new([(floor, floor), (1.0, 1.0)], 8, 6, grey.stroke_width(2)))
            .map_err(draw_error)?;
        let note = ("sans-serif", NOTE_FONT).into_font().color(&grey).pos(Pos::new(HPos::Right, VPos::Bottom));
        chart
            .plotting_area()
            .draw(&Text::new("dashed: perfect calibration ", (0.995, 0.02), note))
            .map_err(draw_error)?;
        for (i, _, rel) in &shown {
            let color = class_color(*i);
            let points: Vec<(f64, f64)> = rel
                .bins
                .iter()
                .filter(|b| b.items >= MIN_BIN_ITEMS)
                .map(|b| (b.mean_confidence.max(floor), b.accuracy))
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(RELIABILITY_LINE_WIDTH)))
                .map_err(draw_error)?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(draw_error)?;
        }
        let most = shown.iter().flat_map(|(_, _, rel)| rel.bins.iter().map(|b| b.items)).max().unwrap_or(1);
        let mut counts = ChartBuilder::on(&lower)
            .margin(12)
            .margin_top(4)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(floor..1.0, (0.8..(most as f64 * 1.5)).log_scale())
            .map_err(draw_error)?;
        mesh(&mut counts)
            .x_desc("confidence (score of the answered class), bin mean")
            .y_desc("items (log)")
            .x_labels(8)
            .y_labels(4)
            .x_label_formatter(&tick)
            .y_label_formatter(&|v| thousands(v.round() as u64))
            .draw()
            .map_err(draw_error)?;
        counts
            .draw_series(DashedLineSeries::new(
                [(floor, MIN_BIN_ITEMS as f64), (1.0, MIN_BIN_ITEMS as f64)],
                4,
                4,
                grey.stroke_width(1),
            ))
            .map_err(draw_error)?;
        for (i, _, rel) in &shown {
            let color = class_color(*i);
            let points: Vec<(f64, f64)> =
                rel.bins.iter().map(|b| (b.mean_confidence.max(floor), b.items as f64)).collect();
            counts
                .draw_series(LineSeries::new(points.iter().copied(), color.mix(0.8).stroke_width(1)))
                .map_err(draw_error)?;
            counts.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(draw_error)?;
        }
        crate::plot::draw_legend_beside(&side, &legend)?;
        root.present().map_err(draw_error)?;
    }
    let described: Vec<String> = shown
        .iter()
        .map(|(_, name, rel)| {
            let kept = rel.bins.iter().filter(|b| b.items >= MIN_BIN_ITEMS).count();
            let top = rel.bins.iter().max_by_key(|b| b.items).map_or(0.0, |b| b.items as f64);
            let total: usize = rel.bins.iter().map(|b| b.items).sum();
            format!(
                "{name}: {kept} of {} bins drawn, {:.0}% of items in its fullest bin",
                rel.bins.len(),
                100.0 * top / total.max(1) as f64
            )
        })
        .collect();
    let alt = format!(
        "Reliability diagram: accuracy in each confidence bin against the bin's mean confidence, confidence from {} \
         to 1, bins of fewer than {MIN_BIN_ITEMS} items left out, the dashed diagonal is perfect calibration; below, \
         items per bin on a log scale. {}.",
        tick(&floor),
        described.join("; ")
    );
    Ok(Svg::new(svg, alt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{evaluate, Bootstrap, Throughput};
    use crate::plot::overlapping_labels;
    use crate::results::{DataSizes, Hardware, Timings, SCHEMA_VERSION};

    fn record(method: &str, model: &str, correct_of_8: usize, items_per_second: f64) -> (PathBuf, RunRecord) {
        let labels: Vec<String> = ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec();
        let truth: Vec<usize> = (0..8).map(|i| i % 4).collect();
        let predicted: Vec<Option<usize>> =
            truth.iter().enumerate().map(|(i, &t)| Some(if i < correct_of_8 { t } else { (t + 1) % 4 })).collect();
        let record = RunRecord {
            schema_version: SCHEMA_VERSION,
            experiment: method.into(),
            kind: method.into(),
            endpoint: None,
            method: method.into(),
            model: model.into(),
            command: "test".into(),
            config: serde_json::Value::Null,
            seeds: Default::default(),
            data: DataSizes {
                source: "synthetic".into(),
                task: "AG News".into(),
                labels: labels.clone(),
                train: 8,
                validation: 8,
                test: 8,
            },
            hardware: Hardware::detect(),
            timings: Timings { test_inference: Throughput::new(8.0 / items_per_second, 8), training: None },
            api_cost_per_1000_usd: None,
            scores: String::new(),
            metrics: evaluate(&truth, &predicted, &labels, Bootstrap::default()),
            extra: serde_json::Value::Null,
            predictions_xxh3: None,
        };
        (PathBuf::from(format!("{method}.json")), record)
    }

    fn records() -> Vec<(PathBuf, RunRecord)> {
        vec![
            record("fine-tuned SLM", "SmolLM2-135M-Instruct", 8, 26.2),
            record("embeddings + K-NN", "all-MiniLM-L6-v2", 7, 149.0),
            record("TF-IDF + logistic regression", "word 1-2-grams", 7, 130_000.0),
            record(
                "prompted LM in-process, few-shot (1 per class), constrained decoding",
                "SmolLM2-135M-Instruct.Q4_1",
                4,
                7.9,
            ),
            record("prompted LM over HTTP, few-shot (1 per class) structured output", "SmolLM2-135M-Instruct", 4, 2.7),
        ]
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 6), Vec::<String>::new());
    }

    #[test]
    fn comparison_charts_have_no_overlapping_labels_and_say_what_they_show() {
        let records = records();
        let versus = paired_versus(&records);
        for svg in [
            accuracy_chart(&records, &versus).unwrap(),
            per_class_f1_chart(&records).unwrap(),
            accuracy_speed_chart(&records).unwrap(),
        ] {
            assert_eq!(overlapping_labels(&svg.markup), Vec::<(String, String)>::new(), "{}", svg.alt);
            assert!(svg.alt.contains("fine-tuned SLM (SmolLM2-135M-Instruct)"), "{}", svg.alt);
            let noise = crate::plot::text_boxes(&svg.markup)
                .into_iter()
                .filter(|(_, t)| t.contains("e-") && t.chars().all(|c| c.is_ascii_digit() || ".,-e".contains(c)));
            assert_eq!(noise.count(), 0, "float noise in a tick label");
        }
        let accuracy = accuracy_chart(&records, &versus).unwrap();
        assert!(accuracy.markup.contains(" chance (25%)"), "no chance line label");
        assert!(accuracy.alt.contains("from 10% to 100%"), "{}", accuracy.alt);
        assert!(accuracy.markup.contains("the most accurate"), "the best is not named");
        assert!(accuracy.alt.contains("-12.50 ["), "{}", accuracy.alt);
    }

    /// Each synthetic record against the first (the best) on the same 8 items.
    fn paired_versus(records: &[(PathBuf, RunRecord)]) -> Vec<Option<PairedDifference>> {
        let right = |r: &RunRecord| -> Vec<bool> {
            let correct = (r.metrics.accuracy * 8.0).round() as usize;
            (0..8).map(|i| i < correct).collect()
        };
        let best = right(&records[0].1);
        let others = records.iter().skip(1).map(|(_, r)| {
            Some(
                PairedDifference::of(&[right(r)], std::slice::from_ref(&best), crate::metrics::Bootstrap::default())
                    .unwrap(),
            )
        });
        std::iter::once(None).chain(others).collect()
    }

    #[test]
    fn the_accuracy_axis_zooms_to_the_intervals_and_keeps_chance_when_it_is_inside() {
        let close = vec![record("a", "m", 8, 1.0), record("b", "m", 7, 1.0)];
        let (from, to) = accuracy_axis(&close);
        let lowest = close.iter().map(|(_, r)| 100.0 * r.metrics.accuracy_ci95[0]).fold(100.0, f64::min);
        assert!(from <= lowest - 1.0 && from % 5.0 == 0.0 && to == 100.0, "{from}..{to}");
        let svg = accuracy_chart(&close, &paired_versus(&close)).unwrap();
        assert_eq!(svg.markup.contains("chance (25%)"), from < 25.0, "{}", svg.alt);
    }
}
