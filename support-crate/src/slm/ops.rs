//! Fused CPU kernels with a backward pass for the trained layers: RMSNorm,
//! the half-split rotary embedding and the last-dimension softmax.
//!
//! Written with plain tensor ops, each of these is 5-10 ops forward and more
//! backward, every one a pass over memory and a fresh allocation; candle's
//! own fused kernels have no backward. Each op here is one pass forward and
//! one or two backward. `model.rs`'s finite-difference test checks the
//! gradients through the whole model; the tests below check each op against
//! its plain-op definition.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The contiguous f32 data of a storage (the callers make their inputs contiguous).
fn data<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(all) = s else { candle_core::bail!("fused ops take f32 tensors") };
    let (start, end) =
        l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("fused ops need contiguous input".into()))?;
    Ok(&all[start..end])
}

/// Rows per parallel task: enough work per task to amortise rayon's overhead.
fn rows_per_task(row_len: usize) -> usize {
    (16_384 / row_len.max(1)).max(1)
}

/// Softmax over the last dimension (−∞ entries get probability 0).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = data(s, l)?;
        let d = l.dims().last().copied().unwrap_or(1);
        let mut out = vec![0f32; x.len()];
        let chunk = d * rows_per_task(d);
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out, x)| {
            for (o, x) in out.chunks_mut(d).zip(x.chunks(d)) {
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0.0;
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = (v - max).exp();
                    sum += *o;
                }
                let inv = 1.0 / sum;
                o.iter_mut().for_each(|o| *o *= inv);
            }
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward)?))
    }
}

