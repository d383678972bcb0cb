//! Distillation: a teacher labels a pool of unlabelled texts once, a student
//! learns from its labels. This is how teams often use an LLM in practice:
//! pay for its answers on a few thousand texts, then serve a small model.
//!
//! The teacher is any method, fitted on the budget's gold labels. It labels
//! [`TrainingSet::unlabelled`] (training texts whose labels it never sees)
//! and keeps its confidence: the margin between its two highest scores.
//! The student trains on the gold labels plus the pool items the teacher is
//! most confident about. How many to keep is chosen on validation: the
//! student is fitted once per share in [`DistillConfig::keep_shares`] and the
//! one that scores best on validation wins (ties go to the first listed).

use std::any::Any;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{bail, Result};
use polars::prelude::{Column, DataFrame};
use serde::Serialize;

use crate::data::Example;
use crate::method::{
    accuracy, choose_best, predict_all, Budget, Fitted, Identity, Method, Output, Predicted, RunContext, TrainingSet,
};
use crate::metrics::Throughput;

/// The settings of a distillation.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillConfig {
    /// Unlabelled texts the teacher labels (the curve draws them from train).
    pub pool: usize,
    /// Shares of the teacher's answers kept, most confident first, each tried
    /// on validation; list the one to prefer on a tie first.
    pub keep_shares: Vec<f64>,
}

impl DistillConfig {
    /// `pool` texts in a full run, a few dozen in a smoke run.
    pub fn for_profile(profile: crate::paths::Profile, pool: usize, keep_shares: &[f64]) -> Self {
        let pool = if profile.is_smoke() { pool.min(48) } else { pool };
        DistillConfig { pool, keep_shares: keep_shares.to_vec() }
    }
}

/// A teacher method and a student method, as one [`Method`].
#[derive(Clone)]
pub struct Distill {
    /// Its line in the table of methods, e.g. "distill-knn-tfidf".
    pub name: &'static str,
    pub teacher: Rc<dyn Method>,
    pub student: Rc<dyn Method>,
    pub config: DistillConfig,
    /// Set by [`Method::for_budget`]: the teacher and the student are adapted
    /// to it when fitted (the student to the gold and kept items it gets).
    budget: Option<(usize, PathBuf)>,
}

impl Distill {
    pub fn new(name: &'static str, teacher: Box<dyn Method>, student: Box<dyn Method>, config: DistillConfig) -> Self {
        Distill { name, teacher: teacher.into(), student: student.into(), config, budget: None }
    }

    /// `method` as adapted to this distillation's budget, for `train_items` training examples.
    fn adapted(&self, method: &dyn Method, train_items: usize) -> Option<Box<dyn Method>> {
        let (labels_per_class, work_dir) = self.budget.as_ref()?;
        Some(method.for_budget(&Budget { labels_per_class: *labels_per_class, train_items, work_dir }))
    }

