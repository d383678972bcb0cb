//! How many labels does each method need? Every method is fitted through the
//! [`Method`] seam on nested, seeded, stratified subsets of the training
//! split — `b` labelled examples per class — with a validation set of
//! `max(2, b/4)` per class from the validation split (what a team with that
//! many labels would hold out), and scored on test. Each point is cached as
//! soon as it is measured, so an interrupted curve resumes and a finished one
//! re-runs in seconds.
//!
//! The arms and why their grids differ:
//! - TF-IDF and K-NN cost seconds a point: every budget, 5 seeds up to 128
//!   per class, 3 at 512, 1 above, all of test;
//! - the fine-tuned SLM costs minutes a point: fewer budgets and seeds, a
//!   fixed seeded stratified test sample, and a schedule of at least
//!   [`FinetuneSchedule::min_examples`] examples seen (more epochs for
//!   small budgets, one epoch from there up, as the full run);
//! - the prompted LLM costs most per test item (a retrieved prompt is
//!   ~500 tokens): zero-shot (no labels, content-free calibration, which
//!   needs none) as a flat line, and the 4 nearest of the budget's labels
//!   as demonstrations at the budgets given;
//! - the full-data points of the SLM and the LLM are the committed runs in
//!   `results/` (read, not re-run).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{per_class_subset, stratified_sample, Dataset, Example};
use crate::method::{predict_all, Method, RunContext, TrainingSet};
use crate::methods::finetune::Finetune;
use crate::methods::knn::{Knn, KnnConfig};
use crate::methods::llm::{Calibration, Demonstrations, Llm};
use crate::methods::tfidf::TfidfBaseline;
use crate::metrics::{evaluate, Bootstrap};
use crate::paths::Profile;
use crate::results::Hardware;

/// A method as the curve runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    Tfidf,
    Knn,
    Finetune,
    /// The LLM with the 4 nearest labelled examples as demonstrations.
    Llm,
    /// The LLM with no labels at all.
    ZeroShot,
}

impl Arm {
    pub const ALL: [Arm; 5] = [Arm::Tfidf, Arm::Knn, Arm::Finetune, Arm::Llm, Arm::ZeroShot];

    /// The name on charts and in sentences.
    pub fn title(self) -> &'static str {
        match self {
            Arm::Tfidf => "TF-IDF + LR",
            Arm::Knn => "embeddings + K-NN",
            Arm::Finetune => "fine-tuned SLM",
            Arm::Llm => "LLM + 4 nearest labelled examples",
            Arm::ZeroShot => "LLM zero-shot (no labels)",
        }
    }

    /// Scored on the fixed test sample rather than all of test.
    pub fn sampled(self) -> bool {
        matches!(self, Arm::Finetune | Arm::Llm | Arm::ZeroShot)
    }
}

/// How long the SLM trains at a budget of `n` examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSchedule {
    /// Examples seen at least (epochs × items), so that small budgets get
    /// enough optimiser steps to move the classification head.
    pub min_examples: usize,
    /// At most this many passes over a tiny budget.
    pub max_epochs: usize,
}

impl Default for FinetuneSchedule {
    fn default() -> Self {
        // 64 steps of 16 (32 epochs of the 32 items at 8 per class); from 1,024
        // items up, one epoch, as the full run. What fits the curve's budget.
        FinetuneSchedule { min_examples: 1024, max_epochs: 64 }
    }
}

impl FinetuneSchedule {
    pub fn epochs(&self, items: usize) -> usize {
        self.min_examples.div_ceil(items.max(1)).clamp(1, self.max_epochs)
    }
}

/// The grid of a curve. Budgets are labelled examples per class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveConfig {
    pub arms: Vec<Arm>,
    /// TF-IDF and K-NN, plus a point on all of train.
    pub budgets: Vec<usize>,
    pub finetune_budgets: Vec<usize>,
    /// Seeds of the SLM up to 128 per class (one above).
    pub finetune_max_seeds: usize,
    pub finetune_schedule: FinetuneSchedule,
    pub llm_budgets: Vec<usize>,
    /// The SLM's and LLM's test sample (seeded, stratified; the same for every point).
    pub sampled_test_items: usize,
    /// Seeds are `seed, seed + 1, ...`; the test sample is drawn with `seed`.
    pub seed: u64,
}

