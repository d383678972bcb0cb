//! Sentence embeddings with a BERT-family sentence-transformers model
//! (default all-MiniLM-L6-v2) on candle: attention-masked mean pooling and
//! L2 normalisation, as sentence-transformers does.
//!
//! Texts are embedded in length-sorted batches padded to the longest item
//! (the model's `tokenizer.json` pads every input to 128: that is switched
//! off) and truncated at `max_tokens`.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

use tokenizers::{Encoding, PaddingParams, Tokenizer, TruncationParams};

use super::bert::Bert;
use super::bert_train::TrainableBert;
use crate::kernels::Precision;

pub const DEFAULT_EMBEDDER: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// How texts are embedded.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedConfig {
    /// A Hugging Face model id or a local directory (`config.json`,
    /// `tokenizer.json`, `model.safetensors`).
    pub model: String,
    /// Longer texts are truncated (and counted).
    pub max_tokens: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Arithmetic of the encoder's matmuls ([`Precision::Auto`] is resolved at load).
    pub precision: Precision,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig { model: DEFAULT_EMBEDDER.into(), max_tokens: 256, batch_size: 64, precision: Precision::F32 }
    }
}

/// The project's copy of all-MiniLM-L6-v2 (`data/models`) when present, else its Hugging Face id.
pub fn default_model() -> String {
    crate::hub::local_or_hub("all-MiniLM-L6-v2", "model.safetensors", DEFAULT_EMBEDDER)
}

/// A loaded sentence embedder.
pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    config: EmbedConfig,
    /// Embedding width (384 for MiniLM).
    pub dim: usize,
    model_config: Config,
    weights: std::path::PathBuf,
}

/// Embeddings of a list of texts, row-major `len × dim`, L2-normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| *x as f64 * *x as f64).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator > 0.0 {
        (dot / denominator) as f32
    } else {
        0.0
    }
}

impl Embedder {
    pub fn load(config: &EmbedConfig) -> Result<Self> {
        let files = crate::hub::model_files(&config.model, &["config.json", "tokenizer.json", "model.safetensors"])?;
        let model_config: Config = serde_json::from_str(
            &std::fs::read_to_string(&files[0]).with_context(|| format!("reading {}", files[0].display()))?,
        )
        .with_context(|| format!("{}: not a BERT config", files[0].display()))?;
        let mut tokenizer =
            Tokenizer::from_file(&files[1]).map_err(|e| anyhow::anyhow!("{}: {e}", files[1].display()))?;
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: config.max_tokens, ..Default::default() }))
            .map_err(|e| anyhow::anyhow!("setting truncation: {e}"))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is memory-mapped read-only and not modified while mapped.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&files[2]], DType::F32, &device)? };
        let config = EmbedConfig { precision: config.precision.resolve(), ..config.clone() };
        let model = Bert::load(vb, &model_config, config.precision)
            .with_context(|| format!("loading {}", files[2].display()))?;
        let dim = model_config.hidden_size;
        Ok(Embedder { model, tokenizer, device, config, dim, model_config, weights: files[2].clone() })
    }

    /// The encoder's weights as trainable variables (read anew from the file).
    pub fn trainable(&self) -> Result<TrainableBert> {
        // SAFETY: as in `load`.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&self.weights], DType::F32, &self.device)? };
        TrainableBert::load(vb, &self.model_config).with_context(|| format!("loading {}", self.weights.display()))
    }

    /// This embedder with `bert`'s weights (a tuned copy of its encoder) in
    /// place of its own; same tokenizer and settings.
    pub fn with_weights(&self, bert: &TrainableBert) -> Result<Embedder> {
        Ok(Embedder {
            model: bert.to_fast(self.config.precision)?,
            tokenizer: self.tokenizer.clone(),
            device: self.device.clone(),
            config: self.config.clone(),
            dim: self.dim,
            model_config: self.model_config.clone(),
            weights: self.weights.clone(),
        })
    }

    /// Token ids and attention mask of `texts`, padded to the longest: two `(batch, len)` u32 tensors.
    pub fn batch(&self, texts: &[&str]) -> Result<(Tensor, Tensor)> {
        let encodings = self.tokenize(texts)?;
        self.tensors(&encodings.iter().collect::<Vec<_>>())
    }

    fn tensors(&self, batch: &[&Encoding]) -> Result<(Tensor, Tensor)> {
        let len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let n = batch.len();
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (row, e) in batch.iter().enumerate() {
            ids[row * len..row * len + e.len()].copy_from_slice(e.get_ids());
            mask[row * len..row * len + e.len()].copy_from_slice(e.get_attention_mask());
        }
        Ok((Tensor::from_vec(ids, (n, len), &self.device)?, Tensor::from_vec(mask, (n, len), &self.device)?))
    }

    /// The settings, with the precision resolved for this CPU (never `Auto`).
    pub fn config(&self) -> &EmbedConfig {
        &self.config
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))
    }

    /// Embed one batch of encodings, padded to the longest.
    fn forward(&self, batch: &[&Encoding]) -> Result<Vec<f32>> {
        let (ids, mask) = self.tensors(batch)?;
        let hidden = self.model.forward(&ids, &mask)?;
        Ok(super::bert_train::mean_pool_normalised(&hidden, &mask)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Tokens of each text, after truncation.
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(self.tokenize(texts)?.iter().map(Encoding::len).collect())
    }

    /// How many of `texts` are longer than `max_tokens` (and get truncated).
    pub fn count_truncated(&self, texts: &[&str]) -> Result<usize> {
        Ok(self.tokenize(texts)?.iter().filter(|e| !e.get_overflowing().is_empty()).count())
    }

    /// Embed `texts`, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        let encodings = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let mut data = vec![0f32; texts.len() * self.dim];
        for chunk in order.chunks(self.config.batch_size.max(1)) {
            let out = self.forward(&chunk.iter().map(|&i| &encodings[i]).collect::<Vec<_>>())?;
            for (j, &i) in chunk.iter().enumerate() {
                data[i * self.dim..(i + 1) * self.dim].copy_from_slice(&out[j * self.dim..(j + 1) * self.dim]);
            }
        }
        Ok(Embeddings { dim: self.dim, data })
    }
}

