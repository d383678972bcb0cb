//! Throughput of the int8 matrix product on every kernel this CPU has,
//! against candle's f32 matmul, on the inference shapes of the two models
//! (rows = a batch of tokens): the numbers behind `kernels/int8.rs`'s tuning.
//!
//! ```bash
//! cargo run --release --example int8_matmul
//! ```

use std::time::Instant;

use candle_core::{Device, Tensor};
use slm_vs_llm::kernels::int8::{Kernel, QuantizedMatrix};

/// Best of `repeats` wall times of `f`, in seconds.
fn best(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> anyhow::Result<()> {
    println!("features: {}", slm_vs_llm::kernels::cpu_features().join(" "));
    println!("{:>32} {:>10} int8 kernels (GMAC/s)", "shape (m x k -> n)", "f32");
    let shapes = [
        ("MiniLM qkv", 2048, 384, 1152),
        ("MiniLM intermediate", 2048, 384, 1536),
        ("MiniLM output", 2048, 1536, 384),
        ("SmolLM2 qkv", 1760, 576, 960),
        ("SmolLM2 gate+up", 1760, 576, 3072),
        ("SmolLM2 down", 1760, 1536, 576),
    ];
    for (name, m, k, n) in shapes {
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 0.05, (n, k), &Device::Cpu)?;
        let macs = (m * k * n) as f64 / 1e9;
        let wt = w.t()?;
        let f32_time = best(5, || {
            x.matmul(&wt).unwrap();
        });
        let q = QuantizedMatrix::quantize(&w.flatten_all()?.to_vec1::<f32>()?, n, k);
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let mut line = format!("{:>20} {m:>4}x{k:>4}->{n:>4} {:>10.1}", name, macs / f32_time);
        for kernel in Kernel::available() {
            let t = best(5, || {
                q.matmul_with(kernel, &xs, m, None);
            });
            line.push_str(&format!("  {} {:.1}", kernel.name(), macs / t));
        }
        println!("{line}");
    }
    Ok(())
}
