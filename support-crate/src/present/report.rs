//! The comparison: every run record in `results/` as one table (the README's,
//! between markers, so it cannot drift from the results) and charts in
//! `assets/`. A record that cannot be read — unknown schema version, missing
//! fields — is an error naming the file, never silently left out.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;

use super::plot::{class_color, draw_error, draw_legend, Svg};
use crate::results::{self, RunRecord};

/// Files in `results/` that are not run records.
fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".json") && name != "eda.json" && !name.starts_with("bench_")
}

/// Every run record in `dir`, sorted by test accuracy (best first).
pub fn load_records(dir: &Path) -> Result<Vec<(PathBuf, RunRecord)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_record_file(p))
        .collect();
    paths.sort();
    let mut records =
        paths.into_iter().map(|p| results::read_run(&p).map(|(r, _)| (p, r))).collect::<Result<Vec<_>>>()?;
    if records.is_empty() {
        bail!("no run records (*.json) in {}: run an experiment first (e.g. `slm-vs-llm all`)", dir.display());
    }
    records.sort_by(|a, b| b.1.metrics.accuracy.total_cmp(&a.1.metrics.accuracy));
    Ok(records)
}

/// Training time in seconds: fitting, fine-tuning, or embedding the training texts for K-NN.
pub fn train_seconds(r: &RunRecord) -> Option<f64> {
    if let Some(t) = r.timings.get("training") {
        return Some(t.seconds);
    }
    r.timings.get("embedding").map(|e| r.data.train as f64 / e.items_per_second)
}

/// Test items classified per second, end to end (for K-NN: embedding plus search).
pub fn inference_items_per_second(r: &RunRecord) -> Option<f64> {
    if let Some(t) = r.timings.get("test_inference") {
        return Some(t.items_per_second);
    }
    let search = r.timings.get("test_search")?;
    let embed = r.timings.get("embedding")?;
    Some(1.0 / (1.0 / embed.items_per_second + search.seconds / search.items as f64))
}

/// Cost of 1,000 classifications in US dollars: an API's price where the
/// record has one, else 0 (runs on your own CPU).
pub fn cost_per_1000(r: &RunRecord) -> f64 {
    r.extra.get("cost_per_1000_items_usd").and_then(|v| v.as_f64()).unwrap_or(0.0)
}

fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(per_second: f64) -> String {
    if per_second >= 1000.0 {
        thousands(per_second.round() as usize)
    } else if per_second >= 10.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.2}")
    }
}

/// The README's results table (Markdown).
pub fn markdown_table(records: &[(PathBuf, RunRecord)]) -> String {
    let mut out = String::from(
        "| method | model | test items | accuracy [95% CI] | macro-F1 | train time | inference items/s | cost / 1,000 items | hardware | command |\n\
         | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for (_, r) in records {
        let m = &r.metrics;
        let invalid = if m.invalid > 0 { format!(" ({} invalid)", m.invalid) } else { String::new() };
        out.push_str(&format!(
            "| {} | {} | {} | {:.2}% [{:.2}, {:.2}]{} | {:.4} | {} | {} | {} | {} | `{}` |\n",
            r.method,
            r.model,
            thousands(m.items),
            100.0 * m.accuracy,
            100.0 * m.accuracy_ci95[0],
            100.0 * m.accuracy_ci95[1],
            invalid,
            m.macro_f1,
            train_seconds(r).map_or("—".into(), duration),
            inference_items_per_second(r).map_or("—".into(), rate),
            match cost_per_1000(r) {
                0.0 => "$0 (local)".to_string(),
                c => format!("${c:.3}"),
            },
            r.hardware.summary(),
            r.command.replace('|', "\\|"),
        ));
    }
    out
}

pub const TABLE_START: &str = "<!-- results-table:start -->";
pub const TABLE_END: &str = "<!-- results-table:end -->";

/// `readme` with the text between the results-table markers replaced by `table`.
pub fn replace_table(readme: &str, table: &str) -> Result<String> {
    let start = readme.find(TABLE_START).with_context(|| format!("README has no {TABLE_START} marker"))?;
    let end = readme.find(TABLE_END).with_context(|| format!("README has no {TABLE_END} marker"))?;
    if end < start {
        bail!("README's results-table markers are out of order");
    }
    Ok(format!("{}{TABLE_START}\n{table}{}", &readme[..start], &readme[end..]))
}

