//! Benchmarks against the physical limit and the Python reference stack,
//! measured in one run on one machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::methods::knn::{KnnClassifier, Vote};
use crate::models::{Embedder, Embeddings};

/// Embedding throughput of this crate and, when a Python is given, of
/// sentence-transformers on the same texts.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    pub texts: usize,
    pub batch_size: usize,
    /// Every time is the best of this many runs (f32 and int8 alternating).
    pub repeats: usize,
    pub rust_seconds: f64,
    pub rust_sentences_per_second: f64,
    /// sentence-transformers' own report (JSON), when run.
    pub python: Option<serde_json::Value>,
    /// Rust throughput / Python throughput.
    pub ratio: Option<f64>,
    /// The same texts with the encoder's matmuls in int8.
    pub int8: Option<LowPrecisionEmbed>,
}

/// Embedding in int8, against f32 and sentence-transformers.
#[derive(Debug, Clone, Serialize)]
pub struct LowPrecisionEmbed {
    /// The int8 kernel that ran (`avx2`, `avx512-vnni`, `portable`).
    pub kernel: String,
    pub seconds: f64,
    pub sentences_per_second: f64,
    /// int8 / f32 throughput.
    pub speedup: f64,
    /// int8 throughput / sentence-transformers'.
    pub ratio: Option<f64>,
    /// Cosine of each text's int8 embedding to its f32 one: the smallest and the mean.
    pub cosine_min: f64,
    pub cosine_mean: f64,
}

