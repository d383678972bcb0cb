//! Multinomial logistic regression with L2 regularisation, fitted with
//! L-BFGS on sparse rows (scikit-learn's `LogisticRegression(C=c)`).

use std::collections::VecDeque;

use rayon::prelude::*;

use super::vectorizer::SparseRow;

/// Multinomial logistic regression: a weight per feature and class, and a bias per class.
pub struct LogisticRegression {
    pub classes: usize,
    pub features: usize,
    /// Feature-major `(features + 1) × classes`: one feature's weights for
    /// every class side by side (a single cache line for four classes, where
    /// class-major rows would cost four scattered reads per non-zero), the
    /// biases last.
    weights: Vec<f64>,
    pub iterations: usize,
}

impl LogisticRegression {
    /// Minimises the mean cross-entropy plus `‖W‖² / (2·C·n)` (bias not
    /// penalised), and stops when no gradient component exceeds `tol`: the
    /// objective, scaling and stopping rule of scikit-learn's
    /// `LogisticRegression(C=c, tol=tol)` with its L-BFGS solver.
    pub fn fit(
        x: &[SparseRow],
        y: &[usize],
        classes: usize,
        features: usize,
        c: f64,
        max_iter: usize,
        tol: f64,
    ) -> Self {
        let design = Design::new(x, y, classes, features);
        let mut scratch = Scratch::default();
        let objective = |w: &[f64], grad: &mut [f64]| design.loss_and_gradient(w, c, grad, &mut scratch);
        let (weights, iterations) = lbfgs(objective, vec![0.0; design.dim()], max_iter, 10, tol);
        LogisticRegression { classes, features, weights, iterations }
    }

    fn scores(&self, row: &SparseRow) -> Vec<f64> {
        scores(&self.weights, row, self.classes, self.features)
    }

    pub fn predict_proba(&self, rows: &[SparseRow]) -> Vec<Vec<f64>> {
        rows.par_iter().map(|r| softmax(&self.scores(r))).collect()
    }

    pub fn predict(&self, rows: &[SparseRow]) -> Vec<usize> {
        self.predict_proba(rows).iter().map(|p| argmax(p)).collect()
    }
}

/// Bias plus `x · w` for every class, from feature-major weights.
fn scores(w: &[f64], row: &SparseRow, classes: usize, features: usize) -> Vec<f64> {
    let mut s = w[features * classes..(features + 1) * classes].to_vec();
    for &(j, v) in row {
        let wj = &w[j as usize * classes..(j as usize + 1) * classes];
        s.iter_mut().zip(wj).for_each(|(s, w)| *s += w * v as f64);
    }
    s
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// The most probable class, from the f64 probabilities (f32 scores may tie where these do not).
pub use crate::metrics::argmax;

/// Rows per parallel task in the reductions: fixed, so that sums are added
/// in the same order whatever the thread count (the fit is bit-reproducible).
const CHUNK: usize = 4096;

/// The training set in both orientations: rows give the scores, columns give
/// the gradient `Xᵀ·(P − Y)` one feature at a time, in parallel and without a
/// per-thread copy of the gradient to scatter into and add up.
struct Design<'a> {
    rows: &'a [SparseRow],
    labels: &'a [usize],
    classes: usize,
    features: usize,
    /// Compressed columns: feature j's entries are `column_start[j]..column_start[j + 1]`.
    column_start: Vec<usize>,
    column_row: Vec<u32>,
    column_value: Vec<f64>,
}

/// Buffers reused across the objective's evaluations.
#[derive(Default)]
struct Scratch {
    /// `P − Y`, row-major `n × classes`.
    residual: Vec<f64>,
    /// Each row's cross-entropy.
    losses: Vec<f64>,
}

impl<'a> Design<'a> {
    fn new(rows: &'a [SparseRow], labels: &'a [usize], classes: usize, features: usize) -> Self {
        let mut column_start = vec![0usize; features + 1];
        for &(j, _) in rows.iter().flatten() {
            column_start[j as usize + 1] += 1;
        }
        for j in 0..features {
            column_start[j + 1] += column_start[j];
        }
        let nnz = column_start[features];
        let (mut column_row, mut column_value) = (vec![0u32; nnz], vec![0f64; nnz]);
        let mut next = column_start.clone();
        for (i, row) in rows.iter().enumerate() {
            for &(j, v) in row {
                let at = &mut next[j as usize];
                column_row[*at] = i as u32;
                column_value[*at] = v as f64;
                *at += 1;
            }
        }
        Design { rows, labels, classes, features, column_start, column_row, column_value }
    }

    fn dim(&self) -> usize {
        (self.features + 1) * self.classes
    }

