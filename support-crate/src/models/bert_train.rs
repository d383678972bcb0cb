//! A BERT encoder that trains: the same architecture and weight names as
//! [`super::bert::Bert`], written with candle's differentiable ops plus three
//! fused ops with backward passes of their own (`train_ops`: softmax, layer
//! norm, GELU), because the fast encoder's fused attention, GELU and layer
//! norm have no backward pass.
//! Trained weights go back to the fast encoder for prediction
//! ([`TrainableBert::to_fast`]); `tests` check the two agree and that the
//! gradients match finite differences.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

use super::bert::Bert;
use super::train_ops;
use crate::kernels::Precision;

/// A dense layer `x Wᵀ + b` on `(rows, in)` inputs.
struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.as_tensor().t()?)?.broadcast_add(self.bias.as_tensor())
    }
}

struct LayerNorm {
    weight: Var,
    bias: Var,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        train_ops::layer_norm(x, self.weight.as_tensor(), self.bias.as_tensor(), self.eps)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder's weights as trainable variables, by their safetensors names.
pub struct TrainableBert {
    config: Config,
    words: Var,
    positions: Var,
    token_type: Var,
    norm: LayerNorm,
    layers: Vec<Layer>,
    /// Every variable, by name (without a `bert.` prefix).
    vars: Vec<(String, Var)>,
}

impl TrainableBert {
    /// Copies the weights `vb` holds (a safetensors file or a map) into variables.
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let mut vars = Vec::new();
        let mut var = |name: String, shape: &[usize]| -> Result<Var> {
            let v = Var::from_tensor(&vb.get(shape, &name)?)?;
            vars.push((name, v.clone()));
            Ok(v)
        };
        let h = c.hidden_size;
        let mut linear = |prefix: String, i: usize, o: usize| -> Result<Linear> {
            Ok(Linear { weight: var(format!("{prefix}.weight"), &[o, i])?, bias: var(format!("{prefix}.bias"), &[o])? })
        };
        // Linear layers first (the closure borrows `var`); norms and embeddings after.
        let mut linears = Vec::new();
        for i in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            linears.push([
                linear(format!("{p}.attention.self.query"), h, h)?,
                linear(format!("{p}.attention.self.key"), h, h)?,
                linear(format!("{p}.attention.self.value"), h, h)?,
                linear(format!("{p}.attention.output.dense"), h, h)?,
                linear(format!("{p}.intermediate.dense"), h, c.intermediate_size)?,
                linear(format!("{p}.output.dense"), c.intermediate_size, h)?,
            ]);
        }
        let eps = c.layer_norm_eps;
        let mut norm = |prefix: String| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: var(format!("{prefix}.weight"), &[h])?,
                bias: var(format!("{prefix}.bias"), &[h])?,
                eps,
            })
        };
        let mut norms = Vec::new();
        for i in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            norms.push((norm(format!("{p}.attention.output.LayerNorm"))?, norm(format!("{p}.output.LayerNorm"))?));
        }
        let embedding_norm = norm("embeddings.LayerNorm".into())?;
        let words = var("embeddings.word_embeddings.weight".into(), &[c.vocab_size, h])?;
        let positions = var("embeddings.position_embeddings.weight".into(), &[c.max_position_embeddings, h])?;
        let token_type = var("embeddings.token_type_embeddings.weight".into(), &[c.type_vocab_size, h])?;
        let layers =
            linears
                .into_iter()
                .zip(norms)
                .map(|([query, key, value, attention_out, intermediate, output], (attention_norm, output_norm))| {
                    Layer { query, key, value, attention_out, attention_norm, intermediate, output, output_norm }
                })
                .collect();
        Ok(TrainableBert { config: c.clone(), words, positions, token_type, norm: embedding_norm, layers, vars })
    }

    /// Every weight by name, to train (the optimiser) or save.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// The weights as plain tensors, by name.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars.iter().map(|(name, var)| (name.clone(), var.as_tensor().detach())).collect()
    }

    /// The fast inference encoder on the current weights.
    pub fn to_fast(&self, precision: Precision) -> Result<Bert> {
        let vb = VarBuilder::from_tensors(self.tensors(), DType::F32, &Device::Cpu);
        Bert::load(vb, &self.config, precision)
    }

    /// `ids` and `mask` are `(batch, len)` u32; returns `(batch, len, hidden)`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        self.forward_with(ids, mask, None)
    }

    /// [`Self::forward`] with BERT's training-time dropout when `dropout` is
    /// given: on the embeddings, the attention weights and each sublayer's
    /// output, as `BertModel` in train mode (seeded masks).
    pub fn forward_with(&self, ids: &Tensor, mask: &Tensor, mut dropout: Option<&mut Dropout>) -> Result<Tensor> {
        let mut drop = |t: Tensor| -> Result<Tensor> {
            match dropout.as_deref_mut() {
                Some(d) => d.apply(&t),
                None => Ok(t),
            }
        };
        let (b, l) = ids.dims2()?;
        let (h, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        let d = h / heads;
        let words = self.words.as_tensor().index_select(&ids.flatten_all()?, 0)?;
        let x = words
            .broadcast_add(&self.positions.as_tensor().narrow(0, 0, l)?.repeat((b, 1))?)?
            .broadcast_add(&self.token_type.as_tensor().narrow(0, 0, 1)?)?;
        // Rows are tokens: (batch·len, hidden) throughout, so every dense layer is one matmul.
        let mut x = drop(self.norm.forward(&x)?)?;
        // 0 where attended, a large negative number at padding: (batch, 1, 1, len).
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, l))?;
        let scale = 1.0 / (d as f64).sqrt();
        let heads_of = |t: Tensor| -> Result<Tensor> { t.reshape((b, l, heads, d))?.transpose(1, 2)?.contiguous() };
        for layer in &self.layers {
            let q = (heads_of(layer.query.forward(&x)?)? * scale)?;
            let k = heads_of(layer.key.forward(&x)?)?;
            let v = heads_of(layer.value.forward(&x)?)?;
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?;
            let probs = drop(train_ops::softmax_last_dim(&scores)?)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b * l, h))?;
            let attended = layer.attention_norm.forward(&(drop(layer.attention_out.forward(&context)?)? + &x)?)?;
            let inner = train_ops::gelu_erf(&layer.intermediate.forward(&attended)?)?;
            x = layer.output_norm.forward(&(drop(layer.output.forward(&inner)?)? + attended)?)?;
        }
        x.reshape((b, l, h))
    }

    /// Attention-masked mean pooling and L2 normalisation (sentence-transformers'
    /// `Pooling(mean)` + `Normalize`): `(batch, hidden)`.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor, dropout: Option<&mut Dropout>) -> Result<Tensor> {
        mean_pool_normalised(&self.forward_with(ids, mask, dropout)?, mask)
    }

    /// The dropout rate the model was trained with (BERT's `hidden_dropout_prob`).
    pub fn dropout_rate(&self) -> f64 {
        self.config.hidden_dropout_prob
    }
}

