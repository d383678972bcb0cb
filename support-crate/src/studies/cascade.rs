//! A cascade of two methods: the first answers when its confidence (its
//! score for the class it answers) clears a threshold, the second answers
//! the rest. The threshold is chosen on validation — the most accurate
//! one, the least escalating on ties — and only then applied to test; the
//! whole trade-off (accuracy against the share escalated) is reported on
//! both, with what 1,000 items cost.
//!
//! Both methods are fitted on the full training split through the
//! [`Method`] seam (the fine-tuned SLM resumes from its finished
//! checkpoint, the LLM's answers come from its cache). Their answers are
//! cached per fitted configuration and text set, so a second cascade with
//! the same method costs nothing twice.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::costs::MACHINE_USD_PER_HOUR;
use crate::data::{stratified_sample, Dataset, Example};
use crate::method::{predict_all, Fitted, Method, Output, RunContext, TrainingSet};
use crate::metrics::{evaluate, Bootstrap, Metrics};
use crate::results::Hardware;

/// One threshold's outcome on a set of items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Operating {
    /// The first method answers items whose confidence is at least this.
    pub threshold: f64,
    /// Share of items passed to the second method.
    pub escalated: f64,
    pub accuracy: f64,
    pub cost_per_1000_usd: f64,
}

/// One method's side of a cascade.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    pub experiment: String,
    pub method: String,
    pub model: String,
    /// Test accuracy of the method alone.
    pub accuracy: f64,
    pub items_per_second: f64,
    /// Machine time at the stated price, plus any API price.
    pub cost_per_1000_usd: f64,
}

/// A cascade's record (`results/cascade_<first>_<then>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CascadeRecord {
    pub schema_version: u32,
    pub command: String,
    pub first: Stage,
    pub then: Stage,
    pub validation_items: usize,
    pub test_items: usize,
    /// Chosen on validation.
    pub threshold: f64,
    pub validation: Operating,
    /// The chosen threshold on test, with its interval and per-class scores.
    pub test: Operating,
    pub test_metrics: Metrics,
    /// Every candidate threshold on validation and on test (the frontier).
    pub validation_curve: Vec<Operating>,
    pub test_curve: Vec<Operating>,
    pub machine_usd_per_hour: f64,
    pub hardware: Hardware,
}

pub const CASCADE_SCHEMA_VERSION: u32 = 1;

/// The answers of one fitted method to a set of texts, and what they cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answers {
    pub outputs: Vec<Output>,
    pub seconds: f64,
    /// An API's price for 1,000 of these answers (0 on your own machine).
    pub api_per_1000: f64,
}

impl Answers {
    fn confidence(&self) -> Vec<f64> {
        self.outputs.iter().map(confidence).collect()
    }

    /// This machine's time for one answer plus the API's price for it.
    fn per_item_cost(&self) -> f64 {
        crate::costs::machine_usd(self.seconds / self.outputs.len().max(1) as f64) + self.api_per_1000 / 1000.0
    }
}

/// The score of the answered class; 0 for no answer (always escalated).
pub fn confidence(output: &Output) -> f64 {
    match (output.label, &output.scores) {
        (Some(c), Some(s)) => s.get(c).map_or(0.0, |&x| f64::from(x)),
        _ => 0.0,
    }
}

/// Whether the first method keeps an item at `threshold`: it answered, with
/// at least that confidence.
pub fn kept(first: &Output, threshold: f64) -> bool {
    first.label.is_some() && confidence(first) >= threshold
}

/// The cascade's answers at `threshold`: the first's where it keeps the
/// item, else the second's.
pub fn combine(first: &[Output], then: &[Output], threshold: f64) -> Vec<Option<usize>> {
    first.iter().zip(then).map(|(a, b)| if kept(a, threshold) { a.label } else { b.label }).collect()
}

/// The outcome of every threshold in `thresholds` on one set of items.
pub fn sweep(
    labels: &[usize],
    first: &[Output],
    then: &[Output],
    thresholds: &[f64],
    costs: (f64, f64),
) -> Vec<Operating> {
    let n = labels.len().max(1) as f64;
    thresholds
        .iter()
        .map(|&threshold| {
            let answers = combine(first, then, threshold);
            let correct = answers.iter().zip(labels).filter(|(a, y)| **a == Some(**y)).count();
            let escalated = first.iter().filter(|a| !kept(a, threshold)).count() as f64 / n;
            Operating {
                threshold,
                escalated,
                accuracy: correct as f64 / n,
                cost_per_1000_usd: 1000.0 * (costs.0 + escalated * costs.1),
            }
        })
        .collect()
}

