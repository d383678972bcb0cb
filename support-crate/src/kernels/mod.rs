//! Low-precision matrix products for inference, with the kernel chosen at
//! run time from the CPU's features (no `-C target-cpu=native` needed).
//!
//! [`int8`] holds the integer product: weights quantised once per output
//! channel to i8, activations per row and block of inputs to i8, sums exact
//! in i32. Every kernel computes the same integers, so int8 results are
//! identical on every CPU kind; only their speed differs. [`linear`] wraps it
//! as a candle op and as [`linear::Dense`], the layer the models use.

pub mod gemm;
pub mod int8;
pub mod linear;
pub mod math;

use candle_core::{CpuStorage, Layout};
use serde::{Deserialize, Serialize};

/// The f32 data under `layout`, for a custom op (`op` names it in the error)
/// whose kernel reads its input as one contiguous slice.
pub(crate) fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = storage else { candle_core::bail!("{op}: f32 input only") };
    let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("{op}: contiguous input only") };
    Ok(&all[start..end])
}

/// The arithmetic of the inference matmuls of the embedder, the classifier
/// and the embedded LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 weights and products: the reference, and what training uses.
    #[default]
    F32,
    /// i8 weights and activations, each quantised per row and block of 64
    /// inputs, exact i32 sums (see [`int8`]). Over f32 on 2 cores (weights
    /// then per row): MiniLM 1.48x (Zen 3, AVX2) and 2.16x (Zen 4, VNNI), the
    /// SmolLM2 classifier 1.26x and 2.66x (BENCHMARKS.md).
    Int8,
    /// int8 where the CPU has an integer dot-product kernel (AVX2 or
    /// AVX-512 VNNI), else f32.
    Auto,
}

impl Precision {
    /// What `self` means on this CPU: never `Auto`.
    pub fn resolve(self) -> Precision {
        match self {
            Precision::Auto if int8::Kernel::best() != int8::Kernel::Portable => Precision::Int8,
            Precision::Auto => Precision::F32,
            other => other,
        }
    }

    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::Auto => "auto",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The SIMD features this crate's kernels (and candle's) care about, as
/// detected at run time: `["avx2", "fma", "avx512f", ...]`.
pub fn cpu_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut found = Vec::new();
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { found.push($f); } )* };
        }
        probe!("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", "avxvnni");
        found
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}