fn label(r: &RunRecord) -> String {
    format!("{} ({})", r.method, r.model)
}

/// One horizontal bar per method with its 95% interval, best on top.
pub fn accuracy_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let n = records.len();
    let lowest = records.iter().map(|(_, r)| r.metrics.accuracy_ci95[0]).fold(1.0, f64::min);
    let x_min = ((100.0 * lowest - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let mut svg = String::new();
    {
        // Room for the longest "method (model)" label at 15 px sans-serif.
        let label_width = records.iter().map(|(_, r)| label(r).chars().count()).max().unwrap_or(10) as u32 * 8 + 20;
        let root = SVGBackend::with_string(&mut svg, (label_width + 620, 120 + 60 * n as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("AG News test accuracy (95% bootstrap interval)", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d(x_min..100.0, 0.0..n as f64)
            .map_err(draw_error)?;
        let names: Vec<String> = records.iter().map(|(_, r)| label(r)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("accuracy (%)")
            .y_labels(2 * n + 1)
            .y_label_formatter(&|y| {
                let row = y.floor() as usize;
                if (y - row as f64 - 0.5).abs() < 1e-9 {
                    names.get(n - 1 - row).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_style(("sans-serif", 15))
            .draw()
            .map_err(draw_error)?;
        for (i, (_, r)) in records.iter().enumerate() {
            let row = (n - 1 - i) as f64;
            let acc = 100.0 * r.metrics.accuracy;
            let [lo, hi] = r.metrics.accuracy_ci95.map(|v| 100.0 * v);
            chart
                .draw_series([
                    Rectangle::new([(x_min, row + 0.2), (acc, row + 0.8)], class_color(i).mix(0.75).filled())
                        .into_dyn(),
                    PathElement::new(vec![(lo, row + 0.5), (hi, row + 0.5)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(lo, row + 0.4), (lo, row + 0.6)], BLACK.stroke_width(2)).into_dyn(),
                    PathElement::new(vec![(hi, row + 0.4), (hi, row + 0.6)], BLACK.stroke_width(2)).into_dyn(),
                    Text::new(format!("{acc:.2}%"), (hi + 0.4, row + 0.62), ("sans-serif", 16)).into_dyn(),
                ])
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(Svg(svg))
}

/// Per-class F1 of each method, one group of bars per class.
pub fn per_class_f1_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let classes: Vec<String> = records[0].1.metrics.per_class.iter().map(|c| c.label.clone()).collect();
    let n = records.len();
    let lowest = records.iter().flat_map(|(_, r)| r.metrics.per_class.iter().map(|c| c.f1)).fold(1.0, f64::min);
    let y_min = ((100.0 * lowest - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Per-class F1 on the test split", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..classes.len() as f64, y_min..100.0)
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
            .y_desc("F1 (%)")
            .draw()
            .map_err(draw_error)?;
        let width = 0.8 / n as f64;
        for (k, (_, r)) in records.iter().enumerate() {
            let color = class_color(k);
            chart
                .draw_series(r.metrics.per_class.iter().enumerate().map(|(c, s)| {
                    let x0 = c as f64 + 0.1 + k as f64 * width;
                    Rectangle::new([(x0, y_min), (x0 + width * 0.9, 100.0 * s.f1)], color.mix(0.8).filled())
                }))
                .map_err(draw_error)?
                .label(label(r))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        draw_legend(&mut chart)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg(svg))
}

/// The price put on this machine's time in the cost panel: an assumption
/// (about an on-demand 2-vCPU cloud machine), stated on the chart.
pub const MACHINE_USD_PER_HOUR: f64 = 0.10;

/// What 1,000 classifications cost: the API's price where there is one, plus
/// this machine's time at [`MACHINE_USD_PER_HOUR`].
pub fn total_cost_per_1000(r: &RunRecord) -> Option<f64> {
    let machine_hours = 1000.0 / inference_items_per_second(r)? / 3600.0;
    Some(cost_per_1000(r) + machine_hours * MACHINE_USD_PER_HOUR)
}

/// Accuracy against inference speed (items/s) and against cost per 1,000
/// items, both on log scales, one point per method.
pub fn accuracy_speed_chart(records: &[(PathBuf, RunRecord)]) -> Result<Svg> {
    let point = |i: usize, r: &RunRecord, x: Option<f64>| Some((x?, 100.0 * r.metrics.accuracy, label(r), i));
    let speed: Vec<_> =
        records.iter().enumerate().filter_map(|(i, (_, r))| point(i, r, inference_items_per_second(r))).collect();
    let cost: Vec<_> =
        records.iter().enumerate().filter_map(|(i, (_, r))| point(i, r, total_cost_per_1000(r))).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1400, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (left, right) = root.split_horizontally(700);
        scatter(&left, &speed, "Accuracy against speed", "test items / s (log)", 60.0)?;
        let caption = format!("Accuracy against cost (machine time at ${MACHINE_USD_PER_HOUR:.2}/h + API price)");
        scatter(&right, &cost, &caption, "USD per 1,000 items (log)", 60.0)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg(svg))
}

/// One labelled point per method on a log-x, linear-y (accuracy %) chart;
/// `room` widens the x range to the right for the labels.
fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[(f64, f64, String, usize)],
    caption: &str,
    x_desc: &str,
    room: f64,
) -> Result<()> {
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (lo, hi) = if points.is_empty() { (1.0, 10.0) } else { (lo, hi) };
    let (y_lo, y_hi) = points.iter().fold((100.0f64, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(((lo / 3.0)..hi * room).log_scale(), (y_lo - 3.0).max(0.0)..(y_hi + 2.0).min(100.0))
        .map_err(draw_error)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("accuracy (%)").draw().map_err(draw_error)?;
    for (x, y, name, i) in points {
        let color = class_color(*i);
        chart.draw_series(std::iter::once(Circle::new((*x, *y), 7, color.filled()))).map_err(draw_error)?;
        chart
            .draw_series(std::iter::once(Text::new(name.clone(), (*x, *y + 0.5), ("sans-serif", 13))))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// Rasterises an SVG chart to PNG (system fonts for the text).
pub fn save_png(svg: &Svg, path: &Path) -> Result<()> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // Charts ask for the generic "sans-serif"; map it to a font this system has.
    let families: Vec<String> = fonts.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
    if let Some(family) = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Noto Sans"]
        .iter()
        .find(|want| families.iter().any(|f| f == *want))
    {
        fonts.set_sans_serif_family(*family);
    } else if let Some(any) = families.first() {
        fonts.set_sans_serif_family(any.clone());
    } else {
        tracing::warn!("no system font found: the PNG chart has no text (install fonts-dejavu)");
    }
    let tree = usvg::Tree::from_str(&svg.0, &options).context("parsing the chart's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).context("empty chart")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    pixmap.save_png(path).with_context(|| format!("writing {}", path.display()))
}

/// Writes the charts to `assets_dir` and, given a README, the table between
/// its markers; returns the table.
pub fn write(results_dir: &Path, assets_dir: &Path, readme: Option<&Path>) -> Result<String> {
    let records = load_records(results_dir)?;
    let accuracy = accuracy_chart(&records)?;
    save_png(&accuracy, &assets_dir.join("text_classification_average_accuracy.png"))?;
    accuracy.save(&assets_dir.join("text_classification_average_accuracy.svg"))?;
    per_class_f1_chart(&records)?.save(&assets_dir.join("per_class_f1.svg"))?;
    accuracy_speed_chart(&records)?.save(&assets_dir.join("accuracy_vs_speed.svg"))?;
    let table = markdown_table(&records);
    let Some(readme) = readme else { return Ok(table) };
    let text = std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let updated = replace_table(&text, &table)?;
    if updated != text {
        std::fs::write(readme, updated).with_context(|| format!("writing {}", readme.display()))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_the_markers() {
        let readme = format!("intro\n{TABLE_START}\nold\n{TABLE_END}\nrest\n");
        let new = replace_table(&readme, "| new |\n").unwrap();
        assert_eq!(new, format!("intro\n{TABLE_START}\n| new |\n{TABLE_END}\nrest\n"));
        assert_eq!(replace_table(&new, "| new |\n").unwrap(), new, "idempotent");
        assert!(replace_table("no markers", "x").is_err());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7600), "7,600");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn an_unreadable_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eda.json"), "{}").unwrap();
        std::fs::write(dir.path().join("bench_x.json"), "{}").unwrap();
        std::fs::write(dir.path().join("broken.json"), "{\"schema_version\": 99}").unwrap();
        let err = load_records(dir.path()).expect_err("refused");
        assert!(format!("{err:#}").contains("broken.json"), "{err:#}");
    }
}
