//! The generic LLM with structured outputs: prompted (zero-shot, or with
//! solved examples from train), its answer constrained to a JSON schema.
//! The prompt variant is chosen on a seeded stratified sample of
//! validation; latency, token usage and cost are recorded.
//!
//! - [`backend`]: an OpenAI-compatible server or the embedded GGUF model;
//! - [`openai`]: the client for any OpenAI-compatible server, with schema
//!   dialect fallback, retries, a concurrency limit and the answer cache;
//! - [`local`]: the embedded default, a GGUF run in-process with decoding
//!   constrained to the schema;
//! - [`prompt`]: messages, the answer's JSON schema, validation of answers.

pub mod backend;
pub mod local;
pub mod openai;
pub mod prompt;

use std::any::Any;
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

pub use backend::{Backend, BackendConfig};
use openai::Answer;
use prompt::{answer_schema, few_shot, zero_shot, Message};

use crate::data::{stratified_sample, Example};
use crate::method::{accuracy, choose_best, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet};
use crate::metrics::Throughput;
use crate::paths::Profile;
use crate::results::RunRecord;

/// How the question is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptVariant {
    /// The classes with a description each, then the text.
    ZeroShot,
    /// As zero-shot, preceded by this many solved examples per class from train.
    FewShot(usize),
}

impl std::fmt::Display for PromptVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptVariant::ZeroShot => write!(f, "zero-shot"),
            PromptVariant::FewShot(k) => write!(f, "few-shot ({k} per class)"),
        }
    }
}

/// Prices in US dollars per million tokens (0 for a local server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LlmConfig {
    /// Tried on validation; on equal accuracy the earlier (shorter prompt) wins.
    pub variants: Vec<PromptVariant>,
    /// Validation items each variant is tried on (seeded stratified sample).
    pub validation_items: usize,
    /// Test items to ask (seeded stratified sample); `None` = all.
    pub test_items: Option<usize>,
    pub rationale: bool,
    pub price: Price,
}

impl LlmConfig {
    /// 400 validation items per variant and all of test; smoke: 40 and 80.
    pub fn for_profile(profile: Profile) -> Self {
        let smoke = profile.is_smoke();
        LlmConfig {
            variants: vec![PromptVariant::ZeroShot, PromptVariant::FewShot(1)],
            validation_items: if smoke { 40 } else { 400 },
            test_items: if smoke { Some(80) } else { None },
            rationale: false,
            price: Price::default(),
        }
    }
}

/// The messages for one text under a variant.
pub fn messages(variant: PromptVariant, text: &str, labels: &[String], shots: &[Example]) -> Vec<Message> {
    match variant {
        PromptVariant::ZeroShot => zero_shot(text, labels),
        PromptVariant::FewShot(_) => few_shot(text, labels, shots),
    }
}

/// `k` training examples per class, seeded, interleaved by class.
pub fn shots(train: &[Example], num_classes: usize, k: usize, seed: u64) -> Vec<Example> {
    let picked = stratified_sample(train.to_vec(), num_classes, k * num_classes, seed);
    let mut by_class: Vec<Vec<Example>> = vec![Vec::new(); num_classes];
    for e in picked {
        by_class[e.label].push(e);
    }
    (0..k).flat_map(|i| by_class.iter().filter_map(move |c| c.get(i).cloned())).collect()
}

/// Validation accuracy of one prompt variant.
#[derive(Debug, Clone, Serialize)]
pub struct VariantScore {
    pub variant: PromptVariant,
    pub accuracy: f64,
    pub invalid: usize,
    pub items: usize,
}

/// The prompted LLM, as a [`Method`].
pub struct Llm {
    pub config: LlmConfig,
    pub backend: BackendConfig,
}

impl Llm {
    /// The profile's settings; the server in `OPENAI_BASE_URL`, else the embedded model.
    pub fn for_profile(profile: Profile) -> Self {
        Llm { config: LlmConfig::for_profile(profile), backend: BackendConfig::from_env() }
    }
}

/// The backend and the prompt chosen on validation.
pub struct FittedLlm {
    pub config: LlmConfig,
    pub backend: Backend,
    pub sweep: Vec<VariantScore>,
    pub chosen: PromptVariant,
    /// The solved examples the chosen prompt shows.
    pub shots: Vec<Example>,
    pub labels: Vec<String>,
    trained_on: usize,
}

fn ask(
    backend: &Backend,
    texts: &[&str],
    variant: PromptVariant,
    labels: &[String],
    shots: &[Example],
    progress: bool,
    what: &str,
) -> Result<Vec<Answer>> {
    let schema = answer_schema(labels, false);
    let questions = texts.iter().map(|t| messages(variant, t, labels, shots)).collect();
    let bar = crate::progress::bar(texts.len() as u64, what, progress);
    let answers = backend.ask_all(questions, &schema, labels, &bar);
    bar.finish_and_clear();
    answers
}

