//! A fine-tuned classifier: batched inference, and saving/loading it as a
//! Hugging Face `LlamaForSequenceClassification` directory (`config.json`
//! with `id2label`, `model.safetensors`, `tokenizer.json`) that
//! `transformers` can open too.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use super::batch::{encode_all, inference_batches, Batch, Encoded};
use crate::method::argmax;
use crate::models::llama::{Llama, Trainable};

/// Class probabilities for every encoded text, in input order. Batches are
/// length-sorted; no autograd graph is built.
pub fn predict_probs(
    model: &Llama,
    encoded: &[Encoded],
    pad: u32,
    batch_size: usize,
    progress: bool,
) -> Result<Vec<Vec<f32>>> {
    let model = model.detached()?;
    let bar = crate::progress::bar(encoded.len() as u64, "classify", progress);
    let mut out = vec![Vec::new(); encoded.len()];
    for items in inference_batches(encoded, batch_size) {
        let batch = Batch::new(encoded, &items, pad, &Device::Cpu)?;
        let probs = candle_nn::ops::softmax_last_dim(&model.classify(&batch.ids, &batch.lengths)?)?;
        for (row, &item) in probs.to_vec2::<f32>()?.into_iter().zip(&items) {
            out[item] = row;
        }
        bar.inc(items.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// A saved fine-tuned classifier, ready to predict.
pub struct Classifier {
    pub model: Llama,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
    pub max_len: usize,
    pub pad: u32,
}

/// Extra fields this crate writes into `config.json`.
const MAX_LEN_KEY: &str = "slm_vs_llm_max_len";

impl Classifier {
    /// Loads a directory written by [`Classifier::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let loaded = crate::models::llama::load::load_hf_dir(dir, &Device::Cpu)?;
        let labels = loaded.labels.clone().with_context(|| {
            format!("{}: config.json has no id2label: not a classifier saved by `slm-vs-llm finetune`", dir.display())
        })?;
        if !loaded.weights.contains_key("score.weight") {
            bail!("{}: model.safetensors has no score.weight (classification head)", dir.display());
        }
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let max_len = raw[MAX_LEN_KEY].as_u64().unwrap_or(128) as usize;
        let pad = raw["pad_token_id"].as_u64().unwrap_or(0) as u32;
        let model = Llama::from_weights(loaded.config, loaded.weights, Some(labels.len()), Trainable::NONE, 0)?;
        Ok(Classifier { model, tokenizer: loaded.tokenizer, labels, max_len, pad })
    }

    /// Writes `config.json`, `model.safetensors` and `tokenizer.json` to `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut config = serde_json::to_value(&self.model.config)?;
        let id2label: HashMap<String, &String> =
            self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l)).collect();
        let label2id: HashMap<&String, usize> = self.labels.iter().enumerate().map(|(i, l)| (l, i)).collect();
        let extra = serde_json::json!({
            "architectures": ["LlamaForSequenceClassification"],
            "model_type": "llama",
            "torch_dtype": "float32",
            "id2label": id2label,
            "label2id": label2id,
            "pad_token_id": self.pad,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            MAX_LEN_KEY: self.max_len,
        });
        config.as_object_mut().expect("config is an object").extend(extra.as_object().expect("object").clone());
        std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
        let weights: HashMap<String, Tensor> = self.model.hf_weights()?.into_iter().collect();
        candle_core::safetensors::save(&weights, dir.join("model.safetensors"))?;
        self.tokenizer
            .save(dir.join("tokenizer.json"), false)
            .map_err(|e| anyhow::anyhow!("saving the tokenizer: {e}"))?;
        Ok(())
    }

    /// Class probabilities of each text.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encoded = encode_all(&self.tokenizer, texts, self.max_len)?;
        predict_probs(&self.model, &encoded, self.pad, 32, texts.len() > 256)
    }
}

/// Mean cross-entropy of the true class's probability.
pub fn mean_log_loss(probs: &[Vec<f32>], labels: &[usize]) -> f64 {
    let total: f64 = probs.iter().zip(labels).map(|(p, &y)| -(p[y].max(1e-12) as f64).ln()).sum();
    total / probs.len().max(1) as f64
}

impl Classifier {
    /// Each text with its predicted class and the probability of every class.
    pub fn prediction_table(&self, texts: &[&str]) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let probs = self.predict(texts)?;
        let best: Vec<String> = probs.iter().map(|p| self.labels[argmax(p)].clone()).collect();
        let shown: Vec<String> = probs
            .iter()
            .map(|p| self.labels.iter().zip(p).map(|(l, p)| format!("{l} {p:.2}")).collect::<Vec<_>>().join(", "))
            .collect();
        Ok(DataFrame::new_infer_height(vec![
            Column::new("text".into(), texts.to_vec()),
            Column::new("class".into(), best),
            Column::new("probabilities".into(), shown),
        ])?)
    }
}