impl CurveConfig {
    /// About an hour on 2 cores (62.5 min on a 2-core Intel Xeon, see the README); smoke: a minute.
    pub fn for_profile(profile: Profile) -> Self {
        match profile {
            Profile::Full => CurveConfig {
                arms: Arm::ALL.to_vec(),
                budgets: vec![8, 32, 128, 512, 2048],
                finetune_budgets: vec![8, 32, 128, 512],
                finetune_max_seeds: 3,
                finetune_schedule: FinetuneSchedule::default(),
                llm_budgets: vec![32],
                sampled_test_items: 2000,
                seed: 42,
            },
            Profile::Smoke => CurveConfig {
                arms: Arm::ALL.to_vec(),
                budgets: vec![2, 8],
                finetune_budgets: vec![4],
                finetune_max_seeds: 1,
                finetune_schedule: FinetuneSchedule { min_examples: 64, max_epochs: 16 },
                llm_budgets: vec![4],
                sampled_test_items: 40,
                seed: 42,
            },
        }
    }

    /// Seeds at a budget for the cheap arms: 5 up to 128 per class, 3 up to 512, 1 above.
    pub fn seeds_at(budget: usize) -> usize {
        match budget {
            0..=128 => 5,
            129..=512 => 3,
            _ => 1,
        }
    }

    /// Every point to measure, cheap arms first.
    pub fn plan(&self) -> Vec<PointSpec> {
        let mut plan = Vec::new();
        let mut add = |arm, budget: Option<usize>, seeds: usize| {
            for i in 0..seeds as u64 {
                plan.push(PointSpec { arm, budget, seed: self.seed + i });
            }
        };
        for arm in Arm::ALL.into_iter().filter(|a| self.arms.contains(a)) {
            match arm {
                Arm::Tfidf | Arm::Knn => {
                    for &b in &self.budgets {
                        add(arm, Some(b), Self::seeds_at(b));
                    }
                    add(arm, None, 1);
                }
                Arm::Finetune => {
                    for &b in &self.finetune_budgets {
                        add(arm, Some(b), if b <= 128 { self.finetune_max_seeds } else { 1 });
                    }
                }
                Arm::Llm => {
                    for &b in &self.llm_budgets {
                        add(arm, Some(b), 1);
                    }
                }
                Arm::ZeroShot => add(arm, Some(0), 1),
            }
        }
        plan
    }
}

/// How the grid was run, in a sentence (for the README and the notebook).
pub fn schedule_note(c: &CurveConfig) -> String {
    let list = |budgets: &[usize]| {
        budgets.iter().map(|&b| crate::present::plot::thousands(b as u64)).collect::<Vec<_>>().join(", ")
    };
    let n = |x: usize| crate::present::plot::thousands(x as u64);
    format!(
        "TF-IDF and K-NN at {} labels per class and all of train, 5 seeds up to 128, 3 up to 512, 1 above, on all of \
         test; the fine-tuned SLM at {} with {} seeds up to 128 and 1 above, trained for at least {} examples ({} steps \
         of 16; at most {} epochs) and scored on a seeded {}-item test sample; the LLM with the 4 nearest of the \
         budget's labels at {} and zero-shot, on the same sample; validation: budget/4 per class (at least 2) from the \
         validation split",
        list(&c.budgets),
        list(&c.finetune_budgets),
        c.finetune_max_seeds,
        n(c.finetune_schedule.min_examples),
        c.finetune_schedule.min_examples / 16,
        c.finetune_schedule.max_epochs,
        n(c.sampled_test_items),
        list(&c.llm_budgets)
    )
}

/// One point to measure: an arm at a budget (`None`: all of train) with a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointSpec {
    pub arm: Arm,
    pub budget: Option<usize>,
    pub seed: u64,
}

