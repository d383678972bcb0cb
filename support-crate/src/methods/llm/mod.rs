//! The generic LLM with structured outputs: prompted (zero-shot, with fixed
//! solved examples from train, or with the training examples most similar
//! to the item), its answer constrained to a JSON schema. The embedded model
//! scores every label, and its label distribution can be calibrated against
//! its prior. The prompt and the calibration are chosen on a seeded
//! stratified sample of validation; latency, token usage and cost are
//! recorded.
//!
//! - [`backend`]: an OpenAI-compatible server or the embedded GGUF model;
//! - [`openai`]: the client for any OpenAI-compatible server, with schema
//!   dialect fallback, retries, a concurrency limit and the answer cache;
//! - [`local`]: the embedded default, a GGUF run in-process: label scoring or
//!   constrained greedy decoding;
//! - [`logprobs`]: label scores from a server's `top_logprobs`;
//! - [`prompt`]: messages, the answer's JSON schema, validation of answers;
//! - [`demonstrations`]: fixed or retrieved solved examples;
//! - [`calibration`]: dividing out the model's label prior.

pub mod backend;
pub mod calibration;
pub mod demonstrations;
pub mod endpoint;
mod fit;
pub mod local;
pub mod logprobs;
pub mod openai;
pub mod prompt;
mod prompting;
mod tables;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

pub use backend::{Answerer, Backend, BackendConfig};
pub use calibration::Calibration;
pub use demonstrations::{Demonstrations, Retriever};
use fit::{ask, read_answer};
pub use local::Decoding;
use openai::Answer;
use prompt::{answer_schema, Message};
pub use prompting::{messages, shots, PromptBuilder, Retrieval};
pub use tables::{classify_table, cost_table, demonstrations_table, label_scores_table, next_token_table};

use crate::data::{stratified_sample, Example, Task};
use crate::method::{
    accuracy, choose_best, Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet,
};
use crate::methods::knn::CachedEmbedder;
use crate::metrics::Throughput;
use crate::models::embedder::{EmbedConfig, Embedder};
use crate::paths::Profile;
use crate::results::RunRecord;

/// How the question is put and the answer read: the demonstrations shown and
/// the calibration applied to the label distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prompting {
    pub demonstrations: Demonstrations,
    pub calibration: Calibration,
}

impl std::fmt::Display for Prompting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {}", self.demonstrations, self.calibration)
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
    /// Tried on validation, each with every calibration; on equal accuracy
    /// the earlier (cheaper) one wins.
    pub demonstrations: Vec<Demonstrations>,
    /// Tried on validation where the answers carry label scores (the
    /// embedded model); a server's answers are used as they are.
    pub calibrations: Vec<Calibration>,
    /// How the embedded model reads a label off its next-token distributions.
    pub decoding: Decoding,
    /// Also decode the chosen prompt greedily on validation (embedded model)
    /// and report how often it agrees with label scoring.
    pub compare_greedy: bool,
    /// Validation items each variant is tried on (seeded stratified sample).
    pub validation_items: usize,
    /// Test items to ask (seeded stratified sample); `None` = all.
    pub test_items: Option<usize>,
    pub rationale: bool,
    pub price: Price,
    /// The system prompt; `None`: [`prompt::instructions`], the label names
    /// with a description each and the answer's format.
    pub instructions: Option<String>,
    /// The sentence embedder that retrieves demonstrations.
    #[serde(skip)]
    pub embed: EmbedConfig,
}

impl LlmConfig {
    /// Zero-shot, 1, 2 and 4 fixed examples per class and three kinds of
    /// retrieved ones, each uncalibrated and calibrated both ways; 400
    /// validation items per variant and all of test. Smoke: three prompts,
    /// 24 and 40 items (the retrieved prompt runs at ~2 items/s).
    pub fn for_profile(profile: Profile) -> Self {
        let smoke = profile.is_smoke();
        let retrieved = |count, balanced, nearest_last| Demonstrations::Retrieved { count, balanced, nearest_last };
        let demonstrations = if smoke {
            vec![Demonstrations::None, Demonstrations::Fixed { per_class: 1 }, retrieved(4, false, true)]
        } else {
            vec![
                Demonstrations::None,
                Demonstrations::Fixed { per_class: 1 },
                Demonstrations::Fixed { per_class: 2 },
                Demonstrations::Fixed { per_class: 4 },
                retrieved(4, false, true),
                retrieved(4, false, false),
                retrieved(1, true, true),
            ]
        };
        LlmConfig {
            demonstrations,
            calibrations: vec![Calibration::None, Calibration::ContentFree, Calibration::ValidationPrior],
            decoding: Decoding::LabelScores,
            compare_greedy: true,
            validation_items: if smoke { 24 } else { 400 },
            test_items: if smoke { Some(40) } else { None },
            rationale: false,
            price: Price::default(),
            instructions: None,
            embed: EmbedConfig { model: crate::models::embedder::default_model(), ..EmbedConfig::default() },
        }
    }
}