/// Inverted dropout with masks from a seeded RNG (candle's CPU RNG cannot
/// be seeded): each element zeroed with probability `rate`, the rest scaled
/// by `1 / (1 − rate)`.
pub struct Dropout {
    rate: f32,
    rng: rand_chacha::ChaCha8Rng,
}

impl Dropout {
    pub fn new(rate: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Dropout { rate: rate as f32, rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed) }
    }

    fn apply(&mut self, t: &Tensor) -> Result<Tensor> {
        use rand::Rng;
        if self.rate <= 0.0 {
            return Ok(t.clone());
        }
        let keep = 1.0 / (1.0 - self.rate);
        let mask: Vec<f32> =
            (0..t.elem_count()).map(|_| if self.rng.random::<f32>() < self.rate { 0.0 } else { keep }).collect();
        t.mul(&Tensor::from_vec(mask, t.shape(), t.device())?)
    }
}

/// Mean of the attended tokens' states, L2-normalised: `(batch, hidden)`.
pub fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
    mean.broadcast_div(&norm)
}

/// A tiny BERT config for tests: `layers` layers, hidden 16, 2 heads.
pub fn tiny_config(vocab: usize, layers: usize) -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": vocab,
        "hidden_size": 16,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "model_type": "bert"
    }))
    .expect("a valid BERT config")
}