/// What a point measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub arm: Arm,
    /// The method's own name in its run record.
    pub method: String,
    pub model: String,
    /// Labelled training examples per class (all of train: the mean per class).
    pub labels_per_class: usize,
    /// Trained on all of the training split it had (not a budget).
    pub all: bool,
    pub seed: u64,
    pub train_items: usize,
    pub validation_items: usize,
    pub test_items: usize,
    pub accuracy: f64,
    pub accuracy_ci95: [f64; 2],
    pub macro_f1: f64,
    /// Test items with no valid answer (scored as wrong).
    pub invalid: usize,
    pub train_seconds: f64,
    pub items_per_second: f64,
    /// What was chosen on validation.
    pub chosen: String,
    /// Wall seconds the point took (fit and test), 0 for a committed run.
    pub seconds: f64,
    /// "measured", or the committed record the point was read from.
    pub source: String,
}

/// A learning curve: every point and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Curve {
    pub schema_version: u32,
    pub command: String,
    pub config: CurveConfig,
    pub data: String,
    pub num_classes: usize,
    pub test_items: usize,
    pub hardware: Hardware,
    /// Wall seconds of every measured point (as if run at once, from no cache).
    pub compute_seconds: f64,
    pub points: Vec<CurvePoint>,
    /// Later runs of some arms (`curve --arms ...`) whose points replaced
    /// those of the run above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<CurveUpdate>,
}

/// A run of some of a curve's arms only, merged into the curve by [`merge`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveUpdate {
    pub command: String,
    pub arms: Vec<Arm>,
    pub hardware: Hardware,
    pub compute_seconds: f64,
}

/// `update`, a curve of some arms only, merged into `base`: its arms' points
/// replace theirs, the other arms' points stay, and `updates` records which
/// run measured what. Fails when the two were made on different data or grids,
/// which one chart could not honestly hold.
pub fn merge(base: Curve, update: Curve) -> Result<Curve> {
    let grid = |c: &Curve| -> Result<_> {
        let mut config = serde_json::to_value(&c.config)?;
        config["arms"] = serde_json::Value::Null;
        Ok((config, c.data.clone(), c.num_classes, c.test_items))
    };
    if grid(&base)? != grid(&update)? {
        bail!(
            "the existing curve was made on other data or another grid than this run of {:?}: run every arm, or \
             write this one elsewhere with --out",
            update.config.arms
        );
    }
    let arms = update.config.arms.clone();
    let mut merged = base;
    merged.points.retain(|p| !arms.contains(&p.arm));
    merged.points.extend(update.points);
    // Stable: within an arm, the order the plan measured the points in.
    merged.points.sort_by_key(|p| p.arm);
    merged.config.arms.extend(arms.iter().copied());
    merged.config.arms.sort();
    merged.config.arms.dedup();
    for earlier in &mut merged.updates {
        earlier.arms.retain(|a| !arms.contains(a));
    }
    merged.updates.retain(|u| !u.arms.is_empty());
    merged.updates.push(CurveUpdate {
        command: update.command,
        arms,
        hardware: update.hardware,
        compute_seconds: update.compute_seconds,
    });
    Ok(merged)
}

pub const CURVE_SCHEMA_VERSION: u32 = 1;

/// Where finished points are kept.
pub fn cache_dir() -> PathBuf {
    crate::paths::cache_dir().join("curve")
}

/// The configured method for an arm at a budget of `train_items`.
fn method(arm: Arm, config: &CurveConfig, profile: Profile, train_items: usize, scratch: &Path) -> Box<dyn Method> {
    match arm {
        Arm::Tfidf => Box::new(TfidfBaseline::default()),
        Arm::Knn => {
            // k cannot exceed the labelled examples there are.
            let mut knn = KnnConfig::default();
            knn.ks.retain(|&k| k <= train_items.max(1));
            Box::new(Knn::new(knn))
        }
        Arm::Finetune => {
            let mut finetune = Finetune::for_profile(profile);
            finetune.config.max_train = None;
            let t = &mut finetune.config.train;
            t.epochs = config.finetune_schedule.epochs(train_items);
            t.eval_every = 0;
            finetune.out_dir = scratch.to_path_buf();
            Box::new(finetune)
        }
        Arm::Llm | Arm::ZeroShot => {
            let mut llm = Llm::for_profile(profile);
            let c = &mut llm.config;
            c.compare_greedy = false;
            c.test_items = None;
            if arm == Arm::ZeroShot {
                c.demonstrations = vec![Demonstrations::None];
                c.calibrations = vec![Calibration::ContentFree];
            } else {
                c.demonstrations = vec![Demonstrations::Retrieved { count: 4, balanced: false, nearest_last: true }];
                c.calibrations = vec![Calibration::None, Calibration::ValidationPrior];
            }
            Box::new(llm)
        }
    }
}

