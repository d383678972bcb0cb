//! Chart primitives drawn with plotters as SVG, shown inline in evcxr
//! notebooks and written to files by the CLI. Shared rules: fonts readable
//! when a chart is shown at the README's width, legends beside or below the
//! data (never over it), tick labels as plain numbers, and an alt text on
//! every image.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Send rich content (`text/html`, `image/svg+xml`, ...) to the evcxr kernel.
pub fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Font sizes in plotters' units (the SVG shows them at 1/1.24: 18 is 14.5 px).
pub const TITLE_FONT: u32 = 24;
pub const LABEL_FONT: u32 = 19;
pub const TICK_FONT: u32 = 18;
pub const NOTE_FONT: u32 = 17;

/// An axis pair in the house style: tick labels and axis titles at the
/// shared font sizes, no minor grid lines. Callers add titles, formatters and
/// label counts, then `.draw()`.
pub fn mesh<'a, 'b, DB, X, Y, XT, YT>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
{
    let mut style = chart.configure_mesh();
    style
        .label_style(("sans-serif", TICK_FONT))
        .axis_desc_style(("sans-serif", LABEL_FONT))
        .light_line_style(WHITE.mix(0.0));
    style
}

/// An SVG image with its alt text. In an evcxr notebook, a cell ending in an
/// `Svg` shows it inline; the alt text goes with it as its `text/plain` form
/// (what screen readers and the HTML export's `alt` attribute use).
#[derive(Debug, Clone, PartialEq)]
pub struct Svg {
    pub markup: String,
    pub alt: String,
}

impl Svg {
    pub fn new(markup: String, alt: impl Into<String>) -> Self {
        Svg { markup, alt: alt.into() }
    }

    /// evcxr's display hook.
    pub fn evcxr_display(&self) {
        emit("text/plain", &self.alt);
        emit("image/svg+xml", &self.markup);
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, &self.markup).with_context(|| format!("writing {}", path.display()))
    }
}

/// The colour of class `i` (stable across all charts).
pub fn class_color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(31, 60, 120),
        RGBColor(170, 90, 0),
    ];
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

/// Items per second with the digits that matter: "136,341", "74.2", "1.52".
pub fn rate(per_second: f64) -> String {
    if per_second >= 1000.0 {
        thousands(per_second.round() as u64)
    } else if per_second >= 10.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.2}")
    }
}

/// A span of time as a reader says it: "42.0 s", "6.5 min", "2.01 h".
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

/// `1,234,567` for an integer.
pub fn thousands(n: u64) -> String {
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

/// A tick label as a plain number: integers without decimals (and `0`, not
/// `-0.0`), thousands grouped, small numbers to three significant digits
/// (`0.00001`, not `9.999999999999999e-6`).
pub fn tick(value: &f64) -> String {
    let v = if value.abs() < 1e-12 { 0.0 } else { *value };
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if (a - a.round()).abs() <= 1e-9 * a.max(1.0) {
        return format!("{sign}{}", thousands(a.round() as u64));
    }
    let digits = (2 - a.log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{a:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    format!("{sign}{s}")
}

/// What a legend entry draws before its name: the mark of what it names, in
/// that mark's own style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A filled square: bars, points and areas.
    Square,
    /// A solid line sample, `width` pixels wide.
    Line { width: u32 },
    /// A dashed line sample in the series' own dash pattern.
    Dashed(Dashes),
    /// An open black circle: a marker drawn on the lines.
    Ring,
}

/// A dash pattern in pixels: dash length, gap, line width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dashes {
    pub dash: u32,
    pub gap: u32,
    pub width: u32,
}

/// One legend entry: a colour, how it is drawn, and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub name: String,
    pub color: RGBColor,
    pub swatch: Swatch,
}

impl LegendEntry {
    /// An entry with a filled square of `color`.
    pub fn new(name: impl Into<String>, color: RGBColor) -> Self {
        LegendEntry { name: name.into(), color, swatch: Swatch::Square }
    }

    pub fn with_swatch(self, swatch: Swatch) -> Self {
        LegendEntry { swatch, ..self }
    }
}

/// A line drawn in a dash pattern, the one its legend's [`Swatch::Dashed`]
/// shows, so the two cannot drift apart.
pub fn dashed<I>(points: I, dashes: Dashes, color: RGBColor) -> DashedLineSeries<I::IntoIter, u32>
where
    I: IntoIterator,
    I::IntoIter: Clone,
{
    DashedLineSeries::new(points, dashes.dash, dashes.gap, color.stroke_width(dashes.width))
}

