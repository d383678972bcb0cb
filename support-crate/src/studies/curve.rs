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
//!   as demonstrations at the budgets given, seeded as the trained methods
//!   (which labels the demonstrations are retrieved from varies by seed);
//! - the full-data points of the SLM and the LLM are the committed runs in
//!   `results/` (read, not re-run).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{per_class_subset, stratified_sample, unlabelled_pool, Dataset, Example};
use crate::method::{accuracy, predict_all, Budget, Method, RunContext, TrainingSet};
use crate::methods::distill::FittedDistill;
use crate::methods::{CurvePlan, Methods};
use crate::metrics::{evaluate, Bootstrap};
use crate::paired::PairedDifference;
use crate::paths::Profile;
use crate::plot::thousands;
use crate::results::Hardware;
use crate::studies::scored_items::{Answers, ScoredItems};

/// The grid of a curve. Budgets are labelled examples per class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveConfig {
    /// The methods measured, by their names in the table of methods.
    pub arms: Vec<String>,
    /// Methods that cost seconds a point ([`CurvePlan::EveryBudget`]), plus a point on all of train.
    pub budgets: Vec<usize>,
    /// Methods that train for minutes a point ([`CurvePlan::Trained`]).
    #[serde(alias = "finetune_budgets")]
    pub trained_budgets: Vec<usize>,
    /// Seeds of the trained methods up to 128 per class (one above).
    #[serde(alias = "finetune_max_seeds")]
    pub trained_max_seeds: usize,
    /// Methods prompted with the budget's labels ([`CurvePlan::Prompted`]).
    #[serde(alias = "llm_budgets")]
    pub prompted_budgets: Vec<usize>,
    /// Distillations with a cheap teacher ([`CurvePlan::Distilled`]), gold
    /// labels per class; seeds as the trained methods'.
    #[serde(default = "default_distilled_budgets")]
    pub distilled_budgets: Vec<usize>,
    /// The sampled arms' test sample (seeded, stratified; the same for every point).
    pub sampled_test_items: usize,
    /// Seeds are `seed, seed + 1, ...`; the test sample is drawn with `seed`.
    pub seed: u64,
    /// At most this many seeds a point, whatever the plan says (the cost sheet: 1).
    #[serde(default)]
    pub max_seeds: Option<usize>,
}

impl CurveConfig {
    /// Every method in `methods`. 5 to 6 hours on 2 cores from an empty
    /// cache (SetFit about 2, the prompted LLM and the SLM it teaches at 3
    /// seeds about 2, the fine-tuned SLM about 1; docs/RUNNING.md); smoke: a minute.
    pub fn for_profile(profile: Profile, methods: &Methods) -> Self {
        let arms = methods.iter().map(|k| k.name.to_string()).collect();
        match profile {
            Profile::Full => CurveConfig {
                arms,
                budgets: vec![8, 32, 128, 512, 2048],
                trained_budgets: vec![8, 32, 128, 512],
                trained_max_seeds: 3,
                // One budget by default: the distillations taught by the
                // prompted LLM or SetFit follow this grid, at half an hour a point.
                prompted_budgets: vec![32],
                distilled_budgets: default_distilled_budgets(),
                sampled_test_items: 2000,
                seed: 42,
                max_seeds: None,
            },
            Profile::Smoke => CurveConfig {
                arms,
                budgets: vec![2, 8],
                trained_budgets: vec![4],
                trained_max_seeds: 1,
                prompted_budgets: vec![4],
                distilled_budgets: vec![4],
                sampled_test_items: 40,
                seed: 42,
                max_seeds: None,
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

    /// Seeds at a budget for the trained, distilled and prompted methods: the configured number up to 128, 1 above.
    pub fn trained_seeds_at(&self, budget: usize) -> usize {
        if budget <= 128 {
            self.trained_max_seeds
        } else {
            1
        }
    }

    /// Every point to measure, cheap arms first (in table order within a plan).
    pub fn plan(&self, methods: &Methods) -> Result<Vec<PointSpec>> {
        let mut arms = Vec::new();
        for name in &self.arms {
            arms.push(methods.get(name)?);
        }
        arms.sort_by_key(|k| k.curve);
        let mut plan = Vec::new();
        for kind in arms {
            let mut add = |budget: Option<usize>, seeds: usize| {
                for i in 0..seeds.min(self.max_seeds.unwrap_or(usize::MAX)) as u64 {
                    plan.push(PointSpec { arm: kind.name.to_string(), budget, seed: self.seed + i });
                }
            };
            match kind.curve {
                CurvePlan::EveryBudget => {
                    for &b in &self.budgets {
                        add(Some(b), Self::seeds_at(b));
                    }
                    add(None, 1);
                }
                CurvePlan::Trained => {
                    for &b in &self.trained_budgets {
                        add(Some(b), self.trained_seeds_at(b));
                    }
                }
                CurvePlan::Distilled => {
                    for &b in &self.distilled_budgets {
                        add(Some(b), self.trained_seeds_at(b));
                    }
                }
                CurvePlan::Prompted => {
                    for &b in &self.prompted_budgets {
                        add(Some(b), self.trained_seeds_at(b));
                    }
                }
                CurvePlan::NoLabels => add(Some(0), 1),
            }
        }
        Ok(plan)
    }
}

/// Curves written before distillation had no such arms; this is the grid they would have had.
fn default_distilled_budgets() -> Vec<usize> {
    vec![8, 32, 128]
}

/// How the grid was run, in a sentence (for the README and the notebook).
pub fn schedule_note(curve: &Curve, methods: &Methods) -> String {
    let list = |budgets: &[usize]| budgets.iter().map(|&b| thousands(b as u64)).collect::<Vec<_>>().join(", ");
    let c = &curve.config;
    let titles = |plan: CurvePlan| -> Vec<String> {
        let mut arms: Vec<&String> = c.arms.iter().filter(|a| methods.get(a).is_ok_and(|k| k.curve == plan)).collect();
        arms.sort_by_key(|a| methods.position(a));
        arms.iter()
            .map(|a| {
                let title = methods.title(a);
                match curve.budget_notes.get(*a) {
                    Some(note) => format!("{title}, {note},"),
                    None => title.to_string(),
                }
            })
            .collect()
    };
    let mut parts = Vec::new();
    let cheap = titles(CurvePlan::EveryBudget);
    if !cheap.is_empty() {
        parts.push(format!(
            "{} at {} labels per class and all of train, 5 seeds up to 128, 3 up to 512, 1 above, on all of test",
            cheap.join(" and "),
            list(&c.budgets)
        ));
    }
    let sample = format!("a seeded {}-item test sample", thousands(c.sampled_test_items as u64));
    let trained = titles(CurvePlan::Trained);
    if !trained.is_empty() {
        parts.push(format!(
            "{} at {} with {} seeds up to 128 and 1 above, on {sample}",
            trained.join(" and "),
            list(&c.trained_budgets),
            c.trained_max_seeds
        ));
    }
    let distilled = titles(CurvePlan::Distilled);
    if !distilled.is_empty() {
        parts.push(format!(
            "{} at {} gold labels per class with {} seeds, on the same sample",
            distilled.join(" and "),
            list(&c.distilled_budgets),
            c.trained_max_seeds
        ));
    }
    let prompted = titles(CurvePlan::Prompted);
    if !prompted.is_empty() {
        parts.push(format!(
            "{} at {} with {} seeds up to 128 and 1 above, on the same sample",
            prompted.join(" and "),
            list(&c.prompted_budgets),
            c.trained_max_seeds
        ));
    }
    let no_labels = titles(CurvePlan::NoLabels);
    if !no_labels.is_empty() {
        parts.push(format!("{}, on the same sample", no_labels.join(" and ")));
    }
    parts.push("validation: budget/4 per class (at least 2) from the validation split".into());
    parts.join("; ")
}

/// [`CurvePoint::source`] of a point this curve measured.
pub const MEASURED: &str = "measured";

/// One point to measure: an arm at a budget (`None`: all of train) with a seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointSpec {
    /// The method's name in the table of methods.
    pub arm: String,
    pub budget: Option<usize>,
    pub seed: u64,
}

/// What a point measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The method's name in the table of methods.
    pub arm: String,
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
    /// A distillation's teacher, and how good its labels were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherPoint>,
    /// Its answer to each test item, in row order (see [`ScoredItems`]);
    /// absent for points measured before answers were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
}

/// What a distillation's teacher did at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherPoint {
    /// The teacher's and the student's lines in the table of methods.
    pub arm: String,
    pub student_arm: String,
    pub method: String,
    /// Unlabelled training texts it labelled, and those the student learned from.
    pub pool_items: usize,
    pub kept_items: usize,
    pub validation_accuracy: f64,
    /// Its labels' accuracy on the pool and on the kept items, against the
    /// pool's gold labels, which neither it nor the student saw (reported only).
    pub pool_accuracy: f64,
    pub kept_accuracy: f64,
    /// What labelling the pool cost.
    pub labelling_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelling_api_cost_usd: Option<f64>,
}