    pub fn fit_distill(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedDistill> {
        if data.unlabelled.is_empty() {
            bail!(
                "{}: distillation needs unlabelled texts for the teacher to label; the learning curve draws them from \
                 the training split outside the budget",
                self.name
            );
        }
        let started = std::time::Instant::now();
        let teacher_method = self.adapted(self.teacher.as_ref(), data.train.len());
        let teacher_method = teacher_method.as_deref().unwrap_or(self.teacher.as_ref());
        tracing::info!(teacher = teacher_method.name(), gold = data.train.len(), "fitting the teacher");
        let teacher = teacher_method.fit(data, ctx)?;
        let teacher_training_seconds = teacher.training().map_or(0.0, |t| t.seconds);

        let pool: Vec<Example> = data.unlabelled.iter().enumerate().map(|(i, text)| pool_example(i, 0, text)).collect();
        tracing::info!(teacher = teacher_method.name(), pool = pool.len(), "the teacher labels the pool");
        let (labelled, labelling) = predict_all(teacher.as_ref(), &pool, ctx)?;
        let (validation_answers, _) = predict_all(teacher.as_ref(), data.validation, ctx)?;
        let teacher_validation_accuracy = accuracy(data.validation, &labels_of(&validation_answers.outputs));
        let ranked = most_confident_first(&labelled.outputs);

        let mut candidates = Vec::new();
        for &share in &self.config.keep_shares {
            let kept = ((share * ranked.len() as f64).round() as usize).min(ranked.len());
            let mut train = data.train.to_vec();
            for &i in &ranked[..kept] {
                let label = labelled.outputs[i].label.expect("ranked answers have a label");
                train.push(pool_example(usize::MAX, label, &data.unlabelled[i]));
            }
            let student_method = self.adapted(self.student.as_ref(), train.len());
            let student_method = student_method.as_deref().unwrap_or(self.student.as_ref());
            tracing::info!(
                student = student_method.name(),
                share,
                kept,
                gold = data.train.len(),
                "fitting the student"
            );
            let taught = TrainingSet { train: &train, unlabelled: &[], ..*data };
            let student = student_method.fit(&taught, ctx)?;
            let (answers, _) = predict_all(student.as_ref(), data.validation, ctx)?;
            let validation_accuracy = accuracy(data.validation, &labels_of(&answers.outputs));
            candidates.push((KeepPoint { share, kept, validation_accuracy }, student));
        }
        let sweep: Vec<KeepPoint> = candidates.iter().map(|(p, _)| *p).collect();
        let chosen = *choose_best(&sweep, |p| p.validation_accuracy).expect("at least one share to keep");
        let (_, student) = candidates.into_iter().find(|(p, _)| *p == chosen).expect("chosen from the sweep");
        let student_training_seconds = student.training().map_or(0.0, |t| t.seconds);
        Ok(FittedDistill {
            name: self.name,
            config: self.config.clone(),
            teacher: teacher.identity(),
            teacher_summary: teacher.summary(),
            teacher_validation_accuracy,
            teacher_training_seconds,
            labelling,
            labelling_api_cost_usd: labelled.api_cost_usd,
            pool_answers: labels_of(&labelled.outputs),
            pool_confidence: labelled.outputs.iter().map(confidence).collect(),
            answered: ranked.len(),
            kept: ranked[..chosen.kept].to_vec(),
            sweep,
            chosen,
            student_training_seconds,
            gold: data.train.len(),
            seconds: started.elapsed().as_secs_f64(),
            student,
        })
    }
}

/// A pool text as an example (already the model input: not normalised again).
fn pool_example(index: usize, label: usize, text: &str) -> Example {
    Example { index, label, title: String::new(), body: text.to_string(), text: text.to_string() }
}

fn labels_of(outputs: &[Output]) -> Vec<Option<usize>> {
    outputs.iter().map(|o| o.label).collect()
}

/// How sure an answer is: the margin between its two highest scores (0 with
/// one class or no scores; `None` without an answer).
fn confidence(output: &Output) -> Option<f32> {
    output.label?;
    let Some(scores) = &output.scores else { return Some(0.0) };
    let mut top = [f32::NEG_INFINITY; 2];
    for &s in scores {
        if s > top[0] {
            top = [s, top[0]];
        } else if s > top[1] {
            top[1] = s;
        }
    }
    Some(if top[1].is_finite() { top[0] - top[1] } else { 0.0 })
}

/// The answered items, most confident first (ties in pool order).
fn most_confident_first(outputs: &[Output]) -> Vec<usize> {
    let mut ranked: Vec<(usize, f32)> =
        outputs.iter().enumerate().filter_map(|(i, o)| Some((i, confidence(o)?))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().map(|(i, _)| i).collect()
}

impl Method for Distill {
    fn name(&self) -> &'static str {
        self.name
    }

    fn fit(&self, data: &TrainingSet, ctx: &RunContext) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(self.fit_distill(data, ctx)?))
    }

    fn for_budget(&self, budget: &Budget) -> Box<dyn Method> {
        Box::new(Distill { budget: Some((budget.labels_per_class, budget.work_dir.to_path_buf())), ..self.clone() })
    }

    fn budget_note(&self) -> Option<String> {
        let shares: Vec<String> = self.config.keep_shares.iter().map(|s| format!("{:.0}%", 100.0 * s)).collect();
        let mut note = format!(
            "{} labels {} unlabelled training texts (one draw per seed, shared by its budgets), {} learns from the \
             gold labels and the {} of them it is most sure of (chosen on validation)",
            self.teacher.name(),
            crate::plot::thousands(self.config.pool as u64),
            self.student.name(),
            shares.join(" or ")
        );
        for (role, method) in [("teacher", &self.teacher), ("student", &self.student)] {
            if let Some(inner) = method.budget_note() {
                note.push_str(&format!("; {role}: {inner}"));
            }
        }
        Some(note)
    }

    fn unlabelled_wanted(&self) -> usize {
        self.config.pool
    }

    fn endpoint(&self) -> Option<String> {
        self.teacher.endpoint()
    }
}

