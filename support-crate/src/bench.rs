//! Benchmarks against the physical limit and the Python reference stack,
//! measured in one run on one machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::embed::{Embedder, Embeddings};
use crate::knn::{KnnClassifier, Vote};

/// Embedding throughput of this crate and, when a Python is given, of
/// sentence-transformers on the same texts.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    pub texts: usize,
    pub batch_size: usize,
    pub rust_seconds: f64,
    pub rust_sentences_per_second: f64,
    /// sentence-transformers' own report (JSON), when run.
    pub python: Option<serde_json::Value>,
    /// Rust throughput / Python throughput.
    pub ratio: Option<f64>,
}

/// Time `embedder` on `texts` (after a one-batch warm-up) and, with
/// `python`, `benches/python/bench_embed.py` on the same texts.
pub fn embed(embedder: &Embedder, texts: &[&str], python: Option<&Path>) -> Result<EmbedBench> {
    let config = embedder.config().clone();
    embedder.embed(&texts[..config.batch_size.min(texts.len())])?;
    let start = Instant::now();
    embedder.embed(texts)?;
    let rust_seconds = start.elapsed().as_secs_f64();
    let rust_sps = texts.len() as f64 / rust_seconds;
    let python =
        python.map(|py| python_embed(py, &config.model, texts, config.batch_size, config.max_tokens)).transpose()?;
    let ratio = python.as_ref().and_then(|p| p["sentences_per_second"].as_f64()).map(|p| rust_sps / p);
    Ok(EmbedBench {
        texts: texts.len(),
        batch_size: config.batch_size,
        rust_seconds,
        rust_sentences_per_second: rust_sps,
        python,
        ratio,
    })
}

fn python_embed(python: &Path, model: &str, texts: &[&str], batch: usize, max_len: usize) -> Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/python/bench_embed.py");
    let dir = tempfile_dir()?;
    let texts_path = dir.join("texts.json");
    std::fs::write(&texts_path, serde_json::to_string(texts)?)?;
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(model)
        .arg(&texts_path)
        .arg(batch.to_string())
        .arg(max_len.to_string())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!("the Python benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("the Python benchmark printed {line:?}"))
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