/// Height in pixels of [`draw_legend_below`]'s block for `n` entries.
pub fn legend_height(n: usize) -> u32 {
    12 + 26 * n as u32
}

/// Width in pixels that [`draw_legend_beside`] needs.
pub fn legend_width(entries: &[LegendEntry]) -> u32 {
    let longest = entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(0) as u32;
    SWATCH_TEXT_X as u32 + 6 + longest * LABEL_FONT * 55 / 124
}

/// A legend in its own area beside the plot: each entry's swatch and name,
/// one entry per line from the top.
pub fn draw_legend_beside<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[LegendEntry]) -> Result<()> {
    draw_legend_rows(area, entries, 70)
}

/// A legend in its own area below the plot, one entry per line.
pub fn draw_legend_below<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[LegendEntry]) -> Result<()> {
    draw_legend_rows(area, entries, 6)
}

/// A line chart's series and its legend sample.
const SERIES_LINE_WIDTH: u32 = 2;

/// Where a legend's names start: right of a 32-pixel swatch.
const SWATCH_TEXT_X: i32 = 54;

fn draw_legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
) -> Result<()> {
    let font = ("sans-serif", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let (left, right) = (12, SWATCH_TEXT_X - 10);
    for (i, entry) in entries.iter().enumerate() {
        let y = top + 13 + 26 * i as i32;
        let middle = (left + right) / 2;
        match entry.swatch {
            Swatch::Square => {
                area.draw(&Rectangle::new([(middle - 7, y - 7), (middle + 7, y + 7)], entry.color.filled()))
                    .map_err(draw_error)?;
            }
            Swatch::Line { width } => {
                area.draw(&PathElement::new([(left, y), (right, y)], entry.color.stroke_width(width)))
                    .map_err(draw_error)?;
            }
            Swatch::Dashed(Dashes { dash, gap, width }) => {
                let mut x = left;
                while x < right {
                    let end = (x + dash.max(1) as i32).min(right);
                    area.draw(&PathElement::new([(x, y), (end, y)], entry.color.stroke_width(width)))
                        .map_err(draw_error)?;
                    x = end + gap as i32;
                }
            }
            Swatch::Ring => {
                area.draw(&Circle::new((middle, y), 7, BLACK.stroke_width(1))).map_err(draw_error)?;
            }
        }
        area.draw(&Text::new(entry.name.clone(), (SWATCH_TEXT_X, y), font.clone())).map_err(draw_error)?;
    }
    Ok(())
}

/// A dashed vertical line across a chart's y range (a chance level, a chosen
/// k, a length limit) with its label just inside the top.
fn draw_marker<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x: f64,
    y: std::ops::Range<f64>,
    label: &str,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let grey = RGBColor(90, 90, 90);
    chart
        .draw_series(DashedLineSeries::new([(x, y.start), (x, y.end)], 6, 4, grey.stroke_width(2)))
        .map_err(draw_error)?;
    let font = ("sans-serif", NOTE_FONT).into_font().color(&grey).pos(Pos::new(HPos::Left, VPos::Top));
    let top = y.end - (y.end - y.start) * 0.02;
    chart.plotting_area().draw(&Text::new(format!(" {label}"), (x, top), font)).map_err(draw_error)?;
    Ok(())
}

/// One line per named series over a shared x axis, e.g. a length
/// distribution per class; the legend sits to the right of the plot.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// (name, points) per series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Values marked on the x axis with a dashed line and a label (a chosen
    /// k, a truncation limit).
    pub markers: Vec<(f64, String)>,
}

