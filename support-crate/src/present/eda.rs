//! Exploratory data analysis: the statistics the EDA notebook and
//! `slm-vs-llm eda` show, as polars DataFrames and plotters charts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use anyhow::Result;
use polars::prelude::{Column, DataFrame};
use serde::Serialize;

use crate::data::{Dataset, Example, Quirks, Split};
use crate::plot::{LineChart, Svg};

fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(columns)?)
}

fn col<T, P>(name: &str, values: T) -> Column
where
    polars::prelude::Series: polars::prelude::NamedFrom<T, P>,
    T: AsRef<P>,
    P: ?Sized,
{
    Column::new(name.into(), values)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Examples per class in each split, with each class's share of the split.
pub fn class_balance(ds: &Dataset) -> Result<DataFrame> {
    let mut columns = vec![col("class", ds.labels.clone())];
    for split in Split::ALL {
        let counts = ds.class_counts(split);
        let total = counts.iter().sum::<usize>().max(1) as f64;
        let share: Vec<f64> = counts.iter().map(|&c| round(100.0 * c as f64 / total, 1)).collect();
        columns.push(col(split.name(), counts.iter().map(|&c| c as u64).collect::<Vec<_>>()));
        columns.push(col(&format!("{split} %"), share));
    }
    frame(columns)
}

/// Length of a text in characters and in whitespace-separated words.
fn lengths(text: &str) -> (usize, usize) {
    (text.chars().count(), text.split_whitespace().count())
}

/// The `p`-th percentile (0 to 100) of sorted counts; 0 for none.
fn percentile(sorted: &[usize], p: f64) -> f64 {
    let values: Vec<f64> = sorted.iter().map(|&x| x as f64).collect();
    if values.is_empty() {
        0.0
    } else {
        crate::metrics::percentile(&values, p / 100.0)
    }
}

/// Length statistics of the model input text (characters and words) per class.
pub fn length_summary(ds: &Dataset, split: Split) -> Result<DataFrame> {
    let mut rows: Vec<[f64; 7]> = Vec::new();
    for class in 0..ds.num_classes() {
        let (mut chars, mut words): (Vec<usize>, Vec<usize>) =
            ds.split(split).iter().filter(|e| e.label == class).map(|e| lengths(&e.text)).unzip();
        chars.sort_unstable();
        words.sort_unstable();
        let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
        rows.push([
            round(mean(&chars), 1),
            percentile(&chars, 50.0),
            percentile(&chars, 95.0),
            round(mean(&words), 1),
            percentile(&words, 50.0),
            percentile(&words, 95.0),
            words.last().copied().unwrap_or(0) as f64,
        ]);
    }
    let names = ["mean chars", "median chars", "p95 chars", "mean words", "median words", "p95 words", "max words"];
    let mut columns = vec![col("class", ds.labels.clone())];
    for (j, name) in names.iter().enumerate() {
        columns.push(col(name, rows.iter().map(|r| r[j]).collect::<Vec<_>>()));
    }
    frame(columns)
}

/// The unit of a length distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    Chars,
    Words,
}

/// The distribution of text lengths per class, as the share of each class's
/// texts in each length bin.
pub fn length_distribution_chart(ds: &Dataset, split: Split, unit: LengthUnit) -> Result<Svg> {
    let (bin, name) = match unit {
        LengthUnit::Chars => (20usize, "characters"),
        LengthUnit::Words => (4usize, "words"),
    };
    let length = |e: &Example| {
        let (c, w) = lengths(&e.text);
        if unit == LengthUnit::Chars {
            c
        } else {
            w
        }
    };
    let mut all: Vec<usize> = ds.split(split).iter().map(length).collect();
    all.sort_unstable();
    let bins = (percentile(&all, 99.5) as usize / bin) + 1;
    let series = (0..ds.num_classes())
        .map(|class| {
            let mut counts = vec![0usize; bins];
            let members: Vec<usize> = ds.split(split).iter().filter(|e| e.label == class).map(length).collect();
            for l in &members {
                counts[(l / bin).min(bins - 1)] += 1;
            }
            let n = members.len().max(1) as f64;
            let points = counts.iter().enumerate().map(|(b, &c)| (((b * bin) + bin / 2) as f64, 100.0 * c as f64 / n));
            (ds.labels[class].clone(), points.collect())
        })
        .collect();
    // The last bin also holds the longest 0.5% of texts, which would
    // otherwise stretch the axis; the marker says so.
    let overflow = (bins - 1) * bin;
    LineChart {
        title: &format!("Text length per class ({split} split, {name})"),
        x_label: &format!("length in {name} (bins of {bin})"),
        y_label: "% of the class's texts",
        series,
        markers: vec![(overflow as f64, format!("last bin: {overflow} {name} and longer"))],
    }
    .render((820, 380))
}

