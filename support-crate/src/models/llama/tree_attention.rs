//! Attention for the prompted LLM's packed forward pass, as one fused op:
//! continuations of a cached prompt prefix, several per pass, each seeing
//! the prefix, its ancestors (a label's answer sees its question) and its own
//! earlier tokens, never its siblings.
//!
//! Written with tensor ops this was a dense `[t, p + t]` score matrix per
//! head masked with −∞ (most of it masked: a pass of items sees only one
//! item each), plus copies for heads-first layout, rotary, concatenation of
//! the prefix's keys, repetition of the shared key/value heads and a
//! softmax over the masked width; `perf` put the f32 products, `exp` and
//! the copies above the int8 projections themselves. Here each segment
//! gathers only the keys it sees, per query head, on rayon's threads.

use std::ops::Range;

use candle_core::{Result, Storage, Tensor};
use rayon::prelude::*;

use super::attention::{causal_softmax, rotate, Heads, RotaryRows};
use crate::kernels::contiguous_f32;
use crate::kernels::gemm::{matmul, View};

/// Query rows per product: small enough that a block's causal waste is
/// small, large enough for gemm's tiles.
const QUERY_BLOCK: usize = 64;

/// One layer's rotated keys and values of `len` tokens, `[kv_heads, len, d]` each.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyValues {
    pub keys: Vec<f32>,
    pub values: Vec<f32>,
    pub len: usize,
}

impl KeyValues {
    fn head(data: &[f32], g: usize, len: usize, d: usize) -> &[f32] {
        &data[g * len * d..(g + 1) * len * d]
    }
}

/// Where each token of a packed pass sits and what each segment sees.
#[derive(Debug, Clone)]
pub(super) struct Packing {
    /// Each token's position in its own sequence (prefix included).
    pub positions: Vec<usize>,
    /// Each segment's tokens in the pass.
    pub spans: Vec<Range<usize>>,
    /// Each segment's ancestors' tokens in the pass, root first.
    pub ancestors: Vec<Vec<Range<usize>>>,
}

/// The heads' outputs `[t, heads·d]` of a packed pass from its QKV
/// projection `[t, (heads + 2·kv_heads)·d]` (unrotated), after the cached
/// prefix `past`; and this pass's own keys (rotated) and values.
pub(super) fn packed_attention(
    qkv: &Tensor,
    heads: Heads,
    rotary: &RotaryRows,
    past: &KeyValues,
    packing: &Packing,
) -> Result<(Tensor, KeyValues)> {
    const NAME: &str = "packed-attention";
    let Heads { heads: nh, kv_heads: kv, head_dim: d } = heads;
    let (t, w) = qkv.dims2()?;
    let half = d / 2;
    let last = packing.positions.iter().max().copied().unwrap_or(0);
    // The spans tile the pass in order (each token written once); ancestors lie inside it.
    let tiled =
        packing.spans.iter().try_fold(0, |end, r| (r.start == end && r.end >= r.start).then_some(r.end)) == Some(t);
    let ancestors_inside = packing.ancestors.iter().flatten().all(|r| r.start <= r.end && r.end <= t);
    if w != heads.qkv_width()
        || kv == 0
        || !nh.is_multiple_of(kv)
        || !d.is_multiple_of(2)
        || packing.positions.len() != t
        || packing.ancestors.len() != packing.spans.len()
        || !tiled
        || !ancestors_inside
        || past.keys.len() != kv * past.len * d
        || past.values.len() != past.keys.len()
        || rotary.cos.len() < (last + 1) * half
    {
        candle_core::bail!("{NAME}: qkv {:?}, {} past tokens, {} positions for {heads:?}", qkv.dims(), past.len, t);
    }
    let qkv = qkv.contiguous()?;
    let (storage, layout) = qkv.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { candle_core::bail!("{NAME}: CPU tensors only") };
    let rows = contiguous_f32(NAME, cpu, layout)?;
    let angles = |pos: usize| (&rotary.cos[pos * half..(pos + 1) * half], &rotary.sin[pos * half..(pos + 1) * half]);

    // This pass's keys, rotated once at their positions, and values: `[kv, t, d]`.
    let mut keys = vec![0f32; kv * t * d];
    let mut values = vec![0f32; kv * t * d];
    keys.par_chunks_mut(t * d).zip(values.par_chunks_mut(t * d)).enumerate().for_each(|(g, (k, v))| {
        for (i, (k, v)) in k.chunks_mut(d).zip(v.chunks_mut(d)).enumerate() {
            let (cos, sin) = angles(packing.positions[i]);
            rotate(k, &rows[i * w + (nh + g) * d..i * w + (nh + g + 1) * d], cos, sin, 1.0, 1.0);
            v.copy_from_slice(&rows[i * w + (nh + kv + g) * d..i * w + (nh + kv + g + 1) * d]);
        }
    });

    let scale = 1.0 / (d as f32).sqrt();
    let rep = nh / kv;
    let p = past.len;
    // One task per segment and query head: its output rows `[m, d]`.
    let tasks: Vec<(usize, usize)> = (0..packing.spans.len()).flat_map(|s| (0..nh).map(move |h| (s, h))).collect();
    let outputs: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(s, h)| {
            let g = h / rep;
            let own = &packing.spans[s];
            let m = own.len();
            let seen: Vec<&Range<usize>> = packing.ancestors[s].iter().chain(std::iter::once(own)).collect();
            let n = p + seen.iter().map(|r| r.len()).sum::<usize>();
            // The keys and values this segment sees: the prefix's, its ancestors', its own.
            let gather = |past_data: &[f32], pass: &[f32]| {
                let mut out = Vec::with_capacity(n * d);
                out.extend_from_slice(KeyValues::head(past_data, g, p, d));
                let pass = KeyValues::head(pass, g, t, d);
                for r in &seen {
                    out.extend_from_slice(&pass[r.start * d..r.end * d]);
                }
                out
            };
            let (k, v) = (gather(&past.keys, &keys), gather(&past.values, &values));
            let mut q = vec![0f32; m * d];
            for (i, q) in own.clone().zip(q.chunks_mut(d)) {
                let (cos, sin) = angles(packing.positions[i]);
                rotate(q, &rows[i * w + h * d..i * w + (h + 1) * d], cos, sin, 1.0, scale);
            }
            // Blocks of query rows, each against the keys its last row sees:
            // the causal half of the segment's own keys is never multiplied.
            let seen_before = n - m;
            let mut scores = vec![0f32; QUERY_BLOCK.min(m) * n];
            let mut out = vec![0f32; m * d];
            for r0 in (0..m).step_by(QUERY_BLOCK) {
                let (bm, keys) = (QUERY_BLOCK.min(m - r0), seen_before + (r0 + QUERY_BLOCK).min(m));
                let q = View::new(&q[r0 * d..], d, 1);
                matmul(&mut scores, keys, q, View::new(&k, d, 1).t(), (bm, keys, d), false, false);
                causal_softmax(&mut scores[..bm * keys], keys, seen_before + r0);
                let p = View::new(&scores, keys, 1);
                matmul(&mut out[r0 * d..], d, p, View::new(&v, d, 1), (bm, d, keys), false, false);
            }
            out
        })
        .collect();

    let ow = heads.out_width();
    let mut out = vec![0f32; t * ow];
    for (&(s, h), rows_out) in tasks.iter().zip(&outputs) {
        for (i, row) in packing.spans[s].clone().zip(rows_out.chunks(d)) {
            out[i * ow + h * d..i * ow + (h + 1) * d].copy_from_slice(row);
        }
    }
    drop(storage);
    Ok((Tensor::from_vec(out, (t, ow), qkv.device())?, KeyValues { keys, values, len: t }))
}

