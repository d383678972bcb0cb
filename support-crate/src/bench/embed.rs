//! Sentence embeddings: candle (f32 and int8) against sentence-transformers.

use super::*;

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
