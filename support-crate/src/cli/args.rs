//! The command line's arguments. Every default lives in the library's
//! config structs; a flag here only overrides it. Flags whose default depends
//! on the profile (full or `--smoke`) are optional and say so.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::data::{self, DataConfig, Source};
use crate::kernels::Precision;
use crate::methods::finetune::{Finetune, FinetuneConfig};
use crate::methods::knn::{Knn, KnnConfig};
use crate::methods::llm::{BackendConfig, Decoding, Demonstrations, Llm, LlmConfig, Price};
use crate::methods::tfidf::{TfidfBaseline, TfidfConfig};
use crate::methods::{CurvePlan, Methods};
use crate::models::embedder::EmbedConfig;
use crate::models::llama::WeightFormat;
use crate::paths::{self, Profile};
use crate::studies::curve::CurveConfig;

/// A finite number above zero (seconds, prices' neighbours, strengths).
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a finite number above 0")),
    }
}

/// A finite number of at least zero (prices).
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a finite number of at least 0")),
    }
}

/// A share in [0, 1).
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a share in [0, 1)")),
    }
}

/// A count of at least one.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

/// Most requests in flight at once: past a few dozen a server only queues
/// them (or rate-limits), and each holds a connection and a response buffer.
pub const MAX_CONCURRENCY: usize = 64;

fn concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a whole number from 1 to {MAX_CONCURRENCY}")),
    }
}

/// Which data to use and how to split it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// AG News directory: the CSV release (train.csv/test.csv) or the Hugging
    /// Face parquet files. Default: data/ag_news if present, else download
    /// fancyzhx/ag_news with hf-hub (respects HF_HOME and HF_HUB_OFFLINE).
    #[arg(long, env = "AG_NEWS_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Name of the CSV train file in --data-dir (default: train.csv, else train_subset.csv).
    #[arg(long)]
    pub train_file: Option<String>,
    /// Your own data instead of AG News: a CSV (with a header) or parquet file
    /// with a text and a label column. Wins over --data-dir and AG_NEWS_DIR.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Test file for --train (same columns). Without it a stratified
    /// --test-fraction of --train becomes the test split.
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    /// Text column of --train/--test.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Label column of --train/--test: class names or integer indices.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Class names, comma-separated, for integer labels (index i gets the i-th name).
    #[arg(long, value_delimiter = ',')]
    pub label_names: Option<Vec<String>>,
    /// What the task is, as a JSON file ({"name", "items", "label_kind",
    /// "descriptions": {"<class>": "one line"}}); the LLM's instructions,
    /// chart captions and the classifier's name read it. Default: AG News's
    /// own, or <train file stem>.task.json beside --train, else the file's name.
    #[arg(long)]
    pub task_file: Option<PathBuf>,
    /// The task's name on charts and in the report (overrides the task file's).
    #[arg(long)]
    pub task: Option<String>,
    /// One line per class, `class: description`, shown to the LLM (overrides the task file's).
    #[arg(long)]
    pub label_descriptions: Option<PathBuf>,
    /// Share of the test split carved from --train when there is no --test.
    #[arg(long, default_value_t = DataConfig::default().test_fraction, value_parser = fraction)]
    pub test_fraction: f64,
    /// Share of train held out (stratified) for validation (a smoke run uses 0.1).
    #[arg(long, default_value_t = DataConfig::default().validation_fraction, value_parser = fraction)]
    pub validation_fraction: f64,
    /// Use a seeded stratified sample of this many training rows (before
    /// validation is carved out; default all, smoke 2,000).
    #[arg(long, env = data::TRAIN_ROWS_ENV, value_parser = at_least_one)]
    pub train_rows: Option<usize>,
    /// Use a seeded stratified sample of this many test rows (default all, smoke 400).
    #[arg(long, env = data::TEST_ROWS_ENV, value_parser = at_least_one)]
    pub test_rows: Option<usize>,
    /// Seed of every split, sample and random choice of the methods.
    #[arg(long, default_value_t = DataConfig::default().seed)]
    pub seed: u64,
    /// Use a small stratified sample (minute-scale check); results go to
    /// data/smoke/ (your own data: data/runs/<file>/smoke/). Also set by SMOKE=1.
    #[arg(long)]
    pub smoke: bool,
}

