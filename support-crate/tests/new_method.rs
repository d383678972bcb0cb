//! Adding a method is one struct and one line in the table of methods: the
//! method below lives only in this file, and `all`, `curve`, `cascade` and
//! the report's charts take it up from the table without any other change.
//!
//! The table here is TF-IDF plus the new method (the others need model
//! weights and minutes); `Methods::standard().with(...)` adds it to the full one.

use std::any::Any;
use std::collections::HashMap;
use std::path::Path;

use slm_vs_llm::method::{Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet};
use slm_vs_llm::methods::{CurvePlan, MethodKind, Methods};
use slm_vs_llm::metrics::Throughput;

/// Each class as the mean of its texts' word counts; a text goes to the
/// class whose mean shares most of its words (cosine).
#[derive(Clone)]
struct WordCentroids;

struct FittedCentroids {
    centroids: Vec<HashMap<String, f64>>,
    trained_on: usize,
}

fn words(text: &str) -> HashMap<String, f64> {
    let mut counts = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w.to_lowercase()).or_insert(0.0) += 1.0;
    }
    counts
}

fn cosine(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> f64 {
    let dot: f64 = a.iter().map(|(w, x)| x * b.get(w).unwrap_or(&0.0)).sum();
    let norm = |m: &HashMap<String, f64>| m.values().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    dot / (norm(a) * norm(b))
}

impl Method for WordCentroids {
    fn name(&self) -> &'static str {
        "centroids"
    }

    fn fit(&self, data: &TrainingSet, _ctx: &RunContext) -> anyhow::Result<Box<dyn Fitted>> {
        let mut centroids = vec![HashMap::new(); data.num_classes()];
        for e in data.train {
            for (w, x) in words(&e.text) {
                *centroids[e.label].entry(w).or_insert(0.0) += x;
            }
        }
        Ok(Box::new(FittedCentroids { centroids, trained_on: data.train.len() }))
    }

    fn for_budget(&self, _budget: &Budget) -> Box<dyn Method> {
        Box::new(self.clone())
    }
}

impl Fitted for FittedCentroids {
    fn identity(&self) -> Identity {
        Identity {
            kind: "centroids",
            endpoint: None,
            experiment: "centroids".into(),
            method: "word centroids".into(),
            model: "bag of words".into(),
        }
    }
    fn config(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    fn training(&self) -> Option<Throughput> {
        Some(Throughput::new(0.001, self.trained_on))
    }
    fn trained_on(&self) -> usize {
        self.trained_on
    }
    fn scores(&self) -> &'static str {
        "cosine similarity to each class's centroid, normalised to sum to 1"
    }
    fn predict(&self, texts: &[&str], _ctx: &RunContext) -> anyhow::Result<Predicted> {
        let outputs = texts
            .iter()
            .map(|t| {
                let w = words(t);
                let sims: Vec<f64> = self.centroids.iter().map(|c| cosine(&w, c) + 1e-9).collect();
                let total: f64 = sims.iter().sum();
                Output::from_scores(sims.iter().map(|s| (s / total) as f32).collect())
            })
            .collect();
        Ok(Predicted { outputs, ..Default::default() })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The one line a new method adds to the table.
const CENTROIDS: MethodKind = MethodKind {
    name: "centroids",
    title: "word centroids",
    color: 5,
    in_all: true,
    curve: CurvePlan::EveryBudget,
    build: |_| Box::new(WordCentroids),
};

const WORDS: [&[&str]; 3] = [
    &["goal", "match", "team", "league", "coach", "season"],
    &["stock", "market", "shares", "profit", "bank", "price"],
    &["chip", "software", "phone", "laptop", "code", "robot"],
];

/// A 3-class CSV with text labels.
fn write_csv(path: &Path) {
    let names = ["sport", "money", "tech"];
    let mut csv = String::from("text,label\n");
    for i in 0..600 {
        let c = i % 3;
        let (w, other) = (WORDS[c], WORDS[(c + 1) % 3]);
        csv.push_str(&format!(
            "\"{} {} {} {} note {i}\",{}\n",
            w[i % 6],
            w[(i / 6) % 6],
            other[i % 5],
            w[(i / 3) % 6],
            names[c]
        ));
    }
    std::fs::write(path, csv).unwrap();
}

fn run(args: &[&str], methods: &Methods) {
    let argv = std::iter::once("slm-vs-llm").chain(args.iter().copied());
    slm_vs_llm::cli::run(argv, methods).unwrap_or_else(|e| panic!("slm-vs-llm {}: {e:#}", args.join(" ")));
}

#[test]
fn a_method_added_to_the_table_runs_in_all_curve_cascade_and_the_report() {
    let project = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_PROJECT_DIR", project.path());
    std::env::set_var("SLM_CACHE_DIR", project.path().join("cache"));
    let csv = project.path().join("three_topics.csv");
    write_csv(&csv);
    let csv = csv.to_str().unwrap();

    assert!(Methods::standard().with(CENTROIDS).names().contains(&"centroids"));
    let standard = Methods::standard();
    let methods = Methods::new(vec![*standard.get("tfidf").unwrap(), CENTROIDS]);

    run(&["all", "--smoke", "--train", csv], &methods);
    let own = project.path().join("data/runs/three_topics/smoke");
    let results = own.join("results");
    let records = slm_vs_llm::results::read_all(&results).unwrap();
    let kinds: Vec<&str> = records.iter().map(|(_, r)| r.kind.as_str()).collect();
    assert!(kinds.contains(&"centroids") && kinds.contains(&"tfidf"), "{kinds:?}");
    let assets = own.join("assets");
    assert!(!project.path().join("results").exists(), "your own data never goes to the committed results");
    let accuracy = std::fs::read_to_string(assets.join("text_classification_average_accuracy.svg")).unwrap();
    assert!(accuracy.contains("word centroids"), "the accuracy chart shows the new method");

    let out = project.path().join("studies");
    let out_str = out.to_str().unwrap();
    run(&["curve", "--smoke", "--train", csv, "--out", out_str], &methods);
    let curve = slm_vs_llm::studies::curve::read(&out.join("curve.json")).unwrap();
    assert!(curve.points.iter().any(|p| p.arm == "centroids" && p.labels_per_class == 8));
    assert!(curve.points.iter().any(|p| p.arm == "centroids" && p.all));

    run(&["cascade", "--smoke", "--train", csv, "--first", "centroids", "--then", "tfidf", "--out", out_str], &methods);
    let cascades = slm_vs_llm::studies::cascade::read_all(&out).unwrap();
    assert_eq!(cascades[0].first.method, "word centroids");

    for record in ["centroids", "baseline_tfidf"] {
        for ext in ["json", "predictions.csv"] {
            let name = format!("{record}.{ext}");
            std::fs::copy(results.join(&name), out.join(&name)).unwrap();
        }
    }
    let readme = project.path().join("README.md");
    let sections: String = ["results-table", "learning-curve", "cascade"]
        .iter()
        .map(|s| format!("<!-- {s}:start -->\n<!-- {s}:end -->\n"))
        .collect();
    std::fs::write(&readme, sections).unwrap();
    let charts = project.path().join("charts");
    let (readme_str, charts_str) = (readme.to_str().unwrap(), charts.to_str().unwrap());
    run(&["report", "--results", out_str, "--assets", charts_str, "--readme", readme_str], &methods);
    let curve_chart = std::fs::read_to_string(charts.join("learning_curve.svg")).unwrap();
    assert!(curve_chart.contains("word centroids"), "the learning curve shows the new method");
    assert!(std::fs::read_to_string(&readme).unwrap().contains("| word centroids | bag of words |"));
}