/// What identifies a point's result: the data, the grid's settings for its
/// arm, and the point.
fn point_key(spec: &PointSpec, config: &CurveConfig, ds: &Dataset, test: &[Example]) -> String {
    let arm_settings = match spec.arm {
        Arm::Finetune => serde_json::to_string(&config.finetune_schedule).unwrap_or_default(),
        _ => String::new(),
    };
    let data = format!("{}|{}|{}|{}|{}", ds.source, ds.seed, ds.train.len(), ds.validation.len(), test.len());
    let first_test = test.first().map_or(0, |e| e.index);
    let key = crate::cache::text_key(&format!("{spec:?}|{arm_settings}|{data}|{first_test}|v{CURVE_SCHEMA_VERSION}"));
    format!("{:?}-{}-s{}-{key:032x}", spec.arm, spec.budget.map_or("all".into(), |b| b.to_string()), spec.seed)
        .to_lowercase()
}

/// Fits one point's method on its budget and scores it on `test`.
fn measure(
    spec: &PointSpec,
    config: &CurveConfig,
    ds: &Dataset,
    test: &[Example],
    ctx: &RunContext,
    scratch: &Path,
) -> Result<CurvePoint> {
    let classes = ds.num_classes();
    let (train, validation) = match spec.budget {
        Some(b) => (
            per_class_subset(&ds.train, classes, b, spec.seed),
            per_class_subset(&ds.validation, classes, (b / 4).max(2), spec.seed),
        ),
        None => (ds.train.clone(), ds.validation.clone()),
    };
    let started = Instant::now();
    let method = method(spec.arm, config, ctx.profile, train.len(), scratch);
    let data = TrainingSet { train: &train, validation: &validation, labels: &ds.labels };
    let ctx = RunContext { seed: spec.seed, ..ctx.clone() };
    let fitted = method.fit(&data, &ctx)?;
    let (predicted, inference) = predict_all(fitted.as_ref(), test, &ctx)?;
    let answers: Vec<Option<usize>> = predicted.outputs.iter().map(|o| o.label).collect();
    let metrics = evaluate(&crate::data::labels(test), &answers, &ds.labels, Bootstrap::default());
    let identity = fitted.identity();
    Ok(CurvePoint {
        arm: spec.arm,
        method: identity.method,
        model: identity.model,
        labels_per_class: spec.budget.unwrap_or(train.len() / classes.max(1)),
        all: spec.budget.is_none(),
        seed: spec.seed,
        train_items: train.len(),
        validation_items: validation.len(),
        test_items: test.len(),
        accuracy: metrics.accuracy,
        accuracy_ci95: metrics.accuracy_ci95,
        macro_f1: metrics.macro_f1,
        invalid: metrics.invalid,
        train_seconds: fitted.training().map_or(0.0, |t| t.seconds),
        items_per_second: inference.items_per_second,
        chosen: fitted.summary(),
        seconds: started.elapsed().as_secs_f64(),
        source: "measured".into(),
    })
}