impl LineChart<'_> {
    /// Axes from zero to the largest value. `size` is the plot's; the legend
    /// adds its width.
    pub fn render(&self, size: (u32, u32)) -> Result<Svg> {
        let (x_max, y_max) = self.max();
        let x_max = self.markers.iter().map(|m| m.0 * 1.05).fold(x_max, f64::max);
        self.render_in(size, 0.0..x_max.max(1.0), 0.0..(y_max * 1.05).max(1e-9))
    }

    /// Axes fitted to the data, for curves whose differences are small.
    pub fn render_zoomed(&self, size: (u32, u32)) -> Result<Svg> {
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let (x_max, y_max) = self.max();
        let x_min = points.iter().map(|p| p.0).fold(x_max, f64::min);
        let y_min = points.iter().map(|p| p.1).fold(y_max, f64::min);
        let pad = ((y_max - y_min) * 0.15).max(1e-6);
        self.render_in(size, x_min..x_max.max(x_min + 1.0), (y_min - pad)..(y_max + pad))
    }

    fn max(&self) -> (f64, f64) {
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        points.fold((0f64, 0f64), |(x_max, y_max), &(x, y)| (x_max.max(x), y_max.max(y)))
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let names = self.series.iter().map(|(name, _)| name.clone());
        names
            .enumerate()
            .map(|(i, name)| {
                LegendEntry::new(name, class_color(i)).with_swatch(Swatch::Line { width: SERIES_LINE_WIDTH })
            })
            .collect()
    }

    fn alt(&self) -> String {
        let names: Vec<&str> = self.series.iter().map(|(n, _)| n.as_str()).collect();
        let mut alt = format!(
            "Line chart: {}. {} against {}; lines: {}.",
            self.title,
            self.y_label,
            self.x_label,
            names.join(", ")
        );
        for (x, label) in &self.markers {
            alt.push_str(&format!(" Marked at {}: {label}.", tick(x)));
        }
        alt
    }

    fn render_in(&self, size: (u32, u32), x: std::ops::Range<f64>, y: std::ops::Range<f64>) -> Result<Svg> {
        let legend = self.legend();
        let legend_w = legend_width(&legend);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (size.0 + legend_w, size.1)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            let (plot, side) = root.split_horizontally(size.0);
            let mut chart = ChartBuilder::on(&plot)
                .caption(self.title, ("sans-serif", TITLE_FONT))
                .margin(12)
                .x_label_area_size(52)
                .y_label_area_size(72)
                .build_cartesian_2d(x, y.clone())
                .map_err(draw_error)?;
            mesh(&mut chart)
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .x_labels(8)
                .y_labels(6)
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .draw()
                .map_err(draw_error)?;
            for (i, (_, points)) in self.series.iter().enumerate() {
                let color = class_color(i);
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(SERIES_LINE_WIDTH)))
                    .map_err(draw_error)?;
            }
            for (at, label) in &self.markers {
                draw_marker(&mut chart, *at, y.clone(), label)?;
            }
            draw_legend_beside(&side, &legend)?;
            root.present().map_err(draw_error)?;
        }
        Ok(Svg::new(svg, self.alt()))
    }
}

/// A confusion matrix as a heat map: rows are true classes, columns
/// predicted ones; each cell shows its share of the row (the recall on the
/// diagonal) and, below it, the count, and is shaded by that share. A last
/// column counts invalid answers when any.
pub fn confusion_heatmap(title: &str, labels: &[String], confusion: &[Vec<usize>], invalid: &[usize]) -> Result<Svg> {
    let k = labels.len();
    let with_invalid = invalid.iter().any(|&n| n > 0);
    let cols = k + usize::from(with_invalid);
    let cell = 104u32;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    let (left, top) = (24 + longest * LABEL_FONT * 55 / 124, 64u32);
    let size =
        ((left + cell * cols as u32 + 20).max(title.chars().count() as u32 * 11 + 20), top + cell * k as u32 + 74);
    let mut svg = String::new();
    let mut alt = format!(
        "Confusion matrix: {title}. Rows are the true class, columns the prediction; share of the row and count."
    );
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        root.draw(&Text::new(title.to_string(), (10, 12), ("sans-serif", TITLE_FONT))).map_err(draw_error)?;
        let label_font = ("sans-serif", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        for (r, row) in confusion.iter().enumerate() {
            let total = (row.iter().sum::<usize>() + invalid.get(r).copied().unwrap_or(0)).max(1) as f64;
            let y = (top + cell * r as u32) as i32;
            let half = cell as i32 / 2;
            root.draw(&Text::new(labels[r].clone(), (8, y + half), label_font.clone())).map_err(draw_error)?;
            let values = row.iter().copied().chain(with_invalid.then(|| invalid[r]));
            for (c, count) in values.enumerate() {
                let share = count as f64 / total;
                let x = (left + cell * c as u32) as i32;
                let shade = (255.0 * (1.0 - 0.85 * share)) as u8;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32 - 2, y + cell as i32 - 2)],
                    RGBColor(shade, shade, 255).filled(),
                ))
                .map_err(draw_error)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let centre =
                    |size| ("sans-serif", size).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                let name = if c < k { labels[c].as_str() } else { "invalid" };
                alt.push_str(&format!(" {} as {name}: {:.1}% ({count}).", labels[r], 100.0 * share));
                root.draw(&Text::new(
                    format!("{:.1}%", 100.0 * share),
                    (x + half - 1, y + half - 11),
                    centre(LABEL_FONT),
                ))
                .map_err(draw_error)?;
                root.draw(&Text::new(
                    format!("({})", thousands(count as u64)),
                    (x + half - 1, y + half + 13),
                    centre(NOTE_FONT),
                ))
                .map_err(draw_error)?;
            }
        }
        let y = (top + cell * k as u32 + 6) as i32;
        let names = labels.iter().cloned().chain(with_invalid.then(|| "invalid".to_string()));
        let below = ("sans-serif", LABEL_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        for (c, name) in names.enumerate() {
            let x = (left + cell * c as u32 + cell / 2) as i32;
            root.draw(&Text::new(name, (x, y), below.clone())).map_err(draw_error)?;
        }
        let note = ("sans-serif", NOTE_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(
            "predicted →   (rows: true class; % of the row)".to_string(),
            (left as i32, y + 32),
            note,
        ))
        .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg::new(svg, alt))
}

