//! The seam every method plugs into.
//!
//! A [`Method`] is a configured, unfitted classifier. [`Method::fit`] trains
//! it on a training set — any subset, any seed — making every choice of its
//! own (k, C, a prompt variant, when to stop) on the validation split only,
//! and returns a [`Fitted`] classifier that labels texts and gives a score
//! for every class. [`run`] does that for one method on a dataset, predicts
//! the test split once and returns the run record with its predictions; the
//! CLI, `all` and the notebooks all go through it, so they produce the same
//! records.

use std::any::Any;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::{stratified_sample, Dataset, Example};
use crate::metrics::{evaluate as score, Bootstrap, Metrics, Throughput};
use crate::paths::Profile;
use crate::results::{self, DataSizes, Hardware, Prediction, RunRecord, Timings};

/// The labelled data a method may learn from. Test is not in it.
#[derive(Debug, Clone, Copy)]
pub struct TrainingSet<'a> {
    pub train: &'a [Example],
    /// Every choice a method makes is made here.
    pub validation: &'a [Example],
    /// Class names, in label order.
    pub labels: &'a [String],
    /// What the labels mean.
    pub task: &'a crate::data::Task,
    /// Texts without labels a method may learn from (a distillation's
    /// teacher labels them); empty unless the method asks for some
    /// ([`Method::unlabelled_wanted`]).
    pub unlabelled: &'a [String],
}

impl<'a> TrainingSet<'a> {
    /// All of `ds`'s train and validation splits.
    pub fn of(ds: &'a Dataset) -> Self {
        TrainingSet {
            train: &ds.train,
            validation: &ds.validation,
            labels: &ds.labels,
            task: &ds.task,
            unlabelled: &[],
        }
    }

    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }
}

/// What every fit and prediction may need to know about the run.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub profile: Profile,
    /// Every random choice of the method derives from this seed.
    pub seed: u64,
    /// Show progress bars (the CLI) or not (notebooks, tests).
    pub progress: bool,
}

impl Default for RunContext {
    fn default() -> Self {
        RunContext { profile: Profile::Full, seed: 42, progress: false }
    }
}

/// What the results call a fitted method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its line in the table of methods ([`crate::methods::Methods`]), e.g. "knn".
    pub kind: &'static str,
    /// The server that answers (without credentials); `None`: this machine.
    pub endpoint: Option<String>,
    /// File stem under `results/`, e.g. "knn".
    pub experiment: String,
    /// Human name, e.g. "embeddings + K-NN".
    pub method: String,
    /// The model, e.g. "all-MiniLM-L6-v2".
    pub model: String,
}

/// Unanswered items whose error a run record keeps (in `extra.errors`).
pub const MAX_ERRORS_KEPT: usize = 200;

/// One text's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// `None` when the method gave no valid answer (scored as wrong).
    pub label: Option<usize>,
    /// One score per class, in label order ([`Fitted::scores`] says what they are);
    /// `None` when there are none (an invalid answer).
    pub scores: Option<Vec<f32>>,
    /// Why there is no valid answer.
    pub error: Option<String>,
}

impl Output {
    /// The class with the highest score, and the scores.
    pub fn from_scores(scores: Vec<f32>) -> Self {
        Output { label: Some(argmax(&scores)), scores: Some(scores), error: None }
    }
}

pub use crate::metrics::argmax;

/// The answers to a batch of texts.
#[derive(Debug, Clone, Default)]
pub struct Predicted {
    /// One per text, in input order.
    pub outputs: Vec<Output>,
    /// What answering cost in seconds, where the wall clock is not it
    /// (answers served from a cache count with what they cost when computed).
    pub cost_seconds: Option<f64>,
    /// What a paid API charged for these answers, in US dollars (`None`: no API).
    pub api_cost_usd: Option<f64>,
    /// Method-specific numbers about these answers (tokens, latency, ...).
    pub details: serde_json::Value,
}

/// A label budget: what a team holding `labels_per_class` labelled
/// examples of each class trains on.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    pub labels_per_class: usize,
    /// Training examples in all.
    pub train_items: usize,
    /// Where the fit may keep files (checkpoints); removed once the fit is scored.
    pub work_dir: &'a Path,
}

/// A method before fitting: its configuration.
pub trait Method {
    /// Its line in the table of methods, e.g. "knn": logs, progress, records.
    fn name(&self) -> &'static str;

    /// Trains on `data.train`, choosing on `data.validation` only.
    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>>;

