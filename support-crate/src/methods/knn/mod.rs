//! Embeddings + K-nearest neighbours: every text embedded by a sentence
//! embedder (cached on disk), a test text labelled by the vote of its most
//! similar training texts (cosine). k and the vote are chosen on validation.

pub mod embeddings;
pub mod search;

use std::any::Any;

use anyhow::{Context, Result};
pub use embeddings::{CachedEmbedder, EmbedStats};
pub use search::{choose, KnnClassifier, Neighbour, SweepPoint, Vote};

use crate::data::{labels, texts, Example};
use crate::method::{Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet};
use crate::metrics::Throughput;
use crate::models::embedder::{EmbedConfig, Embedder};
use crate::models::Embeddings;
use crate::plot::{LineChart, Svg};

/// The K-NN method's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnConfig {
    /// The sentence embedder (default: all-MiniLM-L6-v2, the project's copy if fetched).
    pub embed: EmbedConfig,
    /// Candidate k values, chosen on validation.
    pub ks: Vec<usize>,
    pub votes: Vec<Vote>,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            embed: EmbedConfig { model: crate::models::embedder::default_model(), ..EmbedConfig::default() },
            ks: vec![1, 3, 5, 7, 9, 11, 15, 21, 31, 41, 51],
            votes: vec![Vote::Majority, Vote::Weighted],
        }
    }
}

/// Embeddings + K-NN, as a [`Method`].
#[derive(Debug, Clone, Default)]
pub struct Knn {
    pub config: KnnConfig,
}

/// The training embeddings, the chosen k and vote, and the embedder to embed new texts.
pub struct FittedKnn {
    pub config: KnnConfig,
    pub embedder: CachedEmbedder,
    pub classifier: KnnClassifier,
    /// The training examples, row for row with the classifier's.
    pub train: Vec<Example>,
    pub sweep: Vec<SweepPoint>,
    pub chosen: SweepPoint,
    /// Embedding train and validation.
    pub stats: EmbedStats,
    /// The embedder's cost per text on this machine (measured when embedding
    /// uncached texts, else on a sample of 256 without the cache).
    pub seconds_per_text: f64,
}

impl Knn {
    pub fn new(config: KnnConfig) -> Self {
        Knn { config }
    }

    pub fn fit_knn(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedKnn> {
        let embedder = CachedEmbedder::new(Embedder::load(&self.config.embed)?)?;
        let (train, mut stats) = embedder.embed(&texts(data.train), ctx.progress)?;
        let (validation, validation_stats) = embedder.embed(&texts(data.validation), ctx.progress)?;
        stats.add(validation_stats);
        let seconds_per_text = if stats.embedded() > 0 {
            stats.seconds / stats.embedded() as f64
        } else {
            embedder.measure_seconds_per_text(&texts(data.train))?
        };
        tracing::info!(
            embedded = stats.embedded(),
            cached = stats.cached,
            truncated = stats.truncated,
            "embeddings ready"
        );

        let classifier = KnnClassifier::new(&train, labels(data.train), data.num_classes())?;
        let k_max = self.config.ks.iter().copied().max().unwrap_or(1);
        let validation_neighbours = classifier.neighbours(&validation, k_max)?;
        let validation_labels = labels(data.validation);
        let sweep = classifier.sweep(&validation_neighbours, &validation_labels, &self.config.ks, &self.config.votes);
        let chosen = choose(&sweep).context("no k to choose from")?;
        tracing::info!(k = chosen.k, vote = %chosen.vote, validation_accuracy = chosen.accuracy, "chosen on validation");
        Ok(FittedKnn {
            config: self.config.clone(),
            embedder,
            classifier,
            train: data.train.to_vec(),
            sweep,
            chosen,
            stats,
            seconds_per_text,
        })
    }
}

impl Method for Knn {
    fn name(&self) -> &'static str {
        "knn"
    }

    /// No k above the labelled examples there are.
    fn for_budget(&self, budget: &Budget) -> Box<dyn Method> {
        let mut knn = self.clone();
        knn.config.ks.retain(|&k| k <= budget.train_items.max(1));
        Box::new(knn)
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_knn(data, ctx)?))
    }
}

impl FittedKnn {
    /// The chosen k nearest training examples of each text, most similar first.
    pub fn neighbours(&self, texts: &[&str]) -> Result<Vec<Vec<Neighbour>>> {
        let (queries, _) = self.embedder.embed(texts, false)?;
        self.classifier.neighbours(&queries, self.chosen.k)
    }

