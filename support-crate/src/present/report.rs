//! The comparison: every run record in `results/` as one table (the README's,
//! between markers, so it cannot drift from the results) and charts in
//! `assets/`. A record that cannot be read — unknown schema version, missing
//! fields — is an error naming the file, never silently left out.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::break_even::{dollars, PriceTable};
use super::compare::{accuracy_chart, accuracy_speed_chart, per_class_f1_chart, reliability_chart};
use super::costs::SheetCosts;
use crate::costs::{per_1000, total_per_1000, MACHINE_USD_PER_HOUR};
use crate::methods::Methods;
use crate::metrics::Bootstrap;
use crate::metrics::{reliability, Reliability, RELIABILITY_BINS};
use crate::paired::{format_p, PairedDifference};
use crate::plot::{duration, rate, save_png, thousands};
use crate::results::{self, Prediction, RunRecord};
use crate::studies::cascade::CascadeRecord;
use crate::studies::curve::Curve;

/// How well a run's confidence (its score for the class it answered) matches
/// its accuracy; `None` when some answer has no scores.
pub fn reliability_of(predictions: &[Prediction]) -> Option<Reliability> {
    let confidence: Option<Vec<f64>> = predictions
        .iter()
        .map(|p| match (p.prediction, &p.scores) {
            (None, _) => Some(0.0),
            (Some(c), Some(s)) => s.get(c).map(|&x| f64::from(x)),
            (Some(_), None) => None,
        })
        .collect();
    let right: Vec<bool> = predictions.iter().map(|p| p.prediction == Some(p.label)).collect();
    Some(reliability(&right, &confidence?, RELIABILITY_BINS))
}

/// Each record's [`reliability_of`] its predictions.
pub fn reliabilities(records: &[(PathBuf, RunRecord)]) -> Result<Vec<Option<Reliability>>> {
    records.iter().map(|(path, _)| Ok(reliability_of(&results::read_run(path)?.1))).collect()
}

/// Each run against the most accurate one (None for that one, and for a run
/// that shares no test item with it), on the test items both answered;
/// `predictions` are the records' own, in their order.
pub fn against_best(
    records: &[(PathBuf, RunRecord)],
    predictions: &[Vec<Prediction>],
) -> Vec<Option<PairedDifference>> {
    let Some(best) =
        (0..records.len()).max_by(|&a, &b| records[a].1.metrics.accuracy.total_cmp(&records[b].1.metrics.accuracy))
    else {
        return Vec::new();
    };
    let best_right: std::collections::BTreeMap<usize, bool> =
        predictions[best].iter().map(|p| (p.index, p.prediction == Some(p.label))).collect();
    predictions
        .iter()
        .enumerate()
        .map(|(i, run)| {
            if i == best {
                return None;
            }
            let (own, theirs): (Vec<bool>, Vec<bool>) =
                run.iter().filter_map(|p| Some((p.prediction == Some(p.label), *best_right.get(&p.index)?))).unzip();
            PairedDifference::of(&[own], &[theirs], Bootstrap::default()).ok()
        })
        .collect()
}

/// [`against_best`] from the records' own predictions files.
pub fn paired_against_best(records: &[(PathBuf, RunRecord)]) -> Result<Vec<Option<PairedDifference>>> {
    let predictions: Vec<Vec<Prediction>> =
        records.iter().map(|(path, _)| Ok(results::read_run(path)?.1)).collect::<Result<_>>()?;
    Ok(against_best(records, &predictions))
}

