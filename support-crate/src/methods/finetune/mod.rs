//! The fine-tuned small language model: a Llama (default SmolLM2-135M-Instruct)
//! with a classification head on its last real token, fine-tuned on train
//! (validating on validation as it goes), saved as a Hugging Face
//! `LlamaForSequenceClassification` directory.
//!
//! - [`batch`]: tokenisation, truncation, length-bucketed batches;
//! - [`optim`]: fused in-place AdamW, clipping, the learning-rate schedule;
//! - [`train`]: the fine-tuning loop with validation and checkpoints;
//! - [`classifier`]: batched inference, saving and loading the classifier;
//! - [`views`]: token lengths, loss and validation curves as charts.

pub mod batch;
pub mod classifier;
pub mod train;
pub mod views;

use std::any::Any;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;

use crate::cache::{text_key, RecordCache};
use serde::Serialize;

use batch::{encode_all, Encoded};
use classifier::{predict_probs, Classifier};
use train::{checkpoint_belongs, checkpoint_dir, train, Control, Labelled, TrainConfig, TrainState};

use crate::data::{stratified_sample, Example, Task};
use crate::kernels::Precision;
use crate::method::{Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet};
use crate::metrics::Throughput;
use crate::models::llama::{self, Llama};
use crate::paths::Profile;

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
    /// Arithmetic of the fitted classifier's predictions (training, and the
    /// validation that picks the checkpoint, are f32). Left out of the
    /// record when f32, so f32 runs keep the identity they always had.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl FinetuneConfig {
    /// The reference run trains on all 19,000 training items for one epoch
    /// and keeps the step of lowest validation loss (validated every 250
    /// steps): about 35 minutes on 2 cores with the test evaluation. A smoke
    /// run trains the top 4 layers on 240 items.
    pub fn for_profile(profile: Profile) -> Self {
        let (mut train, max_train) = match profile {
            Profile::Full => (TrainConfig::default(), None),
            Profile::Smoke => (TrainConfig::smoke(), Some(240)),
        };
        train.keep_lowest_validation_loss = true;
        FinetuneConfig {
            model: llama::default_model(),
            train,
            max_train,
            eval_batch_size: 32,
            precision: Precision::F32,
        }
    }
}

/// The fine-tuning method: its settings and where the classifier and its checkpoint go.
#[derive(Debug, Clone)]
pub struct Finetune {
    pub config: FinetuneConfig,
    /// The classifier and its checkpoint; an interrupted run resumes from
    /// here. `None`: [`Finetune::classifier_dir`]'s default for the task.
    pub out_dir: Option<PathBuf>,
    /// How long it trains on a small label budget ([`Method::for_budget`]).
    pub budget_schedule: BudgetSchedule,
}

/// How long the SLM trains at a budget of `n` examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct BudgetSchedule {
    /// Examples seen at least (epochs × items), so that small budgets get
    /// enough optimiser steps to move the classification head.
    pub min_examples: usize,
    /// At most this many passes over a tiny budget.
    pub max_epochs: usize,
}

impl BudgetSchedule {
    /// Validation passes spread evenly over a budget's run; the one with the
    /// lowest loss (log loss: smoother than accuracy on a handful of
    /// validation items) gives the kept weights.
    pub const VALIDATIONS: usize = 8;

    /// 64 steps of 16 (32 epochs of the 32 items at 8 per class); from 1,024
    /// items up, one epoch, as the full run. Smoke: 64 examples, 16 epochs at most.
    pub fn for_profile(profile: Profile) -> Self {
        match profile {
            Profile::Full => BudgetSchedule { min_examples: 1024, max_epochs: 64 },
            Profile::Smoke => BudgetSchedule { min_examples: 64, max_epochs: 16 },
        }
    }

    pub fn epochs(&self, items: usize) -> usize {
        self.min_examples.div_ceil(items.max(1)).clamp(1, self.max_epochs)
    }