    /// "[Sports 0.83] text | ..." for the first `n` of `neighbours`.
    pub fn describe(&self, neighbours: &[Neighbour], labels: &[String], n: usize) -> String {
        neighbours
            .iter()
            .take(n)
            .map(|nb| {
                let e = &self.train[nb.index as usize];
                format!("[{} {:.2}] {}", labels[e.label], nb.similarity, e.text)
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn answer(&self, queries: &Embeddings) -> Result<Vec<Output>> {
        let (k, vote) = (self.chosen.k, self.chosen.vote);
        Ok(self
            .classifier
            .neighbours(queries, k)?
            .iter()
            .map(|n| Output {
                label: Some(self.classifier.vote(n, k, vote)),
                scores: Some(self.classifier.vote_shares(n, k, vote)),
                error: None,
            })
            .collect())
    }
}

impl Fitted for FittedKnn {
    fn identity(&self) -> Identity {
        let model = &self.config.embed.model;
        Identity {
            kind: "knn",
            endpoint: None,
            experiment: "knn".into(),
            method: "embeddings + K-NN".into(),
            model: model.rsplit('/').next().unwrap_or_default().to_string(),
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        let c = &self.config;
        Ok(serde_json::json!({
            "embedder": c.embed.model,
            "max_tokens": c.embed.max_tokens,
            "batch_size": c.embed.batch_size,
            "precision": self.embedder.embedder.config().precision,
            "ks": c.ks,
            "votes": c.votes,
            "chosen_k": self.chosen.k,
            "chosen_vote": self.chosen.vote,
        }))
    }

    /// Embedding the training texts: K-NN's only training.
    fn training(&self) -> Option<Throughput> {
        Some(Throughput::new(self.seconds_per_text * self.train.len() as f64, self.train.len()))
    }

    fn trained_on(&self) -> usize {
        self.train.len()
    }

    fn scores(&self) -> &'static str {
        "each class's share of the vote of the k nearest neighbours (majority: neighbours / k; weighted: summed cosine similarity / total)"
    }

    fn summary(&self) -> String {
        let c = &self.chosen;
        format!("k = {}, {} vote chosen on validation ({:.2}%)", c.k, c.vote, 100.0 * c.accuracy)
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "validation_accuracy": self.chosen.accuracy,
            "sweep": self.sweep,
            "truncated_texts": self.stats.truncated,
            "embedded_texts": self.stats.embedded(),
            "cached_texts": self.stats.cached,
            "embedding_seconds_per_text": self.seconds_per_text,
        })
    }

    /// Cost: embedding every text (a cached one at the measured cost per text) plus the search.
    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted> {
        let (queries, stats) = self.embedder.embed(texts, ctx.progress)?;
        let (outputs, search) = Throughput::measure(texts.len(), || self.answer(&queries));
        let embedding_seconds = stats.seconds + stats.cached as f64 * self.seconds_per_text;
        Ok(Predicted {
            outputs: outputs?,
            cost_seconds: Some(embedding_seconds + search.seconds),
            api_cost_usd: None,
            details: serde_json::json!({
                "test_search_seconds": search.seconds,
                "test_embedding_seconds": embedding_seconds,
                "test_cached_texts": stats.cached,
                "test_truncated_texts": stats.truncated,
            }),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Validation accuracy against k, one line per vote.
pub fn sweep_chart(sweep: &[SweepPoint], chosen: &SweepPoint) -> Result<Svg> {
    let votes: Vec<Vote> = sweep.iter().fold(Vec::new(), |mut v, p| {
        if !v.contains(&p.vote) {
            v.push(p.vote);
        }
        v
    });
    let series = votes
        .iter()
        .map(|&vote| {
            let points = sweep.iter().filter(|p| p.vote == vote).map(|p| (p.k as f64, 100.0 * p.accuracy)).collect();
            (format!("{vote} vote"), points)
        })
        .collect();
    LineChart {
        title: "K-NN: validation accuracy against k",
        x_label: "k (neighbours)",
        y_label: "validation accuracy (%)",
        series,
        markers: vec![(chosen.k as f64, format!("chosen: k = {}, {} vote", chosen.k, chosen.vote))],
    }
    .render_zoomed((760, 380))
}
