//! SetFit's recipe: the sentence encoder (all-MiniLM-L6-v2) tuned
//! contrastively on pairs of the labelled examples (same class or not), then
//! a logistic-regression head on its embeddings. Few labels go far: each
//! example appears in many pairs, and the encoder learns which differences
//! matter for this task. The head's regularisation is chosen on validation;
//! the body's settings are SetFit's published defaults.

pub mod pairs;
pub mod train;
pub mod views;

use std::any::Any;

use anyhow::Result;
use serde::Serialize;

pub use pairs::{at_most, length_grouped_batches, rounds_within, sample_pairs, Pair};
pub use train::{ContrastiveConfig, ContrastiveLog};

use super::tfidf::{LogisticRegression, SparseRow};
use crate::data::{labels, texts};
use crate::method::{
    accuracy, choose_best, Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet,
};
use crate::metrics::Throughput;
use crate::models::embedder::{EmbedConfig, Embedder};
use crate::models::Embeddings;
use crate::paths::Profile;

/// The method's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SetFitConfig {
    /// The encoder tuned (default: all-MiniLM-L6-v2, the project's copy if fetched).
    pub embed: EmbedConfig,
    pub contrastive: ContrastiveConfig,
    /// The head's inverse regularisation strengths, chosen on validation
    /// (strongest first: ties go to it).
    pub cs: Vec<f64>,
}

impl SetFitConfig {
    pub fn for_profile(profile: Profile) -> Self {
        let mut config = SetFitConfig {
            embed: EmbedConfig {
                model: crate::models::embedder::default_model(),
                // AG News items rarely exceed 128 tokens; training memory and time grow with it.
                max_tokens: 128,
                ..EmbedConfig::default()
            },
            contrastive: ContrastiveConfig::default(),
            cs: vec![0.1, 1.0, 10.0, 100.0],
        };
        if profile.is_smoke() {
            config.contrastive.max_pairs = 256;
        }
        config
    }
}

/// Contrastive tuning + logistic head, as a [`Method`].
#[derive(Debug, Clone)]
pub struct SetFit {
    pub config: SetFitConfig,
}

impl SetFit {
    pub fn for_profile(profile: Profile) -> Self {
        SetFit { config: SetFitConfig::for_profile(profile) }
    }

    pub fn fit_setfit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedSetFit> {
        let started = std::time::Instant::now();
        let embedder = Embedder::load(&self.config.embed)?;
        let train_texts = texts(data.train);
        let c = &self.config.contrastive;
        let rounds = rounds_within(data.train.len(), c.rounds, c.max_pairs);
        let pairs = at_most(sample_pairs(&labels(data.train), rounds, ctx.seed)?, c.max_pairs);
        tracing::info!(examples = data.train.len(), rounds, pairs = pairs.len(), "contrastive tuning");
        let bert = embedder.trainable()?;
        let untuned_validation = head_sweep(&embedder, data, &self.config.cs)?.1;
        let log = train::train(&bert, &embedder, &train_texts, &pairs, c, ctx.seed, ctx.progress)?;
        let tuned = embedder.with_weights(&bert)?;
        drop(bert);
        let (head, sweep) = head_sweep(&tuned, data, &self.config.cs)?;
        let chosen = *choose_best(&sweep, |p| p.accuracy).expect("at least one C");
        tracing::info!(
            c = chosen.c,
            validation_accuracy = chosen.accuracy,
            untuned = untuned_validation.iter().map(|p| p.accuracy).fold(0.0, f64::max),
            first_loss = log.losses.first().copied().unwrap_or(f32::NAN),
            last_loss = log.losses.last().copied().unwrap_or(f32::NAN),
            "head chosen on validation"
        );
        let head = head.into_iter().nth(sweep.iter().position(|p| p.c == chosen.c).expect("chosen from the sweep"));
        Ok(FittedSetFit {
            config: self.config.clone(),
            rounds,
            embedder: tuned,
            head: head.expect("one head per C"),
            sweep,
            untuned_sweep: untuned_validation,
            chosen,
            log,
            trained_on: data.train.len(),
            training_seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A head's validation accuracy at one regularisation strength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadPoint {
    pub c: f64,
    pub accuracy: f64,
}

/// Embeddings as the logistic regression's rows.
fn rows(embeddings: &Embeddings) -> Vec<SparseRow> {
    (0..embeddings.len()).map(|i| embeddings.row(i).iter().enumerate().map(|(j, &x)| (j as u32, x)).collect()).collect()
}

/// A head for each C on `embedder`'s embeddings of train, scored on validation.
fn head_sweep(
    embedder: &Embedder,
    data: &TrainingSet,
    cs: &[f64],
) -> Result<(Vec<LogisticRegression>, Vec<HeadPoint>)> {
    let train = rows(&embedder.embed(&texts(data.train))?);
    let validation = rows(&embedder.embed(&texts(data.validation))?);
    let y = labels(data.train);
    let mut heads = Vec::new();
    let mut sweep = Vec::new();
    for &c in cs {
        let head = LogisticRegression::fit(&train, &y, data.num_classes(), embedder.dim, c, 1000, 1e-4);
        let predicted: Vec<Option<usize>> = head.predict(&validation).into_iter().map(Some).collect();
        sweep.push(HeadPoint { c, accuracy: accuracy(data.validation, &predicted) });
        heads.push(head);
    }
    Ok((heads, sweep))
}

impl Method for SetFit {
    fn name(&self) -> &'static str {
        "setfit"
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_setfit(data, ctx)?))
    }