/// One line per run: its accuracy and macro-F1, and how it compares with the
/// most accurate run on the test items both answered (paired bootstrap
/// interval of the difference, McNemar's exact test).
pub fn against_best_sentences(records: &[(PathBuf, RunRecord)]) -> Result<String> {
    let versus = paired_against_best(records)?;
    let best = records.iter().zip(&versus).find(|(_, v)| v.is_none()).map(|((_, r), _)| r.method.as_str());
    let mut out = String::new();
    for ((_, r), v) in records.iter().zip(&versus) {
        let m = &r.metrics;
        let head = format!("* {} ({}): {:.2}%, macro-F1 {:.4}", r.method, r.model, 100.0 * m.accuracy, m.macro_f1);
        let tail = match (v, best) {
            (Some(d), Some(best)) => format!("; {}", d.sentence("it", best)),
            _ => " — the most accurate".to_string(),
        };
        out.push_str(&format!("{head}{tail}.\n"));
    }
    Ok(out)
}

/// An ECE above this is called out as badly calibrated.
pub const POOR_ECE: f64 = 0.05;

/// One sentence per method on its confidence, from its reliability.
pub fn confidence_sentences(records: &[(PathBuf, RunRecord)], reliabilities: &[Option<Reliability>]) -> String {
    let mut out = String::new();
    for ((_, r), rel) in records.iter().zip(reliabilities) {
        let Some(rel) = rel else { continue };
        let verdict = if rel.ece <= POOR_ECE {
            "well calibrated".to_string()
        } else if rel.mean_confidence > rel.accuracy {
            "overconfident".to_string()
        } else {
            "underconfident".to_string()
        };
        out.push_str(&format!(
            "* {} ({}): {verdict}, expected calibration error {:.3}; mean confidence {:.1}% against {:.1}% accuracy.\n",
            r.method,
            r.model,
            rel.ece,
            100.0 * rel.mean_confidence,
            100.0 * rel.accuracy
        ));
    }
    out
}

/// The README's results table (Markdown), then a line per method on how far
/// its confidence can be trusted (from the predictions files).
///
/// The cost per 1,000 items is machine time at the cost sheet's speed for the
/// method (one machine for every method), or at its own run's speed when the
/// sheet lacks it, plus any API price.
///
/// Where the curve holds further seeds of a full-data run, a sentence in the
/// note under the table gives their mean and interval.
pub fn markdown_table(measured: &Measured, prices: &PriceTable, methods: &Methods) -> String {
    let Measured { records, curve, costs: sheet, .. } = measured;
    let reliabilities = measured.reliabilities();
    let against_best = measured.against_best();
    let mut out = String::from(
        "| method | model | test items | accuracy [95% CI] | against the best, paired | macro-F1 | ECE | train time | inference items/s | cost / 1,000 items | hardware | command |\n\
         | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for (((_, r), rel), versus) in records.iter().zip(&reliabilities).zip(&against_best) {
        let m = &r.metrics;
        let invalid = if m.invalid > 0 { format!(" ({} invalid)", m.invalid) } else { String::new() };
        let versus = match versus {
            None => "the best".to_string(),
            Some(d) => format!(
                "{:+.2} [{:+.2}, {:+.2}]{}, p = {}",
                100.0 * d.difference,
                100.0 * d.ci95[0],
                100.0 * d.ci95[1],
                if d.items == m.items { String::new() } else { format!(" on {} items", thousands(d.items as u64)) },
                format_p(d.mcnemar_p[0])
            ),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.2}% [{:.2}, {:.2}]{} | {versus} | {:.4} | {} | {} | {} | {} | {} | `{}` |\n",
            r.method,
            r.model,
            thousands(m.items as u64),
            100.0 * m.accuracy,
            100.0 * m.accuracy_ci95[0],
            100.0 * m.accuracy_ci95[1],
            invalid,
            m.macro_f1,
            rel.as_ref().map_or("—".into(), |rel| format!("{:.3}", rel.ece)),
            r.train_seconds().map_or("—".into(), duration),
            rate(r.items_per_second()),
            match sheet.get(&r.experiment) {
                Some(e) => format!("{} (sheet)", dollars(per_1000(e.items_per_second, r.api_cost_per_1000()))),
                None => format!("{} (own run)", dollars(total_per_1000(r))),
            },
            r.hardware.summary(),
            r.command.replace('|', "\\|"),
        ));
    }
    // Further seeds of a full-data run close the note's paragraph.
    let seeds = match curve.as_ref().map(|c| super::curve::full_data_seeds_sentences(c, methods)) {
        Some(text) if !text.is_empty() => format!(" {text}"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "\n*Against the best, paired*: each method's accuracy minus the most accurate method's, in points, on the \
         same test items, with its 95% paired-bootstrap interval and McNemar's exact p-value; an interval that \
         covers 0 is a tie. *Cost / 1,000 items*: machine time at ${MACHINE_USD_PER_HOUR:.2}/h plus any API price, \
         at the method's speed on the cost sheet (one machine for every method, below) or, marked \"own run\", at \
         its run's own speed.{seeds}\n",
    ));
    out.push_str(&format!(
        "\nHow far each method's confidence (its score for the class it answers) can be trusted, from its predictions \
         file ({RELIABILITY_BINS} equal-width bins; [`assets/reliability.svg`](assets/reliability.svg)):\n\n"
    ));
    out.push_str(&confidence_sentences(records, &reliabilities));
    let breakeven = super::break_even::sentences(records, prices, sheet);
    if !breakeven.is_empty() {
        out.push('\n');
        out.push_str(&breakeven);
    }
    out
}

