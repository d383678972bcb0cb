//! The int8 matrix product `y = x · Wᵀ (+ b)` for inference.
//!
//! - Weights `W` (`rows × cols`, one row per output channel) are quantised
//!   once, symmetrically per row and per block of [`BLOCK`] inputs:
//!   `w ≈ s_w · q_w`, `q_w ∈ [-127, 127]`, and packed in panels of [`PANEL`]
//!   output channels × 4 consecutive inputs, the layout the dot-product
//!   instructions read. One scale per row was enough for MiniLM, not for
//!   SmolLM2's weights, which the GGUF stores in 4-bit blocks of 32 with a
//!   scale each: a row's largest block set the step of all the others.
//!   With a scale per block, as the activations have, its zero-shot labels
//!   agree with f32 on 97 of 100 validation items, against 95 with one per
//!   row (`tests/local_llm.rs`).
//! - Activations are quantised when the product runs, symmetrically per row
//!   and per block of [`BLOCK`] inputs: `x ≈ s_x · q_x`, `q_x ∈ [-127, 127]`.
//!   Transformers carry a few very large values in fixed channels: with one
//!   scale per row they flatten every other value of the row (SmolLM2's
//!   next-token logits fell to cosine 0.94 of f32); with one per block they
//!   only cost their own block.
//! - The instructions multiply an unsigned byte by a signed one. AVX2's
//!   `vpmaddubsw` adds two such products in a saturating i16, so it takes
//!   `|q_w|` and `q_x` with `q_w`'s sign (`vpsignb`, as llama.cpp does):
//!   `2 · 127 · 127` fits. (The usual alternative, 7-bit weights, fbgemm's
//!   `reduce_range`, left MiniLM embeddings 2.4x further from f32: mean
//!   cosine 0.9980 against 0.9992.) AVX-512 VNNI's `vpdpbusd` sums in i32
//!   and takes `q_x + 128` directly, then subtracts `128 · Σ q_w`.
//! - A block's sum is exact in i32; the blocks are added in f32 with fused
//!   multiply-adds in one fixed order. Every [`Kernel`] therefore returns the
//!   same floats: an int8 result does not depend on the CPU it ran on.
//!   `y = Σ_blocks s_x · (s_w · (Σ code · q_w − 128 · Σ q_w)) + b`.

use rayon::prelude::*;

/// Names the quantisation scheme, for caches of its results: a change to
/// the scheme changes the numbers, so it must change this name.
pub const SCHEME: &str = "int8 (weights and activations 8-bit per 64-input block)";

/// Output channels per packed panel: one 512-bit or two 256-bit registers.
pub const PANEL: usize = 16;
/// Inputs that share one activation scale.
pub const BLOCK: usize = 64;
/// Inputs summed per i32 lane by one dot-product instruction.
const GROUP: usize = 4;
const GROUPS_PER_BLOCK: usize = BLOCK / GROUP;
/// Bytes of one panel's group: `PANEL × GROUP`.
const PANEL_GROUP_BYTES: usize = PANEL * GROUP;
/// The most activation rows any kernel computes at once.
const MAX_TILE_ROWS: usize = 8;
/// Activation rows one task computes against every panel (its codes stay in L2).
const ROWS_PER_TASK: usize = 64;
/// Largest activation and weight magnitude.
const ACTIVATION_MAX: f32 = 127.0;
const WEIGHT_MAX: f32 = 127.0;
/// What makes an activation unsigned for `vpdpbusd`.
const CODE_OFFSET: i32 = 128;

type Tile = [[f32; PANEL]; MAX_TILE_ROWS];

/// An implementation of the tile product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust: any CPU, the reference the others are tested against.
    Portable,
    /// `vpmaddubsw` + `vpmaddwd` on 256-bit registers (x86-64 with AVX2 and FMA).
    Avx2,
    /// `vpdpbusd` on 512-bit registers (AVX-512 VNNI: Zen 4, Ice Lake and later).
    Avx512Vnni,
}

