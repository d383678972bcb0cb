//! Token ids for the classifier: tokenisation with truncation (counted),
//! and batches padded only to their longest row, with rows of similar
//! length grouped together (length bucketing) so little compute goes to
//! padding.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tokenizers::Tokenizer;

/// One tokenised text.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// Tokens dropped by truncation.
    pub dropped: usize,
}

/// Tokenises `texts`, keeping at most `max_len` tokens of each (the head:
/// a news item's title and first sentence carry its topic).
pub fn encode_all(tokenizer: &Tokenizer, texts: &[&str], max_len: usize) -> Result<Vec<Encoded>> {
    texts
        .par_iter()
        .map(|text| {
            let enc = tokenizer.encode_fast(*text, false).map_err(|e| anyhow::anyhow!("tokenising {text:?}: {e}"))?;
            let mut ids = enc.get_ids().to_vec();
            if ids.is_empty() {
                anyhow::bail!("text {text:?} has no tokens");
            }
            let dropped = ids.len().saturating_sub(max_len);
            ids.truncate(max_len);
            Ok(Encoded { ids, dropped })
        })
        .collect()
}

/// A padded batch: `ids` `[rows, longest]` (u32, right-padded with `pad`),
/// the real length of each row, and which items (indices into the encoded
/// list) the rows are.
pub struct Batch {
    pub ids: Tensor,
    pub lengths: Vec<usize>,
    pub items: Vec<usize>,
}

impl Batch {
    pub fn new(encoded: &[Encoded], items: &[usize], pad: u32, device: &Device) -> Result<Self> {
        let longest = items.iter().map(|&i| encoded[i].ids.len()).max().unwrap_or(1);
        let mut flat = Vec::with_capacity(items.len() * longest);
        for &i in items {
            let ids = &encoded[i].ids;
            flat.extend_from_slice(ids);
            flat.extend(std::iter::repeat_n(pad, longest - ids.len()));
        }
        Ok(Batch {
            ids: Tensor::from_vec(flat, (items.len(), longest), device)?,
            lengths: items.iter().map(|&i| encoded[i].ids.len()).collect(),
            items: items.to_vec(),
        })
    }

    pub fn tokens(&self) -> usize {
        self.lengths.iter().sum()
    }
}

/// Items in training order for one epoch: shuffled with a seed derived from
/// `(seed, epoch)`, cut into pools of 64 batches, each pool sorted by
/// length and cut into batches, and the batches shuffled again. The same
/// arguments always give the same order, which is what makes resuming exact.
pub fn epoch_batches(encoded: &[Encoded], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.shuffle(&mut rng);
    let mut batches = Vec::with_capacity(encoded.len().div_ceil(batch_size));
    for pool in order.chunks(batch_size * 64) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| encoded[i].ids.len());
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// Items sorted by length (longest first) in batches, for inference.
pub fn inference_batches(encoded: &[Encoded], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].ids.len()));
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(lengths: &[usize]) -> Vec<Encoded> {
        lengths.iter().map(|&n| Encoded { ids: vec![1; n], dropped: 0 }).collect()
    }

    #[test]
    fn epoch_order_is_seeded_complete_and_bucketed() {
        let encoded = fake(&(0..1000).map(|i| 1 + (i * 37) % 120).collect::<Vec<_>>());
        let a = epoch_batches(&encoded, 8, 42, 0);
        assert_eq!(a, epoch_batches(&encoded, 8, 42, 0));
        assert_ne!(a, epoch_batches(&encoded, 8, 42, 1));
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let padded: usize = a.iter().map(|b| b.len() * b.iter().map(|&i| encoded[i].ids.len()).max().unwrap()).sum();
        let real: usize = encoded.iter().map(|e| e.ids.len()).sum();
        assert!((padded as f64) < 1.1 * real as f64, "padding overhead {padded} vs {real}");
    }

    #[test]
    fn batch_pads_to_the_longest_row() {
        let encoded = vec![Encoded { ids: vec![5, 6, 7], dropped: 0 }, Encoded { ids: vec![8], dropped: 0 }];
        let b = Batch::new(&encoded, &[1, 0], 2, &Device::Cpu).unwrap();
        assert_eq!(b.ids.to_vec2::<u32>().unwrap(), vec![vec![8, 2, 2], vec![5, 6, 7]]);
        assert_eq!((b.lengths.clone(), b.tokens()), (vec![1, 3], 4));
    }
}
