//! The "older algorithm": TF-IDF over word unigrams and bigrams (sublinear
//! term frequency, smoothed idf, L2-normalised rows — scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`) and a
//! multinomial logistic regression with L2 regularisation, fitted with
//! L-BFGS. The regularisation strength is chosen on validation.

use std::collections::HashMap;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};

/// Tokens as scikit-learn's default `token_pattern` `(?u)\b\w\w+\b` finds
/// them: runs of two or more word characters, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            current.extend(c.to_lowercase());
        } else {
            if current.chars().count() >= 2 {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    if current.chars().count() >= 2 {
        out.push(current);
    }
    out
}

/// Unigrams and bigrams of a text.
fn ngrams(text: &str) -> Vec<String> {
    let w = words(text);
    let mut out = w.clone();
    out.extend(w.windows(2).map(|p| format!("{} {}", p[0], p[1])));
    out
}

/// Settings of the vectoriser and the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    /// A term must occur in at least this many training texts.
    pub min_df: usize,
    /// Inverse regularisation strengths tried (scikit-learn's `C`), chosen on validation.
    pub cs: Vec<f64>,
    /// L-BFGS iterations at most.
    pub max_iter: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { min_df: 2, cs: vec![1.0, 3.0, 10.0, 30.0, 100.0], max_iter: 500 }
    }
}

/// A fitted TF-IDF vocabulary.
pub struct Tfidf {
    vocabulary: HashMap<String, u32>,
    idf: Vec<f32>,
}

/// Sparse rows: (column, value) pairs, L2-normalised.
pub type SparseRow = Vec<(u32, f32)>;

impl Tfidf {
    pub fn fit(texts: &[&str], min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for grams in texts.par_iter().map(|t| ngrams(t)).collect::<Vec<_>>() {
            let mut grams = grams;
            grams.sort_unstable();
            grams.dedup();
            for g in grams {
                *df.entry(g).or_default() += 1;
            }
        }
        let mut terms: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= min_df).collect();
        terms.sort_unstable();
        let n = texts.len() as f64;
        let idf = terms.iter().map(|(_, d)| (((1.0 + n) / (1.0 + *d as f64)).ln() + 1.0) as f32).collect();
        let vocabulary = terms.into_iter().enumerate().map(|(i, (t, _))| (t, i as u32)).collect();
        Tfidf { vocabulary, idf }
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    pub fn transform(&self, texts: &[&str]) -> Vec<SparseRow> {
        texts
            .par_iter()
            .map(|t| {
                let mut counts: HashMap<u32, f32> = HashMap::new();
                for g in ngrams(t) {
                    if let Some(&j) = self.vocabulary.get(&g) {
                        *counts.entry(j).or_default() += 1.0;
                    }
                }
                let mut row: SparseRow =
                    counts.into_iter().map(|(j, c)| (j, (1.0 + c.ln()) * self.idf[j as usize])).collect();
                row.sort_unstable_by_key(|&(j, _)| j);
                let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|(_, v)| *v /= norm);
                }
                row
            })
            .collect()
    }
}

/// Multinomial logistic regression, weights `[classes × features]` plus a bias per class.
pub struct LogisticRegression {
    pub classes: usize,
    pub features: usize,
    /// Row-major `classes × (features + 1)`, the bias last in each row.
    pub weights: Vec<f64>,
    pub iterations: usize,
}

impl LogisticRegression {
    /// Minimises `C · Σ cross-entropy + ½‖W‖²` (bias not penalised), as
    /// scikit-learn's `LogisticRegression(C=c)` does.
    pub fn fit(x: &[SparseRow], y: &[usize], classes: usize, features: usize, c: f64, max_iter: usize) -> Self {
        let dim = classes * (features + 1);
        let objective = |w: &[f64], grad: &mut [f64]| -> f64 { loss_and_gradient(w, x, y, classes, features, c, grad) };
        let (weights, iterations) = lbfgs(objective, vec![0.0; dim], max_iter, 10, 1e-6);
        LogisticRegression { classes, features, weights, iterations }
    }

    fn scores(&self, row: &SparseRow) -> Vec<f64> {
        let stride = self.features + 1;
        (0..self.classes)
            .map(|k| {
                let w = &self.weights[k * stride..(k + 1) * stride];
                w[self.features] + row.iter().map(|&(j, v)| w[j as usize] * v as f64).sum::<f64>()
            })
            .collect()
    }

    pub fn predict_proba(&self, rows: &[SparseRow]) -> Vec<Vec<f64>> {
        rows.par_iter().map(|r| softmax(&self.scores(r))).collect()
    }

