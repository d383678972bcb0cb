//! Peak multiply-add rate of one core for each 512-bit dot-product
//! instruction a low-precision kernel could be built on: f32 FMA
//! (`vfmadd231ps`), int8 VNNI (`vpdpbusd`) and bf16 (`vdpbf16ps`), in
//! registers only (no memory traffic), with enough independent accumulators
//! to hide their latency. It is the ceiling each kind of kernel can reach:
//! the reason `kernels/` has an int8 path and no bf16 one.
//!
//! ```bash
//! cargo run --release --example dot_instruction_rates
//! ```

use std::time::Instant;

const ITERATIONS: usize = 20_000_000;

fn main() {
    println!("features: {}", slm_vs_llm::kernels::cpu_features().join(" "));
    #[cfg(target_arch = "x86_64")]
    x86::run();
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Instant, ITERATIONS};

    /// Multiply-adds of one instruction on 512-bit registers.
    const FMA_MACS: f64 = 16.0;
    const VNNI_MACS: f64 = 64.0;
    const BF16_MACS: f64 = 32.0;

    /// Ten chains of `op` on independent accumulators; returns GMAC/s.
    macro_rules! rate {
        ($macs:expr, $zero:expr, $a:expr, $b:expr, $op:ident) => {{
            let mut acc = [$zero; 10];
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                for r in acc.iter_mut() {
                    *r = $op(*r, $a, $b);
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            std::hint::black_box(acc);
            (ITERATIONS * 10) as f64 * $macs / seconds / 1e9
        }};
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn fma() -> f64 {
        let (a, b) = (std::hint::black_box(_mm512_set1_ps(1.0)), std::hint::black_box(_mm512_set1_ps(1e-9)));
        rate!(FMA_MACS, _mm512_setzero_ps(), a, b, fma_into)
    }

    #[inline(always)]
    unsafe fn fma_into(acc: __m512, a: __m512, b: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, acc)
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn vnni() -> f64 {
        let (a, b) = (std::hint::black_box(_mm512_set1_epi8(1)), std::hint::black_box(_mm512_set1_epi8(0)));
        rate!(VNNI_MACS, _mm512_setzero_si512(), a, b, _mm512_dpbusd_epi32)
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn bf16() -> f64 {
        let a = std::hint::black_box(_mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0), _mm512_set1_ps(1.0)));
        let b = std::hint::black_box(_mm512_cvtne2ps_pbh(_mm512_set1_ps(0.0), _mm512_set1_ps(0.0)));
        rate!(BF16_MACS, _mm512_setzero_ps(), a, b, _mm512_dpbf16_ps)
    }

    pub fn run() {
        let features = slm_vs_llm::kernels::cpu_features();
        let has = |f: &str| features.contains(&f);
        println!("{:>24} {:>12}", "instruction (512-bit)", "GMAC/s/core");
        if has("avx512f") {
            // SAFETY: each function runs only where its features were detected.
            println!("{:>24} {:>12.1}", "vfmadd231ps (f32)", unsafe { fma() });
        }
        if has("avx512vnni") {
            println!("{:>24} {:>12.1}", "vpdpbusd (u8 x i8)", unsafe { vnni() });
        }
        if has("avx512bf16") {
            println!("{:>24} {:>12.1}", "vdpbf16ps (bf16)", unsafe { bf16() });
        }
    }
}
