//! The "older algorithm": TF-IDF over word unigrams and bigrams and a
//! multinomial logistic regression with L2 regularisation (L-BFGS), its
//! regularisation strength chosen on validation.

pub mod logistic;
pub mod vectorizer;

use std::any::Any;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub use logistic::{lbfgs, LogisticRegression};
pub use vectorizer::{words, SparseRow, Tfidf};

use crate::data::{labels, texts};
use crate::method::{choose_best, Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet};
use crate::metrics::Throughput;

/// Settings of the vectoriser and the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfidfConfig {
    /// A term must occur in at least this many training texts.
    pub min_df: usize,
    /// Inverse regularisation strengths tried (scikit-learn's `C`), chosen on
    /// validation; on equal accuracy the earlier (stronger regularisation) wins.
    pub cs: Vec<f64>,
    /// L-BFGS iterations at most.
    pub max_iter: usize,
    /// L-BFGS stops when no component of the mean loss's gradient exceeds
    /// this (scikit-learn's `tol`, and its default).
    #[serde(default = "default_tol")]
    pub tol: f64,
}

fn default_tol() -> f64 {
    1e-4
}

impl Default for TfidfConfig {
    fn default() -> Self {
        TfidfConfig { min_df: 2, cs: vec![1.0, 3.0, 10.0, 30.0, 100.0], max_iter: 500, tol: default_tol() }
    }
}

/// TF-IDF + logistic regression, as a [`Method`].
#[derive(Debug, Clone, Default)]
pub struct TfidfBaseline {
    pub config: TfidfConfig,
}

/// Validation accuracy of one regularisation strength.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CPoint {
    pub c: f64,
    pub accuracy: f64,
    pub iterations: usize,
}

/// A fitted vocabulary and classifier.
pub struct FittedTfidf {
    pub config: TfidfConfig,
    pub tfidf: Tfidf,
    pub model: LogisticRegression,
    pub sweep: Vec<CPoint>,
    pub chosen_c: f64,
    /// Vectorising train and fitting at the chosen C (what training costs).
    pub fit: Throughput,
}

impl TfidfBaseline {
    pub fn new(config: TfidfConfig) -> Self {
        TfidfBaseline { config }
    }

    /// Fits on train for every C, keeps the C best on validation, and
    /// refits at it (timed: that is the training cost).
    pub fn fit_tfidf(&self, data: &TrainingSet) -> Result<FittedTfidf> {
        let config = &self.config;
        if config.cs.is_empty() {
            bail!("no regularisation strength to try");
        }
        let (train_texts, val_texts) = (texts(data.train), texts(data.validation));
        let train_y = labels(data.train);
        let val_y = labels(data.validation);
        let classes = data.num_classes();
        let fit_once = |c: f64| -> (Tfidf, LogisticRegression) {
            let (tfidf, x) = Tfidf::fit_transform(&train_texts, config.min_df);
            let lr = LogisticRegression::fit(&x, &train_y, classes, tfidf.len(), c, config.max_iter, config.tol);
            (tfidf, lr)
        };
        let (tfidf, x_train) = Tfidf::fit_transform(&train_texts, config.min_df);
        let x_val = tfidf.transform(&val_texts);
        let sweep: Vec<CPoint> = config
            .cs
            .iter()
            .map(|&c| {
                let lr =
                    LogisticRegression::fit(&x_train, &train_y, classes, tfidf.len(), c, config.max_iter, config.tol);
                let correct = lr.predict(&x_val).iter().zip(&val_y).filter(|(p, y)| p == y).count();
                let accuracy = correct as f64 / val_y.len().max(1) as f64;
                tracing::info!(c, accuracy, iterations = lr.iterations, "validation");
                CPoint { c, accuracy, iterations: lr.iterations }
            })
            .collect();
        let chosen_c = choose_best(&sweep, |p| p.accuracy).expect("cs is not empty").c;
        let ((tfidf, model), fit) = Throughput::measure(data.train.len(), || fit_once(chosen_c));
        Ok(FittedTfidf { config: config.clone(), tfidf, model, sweep, chosen_c, fit })
    }
}

impl Method for TfidfBaseline {
    fn name(&self) -> &'static str {
        "tfidf"
    }

    /// As it is: the regularisation is chosen on the budget's validation.
    fn for_budget(&self, _budget: &Budget) -> Box<dyn Method> {
        Box::new(self.clone())
    }

    fn fit(&self, data: &TrainingSet, _ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_tfidf(data)?))
    }
}

impl Fitted for FittedTfidf {
    fn identity(&self) -> Identity {
        Identity {
            kind: "tfidf",
            endpoint: None,
            experiment: "baseline_tfidf".into(),
            method: "TF-IDF + logistic regression".into(),
            model: "word 1-2-grams".into(),
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.config)?)
    }

    fn training(&self) -> Option<Throughput> {
        Some(self.fit)
    }

    fn trained_on(&self) -> usize {
        self.fit.items
    }

    fn scores(&self) -> &'static str {
        "class probabilities of the logistic regression (softmax)"
    }

    fn summary(&self) -> String {
        format!("{} features; C = {} chosen on validation", self.tfidf.len(), self.chosen_c)
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({ "features": self.tfidf.len(), "chosen_c": self.chosen_c, "sweep": self.sweep })
    }

    fn predict(&self, texts: &[&str], _ctx: &RunContext) -> Result<Predicted> {
        let probabilities = self.model.predict_proba(&self.tfidf.transform(texts));
        let outputs = probabilities
            .iter()
            .map(|p| Output {
                label: Some(logistic::argmax(p)),
                scores: Some(p.iter().map(|&x| x as f32).collect()),
                error: None,
            })
            .collect();
        Ok(Predicted { outputs, ..Default::default() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
