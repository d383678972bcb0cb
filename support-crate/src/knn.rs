//! Exact cosine K-nearest-neighbour classification over L2-normalised
//! embeddings: queries are scored against the training set in chunks of a
//! matrix product (memory stays bounded: no n×n matrix), the top k kept per
//! query, and a vote decides the class. k and the vote are chosen on the
//! validation split; test is predicted once.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cache::EmbeddingCache;
use crate::embed::{EmbedConfig, EmbedStats, Embedder, Embeddings};
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};
use crate::Dataset;

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
            let scores = q.matmul(&train_t)?.flatten_all()?.to_vec1::<f32>()?;
            let n = self.len();
            out.par_extend(scores.par_chunks(n).map(|row| top_k(row, k)));
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
    points.iter().copied().max_by(|a, b| {
        a.accuracy
            .total_cmp(&b.accuracy)
            .then(b.k.cmp(&a.k))
            .then((a.vote == Vote::Majority).cmp(&(b.vote == Vote::Majority)))
    })
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

/// The K-NN experiment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnConfig {
    pub embed: EmbedConfig,
    /// Candidate k values, chosen on validation.
    pub ks: Vec<usize>,
    pub votes: Vec<Vote>,
    pub bootstrap: Bootstrap,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            embed: EmbedConfig { model: crate::embed::default_model(), ..EmbedConfig::default() },
            ks: vec![1, 3, 5, 7, 9, 11, 15, 21, 31, 41, 51],
            votes: vec![Vote::Majority, Vote::Weighted],
            bootstrap: Bootstrap::default(),
        }
    }
}

/// Embeddings of the three splits, in split order.
pub struct SplitEmbeddings {
    pub train: Embeddings,
    pub validation: Embeddings,
    pub test: Embeddings,
    pub stats: EmbedStats,
}

/// Embed every split through the on-disk cache.
pub fn embed_splits(ds: &Dataset, embedder: &Embedder, cache_dir: &Path, progress: bool) -> Result<SplitEmbeddings> {
    let mut cache = EmbeddingCache::open(cache_dir, &embedder.config().model, embedder.dim)?;
    let mut stats = EmbedStats::default();
    let mut embed = |examples: &[crate::Example]| -> Result<Embeddings> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let (emb, s) = embedder.embed_cached(&texts, &mut cache, progress)?;
        stats.texts += s.texts;
        stats.cached += s.cached;
        stats.truncated += s.truncated;
        stats.seconds += s.seconds;
        Ok(emb)
    };
    let (train, validation, test) = (embed(&ds.train)?, embed(&ds.validation)?, embed(&ds.test)?);
    Ok(SplitEmbeddings { train, validation, test, stats })
}

/// Everything a K-NN run produced.
pub struct KnnRun {
    pub sweep: Vec<SweepPoint>,
    pub chosen: SweepPoint,
    /// Test predictions, in test order.
    pub predictions: Vec<usize>,
    /// The chosen-k neighbours of each test item.
    pub test_neighbours: Vec<Vec<Neighbour>>,
    pub metrics: Metrics,
    /// Test search time: similarity products, top-k and vote.
    pub search: Throughput,
}

/// Choose k and the vote on validation, then predict test once.
pub fn run(ds: &Dataset, emb: &SplitEmbeddings, config: &KnnConfig) -> Result<KnnRun> {
    let knn = KnnClassifier::new(&emb.train, ds.train.iter().map(|e| e.label).collect(), ds.num_classes())?;
    let k_max = config.ks.iter().copied().max().unwrap_or(1);
    let validation_neighbours = knn.neighbours(&emb.validation, k_max)?;
    let validation_labels: Vec<usize> = ds.validation.iter().map(|e| e.label).collect();
    let sweep = knn.sweep(&validation_neighbours, &validation_labels, &config.ks, &config.votes);
    let chosen = choose(&sweep).context("no k to choose from")?;
    tracing::info!(k = chosen.k, vote = %chosen.vote, validation_accuracy = chosen.accuracy, "chosen on validation");

    let (result, search) = Throughput::measure(ds.test.len(), || -> Result<_> {
        let neighbours = knn.neighbours(&emb.test, chosen.k)?;
        let predictions: Vec<usize> = neighbours.iter().map(|n| knn.vote(n, chosen.k, chosen.vote)).collect();
        Ok((neighbours, predictions))
    });
    let (test_neighbours, predictions) = result?;
    let labels: Vec<usize> = ds.test.iter().map(|e| e.label).collect();
    let preds: Vec<Option<usize>> = predictions.iter().map(|&p| Some(p)).collect();
    let metrics = evaluate(&labels, &preds, &ds.labels, config.bootstrap);
    Ok(KnnRun { sweep, chosen, predictions, test_neighbours, metrics, search })
}

/// Validation accuracy against k, one line per vote.
pub fn sweep_chart(sweep: &[SweepPoint]) -> Result<crate::plot::Svg> {
    let votes: Vec<Vote> = sweep.iter().fold(Vec::new(), |mut v, p| {
        if !v.contains(&p.vote) {
            v.push(p.vote);
        }
        v
    });
    let series = votes
        .iter()
        .map(|&vote| {
            let points = sweep.iter().filter(|p| p.vote == vote).map(|p| (p.k as f64, 100.0 * p.accuracy)).collect();
            (format!("{vote} vote"), points)
        })
        .collect();
    crate::plot::LineChart {
        title: "K-NN: validation accuracy against k",
        x_label: "k (neighbours)",
        y_label: "validation accuracy (%)",
        series,
    }
    .render_zoomed((760, 380))
}

/// Misclassified test items with their nearest training neighbours.
pub fn error_table(ds: &Dataset, run: &KnnRun, rows: usize, neighbours: usize) -> Result<DataFrame> {
    let errors: Vec<usize> =
        (0..ds.test.len()).filter(|&i| run.predictions[i] != ds.test[i].label).take(rows).collect();
    let name = |c: usize| ds.labels[c].clone();
    let describe = |i: usize| {
        run.test_neighbours[i]
            .iter()
            .take(neighbours)
            .map(|n| {
                let e = &ds.train[n.index as usize];
                format!("[{} {:.2}] {}", name(e.label), n.similarity, e.text)
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    Ok(DataFrame::new_infer_height(vec![
        Column::new("test row".into(), errors.iter().map(|&i| ds.test[i].index as u64).collect::<Vec<_>>()),
        Column::new("text".into(), errors.iter().map(|&i| ds.test[i].text.clone()).collect::<Vec<_>>()),
        Column::new("true".into(), errors.iter().map(|&i| name(ds.test[i].label)).collect::<Vec<_>>()),
        Column::new("predicted".into(), errors.iter().map(|&i| name(run.predictions[i])).collect::<Vec<_>>()),
        Column::new(
            "nearest neighbours [class similarity]".into(),
            errors.iter().map(|&i| describe(i)).collect::<Vec<_>>(),
        ),
    ])?)
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
