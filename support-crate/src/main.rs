//! `slm-vs-llm`: run the experiments of the notebooks from the command line.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use slm_vs_llm::data::{self, DataConfig, Source};
use slm_vs_llm::eda::{self, Eda, LengthUnit};
use slm_vs_llm::Split;

/// Fine-tuned small language model vs. generic LLM vs. embeddings + K-NN vs.
/// TF-IDF, on AG News or your own labelled texts.
///
/// Logging follows RUST_LOG (default: info), e.g. RUST_LOG=debug.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Explore the dataset: class balance, lengths, distinctive words, text
    /// quirks and duplicates (the leakage check). Prints the tables and
    /// writes the numbers to results/eda.json and the plots beside it.
    Eda(EdaArgs),
    /// Check executed notebooks for error outputs and panics; exits non-zero
    /// if any cell failed.
    CheckNotebook {
        /// Executed .ipynb files.
        #[arg(required = true)]
        notebooks: Vec<PathBuf>,
    },
}

/// Which data to use and how to split it.
#[derive(Args, Debug)]
struct DataArgs {
    /// AG News directory: the CSV release (train.csv/test.csv) or the Hugging
    /// Face parquet files. Default: data/ag_news if present, else download
    /// fancyzhx/ag_news with hf-hub (respects HF_HOME and HF_HUB_OFFLINE).
    #[arg(long, env = "AG_NEWS_DIR")]
    data_dir: Option<PathBuf>,
    /// Name of the CSV train file in --data-dir (default: train.csv, else train_subset.csv).
    #[arg(long)]
    train_file: Option<String>,
    /// Your own data instead of AG News: a CSV (with a header) or parquet file
    /// with a text and a label column.
    #[arg(long, conflicts_with_all = ["data_dir", "train_file"])]
    train: Option<PathBuf>,
    /// Test file for --train (same columns). Without it a stratified
    /// --test-fraction of --train becomes the test split.
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Text column of --train/--test.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Label column of --train/--test: class names or integer indices.
    #[arg(long, default_value = "label")]
    label_column: String,
    /// Class names, comma-separated, for integer labels (index i gets the i-th name).
    #[arg(long, value_delimiter = ',')]
    label_names: Option<Vec<String>>,
    /// Share of the test split carved from --train when there is no --test.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Share of train held out (stratified) for validation.
    #[arg(long, default_value_t = 0.05)]
    validation_fraction: f64,
    /// Seed of every split and sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use a small stratified sample (minute-scale check). Also set by SMOKE=1.
    #[arg(long)]
    smoke: bool,
}

impl DataArgs {
    fn load(&self) -> Result<data::Dataset> {
        let source = match &self.train {
            Some(train) => Source::Custom {
                train: train.clone(),
                test: self.test.clone(),
                text_column: self.text_column.clone(),
                label_column: self.label_column.clone(),
                label_names: self.label_names.clone(),
            },
            None => Source::locate(self.data_dir.as_deref(), self.train_file.as_deref())?,
        };
        if !(0.0..1.0).contains(&self.validation_fraction) || !(0.0..1.0).contains(&self.test_fraction) {
            bail!("--validation-fraction and --test-fraction must be in [0, 1)");
        }
        let base = if self.smoke || data::smoke_requested() { DataConfig::smoke() } else { DataConfig::default() };
        let config = DataConfig {
            seed: self.seed,
            test_fraction: self.test_fraction,
            validation_fraction: if self.smoke { base.validation_fraction } else { self.validation_fraction },
            ..base
        };
        tracing::info!(source = %source.describe(), "loading data");
        let ds = data::load(&source, &config)?;
        tracing::info!(
            train = ds.train.len(),
            validation = ds.validation.len(),
            test = ds.test.len(),
            classes = ds.num_classes(),
            "loaded"
        );
        Ok(ds)
    }
}

#[derive(Args, Debug)]
struct EdaArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Where to write eda.json and the length plots.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

fn run_eda(args: &EdaArgs) -> Result<()> {
    let ds = args.data.load()?;
    let eda = Eda::run(&ds)?;
    println!("Data: {}", ds.source);
    for (title, table) in [
        ("Class balance", &eda.class_balance),
        ("Length of the model input (train)", &eda.lengths),
        ("Most distinctive words per class (log-odds z-score, train)", &eda.distinctive_words),
        ("Text quirks (rows)", &eda.quirks),
        ("Duplicates (normalised text; near = word-3-gram Jaccard >= 0.8)", &eda.duplicates),
        ("Near-duplicate pairs", &eda.duplicate_pairs),
    ] {
        println!("\n## {title}\n{table}");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let json = args.out.join("eda.json");
    std::fs::write(&json, serde_json::to_string_pretty(&eda.summary)?)
        .with_context(|| format!("writing {}", json.display()))?;
    for (unit, name) in [(LengthUnit::Words, "eda_length_words.svg"), (LengthUnit::Chars, "eda_length_chars.svg")] {
        eda::length_distribution_chart(&ds, Split::Train, unit)?.save(&args.out.join(name))?;
    }
    println!("\nLeakage check: {}", eda.summary.leakage());
    println!("\nWrote {} and the length plots in {}", json.display(), args.out.display());
    Ok(())
}

fn check_notebooks(notebooks: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for nb in notebooks {
        let errors = slm_vs_llm::notebook::errors_in_executed(nb)?;
        if errors.is_empty() {
            println!("{}: clean", nb.display());
        }
        for e in &errors {
            eprintln!("{}: {e}", nb.display());
        }
        failed += usize::from(!errors.is_empty());
    }
    if failed > 0 {
        bail!("{failed} notebook(s) hold error outputs");
    }
    Ok(())
}

fn main() -> Result<()> {
    // Show whole tables in the terminal unless the user configured polars otherwise.
    for (key, value) in [("POLARS_FMT_MAX_ROWS", "40"), ("POLARS_FMT_STR_LEN", "80"), ("POLARS_FMT_MAX_COLS", "20")] {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, value);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Eda(args) => run_eda(&args),
        Command::CheckNotebook { notebooks } => check_notebooks(&notebooks),
    }
}