/// The student's validation accuracy with one share of the teacher's answers kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeepPoint {
    pub share: f64,
    pub kept: usize,
    pub validation_accuracy: f64,
}

/// The student, and what teaching it cost.
pub struct FittedDistill {
    pub name: &'static str,
    pub config: DistillConfig,
    pub teacher: Identity,
    pub teacher_summary: String,
    pub teacher_validation_accuracy: f64,
    pub teacher_training_seconds: f64,
    /// What labelling the pool cost (cached answers count what they cost when computed).
    pub labelling: Throughput,
    /// What a paid API charged for labelling the pool.
    pub labelling_api_cost_usd: Option<f64>,
    /// The teacher's label for each pool text, in pool order (`None`: no valid answer).
    pub pool_answers: Vec<Option<usize>>,
    pub pool_confidence: Vec<Option<f32>>,
    /// Pool texts the teacher answered.
    pub answered: usize,
    /// The pool positions the student learned from, most confident first.
    pub kept: Vec<usize>,
    pub sweep: Vec<KeepPoint>,
    pub chosen: KeepPoint,
    pub student_training_seconds: f64,
    /// Gold-labelled training examples.
    pub gold: usize,
    /// Wall seconds of the whole fit (teacher, labelling, every student tried).
    pub seconds: f64,
    pub student: Box<dyn Fitted>,
}

impl FittedDistill {
    /// How right the teacher's pool labels are (against `truth`, the labels it
    /// never saw) in `bands` equal bands of confidence, surest first: what
    /// keeping only the surest share buys.
    pub fn labels_by_confidence(&self, truth: &[usize], bands: usize) -> Result<DataFrame> {
        let bands = confidence_bands(&self.pool_answers, &self.pool_confidence, truth, bands);
        Ok(DataFrame::new_infer_height(vec![
            Column::new(
                "confidence band (surest first)".into(),
                bands.iter().map(|b| format!("items {}-{}", b.first, b.last)).collect::<Vec<_>>(),
            ),
            Column::new("lowest margin in band".into(), bands.iter().map(|b| b.lowest_margin).collect::<Vec<_>>()),
            Column::new("teacher's labels right".into(), bands.iter().map(|b| b.accuracy).collect::<Vec<_>>()),
        ])?)
    }
}

/// One band of a teacher's answers ranked by confidence (1-based ranks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceBand {
    pub first: usize,
    pub last: usize,
    pub lowest_margin: f32,
    pub accuracy: f64,
}

