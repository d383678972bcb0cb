//! One contrastive training step of the real all-MiniLM-L6-v2 against
//! sentence-transformers' on the same batch of pairs
//! (tests/fixtures/setfit_step_reference.json, made by
//! benches/python/setfit_step_reference.py): the CosineSimilarityLoss and the
//! gradients of six weights from the embeddings to the last layer. Needs the
//! real weights in data/models; with SLM_REQUIRE_MODELS=1 their absence fails.

use slm_vs_llm::methods::setfit::{train::pair_loss, Pair};
use slm_vs_llm::models::embedder::{EmbedConfig, Embedder};

mod common;

#[test]
fn one_step_matches_sentence_transformers() {
    let Some(weights) = common::real_model_file("all-MiniLM-L6-v2/model.safetensors") else { return };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/setfit_step_reference.json")).expect("fixture is JSON");
    let config = EmbedConfig {
        model: weights.parent().unwrap().display().to_string(),
        max_tokens: fixture["max_seq_length"].as_u64().unwrap() as usize,
        ..EmbedConfig::default()
    };
    let embedder = Embedder::load(&config).unwrap();
    let mut texts = Vec::new();
    let mut pairs = Vec::new();
    for (i, p) in fixture["pairs"].as_array().unwrap().iter().enumerate() {
        texts.push(p["a"].as_str().unwrap());
        texts.push(p["b"].as_str().unwrap());
        pairs.push(Pair { a: 2 * i, b: 2 * i + 1, same: p["target"].as_f64().unwrap() == 1.0 });
    }
    let bert = embedder.trainable().unwrap();
    // Without dropout (the reference ran in eval mode): the step is deterministic.
    let loss = pair_loss(&bert, &embedder, &texts, &pairs, None).unwrap();
    let want = fixture["loss"].as_f64().unwrap();
    let got = loss.to_scalar::<f32>().unwrap() as f64;
    assert!((got - want).abs() < 1e-4 * want.abs().max(1e-3), "loss {got}, sentence-transformers {want}");

    let grads = loss.backward().unwrap();
    let vars: std::collections::HashMap<_, _> = bert.vars().iter().cloned().collect();
    let mut total = 0f64;
    for var in vars.values() {
        if let Some(g) = grads.get(var) {
            total += g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        }
    }
    let want_total = fixture["gradient_norm"].as_f64().unwrap();
    assert!((total.sqrt() / want_total - 1.0).abs() < 1e-3, "gradient norm {} vs {want_total}", total.sqrt());
    for (name, reference) in fixture["gradients"].as_object().unwrap() {
        let g = grads.get(&vars[name]).unwrap_or_else(|| panic!("no gradient for {name}"));
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let norm = g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let want_norm = reference["norm"].as_f64().unwrap();
        assert!((norm / want_norm - 1.0).abs() < 2e-3, "{name}: gradient norm {norm} vs {want_norm}");
        let indices = reference["indices"].as_array().unwrap();
        for (index, value) in indices.iter().zip(reference["values"].as_array().unwrap()) {
            let (got, want) = (g[index.as_u64().unwrap() as usize] as f64, value.as_f64().unwrap());
            assert!((got - want).abs() <= 5e-3 * want.abs() + 1e-7, "{name}[{index}]: {got} vs {want}");
        }
    }
}
