//! all-MiniLM-L6-v2 through candle against sentence-transformers' own
//! embeddings of the same sentences (tests/fixtures/minilm_reference.json,
//! made by benches/python/embed_reference.py). Needs the real weights in
//! data/models (scripts/setup.sh fetches them); with SLM_REQUIRE_MODELS=1
//! (set by scripts/test.sh) their absence is a failure, not a skip.

use std::path::PathBuf;

use slm_vs_llm::models::embedder::{cosine, EmbedConfig, Embedder};

mod common;

fn model_dir() -> Option<PathBuf> {
    let weights = common::real_model_file("all-MiniLM-L6-v2/model.safetensors")?;
    weights.parent().map(|d| d.to_path_buf())
}

/// The fixture's sentences and sentence-transformers' embeddings of them.
fn fixture() -> (Vec<&'static str>, Vec<Vec<f32>>) {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).expect("fixture is JSON");
    let sentences = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &*String::leak(s.as_str().unwrap().to_string()))
        .collect();
    let reference = fixture["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    (sentences, reference)
}

#[test]
fn matches_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let (sentences, reference) = fixture();

    let embedder = Embedder::load(&EmbedConfig { model: dir.display().to_string(), ..EmbedConfig::default() }).unwrap();
    assert_eq!(embedder.dim, 384);
    let batch = embedder.embed(&sentences).unwrap();
    for (i, r) in reference.iter().enumerate() {
        let c = cosine(batch.row(i), r);
        assert!(c >= 0.9999, "sentence {i}: cosine {c}");
        let norm: f32 = batch.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "sentence {i} is not L2-normalised: {norm}");
    }
    // Padding inside a batch must not change an embedding.
    let alone = embedder.embed(&sentences[3..4]).unwrap();
    assert!(cosine(alone.row(0), batch.row(3)) > 0.99999);
    assert_eq!(embedder.count_truncated(&sentences).unwrap(), 0);
}

/// The int8 encoder on every int8 kernel this CPU has: each embedding within
/// cosine 0.995 of sentence-transformers' f32 one, and the kernels identical.
#[test]
fn int8_embeddings_stay_within_cosine_0_995_of_f32_on_every_kernel() {
    use slm_vs_llm::kernels::int8::Kernel;
    use slm_vs_llm::kernels::Precision;
    let Some(dir) = model_dir() else { return };
    let (sentences, reference) = fixture();
    let config = EmbedConfig { model: dir.display().to_string(), precision: Precision::Int8, ..EmbedConfig::default() };
    let embedder = Embedder::load(&config).unwrap();
    assert_eq!(embedder.config().precision, Precision::Int8);
    let mut by_kernel = Vec::new();
    for kernel in Kernel::available() {
        let batch = slm_vs_llm::kernels::int8::with_kernel(kernel, || embedder.embed(&sentences)).unwrap();
        for (i, r) in reference.iter().enumerate() {
            let c = cosine(batch.row(i), r);
            assert!(c >= 0.995, "{}: sentence {i}: cosine {c} to f32", kernel.name());
        }
        by_kernel.push((kernel, batch));
    }
    for (kernel, batch) in &by_kernel[1..] {
        assert_eq!(batch, &by_kernel[0].1, "{} and {} differ", kernel.name(), by_kernel[0].0.name());
    }
}
