//! Classification metrics shared by every experiment: accuracy with a seeded
//! bootstrap interval, macro-F1, per-class precision/recall/F1 and the
//! confusion matrix. A missing prediction (an invalid or failed answer)
//! counts as wrong; it is never dropped.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Scores of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Test items of this class.
    pub support: usize,
}

/// The metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Evaluated items.
    pub items: usize,
    /// Share of items predicted correctly, 0..1.
    pub accuracy: f64,
    /// 95% percentile-bootstrap interval of the accuracy, 0..1.
    pub accuracy_ci95: [f64; 2],
    pub bootstrap_samples: usize,
    pub bootstrap_seed: u64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    pub per_class: Vec<ClassScores>,
    /// `confusion[true][predicted]`; items without a valid prediction are in `invalid_per_class`.
    pub confusion: Vec<Vec<usize>>,
    /// Items with no valid prediction, per true class (scored as wrong).
    pub invalid_per_class: Vec<usize>,
    pub invalid: usize,
}

/// How the accuracy interval is estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub samples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { samples: 2000, seed: 2024 }
    }
}

/// The index of the highest value, the first of equal ones (0 for none).
/// The one tie rule of every method's answer.
pub fn argmax<T: Copy + Into<f64>>(values: &[T]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v.into() > values[best].into() { i } else { best })
}

/// The `q`-quantile (0 to 1) of sorted values by nearest rank; NaN for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Score `predictions` (None: no valid answer) against `labels`.
///
/// Panics if the two have different lengths or a label/prediction is out of
/// range: that is a bug in the caller, not bad input.
pub fn evaluate(
    labels: &[usize],
    predictions: &[Option<usize>],
    class_names: &[String],
    bootstrap: Bootstrap,
) -> Metrics {
    assert_eq!(labels.len(), predictions.len(), "one prediction per label");
    let k = class_names.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut invalid_per_class = vec![0usize; k];
    for (&y, &p) in labels.iter().zip(predictions) {
        match p {
            Some(p) => confusion[y][p] += 1,
            None => invalid_per_class[y] += 1,
        }
    }
    let correct: Vec<bool> = labels.iter().zip(predictions).map(|(&y, &p)| p == Some(y)).collect();
    let n = labels.len();
    let accuracy = correct.iter().filter(|&&c| c).count() as f64 / n.max(1) as f64;

    let per_class: Vec<ClassScores> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: f64 = (0..k).map(|t| confusion[t][c] as f64).sum();
            let support = confusion[c].iter().sum::<usize>() + invalid_per_class[c];
            let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
            let recall = if support > 0 { tp / support as f64 } else { 0.0 };
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            ClassScores { label: class_names[c].clone(), precision, recall, f1, support }
        })
        .collect();
    let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / k.max(1) as f64;

    Metrics {
        items: n,
        accuracy,
        accuracy_ci95: bootstrap_interval(&correct, bootstrap),
        bootstrap_samples: bootstrap.samples,
        bootstrap_seed: bootstrap.seed,
        macro_f1,
        per_class,
        confusion,
        invalid: invalid_per_class.iter().sum(),
        invalid_per_class,
    }
}

impl Metrics {
    /// "accuracy 90.12% [89.45, 90.80] (95% bootstrap CI), macro-F1 0.9011, 7600 items, 0 invalid".
    pub fn summary(&self) -> String {
        format!(
            "accuracy {:.2}% [{:.2}, {:.2}] (95% bootstrap CI, {} resamples), macro-F1 {:.4}, {} items, {} invalid",
            100.0 * self.accuracy,
            100.0 * self.accuracy_ci95[0],
            100.0 * self.accuracy_ci95[1],
            self.bootstrap_samples,
            self.macro_f1,
            self.items,
            self.invalid
        )
    }
}

/// 95% percentile bootstrap interval of the mean of `correct`.
pub fn bootstrap_interval(correct: &[bool], bootstrap: Bootstrap) -> [f64; 2] {
    let n = correct.len();
    if n == 0 || bootstrap.samples == 0 {
        return [0.0, 0.0];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(bootstrap.seed);
    let mut means: Vec<f64> = (0..bootstrap.samples)
        .map(|_| (0..n).filter(|_| correct[rng.random_range(0..n)]).count() as f64 / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    [at(0.025), at(0.975)]
}

/// Wall time and throughput of a phase (training, inference, ...).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub seconds: f64,
    pub items: usize,
    pub items_per_second: f64,
}

impl Throughput {
    pub fn new(seconds: f64, items: usize) -> Self {
        Throughput { seconds, items, items_per_second: items as f64 / seconds.max(1e-12) }
    }

    /// Time `f`, which processes `items` items.
    pub fn measure<T>(items: usize, f: impl FnOnce() -> T) -> (T, Self) {
        let start = std::time::Instant::now();
        let out = f();
        (out, Throughput::new(start.elapsed().as_secs_f64(), items))
    }
}

/// How far a method's confidence is from how often it is right. Items are
/// binned by the confidence of their answer (equal-width bins over [0, 1]);
/// in each bin the share answered right is set against the mean confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// Expected calibration error: the items-weighted mean over bins of
    /// |accuracy − mean confidence|, 0..1 (Guo et al. 2017, 15 bins).
    pub ece: f64,
    /// Mean confidence over all items, against the overall accuracy: above
    /// it, the method is overconfident on the whole.
    pub mean_confidence: f64,
    pub accuracy: f64,
    /// Bins with at least one item.
    pub bins: Vec<ReliabilityBin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub items: usize,
    pub accuracy: f64,
    pub mean_confidence: f64,
}