impl TeacherPoint {
    fn of(fitted: &FittedDistill, pool: &[Example]) -> Self {
        let kept: Vec<Example> = fitted.kept.iter().map(|&i| pool[i].clone()).collect();
        let kept_answers: Vec<Option<usize>> = fitted.kept.iter().map(|&i| fitted.pool_answers[i]).collect();
        TeacherPoint {
            arm: fitted.teacher.kind.to_string(),
            student_arm: fitted.student.identity().kind.to_string(),
            method: fitted.teacher.method.clone(),
            pool_items: pool.len(),
            kept_items: kept.len(),
            validation_accuracy: fitted.teacher_validation_accuracy,
            pool_accuracy: accuracy(pool, &fitted.pool_answers),
            kept_accuracy: accuracy(&kept, &kept_answers),
            labelling_seconds: fitted.labelling.seconds,
            labelling_api_cost_usd: fitted.labelling_api_cost_usd,
        }
    }
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
    /// How each arm that adapts itself to a budget did ([`Method::budget_note`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub budget_notes: BTreeMap<String, String>,
    pub points: Vec<CurvePoint>,
    /// The test items the points answered, for comparing them item by item.
    #[serde(default, skip_serializing_if = "ScoredItems::is_empty")]
    pub scored_items: ScoredItems,
    /// Later runs of some arms (`curve --arms ...`) whose points replaced
    /// those of the run above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<CurveUpdate>,
}

/// A run of some of a curve's arms only, merged into the curve by [`merge`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveUpdate {
    pub command: String,
    pub arms: Vec<String>,
    pub hardware: Hardware,
    pub compute_seconds: f64,
}

