//! The cost sheet (`slm-vs-llm costs`): every method's training time and
//! answering speed from one run on one machine, priced. Beside the learning
//! curve's accuracy at the same budgets it says what each number of labels
//! buys, what it costs with the labels paid for, and from which volume that
//! is cheaper than the cheapest hosted LLM of the price table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::break_even::{dollars, hosted_lines, round_items, CostLine, PriceTable};
use crate::costs::{machine_usd, MACHINE_USD_PER_HOUR};
use crate::methods::Methods;
use crate::plot::{duration, rate, thousands};
use crate::results::RunRecord;
use crate::studies::curve::{self, summarise, Curve, CurvePoint, Interval};

pub const START: &str = "<!-- cost-sheet:start -->";
pub const END: &str = "<!-- cost-sheet:end -->";
pub const DECISION_START: &str = "<!-- decision:start -->";
pub const DECISION_END: &str = "<!-- decision:end -->";

/// `results/costs.json`, when `costs` has written one.
pub fn read(results_dir: &Path) -> Result<Option<Curve>> {
    let path = results_dir.join("costs.json");
    if !path.is_file() {
        return Ok(None);
    }
    curve::read(&path).map(Some)
}

/// What the cost sheet says one method costs on its machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SheetEntry {
    /// Answers per second, from its point on the most training items (the
    /// closest to a run on all of train: K-NN searches them all).
    pub items_per_second: f64,
    /// Training seconds, when the sheet fitted it on the same training rows as the run.
    pub full_training_seconds: Option<f64>,
}

/// The cost sheet, looked up by the run records' experiment names (an
/// in-process run of a method on the sheet gets the sheet's figures; a run
/// over an endpoint keeps its own). Empty when there is no sheet.
#[derive(Debug, Clone, Default)]
pub struct SheetCosts {
    /// The sheet's machine, for the sentences that quote it.
    pub hardware: String,
    by_experiment: BTreeMap<String, SheetEntry>,
}

impl SheetCosts {
    pub fn of(sheet: &Curve, records: &[(PathBuf, RunRecord)]) -> Self {
        let mut widest: BTreeMap<&str, &CurvePoint> = BTreeMap::new();
        for p in &sheet.points {
            let entry = widest.entry(&p.arm).or_insert(p);
            if p.train_items > entry.train_items {
                *entry = p;
            }
        }
        let by_experiment = records
            .iter()
            .filter(|(_, r)| r.endpoint.is_none())
            .filter_map(|(_, r)| {
                let p = widest.get(r.kind.as_str())?;
                let full = sheet.points.iter().find(|q| q.arm == r.kind && q.all && q.train_items == r.data.train);
                Some((
                    r.experiment.clone(),
                    SheetEntry {
                        items_per_second: p.items_per_second,
                        full_training_seconds: full.map(|q| q.train_seconds),
                    },
                ))
            })
            .collect();
        SheetCosts { hardware: sheet.hardware.summary(), by_experiment }
    }

    /// The sheet in `results_dir` for these records (empty without one).
    pub fn read(results_dir: &Path, records: &[(PathBuf, RunRecord)]) -> Result<Self> {
        Ok(read(results_dir)?.map(|sheet| Self::of(&sheet, records)).unwrap_or_default())
    }

    pub fn get(&self, experiment: &str) -> Option<SheetEntry> {
        self.by_experiment.get(experiment).copied()
    }
}

/// A sheet point's cost line: its training at this machine's price plus its
/// labels (training and validation examples) at `label_usd` each, once; its
/// answering time per item.
pub fn cost_line(p: &CurvePoint, title: &str, label_usd: f64) -> CostLine {
    CostLine {
        name: title.to_string(),
        one_off: machine_usd(p.train_seconds) + labels(p) as f64 * label_usd,
        per_item: machine_usd(1.0 / p.items_per_second),
        hosted: false,
    }
}

/// A method that learns from no example (zero-shot) reads no validation
/// label either: nothing is chosen on it.
fn labels(p: &CurvePoint) -> usize {
    if p.train_items == 0 {
        0
    } else {
        p.train_items + p.validation_items
    }
}

