//! `slm-vs-llm`: run the experiments of the notebooks from the command line.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use slm_vs_llm::data::{self, DataConfig, Source};
use slm_vs_llm::eda::{self, Eda, LengthUnit};
use slm_vs_llm::Split;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Embeddings + K-nearest neighbours: embed every split with a sentence
    /// embedder (cached on disk), choose k and the vote on validation, then
    /// predict test once. Writes results/knn.json and results/knn.predictions.csv.
    Knn(KnnArgs),
    /// Fine-tune a small language model (default SmolLM2-135M-Instruct) as a
    /// classifier: train on train, validate during training, save the
    /// classifier (a Hugging Face LlamaForSequenceClassification directory),
    /// evaluate on test. Re-running the same command resumes an interrupted
    /// run from its checkpoint. Writes results/finetune_slm.json and
    /// results/finetune_slm.predictions.csv.
    Finetune(FinetuneArgs),
    /// A generic LLM with structured output: over an OpenAI-compatible server
    /// (OPENAI_BASE_URL: OpenAI, Ollama, vLLM, llama.cpp's server) or, with
    /// none set, the embedded GGUF model in-process with decoding constrained
    /// to the schema. The prompt variant (zero- or few-shot) is chosen on
    /// validation, then test is asked once. Answers are cached, so a re-run
    /// or an interrupted run costs nothing twice. Writes
    /// results/llm_<model>.json and its predictions.
    Llm(LlmArgs),
    /// The classic baseline: TF-IDF over word unigrams and bigrams and a
    /// multinomial logistic regression (L-BFGS), its regularisation chosen on
    /// validation. Writes results/baseline_tfidf.json and its predictions.
    Baseline(BaselineArgs),
    /// Every experiment in order — eda, knn, finetune, baseline, llm — then the
    /// report. Resumes through the caches and checkpoints; --smoke runs it all
    /// on a small sample in minutes (results then go to data/smoke/, the
    /// committed results and the README are left alone).
    All(AllArgs),
    /// The comparison: read every run record in results/, write the charts to
    /// assets/ (accuracy with intervals as PNG and SVG, per-class F1, accuracy
    /// against speed) and the README's results table between its markers.
    Report(ReportArgs),
    /// Classify texts with a classifier saved by `finetune`: prints the class
    /// and the probability of every class.
    Predict(PredictArgs),
    /// Benchmarks: throughput against the Python reference stack and the
    /// hardware limit, measured in one run. Writes results/bench_<name>.json.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
    /// Check executed notebooks for error outputs and panics; exits non-zero
    /// if any cell failed.
    CheckNotebook {
        /// Executed .ipynb files.
        #[arg(required = true)]
        notebooks: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Sentences/s of the embedder on real test texts, against
    /// sentence-transformers (PyTorch, CPU) on the same texts when --python is given.
    Embed {
        #[command(flatten)]
        data: DataArgs,
        /// Sentence embedder directory or Hugging Face id (default as for `knn`).
        #[arg(long)]
        model: Option<String>,
        /// How many test texts (the first ones, in file order).
        #[arg(long, default_value_t = 2000)]
        texts: usize,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// A Python with sentence-transformers (scripts/bench.sh makes one).
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Fine-tuning (tokens/s, batch × 128 tokens, AdamW, embedding and the
    /// bottom layers frozen) and batched inference (test texts/s) of the SLM
    /// classifier, against PyTorch + transformers on the same weights and
    /// token ids when --python is given.
    Slm {
        #[command(flatten)]
        data: DataArgs,
        /// Base model (default as for `finetune`).
        #[arg(long)]
        model: Option<String>,
        /// Test texts (the first ones, in file order) for the token stream and inference.
        #[arg(long, default_value_t = 512)]
        texts: usize,
        #[arg(long, default_value_t = 18)]
        frozen_layers: usize,
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        /// Timed training steps (after one warm-up step). 10-step runs of either
        /// side varied by up to 8% on this machine; 30 halve that.
        #[arg(long, default_value_t = 30)]
        steps: usize,
        #[arg(long, default_value_t = 32)]
        infer_batch: usize,
        /// A Python with torch and transformers (scripts/bench.sh makes one).
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Items/s of the embedded constrained LLM classifier against an
    /// OpenAI-compatible server (OPENAI_BASE_URL; `bash scripts/with-llama-server.sh`
    /// starts llama.cpp's on the same GGUF), same few-shot prompts, no cache.
    Llm {
        #[command(flatten)]
        data: DataArgs,
        /// The embedded model (default: data/models/SmolLM2-135M-Instruct/*.gguf).
        #[arg(long)]
        gguf: Option<PathBuf>,
        /// Test items (seeded stratified sample).
        #[arg(long, default_value_t = 200)]
        items: usize,
        /// The server (default: none, the embedded side only).
        #[arg(long, env = "OPENAI_BASE_URL")]
        base_url: Option<String>,
        #[arg(long, env = "OPENAI_MODEL", default_value = "SmolLM2-135M-Instruct")]
        model: String,
        /// Requests in flight at once on the server.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// The TF-IDF + logistic regression baseline against scikit-learn on the
    /// same split and settings: accuracy difference and fit + predict time.
    Baseline {
        #[command(flatten)]
        data: DataArgs,
        /// Regularisation strength (use the one `baseline` chose on validation).
        #[arg(long, default_value_t = 3.0)]
        c: f64,
        #[arg(long, default_value_t = 2)]
        min_df: usize,
        /// A Python with scikit-learn (scripts/bench.sh makes one).
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// K-NN search time (all test queries against the train split, from the
    /// embedding cache) against the time of its matrix product alone.
    Knn {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Timings are the best of this many runs.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
}

fn run_bench(bench: &BenchCommand) -> Result<()> {
    let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}x"));
    use slm_vs_llm::embed::{EmbedConfig, Embedder};
    let load_embedder = |model: &Option<String>, batch_size: usize| {
        let model = model.clone().unwrap_or_else(slm_vs_llm::embed::default_model);
        Embedder::load(&EmbedConfig { model, batch_size, ..EmbedConfig::default() })
    };
    let (name, report) = match bench {
        BenchCommand::Embed { data, model, texts, batch_size, python, .. } => {
            let ds = data.load()?;
            let mut test = ds.test.clone();
            test.sort_by_key(|e| e.index);
            let texts: Vec<&str> = test.iter().take(*texts).map(|e| e.text.as_str()).collect();
            let embedder = load_embedder(model, *batch_size)?;
            let b = slm_vs_llm::bench::embed(&embedder, &texts, python.as_deref())?;
            println!(
                "Rust (candle): {:.1} sentences/s ({} texts in {:.2} s)",
                b.rust_sentences_per_second, b.texts, b.rust_seconds
            );
            if let (Some(p), Some(r)) = (&b.python, b.ratio) {
                println!(
                    "sentence-transformers: {:.1} sentences/s; ratio Rust/Python {r:.2}x",
                    p["sentences_per_second"].as_f64().unwrap_or(0.0)
                );
            }
            ("embed", serde_json::to_value(&b)?)
        }
        BenchCommand::Knn { data, model, k, repeats, .. } => {
            let ds = data.load()?;
            let embedder = load_embedder(model, 64)?;
            let cache_dir = slm_vs_llm::cache::cache_dir().join("embeddings");
            let emb = slm_vs_llm::knn::embed_splits(&ds, &embedder, &cache_dir, true)?;
            let b = slm_vs_llm::bench::knn(&emb.train, &emb.test, *k, *repeats)?;
            println!(
                "{} queries x {} train x {} dims: matmul {:.3} s ({:.0} GFLOP/s), full search (top-{} + vote) {:.3} s: {:.2}x the matmul",
                b.queries, b.train, b.dim, b.matmul_seconds, b.matmul_gflops, b.k, b.search_seconds, b.ratio
            );
            ("knn", serde_json::to_value(&b)?)
        }
        BenchCommand::Slm {
            data,
            model,
            texts,
            frozen_layers,
            batch_size,
            seq_len,
            steps,
            infer_batch,
            python,
            ..
        } => {
            let ds = data.load()?;
            let mut test = ds.test.clone();
            test.sort_by_key(|e| e.index);
            let texts: Vec<&str> = test.iter().take(*texts).map(|e| e.text.as_str()).collect();
            let model = model.clone().unwrap_or_else(slm_vs_llm::slm::default_model);
            let b = slm_vs_llm::bench::slm(
                &model,
                &texts,
                *frozen_layers,
                *batch_size,
                *seq_len,
                *steps,
                *infer_batch,
                python.as_deref(),
            )?;
            println!(
                "training ({} x {} tokens, {} bottom layers frozen): {:.0} tokens/s, PyTorch {}: {}",
                b.train_batch,
                b.train_seq_len,
                b.frozen_layers,
                b.rust_train_tokens_per_second,
                b.python_train.as_ref().map_or("-".into(), |p| format!("{:.0} tokens/s", p["tokens_per_second"])),
                ratio(b.train_ratio)
            );
            println!(
                "inference (batch {}): {:.1} texts/s, PyTorch {}: {}",
                b.infer_batch,
                b.rust_infer_rows_per_second,
                b.python_infer.as_ref().map_or("-".into(), |p| format!("{:.1} texts/s", p["rows_per_second"])),
                ratio(b.infer_ratio)
            );
            ("slm", serde_json::to_value(&b)?)
        }
        BenchCommand::Llm { data, gguf, items, base_url, model, concurrency, .. } => {
            use slm_vs_llm::llm::local::{self, LocalLlm};
            use slm_vs_llm::llm::openai::{ClientConfig, Endpoint, OpenAiClient};
            let ds = data.load()?;
            let gguf = gguf
                .clone()
                .or_else(local::default_model)
                .context("no GGUF: run `bash scripts/setup.sh` or pass --gguf")?;
            let llm = LocalLlm::load(&gguf, None)?;
            let server = match Endpoint::from_env(base_url.clone(), model.clone(), None) {
                None => None,
                Some(endpoint) => {
                    let config = ClientConfig { concurrency: *concurrency, cache_dir: None, ..Default::default() };
                    Some(std::sync::Arc::new(OpenAiClient::new(endpoint, config)?))
                }
            };
            let b = slm_vs_llm::bench::llm(&ds, &llm, server.as_ref(), *items, data.seed)?;
            println!(
                "{} items, {}: embedded {:.2} items/s ({:.1}% accurate); server {}; agreement {}; ratio {}",
                b.items,
                b.prompt_variant,
                b.embedded.items_per_second,
                100.0 * b.embedded.accuracy,
                b.server.as_ref().map_or("-".into(), |s| format!(
                    "{:.2} items/s ({:.1}% accurate, {} errors)",
                    s.items_per_second,
                    100.0 * s.accuracy,
                    s.errors
                )),
                b.agreement.map_or("-".into(), |a| format!("{:.1}%", 100.0 * a)),
                ratio(b.ratio)
            );
            ("llm", serde_json::to_value(&b)?)
        }
        BenchCommand::Baseline { data, c, min_df, python, .. } => {
            let ds = data.load()?;
            let b = slm_vs_llm::bench::baseline(&ds, *c, *min_df, python.as_deref())?;
            println!(
                "TF-IDF + logistic regression (C = {c}): {:.2}% test accuracy, fit {:.2} s, predict {:.3} s; scikit-learn {}; accuracy difference {} points, speed ratio {}",
                100.0 * b.rust_accuracy,
                b.rust_fit_seconds,
                b.rust_predict_seconds,
                b.python.as_ref().map_or("-".into(), |p| format!("{:.2}% in {:.2} + {:.3} s", 100.0 * p["accuracy"].as_f64().unwrap_or(0.0), p["fit_seconds"], p["predict_seconds"])),
                b.accuracy_difference_points.map_or("-".into(), |d| format!("{d:+.2}")),
                b.speed_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            );
            ("baseline", serde_json::to_value(&b)?)
        }
    };
    let out = match bench {
        BenchCommand::Embed { out, .. }
        | BenchCommand::Knn { out, .. }
        | BenchCommand::Slm { out, .. }
        | BenchCommand::Llm { out, .. }
        | BenchCommand::Baseline { out, .. } => out,
    };
    std::fs::create_dir_all(out)?;
    let path = out.join(format!("bench_{name}.json"));
    let report = serde_json::json!({
        "command": command_line(),
        "hardware": slm_vs_llm::results::Hardware::detect(),
        "result": report,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("Wrote {}", path.display());
    Ok(())
}

/// Which data to use and how to split it.
#[derive(Args, Debug, Clone)]
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
    fn smoke(&self) -> bool {
        self.smoke || data::smoke_requested()
    }

    /// `out`, else `results`, or `data/smoke/results` for a smoke run.
    fn results_dir(&self, out: &Option<PathBuf>) -> PathBuf {
        let default = if self.smoke() { "data/smoke/results" } else { "results" };
        out.clone().unwrap_or_else(|| PathBuf::from(default))
    }

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
        // A smoke run uses the smoke sample and split, as the notebooks do under SMOKE=1.
        let smoke = self.smoke();
        let base = if smoke { DataConfig::smoke() } else { DataConfig::default() };
        let config = DataConfig {
            seed: self.seed,
            test_fraction: self.test_fraction,
            validation_fraction: if smoke { base.validation_fraction } else { self.validation_fraction },
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
    /// Where to write eda.json and the length plots. Default: results, or data/smoke/results for a smoke run
    /// (which must not overwrite the committed results).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct KnnArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Sentence embedder: a local directory or a Hugging Face id
    /// (default: data/models/all-MiniLM-L6-v2 if present, else
    /// sentence-transformers/all-MiniLM-L6-v2). Any BERT-family
    /// sentence-transformers model works.
    #[arg(long)]
    model: Option<String>,
    /// Longer texts are truncated (and counted).
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Candidate k values, chosen on validation.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,7,9,11,15,21,31,41,51")]
    ks: Vec<usize>,
    /// Embedding cache directory (default: SLM_CACHE_DIR or data/cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Where to write knn.json and knn.predictions.csv. Default: results, or data/smoke/results for a smoke run
    /// (which must not overwrite the committed results).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run_knn(args: &KnnArgs) -> Result<()> {
    use slm_vs_llm::embed::{EmbedConfig, Embedder};
    use slm_vs_llm::knn::{self, KnnConfig};
    use slm_vs_llm::results::{self, DataSizes, Hardware, RunRecord};

    let ds = args.data.load()?;
    let defaults = KnnConfig::default();
    let config = KnnConfig {
        embed: EmbedConfig {
            model: args.model.clone().unwrap_or(defaults.embed.model),
            max_tokens: args.max_tokens,
            batch_size: args.batch_size,
        },
        ks: args.ks.clone(),
        ..defaults
    };
    let embedder = Embedder::load(&config.embed)?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| slm_vs_llm::cache::cache_dir().join("embeddings"));
    let emb = knn::embed_splits(&ds, &embedder, &cache_dir, true)?;
    let embedded = emb.stats.texts - emb.stats.cached;
    tracing::info!(
        embedded,
        cached = emb.stats.cached,
        truncated = emb.stats.truncated,
        seconds = emb.stats.seconds,
        "embeddings ready"
    );
    let run = knn::run(&ds, &emb, &config)?;
    let m = &run.metrics;
    println!(
        "K-NN (k = {}, {} vote; validation accuracy {:.2}%): test accuracy {:.2}% [{:.2}, {:.2}], macro-F1 {:.4} on {} items",
        run.chosen.k,
        run.chosen.vote,
        100.0 * run.chosen.accuracy,
        100.0 * m.accuracy,
        100.0 * m.accuracy_ci95[0],
        100.0 * m.accuracy_ci95[1],
        m.macro_f1,
        m.items
    );
    let mut timings = std::collections::BTreeMap::from([("test_search".to_string(), run.search)]);
    if embedded > 0 {
        timings.insert("embedding".into(), slm_vs_llm::metrics::Throughput::new(emb.stats.seconds, embedded));
    }
    let record = RunRecord {
        schema_version: results::SCHEMA_VERSION,
        experiment: "knn".into(),
        method: "embeddings + K-NN".into(),
        model: config.embed.model.rsplit('/').next().unwrap_or_default().to_string(),
        command: command_line(),
        config: serde_json::json!({
            "embedder": config.embed.model,
            "max_tokens": config.embed.max_tokens,
            "batch_size": config.embed.batch_size,
            "ks": config.ks,
            "votes": config.votes,
            "chosen_k": run.chosen.k,
            "chosen_vote": run.chosen.vote,
        }),
        seeds: [("split".to_string(), args.data.seed), ("bootstrap".to_string(), m.bootstrap_seed)].into(),
        data: DataSizes::of(&ds),
        hardware: Hardware::detect(),
        timings,
        metrics: run.metrics.clone(),
        extra: serde_json::json!({
            "validation_accuracy": run.chosen.accuracy,
            "sweep": run.sweep,
            "truncated_texts": emb.stats.truncated,
            "embedded_texts": embedded,
            "cached_texts": emb.stats.cached,
        }),
    };
    let predictions = results::predictions_for(&ds.test, run.predictions.iter().map(|&p| Some(p)));
    let out = args.data.results_dir(&args.out);
    results::write(&out, &record, &predictions)?;
    println!("Wrote {}", results::json_path(&out, "knn").display());
    Ok(())
}

#[derive(Args, Debug)]
struct FinetuneArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Base model: a .gguf file, a Hugging Face directory, or a Hugging Face id
    /// (default: the SmolLM2-135M-Instruct GGUF in data/models if present,
    /// else HuggingFaceTB/SmolLM2-135M-Instruct). Any Llama-family model works.
    #[arg(long)]
    model: Option<String>,
    /// Train on a seeded stratified sample of this many training items
    /// (default 12,000: what fits in 45 minutes on 2 cores; 0 = all).
    #[arg(long)]
    max_train: Option<usize>,
    /// Passes over the training items.
    #[arg(long)]
    epochs: Option<usize>,
    /// Peak learning rate (linear warm-up, cosine decay).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Rows per forward/backward pass.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Passes accumulated per optimiser step.
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Keep the bottom N transformer layers (and the embedding) frozen.
    #[arg(long)]
    frozen_layers: Option<usize>,
    /// Tokens kept per text; longer texts are truncated and counted.
    #[arg(long)]
    max_len: Option<usize>,
    /// Optimiser steps between validation passes.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Optimiser steps between checkpoints.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Where the classifier and its checkpoint go (default: data/finetuned/smollm2-ag-news).
    #[arg(long)]
    model_out: Option<PathBuf>,
    /// Where to write finetune_slm.json and finetune_slm.predictions.csv. Default: results, or data/smoke/results for a smoke run
    /// (which must not overwrite the committed results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Train and validate only: no test evaluation and no results file (for
    /// choosing hyper-parameters on validation).
    #[arg(long)]
    validation_only: bool,
}

fn run_finetune(args: &FinetuneArgs) -> Result<()> {
    use slm_vs_llm::results;
    use slm_vs_llm::slm::experiment::{self, FinetuneConfig};

    let ds = args.data.load()?;
    let smoke = args.data.smoke();
    let mut config = FinetuneConfig::new(args.model.clone().unwrap_or_else(slm_vs_llm::slm::default_model), smoke);
    let t = &mut config.train;
    t.seed = args.data.seed;
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = args.$field { t.$field = v; })* };
    }
    set!(epochs, learning_rate, batch_size, grad_accum, frozen_layers, max_len, eval_every, checkpoint_every);
    if let Some(n) = args.max_train {
        config.max_train = (n > 0).then_some(n);
    }
    let out_dir = args.model_out.clone().unwrap_or_else(|| experiment::default_out_dir(smoke));
    let run = experiment::finetune(&ds, &config, &out_dir, true)?;
    println!(
        "Fine-tuned {} ({} of {} parameters trained, {} steps, {:.0} s, {:.0} tokens/s)",
        run.model_source,
        run.trainable_params,
        run.total_params,
        run.state.step,
        run.state.train_seconds,
        run.state.tokens as f64 / run.state.train_seconds
    );
    for v in &run.state.validation {
        println!(
            "  step {:>5} ({:>6.0} s): validation accuracy {:.2}%, loss {:.4}",
            v.step,
            v.seconds,
            100.0 * v.accuracy,
            v.loss
        );
    }
    if args.validation_only {
        return Ok(());
    }
    let test = run.evaluate_test(&ds, true)?;
    let m = &test.metrics;
    println!("Test {} ({:.1} items/s)", m.summary(), test.throughput.items_per_second);
    println!("{}", m.per_class_table()?);
    let record = run.record(&ds, &test, command_line(), args.data.seed);
    let out = args.data.results_dir(&args.out);
    results::write(&out, &record, &run.predictions(&ds, &test))?;
    println!("Classifier: {}", out_dir.display());
    println!("Wrote {}", results::json_path(&out, "finetune_slm").display());
    Ok(())
}

#[derive(Args, Debug)]
struct LlmArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Server base URL up to /v1 (e.g. https://api.openai.com/v1, http://localhost:11434/v1).
    /// Without one, the embedded GGUF model answers in-process (see --gguf).
    #[arg(long, env = "OPENAI_BASE_URL")]
    base_url: Option<String>,
    /// Model name as the server knows it.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    model: String,
    /// The embedded model when no server is set: a llama-family .gguf file
    /// (default: data/models/SmolLM2-135M-Instruct/*.gguf, from `bash scripts/setup.sh`).
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// Embedded model: tokens of several items run in one forward pass.
    #[arg(long, default_value_t = 512)]
    pack_tokens: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds before a request is abandoned (then retried).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Validation items each prompt variant is tried on.
    #[arg(long)]
    validation_items: Option<usize>,
    /// Test items (a seeded stratified sample; default all).
    #[arg(long)]
    test_items: Option<usize>,
    /// Price per million input tokens, USD (for the cost estimate).
    #[arg(long, default_value_t = 0.0)]
    price_in: f64,
    /// Price per million output tokens, USD.
    #[arg(long, default_value_t = 0.0)]
    price_out: f64,
    /// Where to write llm_<model>.json and its predictions. Default: results, or data/smoke/results for a smoke run
    /// (which must not overwrite the committed results).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl LlmArgs {
    /// The server from OPENAI_BASE_URL / --base-url, else the embedded model.
    fn backend(&self) -> Result<slm_vs_llm::llm::experiment::Backend> {
        use slm_vs_llm::llm::experiment::{Backend, BackendConfig};
        Backend::open(&BackendConfig {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            gguf: self.gguf.clone(),
            concurrency: self.concurrency,
            timeout: std::time::Duration::from_secs_f64(self.timeout),
            pack_tokens: self.pack_tokens,
            cache_dir: Some(slm_vs_llm::cache::cache_dir().join("llm")),
        })
    }

    fn config(&self) -> slm_vs_llm::llm::experiment::LlmConfig {
        use slm_vs_llm::llm::experiment::{LlmConfig, Price};
        let mut config = LlmConfig::new(self.data.smoke());
        config.seed = self.data.seed;
        config.price = Price { input_per_million: self.price_in, output_per_million: self.price_out };
        if let Some(n) = self.validation_items {
            config.validation_items = n;
        }
        if self.test_items.is_some() {
            config.test_items = self.test_items;
        }
        config
    }
}

fn run_llm(args: &LlmArgs) -> Result<()> {
    use slm_vs_llm::llm::experiment;
    use slm_vs_llm::results;

    let backend = args.backend()?;
    let ds = args.data.load()?;
    let run = experiment::run(&ds, &backend, &args.config(), true)?;
    for s in &run.sweep {
        println!("validation, {}: {:.2}% ({} invalid of {})", s.variant, 100.0 * s.accuracy, s.invalid, s.items);
    }
    let m = &run.metrics;
    let (mean, p95) = run.latency();
    println!(
        "{} ({}), {}: test accuracy {:.2}% [{:.2}, {:.2}] on {} items, macro-F1 {:.4}, {} invalid; latency mean {:.3} s, p95 {:.3} s",
        backend.model(), backend.endpoint(), run.chosen, 100.0 * m.accuracy, 100.0 * m.accuracy_ci95[0],
        100.0 * m.accuracy_ci95[1], m.items, m.macro_f1, m.invalid, mean, p95
    );
    let record = run.record(&ds, &backend, command_line(), args.data.seed);
    let name = record.experiment.clone();
    let out = args.data.results_dir(&args.out);
    results::write(&out, &record, &run.predictions())?;
    println!("Wrote {}", results::json_path(&out, &name).display());
    Ok(())
}

#[derive(Args, Debug)]
struct BaselineArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A term must occur in at least this many training texts.
    #[arg(long, default_value_t = 2)]
    min_df: usize,
    /// Regularisation strengths C to try (chosen on validation).
    #[arg(long, value_delimiter = ',', default_value = "1,3,10,30,100")]
    cs: Vec<f64>,
    /// Where to write baseline_tfidf.json and baseline_tfidf.predictions.csv. Default: results, or data/smoke/results for a smoke run
    /// (which must not overwrite the committed results).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run_baseline(args: &BaselineArgs) -> Result<()> {
    use slm_vs_llm::baseline::{self, BaselineConfig};
    use slm_vs_llm::results::{self, DataSizes, Hardware, RunRecord};
    let ds = args.data.load()?;
    let config = BaselineConfig { min_df: args.min_df, cs: args.cs.clone(), ..Default::default() };
    let run = baseline::run(&ds, &config)?;
    let m = &run.metrics;
    println!(
        "TF-IDF + logistic regression ({} features, C = {} chosen on validation): test accuracy {:.2}% [{:.2}, {:.2}], macro-F1 {:.4} on {} items; fit {:.2} s, predict {:.3} s",
        run.features, run.chosen_c, 100.0 * m.accuracy, 100.0 * m.accuracy_ci95[0], 100.0 * m.accuracy_ci95[1],
        m.macro_f1, m.items, run.fit.seconds, run.predict.seconds
    );
    let record = RunRecord {
        schema_version: results::SCHEMA_VERSION,
        experiment: "baseline_tfidf".into(),
        method: "TF-IDF + logistic regression".into(),
        model: "word 1-2-grams".into(),
        command: command_line(),
        config: serde_json::to_value(&config)?,
        seeds: [("split".to_string(), args.data.seed), ("bootstrap".to_string(), m.bootstrap_seed)].into(),
        data: DataSizes::of(&ds),
        hardware: Hardware::detect(),
        timings: [("training".to_string(), run.fit), ("test_inference".to_string(), run.predict)].into(),
        metrics: m.clone(),
        extra: serde_json::json!({ "features": run.features, "chosen_c": run.chosen_c, "sweep": run.sweep }),
    };
    let predictions = results::predictions_for(&ds.test, run.predictions.iter().map(|&p| Some(p)));
    let out = args.data.results_dir(&args.out);
    results::write(&out, &record, &predictions)?;
    println!("Wrote {}", results::json_path(&out, "baseline_tfidf").display());
    Ok(())
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Directory of the run records.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where the charts go.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    /// The README whose results table is regenerated.
    #[arg(long, default_value = "README.md")]
    readme: PathBuf,
}

fn run_report(args: &ReportArgs) -> Result<()> {
    let table = slm_vs_llm::report::write(&args.results, &args.assets, Some(&args.readme))?;
    print!("{table}");
    println!("Wrote the charts to {} and the table to {}", args.assets.display(), args.readme.display());
    Ok(())
}

#[derive(Args, Debug)]
struct AllArgs {
    #[command(flatten)]
    data: DataArgs,
}

/// An Args struct with every flag at its default.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&command.get_matches_from(["defaults"])).expect("defaults parse")
}