/// `update`, a curve of some arms (or some budgets of them) only, merged into
/// `base`: a cell it measured (an arm at a budget) replaces that cell's points,
/// the others stay, and `updates` records which run measured what. An arm whose
/// configuration changed (another budget note) loses all its old points, which
/// no longer describe it. Fails when the two were made on different data or
/// test items, which one chart could not honestly hold.
pub fn merge(base: Curve, update: Curve, methods: &Methods) -> Result<Curve> {
    let grid = |c: &Curve| -> Result<_> {
        let mut config = serde_json::to_value(&c.config)?;
        for budgets in ["arms", "budgets", "trained_budgets", "prompted_budgets", "distilled_budgets"] {
            config[budgets] = serde_json::Value::Null;
        }
        Ok((config, c.data.clone(), c.num_classes, c.test_items))
    };
    let other_items = !base.scored_items.is_empty() && base.scored_items != update.scored_items;
    if grid(&base)? != grid(&update)? || other_items {
        bail!(
            "the existing curve was made on other data, test items or seeds than this run of {:?}: run every arm, \
             or write this one elsewhere with --out",
            update.config.arms
        );
    }
    let arms = update.config.arms.clone();
    // An arm's full-data points are one cell whatever their size: a new full run replaces the old.
    let cell = |p: &CurvePoint| (p.arm.clone(), if p.all { 0 } else { p.labels_per_class }, p.all);
    let measured: BTreeSet<_> = update.points.iter().map(cell).collect();
    // Taking the committed full-data runs again measures nothing: each point names its record.
    let committed_only = update.points.iter().all(|p| p.all && p.source != MEASURED);
    let reconfigured: Vec<&String> =
        arms.iter().filter(|a| base.budget_notes.get(*a) != update.budget_notes.get(*a)).collect();
    let mut merged = base;
    merged.points.retain(|p| !measured.contains(&cell(p)) && !reconfigured.contains(&&p.arm));
    if merged.points.is_empty() {
        return Ok(update);
    }
    merged.points.extend(update.points);
    if merged.scored_items.is_empty() {
        merged.scored_items = update.scored_items;
    }
    // Stable: within an arm, the order the plan measured the points in.
    merged.points.sort_by_key(|p| (methods.position(&p.arm), p.all, p.labels_per_class));
    let union = |into: &mut Vec<usize>, from: &[usize]| {
        into.extend_from_slice(from);
        into.sort_unstable();
        into.dedup();
    };
    union(&mut merged.config.budgets, &update.config.budgets);
    union(&mut merged.config.trained_budgets, &update.config.trained_budgets);
    union(&mut merged.config.prompted_budgets, &update.config.prompted_budgets);
    union(&mut merged.config.distilled_budgets, &update.config.distilled_budgets);
    merged.config.arms.extend(arms.iter().cloned());
    merged.config.arms.sort_by_key(|a| methods.position(a));
    merged.config.arms.dedup();
    merged.budget_notes.extend(update.budget_notes);
    // An earlier run still describes an arm while some of its points stay.
    let kept_from_earlier: BTreeSet<&str> = merged
        .points
        .iter()
        .filter(|p| arms.contains(&p.arm) && !measured.contains(&cell(p)))
        .map(|p| p.arm.as_str())
        .collect();
    for earlier in &mut merged.updates {
        earlier.arms.retain(|a| !arms.contains(a) || kept_from_earlier.contains(a.as_str()));
    }
    merged.updates.retain(|u| !u.arms.is_empty() && u.command != update.command);
    if !committed_only {
        merged.updates.push(CurveUpdate {
            command: update.command,
            arms,
            hardware: update.hardware,
            compute_seconds: update.compute_seconds,
        });
    }
    Ok(merged)
}

pub const CURVE_SCHEMA_VERSION: u32 = 1;

/// Where finished points are kept.
pub fn cache_dir() -> PathBuf {
    crate::paths::cache_dir().join("curve")
}

/// What identifies a point's result: the data, the grid's settings for its
/// arm, and the point.
fn point_key(spec: &PointSpec, budget_note: Option<&str>, ds: &Dataset, test: &[Example]) -> String {
    let arm_settings = budget_note.unwrap_or_default();
    let data = format!("{}|{}|{}|{}|{}", ds.source, ds.seed, ds.train.len(), ds.validation.len(), test.len());
    let first_test = test.first().map_or(0, |e| e.index);
    let key = crate::cache::text_key(&format!("{spec:?}|{arm_settings}|{data}|{first_test}|v{CURVE_SCHEMA_VERSION}"));
    format!("{}-{}-s{}-{key:032x}", spec.arm, spec.budget.map_or("all".into(), |b| b.to_string()), spec.seed)
}

/// Fits one point's method on its budget and scores it on `test`.
fn measure(
    spec: &PointSpec,
    method: &dyn Method,
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
    if let Some(b) = spec.budget {
        for (class, name) in ds.labels.iter().enumerate() {
            let have = ds.train.iter().filter(|e| e.label == class).count();
            if have < b {
                bail!(
                    "class {name:?} has {have} training examples; the budget asks for {b} per class (lower --budgets, \
                     --trained-budgets or --prompted-budgets, or add examples of {name:?})"
                );
            }
        }
    }
    let started = Instant::now();
    let budget = Budget {
        labels_per_class: spec.budget.unwrap_or(train.len() / classes.max(1)),
        train_items: train.len(),
        work_dir: scratch,
    };
    let method = method.for_budget(&budget);
    let pool = match method.unlabelled_wanted() {
        0 => Vec::new(),
        n => unlabelled_pool(&ds.train, &train, n, spec.seed),
    };
    let pool_texts: Vec<String> = pool.iter().map(|e| e.text.clone()).collect();
    let data = TrainingSet {
        train: &train,
        validation: &validation,
        labels: &ds.labels,
        task: &ds.task,
        unlabelled: &pool_texts,
    };
    let ctx = RunContext { seed: spec.seed, ..ctx.clone() };
    let fitted = method.fit(&data, &ctx)?;
    let (predicted, inference) = predict_all(fitted.as_ref(), test, &ctx)?;
    let answers: Vec<Option<usize>> = predicted.outputs.iter().map(|o| o.label).collect();
    let metrics = evaluate(&crate::data::labels(test), &answers, &ds.labels, Bootstrap::default());
    let identity = fitted.identity();
    Ok(CurvePoint {
        arm: spec.arm.clone(),
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
        source: MEASURED.into(),
        teacher: fitted.as_any().downcast_ref::<FittedDistill>().map(|d| TeacherPoint::of(d, &pool)),
        answers: Some(ScoredItems::answers_of(test, &answers)),
    })
}

/// Where the committed runs of a method with other seeds go: `results/seeds/<seed>/`
/// (`--seed 43 --out results/seeds/43`), beside the first seed's in `results/`.
pub const SEEDS_DIR: &str = "seeds";

