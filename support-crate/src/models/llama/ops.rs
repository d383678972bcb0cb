//! CPU kernels with a backward pass for the trained layers: RMSNorm, SwiGLU
//! and the linear layer (attention has its own module, `attention`).
//!
//! Written with plain tensor ops, each of these is 5-10 ops forward and more
//! backward, every one a pass over memory and a fresh allocation; candle's
//! own fused kernels have no backward. Each op here is one pass forward and
//! one or two backward. `model.rs`'s finite-difference test checks the
//! gradients through the whole model; the tests below check each op against
//! its plain-op definition.

use crate::kernels::contiguous_f32;
use crate::kernels::gemm::{product, View};
use crate::kernels::math::exp;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows per parallel task: enough work per task to amortise rayon's overhead.
fn rows_per_task(row_len: usize) -> usize {
    (16_384 / row_len.max(1)).max(1)
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
        let (x, w) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
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
        let dx =
            if x.track_op() { Some(x.apply_op3_no_bwd(w, &grad, &RmsNormBackwardX { eps: self.eps })?) } else { None };
        let dw =
            if w.track_op() { Some(x.apply_op2_no_bwd(&grad, &RmsNormBackwardW { eps: self.eps })?) } else { None };
        Ok((dx, dw))
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
        let (x, w, g) = (
            contiguous_f32(self.name(), s1, l1)?,
            contiguous_f32(self.name(), s2, l2)?,
            contiguous_f32(self.name(), s3, l3)?,
        );
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
        let (x, g) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
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

/// `x · wᵀ` for `x` `[n, in]` and `w` `[out, in]` (the Hugging Face layout).
/// As `x.matmul(&w.t())` forward; backward computes `dw = gᵀ·x` directly in
/// `w`'s layout, where candle's matmul backward computes `xᵀ·g` and then
/// accumulates its transpose with a strided pass (measured 87-143 GFLOP/s
/// against 144-169 for the direct product on the fine-tune's shapes:
/// `cargo run --release --example matmul_layouts`).
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        let (&[n, k], &[m, k2]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!("linear: x {:?} and w {:?} must be matrices", l1.dims(), l2.dims())
        };
        if k != k2 {
            candle_core::bail!("linear: x {:?} against w {:?}", l1.dims(), l2.dims());
        }
        let out = product(View::new(x, k, 1), View::new(w, k, 1).t(), (n, m, k));
        Ok((CpuStorage::F32(out), Shape::from((n, m))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // No gradient for an input outside the graph (the first trained layer's input).
        let dx = if x.track_op() { Some(grad.matmul(&w.detach())?) } else { None };
        let dw = if w.track_op() { Some(grad.t()?.matmul(&x.detach())?) } else { None };
        Ok((dx, dw))
    }
}

/// SwiGLU on the fused gate/up projection `[n, 2·i]`: `silu(gate) ⊙ up`, `[n, i]`.
/// Forward is one pass instead of narrow, SiLU and product; backward
/// returns the gradient of the fused projection directly instead of two
/// zero-padded halves added together.
pub fn swiglu(gate_up: &Tensor) -> Result<Tensor> {
    gate_up.contiguous()?.apply_op1(SwiGlu)
}

struct SwiGlu;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

fn halves(l: &Layout) -> Result<(usize, usize)> {
    match l.dims() {
        &[n, two_i] if two_i % 2 == 0 => Ok((n, two_i / 2)),
        dims => candle_core::bail!("swiglu: expected [n, 2·i], got {dims:?}"),
    }
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), s, l)?;
        let (n, i) = halves(l)?;
        let mut out = vec![0f32; n * i];
        let rows = rows_per_task(2 * i);
        out.par_chunks_mut(i * rows).zip(x.par_chunks(2 * i * rows)).for_each(|(out, x)| {
            for (o, x) in out.chunks_mut(i).zip(x.chunks(2 * i)) {
                let (gate, up) = x.split_at(i);
                for ((o, g), u) in o.iter_mut().zip(gate).zip(up) {
                    *o = g * sigmoid(*g) * u;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, i))))
    }

    fn bwd(&self, gate_up: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(gate_up.apply_op2_no_bwd(&grad.contiguous()?, &SwiGluBackward)?))
    }
}

/// d gate = g·u·σ(x)(1 + x(1 − σ(x))), d up = g·silu(x).
struct SwiGluBackward;