fn run_all(args: &AllArgs) -> Result<()> {
    let smoke = args.data.smoke();
    let results = args.data.results_dir(&None);
    let assets = PathBuf::from(if smoke { "data/smoke/assets" } else { "assets" });
    let data = args.data.clone();
    type Step<'a> = (&'a str, Box<dyn Fn() -> Result<()> + 'a>);
    let steps: Vec<Step> = vec![
        ("eda", Box::new(|| run_eda(&EdaArgs { data: data.clone(), out: Some(results.clone()) }))),
        ("knn", Box::new(|| run_knn(&KnnArgs { data: data.clone(), out: Some(results.clone()), ..defaults() }))),
        (
            "finetune",
            Box::new(|| run_finetune(&FinetuneArgs { data: data.clone(), out: Some(results.clone()), ..defaults() })),
        ),
        (
            "baseline",
            Box::new(|| run_baseline(&BaselineArgs { data: data.clone(), out: Some(results.clone()), ..defaults() })),
        ),
        // The embedded GGUF model, or the server in OPENAI_BASE_URL.
        ("llm", Box::new(|| run_llm(&LlmArgs { data: data.clone(), out: Some(results.clone()), ..defaults() }))),
    ];
    let mut times = Vec::new();
    let started = std::time::Instant::now();
    for (i, (name, step)) in steps.iter().enumerate() {
        println!("\n=== [{}/{}] {name} ===", i + 1, steps.len() + 1);
        let t = std::time::Instant::now();
        step().with_context(|| format!("step {name} failed; re-run `slm-vs-llm all` to resume"))?;
        times.push((name.to_string(), t.elapsed().as_secs_f64()));
    }
    println!("\n=== [{}/{}] report ===", steps.len() + 1, steps.len() + 1);
    let readme = PathBuf::from("README.md");
    let table = slm_vs_llm::report::write(&results, &assets, (!smoke).then_some(readme.as_path()))?;
    println!("\nWall time per step:");
    for (name, seconds) in &times {
        println!("  {name:<10} {:>8.1} min", seconds / 60.0);
    }
    println!("  {:<10} {:>8.1} min\n", "total", started.elapsed().as_secs_f64() / 60.0);
    print!("{table}");
    println!("\nResults in {}, charts in {}", results.display(), assets.display());
    Ok(())
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A classifier directory written by `slm-vs-llm finetune` (default: data/finetuned/smollm2-ag-news).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Texts to classify (e.g. "headline. description").
    #[arg(required = true)]
    texts: Vec<String>,
}

