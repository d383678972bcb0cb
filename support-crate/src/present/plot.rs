//! Charts drawn with plotters as SVG, shown inline in evcxr notebooks and
//! written to files by the CLI.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

/// An SVG image. In an evcxr notebook, a cell ending in an `Svg` shows it inline.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg(pub String);

impl Svg {
    /// evcxr's display hook.
    pub fn evcxr_display(&self) {
        super::notebook::emit("image/svg+xml", &self.0);
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, &self.0).with_context(|| format!("writing {}", path.display()))
    }
}

/// The colour of class `i` (stable across all charts).
pub fn class_color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

/// The series legend, upper right, the same on every chart.
pub(crate) fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)
}

/// One line per named series over a shared x axis, e.g. a length
/// distribution per class.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// (name, points) per series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

impl LineChart<'_> {
    /// Axes from zero to the largest value.
    pub fn render(&self, size: (u32, u32)) -> Result<Svg> {
        let (x_max, y_max) = self.max();
        self.render_in(size, 0.0..x_max.max(1.0), 0.0..(y_max * 1.05).max(1e-9))
    }

    /// Axes fitted to the data, for curves whose differences are small.
    pub fn render_zoomed(&self, size: (u32, u32)) -> Result<Svg> {
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let (x_max, y_max) = self.max();
        let x_min = points.iter().map(|p| p.0).fold(x_max, f64::min);
        let y_min = points.iter().map(|p| p.1).fold(y_max, f64::min);
        let pad = ((y_max - y_min) * 0.1).max(1e-6);
        self.render_in(size, x_min..x_max.max(x_min + 1.0), (y_min - pad)..(y_max + pad))
    }

    fn max(&self) -> (f64, f64) {
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        points.fold((0f64, 0f64), |(x_max, y_max), &(x, y)| (x_max.max(x), y_max.max(y)))
    }

    fn render_in(&self, size: (u32, u32), x: std::ops::Range<f64>, y: std::ops::Range<f64>) -> Result<Svg> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x, y)
                .map_err(draw_error)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(draw_error)?;
            for (i, (name, points)) in self.series.iter().enumerate() {
                let color = class_color(i);
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                    .map_err(draw_error)?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            draw_legend(&mut chart)?;
            root.present().map_err(draw_error)?;
        }
        Ok(Svg(svg))
    }
}

/// A confusion matrix as a heat map: rows are true classes, columns
/// predicted ones, each cell coloured by its share of the row (recall) and
/// labelled with its count. A last column counts invalid answers when any.
pub fn confusion_heatmap(title: &str, labels: &[String], confusion: &[Vec<usize>], invalid: &[usize]) -> Result<Svg> {
    let k = labels.len();
    let with_invalid = invalid.iter().any(|&n| n > 0);
    let cols = k + usize::from(with_invalid);
    let cell = 90u32;
    let (left, top) = (110u32, 60u32);
    let size = (left + cell * cols as u32 + 20, top + cell * k as u32 + 60);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 18))).map_err(draw_error)?;
        let font = ("sans-serif", 14).into_font();
        for (r, row) in confusion.iter().enumerate() {
            let total = (row.iter().sum::<usize>() + invalid.get(r).copied().unwrap_or(0)).max(1) as f64;
            let y = (top + cell * r as u32) as i32;
            root.draw(&Text::new(labels[r].clone(), (8, y + cell as i32 / 2 - 7), font.clone())).map_err(draw_error)?;
            let values = row.iter().copied().chain(with_invalid.then(|| invalid[r]));
            for (c, count) in values.enumerate() {
                let share = count as f64 / total;
                let x = (left + cell * c as u32) as i32;
                let shade = (255.0 * (1.0 - 0.85 * share)) as u8;
                let color = RGBColor(shade, shade, 255);
                root.draw(&Rectangle::new([(x, y), (x + cell as i32 - 2, y + cell as i32 - 2)], color.filled()))
                    .map_err(draw_error)?;
                let text_color = if share > 0.5 { &WHITE } else { &BLACK };
                root.draw(&Text::new(
                    format!("{count}"),
                    (x + 8, y + cell as i32 / 2 - 7),
                    font.clone().color(text_color),
                ))
                .map_err(draw_error)?;
            }
        }
        let y = (top + cell * k as u32 + 8) as i32;
        let names = labels.iter().cloned().chain(with_invalid.then(|| "invalid".to_string()));
        for (c, name) in names.enumerate() {
            let x = (left + cell * c as u32) as i32;
            root.draw(&Text::new(name, (x + 4, y), font.clone())).map_err(draw_error)?;
        }
        root.draw(&Text::new("predicted →   (rows: true class)".to_string(), (left as i32, y + 24), font.clone()))
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg(svg))
}

/// Points coloured by class, e.g. a 2-D projection of embeddings.
pub fn scatter(title: &str, labels: &[String], points: &[(f64, f64, usize)]) -> Result<Svg> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, _) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if points.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        chart.configure_mesh().light_line_style(WHITE.mix(0.0)).draw().map_err(draw_error)?;
        for (class, name) in labels.iter().enumerate() {
            let color = class_color(class);
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == class)
                        .map(|&(x, y, _)| Circle::new((x, y), 2, color.mix(0.6).filled())),
                )
                .map_err(draw_error)?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        draw_legend(&mut chart)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Svg(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_chart_renders_every_series() {
        let chart = LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: vec![("a".into(), vec![(0.0, 1.0), (1.0, 2.0)]), ("b".into(), vec![(0.0, 0.5)])],
        };
        let svg = chart.render((400, 300)).unwrap().0;
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        let has_text = |t: &str| svg.lines().any(|l| l.trim() == t);
        assert!(has_text("a") && has_text("b") && has_text("t"), "title or legend names missing");
    }

    #[test]
    fn heatmap_shows_counts_and_invalid_column() {
        let labels = vec!["x".to_string(), "y".to_string()];
        let svg = confusion_heatmap("cm", &labels, &[vec![5, 1], vec![0, 7]], &[0, 2]).unwrap().0;
        let has_text = |t: &str| svg.lines().any(|l| l.trim() == t);
        assert!(has_text("7") && has_text("invalid") && has_text("cm"), "{svg}");
        let svg = confusion_heatmap("cm", &labels, &[vec![5, 1], vec![0, 7]], &[0, 0]).unwrap().0;
        assert!(!svg.contains("invalid"));
    }

    #[test]
    fn scatter_has_a_legend_entry_per_class() {
        let labels = vec!["x".to_string(), "y".to_string()];
        let svg = scatter("s", &labels, &[(0.0, 0.0, 0), (1.0, 2.0, 1)]).unwrap().0;
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
