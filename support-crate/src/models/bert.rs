//! A BERT encoder for inference, written for speed on CPU: one fused QKV
//! matmul per layer, the padding mask and softmax in one op, candle's fused
//! layer norm, and an erf-GELU and softmax whose exp is a vectorisable
//! polynomial (|error| < 1.5e-7) instead of libm's scalar calls. Same weights and results as
//! `candle_transformers::models::bert`; `tests/real_embedder.rs` checks the
//! embeddings against sentence-transformers (cosine >= 0.9999).

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Embedding, VarBuilder};
use candle_transformers::models::bert::Config;

use crate::kernels::{contiguous_f32, linear::Dense, Precision};

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// GELU with the exact erf form, `x/2 (1 + erf(x/√2))`.
struct GeluErf;

/// erf by Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7), branch-free.
fn erf(x: f32) -> f32 {
    let (p, a1, a2, a3, a4, a5) =
        (0.327_591_1f32, 0.254_829_6f32, -0.284_496_7f32, 1.421_413_8f32, -1.453_152_1f32, 1.061_405_4f32);
    let ax = x.abs();
    let t = 1.0 / (1.0 + p * ax);
    let y = 1.0 - ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t * exp_non_positive(-ax * ax);
    y.copysign(x)
}

/// `e^x` for `x <= 0` (relative error < 2e-7), inlinable and branch-free
/// so the GELU loop vectorises: libm's `expf` is a call per element, and was
/// 8% of the encoder's time. Cephes' `expf`: `x = n ln 2 + r`, `|r| <= ln 2 / 2`,
/// a degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits.
fn exp_non_positive(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4f32 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65)
        * r
        + 0.5;
    // SAFETY: n is an integer in [-126, 0]: finite, and 127 + n is a normal exponent.
    let two_to_n = f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) as u32) << 23);
    (p * r * r + r + 1.0) * two_to_n
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-fast"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(self.name(), storage, layout)?;
        use rayon::prelude::*;
        let mut out = vec![0f32; data.len()];
        out.par_chunks_mut(4096).zip(data.par_chunks(4096)).for_each(|(o, x)| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `softmax(scores + bias)` over the last dimension, in one pass and with the
/// vectorisable exp: candle's softmax calls libm's `expf` per element (9% of
/// int8 encoder time in `perf`), and adding the padding mask first was one more
/// pass over the scores. `bias` is `(batch, len)`: 0 where attended, a large
/// negative number at padding.
struct MaskedSoftmax<'a> {
    bias: &'a [f32],
    len: usize,
}

impl CustomOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(self.name(), storage, layout)?;
        let (batch, len) = (self.bias.len() / self.len.max(1), self.len);
        let dims = layout.shape().dims();
        if dims.len() != 4 || dims[0] != batch || dims[3] != len {
            candle_core::bail!("masked-softmax: scores {dims:?} do not match a mask of {batch} x {len}")
        }
        let rows_per_batch = dims[1] * dims[2];
        use rayon::prelude::*;
        let mut out = vec![0f32; data.len()];
        out.par_chunks_mut(len).zip(data.par_chunks(len)).enumerate().for_each(|(row, (o, x))| {
            let bias = &self.bias[(row / rows_per_batch) * len..][..len];
            o.iter_mut().zip(x).zip(bias).for_each(|((o, x), b)| *o = x + b);
            let max = lanes(o, f32::NEG_INFINITY, f32::max);
            o.iter_mut().for_each(|o| *o = exp_non_positive(*o - max));
            let inv = 1.0 / lanes(o, 0.0, |a, b| a + b);
            o.iter_mut().for_each(|o| *o *= inv);
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// A reduction in eight independent lanes, so that it vectorises (a single
/// running f32 max or sum is a dependency chain the compiler must keep in order).
#[inline]
fn lanes(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &b| f(a, b));
    for c in chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a = f(*a, b);
        }
    }
    acc.into_iter().fold(tail, f)
}

