//! Benchmarks against the physical limit and the Python reference stack,
//! measured in one run on one machine.

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

/// Embedding throughput of this crate and, when a Python is given, of
/// sentence-transformers on the same texts, in interleaved rounds.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    pub texts: usize,
    pub batch_size: usize,
    /// Sentences/s of each side in each round: `f32`, `int8`, `sentence-transformers`.
    pub rounds: Rounds,
    /// Median over the rounds.
    pub rust_sentences_per_second: f64,
    /// sentence-transformers' own report (JSON) from the last round, when run.
    pub python: Option<serde_json::Value>,
    /// Rust f32 throughput / Python throughput.
    pub ratio: Option<Ratio>,
    /// The same texts with the encoder's matmuls in int8.
    pub int8: LowPrecisionEmbed,
}

/// Embedding in int8, against f32 and sentence-transformers.
#[derive(Debug, Clone, Serialize)]
pub struct LowPrecisionEmbed {
    /// The int8 kernel that ran (`avx2`, `avx512-vnni`, `portable`).
    pub kernel: String,
    /// Median over the rounds.
    pub sentences_per_second: f64,
    /// int8 / f32 throughput.
    pub speedup: Ratio,
    /// int8 throughput / sentence-transformers'.
    pub ratio: Option<Ratio>,
    /// Cosine of each text's int8 embedding to its f32 one: the smallest and the mean.
    pub cosine_min: f64,
    pub cosine_mean: f64,
}

/// `rounds` interleaved rounds of: `embedder` on `texts` (after a one-batch
/// warm-up), the same model in `int8`, and with `python`,
/// `benches/python/bench_embed.py` on the same texts.
pub fn embed(
    embedder: &Embedder,
    int8: &Embedder,
    texts: &[&str],
    rounds: usize,
    python: Option<&Path>,
) -> Result<EmbedBench> {
    let config = embedder.config().clone();
    let sps = |seconds: f64| texts.len() as f64 / seconds;
    let (mut f32_embeddings, mut int8_embeddings, mut python_report) = (None, None, None);
    let mut run_f32 = || -> Result<f64> {
        let (seconds, embeddings) = time_embedding(embedder, texts)?;
        f32_embeddings = Some(embeddings);
        Ok(sps(seconds))
    };
    let mut run_int8 = || -> Result<f64> {
        let (seconds, embeddings) = time_embedding(int8, texts)?;
        int8_embeddings = Some(embeddings);
        Ok(sps(seconds))
    };
    let rounds = in_temp_dir(|dir| {
        let texts_path = dir.join("texts.json");
        if python.is_some() {
            std::fs::write(&texts_path, serde_json::to_string(texts)?)?;
        }
        let mut run_python = python.map(|py| {
            let report = &mut python_report;
            let args = [
                config.model.clone(),
                texts_path.display().to_string(),
                config.batch_size.to_string(),
                config.max_tokens.to_string(),
            ];
            move || -> Result<f64> {
                let out = python_json(py, "bench_embed.py", &args.each_ref().map(String::as_str))?;
                let sps =
                    out["sentences_per_second"].as_f64().context("bench_embed.py gave no sentences_per_second")?;
                *report = Some(out);
                Ok(sps)
            }
        });
        let mut sides: Vec<Measure> = vec![("f32", &mut run_f32), ("int8", &mut run_int8)];
        if let Some(run) = run_python.as_mut() {
            sides.push(("sentence-transformers", run));
        }
        Rounds::run(rounds, &mut sides)
    })?;
    let (f32, low, torch) = (0, 1, 2);
    let (Some(f32_embeddings), Some(int8_embeddings)) = (f32_embeddings, int8_embeddings) else {
        bail!("no embeddings were made");
    };
    let cosines: Vec<f64> = (0..texts.len())
        .map(|i| crate::models::embedder::cosine(f32_embeddings.row(i), int8_embeddings.row(i)) as f64)
        .collect();
    let int8 = LowPrecisionEmbed {
        kernel: crate::kernels::int8::Kernel::best().name().into(),
        sentences_per_second: rounds.median(low),
        speedup: rounds.ratio(low, f32),
        ratio: python.map(|_| rounds.ratio(low, torch)),
        cosine_min: cosines.iter().copied().fold(f64::INFINITY, f64::min),
        cosine_mean: cosines.iter().sum::<f64>() / cosines.len().max(1) as f64,
    };
    Ok(EmbedBench {
        texts: texts.len(),
        batch_size: config.batch_size,
        rust_sentences_per_second: rounds.median(f32),
        ratio: python.map(|_| rounds.ratio(f32, torch)),
        python: python_report,
        rounds,
        int8,
    })
}