/// The committed full-data run of an expensive arm, as a point: the
/// fine-tuning run, or the LLM run of the same backend (in-process or a
/// server) with the most test items; `None` (with a warning) when
/// `results/` has none.
fn committed_point(arm: Arm, results: &Path, classes: usize) -> Result<Option<CurvePoint>> {
    let server = std::env::var_os("OPENAI_BASE_URL").is_some_and(|u| !u.is_empty());
    let records = match crate::present::report::load_records(results) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!("no committed runs ({e:#}): the curve has no full-data point for {}", arm.title());
            return Ok(None);
        }
    };
    let found = records
        .into_iter()
        .filter(|(_, r)| match arm {
            Arm::Finetune => r.experiment == "finetune_slm",
            Arm::Llm => r.experiment.starts_with("llm_") && r.method.contains("in-process") != server,
            _ => false,
        })
        .max_by_key(|(_, r)| r.metrics.items);
    let Some((path, r)) = found else {
        tracing::warn!(
            "no committed run in {}: the curve has no full-data point for {}",
            results.display(),
            arm.title()
        );
        return Ok(None);
    };
    let m = &r.metrics;
    Ok(Some(CurvePoint {
        arm,
        method: r.method.clone(),
        model: r.model.clone(),
        labels_per_class: r.data.train / classes.max(1),
        all: true,
        seed: r.seeds.get("method").copied().unwrap_or_default(),
        train_items: r.data.train,
        validation_items: r.data.validation,
        test_items: m.items,
        accuracy: m.accuracy,
        accuracy_ci95: m.accuracy_ci95,
        macro_f1: m.macro_f1,
        invalid: m.invalid,
        train_seconds: crate::present::report::train_seconds(&r).unwrap_or(0.0),
        items_per_second: crate::present::report::inference_items_per_second(&r).unwrap_or(0.0),
        chosen: String::new(),
        seconds: 0.0,
        source: crate::paths::relative(&path),
    }))
}

/// Measures every point of `config` not yet in the cache (cheap arms first),
/// adds the committed full-data runs from `results`, and returns the curve.
pub fn run(config: &CurveConfig, ds: &Dataset, results: &Path, ctx: &RunContext, command: &str) -> Result<Curve> {
    let classes = ds.num_classes();
    let sample = stratified_sample(ds.test.clone(), classes, config.sampled_test_items, config.seed);
    let plan = config.plan();
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bar = crate::progress::bar(plan.len() as u64, "curve", ctx.progress);
    let mut points = Vec::new();
    for spec in &plan {
        let test = if spec.arm.sampled() { &sample } else { &ds.test };
        let key = point_key(spec, config, ds, test);
        let path = dir.join(format!("{key}.json"));
        let point = match read_point(&path) {
            Some(point) => point,
            None => {
                bar.set_message(format!("{:?} {}", spec.arm, spec.budget.map_or("all".into(), |b| b.to_string())));
                tracing::info!(arm = ?spec.arm, budget = ?spec.budget, seed = spec.seed, "measuring");
                let scratch = dir.join(format!("{key}.work"));
                let point = measure(spec, config, ds, test, ctx, &scratch).with_context(|| {
                    format!("{} at {:?} per class, seed {}", spec.arm.title(), spec.budget, spec.seed)
                })?;
                write_point(&path, &point)?;
                if scratch.exists() {
                    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
                }
                tracing::info!(arm = ?spec.arm, budget = ?spec.budget, accuracy = point.accuracy, seconds = point.seconds, "measured");
                point
            }
        };
        points.push(point);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for arm in [Arm::Finetune, Arm::Llm] {
        if config.arms.contains(&arm) && !ctx.profile.is_smoke() {
            points.extend(committed_point(arm, results, classes)?);
        }
    }
    Ok(Curve {
        schema_version: CURVE_SCHEMA_VERSION,
        command: command.to_string(),
        config: config.clone(),
        data: ds.source.clone(),
        num_classes: classes,
        test_items: ds.test.len(),
        hardware: Hardware::detect(),
        compute_seconds: points.iter().map(|p| p.seconds).sum(),
        points,
        updates: Vec::new(),
    })
}

fn read_point(path: &Path) -> Option<CurvePoint> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(point) => Some(point),
        Err(e) => {
            tracing::warn!("{}: unreadable cached point ({e}); measuring it again", path.display());
            None
        }
    }
}

/// Written whole or not at all: a point interrupted while being saved is measured again.
fn write_point(path: &Path, point: &CurvePoint) -> Result<()> {
    crate::results::write_whole(path, &serde_json::to_vec_pretty(point)?)
}

