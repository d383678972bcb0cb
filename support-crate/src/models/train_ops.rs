//! The three elementwise-heavy steps of a BERT layer as single ops with
//! backward passes: softmax over the last dimension, layer norm and the erf
//! GELU. candle's own versions either have no backward pass (its fused
//! softmax and layer norm) or build them from 5 to 10 separate tensor ops,
//! each a pass over memory with its own allocation and thread barrier: in a
//! profile of contrastive tuning those passes took about as long as the
//! matmuls. The whole-model gradient check in `bert_train` covers all three.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::kernels::contiguous_f32;
use crate::kernels::math::{exp, lanes};

/// Rows handed to one rayon task in the row-wise ops.
const ROWS_PER_TASK: usize = 64;

fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

/// `softmax(x)` along the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.apply_op1(Softmax)
}

/// `(x − mean) / sqrt(var + eps) · weight + bias` along the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.apply_op3(weight, bias, LayerNorm { eps: eps as f32 })
}

/// GELU with the exact erf form, `x/2 (1 + erf(x/√2))`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.apply_op1(GeluErf)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "train-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), storage, layout)?;
        let n = last_dim(layout);
        let mut out = x.to_vec();
        out.par_chunks_mut(n * ROWS_PER_TASK).for_each(|rows| {
            for row in rows.chunks_mut(n) {
                let max = lanes(row, f32::NEG_INFINITY, f32::max);
                row.iter_mut().for_each(|v| *v = exp(*v - max));
                let inv = 1.0 / lanes(row, 0.0, |a, b| a + b);
                row.iter_mut().for_each(|v| *v *= inv);
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    /// `dx = y ⊙ (g − Σ g⊙y)` per row.
    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?))
    }
}

struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "train-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        let n = last_dim(l1);
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(n * ROWS_PER_TASK)
            .zip(y.par_chunks(n * ROWS_PER_TASK))
            .zip(g.par_chunks(n * ROWS_PER_TASK))
            .for_each(|((out, y), g)| {
                for ((out, y), g) in out.chunks_mut(n).zip(y.chunks(n)).zip(g.chunks(n)) {
                    let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                    out.iter_mut().zip(y.iter().zip(g)).for_each(|(o, (y, g))| *o = y * (g - dot));
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

struct LayerNorm {
    eps: f32,
}

/// A row's mean and 1 / standard deviation.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "train-layer-norm"
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
        let x = contiguous_f32(self.name(), s1, l1)?;
        let (w, b) = (contiguous_f32(self.name(), s2, l2)?, contiguous_f32(self.name(), s3, l3)?);
        let n = last_dim(l1);
        if w.len() != n || b.len() != n {
            candle_core::bail!("train-layer-norm: rows of {n} with {} weights and {} biases", w.len(), b.len())
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n * ROWS_PER_TASK).zip(x.par_chunks(n * ROWS_PER_TASK)).for_each(|(out, x)| {
            for (out, x) in out.chunks_mut(n).zip(x.chunks(n)) {
                let (mean, rstd) = moments(x, self.eps);
                for i in 0..n {
                    out[i] = (x[i] - mean) * rstd * w[i] + b[i];
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = weight.elem_count();
        let rows = x.elem_count() / n.max(1);
        // One op computes all three: [dx (rows·n) | dweight (n) | dbias (n)].
        let packed = x.apply_op3_no_bwd(weight, &grad.contiguous()?, &LayerNormGrad { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows * n)?.reshape(x.shape())?;
        let dweight = packed.narrow(0, rows * n, n)?.reshape(weight.shape())?;
        let dbias = packed.narrow(0, rows * n + n, n)?.reshape(weight.shape())?;
        Ok((Some(dx), Some(dweight), Some(dbias)))
    }
}

struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "train-layer-norm-grad"
    }

    /// Per row, with x̂ the normalised input and ĝ = g ⊙ w:
    /// `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))`, `dw = Σ g ⊙ x̂`, `db = Σ g`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), s1, l1)?;
        let w = contiguous_f32(self.name(), s2, l2)?;
        let g = contiguous_f32(self.name(), s3, l3)?;
        let n = w.len();
        let mut out = vec![0f32; x.len() + 2 * n];
        let (dx, _) = out.split_at_mut(x.len());
        let sums = dx
            .par_chunks_mut(n * ROWS_PER_TASK)
            .zip(x.par_chunks(n * ROWS_PER_TASK))
            .zip(g.par_chunks(n * ROWS_PER_TASK))
            .map(|((dx, x), g)| {
                let mut sums = vec![0f32; 2 * n];
                let mut xhat = vec![0f32; n];
                for ((dx, x), g) in dx.chunks_mut(n).zip(x.chunks(n)).zip(g.chunks(n)) {
                    let (mean, rstd) = moments(x, self.eps);
                    let (mut mean_g, mut mean_gx) = (0f32, 0f32);
                    for i in 0..n {
                        xhat[i] = (x[i] - mean) * rstd;
                        let gw = g[i] * w[i];
                        mean_g += gw;
                        mean_gx += gw * xhat[i];
                        sums[i] += g[i] * xhat[i];
                        sums[n + i] += g[i];
                    }
                    let (mean_g, mean_gx) = (mean_g / n as f32, mean_gx / n as f32);
                    for i in 0..n {
                        dx[i] = rstd * (g[i] * w[i] - mean_g - xhat[i] * mean_gx);
                    }
                }
                sums
            })
            .collect::<Vec<_>>();
        // Added in task order: the same sums whatever the thread count.
        let tail = &mut out[x.len()..];
        for s in sums {
            tail.iter_mut().zip(s).for_each(|(t, s)| *t += s);
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * n)))
    }
}

struct GeluErf;

/// Φ(x), the standard normal distribution function.
fn phi(x: f32) -> f32 {
    0.5 * (1.0 + super::bert::erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "train-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), storage, layout)?;
        let out: Vec<f32> = x.par_iter().with_min_len(4096).map(|&x| x * phi(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    /// `d/dx x Φ(x) = Φ(x) + x φ(x)`.
    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "train-gelu-erf-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        let out: Vec<f32> = x
            .par_iter()
            .zip(g)
            .with_min_len(4096)
            .map(|(&x, &g)| g * (phi(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x)))
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// Each op's value and gradients against candle's composed ops.
    #[test]
    fn the_fused_ops_match_candles_composed_ones() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.5, (6, 10), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 10, &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 10, &dev)?)?;
        let probe = Tensor::randn(0f32, 1.0, (6, 10), &dev)?;
        let close = |a: &Tensor, b: &Tensor, what: &str| -> Result<()> {
            let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "{what}: largest difference {diff}");
            Ok(())
        };
        let plain_norm = |x: &Tensor| -> Result<Tensor> {
            let mean = x.mean_keepdim(D::Minus1)?;
            let c = x.broadcast_sub(&mean)?;
            let var = c.sqr()?.mean_keepdim(D::Minus1)?;
            c.broadcast_div(&(var + 1e-5)?.sqrt()?)?.broadcast_mul(w.as_tensor())?.broadcast_add(b.as_tensor())
        };
        type Op<'a> = Box<dyn Fn(&Tensor) -> Result<Tensor> + 'a>;
        let cases: Vec<(&str, Op, Op)> = vec![
            ("softmax", Box::new(softmax_last_dim), Box::new(|x| candle_nn::ops::softmax(x, D::Minus1))),
            ("layer norm", Box::new(|x| layer_norm(x, w.as_tensor(), b.as_tensor(), 1e-5)), Box::new(plain_norm)),
            ("gelu", Box::new(gelu_erf), Box::new(|x| x.gelu_erf())),
        ];
        for (what, fused, plain) in cases {
            let (yf, yp) = (fused(x.as_tensor())?, plain(x.as_tensor())?);
            close(&yf, &yp, what)?;
            let gf = (yf * &probe)?.sum_all()?.backward()?;
            let gp = (yp * &probe)?.sum_all()?.backward()?;
            for (name, var) in [("x", &x), ("weight", &w), ("bias", &b)] {
                match (gf.get(var), gp.get(var)) {
                    (Some(f), Some(p)) => close(f, p, &format!("{what}: gradient of {name}"))?,
                    (None, None) => {}
                    _ => panic!("{what}: the gradient of {name} is missing on one side"),
                }
            }
        }
        Ok(())
    }
}