    /// "trained for at least 1,024 examples (64 steps of 16; at most 64
    /// epochs), the step of lowest loss on the budget's validation of 8 kept".
    pub fn note(&self, batch_size: usize) -> String {
        format!(
            "trained for at least {} examples ({} steps of {batch_size}; at most {} epochs), \
             the step of lowest loss on the budget's validation of {} kept",
            crate::plot::thousands(self.min_examples as u64),
            self.min_examples / batch_size.max(1),
            self.max_epochs,
            Self::VALIDATIONS
        )
    }
}

impl Finetune {
    /// The profile's settings, the classifier in [`Finetune::classifier_dir`].
    pub fn for_profile(profile: Profile) -> Self {
        Finetune {
            config: FinetuneConfig::for_profile(profile),
            out_dir: None,
            budget_schedule: BudgetSchedule::for_profile(profile),
        }
    }
}

/// Texts cut by truncation.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Truncation {
    pub max_len: usize,
    pub train_texts: usize,
    pub validation_texts: usize,
}

/// A fine-tuned classifier and how it was trained.
pub struct FittedClassifier {
    /// Where the classifier was saved.
    pub dir: PathBuf,
    pub config: FinetuneConfig,
    pub classifier: Classifier,
    pub state: TrainState,
    pub trainable_params: usize,
    pub total_params: usize,
    pub train_items: usize,
    pub truncation: Truncation,
    pub model_source: String,
}

/// Tokenised texts of a split.
pub fn encode_split(tokenizer: &tokenizers::Tokenizer, examples: &[Example], max_len: usize) -> Result<Vec<Encoded>> {
    encode_all(tokenizer, &crate::data::texts(examples), max_len)
}

impl Finetune {
    /// Where the classifier for `task` goes: `out_dir`, else
    /// `data/finetuned/<model family>-<task>` (e.g. `smollm2-ag-news`; `-smoke` for a smoke run).
    pub fn classifier_dir(&self, task: &Task, profile: Profile) -> PathBuf {
        self.out_dir.clone().unwrap_or_else(|| {
            let model = model_name(&self.config.model);
            let family = crate::paths::slug(model.split(['-', '.', '_']).next().unwrap_or(&model));
            let name = format!("{family}-{}", task.slug()).replace('_', "-");
            crate::paths::finetuned_dir(&name, profile)
        })
    }

    /// Fine-tunes on train (a seeded stratified sample of `max_train`),
    /// validating on validation, and saves the classifier to [`Finetune::classifier_dir`].
    pub fn fit_classifier(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedClassifier> {
        let out_dir = self.classifier_dir(data.task, ctx.profile);
        let mut config = self.config.clone();
        config.train.seed = ctx.seed;
        let tc = &config.train;
        let loaded = llama::load(&config.model, &Device::Cpu)?;
        let pad = loaded.tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
        let train_examples = match config.max_train {
            Some(n) => stratified_sample(data.train.to_vec(), data.num_classes(), n, tc.seed),
            None => data.train.to_vec(),
        };
        let train_enc = encode_split(&loaded.tokenizer, &train_examples, tc.max_len)?;
        let val_enc = encode_split(&loaded.tokenizer, data.validation, tc.max_len)?;
        let truncated = |e: &[Encoded]| e.iter().filter(|x| x.dropped > 0).count();
        let truncation = Truncation {
            max_len: tc.max_len,
            train_texts: truncated(&train_enc),
            validation_texts: truncated(&val_enc),
        };
        let train_labels = crate::data::labels(&train_examples);
        let val_labels = crate::data::labels(data.validation);

        let model = Llama::from_weights(
            loaded.config.clone(),
            loaded.weights,
            Some(data.num_classes()),
            tc.trainable(),
            tc.seed,
        )?;
        let total_params = model.params().iter().map(|p| p.tensor.elem_count()).sum();
        let fingerprint = fingerprint(&loaded.source, &train_examples, data.validation, data.labels);
        let checkpoint = checkpoint_dir(&out_dir, tc, &fingerprint)?;
        // Checkpoints used to live in one `checkpoint/` directory: adopt a matching one.
        let legacy = out_dir.join("checkpoint");
        if !checkpoint.exists() && checkpoint_belongs(&legacy, tc, &fingerprint) {
            std::fs::create_dir_all(checkpoint.parent().expect("under out_dir"))?;
            std::fs::rename(&legacy, &checkpoint)?;
        }
        tracing::info!("checkpoint: {}", crate::paths::relative(&checkpoint));
        let control = Control { checkpoint_dir: Some(checkpoint), stop_at: None, progress: ctx.progress };
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
            labels: data.labels.to_vec(),
            max_len: tc.max_len,
            pad,
        };
        classifier.save(&out_dir)?;
        tracing::info!("saved the classifier to {}", out_dir.display());
        Ok(FittedClassifier {
            dir: out_dir,
            config,
            classifier,
            state: trained.state,
            trainable_params: trained.trainable_params,
            total_params,
            train_items: train_examples.len(),
            truncation,
            model_source: loaded.source,
        })
    }
}