/// `curve.json` and `curve.csv` in `dir`, each written whole.
pub fn write(dir: &Path, curve: &Curve) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("curve.json");
    let csv = dir.join("curve.csv");
    let mut rows = String::from(
        "arm,method,labels_per_class,all,seed,train_items,test_items,accuracy,ci95_low,ci95_high,macro_f1,invalid,train_seconds,items_per_second,source\n",
    );
    for p in &curve.points {
        rows.push_str(&format!(
            "{:?},\"{}\",{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{:.3},{:.3},{}\n",
            p.arm,
            p.method.replace('"', "\"\""),
            p.labels_per_class,
            p.all,
            p.seed,
            p.train_items,
            p.test_items,
            p.accuracy,
            p.accuracy_ci95[0],
            p.accuracy_ci95[1],
            p.macro_f1,
            p.invalid,
            p.train_seconds,
            p.items_per_second,
            p.source
        ));
    }
    for (path, bytes) in [(&json, serde_json::to_vec_pretty(curve)?), (&csv, rows.into_bytes())] {
        crate::results::write_whole(path, &bytes)?;
    }
    Ok((json, csv))
}

pub fn read(path: &Path) -> Result<Curve> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let curve: Curve = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if curve.schema_version != CURVE_SCHEMA_VERSION {
        bail!("{}: schema version {} (this build reads {CURVE_SCHEMA_VERSION})", path.display(), curve.schema_version);
    }
    Ok(curve)
}

/// The seeds of one arm at one budget, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub arm: Arm,
    pub labels_per_class: usize,
    pub all: bool,
    pub seeds: usize,
    pub mean: f64,
    /// Lowest and highest seed; with one seed, its 95% interval.
    pub low: f64,
    pub high: f64,
    pub test_items: usize,
}

