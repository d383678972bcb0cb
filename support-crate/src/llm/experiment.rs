//! The LLM experiment: prompt variants compared on validation, the chosen
//! one evaluated on test (all of it, or a seeded stratified sample whose
//! size is stated), with latency, token usage and cost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

use super::local::LocalLlm;
use super::openai::{Answer, OpenAiClient};
use super::prompt::{answer_schema, few_shot, zero_shot, Message};
use crate::data::{stratified_sample, Dataset, Example};
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};
use crate::results::{predictions_for, DataSizes, Hardware, Prediction, RunRecord, SCHEMA_VERSION};

/// Where the answers come from.
pub enum Backend {
    /// An OpenAI-compatible server.
    Server(Arc<OpenAiClient>),
    /// The embedded GGUF model, decoding constrained to the schema.
    Local(Box<LocalLlm>),
}

/// Which LLM answers, and how it is reached.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// A server's base URL up to `/v1`; `None`: the embedded model.
    pub base_url: Option<String>,
    /// The model name on the server.
    pub model: String,
    /// The embedded model's GGUF file (default: [`super::local::default_model`]).
    pub gguf: Option<PathBuf>,
    /// Requests in flight at once (server).
    pub concurrency: usize,
    /// Before a request is abandoned, then retried (server).
    pub timeout: Duration,
    /// Tokens of several items per forward pass (embedded).
    pub pack_tokens: usize,
    /// Where answers are cached (`None`: nowhere).
    pub cache_dir: Option<PathBuf>,
}

impl BackendConfig {
    /// `OPENAI_BASE_URL` and `OPENAI_MODEL` (default `gpt-4o-mini`) from the
    /// environment; the key is read from `OPENAI_API_KEY` when connecting.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        BackendConfig {
            base_url: var("OPENAI_BASE_URL"),
            model: var("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            gguf: None,
            concurrency: 4,
            timeout: Duration::from_secs(60),
            pack_tokens: 512,
            cache_dir: Some(crate::cache::cache_dir().join("llm")),
        }
    }
}

impl Backend {
    /// The server when a base URL is set, else the embedded GGUF model.
    pub fn open(config: &BackendConfig) -> Result<Self> {
        use super::openai::{ClientConfig, Endpoint};
        // The key comes from OPENAI_API_KEY only, never from a flag (shell history, process lists).
        if let Some(endpoint) = Endpoint::from_env(config.base_url.clone(), config.model.clone(), None) {
            let client_config = ClientConfig {
                timeout: config.timeout,
                concurrency: config.concurrency,
                cache_dir: config.cache_dir.clone(),
                ..Default::default()
            };
            return Ok(Backend::Server(Arc::new(OpenAiClient::new(endpoint, client_config)?)));
        }
        let Some(gguf) = config.gguf.clone().or_else(super::local::default_model) else {
            bail!(
                "no LLM: set OPENAI_BASE_URL (and OPENAI_API_KEY where the server needs one) for a server, or run \
                 `bash scripts/setup.sh` (fetches the embedded SmolLM2 GGUF to data/models) or give a .gguf file"
            );
        };
        let mut llm = LocalLlm::load(&gguf, config.cache_dir.as_deref())?;
        llm.pack_tokens = config.pack_tokens;
        Ok(Backend::Local(Box::new(llm)))
    }

    /// Answers every question; failures are recorded in the answers, never dropped.
    pub fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        schema: &serde_json::Value,
        labels: &[String],
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        match self {
            Backend::Server(client) => client.ask_all(questions, schema, labels, progress),
            Backend::Local(llm) => llm.ask_all(&questions, schema, labels, progress),
        }
    }

    /// The model's name as results name it.
    pub fn model(&self) -> String {
        match self {
            Backend::Server(client) => client.endpoint().model.clone(),
            Backend::Local(llm) => llm.name().to_string(),
        }
    }

    /// The server's base URL, or where the embedded model ran.
    pub fn endpoint(&self) -> String {
        match self {
            Backend::Server(client) => client.endpoint().base_url.clone(),
            Backend::Local(llm) => {
                let file = llm.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                format!("in-process (candle, {file})")
            }
        }
    }

    /// How structured output was obtained.
    pub fn dialect(&self) -> Option<String> {
        match self {
            Backend::Server(client) => client.dialect().map(|d| format!("{d:?}")),
            Backend::Local(_) => Some("constrained decoding".into()),
        }
    }
}

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
    pub variants: Vec<PromptVariant>,
    /// Validation items each variant is tried on (seeded stratified sample).
    pub validation_items: usize,
    /// Test items (seeded stratified sample); `None` = all.
    pub test_items: Option<usize>,
    pub rationale: bool,
    pub price: Price,
    pub seed: u64,
}