/// The committed full-data runs of `method` (its `all` runs: the same kind,
/// answered on this machine or by a server as `method` would be), as points:
/// in `results/` the record with the most test items, and in
/// `results/seeds/*/` each further seed's run on the same test items. None
/// (with a warning) when `results/` has none.
fn committed_points(
    method: &dyn Method,
    title: &str,
    results: &Path,
    classes: usize,
    items: &ScoredItems,
) -> Result<Vec<CurvePoint>> {
    let records = match crate::results::read_all(results) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!("no committed runs ({e:#}): the curve has no full-data point for {title}");
            return Ok(Vec::new());
        }
    };
    let served = method.endpoint().is_some();
    let of_method =
        |(_, r): &(PathBuf, crate::results::RunRecord)| r.kind == method.name() && r.endpoint.is_some() == served;
    let Some(first) = records.into_iter().filter(of_method).max_by_key(|(_, r)| r.metrics.items) else {
        tracing::warn!("no committed run in {}: the curve has no full-data point for {title}", results.display());
        return Ok(Vec::new());
    };
    let test_items = first.1.metrics.items;
    let mut runs = vec![first];
    let seeds_dir = results.join(SEEDS_DIR);
    if seeds_dir.is_dir() {
        for entry in std::fs::read_dir(&seeds_dir).with_context(|| format!("reading {}", seeds_dir.display()))? {
            let dir = entry?.path();
            if !dir.is_dir() {
                continue;
            }
            let found = crate::results::read_all(&dir)
                .with_context(|| format!("reading the seed runs in {}", dir.display()))?;
            runs.extend(found.into_iter().filter(of_method).filter(|(_, r)| r.metrics.items == test_items));
        }
    }
    runs.sort_by_key(|(_, r)| method_seed(r));
    runs.dedup_by_key(|(_, r)| method_seed(r));
    runs.into_iter().map(|(path, r)| committed_point(method, &path, &r, classes, items)).collect()
}

/// The seed of a run's method (its training's randomness).
fn method_seed(r: &crate::results::RunRecord) -> u64 {
    r.seeds.get("method").copied().unwrap_or_default()
}

/// A committed run as a full-data point, with its answers when it answered
/// this curve's test items (to pair it with the others).
fn committed_point(
    method: &dyn Method,
    path: &Path,
    r: &crate::results::RunRecord,
    classes: usize,
    items: &ScoredItems,
) -> Result<CurvePoint> {
    let mut predictions = crate::results::read_run(path)?.1;
    predictions.sort_by_key(|p| p.index);
    let rows: Vec<usize> = predictions.iter().map(|p| p.index).collect();
    let answers = (rows == items.rows || rows == items.sample_rows)
        .then(|| Answers(predictions.iter().map(|p| p.prediction).collect()));
    let m = &r.metrics;
    Ok(CurvePoint {
        arm: method.name().to_string(),
        method: r.method.clone(),
        model: r.model.clone(),
        labels_per_class: r.data.train / classes.max(1),
        all: true,
        seed: method_seed(r),
        train_items: r.data.train,
        validation_items: r.data.validation,
        test_items: m.items,
        accuracy: m.accuracy,
        accuracy_ci95: m.accuracy_ci95,
        macro_f1: m.macro_f1,
        invalid: m.invalid,
        train_seconds: r.train_seconds().unwrap_or(0.0),
        items_per_second: r.items_per_second(),
        chosen: String::new(),
        seconds: 0.0,
        source: crate::paths::relative(path),
        teacher: None,
        answers,
    })
}

