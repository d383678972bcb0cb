//! Correcting a prompted model's bias towards some labels. A small model
//! asked to classify often prefers a label whatever the text ("Calibrate
//! Before Use", Zhao et al. 2021); dividing its label distribution by an
//! estimate of that preference (the prior) and renormalising removes it.

use serde::{Deserialize, Serialize};

/// Where the prior that label distributions are divided by comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// None: the model's own distribution.
    None,
    /// The mean distribution of content-free inputs ([`CONTENT_FREE_INPUTS`])
    /// through the same prompt (contextual calibration, Zhao et al. 2021).
    ContentFree,
    /// The mean distribution over the validation items: the model's prior on
    /// this task's inputs.
    ValidationPrior,
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Calibration::None => "uncalibrated",
            Calibration::ContentFree => "content-free calibration",
            Calibration::ValidationPrior => "validation-prior calibration",
        })
    }
}

/// Texts with no content, asked in place of an item to read the model's prior.
pub const CONTENT_FREE_INPUTS: [&str; 3] = ["N/A", "", "[MASK]"];

/// The distribution over labels that label log-probabilities give (softmax over the labels).
pub fn distribution(log_probs: &[f32]) -> Vec<f64> {
    let max = log_probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = log_probs.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

/// The mean of distributions (uniform when there are none).
pub fn mean_distribution(rows: &[Vec<f64>], classes: usize) -> Vec<f64> {
    if rows.is_empty() {
        return vec![1.0 / classes as f64; classes];
    }
    let mut mean = vec![0.0; classes];
    for row in rows {
        for (m, p) in mean.iter_mut().zip(row) {
            *m += p / rows.len() as f64;
        }
    }
    mean
}

/// `p / prior`, renormalised.
pub fn calibrate(p: &[f64], prior: &[f64]) -> Vec<f64> {
    let divided: Vec<f64> = p.iter().zip(prior).map(|(p, q)| p / q.max(1e-12)).collect();
    let sum: f64 = divided.iter().sum();
    divided.into_iter().map(|x| x / sum).collect()
}

pub use crate::metrics::argmax;

/// Labels of validation items calibrated with a prior from validation,
/// without scoring any item with a prior it helped estimate: items at even
/// positions get the odd items' prior and the other way round. An item
/// without a distribution (a failed answer) has no label.
pub fn cross_fitted_labels(dists: &[Option<Vec<f64>>], classes: usize) -> Vec<Option<usize>> {
    let half = |parity: usize| -> Vec<Vec<f64>> {
        dists.iter().enumerate().filter(|(i, _)| i % 2 == parity).filter_map(|(_, d)| d.clone()).collect()
    };
    let priors = [mean_distribution(&half(1), classes), mean_distribution(&half(0), classes)];
    dists.iter().enumerate().map(|(i, d)| d.as_ref().map(|d| argmax(&calibrate(d, &priors[i % 2])))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_is_the_softmax_over_labels() {
        let p = distribution(&[-1.0, -2.0, -30.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] / p[1] - std::f64::consts::E).abs() < 1e-9);
        assert!(p[2] < 1e-12);
    }

    #[test]
    fn dividing_out_a_prior_removes_a_constant_preference() {
        // The model puts 5x the weight on label 0 whatever the text: every
        // item looks like class 0 until the prior is divided out.
        let bias = [5.0, 1.0, 1.0];
        let true_dists = [[0.2, 0.7, 0.1], [0.2, 0.1, 0.7], [0.5, 0.3, 0.2]];
        let biased: Vec<Vec<f64>> = true_dists
            .iter()
            .map(|d| {
                let w: Vec<f64> = d.iter().zip(bias).map(|(p, b)| p * b).collect();
                let s: f64 = w.iter().sum();
                w.into_iter().map(|x| x / s).collect()
            })
            .collect();
        assert_eq!(biased.iter().map(|d| argmax(d)).collect::<Vec<_>>(), [0, 0, 0]);
        let prior = [5.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0];
        let fixed: Vec<usize> = biased.iter().map(|d| argmax(&calibrate(d, &prior))).collect();
        assert_eq!(fixed, [1, 2, 0]);
    }

    #[test]
    fn cross_fitting_uses_the_other_half_only() {
        // Items 0 and 2 (even) are scored with the mean of item 1 and 3 (odd).
        let dists = vec![Some(vec![0.6, 0.4]), Some(vec![0.9, 0.1]), Some(vec![0.45, 0.55]), Some(vec![0.9, 0.1])];
        // Odd prior (0.9, 0.1): item 0 → 0.6/0.9 < 0.4/0.1 → label 1.
        // Even prior (0.525, 0.475): item 1 → 0.9/0.525 > 0.1/0.475 → label 0.
        assert_eq!(cross_fitted_labels(&dists, 2), [Some(1), Some(0), Some(1), Some(0)]);
        let mut failed = dists.clone();
        failed.push(None);
        assert_eq!(cross_fitted_labels(&failed, 2)[4], None, "a failed item stays unlabelled");
        assert_eq!(mean_distribution(&[], 4), vec![0.25; 4]);
    }
}
