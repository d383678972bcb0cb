//! A small Llama that can be trained with candle's autograd, with a
//! sequence-classification head read at the last real token of each row
//! (as `transformers`' `LlamaForSequenceClassification`).
//!
//! candle-transformers' Llama is inference-only: its fused RMSNorm, softmax
//! and rotary kernels have no backward, so gradients would silently go
//! missing. Every op of the training path here has a backward (fused ones in
//! `attention` and `ops`); `tests` check the gradients by finite differences
//! and the logits against candle-transformers' Llama.
//!
//! Weights use the Hugging Face layout and names (`model.layers.{i}...`,
//! rotary embedding in the half-split form); Q/K/V and gate/up projections
//! are fused into one matrix each at construction, for fewer, larger matmuls.
//! For inference the matrices may instead stay in their GGUF quantised
//! blocks ([`Matrix::Quantized`]): a model whose f32 copy would not fit in
//! memory still runs, with the f32 model's numbers.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use super::attention::{causal_self_attention, last_token_attention, Heads, RotaryRows};
use super::ops::swiglu;
use super::tree_attention::{packed_attention, KeyValues, Packing};
use crate::kernels::linear::Int8Linear;
use crate::kernels::Precision;

/// The architecture, as in a Hugging Face `config.json` (field names match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

fn default_max_positions() -> usize {
    2048
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// A few-layer random model for tests.
    pub fn tiny() -> Self {
        LlamaConfig {
            vocab_size: 64,
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 64,
            tie_word_embeddings: true,
        }
    }

    /// Names and shapes of every weight, Hugging Face layout.
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i, kv) = (self.hidden_size, self.intermediate_size, self.num_key_value_heads * self.head_dim());
        let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab_size, h])];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            shapes.extend([
                (format!("{p}.input_layernorm.weight"), vec![h]),
                (format!("{p}.self_attn.q_proj.weight"), vec![h, h]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.o_proj.weight"), vec![h, h]),
                (format!("{p}.post_attention_layernorm.weight"), vec![h]),
                (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            ]);
        }
        shapes.push(("model.norm.weight".to_string(), vec![h]));
        shapes
    }
}

/// A weight that is either trained (a `Var`) or frozen (a plain tensor,
/// which autograd does not track).
#[derive(Clone)]
pub struct Param {
    pub name: String,
    pub tensor: Tensor,
    var: Option<Var>,
}

impl Param {
    fn new(name: String, tensor: Tensor, trainable: bool) -> Result<Self> {
        if trainable {
            let var = Var::from_tensor(&tensor)?;
            Ok(Param { name, tensor: var.as_tensor().clone(), var: Some(var) })
        } else {
            Ok(Param { name, tensor: tensor.detach(), var: None })
        }
    }

    pub fn var(&self) -> Option<&Var> {
        self.var.as_ref()
    }
}

/// A weight matrix `[out, in]`, applied as `x · wᵀ`: f32 (trained or
/// frozen), or still in its GGUF blocks (inference only). A quantised matrix
/// fused from several (Q, K and V may be quantised differently) keeps its
/// parts and concatenates their outputs.
///
/// A quantised matrix applied to many rows (a prompt, a pack of items) is
/// dequantised a slice of rows at a time (at most [`DEQUANTIZED_FLOATS`])
/// into a temporary f32 matrix for the f32 matmul: the same numbers as the
/// f32 model, at the cost of dequantising once per pass, in a fraction of
/// the memory. To a few rows (decoding a token) candle's `QMatMul` applies
/// it directly with integer dot products, which quantise the activations
/// too. Applied to every matmul, that changed 6 of 200 zero-shot labels of
/// SmolLM2's Q4_1 file and answered 0.6 items/s against the f32 model's 4.0
/// (2-core Intel Xeon, both runs sharing the cores alike); dequantised
/// slices give the f32 labels at the f32 speed.
#[derive(Clone)]
pub enum Matrix {
    Dense(Param),
    Quantized(Vec<QMatMul>),
    /// Requantised to int8 for fast inference ([`Llama::with_precision`]).
    Int8(Arc<Int8Linear>),
}

/// Largest temporary f32 slice of a quantised matrix (floats): 32 MiB.
pub const DEQUANTIZED_FLOATS: usize = 8 << 20;
/// Rows from which a quantised matrix is dequantised rather than applied by `QMatMul`.
const DEQUANTIZE_FROM_ROWS: usize = 16;

/// `x · wᵀ` for a quantised `w` (see [`Matrix`]).
fn quantized_linear(w: &QMatMul, x: &Tensor) -> Result<Tensor> {
    let QMatMul::QTensor(q) = w else { return w.forward(x) };
    if x.dims().iter().rev().skip(1).product::<usize>() < DEQUANTIZE_FROM_ROWS {
        return w.forward(x);
    }
    let device = x.device();
    let (out, inp) = q.shape().dims2()?;
    let rows_per_slice = (DEQUANTIZED_FLOATS / inp).max(1);
    if rows_per_slice >= out {
        return super::ops::linear(x, &q.dequantize(device)?);
    }
    let dtype = q.dtype();
    let row_bytes = inp / dtype.block_size() * dtype.type_size();
    let data = q.data()?;
    let mut outs = Vec::with_capacity(out.div_ceil(rows_per_slice));
    for start in (0..out).step_by(rows_per_slice) {
        let n = rows_per_slice.min(out - start);
        let bytes = &data[start * row_bytes..(start + n) * row_bytes];
        let slice = candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, bytes, vec![n, inp], device)?;
        outs.push(super::ops::linear(x, &slice.dequantize(device)?)?);
    }
    Tensor::cat(&outs, D::Minus1)
}

