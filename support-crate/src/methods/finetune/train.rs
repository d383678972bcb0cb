//! Fine-tuning a Llama as a classifier: one config with every
//! hyper-parameter, a loop a reader can hold in their head, validation during
//! training, and checkpoints that make an interrupted run resume exactly
//! where it stopped (same data order, same optimiser state, same result).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::batch::{epoch_batches, Batch, Encoded};
use super::classifier::{mean_log_loss, predict_probs};
use crate::method::argmax;
use crate::models::llama::{Llama, Trainable};
use crate::optim::{learning_rate, AdamW, AdamWConfig};

/// Every hyper-parameter of a fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Tokens kept per text (longer ones are truncated and counted).
    pub max_len: usize,
    /// Rows per forward/backward pass.
    pub batch_size: usize,
    /// Passes accumulated per optimiser step (effective batch = batch_size × grad_accum).
    pub grad_accum: usize,
    /// Peak learning rate, reached after the warm-up.
    pub learning_rate: f64,
    /// Fraction of the steps spent warming up linearly from zero.
    pub warmup_fraction: f64,
    /// The cosine decay ends at this fraction of the peak.
    pub final_lr_fraction: f64,
    /// Global gradient-norm clip (0 = off).
    pub clip_norm: f64,
    pub adamw: AdamWConfig,
    /// Passes over the training items.
    pub epochs: usize,
    /// Layers `0..frozen_layers` and the embedding stay frozen.
    pub frozen_layers: usize,
    /// Also train the token embedding (49M parameters in SmolLM2).
    pub train_embedding: bool,
    /// Optimiser steps between validation passes (0 = only at the end).
    pub eval_every: usize,
    /// Optimiser steps between checkpoints (0 = only at the end).
    pub checkpoint_every: usize,
    /// Keep the weights of the validation pass with the lowest loss instead
    /// of the last step's: on a small label budget a fixed schedule of many
    /// passes can overshoot, and where it stops best differs from seed to seed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_lowest_validation_loss: bool,
    /// Shuffling and the classification head's initialisation.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_len: 128,
            // 16 rows in one pass rather than 8 twice: the same effective batch, and on
            // AG News' ~55-token batches 27% more tokens/s (larger matrix products run
            // closer to the CPU's peak).
            batch_size: 16,
            grad_accum: 1,
            learning_rate: 2e-4,
            warmup_fraction: 0.05,
            final_lr_fraction: 0.1,
            clip_norm: 1.0,
            adamw: AdamWConfig::default(),
            epochs: 1,
            frozen_layers: 18,
            train_embedding: false,
            eval_every: 250,
            checkpoint_every: 100,
            keep_lowest_validation_loss: false,
            seed: 42,
        }
    }
}

impl TrainConfig {
    /// A few steps on a small sample (`SMOKE=1`, `--smoke`).
    pub fn smoke() -> Self {
        // Batch 8: 30 steps on the 240-item smoke sample, enough for the loss curve to show the fall.
        TrainConfig { frozen_layers: 26, batch_size: 8, eval_every: 10, checkpoint_every: 10, ..Default::default() }
    }

    pub fn trainable(&self) -> Trainable {
        Trainable { embedding: self.train_embedding, frozen_layers: self.frozen_layers }
    }
}

/// One optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub learning_rate: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    /// Training seconds since the start of the run (across resumptions).
    pub seconds: f64,
}

/// One validation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationPoint {
    pub step: usize,
    pub accuracy: f64,
    pub loss: f64,
    pub seconds: f64,
}

/// What a checkpoint records besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
    /// Identifies base model and data: a checkpoint is only resumed on the same.
    pub fingerprint: String,
    pub step: usize,
    pub total_steps: usize,
    pub history: Vec<StepLog>,
    pub validation: Vec<ValidationPoint>,
    pub train_seconds: f64,
    pub tokens: usize,
    /// The step whose weights the run keeps, when chosen on validation
    /// ([`TrainConfig::keep_lowest_validation_loss`]); otherwise the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_step: Option<usize>,
}

impl TrainState {
    /// The step whose weights the trained model holds.
    pub fn final_weights_step(&self) -> usize {
        self.kept_step.unwrap_or(self.step)
    }
}

