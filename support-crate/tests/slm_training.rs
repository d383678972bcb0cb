//! Fine-tuning machinery on a tiny random Llama and synthetic data the tests
//! make themselves: the loss falls and the task is learnt; an interrupted
//! run resumed from its checkpoint ends bit-for-bit where the uninterrupted
//! one does; a checkpoint of another run is refused; a saved classifier
//! predicts what it predicted before saving; GGUF and Hugging Face files of
//! the same weights give the same logits.

use std::collections::HashMap;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use slm_vs_llm::methods::finetune::batch::Encoded;
use slm_vs_llm::methods::finetune::classifier::{mean_log_loss, predict_probs, Classifier};
use slm_vs_llm::methods::finetune::train::{train, Control, Labelled, TrainConfig, Trained};
use slm_vs_llm::models::llama::load::{gguf_name, load_gguf, load_hf_dir, permute};
use slm_vs_llm::models::llama::model::{random_weights, Llama, LlamaConfig, Trainable};

/// The first token (3, 4 or 5) is the label; the rest is noise, so the last
/// token must attend back to the first.
fn synthetic(n: usize, seed: u64) -> (Vec<Encoded>, Vec<usize>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut enc = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let len = rng.random_range(2..12);
        let label = rng.random_range(0..3);
        let ids: Vec<u32> =
            std::iter::once(3 + label as u32).chain((1..len).map(|_| rng.random_range(6..60))).collect();
        labels.push(label);
        enc.push(Encoded { ids, dropped: 0 });
    }
    (enc, labels)
}

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 8,
        grad_accum: 2,
        learning_rate: 1e-2,
        epochs: 4,
        frozen_layers: 0,
        train_embedding: true,
        eval_every: 5,
        checkpoint_every: 3,
        ..TrainConfig::default()
    }
}

fn model(trainable: Trainable) -> Llama {
    let cfg = LlamaConfig::tiny();
    Llama::new(cfg.clone(), &random_weights(&cfg, 9, &Device::Cpu).unwrap(), Some(3), trainable, 4).unwrap()
}

fn run(dir: Option<&std::path::Path>, stop_at: Option<usize>, cfg: &TrainConfig) -> anyhow::Result<Trained> {
    let (enc, labels) = synthetic(160, 1);
    let (val, val_labels) = synthetic(60, 2);
    let control = Control { checkpoint_dir: dir.map(|d| d.to_path_buf()), stop_at, progress: false };
    let (train_set, validation) =
        (Labelled { texts: &enc, labels: &labels }, Labelled { texts: &val, labels: &val_labels });
    train(model(cfg.trainable()), train_set, validation, 0, "synthetic", cfg, &control)
}

fn weights(model: &Llama) -> Vec<Vec<f32>> {
    model.trainable_params().iter().map(|p| p.tensor.flatten_all().unwrap().to_vec1().unwrap()).collect()
}

#[test]
fn learns_the_task_and_the_loss_falls() {
    let trained = run(None, None, &TrainConfig { epochs: 12, ..config() }).unwrap();
    let h = &trained.state.history;
    let first: f64 = h[..5].iter().map(|s| s.loss).sum::<f64>() / 5.0;
    let last: f64 = h[h.len() - 5..].iter().map(|s| s.loss).sum::<f64>() / 5.0;
    assert!(last < 0.5 * first, "loss {first:.3} -> {last:.3}");
    let final_accuracy = trained.state.validation.last().unwrap().accuracy;
    assert!(final_accuracy > 0.8, "validation accuracy {final_accuracy}");
    assert!(trained.finished);
    assert_eq!(trained.state.step, (160usize.div_ceil(8) * 12).div_ceil(2));
}