pub const TABLE_START: &str = "<!-- results-table:start -->";
pub const TABLE_END: &str = "<!-- results-table:end -->";

pub const CURVE_START: &str = "<!-- learning-curve:start -->";
pub const CURVE_END: &str = "<!-- learning-curve:end -->";
pub const CASCADE_START: &str = "<!-- cascade:start -->";
pub const CASCADE_END: &str = "<!-- cascade:end -->";

/// `readme` with the text between the results-table markers replaced by `table`.
pub fn replace_table(readme: &str, table: &str) -> Result<String> {
    replace_between(readme, TABLE_START, TABLE_END, table)
}

/// `readme` with the text between `start` and `end` replaced by `text`.
pub fn replace_between(readme: &str, start: &str, end: &str, text: &str) -> Result<String> {
    let from = readme.find(start).with_context(|| format!("README has no {start} marker"))?;
    let to = readme.find(end).with_context(|| format!("README has no {end} marker"))?;
    if to < from {
        bail!("README's {start} and {end} markers are out of order");
    }
    Ok(format!("{}{start}\n{text}{}", &readme[..from], &readme[to..]))
}

/// Everything `report` reads from one results directory, each file once: the
/// run records with their predictions, the learning curve, the cost sheet and
/// the cascades.
pub struct Measured {
    pub records: Vec<(PathBuf, RunRecord)>,
    /// Each record's predictions, in the records' order.
    pub predictions: Vec<Vec<Prediction>>,
    /// `results/curve.json`, when there is one.
    pub curve: Option<Curve>,
    /// `results/costs.json`, when there is one.
    pub sheet: Option<Curve>,
    /// What the sheet says each run's method costs (empty without a sheet).
    pub costs: SheetCosts,
    pub cascades: Vec<CascadeRecord>,
}

impl Measured {
    pub fn read(results_dir: &Path) -> Result<Self> {
        let records = results::read_all(results_dir)?;
        let predictions = records.iter().map(|(path, _)| Ok(results::read_run(path)?.1)).collect::<Result<_>>()?;
        let curve_path = results_dir.join("curve.json");
        let curve = if curve_path.is_file() { Some(crate::studies::curve::read(&curve_path)?) } else { None };
        let sheet = super::costs::read(results_dir)?;
        let costs = sheet.as_ref().map(|s| SheetCosts::of(s, &records)).unwrap_or_default();
        let cascades = crate::studies::cascade::read_all(results_dir)?;
        Ok(Self { records, predictions, curve, sheet, costs, cascades })
    }

    /// [`against_best`] on the records' own predictions.
    pub fn against_best(&self) -> Vec<Option<PairedDifference>> {
        against_best(&self.records, &self.predictions)
    }

