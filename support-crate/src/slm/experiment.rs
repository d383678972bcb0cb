//! The fine-tuning experiment end to end, as the CLI and the notebook run
//! it: tokenise, fine-tune on train (validating on validation), save the
//! classifier, evaluate on test, and describe the run as a results record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::Device;
use serde::Serialize;

use super::batch::{encode_all, Encoded};
use super::classifier::{argmax, predict_probs, Classifier};
use super::model::Llama;
use super::train::{train, Control, TrainConfig, TrainState};
use crate::data::{stratified_sample, Dataset, Example};
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};
use crate::results::{DataSizes, Hardware, Prediction, RunRecord, SCHEMA_VERSION};

/// What to fine-tune, on how much data.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneConfig {
    /// Base model: a `.gguf` file, a Hugging Face directory or id.
    pub model: String,
    pub train: TrainConfig,
    /// Train on a seeded stratified sample of this many training items (all when `None`).
    pub max_train: Option<usize>,
    /// Rows per inference batch (validation and test).
    pub eval_batch_size: usize,
}

impl FinetuneConfig {
    pub fn new(model: String, smoke: bool) -> Self {
        let (train, max_train) = if smoke { (TrainConfig::smoke(), Some(240)) } else { (TrainConfig::default(), None) };
        FinetuneConfig { model, train, max_train, eval_batch_size: 32 }
    }
}

/// Tokens cut by truncation, per split.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Truncation {
    pub max_len: usize,
    pub train_texts: usize,
    pub validation_texts: usize,
    pub test_texts: usize,
}

/// A fine-tuned classifier and how it was trained.
pub struct Finetuned {
    pub config: FinetuneConfig,
    pub classifier: Classifier,
    pub state: TrainState,
    pub trainable_params: usize,
    pub total_params: usize,
    pub train_items: usize,
    pub truncation: Truncation,
    pub model_source: String,
    test_encoded: Vec<Encoded>,
}

/// The classifier's test results.
pub struct TestEvaluation {
    /// Class probabilities, in `ds.test` order.
    pub probs: Vec<Vec<f32>>,
    pub metrics: Metrics,
    pub throughput: Throughput,
    /// Peak resident memory of the process so far (MiB), where the OS reports it.
    pub peak_memory_mib: Option<f64>,
}

/// Tokenised texts of a split.
pub fn encode_split(tokenizer: &tokenizers::Tokenizer, examples: &[Example], max_len: usize) -> Result<Vec<Encoded>> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    encode_all(tokenizer, &texts, max_len)
}

/// Fine-tunes on train, validating on validation; test is only tokenised
/// (for [`Finetuned::evaluate_test`]). The classifier and its checkpoints go
/// to `out_dir`; an interrupted run resumes from there.
pub fn finetune(ds: &Dataset, config: &FinetuneConfig, out_dir: &Path, progress: bool) -> Result<Finetuned> {
    let loaded = super::load(&config.model, &Device::Cpu)?;
    let pad = loaded.tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
    let train_examples = match config.max_train {
        Some(n) => stratified_sample(ds.train.clone(), ds.num_classes(), n, config.train.seed),
        None => ds.train.clone(),
    };
    let tc = &config.train;
    let train_enc = encode_split(&loaded.tokenizer, &train_examples, tc.max_len)?;
    let val_enc = encode_split(&loaded.tokenizer, &ds.validation, tc.max_len)?;
    let test_enc = encode_split(&loaded.tokenizer, &ds.test, tc.max_len)?;
    let truncated = |e: &[Encoded]| e.iter().filter(|x| x.dropped > 0).count();
    let truncation = Truncation {
        max_len: tc.max_len,
        train_texts: truncated(&train_enc),
        validation_texts: truncated(&val_enc),
        test_texts: truncated(&test_enc),
    };
    let train_labels: Vec<usize> = train_examples.iter().map(|e| e.label).collect();
    let val_labels: Vec<usize> = ds.validation.iter().map(|e| e.label).collect();

    let model = Llama::new(loaded.config.clone(), &loaded.weights, Some(ds.num_classes()), tc.trainable(), tc.seed)?;
    let total_params = model.params().iter().map(|p| p.tensor.elem_count()).sum();
    let fingerprint = fingerprint(&loaded.source, &train_examples, &ds.validation, &ds.labels);
    let control = Control { checkpoint_dir: Some(out_dir.join("checkpoint")), stop_at: None, progress };
    let trained = train(model, &train_enc, &train_labels, (&val_enc, &val_labels), pad, &fingerprint, tc, &control)?;

    let classifier = Classifier {
        model: trained.model,
        tokenizer: loaded.tokenizer,
        labels: ds.labels.clone(),
        max_len: tc.max_len,
        pad,
    };
    classifier.save(out_dir)?;
    tracing::info!("saved the classifier to {}", out_dir.display());
    Ok(Finetuned {
        config: config.clone(),
        classifier,
        state: trained.state,
        trainable_params: trained.trainable_params,
        total_params,
        train_items: train_examples.len(),
        truncation,
        model_source: loaded.source,
        test_encoded: test_enc,
    })
}