/// Time `embedder` on `texts` (after a one-batch warm-up); with `int8`, the
/// same model in int8 too; with `python`, `benches/python/bench_embed.py` on
/// the same texts.
pub fn embed(
    embedder: &Embedder,
    int8: Option<&Embedder>,
    texts: &[&str],
    repeats: usize,
    python: Option<&Path>,
) -> Result<EmbedBench> {
    let config = embedder.config().clone();
    let repeats = repeats.max(1);
    // Alternating runs, so that neither precision gets the quieter moments or the warmer allocator.
    let mut best: [Option<(f64, Embeddings)>; 2] = [None, None];
    for _ in 0..repeats {
        for (slot, embedder) in best.iter_mut().zip([Some(embedder), int8]) {
            let Some(embedder) = embedder else { continue };
            let (seconds, embeddings) = time_embedding(embedder, texts)?;
            if slot.as_ref().is_none_or(|(s, _)| seconds < *s) {
                *slot = Some((seconds, embeddings));
            }
        }
    }
    let [Some((rust_seconds, f32_embeddings)), int8_best] = best else { unreachable!("the f32 run always runs") };
    let rust_sps = texts.len() as f64 / rust_seconds;
    let python = python
        .map(|py| python_embed(py, &config.model, texts, config.batch_size, config.max_tokens, repeats))
        .transpose()?;
    let python_sps = python.as_ref().and_then(|p| p["sentences_per_second"].as_f64());
    let int8 = int8_best
        .map(|(seconds, embeddings)| -> Result<LowPrecisionEmbed> {
            let cosines: Vec<f64> = (0..texts.len())
                .map(|i| {
                    let (a, b) = (f32_embeddings.row(i), embeddings.row(i));
                    crate::models::embedder::cosine(a, b) as f64
                })
                .collect();
            let sps = texts.len() as f64 / seconds;
            Ok(LowPrecisionEmbed {
                kernel: crate::kernels::int8::Kernel::best().name().into(),
                seconds,
                sentences_per_second: sps,
                speedup: sps / rust_sps,
                ratio: python_sps.map(|p| sps / p),
                cosine_min: cosines.iter().copied().fold(f64::INFINITY, f64::min),
                cosine_mean: cosines.iter().sum::<f64>() / cosines.len().max(1) as f64,
            })
        })
        .transpose()?;
    Ok(EmbedBench {
        texts: texts.len(),
        batch_size: config.batch_size,
        repeats,
        rust_seconds,
        rust_sentences_per_second: rust_sps,
        python,
        ratio: python_sps.map(|p| rust_sps / p),
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

fn python_embed(
    python: &Path,
    model: &str,
    texts: &[&str],
    batch: usize,
    max_len: usize,
    repeats: usize,
) -> Result<serde_json::Value> {
    let dir = tempfile_dir()?;
    let texts_path = dir.join("texts.json");
    std::fs::write(&texts_path, serde_json::to_string(texts)?)?;
    let result = python_json(
        python,
        "bench_embed.py",
        &[
            model,
            texts_path.to_str().unwrap_or_default(),
            &batch.to_string(),
            &max_len.to_string(),
            &repeats.to_string(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("slm-vs-llm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
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
/// PyTorch + transformers on the same weights and token ids.
#[derive(Debug, Clone, Serialize)]
pub struct SlmBench {
    pub model: String,
    pub frozen_layers: usize,
    pub trainable_params: usize,
    pub train_batch: usize,
    pub train_seq_len: usize,
    pub train_steps: usize,
    pub rust_train_tokens_per_second: f64,
    pub rust_train_peak_memory_mib: Option<f64>,
    pub infer_rows: usize,
    pub infer_batch: usize,
    pub rust_infer_rows_per_second: f64,
    /// The same inference with the blocks' matmuls in int8.
    pub int8_infer: Option<LowPrecisionInfer>,
    pub python_train: Option<serde_json::Value>,
    pub python_infer: Option<serde_json::Value>,
    /// Rust / PyTorch, > 1 means faster.
    pub train_ratio: Option<f64>,
    pub infer_ratio: Option<f64>,
}

/// Classifier inference in int8, against f32 and PyTorch.
#[derive(Debug, Clone, Serialize)]
pub struct LowPrecisionInfer {
    pub kernel: String,
    pub rows_per_second: f64,
    /// int8 / f32 throughput.
    pub speedup: f64,
    /// int8 throughput / PyTorch's.
    pub ratio: Option<f64>,
    /// Share of texts whose most probable class is the f32 model's.
    pub same_predictions: f64,
    /// Largest difference of a class probability from f32's.
    pub max_probability_difference: f64,
}

/// Training: `steps` AdamW steps on `batch` × `seq_len` rows cut from the
/// token stream of `texts` (no padding). Inference: the texts themselves,
/// length-sorted, `infer_batch` at a time. With `python`, the same on
/// PyTorch through `benches/python/bench_slm.py`, with the weights written
/// as a Hugging Face directory.
#[allow(clippy::too_many_arguments)]
pub fn slm(
    model: &str,
    texts: &[&str],
    frozen_layers: usize,
    batch: usize,
    seq_len: usize,
    steps: usize,
    infer_batch: usize,
    python: Option<&Path>,
) -> Result<SlmBench> {
    use crate::methods::finetune::batch::encode_all;
    use crate::methods::finetune::classifier::{predict_probs, Classifier};
    use crate::methods::finetune::optim::{AdamW, AdamWConfig};
    use crate::models::llama::{Llama, Trainable};

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
    let start = Instant::now();
    for i in 0..steps {
        step(&batches[i % batches.len()])?;
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let rust_train_peak_memory_mib = crate::results::peak_memory_mib();

    let classifier = Classifier {
        model: llama,
        tokenizer: loaded.tokenizer,
        labels: (0..4).map(|i| i.to_string()).collect(),
        max_len: 128,
        pad,
    };
    let int8_model = classifier.model.detached()?.with_precision(crate::kernels::Precision::Int8)?;
    // Best of two, alternating, as the embedding benchmark does.
    let (mut infer_seconds, mut int8_seconds) = (f64::INFINITY, f64::INFINITY);
    let (mut f32_probs, mut int8_probs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (model, seconds, probs) in
            [(&classifier.model, &mut infer_seconds, &mut f32_probs), (&int8_model, &mut int8_seconds, &mut int8_probs)]
        {
            predict_probs(model, &encoded[..infer_batch.min(encoded.len())], pad, infer_batch, false)?;
            let start = Instant::now();
            *probs = predict_probs(model, &encoded, pad, infer_batch, false)?;
            *seconds = seconds.min(start.elapsed().as_secs_f64());
        }
    }
    let same = f32_probs.iter().zip(&int8_probs).filter(|(a, b)| crate::method::argmax(a) == crate::method::argmax(b));
    let max_difference = f32_probs
        .iter()
        .zip(&int8_probs)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64))
        .fold(0.0, f64::max);

    let (python_train, python_infer) = match python {
        None => (None, None),
        Some(py) => {
            let dir = tempfile_dir()?;
            classifier.save(&dir.join("model"))?;
            let train_ids = dir.join("train_ids.json");
            std::fs::write(&train_ids, serde_json::to_string(&rows)?)?;
            let infer_ids = dir.join("infer_ids.json");
            let mut sorted: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.ids).collect();
            sorted.sort_by_key(|ids| std::cmp::Reverse(ids.len()));
            // The same length-sorted, right-padded batches as the Rust side.
            let padded: Vec<Vec<Vec<u32>>> = sorted
                .chunks(infer_batch)
                .map(|c| {
                    let longest = c[0].len();
                    c.iter()
                        .map(|ids| ids.iter().copied().chain(std::iter::repeat_n(pad, longest - ids.len())).collect())
                        .collect()
                })
                .collect();
            std::fs::write(&infer_ids, serde_json::to_string(&padded)?)?;
            let run = |mode: &str, ids: &Path, steps: usize, batch: usize| {
                python_json(
                    py,
                    "bench_slm.py",
                    &[
                        dir.join("model").to_str().unwrap_or_default(),
                        ids.to_str().unwrap_or_default(),
                        mode,
                        &frozen_layers.to_string(),
                        &steps.to_string(),
                        &batch.to_string(),
                    ],
                )
            };
            let train = run("train", &train_ids, steps, batch)?;
            let infer = run("infer", &infer_ids, 0, infer_batch)?;
            let _ = std::fs::remove_dir_all(&dir);
            (Some(train), Some(infer))
        }
    };
    let rust_train_tps = (steps * batch * seq_len) as f64 / train_seconds;
    let rust_infer_rps = encoded.len() as f64 / infer_seconds;
    let python_infer_rps = python_infer.as_ref().and_then(|p| p["rows_per_second"].as_f64());
    let int8_rps = encoded.len() as f64 / int8_seconds;
    let int8_infer = Some(LowPrecisionInfer {
        kernel: crate::kernels::int8::Kernel::best().name().into(),
        rows_per_second: int8_rps,
        speedup: int8_rps / rust_infer_rps,
        ratio: python_infer_rps.map(|p| int8_rps / p),
        same_predictions: same.count() as f64 / encoded.len().max(1) as f64,
        max_probability_difference: max_difference,
    });
    Ok(SlmBench {
        model: model.to_string(),
        frozen_layers,
        trainable_params,
        train_batch: batch,
        train_seq_len: seq_len,
        train_steps: steps,
        rust_train_tokens_per_second: rust_train_tps,
        rust_train_peak_memory_mib,
        infer_rows: encoded.len(),
        infer_batch,
        rust_infer_rows_per_second: rust_infer_rps,
        int8_infer,
        train_ratio: python_train.as_ref().and_then(|p| p["tokens_per_second"].as_f64()).map(|p| rust_train_tps / p),
        infer_ratio: python_infer_rps.map(|p| rust_infer_rps / p),
        python_train,
        python_infer,
    })
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
    pub speed_ratio: Option<f64>,
}

pub fn baseline(ds: &crate::data::Dataset, c: f64, min_df: usize, python: Option<&Path>) -> Result<BaselineBench> {
    use crate::methods::tfidf::{LogisticRegression, Tfidf, TfidfConfig};
    let (train, test) = (crate::data::texts(&ds.train), crate::data::texts(&ds.test));
    let train_y = crate::data::labels(&ds.train);
    // scikit-learn's defaults on both sides: tol 1e-4, and max_iter as bench_baseline.py sets it.
    let tol = TfidfConfig::default().tol;
    let start = Instant::now();
    let (tfidf, x_train) = Tfidf::fit_transform(&train, min_df);
    let model = LogisticRegression::fit(&x_train, &train_y, ds.num_classes(), tfidf.len(), c, 1000, tol);
    let rust_fit_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let predictions = model.predict(&tfidf.transform(&test));
    let rust_predict_seconds = start.elapsed().as_secs_f64();
    let correct = predictions.iter().zip(&ds.test).filter(|(p, e)| **p == e.label).count();
    let rust_accuracy = correct as f64 / ds.test.len() as f64;
    let python = match python {
        None => None,
        Some(py) => {
            let dir = tempfile_dir()?;
            fn pairs(split: &[crate::data::Example]) -> Vec<(&str, usize)> {
                split.iter().map(|e| (e.text.as_str(), e.label)).collect()
            }
            let path = dir.join("data.json");
            std::fs::write(
                &path,
                serde_json::to_string(&serde_json::json!({"train": pairs(&ds.train), "test": pairs(&ds.test)}))?,
            )?;
            let out = python_json(
                py,
                "bench_baseline.py",
                &[path.to_str().unwrap_or_default(), &c.to_string(), &min_df.to_string()],
            );
            let _ = std::fs::remove_dir_all(&dir);
            Some(out?)
        }
    };
    let accuracy_difference_points =
        python.as_ref().and_then(|p| p["accuracy"].as_f64()).map(|a| 100.0 * (rust_accuracy - a));
    let speed_ratio = python
        .as_ref()
        .and_then(|p| Some(p["fit_seconds"].as_f64()? + p["predict_seconds"].as_f64()?))
        .map(|t| t / (rust_fit_seconds + rust_predict_seconds));
    Ok(BaselineBench {
        c,
        min_df,
        rust_features: tfidf.len(),
        rust_accuracy,
        rust_fit_seconds,
        rust_iterations: model.iterations,
        rust_predict_seconds,
        python,
        accuracy_difference_points,
        speed_ratio,
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
    let questions: Vec<_> = sample.iter().map(|e| messages(&e.text, &ds.labels, &examples)).collect();
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