/// How a run is driven (not part of the result).
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Where checkpoints go; `None` trains without them.
    pub checkpoint_dir: Option<PathBuf>,
    /// Stop (after checkpointing) once this step is reached: simulates an interruption.
    pub stop_at: Option<usize>,
    pub progress: bool,
}

pub struct Trained {
    pub model: Llama,
    pub state: TrainState,
    /// Trained weights (excluding the frozen ones).
    pub trainable_params: usize,
    /// Whether the run finished all its steps (false after `stop_at`).
    pub finished: bool,
}

/// Tokenised texts with their labels.
#[derive(Clone, Copy)]
pub struct Labelled<'a> {
    pub texts: &'a [Encoded],
    pub labels: &'a [usize],
}

/// Fine-tunes `model` (whose trainable weights are set by `config.trainable()`)
/// on `train`, validating on `validation`; `pad` fills batches.
pub fn train(
    model: Llama,
    train: Labelled,
    validation: Labelled,
    pad: u32,
    fingerprint: &str,
    config: &TrainConfig,
    control: &Control,
) -> Result<Trained> {
    let Labelled { texts: train, labels: train_labels } = train;
    if train.is_empty() || train.len() != train_labels.len() {
        bail!("{} training texts but {} labels", train.len(), train_labels.len());
    }
    let device = Device::Cpu;
    let params: Vec<_> =
        model.trainable_params().into_iter().map(|p| (p.name.clone(), p.var().cloned().expect("trainable"))).collect();
    let mut optimiser = AdamW::new(params, config.adamw);
    let trainable_params = optimiser.num_params();

    let batches_per_epoch = train.len().div_ceil(config.batch_size);
    let total_steps = (batches_per_epoch * config.epochs).div_ceil(config.grad_accum);
    let warmup = ((total_steps as f64 * config.warmup_fraction).round() as usize).max(1);
    let mut state = TrainState {
        config: config.clone(),
        fingerprint: fingerprint.to_string(),
        step: 0,
        total_steps,
        history: Vec::new(),
        validation: Vec::new(),
        train_seconds: 0.0,
        tokens: 0,
        kept_step: None,
    };
    if let Some(dir) = &control.checkpoint_dir {
        if let Some(saved) = load_checkpoint(dir, &model, &mut optimiser, config, fingerprint)? {
            tracing::info!(step = saved.step, of = total_steps, "resuming from the checkpoint in {}", dir.display());
            state = saved;
        }
    }

    let bar = crate::progress::bar(total_steps as u64, "fine-tune", control.progress);
    bar.set_position(state.step as u64);
    let mut epoch_cache: Option<(usize, Vec<Vec<usize>>)> = None;
    let mut smoothed: Option<f64> = state.history.last().map(|h| h.loss);
    // The kept weights live beside the checkpoint when there is one (so a
    // resumed run finds them), in memory otherwise.
    let mut kept_in_memory: Option<Vec<Tensor>> = None;
    while state.step < total_steps {
        if control.stop_at.is_some_and(|s| state.step >= s) {
            break;
        }
        let started = Instant::now();
        let (mut loss_sum, mut tokens) = (0.0, 0);
        let mut epoch = 0;
        for micro in 0..config.grad_accum {
            let global = state.step * config.grad_accum + micro;
            if global >= batches_per_epoch * config.epochs {
                break;
            }
            epoch = global / batches_per_epoch;
            if epoch_cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
                epoch_cache = Some((epoch, epoch_batches(train, config.batch_size, config.seed, epoch)));
            }
            let items = &epoch_cache.as_ref().expect("set above").1[global % batches_per_epoch];
            let batch = Batch::new(train, items, pad, &device)?;
            let labels: Vec<u32> = items.iter().map(|&i| train_labels[i] as u32).collect();
            let logits = model.classify(&batch.ids, &batch.lengths)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &Tensor::new(labels, &device)?)?;
            optimiser.accumulate(&loss.backward()?, 1.0 / config.grad_accum as f32)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            tokens += batch.tokens();
        }
        let micro_batches = (config.grad_accum).min(batches_per_epoch * config.epochs - state.step * config.grad_accum);
        let lr = learning_rate(state.step, config.learning_rate, warmup, total_steps, config.final_lr_fraction);
        let grad_norm = optimiser.step(lr, config.clip_norm)?;
        let seconds = started.elapsed().as_secs_f64();
        state.train_seconds += seconds;
        state.tokens += tokens;
        state.step += 1;
        let loss = loss_sum / micro_batches as f64;
        if !loss.is_finite() {
            bail!("the loss became {loss} at step {}: lower --learning-rate", state.step);
        }
        state.history.push(StepLog {
            step: state.step,
            epoch,
            loss,
            learning_rate: lr,
            grad_norm,
            tokens,
            seconds: state.train_seconds,
        });
        let s = smoothed.map_or(loss, |s| 0.95 * s + 0.05 * loss);
        smoothed = Some(s);
        bar.set_message(format!("loss {s:.3} {:.0} tok/s", tokens as f64 / seconds));
        bar.set_position(state.step as u64);

        let last = state.step == total_steps;
        if (config.eval_every > 0 && state.step.is_multiple_of(config.eval_every)) || last {
            let point = validate(&model, validation, pad, config, state.step, state.train_seconds)?;
            tracing::info!(step = point.step, accuracy = point.accuracy, loss = point.loss, "validation");
            let kept_loss = state.validation.iter().find(|v| Some(v.step) == state.kept_step).map(|v| v.loss);
            if config.keep_lowest_validation_loss && point.loss.is_finite() && kept_loss.is_none_or(|l| point.loss < l)
            {
                match &control.checkpoint_dir {
                    Some(dir) => save_kept(dir, &model, state.step)?,
                    None => {
                        kept_in_memory = Some(
                            model
                                .trainable_params()
                                .iter()
                                .map(|p| p.tensor.copy())
                                .collect::<candle_core::Result<_>>()?,
                        )
                    }
                }
                state.kept_step = Some(state.step);
            }
            state.validation.push(point);
        }
        if let Some(dir) = &control.checkpoint_dir {
            let stopping = control.stop_at.is_some_and(|s| state.step >= s);
            if last || stopping || (config.checkpoint_every > 0 && state.step.is_multiple_of(config.checkpoint_every)) {
                save_checkpoint(dir, &model, &optimiser, &state)?;
            }
        }
    }
    bar.finish_and_clear();
    let finished = state.step == total_steps;
    if let Some(step) = state.kept_step.filter(|&k| finished && k != state.step) {
        let weights = match kept_in_memory {
            Some(weights) => weights,
            None => load_kept(control.checkpoint_dir.as_deref(), &model, step)?,
        };
        for (p, w) in model.trainable_params().iter().zip(&weights) {
            p.var().expect("trainable").set(w)?;
        }
        tracing::info!(step, of = total_steps, "kept the weights of the step with the lowest validation loss");
    }
    Ok(Trained { model, state, trainable_params, finished })
}