impl DataArgs {
    pub fn profile(&self) -> Profile {
        Profile::from_env_or(self.smoke)
    }

    /// Where runs on your own data go, so they never replace the committed
    /// AG News results: `data/runs/<train file stem>[/smoke]`.
    fn own_data_dir(&self) -> Option<PathBuf> {
        Some(paths::own_data_dir(self.train.as_ref()?, self.profile()))
    }

    /// `out`, else `results/` (AG News), `data/smoke/results` (a smoke run)
    /// or `data/runs/<your file>/results` (your own data).
    pub fn results_dir(&self, out: &Option<PathBuf>) -> PathBuf {
        out.clone().unwrap_or_else(|| match self.own_data_dir() {
            Some(dir) => dir.join("results"),
            None => paths::results_dir(self.profile()),
        })
    }

    /// Where `all` puts the report's charts, beside the results.
    pub fn assets_dir(&self) -> PathBuf {
        match self.own_data_dir() {
            Some(dir) => dir.join("assets"),
            None => paths::assets_dir(self.profile()),
        }
    }

    /// Whether `all` rewrites the README's sections: the full AG News run only.
    pub fn writes_readme(&self) -> bool {
        self.train.is_none() && !self.profile().is_smoke()
    }

    pub fn load(&self) -> Result<data::Dataset> {
        let source = match &self.train {
            Some(train) => {
                if let Some(dir) = &self.data_dir {
                    tracing::info!(
                        "--train {} is used; --data-dir/AG_NEWS_DIR {} is not",
                        train.display(),
                        dir.display()
                    );
                }
                Source::Custom {
                    train: train.clone(),
                    test: self.test.clone(),
                    text_column: self.text_column.clone(),
                    label_column: self.label_column.clone(),
                    label_names: self.label_names.clone(),
                }
            }
            None => Source::locate(self.data_dir.as_deref(), self.train_file.as_deref())?,
        };
        // A smoke run uses the smoke sample and split, as the notebooks do under SMOKE=1.
        let profile = self.profile();
        let base = DataConfig::for_profile(profile);
        let config = DataConfig {
            seed: self.seed,
            max_train: self.train_rows.or(base.max_train),
            max_test: self.test_rows.or(base.max_test),
            test_fraction: self.test_fraction,
            validation_fraction: if profile.is_smoke() { base.validation_fraction } else { self.validation_fraction },
        };
        tracing::info!(source = %source.describe(), "loading data");
        let mut ds = data::load(&source, &config)?;
        if let Some(path) = &self.task_file {
            ds.task = data::Task::read(path)?;
            ds.task.check(&ds.labels, path)?;
        }
        if let Some(name) = &self.task {
            ds.task.name = name.clone();
        }
        if let Some(path) = &self.label_descriptions {
            ds.task.descriptions = data::Task::read_descriptions(path)?;
            ds.task.check(&ds.labels, path)?;
        }
        tracing::info!(
            train = ds.train.len(),
            validation = ds.validation.len(),
            test = ds.test.len(),
            classes = ds.num_classes(),
            task = %ds.task.name,
            "loaded"
        );
        Ok(ds)
    }
}

/// Where a run's record goes.
#[derive(Args, Debug, Clone, Default)]
pub struct OutArgs {
    /// Directory of the run record (<experiment>.json and .predictions.csv).
    /// Default: results/, or data/smoke/results for a smoke run (which must
    /// not overwrite the committed results).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EdaArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `--precision`, shared by the commands that run the embedder, the classifier or the embedded LLM.
#[derive(Args, Debug, Clone, Copy)]
pub struct PrecisionArg {
    /// Arithmetic of the inference matmuls. int8: weights and activations
    /// quantised per block of 64 inputs, exact integer sums
    /// (the same numbers on every CPU); auto: int8 where the CPU has AVX2 or
    /// AVX-512 VNNI, else f32. Training is always f32. Default: auto for the
    /// embedded LLM (int8 gives f32's label on 99% of items, README), f32
    /// for the embedder and the classifier.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
}

impl PrecisionArg {
    /// The flag's value, else the command's default.
    pub fn or(self, default: Precision) -> Precision {
        self.precision.unwrap_or(default)
    }
}

#[derive(Args, Debug)]
pub struct KnnArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Sentence embedder: a local directory or a Hugging Face id
    /// (default: data/models/all-MiniLM-L6-v2 if present, else
    /// sentence-transformers/all-MiniLM-L6-v2). Any BERT-family
    /// sentence-transformers model works.
    #[arg(long)]
    pub model: Option<String>,
    /// Longer texts are truncated (and counted).
    #[arg(long, default_value_t = EmbedConfig::default().max_tokens, value_parser = at_least_one)]
    pub max_tokens: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = EmbedConfig::default().batch_size, value_parser = at_least_one)]
    pub batch_size: usize,
    #[command(flatten)]
    pub precision: PrecisionArg,
    /// Candidate k values, chosen on validation.
    #[arg(long, value_delimiter = ',', default_values_t = KnnConfig::default().ks, value_parser = at_least_one)]
    pub ks: Vec<usize>,
    #[command(flatten)]
    pub out: OutArgs,
}