impl Kernel {
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512Vnni => "avx512-vnni",
        }
    }

    /// Whether this CPU can run it.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernels this CPU can run, slowest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// The fastest available kernel, or the one named by `SLM_INT8_KERNEL`
    /// (`portable`, `avx2`, `avx512-vnni`) when this CPU has it.
    pub fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let fastest = *Kernel::available().last().expect("the portable kernel is always available");
            let Ok(wanted) = std::env::var("SLM_INT8_KERNEL") else { return fastest };
            match Kernel::ALL.into_iter().find(|k| k.name() == wanted) {
                Some(k) if k.is_available() => k,
                _ => {
                    tracing::warn!(wanted, using = fastest.name(), "SLM_INT8_KERNEL names no kernel this CPU has");
                    fastest
                }
            }
        })
    }

    /// Whether the kernel reads each activation code as `q_x + 128` in an
    /// unsigned byte: stored so when quantised, not converted in its loop.
    fn offsets_codes(self) -> bool {
        self == Kernel::Avx512Vnni
    }

    /// Rows of activations per tile.
    fn tile_rows(self) -> usize {
        match self {
            Kernel::Avx512Vnni => 8,
            _ => 4,
        }
    }

    /// `tile[i][j] = Σ_blocks s_x[i, block] · Σ_k q_x[i, k] · q_w[k, j]` for
    /// `rows` rows of activations `x` and one weight panel.
    fn tile(self, rows: usize, x: RowsView, panel: PanelView, tile: &mut Tile) {
        // The bounds the kernels' unchecked reads stay within, checked in
        // release builds too: once a tile, a handful of compares against a
        // tile's thousands of multiply-adds.
        assert!((1..=self.tile_rows()).contains(&rows), "{rows} rows for a tile of {}", self.tile_rows());
        assert!(x.codes.len() >= (rows - 1) * x.stride + panel.blocks * BLOCK, "activation codes out of bounds");
        assert!(x.scales.len() >= (rows - 1) * panel.blocks + panel.blocks, "activation scales out of bounds");
        assert!(panel.weights.len() >= panel.blocks * GROUPS_PER_BLOCK * PANEL_GROUP_BYTES, "weights out of bounds");
        assert!(panel.block_sums.len() >= panel.blocks * PANEL, "block sums out of bounds");
        assert!(panel.block_scales.len() >= panel.blocks * PANEL, "weight scales out of bounds");
        match self {
            Kernel::Portable => tile_portable(rows, x, panel, tile),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `best`/`is_available` checked the CPU features; the
            // assertions above are the bounds the kernels read within.
            Kernel::Avx2 => unsafe {
                match rows {
                    4 => x86::tile_avx2::<4>(x, panel, tile),
                    3 => x86::tile_avx2::<3>(x, panel, tile),
                    2 => x86::tile_avx2::<2>(x, panel, tile),
                    _ => x86::tile_avx2::<1>(x, panel, tile),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512Vnni => unsafe {
                match rows {
                    8 => x86::tile_vnni::<8>(x, panel, tile),
                    7 => x86::tile_vnni::<7>(x, panel, tile),
                    6 => x86::tile_vnni::<6>(x, panel, tile),
                    5 => x86::tile_vnni::<5>(x, panel, tile),
                    4 => x86::tile_vnni::<4>(x, panel, tile),
                    3 => x86::tile_vnni::<3>(x, panel, tile),
                    2 => x86::tile_vnni::<2>(x, panel, tile),
                    _ => x86::tile_vnni::<1>(x, panel, tile),
                }
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => tile_portable(rows, x, panel, tile),
        }
    }
}

/// Activation rows from the first one a tile computes: `q_x` (`stride` a
/// row) and one scale per row and block.
#[derive(Clone, Copy)]
struct RowsView<'a> {
    codes: &'a [i8],
    stride: usize,
    scales: &'a [f32],
}

/// One weight panel: `blocks` blocks of packed weights and, per block and
/// channel, `s_w` and `128 · Σ q_w` (to take `vpdpbusd`'s offset out).
#[derive(Clone, Copy)]
struct PanelView<'a> {
    weights: &'a [i8],
    block_scales: &'a [f32],
    block_sums: &'a [i32],
    blocks: usize,
}