impl Llm {
    /// Opens the backend and chooses the prompt variant on validation.
    pub fn fit_llm(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        self.fit_on(Backend::open(&self.backend)?, data, ctx)
    }

    /// Chooses the prompt variant on validation, asking `backend`.
    pub fn fit_on(&self, backend: Backend, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        let config = &self.config;
        if config.variants.is_empty() {
            bail!("no prompt variant to try");
        }
        let classes = data.num_classes();
        let validation = stratified_sample(data.validation.to_vec(), classes, config.validation_items, ctx.seed);
        let texts = crate::data::texts(&validation);
        let max_shots =
            config.variants.iter().map(|v| if let PromptVariant::FewShot(k) = v { *k } else { 0 }).max().unwrap_or(0);
        let all_shots = shots(data.train, classes, max_shots, ctx.seed);
        let shots_for = |v: PromptVariant| -> Vec<Example> {
            match v {
                PromptVariant::FewShot(k) => all_shots.iter().take(k * classes).cloned().collect(),
                PromptVariant::ZeroShot => Vec::new(),
            }
        };
        let mut sweep = Vec::new();
        for &variant in &config.variants {
            let answers = ask(&backend, &texts, variant, data.labels, &shots_for(variant), ctx.progress, "validation")?;
            let labels: Vec<Option<usize>> = answers.iter().map(|a| a.label).collect();
            let score = VariantScore {
                variant,
                accuracy: accuracy(&validation, &labels),
                invalid: answers.iter().filter(|a| a.error.is_some()).count(),
                items: validation.len(),
            };
            tracing::info!(%variant, accuracy = score.accuracy, invalid = score.invalid, "validation");
            sweep.push(score);
        }
        let chosen = choose_best(&sweep, |s| s.accuracy).expect("variants is not empty").variant;
        Ok(FittedLlm {
            config: config.clone(),
            backend,
            shots: shots_for(chosen),
            sweep,
            chosen,
            labels: data.labels.to_vec(),
            trained_on: data.train.len(),
        })
    }
}