impl LlmConfig {
    pub fn new(smoke: bool) -> Self {
        LlmConfig {
            variants: vec![PromptVariant::ZeroShot, PromptVariant::FewShot(1)],
            validation_items: if smoke { 40 } else { 400 },
            test_items: if smoke { Some(80) } else { None },
            rationale: false,
            price: Price::default(),
            seed: 42,
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
pub fn shots(ds: &Dataset, k: usize, seed: u64) -> Vec<Example> {
    let picked = stratified_sample(ds.train.clone(), ds.num_classes(), k * ds.num_classes(), seed);
    let mut by_class: Vec<Vec<Example>> = vec![Vec::new(); ds.num_classes()];
    for e in picked {
        by_class[e.label].push(e);
    }
    (0..k).flat_map(|i| by_class.iter().filter_map(move |c| c.get(i).cloned())).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantScore {
    pub variant: PromptVariant,
    pub accuracy: f64,
    pub invalid: usize,
    pub items: usize,
}

pub struct LlmRun {
    pub config: LlmConfig,
    pub sweep: Vec<VariantScore>,
    pub chosen: PromptVariant,
    /// The test items asked (all of test, or the stated sample).
    pub test: Vec<Example>,
    pub answers: Vec<Answer>,
    pub metrics: Metrics,
    pub wall: Throughput,
}

fn ask(
    backend: &Backend,
    items: &[Example],
    variant: PromptVariant,
    ds: &Dataset,
    shots: &[Example],
    progress: bool,
    what: &str,
) -> Result<(Vec<Answer>, Throughput)> {
    let schema = answer_schema(&ds.labels, false);
    let questions = items.iter().map(|e| messages(variant, &e.text, &ds.labels, shots)).collect();
    let bar = crate::progress::bar(items.len() as u64, what, progress);
    let (answers, wall) = Throughput::measure(items.len(), || backend.ask_all(questions, &schema, &ds.labels, &bar));
    bar.finish_and_clear();
    Ok((answers?, wall))
}

/// Chooses the prompt variant on validation, then asks the test items once.
pub fn run(ds: &Dataset, backend: &Backend, config: &LlmConfig, progress: bool) -> Result<LlmRun> {
    if config.variants.is_empty() {
        bail!("no prompt variant to try");
    }
    let validation = stratified_sample(ds.validation.clone(), ds.num_classes(), config.validation_items, config.seed);
    let max_shots =
        config.variants.iter().map(|v| if let PromptVariant::FewShot(k) = v { *k } else { 0 }).max().unwrap_or(0);
    let all_shots = shots(ds, max_shots, config.seed);
    let shots_for = |v: PromptVariant| -> Vec<Example> {
        match v {
            PromptVariant::FewShot(k) => all_shots.iter().take(k * ds.num_classes()).cloned().collect(),
            PromptVariant::ZeroShot => Vec::new(),
        }
    };
    let mut sweep = Vec::new();
    for &variant in &config.variants {
        let (answers, _) = ask(backend, &validation, variant, ds, &shots_for(variant), progress, "validation")?;
        let correct = answers.iter().zip(&validation).filter(|(a, e)| a.label == Some(e.label)).count();
        let score = VariantScore {
            variant,
            accuracy: correct as f64 / validation.len().max(1) as f64,
            invalid: answers.iter().filter(|a| a.error.is_some()).count(),
            items: validation.len(),
        };
        tracing::info!(%variant, accuracy = score.accuracy, invalid = score.invalid, "validation");
        sweep.push(score);
    }
    // Best accuracy; ties go to the shorter (earlier) prompt.
    let chosen = sweep.iter().fold(&sweep[0], |best, s| if s.accuracy > best.accuracy { s } else { best }).variant;

    let test = match config.test_items {
        Some(n) if n < ds.test.len() => stratified_sample(ds.test.clone(), ds.num_classes(), n, config.seed),
        _ => ds.test.clone(),
    };
    let (answers, wall) = ask(backend, &test, chosen, ds, &shots_for(chosen), progress, "test")?;
    let labels: Vec<usize> = test.iter().map(|e| e.label).collect();
    let predictions: Vec<Option<usize>> = answers.iter().map(|a| a.label).collect();
    let metrics = evaluate(&labels, &predictions, &ds.labels, Bootstrap::default());
    Ok(LlmRun { config: config.clone(), sweep, chosen, test, answers, metrics, wall })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl LlmRun {
    /// Mean and 95th percentile latency of the answered requests (a cached
    /// answer counts with the latency it had when it was asked).
    pub fn latency(&self) -> (f64, f64) {
        let mut l: Vec<f64> = self.answers.iter().filter(|a| a.error.is_none()).map(|a| a.latency_seconds).collect();
        l.sort_by(f64::total_cmp);
        (l.iter().sum::<f64>() / l.len().max(1) as f64, percentile(&l, 0.95))
    }

    /// Test items per second: measured on the wall clock when every answer
    /// was asked now; when some came from the cache, from the time each
    /// answer cost when it was asked.
    pub fn throughput(&self) -> Throughput {
        if self.answers.iter().any(|a| a.cached) {
            Throughput::new(self.answers.iter().map(|a| a.compute_seconds).sum(), self.answers.len())
        } else {
            self.wall
        }
    }

    pub fn tokens(&self) -> (u64, u64) {
        self.answers.iter().fold((0, 0), |(i, o), a| (i + a.usage.prompt_tokens, o + a.usage.completion_tokens))
    }

    pub fn cost_per_1000(&self) -> f64 {
        let (i, o) = self.tokens();
        let cost = i as f64 * self.config.price.input_per_million / 1e6
            + o as f64 * self.config.price.output_per_million / 1e6;
        1000.0 * cost / self.answers.len().max(1) as f64
    }

    pub fn predictions(&self) -> Vec<Prediction> {
        predictions_for(&self.test, self.answers.iter().map(|a| a.label))
    }

    /// The results record (`results/llm_<model>.json`).
    pub fn record(&self, ds: &Dataset, backend: &Backend, command: String, split_seed: u64) -> RunRecord {
        let model = backend.model();
        let (mean, p95) = self.latency();
        let (tokens_in, tokens_out) = self.tokens();
        let errors: BTreeMap<String, usize> =
            self.answers.iter().filter_map(|a| a.error.as_ref()).fold(BTreeMap::new(), |mut m, e| {
                let kind = format!("{e:?}").split('(').next().unwrap_or_default().to_string();
                *m.entry(kind).or_default() += 1;
                m
            });
        RunRecord {
            schema_version: SCHEMA_VERSION,
            experiment: format!("llm_{}", slug(&model)),
            method: match backend {
                Backend::Server(_) => format!("generic LLM, {} structured output", self.chosen),
                Backend::Local(_) => format!("generic LLM in-process, {}, constrained decoding", self.chosen),
            },
            model: model.clone(),
            command,
            config: serde_json::to_value(&self.config).unwrap_or_default(),
            seeds: [
                ("split".to_string(), split_seed),
                ("sample".to_string(), self.config.seed),
                ("bootstrap".to_string(), self.metrics.bootstrap_seed),
            ]
            .into(),
            data: DataSizes { test: self.test.len(), ..DataSizes::of(ds) },
            hardware: Hardware::detect(),
            timings: [("test_inference".to_string(), self.throughput())].into(),
            metrics: self.metrics.clone(),
            extra: serde_json::json!({
                "endpoint": backend.endpoint(),
                "dialect": backend.dialect(),
                "prompt_variant": self.chosen,
                "variant_sweep": self.sweep,
                "test_sample": self.test.len() < ds.test.len(),
                "invalid_rate": self.metrics.invalid as f64 / self.answers.len().max(1) as f64,
                "errors_by_kind": errors,
                "latency_mean_seconds": mean,
                "latency_p95_seconds": p95,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost_per_1000_items_usd": self.cost_per_1000(),
                "cached_answers": self.answers.iter().filter(|a| a.cached).count(),
            }),
        }
    }
}

/// Labels for a few texts, as the experiment would ask them (`variant`,
/// examples from train): text, label, the raw answer, latency.
pub fn classify_table(
    backend: &Backend,
    ds: &Dataset,
    variant: PromptVariant,
    texts: &[&str],
    seed: u64,
) -> Result<DataFrame> {
    let k = if let PromptVariant::FewShot(k) = variant { k } else { 0 };
    let examples = shots(ds, k, seed);
    let questions = texts.iter().map(|t| messages(variant, t, &ds.labels, &examples)).collect();
    let answers = backend.ask_all(questions, &answer_schema(&ds.labels, false), &ds.labels, &ProgressBar::hidden())?;
    let label = |a: &Answer| a.label.map_or_else(|| "(no answer)".to_string(), |l| ds.labels[l].clone());
    Ok(DataFrame::new_infer_height(vec![
        Column::new("text".into(), texts.to_vec()),
        Column::new("label".into(), answers.iter().map(label).collect::<Vec<_>>()),
        Column::new("answer".into(), answers.iter().map(shown_answer).collect::<Vec<_>>()),
        Column::new("seconds".into(), answers.iter().map(|a| a.latency_seconds).collect::<Vec<_>>()),
    ])?)
}

/// The model's text, or the error that replaced it.
fn shown_answer(a: &Answer) -> String {
    match (&a.error, &a.content) {
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.clone(),
        (None, None) => String::new(),
    }
}

impl LlmRun {
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

    /// Up to `rows` test items without a valid answer, with what came back.
    pub fn invalid_table(&self, labels: &[String], rows: usize) -> Result<DataFrame> {
        let bad: Vec<usize> = (0..self.answers.len()).filter(|&i| self.answers[i].error.is_some()).take(rows).collect();
        Ok(DataFrame::new_infer_height(vec![
            Column::new("test row".into(), bad.iter().map(|&i| self.test[i].index as u64).collect::<Vec<_>>()),
            Column::new("text".into(), bad.iter().map(|&i| self.test[i].text.clone()).collect::<Vec<_>>()),
            Column::new("true".into(), bad.iter().map(|&i| labels[self.test[i].label].clone()).collect::<Vec<_>>()),
            Column::new("answer".into(), bad.iter().map(|&i| shown_answer(&self.answers[i])).collect::<Vec<_>>()),
        ])?)
    }

    /// Up to `rows` wrong test answers.
    pub fn error_table(&self, labels: &[String], rows: usize) -> Result<DataFrame> {
        let wrong: Vec<usize> = (0..self.answers.len())
            .filter(|&i| self.answers[i].label.is_some_and(|l| l != self.test[i].label))
            .take(rows)
            .collect();
        let name = |i: usize| labels[self.answers[i].label.unwrap_or_default()].clone();
        Ok(DataFrame::new_infer_height(vec![
            Column::new("test row".into(), wrong.iter().map(|&i| self.test[i].index as u64).collect::<Vec<_>>()),
            Column::new("text".into(), wrong.iter().map(|&i| self.test[i].text.clone()).collect::<Vec<_>>()),
            Column::new("true".into(), wrong.iter().map(|&i| labels[self.test[i].label].clone()).collect::<Vec<_>>()),
            Column::new("answered".into(), wrong.iter().map(|&i| name(i)).collect::<Vec<_>>()),
        ])?)
    }

    /// Latency, throughput, tokens and cost of the test run, one row.
    pub fn cost_table(&self, backend: &Backend) -> Result<DataFrame> {
        let (mean, p95) = self.latency();
        let (tokens_in, tokens_out) = self.tokens();
        let n = self.answers.len().max(1) as f64;
        Ok(DataFrame::new_infer_height(vec![
            Column::new("model".into(), [backend.model()]),
            Column::new("where".into(), [backend.endpoint()]),
            Column::new("items".into(), [self.answers.len() as u64]),
            Column::new("items/s".into(), [(100.0 * self.throughput().items_per_second).round() / 100.0]),
            Column::new("latency mean s".into(), [(1000.0 * mean).round() / 1000.0]),
            Column::new("latency p95 s".into(), [(1000.0 * p95).round() / 1000.0]),
            Column::new("tokens in / item".into(), [(tokens_in as f64 / n).round()]),
            Column::new("tokens out / item".into(), [(tokens_out as f64 / n * 10.0).round() / 10.0]),
            Column::new("USD / 1000 items".into(), [self.cost_per_1000()]),
            Column::new("cached answers".into(), [self.answers.iter().filter(|a| a.cached).count() as u64]),
        ])?)
    }
}

pub fn slug(model: &str) -> String {
    let name = model.rsplit('/').next().unwrap_or(model);
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}