    pub fn predict(&self, rows: &[SparseRow]) -> Vec<usize> {
        self.predict_proba(rows).iter().map(|p| argmax(p)).collect()
    }
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

fn argmax(p: &[f64]) -> usize {
    p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

fn loss_and_gradient(
    w: &[f64],
    x: &[SparseRow],
    y: &[usize],
    classes: usize,
    features: usize,
    c: f64,
    grad: &mut [f64],
) -> f64 {
    let stride = features + 1;
    let (loss, g) = x
        .par_iter()
        .zip(y)
        .with_min_len(2048)
        .fold(
            || (0.0, vec![0.0; grad.len()]),
            |(mut loss, mut g), (row, &label)| {
                let scores: Vec<f64> = (0..classes)
                    .map(|k| {
                        let wk = &w[k * stride..(k + 1) * stride];
                        wk[features] + row.iter().map(|&(j, v)| wk[j as usize] * v as f64).sum::<f64>()
                    })
                    .collect();
                let p = softmax(&scores);
                loss -= p[label].max(1e-300).ln();
                for k in 0..classes {
                    let d = p[k] - f64::from(u8::from(k == label));
                    let gk = &mut g[k * stride..(k + 1) * stride];
                    gk[features] += d;
                    for &(j, v) in row {
                        gk[j as usize] += d * v as f64;
                    }
                }
                (loss, g)
            },
        )
        .reduce(
            || (0.0, vec![0.0; grad.len()]),
            |(l1, mut g1), (l2, g2)| {
                g1.iter_mut().zip(&g2).for_each(|(a, b)| *a += b);
                (l1 + l2, g1)
            },
        );
    let mut penalty = 0.0;
    for k in 0..classes {
        for j in 0..features {
            let i = k * stride + j;
            grad[i] = c * g[i] + w[i];
            penalty += w[i] * w[i];
        }
        let b = k * stride + features;
        grad[b] = c * g[b];
    }
    c * loss + 0.5 * penalty
}

/// Limited-memory BFGS with a backtracking (Armijo) line search. Stops when
/// the gradient's max-norm falls below `tol` (relative to its start) or
/// after `max_iter` iterations. Returns the minimiser and the iterations used.
pub fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    max_iter: usize,
    memory: usize,
    tol: f64,
) -> (Vec<f64>, usize) {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let g0 = g.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let dot = |a: &[f64], b: &[f64]| a.par_iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut new_g = vec![0.0; n];
    for iter in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < tol * g0 {
            return (x, iter);
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.par_iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.par_iter_mut().for_each(|v| *v *= gamma);
        } else {
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-12);
            q.par_iter_mut().for_each(|v| *v *= scale);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.par_iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let direction: Vec<f64> = q.into_iter().map(|v| -v).collect();
        let slope = dot(&g, &direction);
        if slope >= 0.0 {
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut candidate;
        let mut f_new;
        loop {
            candidate = x.iter().zip(&direction).map(|(x, d)| x + step * d).collect::<Vec<_>>();
            f_new = f(&candidate, &mut new_g);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        let s: Vec<f64> = candidate.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = new_g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        x = candidate;
        std::mem::swap(&mut g, &mut new_g);
        if (fx - f_new).abs() <= 1e-12 * fx.abs().max(1.0) {
            return (x, iter + 1);
        }
        fx = f_new;
    }
    (x, max_iter)
}

/// Validation accuracy of one regularisation strength.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CPoint {
    pub c: f64,
    pub accuracy: f64,
    pub iterations: usize,
}

pub struct BaselineRun {
    pub config: BaselineConfig,
    pub features: usize,
    pub sweep: Vec<CPoint>,
    pub chosen_c: f64,
    pub predictions: Vec<usize>,
    pub metrics: Metrics,
    /// Vectorise train + fit at the chosen C (what training costs).
    pub fit: Throughput,
    /// Vectorise + predict test.
    pub predict: Throughput,
}

/// Fits on train, picks `C` on validation, predicts test once.
pub fn run(ds: &Dataset, config: &BaselineConfig) -> Result<BaselineRun> {
    if config.cs.is_empty() {
        bail!("no regularisation strength to try");
    }
    fn texts(split: &[crate::Example]) -> Vec<&str> {
        split.iter().map(|e| e.text.as_str()).collect()
    }
    let (train_texts, val_texts, test_texts) = (texts(&ds.train), texts(&ds.validation), texts(&ds.test));
    let train_y: Vec<usize> = ds.train.iter().map(|e| e.label).collect();
    let val_y: Vec<usize> = ds.validation.iter().map(|e| e.label).collect();
    let classes = ds.num_classes();

    let fit_once = |c: f64| -> (Tfidf, LogisticRegression) {
        let tfidf = Tfidf::fit(&train_texts, config.min_df);
        let x = tfidf.transform(&train_texts);
        let lr = LogisticRegression::fit(&x, &train_y, classes, tfidf.len(), c, config.max_iter);
        (tfidf, lr)
    };
    let tfidf = Tfidf::fit(&train_texts, config.min_df);
    let x_train = tfidf.transform(&train_texts);
    let x_val = tfidf.transform(&val_texts);
    let sweep: Vec<CPoint> = config
        .cs
        .iter()
        .map(|&c| {
            let lr = LogisticRegression::fit(&x_train, &train_y, classes, tfidf.len(), c, config.max_iter);
            let correct = lr.predict(&x_val).iter().zip(&val_y).filter(|(p, y)| p == y).count();
            let accuracy = correct as f64 / val_y.len().max(1) as f64;
            tracing::info!(c, accuracy, iterations = lr.iterations, "validation");
            CPoint { c, accuracy, iterations: lr.iterations }
        })
        .collect();
    // Highest accuracy; ties go to the stronger regularisation (smaller C).
    let chosen_c = sweep.iter().fold(sweep[0], |best, p| if p.accuracy > best.accuracy { *p } else { best }).c;

    let ((tfidf, lr), fit) = Throughput::measure(ds.train.len(), || fit_once(chosen_c));
    let (predictions, predict) = Throughput::measure(ds.test.len(), || lr.predict(&tfidf.transform(&test_texts)));
    let labels: Vec<usize> = ds.test.iter().map(|e| e.label).collect();
    let preds: Vec<Option<usize>> = predictions.iter().map(|&p| Some(p)).collect();
    let metrics = evaluate(&labels, &preds, &ds.labels, Bootstrap::default());
    Ok(BaselineRun {
        config: config.clone(),
        features: tfidf.len(),
        sweep,
        chosen_c,
        predictions,
        metrics,
        fit,
        predict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_scikit_learns_token_pattern() {
        assert_eq!(
            words("Wall St. Bears' claw-back: 2004, a I x9"),
            vec!["wall", "st", "bears", "claw", "back", "2004", "x9"]
        );
    }

    #[test]
    fn tfidf_rows_are_unit_length_with_sublinear_tf_and_smoothed_idf() {
        let texts = ["apple apple banana", "banana cherry", "cherry cherry cherry"];
        let tfidf = Tfidf::fit(&texts, 1);
        let rows = tfidf.transform(&texts);
        for r in &rows {
            assert!((r.iter().map(|(_, v)| v * v).sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Row 0: apple tf 1+ln2, idf ln(4/2)+1; banana tf 1, idf ln(4/3)+1 (and the bigrams).
        let id = |t: &str| tfidf.vocabulary[t];
        let get = |r: &SparseRow, j: u32| r.iter().find(|(k, _)| *k == j).unwrap().1;
        let ratio = get(&rows[0], id("apple")) / get(&rows[0], id("banana"));
        let expected = (1.0 + 2f32.ln()) * (2f32.ln() + 1.0) / ((4.0f32 / 3.0).ln() + 1.0);
        assert!((ratio - expected).abs() < 1e-5, "{ratio} vs {expected}");
    }

    #[test]
    fn lbfgs_minimises_a_quadratic() {
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 3.0);
            g[1] = 20.0 * (x[1] + 1.0);
            (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2)
        };
        let (x, _) = lbfgs(f, vec![0.0, 0.0], 100, 5, 1e-10);
        assert!((x[0] - 3.0).abs() < 1e-6 && (x[1] + 1.0).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn logistic_regression_gradient_matches_finite_differences() {
        let x: Vec<SparseRow> = vec![vec![(0, 0.6), (2, 0.8)], vec![(1, 1.0)], vec![(0, 0.3), (1, 0.4), (2, 0.866)]];
        let y = [0, 1, 2];
        let w: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut g = vec![0.0; 12];
        loss_and_gradient(&w, &x, &y, 3, 3, 2.0, &mut g);
        for i in 0..12 {
            let mut scratch = vec![0.0; 12];
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let numeric = (loss_and_gradient(&a, &x, &y, 3, 3, 2.0, &mut scratch)
                - loss_and_gradient(&b, &x, &y, 3, 3, 2.0, &mut scratch))
                / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-5, "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn separates_a_synthetic_task() {
        let texts: Vec<String> = (0..200)
            .map(|i| if i % 2 == 0 { format!("goal match team {i}") } else { format!("stock market shares {i}") })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let y: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let tfidf = Tfidf::fit(&refs, 2);
        let x = tfidf.transform(&refs);
        let lr = LogisticRegression::fit(&x, &y, 2, tfidf.len(), 10.0, 200);
        assert_eq!(lr.predict(&tfidf.transform(&["the team scored a goal", "shares fell on the market"])), vec![0, 1]);
    }
}