impl KnnArgs {
    pub fn method(&self) -> Knn {
        let defaults = KnnConfig::default();
        Knn::new(KnnConfig {
            embed: EmbedConfig {
                model: self.model.clone().unwrap_or(defaults.embed.model.clone()),
                max_tokens: self.max_tokens,
                batch_size: self.batch_size,
                precision: self.precision.or(defaults.embed.precision),
            },
            ks: self.ks.clone(),
            ..defaults
        })
    }
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Base model: a .gguf file, a Hugging Face directory, or a Hugging Face id
    /// (default: the SmolLM2-135M-Instruct GGUF in data/models if present,
    /// else HuggingFaceTB/SmolLM2-135M-Instruct). Any Llama-family model works.
    #[arg(long)]
    pub model: Option<String>,
    /// Train on a seeded stratified sample of this many training items
    /// (default all; smoke 240; 0 = all).
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Passes over the training items (default 1).
    #[arg(long, value_parser = at_least_one)]
    pub epochs: Option<usize>,
    /// Peak learning rate (linear warm-up, cosine decay; default 2e-4).
    #[arg(long, value_parser = positive)]
    pub learning_rate: Option<f64>,
    /// Rows per forward/backward pass (default 16; smoke 8).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Passes accumulated per optimiser step (default 1).
    #[arg(long, value_parser = at_least_one)]
    pub grad_accum: Option<usize>,
    /// Keep the bottom N transformer layers (and the embedding) frozen (default 18; smoke 26).
    #[arg(long)]
    pub frozen_layers: Option<usize>,
    /// Tokens kept per text; longer texts are truncated and counted (default 128).
    #[arg(long, value_parser = at_least_one)]
    pub max_len: Option<usize>,
    /// Optimiser steps between validation passes (default 250; smoke 10).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Optimiser steps between checkpoints (default 100; smoke 10).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Keep the last step's weights instead of those of the validation pass
    /// with the lowest loss (the default; runs before December 2026 kept the last).
    #[arg(long)]
    pub keep_last_step: bool,
    /// Where the classifier and its checkpoint go (default:
    /// data/finetuned/<model family>-<task>, e.g. smollm2-ag-news).
    #[arg(long)]
    pub model_out: Option<PathBuf>,
    #[command(flatten)]
    pub precision: PrecisionArg,
    #[command(flatten)]
    pub out: OutArgs,
    /// Train and validate only: no test evaluation and no results file (for
    /// choosing hyper-parameters on validation).
    #[arg(long)]
    pub validation_only: bool,
}

impl FinetuneArgs {
    /// The profile's defaults with the flags given.
    pub fn method(&self) -> Finetune {
        let profile = self.data.profile();
        let mut method = Finetune::for_profile(profile);
        let config: &mut FinetuneConfig = &mut method.config;
        if let Some(model) = &self.model {
            config.model = model.clone();
        }
        let t = &mut config.train;
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { t.$field = v; })* };
        }
        set!(epochs, learning_rate, batch_size, grad_accum, frozen_layers, max_len, eval_every, checkpoint_every);
        if self.keep_last_step {
            t.keep_lowest_validation_loss = false;
        }
        if let Some(n) = self.max_train {
            config.max_train = (n > 0).then_some(n);
        }
        if let Some(dir) = &self.model_out {
            method.out_dir = Some(dir.clone());
        }
        config.precision = self.precision.or(config.precision).resolve();
        method
    }
}

