//! Two methods compared on the same test items: the only comparison the
//! study's sentences rest on. Two accuracies with overlapping intervals can
//! still differ reliably when the methods are scored on the same items,
//! since most items are easy or hard for both; and two accuracies measured
//! on different items cannot be compared item by item at all.
//!
//! The difference's interval comes from a paired bootstrap: each replicate
//! draws test items (and, with several seeds, seeds) with replacement and
//! takes the mean difference of the two methods on the draw. Over seeds, the
//! two methods are paired by seed too (the same labelled subset). McNemar's
//! exact test asks whether the items only one method gets right split
//! evenly, per seed. A difference whose interval covers 0 is a tie.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::method::MethodRun;
use crate::metrics::{percentile, Bootstrap};

/// The first method against the second, on the same items (and seeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// Test items both were scored on.
    pub items: usize,
    /// Seeds both were run with (1: a single run).
    pub seeds: usize,
    /// Mean accuracy of each over the seeds, 0..1.
    pub accuracy: [f64; 2],
    /// First minus second, 0..1.
    pub difference: f64,
    /// 95% paired-bootstrap interval of the difference, 0..1.
    pub ci95: [f64; 2],
    /// Items only the first (only the second) got right, summed over seeds.
    pub only_first_right: usize,
    pub only_second_right: usize,
    /// McNemar's exact two-sided p-value, per seed.
    pub mcnemar_p: Vec<f64>,
}

/// What a paired difference says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first is better: the interval lies above 0.
    FirstBetter,
    /// The second is better: the interval lies below 0.
    SecondBetter,
    /// The interval covers 0.
    Tie,
}

impl PairedDifference {
    /// `first[s][i]`, `second[s][i]`: whether each method got item `i` right
    /// in seed `s` (the same items and seeds, in the same order, for both).
    pub fn of(first: &[Vec<bool>], second: &[Vec<bool>], bootstrap: Bootstrap) -> Result<Self> {
        if first.is_empty() || first.len() != second.len() {
            bail!("a paired comparison needs the same seeds for both methods ({} and {})", first.len(), second.len());
        }
        let items = first[0].len();
        if items == 0 || first.iter().chain(second).any(|run| run.len() != items) {
            bail!("a paired comparison needs the same, non-empty test items in every run of both methods");
        }
        let seeds = first.len();
        // Per seed and item: +1 only the first right, -1 only the second, 0 both or neither.
        let diff: Vec<Vec<i8>> = first
            .iter()
            .zip(second)
            .map(|(a, b)| a.iter().zip(b).map(|(&a, &b)| a as i8 - b as i8).collect())
            .collect();
        let mean_of = |run: &[bool]| run.iter().filter(|&&c| c).count() as f64 / items as f64;
        let accuracy = [
            first.iter().map(|r| mean_of(r)).sum::<f64>() / seeds as f64,
            second.iter().map(|r| mean_of(r)).sum::<f64>() / seeds as f64,
        ];
        let discordant: Vec<(usize, usize)> =
            diff.iter().map(|d| (d.iter().filter(|&&x| x > 0).count(), d.iter().filter(|&&x| x < 0).count())).collect();

        let ci95 = seeds_and_items_interval(&diff, bootstrap);
        Ok(PairedDifference {
            items,
            seeds,
            accuracy,
            difference: accuracy[0] - accuracy[1],
            ci95,
            only_first_right: discordant.iter().map(|d| d.0).sum(),
            only_second_right: discordant.iter().map(|d| d.1).sum(),
            mcnemar_p: discordant.iter().map(|&(b, c)| mcnemar_exact(b, c)).collect(),
        })
    }

    /// Two runs (e.g. from [`crate::method::evaluate`]) on the same test items.
    pub fn of_runs(first: &MethodRun, second: &MethodRun) -> Result<Self> {
        let rows = |run: &MethodRun| run.test.iter().map(|e| e.index).collect::<Vec<_>>();
        if rows(first) != rows(second) {
            bail!("the two runs answered different test items: compare runs on the same test split");
        }
        let correct =
            |run: &MethodRun| run.test.iter().zip(&run.outputs).map(|(e, o)| o.label == Some(e.label)).collect();
        Self::of(&[correct(first)], &[correct(second)], Bootstrap::default())
    }