fn tile_portable(rows: usize, x: RowsView, panel: PanelView, tile: &mut Tile) {
    for (i, out) in tile.iter_mut().enumerate().take(rows) {
        let codes = &x.codes[i * x.stride..];
        let mut total = [0f32; PANEL];
        for block in 0..panel.blocks {
            let mut acc = [0i32; PANEL];
            for g in block * GROUPS_PER_BLOCK..(block + 1) * GROUPS_PER_BLOCK {
                let codes = &codes[g * GROUP..(g + 1) * GROUP];
                let weights = &panel.weights[g * PANEL_GROUP_BYTES..(g + 1) * PANEL_GROUP_BYTES];
                for (j, acc) in acc.iter_mut().enumerate() {
                    for t in 0..GROUP {
                        *acc += codes[t] as i32 * weights[j * GROUP + t] as i32;
                    }
                }
            }
            let scale = x.scales[i * panel.blocks + block];
            let weight_scales = &panel.block_scales[block * PANEL..(block + 1) * PANEL];
            for j in 0..PANEL {
                total[j] = (acc[j] as f32 * weight_scales[j]).mul_add(scale, total[j]);
            }
        }
        *out = total;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // register arrays, indexed in step
mod x86 {
    use std::arch::x86_64::*;

    use super::{PanelView, RowsView, Tile, GROUP, GROUPS_PER_BLOCK, PANEL, PANEL_GROUP_BYTES};

    /// The 4 codes of row `i`, group `g`, as one i32 to broadcast.
    #[inline(always)]
    unsafe fn codes(x: &RowsView, i: usize, g: usize) -> i32 {
        std::ptr::read_unaligned(x.codes.as_ptr().add(i * x.stride + g * GROUP).cast::<i32>())
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2<const R: usize>(x: RowsView, panel: PanelView, tile: &mut Tile) {
        let ones = _mm256_set1_epi16(1);
        // |q_w| · (q_x with q_w's sign): u8 × i8 pairs, at most 2 · 127 · 127 in i16.
        let b = panel.weights.as_ptr();
        let mut low_total = [_mm256_setzero_ps(); R];
        let mut high_total = [_mm256_setzero_ps(); R];
        for block in 0..panel.blocks {
            let mut low = [_mm256_setzero_si256(); R];
            let mut high = [_mm256_setzero_si256(); R];
            for g in block * GROUPS_PER_BLOCK..(block + 1) * GROUPS_PER_BLOCK {
                let b0 = _mm256_loadu_si256(b.add(g * PANEL_GROUP_BYTES).cast());
                let b1 = _mm256_loadu_si256(b.add(g * PANEL_GROUP_BYTES + 32).cast());
                let (m0, m1) = (_mm256_abs_epi8(b0), _mm256_abs_epi8(b1));
                for i in 0..R {
                    let a = _mm256_set1_epi32(codes(&x, i, g));
                    let p0 = _mm256_maddubs_epi16(m0, _mm256_sign_epi8(a, b0));
                    let p1 = _mm256_maddubs_epi16(m1, _mm256_sign_epi8(a, b1));
                    low[i] = _mm256_add_epi32(low[i], _mm256_madd_epi16(p0, ones));
                    high[i] = _mm256_add_epi32(high[i], _mm256_madd_epi16(p1, ones));
                }
            }
            let low_weights = _mm256_loadu_ps(panel.block_scales.as_ptr().add(block * PANEL));
            let high_weights = _mm256_loadu_ps(panel.block_scales.as_ptr().add(block * PANEL + PANEL / 2));
            for i in 0..R {
                let scale = _mm256_set1_ps(*x.scales.get_unchecked(i * panel.blocks + block));
                let low_sum = _mm256_mul_ps(_mm256_cvtepi32_ps(low[i]), low_weights);
                let high_sum = _mm256_mul_ps(_mm256_cvtepi32_ps(high[i]), high_weights);
                low_total[i] = _mm256_fmadd_ps(low_sum, scale, low_total[i]);
                high_total[i] = _mm256_fmadd_ps(high_sum, scale, high_total[i]);
            }
        }
        for i in 0..R {
            _mm256_storeu_ps(tile[i].as_mut_ptr(), low_total[i]);
            _mm256_storeu_ps(tile[i].as_mut_ptr().add(PANEL / 2), high_total[i]);
        }
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile_vnni<const R: usize>(x: RowsView, panel: PanelView, tile: &mut Tile) {
        let b = panel.weights.as_ptr();
        // The codes are q_x + 128 (`Kernel::offsets_codes`), the unsigned
        // operand vpdpbusd takes, broadcast straight from memory.
        let mut total = [_mm512_setzero_ps(); R];
        for block in 0..panel.blocks {
            let mut acc = [_mm512_setzero_si512(); R];
            for g in block * GROUPS_PER_BLOCK..(block + 1) * GROUPS_PER_BLOCK {
                let w = _mm512_loadu_si512(b.add(g * PANEL_GROUP_BYTES).cast());
                for i in 0..R {
                    acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(codes(&x, i, g)), w);
                }
            }
            let sums = _mm512_loadu_si512(panel.block_sums.as_ptr().add(block * PANEL).cast());
            let weight_scales = _mm512_loadu_ps(panel.block_scales.as_ptr().add(block * PANEL));
            for i in 0..R {
                let scale = _mm512_set1_ps(*x.scales.get_unchecked(i * panel.blocks + block));
                let exact = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], sums)), weight_scales);
                total[i] = _mm512_fmadd_ps(exact, scale, total[i]);
            }
        }
        for i in 0..R {
            _mm512_storeu_ps(tile[i].as_mut_ptr(), total[i]);
        }
    }
}