    /// This method as a team holding `budget`'s labels would run it (the
    /// learning curve fits it so): e.g. no k above the examples there are,
    /// more epochs over a small set.
    fn for_budget(&self, budget: &Budget) -> Box<dyn Method>;

    /// How [`Method::for_budget`] adapts it, in a phrase with its settings
    /// (e.g. "trained for at least 1,024 examples"): part of a curve point's
    /// identity, and stated beside the curve. `None`: nothing to say.
    fn budget_note(&self) -> Option<String> {
        None
    }

    /// The server that will answer (without credentials); `None`: this machine.
    fn endpoint(&self) -> Option<String> {
        None
    }

    /// How many test items a run asks by default: a seeded stratified
    /// sample where every answer costs (an LLM in a smoke run), else all.
    fn test_items(&self) -> Option<usize> {
        None
    }

    /// Unlabelled texts it learns from ([`TrainingSet::unlabelled`]); the
    /// learning curve draws them from the training split outside the budget.
    fn unlabelled_wanted(&self) -> usize {
        0
    }
}

/// A fitted classifier.
pub trait Fitted: Any {
    fn identity(&self) -> Identity;

    /// The settings, and what was chosen on validation.
    fn config(&self) -> Result<serde_json::Value>;

    /// What producing this classifier cost (`items`: training examples processed).
    fn training(&self) -> Option<Throughput>;

    /// Training examples it learned from.
    fn trained_on(&self) -> usize;

    /// What [`Output::scores`] are, e.g. "class probabilities (softmax)".
    fn scores(&self) -> &'static str;

    /// Method-specific numbers about the fit (validation sweep, parameters, ...).
    fn extra(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// One line on what was chosen on validation, for people (e.g. "k = 31, weighted vote").
    fn summary(&self) -> String {
        String::new()
    }

    /// Labels and scores for `texts`.
    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted>;

    fn as_any(&self) -> &dyn Any;
}

/// The candidate with the highest score; ties go to the earliest, so list
/// candidates simplest first.
pub fn choose_best<T>(candidates: &[T], score: impl Fn(&T) -> f64) -> Option<&T> {
    candidates.iter().fold(None, |best: Option<&T>, c| match best {
        Some(b) if score(c) <= score(b) => Some(b),
        _ => Some(c),
    })
}

/// Validation accuracy of `predict` on `examples` (a missing answer is wrong).
pub fn accuracy(examples: &[Example], predictions: &[Option<usize>]) -> f64 {
    let correct = examples.iter().zip(predictions).filter(|(e, p)| **p == Some(e.label)).count();
    correct as f64 / examples.len().max(1) as f64
}

/// How a run is made and recorded.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub context: RunContext,
    /// Predict a seeded stratified sample of this many test items (default: all).
    pub test_items: Option<usize>,
    /// The command that reproduces the run, for the record.
    pub command: String,
}

/// A method's run: the record, the test items asked and the answers, and
/// the fitted classifier (for a notebook to look inside).
pub struct MethodRun {
    pub record: RunRecord,
    /// The test items predicted, in the order of `outputs`.
    pub test: Vec<Example>,
    pub outputs: Vec<Output>,
    pub fitted: Box<dyn Fitted>,
}

impl MethodRun {
    pub fn metrics(&self) -> &Metrics {
        &self.record.metrics
    }

    /// The fitted classifier as its own type, e.g. `run.fitted_as::<knn::FittedKnn>()`.
    pub fn fitted_as<T: 'static>(&self) -> Option<&T> {
        self.fitted.as_any().downcast_ref()
    }

    /// One row per test item: index, label, prediction and the scores.
    pub fn predictions(&self) -> Vec<Prediction> {
        self.test
            .iter()
            .zip(&self.outputs)
            .map(|(e, o)| Prediction { index: e.index, label: e.label, prediction: o.label, scores: o.scores.clone() })
            .collect()
    }

    /// Writes `<experiment>.json` and `<experiment>.predictions.csv` to `dir`; returns the JSON's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        results::write(dir, &self.record, &self.predictions())?;
        Ok(results::json_path(dir, &self.record.experiment))
    }
}

/// Fits `method` on `ds`'s train split (choices on validation), then predicts test once.
pub fn run(method: &dyn Method, ds: &Dataset, options: &RunOptions) -> Result<MethodRun> {
    tracing::info!(method = method.name(), train = ds.train.len(), validation = ds.validation.len(), "fitting");
    let fitted = method.fit(&TrainingSet::of(ds), &options.context)?;
    evaluate(fitted, ds, options)
}