#[cfg(test)]
// One segment's span is a one-range Vec by design.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::models::llama::attention::causal_self_attention;
    use crate::models::llama::attention::tests::tables;
    use crate::models::llama::ops::tests::{max_abs_diff, random};

    const HEADS: Heads = Heads { heads: 4, kv_heads: 2, head_dim: 8 };

    fn whole(t: usize) -> Packing {
        Packing { positions: (0..t).collect(), spans: vec![0..t], ancestors: vec![Vec::new()] }
    }

    /// One segment after no prefix is plain causal attention (the training op),
    /// and a sequence split into a cached prefix and a continuation gives the
    /// continuation's rows of the whole.
    #[test]
    fn a_prefix_and_its_continuation_equal_the_whole_sequence() {
        let t = 11;
        let (_, _, rotary) = tables(t, HEADS.head_dim);
        let qkv = random(&[t, HEADS.qkv_width()], 7);
        let (whole_out, _) = packed_attention(&qkv, HEADS, &rotary, &KeyValues::default(), &whole(t)).unwrap();
        let plain = causal_self_attention(&qkv, HEADS, &[t], &rotary).unwrap();
        assert!(max_abs_diff(&whole_out, &plain) < 1e-5);

        let p = 4;
        let (_, past) =
            packed_attention(&qkv.narrow(0, 0, p).unwrap(), HEADS, &rotary, &KeyValues::default(), &whole(p)).unwrap();
        let rest = Packing { positions: (p..t).collect(), spans: vec![0..t - p], ancestors: vec![Vec::new()] };
        let (out, _) = packed_attention(&qkv.narrow(0, p, t - p).unwrap(), HEADS, &rotary, &past, &rest).unwrap();
        assert!(max_abs_diff(&out, &whole_out.narrow(0, p, t - p).unwrap()) < 1e-5);
    }

    #[test]
    fn a_packing_that_does_not_match_the_pass_is_an_error() {
        let (_, _, rotary) = tables(8, HEADS.head_dim);
        let qkv = random(&[6, HEADS.qkv_width()], 1);
        let none = KeyValues::default();
        let short = Packing { positions: (0..5).collect(), spans: vec![0..6], ancestors: vec![Vec::new()] };
        assert!(packed_attention(&qkv, HEADS, &rotary, &none, &short).is_err());
        let overlapping =
            Packing { positions: (0..6).collect(), spans: vec![0..6, 0..6], ancestors: vec![vec![], vec![]] };
        assert!(packed_attention(&qkv, HEADS, &rotary, &none, &overlapping).is_err());
        let gap = Packing { positions: (0..6).collect(), spans: vec![0..3, 0..3], ancestors: vec![vec![], vec![]] };
        assert!(packed_attention(&qkv, HEADS, &rotary, &none, &gap).is_err(), "rows 3..6 would never be written");
        let far = Packing { positions: (10..16).collect(), spans: vec![0..6], ancestors: vec![Vec::new()] };
        assert!(packed_attention(&qkv, HEADS, &rotary, &none, &far).is_err(), "positions past the rotary table");
        let wrong_past = KeyValues { keys: vec![0.0; 3], values: vec![0.0; 3], len: 1 };
        assert!(packed_attention(&qkv, HEADS, &rotary, &wrong_past, &whole(6)).is_err());
    }
}
