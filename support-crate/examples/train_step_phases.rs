//! Where a fine-tuning step's time goes: forward, backward and optimiser of
//! one step (batch 8 × 128 tokens, embedding and the bottom 18 layers frozen,
//! as `bench slm`), and a gradient-free forward of the same batch. The
//! profile that led to the fused ops in `models/llama/attention.rs` and `models/llama/ops.rs`.
//! `STEPS=N` sets the number of timed steps (default 8).
//!
//! ```bash
//! cargo run --release --example train_step_phases -- data/models/SmolLM2-135M-Instruct/*.gguf
//! ```

use anyhow::Context;
use candle_core::{Device, Tensor};
use slm_vs_llm::models::llama::model::{Llama, Trainable};
use slm_vs_llm::optim::{AdamW, AdamWConfig};
use std::time::Instant;

// The allocator and settings of the `slm-vs-llm` binary, so that the phases are timed as there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // SAFETY: sets a process-wide allocator option (15: purge delay, −1: never).
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let model = std::env::args().nth(1).context("usage: train_step_phases MODEL (a .gguf file or HF directory)")?;
    let loaded = slm_vs_llm::models::llama::load(&model, &Device::Cpu)?;
    let trainable = Trainable { embedding: false, frozen_layers: 18 };
    let llama = Llama::from_weights(loaded.config, loaded.weights, Some(4), trainable, 0)?;
    let params =
        llama.trainable_params().into_iter().filter_map(|p| Some((p.name.clone(), p.var()?.clone()))).collect();
    let mut optimiser = AdamW::new(params, AdamWConfig::default());
    let (batch, seq) = (8, 128);
    // Arbitrary but fixed token ids: the timing does not depend on them.
    let ids: Vec<u32> = (0..batch * seq).map(|i| (i * 7919 % 40_000) as u32 + 100).collect();
    let ids = Tensor::from_vec(ids, (batch, seq), &Device::Cpu)?;
    let lengths = vec![seq; batch];
    let labels = Tensor::new(vec![0u32; batch], &Device::Cpu)?;
    let inference = llama.detached()?;
    // On a shared VM single steps vary by ±10%: report each phase's fastest
    // of the timed steps (the least disturbed) next to its median.
    let steps = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let mut phases: [Vec<f64>; 4] = Default::default();
    for step in 0..=steps {
        let t0 = Instant::now();
        let loss = candle_nn::loss::cross_entropy(&llama.classify(&ids, &lengths)?, &labels)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        optimiser.accumulate(&grads, 1.0)?;
        optimiser.step(1e-4, 1.0)?;
        let t3 = Instant::now();
        inference.classify(&ids, &lengths)?;
        let t4 = Instant::now();
        if step > 0 {
            for (phase, (a, b)) in phases.iter_mut().zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)]) {
                phase.push((b - a).as_secs_f64());
            }
        }
    }
    println!("{steps} steps after a warm-up, fastest / median:");
    for (name, mut times) in ["forward", "backward", "optimiser", "gradient-free forward"].into_iter().zip(phases) {
        times.sort_by(f64::total_cmp);
        println!("  {name}: {:.3} s / {:.3} s", times[0], times[times.len() / 2]);
    }
    Ok(())
}
