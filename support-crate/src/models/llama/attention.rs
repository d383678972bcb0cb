//! Causal self-attention as one fused CPU op with a backward pass.
//!
//! Written with tensor ops, a layer's attention is ~15 graph nodes (split of
//! the fused QKV projection, transposes and copies to heads-first layout,
//! two rotary embeddings, repetition of the shared key/value heads, scores,
//! scaling, mask, softmax, weighted sum, transpose back), and backward
//! allocates, zero-fills and adds a gradient for each. Profiling the
//! fine-tune showed those passes, not the matrix products, made backward
//! 2.6x slower than its arithmetic. Here the op takes the QKV projection's
//! output `[b·t, (heads + 2·kv_heads)·d]` as it is, and returns the heads'
//! outputs `[b·t, heads·d]` ready for the output projection; backward
//! returns the gradient of the QKV projection's output in the same layout.
//!
//! Per batch row, per key/value head: keys are rotated once and shared by
//! the query heads of the group (grouped-query attention without copies);
//! the four products per head run through `gemm` on strided views; softmax
//! probabilities are recomputed in backward rather than stored.
//! Only a row's real tokens are computed: padding positions get output 0
//! and, as nothing real attends to them, gradient 0.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

use crate::kernels::contiguous_f32;
use crate::kernels::gemm::{matmul, View};
use crate::kernels::math::{exp, lanes};

/// Rotary angles of positions `0..t`, `[t, head_dim / 2]` row-major.
#[derive(Debug)]
pub struct RotaryRows {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

/// The shape of an attention call.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    pub(super) fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
    pub(super) fn out_width(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// Causal self-attention over right-padded rows of `lengths` real tokens.
/// `qkv` is `[b·t, (heads + 2·kv_heads)·d]` (query heads, then key heads,
/// then value heads, unrotated); returns `[b·t, heads·d]`.
pub fn causal_self_attention(
    qkv: &Tensor,
    heads: Heads,
    lengths: &[usize],
    rotary: &Arc<RotaryRows>,
) -> Result<Tensor> {
    attention(qkv, heads, lengths, rotary, false)
}

/// As [`causal_self_attention`] for each row's last real token only,
/// `[b, heads·d]`: all a classifier's last layer needs.
pub fn last_token_attention(qkv: &Tensor, heads: Heads, lengths: &[usize], rotary: &Arc<RotaryRows>) -> Result<Tensor> {
    attention(qkv, heads, lengths, rotary, true)
}

fn attention(
    qkv: &Tensor,
    heads: Heads,
    lengths: &[usize],
    rotary: &Arc<RotaryRows>,
    last_only: bool,
) -> Result<Tensor> {
    let (rows, width) = qkv.dims2()?;
    let b = lengths.len();
    if b == 0
        || !rows.is_multiple_of(b)
        || width != heads.qkv_width()
        || heads.kv_heads == 0
        || !heads.heads.is_multiple_of(heads.kv_heads)
        || !heads.head_dim.is_multiple_of(2)
    {
        candle_core::bail!("attention: qkv {:?} for {b} rows of {heads:?}", qkv.dims());
    }
    let t = rows / b;
    if rotary.cos.len() < t * heads.head_dim / 2 {
        candle_core::bail!("attention: rotary tables shorter than {t} positions");
    }
    let op = Attention { heads, seq: t, lengths: lengths.to_vec(), rotary: rotary.clone(), last_only };
    qkv.contiguous()?.apply_op1(op)
}

#[derive(Debug, Clone)]
struct Attention {
    heads: Heads,
    seq: usize,
    lengths: Vec<usize>,
    rotary: Arc<RotaryRows>,
    /// Queries of each row's last real token only.
    last_only: bool,
}

/// Half-split rotation of one head vector at one position, times `scale`;
/// `sign` −1 rotates back (the transpose, for gradients).
pub(super) fn rotate(dst: &mut [f32], src: &[f32], cos: &[f32], sin: &[f32], sign: f32, scale: f32) {
    let half = cos.len();
    let (x1, x2) = src.split_at(half);
    let (d1, d2) = dst.split_at_mut(half);
    // Zipped iterators, not indices: without bounds checks the loop vectorises
    // (indexed, rotation was 17% of attention's time).
    for ((((d1, d2), (x1, x2)), c), s) in d1.iter_mut().zip(d2).zip(x1.iter().zip(x2)).zip(cos).zip(sin) {
        let s = sign * s;
        *d1 = (x1 * c - x2 * s) * scale;
        *d2 = (x2 * c + x1 * s) * scale;
    }
}

/// Softmax of each row `i` of `s[m×n]` (the query at position `first + i`)
/// over keys `0..=first + i`; the rest set to 0.
pub(super) fn causal_softmax(s: &mut [f32], n: usize, first: usize) {
    for (i, row) in s.chunks_mut(n).enumerate() {
        let (seen, future) = row.split_at_mut(first + i + 1);
        // Max is exact, so the lanes' order does not change the result.
        let max = lanes(seen, f32::NEG_INFINITY, f32::max);
        seen.iter_mut().for_each(|v| *v = exp(*v - max));
        // In lanes too: one running f32 sum is a chain of dependent adds, and
        // was slower than the exponentials.
        let inv = 1.0 / lanes(seen, 0.0, |a, b| a + b);
        seen.iter_mut().for_each(|v| *v *= inv);
        future.fill(0.0);
    }
}

/// Per-row work buffers and the rotated keys of the current group.
struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    p: Vec<f32>,
}

impl Attention {
    fn scale(&self) -> f32 {
        1.0 / (self.heads.head_dim as f32).sqrt()
    }