impl Matrix {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Matrix::Dense(p) => super::ops::linear(x, &p.tensor),
            Matrix::Quantized(parts) => {
                let x = x.contiguous()?;
                let outs = parts.iter().map(|w| quantized_linear(w, &x)).collect::<Result<Vec<_>>>()?;
                match outs.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Tensor::cat(&outs, D::Minus1),
                }
            }
            Matrix::Int8(op) => op.forward(x),
        }
    }

    /// Rows `ids` (an embedding lookup; a quantised one dequantises only those rows).
    fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Matrix::Dense(p) => p.tensor.embedding(ids),
            Matrix::Quantized(parts) => match parts.as_slice() {
                [w] => w.embedding(ids),
                _ => candle_core::bail!("a fused matrix is not an embedding"),
            },
            Matrix::Int8(op) => op.dequantized_weight(ids.device())?.embedding(ids),
        }
    }

    /// The f32 parameter (`None`: quantised).
    pub fn param(&self) -> Option<&Param> {
        match self {
            Matrix::Dense(p) => Some(p),
            Matrix::Quantized(_) | Matrix::Int8(_) => None,
        }
    }

    fn is_trained(&self) -> bool {
        self.param().is_some_and(|p| p.var.is_some())
    }

    fn detached(&self) -> Matrix {
        match self {
            Matrix::Dense(p) => Matrix::Dense(Param { name: p.name.clone(), tensor: p.tensor.detach(), var: None }),
            Matrix::Quantized(parts) => Matrix::Quantized(parts.clone()),
            Matrix::Int8(op) => Matrix::Int8(op.clone()),
        }
    }

    /// An untrained f32 matrix in int8 (others as they are).
    fn in_precision(&self, precision: Precision) -> Result<Matrix> {
        match (self, precision) {
            (Matrix::Dense(p), Precision::Int8) if p.var.is_none() => {
                Ok(Matrix::Int8(Arc::new(Int8Linear::new(&p.tensor, None)?)))
            }
            _ => Ok(self.clone()),
        }
    }

    /// The matrix in f32 (dequantised if need be).
    fn dense(&self) -> Result<Tensor> {
        match self {
            Matrix::Dense(p) => Ok(p.tensor.clone()),
            Matrix::Quantized(parts) => {
                let parts = parts
                    .iter()
                    .map(|w| match w {
                        QMatMul::QTensor(q) => q.dequantize(&q.device()),
                        QMatMul::Tensor(t) => Ok(t.clone()),
                        QMatMul::TensorF16(t) => t.to_dtype(DType::F32),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)
            }
            Matrix::Int8(op) => op.dequantized_weight(&Device::Cpu),
        }
    }
}

/// Which weights are trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trainable {
    /// Train the token embedding (it is tied to nothing in a classifier).
    pub embedding: bool,
    /// Layers `0..frozen_layers` are frozen; the rest, the final norm and the
    /// head are trained.
    pub frozen_layers: usize,
}

impl Trainable {
    pub const ALL: Trainable = Trainable { embedding: true, frozen_layers: 0 };
    pub const NONE: Trainable = Trainable { embedding: false, frozen_layers: usize::MAX };
}

struct Block {
    attn_norm: Param,
    /// `[q; k; v]` rows stacked: `(heads + 2 kv_heads) * head_dim` × hidden.
    qkv: Matrix,
    o: Matrix,
    mlp_norm: Param,
    /// `[gate; up]` rows stacked: `2 intermediate` × hidden.
    gate_up: Matrix,
    down: Matrix,
}

/// The Llama decoder with a classification head (`score`, no bias) or an
/// LM head (the embedding when tied, else `lm_head`).
pub struct Llama {
    pub config: LlamaConfig,
    embed: Matrix,
    blocks: Vec<Block>,
    norm: Param,
    score: Option<Param>,
    /// The untied LM head (`None`: the embedding, or no LM head needed).
    lm_head: Option<Matrix>,
    /// Rotary angles of every position the model takes.
    rotary: Arc<RotaryRows>,
}

/// Rotary tables `[max_positions, head_dim / 2]`: the angle of each position
/// and frequency (the half-split layout rotates dimension `i` with `i + d/2`).
fn rotary_tables(cfg: &LlamaConfig) -> RotaryRows {
    let d = cfg.head_dim();
    let inv: Vec<f32> = (0..d / 2).map(|i| 1.0 / (cfg.rope_theta as f32).powf(2.0 * i as f32 / d as f32)).collect();
    let angles = (0..cfg.max_position_embeddings).flat_map(|pos| inv.iter().map(move |f| pos as f32 * f));
    RotaryRows { cos: angles.clone().map(f32::cos).collect(), sin: angles.map(f32::sin).collect() }
}

fn linear(x: &Tensor, w: &Param) -> Result<Tensor> {
    super::ops::linear(x, &w.tensor)
}

pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let inv = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

/// Indices of each row's last real token in the flattened `[b·t]` positions.
fn last_rows(lengths: &[usize], t: usize, device: &Device) -> Result<Tensor> {
    let rows: Vec<u32> = lengths.iter().enumerate().map(|(i, &len)| (i * t + len.clamp(1, t) - 1) as u32).collect();
    Tensor::new(rows, device)
}

