//! The fine-tuning run in pictures: token lengths, the loss and the validation accuracy.

use anyhow::Result;

use super::batch::Encoded;
use super::train::TrainState;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{class_color, draw_error, mesh, tick, LineChart, Svg, TICK_FONT, TITLE_FONT};

/// Share of texts (%) per token count, one line per class, with the
/// truncation limit in the title.
pub fn token_length_chart(encoded: &[Encoded], labels: &[usize], names: &[String], max_len: usize) -> Result<Svg> {
    let series = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let lengths: Vec<usize> =
                encoded.iter().zip(labels).filter(|(_, &l)| l == c).map(|(e, _)| e.ids.len() + e.dropped).collect();
            let longest = lengths.iter().copied().max().unwrap_or(0);
            let mut counts = vec![0usize; longest / 4 + 1];
            for l in &lengths {
                counts[l / 4] += 1;
            }
            let n = lengths.len().max(1) as f64;
            let points =
                counts.iter().enumerate().map(|(b, &k)| ((b * 4) as f64 + 2.0, 100.0 * k as f64 / n)).collect();
            (name.clone(), points)
        })
        .collect();
    let markers = vec![(max_len as f64, format!("cut at {max_len} tokens"))];
    let title = "Tokens per text (SmolLM2 tokenizer, bins of 4)";
    LineChart { title, x_label: "tokens", y_label: "% of texts", series, markers }.render((760, 360))
}

/// The loss during fine-tuning: each step's training loss (thin), its mean
/// over a centred window of `window` steps (thick; its first point already
/// averages the first `window / 2 + 1` steps), the validation loss at each
/// validation pass (points), and ln(`classes`), the loss of a uniform guess.
pub fn loss_chart(state: &TrainState, window: usize, classes: usize) -> Result<Svg> {
    let h = &state.history;
    let raw: Vec<(f64, f64)> = h.iter().map(|x| (x.step as f64, x.loss)).collect();
    let smoothed: Vec<(f64, f64)> = (0..h.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(window / 2), (i + window / 2 + 1).min(h.len()));
            (h[i].step as f64, h[lo..hi].iter().map(|x| x.loss).sum::<f64>() / (hi - lo) as f64)
        })
        .collect();
    let validation: Vec<(f64, f64)> = state.validation.iter().map(|v| (v.step as f64, v.loss)).collect();
    let guess = (classes.max(2) as f64).ln();
    let last = raw.last().map_or(1.0, |p| p.0).max(1.0);
    let top = raw.iter().chain(&validation).map(|p| p.1).fold(guess, f64::max) * 1.05;
    let (train_color, validation_color, grey) = (class_color(0), class_color(1), RGBColor(90, 90, 90));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (780, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Cross-entropy loss during fine-tuning", ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..last * 1.02, 0.0..top)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .x_desc("optimiser step")
            .y_desc("loss")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(DashedLineSeries::new([(0.0, guess), (last * 1.02, guess)], 8, 6, grey.stroke_width(2)))
            .map_err(draw_error)?
            .label(format!("ln {classes} = {guess:.3}: a uniform guess"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], grey.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(raw, train_color.mix(0.3).stroke_width(1)))
            .map_err(draw_error)?
            .label("train, each step")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], train_color.mix(0.3).stroke_width(1)));
        chart
            .draw_series(LineSeries::new(smoothed, train_color.stroke_width(3)))
            .map_err(draw_error)?
            .label(format!("train, mean of {window} steps"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], train_color.stroke_width(3)));
        chart
            .draw_series(validation.iter().map(|&p| Circle::new(p, 6, validation_color.filled())))
            .map_err(draw_error)?
            .label("validation")
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, validation_color.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(grey)
            .label_font(("sans-serif", TICK_FONT))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    let first = h.first().map_or(f64::NAN, |x| x.loss);
    let points: Vec<String> = state.validation.iter().map(|v| format!("step {}: {:.3}", v.step, v.loss)).collect();
    Ok(Svg::new(
        svg,
        format!(
            "Cross-entropy loss against optimiser step: training loss at each step (first step {first:.3}) and its \
             mean over {window} steps, validation loss at {}, and the dashed line ln {classes} = {guess:.3}, the loss of \
             a uniform guess.",
            points.join(", ")
        ),
    ))
}

/// Validation accuracy at each validation pass, as points with their 95%
/// interval over the `items` validation texts (Wilson score interval), on an
/// axis zoomed to the intervals.
pub fn validation_chart(state: &TrainState, items: usize) -> Result<Svg> {
    let n = items.max(1) as f64;
    let points: Vec<(f64, f64, f64, f64)> = state
        .validation
        .iter()
        .map(|v| {
            let [lo, hi] = wilson(v.accuracy, n);
            (v.step as f64, 100.0 * v.accuracy, 100.0 * lo, 100.0 * hi)
        })
        .collect();
    let low = points.iter().map(|p| p.2).fold(100.0, f64::min);
    let high = points.iter().map(|p| p.3).fold(0.0, f64::max);
    let last = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let (y_lo, y_hi) = match points.is_empty() {
        true => (0.0, 100.0),
        false => ((low - 1.0).floor().max(0.0), (high + 1.0).ceil().min(100.0)),
    };
    let color = class_color(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (780, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Validation accuracy during fine-tuning (95% interval)", ("sans-serif", TITLE_FONT))
            .margin(12)
            .margin_right(40)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..last * 1.08, y_lo..y_hi)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .x_desc("optimiser step")
            .y_desc(format!("accuracy (%), {} texts", crate::plot::thousands(items as u64)))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(draw_error)?;
        let font = ("sans-serif", TICK_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        for &(x, acc, lo, hi) in &points {
            chart
                .draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], BLACK.stroke_width(2)).into_dyn(),
                    Circle::new((x, acc), 6, color.filled()).into_dyn(),
                    Text::new(format!("  {acc:.1}%"), (x, acc), font.clone()).into_dyn(),
                ])
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    let described: Vec<String> =
        points.iter().map(|(x, acc, lo, hi)| format!("step {x}: {acc:.1}% [{lo:.1}, {hi:.1}]")).collect();
    Ok(Svg::new(
        svg,
        format!(
            "Validation accuracy at each validation pass on {} texts, with 95% Wilson intervals: {}.",
            crate::plot::thousands(items as u64),
            described.join("; ")
        ),
    ))
}

/// The 95% Wilson score interval of a proportion `p` over `n` trials.
fn wilson(p: f64, n: f64) -> [f64; 2] {
    let z2 = 1.96f64 * 1.96;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = 1.96 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wilson_interval_matches_a_worked_value_and_stays_in_range() {
        // 912 of 1,000 right: [0.8928, 0.9280] (Wilson, z = 1.96).
        let [lo, hi] = wilson(0.912, 1000.0);
        assert!((lo - 0.8928).abs() < 5e-4 && (hi - 0.9280).abs() < 5e-4, "{lo} {hi}");
        assert_eq!(wilson(1.0, 10.0)[1], 1.0);
        assert!(wilson(0.0, 10.0)[0] == 0.0 && wilson(0.0, 10.0)[1] > 0.2);
    }
}
