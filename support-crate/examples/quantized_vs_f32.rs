//! Why the embedded LLM dequantises its GGUF: milliseconds per prompt token
//! of candle's quantized Llama with its Q4_1 kernels against the same
//! weights dequantised to f32, continuing a 400-token cached prefix by
//! 1-280 tokens (one item is ~70 tokens; `pack_tokens` packs several).
//!
//! ```bash
//! cargo run --release --example quantized_vs_f32 -- data/models/SmolLM2-135M-Instruct/*.gguf
//! ```
//! (`CANDLE_DEQUANTIZE_ALL` is read once per thread, so each variant loads on its own thread.)

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

fn ms_per_token(path: &str, dequantize: bool) -> anyhow::Result<Vec<(usize, f64)>> {
    let path = path.to_string();
    std::thread::spawn(move || -> anyhow::Result<Vec<(usize, f64)>> {
        // Read by candle on this thread's first quantized load; nothing else runs meanwhile.
        std::env::set_var("CANDLE_DEQUANTIZE_ALL", if dequantize { "1" } else { "0" });
        let mut file = std::fs::File::open(&path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let model = ModelWeights::from_gguf(content, &mut file, &Device::Cpu)?;
        let mut with_prefix = model.clone();
        let prefix: Vec<u32> = (0..400u32).map(|i| 500 + i).collect();
        with_prefix.forward(&Tensor::new(prefix.as_slice(), &Device::Cpu)?.unsqueeze(0)?, 0)?;
        let mut rows = Vec::new();
        for len in [1usize, 8, 35, 70, 140, 280] {
            let ids: Vec<u32> = (0..len as u32).map(|i| 100 + i).collect();
            let start = std::time::Instant::now();
            for _ in 0..3 {
                let mut m = with_prefix.clone();
                m.forward(&Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?, 400)?;
            }
            rows.push((len, 1000.0 * start.elapsed().as_secs_f64() / 3.0 / len as f64));
        }
        Ok(rows)
    })
    .join()
    .expect("benchmark thread")
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).expect("usage: quantized_vs_f32 FILE.gguf");
    let quantized = ms_per_token(&path, false)?;
    let f32 = ms_per_token(&path, true)?;
    println!("tokens per pass | Q4_1 kernels ms/token | f32 ms/token | f32 speed-up");
    for ((len, q), (_, f)) in quantized.iter().zip(&f32) {
        println!("{len:>15} | {q:>21.2} | {f:>11.2} | {:>11.2}x", q / f);
    }
    Ok(())
}