struct Layer {
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: VarBuilder, c: &Config, precision: Precision) -> Result<Self> {
        let h = c.hidden_size;
        let att = vb.pp("attention");
        let own = att.pp("self");
        let part = |name: &str| -> Result<(Tensor, Tensor)> {
            Ok((own.pp(name).get((h, h), "weight")?, own.pp(name).get(h, "bias")?))
        };
        let (q, k, v) = (part("query")?, part("key")?, part("value")?);
        let qkv =
            Dense::new(Tensor::cat(&[&q.0, &k.0, &v.0], 0)?, Some(Tensor::cat(&[&q.1, &k.1, &v.1], 0)?), precision)?;
        let linear = |vb: VarBuilder, i: usize, o: usize| -> Result<Dense> {
            Dense::new(vb.get((o, i), "weight")?, Some(vb.get(o, "bias")?), precision)
        };
        Ok(Layer {
            qkv,
            attention_out: linear(att.pp("output").pp("dense"), h, h)?,
            attention_norm: LayerNorm::load(att.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: linear(vb.pp("intermediate").pp("dense"), h, c.intermediate_size)?,
            output: linear(vb.pp("output").pp("dense"), c.intermediate_size, h)?,
            output_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &[f32], heads: usize) -> Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        let hd = h / heads;
        let qkv = self.qkv.forward(x)?.reshape((b, l, 3, heads, hd))?.permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)?.contiguous()? * (1.0 / (hd as f64).sqrt()))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let probs = q.matmul(&k.t()?)?.apply_op1_no_bwd(&MaskedSoftmax { bias: mask_bias, len: l })?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))?;
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&x)?.apply_op1_no_bwd(&GeluErf)?;
        self.output_norm.forward(&(self.output.forward(&inner)? + x)?)
    }
}

/// The encoder: token ids and attention mask in, hidden states out.
pub struct Bert {
    words: Embedding,
    positions: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl Bert {
    /// Loads the weights; the four matmuls of every layer run in `precision`
    /// (embeddings, attention scores and norms stay f32).
    pub fn load(vb: VarBuilder, c: &Config, precision: Precision) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let e = vb.pp("embeddings");
        let h = c.hidden_size;
        let words = Embedding::new(e.pp("word_embeddings").get((c.vocab_size, h), "weight")?, h);
        let positions = e.pp("position_embeddings").get((c.max_position_embeddings, h), "weight")?;
        let token_type = e.pp("token_type_embeddings").get((c.type_vocab_size, h), "weight")?.get(0)?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), c, precision))
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            words,
            positions,
            token_type,
            norm: LayerNorm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
        })
    }

    /// `ids` and `mask` are `(batch, len)` u32; returns `(batch, len, hidden)`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, l) = ids.dims2()?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.narrow(0, 0, l)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.norm.forward(&x)?;
        // 0 where attended, a large negative number at padding: (batch, len).
        let mask_bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.flatten_all()?.to_vec1::<f32>()?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias, self.heads)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_where_gelu_uses_it() {
        for i in 0..=2000 {
            let x = -(i as f32) * 0.05;
            let (got, want) = (exp_non_positive(x), (x as f64).exp());
            assert!(
                ((got as f64 - want) / want.max(1e-30)).abs() < 2e-7 || want < 1e-37,
                "exp({x}) = {got}, not {want}"
            );
        }
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert!(exp_non_positive(-1e4) < 1e-37);
    }

    #[test]
    fn masked_softmax_matches_adding_the_mask_then_candles_softmax() -> Result<()> {
        let (batch, heads, len) = (2, 3, 5);
        let device = candle_core::Device::Cpu;
        let scores = (Tensor::randn(0f32, 4.0, (batch, heads, len, len), &device)?
            + Tensor::arange(0f32, len as f32, &device)?.broadcast_as((batch, heads, len, len))?)?;
        // The second text is two tokens shorter: its last two keys are padding.
        let mask = Tensor::new(&[[1f32, 1., 1., 1., 1.], [1., 1., 1., 0., 0.]], &device)?;
        let bias = ((mask - 1.0)? * 1e9)?;
        let want = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&bias.unsqueeze(1)?.unsqueeze(1)?)?)?;
        let bias = bias.flatten_all()?.to_vec1::<f32>()?;
        let got = scores.apply_op1_no_bwd(&MaskedSoftmax { bias: &bias, len })?;
        let diff = (&got - &want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "largest difference {diff}");
        let padded = got.narrow(0, 1, 1)?.narrow(3, 3, 2)?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(padded < 1e-30, "padding keeps weight {padded}");
        let wrong = MaskedSoftmax { bias: &bias[..len], len };
        assert!(scores.apply_op1_no_bwd(&wrong).is_err(), "a mask of the wrong batch is an error");
        Ok(())
    }

    #[test]
    fn fast_erf_is_accurate() {
        // Reference values of erf.
        for (x, want) in
            [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.5, 0.999_999_3)]
        {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {} not {want}", erf(x));
        }
    }
}