/// Lower-cased alphabetic words (apostrophes split words).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1 && w.chars().any(|c| c.is_alphabetic()))
        .map(str::to_lowercase)
}

/// The words most distinctive of each class against all the others: the
/// log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi &
/// Quinn 2008), as a z-score. One column per class, `top` rows.
pub fn distinctive_words(ds: &Dataset, split: Split, top: usize) -> Result<DataFrame> {
    let k = ds.num_classes();
    let mut counts: HashMap<String, Vec<f64>> = HashMap::new();
    let mut totals = vec![0f64; k];
    for e in ds.split(split) {
        for w in words(&e.text) {
            counts.entry(w).or_insert_with(|| vec![0.0; k])[e.label] += 1.0;
            totals[e.label] += 1.0;
        }
    }
    let grand_total: f64 = totals.iter().sum();
    let mut columns = Vec::new();
    for class in 0..k {
        let mut scored: Vec<(f64, &str)> = counts
            .iter()
            .filter(|(_, c)| c.iter().sum::<f64>() >= 5.0)
            .map(|(w, c)| {
                let prior = c.iter().sum::<f64>();
                let (yi, ni) = (c[class], totals[class]);
                let (yj, nj) = (prior - yi, grand_total - ni);
                let delta = ((yi + prior) / (ni + grand_total - yi - prior)).ln()
                    - ((yj + prior) / (nj + grand_total - yj - prior)).ln();
                let z = delta / (1.0 / (yi + prior) + 1.0 / (yj + prior)).sqrt();
                (z, w.as_str())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let cells: Vec<String> = scored.iter().take(top).map(|(z, w)| format!("{w} ({z:.1})")).collect();
        columns.push(col(&ds.labels[class], cells));
    }
    frame(columns)
}

/// `n` seeded random examples per class, raw and as the models see them.
pub fn examples_per_class(ds: &Dataset, split: Split, n: usize, seed: u64) -> Result<DataFrame> {
    let sample = crate::data::stratified_sample(ds.split(split).to_vec(), ds.num_classes(), n * ds.num_classes(), seed);
    let mut rows: Vec<&Example> = sample.iter().collect();
    rows.sort_by_key(|e| (e.label, e.index));
    frame(vec![
        col("class", rows.iter().map(|e| ds.labels[e.label].clone()).collect::<Vec<_>>()),
        col("row", rows.iter().map(|e| e.index as u64).collect::<Vec<_>>()),
        col("raw text", rows.iter().map(|e| e.raw_text()).collect::<Vec<_>>()),
        col("model input", rows.iter().map(|e| e.text.clone()).collect::<Vec<_>>()),
    ])
}

/// Rows with each text quirk per split, raw and after [`crate::data::normalize`].
pub fn quirk_counts(ds: &Dataset) -> Result<(DataFrame, Vec<QuirkCount>)> {
    // Rows with each quirk per split, raw (title or body) and as the models see them:
    // every text is scanned once, not once per quirk.
    let per_split = |clean: bool| {
        Split::ALL.map(|split| {
            let mut rows = [0usize; Quirks::NAMES.len()];
            for e in ds.split(split) {
                let flags = if clean {
                    Quirks::of(&e.text).flags()
                } else {
                    let (title, body) = (Quirks::of(&e.title).flags(), Quirks::of(&e.body).flags());
                    std::array::from_fn(|q| title[q] || body[q])
                };
                for (count, flag) in rows.iter_mut().zip(flags) {
                    *count += usize::from(flag);
                }
            }
            rows
        })
    };
    let (raw, clean) = (per_split(false), per_split(true));
    let counts: Vec<QuirkCount> = Quirks::NAMES
        .iter()
        .enumerate()
        .map(|(q, name)| QuirkCount {
            quirk: name.to_string(),
            raw: raw.map(|rows| rows[q]),
            after_normalize: clean.map(|rows| rows[q]),
        })
        .collect();
    let mut columns = vec![col("quirk", counts.iter().map(|c| c.quirk.clone()).collect::<Vec<_>>())];
    for (i, split) in Split::ALL.iter().enumerate() {
        columns.push(col(&format!("{split} rows"), counts.iter().map(|c| c.raw[i] as u64).collect::<Vec<_>>()));
    }
    let test_n = ds.test.len().max(1) as f64;
    columns.push(col("test %", counts.iter().map(|c| round(100.0 * c.raw[2] as f64 / test_n, 1)).collect::<Vec<_>>()));
    for (i, split) in Split::ALL.iter().enumerate() {
        let left = counts.iter().map(|c| c.after_normalize[i] as u64).collect::<Vec<_>>();
        columns.push(col(&format!("{split} rows after normalize"), left));
    }
    Ok((frame(columns)?, counts))
}

/// The model inputs that still show an entity- or tag-shaped quirk after
/// [`crate::data::normalize`], with the text around the first match, so a
/// reader can judge each by eye (the counter is broader than the cleaner).
pub fn quirks_left(ds: &Dataset) -> Result<DataFrame> {
    const CHECKED: [usize; 3] = [2, 3, 4]; // HTML entity, entity without &, HTML tag
    let mut rows: Vec<(Split, usize, &str, String)> = Vec::new();
    for split in Split::ALL {
        for e in ds.split(split) {
            let positions = Quirks::positions(&e.text);
            if let Some(&q) = CHECKED.iter().find(|&&q| positions[q].is_some()) {
                let at = positions[q].unwrap_or(0);
                rows.push((split, e.index, Quirks::NAMES[q], excerpt(&e.text, at, 40)));
            }
        }
    }
    frame(vec![
        col("split", rows.iter().map(|r| r.0.name().to_string()).collect::<Vec<_>>()),
        col("row", rows.iter().map(|r| r.1 as u64).collect::<Vec<_>>()),
        col("quirk", rows.iter().map(|r| r.2.to_string()).collect::<Vec<_>>()),
        col("where", rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>()),
    ])
}

/// Up to `context` characters either side of byte offset `at`, with `…` where cut.
fn excerpt(text: &str, at: usize, context: usize) -> String {
    let start = text[..at].char_indices().rev().nth(context.saturating_sub(1)).map_or(0, |(i, _)| i);
    let end = text[at..].char_indices().nth(context).map_or(text.len(), |(i, _)| at + i);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&text[start..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuirkCount {
    pub quirk: String,
    /// Rows whose raw title or body has the quirk, per split (train, validation, test).
    pub raw: [usize; 3],
    /// Rows whose model input still has it, per split.
    pub after_normalize: [usize; 3],
}

/// Duplicate rows between two groups of examples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DuplicateCount {
    /// e.g. "test vs train+validation".
    pub between: String,
    /// Rows of the first group whose normalised, lower-cased text also
    /// appears in the second group (within one group: appears earlier).
    pub exact: usize,
    /// Of those, rows where the two copies carry different labels.
    pub exact_label_conflicts: usize,
    /// Rows (not exact duplicates) with a partner of word-3-gram Jaccard
    /// similarity >= `NEAR_DUPLICATE_JACCARD`.
    pub near: usize,
    pub near_label_conflicts: usize,
}

/// A near-duplicate pair, for inspection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DuplicatePair {
    pub between: String,
    pub jaccard: f64,
    pub first_row: usize,
    pub second_row: usize,
    pub first: String,
    pub second: String,
    pub same_label: bool,
}

/// The name of the leakage check in [`DuplicateCount::between`].
pub const TEST_VS_TRAIN: &str = "test vs train+validation";

/// Jaccard similarity of word 3-grams from which two texts count as near-duplicates.
pub const NEAR_DUPLICATE_JACCARD: f64 = 0.8;
const MINHASHES: usize = 64;
const BAND_ROWS: usize = 4;

fn exact_key(e: &Example) -> String {
    e.text.to_lowercase()
}

fn shingles(text: &str) -> HashSet<u64> {
    let w: Vec<String> = words(text).collect();
    let hash = |parts: &[String]| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        parts.hash(&mut h);
        h.finish()
    };
    if w.len() < 3 {
        return [hash(&w)].into_iter().collect();
    }
    w.windows(3).map(hash).collect()
}

fn minhash(shingles: &HashSet<u64>) -> [u64; MINHASHES] {
    let mut sig = [u64::MAX; MINHASHES];
    for &s in shingles {
        for (i, slot) in sig.iter_mut().enumerate() {
            // A cheap independent hash per slot: multiply-xorshift with a per-slot odd constant.
            let mut x = s ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1));
            x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 29;
            *slot = (*slot).min(x);
        }
    }
    sig
}

fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter).max(1) as f64
}

/// Exact and near duplicates within train+validation (the training file),
/// within test, and between test and train+validation: the leakage check
/// later experiments cite.
pub fn duplicates(ds: &Dataset) -> (Vec<DuplicateCount>, Vec<DuplicatePair>) {
    let pool: Vec<&Example> = ds.train.iter().chain(&ds.validation).collect();
    let test: Vec<&Example> = ds.test.iter().collect();
    let mut counts = Vec::new();
    let mut pairs = Vec::new();
    for (name, first, second) in [
        ("train+validation within itself", &pool, None),
        ("test within itself", &test, None),
        (TEST_VS_TRAIN, &test, Some(&pool)),
    ] {
        let (count, mut found) = duplicates_between(name, first, second);
        counts.push(count);
        found.sort_by(|a, b| b.jaccard.total_cmp(&a.jaccard).then(a.first_row.cmp(&b.first_row)));
        pairs.extend(found.into_iter().take(5));
    }
    (counts, pairs)
}

/// Duplicates of `first` rows in `second` (or earlier in `first` when `second` is None).
fn duplicates_between(
    name: &str,
    first: &[&Example],
    second: Option<&Vec<&Example>>,
) -> (DuplicateCount, Vec<DuplicatePair>) {
    let others: &[&Example] = second.map_or(first, |s| s.as_slice());
    let within = second.is_none();

    // Exact duplicates by normalised text.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut exact = vec![None; first.len()];
    if within {
        for (i, e) in first.iter().enumerate() {
            match seen.get(&exact_key(e)) {
                Some(&j) => exact[i] = Some(j),
                None => {
                    seen.insert(exact_key(e), i);
                }
            }
        }
    } else {
        for (j, e) in others.iter().enumerate() {
            seen.entry(exact_key(e)).or_insert(j);
        }
        for (i, e) in first.iter().enumerate() {
            exact[i] = seen.get(&exact_key(e)).copied();
        }
    }

    // Near duplicates: MinHash LSH candidates, verified by exact Jaccard.
    let first_sh: Vec<HashSet<u64>> = first.iter().map(|e| shingles(&e.text)).collect();
    let other_sh: Vec<HashSet<u64>> =
        if within { Vec::new() } else { others.iter().map(|e| shingles(&e.text)).collect() };
    let other_sh = if within { &first_sh } else { &other_sh };
    let mut buckets: HashMap<(usize, Vec<u64>), Vec<usize>> = HashMap::new();
    for (j, sh) in other_sh.iter().enumerate() {
        let sig = minhash(sh);
        for (band, rows) in sig.chunks(BAND_ROWS).enumerate() {
            buckets.entry((band, rows.to_vec())).or_default().push(j);
        }
    }
    let mut near: Vec<Option<(usize, f64)>> = vec![None; first.len()];
    for (i, sh) in first_sh.iter().enumerate() {
        if exact[i].is_some() {
            continue;
        }
        let sig = minhash(sh);
        let mut checked = HashSet::new();
        for (band, rows) in sig.chunks(BAND_ROWS).enumerate() {
            for &j in buckets.get(&(band, rows.to_vec())).into_iter().flatten() {
                if (within && j >= i) || !checked.insert(j) {
                    continue;
                }
                let s = jaccard(sh, &other_sh[j]);
                if s >= NEAR_DUPLICATE_JACCARD && near[i].is_none_or(|(_, best)| s > best) {
                    near[i] = Some((j, s));
                }
            }
        }
    }

    let conflicts = |matches: &[Option<usize>]| {
        matches.iter().enumerate().filter(|(i, m)| m.is_some_and(|j| first[*i].label != others[j].label)).count()
    };
    let near_idx: Vec<Option<usize>> = near.iter().map(|n| n.map(|(j, _)| j)).collect();
    let count = DuplicateCount {
        between: name.to_string(),
        exact: exact.iter().flatten().count(),
        exact_label_conflicts: conflicts(&exact),
        near: near.iter().flatten().count(),
        near_label_conflicts: conflicts(&near_idx),
    };
    let pairs = near
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.map(|(j, s)| (i, j, s)))
        .map(|(i, j, s)| DuplicatePair {
            between: name.to_string(),
            jaccard: round(s, 3),
            first_row: first[i].index,
            second_row: others[j].index,
            first: first[i].text.clone(),
            second: others[j].text.clone(),
            same_label: first[i].label == others[j].label,
        })
        .collect();
    (count, pairs)
}