/// Validation scores of one prompting.
#[derive(Debug, Clone, Serialize)]
pub struct VariantScore {
    pub prompting: Prompting,
    pub accuracy: f64,
    /// Each class's recall, in label order.
    pub recall: Vec<f64>,
    /// The lowest of them (a model that never says "World" has 0).
    pub min_recall: f64,
    pub invalid: usize,
    pub items: usize,
    /// Items per second of asking (compute time; cached answers count what they cost).
    pub items_per_second: f64,
    pub prompt_tokens_per_item: f64,
}

/// How label scoring and constrained greedy decoding compare on validation.
#[derive(Debug, Clone, Serialize)]
pub struct GreedyComparison {
    pub items: usize,
    /// Share of items where both give the same label (before calibration).
    pub agreement: f64,
    pub greedy_accuracy: f64,
    pub label_scoring_accuracy: f64,
}

/// The prompted LLM, as a [`Method`].
#[derive(Debug, Clone)]
pub struct Llm {
    /// Its line in the table of methods: "llm", or "zero-shot" for [`Llm::zero_shot`].
    pub kind: &'static str,
    pub config: LlmConfig,
    pub backend: BackendConfig,
}

impl Llm {
    /// The profile's settings; the server in `OPENAI_BASE_URL`, else the embedded model.
    pub fn for_profile(profile: Profile) -> Self {
        Llm { kind: "llm", config: LlmConfig::for_profile(profile), backend: BackendConfig::from_env() }
    }

    /// No labels at all: no demonstrations, and content-free calibration
    /// (which needs none).
    pub fn zero_shot(profile: Profile) -> Self {
        let mut llm = Llm::for_profile(profile);
        llm.kind = "zero-shot";
        llm.config.demonstrations = vec![Demonstrations::None];
        llm.config.calibrations = vec![Calibration::ContentFree];
        llm
    }

    /// Whether any prompt variant shows labelled examples.
    fn uses_labels(&self) -> bool {
        self.config.demonstrations.iter().any(|d| *d != Demonstrations::None)
    }
}

/// The backend and the prompting chosen on validation.
pub struct FittedLlm {
    pub kind: &'static str,
    pub config: LlmConfig,
    pub backend: Backend,
    pub prompts: PromptBuilder,
    pub sweep: Vec<VariantScore>,
    pub chosen: Prompting,
    /// The label prior divided out (calibrated prompting only).
    pub prior: Option<Vec<f64>>,
    pub greedy: Option<GreedyComparison>,
    trained_on: usize,
}

impl Method for Llm {
    fn name(&self) -> &'static str {
        self.kind
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_llm(data, ctx)?))
    }

    /// With labels, the 4 most similar of the budget's examples as
    /// demonstrations, uncalibrated or calibrated by the validation prior;
    /// without, as it is. All of test, no greedy comparison.
    fn for_budget(&self, _budget: &Budget) -> Box<dyn Method> {
        let mut llm = self.clone();
        let c = &mut llm.config;
        c.compare_greedy = false;
        c.test_items = None;
        if self.uses_labels() {
            c.demonstrations = vec![Demonstrations::Retrieved { count: 4, balanced: false, nearest_last: true }];
            c.calibrations = vec![Calibration::None, Calibration::ValidationPrior];
        }
        Box::new(llm)
    }

    /// The embedded model's arithmetic where it is not f32: its answers
    /// differ on a few items, so a point measured in one is not the other's.
    fn budget_note(&self) -> Option<String> {
        let precision = self.backend.precision.resolve();
        (self.backend.base_url.is_none() && !precision.is_f32()).then(|| format!("{precision} matmuls"))
    }

    fn test_items(&self) -> Option<usize> {
        self.config.test_items
    }

    fn endpoint(&self) -> Option<String> {
        self.backend.base_url.as_deref().map(openai::redact_url)
    }
}

use crate::metrics::percentile;

impl FittedLlm {
    /// Answers to `texts` with the chosen prompt.
    pub fn ask(&self, texts: &[&str], progress: bool) -> Result<Vec<Answer>> {
        let questions = self.prompts.questions(texts, self.chosen.demonstrations)?;
        ask(&self.backend, questions, &self.prompts.labels, self.config.decoding, progress, "test")
    }

    /// The label and the (calibrated) label distribution of an answer.
    pub fn read(&self, answer: &Answer) -> (Option<usize>, Option<Vec<f64>>) {
        read_answer(answer, self.prior.as_deref(), self.config.decoding)
    }