/// One [`Summary`] per arm and budget, in budget order.
pub fn summarise(points: &[CurvePoint]) -> Vec<Summary> {
    let mut keys: Vec<(Arm, usize, bool)> = points.iter().map(|p| (p.arm, p.labels_per_class, p.all)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(arm, labels_per_class, all)| {
            let at: Vec<&CurvePoint> = points
                .iter()
                .filter(|p| p.arm == arm && p.labels_per_class == labels_per_class && p.all == all)
                .collect();
            let acc: Vec<f64> = at.iter().map(|p| p.accuracy).collect();
            let (low, high) = if at.len() == 1 {
                (at[0].accuracy_ci95[0], at[0].accuracy_ci95[1])
            } else {
                (acc.iter().copied().fold(f64::MAX, f64::min), acc.iter().copied().fold(f64::MIN, f64::max))
            };
            Summary {
                arm,
                labels_per_class,
                all,
                seeds: at.len(),
                mean: acc.iter().sum::<f64>() / acc.len() as f64,
                low,
                high,
                test_items: at[0].test_items,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_train_for_more_epochs() {
        let s = FinetuneSchedule::default();
        assert_eq!(s.epochs(32), 32);
        assert_eq!(s.epochs(128), 8);
        assert_eq!(s.epochs(512), 2);
        assert_eq!(s.epochs(2048), 1);
        assert_eq!(s.epochs(12_000), 1);
        assert_eq!(FinetuneSchedule { min_examples: 2048, max_epochs: 8 }.epochs(32), 8, "capped");
    }

    #[test]
    fn the_plan_follows_the_seed_rule() {
        let config = CurveConfig::for_profile(Profile::Full);
        let plan = config.plan();
        let count = |arm, budget| plan.iter().filter(|p| p.arm == arm && p.budget == budget).count();
        assert_eq!(count(Arm::Tfidf, Some(8)), 5);
        assert_eq!(count(Arm::Knn, Some(512)), 3);
        assert_eq!(count(Arm::Knn, Some(2048)), 1);
        assert_eq!(count(Arm::Tfidf, None), 1);
        assert_eq!(count(Arm::Finetune, Some(8)), 3);
        assert_eq!(count(Arm::Finetune, Some(512)), 1);
        assert_eq!(count(Arm::Finetune, None), 0, "the committed run is the full point");
        assert_eq!(count(Arm::ZeroShot, Some(0)), 1);
        let seeds: Vec<u64> =
            plan.iter().filter(|p| p.arm == Arm::Tfidf && p.budget == Some(8)).map(|p| p.seed).collect();
        assert_eq!(seeds, vec![42, 43, 44, 45, 46]);
        assert!(plan.iter().position(|p| p.arm == Arm::Finetune) > plan.iter().position(|p| p.arm == Arm::Knn));
    }

    fn point(arm: Arm, labels_per_class: usize, seed: u64, accuracy: f64) -> CurvePoint {
        CurvePoint {
            arm,
            method: String::new(),
            model: String::new(),
            labels_per_class,
            all: false,
            seed,
            train_items: 4 * labels_per_class,
            validation_items: 8,
            test_items: 100,
            accuracy,
            accuracy_ci95: [accuracy - 0.25, accuracy + 0.25],
            macro_f1: accuracy,
            invalid: 0,
            train_seconds: 1.0,
            items_per_second: 10.0,
            chosen: String::new(),
            seconds: 1.0,
            source: "measured".into(),
        }
    }

    #[test]
    fn seeds_are_summarised_by_their_spread_and_one_seed_by_its_interval() {
        let s = summarise(&[point(Arm::Knn, 8, 42, 0.5), point(Arm::Knn, 8, 43, 0.75), point(Arm::Tfidf, 8, 42, 0.5)]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].arm, s[0].seeds, s[0].low, s[0].high), (Arm::Tfidf, 1, 0.25, 0.75));
        assert_eq!((s[1].arm, s[1].seeds, s[1].low, s[1].high, s[1].mean), (Arm::Knn, 2, 0.5, 0.75, 0.625));
    }

    fn curve(arms: &[Arm], points: Vec<CurvePoint>, command: &str) -> Curve {
        let mut config = CurveConfig::for_profile(Profile::Smoke);
        config.arms = arms.to_vec();
        Curve {
            schema_version: CURVE_SCHEMA_VERSION,
            command: command.into(),
            config,
            data: "synthetic".into(),
            num_classes: 4,
            test_items: 100,
            hardware: Hardware::detect(),
            compute_seconds: points.iter().map(|p| p.seconds).sum(),
            points,
            updates: Vec::new(),
        }
    }

    #[test]
    fn a_run_of_some_arms_replaces_only_their_points() {
        let base = curve(
            &Arm::ALL,
            vec![point(Arm::Tfidf, 8, 42, 0.5), point(Arm::Knn, 8, 42, 0.6), point(Arm::Tfidf, 32, 42, 0.7)],
            "curve",
        );
        let update = curve(&[Arm::Tfidf], vec![point(Arm::Tfidf, 8, 42, 0.55)], "curve --arms tfidf");
        let merged = merge(base.clone(), update.clone()).unwrap();
        let kept: Vec<(Arm, usize, f64)> =
            merged.points.iter().map(|p| (p.arm, p.labels_per_class, p.accuracy)).collect();
        assert_eq!(kept, vec![(Arm::Tfidf, 8, 0.55), (Arm::Knn, 8, 0.6)], "the old TF-IDF points are gone");
        assert_eq!(merged.command, "curve", "the base run still describes the other arms");
        assert_eq!(merged.config.arms, Arm::ALL.to_vec());
        assert_eq!(merged.updates.len(), 1);
        assert_eq!(
            (merged.updates[0].command.as_str(), &merged.updates[0].arms[..]),
            ("curve --arms tfidf", &[Arm::Tfidf][..])
        );

        let again = merge(merged, update.clone()).unwrap();
        assert_eq!(again.updates.len(), 1, "a later run of the same arms supersedes the earlier one");

        let mut other_grid = update;
        other_grid.config.budgets = vec![16];
        let err = merge(base, other_grid).unwrap_err().to_string();
        assert!(err.contains("another grid"), "{err}");
    }
}