    pub fn verdict(&self) -> Verdict {
        if self.ci95[0] > 0.0 {
            Verdict::FirstBetter
        } else if self.ci95[1] < 0.0 {
            Verdict::SecondBetter
        } else {
            Verdict::Tie
        }
    }

    /// The difference in points with its interval and McNemar's p, e.g.
    /// "+2.3 points [+1.1, +3.5] on 2,000 items; McNemar p = 0.0004".
    pub fn evidence(&self) -> String {
        let p = match self.mcnemar_p.as_slice() {
            [p] => format!("McNemar p = {}", format_p(*p)),
            ps => format!("McNemar p ≤ {} on each seed", format_p(ps.iter().copied().fold(0.0, f64::max))),
        };
        format!(
            "{:+.1} points [{:+.1}, {:+.1}] on {} items{}; {p}",
            100.0 * self.difference,
            100.0 * self.ci95[0],
            100.0 * self.ci95[1],
            crate::plot::thousands(self.items as u64),
            if self.seeds > 1 { format!(" × {} seeds", self.seeds) } else { String::new() }
        )
    }

    /// One sentence: "`first` beats `second`: ...", "... trails ...", or "... ties with ...".
    pub fn sentence(&self, first: &str, second: &str) -> String {
        let relation = match self.verdict() {
            Verdict::FirstBetter => "beats",
            Verdict::SecondBetter => "trails",
            Verdict::Tie => "ties with",
        };
        format!("{first} {relation} {second}: {}", self.evidence())
    }
}

/// Two saved runs compared on the test items both answered (`slm-vs-llm compare`).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRunsCompared {
    pub difference: PairedDifference,
    /// Items where both gave the same answer (the same label, or both none).
    pub same_answer: usize,
}

/// The runs whose records are `first` and `second` (their predictions files
/// beside them), item by item; an error unless both answered the same test
/// items with the same gold labels.
pub fn compare_saved(first: &std::path::Path, second: &std::path::Path) -> Result<SavedRunsCompared> {
    use crate::results::{read_run, Prediction};
    let read = |path: &std::path::Path| -> Result<Vec<Prediction>> {
        let mut predictions = read_run(path)?.1;
        predictions.sort_by_key(|p| p.index);
        Ok(predictions)
    };
    let (a, b) = (read(first)?, read(second)?);
    let rows = |p: &[Prediction]| p.iter().map(|p| (p.index, p.label)).collect::<Vec<_>>();
    if rows(&a) != rows(&b) {
        bail!(
            "{} answered {} test items and {} answered {}, not the same ones with the same labels: a paired \
             comparison needs both runs on the same test items",
            first.display(),
            a.len(),
            second.display(),
            b.len()
        );
    }
    let correct = |p: &[Prediction]| p.iter().map(|p| p.prediction == Some(p.label)).collect();
    Ok(SavedRunsCompared {
        difference: PairedDifference::of(&[correct(&a)], &[correct(&b)], Bootstrap::default())?,
        same_answer: a.iter().zip(&b).filter(|(x, y)| x.prediction == y.prediction).count(),
    })
}

