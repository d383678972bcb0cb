//! The int8 matrix product `y = x · Wᵀ (+ b)` for inference.
//!
//! - Weights `W` (`rows × cols`, one row per output channel) are quantised
//!   once, symmetrically per row: `w ≈ s_w · q_w`, `q_w ∈ [-127, 127]`, and
//!   packed in panels of [`PANEL`] output channels × 4 consecutive inputs, the
//!   layout the dot-product instructions read.
//! - Activations are quantised per row when the product runs, asymmetrically
//!   to 7-bit codes: `x ≈ s_x · (c − z)`, `c ∈ [0, 127]`. Seven bits, not
//!   eight, because AVX2's `vpmaddubsw` adds two `u8 × i8` products in a
//!   saturating i16: `2 · 127 · 127` fits, `2 · 255 · 127` does not. (PyTorch's
//!   fbgemm backend narrows the range the same way, `reduce_range`.)
//! - Sums are exact in i32, so every [`Kernel`] returns the same integers and
//!   the same floats: an int8 result does not depend on the CPU it ran on.
//!   `y = s_x · s_w · (Σ c·q_w − z · Σ q_w) + b`.

use rayon::prelude::*;

/// Output channels per packed panel: one 512-bit or two 256-bit registers of i32.
pub const PANEL: usize = 16;
/// Inputs summed per i32 lane by one dot-product instruction.
const GROUP: usize = 4;
/// Bytes of one panel's group: `PANEL × GROUP`.
const PANEL_GROUP_BYTES: usize = PANEL * GROUP;
/// The most activation rows any kernel computes at once.
const MAX_TILE_ROWS: usize = 8;
/// Activation rows one task computes against every panel (its codes stay in L2).
const ROWS_PER_TASK: usize = 64;
/// Largest activation code: 8 bits.
const CODE_MAX: f32 = 255.0;
/// Largest weight magnitude: 7 bits (see the module docs).
const WEIGHT_MAX: f32 = 63.0;

type Tile = [[i32; PANEL]; MAX_TILE_ROWS];

