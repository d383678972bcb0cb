//! Datasets: AG News (CSV release, Hugging Face parquet or hf-hub) and any
//! CSV/parquet file with a text and a label column, split into
//! train / validation / test.
//!
//! Validation is always carved out of train (seeded, stratified): test is
//! only for final numbers.

mod load;
mod normalize;
mod split;
mod task;

use std::path::PathBuf;

use crate::paths::Profile;

pub use load::{load, Source, AG_NEWS_HUB_REPO, AG_NEWS_HUB_REVISION};
pub use normalize::{normalize, Quirks};
pub use split::{per_class_subset, stratified_sample, stratified_split, unlabelled_pool};
pub use task::Task;

/// AG News class names, in label order (CSV class index minus one).
pub const AG_NEWS_LABELS: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// 0-based row in the source file (for test: the row in `test.csv`), so
    /// predictions can always be matched back to the original data.
    pub index: usize,
    /// Class id, an index into [`Dataset::labels`].
    pub label: usize,
    /// Raw title as stored (AG News CSV); empty where the source has one text field.
    pub title: String,
    /// Raw description / text as stored.
    pub body: String,
    /// The model input: `title + ". " + body`, normalised.
    pub text: String,
}

impl Example {
    pub fn new(index: usize, label: usize, title: String, body: String) -> Self {
        let text = model_input(&title, &body);
        Example { index, label, title, body, text }
    }

    /// The text as stored, title and body joined by a space (as in the
    /// Hugging Face version of AG News).
    pub fn raw_text(&self) -> String {
        if self.title.is_empty() {
            self.body.clone()
        } else {
            format!("{} {}", self.title, self.body)
        }
    }
}

/// `title + ". " + body`, each normalised. No extra period after a title
/// that already ends a sentence.
fn model_input(title: &str, body: &str) -> String {
    let title = normalize(title);
    let body = normalize(body);
    match (title.is_empty(), body.is_empty()) {
        (true, _) => body,
        (false, true) => title,
        (false, false) if title.ends_with(['.', '?', '!']) => format!("{title} {body}"),
        (false, false) => format!("{title}. {body}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A labelled dataset in three splits.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where it came from, for reports (a path or a hub id).
    pub source: String,
    /// What is being classified, in words.
    pub task: Task,
    /// Class names; `Example::label` indexes this.
    pub labels: Vec<String>,
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
    pub test: Vec<Example>,
    /// The seed the splits and samples were drawn with.
    pub seed: u64,
}

impl Dataset {
    pub fn split(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }

    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }

    /// Examples per class in `split`.
    pub fn class_counts(&self, split: Split) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for e in self.split(split) {
            counts[e.label] += 1;
        }
        counts
    }
}

/// The texts of `examples`, in order.
pub fn texts(examples: &[Example]) -> Vec<&str> {
    examples.iter().map(|e| e.text.as_str()).collect()
}

/// The labels of `examples`, in order.
pub fn labels(examples: &[Example]) -> Vec<usize> {
    examples.iter().map(|e| e.label).collect()
}

/// How the splits are made from what was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// Share of train held out (stratified) as validation.
    pub validation_fraction: f64,
    /// Share of train held out as test when a custom dataset has no test file.
    pub test_fraction: f64,
    /// Seed of every split and sample.
    pub seed: u64,
    /// Keep a stratified sample of this many train examples (before validation is carved).
    pub max_train: Option<usize>,
    /// Keep a stratified sample of this many test examples.
    pub max_test: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { validation_fraction: 0.05, test_fraction: 0.2, seed: 42, max_train: None, max_test: None }
    }
}

impl DataConfig {
    /// The whole data for a full run; for a smoke run a minute-scale
    /// stratified sample (2,000 train, 400 test) with a larger validation share.
    pub fn for_profile(profile: Profile) -> Self {
        match profile {
            Profile::Full => Self::default(),
            Profile::Smoke => {
                DataConfig { max_train: Some(2_000), max_test: Some(400), validation_fraction: 0.1, ..Self::default() }
            }
        }
    }

    /// The profile's data, with the sample sizes `SLM_TRAIN_ROWS` and
    /// `SLM_TEST_ROWS` ask for (the CLI's `--train-rows` and `--test-rows`
    /// read the same variables): what the notebooks use, so a large data set
    /// can be tried on a sample first.
    pub fn from_env(profile: Profile) -> anyhow::Result<Self> {
        let base = Self::for_profile(profile);
        Ok(DataConfig {
            max_train: rows_from_env(TRAIN_ROWS_ENV)?.or(base.max_train),
            max_test: rows_from_env(TEST_ROWS_ENV)?.or(base.max_test),
            ..base
        })
    }
}

/// The environment variable that caps the training rows (`--train-rows`).
pub const TRAIN_ROWS_ENV: &str = "SLM_TRAIN_ROWS";
/// The environment variable that caps the test rows (`--test-rows`).
pub const TEST_ROWS_ENV: &str = "SLM_TEST_ROWS";

fn rows_from_env(name: &str) -> anyhow::Result<Option<usize>> {
    parse_rows(name, std::env::var(name).ok().as_deref())
}

fn parse_rows(name: &str, value: Option<&str>) -> anyhow::Result<Option<usize>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => anyhow::bail!("{name}={v:?}: expected a whole number of rows, at least 1"),
        },
    }
}

/// What went wrong while loading data. Every variant names the file (and the
/// line, where there is one) and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: file not found. {hint}")]
    MissingFile { path: PathBuf, hint: String },
    #[error("{path}: {problem}. {hint}")]
    BadDirectory { path: PathBuf, problem: String, hint: String },
    #[error("{path}: the file is empty; expected {expected}")]
    Empty { path: PathBuf, expected: String },
    #[error("{path}:{line}: {problem}")]
    Malformed { path: PathBuf, line: u64, problem: String },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("hf-hub dataset {repo}@{revision}, file {file}: {problem}")]
    Hub { repo: String, revision: String, file: String, problem: String },
}

/// How to get AG News, appended to errors about missing data.
pub const HOW_TO_GET_AG_NEWS: &str =
    "Point --data-dir (or AG_NEWS_DIR) at a directory holding the AG News CSV release \
(train.csv or train_subset.csv, and test.csv) or the Hugging Face parquet files; `bash scripts/setup.sh` copies \
../shared/data/ag_news to data/ag_news where that exists. Online, leaving both unset downloads fancyzhx/ag_news \
from the Hugging Face Hub. See data/README.md.";

#[cfg(test)]
mod tests {
    use super::parse_rows;

    #[test]
    fn row_caps_from_the_environment_are_whole_positive_numbers() {
        assert_eq!(parse_rows("SLM_TRAIN_ROWS", None).unwrap(), None);
        assert_eq!(parse_rows("SLM_TRAIN_ROWS", Some(" ")).unwrap(), None);
        assert_eq!(parse_rows("SLM_TRAIN_ROWS", Some("600")).unwrap(), Some(600));
        for bad in ["0", "-3", "6e2", "all"] {
            let e = parse_rows("SLM_TEST_ROWS", Some(bad)).unwrap_err().to_string();
            assert!(e.contains("SLM_TEST_ROWS") && e.contains(bad), "{e}");
        }
    }
}