/// Bins [`reliability`] uses by default.
pub const RELIABILITY_BINS: usize = 15;

/// The reliability of answers that were `right` with `confidence` each (an
/// item without a valid answer: confidence 0 and wrong).
pub fn reliability(right: &[bool], confidence: &[f64], bins: usize) -> Reliability {
    assert_eq!(right.len(), confidence.len(), "one confidence per answer");
    let n = right.len().max(1) as f64;
    let mut sums = vec![(0usize, 0usize, 0f64); bins.max(1)];
    for (&ok, &c) in right.iter().zip(confidence) {
        let c = c.clamp(0.0, 1.0);
        let b = ((c * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += usize::from(ok);
        sums[b].2 += c;
    }
    let bins_out: Vec<ReliabilityBin> = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(items, ok, total))| ReliabilityBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            items,
            accuracy: ok as f64 / items as f64,
            mean_confidence: total / items as f64,
        })
        .collect();
    Reliability {
        ece: bins_out.iter().map(|b| b.items as f64 / n * (b.accuracy - b.mean_confidence).abs()).sum(),
        mean_confidence: confidence.iter().sum::<f64>() / n,
        accuracy: right.iter().filter(|&&r| r).count() as f64 / n,
        bins: bins_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibrated_method_has_no_calibration_error_and_an_overconfident_one_has() {
        // 80% confident and right 4 times in 5; 60% confident and right 3 times in 5.
        let right = [true, true, true, true, false, true, true, true, false, false];
        let confidence = [0.8, 0.8, 0.8, 0.8, 0.8, 0.6, 0.6, 0.6, 0.6, 0.6];
        let r = reliability(&right, &confidence, 10);
        assert!(r.ece.abs() < 1e-12, "{r:?}");
        assert_eq!(r.bins.len(), 2);
        // Always 99% sure, right half the time: an error of 0.49.
        let r = reliability(&[true, false, true, false], &[0.99; 4], RELIABILITY_BINS);
        assert!((r.ece - 0.49).abs() < 1e-12 && r.mean_confidence > r.accuracy, "{r:?}");
        // Invalid answers (confidence 0, wrong) sit in the lowest bin.
        let r = reliability(&[false, true], &[0.0, 1.0], 15);
        assert_eq!((r.bins[0].lower, r.bins[0].items, r.bins[1].upper), (0.0, 1, 1.0));
    }

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn hand_computed_example() {
        // true:  0 0 0 1 1 2
        // pred:  0 0 1 1 - 2   (one invalid answer)
        let m = evaluate(
            &[0, 0, 0, 1, 1, 2],
            &[Some(0), Some(0), Some(1), Some(1), None, Some(2)],
            &names(3),
            Bootstrap::default(),
        );
        assert_eq!(m.items, 6);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(m.invalid, 1);
        assert_eq!(m.invalid_per_class, vec![0, 1, 0]);
        assert_eq!(m.confusion, vec![vec![2, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
        let c0 = &m.per_class[0];
        assert_eq!((c0.precision, c0.recall, c0.support), (1.0, 2.0 / 3.0, 3));
        let c1 = &m.per_class[1];
        assert!((c1.precision - 0.5).abs() < 1e-12 && (c1.recall - 0.5).abs() < 1e-12);
        let f1 = [0.8, 0.5, 1.0];
        assert!((m.macro_f1 - f1.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_accuracy() {
        let correct: Vec<bool> = (0..1000).map(|i| i % 10 != 0).collect();
        let b = Bootstrap { samples: 500, seed: 1 };
        let ci = bootstrap_interval(&correct, b);
        assert_eq!(ci, bootstrap_interval(&correct, b));
        assert!(ci[0] < 0.9 && 0.9 < ci[1], "{ci:?}");
        // The binomial standard error is ~0.0095: the interval is about ±1.9 points.
        assert!((ci[1] - ci[0] - 0.037).abs() < 0.01, "{ci:?}");
        assert_ne!(ci, bootstrap_interval(&correct, Bootstrap { samples: 500, seed: 2 }));
    }

    #[test]
    fn all_invalid_scores_zero() {
        let m = evaluate(&[0, 1], &[None, None], &names(2), Bootstrap::default());
        assert_eq!((m.accuracy, m.macro_f1, m.invalid), (0.0, 0.0, 2));
    }
}