/// An implementation of the integer tile product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust: any CPU, the reference the others are tested against.
    Portable,
    /// `vpmaddubsw` + `vpmaddwd` on 256-bit registers (x86-64 with AVX2).
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
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
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

    /// Rows of activations per tile.
    fn tile_rows(self) -> usize {
        match self {
            Kernel::Avx512Vnni => 8,
            _ => 4,
        }
    }

    /// `tile[i][j] = Σ_k a[i·stride + k] · b[k, j]` for `rows` rows and one
    /// panel `b` of `groups` groups.
    fn tile(self, rows: usize, a: &[u8], stride: usize, b: &[i8], groups: usize, tile: &mut Tile) {
        debug_assert!(rows <= self.tile_rows() && a.len() >= (rows - 1) * stride + groups * GROUP);
        debug_assert!(b.len() >= groups * PANEL_GROUP_BYTES);
        match self {
            Kernel::Portable => tile_portable(rows, a, stride, b, groups, tile),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `best`/`is_available` checked the CPU features; the
            // debug assertions above are the bounds the kernels read within.
            Kernel::Avx2 => unsafe {
                let (a, b) = (a.as_ptr(), b.as_ptr());
                match rows {
                    4 => x86::tile_avx2::<4>(a, stride, b, groups, tile),
                    3 => x86::tile_avx2::<3>(a, stride, b, groups, tile),
                    2 => x86::tile_avx2::<2>(a, stride, b, groups, tile),
                    _ => x86::tile_avx2::<1>(a, stride, b, groups, tile),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512Vnni => unsafe {
                let (a, b) = (a.as_ptr(), b.as_ptr());
                match rows {
                    8 => x86::tile_vnni::<8>(a, stride, b, groups, tile),
                    7 => x86::tile_vnni::<7>(a, stride, b, groups, tile),
                    6 => x86::tile_vnni::<6>(a, stride, b, groups, tile),
                    5 => x86::tile_vnni::<5>(a, stride, b, groups, tile),
                    4 => x86::tile_vnni::<4>(a, stride, b, groups, tile),
                    3 => x86::tile_vnni::<3>(a, stride, b, groups, tile),
                    2 => x86::tile_vnni::<2>(a, stride, b, groups, tile),
                    _ => x86::tile_vnni::<1>(a, stride, b, groups, tile),
                }
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => tile_portable(rows, a, stride, b, groups, tile),
        }
    }
}

fn tile_portable(rows: usize, a: &[u8], stride: usize, b: &[i8], groups: usize, tile: &mut Tile) {
    for (i, out) in tile.iter_mut().enumerate().take(rows) {
        let a = &a[i * stride..];
        let mut acc = [0i32; PANEL];
        for g in 0..groups {
            let codes = &a[g * GROUP..(g + 1) * GROUP];
            let weights = &b[g * PANEL_GROUP_BYTES..(g + 1) * PANEL_GROUP_BYTES];
            for (j, acc) in acc.iter_mut().enumerate() {
                for t in 0..GROUP {
                    *acc += codes[t] as i32 * weights[j * GROUP + t] as i32;
                }
            }
        }
        *out = acc;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, GROUP, PANEL_GROUP_BYTES};

    /// The 4 codes of row `i`, group `g`, broadcast as one i32.
    #[inline(always)]
    unsafe fn codes(a: *const u8, stride: usize, i: usize, g: usize) -> i32 {
        std::ptr::read_unaligned(a.add(i * stride + g * GROUP).cast::<i32>())
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn tile_avx2<const R: usize>(a: *const u8, stride: usize, b: *const i8, groups: usize, tile: &mut Tile) {
        let ones = _mm256_set1_epi16(1);
        let mut low = [_mm256_setzero_si256(); R];
        let mut high = [_mm256_setzero_si256(); R];
        for g in 0..groups {
            let b0 = _mm256_loadu_si256(b.add(g * PANEL_GROUP_BYTES).cast());
            let b1 = _mm256_loadu_si256(b.add(g * PANEL_GROUP_BYTES + 32).cast());
            for i in 0..R {
                let x = _mm256_set1_epi32(codes(a, stride, i, g));
                // u8 × i8 pairs summed in i16 (exact for 7-bit codes), then pairs of those in i32.
                low[i] = _mm256_add_epi32(low[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones));
                high[i] = _mm256_add_epi32(high[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
            }
        }
        for i in 0..R {
            _mm256_storeu_si256(tile[i].as_mut_ptr().cast(), low[i]);
            _mm256_storeu_si256(tile[i].as_mut_ptr().add(8).cast(), high[i]);
        }
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile_vnni<const R: usize>(a: *const u8, stride: usize, b: *const i8, groups: usize, tile: &mut Tile) {
        let mut acc = [_mm512_setzero_si512(); R];
        for g in 0..groups {
            let w = _mm512_loadu_si512(b.add(g * PANEL_GROUP_BYTES).cast());
            for i in 0..R {
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(codes(a, stride, i, g)), w);
            }
        }
        for i in 0..R {
            _mm512_storeu_si512(tile[i].as_mut_ptr().cast(), acc[i]);
        }
    }
}

/// A weight matrix quantised to i8 per output channel and packed in panels.
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    rows: usize,
    cols: usize,
    /// Groups of [`GROUP`] inputs (`cols` rounded up).
    groups: usize,
    /// Panel `p`, group `g`, channel `j`, input `t` at `((p·groups + g)·PANEL + j)·GROUP + t`.
    packed: Vec<i8>,
    /// Per output channel (padded to whole panels): `s_w`.
    scales: Vec<f32>,
    /// Per output channel: `Σ q_w`, to take the activations' zero point out.
    sums: Vec<i32>,
}

/// Activations quantised per row: `x ≈ scale · (code − zero)`.
struct QuantizedRows {
    /// Row-major, `groups · GROUP` codes a row (zero-padded).
    codes: Vec<u8>,
    stride: usize,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

impl QuantizedMatrix {
    /// Quantises a row-major `rows × cols` f32 matrix.
    pub fn quantize(w: &[f32], rows: usize, cols: usize) -> QuantizedMatrix {
        assert_eq!(w.len(), rows * cols, "a {rows}×{cols} matrix has {} elements", rows * cols);
        let groups = cols.div_ceil(GROUP);
        let panels = rows.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * groups * PANEL_GROUP_BYTES];
        let mut scales = vec![0f32; panels * PANEL];
        let mut sums = vec![0i32; panels * PANEL];
        packed
            .par_chunks_mut(groups * PANEL_GROUP_BYTES)
            .zip(scales.par_chunks_mut(PANEL).zip(sums.par_chunks_mut(PANEL)))
            .enumerate()
            .for_each(|(p, (panel, (scales, sums)))| {
                for j in 0..PANEL.min(rows - p * PANEL) {
                    let r = p * PANEL + j;
                    let row = &w[r * cols..(r + 1) * cols];
                    let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let scale = if amax > 0.0 { amax / WEIGHT_MAX } else { 1.0 };
                    for (c, &v) in row.iter().enumerate() {
                        let q = (v / scale).round_ties_even().clamp(-WEIGHT_MAX, WEIGHT_MAX) as i8;
                        panel[(c / GROUP * PANEL + j) * GROUP + c % GROUP] = q;
                        sums[j] += q as i32;
                    }
                    scales[j] = scale;
                }
            });
        QuantizedMatrix { rows, cols, groups, packed, scales, sums }
    }

    /// Output channels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Inputs.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The f32 matrix these integers stand for, `s_w · q_w` (row-major).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            let (p, j) = (r / PANEL, r % PANEL);
            for c in 0..self.cols {
                let q = self.packed[((p * self.groups + c / GROUP) * PANEL + j) * GROUP + c % GROUP];
                w[r * self.cols + c] = self.scales[r] * q as f32;
            }
        }
        w
    }

    /// `x · Wᵀ + bias` for the `m × cols` row-major `x`, with the fastest kernel.
    pub fn matmul(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        self.matmul_with(Kernel::best(), x, m, bias)
    }

    /// [`QuantizedMatrix::matmul`] with a given kernel (which must be available).
    pub fn matmul_with(&self, kernel: Kernel, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert!(kernel.is_available(), "the {} kernel needs CPU features this CPU lacks", kernel.name());
        assert_eq!(x.len(), m * self.cols, "x is not {m}×{}", self.cols);
        if let Some(b) = bias {
            assert_eq!(b.len(), self.rows, "bias has {} values for {} outputs", b.len(), self.rows);
        }
        let n = self.rows;
        let mut y = vec![0f32; m * n];
        if m == 0 || n == 0 {
            return y;
        }
        let x = quantize_rows(x, m, self.cols, self.groups);
        let threads = rayon::current_num_threads().max(1);
        let rows_per_task = m.div_ceil(threads).next_multiple_of(kernel.tile_rows()).clamp(1, ROWS_PER_TASK);
        y.par_chunks_mut(rows_per_task * n).enumerate().for_each(|(task, y)| {
            self.rows_times_panels(kernel, &x, task * rows_per_task, y.len() / n, bias, y)
        });
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
        y: &mut [f32],
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
        let mut tile: Tile = [[0; PANEL]; MAX_TILE_ROWS];
        let panel_bytes = self.groups * PANEL_GROUP_BYTES;
        for (p, panel) in self.packed.chunks_exact(panel_bytes).enumerate() {
            let channels = p * PANEL..((p + 1) * PANEL).min(n);
            let mut done = 0;
            while done < count {
                let rows = kernel.tile_rows().min(count - done);
                let row = first + done;
                kernel.tile(rows, &x.codes[row * x.stride..], x.stride, panel, self.groups, &mut tile);
                for (i, tile) in tile.iter().enumerate().take(rows) {
                    let (scale, zero) = (x.scales[row + i], x.zeros[row + i]);
                    let out = &mut y[(done + i) * n + channels.start..(done + i) * n + channels.end];
                    let values = out.iter_mut().zip(tile).zip(&self.sums[channels.clone()]);
                    for (((out, &sum), &correction), (&s_w, &b)) in
                        values.zip(self.scales[channels.clone()].iter().zip(&bias[channels.clone()]))
                    {
                        *out = (sum - zero * correction) as f32 * scale * s_w + b;
                    }
                }
                done += rows;
            }
        }
    }
}

/// Quantises each row of `x` (`m × cols`) to 7-bit codes with its own scale
/// and zero point; the range always includes 0, so zero stays exact.
fn quantize_rows(x: &[f32], m: usize, cols: usize, groups: usize) -> QuantizedRows {
    let stride = groups * GROUP;
    let mut codes = vec![0u8; m * stride];
    let mut scales = vec![0f32; m];
    let mut zeros = vec![0i32; m];
    codes.par_chunks_mut(stride).zip(scales.par_iter_mut().zip(zeros.par_iter_mut())).enumerate().for_each(
        |(r, (codes, (scale, zero)))| {
            let row = &x[r * cols..(r + 1) * cols];
            let (lo, hi) = row.iter().fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let s = (hi - lo) / CODE_MAX;
            let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
            let z = (-lo / s).round_ties_even().clamp(0.0, CODE_MAX);
            let inv = 1.0 / s;
            for (c, &v) in codes.iter_mut().zip(row) {
                let q = ((v * inv).round_ties_even() + z).max(0.0).min(CODE_MAX);
                // SAFETY: `q` is finite and in [0, 255] (NaN became 0 at `max`); an
                // unchecked conversion lets the loop vectorise.
                *c = unsafe { q.to_int_unchecked::<i32>() } as u8;
            }
            // Padding inputs meet zero weights; any code will do, but keep them at the zero point.
            for c in &mut codes[cols..] {
                *c = z as u8;
            }
            *scale = s;
            *zero = z as i32;
        },
    );
    QuantizedRows { codes, stride, scales, zeros }
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
            let bound = k as f32 * (3.0 * 0.5 / 127.0 / 2.0 + 0.5 * 6.0 / 127.0 / 2.0) * 1.01;
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= bound, "{m}×{k}×{n}: {g} vs {w} (bound {bound})");
            }
        }
    }

    #[test]
    fn weights_round_trip_within_half_a_step_and_zero_rows_stay_zero() {
        let (n, k) = (21, 10);
        let mut w = random(n * k, 7, 2.0);
        w[3 * k..4 * k].fill(0.0);
        let q = QuantizedMatrix::quantize(&w, n, k);
        let back = q.dequantize();
        for r in 0..n {
            let amax = w[r * k..(r + 1) * k].iter().fold(0f32, |m, v| m.max(v.abs()));
            for c in 0..k {
                assert!((back[r * k + c] - w[r * k + c]).abs() <= amax / 127.0 / 2.0 * 1.0001);
            }
        }
        assert!(back[3 * k..4 * k].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn activation_codes_fit_seven_bits_and_keep_zero_exact() {
        let x = [-1.0f32, 0.0, 2.5, 7.0, -3.0, 0.25];
        let q = quantize_rows(&x, 2, 3, 1);
        assert!(q.codes.iter().all(|&c| c <= 127));
        for r in 0..2 {
            // The code of 0.0 is the zero point: zero is represented exactly.
            let zero_code = ((0.0f32 / q.scales[r]).round_ties_even() + q.zeros[r] as f32) as i32;
            assert_eq!(zero_code, q.zeros[r]);
            for c in 0..3 {
                let back = q.scales[r] * (q.codes[r * 4 + c] as i32 - q.zeros[r]) as f32;
                assert!((back - x[r * 3 + c]).abs() <= q.scales[r] / 2.0 * 1.0001, "{back} vs {}", x[r * 3 + c]);
            }
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate_the_avx2_pairs() {
        // All codes 127 against weights of ±127: the largest pair sums.
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
