//! SetFit's machinery on a tiny random BERT (written to disk by the test:
//! config, a word-level tokenizer, safetensors) and synthetic two-topic texts:
//! contrastive tuning lowers the pair loss, pulls same-class texts together,
//! and the fitted method labels held-out texts through the seam.

use std::collections::HashMap;
use std::path::Path;

use slm_vs_llm::data::{Example, Task};
use slm_vs_llm::method::{Method, RunContext, TrainingSet};
use slm_vs_llm::methods::setfit::{sample_pairs, train, ContrastiveConfig, FittedSetFit, SetFit, SetFitConfig};
use slm_vs_llm::models::bert_train::{random_weights, tiny_config};
use slm_vs_llm::models::embedder::{cosine, EmbedConfig, Embedder};
use slm_vs_llm::paths::Profile;

const SPORT: [&str; 6] = ["match", "goal", "team", "coach", "league", "score"];
const MONEY: [&str; 6] = ["stock", "market", "bank", "profit", "shares", "trade"];
const FILLER: [&str; 6] = ["the", "a", "today", "new", "big", "after"];

/// A tiny encoder directory: config.json, tokenizer.json (whitespace word
/// level over the synthetic vocabulary) and model.safetensors.
fn write_tiny_encoder(dir: &Path) {
    let words: Vec<&str> =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].into_iter().chain(SPORT).chain(MONEY).chain(FILLER).collect();
    let vocab: serde_json::Map<String, serde_json::Value> =
        words.iter().enumerate().map(|(i, w)| (w.to_string(), serde_json::json!(i))).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let config = tiny_config(words.len(), 2);
    std::fs::write(dir.join("config.json"), serde_json::to_string(&config_json(words.len())).unwrap()).unwrap();
    let weights: HashMap<String, candle_core::Tensor> = random_weights(&config, 3).unwrap();
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
}

fn config_json(vocab: usize) -> serde_json::Value {
    serde_json::json!({
        "vocab_size": vocab, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "model_type": "bert"
    })
}

/// Texts of one topic word among fillers: the class is the topic.
fn examples(n: usize, offset: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let j = i + offset;
            let (topic, label) = if j.is_multiple_of(2) { (SPORT, 0) } else { (MONEY, 1) };
            let text =
                format!("{} {} {} {}", FILLER[j % 6], topic[(j / 2) % 6], FILLER[(j / 3) % 6], FILLER[(j / 5) % 6]);
            Example::new(j, label, String::new(), text)
        })
        .collect()
}

fn embed_config(dir: &Path) -> EmbedConfig {
    EmbedConfig { model: dir.display().to_string(), max_tokens: 32, ..EmbedConfig::default() }
}

/// Mean cosine within classes minus mean cosine across them.
fn separation(embedder: &Embedder, examples: &[Example]) -> f32 {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let e = embedder.embed(&texts).unwrap();
    let (mut within, mut across) = ((0f32, 0), (0f32, 0));
    for i in 0..examples.len() {
        for j in i + 1..examples.len() {
            let c = cosine(e.row(i), e.row(j));
            let bucket = if examples[i].label == examples[j].label { &mut within } else { &mut across };
            bucket.0 += c;
            bucket.1 += 1;
        }
    }
    within.0 / within.1 as f32 - across.0 / across.1 as f32
}

#[test]
fn contrastive_tuning_lowers_the_loss_and_separates_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_encoder(dir.path());
    let embedder = Embedder::load(&embed_config(dir.path())).unwrap();
    let train_set = examples(24, 0);
    let texts: Vec<&str> = train_set.iter().map(|e| e.text.as_str()).collect();
    let labels: Vec<usize> = train_set.iter().map(|e| e.label).collect();
    let pairs = sample_pairs(&labels, 10, 1).unwrap();
    let bert = embedder.trainable().unwrap();
    let before = separation(&embedder, &train_set);
    let config = ContrastiveConfig { learning_rate: 1e-2, batch_pairs: 16, ..ContrastiveConfig::default() };
    let log = train::train(&bert, &embedder, &texts, &pairs, &config, 1, false).unwrap();
    assert_eq!(log.losses.len(), pairs.len().div_ceil(16));
    let mean = |l: &[f32]| l.iter().sum::<f32>() / l.len() as f32;
    let (first, last) = (mean(&log.losses[..5]), mean(&log.losses[log.losses.len() - 5..]));
    assert!(last < 0.5 * first, "pair loss {first} → {last}");
    let held_out = examples(20, 1000);
    let after = separation(&embedder.with_weights(&bert).unwrap(), &held_out);
    assert!(after > before + 0.2 && after > 0.5, "within − across cosine {before} → {after} on held-out texts");
}

#[test]
fn the_method_fits_and_labels_through_the_seam() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_encoder(dir.path());
    let mut config = SetFitConfig::for_profile(Profile::Smoke);
    config.embed = embed_config(dir.path());
    config.contrastive.learning_rate = 1e-2;
    let method = SetFit { config };
    let (train_set, validation) = (examples(16, 0), examples(8, 500));
    let labels = vec!["sport".to_string(), "money".to_string()];
    let task = Task::named("sport or money");
    let data =
        TrainingSet { train: &train_set, validation: &validation, labels: &labels, task: &task, unlabelled: &[] };
    let fitted = method.fit(&data, &RunContext { seed: 5, ..Default::default() }).unwrap();
    let setfit = fitted.as_any().downcast_ref::<FittedSetFit>().unwrap();
    assert!(setfit.log.pairs <= 256, "the smoke profile caps the pairs");
    let test = examples(40, 2000);
    let texts: Vec<&str> = test.iter().map(|e| e.text.as_str()).collect();
    let predicted = fitted.predict(&texts, &RunContext::default()).unwrap();
    let correct = predicted.outputs.iter().zip(&test).filter(|(o, e)| o.label == Some(e.label)).count();
    assert!(correct >= 36, "{correct} of 40 held-out texts right");
    let scores = predicted.outputs[0].scores.as_ref().unwrap();
    assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-4, "probabilities: {scores:?}");
    // Seeded: the same fit again gives the same answers.
    let again = method.fit(&data, &RunContext { seed: 5, ..Default::default() }).unwrap();
    assert_eq!(again.predict(&texts, &RunContext::default()).unwrap().outputs, predicted.outputs);
}