    /// Real length `n` of batch row `bi` (at least 1, at most the sequence)
    /// and the first query position computed: 0, or `n − 1` for the last token only.
    fn span(&self, bi: usize) -> (usize, usize) {
        let n = self.lengths[bi].clamp(1, self.seq);
        (if self.last_only { n - 1 } else { 0 }, n)
    }

    /// Rotary `(cos, sin)` of position `i`.
    fn angles(&self, i: usize) -> (&[f32], &[f32]) {
        let half = self.heads.head_dim / 2;
        (&self.rotary.cos[i * half..(i + 1) * half], &self.rotary.sin[i * half..(i + 1) * half])
    }

    /// Output rows per batch row.
    fn out_rows(&self) -> usize {
        if self.last_only {
            1
        } else {
            self.seq
        }
    }

    /// Rotates rows `positions` of head `head` (a column block of `rows`)
    /// into consecutive rows of `dst`.
    fn rotate_head(&self, dst: &mut [f32], rows: &[f32], head: usize, positions: std::ops::Range<usize>, scale: f32) {
        let (d, w) = (self.heads.head_dim, self.heads.qkv_width());
        for (r, i) in positions.enumerate() {
            let (cos, sin) = self.angles(i);
            rotate(&mut dst[r * d..(r + 1) * d], &rows[i * w + head * d..i * w + (head + 1) * d], cos, sin, 1.0, scale);
        }
    }

    /// Probabilities `p[m×n]` of query head `h` at positions `first..n` (its
    /// rotated, scaled queries left in `scratch.q`) against the group's keys
    /// in `scratch.k`.
    fn probabilities(&self, scratch: &mut Scratch, rows: &[f32], h: usize, (first, n): (usize, usize)) {
        let (d, m) = (self.heads.head_dim, n - first);
        self.rotate_head(&mut scratch.q, rows, h, first..n, self.scale());
        let (q, k) = (View::new(&scratch.q, d, 1), View::new(&scratch.k, d, 1));
        matmul(&mut scratch.p, n, q, k.t(), (m, n, d), false, false);
        causal_softmax(&mut scratch.p[..m * n], n, first);
    }

    fn scratch(&self) -> Scratch {
        let (t, d) = (self.seq, self.heads.head_dim);
        Scratch { q: vec![0.0; t * d], k: vec![0.0; t * d], p: vec![0.0; t * t] }
    }