/// The README's cost-sheet section: one row per method and budget of the
/// sheet, with the curve's accuracy there (mean over its seeds) when the
/// curve has that cell, else the sheet's own one-seed score, marked so.
pub fn section(
    sheet: &Curve,
    curve: Option<&Curve>,
    records: &[(PathBuf, RunRecord)],
    prices: &PriceTable,
    methods: &Methods,
) -> String {
    let accuracy = curve.map(|c| summarise(c, methods)).unwrap_or_default();
    let cheapest = hosted_lines(records, prices).into_iter().min_by(|a, b| a.per_item.total_cmp(&b.per_item));
    let hosted_name = cheapest
        .as_ref()
        .map_or("a hosted LLM".to_string(), |h| h.name.split(' ').next().unwrap_or(&h.name).to_string());
    let label = prices.label.usd;
    let budgets: Vec<String> = {
        let mut b: Vec<usize> = sheet.points.iter().filter(|p| !p.all).map(|p| p.labels_per_class).collect();
        b.sort_unstable();
        b.dedup();
        b.iter().filter(|&&b| b > 0).map(|b| b.to_string()).collect()
    };
    let mut out = format!(
        "**One cost sheet, one machine.** `{}` fitted every method at {} labels per class (seed {}; TF-IDF and \
         K-NN also on all of train) and timed it answering test, back to back with empty caches, in {} on {}. \
         These times compare with each other; the records' own times above come from different machines. \
         Training at ${MACHINE_USD_PER_HOUR:.2}/h of machine time, labels (training and validation examples) at \
         {} each; {} per 1,000 items at its list price with the prompt above (its accuracy on this task is not \
         measured here). Accuracy: the learning curve's mean at that budget, over its seeds and test items; where \
         the curve has no such point, the sheet's own score on its test items.\n\n\
         | labels per class | method | accuracy | training | answers/s | per 1,000 items | labels + training | cheaper than {hosted_name} after |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        sheet.command,
        super::join_and(&budgets),
        sheet.config.seed,
        duration(sheet.compute_seconds),
        sheet.hardware.summary(),
        dollars(label),
        cheapest.as_ref().map_or("—".to_string(), |h| format!("{hosted_name} costs {}", dollars(1000.0 * h.per_item))),
    );
    let mut rows: Vec<&CurvePoint> = sheet.points.iter().collect();
    rows.sort_by_key(|p| (p.all, p.labels_per_class, methods.position(&p.arm)));
    for p in rows {
        let title = methods.title(&p.arm);
        let line = cost_line(p, title, label);
        let mean = accuracy
            .iter()
            .find(|s| s.arm == p.arm && s.all == p.all && s.labels_per_class == p.labels_per_class)
            .map_or_else(
                || format!("{:.1}% (this sheet: 1 seed, {} items)", 100.0 * p.accuracy, thousands(p.test_items as u64)),
                |s| format!("{:.1}% ({})", 100.0 * s.mean, super::seeds(s.seeds)),
            );
        let budget =
            if p.all { format!("all ({})", thousands(p.train_items as u64)) } else { p.labels_per_class.to_string() };
        let after = cheapest.as_ref().map_or("—".to_string(), |h| match line.cheaper_than_after(h) {
            Some(n) if n < 1.0 => "the first item".to_string(),
            Some(n) => format!("{} items", round_items(n)),
            None => "never".to_string(),
        });
        out.push_str(&format!(
            "| {budget} | {title} | {mean} | {} | {} | {} | {} | {after} |\n",
            if p.train_seconds > 0.0 { duration(p.train_seconds) } else { "—".into() },
            rate(p.items_per_second),
            dollars(1000.0 * line.per_item),
            dollars(line.one_off),
        ));
    }
    out
}