/// dx = y ⊙ (g − ⟨g, y⟩) per row.
struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-last-dim-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (data(s1, l1)?, data(s2, l2)?);
        let d = l1.dims().last().copied().unwrap_or(1);
        let mut out = vec![0f32; y.len()];
        let chunk = d * rows_per_task(d);
        out.par_chunks_mut(chunk).zip(y.par_chunks(chunk).zip(g.par_chunks(chunk))).for_each(|(out, (y, g))| {
            for (o, (y, g)) in out.chunks_mut(d).zip(y.chunks(d).zip(g.chunks(d))) {
                let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                for ((o, y), g) in o.iter_mut().zip(y).zip(g) {
                    *o = y * (g - dot);
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

struct RmsNorm {
    eps: f32,
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    1.0 / (mean + eps).sqrt()
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s1, l1)?, data(s2, l2)?);
        let h = w.len();
        if l1.dims().last() != Some(&h) {
            candle_core::bail!("rms_norm: weight of {h} for rows of {:?}", l1.dims());
        }
        let mut out = vec![0f32; x.len()];
        let chunk = h * rows_per_task(h);
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out, x)| {
            for (o, x) in out.chunks_mut(h).zip(x.chunks(h)) {
                let inv = inv_rms(x, self.eps);
                for ((o, x), w) in o.iter_mut().zip(x).zip(w) {
                    *o = x * inv * w;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &grad, &RmsNormBackwardX { eps: self.eps })?;
        let dw = x.apply_op2_no_bwd(&grad, &RmsNormBackwardW { eps: self.eps })?;
        Ok((Some(dx), Some(dw)))
    }
}

/// dx_j = inv·g_j·w_j − x_j·inv³·⟨g⊙w, x⟩ / h per row.
struct RmsNormBackwardX {
    eps: f32,
}

impl CustomOp3 for RmsNormBackwardX {
    fn name(&self) -> &'static str {
        "rms-norm-backward-x"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (data(s1, l1)?, data(s2, l2)?, data(s3, l3)?);
        let h = w.len();
        let mut out = vec![0f32; x.len()];
        let chunk = h * rows_per_task(h);
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk).zip(g.par_chunks(chunk))).for_each(|(out, (x, g))| {
            for (o, (x, g)) in out.chunks_mut(h).zip(x.chunks(h).zip(g.chunks(h))) {
                let inv = inv_rms(x, self.eps);
                let dot: f32 = x.iter().zip(g).zip(w).map(|((x, g), w)| x * g * w).sum();
                let k = inv * inv * inv * dot / h as f32;
                for (((o, x), g), w) in o.iter_mut().zip(x).zip(g).zip(w) {
                    *o = inv * g * w - x * k;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// dw_i = Σ_rows g_i·x_i·inv.
struct RmsNormBackwardW {
    eps: f32,
}

impl CustomOp2 for RmsNormBackwardW {
    fn name(&self) -> &'static str {
        "rms-norm-backward-w"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (data(s1, l1)?, data(s2, l2)?);
        let h = l1.dims().last().copied().unwrap_or(1);
        let chunk = h * rows_per_task(h);
        let dw = x
            .par_chunks(chunk)
            .zip(g.par_chunks(chunk))
            .map(|(x, g)| {
                let mut acc = vec![0f32; h];
                for (x, g) in x.chunks(h).zip(g.chunks(h)) {
                    let inv = inv_rms(x, self.eps);
                    for ((a, x), g) in acc.iter_mut().zip(x).zip(g) {
                        *a += g * x * inv;
                    }
                }
                acc
            })
            .reduce(
                || vec![0f32; h],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        Ok((CpuStorage::F32(dw), Shape::from(h)))
    }
}

/// Half-split rotary embedding of `x` `[b, heads, t, d]` with tables `cos`,
/// `sin` `[t, d/2]`: `(x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin)`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope)
}

struct Rope;

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, cos, sin) = (data(s1, l1)?, data(s2, l2)?, data(s3, l3)?);
        let &[_, _, t, d] = l1.dims() else { candle_core::bail!("rope: x must be [b, heads, t, d]") };
        if l2.dims() != [t, d / 2] || l3.dims() != [t, d / 2] {
            candle_core::bail!("rope: tables {:?} / {:?} for x {:?}", l2.dims(), l3.dims(), l1.dims());
        }
        let half = d / 2;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(t * d).zip(x.par_chunks(t * d)).for_each(|(out, x)| {
            for (pos, (o, x)) in out.chunks_mut(d).zip(x.chunks(d)).enumerate() {
                let (c, s) = (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
                let (x1, x2) = x.split_at(half);
                let (o1, o2) = o.split_at_mut(half);
                for i in 0..half {
                    o1[i] = x1[i] * c[i] - x2[i] * s[i];
                    o2[i] = x2[i] * c[i] + x1[i] * s[i];
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// A rotation's transpose is the rotation by the opposite angle.
    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, &sin.neg()?, &Rope)?;
        Ok((Some(dx), None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    fn random(shape: &[usize], seed: u64) -> Tensor {
        crate::slm::model::seeded_normal(shape, 1.0, seed, &Device::Cpu).unwrap()
    }

    /// Value and gradient of `fused` equal those of `plain` for a random
    /// upstream gradient (a weighted sum as the loss).
    fn check(shape: &[usize], fused: impl Fn(&Tensor) -> Result<Tensor>, plain: impl Fn(&Tensor) -> Result<Tensor>) {
        let x = Var::from_tensor(&random(shape, 1)).unwrap();
        let weights = random(shape, 2);
        let (a, b) = (fused(x.as_tensor()).unwrap(), plain(x.as_tensor()).unwrap());
        assert!(max_abs_diff(&a, &b) < 1e-5, "values differ by {}", max_abs_diff(&a, &b));
        let ga = (a * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (ga.get(&x).unwrap(), gb.get(&x).unwrap());
        assert!(max_abs_diff(ga, gb) < 1e-4, "gradients differ by {}", max_abs_diff(ga, gb));
    }

    #[test]
    fn softmax_matches_plain_ops_with_a_mask() {
        let mask = crate::slm::model::attention_mask(&[5, 3], 5, &Device::Cpu).unwrap();
        check(
            &[2, 3, 5, 5],
            |x| softmax_last_dim(&x.broadcast_add(&mask)?),
            |x| candle_nn::ops::softmax(&x.broadcast_add(&mask)?, D::Minus1),
        );
    }

    #[test]
    fn rms_norm_matches_plain_ops_for_input_and_weight() {
        let w = Var::from_tensor(&(random(&[16], 3) + 1.0).unwrap()).unwrap();
        check(
            &[2, 4, 16],
            |x| rms_norm(x, w.as_tensor(), 1e-5),
            |x| crate::slm::model::rms_norm(x, w.as_tensor(), 1e-5),
        );
        // The weight's gradient.
        let x = random(&[2, 4, 16], 4);
        let up = random(&[2, 4, 16], 5);
        let ga = (rms_norm(&x, w.as_tensor(), 1e-5).unwrap() * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (crate::slm::model::rms_norm(&x, w.as_tensor(), 1e-5).unwrap() * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(max_abs_diff(ga.get(&w).unwrap(), gb.get(&w).unwrap()) < 1e-4);
    }

    #[test]
    fn rope_matches_plain_ops() {
        let (t, d) = (6, 8);
        let angles = random(&[t, d / 2], 6);
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let full = |h: &Tensor| Tensor::cat(&[h, h], 1).unwrap();
        let (cos_full, sin_full) = (full(&cos), full(&sin));
        let plain = |x: &Tensor| {
            let (x1, x2) = (x.narrow(D::Minus1, 0, d / 2)?, x.narrow(D::Minus1, d / 2, d / 2)?);
            let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
            x.broadcast_mul(&cos_full)? + rotated.broadcast_mul(&sin_full)?
        };
        check(&[2, 3, t, d], |x| rope(x, &cos, &sin), plain);
        // And candle's own (inference) kernel agrees on the values.
        let x = random(&[2, 3, t, d], 7);
        let reference = candle_nn::rotary_emb::rope(&x, &cos, &sin).unwrap();
        assert!(max_abs_diff(&rope(&x, &cos, &sin).unwrap(), &reference) < 1e-5);
    }
}