    /// Nothing to adapt: the pairs grow with the examples, up to their cap.
    fn for_budget(&self, _budget: &Budget) -> Box<dyn Method> {
        Box::new(self.clone())
    }

    /// The recipe's settings (part of a curve point's identity: a change re-measures it).
    fn budget_note(&self) -> Option<String> {
        let c = &self.config.contrastive;
        Some(format!(
            "{} rounds of pairs (at most {} pairs), {} pairs a step of like-length texts, BERT's dropout, peak learning rate {:e}, {} tokens",
            c.rounds, c.max_pairs, c.batch_pairs, c.learning_rate, self.config.embed.max_tokens
        ))
    }
}

/// The tuned encoder and its head.
pub struct FittedSetFit {
    pub config: SetFitConfig,
    /// Rounds of pairs per example (fewer than configured above the pair cap).
    pub rounds: usize,
    /// The tuned encoder.
    pub embedder: Embedder,
    pub head: LogisticRegression,
    pub sweep: Vec<HeadPoint>,
    /// The same head sweep on the encoder before tuning: what tuning bought.
    pub untuned_sweep: Vec<HeadPoint>,
    pub chosen: HeadPoint,
    pub log: ContrastiveLog,
    pub trained_on: usize,
    pub training_seconds: f64,
}

impl FittedSetFit {
    /// Class probabilities of `texts`.
    pub fn probabilities(&self, texts: &[&str]) -> Result<Vec<Vec<f64>>> {
        Ok(self.head.predict_proba(&rows(&self.embedder.embed(texts)?)))
    }
}

impl Fitted for FittedSetFit {
    fn identity(&self) -> Identity {
        Identity {
            kind: "setfit",
            endpoint: None,
            experiment: "setfit".into(),
            method: "contrastively tuned embeddings + logistic head (SetFit)".into(),
            model: self.config.embed.model.rsplit('/').next().unwrap_or_default().to_string(),
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        let c = &self.config;
        Ok(serde_json::json!({
            "embedder": c.embed.model,
            "max_tokens": c.embed.max_tokens,
            "precision": self.embedder.config().precision,
            "contrastive": c.contrastive,
            "rounds": self.rounds,
            "cs": c.cs,
            "chosen_c": self.chosen.c,
        }))
    }

    fn training(&self) -> Option<Throughput> {
        Some(Throughput::new(self.training_seconds, self.trained_on))
    }

    fn trained_on(&self) -> usize {
        self.trained_on
    }

    fn scores(&self) -> &'static str {
        "class probabilities of the logistic head"
    }

    fn summary(&self) -> String {
        let (first, last) = (self.log.losses.first(), self.log.losses.last());
        format!(
            "{} pairs, pair loss {:.3} → {:.3}; head C = {} chosen on validation ({:.2}%)",
            self.log.pairs,
            first.copied().unwrap_or(f32::NAN),
            last.copied().unwrap_or(f32::NAN),
            self.chosen.c,
            100.0 * self.chosen.accuracy
        )
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "validation_accuracy": self.chosen.accuracy,
            "sweep": self.sweep,
            "untuned_sweep": self.untuned_sweep,
            "pairs": self.log.pairs,
            "tuning_seconds": self.log.seconds,
            "pair_losses": self.log.losses,
        })
    }

    fn predict(&self, texts: &[&str], _ctx: &RunContext) -> Result<Predicted> {
        let (probabilities, cost) = Throughput::measure(texts.len(), || self.probabilities(texts));
        let outputs = probabilities?
            .into_iter()
            .map(|p| Output::from_scores(p.into_iter().map(|x| x as f32).collect()))
            .collect();
        Ok(Predicted {
            outputs,
            cost_seconds: Some(cost.seconds),
            api_cost_usd: None,
            details: serde_json::Value::Null,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
