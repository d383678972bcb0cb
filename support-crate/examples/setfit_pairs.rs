//! What SetFit's pair cap costs in accuracy: the curve tunes on at most
//! 2,048 pairs (at 32 labels per class 8 rounds of pairs per example, at 128
//! two) where SetFit's recipe draws 20 rounds. This fits SetFit at one
//! budget and seed under each cap given and scores it on the curve's own test
//! sample (2,000 items, seed 42), so the rows compare with the curve's points.
//!
//! ```bash
//! cargo run --release --example setfit_pairs -- --budget 32 --seed 42 --max-pairs 2048,5120
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use slm_vs_llm::data::{load, per_class_subset, stratified_sample, DataConfig, Source};
use slm_vs_llm::method::{accuracy, predict_all, RunContext, TrainingSet};
use slm_vs_llm::methods::setfit::SetFit;
use slm_vs_llm::paths::Profile;

#[derive(Parser)]
struct Args {
    /// AG News directory (the CSV release or the shared sample).
    #[arg(long, default_value = "data/ag_news")]
    data_dir: std::path::PathBuf,
    /// Labelled examples per class, drawn as the curve draws them.
    #[arg(long, default_value_t = 32)]
    budget: usize,
    /// The seed of the budget's draw and of the pairs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pair caps to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2048,5120")]
    max_pairs: Vec<usize>,
    /// Test items: the curve's seeded sample.
    #[arg(long, default_value_t = 2000)]
    test_sample: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let train_file = if args.data_dir.join("train.csv").exists() { "train.csv" } else { "train_subset.csv" };
    let source = Source::AgNewsCsv { dir: args.data_dir.clone(), train_file: train_file.into() };
    let ds = load(&source, &DataConfig::default()).context("loading AG News")?;
    let classes = ds.num_classes();
    let test = stratified_sample(ds.test.clone(), classes, args.test_sample, 42);
    let train = per_class_subset(&ds.train, classes, args.budget, args.seed);
    let validation = per_class_subset(&ds.validation, classes, (args.budget / 4).max(2), args.seed);
    let data = TrainingSet { train: &train, validation: &validation, ..TrainingSet::of(&ds) };
    let ctx = RunContext { seed: args.seed, progress: true, ..Default::default() };
    println!("labels per class | seed | pair cap | pairs | rounds | train s | test accuracy ({} items)", test.len());
    for cap in args.max_pairs {
        let mut method = SetFit::for_profile(Profile::Full);
        method.config.contrastive.max_pairs = cap;
        let fitted = method.fit_setfit(&data, &ctx)?;
        let (pairs, rounds, seconds) = (fitted.log.pairs, fitted.rounds, fitted.training_seconds);
        let (predicted, _) = predict_all(&fitted, &test, &ctx)?;
        let labels: Vec<Option<usize>> = predicted.outputs.iter().map(|o| o.label).collect();
        println!(
            "{:>16} | {:>4} | {cap:>8} | {pairs:>5} | {rounds:>6} | {seconds:>7.0} | {:.2}%",
            args.budget,
            args.seed,
            100.0 * accuracy(&test, &labels)
        );
    }
    Ok(())
}