/// The candidate thresholds: escalate nothing (0), every distinct
/// validation confidence, and escalate everything (above any confidence).
pub fn candidate_thresholds(validation_confidence: &[f64]) -> Vec<f64> {
    let mut t: Vec<f64> = validation_confidence.iter().copied().filter(|c| *c > 0.0).collect();
    t.push(0.0);
    // Finite, so that the record's JSON holds it.
    t.push(f64::MAX);
    t.sort_by(f64::total_cmp);
    t.dedup();
    t
}

/// The most accurate operating point; on ties the one escalating least.
pub fn choose(curve: &[Operating]) -> Option<Operating> {
    curve.iter().copied().fold(None, |best: Option<Operating>, o| match best {
        Some(b) if o.accuracy < b.accuracy || (o.accuracy == b.accuracy && o.escalated >= b.escalated) => Some(b),
        _ => Some(o),
    })
}

/// Answers of `fitted` to `items`, from the cache when this fitted
/// configuration has answered exactly these texts before.
fn answers(fitted: &dyn Fitted, items: &[Example], ctx: &RunContext, what: &str) -> Result<Answers> {
    let texts = crate::data::texts(items);
    let identity = fitted.identity();
    let config = fitted.config()?.to_string();
    let described = [identity.experiment.as_str(), identity.method.as_str(), config.as_str()];
    let key = crate::cache::content_key(described.iter().chain(&texts).map(|s| s.as_bytes()));
    let dir = crate::paths::cache_dir().join("cascade");
    let path = dir.join(format!("{}-{key:032x}.json", identity.experiment));
    if let Some(cached) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Answers>(&b).ok()) {
        if cached.outputs.len() == items.len() {
            return Ok(cached);
        }
    }
    tracing::info!(method = %identity.method, items = items.len(), "answering {what}");
    let (predicted, cost) = predict_all(fitted, items, ctx)?;
    let api_per_1000 = 1000.0 * predicted.api_cost_usd.unwrap_or(0.0) / texts.len().max(1) as f64;
    let answers = Answers { outputs: predicted.outputs, seconds: cost.seconds, api_per_1000 };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::results::write_whole(&path, &serde_json::to_vec(&answers)?)?;
    Ok(answers)
}

/// How many validation and test items a cascade asks.
#[derive(Debug, Clone, Copy)]
pub struct CascadeItems {
    /// A seeded stratified sample of validation (the LLM's own validation
    /// sample when the seed and size are the LLM's: its answers are cached).
    pub validation: usize,
    /// A seeded stratified sample of test; `None`: all.
    pub test: Option<usize>,
}

/// Fits both methods, answers validation and test with each, chooses the
/// threshold on validation and scores it on test.
pub fn run(
    first: &dyn Method,
    then: &dyn Method,
    ds: &Dataset,
    items: CascadeItems,
    ctx: &RunContext,
    command: &str,
) -> Result<CascadeRecord> {
    let classes = ds.num_classes();
    let validation = stratified_sample(ds.validation.clone(), classes, items.validation, ctx.seed);
    let test = match items.test {
        Some(n) => stratified_sample(ds.test.clone(), classes, n, ctx.seed),
        None => ds.test.clone(),
    };
    let data = TrainingSet::of(ds);
    let mut stages = Vec::new();
    for method in [first, then] {
        tracing::info!(method = method.name(), "fitting");
        let fitted = method.fit(&data, ctx).with_context(|| format!("fitting {}", method.name()))?;
        let on_validation = answers(fitted.as_ref(), &validation, ctx, "validation")?;
        let on_test = answers(fitted.as_ref(), &test, ctx, "test")?;
        stages.push((fitted, on_validation, on_test));
    }
    let (b, a) = (stages.pop().expect("two stages"), stages.pop().expect("two stages"));
    let costs = (a.2.per_item_cost(), b.2.per_item_cost());
    let validation_labels = crate::data::labels(&validation);
    let test_labels = crate::data::labels(&test);
    let thresholds = candidate_thresholds(&a.1.confidence());
    let validation_curve = sweep(&validation_labels, &a.1.outputs, &b.1.outputs, &thresholds, costs);
    let chosen = choose(&validation_curve).context("no threshold to choose from")?;
    let test_curve = sweep(&test_labels, &a.2.outputs, &b.2.outputs, &thresholds, costs);
    let test_point = *test_curve.iter().find(|o| o.threshold == chosen.threshold).expect("same thresholds");
    let test_metrics = evaluate(
        &test_labels,
        &combine(&a.2.outputs, &b.2.outputs, chosen.threshold),
        &ds.labels,
        Bootstrap::default(),
    );
    let stage = |(fitted, _, on_test): &(Box<dyn Fitted>, Answers, Answers), cost: f64| {
        let id = fitted.identity();
        let right = on_test.outputs.iter().zip(&test_labels).filter(|(o, y)| o.label == Some(**y)).count();
        Stage {
            experiment: id.experiment,
            method: id.method,
            model: id.model,
            accuracy: right as f64 / test.len().max(1) as f64,
            items_per_second: on_test.outputs.len() as f64 / on_test.seconds.max(f64::EPSILON),
            cost_per_1000_usd: 1000.0 * cost,
        }
    };
    Ok(CascadeRecord {
        schema_version: CASCADE_SCHEMA_VERSION,
        command: command.to_string(),
        first: stage(&a, costs.0),
        then: stage(&b, costs.1),
        validation_items: validation.len(),
        test_items: test.len(),
        threshold: chosen.threshold,
        validation: chosen,
        test: test_point,
        test_metrics,
        validation_curve,
        test_curve,
        machine_usd_per_hour: MACHINE_USD_PER_HOUR,
        hardware: Hardware::detect(),
    })
}