/// The test items a run predicts: all of test, or a seeded stratified sample.
pub fn test_items(ds: &Dataset, options: &RunOptions) -> Result<Vec<Example>> {
    match options.test_items {
        Some(0) => bail!("zero test items asked for"),
        Some(n) if n < ds.test.len() => {
            Ok(stratified_sample(ds.test.clone(), ds.num_classes(), n, options.context.seed))
        }
        _ => Ok(ds.test.clone()),
    }
}

/// `fitted`'s answers to `items`, checked to be one per item, and what they
/// cost: the wall clock, or what cached answers cost when they were computed.
pub fn predict_all(fitted: &dyn Fitted, items: &[Example], ctx: &RunContext) -> Result<(Predicted, Throughput)> {
    let texts = crate::data::texts(items);
    let (predicted, wall) = Throughput::measure(items.len(), || fitted.predict(&texts, ctx));
    let predicted = predicted?;
    if predicted.outputs.len() != items.len() {
        bail!("{}: {} answers for {} items", fitted.identity().experiment, predicted.outputs.len(), items.len());
    }
    let cost = predicted.cost_seconds.map_or(wall, |s| Throughput::new(s, items.len()));
    Ok((predicted, cost))
}

/// Predicts the test items once with a fitted classifier and scores it.
pub fn evaluate(fitted: Box<dyn Fitted>, ds: &Dataset, options: &RunOptions) -> Result<MethodRun> {
    let test = test_items(ds, options)?;
    let identity = fitted.identity();
    tracing::info!(experiment = %identity.experiment, items = test.len(), "predicting test");
    let (predicted, inference) = predict_all(fitted.as_ref(), &test, &options.context)?;
    let labels = crate::data::labels(&test);
    let answers: Vec<Option<usize>> = predicted.outputs.iter().map(|o| o.label).collect();
    let bootstrap = Bootstrap::default();
    let metrics = score(&labels, &answers, &ds.labels, bootstrap);
    let timings = Timings { test_inference: inference, training: fitted.training() };
    let api_cost_per_1000_usd = predicted.api_cost_usd.map(|usd| 1000.0 * usd / test.len() as f64);
    let mut extra = match fitted.extra() {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => Default::default(),
        other => [("fit".to_string(), other)].into_iter().collect(),
    };
    if let serde_json::Value::Object(details) = predicted.details {
        extra.extend(details);
    }
    // Why each unanswered item has no answer, by its row in the test file (the
    // first MAX_ERRORS_KEPT; the count of all is in the metrics).
    let errors: Vec<serde_json::Value> = test
        .iter()
        .zip(&predicted.outputs)
        .filter_map(|(e, o)| o.error.as_ref().map(|error| serde_json::json!({"index": e.index, "error": error})))
        .take(MAX_ERRORS_KEPT)
        .collect();
    if !errors.is_empty() {
        extra.insert("errors".into(), errors.into());
    }
    extra.insert("test_sample".into(), (test.len() < ds.test.len()).into());
    extra.insert("peak_memory_mib".into(), crate::results::peak_memory_mib().into());
    let record = RunRecord {
        schema_version: results::SCHEMA_VERSION,
        experiment: identity.experiment,
        kind: identity.kind.to_string(),
        endpoint: identity.endpoint,
        method: identity.method,
        model: identity.model,
        command: options.command.clone(),
        config: fitted.config()?,
        seeds: [
            ("split".to_string(), ds.seed),
            ("method".to_string(), options.context.seed),
            ("bootstrap".to_string(), bootstrap.seed),
        ]
        .into(),
        data: DataSizes { train: fitted.trained_on(), test: test.len(), ..DataSizes::of(ds) },
        hardware: Hardware::detect(),
        timings,
        api_cost_per_1000_usd,
        scores: fitted.scores().to_string(),
        metrics,
        extra: serde_json::Value::Object(extra),
        predictions_xxh3: None,
    };
    Ok(MethodRun { record, test, outputs: predicted.outputs, fitted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_best_prefers_the_earliest_on_ties() {
        let c = [(1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6)];
        assert_eq!(choose_best(&c, |x| x.1), Some(&(2, 0.7)));
        assert_eq!(choose_best(&[] as &[(i32, f64)], |x| x.1), None);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_scores() {
        assert_eq!(argmax(&[0.1f32, 0.4, 0.4, 0.1]), 1);
        assert_eq!(argmax(&[0.1f64, 0.2, 0.7]), 2);
        assert_eq!(argmax::<f32>(&[]), 0);
    }
}