/// The README's opening table: for the labels a team has, the most accurate
/// method measured at that budget (the curve's mean over seeds where the
/// sheet's method is on the curve, else the sheet's own score), what it costs
/// per 1,000 items on the sheet's machine, what its labels and training cost
/// once, and from which volume that total is below the cheapest hosted LLM's
/// list price. The last row is the most accurate committed full-data run.
pub fn decision(
    sheet: &Curve,
    curve: Option<&Curve>,
    records: &[(PathBuf, RunRecord)],
    prices: &PriceTable,
    methods: &Methods,
    costs: &SheetCosts,
) -> String {
    let accuracy = curve.map(|c| summarise(c, methods)).unwrap_or_default();
    let cheapest = hosted_lines(records, prices).into_iter().min_by(|a, b| a.per_item.total_cmp(&b.per_item));
    let hosted_name = cheapest
        .as_ref()
        .map_or("a hosted LLM".to_string(), |h| h.name.split(' ').next().unwrap_or(&h.name).to_string());
    let label = prices.label.usd;
    let after = |line: &CostLine| {
        cheapest.as_ref().map_or("—".to_string(), |h| match line.cheaper_than_after(h) {
            Some(n) if n < 1.0 => "the first item".to_string(),
            Some(n) => format!("{} items", round_items(n)),
            None => "never".to_string(),
        })
    };
    let mut out = format!(
        "| labels per class you have | most accurate method measured | test accuracy | per 1,000 items | labels + \
         training, once | cheaper than {hosted_name} after |\n| --- | --- | ---: | ---: | ---: | ---: |\n"
    );
    let mut budgets: Vec<usize> = sheet.points.iter().filter(|p| !p.all).map(|p| p.labels_per_class).collect();
    budgets.sort_unstable();
    budgets.dedup();
    for budget in budgets {
        let scored = sheet.points.iter().filter(|p| !p.all && p.labels_per_class == budget).map(|p| {
            let on_curve = accuracy.iter().find(|s| s.arm == p.arm && !s.all && s.labels_per_class == budget);
            let (value, text) = on_curve.map_or_else(
                || {
                    (
                        p.accuracy,
                        format!("{:.1}% (1 seed, {} items)", 100.0 * p.accuracy, thousands(p.test_items as u64)),
                    )
                },
                |s| {
                    let range = if s.interval == Interval::SeedRange { "; seed range" } else { "" };
                    let seeds = super::seeds(s.seeds);
                    (
                        s.mean,
                        format!(
                            "{:.1}% [{:.1}, {:.1}] ({seeds}{range})",
                            100.0 * s.mean,
                            100.0 * s.low,
                            100.0 * s.high
                        ),
                    )
                },
            );
            (p, value, text)
        });
        let Some((p, _, text)) = scored.max_by(|a, b| a.1.total_cmp(&b.1)) else { continue };
        let line = cost_line(p, methods.title(&p.arm), label);
        out.push_str(&format!(
            "| {} | {} | {text} | {} | {} | {} |\n",
            if budget == 0 { "none".to_string() } else { budget.to_string() },
            methods.title(&p.arm),
            dollars(1000.0 * line.per_item),
            dollars(line.one_off),
            after(&line),
        ));
    }
    if let Some((_, r)) = records
        .iter()
        .filter(|(_, r)| r.data.train > 0)
        .max_by(|(_, a), (_, b)| a.metrics.accuracy.total_cmp(&b.metrics.accuracy))
    {
        let machine = super::break_even::cost_line(r, costs);
        let labels = (r.data.train + r.data.validation) as f64;
        let line = CostLine { one_off: machine.one_off + labels * label, ..machine };
        let [low, high] = r.metrics.accuracy_ci95;
        let score = match accuracy.iter().find(|s| s.arm == r.kind && s.all && s.seeds > 1) {
            Some(s) => format!(
                "{:.2}% [{:.2}, {:.2}] ({}{})",
                100.0 * s.mean,
                100.0 * s.low,
                100.0 * s.high,
                super::seeds(s.seeds),
                if s.interval == Interval::SeedRange { "; seed range" } else { "" }
            ),
            None => format!("{:.2}% [{:.2}, {:.2}]", 100.0 * r.metrics.accuracy, 100.0 * low, 100.0 * high),
        };
        out.push_str(&format!(
            "| all ({} labelled rows) | {} | {score} | {} | {} | {} |\n",
            thousands(r.data.train as u64),
            methods.title(&r.kind),
            dollars(1000.0 * line.per_item),
            dollars(line.one_off),
            after(&line),
        ));
    }
    out.push_str(&format!(
        "\nAG News, 4 classes. Methods: those the cost sheet timed; the distillations, which also need a pool of \
         unlabelled texts, are compared in the learning curve's section. Accuracy: the learning curve's mean over \
         its seeds with its 95% interval over seeds and test items, or the seeds' lowest and highest where they \
         kept no answers (\"seed range\"); the row for all labels: the committed runs on all 7,600 test items \
         (the mean over their seeds where there are several). \
         Whether the runner-up at a budget ties: the curve's lines below, paired on the same items where both kept \
         their answers. Costs: machine time on {} at ${MACHINE_USD_PER_HOUR:.2}/h (`{}`), labels at {} each (training and validation examples). No hosted LLM was measured: {hosted_name} \
         appears at its list price only, its accuracy on this task unknown here; the prompted arm is \
         SmolLM2-135M-Instruct, 135 million parameters. `OPENAI_BASE_URL=... OPENAI_API_KEY=... cargo run \
         --release -- llm --price-in <$/M> --price-out <$/M>` measures a hosted model and adds its row.\n",
        sheet.hardware.summary(),
        sheet.command,
        dollars(label),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_pays_for_its_labels_and_training_once_and_its_time_per_item() {
        let p = CurvePoint {
            arm: "tfidf".into(),
            method: "TF-IDF".into(),
            model: String::new(),
            labels_per_class: 8,
            all: false,
            seed: 42,
            train_items: 32,
            validation_items: 8,
            test_items: 100,
            accuracy: 0.5,
            accuracy_ci95: [0.4, 0.6],
            macro_f1: 0.5,
            invalid: 0,
            train_seconds: 36.0,
            items_per_second: 10.0,
            chosen: String::new(),
            seconds: 40.0,
            source: "measured".into(),
            teacher: None,
            answers: None,
        };
        let line = cost_line(&p, "TF-IDF", 0.05);
        assert!((line.one_off - (machine_usd(36.0) + 40.0 * 0.05)).abs() < 1e-12);
        assert!((line.per_item - MACHINE_USD_PER_HOUR / 3600.0 / 10.0).abs() < 1e-15);
        assert_eq!(crate::present::join_and(&["8".into(), "32".into(), "128".into()]), "8, 32 and 128");

        let zero_shot = CurvePoint { arm: "zero-shot".into(), train_items: 0, train_seconds: 0.0, ..p };
        assert_eq!(cost_line(&zero_shot, "zero-shot", 0.05).one_off, 0.0, "no labels read, none paid");
    }

    fn curve_of(points: Vec<CurvePoint>) -> Curve {
        Curve {
            schema_version: curve::CURVE_SCHEMA_VERSION,
            command: "slm-vs-llm costs".into(),
            config: curve::CurveConfig::for_profile(crate::Profile::Smoke, &Methods::standard()),
            data: String::new(),
            num_classes: 4,
            test_items: 100,
            hardware: crate::results::Hardware::detect(),
            compute_seconds: 0.0,
            budget_notes: Default::default(),
            points,
            scored_items: Default::default(),
            updates: vec![],
        }
    }

    #[test]
    fn the_decision_takes_the_curves_mean_where_it_has_one_and_the_sheets_score_elsewhere() {
        let methods = Methods::standard();
        let p = curve::point;
        let sheet = curve_of(vec![p("tfidf", 8, 42, 0.5), p("knn", 8, 42, 0.7), p("finetune", 32, 42, 0.6)]);
        // On the curve TF-IDF at 8 per class averages 90% over two seeds:
        // it, not the sheet's one-seed K-NN, is the most accurate there.
        let curve = curve_of(vec![p("tfidf", 8, 42, 0.9), p("tfidf", 8, 43, 0.9), p("knn", 8, 42, 0.6)]);
        let prices = super::super::break_even::price_table().unwrap();
        let table = decision(&sheet, Some(&curve), &[], &prices, &methods, &SheetCosts::default());
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 8 ") || l.starts_with("| 32 ")).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(
            rows[0].contains(methods.title("tfidf")) && rows[0].contains("90.0% [90.0, 90.0] (2 seeds; seed range)"),
            "{table}"
        );
        assert!(
            rows[1].contains(methods.title("finetune")) && rows[1].contains("60.0% (1 seed, 100 items)"),
            "{table}"
        );
        // Training and validation labels (32 + 8 and 128 + 8) at the table's price, and 1 s of machine time.
        let once = dollars(40.0 * prices.label.usd + machine_usd(1.0));
        assert!(rows[1].contains(&dollars(136.0 * prices.label.usd + machine_usd(1.0))), "{table}");
        assert!(rows[0].contains(&once), "{table}");
    }
}