    /// Each record's [`reliability_of`] its predictions.
    pub fn reliabilities(&self) -> Vec<Option<Reliability>> {
        self.predictions.iter().map(|p| reliability_of(p)).collect()
    }

    /// `readme` with every generated part replaced: the results `table`
    /// ([`markdown_table`] of these results), then the learning curve,
    /// cascade, cost-sheet and decision sections when their results exist.
    pub fn update_readme(&self, readme: &str, table: &str, prices: &PriceTable, methods: &Methods) -> Result<String> {
        let mut updated = replace_table(readme, table)?;
        if let Some(curve) = &self.curve {
            updated = replace_between(&updated, CURVE_START, CURVE_END, &curve_section(curve, methods))?;
        }
        if let Some(section) = cascade_section(&self.cascades, &self.costs) {
            updated = replace_between(&updated, CASCADE_START, CASCADE_END, &section)?;
        }
        if let Some(sheet) = &self.sheet {
            let curve = self.curve.as_ref();
            let section = super::costs::section(sheet, curve, &self.records, prices, methods);
            updated = replace_between(&updated, super::costs::START, super::costs::END, &section)?;
            let decision = super::costs::decision(sheet, curve, &self.records, prices, methods, &self.costs);
            updated = replace_between(&updated, super::costs::DECISION_START, super::costs::DECISION_END, &decision)?;
        }
        Ok(updated)
    }

    /// Writes every chart to `assets_dir`.
    pub fn write_charts(&self, assets_dir: &Path, methods: &Methods, prices: &PriceTable) -> Result<()> {
        let records = &self.records;
        let accuracy = accuracy_chart(records, &self.against_best())?;
        save_png(&accuracy, &assets_dir.join("text_classification_average_accuracy.png"))?;
        accuracy.save(&assets_dir.join("text_classification_average_accuracy.svg"))?;
        per_class_f1_chart(records)?.save(&assets_dir.join("per_class_f1.svg"))?;
        accuracy_speed_chart(records)?.save(&assets_dir.join("accuracy_vs_speed.svg"))?;
        let reliability = reliability_chart(records, &self.reliabilities())?;
        reliability.save(&assets_dir.join("reliability.svg"))?;
        save_png(&reliability, &assets_dir.join("reliability.png"))?;
        let break_even = super::break_even::chart(records, prices, &self.costs)?;
        break_even.save(&assets_dir.join("break_even.svg"))?;
        save_png(&break_even, &assets_dir.join("break_even.png"))?;
        if let Some(curve) = &self.curve {
            let chart = super::curve::chart(curve, methods)?;
            chart.save(&assets_dir.join("learning_curve.svg"))?;
            save_png(&chart, &assets_dir.join("learning_curve.png"))?;
        }
        if !self.cascades.is_empty() {
            let chart = super::cascade::chart(&self.cascades)?;
            chart.save(&assets_dir.join("cascade.svg"))?;
            save_png(&chart, &assets_dir.join("cascade.png"))?;
        }
        Ok(())
    }
}

/// The README's learning-curve section: the sentences and the table.
pub fn curve_section(curve: &Curve, methods: &Methods) -> String {
    let minutes = curve.compute_seconds / 60.0;
    let updates: String = curve
        .updates
        .iter()
        .map(|u| {
            let arms: Vec<&str> = u.arms.iter().map(|a| methods.title(a)).collect();
            format!(
                " `{}` measured the {} points again, in {} on {}.",
                u.command,
                arms.join(" and "),
                duration(u.compute_seconds),
                u.hardware.summary()
            )
        })
        .collect();
    format!(
        "![Test accuracy against labelled examples per class](assets/learning_curve.png)\n\n{}\n{}\n\
         `{}` computed these points in {minutes:.0} minutes on {} ({}; `results/curve.csv` has every seed).{updates}\n\n{}",
        super::curve::decision_sentences(curve, methods),
        super::curve::sentences(curve, methods),
        curve.command,
        curve.hardware.summary(),
        crate::studies::curve::schedule_note(curve, methods),
        super::curve::table(curve, methods),
    ) + &super::curve::distillation_table(curve, methods).map_or(String::new(), |t| {
        format!(
            "\n**Distillation.** A teacher fitted on the gold labels labels unlabelled training texts; the student \
             learns from the gold labels and the teacher's surest answers (the share kept chosen on validation). \
             Means over seeds; each arm on the test items of its curve points above. The teacher's labels are scored \
             against the pool's own labels, which neither model saw. Times are those of each point's own run \
             (its machine in `results/curve.json`). {}\n\n{t}",
            super::curve::distillation_sentences(curve, methods)
        )
    })
}