pub fn duplicate_table(counts: &[DuplicateCount]) -> Result<DataFrame> {
    let n = |f: fn(&DuplicateCount) -> usize| counts.iter().map(|c| f(c) as u64).collect::<Vec<_>>();
    frame(vec![
        col("between", counts.iter().map(|c| c.between.clone()).collect::<Vec<_>>()),
        col("exact duplicates", n(|c| c.exact)),
        col("exact, other label", n(|c| c.exact_label_conflicts)),
        col("near duplicates", n(|c| c.near)),
        col("near, other label", n(|c| c.near_label_conflicts)),
    ])
}

pub fn duplicate_pair_table(pairs: &[DuplicatePair]) -> Result<DataFrame> {
    frame(vec![
        col("between", pairs.iter().map(|p| p.between.clone()).collect::<Vec<_>>()),
        col("jaccard", pairs.iter().map(|p| p.jaccard).collect::<Vec<_>>()),
        col("row", pairs.iter().map(|p| p.first_row as u64).collect::<Vec<_>>()),
        col("text", pairs.iter().map(|p| p.first.clone()).collect::<Vec<_>>()),
        col("partner row", pairs.iter().map(|p| p.second_row as u64).collect::<Vec<_>>()),
        col("partner text", pairs.iter().map(|p| p.second.clone()).collect::<Vec<_>>()),
        col("same label", pairs.iter().map(|p| p.same_label).collect::<Vec<_>>()),
    ])
}

