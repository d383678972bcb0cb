//! Throughput (GFLOP/s) of candle's matrix products on the fine-tune's linear
//! layers (1,024 tokens) in the layouts forward and backward use: why
//! `models::llama::ops::linear` computes the weight gradient as `gᵀ·x` directly rather
//! than letting candle's matmul backward compute `xᵀ·g` and transpose it.
//!
//! ```bash
//! cargo run --release --example matmul_layouts
//! ```

use candle_core::{Device, Result, Tensor};
use std::time::Instant;

fn seconds(f: impl Fn() -> Result<Tensor>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..20 {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() / 20.0)
}

fn main() -> Result<()> {
    let tokens = 1024;
    println!(
        "layer (in -> out): forward x·wᵀ | dx = g·w | dw = gᵀ·x | dw as candle's matmul backward: (xᵀ·g)ᵀ, GFLOP/s"
    );
    for (name, input, output) in [("qkv", 576, 960), ("o", 576, 576), ("gate_up", 576, 3072), ("down", 1536, 576)] {
        let x = Tensor::randn(0f32, 1.0, (tokens, input), &Device::Cpu)?;
        let g = Tensor::randn(0f32, 1.0, (tokens, output), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 1.0, (output, input), &Device::Cpu)?;
        let gflop = 2.0 * (tokens * input * output) as f64 / 1e9;
        let forward = seconds(|| x.matmul(&w.t()?))?;
        let dx = seconds(|| g.matmul(&w))?;
        let dw = seconds(|| g.t()?.matmul(&x))?;
        let dw_candle = seconds(|| x.t()?.matmul(&g)?.t()?.contiguous())?;
        println!(
            "{name} ({input} -> {output}): {:.0} | {:.0} | {:.0} | {:.0}",
            gflop / forward,
            gflop / dx,
            gflop / dw,
            gflop / dw_candle
        );
    }
    Ok(())
}
