//! `slm-vs-llm bench ...`: throughput against the Python reference stack
//! and the hardware limit, measured in one run.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::kernels::Precision;
use clap::Subcommand;

use super::{command_line, DataArgs};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
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
        /// Rounds of f32, int8 and sentence-transformers, interleaved; ratios
        /// are taken within each round and the median is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
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
        /// Timed training steps per round and side (after one warm-up step).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 32)]
        infer_batch: usize,
        /// Rounds of each side, interleaved (the first side rotates), so that
        /// the load of other processes falls on both; ratios are taken within
        /// each round and the median is reported with the range.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// A Python with torch and transformers (scripts/bench.sh makes one).
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Items/s of the embedded constrained LLM classifier against an
    /// OpenAI-compatible server (OPENAI_BASE_URL; `bash scripts/with-llama-server.sh`
    /// starts llama.cpp's on the same GGUF), same few-shot prompts, both greedy, no cache.
    Llm {
        #[command(flatten)]
        data: DataArgs,
        /// The embedded model (default: data/models/SmolLM2-135M-Instruct/*.gguf).
        #[arg(long)]
        gguf: Option<PathBuf>,
        /// Test items (seeded stratified sample).
        #[arg(long, default_value_t = 200)]
        items: usize,
        /// The server (default: OPENAI_BASE_URL; neither: the embedded side only).
        #[arg(long)]
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
        /// Rounds of each side (fit + predict), interleaved; the speed ratio is
        /// taken within each round and the median is reported with the range.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
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
        /// Precision of the embeddings searched (the search itself is f32 either way;
        /// int8 embeds an uncached split faster).
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
        /// Timings are the best of this many runs.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
}

/// The CPU and the SIMD features the kernels can use: every figure is for this kind of machine.
fn print_cpu() {
    let hw = crate::results::Hardware::detect();
    println!(
        "CPU: {}; features: {}; int8 kernel: {}",
        hw.summary(),
        crate::kernels::cpu_features().join(" "),
        crate::kernels::int8::Kernel::best().name()
    );
}

/// ", PyTorch 123.4 tokens/s; ratio 0.98x (rounds 0.95-1.01x)": the median of
/// `rounds`' side `side`, or nothing when that side did not run.
fn python_side(rounds: &crate::bench::Rounds, side: usize, unit: &str, ratio: Option<crate::bench::Ratio>) -> String {
    match (rounds.sides.get(side), ratio) {
        (Some(reference), Some(ratio)) => {
            format!(", {} {:.1} {unit}/s; ratio {ratio}", reference.name, rounds.median(side))
        }
        _ => String::new(),
    }
}