/// Seconds to embed `texts` after a one-batch warm-up, and the embeddings.
fn time_embedding(embedder: &Embedder, texts: &[&str]) -> Result<(f64, Embeddings)> {
    embedder.embed(&texts[..embedder.config().batch_size.min(texts.len())])?;
    let start = Instant::now();
    let embeddings = embedder.embed(texts)?;
    Ok((start.elapsed().as_secs_f64(), embeddings))
}

/// `f` with a fresh directory for the files a Python side reads, removed afterwards whatever `f` returned.
fn in_temp_dir<T>(f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = std::env::temp_dir().join(format!("slm-vs-llm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = f(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// K-NN search time against the time of its matrix product alone.
#[derive(Debug, Clone, Serialize)]
pub struct KnnBench {
    pub queries: usize,
    pub train: usize,
    pub dim: usize,
    pub k: usize,
    /// `queries × train` similarity products only, as one matmul per chunk.
    pub matmul_seconds: f64,
    pub matmul_gflops: f64,
    /// Products, top-k and vote: what a prediction costs.
    pub search_seconds: f64,
    /// search / matmul; the target is at most 1.5.
    pub ratio: f64,
}

/// Best of `repeats` timings of the full search and of its matmul.
pub fn knn(train: &Embeddings, queries: &Embeddings, k: usize, repeats: usize) -> Result<KnnBench> {
    let knn = KnnClassifier::new(train, vec![0; train.len()], 1)?;
    let train_t = Tensor::from_slice(&train.data, (train.len(), train.dim), &Device::Cpu)?.t()?;
    let q = Tensor::from_slice(&queries.data, (queries.len(), queries.dim), &Device::Cpu)?;
    let best = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut best = f64::MAX;
        for _ in 0..repeats.max(1) {
            let start = Instant::now();
            f()?;
            best = best.min(start.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let chunk = 512;
    let matmul_seconds = best(&mut || {
        for start in (0..queries.len()).step_by(chunk) {
            let len = chunk.min(queries.len() - start);
            let scores = q.narrow(0, start, len)?.matmul(&train_t)?;
            std::hint::black_box(scores);
        }
        Ok(())
    })?;
    let search_seconds = best(&mut || {
        let n = knn.neighbours(queries, k)?;
        std::hint::black_box(n.iter().map(|n| knn.vote(n, k, Vote::Majority)).sum::<usize>());
        Ok(())
    })?;
    let flops = 2.0 * queries.len() as f64 * train.len() as f64 * train.dim as f64;
    Ok(KnnBench {
        queries: queries.len(),
        train: train.len(),
        dim: train.dim,
        k,
        matmul_seconds,
        matmul_gflops: flops / matmul_seconds / 1e9,
        search_seconds,
        ratio: search_seconds / matmul_seconds,
    })
}

/// Fine-tuning and inference throughput of the SLM classifier, and of
/// PyTorch + transformers on the same weights and token ids, in interleaved rounds.
#[derive(Debug, Clone, Serialize)]
pub struct SlmBench {
    pub model: String,
    pub frozen_layers: usize,
    pub trainable_params: usize,
    pub train_batch: usize,
    pub train_seq_len: usize,
    /// Timed steps per round and side.
    pub train_steps: usize,
    /// Training tokens/s in each round: `candle`, `PyTorch`.
    pub train: Rounds,
    /// Median over the rounds.
    pub rust_train_tokens_per_second: f64,
    pub rust_train_peak_memory_mib: Option<f64>,
    pub infer_rows: usize,
    pub infer_batch: usize,
    /// Inference texts/s in each round: `f32`, `int8`, `PyTorch`.
    pub infer: Rounds,
    /// Median over the rounds.
    pub rust_infer_rows_per_second: f64,
    /// The same inference with the blocks' matmuls in int8.
    pub int8_infer: LowPrecisionInfer,
    /// PyTorch's own reports (JSON) from the last round.
    pub python_train: Option<serde_json::Value>,
    pub python_infer: Option<serde_json::Value>,
    /// Rust / PyTorch, > 1 means faster.
    pub train_ratio: Option<Ratio>,
    pub infer_ratio: Option<Ratio>,
}

/// Classifier inference in int8, against f32 and PyTorch.
#[derive(Debug, Clone, Serialize)]
pub struct LowPrecisionInfer {
    pub kernel: String,
    /// Median over the rounds.
    pub rows_per_second: f64,
    /// int8 / f32 throughput.
    pub speedup: Ratio,
    /// int8 throughput / PyTorch's.
    pub ratio: Option<Ratio>,
    /// Share of texts whose most probable class is the f32 model's.
    pub same_predictions: f64,
    /// Largest difference of a class probability from f32's.
    pub max_probability_difference: f64,
}

/// What `slm` measures and how.
#[derive(Debug, Clone)]
pub struct SlmBenchConfig {
    pub frozen_layers: usize,
    pub batch: usize,
    pub seq_len: usize,
    /// Timed training steps per round and side.
    pub steps: usize,
    pub infer_batch: usize,
    pub rounds: usize,
}

/// Training: `steps` AdamW steps on `batch` × `seq_len` rows cut from the
/// token stream of `texts` (no padding). Inference: the texts themselves,
/// length-sorted, `infer_batch` at a time. With `python`, the same on
/// PyTorch through `benches/python/bench_slm.py`, with the weights written
/// as a Hugging Face directory. Each is measured in `rounds` interleaved rounds.
pub fn slm(model: &str, texts: &[&str], config: &SlmBenchConfig, python: Option<&Path>) -> Result<SlmBench> {
    use crate::methods::finetune::batch::encode_all;
    use crate::methods::finetune::classifier::{predict_probs, Classifier};
    use crate::methods::finetune::optim::{AdamW, AdamWConfig};
    use crate::models::llama::{Llama, Trainable};
    let SlmBenchConfig { frozen_layers, batch, seq_len, steps, infer_batch, rounds } = config.clone();

    let loaded = crate::models::llama::load(model, &Device::Cpu)?;
    let pad = loaded.tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
    let encoded = encode_all(&loaded.tokenizer, texts, 128)?;
    let stream: Vec<u32> = encoded.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let rows: Vec<Vec<u32>> = stream.chunks_exact(seq_len).take(batch * steps.max(1)).map(<[u32]>::to_vec).collect();
    if rows.len() < batch {
        bail!("{} texts give fewer than {batch} rows of {seq_len} tokens", texts.len());
    }
    let trainable = Trainable { embedding: false, frozen_layers };
    let llama = Llama::from_weights(loaded.config.clone(), loaded.weights, Some(4), trainable, 0)?;
    let classifier = Classifier {
        model: llama,
        tokenizer: loaded.tokenizer,
        labels: (0..4).map(|i| i.to_string()).collect(),
        max_len: 128,
        pad,
    };
    // PyTorch starts from the weights as loaded, before any Rust step.
    in_temp_dir(|dir| {
        let python = python.map(|py| PythonSlm::write(py, dir, &classifier, &rows, &encoded, config)).transpose()?;
        let llama = &classifier.model;
        let params =
            llama.trainable_params().into_iter().map(|p| (p.name.clone(), p.var().cloned().expect("var"))).collect();
        let mut optimiser = AdamW::new(params, AdamWConfig::default());
        let trainable_params = optimiser.num_params();
        let labels = Tensor::new(vec![0u32; batch], &Device::Cpu)?;
        let batches: Vec<Tensor> = rows
            .chunks_exact(batch)
            .map(|b| Tensor::from_vec(b.concat(), (batch, seq_len), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let lengths = vec![seq_len; batch];
        let mut step = |x: &Tensor| -> Result<()> {
            let loss = candle_nn::loss::cross_entropy(&llama.classify(x, &lengths)?, &labels)?;
            optimiser.accumulate(&loss.backward()?, 1.0)?;
            optimiser.step(1e-4, 1.0)?;
            Ok(())
        };
        step(&batches[0])?;
        let tokens = (steps * batch * seq_len) as f64;
        let mut rust_train = || -> Result<f64> {
            let start = Instant::now();
            for i in 0..steps {
                step(&batches[i % batches.len()])?;
            }
            Ok(tokens / start.elapsed().as_secs_f64())
        };
        let mut python_train = None;
        let mut torch_train = python.as_ref().map(|py| {
            let report = &mut python_train;
            move || py.run("train", report, "tokens_per_second")
        });
        let mut sides: Vec<Measure> = vec![("candle", &mut rust_train)];
        if let Some(run) = torch_train.as_mut() {
            sides.push(("PyTorch", run));
        }
        let train = Rounds::run(rounds, &mut sides)?;
        drop(sides);
        let rust_train_peak_memory_mib = crate::results::peak_memory_mib();

        let int8_model = llama.detached()?.with_precision(crate::kernels::Precision::Int8)?;
        let (mut f32_probs, mut int8_probs) = (Vec::new(), Vec::new());
        let infer = |model: &Llama, probs: &mut Vec<Vec<f32>>| -> Result<f64> {
            predict_probs(model, &encoded[..infer_batch.min(encoded.len())], pad, infer_batch, false)?;
            let start = Instant::now();
            *probs = predict_probs(model, &encoded, pad, infer_batch, false)?;
            Ok(encoded.len() as f64 / start.elapsed().as_secs_f64())
        };
        let mut infer_f32 = || infer(llama, &mut f32_probs);
        let mut infer_int8 = || infer(&int8_model, &mut int8_probs);
        let mut python_infer = None;
        let mut torch_infer = python.as_ref().map(|py| {
            let report = &mut python_infer;
            move || py.run("infer", report, "rows_per_second")
        });
        let mut sides: Vec<Measure> = vec![("f32", &mut infer_f32), ("int8", &mut infer_int8)];
        if let Some(run) = torch_infer.as_mut() {
            sides.push(("PyTorch", run));
        }
        let infer = Rounds::run(rounds, &mut sides)?;
        drop(sides);
        let same =
            f32_probs.iter().zip(&int8_probs).filter(|(a, b)| crate::method::argmax(a) == crate::method::argmax(b));
        let max_difference = f32_probs
            .iter()
            .zip(&int8_probs)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64))
            .fold(0.0, f64::max);
        let (f32, low, torch) = (0, 1, 2);
        let int8_infer = LowPrecisionInfer {
            kernel: crate::kernels::int8::Kernel::best().name().into(),
            rows_per_second: infer.median(low),
            speedup: infer.ratio(low, f32),
            ratio: python.as_ref().map(|_| infer.ratio(low, torch)),
            same_predictions: same.count() as f64 / encoded.len().max(1) as f64,
            max_probability_difference: max_difference,
        };
        Ok(SlmBench {
            model: model.to_string(),
            frozen_layers,
            trainable_params,
            train_batch: batch,
            train_seq_len: seq_len,
            train_steps: steps,
            rust_train_tokens_per_second: train.median(0),
            train_ratio: python.as_ref().map(|_| train.ratio(0, 1)),
            train,
            rust_train_peak_memory_mib,
            infer_rows: encoded.len(),
            infer_batch,
            rust_infer_rows_per_second: infer.median(f32),
            infer_ratio: python.as_ref().map(|_| infer.ratio(f32, torch)),
            infer,
            int8_infer,
            python_train,
            python_infer,
        })
    })
}

/// `benches/python/bench_slm.py` with the model and token ids written for it.
struct PythonSlm<'a> {
    python: &'a Path,
    dir: &'a Path,
    config: &'a SlmBenchConfig,
}

impl<'a> PythonSlm<'a> {
    fn write(
        python: &'a Path,
        dir: &'a Path,
        classifier: &crate::methods::finetune::classifier::Classifier,
        rows: &[Vec<u32>],
        encoded: &[crate::methods::finetune::batch::Encoded],
        config: &'a SlmBenchConfig,
    ) -> Result<Self> {
        classifier.save(&dir.join("model"))?;
        std::fs::write(dir.join("train.json"), serde_json::to_string(rows)?)?;
        let mut sorted: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.ids).collect();
        sorted.sort_by_key(|ids| std::cmp::Reverse(ids.len()));
        // The same length-sorted, right-padded batches as the Rust side.
        let padded: Vec<Vec<Vec<u32>>> = sorted
            .chunks(config.infer_batch)
            .map(|c| {
                let longest = c[0].len();
                c.iter()
                    .map(|ids| {
                        ids.iter().copied().chain(std::iter::repeat_n(classifier.pad, longest - ids.len())).collect()
                    })
                    .collect()
            })
            .collect();
        std::fs::write(dir.join("infer.json"), serde_json::to_string(&padded)?)?;
        Ok(Self { python, dir, config })
    }

    /// One run in `mode` (`train` or `infer`): keeps its report, returns its `throughput` field.
    fn run(&self, mode: &str, report: &mut Option<serde_json::Value>, throughput: &str) -> Result<f64> {
        let (steps, batch) = match mode {
            "train" => (self.config.steps, self.config.batch),
            _ => (0, self.config.infer_batch),
        };
        let (model, ids) = (self.dir.join("model"), self.dir.join(format!("{mode}.json")));
        let args = [
            model.to_str().unwrap_or_default(),
            ids.to_str().unwrap_or_default(),
            mode,
            &self.config.frozen_layers.to_string(),
            &steps.to_string(),
            &batch.to_string(),
        ];
        let value = python_json(self.python, "bench_slm.py", &args)?;
        let result = value[throughput].as_f64().with_context(|| format!("bench_slm.py gave no {throughput}"))?;
        *report = Some(value);
        Ok(result)
    }
}

fn python_json(python: &Path, script: &str, args: &[&str]) -> Result<serde_json::Value> {
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

/// The TF-IDF + logistic regression baseline against scikit-learn's
/// `TfidfVectorizer` + `LogisticRegression` on the same split and settings.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineBench {
    pub c: f64,
    pub min_df: usize,
    /// Fits + predictions per second of each side in each round: `Rust`, `scikit-learn`.
    pub rounds: Rounds,
    /// The rest is from the last round.
    pub rust_features: usize,
    pub rust_accuracy: f64,
    pub rust_fit_seconds: f64,
    /// L-BFGS iterations of the fit (scikit-learn's are in `python`).
    pub rust_iterations: usize,
    pub rust_predict_seconds: f64,
    pub python: Option<serde_json::Value>,
    /// Rust accuracy − scikit-learn accuracy, in points.
    pub accuracy_difference_points: Option<f64>,
    /// scikit-learn (fit + predict) time / Rust time: > 1 means Rust is faster.
    pub speed_ratio: Option<Ratio>,
}

/// What one Rust fit + predict of the baseline gave.
struct BaselineRun {
    features: usize,
    accuracy: f64,
    fit_seconds: f64,
    iterations: usize,
    predict_seconds: f64,
}

/// `rounds` interleaved rounds of the Rust baseline's fit + predict and, with
/// `python`, scikit-learn's through `benches/python/bench_baseline.py`.
pub fn baseline(
    ds: &crate::data::Dataset,
    c: f64,
    min_df: usize,
    rounds: usize,
    python: Option<&Path>,
) -> Result<BaselineBench> {
    use crate::methods::tfidf::{LogisticRegression, Tfidf, TfidfConfig};
    let (train, test) = (crate::data::texts(&ds.train), crate::data::texts(&ds.test));
    let train_y = crate::data::labels(&ds.train);
    // scikit-learn's defaults on both sides: tol 1e-4, and max_iter as bench_baseline.py sets it.
    let tol = TfidfConfig::default().tol;
    let mut last = None;
    let mut rust = || -> Result<f64> {
        let start = Instant::now();
        let (tfidf, x_train) = Tfidf::fit_transform(&train, min_df);
        let model = LogisticRegression::fit(&x_train, &train_y, ds.num_classes(), tfidf.len(), c, 1000, tol);
        let fit_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let predictions = model.predict(&tfidf.transform(&test));
        let predict_seconds = start.elapsed().as_secs_f64();
        let correct = predictions.iter().zip(&ds.test).filter(|(p, e)| **p == e.label).count();
        let run = BaselineRun {
            features: tfidf.len(),
            accuracy: correct as f64 / ds.test.len() as f64,
            fit_seconds,
            iterations: model.iterations,
            predict_seconds,
        };
        last = Some(run);
        Ok(1.0 / (fit_seconds + predict_seconds))
    };
    let mut python_report = None;
    let rounds = in_temp_dir(|dir| {
        let data = dir.join("data.json");
        fn pairs(split: &[crate::data::Example]) -> Vec<(&str, usize)> {
            split.iter().map(|e| (e.text.as_str(), e.label)).collect()
        }
        if python.is_some() {
            let json = serde_json::json!({"train": pairs(&ds.train), "test": pairs(&ds.test)});
            std::fs::write(&data, serde_json::to_string(&json)?)?;
        }
        let mut sklearn = python.map(|py| {
            let (data, report) = (&data, &mut python_report);
            move || -> Result<f64> {
                let args = [data.to_str().unwrap_or_default(), &c.to_string(), &min_df.to_string()];
                let out = python_json(py, "bench_baseline.py", &args)?;
                let seconds = out["fit_seconds"].as_f64().zip(out["predict_seconds"].as_f64()).map(|(f, p)| f + p);
                *report = Some(out);
                seconds.map(|s| 1.0 / s).context("bench_baseline.py gave no fit_seconds or predict_seconds")
            }
        });
        let mut sides: Vec<Measure> = vec![("Rust", &mut rust)];
        if let Some(run) = sklearn.as_mut() {
            sides.push(("scikit-learn", run));
        }
        Rounds::run(rounds, &mut sides)
    })?;
    let run = last.context("the Rust side never ran")?;
    let accuracy_difference_points =
        python_report.as_ref().and_then(|p| p["accuracy"].as_f64()).map(|a| 100.0 * (run.accuracy - a));
    Ok(BaselineBench {
        c,
        min_df,
        speed_ratio: python.map(|_| rounds.ratio(0, 1)),
        rounds,
        rust_features: run.features,
        rust_accuracy: run.accuracy,
        rust_fit_seconds: run.fit_seconds,
        rust_iterations: run.iterations,
        rust_predict_seconds: run.predict_seconds,
        python: python_report,
        accuracy_difference_points,
    })
}

#[derive(Debug, Serialize)]
pub struct LlmSide {
    pub items_per_second: f64,
    pub seconds: f64,
    pub accuracy: f64,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct LlmBench {
    pub items: usize,
    pub prompt_variant: String,
    pub embedded: LlmSide,
    pub server: Option<LlmSide>,
    pub server_url: Option<String>,
    pub server_concurrency: Option<usize>,
    /// Items on which both gave the same label.
    pub agreement: Option<f64>,
    /// Embedded items/s ÷ server items/s: > 1 means the embedded classifier is faster.
    pub ratio: Option<f64>,
}

/// The embedded constrained classifier against an OpenAI-compatible server
/// (llama.cpp's, serving the same GGUF) on the same few-shot prompts of a
/// seeded stratified test sample; no response cache on either side.
pub fn llm(
    ds: &crate::data::Dataset,
    local: &crate::methods::llm::local::LocalLlm,
    server: Option<&std::sync::Arc<crate::methods::llm::openai::OpenAiClient>>,
    items: usize,
    seed: u64,
) -> Result<LlmBench> {
    use crate::methods::llm::prompt::answer_schema;
    use crate::methods::llm::{messages, shots, Decoding};
    // Greedy decoding, as the server decodes: the same work on both sides.
    let decoding = Decoding::ConstrainedGreedy;
    let sample = crate::data::stratified_sample(ds.test.clone(), ds.num_classes(), items, seed);
    let examples = shots(&ds.train, ds.num_classes(), 1, seed);
    let questions: Vec<_> = sample.iter().map(|e| messages(&ds.task, &e.text, &ds.labels, &examples)).collect();
    let schema = answer_schema(&ds.labels, false);
    let side = |answers: &[crate::methods::llm::openai::Answer], seconds: f64| LlmSide {
        items_per_second: sample.len() as f64 / seconds,
        seconds,
        accuracy: answers.iter().zip(&sample).filter(|(a, e)| a.label == Some(e.label)).count() as f64
            / sample.len().max(1) as f64,
        errors: answers.iter().filter(|a| a.error.is_some()).count(),
    };
    let hidden = indicatif::ProgressBar::hidden();
    let start = Instant::now();
    let local_answers = local.ask_all(&questions, &schema, &ds.labels, decoding, &hidden)?;
    let embedded = side(&local_answers, start.elapsed().as_secs_f64());
    let (server_side, agreement, url, concurrency) = match server {
        None => (None, None, None, None),
        Some(client) => {
            let start = Instant::now();
            let answers = client.ask_all(questions.clone(), &schema, &ds.labels, &hidden)?;
            let s = side(&answers, start.elapsed().as_secs_f64());
            let same = answers.iter().zip(&local_answers).filter(|(a, b)| a.label.is_some() && a.label == b.label);
            let agreement = same.count() as f64 / sample.len().max(1) as f64;
            (Some(s), Some(agreement), Some(client.endpoint().display_url()), Some(client.concurrency()))
        }
    };
    Ok(LlmBench {
        items: sample.len(),
        prompt_variant: "1 fixed demonstration per class, constrained greedy decoding".to_string(),
        ratio: server_side.as_ref().map(|s| embedded.items_per_second / s.items_per_second),
        embedded,
        server: server_side,
        server_url: url,
        server_concurrency: concurrency,
        agreement,
    })
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