/// The README's cascade section, priced from the cost sheet where it has
/// both methods; `None` when there are no cascades.
pub fn cascade_section(cascades: &[CascadeRecord], sheet: &SheetCosts) -> Option<String> {
    if cascades.is_empty() {
        return None;
    }
    let commands: Vec<String> = cascades.iter().map(|r| format!("`{}`", r.command)).collect();
    Some(format!(
        "![Cascade accuracy against the share escalated](assets/cascade.png)\n\n{}\nCommands: {}. Costs: machine \
         time at ${MACHINE_USD_PER_HOUR:.2}/h, the first method on every item, the second on the escalated ones.\n",
        super::cascade::sentences(cascades, sheet),
        commands.join(", ")
    ))
}

/// Writes the charts to `assets_dir` and, given a README, its generated
/// parts; returns the results table.
pub fn write(
    results_dir: &Path,
    assets_dir: &Path,
    readme: Option<&Path>,
    methods: &Methods,
    prices: &PriceTable,
) -> Result<String> {
    let measured = Measured::read(results_dir)?;
    measured.write_charts(assets_dir, methods, prices)?;
    let table = markdown_table(&measured, prices, methods);
    let Some(readme) = readme else { return Ok(table) };
    let text = std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let updated = measured.update_readme(&text, &table, prices, methods)?;
    if updated != text {
        std::fs::write(readme, updated).with_context(|| format!("writing {}", readme.display()))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_the_markers() {
        let readme = format!("intro\n{TABLE_START}\nold\n{TABLE_END}\nrest\n");
        let new = replace_table(&readme, "| new |\n").unwrap();
        assert_eq!(new, format!("intro\n{TABLE_START}\n| new |\n{TABLE_END}\nrest\n"));
        assert_eq!(replace_table(&new, "| new |\n").unwrap(), new, "idempotent");
        assert!(replace_table("no markers", "x").is_err());
    }

    #[test]
    fn confidence_is_the_score_of_the_answered_class() {
        let p = |label, prediction, scores: Option<Vec<f32>>| Prediction { index: 0, label, prediction, scores };
        let rel = reliability_of(&[
            p(0, Some(0), Some(vec![0.9, 0.1])),
            p(1, Some(0), Some(vec![0.7, 0.3])),
            p(1, None, None),
        ])
        .unwrap();
        assert!(
            (rel.mean_confidence - (0.9 + 0.7 + 0.0) / 3.0).abs() < 1e-6 && (rel.accuracy - 1.0 / 3.0).abs() < 1e-12
        );
        assert!(reliability_of(&[p(0, Some(0), None)]).is_none(), "an answer without scores has no confidence");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7600), "7,600");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(rate(130_569.6), "130,570");
    }

    #[test]
    fn an_unreadable_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eda.json"), "{}").unwrap();
        std::fs::write(dir.path().join("bench_x.json"), "{}").unwrap();
        std::fs::write(dir.path().join("broken.json"), "{\"schema_version\": 99}").unwrap();
        let err = results::read_all(dir.path()).expect_err("refused");
        assert!(format!("{err:#}").contains("broken.json"), "{err:#}");
    }
}