/// The 95% interval of a mean over seeds and test items: `values[s][i]` is
/// seed `s`'s value on item `i` (the same items in every seed). Each of the
/// bootstrap's replicates draws seeds (with several) and items with
/// replacement, the same items for every drawn seed, and takes the mean; the
/// interval is the replicates' 2.5th and 97.5th percentiles. It holds the
/// noise of the test items and, with several seeds, of the training draw.
fn seeds_and_items_interval(values: &[Vec<i8>], bootstrap: Bootstrap) -> [f64; 2] {
    let (seeds, items) = (values.len(), values.first().map_or(0, Vec::len));
    if seeds == 0 || items == 0 || bootstrap.samples == 0 {
        return [f64::NAN; 2];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(bootstrap.seed);
    let mut replicates: Vec<f64> = (0..bootstrap.samples)
        .map(|_| {
            let drawn_seeds: Vec<usize> =
                if seeds == 1 { vec![0] } else { (0..seeds).map(|_| rng.random_range(0..seeds)).collect() };
            let mut total = 0i64;
            for _ in 0..items {
                let i = rng.random_range(0..items);
                total += drawn_seeds.iter().map(|&s| values[s][i] as i64).sum::<i64>();
            }
            total as f64 / (items * drawn_seeds.len()) as f64
        })
        .collect();
    replicates.sort_by(f64::total_cmp);
    [percentile(&replicates, 0.025), percentile(&replicates, 0.975)]
}

/// One method's accuracy over its seeds, `correct[s][i]` whether seed `s`
/// got item `i` right (the same items in every seed): the mean and its 95%
/// interval over seeds and items ([`seeds_and_items_interval`], the same
/// draws as a [`PairedDifference`]'s). With one seed, the item bootstrap.
pub fn accuracy_over_seeds_and_items(correct: &[Vec<bool>], bootstrap: Bootstrap) -> Result<(f64, [f64; 2])> {
    let items = correct.first().map_or(0, Vec::len);
    if items == 0 || correct.iter().any(|run| run.len() != items) {
        bail!("an accuracy over seeds needs the same, non-empty test items in every seed");
    }
    let values: Vec<Vec<i8>> = correct.iter().map(|run| run.iter().map(|&c| c as i8).collect()).collect();
    let right: usize = correct.iter().map(|run| run.iter().filter(|&&c| c).count()).sum();
    Ok((right as f64 / (items * correct.len()) as f64, seeds_and_items_interval(&values, bootstrap)))
}

/// McNemar's exact test: the two-sided binomial p-value of `only_first`
/// against `only_second` discordant items under an even split.
pub fn mcnemar_exact(only_first: usize, only_second: usize) -> f64 {
    let n = only_first + only_second;
    let k = only_first.min(only_second);
    if n == 0 {
        return 1.0;
    }
    // ln C(n, j) - n ln 2 for j = 0..=k, summed in log space (n can be thousands).
    let mut ln_terms = Vec::with_capacity(k + 1);
    let mut ln_choose = 0.0f64;
    for j in 0..=k {
        if j > 0 {
            ln_choose += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        ln_terms.push(ln_choose - n as f64 * std::f64::consts::LN_2);
    }
    let top = ln_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = (top + ln_terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()).exp();
    (2.0 * tail).min(1.0)
}

/// A p-value as a reader takes it in: 0.03, 0.0004, 2e-5.
pub fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{}", (p * 1000.0).round() / 1000.0)
    } else if p >= 0.0001 {
        format!("{:.4}", p)
    } else {
        let exponent = p.log10().floor();
        format!("{:.0}e{}", p / 10f64.powf(exponent), exponent as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial_by_hand() {
        // 1 against 5 discordant: 2 * (C(6,0) + C(6,1)) / 64 = 14/64.
        assert!((mcnemar_exact(1, 5) - 14.0 / 64.0).abs() < 1e-12);
        assert!((mcnemar_exact(5, 1) - 14.0 / 64.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Thousands of discordant items: no overflow, and a lopsided split is decisive.
        let p = mcnemar_exact(1057, 260);
        assert!(p > 0.0 && p < 1e-100, "{p}");
        assert!(mcnemar_exact(2000, 2010) > 0.8);
    }

    fn runs(rights: &[&[u8]]) -> Vec<Vec<bool>> {
        rights.iter().map(|r| r.iter().map(|&c| c == 1).collect()).collect()
    }

    #[test]
    fn a_method_right_on_more_of_the_same_items_beats_and_equal_ones_tie() {
        let n = 400;
        let strong: Vec<bool> = (0..n).map(|i| i % 10 != 0).collect(); // 90%
        let weak: Vec<bool> = (0..n).map(|i| i % 10 > 2).collect(); // 70%, wrong where strong is
        let d = PairedDifference::of(std::slice::from_ref(&strong), std::slice::from_ref(&weak), Bootstrap::default())
            .unwrap();
        assert!((d.difference - 0.2).abs() < 1e-12);
        assert_eq!((d.only_first_right, d.only_second_right), (80, 0));
        assert_eq!(d.verdict(), Verdict::FirstBetter);
        assert!(d.ci95[0] > 0.15 && d.ci95[1] < 0.25, "{:?}", d.ci95);
        assert_eq!(
            PairedDifference::of(std::slice::from_ref(&weak), std::slice::from_ref(&strong), Bootstrap::default())
                .unwrap()
                .verdict(),
            Verdict::SecondBetter
        );
        // Same accuracy, different items: a tie.
        let shifted: Vec<bool> = (0..n).map(|i| i % 10 != 5).collect();
        let tie = PairedDifference::of(&[strong], &[shifted], Bootstrap::default()).unwrap();
        assert_eq!(tie.verdict(), Verdict::Tie);
        assert!(tie.sentence("A", "B").starts_with("A ties with B: +0.0 points"), "{}", tie.sentence("A", "B"));
    }

    #[test]
    fn seeds_that_disagree_widen_the_interval_into_a_tie() {
        // Seed 1: first much better; seed 2: second much better; seed 3: even.
        let a = runs(&[&[1, 1, 1, 1, 1, 0, 1, 1], &[0, 0, 0, 1, 1, 1, 1, 0], &[1, 0, 1, 0, 1, 0, 1, 0]]);
        let b = runs(&[&[0, 0, 0, 1, 1, 0, 1, 0], &[1, 1, 1, 1, 1, 1, 1, 1], &[0, 1, 0, 1, 0, 1, 0, 1]]);
        let d = PairedDifference::of(&a, &b, Bootstrap::default()).unwrap();
        assert_eq!(d.seeds, 3);
        assert_eq!(d.mcnemar_p.len(), 3);
        assert_eq!(d.verdict(), Verdict::Tie);
        assert!(d.evidence().contains("× 3 seeds"), "{}", d.evidence());
    }

    #[test]
    fn unpaired_inputs_are_refused() {
        let a = runs(&[&[1, 0, 1]]);
        assert!(PairedDifference::of(&a, &runs(&[&[1, 0]]), Bootstrap::default()).is_err());
        assert!(PairedDifference::of(&a, &runs(&[&[1, 0, 1], &[1, 1, 1]]), Bootstrap::default()).is_err());
        assert!(PairedDifference::of(&[], &[], Bootstrap::default()).is_err());
    }

    /// Values made once with statsmodels and numpy (`benches/python/paired_reference.py`).
    #[test]
    fn agrees_with_statsmodels_and_a_numpy_bootstrap() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/paired_reference.json")).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let bits = |key: &str| -> Vec<bool> { case[key].as_str().unwrap().chars().map(|c| c == '1').collect() };
            let (first, second) = (bits("first"), bits("second"));
            let d = PairedDifference::of(std::slice::from_ref(&first), &[second], Bootstrap::default()).unwrap();
            let name = case["name"].as_str().unwrap();
            let want = |key: &str| case[key].as_f64().unwrap();
            assert!((d.difference - want("difference")).abs() < 1e-12, "{name}");
            assert_eq!(d.only_first_right as f64, want("only_first_right"), "{name}");
            assert_eq!(d.only_second_right as f64, want("only_second_right"), "{name}");
            let p = want("mcnemar_p");
            assert!(
                (d.mcnemar_p[0] - p).abs() <= 1e-9 * p.max(1e-300) + 1e-15,
                "{name}: {} against {p}",
                d.mcnemar_p[0]
            );
            // Two bootstraps with other random draws: their percentiles agree to
            // Monte Carlo error, which is small only with hundreds of items.
            if first.len() >= 300 {
                for (got, want) in d.ci95.iter().zip(case["ci95"].as_array().unwrap()) {
                    assert!(
                        (got - want.as_f64().unwrap()).abs() < 0.004,
                        "{name}: {:?} against {}",
                        d.ci95,
                        case["ci95"]
                    );
                }
            }
        }
    }

    #[test]
    fn p_values_read_as_people_write_them() {
        assert_eq!(format_p(0.0312), "0.031");
        assert_eq!(format_p(0.00041), "0.0004");
        assert_eq!(format_p(2.1e-5), "2e-5");
        assert_eq!(format_p(1.0), "1");
    }
}