impl Block {
    /// The layer on right-padded rows of `lengths` real tokens, positions
    /// `0..t`: the fused attention and SwiGLU ops (with backward), RMSNorm
    /// fused too (candle's kernel when frozen, ours with backward when trained).
    ///
    /// `x` is `[b·t, h]`: the residual stream stays two-dimensional, because
    /// every reshape would be one more node whose gradient candle allocates,
    /// zero-fills and adds.
    fn forward(&self, x: &Tensor, lengths: &[usize], rotary: &Arc<RotaryRows>, cfg: &LlamaConfig) -> Result<Tensor> {
        let qkv = self.qkv.forward(&self.norm(x, &self.attn_norm, cfg)?)?;
        let attn = causal_self_attention(&qkv, Self::heads(cfg), lengths, rotary)?;
        let x = (x + self.o.forward(&attn)?)?;
        self.mlp(&x, cfg)
    }

    /// As `forward` for each row's last real token only, `[b, h]`: keys and
    /// values still come from every token, but attention, output projection
    /// and MLP run on `b` rows instead of `b·t`.
    fn forward_last(
        &self,
        x: &Tensor,
        lengths: &[usize],
        rotary: &Arc<RotaryRows>,
        cfg: &LlamaConfig,
    ) -> Result<Tensor> {
        let t = x.dim(0)? / lengths.len().max(1);
        let qkv = self.qkv.forward(&self.norm(x, &self.attn_norm, cfg)?)?;
        let attn = last_token_attention(&qkv, Self::heads(cfg), lengths, rotary)?;
        let x = (x.index_select(&last_rows(lengths, t, x.device())?, 0)? + self.o.forward(&attn)?)?;
        self.mlp(&x, cfg)
    }

    fn heads(cfg: &LlamaConfig) -> Heads {
        Heads { heads: cfg.num_attention_heads, kv_heads: cfg.num_key_value_heads, head_dim: cfg.head_dim() }
    }

    fn norm(&self, x: &Tensor, w: &Param, cfg: &LlamaConfig) -> Result<Tensor> {
        if w.var.is_none() {
            candle_nn::ops::rms_norm(x, &w.tensor, cfg.rms_norm_eps as f32)
        } else {
            super::ops::rms_norm(x, &w.tensor, cfg.rms_norm_eps)
        }
    }

    /// `x + down(swiglu(gate_up(norm(x))))` for `x` `[n, h]`.
    fn mlp(&self, x: &Tensor, cfg: &LlamaConfig) -> Result<Tensor> {
        let act = swiglu(&self.gate_up.forward(&self.norm(x, &self.mlp_norm, cfg)?)?)?;
        x + self.down.forward(&act)?
    }

    /// Inference on a packed pass `[t, h]` after the cached keys and values
    /// of a prefix (`past`): returns the output and this pass's keys and values.
    fn forward_packed(
        &self,
        x: &Tensor,
        packing: &Packing,
        rotary: &RotaryRows,
        cfg: &LlamaConfig,
        past: &KeyValues,
    ) -> Result<(Tensor, KeyValues)> {
        let qkv = self.qkv.forward(&self.norm(x, &self.attn_norm, cfg)?)?;
        let (attn, key_values) = packed_attention(&qkv, Self::heads(cfg), rotary, past, packing)?;
        let x = (x + self.o.forward(&attn)?)?;
        Ok((self.mlp(&x, cfg)?, key_values))
    }
}

/// The keys and values of a prompt prefix in every layer, so that many
/// continuations of it are run without recomputing it.
#[derive(Debug, Clone)]
pub struct PrefixCache {
    layers: Vec<KeyValues>,
    tokens: Vec<u32>,
}

impl PrefixCache {
    /// The prefix's token ids.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

/// Tokens of a packed forward pass that continue the cached prefix and,
/// when `parent` is set, an earlier segment of the same pass (a tree of
/// continuations: e.g. one question and the answers it is scored with).
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub tokens: &'a [u32],
    pub parent: Option<usize>,
}

impl<'a> Segment<'a> {
    pub fn root(tokens: &'a [u32]) -> Self {
        Segment { tokens, parent: None }
    }
}

/// Where each segment starts in the packed sequence.
fn segment_starts(segments: &[Segment]) -> Vec<usize> {
    segments
        .iter()
        .scan(0, |next, s| {
            let start = *next;
            *next += s.tokens.len();
            Some(start)
        })
        .collect()
}

/// `log softmax(logits)[target]`, in f64 for the sum.
fn log_softmax_at(logits: &[f32], target: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    (f64::from(logits[target] - max) - sum.ln()) as f32
}

impl Llama {
    /// Builds the model from Hugging Face-named weights (see
    /// [`LlamaConfig::weight_shapes`]). `num_labels` adds a classification
    /// head, taken from `score.weight` when present, else initialised from a
    /// seeded normal(0, 0.02) as transformers does.
    pub fn new(
        config: LlamaConfig,
        weights: &HashMap<String, Tensor>,
        num_labels: Option<usize>,
        trainable: Trainable,
        seed: u64,
    ) -> Result<Self> {
        Self::from_weights(config, weights.clone(), num_labels, trainable, seed)
    }

    /// As [`Llama::new`], consuming the weights: each unfused matrix is freed
    /// as soon as its fused copy exists, so loading peaks at one copy of the
    /// model plus one layer.
    pub fn from_weights(
        config: LlamaConfig,
        weights: HashMap<String, Tensor>,
        num_labels: Option<usize>,
        trainable: Trainable,
        seed: u64,
    ) -> Result<Self> {
        Self::build(config, weights, HashMap::new(), num_labels, trainable, seed)
    }