impl Method for Finetune {
    fn name(&self) -> &'static str {
        "finetune"
    }

    /// All of the budget's examples, for [`BudgetSchedule::epochs`] passes,
    /// validated [`BudgetSchedule::VALIDATIONS`] times on the budget's
    /// validation set, keeping the step of lowest validation loss; the
    /// checkpoint in the budget's work directory.
    fn for_budget(&self, budget: &Budget) -> Box<dyn Method> {
        let mut finetune = self.clone();
        finetune.config.max_train = None;
        let t = &mut finetune.config.train;
        t.epochs = self.budget_schedule.epochs(budget.train_items);
        let steps = (budget.train_items.div_ceil(t.batch_size) * t.epochs).div_ceil(t.grad_accum);
        t.eval_every = steps.div_ceil(BudgetSchedule::VALIDATIONS).max(1);
        t.keep_lowest_validation_loss = true;
        finetune.out_dir = Some(budget.work_dir.to_path_buf());
        Box::new(finetune)
    }

    fn budget_note(&self) -> Option<String> {
        Some(self.budget_schedule.note(self.config.train.batch_size))
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_classifier(data, ctx)?))
    }
}

/// Base model and data identity, so a checkpoint is only resumed on the same.
fn fingerprint(model: &str, train: &[Example], validation: &[Example], labels: &[String]) -> String {
    let size = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    let examples = train.iter().chain(validation).flat_map(|e| [e.text.clone(), e.label.to_string()]);
    let h = crate::cache::content_key(labels.iter().cloned().chain(examples));
    format!("{model}:{size}:{}:{}:{h:032x}", train.len(), validation.len())
}