#[test]
fn resuming_reproduces_the_uninterrupted_run() {
    let cfg = config();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = run(Some(whole_dir.path()), None, &cfg).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let interrupted = run(Some(dir.path()), Some(7), &cfg).unwrap();
    assert!(!interrupted.finished);
    assert_eq!(interrupted.state.step, 7);
    let resumed = run(Some(dir.path()), None, &cfg).unwrap();
    assert!(resumed.finished);
    assert_eq!(
        resumed.state.history,
        whole
            .state
            .history
            .iter()
            .map(|h| {
                // Wall-clock seconds differ between runs; everything else must not.
                let mut h = h.clone();
                h.seconds = resumed.state.history[h.step - 1].seconds;
                h
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(weights(&resumed.model), weights(&whole.model), "weights differ after resuming");
}

#[test]
fn keeps_the_step_of_lowest_validation_loss_also_when_asked_again() {
    // Validation labels that contradict the task: its loss rises as the task
    // is learnt, so the lowest comes before the last step.
    let cfg = TrainConfig { keep_lowest_validation_loss: true, ..config() };
    let (enc, labels) = synthetic(160, 1);
    let (val, val_labels) = synthetic(60, 2);
    let contradicting: Vec<usize> = val_labels.iter().map(|l| (l + 1) % 3).collect();
    let dir = tempfile::tempdir().unwrap();
    let go = |checkpoint_dir: Option<&std::path::Path>| {
        let control = Control { checkpoint_dir: checkpoint_dir.map(Into::into), stop_at: None, progress: false };
        let train_set = Labelled { texts: &enc, labels: &labels };
        let validation = Labelled { texts: &val, labels: &contradicting };
        train(model(cfg.trainable()), train_set, validation, 0, "synthetic", &cfg, &control).unwrap()
    };
    let trained = go(Some(dir.path()));
    let s = &trained.state;
    let lowest = s.validation.iter().min_by(|a, b| a.loss.total_cmp(&b.loss)).unwrap();
    assert_eq!(s.kept_step, Some(lowest.step));
    assert!(lowest.step < s.step, "the lowest validation loss is at the last step {}", s.step);
    let probs = predict_probs(&trained.model, &val, 0, 32, false).unwrap();
    let loss = mean_log_loss(&probs, &contradicting);
    assert!(
        (loss - lowest.loss).abs() < 1e-5,
        "the model's validation loss {loss} is not the kept step's {}",
        lowest.loss
    );

    // Asked again, the finished run reads its kept weights from disk.
    let again = go(Some(dir.path()));
    assert_eq!(again.state.kept_step, s.kept_step);
    assert_eq!(weights(&again.model), weights(&trained.model));
    // Without a checkpoint directory the kept weights stay in memory: the same ones.
    let in_memory = go(None);
    assert_eq!(in_memory.state.kept_step, s.kept_step);
    assert_eq!(weights(&in_memory.model), weights(&trained.model));
}

#[test]
fn a_checkpoint_of_another_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(Some(dir.path()), Some(3), &config()).unwrap();
    let other = TrainConfig { learning_rate: 5e-3, ..config() };
    let err = run(Some(dir.path()), None, &other).err().expect("refused");
    assert!(err.to_string().contains("different run"), "{err}");
}

fn tiny_tokenizer_metadata(vocab: usize) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    // Byte-level symbols for a-z and space, then merges up to the vocabulary size.
    let mut tokens: Vec<String> = "abcdefghijklmnopqrstuvwxyz".chars().map(String::from).collect();
    tokens.push("Ġ".into());
    tokens.extend(["<|endoftext|>".to_string(), "<|im_start|>".to_string()]);
    let mut merges = Vec::new();
    for pair in ["t h", "th e", "Ġ th", "Ġth e", "a n", "an d", "i n", "in g"] {
        let (a, b) = pair.split_once(' ').unwrap();
        tokens.push(format!("{a}{b}"));
        merges.push(pair.to_string());
    }
    while tokens.len() < vocab {
        tokens.push(format!("<unused{}>", tokens.len()));
    }
    let types: Vec<Value> = tokens.iter().map(|t| Value::I32(if t.starts_with("<|") { 3 } else { 1 })).collect();
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(merges.into_iter().map(Value::String).collect())),
    ]
}

