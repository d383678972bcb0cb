//! The methods compared, one folder each, every one implementing
//! [`Method`](crate::method::Method):
//!
//! - [`tfidf`]: TF-IDF + logistic regression, the classic baseline;
//! - [`knn`]: sentence embeddings + K-nearest neighbours;
//! - [`finetune`]: a small language model fine-tuned as a classifier;
//! - [`setfit`]: the sentence encoder tuned contrastively on pairs of the
//!   labelled examples, then a logistic head (SetFit's recipe);
//! - [`llm`]: an LLM, prompted, its answer constrained to the labels;
//! - [`distill`]: a teacher (any of the above) labels unlabelled texts, a
//!   student (any of the above) learns from its labels.
//!
//! [`Methods::standard`] is the one table of them: `all`, the learning
//! curve's arms, the cascade's `--first`/`--then`, the charts' colours and
//! the command line's choices all derive from it. A new method is a folder
//! implementing [`Method`] plus one [`MethodKind`] line there.

pub mod distill;
pub mod finetune;
pub mod knn;
pub mod llm;
pub mod setfit;
pub mod tfidf;

use anyhow::{bail, Result};

use crate::method::Method;
use crate::paths::Profile;
use distill::DistillConfig;

/// How the learning curve measures a method, by what a point costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CurvePlan {
    /// Seconds a point: every budget with several seeds, a point on all of
    /// train, all of test.
    EveryBudget,
    /// Minutes a point (training): the trained budgets, fewer seeds, the
    /// seeded test sample; its full-data point is its committed run.
    Trained,
    /// A teacher labels a pool for a cheap student: the distilled budgets,
    /// the trained methods' seeds, the test sample.
    Distilled,
    /// Costly per item (prompting, or a teacher that prompts): the prompted
    /// budgets, one seed, the test sample; its full-data point is its
    /// committed run.
    Prompted,
    /// Uses no labels: one point, on the test sample, drawn as a flat line.
    NoLabels,
}

impl CurvePlan {
    /// Scored on the curve's seeded test sample rather than all of test.
    pub fn sampled(self) -> bool {
        self != CurvePlan::EveryBudget
    }

    /// Its full-data point is the committed run of `all`, not re-measured.
    pub fn committed_full_point(self) -> bool {
        matches!(self, CurvePlan::Trained | CurvePlan::Prompted)
    }
}

/// One line of the table of methods.
#[derive(Clone, Copy)]
pub struct MethodKind {
    /// On the command line (`--first knn`, `curve --arms knn`), in logs, and
    /// in the records (`RunRecord::kind`, a curve point's `arm`).
    pub name: &'static str,
    /// Shown to readers on charts and in sentences.
    pub title: &'static str,
    /// Its colour on every chart (an index into the chart palette).
    pub color: usize,
    /// Run by `slm-vs-llm all` (and so a row of the results table).
    pub in_all: bool,
    pub curve: CurvePlan,
    /// The method at the profile's defaults, as `all` runs it.
    pub build: fn(Profile) -> Box<dyn Method>,
}

impl MethodKind {
    /// Its curve's full-data point is the committed run `all` made, read
    /// from `results/` rather than measured again.
    pub fn full_point_is_committed(&self) -> bool {
        self.in_all && self.curve.committed_full_point()
    }
}

impl std::fmt::Debug for MethodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The table of methods, in the order `all` runs them and charts list them.
#[derive(Debug, Clone)]
pub struct Methods(Vec<MethodKind>);