pub fn run_bench(bench: &BenchCommand) -> Result<()> {
    let ratio = |r: Option<crate::bench::Ratio>| r.map_or("-".to_string(), |r| r.to_string());
    use crate::models::embedder::{EmbedConfig, Embedder};
    let load_embedder = |model: &Option<String>, batch_size: usize, precision: Precision| {
        let model = model.clone().unwrap_or_else(crate::models::embedder::default_model);
        Embedder::load(&EmbedConfig { model, batch_size, precision, ..EmbedConfig::default() })
    };
    print_cpu();
    let (name, report) = match bench {
        BenchCommand::Embed { data, model, texts, batch_size, rounds, python, .. } => {
            let ds = data.load()?;
            let mut test = ds.test.clone();
            test.sort_by_key(|e| e.index);
            let texts: Vec<&str> = test.iter().take(*texts).map(|e| e.text.as_str()).collect();
            let embedder = load_embedder(model, *batch_size, Precision::F32)?;
            let int8 = load_embedder(model, *batch_size, Precision::Int8)?;
            let b = crate::bench::embed(&embedder, &int8, &texts, *rounds, python.as_deref())?;
            println!(
                "{} texts, median of {} rounds: Rust f32 (candle) {:.1} sentences/s{}",
                b.texts,
                rounds,
                b.rust_sentences_per_second,
                python_side(&b.rounds, 2, "sentences", b.ratio)
            );
            let q = &b.int8;
            println!(
                "Rust int8 ({} kernel): {:.1} sentences/s, {} f32, {} sentence-transformers; cosine to f32: min {:.5}, mean {:.5}",
                q.kernel,
                q.sentences_per_second,
                q.speedup,
                ratio(q.ratio),
                q.cosine_min,
                q.cosine_mean
            );
            ("embed", serde_json::to_value(&b)?)
        }
        BenchCommand::Knn { data, model, k, precision, repeats, .. } => {
            let ds = data.load()?;
            let embedder = load_embedder(model, 64, *precision)?;
            let embedder = crate::methods::knn::CachedEmbedder::new(embedder)?;
            let (train, _) = embedder.embed(&crate::data::texts(&ds.train), true)?;
            let (test, _) = embedder.embed(&crate::data::texts(&ds.test), true)?;
            let b = crate::bench::knn(&train, &test, *k, *repeats)?;
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
            rounds,
            python,
            ..
        } => {
            let ds = data.load()?;
            let mut test = ds.test.clone();
            test.sort_by_key(|e| e.index);
            let texts: Vec<&str> = test.iter().take(*texts).map(|e| e.text.as_str()).collect();
            let model = model.clone().unwrap_or_else(crate::models::llama::default_model);
            let config = crate::bench::SlmBenchConfig {
                frozen_layers: *frozen_layers,
                batch: *batch_size,
                seq_len: *seq_len,
                steps: *steps,
                infer_batch: *infer_batch,
                rounds: *rounds,
            };
            let b = crate::bench::slm(&model, &texts, &config, python.as_deref())?;
            println!(
                "training ({} x {} tokens, {} bottom layers frozen), median of {rounds} rounds: {:.0} tokens/s{}",
                b.train_batch,
                b.train_seq_len,
                b.frozen_layers,
                b.rust_train_tokens_per_second,
                python_side(&b.train, 1, "tokens", b.train_ratio)
            );
            println!(
                "inference (batch {}): {:.1} texts/s{}",
                b.infer_batch,
                b.rust_infer_rows_per_second,
                python_side(&b.infer, 2, "texts", b.infer_ratio)
            );
            let q = &b.int8_infer;
            println!(
                "inference in int8 ({} kernel): {:.1} texts/s, {} f32, {} PyTorch; same class as f32 for {:.1}% (largest probability difference {:.4})",
                q.kernel,
                q.rows_per_second,
                q.speedup,
                ratio(q.ratio),
                100.0 * q.same_predictions,
                q.max_probability_difference
            );
            ("slm", serde_json::to_value(&b)?)
        }
        BenchCommand::Llm { data, gguf, items, base_url, model, concurrency, .. } => {
            use crate::methods::llm::local::{self, LocalLlm};
            use crate::methods::llm::openai::{ClientConfig, Endpoint, OpenAiClient};
            let ds = data.load()?;
            let gguf = gguf
                .clone()
                .or_else(local::default_model)
                .context("no GGUF: run `bash scripts/setup.sh` or pass --gguf")?;
            let llm = LocalLlm::load(&gguf, None)?;
            let base_url = base_url.clone().or(crate::methods::llm::BackendConfig::from_env().base_url);
            let server = match Endpoint::from_env(base_url, model.clone(), None) {
                None => None,
                Some(endpoint) => {
                    let config = ClientConfig { concurrency: *concurrency, cache_dir: None, ..Default::default() };
                    Some(std::sync::Arc::new(OpenAiClient::new(endpoint, config)?))
                }
            };
            let b = crate::bench::llm(&ds, &llm, server.as_ref(), *items, data.seed)?;
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
                b.ratio.map_or("-".into(), |r| format!("{r:.2}x"))
            );
            ("llm", serde_json::to_value(&b)?)
        }
        BenchCommand::Baseline { data, c, min_df, rounds, python, .. } => {
            let ds = data.load()?;
            let b = crate::bench::baseline(&ds, *c, *min_df, *rounds, python.as_deref())?;
            println!(
                "TF-IDF + logistic regression (C = {c}), last of {rounds} rounds: {:.2}% test accuracy, fit {:.2} s ({} L-BFGS iterations), predict {:.3} s; scikit-learn {}; accuracy difference {} points, speed ratio {}",
                100.0 * b.rust_accuracy,
                b.rust_fit_seconds,
                b.rust_iterations,
                b.rust_predict_seconds,
                b.python.as_ref().map_or("-".into(), |p| {
                    let number = |key: &str| p[key].as_f64().unwrap_or(f64::NAN);
                    format!(
                        "{:.2}% in {:.2} s ({} iterations) + {:.3} s",
                        100.0 * number("accuracy"),
                        number("fit_seconds"),
                        p["iterations"],
                        number("predict_seconds")
                    )
                }),
                b.accuracy_difference_points.map_or("-".into(), |d| format!("{d:+.2}")),
                ratio(b.speed_ratio),
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
        "hardware": crate::results::Hardware::detect(),
        "result": crate::results::project_relative(report),
    });
    crate::results::write_whole(&path, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())?;
    println!("Wrote {}", path.display());
    Ok(())
}