#[derive(Args, Debug)]
pub struct LlmArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Server base URL up to /v1 (e.g. https://api.openai.com/v1,
    /// http://localhost:11434/v1); default: OPENAI_BASE_URL. Without one, the
    /// embedded GGUF model answers in-process (see --gguf).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name as the server knows it (default: OPENAI_MODEL, else gpt-4o-mini).
    #[arg(long)]
    pub model: Option<String>,
    /// The embedded model when no server is set: a llama-family .gguf file
    /// (default: data/models/SmolLM2-135M-Instruct/*.gguf, from `bash scripts/setup.sh`).
    #[arg(long)]
    pub gguf: Option<PathBuf>,
    /// Embedded model: tokens of several items run in one forward pass.
    #[arg(long, default_value_t = BackendConfig::default().pack_tokens, value_parser = at_least_one)]
    pub pack_tokens: usize,
    /// Embedded model: dequantise the weight matrices to f32 once, keep them
    /// quantised (4-8x less memory, each dequantised a slice at a time during
    /// a pass: for 1-8B models on a laptop), or auto: f32 when that copy fits
    /// --memory-budget-gib. The log says which was chosen.
    #[arg(long, value_enum, default_value_t = WeightFormat::Auto)]
    pub weights: WeightFormat,
    /// Embedded model: GiB the f32 weights may take before --weights auto
    /// keeps them quantised (default: half the memory available now).
    #[arg(long, value_parser = positive)]
    pub memory_budget_gib: Option<f64>,
    // The embedded model's matmuls (int8 requantises its f32 weights); the
    // retrieval embedder stays f32, sharing K-NN's cached embeddings.
    #[command(flatten)]
    pub precision: PrecisionArg,
    /// Requests in flight at once.
    #[arg(long, default_value_t = BackendConfig::default().concurrency, value_parser = concurrency)]
    pub concurrency: usize,
    /// Seconds before a request is abandoned (then retried).
    #[arg(long, default_value_t = BackendConfig::default().timeout.as_secs_f64(), value_parser = positive)]
    pub timeout: f64,
    /// Score every label (label-scores: a distribution over labels, which
    /// calibration needs; the embedded model scores whole labels, a server's
    /// scores come from its top logprobs) or take the label the model decodes
    /// under the schema (constrained-greedy).
    #[arg(long, value_enum, default_value_t = Decoding::LabelScores)]
    pub decoding: Decoding,
    /// The demonstrations to compare on validation, comma-separated: none,
    /// fixed:K (K per class, the same for every item), nearest:K (the K most
    /// similar training texts, nearest last), nearest-first:K, per-class:K
    /// (default: none,fixed:1,fixed:2,fixed:4,nearest:4,nearest-first:4,per-class:1;
    /// smoke: none,fixed:1,nearest:4).
    #[arg(long, value_delimiter = ',')]
    pub demonstrations: Vec<Demonstrations>,
    /// Validation items each prompt variant is tried on (default 400; smoke 24).
    #[arg(long, value_parser = at_least_one)]
    pub validation_items: Option<usize>,
    /// Test items (a seeded stratified sample; default all; smoke 40).
    #[arg(long, value_parser = at_least_one)]
    pub test_items: Option<usize>,
    /// Price per million input tokens, USD (for the cost estimate).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub price_in: f64,
    /// Price per million output tokens, USD.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub price_out: f64,
    #[command(flatten)]
    pub out: OutArgs,
}

impl LlmArgs {
    /// The server from OPENAI_BASE_URL / --base-url, else the embedded model.
    pub fn method(&self) -> Llm {
        let mut config = LlmConfig::for_profile(self.data.profile());
        config.price = Price { input_per_million: self.price_in, output_per_million: self.price_out };
        config.decoding = self.decoding;
        if !self.demonstrations.is_empty() {
            config.demonstrations = self.demonstrations.clone();
        }
        if let Some(n) = self.validation_items {
            config.validation_items = n;
        }
        if self.test_items.is_some() {
            config.test_items = self.test_items;
        }
        let from_env = BackendConfig::from_env();
        let backend = BackendConfig {
            base_url: self.base_url.clone().or(from_env.base_url),
            model: self.model.clone().unwrap_or(from_env.model),
            gguf: self.gguf.clone(),
            concurrency: self.concurrency,
            timeout: Duration::from_secs_f64(self.timeout),
            pack_tokens: self.pack_tokens,
            weights: self.weights,
            precision: self.precision.or(from_env.precision),
            memory_budget: self.memory_budget_gib.map(|g| (g * (1u64 << 30) as f64) as u64),
            ..BackendConfig::default()
        };
        Llm { kind: "llm", config, backend }
    }
}