impl Method for Llm {
    fn name(&self) -> &str {
        "llm"
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_llm(data, ctx)?))
    }

    fn test_items(&self) -> Option<usize> {
        self.config.test_items
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl FittedLlm {
    /// Answers to `texts` with the chosen prompt.
    pub fn ask(&self, texts: &[&str], progress: bool) -> Result<Vec<Answer>> {
        ask(&self.backend, texts, self.chosen, &self.labels, &self.shots, progress, "test")
    }

    /// Latency, tokens, cost and errors of a batch of answers.
    fn details(&self, answers: &[Answer]) -> serde_json::Value {
        let mut latency: Vec<f64> = answers.iter().filter(|a| a.error.is_none()).map(|a| a.latency_seconds).collect();
        latency.sort_by(f64::total_cmp);
        let mean = latency.iter().sum::<f64>() / latency.len().max(1) as f64;
        let (tokens_in, tokens_out) =
            answers.iter().fold((0, 0), |(i, o), a| (i + a.usage.prompt_tokens, o + a.usage.completion_tokens));
        let price = self.config.price;
        let cost =
            tokens_in as f64 * price.input_per_million / 1e6 + tokens_out as f64 * price.output_per_million / 1e6;
        let errors: BTreeMap<String, usize> =
            answers.iter().filter_map(|a| a.error.as_ref()).fold(BTreeMap::new(), |mut m, e| {
                let kind = format!("{e:?}").split('(').next().unwrap_or_default().to_string();
                *m.entry(kind).or_default() += 1;
                m
            });
        let invalid = answers.iter().filter(|a| a.label.is_none()).count();
        serde_json::json!({
            "invalid_rate": invalid as f64 / answers.len().max(1) as f64,
            "errors_by_kind": errors,
            "latency_mean_seconds": mean,
            "latency_p95_seconds": percentile(&latency, 0.95),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_per_1000_items_usd": 1000.0 * cost / answers.len().max(1) as f64,
            "cached_answers": answers.iter().filter(|a| a.cached).count(),
        })
    }
}

impl Fitted for FittedLlm {
    fn identity(&self) -> Identity {
        let model = self.backend.model();
        Identity {
            experiment: format!("llm_{}", slug(&model)),
            method: match self.backend {
                Backend::Server(_) => format!("generic LLM, {} structured output", self.chosen),
                Backend::Local(_) => format!("generic LLM in-process, {}, constrained decoding", self.chosen),
            },
            model,
        }
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }

    /// Nothing is trained: the prompt's examples are picked, not learned.
    fn training(&self) -> Option<Throughput> {
        None
    }

    fn trained_on(&self) -> usize {
        self.trained_on
    }

    fn scores(&self) -> &'static str {
        "the answer as one-hot (1 for the label the model answered, 0 for the others); none for an invalid answer"
    }

    fn summary(&self) -> String {
        let sweep: Vec<String> = self
            .sweep
            .iter()
            .map(|s| format!("{} {:.2}% ({} invalid of {})", s.variant, 100.0 * s.accuracy, s.invalid, s.items))
            .collect();
        format!(
            "{} at {}; validation: {}; chosen: {}",
            self.backend.model(),
            self.backend.endpoint(),
            sweep.join(", "),
            self.chosen
        )
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.backend.endpoint(),
            "dialect": self.backend.dialect(),
            "prompt_variant": self.chosen,
            "variant_sweep": self.sweep,
        })
    }

    /// Cost: the wall clock when every answer was asked now; when some came
    /// from the cache, the time each answer cost when it was asked.
    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted> {
        let answers = self.ask(texts, ctx.progress)?;
        let cost_seconds =
            answers.iter().any(|a| a.cached).then(|| answers.iter().map(|a| a.compute_seconds).sum::<f64>());
        let classes = self.labels.len();
        let outputs = answers
            .iter()
            .map(|a| Output {
                label: a.label,
                scores: a.label.map(|l| (0..classes).map(|c| f32::from(u8::from(c == l))).collect()),
                error: a.error.as_ref().map(|e| e.to_string()),
            })
            .collect();
        Ok(Predicted { outputs, cost_seconds, details: self.details(&answers) })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Labels for a few texts asked with `variant` and `shots`: text, label, the answer, latency.
pub fn classify_table(
    backend: &Backend,
    labels: &[String],
    variant: PromptVariant,
    shots: &[Example],
    texts: &[&str],
) -> Result<DataFrame> {
    let answers = backend.ask_all(
        texts.iter().map(|t| messages(variant, t, labels, shots)).collect(),
        &answer_schema(labels, false),
        labels,
        &ProgressBar::hidden(),
    )?;
    let label = |a: &Answer| a.label.map_or_else(|| "(no answer)".to_string(), |l| labels[l].clone());
    Ok(DataFrame::new_infer_height(vec![
        Column::new("text".into(), texts.to_vec()),
        Column::new("label".into(), answers.iter().map(label).collect::<Vec<_>>()),
        Column::new("answer".into(), answers.iter().map(shown_answer).collect::<Vec<_>>()),
        Column::new("seconds".into(), answers.iter().map(|a| a.latency_seconds).collect::<Vec<_>>()),
    ])?)
}

impl FittedLlm {
    /// Validation accuracy of each prompt variant.
    pub fn sweep_table(&self) -> Result<DataFrame> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("prompt".into(), self.sweep.iter().map(|s| s.variant.to_string()).collect::<Vec<_>>()),
            Column::new("validation items".into(), self.sweep.iter().map(|s| s.items as u64).collect::<Vec<_>>()),
            Column::new(
                "accuracy %".into(),
                self.sweep.iter().map(|s| (1000.0 * s.accuracy).round() / 10.0).collect::<Vec<_>>(),
            ),
            Column::new("invalid".into(), self.sweep.iter().map(|s| s.invalid as u64).collect::<Vec<_>>()),
            Column::new(
                "chosen".into(),
                self.sweep.iter().map(|s| if s.variant == self.chosen { "✓" } else { "" }).collect::<Vec<_>>(),
            ),
        ])?)
    }
}

/// The model's text, or the error that replaced it.
fn shown_answer(a: &Answer) -> String {
    match (&a.error, &a.content) {
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.clone(),
        (None, None) => String::new(),
    }
}

/// Latency, throughput, tokens and cost of an LLM run's test answers, one row.
pub fn cost_table(record: &RunRecord) -> Result<DataFrame> {
    let x = &record.extra;
    let f = |key: &str| x.get(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    let n = record.metrics.items.max(1) as f64;
    let rate = record.timings.get("test_inference").map_or(f64::NAN, |t| t.items_per_second);
    Ok(DataFrame::new_infer_height(vec![
        Column::new("model".into(), [record.model.clone()]),
        Column::new("where".into(), [x.get("endpoint").and_then(|v| v.as_str()).unwrap_or_default().to_string()]),
        Column::new("items".into(), [record.metrics.items as u64]),
        Column::new("items/s".into(), [(100.0 * rate).round() / 100.0]),
        Column::new("latency mean s".into(), [(1000.0 * f("latency_mean_seconds")).round() / 1000.0]),
        Column::new("latency p95 s".into(), [(1000.0 * f("latency_p95_seconds")).round() / 1000.0]),
        Column::new("tokens in / item".into(), [(f("tokens_in") / n).round()]),
        Column::new("tokens out / item".into(), [(f("tokens_out") / n * 10.0).round() / 10.0]),
        Column::new("USD / 1000 items".into(), [f("cost_per_1000_items_usd")]),
        Column::new("cached answers".into(), [f("cached_answers") as u64]),
    ])?)
}

/// A file-name form of a model name: "SmolLM2-135M-Instruct.Q4_1" → "smollm2_135m_instruct_q4_1".
pub fn slug(model: &str) -> String {
    let name = model.rsplit('/').next().unwrap_or(model);
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}
