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
        crate::notebook::emit("image/svg+xml", &self.0);
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

fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
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
    pub fn render(&self, size: (u32, u32)) -> Result<Svg> {
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        let (mut x_max, mut y_max) = (0f64, 0f64);
        for &(x, y) in points {
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..x_max.max(1.0), 0f64..(y_max * 1.05).max(1e-9))
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
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(draw_error)?;
            root.present().map_err(draw_error)?;
        }
        Ok(Svg(svg))
    }
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
}