/// `cascade_<first>_<then>.json` in `dir`.
pub fn path(dir: &Path, record: &CascadeRecord) -> PathBuf {
    dir.join(format!("cascade_{}_{}.json", record.first.experiment, record.then.experiment))
}

pub fn write(dir: &Path, record: &CascadeRecord) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = path(dir, record);
    crate::results::write_whole(&path, &serde_json::to_vec_pretty(record)?)?;
    Ok(path)
}

/// Every `cascade_*.json` in `dir`, sorted by file name.
pub fn read_all(dir: &Path) -> Result<Vec<CascadeRecord>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Ok(Vec::new()),
    };
    paths.retain(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("cascade_") && n.ends_with(".json"))
    });
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let record: CascadeRecord =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            if record.schema_version != CASCADE_SCHEMA_VERSION {
                bail!(
                    "{}: schema version {} (this build reads {CASCADE_SCHEMA_VERSION})",
                    p.display(),
                    record.schema_version
                );
            }
            Ok(record)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(label: usize, confidence: f32) -> Output {
        let mut scores = vec![(1.0 - confidence) / 2.0; 3];
        scores[label] = confidence;
        Output { label: Some(label), scores: Some(scores), error: None }
    }

    #[test]
    fn the_threshold_splits_items_between_the_two_methods() {
        let labels = [0, 1, 2, 0];
        // The first is right when sure (0.875, 0.75), wrong when not (0.5); the second always right.
        let first = [out(0, 0.875), out(1, 0.75), out(0, 0.5), Output { label: None, scores: None, error: None }];
        let then: Vec<Output> = labels.iter().map(|&y| out(y, 0.6)).collect();
        let thresholds = candidate_thresholds(&first.iter().map(confidence).collect::<Vec<_>>());
        assert_eq!(thresholds, vec![0.0, 0.5, 0.75, 0.875, f64::MAX]);
        let curve = sweep(&labels, &first, &then, &thresholds, (0.001, 0.01));
        let at = |t: f64| curve.iter().find(|o| o.threshold == t).unwrap();
        // Threshold 0: the first answers all it can; its invalid answer always goes to the second.
        assert_eq!((at(0.0).escalated, at(0.0).accuracy), (0.25, 0.75));
        assert_eq!((at(0.75).escalated, at(0.75).accuracy), (0.5, 1.0));
        assert_eq!((at(f64::MAX).escalated, at(f64::MAX).accuracy), (1.0, 1.0));
        assert!((at(0.75).cost_per_1000_usd - 1000.0 * (0.001 + 0.5 * 0.01)).abs() < 1e-9);
        let best = choose(&curve).unwrap();
        assert_eq!(best.threshold, 0.75, "most accurate, then least escalated");
    }

    #[test]
    fn no_answer_has_no_confidence() {
        assert_eq!(confidence(&Output { label: None, scores: Some(vec![0.9, 0.1]), error: None }), 0.0);
        assert_eq!(confidence(&out(1, 0.75)), 0.75);
    }
}
