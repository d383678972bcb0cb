//! Exact cosine K-nearest-neighbour search over L2-normalised embeddings:
//! queries are scored against the training set in chunks of a matrix
//! product (memory stays bounded: no n×n matrix), the top k kept per query,
//! and a vote decides the class.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::Embeddings;

/// How neighbours vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    /// One vote per neighbour.
    Majority,
    /// Each neighbour votes with its cosine similarity.
    Weighted,
}

impl std::fmt::Display for Vote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Vote::Majority => "majority",
            Vote::Weighted => "weighted",
        })
    }
}

/// A neighbour: row in the training set and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub index: u32,
    pub similarity: f32,
}

/// Queries scored per matrix product: bounds memory to `QUERY_CHUNK × n` floats.
const QUERY_CHUNK: usize = 512;

/// The training embeddings and their labels.
pub struct KnnClassifier {
    train: Tensor,
    labels: Vec<usize>,
    num_classes: usize,
}

impl KnnClassifier {
    pub fn new(train: &Embeddings, labels: Vec<usize>, num_classes: usize) -> Result<Self> {
        assert_eq!(train.len(), labels.len(), "one label per training embedding");
        let train = Tensor::from_slice(&train.data, (train.len(), train.dim), &Device::Cpu)?;
        Ok(KnnClassifier { train, labels, num_classes })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `k` most similar training rows of each query, most similar first
    /// (ties: lower row first).
    pub fn neighbours(&self, queries: &Embeddings, k: usize) -> Result<Vec<Vec<Neighbour>>> {
        let k = k.min(self.len());
        let train_t = self.train.t()?;
        let mut out = Vec::with_capacity(queries.len());
        for start in (0..queries.len()).step_by(QUERY_CHUNK) {
            let end = (start + QUERY_CHUNK).min(queries.len());
            let q = Tensor::from_slice(
                &queries.data[start * queries.dim..end * queries.dim],
                (end - start, queries.dim),
                &Device::Cpu,
            )?;
            let scores = q.matmul(&train_t)?;
            // Read the product in place: copying it out first was a quarter of the search.
            let (storage, layout) = scores.storage_and_layout();
            let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(all)), Some((from, to))) =
                (&*storage, layout.contiguous_offsets())
            else {
                anyhow::bail!("K-NN scores: expected a contiguous f32 CPU tensor");
            };
            let n = self.len();
            out.par_extend(all[from..to].par_chunks(n).map(|row| top_k(row, k)));
        }
        Ok(out)
    }

    /// The class the first `k` of `neighbours` vote for. Ties go to the class
    /// with the higher summed similarity (majority) or more votes (weighted),
    /// then to the lower class id.
    pub fn vote(&self, neighbours: &[Neighbour], k: usize, vote: Vote) -> usize {
        let mut count = vec![0usize; self.num_classes];
        let mut weight = vec![0f64; self.num_classes];
        for n in &neighbours[..k.min(neighbours.len())] {
            let c = self.labels[n.index as usize];
            count[c] += 1;
            weight[c] += n.similarity as f64;
        }
        let key = |c: usize| match vote {
            Vote::Majority => (count[c] as f64, weight[c]),
            Vote::Weighted => (weight[c], count[c] as f64),
        };
        (0..self.num_classes)
            .max_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(b.cmp(&a))
            })
            .unwrap_or(0)
    }

    /// Each class's share of the vote of the first `k` of `neighbours`:
    /// neighbours per class over k (majority), or summed similarity over the
    /// total (weighted; shares of the counts where similarities sum to ≤ 0).
    pub fn vote_shares(&self, neighbours: &[Neighbour], k: usize, vote: Vote) -> Vec<f32> {
        let used = &neighbours[..k.min(neighbours.len())];
        let mut count = vec![0f32; self.num_classes];
        let mut weight = vec![0f32; self.num_classes];
        for n in used {
            let c = self.labels[n.index as usize];
            count[c] += 1.0;
            weight[c] += n.similarity;
        }
        let total: f32 = weight.iter().sum();
        let shares = if vote == Vote::Weighted && total > 0.0 { weight } else { count };
        let sum: f32 = shares.iter().sum::<f32>().max(f32::MIN_POSITIVE);
        shares.into_iter().map(|s| s / sum).collect()
    }

    pub fn predict(&self, queries: &Embeddings, k: usize, vote: Vote) -> Result<Vec<usize>> {
        Ok(self.neighbours(queries, k)?.iter().map(|n| self.vote(n, k, vote)).collect())
    }

    /// Accuracy of every (k, vote) on labelled queries, from one neighbour search.
    pub fn sweep(
        &self,
        neighbours: &[Vec<Neighbour>],
        labels: &[usize],
        ks: &[usize],
        votes: &[Vote],
    ) -> Vec<SweepPoint> {
        let mut points = Vec::new();
        for &vote in votes {
            for &k in ks {
                let correct = neighbours.iter().zip(labels).filter(|(n, &y)| self.vote(n, k, vote) == y).count();
                points.push(SweepPoint { k, vote, accuracy: correct as f64 / labels.len().max(1) as f64 });
            }
        }
        points
    }
}

