//! Benchmarks against the physical limit and the Python reference stack,
//! measured in one run on one machine.

//!
//! One file per benchmark: [`embed()`] (sentence embeddings against
//! sentence-transformers), [`knn()`] (the search against its matrix product),
//! [`slm()`] (fine-tuning and inference against PyTorch), [`baseline()`]
//! (TF-IDF + LR against scikit-learn), [`llm()`] (the embedded LLM against
//! llama.cpp's server); here, the interleaved rounds they all share.

mod baseline;
mod embed;
mod knn;
mod llm;
mod slm;

pub use baseline::{baseline, BaselineBench};
pub use embed::{embed, EmbedBench, LowPrecisionEmbed};
pub use knn::{knn, KnnBench};
pub use llm::{llm, LlmBench, LlmSide};
pub use slm::{slm, LowPrecisionInfer, SlmBench, SlmBenchConfig};

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::methods::knn::{KnnClassifier, Vote};
use crate::models::{Embedder, Embeddings};

/// Throughputs of several sides measured in interleaved rounds. Each round
/// runs every side once and the side that goes first rotates, so a busy spell
/// on a shared machine (neighbours moved single runs here by up to 50%) falls
/// on every side instead of one. Ratios are taken within a round, where both
/// sides saw the same load, and summarised over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Rounds {
    /// One entry per side, in the order the sides were given.
    pub sides: Vec<Side>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub name: String,
    /// Throughput in each round.
    pub per_round: Vec<f64>,
}

/// One side's throughput over another's, per round: the median and the range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}x (rounds {:.2}-{:.2}x)", self.median, self.min, self.max)
    }
}

/// A side of a benchmark: a name and a measurement returning a throughput.
pub type Measure<'a> = (&'a str, &'a mut dyn FnMut() -> Result<f64>);

impl Rounds {
    /// `rounds` rounds of every side; round `r` starts with side `r mod sides`.
    pub fn run(rounds: usize, sides: &mut [Measure<'_>]) -> Result<Self> {
        let n = sides.len();
        let mut per_round = vec![Vec::with_capacity(rounds); n];
        for round in 0..rounds.max(1) {
            for i in (0..n).map(|i| (i + round) % n) {
                let throughput = (sides[i].1)().with_context(|| format!("round {} of {}", round + 1, sides[i].0))?;
                per_round[i].push(throughput);
            }
        }
        let sides =
            sides.iter().zip(per_round).map(|((name, _), per_round)| Side { name: name.to_string(), per_round });
        Ok(Self { sides: sides.collect() })
    }

    /// The median throughput of side `i`.
    pub fn median(&self, i: usize) -> f64 {
        median(self.sides[i].per_round.clone())
    }

    /// Side `a` over side `b`, round by round.
    pub fn ratio(&self, a: usize, b: usize) -> Ratio {
        let ratios: Vec<f64> =
            self.sides[a].per_round.iter().zip(&self.sides[b].per_round).map(|(a, b)| a / b).collect();
        Ratio {
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            median: median(ratios),
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `f` with a fresh directory for the files a Python side reads, removed afterwards whatever `f` returned.
pub(crate) fn in_temp_dir<T>(f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = std::env::temp_dir().join(format!("slm-vs-llm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = f(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub(crate) fn python_json(python: &Path, script: &str, args: &[&str]) -> Result<serde_json::Value> {
    let script = crate::paths::project_root().join("benches/python").join(script);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!("the Python benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("the Python benchmark printed {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_first_side_and_take_ratios_within_a_round() {
        let order = std::cell::RefCell::new(Vec::new());
        // A machine whose load doubles every round: side a is always 1.5x side b within a round.
        let load = std::cell::Cell::new(1.0);
        let mut a = || -> Result<f64> {
            order.borrow_mut().push('a');
            Ok(3.0 / load.get())
        };
        let mut b = || -> Result<f64> {
            order.borrow_mut().push('b');
            let throughput = 2.0 / load.get();
            load.set(load.get() * 2.0);
            Ok(throughput)
        };
        let rounds = Rounds::run(3, &mut [("a", &mut a), ("b", &mut b)]).unwrap();
        assert_eq!(order.into_inner(), ['a', 'b', 'b', 'a', 'a', 'b']);
        // The second round runs b first, so a sees the doubled load; the median ignores that round.
        assert_eq!(rounds.sides[0].per_round, [3.0, 0.75, 0.75]);
        assert_eq!(rounds.sides[1].per_round, [2.0, 1.0, 0.5]);
        let ratio = rounds.ratio(0, 1);
        assert_eq!((ratio.median, ratio.min, ratio.max), (1.5, 0.75, 1.5));
        assert_eq!(rounds.median(1), 1.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_failing_side_names_its_round() {
        let mut ok = || -> Result<f64> { Ok(1.0) };
        let mut fails = || -> Result<f64> { bail!("out of memory") };
        let err = Rounds::run(2, &mut [("candle", &mut ok), ("pytorch", &mut fails)]).unwrap_err();
        assert_eq!(format!("{err:#}"), "round 1 of pytorch: out of memory");
    }
}