    /// What a paid API charged for `answers`, in US dollars (`None`: no price set).
    fn api_cost_usd(&self, answers: &[Answer]) -> Option<f64> {
        let price = self.config.price;
        if price == Price::default() {
            return None;
        }
        let (tokens_in, tokens_out) =
            answers.iter().fold((0, 0), |(i, o), a| (i + a.usage.prompt_tokens, o + a.usage.completion_tokens));
        Some(tokens_in as f64 * price.input_per_million / 1e6 + tokens_out as f64 * price.output_per_million / 1e6)
    }

    /// Latency, tokens and errors of a batch of answers.
    fn details(&self, answers: &[Answer]) -> serde_json::Value {
        let mut latency: Vec<f64> = answers.iter().filter(|a| a.error.is_none()).map(|a| a.latency_seconds).collect();
        latency.sort_by(f64::total_cmp);
        let mean = latency.iter().sum::<f64>() / latency.len().max(1) as f64;
        let (tokens_in, tokens_out) =
            answers.iter().fold((0, 0), |(i, o), a| (i + a.usage.prompt_tokens, o + a.usage.completion_tokens));
        let errors: BTreeMap<&str, usize> =
            answers.iter().filter_map(|a| a.error.as_ref()).fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e.kind()).or_default() += 1;
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
            "cached_answers": answers.iter().filter(|a| a.cached).count(),
        })
    }
}

impl Fitted for FittedLlm {
    fn identity(&self) -> Identity {
        let model = self.backend.model();
        Identity {
            kind: self.kind,
            endpoint: (!self.backend.in_process()).then(|| self.backend.endpoint()),
            // `llm_<model>`, `zero_shot_<model>`: one file per kind and model.
            experiment: format!("{}_{}", crate::paths::slug(self.kind), slug(&model)),
            method: match self.backend.in_process() {
                false => format!("prompted LM over HTTP, {}, structured output", self.chosen),
                true => format!("prompted LM in-process, {}, {}", self.chosen, self.config.decoding),
            },
            model,
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.config)?)
    }

    /// Nothing is trained: the prompt's examples are picked, not learned.
    fn training(&self) -> Option<Throughput> {
        None
    }

    fn trained_on(&self) -> usize {
        self.trained_on
    }

    fn scores(&self) -> &'static str {
        match self.backend.in_process() {
            true => {
                "each label's probability: the softmax of the whole labels' log-probabilities, divided by the prior \
                 and renormalised when calibrated; none for a failed item"
            }
            false => {
                "each label's probability from the server's top logprobs (read off the token paths to each label), \
                 divided by the prior and renormalised when calibrated; where the server gave none, the answer as \
                 one-hot (1 for the label answered); none for an invalid answer"
            }
        }
    }

    fn summary(&self) -> String {
        let uncalibrated: Vec<String> = self
            .sweep
            .iter()
            .filter(|s| s.prompting.calibration == Calibration::None)
            .map(|s| format!("{} {:.1}%", s.prompting.demonstrations, 100.0 * s.accuracy))
            .collect();
        let chosen = self.sweep.iter().find(|s| s.prompting == self.chosen).map_or(f64::NAN, |s| s.accuracy);
        format!(
            "{} at {}; validation ({} items), uncalibrated: {}; chosen: {} ({:.1}%)",
            self.backend.model(),
            self.backend.endpoint(),
            self.config.validation_items,
            uncalibrated.join(", "),
            self.chosen,
            100.0 * chosen
        )
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.backend.endpoint(),
            "dialect": self.backend.dialect(),
            "prompting": self.chosen,
            "decoding": match self.backend.in_process() {
                true => self.config.decoding.to_string(),
                false => format!("the server's structured output, read by {}", self.config.decoding),
            },
            "label_scores": self.backend.label_scoring(),
            "prior": self.prior,
            "greedy_comparison": self.greedy,
            "variant_sweep": self.sweep,
        })
    }

    /// Cost: the wall clock when every answer was asked now; when some came
    /// from the cache, the time each answer cost when it was asked.
    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted> {
        let answers = self.ask(texts, ctx.progress)?;
        let cost_seconds =
            answers.iter().any(|a| a.cached).then(|| answers.iter().map(|a| a.compute_seconds).sum::<f64>());
        let classes = self.prompts.labels.len();
        let outputs = answers
            .iter()
            .map(|a| {
                let (label, dist) = self.read(a);
                let scores = match dist {
                    Some(p) => Some(p.iter().map(|&x| x as f32).collect()),
                    None => label.map(|l| (0..classes).map(|c| f32::from(u8::from(c == l))).collect()),
                };
                Output { label, scores, error: a.error.as_ref().map(|e| e.to_string()) }
            })
            .collect();
        Ok(Predicted {
            outputs,
            cost_seconds,
            api_cost_usd: self.api_cost_usd(&answers),
            details: self.details(&answers),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A file-name form of a model name, without its directory (see [`crate::paths::slug`]).
pub fn slug(model: &str) -> String {
    crate::paths::slug(model.rsplit('/').next().unwrap_or(model))
}