thread_local! {
    static FORCED_KERNEL: std::cell::Cell<Option<Kernel>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every int8 product started on this thread using `kernel`
/// (which must be available): to test and time each path on one machine.
pub fn with_kernel<T>(kernel: Kernel, f: impl FnOnce() -> T) -> T {
    assert!(kernel.is_available(), "the {} kernel needs CPU features this CPU lacks", kernel.name());
    struct Restore(Option<Kernel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED_KERNEL.set(self.0);
        }
    }
    let _restore = Restore(FORCED_KERNEL.replace(Some(kernel)));
    f()
}

/// A weight matrix quantised to 8-bit integers per output channel and block of inputs, packed in panels.
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    rows: usize,
    cols: usize,
    /// Blocks of [`BLOCK`] inputs (`cols` rounded up).
    blocks: usize,
    /// Panel `p`, group `g`, channel `j`, input `t` at `((p·groups + g)·PANEL + j)·GROUP + t`.
    packed: Vec<i8>,
    /// Panel `p`, block `b`, channel `j` at `(p·blocks + b)·PANEL + j`: the block's `s_w`.
    block_scales: Vec<f32>,
    /// Laid out as `block_scales`: `128 · Σ q_w` over the block.
    block_sums: Vec<i32>,
}

/// Activations quantised per row and block: `x ≈ scale · q_x`.
struct QuantizedRows {
    /// Row-major, `blocks · BLOCK` codes a row (padded with code 0): `q_x`,
    /// or `q_x + 128` as unsigned bytes for a kernel that `offsets_codes`.
    codes: Vec<i8>,
    stride: usize,
    /// Row-major, `blocks` scales a row.
    scales: Vec<f32>,
}

