//! The comparison charts of `report` (and the README): every run record in
//! one picture. Accuracy is drawn on its whole scale from 0 with the 25%
//! chance line, so a method at 50% looks half as good as one at 100%.

use std::path::PathBuf;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::costs::{total_per_1000, MACHINE_USD_PER_HOUR};
use crate::plot::{
    class_color, draw_error, draw_legend_below, legend_height, thousands, tick, LegendEntry, Svg, LABEL_FONT,
    NOTE_FONT, TICK_FONT, TITLE_FONT,
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

/// One row per method, best on top: the test accuracy as a point with its
/// 95% bootstrap interval, on an axis from 0 to 100% with the chance line.
pub fn accuracy_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let n = records.len();
    let row_h = 78u32;
    let label_w = 360u32;
    let chance = chance(records);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 150 + row_h * n as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (labels, plot) = root.split_horizontally(label_w);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{} (95% bootstrap interval)", accuracy_title(records)), ("sans-serif", TITLE_FONT))
            .margin(15)
            .margin_right(30)
            .x_label_area_size(56)
            .build_cartesian_2d(0.0..100.0, 0.0..n as f64)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(11)
            .light_line_style(WHITE.mix(0.0))
            .x_label_formatter(&|x| format!("{}%", tick(x)))
            .x_desc("accuracy on the test split")
            .label_style(("sans-serif", TICK_FONT))
            .axis_desc_style(("sans-serif", LABEL_FONT))
            .draw()
            .map_err(draw_error)?;
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(DashedLineSeries::new([(chance, 0.0), (chance, n as f64)], 6, 4, grey.stroke_width(2)))
            .map_err(draw_error)?;
        let note = ("sans-serif", NOTE_FONT).into_font().color(&grey).pos(Pos::new(HPos::Left, VPos::Bottom));
        chart
            .plotting_area()
            .draw(&Text::new(format!(" chance ({}%)", tick(&chance)), (chance, 0.02), note))
            .map_err(draw_error)?;
        let value_font = ("sans-serif", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Bottom));
        for (i, (_, r)) in records.iter().enumerate() {
            let row = (n - 1 - i) as f64;
            let color = class_color(i);
            let acc = 100.0 * r.metrics.accuracy;
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            chart
                .draw_series([
                    PathElement::new(vec![(lo, row + 0.4), (hi, row + 0.4)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(lo, row + 0.3), (lo, row + 0.5)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(hi, row + 0.3), (hi, row + 0.5)], BLACK.stroke_width(2)).into_dyn(),
                    Circle::new((acc, row + 0.4), 7, color.filled()).into_dyn(),
                    Text::new(format!("{acc:.2}% [{lo:.1}, {hi:.1}]"), (hi, row + 0.62), value_font.clone()).into_dyn(),
                ])
                .map_err(draw_error)?;
        }
        // Labels: the method, wrapped, then the model in grey, centred on the row.
        let (_, plot_top) = chart.plotting_area().get_pixel_range();
        let (top, bottom) = (plot_top.start, plot_top.end);
        let pixel_row = (bottom - top) as f64 / n as f64;
        for (i, (_, r)) in records.iter().enumerate() {
            let mut lines: Vec<(String, RGBColor, u32)> =
                wrap(&r.method, 34).into_iter().map(|l| (l, BLACK, LABEL_FONT)).collect();
            lines.push((r.model.clone(), grey, NOTE_FONT));
            let line_h = 21.0;
            let centre = top as f64 + pixel_row * (i as f64 + 0.6);
            let first = centre - line_h * (lines.len() as f64 - 1.0) / 2.0;
            for (j, (text, color, size)) in lines.into_iter().enumerate() {
                let font = ("sans-serif", size).into_font().color(&color).pos(Pos::new(HPos::Right, VPos::Center));
                labels
                    .draw(&Text::new(text, (label_w as i32 - 12, (first + line_h * j as f64) as i32), font))
                    .map_err(draw_error)?;
            }
        }
        root.present().map_err(draw_error)?;
    }
    let points: Vec<String> = records
        .iter()
        .map(|(_, r)| {
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            format!("{}: {:.2}% (95% interval {lo:.1} to {hi:.1})", label(r), 100.0 * r.metrics.accuracy)
        })
        .collect();
    let alt = format!(
        "{} per method on an axis from 0 to 100% with the {}% chance line. {}.",
        accuracy_title(records),
        tick(&chance),
        points.join("; ")
    );
    Ok(Svg::new(svg, alt))
}

fn method_legend(records: &[(PathBuf, RunRecord)], numbered: bool) -> Vec<LegendEntry> {
    let entry = |i: usize, r: &RunRecord| LegendEntry {
        name: if numbered { format!("{}  {}", i + 1, label(r)) } else { label(r) },
        color: class_color(i),
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
        chart
            .configure_mesh()
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
            .light_line_style(WHITE.mix(0.0))
            .y_label_formatter(&tick)
            .y_desc("F1 (%)")
            .label_style(("sans-serif", TICK_FONT))
            .axis_desc_style(("sans-serif", LABEL_FONT))
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
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("accuracy (%)")
        .x_labels(4)
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", TICK_FONT))
        .axis_desc_style(("sans-serif", LABEL_FONT))
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

/// Reliability diagram: each method's accuracy against its confidence, per
/// confidence bin with items, beside the diagonal of perfect calibration.
pub fn reliability_chart(
    records: &[(PathBuf, RunRecord)],
    reliabilities: &[Option<crate::metrics::Reliability>],
) -> Result<Svg> {
    let mut series = vec![("perfect calibration".to_string(), vec![(0.0, 0.0), (1.0, 1.0)])];
    for ((_, r), rel) in records.iter().zip(reliabilities) {
        let Some(rel) = rel else { continue };
        let points = rel.bins.iter().map(|b| (b.mean_confidence, b.accuracy)).collect();
        let method = r.method.split(',').next().unwrap_or(&r.method);
        series.push((format!("{method}, {} (ECE {:.3})", r.model, rel.ece), points));
    }
    crate::plot::LineChart {
        title: "Reliability on test: accuracy against confidence",
        x_label: "confidence (score of the answered class), bin mean",
        y_label: "accuracy in the bin",
        series,
        markers: Vec::new(),
    }
    .render((640, 480))
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
        for svg in [
            accuracy_chart(&records).unwrap(),
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
        let accuracy = accuracy_chart(&records).unwrap();
        assert!(accuracy.markup.contains(" chance (25%)"), "no chance line label");
        assert!(accuracy.alt.contains("from 0 to 100%"), "{}", accuracy.alt);
    }
}
