//! The method seam end to end on synthetic data: a method written here (as
//! a user would add a fifth one) and the TF-IDF baseline both go through
//! `method::run`, and their records and predictions files (with a score per
//! class) round-trip and recompute.

use std::any::Any;

use slm_vs_llm::data::Example;
use slm_vs_llm::method::{
    self, Budget, Fitted, Identity, Method, Output, Predicted, RunContext, RunOptions, TrainingSet,
};
use slm_vs_llm::methods::tfidf::TfidfBaseline;
use slm_vs_llm::metrics::Throughput;
use slm_vs_llm::results::{json_path, predictions_path, read_predictions, read_record, recompute, RunRecord};
use slm_vs_llm::Dataset;

const WORDS: [&[&str]; 3] = [
    &["goal", "match", "team", "league"],
    &["stock", "market", "shares", "profit"],
    &["chip", "software", "phone", "laptop"],
];

fn dataset() -> Dataset {
    let make = |offset: usize, n: usize| -> Vec<Example> {
        (0..n)
            .map(|i| {
                let label = i % 3;
                let w = WORDS[label];
                let text = format!("{} {} {} item{}", w[i % 4], w[(i / 3) % 4], w[(i + 1) % 4], i + offset);
                Example::new(i + offset, label, String::new(), text)
            })
            .collect()
    };
    Dataset {
        source: "synthetic".into(),
        task: slm_vs_llm::data::Task::named("synthetic"),
        labels: vec!["sports".into(), "business".into(), "tech".into()],
        train: make(0, 120),
        validation: make(1000, 30),
        test: make(2000, 60),
        seed: 7,
    }
}

/// Predicts the class most frequent in train: the smallest possible method.
struct MajorityClass;

struct FittedMajority {
    class: usize,
    classes: usize,
    trained_on: usize,
}

impl Method for MajorityClass {
    fn name(&self) -> &'static str {
        "majority"
    }

    fn for_budget(&self, _budget: &Budget) -> Box<dyn Method> {
        Box::new(MajorityClass)
    }

    fn fit(&self, data: &TrainingSet, _ctx: &RunContext) -> anyhow::Result<Box<dyn Fitted>> {
        let mut counts = vec![0usize; data.num_classes()];
        data.train.iter().for_each(|e| counts[e.label] += 1);
        let class = (0..counts.len()).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
        Ok(Box::new(FittedMajority { class, classes: data.num_classes(), trained_on: data.train.len() }))
    }
}

impl Fitted for FittedMajority {
    fn identity(&self) -> Identity {
        Identity {
            kind: "majority",
            endpoint: None,
            experiment: "majority".into(),
            method: "majority class".into(),
            model: "none".into(),
        }
    }
    fn config(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "class": self.class }))
    }
    fn training(&self) -> Option<Throughput> {
        None
    }
    fn trained_on(&self) -> usize {
        self.trained_on
    }
    fn scores(&self) -> &'static str {
        "1 for the majority class"
    }
    fn predict(&self, texts: &[&str], _ctx: &RunContext) -> anyhow::Result<Predicted> {
        let scores: Vec<f32> = (0..self.classes).map(|c| f32::from(u8::from(c == self.class))).collect();
        // One item fails, as an LLM's request can: the record must say which and why.
        let answer = |text: &&str| match text.ends_with("item2010") {
            true => Output { label: None, scores: None, error: Some("request failed: timed out".into()) },
            false => Output::from_scores(scores.clone()),
        };
        Ok(Predicted { outputs: texts.iter().map(answer).collect(), ..Default::default() })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn check_round_trip(run: &method::MethodRun) {
    let dir = tempfile::tempdir().unwrap();
    let json = run.write(dir.path()).unwrap();
    assert_eq!(json, json_path(dir.path(), &run.record.experiment));
    let record = read_record(&json).unwrap();
    assert!(record.predictions_xxh3.is_some(), "the record holds its predictions' checksum");
    assert_eq!(RunRecord { predictions_xxh3: None, ..record.clone() }, run.record);
    let predictions = read_predictions(&predictions_path(dir.path(), &record.experiment)).unwrap();
    assert_eq!(predictions, run.predictions());
    assert_eq!(recompute(&record, &predictions), record.metrics);
    let header = std::fs::read_to_string(predictions_path(dir.path(), &record.experiment)).unwrap();
    assert!(header.starts_with("index,label,prediction,sports,business,tech\n"), "{header}");
}

#[test]
fn a_method_written_outside_the_crate_runs_through_the_seam() {
    let ds = dataset();
    let run = method::run(&MajorityClass, &ds, &RunOptions::default()).unwrap();
    assert_eq!((run.record.experiment.as_str(), run.record.kind.as_str()), ("majority", "majority"));
    assert_eq!(run.record.metrics.items, 60);
    assert!((run.record.metrics.accuracy - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(run.record.seeds["split"], 7);
    assert!(run.fitted_as::<FittedMajority>().is_some());
    assert_eq!(run.record.metrics.invalid, 1);
    assert_eq!(run.record.extra["errors"], serde_json::json!([{"index": 2010, "error": "request failed: timed out"}]));
    check_round_trip(&run);
}

#[test]
fn the_baseline_chooses_on_validation_and_scores_every_class() {
    let ds = dataset();
    let run = method::run(&TfidfBaseline::default(), &ds, &RunOptions::default()).unwrap();
    assert!(run.record.metrics.accuracy > 0.9, "{}", run.record.metrics.summary());
    assert!(run.record.timings.training.is_some_and(|t| t.items == ds.train.len()));
    assert_eq!(run.record.kind, "tfidf");
    for o in &run.outputs {
        let s = o.scores.as_ref().unwrap();
        assert_eq!(s.len(), 3);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(o.label, Some(method::argmax(s)));
    }
    check_round_trip(&run);
}

#[test]
fn a_test_sample_is_seeded_stratified_and_stated() {
    let ds = dataset();
    let options = RunOptions { test_items: Some(30), ..RunOptions::default() };
    let a = method::run(&MajorityClass, &ds, &options).unwrap();
    let b = method::run(&MajorityClass, &ds, &options).unwrap();
    assert_eq!(a.test, b.test);
    assert_eq!(a.record.data.test, 30);
    assert_eq!(a.record.extra["test_sample"], true);
    let per_class = (0..3).map(|c| a.test.iter().filter(|e| e.label == c).count()).collect::<Vec<_>>();
    assert_eq!(per_class, vec![10, 10, 10]);
    let zero = RunOptions { test_items: Some(0), ..RunOptions::default() };
    assert!(method::run(&MajorityClass, &ds, &zero).is_err());
}