    /// Output rows `[out_rows, heads·d]` of batch row `bi` from its QKV rows `[t, w]`.
    fn forward_row(&self, bi: usize, rows: &[f32], out: &mut [f32]) {
        let Heads { heads, kv_heads, head_dim: d } = self.heads;
        let (w, ow, rep) = (self.heads.qkv_width(), self.heads.out_width(), heads / kv_heads);
        let (first, n) = self.span(bi);
        let mut scratch = self.scratch();
        for g in 0..kv_heads {
            self.rotate_head(&mut scratch.k, rows, heads + g, 0..n, 1.0);
            let v = View::new(&rows[(heads + kv_heads + g) * d..], w, 1);
            for h in g * rep..(g + 1) * rep {
                self.probabilities(&mut scratch, rows, h, (first, n));
                matmul(&mut out[h * d..], ow, View::new(&scratch.p, n, 1), v, (n - first, d, n), false, false);
            }
        }
    }

    /// Gradient rows `[t, w]` of batch row `bi`'s QKV from its output
    /// gradient rows `[out_rows, heads·d]`.
    fn backward_row(&self, bi: usize, rows: &[f32], grad: &[f32], dqkv: &mut [f32]) {
        let Heads { heads, kv_heads, head_dim: d } = self.heads;
        let (w, ow, rep) = (self.heads.qkv_width(), self.heads.out_width(), heads / kv_heads);
        let (first, n) = self.span(bi);
        let m = n - first;
        let mut scratch = self.scratch();
        let (mut dp, mut dq) = (vec![0f32; m * n], vec![0f32; m * d]);
        let (mut dk, mut dv) = (vec![0f32; n * d], vec![0f32; n * d]);
        // Row r of `src` → position `from + r` of head column `col`, rotated back.
        let unrotate = |dst: &mut [f32], src: &[f32], col: usize, from: usize, scale: f32| {
            for (r, src) in src.chunks(d).enumerate() {
                let i = from + r;
                let (cos, sin) = self.angles(i);
                rotate(&mut dst[i * w + col * d..i * w + (col + 1) * d], src, cos, sin, -1.0, scale);
            }
        };
        for g in 0..kv_heads {
            self.rotate_head(&mut scratch.k, rows, heads + g, 0..n, 1.0);
            let v = View::new(&rows[(heads + kv_heads + g) * d..], w, 1);
            for (r, h) in (g * rep..(g + 1) * rep).enumerate() {
                self.probabilities(&mut scratch, rows, h, (first, n));
                let p = View::new(&scratch.p, n, 1);
                let d_out = View::new(&grad[h * d..], ow, 1);
                // dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ⊙ (dP − rowsum(P ⊙ dP)).
                matmul(&mut dv, d, p.t(), d_out, (n, d, m), r > 0, false);
                matmul(&mut dp, n, d_out, v.t(), (m, n, d), false, false);
                for (p_row, dp_row) in scratch.p.chunks(n).zip(dp.chunks_mut(n)).take(m) {
                    let dot: f32 = p_row.iter().zip(dp_row.iter()).map(|(p, g)| p * g).sum();
                    for (g, p) in dp_row.iter_mut().zip(p_row) {
                        *g = p * (*g - dot);
                    }
                }
                let ds = View::new(&dp, n, 1);
                // dQ = dS·K (then through the scale and the rotation); dK += dSᵀ·Q.
                matmul(&mut dq, d, ds, View::new(&scratch.k, d, 1), (m, d, n), false, false);
                unrotate(dqkv, &dq, h, first, self.scale());
                matmul(&mut dk, d, ds.t(), View::new(&scratch.q, d, 1), (n, d, m), r > 0, false);
            }
            unrotate(dqkv, &dk, heads + g, 0, 1.0);
            for i in 0..n {
                let col = (heads + kv_heads + g) * d;
                dqkv[i * w + col..i * w + col + d].copy_from_slice(&dv[i * d..(i + 1) * d]);
            }
        }
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "causal-self-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous_f32(self.name(), s, l)?;
        let (t, w, ow, r) = (self.seq, self.heads.qkv_width(), self.heads.out_width(), self.out_rows());
        let b = self.lengths.len();
        let mut out = vec![0f32; b * r * ow];
        out.par_chunks_mut(r * ow)
            .zip(qkv.par_chunks(t * w))
            .enumerate()
            .for_each(|(bi, (out, rows))| self.forward_row(bi, rows, out));
        Ok((CpuStorage::F32(out), Shape::from((b * r, ow))))
    }