    /// An inference model (no classification head) whose matrices in
    /// `quantized` stay in their GGUF blocks; the rest come from `dense`.
    pub fn from_quantized(
        config: LlamaConfig,
        dense: HashMap<String, Tensor>,
        quantized: HashMap<String, QTensor>,
    ) -> Result<Self> {
        Self::build(config, dense, quantized, None, Trainable::NONE, 0)
    }

    fn build(
        config: LlamaConfig,
        mut dense: HashMap<String, Tensor>,
        mut quantized: HashMap<String, QTensor>,
        num_labels: Option<usize>,
        trainable: Trainable,
        seed: u64,
    ) -> Result<Self> {
        for (name, shape) in config.weight_shapes() {
            let dims = match (dense.get(&name), quantized.get(&name)) {
                (Some(t), _) => t.dims().to_vec(),
                (None, Some(q)) => q.shape().dims().to_vec(),
                (None, None) => candle_core::bail!("missing weight {name}"),
            };
            if dims != shape {
                candle_core::bail!("weight {name} has shape {dims:?}, the config expects {shape:?}");
            }
        }
        let device = dense.values().next().map(|t| t.device().clone()).unwrap_or(Device::Cpu);
        let lm_head_name = "lm_head.weight".to_string();
        let has_lm_head = dense.contains_key(&lm_head_name) || quantized.contains_key(&lm_head_name);
        let mut take = |name: &str| -> Result<Tensor> {
            let t = dense.remove(name).ok_or_else(|| candle_core::Error::Msg(format!("missing weight {name}")))?;
            t.to_dtype(DType::F32)
        };
        // A matrix stacked from `parts` (rows), kept quantised when any part is.
        let mut matrix = |take: &mut dyn FnMut(&str) -> Result<Tensor>, name: String, parts: &[String], train: bool| {
            if parts.iter().any(|p| quantized.contains_key(p)) {
                if train {
                    candle_core::bail!("{name} is quantised: quantised weights are for inference only");
                }
                let parts = parts
                    .iter()
                    .map(|p| match quantized.remove(p) {
                        Some(q) => QMatMul::from_qtensor(q),
                        None => Ok(QMatMul::Tensor(take(p)?)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Matrix::Quantized(parts));
            }
            let tensors = parts.iter().map(|p| take(p)).collect::<Result<Vec<_>>>()?;
            let tensor = if tensors.len() == 1 { tensors[0].clone() } else { Tensor::cat(&tensors, 0)? };
            Ok(Matrix::Dense(Param::new(name, tensor, train)?))
        };
        let embed_name = "model.embed_tokens.weight".to_string();
        let embed = matrix(&mut take, embed_name.clone(), &[embed_name], trainable.embedding)?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let train = l >= trainable.frozen_layers;
            let names = |parts: &[&str]| parts.iter().map(|s| format!("{p}.{s}.weight")).collect::<Vec<_>>();
            let qkv = names(&["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]);
            let gate_up = names(&["mlp.gate_proj", "mlp.up_proj"]);
            blocks.push(Block {
                attn_norm: Param::new(
                    format!("{p}.input_layernorm"),
                    take(&format!("{p}.input_layernorm.weight"))?,
                    train,
                )?,
                qkv: matrix(&mut take, format!("{p}.self_attn.qkv_proj"), &qkv, train)?,
                o: matrix(&mut take, format!("{p}.self_attn.o_proj"), &names(&["self_attn.o_proj"]), train)?,
                mlp_norm: Param::new(
                    format!("{p}.post_attention_layernorm"),
                    take(&format!("{p}.post_attention_layernorm.weight"))?,
                    train,
                )?,
                gate_up: matrix(&mut take, format!("{p}.mlp.gate_up_proj"), &gate_up, train)?,
                down: matrix(&mut take, format!("{p}.mlp.down_proj"), &names(&["mlp.down_proj"]), train)?,
            });
        }
        // An untied LM head is only needed without a classification head.
        let lm_head = match (config.tie_word_embeddings || num_labels.is_some(), has_lm_head) {
            (true, _) => None,
            (false, true) => Some(matrix(&mut take, lm_head_name.clone(), &[lm_head_name], false)?),
            (false, false) => candle_core::bail!("the embeddings are not tied and there is no lm_head.weight"),
        };
        let head_trained = trainable != Trainable::NONE;
        let norm = Param::new("model.norm".into(), take("model.norm.weight")?, head_trained)?;
        let score = match num_labels {
            None => None,
            Some(n) => {
                let w = match dense.remove("score.weight") {
                    Some(w) if w.dims() == [n, config.hidden_size] => w.to_dtype(DType::F32)?,
                    Some(w) => candle_core::bail!(
                        "score.weight has shape {:?}, expected [{n}, {}]",
                        w.dims(),
                        config.hidden_size
                    ),
                    None => seeded_normal(&[n, config.hidden_size], 0.02, seed, &device)?,
                };
                Some(Param::new("score".into(), w, head_trained)?)
            }
        };
        let rotary = Arc::new(rotary_tables(&config));
        Ok(Llama { config, embed, blocks, norm, score, lm_head, rotary })
    }

    /// Every weight with its name: fused ones (`qkv_proj`, `gate_up_proj`) as
    /// stored in this model.
    /// f32 weights only: a quantised matrix is no parameter.
    pub fn params(&self) -> Vec<&Param> {
        let mut all: Vec<&Param> = self.embed.param().into_iter().collect();
        for b in &self.blocks {
            all.push(&b.attn_norm);
            all.extend([&b.qkv, &b.o].into_iter().filter_map(Matrix::param));
            all.push(&b.mlp_norm);
            all.extend([&b.gate_up, &b.down].into_iter().filter_map(Matrix::param));
        }
        all.push(&self.norm);
        all.extend(self.score.as_ref());
        all
    }

    /// Whether any matrix stayed in its GGUF blocks.
    pub fn is_quantized(&self) -> bool {
        let gguf = |m: &Matrix| matches!(m, Matrix::Quantized(_));
        gguf(&self.embed) || self.blocks.iter().any(|b| [&b.qkv, &b.o, &b.gate_up, &b.down].into_iter().any(gguf))
    }

    /// The same model with the blocks' matmuls in `precision` (resolved for
    /// this CPU): for inference of a detached model. The embedding, the
    /// norms and the heads stay f32; trained matrices are left alone.
    pub fn with_precision(self, precision: Precision) -> Result<Llama> {
        let precision = precision.resolve();
        if precision == Precision::F32 {
            return Ok(self);
        }
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Ok(Block {
                    attn_norm: b.attn_norm.clone(),
                    qkv: b.qkv.in_precision(precision)?,
                    o: b.o.in_precision(precision)?,
                    mlp_norm: b.mlp_norm.clone(),
                    gate_up: b.gate_up.in_precision(precision)?,
                    down: b.down.in_precision(precision)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Llama { blocks, ..self })
    }

    /// The same weights with nothing tracked by autograd (for inference).
    pub fn detached(&self) -> Result<Llama> {
        let d = |p: &Param| Param { name: p.name.clone(), tensor: p.tensor.detach(), var: None };
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                attn_norm: d(&b.attn_norm),
                qkv: b.qkv.detached(),
                o: b.o.detached(),
                mlp_norm: d(&b.mlp_norm),
                gate_up: b.gate_up.detached(),
                down: b.down.detached(),
            })
            .collect();
        Ok(Llama {
            config: self.config.clone(),
            embed: self.embed.detached(),
            blocks,
            norm: d(&self.norm),
            score: self.score.as_ref().map(d),
            lm_head: self.lm_head.as_ref().map(Matrix::detached),
            rotary: self.rotary.clone(),
        })
    }

    pub fn trainable_params(&self) -> Vec<&Param> {
        self.params().into_iter().filter(|p| p.var.is_some()).collect()
    }

    pub fn num_labels(&self) -> Option<usize> {
        self.score.as_ref().map(|s| s.tensor.dims()[0])
    }

    /// The normalised hidden state of each row's last real token, `[b, h]`.
    /// `ids` is `[b, t]` (u32), right-padded; `lengths` the real lengths.
    pub fn last_token_states(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        if t > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {t} tokens is longer than the model's {}",
                self.config.max_position_embeddings
            );
        }
        let (last, below) =
            self.blocks.split_last().ok_or_else(|| candle_core::Error::Msg("model has no layers".into()))?;
        let rotary = &self.rotary;
        let mut x = self.embed.rows(&ids.flatten_all()?)?;
        for block in below {
            x = block.forward(&x, lengths, rotary, &self.config)?;
            if !block.qkv.is_trained() {
                // Nothing below a frozen block needs a gradient: drop its graph.
                x = x.detach();
            }
        }
        let x = last.forward_last(&x, lengths, rotary, &self.config)?;
        rms_norm(&x, &self.norm.tensor, self.config.rms_norm_eps)
    }

