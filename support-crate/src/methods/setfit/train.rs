//! Contrastive tuning of the sentence encoder, as SetFit's body training
//! does it with sentence-transformers: for each batch of pairs, both texts
//! embedded (mean pooling, L2 norm) with BERT's dropout on (train mode); the
//! loss is the mean squared gap between the pair's cosine and its target (1
//! same class, 0 not: `CosineSimilarityLoss`); AdamW with weight decay 0.01,
//! gradient norm clipped at 1, learning rate warmed up linearly over the
//! first 10% of steps then decayed linearly to 0 (`WarmupLinear`), one epoch.
//! Batches group pairs of like length (less padding) and embed a repeated
//! text once.

use anyhow::{Context, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::pairs::{length_grouped_batches, Pair};
use crate::models::bert_train::{Dropout, TrainableBert};
use crate::models::Embedder;
use crate::optim::{AdamW, AdamWConfig};

/// The body's training settings (SetFit's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveConfig {
    /// Peak learning rate (SetFit: 2e-5).
    pub learning_rate: f64,
    /// Pairs per step (SetFit: 16; 32 texts a forward pass).
    pub batch_pairs: usize,
    /// Rounds of pairs per example (SetFit's `num_iterations`: 20).
    pub rounds: usize,
    /// Fewer rounds when the examples would give more pairs than this, and a
    /// balanced share of one round when even that is more (large budgets:
    /// the head, not more pairs, is what their extra labels buy).
    pub max_pairs: usize,
    /// Share of the steps the learning rate warms up over.
    pub warmup: f64,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        ContrastiveConfig { learning_rate: 2e-5, batch_pairs: 16, rounds: 20, max_pairs: 2048, warmup: 0.1 }
    }
}

/// What training did, step by step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContrastiveLog {
    /// The loss of each step's batch, before its update.
    pub losses: Vec<f32>,
    pub pairs: usize,
    /// Texts in the pairs, two a pair (a text in several of a batch's pairs is embedded once).
    pub texts: usize,
    pub seconds: f64,
}

/// Linear warm-up over `warmup` steps, then linear decay to 0 at `total`.
pub fn warmup_linear(step: usize, peak: f64, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * step as f64 / warmup.max(1) as f64;
    }
    peak * (total.saturating_sub(step)) as f64 / (total.saturating_sub(warmup)).max(1) as f64
}

/// The loss of a batch: mean of (cos(a, b) − target)² over its pairs. A
/// text in several of the batch's pairs is embedded once (at small budgets
/// most are: 32 examples fill 32 slots a batch); its gradient gathers from
/// every pair it is in, so the loss and gradients are those of embedding each
/// slot on its own.
pub fn pair_loss(
    bert: &TrainableBert,
    embedder: &Embedder,
    texts: &[&str],
    pairs: &[Pair],
    dropout: Option<&mut Dropout>,
) -> Result<Tensor> {
    let mut unique: Vec<usize> = pairs.iter().flat_map(|p| [p.a, p.b]).collect();
    unique.sort_unstable();
    unique.dedup();
    let batch: Vec<&str> = unique.iter().map(|&i| texts[i]).collect();
    let (ids, mask) = embedder.batch(&batch)?;
    let embedded = bert.embed(&ids, &mask, dropout)?;
    let rows = |side: fn(&Pair) -> usize| -> Result<Tensor> {
        let at: Vec<u32> = pairs.iter().map(|p| unique.binary_search(&side(p)).expect("listed") as u32).collect();
        Ok(embedded.index_select(&Tensor::new(at, embedded.device())?, 0)?)
    };
    let cosine = (rows(|p| p.a)? * rows(|p| p.b)?)?.sum(1)?;
    let targets: Vec<f32> = pairs.iter().map(Pair::target).collect();
    let targets = Tensor::from_vec(targets, pairs.len(), cosine.device())?;
    Ok((cosine - targets)?.sqr()?.mean_all()?)
}

/// Tunes `bert` in place on `pairs` of `texts`, one epoch.
pub fn train(
    bert: &TrainableBert,
    embedder: &Embedder,
    texts: &[&str],
    pairs: &[Pair],
    config: &ContrastiveConfig,
    seed: u64,
    progress: bool,
) -> Result<ContrastiveLog> {
    let started = std::time::Instant::now();
    let mut optimiser = AdamW::new(bert.vars().to_vec(), AdamWConfig::default());
    let batches = length_grouped_batches(pairs, &embedder.token_counts(texts)?, config.batch_pairs, seed);
    let steps = batches.len();
    let warmup = (config.warmup * steps as f64).ceil() as usize;
    let bar = crate::progress::bar(steps as u64, "contrastive tuning", progress);
    let mut log = ContrastiveLog { pairs: pairs.len(), ..Default::default() };
    let mut dropout = Dropout::new(bert.dropout_rate(), seed);
    for (step, batch) in batches.iter().enumerate() {
        let loss = pair_loss(bert, embedder, texts, batch, Some(&mut dropout))?;
        let grads = loss.backward().context("backward pass")?;
        optimiser.accumulate(&grads, 1.0)?;
        optimiser.step(warmup_linear(step, config.learning_rate, warmup, steps), 1.0)?;
        let loss = loss.to_scalar::<f32>()?;
        if !loss.is_finite() {
            anyhow::bail!("the contrastive loss is {loss} at step {step}: lower the learning rate");
        }
        log.losses.push(loss);
        log.texts += 2 * batch.len();
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        if (step + 1) % (steps / 10).max(1) == 0 {
            let seconds_per_step = started.elapsed().as_secs_f64() / (step + 1) as f64;
            tracing::info!(step = step + 1, steps, loss, seconds_per_step, "contrastive tuning");
        }
    }
    bar.finish_and_clear();
    log.seconds = started.elapsed().as_secs_f64();
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_then_decays_to_zero() {
        let lr: Vec<f64> = (0..=10).map(|s| warmup_linear(s, 1.0, 2, 10)).collect();
        assert_eq!(&lr[..3], &[0.0, 0.5, 1.0]);
        assert!((lr[6] - 0.5).abs() < 1e-12);
        assert_eq!(lr[10], 0.0);
    }
}