/// Embeddings projected onto their first two principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Each embedding's coordinates on the two components.
    pub points: Vec<(f64, f64)>,
    /// The share of the embeddings' total variance along each component: how
    /// much of the picture the two axes show.
    pub explained: [f64; 2],
}

impl Projection {
    /// The points with each one's class, as [`crate::plot::scatter`] draws them.
    pub fn with_classes(&self, classes: &[usize]) -> Vec<(f64, f64, usize)> {
        self.points.iter().zip(classes).map(|(&(x, y), &class)| (x, y, class)).collect()
    }

    /// Axis titles that say how much of the variance each axis shows.
    pub fn axis_titles(&self) -> [String; 2] {
        [1, 2].map(|c| format!("component {c} ({:.1}% of the variance)", 100.0 * self.explained[c - 1]))
    }
}

/// Project embeddings onto their first two principal components (power
/// iteration on the covariance matrix; deterministic).
pub fn pca_2d(emb: &Embeddings) -> Projection {
    let (n, d) = (emb.len(), emb.dim);
    if n == 0 {
        return Projection { points: Vec::new(), explained: [0.0; 2] };
    }
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, &x) in mean.iter_mut().zip(emb.row(i)) {
            *m += x as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> =
        (0..n).map(|i| emb.row(i).iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect()).collect();
    let mut cov = vec![0f64; d * d];
    for row in &centred {
        for (a, &xa) in row.iter().enumerate() {
            for (b, &xb) in row.iter().enumerate().skip(a) {
                cov[a * d + b] += xa * xb;
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            cov[a * d + b] = cov[b * d + a];
        }
    }
    let component = |cov: &[f64]| {
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + (i as f64 * 0.618).fract()).collect();
        for _ in 0..200 {
            let mut next: Vec<f64> = (0..d).map(|a| (0..d).map(|b| cov[a * d + b] * v[b]).sum()).collect();
            let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            next.iter_mut().for_each(|x| *x /= norm);
            v = next;
        }
        v
    };
    let v1 = component(&cov);
    let variance_along = |cov: &[f64], v: &[f64]| -> f64 {
        (0..d).map(|a| v[a] * (0..d).map(|b| cov[a * d + b] * v[b]).sum::<f64>()).sum()
    };
    let lambda1 = variance_along(&cov, &v1);
    let deflated: Vec<f64> = (0..d * d).map(|i| cov[i] - lambda1 * v1[i / d] * v1[i % d]).collect();
    let v2 = component(&deflated);
    let lambda2 = variance_along(&cov, &v2);
    let total: f64 = (0..d).map(|a| cov[a * d + a]).sum::<f64>().max(f64::MIN_POSITIVE);
    let dot = |r: &[f64], v: &[f64]| r.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    Projection {
        points: centred.iter().map(|r| (dot(r, &v1), dot(r, &v2))).collect(),
        explained: [lambda1 / total, lambda2 / total],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_main_directions() {
        // Points spread along (1,1,0) a lot and along (1,-1,0) a little.
        let mut data = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            data.extend_from_slice(&[t + 0.1 * s, t - 0.1 * s, 0.0]);
        }
        let projection = pca_2d(&Embeddings { dim: 3, data });
        let p = &projection.points;
        let var = |f: fn(&(f64, f64)) -> f64| p.iter().map(|x| f(x).powi(2)).sum::<f64>() / p.len() as f64;
        let (v1, v2) = (var(|x| x.0), var(|x| x.1));
        assert!(v1 > 100.0 * v2 && v2 > 0.001, "{v1} {v2}");
        // The first component is along (1,1,0): projections are (t - mean t) * sqrt(2) up to sign.
        assert!((p[0].0.abs() - 24.5 * 2f64.sqrt()).abs() < 0.01, "{:?}", p[0]);
        // The two shares are the components' variances over the total, which
        // here lies almost all along the first: 2 t^2 against 2 * 0.1^2.
        let [first, second] = projection.explained;
        assert!((first + second - 1.0).abs() < 1e-9, "{first} + {second}");
        assert!((first - v1 / (v1 + v2)).abs() < 1e-9 && second < 1e-4, "{first} {second}");
        assert!(projection.axis_titles()[0].starts_with("component 1 (100.0% of the variance"));
    }
}
