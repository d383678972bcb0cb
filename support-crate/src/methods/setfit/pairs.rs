//! SetFit's sentence pairs: each labelled example with one of its own class
//! (a positive, target similarity 1) and one of another class (a negative,
//! target 0), over several rounds, shuffled; seeded.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

/// Two training examples (indices) and whether they share a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub same: bool,
}

impl Pair {
    /// The similarity the loss pulls the pair's cosine towards.
    pub fn target(&self) -> f32 {
        if self.same {
            1.0
        } else {
            0.0
        }
    }
}

/// The rounds that give at most `max_pairs` pairs for `examples` examples
/// (two pairs per example a round), at least one and at most `rounds`.
pub fn rounds_within(examples: usize, rounds: usize, max_pairs: usize) -> usize {
    (max_pairs / (2 * examples).max(1)).clamp(1, rounds.max(1))
}

/// `rounds` rounds of one positive and one negative pair per example, in a
/// seeded random order: exactly as many positives as negatives. A positive
/// partner is another example of the class (the example itself when it is
/// its class's only one). Labels of a single class give no negatives: an error.
pub fn sample_pairs(labels: &[usize], rounds: usize, seed: u64) -> anyhow::Result<Vec<Pair>> {
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        members[label].push(i);
    }
    if members.iter().filter(|m| !m.is_empty()).count() < 2 {
        anyhow::bail!("contrastive pairs need examples of at least two classes");
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut pairs = Vec::with_capacity(2 * rounds * labels.len());
    for _ in 0..rounds {
        for (a, &label) in labels.iter().enumerate() {
            let own = &members[label];
            let b = if own.len() == 1 {
                a
            } else {
                // Uniform over the others of the class.
                let pick = own[..own.len() - 1].choose(&mut rng).copied().expect("two or more");
                if pick == a {
                    own[own.len() - 1]
                } else {
                    pick
                }
            };
            pairs.push(Pair { a, b, same: true });
            // Uniform over the examples of other classes.
            let b = loop {
                let b = rng.random_range(0..labels.len());
                if labels[b] != label {
                    break b;
                }
            };
            pairs.push(Pair { a, b, same: false });
        }
    }
    pairs.shuffle(&mut rng);
    Ok(pairs)
}

/// At most `max_pairs` of the (shuffled) pairs, as many positives as
/// negatives, in their order: for training sets so large that even one round
/// gives more pairs than the cap. Fewer pairs than the cap: all of them.
pub fn at_most(pairs: Vec<Pair>, max_pairs: usize) -> Vec<Pair> {
    if pairs.len() <= max_pairs {
        return pairs;
    }
    let (mut positives, mut negatives) = (max_pairs / 2, max_pairs / 2);
    pairs
        .into_iter()
        .filter(|p| {
            let left = if p.same { &mut positives } else { &mut negatives };
            let keep = *left > 0;
            *left = left.saturating_sub(1);
            keep
        })
        .collect()
}

/// Pairs per window whose batches are formed from pairs of similar length.
const WINDOW_BATCHES: usize = 16;