/// One point of the validation sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub k: usize,
    pub vote: Vote,
    pub accuracy: f64,
}

/// The best point of a sweep: highest accuracy; ties go to the smaller k,
/// then to the majority vote (the simpler model).
pub fn choose(points: &[SweepPoint]) -> Option<SweepPoint> {
    let mut simplest_first = points.to_vec();
    simplest_first.sort_by_key(|p| (p.k, p.vote != Vote::Majority));
    crate::method::choose_best(&simplest_first, |p| p.accuracy).copied()
}

/// The `k` highest scores of `row`, best first; ties by lower index.
fn top_k(row: &[f32], k: usize) -> Vec<Neighbour> {
    if k == 0 {
        return Vec::new();
    }
    // A sorted buffer of the best k so far; most rows fail the threshold test.
    let mut best: Vec<Neighbour> = Vec::with_capacity(k + 1);
    for (i, &s) in row.iter().enumerate() {
        if best.len() == k && s <= best[k - 1].similarity {
            continue;
        }
        let at = best.partition_point(|n| n.similarity >= s);
        best.insert(at, Neighbour { index: i as u32, similarity: s });
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(rows: &[[f32; 2]]) -> Embeddings {
        let data = rows
            .iter()
            .flat_map(|r| {
                let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
                [r[0] / n, r[1] / n]
            })
            .collect();
        Embeddings { dim: 2, data }
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let row: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let mut sorted: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let got: Vec<usize> = top_k(&row, 10).iter().map(|n| n.index as usize).collect();
        assert_eq!(got, sorted[..10].iter().map(|p| p.0).collect::<Vec<_>>());
        assert_eq!(top_k(&[0.5, 0.5, 0.5], 2).iter().map(|n| n.index).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn neighbours_across_query_chunks_equal_brute_force() {
        let train: Vec<[f32; 2]> = (0..300).map(|i| [(i as f32 * 0.37).cos(), (i as f32 * 0.37).sin()]).collect();
        let queries: Vec<[f32; 2]> =
            (0..QUERY_CHUNK + 20).map(|i| [(i as f32 * 0.11).cos(), (i as f32 * 0.11).sin() + 0.1]).collect();
        let (train_e, queries_e) = (normalised(&train), normalised(&queries));
        let knn = KnnClassifier::new(&train_e, vec![0; 300], 1).unwrap();
        let got = knn.neighbours(&queries_e, 3).unwrap();
        assert_eq!(got.len(), queries.len());
        for (qi, n) in got.iter().enumerate() {
            let q = queries_e.row(qi);
            let mut all: Vec<(usize, f32)> =
                (0..300).map(|j| (j, train_e.row(j)[0] * q[0] + train_e.row(j)[1] * q[1])).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(n[0].index as usize, all[0].0, "query {qi}");
            assert!((n[2].similarity - all[2].1).abs() < 1e-5);
        }
    }

    #[test]
    fn votes_and_tie_breaking() {
        let train = normalised(&[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.2, 0.8]]);
        let knn = KnnClassifier::new(&train, vec![0, 0, 1, 1, 1], 2).unwrap();
        let n = |pairs: &[(u32, f32)]| {
            pairs.iter().map(|&(index, similarity)| Neighbour { index, similarity }).collect::<Vec<_>>()
        };
        // Majority: class 1 has 3 votes against 2.
        let neigh = n(&[(0, 0.99), (1, 0.98), (2, 0.1), (3, 0.1), (4, 0.1)]);
        assert_eq!(knn.vote(&neigh, 5, Vote::Majority), 1);
        // Weighted: class 0's two close neighbours outweigh three distant ones.
        assert_eq!(knn.vote(&neigh, 5, Vote::Weighted), 0);
        // A 1-1 tie in votes goes to the higher summed similarity...
        assert_eq!(knn.vote(&n(&[(2, 0.9), (0, 0.8)]), 2, Vote::Majority), 1);
        // ...and an exact tie to the lower class id.
        assert_eq!(knn.vote(&n(&[(2, 0.5), (0, 0.5)]), 2, Vote::Majority), 0);
        let q = normalised(&[[1.0, 0.05], [0.05, 1.0]]);
        assert_eq!(knn.predict(&q, 1, Vote::Majority).unwrap(), vec![0, 1]);
        assert_eq!(knn.vote_shares(&neigh, 5, Vote::Majority), vec![0.4, 0.6]);
        let weighted = knn.vote_shares(&neigh, 5, Vote::Weighted);
        assert!((weighted[0] - 1.97 / 2.27).abs() < 1e-6, "{weighted:?}");
    }

    #[test]
    fn choose_prefers_accuracy_then_small_k_then_majority() {
        let p = |k, vote, accuracy| SweepPoint { k, vote, accuracy };
        let points = [
            p(1, Vote::Majority, 0.8),
            p(5, Vote::Weighted, 0.9),
            p(5, Vote::Majority, 0.9),
            p(9, Vote::Majority, 0.9),
        ];
        assert_eq!(choose(&points), Some(p(5, Vote::Majority, 0.9)));
        assert_eq!(choose(&[]), None);
    }
}