fn run_predict(args: &PredictArgs) -> Result<()> {
    use slm_vs_llm::slm::{classifier, experiment};
    let dir = args.model.clone().unwrap_or_else(|| experiment::default_out_dir(false));
    let classifier = classifier::Classifier::load(&dir).with_context(|| {
        format!("loading the classifier in {} (make one with `slm-vs-llm finetune`)", dir.display())
    })?;
    let texts: Vec<String> = args.texts.iter().map(|t| data::normalize(t)).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, probs) in texts.iter().zip(classifier.predict(&texts)?) {
        let best = classifier::argmax(&probs);
        let all: Vec<String> = classifier.labels.iter().zip(&probs).map(|(l, p)| format!("{l} {p:.3}")).collect();
        println!("{}\t{}\t{}", classifier.labels[best], all.join("  "), text);
    }
    Ok(())
}

/// The command as typed, for the results record.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("slm-vs-llm {}", args.join(" "))
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
    let out = args.data.results_dir(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("eda.json");
    std::fs::write(&json, serde_json::to_string_pretty(&eda.summary)?)
        .with_context(|| format!("writing {}", json.display()))?;
    for (unit, name) in [(LengthUnit::Words, "eda_length_words.svg"), (LengthUnit::Chars, "eda_length_chars.svg")] {
        eda::length_distribution_chart(&ds, Split::Train, unit)?.save(&out.join(name))?;
    }
    println!("\nLeakage check: {}", eda.summary.leakage());
    println!("\nWrote {} and the length plots in {}", json.display(), out.display());
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
    // Keep freed pages instead of returning them to the OS: candle frees and
    // reallocates large buffers every op, and re-faulting fresh pages cost
    // ~10% of inference. 15 is mi_option_purge_delay (mimalloc v2 and v3).
    // Binary-only on purpose: called from the library, mimalloc gets linked
    // into the notebooks' evcxr cell libraries, and their dlopen fails.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    }
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
        Command::Knn(args) => run_knn(&args),
        Command::Finetune(args) => run_finetune(&args),
        Command::Baseline(args) => run_baseline(&args),
        Command::Llm(args) => run_llm(&args),
        Command::Report(args) => run_report(&args),
        Command::All(args) => run_all(&args),
        Command::Predict(args) => run_predict(&args),
        Command::Bench { bench } => run_bench(&bench),
        Command::CheckNotebook { notebooks } => check_notebooks(&notebooks),
    }
}
