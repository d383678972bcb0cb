//! The fine-tuning run in pictures: token lengths, the loss and the validation accuracy.

use anyhow::Result;

use super::batch::Encoded;
use super::train::TrainState;
use crate::plot::{LineChart, Svg};

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

/// Training loss (mean over a centred window of steps) and validation loss.
pub fn loss_chart(state: &TrainState, window: usize) -> Result<Svg> {
    let h = &state.history;
    let smoothed = (0..h.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(window / 2), (i + window / 2 + 1).min(h.len()));
            (h[i].step as f64, h[lo..hi].iter().map(|x| x.loss).sum::<f64>() / (hi - lo) as f64)
        })
        .collect();
    let validation = state.validation.iter().map(|v| (v.step as f64, v.loss)).collect();
    LineChart {
        title: "Cross-entropy loss during fine-tuning",
        x_label: "optimiser step",
        y_label: "loss",
        series: vec![(format!("train (mean of {window} steps)"), smoothed), ("validation".into(), validation)],
        markers: vec![],
    }
    .render((760, 360))
}

/// Validation accuracy at each validation pass.
pub fn validation_chart(state: &TrainState) -> Result<Svg> {
    let points = state.validation.iter().map(|v| (v.step as f64, 100.0 * v.accuracy)).collect();
    LineChart {
        title: "Validation accuracy during fine-tuning",
        x_label: "optimiser step",
        y_label: "accuracy (%)",
        series: vec![("validation".into(), points)],
        markers: vec![],
    }
    .render_zoomed((760, 320))
}