#[derive(Args, Debug)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A term must occur in at least this many training texts.
    #[arg(long, default_value_t = TfidfConfig::default().min_df, value_parser = at_least_one)]
    pub min_df: usize,
    /// Regularisation strengths C to try (chosen on validation).
    #[arg(long, value_delimiter = ',', default_values_t = TfidfConfig::default().cs, value_parser = positive)]
    pub cs: Vec<f64>,
    #[command(flatten)]
    pub out: OutArgs,
}

impl BaselineArgs {
    pub fn method(&self) -> TfidfBaseline {
        TfidfBaseline::new(TfidfConfig { min_df: self.min_df, cs: self.cs.clone(), ..TfidfConfig::default() })
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Directory of the run records (default: results/).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Where the charts go (default: assets/).
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// The README whose results table is regenerated (default: README.md).
    #[arg(long)]
    pub readme: Option<PathBuf>,
    /// US dollars for one human label, in the break-even with the labels
    /// paid for (default: the price table's, $0.05; its note gives the range
    /// $0.01 to $0.10 and where those come from)
    #[arg(long)]
    pub label_price: Option<f64>,
}

#[derive(Args, Debug)]
pub struct AllArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Only these methods, by their names in the table of methods (default:
    /// every method `all` runs); the report still shows every record there is.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A classifier directory written by `slm-vs-llm finetune` (default: the
    /// AG News one, data/finetuned/smollm2-ag-news).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Texts to classify (e.g. "headline. description").
    #[arg(required = true)]
    pub texts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CostsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Methods to time, by their names in the table of methods (default: those
    /// `all` runs, and zero-shot).
    #[arg(long, value_delimiter = ',')]
    pub arms: Vec<String>,
    /// Labelled examples per class each method is fitted on, one seed each
    /// (default 8,32,128; smoke 4). TF-IDF and K-NN are also fitted on all of train.
    #[arg(long, value_delimiter = ',', value_parser = at_least_one)]
    pub budgets: Vec<usize>,
    /// Size of the seeded stratified test sample the costly methods answer
    /// (default 200; smoke 40); TF-IDF and K-NN answer all of test.
    #[arg(long, value_parser = at_least_one)]
    pub test_sample: Option<usize>,
    /// Where costs.json and costs.csv go (default: results/; smoke: data/smoke/results).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl CostsArgs {
    pub fn config(&self, methods: &Methods) -> Result<CurveConfig> {
        let profile = self.data.profile();
        let mut c = CurveConfig::for_profile(profile, methods);
        c.seed = self.data.seed;
        c.arms = if self.arms.is_empty() {
            methods.iter().filter(|k| k.in_all || k.curve == CurvePlan::NoLabels).map(|k| k.name.to_string()).collect()
        } else {
            for arm in &self.arms {
                methods.get(arm)?;
            }
            self.arms.clone()
        };
        let budgets = if self.budgets.is_empty() {
            if profile.is_smoke() {
                vec![4]
            } else {
                vec![8, 32, 128]
            }
        } else {
            self.budgets.clone()
        };
        c.budgets = budgets.clone();
        c.trained_budgets = budgets.clone();
        c.prompted_budgets = budgets.clone();
        c.distilled_budgets = budgets;
        c.max_seeds = Some(1);
        c.sampled_test_items = self.test_sample.unwrap_or(if profile.is_smoke() { 40 } else { 200 });
        Ok(c)
    }
}

#[derive(Args, Debug)]
pub struct CurveArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Methods to run, by their names in the table of methods (default: all).
    /// llm is the LLM with the 4 nearest of the budget's labels as
    /// demonstrations; zero-shot the LLM with no labels.
    #[arg(long, value_delimiter = ',')]
    pub arms: Vec<String>,
    /// Labelled examples per class for the methods that cost seconds a point
    /// (TF-IDF, K-NN), which also get a point on all of train (default
    /// 8,32,128,512,2048; smoke 2,8). Seeds: 5 up to 128, 3 up to 512, 1 above.
    #[arg(long, value_delimiter = ',', value_parser = at_least_one)]
    pub budgets: Vec<usize>,
    /// Labelled examples per class for the methods that train for minutes
    /// (the fine-tuned SLM; default 8,32,128,512; smoke 4). Their full-data
    /// point is their committed run.
    #[arg(long, alias = "finetune-budgets", value_delimiter = ',', value_parser = at_least_one)]
    pub trained_budgets: Vec<usize>,
    /// Seeds of the trained methods up to 128 per class, 1 above (default 3; smoke 1).
    #[arg(long, alias = "finetune-seeds", value_parser = at_least_one)]
    pub trained_seeds: Option<usize>,
    /// Labelled examples per class the prompted methods retrieve their
    /// demonstrations from, and the distillations they or SetFit teach learn
    /// from (default 32; smoke 4), seeded as the trained methods. Their
    /// full-data point is their committed run.
    #[arg(long, alias = "llm-budgets", value_delimiter = ',', value_parser = at_least_one)]
    pub prompted_budgets: Vec<usize>,
    /// Gold labels per class of the distillations with a cheap teacher
    /// (default 8,32,128; smoke 4); their pools are drawn from train.
    #[arg(long, value_delimiter = ',', value_parser = at_least_one)]
    pub distilled_budgets: Vec<usize>,
    /// Size of the seeded stratified test sample the costly methods' points
    /// are scored on (default 2,000; smoke 40); TF-IDF and K-NN use all of test.
    #[arg(long, value_parser = at_least_one)]
    pub test_sample: Option<usize>,
    /// Where curve.json and curve.csv go (default: results/; smoke: data/smoke/results).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure no budget: take the --arms' full-data points again from their
    /// committed runs in results/ and results/seeds/*/ (after a new run, or
    /// another seed of one: `finetune --seed 43 --out results/seeds/43`).
    #[arg(long)]
    pub full_data_only: bool,
}

impl CurveArgs {
    pub fn config(&self, methods: &Methods) -> Result<CurveConfig> {
        let mut c = CurveConfig::for_profile(self.data.profile(), methods);
        c.seed = self.data.seed;
        if !self.arms.is_empty() {
            for arm in &self.arms {
                methods.get(arm)?;
            }
            c.arms = self.arms.clone();
        }
        for (flag, field) in [
            (&self.budgets, &mut c.budgets),
            (&self.trained_budgets, &mut c.trained_budgets),
            (&self.prompted_budgets, &mut c.prompted_budgets),
            (&self.distilled_budgets, &mut c.distilled_budgets),
        ] {
            if !flag.is_empty() {
                *field = flag.clone();
            }
        }
        if let Some(n) = self.trained_seeds {
            c.trained_max_seeds = n;
        }
        if self.full_data_only {
            if self.arms.is_empty() {
                bail!("--full-data-only needs --arms: the arms whose committed runs to take again");
            }
            for arm in &self.arms {
                if !methods.get(arm)?.full_point_is_committed() {
                    bail!("--full-data-only: {arm} has no committed full-data run; the curve measures its points");
                }
            }
            c.trained_budgets.clear();
            c.prompted_budgets.clear();
        }
        if let Some(n) = self.test_sample {
            c.sampled_test_items = n;
        }
        Ok(c)
    }
}

#[derive(Args, Debug)]
pub struct CascadeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The method that answers first, when its confidence clears the
    /// threshold (a name in the table of methods, as `all` runs it).
    #[arg(long)]
    pub first: String,
    /// The method that answers the items the first passes on.
    #[arg(long)]
    pub then: String,
    /// Validation items (a seeded stratified sample) the threshold is chosen
    /// on (default 400, the LLM's own validation sample; smoke 24).
    #[arg(long, value_parser = at_least_one)]
    pub validation_items: Option<usize>,
    /// Test items (a seeded stratified sample; default all; smoke 40).
    #[arg(long, value_parser = at_least_one)]
    pub test_items: Option<usize>,
    #[command(flatten)]
    pub out: OutArgs,
}