    /// Class logits `[b, num_labels]`.
    pub fn classify(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let score =
            self.score.as_ref().ok_or_else(|| candle_core::Error::Msg("model has no classification head".into()))?;
        linear(&self.last_token_states(ids, lengths)?, score)
    }

    /// Next-token logits at each row's last real token, `[b, vocab]`.
    pub fn lm_logits(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        self.lm_head().forward(&self.last_token_states(ids, lengths)?)
    }

    /// The LM head: `lm_head` when untied, else the embedding.
    fn lm_head(&self) -> &Matrix {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Runs `prefix` once and keeps its keys and values (inference only).
    pub fn prefix_cache(&self, prefix: &[u32]) -> Result<PrefixCache> {
        let empty = PrefixCache { layers: Vec::new(), tokens: Vec::new() };
        if prefix.is_empty() {
            return Ok(empty);
        }
        let (_, layers) = self.run_segments(&empty, &[Segment::root(prefix)])?;
        Ok(PrefixCache { layers, tokens: prefix.to_vec() })
    }

    /// Next-token logits `[n, vocab]` after each of `n` continuations of the
    /// cached prefix. The continuations are packed into one sequence (larger
    /// matmuls than one at a time); each attends to the prefix and to its own
    /// earlier tokens only, at the positions it would have alone.
    pub fn continuation_logits(&self, prefix: &PrefixCache, continuations: &[&[u32]]) -> Result<Tensor> {
        let segments: Vec<Segment> = continuations.iter().map(|c| Segment::root(c)).collect();
        let (hidden, _) = self.run_segments(prefix, &segments)?;
        let ends: Vec<u32> = segment_starts(&segments)
            .iter()
            .zip(&segments)
            .map(|(start, s)| (start + s.tokens.len() - 1) as u32)
            .collect();
        self.lm_head_rows(&hidden, ends)
    }

    /// The log-probability of each candidate answer after each continuation
    /// of the cached prefix, `[n][candidates]`: the sum over the candidate's
    /// tokens of log p(token | prefix, continuation, the candidate's earlier
    /// tokens). One forward pass: every continuation is packed with its
    /// candidates as branches that see it but not each other.
    pub fn candidate_log_probs(
        &self,
        prefix: &PrefixCache,
        continuations: &[&[u32]],
        candidates: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        if candidates.iter().any(|c| c.is_empty()) {
            candle_core::bail!("an empty candidate");
        }
        if continuations.is_empty() {
            return Ok(Vec::new());
        }
        // Per continuation: the continuation, then each candidate but its last
        // token (the last token is predicted, never input).
        let mut segments = Vec::new();
        let mut roots = Vec::with_capacity(continuations.len());
        for c in continuations {
            let root = segments.len();
            roots.push(root);
            segments.push(Segment::root(c));
            for cand in candidates.iter().filter(|cand| cand.len() > 1) {
                segments.push(Segment { tokens: &cand[..cand.len() - 1], parent: Some(root) });
            }
        }
        let starts = segment_starts(&segments);
        // The rows whose next-token distribution is read, and the token each must predict.
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for &root in &roots {
            let last = starts[root] + segments[root].tokens.len() - 1;
            let mut branch = root + 1;
            for cand in candidates {
                rows.push(last as u32);
                targets.push(cand[0]);
                if cand.len() > 1 {
                    for (j, &token) in cand[1..].iter().enumerate() {
                        rows.push((starts[branch] + j) as u32);
                        targets.push(token);
                    }
                    branch += 1;
                }
            }
        }
        let (hidden, _) = self.run_segments(prefix, &segments)?;
        let logits = self.lm_head_rows(&hidden, rows)?.to_vec2::<f32>()?;
        let mut token_log_probs =
            logits.iter().zip(&targets).map(|(row, &target)| log_softmax_at(row, target as usize));
        let mut scores = Vec::with_capacity(roots.len());
        for _ in &roots {
            scores.push(candidates.iter().map(|cand| token_log_probs.by_ref().take(cand.len()).sum()).collect());
        }
        Ok(scores)
    }

    /// Logits of the LM head at `rows` of the final hidden states.
    fn lm_head_rows(&self, hidden: &Tensor, rows: Vec<u32>) -> Result<Tensor> {
        let picked = hidden.index_select(&Tensor::new(rows, hidden.device())?, 0)?;
        self.lm_head().forward(&rms_norm(&picked, &self.norm.tensor, self.config.rms_norm_eps)?)
    }

    /// The final hidden states `[t, h]` (before the last norm) of packed
    /// segments after the cached prefix, and every layer's keys and values.
    /// A segment attends to the prefix, to its ancestors' tokens and to its
    /// own earlier tokens, at the positions it would have in one sequence.
    fn run_segments(&self, prefix: &PrefixCache, segments: &[Segment]) -> Result<(Tensor, Vec<KeyValues>)> {
        let p = prefix.tokens.len();
        let t: usize = segments.iter().map(|s| s.tokens.len()).sum();
        if segments.is_empty() || segments.iter().any(|s| s.tokens.is_empty()) {
            candle_core::bail!("an empty continuation");
        }
        // Tokens before each segment in its own sequence, past the prefix.
        let mut before = Vec::with_capacity(segments.len());
        for (i, s) in segments.iter().enumerate() {
            before.push(match s.parent {
                None => 0,
                Some(q) if q < i => before[q] + segments[q].tokens.len(),
                Some(q) => candle_core::bail!("segment {i}'s parent {q} does not come before it"),
            });
        }
        let longest = segments.iter().zip(&before).map(|(s, b)| b + s.tokens.len()).max().unwrap_or(0);
        if p + longest > self.config.max_position_embeddings {
            candle_core::bail!(
                "{} tokens are more than the model's {}",
                p + longest,
                self.config.max_position_embeddings
            );
        }
        let starts = segment_starts(segments);
        let mut positions = Vec::with_capacity(t);
        let mut ancestors = Vec::with_capacity(segments.len());
        for (i, s) in segments.iter().enumerate() {
            positions.extend((0..s.tokens.len()).map(|j| p + before[i] + j));
            let mut seen = Vec::new();
            let mut parent = s.parent;
            while let Some(q) = parent {
                seen.push(starts[q]..starts[q] + segments[q].tokens.len());
                parent = segments[q].parent;
            }
            seen.reverse();
            ancestors.push(seen);
        }
        let spans = segments.iter().zip(&starts).map(|(s, &start)| start..start + s.tokens.len()).collect();
        let packing = Packing { positions, spans, ancestors };
        let ids: Vec<u32> = segments.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        let mut x = self.embed.rows(&Tensor::new(ids, self.norm.tensor.device())?)?;
        let mut layers = Vec::with_capacity(self.blocks.len());
        let empty = KeyValues::default();
        for (l, block) in self.blocks.iter().enumerate() {
            let past = prefix.layers.get(l).unwrap_or(&empty);
            let (y, kv) = block.forward_packed(&x, &packing, &self.rotary, &self.config, past)?;
            x = y.detach();
            layers.push(kv);
        }
        Ok((x, layers))
    }

    /// Weights in Hugging Face names and layout (fused matrices split again),
    /// for saving as a `LlamaForSequenceClassification` directory.
    pub fn hf_weights(&self) -> Result<Vec<(String, Tensor)>> {
        let cfg = &self.config;
        let (h, kv) = (cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim());
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed.dense()?)];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{l}");
            let qkv = &b.qkv.dense()?;
            let gu = &b.gate_up.dense()?;
            let i = cfg.intermediate_size;
            out.extend([
                (format!("{p}.input_layernorm.weight"), b.attn_norm.tensor.clone()),
                (format!("{p}.self_attn.q_proj.weight"), qkv.narrow(0, 0, h)?),
                (format!("{p}.self_attn.k_proj.weight"), qkv.narrow(0, h, kv)?),
                (format!("{p}.self_attn.v_proj.weight"), qkv.narrow(0, h + kv, kv)?),
                (format!("{p}.self_attn.o_proj.weight"), b.o.dense()?),
                (format!("{p}.post_attention_layernorm.weight"), b.mlp_norm.tensor.clone()),
                (format!("{p}.mlp.gate_proj.weight"), gu.narrow(0, 0, i)?),
                (format!("{p}.mlp.up_proj.weight"), gu.narrow(0, i, i)?),
                (format!("{p}.mlp.down_proj.weight"), b.down.dense()?),
            ]);
        }
        out.push(("model.norm.weight".to_string(), self.norm.tensor.clone()));
        if let Some(s) = &self.score {
            out.push(("score.weight".to_string(), s.tensor.clone()));
        }
        out.into_iter().map(|(n, t)| Ok((n, t.contiguous()?))).collect()
    }
}