fn validate(
    model: &Llama,
    Labelled { texts, labels }: Labelled,
    pad: u32,
    config: &TrainConfig,
    step: usize,
    seconds: f64,
) -> Result<ValidationPoint> {
    if texts.is_empty() {
        return Ok(ValidationPoint { step, accuracy: f64::NAN, loss: f64::NAN, seconds });
    }
    let probs = predict_probs(model, texts, pad, 4 * config.batch_size, false)?;
    let correct = probs.iter().zip(labels).filter(|(p, &y)| argmax(p) == y).count();
    let accuracy = correct as f64 / texts.len() as f64;
    Ok(ValidationPoint { step, accuracy, loss: mean_log_loss(&probs, labels), seconds })
}

const CHECKPOINT_TENSORS: &str = "checkpoint.safetensors";
const CHECKPOINT_STATE: &str = "checkpoint.json";

/// Writes trainable weights, Adam moments and the state, each file through a
/// temporary name and a rename, state last: a checkpoint is whole or absent.
fn save_checkpoint(dir: &Path, model: &Llama, optimiser: &AdamW, state: &TrainState) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tensors: HashMap<String, Tensor> =
        model.trainable_params().iter().map(|p| (format!("w.{}", p.name), p.tensor.clone())).collect();
    tensors.extend(optimiser.moments()?);
    save_tensors_whole(&tensors, &dir.join(CHECKPOINT_TENSORS))?;
    let tmp = dir.join(format!("{CHECKPOINT_STATE}.tmp"));
    std::fs::write(&tmp, serde_json::to_string(state)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(CHECKPOINT_STATE))?;
    Ok(())
}

