//! Elementwise functions in plain arithmetic, inlined into the loops that
//! call them so that those loops vectorise.

/// `e^x` in plain arithmetic, so that loops over slices vectorise: libm's
/// `expf` is a scalar call, and was 2.5% of a fine-tuning step (SwiGLU and
/// attention's softmax). Cephes' `expf`: `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`,
/// a degree-5 minimax polynomial for `e^r`, `2^n` built from its bits.
/// Relative error below 2 f32 epsilons (2.4e-7); inputs are clamped to
/// `[−87.3, 88.3]` (results from 1.2e-38 to 2.1e38), NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // 1.5·2²³: adding it rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let k = t - ROUND;
    // ln 2 in two parts, so that `x − k·ln 2` is exact to f32 precision.
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n + 127) as u32) << 23)
}

/// A reduction in eight independent lanes, so that it vectorises (a single
/// running f32 max or sum is a dependency chain the compiler must keep in order).
#[inline]
pub(crate) fn lanes(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &b| f(a, b));
    for c in chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a = f(*a, b);
        }
    }
    acc.into_iter().fold(tail, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_of_the_exact_value() {
        let mut worst = 0f64;
        for i in 0..=1_000_000 {
            let x = -87.0 + 175.0 * i as f32 / 1e6;
            let exact = (x as f64).exp();
            worst = worst.max((exp(x) as f64 - exact).abs() / exact);
        }
        assert!(worst < 2.0 * f32::EPSILON as f64, "relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1e4) >= 0.0 && exp(-1e4) < 1e-37 && exp(1e4).is_finite());
    }
}