    /// The mean cross-entropy plus `‖W‖² / (2·C·n)`, and its gradient into `grad`.
    fn loss_and_gradient(&self, w: &[f64], c: f64, grad: &mut [f64], scratch: &mut Scratch) -> f64 {
        let (classes, features) = (self.classes, self.features);
        let n = self.rows.len();
        scratch.residual.resize(n * classes, 0.0);
        scratch.losses.resize(n, 0.0);
        scratch
            .residual
            .par_chunks_mut(classes)
            .zip(&mut scratch.losses)
            .zip(self.rows.par_iter().zip(self.labels))
            .with_min_len(CHUNK / 4)
            .for_each(|((residual, loss), (row, &label))| {
                let p = softmax(&scores(w, row, classes, features));
                *loss = -p[label].max(1e-300).ln();
                residual.copy_from_slice(&p);
                residual[label] -= 1.0;
            });
        let inv_n = 1.0 / n.max(1) as f64;
        let l2 = inv_n / c;
        let (weight_grad, bias_grad) = grad.split_at_mut(features * classes);
        let residual = &scratch.residual;
        weight_grad.par_chunks_mut(classes).enumerate().with_min_len(CHUNK / 4).for_each(|(j, g)| {
            g.fill(0.0);
            for e in self.column_start[j]..self.column_start[j + 1] {
                let (i, v) = (self.column_row[e] as usize, self.column_value[e]);
                g.iter_mut().zip(&residual[i * classes..(i + 1) * classes]).for_each(|(g, r)| *g += r * v);
            }
            let wj = &w[j * classes..(j + 1) * classes];
            g.iter_mut().zip(wj).for_each(|(g, w)| *g = *g * inv_n + l2 * w);
        });
        bias_grad.fill(0.0);
        for r in residual.chunks_exact(classes) {
            bias_grad.iter_mut().zip(r).for_each(|(g, r)| *g += r);
        }
        bias_grad.iter_mut().for_each(|g| *g *= inv_n);
        let penalty = dot(&w[..features * classes], &w[..features * classes]);
        scratch.losses.iter().sum::<f64>() * inv_n + 0.5 * l2 * penalty
    }
}

/// `a · b`, summed in fixed chunks and the chunks in order (reproducible).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let partial: Vec<f64> = a
        .par_chunks(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>())
        .collect();
    partial.iter().sum()
}

/// Limited-memory BFGS with a backtracking (Armijo) line search. Stops as
/// scipy's L-BFGS-B does: when no gradient component exceeds `gtol`, when an
/// iteration lowers the objective by less than 64 machine epsilons
/// (relatively), or after `max_iter` iterations. Returns the minimiser and
/// the iterations used.
pub fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    max_iter: usize,
    memory: usize,
    gtol: f64,
) -> (Vec<f64>, usize) {
    const FTOL: f64 = 64.0 * f64::EPSILON;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    // (s, y, 1/(s·y)) pairs; a full history recycles its oldest vectors, so
    // an iteration allocates nothing.
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(memory);
    let (mut direction, mut candidate, mut new_g) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut alphas = Vec::with_capacity(memory);
    for iter in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= gtol {
            return (x, iter);
        }
        // Two-loop recursion: direction = -H g.
        let q = &mut direction;
        q.copy_from_slice(&g);
        alphas.clear();
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, q);
            axpy(-a, y, q);
            alphas.push(a);
        }
        let scale = match history.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            None => 1.0 / dot(&g, &g).sqrt().max(1e-12),
        };
        q.par_chunks_mut(CHUNK).for_each(|q| q.iter_mut().for_each(|v| *v *= scale));
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, q);
            axpy(a - b, s, q);
        }
        q.par_chunks_mut(CHUNK).for_each(|q| q.iter_mut().for_each(|v| *v = -*v));
        let slope = dot(&g, &direction);
        if slope >= 0.0 {
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut f_new;
        loop {
            candidate.copy_from_slice(&x);
            axpy(step, &direction, &mut candidate);
            f_new = f(&candidate, &mut new_g);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        let (mut s, mut y) = match history.len() == memory {
            true => history.pop_front().map(|(s, y, _)| (s, y)).unwrap_or_default(),
            false => (vec![0.0; n], vec![0.0; n]),
        };
        difference(&candidate, &x, &mut s);
        difference(&new_g, &g, &mut y);
        let sy = dot(&s, &y);
        // Keep the pair only when the curvature is safely positive (scipy's rule).
        if memory > 0 && sy > f64::EPSILON * dot(&y, &y) {
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut candidate);
        std::mem::swap(&mut g, &mut new_g);
        if (fx - f_new) <= FTOL * fx.abs().max(f_new.abs()).max(1.0) {
            return (x, iter + 1);
        }
        fx = f_new;
    }
    (x, max_iter)
}

/// `y += a · x`.
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x));
}

/// `out = a - b`.
fn difference(a: &[f64], b: &[f64], out: &mut [f64]) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| o.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o = a - b));
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
        let design = Design::new(&x, &y, 3, 3);
        let mut scratch = Scratch::default();
        let w: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut g = vec![0.0; 12];
        design.loss_and_gradient(&w, 2.0, &mut g, &mut scratch);
        let mut loss = |w: &[f64]| design.loss_and_gradient(w, 2.0, &mut [0.0; 12], &mut scratch);
        for i in 0..12 {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let numeric = (loss(&a) - loss(&b)) / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-6, "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn fit_is_bit_reproducible() {
        let texts: Vec<String> = (0..3000).map(|i| format!("w{} w{} w{} shared", i % 97, i % 31, i % 13)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let y: Vec<usize> = (0..3000).map(|i| (i % 97) % 3).collect();
        let (tfidf, x) = Tfidf::fit_transform(&refs, 1);
        let fit = || LogisticRegression::fit(&x, &y, 3, tfidf.len(), 1.0, 50, 1e-4);
        let (a, b) = (fit(), fit());
        assert_eq!(a.iterations, b.iterations);
        assert!(a.weights.iter().zip(&b.weights).all(|(u, v)| u.to_bits() == v.to_bits()));
    }

    #[test]
    fn separates_a_synthetic_task() {
        let texts: Vec<String> = (0..200)
            .map(|i| if i % 2 == 0 { format!("goal match team {i}") } else { format!("stock market shares {i}") })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let y: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let (tfidf, x) = Tfidf::fit_transform(&refs, 2);
        let lr = LogisticRegression::fit(&x, &y, 2, tfidf.len(), 10.0, 200, 1e-4);
        assert_eq!(lr.predict(&tfidf.transform(&["the team scored a goal", "shares fell on the market"])), vec![0, 1]);
    }
}