/// Points coloured by class, e.g. a 2-D projection of embeddings, with the
/// axes titled (e.g. [`crate::models::embedder::Projection::axis_titles`]);
/// the legend sits to the right of the plot.
pub fn scatter(title: &str, labels: &[String], points: &[(f64, f64, usize)], axes: &[String; 2]) -> Result<Svg> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, _) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if points.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let legend: Vec<LegendEntry> =
        labels.iter().enumerate().map(|(i, name)| LegendEntry::new(name.clone(), class_color(i))).collect();
    let plot_w = 700;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (plot_w + legend_width(&legend), 560)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plot, side) = root.split_horizontally(plot_w);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .x_desc(axes[0].as_str())
            .y_desc(axes[1].as_str())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(draw_error)?;
        for (class, _) in labels.iter().enumerate() {
            let color = class_color(class);
            let members = points.iter().filter(|p| p.2 == class);
            chart
                .draw_series(members.map(|&(x, y, _)| Circle::new((x, y), 2, color.mix(0.6).filled())))
                .map_err(draw_error)?;
        }
        draw_legend_beside(&side, &legend)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg::new(
        svg,
        format!(
            "Scatter plot: {title}; {} points coloured by class ({}); x: {}, y: {}.",
            points.len(),
            labels.join(", "),
            axes[0],
            axes[1]
        ),
    ))
}