/// The weights of the step with the lowest validation loss so far, beside
/// the checkpoint (whose state names the step); earlier ones are removed.
/// Training is deterministic, so a run resumed from an older checkpoint
/// passes the same step again and writes the same file.
fn save_kept(dir: &Path, model: &Llama, step: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tensors: HashMap<String, Tensor> =
        model.trainable_params().iter().map(|p| (p.name.clone(), p.tensor.clone())).collect();
    save_tensors_whole(&tensors, &dir.join(kept_file(step)))?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("kept-step-") && name != kept_file(step) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Writes `tensors` to `path` through a temporary name and a rename, so the
/// file is whole or absent.
fn save_tensors_whole(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    candle_core::safetensors::save(tensors, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn kept_file(step: usize) -> String {
    format!("kept-step-{step}.safetensors")
}

/// The kept weights of `step`, in the order of `model.trainable_params()`.
fn load_kept(dir: Option<&Path>, model: &Llama, step: usize) -> Result<Vec<Tensor>> {
    let dir = dir.context("the kept weights are neither in memory nor in a checkpoint directory")?;
    let path = dir.join(kept_file(step));
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("reading the kept weights of step {step} from {}", path.display()))?;
    model
        .trainable_params()
        .iter()
        .map(|p| tensors.get(&p.name).cloned().with_context(|| format!("{}: lacks {}", path.display(), p.name)))
        .collect()
}

/// Where the checkpoint of a run with `config` on the data `fingerprint`
/// lives under `out_dir`: one directory per configuration and data, so a run
/// with other settings starts its own instead of refusing this one, and the
/// same settings resume (or, when finished, return at once).
pub fn checkpoint_dir(out_dir: &Path, config: &TrainConfig, fingerprint: &str) -> Result<PathBuf> {
    let key = format!("{}\n{fingerprint}", serde_json::to_string(config)?);
    Ok(out_dir.join("checkpoints").join(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))))
}

/// Whether `dir` holds a checkpoint of exactly this configuration and data.
pub fn checkpoint_belongs(dir: &Path, config: &TrainConfig, fingerprint: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(CHECKPOINT_STATE)) else { return false };
    serde_json::from_str::<TrainState>(&text).is_ok_and(|s| s.config == *config && s.fingerprint == fingerprint)
}

/// Restores a checkpoint made with the same configuration, model and data;
/// `Ok(None)` when there is none. A checkpoint of a different run is an
/// error rather than silently mixed in.
fn load_checkpoint(
    dir: &Path,
    model: &Llama,
    optimiser: &mut AdamW,
    config: &TrainConfig,
    fingerprint: &str,
) -> Result<Option<TrainState>> {
    let state_path = dir.join(CHECKPOINT_STATE);
    if !state_path.is_file() {
        return Ok(None);
    }
    let state: TrainState = serde_json::from_str(&std::fs::read_to_string(&state_path)?)
        .with_context(|| format!("{}: unreadable checkpoint state", state_path.display()))?;
    if state.config != *config || state.fingerprint != fingerprint {
        bail!(
            "{} holds a checkpoint of a different run (other configuration, model or data); \
             delete it or choose another --out to start afresh",
            dir.display()
        );
    }
    let tensors_path = dir.join(CHECKPOINT_TENSORS);
    let tensors = candle_core::safetensors::load(&tensors_path, &Device::Cpu)
        .with_context(|| format!("reading {}", tensors_path.display()))?;
    for p in model.trainable_params() {
        let key = format!("w.{}", p.name);
        let t = tensors.get(&key).with_context(|| format!("{}: lacks {key}", tensors_path.display()))?;
        p.var().expect("trainable").set(t)?;
    }
    optimiser.restore_moments(&tensors, state.step)?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_configuration_and_data_has_its_own_checkpoint_directory() {
        let out = Path::new("out");
        let config = TrainConfig::default();
        let other = TrainConfig { learning_rate: 1e-4, ..TrainConfig::default() };
        let dir = |config: &TrainConfig, data: &str| checkpoint_dir(out, config, data).unwrap();
        assert_eq!(dir(&config, "data"), dir(&config.clone(), "data"));
        assert_ne!(dir(&config, "data"), dir(&other, "data"));
        assert_ne!(dir(&config, "data"), dir(&config, "other data"));
        assert!(dir(&config, "data").starts_with("out/checkpoints"));
        assert!(!checkpoint_belongs(Path::new("/nonexistent"), &config, "data"));
    }
}
