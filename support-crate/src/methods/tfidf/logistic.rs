//! Multinomial logistic regression with L2 regularisation, fitted with
//! L-BFGS on sparse rows (scikit-learn's `LogisticRegression(C=c)`).

use rayon::prelude::*;

use super::vectorizer::SparseRow;

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

/// The most probable class (computed in f64: f32 scores may tie where these do not).
pub fn argmax(p: &[f64]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::tfidf::vectorizer::Tfidf;

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