/// Normal(0, std) weights from a seeded RNG (candle's CPU RNG cannot be seeded).
pub fn seeded_normal(shape: &[usize], std: f32, seed: u64, device: &Device) -> Result<Tensor> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0f32, std).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
    Tensor::from_vec(data, shape, device)
}

/// Random weights for `config` (tests, benchmarks).
pub fn random_weights(config: &LlamaConfig, seed: u64, device: &Device) -> Result<HashMap<String, Tensor>> {
    config
        .weight_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let t = if shape.len() == 1 {
                (seeded_normal(&shape, 0.1, seed + i as u64, device)? + 1.0)?
            } else {
                seeded_normal(&shape, 0.2, seed + i as u64, device)?
            };
            Ok((name, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::llama::ops::tests::max_abs_diff;

    fn ids(rows: &[Vec<u32>]) -> (Tensor, Vec<usize>) {
        let t = rows.iter().map(|r| r.len()).max().unwrap();
        let lengths = rows.iter().map(|r| r.len()).collect();
        let flat: Vec<u32> =
            rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0, t - r.len()))).collect();
        (Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap(), lengths)
    }

    #[test]
    fn lm_logits_match_candle_transformers_llama() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 7, &Device::Cpu).unwrap();
        let ours = Llama::new(cfg.clone(), &weights, None, Trainable::NONE, 0).unwrap();
        let reference_cfg = candle_transformers::models::llama::Config {
            hidden_size: cfg.hidden_size,
            intermediate_size: cfg.intermediate_size,
            vocab_size: cfg.vocab_size,
            num_hidden_layers: cfg.num_hidden_layers,
            num_attention_heads: cfg.num_attention_heads,
            num_key_value_heads: cfg.num_key_value_heads,
            use_flash_attn: false,
            rms_norm_eps: cfg.rms_norm_eps,
            rope_theta: cfg.rope_theta as f32,
            bos_token_id: None,
            eos_token_id: None,
            rope_scaling: None,
            max_position_embeddings: cfg.max_position_embeddings,
            tie_word_embeddings: true,
        };
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let reference = candle_transformers::models::llama::Llama::load(vb, &reference_cfg).unwrap();
        let (x, lengths) = ids(&[vec![3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3]]);
        let mut cache =
            candle_transformers::models::llama::Cache::new(false, DType::F32, &reference_cfg, &Device::Cpu).unwrap();
        let expected = reference.forward(&x, 0, &mut cache).unwrap();
        let got = ours.lm_logits(&x, &lengths).unwrap();
        // Same weights, same math, different op order: agreement to float rounding.
        assert!(max_abs_diff(&got, &expected) < 1e-4, "diff {}", max_abs_diff(&got, &expected));
    }

    #[test]
    fn packed_continuations_of_a_cached_prefix_equal_full_sequences() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 4, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, None, Trainable::NONE, 0).unwrap();
        let prefix = [3u32, 14, 15, 9, 26];
        let continuations: [&[u32]; 3] = [&[5, 35, 8], &[9], &[7, 9, 3, 2, 30]];
        let cache = model.prefix_cache(&prefix).unwrap();
        let packed = model.continuation_logits(&cache, &continuations).unwrap();
        for (i, c) in continuations.iter().enumerate() {
            let full: Vec<u32> = prefix.iter().chain(c.iter()).copied().collect();
            let (x, lengths) = ids(&[full]);
            let expected = model.lm_logits(&x, &lengths).unwrap();
            let got = packed.narrow(0, i, 1).unwrap();
            assert!(max_abs_diff(&got, &expected) < 1e-4, "continuation {i}: diff {}", max_abs_diff(&got, &expected));
        }
        // No prefix at all: the same as a plain forward.
        let empty = model.prefix_cache(&[]).unwrap();
        let alone = model.continuation_logits(&empty, &[&prefix]).unwrap();
        let (x, lengths) = ids(&[prefix.to_vec()]);
        assert!(max_abs_diff(&alone, &model.lm_logits(&x, &lengths).unwrap()) < 1e-4);
    }

    /// log p(sequence[start..] | sequence[..start]) from plain full-sequence forwards, one per token.
    fn full_sequence_log_prob(model: &Llama, sequence: &[u32], start: usize) -> f32 {
        (start..sequence.len())
            .map(|k| {
                let (x, lengths) = ids(&[sequence[..k].to_vec()]);
                let logits = model.lm_logits(&x, &lengths).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                logits[sequence[k] as usize] - max - sum.ln()
            })
            .sum()
    }

    #[test]
    fn candidate_log_probs_equal_full_sequence_log_probs() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 11, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, None, Trainable::NONE, 0).unwrap();
        let prefix = [3u32, 14, 15, 9];
        let continuations: [&[u32]; 3] = [&[5, 35, 8], &[9], &[7, 9, 3, 2, 30]];
        // One-token, two-token and three-token answers, sharing first tokens.
        let candidates = vec![vec![40u32], vec![41, 42], vec![41, 43, 44], vec![45, 46]];
        for cache in [model.prefix_cache(&prefix).unwrap(), model.prefix_cache(&[]).unwrap()] {
            let scores = model.candidate_log_probs(&cache, &continuations, &candidates).unwrap();
            for (i, c) in continuations.iter().enumerate() {
                let context: Vec<u32> = cache.tokens().iter().chain(c.iter()).copied().collect();
                for (j, cand) in candidates.iter().enumerate() {
                    let sequence: Vec<u32> = context.iter().chain(cand).copied().collect();
                    let expected = full_sequence_log_prob(&model, &sequence, context.len());
                    let got = scores[i][j];
                    assert!((got - expected).abs() < 1e-3, "continuation {i}, candidate {j}: {got} vs {expected}");
                }
            }
        }
        assert!(model.candidate_log_probs(&model.prefix_cache(&prefix).unwrap(), &continuations, &[vec![]]).is_err());
    }

    #[test]
    fn a_segment_sees_its_ancestors_and_not_its_siblings() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 12, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, None, Trainable::NONE, 0).unwrap();
        let empty = model.prefix_cache(&[]).unwrap();
        let (root, left, right) = ([3u32, 4, 5], [6u32, 7], [8u32, 9, 10]);
        let segments = [
            Segment::root(&root),
            Segment { tokens: &left, parent: Some(0) },
            Segment { tokens: &right, parent: Some(0) },
            Segment { tokens: &[11], parent: Some(2) },
        ];
        let (hidden, _) = model.run_segments(&empty, &segments).unwrap();
        // The last token of each branch equals a plain run of its whole path.
        let last = |rows: u32, path: Vec<u32>| {
            let got = model.lm_head_rows(&hidden, vec![rows]).unwrap();
            let alone = model.continuation_logits(&empty, &[&path]).unwrap();
            max_abs_diff(&got, &alone)
        };
        assert!(last(4, vec![3, 4, 5, 6, 7]) < 1e-4);
        assert!(last(7, vec![3, 4, 5, 8, 9, 10]) < 1e-4);
        assert!(last(8, vec![3, 4, 5, 8, 9, 10, 11]) < 1e-4);
        let backwards = [Segment { tokens: &left, parent: Some(1) }];
        assert!(model.run_segments(&empty, &backwards).is_err());
    }

    #[test]
    fn padding_does_not_change_a_rows_logits() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 1, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, Some(3), Trainable::NONE, 5).unwrap();
        let short = vec![5, 6, 7];
        let (alone, len_alone) = ids(std::slice::from_ref(&short));
        let (batch, len_batch) = ids(&[vec![9, 8, 7, 6, 5, 4, 3], short]);
        let a = model.classify(&alone, &len_alone).unwrap();
        let b = model.classify(&batch, &len_batch).unwrap().narrow(0, 1, 1).unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-5, "diff {}", max_abs_diff(&a, &b));
    }

    /// Central finite differences against autograd for a sample of entries of
    /// every trainable weight (f64 would be exact; f32 needs a loose tolerance).
    #[test]
    fn gradients_match_finite_differences() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 3, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, Some(3), Trainable::ALL, 11).unwrap();
        let (x, lengths) = ids(&[vec![1, 2, 3, 4, 5, 6], vec![7, 8, 9]]);
        let targets = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let loss_of = |m: &Llama| -> f64 {
            let logits = m.classify(&x, &lengths).unwrap();
            candle_nn::loss::cross_entropy(&logits, &targets).unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let logits = model.classify(&x, &lengths).unwrap();
        let grads = candle_nn::loss::cross_entropy(&logits, &targets).unwrap().backward().unwrap();
        let mut checked = 0;
        for p in model.trainable_params() {
            let var = p.var().unwrap();
            let grad = grads.get(var).unwrap_or_else(|| panic!("no gradient for {}", p.name));
            let grad: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
            let original: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
            let n = original.len();
            for k in [0, n / 3, n / 2, n - 1] {
                let eps = 1e-2f32;
                let at = |delta: f32| {
                    let mut v = original.clone();
                    v[k] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
                    loss_of(&model)
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
                let analytic = grad[k] as f64;
                let tol = 2e-3 + 2e-2 * analytic.abs().max(numeric.abs());
                assert!((numeric - analytic).abs() < tol, "{}[{k}]: autograd {analytic}, numeric {numeric}", p.name);
                checked += 1;
            }
        }
        assert!(checked > 40, "only {checked} gradient entries checked");
    }

    #[test]
    fn frozen_layers_get_no_gradient() {
        let cfg = LlamaConfig::tiny();
        let weights = random_weights(&cfg, 3, &Device::Cpu).unwrap();
        let model = Llama::new(cfg, &weights, Some(2), Trainable { embedding: false, frozen_layers: 1 }, 1).unwrap();
        let names: Vec<&str> = model.trainable_params().iter().map(|p| p.name.as_str()).collect();
        assert!(names.iter().all(|n| !n.starts_with("model.layers.0.") && !n.starts_with("model.embed")), "{names:?}");
        assert!(names.contains(&"model.layers.1.mlp.gate_up_proj") && names.contains(&"score"));
        let (x, lengths) = ids(&[vec![1, 2, 3]]);
        let loss = model.classify(&x, &lengths).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for p in model.trainable_params() {
            assert!(grads.get(p.var().unwrap()).is_some(), "{} has no gradient", p.name);
        }
    }
}