/// Measures every point of `config` not yet in the cache (cheap arms first),
/// adds the committed full-data runs from `results` (none: only what this run
/// measures, as the cost sheet wants), and returns the curve.
pub fn run(
    config: &CurveConfig,
    methods: &Methods,
    ds: &Dataset,
    results: Option<&Path>,
    ctx: &RunContext,
    command: &str,
) -> Result<Curve> {
    let classes = ds.num_classes();
    let sample = stratified_sample(ds.test.clone(), classes, config.sampled_test_items, config.seed);
    let plan = config.plan(methods)?;
    let mut built: BTreeMap<&str, Box<dyn Method>> = BTreeMap::new();
    for name in &config.arms {
        let kind = methods.get(name)?;
        built.insert(kind.name, (kind.build)(ctx.profile));
    }
    let budget_notes: BTreeMap<String, String> =
        built.iter().filter_map(|(name, m)| Some((name.to_string(), m.budget_note()?))).collect();
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bar = crate::progress::bar(plan.len() as u64, "curve", ctx.progress);
    let mut points = Vec::new();
    for spec in &plan {
        let kind = methods.get(&spec.arm)?;
        let method = built[kind.name].as_ref();
        let test = if kind.curve.sampled() { &sample } else { &ds.test };
        let key = point_key(spec, budget_notes.get(&spec.arm).map(String::as_str), ds, test);
        let path = dir.join(format!("{key}.json"));
        let point = match read_point(&path) {
            Some(point) => point,
            None => {
                bar.set_message(format!("{} {}", spec.arm, spec.budget.map_or("all".into(), |b| b.to_string())));
                tracing::info!(arm = %spec.arm, budget = ?spec.budget, seed = spec.seed, "measuring");
                let scratch = dir.join(format!("{key}.work"));
                let point = measure(spec, method, ds, test, ctx, &scratch)
                    .with_context(|| format!("{} at {:?} per class, seed {}", kind.title, spec.budget, spec.seed))?;
                write_point(&path, &point)?;
                if scratch.exists() {
                    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
                }
                tracing::info!(arm = %spec.arm, budget = ?spec.budget, accuracy = point.accuracy, seconds = point.seconds, "measured");
                point
            }
        };
        points.push(point);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scored_items = ScoredItems::of(&ds.test, &sample);
    if let (false, Some(results)) = (ctx.profile.is_smoke(), results) {
        for name in &config.arms {
            let kind = methods.get(name)?;
            if kind.full_point_is_committed() {
                points.extend(committed_points(
                    built[kind.name].as_ref(),
                    kind.title,
                    results,
                    classes,
                    &scored_items,
                )?);
            }
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
        budget_notes,
        points,
        scored_items,
        updates: Vec::new(),
    })
}

fn read_point(path: &Path) -> Option<CurvePoint> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str::<CurvePoint>(&text) {
        // Without its answers it cannot be paired with the other arms.
        Ok(point) if point.answers.is_none() => {
            tracing::info!("{}: measured before answers were kept; measuring it again", path.display());
            None
        }
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
    write_as(dir, "curve", curve)
}

/// `<stem>.json` and `<stem>.csv` in `dir` (the cost sheet is a curve too), each written whole.
pub fn write_as(dir: &Path, stem: &str, curve: &Curve) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join(format!("{stem}.json"));
    let csv = dir.join(format!("{stem}.csv"));
    let mut rows = String::from(
        "arm,method,labels_per_class,all,seed,train_items,test_items,accuracy,ci95_low,ci95_high,macro_f1,invalid,train_seconds,items_per_second,source,\
         teacher,pool_items,kept_items,teacher_pool_accuracy,teacher_kept_accuracy,labelling_seconds\n",
    );
    for p in &curve.points {
        let teacher = p.teacher.as_ref().map_or(",,,,,".to_string(), |t| {
            format!(
                "{},{},{},{:.6},{:.6},{:.3}",
                t.arm, t.pool_items, t.kept_items, t.pool_accuracy, t.kept_accuracy, t.labelling_seconds
            )
        });
        rows.push_str(&format!(
            "{},\"{}\",{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{:.3},{:.3},{},{teacher}\n",
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
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    upgrade(&mut value);
    let curve: Curve = serde_json::from_value(value).with_context(|| format!("parsing {}", path.display()))?;
    if curve.schema_version != CURVE_SCHEMA_VERSION {
        bail!("{}: schema version {} (this build reads {CURVE_SCHEMA_VERSION})", path.display(), curve.schema_version);
    }
    Ok(curve)
}

/// A curve written before the methods' table: the SLM's schedule, kept in
/// the grid then, becomes its budget note.
fn upgrade(value: &mut serde_json::Value) {
    let Some(schedule) =
        value.get_mut("config").and_then(|c| c.as_object_mut()).and_then(|c| c.remove("finetune_schedule"))
    else {
        return;
    };
    let Ok(schedule) = serde_json::from_value::<crate::methods::finetune::BudgetSchedule>(schedule) else { return };
    if let Some(curve) = value.as_object_mut() {
        let notes = curve.entry("budget_notes").or_insert_with(|| serde_json::json!({}));
        notes["finetune"] = schedule.note(16).into();
    }
}

/// Two cells of the curve (an arm at a budget each, or two arms' full-data
/// points) compared on the test items both answered, paired by seed: the
/// same seed drew the same labelled examples for both. None when no seed of
/// one has a partner in the other with its answers kept.
pub fn paired(curve: &Curve, first: &[&CurvePoint], second: &[&CurvePoint]) -> Option<PairedDifference> {
    let (mut first_runs, mut second_runs) = (Vec::new(), Vec::new());
    for a in first {
        let Some(b) = second.iter().find(|b| b.seed == a.seed) else { continue };
        let (Some(a), Some(b)) = (&a.answers, &b.answers) else { continue };
        let (a, b) = curve.scored_items.correct_on_common(a, b)?;
        first_runs.push(a);
        second_runs.push(b);
    }
    PairedDifference::of(&first_runs, &second_runs, Bootstrap::default()).ok()
}

/// One cell of a saved curve, as `slm-vs-llm compare` names it:
/// `results/curve.json#finetune@32` (an arm at a budget) or
/// `results/curve.json#knn@all` (its full-data point).
#[derive(Debug, Clone, PartialEq)]
pub struct CurveCell {
    pub path: PathBuf,
    pub arm: String,
    /// Labelled examples per class; None for the full-data point.
    pub labels_per_class: Option<usize>,
}

impl CurveCell {
    /// `PATH#ARM@BUDGET` (BUDGET a number or `all`); None when `text` has no `#`.
    pub fn parse(text: &str) -> Option<Result<Self>> {
        let (path, cell) = text.rsplit_once('#')?;
        let parsed = (|| {
            let (arm, budget) = cell.split_once('@').with_context(|| {
                format!("{text:?}: name the cell as PATH#ARM@BUDGET, e.g. results/curve.json#finetune@32")
            })?;
            let labels_per_class =
                match budget {
                    "all" => None,
                    n => Some(n.parse().with_context(|| {
                        format!("{text:?}: {n:?} is neither a number of labels per class nor `all`")
                    })?),
                };
            Ok(CurveCell { path: path.into(), arm: arm.to_string(), labels_per_class })
        })();
        Some(parsed)
    }

    /// "finetune@32", "knn@all".
    pub fn name(&self) -> String {
        format!("{}@{}", self.arm, self.labels_per_class.map_or("all".to_string(), |b| b.to_string()))
    }

    fn points<'a>(&self, curve: &'a Curve) -> Result<Vec<&'a CurvePoint>> {
        let points: Vec<&CurvePoint> = curve
            .points
            .iter()
            .filter(|p| p.arm == self.arm && self.labels_per_class.map_or(p.all, |b| !p.all && p.labels_per_class == b))
            .collect();
        if points.is_empty() {
            // Budgets ascending, the full-data point last.
            let budgets: BTreeSet<(bool, usize)> =
                curve.points.iter().filter(|p| p.arm == self.arm).map(|p| (p.all, p.labels_per_class)).collect();
            let cells: Vec<String> = budgets
                .into_iter()
                .map(|(all, budget)| if all { "all".to_string() } else { budget.to_string() })
                .collect();
            bail!(
                "{} has no point {}; the budgets of {} there: {}",
                self.path.display(),
                self.name(),
                self.arm,
                if cells.is_empty() { "none".to_string() } else { cells.join(", ") }
            );
        }
        Ok(points)
    }
}

/// Two cells of saved curves (of one curve, or of two runs of it on the
/// same test items, e.g. before and after a change) compared item by item,
/// paired by seed as [`paired`] does.
pub fn compare_cells(first: &CurveCell, second: &CurveCell) -> Result<crate::paired::SavedRunsCompared> {
    let (curve_a, curve_b) = (read(&first.path)?, read(&second.path)?);
    if curve_a.scored_items != curve_b.scored_items {
        bail!(
            "{} and {} were scored on different test items: a paired comparison needs the same ones",
            first.path.display(),
            second.path.display()
        );
    }
    let (a, b) = (first.points(&curve_a)?, second.points(&curve_b)?);
    let mut same_answer = 0;
    for p in &a {
        let Some(q) = b.iter().find(|q| q.seed == p.seed) else { continue };
        if let (Some(x), Some(y)) = (&p.answers, &q.answers) {
            same_answer += curve_a.scored_items.same_answers_on_common(x, y).unwrap_or(0);
        }
    }
    let seeds = |points: &[&CurvePoint]| {
        points
            .iter()
            .map(|p| format!("{}{}", p.seed, if p.answers.is_some() { "" } else { " (no answers kept)" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let difference = paired(&curve_a, &a, &b).with_context(|| {
        format!(
            "no seed of {} has a partner in {} with both points' answers kept (seeds {} against {})",
            first.name(),
            second.name(),
            seeds(&a),
            seeds(&b)
        )
    })?;
    Ok(crate::paired::SavedRunsCompared { difference, same_answer })
}

/// The seeds of one arm at one budget, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub arm: String,
    pub labels_per_class: usize,
    pub all: bool,
    pub seeds: usize,
    pub mean: f64,
    /// The interval around the mean; what it holds is `interval`.
    pub low: f64,
    pub high: f64,
    pub interval: Interval,
    pub test_items: usize,
}

/// What a [`Summary`]'s interval is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// The 95% interval of the mean over seeds and test items (a bootstrap
    /// drawing both; with one seed, the items alone): every seed's answers
    /// are kept.
    SeedsAndItems,
    /// The lowest and highest seed: a seed's answers were not kept (points
    /// measured before the curve kept them), so items cannot be drawn.
    SeedRange,
}

impl Interval {
    /// How a table or a chart names it.
    pub fn name(self) -> &'static str {
        match self {
            Interval::SeedsAndItems => "95% CI",
            Interval::SeedRange => "seed range",
        }
    }
}

/// One [`Summary`] per arm (in table order) and budget (in budget order).
pub fn summarise(curve: &Curve, methods: &Methods) -> Vec<Summary> {
    let points = &curve.points;
    let mut keys: Vec<(usize, &str, usize, bool)> =
        points.iter().map(|p| (methods.position(&p.arm), p.arm.as_str(), p.labels_per_class, p.all)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(_, arm, labels_per_class, all)| {
            let at: Vec<&CurvePoint> = points
                .iter()
                .filter(|p| p.arm == arm && p.labels_per_class == labels_per_class && p.all == all)
                .collect();
            let acc: Vec<f64> = at.iter().map(|p| p.accuracy).collect();
            let mean = acc.iter().sum::<f64>() / acc.len() as f64;
            let correct: Option<Vec<Vec<bool>>> =
                at.iter().map(|p| p.answers.as_ref().and_then(|a| curve.scored_items.correct(a))).collect();
            let over_items = correct.and_then(|runs| interval_over_seeds_and_items(&runs));
            let (low, high, interval) = match (over_items, at.as_slice()) {
                (Some([low, high]), _) => (low, high, Interval::SeedsAndItems),
                // One seed without its answers: its own item bootstrap.
                (None, [one]) => (one.accuracy_ci95[0], one.accuracy_ci95[1], Interval::SeedsAndItems),
                (None, _) => (
                    acc.iter().copied().fold(f64::MAX, f64::min),
                    acc.iter().copied().fold(f64::MIN, f64::max),
                    Interval::SeedRange,
                ),
            };
            Summary {
                arm: arm.to_string(),
                labels_per_class,
                all,
                seeds: at.len(),
                mean,
                low,
                high,
                interval,
                test_items: at[0].test_items,
            }
        })
        .collect()
}

/// [`crate::paired::accuracy_over_seeds_and_items`]'s interval, kept for the
/// process: a report summarises the same curve several times, and a cell
/// of 5 seeds on 7,600 items takes 2,000 × 7,600 draws.
fn interval_over_seeds_and_items(correct: &[Vec<bool>]) -> Option<[f64; 2]> {
    use std::hash::{Hash, Hasher};
    static KNOWN: std::sync::Mutex<BTreeMap<u64, [f64; 2]>> = std::sync::Mutex::new(BTreeMap::new());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    correct.hash(&mut hasher);
    let key = hasher.finish();
    if let Some(&known) = KNOWN.lock().ok()?.get(&key) {
        return Some(known);
    }
    let (_, interval) = crate::paired::accuracy_over_seeds_and_items(correct, Bootstrap::default()).ok()?;
    KNOWN.lock().ok()?.insert(key, interval);
    Some(interval)
}

/// A measured point with round numbers, for tests.
#[cfg(test)]
pub(crate) fn point(arm: &str, labels_per_class: usize, seed: u64, accuracy: f64) -> CurvePoint {
    CurvePoint {
        arm: arm.into(),
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
        source: MEASURED.into(),
        teacher: None,
        answers: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 5] = ["tfidf", "knn", "finetune", "llm", "zero-shot"];

    #[test]
    fn the_plan_follows_the_seed_rule() {
        let methods = Methods::standard();
        let config = CurveConfig::for_profile(Profile::Full, &methods);
        let plan = config.plan(&methods).unwrap();
        let count = |arm: &str, budget| plan.iter().filter(|p| p.arm == arm && p.budget == budget).count();
        assert_eq!(count("tfidf", Some(8)), 5);
        assert_eq!(count("knn", Some(512)), 3);
        assert_eq!(count("knn", Some(2048)), 1);
        assert_eq!(count("tfidf", None), 1);
        assert_eq!(count("finetune", Some(8)), 3);
        assert_eq!(count("finetune", Some(512)), 1);
        assert_eq!(count("finetune", None), 0, "the committed run is the full point");
        assert_eq!(count("zero-shot", Some(0)), 1);
        assert_eq!(count("llm", Some(32)), 3, "the prompted arms are seeded as the trained ones");
        assert_eq!(count("distill-llm-finetune", Some(32)), 3);
        let seeds: Vec<u64> = plan.iter().filter(|p| p.arm == "tfidf" && p.budget == Some(8)).map(|p| p.seed).collect();
        assert_eq!(seeds, vec![42, 43, 44, 45, 46]);
        assert!(plan.iter().position(|p| p.arm == "finetune") > plan.iter().position(|p| p.arm == "knn"));

        // The cost sheet: one seed a point, whatever the rule.
        let sheet = CurveConfig { max_seeds: Some(1), ..config }.plan(&methods).unwrap();
        assert!(sheet.iter().all(|p| p.seed == 42));
        assert_eq!(sheet.iter().filter(|p| p.arm == "tfidf").count(), 6, "5 budgets and all of train");
    }

    #[test]
    fn seeds_without_answers_are_summarised_by_their_range_and_one_seed_by_its_interval() {
        let points = vec![point("knn", 8, 42, 0.5), point("knn", 8, 43, 0.75), point("tfidf", 8, 42, 0.5)];
        let s = summarise(&curve(&ALL, points, "curve"), &Methods::standard());
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].arm.as_str(), s[0].seeds, s[0].low, s[0].high), ("tfidf", 1, 0.25, 0.75));
        assert_eq!(s[0].interval, Interval::SeedsAndItems);
        assert_eq!((s[1].arm.as_str(), s[1].seeds, s[1].low, s[1].high, s[1].mean), ("knn", 2, 0.5, 0.75, 0.625));
        assert_eq!(s[1].interval, Interval::SeedRange);
    }

    #[test]
    fn seeds_with_answers_get_an_interval_over_seeds_and_items() {
        // 400 items, half of class 0; seed 42 right on 70%, seed 43 on 80%, seed 44 on 75%.
        let test = two_class_items(400);
        let answered = |seed: u64, right: usize| right_on_the_first(&test, "knn", seed, right);
        let mut c = curve(&ALL, vec![answered(42, 280), answered(43, 320), answered(44, 300)], "curve");
        c.scored_items = ScoredItems::of(&test, &test);
        let s = &summarise(&c, &Methods::standard())[0];
        assert_eq!((s.seeds, s.interval), (3, Interval::SeedsAndItems));
        assert!((s.mean - 0.75).abs() < 1e-12);
        // Wider than the seeds' range (items add their own noise), about ±2·SE of
        // 1,200 answers plus the seeds' spread.
        assert!(s.low < 0.70 && s.high > 0.80 && s.low > 0.6 && s.high < 0.9, "{s:?}");
        // One seed: the item bootstrap around its accuracy.
        let mut one = curve(&ALL, vec![answered(42, 280)], "curve");
        one.scored_items = ScoredItems::of(&test, &test);
        let one = &summarise(&one, &Methods::standard())[0];
        assert!(one.low < 0.70 && one.high > 0.70 && one.high - one.low < 0.1, "{one:?}");
    }

    /// `n` test items, labelled 0, 1, 0, 1, ...
    fn two_class_items(n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| Example { index: i, label: i % 2, title: String::new(), body: String::new(), text: String::new() })
            .collect()
    }

    /// A point of `arm` at 8 per class that kept its answers: right on the first `right` items, wrong on the rest.
    fn right_on_the_first(test: &[Example], arm: &str, seed: u64, right: usize) -> CurvePoint {
        let answers: Vec<Option<usize>> =
            test.iter().map(|e| Some(if e.index < right { e.label } else { 1 - e.label })).collect();
        let accuracy = right as f64 / test.len() as f64;
        CurvePoint { answers: Some(ScoredItems::answers_of(test, &answers)), ..point(arm, 8, seed, accuracy) }
    }

    fn curve(arms: &[&str], points: Vec<CurvePoint>, command: &str) -> Curve {
        let mut config = CurveConfig::for_profile(Profile::Smoke, &Methods::standard());
        config.arms = arms.iter().map(|a| a.to_string()).collect();
        Curve {
            schema_version: CURVE_SCHEMA_VERSION,
            command: command.into(),
            config,
            data: "synthetic".into(),
            num_classes: 4,
            test_items: 100,
            hardware: Hardware::detect(),
            compute_seconds: points.iter().map(|p| p.seconds).sum(),
            budget_notes: BTreeMap::new(),
            points,
            scored_items: ScoredItems::default(),
            updates: Vec::new(),
        }
    }

    #[test]
    fn cells_of_two_curves_compare_item_by_item_paired_by_seed() {
        // 200 items, half of class 0. Before: right on the first 140 (seed 42)
        // and 150 (seed 43); after: on the first 160 and 170.
        let test = two_class_items(200);
        let answered = |seed: u64, right: usize| right_on_the_first(&test, "finetune", seed, right);
        let dir = tempfile::tempdir().unwrap();
        let scored = |points| Curve { scored_items: ScoredItems::of(&test, &test), ..curve(&ALL, points, "curve") };
        write_as(dir.path(), "before", &scored(vec![answered(42, 140), answered(43, 150), point("knn", 8, 42, 0.5)]))
            .unwrap();
        let unsorted =
            vec![answered(43, 170), point("finetune", 32, 42, 0.9), answered(42, 160), point("finetune", 16, 42, 0.9)];
        write_as(dir.path(), "after", &scored(unsorted)).unwrap();
        let cell = |file: &str, name: &str| {
            CurveCell::parse(&format!("{}#{name}", dir.path().join(file).display())).unwrap().unwrap()
        };

        let compared = compare_cells(&cell("after.json", "finetune@8"), &cell("before.json", "finetune@8")).unwrap();
        let d = &compared.difference;
        assert_eq!((d.items, d.seeds, d.only_first_right, d.only_second_right), (200, 2, 40, 0));
        assert!((d.difference - 0.10).abs() < 1e-12 && d.ci95[0] > 0.0, "{d:?}");
        assert_eq!(compared.same_answer, 2 * 200 - 40);

        let no_answers = compare_cells(&cell("after.json", "finetune@8"), &cell("before.json", "knn@8"));
        assert!(no_answers.unwrap_err().to_string().contains("seeds 43, 42 against 42 (no answers kept)"));
        let missing = compare_cells(&cell("after.json", "finetune@64"), &cell("before.json", "finetune@8"));
        let missing = missing.unwrap_err().to_string();
        assert!(missing.contains("has no point finetune@64; the budgets of finetune there: 8, 16, 32"), "{missing}");
        assert!(CurveCell::parse("curve.json#finetune@eight").unwrap().is_err());
        assert!(CurveCell::parse("results/knn.json").is_none());

        let other_items =
            Curve { scored_items: ScoredItems::of(&test[..100], &test[..100]), ..curve(&ALL, vec![], "curve") };
        write_as(dir.path(), "other", &other_items).unwrap();
        let err = compare_cells(&cell("other.json", "finetune@8"), &cell("before.json", "finetune@8")).unwrap_err();
        assert!(err.to_string().contains("were scored on different test items"), "{err}");
    }

    #[test]
    fn a_run_of_some_arms_replaces_only_their_points() {
        let base = curve(
            &ALL,
            vec![point("tfidf", 8, 42, 0.5), point("knn", 8, 42, 0.6), point("tfidf", 32, 42, 0.7)],
            "curve",
        );
        let update = curve(&["tfidf"], vec![point("tfidf", 8, 42, 0.55)], "curve --arms tfidf");
        let methods = Methods::standard();
        let merged = merge(base.clone(), update.clone(), &methods).unwrap();
        let kept: Vec<(&str, usize, f64)> =
            merged.points.iter().map(|p| (p.arm.as_str(), p.labels_per_class, p.accuracy)).collect();
        assert_eq!(
            kept,
            vec![("tfidf", 8, 0.55), ("tfidf", 32, 0.7), ("knn", 8, 0.6)],
            "the old TF-IDF point it measured again is gone, the other stays"
        );
        assert_eq!(merged.command, "curve", "the base run still describes the other arms");
        assert_eq!(merged.config.arms, ALL.to_vec());
        assert_eq!(merged.updates.len(), 1);
        assert_eq!(
            (merged.updates[0].command.as_str(), &merged.updates[0].arms[..]),
            ("curve --arms tfidf", &["tfidf".to_string()][..])
        );

        let again = merge(merged, update.clone(), &methods).unwrap();
        assert_eq!(again.updates.len(), 1, "a later run of the same command supersedes the earlier one");

        let mut other_seeds = update;
        other_seeds.config.seed = 7;
        let err = merge(base, other_seeds, &methods).unwrap_err().to_string();
        assert!(err.contains("other data, test items or seeds"), "{err}");
    }

    #[test]
    fn a_run_of_some_budgets_replaces_only_their_cells_unless_the_arm_changed() {
        let methods = Methods::standard();
        let mut base = curve(
            &ALL,
            vec![point("setfit", 8, 42, 0.8), point("setfit", 32, 42, 0.85), point("knn", 8, 42, 0.6)],
            "curve",
        );
        base.config.trained_budgets = vec![8, 32];
        base.budget_notes.insert("setfit".into(), "20 rounds".into());
        let mut update =
            curve(&["setfit"], vec![point("setfit", 16, 42, 0.83)], "curve --arms setfit --trained-budgets 16");
        update.config.trained_budgets = vec![16];
        update.budget_notes.insert("setfit".into(), "20 rounds".into());

        let merged = merge(base.clone(), update.clone(), &methods).unwrap();
        let cells: Vec<(&str, usize)> = merged.points.iter().map(|p| (p.arm.as_str(), p.labels_per_class)).collect();
        assert_eq!(cells, vec![("knn", 8), ("setfit", 8), ("setfit", 16), ("setfit", 32)]);
        assert_eq!(merged.config.trained_budgets, vec![8, 16, 32]);

        update.budget_notes.insert("setfit".into(), "8 rounds".into());
        let merged = merge(base, update, &methods).unwrap();
        let cells: Vec<(&str, usize)> = merged.points.iter().map(|p| (p.arm.as_str(), p.labels_per_class)).collect();
        assert_eq!(cells, vec![("knn", 8), ("setfit", 16)], "points made by another configuration go");
    }

    #[test]
    fn new_full_data_runs_replace_the_old_one_whatever_its_size() {
        let methods = Methods::standard();
        let full = |seed: u64, labels_per_class: usize| CurvePoint {
            all: true,
            ..point("finetune", labels_per_class, seed, 0.9)
        };
        let base = curve(&ALL, vec![point("finetune", 8, 42, 0.7), full(42, 3000)], "curve");
        let update =
            curve(&["finetune"], vec![full(42, 4750), full(43, 4750)], "curve --arms finetune --full-data-only");
        let merged = merge(base, update, &methods).unwrap();
        let cells: Vec<(usize, bool, u64)> =
            merged.points.iter().map(|p| (p.labels_per_class, p.all, p.seed)).collect();
        assert_eq!(cells, vec![(8, false, 42), (4750, true, 42), (4750, true, 43)]);
    }
}