impl CustomOp2 for SwiGluBackward {
    fn name(&self) -> &'static str {
        "swiglu-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        let (_, i) = halves(l1)?;
        let mut out = vec![0f32; x.len()];
        let rows = rows_per_task(2 * i);
        out.par_chunks_mut(2 * i * rows).zip(x.par_chunks(2 * i * rows).zip(g.par_chunks(i * rows))).for_each(
            |(out, (x, g))| {
                for (o, (x, g)) in out.chunks_mut(2 * i).zip(x.chunks(2 * i).zip(g.chunks(i))) {
                    let (gate, up) = x.split_at(i);
                    let (d_gate, d_up) = o.split_at_mut(i);
                    for j in 0..i {
                        let s = sigmoid(gate[j]);
                        d_gate[j] = g[j] * up[j] * s * (1.0 + gate[j] * (1.0 - s));
                        d_up[j] = g[j] * gate[j] * s;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest absolute elementwise difference (the `slm` tests' tolerance measure).
    pub(in crate::models::llama) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// A seeded standard-normal tensor.
    pub(in crate::models::llama) fn random(shape: &[usize], seed: u64) -> Tensor {
        crate::models::llama::model::seeded_normal(shape, 1.0, seed, &Device::Cpu).unwrap()
    }

    /// Value and gradient of `fused` equal those of `plain` for a random
    /// upstream gradient (a weighted sum as the loss).
    fn check(shape: &[usize], fused: impl Fn(&Tensor) -> Result<Tensor>, plain: impl Fn(&Tensor) -> Result<Tensor>) {
        let x = Var::from_tensor(&random(shape, 1)).unwrap();
        let weights = random(fused(x.as_tensor()).unwrap().dims(), 2);
        let (a, b) = (fused(x.as_tensor()).unwrap(), plain(x.as_tensor()).unwrap());
        assert!(max_abs_diff(&a, &b) < 1e-5, "values differ by {}", max_abs_diff(&a, &b));
        let ga = (a * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (ga.get(&x).unwrap(), gb.get(&x).unwrap());
        assert!(max_abs_diff(ga, gb) < 1e-4, "gradients differ by {}", max_abs_diff(ga, gb));
    }

    #[test]
    fn rms_norm_matches_plain_ops_for_input_and_weight() {
        let w = Var::from_tensor(&(random(&[16], 3) + 1.0).unwrap()).unwrap();
        check(
            &[2, 4, 16],
            |x| rms_norm(x, w.as_tensor(), 1e-5),
            |x| crate::models::llama::model::rms_norm(x, w.as_tensor(), 1e-5),
        );
        // The weight's gradient.
        let x = random(&[2, 4, 16], 4);
        let up = random(&[2, 4, 16], 5);
        let ga = (rms_norm(&x, w.as_tensor(), 1e-5).unwrap() * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (crate::models::llama::model::rms_norm(&x, w.as_tensor(), 1e-5).unwrap() * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(max_abs_diff(ga.get(&w).unwrap(), gb.get(&w).unwrap()) < 1e-4);
    }

    #[test]
    fn linear_matches_matmul_for_input_and_weight() {
        let w = Var::from_tensor(&random(&[7, 5], 3)).unwrap();
        check(&[4, 5], |x| linear(x, w.as_tensor()), |x| x.matmul(&w.as_tensor().t()?));
        let (x, up) = (random(&[4, 5], 4), random(&[4, 7], 5));
        let loss = |y: Tensor| (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let ga = loss(linear(&x, w.as_tensor()).unwrap());
        let gb = loss(x.matmul(&w.as_tensor().t().unwrap()).unwrap());
        assert!(max_abs_diff(ga.get(&w).unwrap(), gb.get(&w).unwrap()) < 1e-4);
        // `x` is outside the graph: no gradient is computed for it.
        assert!(ga.get(&x).is_none() && gb.get(&x).is_some());
        assert!(linear(&x, &random(&[7, 4], 6)).is_err());
    }

    #[test]
    fn swiglu_matches_plain_ops() {
        check(&[5, 12], swiglu, |x| x.narrow(1, 0, 6)?.silu()? * x.narrow(1, 6, 6)?);
        assert!(swiglu(&random(&[4, 5], 3)).is_err());
    }
}