/// The EDA numbers later experiments cite, written to `results/eda.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdaSummary {
    pub source: String,
    pub labels: Vec<String>,
    /// Examples per class, per split.
    /// Sorted by split, so that the file is the same on every run.
    pub class_counts: BTreeMap<Split, Vec<usize>>,
    pub quirks: Vec<QuirkCount>,
    pub duplicates: Vec<DuplicateCount>,
}

impl EdaSummary {
    /// How many test rows have an exact or near copy in the data used for
    /// training and selection: the leakage figures later experiments cite.
    pub fn leakage(&self) -> String {
        let test: usize = self.class_counts.get(&Split::Test).map_or(0, |c| c.iter().sum());
        let share = |n: usize| 100.0 * n as f64 / test.max(1) as f64;
        let Some(d) = self.duplicates.iter().find(|d| d.between == TEST_VS_TRAIN) else {
            return String::from("no leakage check was run");
        };
        format!(
            "of {test} test rows, {} ({:.2}%) have an exact copy in train+validation ({} labelled differently) \
             and {} ({:.2}%) a near copy ({} labelled differently)",
            d.exact,
            share(d.exact),
            d.exact_label_conflicts,
            d.near,
            share(d.near),
            d.near_label_conflicts
        )
    }
}

/// Everything the EDA shows, computed once.
pub struct Eda {
    pub class_balance: DataFrame,
    pub lengths: DataFrame,
    pub distinctive_words: DataFrame,
    pub examples: DataFrame,
    pub quirks: DataFrame,
    pub quirks_left: DataFrame,
    pub duplicates: DataFrame,
    pub duplicate_pairs: DataFrame,
    pub summary: EdaSummary,
}

