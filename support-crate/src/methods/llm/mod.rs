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
pub mod local;
pub mod logprobs;
pub mod openai;
pub mod prompt;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

pub use backend::{Answerer, Backend, BackendConfig};
pub use calibration::Calibration;
pub use demonstrations::{Demonstrations, Retriever};
pub use local::Decoding;
use openai::Answer;
use prompt::{answer_schema, Message};

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

/// The messages for one text with the default instructions, after its
/// demonstrations (none: zero-shot).
pub fn messages(task: &Task, text: &str, labels: &[String], demonstrations: &[Example]) -> Vec<Message> {
    prompt::conversation(&prompt::instructions(task, labels), text, labels, demonstrations)
}

/// `k` training examples per class, seeded, interleaved by class.
pub fn shots(train: &[Example], num_classes: usize, k: usize, seed: u64) -> Vec<Example> {
    demonstrations::fixed(train, num_classes, k, seed)
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

/// Retrieval of demonstrations: the embedder for new texts and the index of the training split.
pub struct Retrieval {
    pub embedder: CachedEmbedder,
    pub retriever: Retriever,
}

impl Retrieval {
    /// Embeds the training split (cached on disk, shared with K-NN).
    pub fn build(config: &EmbedConfig, train: &[Example], num_classes: usize, progress: bool) -> Result<Self> {
        let embedder = CachedEmbedder::new(Embedder::load(config)?)?;
        let (embeddings, _) = embedder.embed(&crate::data::texts(train), progress)?;
        let retriever = Retriever::new(train, &embeddings, num_classes)?;
        Ok(Retrieval { embedder, retriever })
    }

    /// The demonstrations for each text, in prompt order.
    pub fn for_texts(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Example>>> {
        let Demonstrations::Retrieved { count, balanced, nearest_last } = demonstrations else {
            bail!("{demonstrations} is not retrieved");
        };
        let (queries, _) = self.embedder.embed(texts, false)?;
        self.retriever.retrieve(&queries, count, balanced, nearest_last)
    }
}

/// What every prompt needs besides the text: the system prompt, the labels,
/// the fixed demonstrations and the retrieval index.
pub struct PromptBuilder {
    pub system: String,
    pub labels: Vec<String>,
    /// The largest fixed set; a smaller one is its first `k × classes`.
    pub fixed: Vec<Example>,
    pub retrieval: Option<Retrieval>,
}

impl PromptBuilder {
    /// Fixed demonstrations for the largest `Fixed` variant, the retrieval
    /// index if any variant retrieves.
    pub fn new(config: &LlmConfig, data: &TrainingSet, seed: u64, progress: bool) -> Result<Self> {
        let classes = data.num_classes();
        let variants = &config.demonstrations;
        let max_fixed = variants
            .iter()
            .map(|v| if let Demonstrations::Fixed { per_class } = v { *per_class } else { 0 })
            .max()
            .unwrap_or(0);
        let retrieval = if variants.iter().any(Demonstrations::is_retrieved) {
            Some(Retrieval::build(&config.embed, data.train, classes, progress)?)
        } else {
            None
        };
        Ok(PromptBuilder {
            system: config.instructions.clone().unwrap_or_else(|| prompt::instructions(data.task, data.labels)),
            labels: data.labels.to_vec(),
            fixed: shots(data.train, classes, max_fixed, seed),
            retrieval,
        })
    }

    /// The demonstrations each text is shown.
    pub fn demonstrations_for(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Example>>> {
        Ok(match demonstrations {
            Demonstrations::None => vec![Vec::new(); texts.len()],
            Demonstrations::Fixed { per_class } => {
                let fixed: Vec<Example> = self.fixed.iter().take(per_class * self.labels.len()).cloned().collect();
                vec![fixed; texts.len()]
            }
            Demonstrations::Retrieved { .. } => {
                let Some(retrieval) = &self.retrieval else { bail!("no retrieval index for {demonstrations}") };
                retrieval.for_texts(texts, demonstrations)?
            }
        })
    }

    /// The messages of every text.
    pub fn questions(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Message>>> {
        let shown = self.demonstrations_for(texts, demonstrations)?;
        Ok(texts.iter().zip(&shown).map(|(t, d)| prompt::conversation(&self.system, t, &self.labels, d)).collect())
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

fn ask(
    backend: &Backend,
    questions: Vec<Vec<Message>>,
    labels: &[String],
    decoding: Decoding,
    progress: bool,
    what: &str,
) -> Result<Vec<Answer>> {
    let schema = answer_schema(labels, false);
    let bar = crate::progress::bar(questions.len() as u64, what, progress);
    let answers = backend.ask_all(questions, &schema, labels, decoding, &bar);
    bar.finish_and_clear();
    answers
}

/// The label each answer gives under `prior` (none: the answer's own), and
/// its distribution over labels when the answer carries label scores and
/// `decoding` reads them (constrained greedy decoding takes the answer as it is).
fn read_answer(answer: &Answer, prior: Option<&[f64]>, decoding: Decoding) -> (Option<usize>, Option<Vec<f64>>) {
    match (&answer.label_log_probs, answer.error.is_none() && decoding == Decoding::LabelScores) {
        (Some(log_probs), true) => {
            let mut p = calibration::distribution(log_probs);
            if let Some(prior) = prior {
                p = calibration::calibrate(&p, prior);
            }
            (Some(calibration::argmax(&p)), Some(p))
        }
        _ => (answer.label, None),
    }
}

/// Accuracy and each class's recall of `predicted` on `examples`.
fn accuracy_and_recall(examples: &[Example], predicted: &[Option<usize>], classes: usize) -> (f64, Vec<f64>) {
    let mut right = vec![0usize; classes];
    let mut total = vec![0usize; classes];
    for (e, p) in examples.iter().zip(predicted) {
        total[e.label] += 1;
        right[e.label] += usize::from(*p == Some(e.label));
    }
    let accuracy = right.iter().sum::<usize>() as f64 / examples.len().max(1) as f64;
    let recall =
        (0..classes).map(|c| if total[c] > 0 { right[c] as f64 / total[c] as f64 } else { f64::NAN }).collect();
    (accuracy, recall)
}

impl Llm {
    /// Opens the backend and chooses the prompting on validation.
    pub fn fit_llm(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        self.fit_on(Backend::open(&self.backend)?, data, ctx)
    }

    /// Chooses the prompting on validation, asking `backend`: every
    /// demonstration variant is asked once, and each calibration is scored
    /// on the same answers.
    pub fn fit_on(&self, backend: Backend, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        let config = &self.config;
        if config.demonstrations.is_empty() {
            bail!("no prompt variant to try");
        }
        let classes = data.num_classes();
        let prompts = PromptBuilder::new(config, data, ctx.seed, ctx.progress)?;
        tracing::info!("instructions: {}", prompts.system.replace('\n', " | "));
        let validation = stratified_sample(data.validation.to_vec(), classes, config.validation_items, ctx.seed);
        let texts = crate::data::texts(&validation);
        let mut sweep = Vec::new();
        let mut priors: HashMap<Prompting, Vec<f64>> = HashMap::new();
        for &demonstrations in &config.demonstrations {
            let questions = prompts.questions(&texts, demonstrations)?;
            let answers = ask(&backend, questions, data.labels, config.decoding, ctx.progress, "validation")?;
            let compute: f64 = answers.iter().map(|a| a.compute_seconds).sum();
            let invalid = answers.iter().filter(|a| a.error.is_some()).count();
            let decoding = config.decoding;
            let dists: Vec<Option<Vec<f64>>> = answers.iter().map(|a| read_answer(a, None, decoding).1).collect();
            // Calibration needs every label's score of every answered item (failed items stay wrong).
            let scored = dists.iter().any(Option::is_some)
                && answers.iter().zip(&dists).all(|(a, d)| d.is_some() || a.error.is_some());
            for &calibration in &config.calibrations {
                let (predicted, prior): (Vec<Option<usize>>, Option<Vec<f64>>) = match calibration {
                    Calibration::None => (answers.iter().map(|a| read_answer(a, None, decoding).0).collect(), None),
                    _ if !scored => continue,
                    // A retrieved prompt has no single content-free version.
                    Calibration::ContentFree if demonstrations.is_retrieved() => continue,
                    Calibration::ContentFree => {
                        let Some(prior) = self.content_free_prior(&backend, &prompts, demonstrations, classes)? else {
                            continue;
                        };
                        (answers.iter().map(|a| read_answer(a, Some(&prior), decoding).0).collect(), Some(prior))
                    }
                    Calibration::ValidationPrior => (
                        calibration::cross_fitted_labels(&dists, classes),
                        Some(calibration::mean_distribution(
                            &dists.iter().flatten().cloned().collect::<Vec<_>>(),
                            classes,
                        )),
                    ),
                };
                let prompting = Prompting { demonstrations, calibration };
                if let Some(prior) = prior {
                    priors.insert(prompting, prior);
                }
                let (accuracy, recall) = accuracy_and_recall(&validation, &predicted, classes);
                let min_recall = recall.iter().copied().filter(|r| !r.is_nan()).fold(1.0, f64::min);
                let score = VariantScore {
                    prompting,
                    accuracy,
                    recall,
                    min_recall,
                    invalid,
                    items: validation.len(),
                    items_per_second: answers.len() as f64 / compute.max(f64::EPSILON),
                    prompt_tokens_per_item: answers.iter().map(|a| a.usage.prompt_tokens as f64).sum::<f64>()
                        / answers.len().max(1) as f64,
                };
                tracing::info!(%prompting, accuracy, min_recall, invalid, "validation");
                sweep.push(score);
            }
        }
        let Some(best) = choose_best(&sweep, |s| s.accuracy) else {
            bail!(
                "no prompting could be scored on validation: every calibration of {:?} was skipped (calibrating \
                 needs every label's score, which this backend did not give); add `none` to the calibrations",
                config.demonstrations.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        };
        let chosen = best.prompting;
        let prior = priors.remove(&chosen);
        let greedy = match (config.compare_greedy, config.decoding) {
            (true, Decoding::LabelScores) => {
                self.compare_greedy(&backend, &prompts, chosen.demonstrations, &validation, &texts, ctx)?
            }
            _ => None,
        };
        Ok(FittedLlm {
            kind: self.kind,
            config: config.clone(),
            backend,
            prompts,
            sweep,
            chosen,
            prior,
            greedy,
            trained_on: data.train.len(),
        })
    }

    /// The mean label distribution of the content-free inputs through the
    /// prompt; `None` (with a warning) when one of them got no label scores.
    fn content_free_prior(
        &self,
        backend: &Backend,
        prompts: &PromptBuilder,
        demonstrations: Demonstrations,
        classes: usize,
    ) -> Result<Option<Vec<f64>>> {
        let texts = calibration::CONTENT_FREE_INPUTS.to_vec();
        let decoding = self.config.decoding;
        let answers = ask(backend, prompts.questions(&texts, demonstrations)?, &prompts.labels, decoding, false, "")?;
        let dists: Vec<Vec<f64>> = answers.iter().filter_map(|a| read_answer(a, None, decoding).1).collect();
        if dists.len() < answers.len() {
            tracing::warn!(%demonstrations, "a content-free input got no label scores: no content-free calibration");
            return Ok(None);
        }
        Ok(Some(calibration::mean_distribution(&dists, classes)))
    }

    /// Label scoring against constrained greedy decoding on the same
    /// validation prompts: the embedded model decodes them again; a server's
    /// answers are its constrained decode, compared with the labels its
    /// logprobs score highest (none when they carry no scores).
    fn compare_greedy(
        &self,
        backend: &Backend,
        prompts: &PromptBuilder,
        demonstrations: Demonstrations,
        validation: &[Example],
        texts: &[&str],
        ctx: &RunContext,
    ) -> Result<Option<GreedyComparison>> {
        let questions = prompts.questions(texts, demonstrations)?;
        let labels = &prompts.labels;
        // Answered during the sweep: served from the answer cache when there is one.
        let answers = ask(backend, questions.clone(), labels, Decoding::LabelScores, false, "")?;
        let (scored, greedy): (Vec<Option<usize>>, Vec<Option<usize>>) = if backend.in_process() {
            let greedy = ask(backend, questions, labels, Decoding::ConstrainedGreedy, ctx.progress, "greedy decoding")?;
            (answers.iter().map(|a| a.label).collect(), greedy.iter().map(|a| a.label).collect())
        } else {
            if answers.iter().all(|a| a.label_log_probs.is_none()) {
                return Ok(None);
            }
            let scored = answers.iter().map(|a| read_answer(a, None, Decoding::LabelScores).0).collect();
            (scored, answers.iter().map(|a| a.label).collect())
        };
        let same = scored.iter().zip(&greedy).filter(|(a, b)| a.is_some() && a == b).count();
        Ok(Some(GreedyComparison {
            items: validation.len(),
            agreement: same as f64 / validation.len().max(1) as f64,
            greedy_accuracy: accuracy(validation, &greedy),
            label_scoring_accuracy: accuracy(validation, &scored),
        }))
    }
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
            experiment: format!("llm_{}", slug(&model)),
            method: match self.backend.in_process() {
                false => format!("generic LLM, {}, structured output", self.chosen),
                true => format!("generic LLM in-process, {}, {}", self.chosen, self.config.decoding),
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

/// Labels for a few texts asked with the chosen prompting: text, label, the
/// answer, each label's probability where the backend scores labels, latency.
pub fn classify_table(fitted: &FittedLlm, texts: &[&str]) -> Result<DataFrame> {
    let answers = fitted.ask(texts, false)?;
    let labels = &fitted.prompts.labels;
    let read: Vec<(Option<usize>, Option<Vec<f64>>)> = answers.iter().map(|a| fitted.read(a)).collect();
    let name = |l: Option<usize>| l.map_or_else(|| "(no answer)".to_string(), |l| labels[l].clone());
    let mut columns = vec![
        Column::new("text".into(), texts.to_vec()),
        Column::new("label".into(), read.iter().map(|(l, _)| name(*l)).collect::<Vec<_>>()),
        Column::new("answer".into(), answers.iter().map(shown_answer).collect::<Vec<_>>()),
    ];
    if read.iter().all(|(_, d)| d.is_some()) {
        for (c, label) in labels.iter().enumerate() {
            let p: Vec<f64> = read.iter().map(|(_, d)| d.as_ref().map_or(f64::NAN, |d| round(d[c], 3))).collect();
            columns.push(Column::new(format!("p({label})").into(), p));
        }
    }
    columns
        .push(Column::new("seconds".into(), answers.iter().map(|a| round(a.latency_seconds, 3)).collect::<Vec<_>>()));
    Ok(DataFrame::new_infer_height(columns)?)
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

impl FittedLlm {
    /// Validation accuracy of each prompting, with the lowest class recall and the speed.
    pub fn sweep_table(&self) -> Result<DataFrame> {
        let col = |f: &dyn Fn(&VariantScore) -> f64| self.sweep.iter().map(f).collect::<Vec<_>>();
        Ok(DataFrame::new_infer_height(vec![
            Column::new(
                "demonstrations".into(),
                self.sweep.iter().map(|s| s.prompting.demonstrations.to_string()).collect::<Vec<_>>(),
            ),
            Column::new(
                "calibration".into(),
                self.sweep.iter().map(|s| s.prompting.calibration.to_string()).collect::<Vec<_>>(),
            ),
            Column::new("accuracy %".into(), col(&|s| round(100.0 * s.accuracy, 1))),
            Column::new("lowest class recall %".into(), col(&|s| round(100.0 * s.min_recall, 1))),
            Column::new("invalid".into(), self.sweep.iter().map(|s| s.invalid as u64).collect::<Vec<_>>()),
            Column::new("prompt tokens / item".into(), col(&|s| s.prompt_tokens_per_item.round())),
            Column::new("items/s".into(), col(&|s| round(s.items_per_second, 1))),
            Column::new(
                "chosen".into(),
                self.sweep.iter().map(|s| if s.prompting == self.chosen { "✓" } else { "" }).collect::<Vec<_>>(),
            ),
        ])?)
    }

    /// Each prompting's recall per class on validation: where a bias sends a class's items elsewhere.
    pub fn recall_table(&self) -> Result<DataFrame> {
        let mut columns = vec![Column::new(
            "prompting".into(),
            self.sweep.iter().map(|s| s.prompting.to_string()).collect::<Vec<_>>(),
        )];
        for (c, label) in self.prompts.labels.iter().enumerate() {
            let recall: Vec<f64> = self.sweep.iter().map(|s| round(100.0 * s.recall[c], 1)).collect();
            columns.push(Column::new(format!("{label} recall %").into(), recall));
        }
        Ok(DataFrame::new_infer_height(columns)?)
    }

    /// For one text: each label's probability as the model gives it, the
    /// prior divided out, and the calibrated probability.
    pub fn calibration_table(&self, text: &str) -> Result<DataFrame> {
        let answer = self.ask(&[text], false)?.remove(0);
        let Some(log_probs) = &answer.label_log_probs else {
            bail!("this backend gives no label scores: {}", shown_answer(&answer));
        };
        let raw = calibration::distribution(log_probs);
        let prior = self.prior.clone().unwrap_or_else(|| vec![f64::NAN; raw.len()]);
        let calibrated = match &self.prior {
            Some(prior) => calibration::calibrate(&raw, prior),
            None => raw.clone(),
        };
        Ok(DataFrame::new_infer_height(vec![
            Column::new("label".into(), self.prompts.labels.clone()),
            Column::new("log p(answer)".into(), log_probs.iter().map(|&l| round(f64::from(l), 2)).collect::<Vec<_>>()),
            Column::new("p model".into(), raw.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
            Column::new("prior".into(), prior.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
            Column::new("p calibrated".into(), calibrated.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
        ])?)
    }
}

/// Each label's whole-answer log-probability for one question (embedded
/// model), and the distribution over labels it gives.
pub fn label_scores_table(llm: &local::LocalLlm, messages: &[Message], labels: &[String]) -> Result<DataFrame> {
    let schema = answer_schema(labels, false);
    let answer = llm.ask_all(&[messages.to_vec()], &schema, labels, Decoding::LabelScores, &ProgressBar::hidden())?;
    let answer = answer.into_iter().next().expect("one answer");
    let Some(log_probs) = answer.label_log_probs else {
        bail!("no label scores: {}", answer.error.map(|e| e.to_string()).unwrap_or_default());
    };
    let candidates = llm.candidates(labels)?;
    let p = calibration::distribution(&log_probs);
    Ok(DataFrame::new_infer_height(vec![
        Column::new("label".into(), labels.to_vec()),
        Column::new("answer tokens".into(), candidates.iter().map(|c| c.len() as u64).collect::<Vec<_>>()),
        Column::new("log p(answer)".into(), log_probs.iter().map(|&l| round(f64::from(l), 2)).collect::<Vec<_>>()),
        Column::new("p among labels".into(), p.iter().map(|&x| round(x, 3)).collect::<Vec<_>>()),
    ])?)
}

/// Demonstrations in prompt order: label and text.
pub fn demonstrations_table(shown: &[Example], labels: &[String]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new("position".into(), (1..=shown.len() as u64).collect::<Vec<_>>()),
        Column::new("label".into(), shown.iter().map(|e| labels[e.label].clone()).collect::<Vec<_>>()),
        Column::new("text".into(), shown.iter().map(|e| e.text.clone()).collect::<Vec<_>>()),
    ])?)
}

/// The most likely next tokens after the forced answer prefix, before and
/// after the schema's mask (see [`local::LocalLlm::next_tokens`]).
pub fn next_token_table(llm: &local::LocalLlm, messages: &[Message], labels: &[String], n: usize) -> Result<DataFrame> {
    let (free, allowed) = llm.next_tokens(messages, labels, n)?;
    let rows = free.len().max(allowed.len());
    let cell = |v: &[(String, f32)], i: usize| v.get(i).map(|(t, _)| t.clone()).unwrap_or_default();
    let prob = |v: &[(String, f32)], i: usize| v.get(i).map_or(f64::NAN, |(_, p)| round(f64::from(*p), 4));
    Ok(DataFrame::new_infer_height(vec![
        Column::new("rank".into(), (1..=rows as u64).collect::<Vec<_>>()),
        Column::new("any token".into(), (0..rows).map(|i| cell(&free, i)).collect::<Vec<_>>()),
        Column::new("p".into(), (0..rows).map(|i| prob(&free, i)).collect::<Vec<_>>()),
        Column::new("allowed token".into(), (0..rows).map(|i| cell(&allowed, i)).collect::<Vec<_>>()),
        Column::new("p among allowed".into(), (0..rows).map(|i| prob(&allowed, i)).collect::<Vec<_>>()),
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

/// Latency, throughput, tokens and cost of an LLM run's test answers, one row.
pub fn cost_table(record: &RunRecord) -> Result<DataFrame> {
    let x = &record.extra;
    let f = |key: &str| x.get(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    let n = record.metrics.items.max(1) as f64;
    let rate = record.items_per_second();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("model".into(), [record.model.clone()]),
        Column::new("where".into(), [x.get("endpoint").and_then(|v| v.as_str()).unwrap_or_default().to_string()]),
        Column::new("items".into(), [record.metrics.items as u64]),
        Column::new("items/s".into(), [(100.0 * rate).round() / 100.0]),
        Column::new("latency mean s".into(), [(1000.0 * f("latency_mean_seconds")).round() / 1000.0]),
        Column::new("latency p95 s".into(), [(1000.0 * f("latency_p95_seconds")).round() / 1000.0]),
        Column::new("tokens in / item".into(), [(f("tokens_in") / n).round()]),
        Column::new("tokens out / item".into(), [(f("tokens_out") / n * 10.0).round() / 10.0]),
        Column::new("USD / 1000 items".into(), [record.api_cost_per_1000()]),
        Column::new("cached answers".into(), [f("cached_answers") as u64]),
    ])?)
}

/// A file-name form of a model name, without its directory (see [`crate::paths::slug`]).
pub fn slug(model: &str) -> String {
    crate::paths::slug(model.rsplit('/').next().unwrap_or(model))
}
