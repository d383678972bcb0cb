//! The fine-tuning experiment end to end, as the CLI and the notebook run
//! it: tokenise, fine-tune on train (validating on validation), save the
//! classifier, evaluate on test, and describe the run as a results record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::Device;
use polars::prelude::{Column, DataFrame};
use serde::Serialize;

use super::batch::{encode_all, Encoded};
use super::classifier::{argmax, predict_probs, Classifier};
use super::model::Llama;
use super::train::{train, Control, Labelled, TrainConfig, TrainState};
use crate::data::{stratified_sample, Dataset, Example};
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};
use crate::plot::{LineChart, Svg};
use crate::results::{predictions_for, DataSizes, Hardware, Prediction, RunRecord, SCHEMA_VERSION};

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
        // The reference run trains on 12,000 of the 19,000 training items: what fits, with the
        // test evaluation, in 45 minutes on 2 cores (see the README).
        let (train, max_train) =
            if smoke { (TrainConfig::smoke(), Some(240)) } else { (TrainConfig::default(), Some(12_000)) };
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

    let model =
        Llama::from_weights(loaded.config.clone(), loaded.weights, Some(ds.num_classes()), tc.trainable(), tc.seed)?;
    let total_params = model.params().iter().map(|p| p.tensor.elem_count()).sum();
    let fingerprint = fingerprint(&loaded.source, &train_examples, &ds.validation, &ds.labels);
    let control = Control { checkpoint_dir: Some(out_dir.join("checkpoint")), stop_at: None, progress };
    let trained = train(
        model,
        Labelled { texts: &train_enc, labels: &train_labels },
        Labelled { texts: &val_enc, labels: &val_labels },
        pad,
        &fingerprint,
        tc,
        &control,
    )?;

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
        predictions_for(&ds.test, test.probs.iter().map(|p| Some(argmax(p))))
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
}

fn model_name(source: &str) -> String {
    let name = source.rsplit('/').next().unwrap_or(source);
    name.split(".Q").next().unwrap_or(name).trim_end_matches(".gguf").to_string()
}

/// Default directory of the fine-tuned classifier and its checkpoint
/// (`data/finetuned/smollm2-ag-news`, `-smoke` for smoke runs so the two never share a checkpoint).
pub fn default_out_dir(smoke: bool) -> PathBuf {
    let name = if smoke { "smollm2-ag-news-smoke" } else { "smollm2-ag-news" };
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/finetuned").join(name)
}

/// Share of texts (%) per token count, one line per class, with the
/// truncation limit in the title.
pub fn token_length_chart(encoded: &[Encoded], labels: &[usize], names: &[String], max_len: usize) -> Result<Svg> {
    let series = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let lengths: Vec<usize> =
                encoded.iter().zip(labels).filter(|(_, &l)| l == c).map(|(e, _)| e.ids.len() + e.dropped).collect();
            let longest = lengths.iter().copied().max().unwrap_or(0);
            let mut counts = vec![0usize; longest / 4 + 1];
            for l in &lengths {
                counts[l / 4] += 1;
            }
            let n = lengths.len().max(1) as f64;
            let points =
                counts.iter().enumerate().map(|(b, &k)| ((b * 4) as f64 + 2.0, 100.0 * k as f64 / n)).collect();
            (name.clone(), points)
        })
        .collect();
    let title = format!("Tokens per text (SmolLM2 tokenizer, bins of 4; truncated at {max_len})");
    LineChart { title: &title, x_label: "tokens", y_label: "% of texts", series }.render((760, 360))
}

/// Training loss (mean over a centred window of steps) and validation loss.
pub fn loss_chart(state: &TrainState, window: usize) -> Result<Svg> {
    let h = &state.history;
    let smoothed = (0..h.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(window / 2), (i + window / 2 + 1).min(h.len()));
            (h[i].step as f64, h[lo..hi].iter().map(|x| x.loss).sum::<f64>() / (hi - lo) as f64)
        })
        .collect();
    let validation = state.validation.iter().map(|v| (v.step as f64, v.loss)).collect();
    LineChart {
        title: "Cross-entropy loss during fine-tuning",
        x_label: "optimiser step",
        y_label: "loss",
        series: vec![(format!("train (mean of {window} steps)"), smoothed), ("validation".into(), validation)],
    }
    .render((760, 360))
}

/// Validation accuracy at each validation pass.
pub fn validation_chart(state: &TrainState) -> Result<Svg> {
    let points = state.validation.iter().map(|v| (v.step as f64, 100.0 * v.accuracy)).collect();
    LineChart {
        title: "Validation accuracy during fine-tuning",
        x_label: "optimiser step",
        y_label: "accuracy (%)",
        series: vec![("validation".into(), points)],
    }
    .render_zoomed((760, 320))
}

/// Misclassified test items with the classifier's probabilities.
pub fn error_table(ds: &Dataset, test: &TestEvaluation, rows: usize) -> Result<DataFrame> {
    let errors: Vec<usize> =
        (0..ds.test.len()).filter(|&i| argmax(&test.probs[i]) != ds.test[i].label).take(rows).collect();
    let name = |c: usize| ds.labels[c].clone();
    let probs = |i: usize| {
        ds.labels.iter().zip(&test.probs[i]).map(|(l, p)| format!("{l} {p:.2}")).collect::<Vec<_>>().join(", ")
    };
    Ok(DataFrame::new_infer_height(vec![
        Column::new("test row".into(), errors.iter().map(|&i| ds.test[i].index as u64).collect::<Vec<_>>()),
        Column::new("text".into(), errors.iter().map(|&i| ds.test[i].text.clone()).collect::<Vec<_>>()),
        Column::new("true".into(), errors.iter().map(|&i| name(ds.test[i].label)).collect::<Vec<_>>()),
        Column::new("predicted".into(), errors.iter().map(|&i| name(argmax(&test.probs[i]))).collect::<Vec<_>>()),
        Column::new("probabilities".into(), errors.iter().map(|&i| probs(i)).collect::<Vec<_>>()),
    ])?)
}