impl Fitted for FittedClassifier {
    fn identity(&self) -> Identity {
        Identity {
            kind: "finetune",
            endpoint: None,
            experiment: "finetune_slm".into(),
            method: "fine-tuned SLM".into(),
            model: model_name(&self.model_source),
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.config)?)
    }

    fn training(&self) -> Option<Throughput> {
        Some(Throughput::new(self.state.train_seconds, self.train_items * self.config.train.epochs))
    }

    fn trained_on(&self) -> usize {
        self.train_items
    }

    fn scores(&self) -> &'static str {
        "class probabilities (softmax of the classification head)"
    }

    fn summary(&self) -> String {
        let s = &self.state;
        let curve: Vec<String> =
            s.validation.iter().map(|v| format!("step {} {:.2}%", v.step, 100.0 * v.accuracy)).collect();
        format!(
            "{} of {} parameters trained, {} steps in {:.0} s ({:.0} tokens/s); validation {}",
            self.trainable_params,
            self.total_params,
            s.step,
            s.train_seconds,
            s.tokens as f64 / s.train_seconds.max(1e-9),
            curve.join(", ")
        )
    }

    fn extra(&self) -> serde_json::Value {
        let s = &self.state;
        let kept = s.validation.iter().find(|v| v.step == s.final_weights_step());
        serde_json::json!({
            "base_model": crate::paths::relative(&self.model_source),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "optimiser_steps": s.step,
            "train_tokens": s.tokens,
            "train_tokens_per_second": s.tokens as f64 / s.train_seconds.max(1e-9),
            "final_validation": s.validation.last(),
            "kept_step": s.final_weights_step(),
            "kept_validation": kept,
            "validation_curve": s.validation,
            "truncation": self.truncation,
            "inference_precision": self.config.precision.resolve(),
        })
    }

    /// Batched (length-sorted, `eval_batch_size` rows) inference.
    /// Class probabilities, cached on disk per classifier and text (with what
    /// each cost to compute), so re-running a notebook or `finetune` after a
    /// finished run does not repeat minutes of test inference.
    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted> {
        let c = &self.classifier;
        let encoded = encode_all(&c.tokenizer, texts, c.max_len)?;
        let weights = self.weights_id()?;
        let mut cache = RecordCache::open(
            &crate::paths::cache_dir().join("classifier").join(format!("{weights}.cache")),
            &format!("class probabilities of classifier {weights}"),
        )?;
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| cache.get(text_key(texts[i])).is_none()).collect();
        if !missing.is_empty() {
            let todo: Vec<Encoded> = missing.iter().map(|&i| encoded[i].clone()).collect();
            let start = std::time::Instant::now();
            let model = c.model.detached()?.with_precision(self.config.precision)?;
            let probs = predict_probs(&model, &todo, c.pad, self.config.eval_batch_size, ctx.progress)?;
            let seconds = start.elapsed().as_secs_f64() / todo.len() as f64;
            for (&i, probs) in missing.iter().zip(probs) {
                cache.insert_json(text_key(texts[i]), &CachedProbabilities { probs, seconds })?;
            }
            cache.flush()?;
        }
        let cached: Vec<CachedProbabilities> = texts
            .iter()
            .map(|t| cache.get_json(text_key(t)).context("a classifier cache entry vanished"))
            .collect::<Result<_>>()?;
        Ok(Predicted {
            cost_seconds: Some(cached.iter().map(|c| c.seconds).sum()),
            api_cost_usd: None,
            outputs: cached.into_iter().map(|c| Output::from_scores(c.probs)).collect(),
            details: serde_json::json!({
                "test_truncated_texts": encoded.iter().filter(|e| e.dropped > 0).count(),
                "test_texts_from_cache": texts.len() - missing.len(),
            }),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One text's class probabilities and what computing them cost (seconds).
#[derive(Serialize, serde::Deserialize)]
struct CachedProbabilities {
    probs: Vec<f32>,
    seconds: f64,
}

impl FittedClassifier {
    /// Identifies the trained weights and how they are applied: the
    /// settings, the data, the step they were trained to (training is
    /// deterministic, and a resumed run ends bit for bit where an
    /// uninterrupted one does), and the int8 scheme when predictions use it.
    fn weights_id(&self) -> Result<String> {
        let scheme = match self.config.precision.resolve() {
            Precision::Int8 => format!("\n{}", crate::kernels::int8::SCHEME),
            _ => String::new(),
        };
        let key = format!(
            "{}\n{}\n{}{scheme}",
            serde_json::to_string(&self.config)?,
            self.state.fingerprint,
            self.state.final_weights_step()
        );
        Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())))
    }
}

/// "SmolLM2-135M-Instruct" from ".../SmolLM2-135M-Instruct.Q4_1.gguf".
fn model_name(source: &str) -> String {
    let name = source.rsplit('/').next().unwrap_or(source);
    name.split(".Q").next().unwrap_or(name).trim_end_matches(".gguf").to_string()
}

/// The classifier saved in `dir` by a previous run.
pub fn load_classifier(dir: &Path) -> Result<Classifier> {
    use anyhow::Context;
    Classifier::load(dir)
        .with_context(|| format!("loading the classifier in {} (make one with `slm-vs-llm finetune`)", dir.display()))
}