/// The pairs in batches of `size`, each pair once: every window of
/// [`WINDOW_BATCHES`] batches of the (shuffled) pairs is sorted by the
/// longer text of each pair before it is cut into batches, and the batches
/// are then shuffled (seeded). A batch is padded to its longest text, so
/// batches of like lengths waste less compute on padding (transformers'
/// `group_by_length` does the same); which pairs are seen is unchanged.
pub fn length_grouped_batches(pairs: &[Pair], tokens: &[usize], size: usize, seed: u64) -> Vec<Vec<Pair>> {
    let size = size.max(1);
    let longer = |p: &Pair| tokens[p.a].max(tokens[p.b]);
    let mut batches: Vec<Vec<Pair>> = Vec::new();
    for window in pairs.chunks(size * WINDOW_BATCHES) {
        let mut window = window.to_vec();
        window.sort_by_key(|p| std::cmp::Reverse(longer(p)));
        batches.extend(window.chunks(size).map(<[Pair]>::to_vec));
    }
    batches.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6c65_6e67_7468));
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_balanced_seeded_and_labelled_by_class() {
        let labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let pairs = sample_pairs(&labels, 20, 7).unwrap();
        assert_eq!(pairs.len(), 2 * 20 * labels.len());
        assert_eq!(pairs.iter().filter(|p| p.same).count(), pairs.len() / 2);
        for p in &pairs {
            assert_eq!(labels[p.a] == labels[p.b], p.same, "{p:?}");
            if p.same {
                assert_ne!(p.a, p.b, "a class of several pairs an example with another");
            }
        }
        // Every example is the anchor of the same number of pairs.
        for i in 0..labels.len() {
            assert_eq!(pairs.iter().filter(|p| p.a == i).count(), 40);
        }
        assert_eq!(pairs, sample_pairs(&labels, 20, 7).unwrap(), "seeded");
        assert_ne!(pairs, sample_pairs(&labels, 20, 8).unwrap(), "another seed, other pairs");
        // Negatives reach every other class.
        let reached: std::collections::BTreeSet<(usize, usize)> =
            pairs.iter().filter(|p| !p.same).map(|p| (labels[p.a], labels[p.b])).collect();
        assert_eq!(reached.len(), 6);
    }

    #[test]
    fn a_lone_example_is_its_own_positive_and_one_class_is_an_error() {
        let pairs = sample_pairs(&[0, 1, 1], 3, 1).unwrap();
        assert!(pairs.iter().filter(|p| p.a == 0 && p.same).all(|p| p.b == 0));
        assert!(sample_pairs(&[1, 1, 1], 3, 1).is_err());
    }

    #[test]
    fn length_grouping_keeps_every_pair_once_and_pads_less() {
        let labels: Vec<usize> = (0..200).map(|i| i % 4).collect();
        let tokens: Vec<usize> = (0..200).map(|i| 10 + (i * 37) % 120).collect();
        let pairs = sample_pairs(&labels, 4, 3).unwrap();
        let batches = length_grouped_batches(&pairs, &tokens, 16, 3);
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 16));
        let mut seen: Vec<(usize, usize, bool)> = batches.iter().flatten().map(|p| (p.a, p.b, p.same)).collect();
        let mut want: Vec<(usize, usize, bool)> = pairs.iter().map(|p| (p.a, p.b, p.same)).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "every pair exactly once");
        // Padded tokens: each batch costs its longest text times its texts.
        let cost = |batches: &[Vec<Pair>]| -> usize {
            batches.iter().map(|b| 2 * b.len() * b.iter().map(|p| tokens[p.a].max(tokens[p.b])).max().unwrap()).sum()
        };
        let random: Vec<Vec<Pair>> = pairs.chunks(16).map(<[Pair]>::to_vec).collect();
        assert!(cost(&batches) < cost(&random) * 3 / 4, "{} vs {}", cost(&batches), cost(&random));
        assert_eq!(batches, length_grouped_batches(&pairs, &tokens, 16, 3), "seeded");
    }

    #[test]
    fn a_set_too_large_for_one_round_keeps_a_balanced_share_within_the_cap() {
        let labels: Vec<usize> = (0..1000).map(|i| i % 3).collect();
        let pairs = sample_pairs(&labels, rounds_within(1000, 20, 256), 2).unwrap();
        assert_eq!(pairs.len(), 2000);
        let kept = at_most(pairs.clone(), 256);
        assert_eq!(kept.len(), 256);
        assert_eq!(kept.iter().filter(|p| p.same).count(), 128);
        let anchors: std::collections::BTreeSet<usize> = kept.iter().map(|p| p.a).collect();
        assert!(anchors.len() > 150, "spread over the set, not its first rows: {} anchors", anchors.len());
        assert_eq!(at_most(pairs[..100].to_vec(), 256), pairs[..100].to_vec(), "under the cap: unchanged");
    }

    #[test]
    fn rounds_shrink_to_the_pair_budget() {
        assert_eq!(rounds_within(32, 20, 2048), 20);
        assert_eq!(rounds_within(512, 20, 2048), 2);
        assert_eq!(rounds_within(20_000, 20, 2048), 1);
    }
}