/// Writes `weights` as llama.cpp would: GGUF names, Q/K permuted for its rotary layout.
fn write_gguf(path: &std::path::Path, cfg: &LlamaConfig, weights: &HashMap<String, Tensor>) {
    use gguf_file::Value;
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.block_count".into(), Value::U32(cfg.num_hidden_layers as u32)),
        ("llama.embedding_length".into(), Value::U32(cfg.hidden_size as u32)),
        ("llama.feed_forward_length".into(), Value::U32(cfg.intermediate_size as u32)),
        ("llama.attention.head_count".into(), Value::U32(cfg.num_attention_heads as u32)),
        ("llama.attention.head_count_kv".into(), Value::U32(cfg.num_key_value_heads as u32)),
        ("llama.rope.freq_base".into(), Value::F32(cfg.rope_theta as f32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(cfg.rms_norm_eps as f32)),
        ("llama.context_length".into(), Value::U32(cfg.max_position_embeddings as u32)),
    ];
    meta.extend(tiny_tokenizer_metadata(cfg.vocab_size));
    let tensors: Vec<(String, QTensor)> = weights
        .iter()
        .map(|(name, t)| {
            let t = if name.ends_with("q_proj.weight") {
                permute(t, cfg.num_attention_heads).unwrap()
            } else if name.ends_with("k_proj.weight") {
                permute(t, cfg.num_key_value_heads).unwrap()
            } else {
                t.clone()
            };
            (gguf_name(name).unwrap(), QTensor::quantize(&t, GgmlDType::F32).unwrap())
        })
        .collect();
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).unwrap();
}

#[test]
fn gguf_and_hugging_face_files_give_the_same_logits_and_a_saved_classifier_round_trips() {
    let cfg = LlamaConfig::tiny();
    let weights = random_weights(&cfg, 21, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gguf_path = dir.path().join("tiny.gguf");
    write_gguf(&gguf_path, &cfg, &weights);

    let from_gguf = load_gguf(&gguf_path, &Device::Cpu).unwrap();
    assert_eq!(from_gguf.config.num_key_value_heads, cfg.num_key_value_heads);
    let ids = from_gguf.tokenizer.encode("the thing and the <|im_start|>king", false).unwrap().get_ids().to_vec();
    let t = |s: &str| from_gguf.tokenizer.token_to_id(s).unwrap();
    assert_eq!(&ids[..2], &[t("the"), t("Ġth")], "merges applied: {ids:?}");
    assert!(ids.contains(&t("<|im_start|>")), "control token matched whole: {ids:?}");

    // The same weights through the Hugging Face path (our classifier save format).
    let gguf_model = Llama::new(from_gguf.config.clone(), &from_gguf.weights, Some(3), Trainable::NONE, 5).unwrap();
    let classifier = Classifier {
        model: gguf_model,
        tokenizer: from_gguf.tokenizer,
        labels: vec!["a".into(), "b".into(), "c".into()],
        max_len: 16,
        pad: 0,
    };
    let hf_dir = dir.path().join("classifier");
    classifier.save(&hf_dir).unwrap();
    let from_hf = load_hf_dir(&hf_dir, &Device::Cpu).unwrap();
    let direct = Llama::new(cfg.clone(), &weights, Some(3), Trainable::NONE, 5).unwrap();

    let x = Tensor::new(&[[3u32, 7, 1, 30, 12, 5]], &Device::Cpu).unwrap();
    let a = classifier.model.classify(&x, &[6]).unwrap();
    let b = direct.classify(&x, &[6]).unwrap();
    let diff: f32 = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    assert!(diff < 1e-5, "GGUF vs original weights: {diff}");
    assert_eq!(from_hf.weights.len(), weights.len() + 1, "all weights and the head saved");

    let reloaded = Classifier::load(&hf_dir).unwrap();
    assert_eq!(reloaded.labels, classifier.labels);
    let texts = ["the king and the thing", "and"];
    assert_eq!(reloaded.predict(&texts).unwrap(), classifier.predict(&texts).unwrap());
}

#[test]
fn frozen_layers_do_not_move() {
    let cfg = TrainConfig { frozen_layers: 1, train_embedding: false, epochs: 1, ..config() };
    let before = model(cfg.trainable());
    let frozen_before: Vec<Vec<f32>> = before
        .params()
        .iter()
        .filter(|p| p.var().is_none())
        .map(|p| p.tensor.flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let trained = run(None, None, &cfg).unwrap();
    let frozen_after: Vec<Vec<f32>> = trained
        .model
        .params()
        .iter()
        .filter(|p| p.var().is_none())
        .map(|p| p.tensor.flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    assert!(!frozen_before.is_empty());
    assert_eq!(frozen_before, frozen_after);
    let (val, _) = synthetic(10, 3);
    let probs = predict_probs(&trained.model, &val, 0, 4, false).unwrap();
    assert!(probs.iter().all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-5));
}