/// Random weights for a [`tiny_config`]-style model, from a seeded RNG
/// (candle's CPU RNG cannot be seeded): for tests.
pub fn random_weights(c: &Config, seed: u64) -> Result<HashMap<String, Tensor>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tensor = |shape: &[usize], around: f32, spread: f32| -> Result<Tensor> {
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| around + spread * (rng.random::<f32>() * 2.0 - 1.0)).collect();
        Tensor::from_vec(data, shape, &Device::Cpu)
    };
    let (h, m) = (c.hidden_size, c.intermediate_size);
    // (name, shape, centre, spread) of every weight.
    let mut specs: Vec<(String, Vec<usize>, f32, f32)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![c.vocab_size, h], 0.0, 1.0),
        ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, h], 0.0, 0.5),
        ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, h], 0.0, 0.5),
    ];
    let norm = |p: &str| [(format!("{p}.weight"), vec![h], 1.0, 0.2), (format!("{p}.bias"), vec![h], 0.0, 0.2)];
    specs.extend(norm("embeddings.LayerNorm"));
    for i in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        for (name, inputs, outputs) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", h, m),
            ("output.dense", m, h),
        ] {
            specs.push((format!("{p}.{name}.weight"), vec![outputs, inputs], 0.0, (3.0 / inputs as f32).sqrt()));
            specs.push((format!("{p}.{name}.bias"), vec![outputs], 0.0, 0.1));
        }
        specs.extend(norm(&format!("{p}.attention.output.LayerNorm")));
        specs.extend(norm(&format!("{p}.output.LayerNorm")));
    }
    let mut w = HashMap::new();
    for (name, shape, around, spread) in specs {
        w.insert(name, tensor(&shape, around, spread)?);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Result<(Tensor, Tensor)> {
        let ids = Tensor::new(&[[2u32, 7, 9, 4, 3], [2, 11, 3, 0, 0]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu)?;
        Ok((ids, mask))
    }

    fn model(seed: u64) -> Result<TrainableBert> {
        let c = tiny_config(13, 2);
        TrainableBert::load(VarBuilder::from_tensors(random_weights(&c, seed)?, DType::F32, &Device::Cpu), &c)
    }

    #[test]
    fn trains_the_same_function_the_fast_encoder_computes() -> Result<()> {
        let bert = model(1)?;
        let (ids, mask) = batch()?;
        let slow = bert.forward(&ids, &mask)?;
        let fast = bert.to_fast(Precision::F32)?.forward(&ids, &mask)?;
        // Padded positions differ (nothing reads them); compare the real tokens.
        let real = |t: &Tensor| -> Result<Vec<f32>> {
            Ok([t.get(0)?.flatten_all()?.to_vec1::<f32>()?, t.get(1)?.narrow(0, 0, 3)?.flatten_all()?.to_vec1()?]
                .concat())
        };
        let (a, b) = (real(&slow)?, real(&fast)?);
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "largest difference {diff}");
        Ok(())
    }

    #[test]
    fn dropout_is_seeded_and_keeps_the_expected_value() -> Result<()> {
        let bert = model(4)?;
        let (ids, mask) = batch()?;
        let run = |seed| bert.forward_with(&ids, &mask, Some(&mut Dropout::new(0.3, seed)));
        let plain = bert.forward(&ids, &mask)?;
        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> { (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar() };
        assert_eq!(max_diff(&run(1)?, &run(1)?)?, 0.0, "the same seed, the same masks");
        assert!(max_diff(&run(1)?, &run(2)?)? > 1e-3, "another seed, other masks");
        assert!(max_diff(&run(1)?, &plain)? > 1e-3, "dropout changes the output");
        let ones = Tensor::ones((200, 100), DType::F32, &Device::Cpu)?;
        let kept = Dropout::new(0.3, 9).apply(&ones)?;
        let mean = kept.mean_all()?.to_scalar::<f32>()?;
        assert!((mean - 1.0).abs() < 0.02, "inverted dropout keeps the mean: {mean}");
        Ok(())
    }

    /// The loss's gradient for every weight against central finite differences
    /// at a few coordinates (f32: relative agreement within a few percent).
    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let bert = model(2)?;
        let (ids, mask) = batch()?;
        let target = Tensor::new(&[0.3f32, -0.2], &Device::Cpu)?;
        let loss = |bert: &TrainableBert| -> Result<Tensor> {
            let e = bert.embed(&ids, &mask, None)?;
            // A smooth scalar of every weight: the pair's cosine and a projection.
            let cos = (e.get(0)? * e.get(1)?)?.sum_all()?;
            let proj = e.narrow(1, 0, 2)?.sum(0)?.mul(&target)?.sum_all()?;
            (cos.sqr()? + proj)?.sum_all()
        };
        let grads = loss(&bert)?.backward()?;
        let mut checked = 0;
        for (name, var) in bert.vars() {
            let grad = grads.get(var).unwrap_or_else(|| panic!("no gradient for {name}"));
            let grad = grad.flatten_all()?.to_vec1::<f32>()?;
            let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            // The largest-gradient coordinate of each weight (word rows of unused ids have none).
            let (at, &analytic) =
                grad.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).expect("non-empty");
            if analytic.abs() < 1e-3 {
                continue;
            }
            let h = 1e-2f32;
            let shifted = |delta: f32| -> Result<f32> {
                let mut v = values.clone();
                v[at] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu)?)?;
                let l = loss(&bert)?.to_scalar::<f32>()?;
                var.set(&Tensor::from_vec(values.clone(), var.shape(), &Device::Cpu)?)?;
                Ok(l)
            };
            let numeric = (shifted(h)? - shifted(-h)?) / (2.0 * h);
            let error = (numeric - analytic).abs() / analytic.abs().max(numeric.abs());
            assert!(error < 0.05, "{name}[{at}]: backward {analytic}, finite difference {numeric}");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} weights had a gradient to check");
        Ok(())
    }
}