    fn bwd(&self, qkv: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(qkv.apply_op2_no_bwd(&grad.contiguous()?, &AttentionBackward(self.clone()))?))
    }
}

struct AttentionBackward(Attention);

impl CustomOp2 for AttentionBackward {
    fn name(&self) -> &'static str {
        "causal-self-attention-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (qkv, grad) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        let a = &self.0;
        let (t, w, ow, r) = (a.seq, a.heads.qkv_width(), a.heads.out_width(), a.out_rows());
        let mut dqkv = vec![0f32; qkv.len()];
        dqkv.par_chunks_mut(t * w)
            .zip(qkv.par_chunks(t * w).zip(grad.par_chunks(r * ow)))
            .enumerate()
            .for_each(|(bi, (dqkv, (rows, grad)))| a.backward_row(bi, rows, grad, dqkv));
        Ok((CpuStorage::F32(dqkv), l1.shape().clone()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::models::llama::ops::tests::{max_abs_diff, random};
    use candle_core::{Device, Var, D};

    pub(in crate::models::llama) fn tables(t: usize, d: usize) -> (Tensor, Tensor, Arc<RotaryRows>) {
        let angles: Vec<f32> =
            (0..t).flat_map(|p| (0..d / 2).map(move |i| p as f32 * 10f32.powf(-(i as f32) / 4.0))).collect();
        let angles = Tensor::from_vec(angles, (t, d / 2), &Device::Cpu).unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let rows = RotaryRows {
            cos: cos.flatten_all().unwrap().to_vec1().unwrap(),
            sin: sin.flatten_all().unwrap().to_vec1().unwrap(),
        };
        (cos, sin, Arc::new(rows))
    }

    /// The same attention from plain tensor ops (candle's autograd).
    fn reference(qkv: &Tensor, heads: Heads, lengths: &[usize], cos: &Tensor, sin: &Tensor) -> Tensor {
        let Heads { heads: nh, kv_heads: kv, head_dim: d } = heads;
        let b = lengths.len();
        let t = qkv.dim(0).unwrap() / b;
        let qkv = qkv.reshape((b, t, nh + 2 * kv, d)).unwrap();
        let split = |start, n| qkv.narrow(2, start, n).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let rope = |x: &Tensor| {
            let (x1, x2) = (x.narrow(D::Minus1, 0, d / 2).unwrap(), x.narrow(D::Minus1, d / 2, d / 2).unwrap());
            let (c, s) = (cos.reshape((1, 1, t, d / 2)).unwrap(), sin.reshape((1, 1, t, d / 2)).unwrap());
            let r1 = (x1.broadcast_mul(&c).unwrap() - x2.broadcast_mul(&s).unwrap()).unwrap();
            let r2 = (x2.broadcast_mul(&c).unwrap() + x1.broadcast_mul(&s).unwrap()).unwrap();
            Tensor::cat(&[r1, r2], D::Minus1).unwrap()
        };
        let repeat =
            |x: Tensor| x.unsqueeze(2).unwrap().expand((b, kv, nh / kv, t, d)).unwrap().reshape((b, nh, t, d)).unwrap();
        let (q, k, v) = (rope(&split(0, nh)), repeat(rope(&split(nh, kv))), repeat(split(nh + kv, kv)));
        // 0 where query i may see key j (j <= i and j a real token), −∞ elsewhere.
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| {
                (0..t * t).map(move |ij| if ij % t > ij / t || ij % t >= n { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, t, t), &Device::Cpu).unwrap();
        let scores =
            ((q.matmul(&k.t().unwrap()).unwrap() * (1.0 / (d as f64).sqrt())).unwrap()).broadcast_add(&mask).unwrap();
        // The plain-op softmax: candle's fused kernel has no backward.
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        probs.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b * t, nh * d)).unwrap()
    }

    /// 1 on real tokens' rows, 0 on padding rows, `[b·t, 1]`.
    fn real_rows(lengths: &[usize], t: usize) -> Tensor {
        let m: Vec<f32> = lengths.iter().flat_map(|&n| (0..t).map(move |i| if i < n { 1.0 } else { 0.0 })).collect();
        Tensor::from_vec(m, (lengths.len() * t, 1), &Device::Cpu).unwrap()
    }

    #[test]
    fn values_and_gradient_equal_plain_ops_on_real_tokens() {
        let heads = Heads { heads: 6, kv_heads: 2, head_dim: 8 };
        let (lengths, t) = ([7usize, 3, 5], 7);
        let (cos, sin, rotary) = tables(t, heads.head_dim);
        let qkv = Var::from_tensor(&random(&[lengths.len() * t, heads.qkv_width()], 1)).unwrap();
        let weights = random(&[lengths.len() * t, heads.out_width()], 2);
        let real = real_rows(&lengths, t);

        let fused = causal_self_attention(qkv.as_tensor(), heads, &lengths, &rotary).unwrap();
        let plain = reference(qkv.as_tensor(), heads, &lengths, &cos, &sin).broadcast_mul(&real).unwrap();
        assert!(max_abs_diff(&fused, &plain) < 1e-5, "values differ by {}", max_abs_diff(&fused, &plain));

        let loss = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap();
        let g_fused = loss(&fused).backward().unwrap().get(qkv.as_tensor()).unwrap().clone();
        let g_plain = loss(&plain).backward().unwrap().get(qkv.as_tensor()).unwrap().clone();
        assert!(max_abs_diff(&g_fused, &g_plain) < 1e-4, "gradients differ by {}", max_abs_diff(&g_fused, &g_plain));
    }

    #[test]
    fn last_token_attention_equals_the_last_rows_of_the_full_one() {
        let heads = Heads { heads: 4, kv_heads: 2, head_dim: 8 };
        let (lengths, t) = ([6usize, 2, 4], 6);
        let (_, _, rotary) = tables(t, heads.head_dim);
        let qkv = Var::from_tensor(&random(&[lengths.len() * t, heads.qkv_width()], 4)).unwrap();
        let last_rows: Vec<u32> = lengths.iter().enumerate().map(|(b, &n)| (b * t + n - 1) as u32).collect();
        let last_rows = Tensor::new(last_rows, &Device::Cpu).unwrap();
        let full = causal_self_attention(qkv.as_tensor(), heads, &lengths, &rotary).unwrap();
        let full = full.index_select(&last_rows, 0).unwrap();
        let last = last_token_attention(qkv.as_tensor(), heads, &lengths, &rotary).unwrap();
        assert!(max_abs_diff(&full, &last) < 1e-6);

        let weights = random(&[lengths.len(), heads.out_width()], 5);
        let grad = |y: &Tensor| {
            let loss = (y * &weights).unwrap().sum_all().unwrap();
            loss.backward().unwrap().get(qkv.as_tensor()).unwrap().clone()
        };
        assert!(max_abs_diff(&grad(&full), &grad(&last)) < 1e-5);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let heads = Heads { heads: 4, kv_heads: 2, head_dim: 8 };
        let (_, _, rotary) = tables(4, 8);
        let wrong_width = random(&[8, 40], 3);
        assert!(causal_self_attention(&wrong_width, heads, &[4, 4], &rotary).is_err());
        let too_long = random(&[10, heads.qkv_width()], 3);
        assert!(causal_self_attention(&too_long, heads, &[5, 5], &rotary).is_err());
    }
}