/// The text elements of an SVG drawn by plotters, as approximate boxes
/// (left, top, right, bottom) with their text: what the label-overlap checks
/// of the chart tests compare. Rotated text (axis titles) is left out.
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
    let tree = usvg::Tree::from_str(&svg.markup, &options).context("parsing the chart's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).context("empty chart")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    pixmap.save_png(path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
pub(crate) fn text_boxes(svg: &str) -> Vec<([f64; 4], String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let mut boxes = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let tag_end = start + rest[start..].find('>').unwrap();
        let close = tag_end + rest[tag_end..].find("</text>").unwrap();
        let (tag, text) = (&rest[start..tag_end], rest[tag_end + 1..close].trim().to_string());
        rest = &rest[close..];
        if tag.contains("transform=") || text.is_empty() {
            continue;
        }
        let num = |name| attr(tag, name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let (x, y, size) = (num("x"), num("y"), num("font-size"));
        let width = text.chars().count() as f64 * size * 0.6;
        let left = match attr(tag, "text-anchor").as_deref() {
            Some("middle") => x - width / 2.0,
            Some("end") => x - width,
            _ => x,
        };
        let top = match attr(tag, "dy").as_deref() {
            Some("0.76em") => y,
            Some("0.5ex") => y - size / 2.0,
            Some("-0.5ex") => y - size,
            _ => y - 0.8 * size,
        };
        boxes.push(([left, top, left + width, top + size], text));
    }
    boxes
}

/// Pairs of text boxes that overlap by more than a pixel.
#[cfg(test)]
pub(crate) fn overlapping_labels(svg: &str) -> Vec<(String, String)> {
    let boxes = text_boxes(svg);
    let mut overlaps = Vec::new();
    for (i, (a, ta)) in boxes.iter().enumerate() {
        for (b, tb) in &boxes[i + 1..] {
            let dx = a[2].min(b[2]) - a[0].max(b[0]);
            let dy = a[3].min(b[3]) - a[1].max(b[1]);
            if dx > 1.0 && dy > 1.0 {
                overlaps.push((ta.clone(), tb.clone()));
            }
        }
    }
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_text(svg: &Svg, t: &str) -> bool {
        svg.markup.lines().any(|l| l.trim() == t)
    }

    #[test]
    fn ticks_are_plain_numbers() {
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&9.999999999999999e-6), "0.00001");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&12.0), "12");
        assert_eq!(tick(&12.5), "12.5");
        assert_eq!(tick(&1000.0), "1,000");
        assert_eq!(tick(&-3.0), "-3");
        assert_eq!(tick(&0.123456), "0.123");
    }

    #[test]
    fn line_chart_renders_every_series_its_markers_and_no_overlaps() {
        let chart = LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: vec![("a".into(), vec![(0.0, 1.0), (10.0, 2.0)]), ("b".into(), vec![(0.0, 0.5), (10.0, 0.7)])],
            markers: vec![(7.0, "chosen k = 7".into())],
        };
        let svg = chart.render((500, 300)).unwrap();
        assert!(svg.markup.starts_with("<svg"), "{}", &svg.markup[..50]);
        assert!(has_text(&svg, "a") && has_text(&svg, "b") && has_text(&svg, "t"), "title or legend names missing");
        assert!(has_text(&svg, "chosen k = 7"), "marker label missing");
        assert!(svg.alt.contains("chosen k = 7"), "{}", svg.alt);
        assert!(!svg.markup.contains("-0.0") && !svg.markup.contains(".0<"), "float noise in ticks");
        assert_eq!(overlapping_labels(&svg.markup), Vec::<(String, String)>::new());
    }

    #[test]
    fn heatmap_shows_row_shares_counts_and_invalid_column() {
        let labels = vec!["World".to_string(), "Sci/Tech".to_string()];
        let svg = confusion_heatmap("cm", &labels, &[vec![5, 1], vec![0, 7]], &[0, 2]).unwrap();
        assert!(has_text(&svg, "(7)") && has_text(&svg, "77.8%") && has_text(&svg, "invalid"), "{}", svg.markup);
        assert!(svg.alt.contains("Sci/Tech as Sci/Tech: 77.8% (7)"), "{}", svg.alt);
        assert_eq!(overlapping_labels(&svg.markup), Vec::<(String, String)>::new());
        let svg = confusion_heatmap("cm", &labels, &[vec![5, 1], vec![0, 7]], &[0, 0]).unwrap();
        assert!(!svg.markup.contains("invalid"));
    }

    #[test]
    fn legend_swatches_draw_the_mark_they_name() {
        let swatch_svg = |swatch: Swatch| {
            let mut markup = String::new();
            {
                let root = SVGBackend::with_string(&mut markup, (400, legend_height(1))).into_drawing_area();
                draw_legend_below(&root, &[LegendEntry::new("entry", RGBColor(10, 20, 30)).with_swatch(swatch)])
                    .unwrap();
                root.present().unwrap();
            }
            markup
        };
        let count = |markup: &str, element: &str| markup.matches(element).count();
        let square = swatch_svg(Swatch::Square);
        assert_eq!((count(&square, "<rect"), count(&square, "<polyline")), (1, 0), "{square}");
        let line = swatch_svg(Swatch::Line { width: 3 });
        assert_eq!(count(&line, "<polyline"), 1, "{line}");
        assert!(line.contains("stroke-width=\"3\""), "{line}");
        // 32 pixels of 4-pixel dashes with 4-pixel gaps: four dashes.
        let dashed = swatch_svg(Swatch::Dashed(Dashes { dash: 4, gap: 4, width: 2 }));
        assert_eq!(count(&dashed, "<polyline"), 4, "{dashed}");
        let ring = swatch_svg(Swatch::Ring);
        assert!(count(&ring, "<circle") == 1 && ring.contains("fill=\"none\""), "{ring}");
        for markup in [square, line, dashed, ring] {
            assert!(markup.contains(">entry<") || markup.lines().any(|l| l.trim() == "entry"), "{markup}");
        }
    }

    #[test]
    fn scatter_has_a_legend_entry_per_class_outside_the_plot() {
        let labels = vec!["x".to_string(), "y".to_string()];
        let axes = ["across (60%)".to_string(), "up (30%)".to_string()];
        let svg = scatter("s", &labels, &[(0.0, 0.0, 0), (1.0, 2.0, 1)], &axes).unwrap();
        assert_eq!(svg.markup.matches("<circle").count(), 2);
        assert!(has_text(&svg, "x") && has_text(&svg, "y"));
        assert!(svg.markup.contains("across (60%)") && svg.markup.contains("up (30%)"), "axis titles");
        assert!(svg.alt.contains("x: across (60%), y: up (30%)"), "{}", svg.alt);
    }
}