impl QuantizedMatrix {
    /// Quantises a row-major `rows × cols` f32 matrix.
    pub fn quantize(w: &[f32], rows: usize, cols: usize) -> QuantizedMatrix {
        assert_eq!(w.len(), rows * cols, "a {rows}×{cols} matrix has {} elements", rows * cols);
        let blocks = cols.div_ceil(BLOCK);
        let groups = blocks * GROUPS_PER_BLOCK;
        let panels = rows.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * groups * PANEL_GROUP_BYTES];
        // Padding channels keep scale 0: they add nothing.
        let mut block_scales = vec![0f32; panels * blocks * PANEL];
        let mut block_sums = vec![0i32; panels * blocks * PANEL];
        packed
            .par_chunks_mut(groups * PANEL_GROUP_BYTES)
            .zip(block_scales.par_chunks_mut(blocks * PANEL).zip(block_sums.par_chunks_mut(blocks * PANEL)))
            .enumerate()
            .for_each(|(p, (panel, (scales, sums)))| {
                for j in 0..PANEL.min(rows - p * PANEL) {
                    let r = p * PANEL + j;
                    let row = &w[r * cols..(r + 1) * cols];
                    for (b, values) in row.chunks(BLOCK).enumerate() {
                        let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let scale = if amax > 0.0 { amax / WEIGHT_MAX } else { 1.0 };
                        for (t, &v) in values.iter().enumerate() {
                            let c = b * BLOCK + t;
                            let q = (v / scale).round_ties_even().clamp(-WEIGHT_MAX, WEIGHT_MAX) as i8;
                            panel[(c / GROUP * PANEL + j) * GROUP + c % GROUP] = q;
                            sums[b * PANEL + j] += CODE_OFFSET * q as i32;
                        }
                        scales[b * PANEL + j] = scale;
                    }
                }
            });
        QuantizedMatrix { rows, cols, blocks, packed, block_scales, block_sums }
    }

    /// Output channels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Inputs.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn groups(&self) -> usize {
        self.blocks * GROUPS_PER_BLOCK
    }

    /// The f32 matrix these integers stand for, `s_w · q_w` (row-major).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            let (p, j) = (r / PANEL, r % PANEL);
            for c in 0..self.cols {
                let q = self.packed[((p * self.groups() + c / GROUP) * PANEL + j) * GROUP + c % GROUP];
                w[r * self.cols + c] = self.block_scales[(p * self.blocks + c / BLOCK) * PANEL + j] * q as f32;
            }
        }
        w
    }

    /// `x · Wᵀ + bias` for the `m × cols` row-major `x`, with the fastest
    /// kernel (or the one [`with_kernel`] set on this thread).
    pub fn matmul(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let kernel = FORCED_KERNEL.get().unwrap_or_else(Kernel::best);
        self.matmul_with(kernel, x, m, bias)
    }

    /// [`QuantizedMatrix::matmul`] with a given kernel (which must be available).
    pub fn matmul_with(&self, kernel: Kernel, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert!(kernel.is_available(), "the {} kernel needs CPU features this CPU lacks", kernel.name());
        assert_eq!(x.len(), m * self.cols, "x is not {m}×{}", self.cols);
        if let Some(b) = bias {
            assert_eq!(b.len(), self.rows, "bias has {} values for {} outputs", b.len(), self.rows);
        }
        let n = self.rows;
        if m == 0 || n == 0 {
            return vec![0f32; m * n];
        }
        let x = quantize_rows(x, m, self.cols, self.blocks, kernel.offsets_codes());
        let threads = rayon::current_num_threads().max(1);
        let rows_per_task = m.div_ceil(threads).next_multiple_of(kernel.tile_rows()).clamp(1, ROWS_PER_TASK);
        // Not zero-filled first: every element is written below, and the
        // memset (with its page faults) was 2.6% of the int8 embedder's time.
        let mut y = Vec::with_capacity(m * n);
        y.spare_capacity_mut()[..m * n]
            .par_chunks_mut(rows_per_task * n)
            .enumerate()
            .for_each(|(task, y)| self.rows_times_panels(kernel, &x, task * rows_per_task, y.len() / n, bias, y));
        // SAFETY: `rows_times_panels` wrote all `m · n` elements: each task
        // writes every channel of each of its rows.
        unsafe { y.set_len(m * n) };
        y
    }

    /// Rows `first..first + count` of the product, every panel, into `y`.
    fn rows_times_panels(
        &self,
        kernel: Kernel,
        x: &QuantizedRows,
        first: usize,
        count: usize,
        bias: Option<&[f32]>,
        y: &mut [std::mem::MaybeUninit<f32>],
    ) {
        let n = self.rows;
        let no_bias;
        let bias = match bias {
            Some(b) => b,
            None => {
                no_bias = vec![0f32; n];
                &no_bias
            }
        };
        let mut tile: Tile = [[0.0; PANEL]; MAX_TILE_ROWS];
        let panel_bytes = self.groups() * PANEL_GROUP_BYTES;
        let per_panel = self.blocks * PANEL;
        let panels = self
            .packed
            .chunks_exact(panel_bytes)
            .zip(self.block_scales.chunks_exact(per_panel).zip(self.block_sums.chunks_exact(per_panel)));
        for (p, (weights, (block_scales, block_sums))) in panels.enumerate() {
            let panel = PanelView { weights, block_scales, block_sums, blocks: self.blocks };
            let channels = p * PANEL..((p + 1) * PANEL).min(n);
            let mut done = 0;
            while done < count {
                let rows = kernel.tile_rows().min(count - done);
                let row = first + done;
                let view = RowsView {
                    codes: &x.codes[row * x.stride..],
                    stride: x.stride,
                    scales: &x.scales[row * self.blocks..],
                };
                kernel.tile(rows, view, panel, &mut tile);
                for (i, tile) in tile.iter().enumerate().take(rows) {
                    let out = &mut y[(done + i) * n + channels.start..(done + i) * n + channels.end];
                    for ((out, &sum), &b) in out.iter_mut().zip(tile).zip(&bias[channels.clone()]) {
                        out.write(sum + b);
                    }
                }
                done += rows;
            }
        }
    }
}