/// Base model and data identity, so a checkpoint is only resumed on the same.
fn fingerprint(model: &str, train: &[Example], validation: &[Example], labels: &[String]) -> String {
    let size = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    let mut h = crate::cache::text_hash(&labels.join("\u{1f}"));
    for e in train.iter().chain(validation) {
        h = h.rotate_left(5) ^ crate::cache::text_hash(&e.text) ^ e.label as u128;
    }
    format!("{model}:{size}:{}:{}:{h:032x}", train.len(), validation.len())
}

/// `VmHWM` from `/proc/self/status` (Linux).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl Finetuned {
    /// Classifies every test item once (batched, length-sorted) and scores it.
    pub fn evaluate_test(&self, ds: &Dataset, progress: bool) -> Result<TestEvaluation> {
        let c = &self.classifier;
        let (probs, throughput) = Throughput::measure(ds.test.len(), || {
            predict_probs(&c.model, &self.test_encoded, c.pad, self.config.eval_batch_size, progress)
        });
        let probs = probs?;
        let labels: Vec<usize> = ds.test.iter().map(|e| e.label).collect();
        let predictions: Vec<Option<usize>> = probs.iter().map(|p| Some(argmax(p))).collect();
        let metrics = evaluate(&labels, &predictions, &ds.labels, Bootstrap::default());
        Ok(TestEvaluation { probs, metrics, throughput, peak_memory_mib: peak_memory_mib() })
    }

    pub fn predictions(&self, ds: &Dataset, test: &TestEvaluation) -> Vec<Prediction> {
        ds.test
            .iter()
            .zip(&test.probs)
            .map(|(e, p)| Prediction { index: e.index, label: e.label, prediction: Some(argmax(p)) })
            .collect()
    }

    /// The results record (`results/finetune_slm.json`).
    pub fn record(&self, ds: &Dataset, test: &TestEvaluation, command: String, split_seed: u64) -> RunRecord {
        let s = &self.state;
        let best = s.validation.iter().max_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
        let timings = BTreeMap::from([
            ("training".to_string(), Throughput::new(s.train_seconds, self.train_items * self.config.train.epochs)),
            ("test_inference".to_string(), test.throughput),
        ]);
        RunRecord {
            schema_version: SCHEMA_VERSION,
            experiment: "finetune_slm".into(),
            method: "fine-tuned SLM".into(),
            model: model_name(&self.model_source),
            command,
            config: serde_json::to_value(&self.config).unwrap_or_default(),
            seeds: [
                ("split".to_string(), split_seed),
                ("train".to_string(), self.config.train.seed),
                ("bootstrap".to_string(), test.metrics.bootstrap_seed),
            ]
            .into(),
            data: DataSizes { train: self.train_items, ..DataSizes::of(ds) },
            hardware: Hardware::detect(),
            timings,
            metrics: test.metrics.clone(),
            extra: serde_json::json!({
                "base_model": self.model_source,
                "trainable_params": self.trainable_params,
                "total_params": self.total_params,
                "optimiser_steps": s.step,
                "train_tokens": s.tokens,
                "train_tokens_per_second": s.tokens as f64 / s.train_seconds.max(1e-9),
                "final_validation": s.validation.last(),
                "best_validation": best,
                "validation_curve": s.validation,
                "truncation": self.truncation,
                "peak_memory_mib": test.peak_memory_mib,
            }),
        }
    }

    /// Training loss per step (smoothed with a centred window) for the notebook's curve.
    pub fn loss_curve(&self, window: usize) -> Vec<(f64, f64)> {
        let h = &self.state.history;
        (0..h.len())
            .map(|i| {
                let lo = i.saturating_sub(window / 2);
                let hi = (i + window / 2 + 1).min(h.len());
                let mean = h[lo..hi].iter().map(|x| x.loss).sum::<f64>() / (hi - lo) as f64;
                (h[i].step as f64, mean)
            })
            .collect()
    }
}

fn model_name(source: &str) -> String {
    let name = source.rsplit('/').next().unwrap_or(source);
    name.split(".Q").next().unwrap_or(name).trim_end_matches(".gguf").to_string()
}

/// Default output directory of the fine-tuned classifier.
pub fn default_out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/finetuned/smollm2-ag-news")
}