impl Methods {
    /// The methods this project compares.
    pub fn standard() -> Self {
        Methods(vec![
            MethodKind {
                name: "tfidf",
                title: "TF-IDF + LR",
                color: 2,
                in_all: true,
                curve: CurvePlan::EveryBudget,
                build: |_| Box::new(tfidf::TfidfBaseline::default()),
            },
            MethodKind {
                name: "knn",
                title: "embeddings + K-NN",
                color: 1,
                in_all: true,
                curve: CurvePlan::EveryBudget,
                build: |_| Box::new(knn::Knn::default()),
            },
            MethodKind {
                name: "finetune",
                title: "fine-tuned SLM",
                color: 0,
                in_all: true,
                curve: CurvePlan::Trained,
                build: |profile| Box::new(finetune::Finetune::for_profile(profile)),
            },
            MethodKind {
                name: "setfit",
                title: "SetFit (contrastive MiniLM + LR)",
                color: 5,
                in_all: true,
                curve: CurvePlan::Trained,
                build: |profile| Box::new(setfit::SetFit::for_profile(profile)),
            },
            MethodKind {
                name: "llm",
                title: "prompted LM + 4 retrieved examples",
                color: 3,
                in_all: true,
                curve: CurvePlan::Prompted,
                build: |profile| Box::new(llm::Llm::for_profile(profile)),
            },
            MethodKind {
                name: "zero-shot",
                title: "prompted LM, zero-shot (no labels)",
                color: 4,
                in_all: false,
                curve: CurvePlan::NoLabels,
                build: |profile| Box::new(llm::Llm::zero_shot(profile)),
            },
            distilled("distill-knn-tfidf", "TF-IDF taught by K-NN", 6, CurvePlan::Distilled, |p| {
                Box::new(distill::Distill::new(
                    "distill-knn-tfidf",
                    Box::new(knn::Knn::default()),
                    Box::new(tfidf::TfidfBaseline::default()),
                    DistillConfig::for_profile(p, 2000, CHEAP_STUDENT_SHARES),
                ))
            }),
            distilled("distill-knn-tfidf-8k", "TF-IDF taught by K-NN, 4× the pool", 7, CurvePlan::Distilled, |p| {
                Box::new(distill::Distill::new(
                    "distill-knn-tfidf-8k",
                    Box::new(knn::Knn::default()),
                    Box::new(tfidf::TfidfBaseline::default()),
                    DistillConfig::for_profile(p, 8000, CHEAP_STUDENT_SHARES),
                ))
            }),
            distilled(
                "distill-zero-shot-tfidf",
                "TF-IDF taught by the zero-shot prompted LM",
                8,
                CurvePlan::Distilled,
                |p| {
                    Box::new(distill::Distill::new(
                        "distill-zero-shot-tfidf",
                        Box::new(llm::Llm::zero_shot(p)),
                        Box::new(tfidf::TfidfBaseline::default()),
                        DistillConfig::for_profile(p, 2000, CHEAP_STUDENT_SHARES),
                    ))
                },
            ),
            distilled("distill-setfit-tfidf", "TF-IDF taught by SetFit", 9, CurvePlan::Prompted, |p| {
                Box::new(distill::Distill::new(
                    "distill-setfit-tfidf",
                    Box::new(setfit::SetFit::for_profile(p)),
                    Box::new(tfidf::TfidfBaseline::default()),
                    DistillConfig::for_profile(p, 2000, CHEAP_STUDENT_SHARES),
                ))
            }),
            distilled(
                "distill-llm-finetune",
                "fine-tuned SLM taught by the prompted LM + 4 examples",
                10,
                CurvePlan::Prompted,
                |p| {
                    Box::new(distill::Distill::new(
                        "distill-llm-finetune",
                        Box::new(llm::Llm::for_profile(p)),
                        Box::new(finetune::Finetune::for_profile(p)),
                        DistillConfig::for_profile(p, 2000, &[1.0]),
                    ))
                },
            ),
        ])
    }

    /// A table of these methods, in this order.
    pub fn new(kinds: Vec<MethodKind>) -> Self {
        Methods(kinds)
    }

    /// The table with `kind` added at the end (a name already in it is replaced).
    pub fn with(mut self, kind: MethodKind) -> Self {
        match self.0.iter_mut().find(|k| k.name == kind.name) {
            Some(existing) => *existing = kind,
            None => self.0.push(kind),
        }
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = &MethodKind> {
        self.0.iter()
    }

    /// Every name, for the command line's choices.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|k| k.name).collect()
    }

    /// The kind called `name`, or an error listing the names there are.
    pub fn get(&self, name: &str) -> Result<&MethodKind> {
        match self.0.iter().find(|k| k.name == name) {
            Some(kind) => Ok(kind),
            None => bail!("no method called {name:?}; the methods are {}", self.names().join(", ")),
        }
    }

    /// Where `name` stands in the table (unknown names last), for ordering.
    pub fn position(&self, name: &str) -> usize {
        self.0.iter().position(|k| k.name == name).unwrap_or(self.0.len())
    }

    /// `name`'s title, or the name itself when the table has no such method
    /// (a record made by a method since removed).
    pub fn title<'a>(&'a self, name: &'a str) -> &'a str {
        self.0.iter().find(|k| k.name == name).map_or(name, |k| k.title)
    }

    /// `name`'s colour index; methods not in the table get the colours after it.
    pub fn color(&self, name: &str) -> usize {
        self.0.iter().find(|k| k.name == name).map_or(self.0.len() + 1, |k| k.color)
    }

    /// The methods `all` runs, built at the profile's defaults, in order.
    pub fn for_all(&self, profile: Profile) -> Vec<Box<dyn Method>> {
        self.0.iter().filter(|k| k.in_all).map(|k| (k.build)(profile)).collect()
    }
}

/// Shares of a teacher's answers a student that fits in seconds tries (one
/// fit each); a student that trains for minutes takes them all.
const CHEAP_STUDENT_SHARES: &[f64] = &[1.0, 0.75, 0.5];

/// A distillation's line: not in `all` (it needs an unlabelled pool, which
/// the learning curve draws from the training split).
fn distilled(
    name: &'static str,
    title: &'static str,
    color: usize,
    curve: CurvePlan,
    build: fn(Profile) -> Box<dyn Method>,
) -> MethodKind {
    MethodKind { name, title, color, in_all: false, curve, build }
}

impl Default for Methods {
    fn default() -> Self {
        Methods::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_names_itself_as_its_line_in_the_table() {
        let methods = Methods::standard();
        for kind in methods.iter() {
            assert_eq!((kind.build)(Profile::Smoke).name(), kind.name);
        }
        let mut colors: Vec<usize> = methods.iter().map(|k| k.color).collect();
        colors.sort();
        colors.dedup();
        assert_eq!(colors.len(), methods.iter().count(), "one colour each");
        let err = methods.get("bert").unwrap_err().to_string();
        assert!(err.contains("tfidf, knn, finetune, setfit, llm, zero-shot, distill-knn-tfidf"), "{err}");
    }
}