/// Quantises each block of [`BLOCK`] inputs of each row of `x` (`m × cols`)
/// to `[-127, 127]` with its own scale; with `offset`, stores each code plus
/// 128 as an unsigned byte.
fn quantize_rows(x: &[f32], m: usize, cols: usize, blocks: usize, offset: bool) -> QuantizedRows {
    let stride = blocks * BLOCK;
    let offset = if offset { CODE_OFFSET } else { 0 };
    // Padding is code 0 as well (its weights are 0: it adds nothing either way).
    let mut codes = vec![offset as u8 as i8; m * stride];
    let mut scales = vec![0f32; m * blocks];
    codes.par_chunks_mut(stride).zip(scales.par_chunks_mut(blocks)).enumerate().for_each(|(r, (codes, scales))| {
        let row = &x[r * cols..(r + 1) * cols];
        for ((values, codes), scale) in row.chunks(BLOCK).zip(codes.chunks_mut(BLOCK)).zip(scales.iter_mut()) {
            let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = amax / ACTIVATION_MAX;
            let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
            let inv = 1.0 / s;
            for (c, &v) in codes.iter_mut().zip(values) {
                // Not `clamp`: it passes NaN through, and NaN must not reach the conversion.
                #[allow(clippy::manual_clamp)]
                let q = (v * inv).round_ties_even().max(-ACTIVATION_MAX).min(ACTIVATION_MAX);
                // SAFETY: `q` is finite and in [-127, 127] (NaN became -127 at `max`);
                // an unchecked conversion lets the loop vectorise.
                *c = (unsafe { q.to_int_unchecked::<i32>() } + offset) as u8 as i8;
            }
            *scale = s;
        }
    });
    QuantizedRows { codes, stride, scales }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(len: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-spread..spread)).collect()
    }

    fn f32_product(x: &[f32], w: &[f32], m: usize, n: usize, k: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|t| x[i * k + t] as f64 * w[j * k + t] as f64).sum();
                y[i * n + j] = dot as f32 + bias.map_or(0.0, |b| b[j]);
            }
        }
        y
    }

    /// Shapes with every remainder: rows not a multiple of any tile, columns
    /// not of the group, channels not of the panel.
    const SHAPES: [(usize, usize, usize); 5] = [(1, 1, 1), (3, 5, 17), (7, 33, 31), (70, 64, 48), (129, 387, 45)];

    #[test]
    fn every_available_kernel_returns_the_portable_kernels_numbers_exactly() {
        let available = Kernel::available();
        eprintln!("int8 kernels on this CPU: {:?}", available.iter().map(|k| k.name()).collect::<Vec<_>>());
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let x = random(m * k, s as u64, 3.0);
            let w = random(n * k, 100 + s as u64, 0.5);
            let bias = random(n, 200 + s as u64, 1.0);
            let q = QuantizedMatrix::quantize(&w, n, k);
            let reference = q.matmul_with(Kernel::Portable, &x, m, Some(&bias));
            for &kernel in &available {
                assert_eq!(q.matmul_with(kernel, &x, m, Some(&bias)), reference, "{} on {m}×{k}×{n}", kernel.name());
            }
        }
    }

    #[test]
    fn the_portable_kernel_is_the_f32_product_within_the_quantisation_error() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let x = random(m * k, s as u64, 3.0);
            let w = random(n * k, 100 + s as u64, 0.5);
            let q = QuantizedMatrix::quantize(&w, n, k);
            let got = q.matmul_with(Kernel::Portable, &x, m, None);
            let want = f32_product(&x, &w, m, n, k, None);
            // Per term: |x|·half a weight step + |w|·half an activation step.
            let bound = k as f32 * (3.0 * 0.5 / WEIGHT_MAX / 2.0 + 0.5 * 3.0 / ACTIVATION_MAX / 2.0) * 1.01;
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= bound, "{m}×{k}×{n}: {g} vs {w} (bound {bound})");
            }
        }
    }

    #[test]
    fn weights_round_trip_within_half_their_blocks_step_and_zero_rows_stay_zero() {
        let (n, k) = (21, 2 * BLOCK + 10);
        let mut w = random(n * k, 7, 2.0);
        w[3 * k..4 * k].fill(0.0);
        // A large weight in one block must not coarsen the row's other blocks.
        w[5 * k] = 500.0;
        let q = QuantizedMatrix::quantize(&w, n, k);
        let back = q.dequantize();
        for r in 0..n {
            for (b, block) in w[r * k..(r + 1) * k].chunks(BLOCK).enumerate() {
                let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (t, &v) in block.iter().enumerate() {
                    let c = r * k + b * BLOCK + t;
                    assert!((back[c] - v).abs() <= amax / WEIGHT_MAX / 2.0 * 1.0001, "row {r}, block {b}");
                }
            }
        }
        assert!(back[3 * k..4 * k].iter().all(|&v| v == 0.0));
        assert!((back[5 * k + BLOCK] - w[5 * k + BLOCK]).abs() <= 2.0 / WEIGHT_MAX, "the next block keeps its step");
    }

    #[test]
    fn activation_blocks_have_their_own_scales_and_keep_zero_exact() {
        // A huge value in the first block must not flatten the second block.
        let mut x = vec![0.01f32; 2 * BLOCK];
        x[0] = 1000.0;
        x[BLOCK + 1] = -0.02;
        x[BLOCK + 2] = 0.0;
        let q = quantize_rows(&x, 1, 2 * BLOCK, 2, false);
        assert_eq!(q.codes[0], 127);
        assert_eq!(q.codes[BLOCK + 2], 0, "zero stays exact");
        for (c, &v) in x.iter().enumerate().skip(BLOCK) {
            let back = q.scales[1] * q.codes[c] as f32;
            assert!((back - v).abs() <= q.scales[1] / 2.0 * 1.0001, "{back} vs {v}");
        }
        assert!(q.scales[1] < 0.02 / 100.0, "the second block's scale follows its own values");
    }

    #[test]
    fn offset_codes_are_the_plain_codes_plus_128_padding_included() {
        // Checked here too because only a CPU with VNNI runs the offset codes through a kernel.
        let x = random(3 * 70, 7, 3.0);
        let (plain, offset) = (quantize_rows(&x, 3, 70, 2, false), quantize_rows(&x, 3, 70, 2, true));
        assert_eq!(plain.scales, offset.scales);
        for (&p, &o) in plain.codes.iter().zip(&offset.codes) {
            assert_eq!(o as u8 as i32, p as i32 + CODE_OFFSET);
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate_the_avx2_pairs() {
        // All activations 127 against weights of ±127: the largest pair sums.
        let (m, k, n) = (5, 64, 16);
        let x = vec![1.0f32; m * k];
        let w: Vec<f32> = (0..n * k).map(|i| if (i / 2) % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let q = QuantizedMatrix::quantize(&w, n, k);
        let want = f32_product(&x, &w, m, n, k, None);
        for kernel in Kernel::available() {
            let got = q.matmul_with(kernel, &x, m, None);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-3, "{}: {g} vs {w}", kernel.name());
            }
        }
    }
}