impl Eda {
    pub fn run(ds: &Dataset) -> Result<Self> {
        let (quirks, quirk_counts) = quirk_counts(ds)?;
        let (dups, pairs) = duplicates(ds);
        Ok(Eda {
            class_balance: class_balance(ds)?,
            lengths: length_summary(ds, Split::Train)?,
            distinctive_words: distinctive_words(ds, Split::Train, 12)?,
            examples: examples_per_class(ds, Split::Train, 2, 7)?,
            quirks,
            quirks_left: quirks_left(ds)?,
            duplicates: duplicate_table(&dups)?,
            duplicate_pairs: duplicate_pair_table(&pairs)?,
            summary: EdaSummary {
                source: ds.source.clone(),
                labels: ds.labels.clone(),
                class_counts: Split::ALL.iter().map(|&s| (s, ds.class_counts(s))).collect(),
                quirks: quirk_counts,
                duplicates: dups,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_character_boundaries() {
        assert_eq!(excerpt("a\u{2019}bcdef", 4, 2), "a\u{2019}bc…");
        assert_eq!(excerpt("abcdef", 3, 1), "…cd…");
        assert_eq!(excerpt("abc", 0, 10), "abc");
    }

    fn ds(train: &[(usize, &str)], test: &[(usize, &str)]) -> Dataset {
        let make = |rows: &[(usize, &str)]| {
            rows.iter().enumerate().map(|(i, &(l, t))| Example::new(i, l, String::new(), t.to_string())).collect()
        };
        Dataset {
            source: "synthetic".into(),
            task: crate::data::Task::named("synthetic"),
            labels: vec!["a".into(), "b".into()],
            train: make(train),
            validation: Vec::new(),
            test: make(test),
            seed: 0,
        }
    }

    #[test]
    fn finds_exact_and_near_duplicates_and_label_conflicts() {
        let long = "the quick brown fox jumps over the lazy dog near the river bank today at noon";
        let near = "the quick brown fox jumps over the lazy dog near the river bank today at night";
        let d = ds(
            &[
                (0, long),
                (1, "Completely different words about stock markets falling"),
                (0, "THE QUICK brown fox jumps over the lazy dog near the river bank today at noon"),
            ],
            &[(1, long), (0, near), (0, "nothing like anything else in this tiny set")],
        );
        let (counts, pairs) = duplicates(&d);
        let within_train = &counts[0];
        assert_eq!((within_train.exact, within_train.exact_label_conflicts), (1, 0));
        let cross = &counts[2];
        assert_eq!((cross.exact, cross.exact_label_conflicts), (1, 1));
        assert_eq!(cross.near, 1, "{counts:?}");
        assert!(pairs.iter().any(|p| p.between == "test vs train+validation" && p.jaccard >= 0.8));
        assert_eq!(counts[1].exact, 0);
    }

    #[test]
    fn distinctive_words_pick_class_vocabulary() {
        let mut train = Vec::new();
        for _ in 0..10 {
            train.push((0, "goal match team season the"));
            train.push((1, "shares profit market stocks the"));
        }
        let table = distinctive_words(&ds(&train, &[(0, "x")]), Split::Train, 3).unwrap();
        let top_a = table.column("a").unwrap().get(0).unwrap().to_string();
        let top_b = table.column("b").unwrap().get(0).unwrap().to_string();
        assert!(["goal", "match", "team", "season"].iter().any(|w| top_a.contains(w)), "{top_a}");
        assert!(["shares", "profit", "market", "stocks"].iter().any(|w| top_b.contains(w)), "{top_b}");
    }

    #[test]
    fn class_balance_counts_every_split() {
        let d = ds(&[(0, "x"), (1, "y"), (1, "z")], &[(0, "w")]);
        let t = class_balance(&d).unwrap();
        assert_eq!(t.column("train").unwrap().get(1).unwrap().to_string(), "2");
        assert_eq!(t.column("test %").unwrap().get(0).unwrap().to_string(), "100.0");
    }

    #[test]
    fn length_chart_and_summary() {
        let d = ds(&[(0, "one two three"), (1, "one")], &[(0, "w")]);
        let lengths = length_summary(&d, Split::Train).unwrap();
        assert_eq!(lengths.column("max words").unwrap().get(0).unwrap().to_string(), "3.0");
        let svg = length_distribution_chart(&d, Split::Train, LengthUnit::Words).unwrap();
        assert!(svg.markup.contains("<svg"));
    }
}