/// The answered items ranked surest first (as the student keeps them), cut
/// into `bands` bands of equal size, each with the share of its answers that
/// match `truth`.
pub fn confidence_bands(
    answers: &[Option<usize>],
    confidence: &[Option<f32>],
    truth: &[usize],
    bands: usize,
) -> Vec<ConfidenceBand> {
    let mut ranked: Vec<(usize, f32)> = confidence.iter().enumerate().filter_map(|(i, c)| Some((i, (*c)?))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let size = ranked.len().div_ceil(bands.max(1)).max(1);
    ranked
        .chunks(size)
        .enumerate()
        .map(|(b, items)| ConfidenceBand {
            first: b * size + 1,
            last: b * size + items.len(),
            lowest_margin: items.iter().map(|&(_, c)| c).fold(f32::INFINITY, f32::min),
            accuracy: items.iter().filter(|&&(i, _)| answers[i] == Some(truth[i])).count() as f64 / items.len() as f64,
        })
        .collect()
}

impl Fitted for FittedDistill {
    fn identity(&self) -> Identity {
        let student = self.student.identity();
        Identity {
            kind: self.name,
            endpoint: self.teacher.endpoint.clone(),
            experiment: self.name.to_string(),
            method: format!("{} taught by {}", student.method, self.teacher.method),
            model: student.model,
        }
    }

    fn config(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({
            "pool": self.config.pool,
            "keep_shares": self.config.keep_shares,
            "chosen_share": self.chosen.share,
            "teacher": self.teacher.experiment,
            "teacher_model": self.teacher.model,
            "student": self.student.config()?,
        }))
    }

    /// Teaching as a whole: the teacher's training, its labelling of the pool
    /// and the chosen student's training, over the gold and pool items.
    fn training(&self) -> Option<Throughput> {
        let seconds = self.teacher_training_seconds + self.labelling.seconds + self.student_training_seconds;
        Some(Throughput::new(seconds, self.gold + self.config.pool))
    }

    fn trained_on(&self) -> usize {
        self.gold + self.chosen.kept
    }

    fn scores(&self) -> &'static str {
        self.student.scores()
    }

    fn summary(&self) -> String {
        format!(
            "teacher {:.2}% on validation labelled {} texts, {} kept ({:.0}%, chosen on validation); student: {}",
            100.0 * self.teacher_validation_accuracy,
            self.answered,
            self.chosen.kept,
            100.0 * self.chosen.share,
            self.student.summary()
        )
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({
            "teacher": {
                "experiment": self.teacher.experiment,
                "method": self.teacher.method,
                "chosen": self.teacher_summary,
                "validation_accuracy": self.teacher_validation_accuracy,
                "training_seconds": self.teacher_training_seconds,
                "labelling_seconds": self.labelling.seconds,
                "labelling_api_cost_usd": self.labelling_api_cost_usd,
                "pool": self.config.pool,
                "answered": self.answered,
            },
            "keep_sweep": self.sweep,
            "student_training_seconds": self.student_training_seconds,
            "student": self.student.extra(),
        })
    }

    fn predict(&self, texts: &[&str], ctx: &RunContext) -> Result<Predicted> {
        self.student.predict(texts, ctx)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(label: Option<usize>, scores: Option<Vec<f32>>) -> Output {
        Output { label, scores, error: None }
    }

    #[test]
    fn confidence_bands_rank_the_answered_items_surest_first() {
        let answers = [Some(0), Some(1), None, Some(1), Some(0)];
        let confidence = [Some(0.9), Some(0.1), None, Some(0.5), Some(0.7)];
        let truth = [0, 0, 1, 1, 1];
        let bands = confidence_bands(&answers, &confidence, &truth, 2);
        let summary: Vec<(usize, usize, f32, f64)> =
            bands.iter().map(|b| (b.first, b.last, b.lowest_margin, b.accuracy)).collect();
        assert_eq!(summary, vec![(1, 2, 0.7, 0.5), (3, 4, 0.1, 0.5)]);
    }

    #[test]
    fn confidence_is_the_margin_of_the_top_two_scores() {
        assert_eq!(confidence(&output(Some(1), Some(vec![0.1, 0.7, 0.2]))), Some(0.5));
        assert_eq!(confidence(&output(Some(0), Some(vec![-1.0, -3.0]))), Some(2.0));
        assert_eq!(confidence(&output(Some(0), None)), Some(0.0));
        assert_eq!(confidence(&output(None, None)), None);
    }

    #[test]
    fn unanswered_items_are_never_kept_and_ties_keep_pool_order() {
        let outputs = vec![
            output(Some(0), Some(vec![0.6, 0.4])),
            output(None, None),
            output(Some(1), Some(vec![0.0, 1.0])),
            output(Some(0), Some(vec![0.6, 0.4])),
        ];
        assert_eq!(most_confident_first(&outputs), vec![2, 0, 3]);
    }
}
