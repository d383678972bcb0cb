//! SmolLM2-135M-Instruct from its GGUF file against transformers' own GGUF
//! loader on the same file (tests/fixtures/smollm2_reference.json, made by
//! benches/python/slm_reference.py): token ids equal, next-token logits equal
//! to float rounding. Needs data/models (scripts/setup.sh); with
//! SLM_REQUIRE_MODELS=1 their absence is a failure, not a skip.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use slm_vs_llm::models::llama::{self, Llama, Trainable};

mod common;

fn gguf() -> Option<PathBuf> {
    common::real_model_file("SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn gguf_model_matches_transformers() {
    let Some(path) = gguf() else { return };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/smollm2_reference.json")).expect("fixture is JSON");
    let loaded = llama::load(path.to_str().unwrap(), &Device::Cpu).expect("loads");
    assert_eq!(loaded.config.num_hidden_layers, 30);
    assert_eq!((loaded.config.num_attention_heads, loaded.config.num_key_value_heads), (9, 3));
    let model = Llama::new(loaded.config.clone(), &loaded.weights, None, Trainable::NONE, 0).expect("builds");
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let ids = loaded.tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(ids, expected, "token ids of {text:?}");

        let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits: Vec<f32> = model.lm_logits(&x, &[ids.len()]).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        let top_ids = case["top_ids"].as_array().unwrap();
        let top_logits = case["top_logits"].as_array().unwrap();
        for (id, value) in top_ids.iter().zip(top_logits).take(5) {
            let (id, value) = (id.as_u64().unwrap() as usize, value.as_f64().unwrap() as f32);
            assert!(
                (logits[id] - value).abs() < 2e-3,
                "{text:?}: logit of {id} is {}, transformers {value}",
                logits[id]
            );
        }
        let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(best, top_ids[0].as_u64().unwrap() as usize, "{text:?}: argmax");
    }
}
