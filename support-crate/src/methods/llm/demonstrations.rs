//! The solved examples a prompt shows before the question: none, the same
//! random ones for every item, or the training texts most similar to the
//! item (retrieved by the sentence embedder, as in kNN-selected
//! demonstrations). Only the training split is ever searched.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::data::{stratified_sample, Example};
use crate::methods::knn::{KnnClassifier, Neighbour};
use crate::models::Embeddings;

/// Which solved examples come before the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Demonstrations {
    /// None: the instructions and the text (zero-shot).
    None,
    /// The same `per_class` training examples of each class for every item,
    /// seeded, interleaved by class. The prompt prefix they make is shared by
    /// all items and computed once.
    Fixed { per_class: usize },
    /// The `count` training examples most similar to the item (cosine of
    /// sentence embeddings), or `count` of each class when `balanced`; the
    /// most similar placed last (next to the question) when `nearest_last`,
    /// else first.
    Retrieved { count: usize, balanced: bool, nearest_last: bool },
}

impl std::fmt::Display for Demonstrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Demonstrations::None => write!(f, "zero-shot"),
            Demonstrations::Fixed { per_class } => write!(f, "{per_class} fixed per class"),
            Demonstrations::Retrieved { count, balanced, nearest_last } => write!(
                f,
                "{count} nearest{}, nearest {}",
                if balanced { " per class" } else { "" },
                if nearest_last { "last" } else { "first" }
            ),
        }
    }
}

/// The command line's names: `none`, `fixed:K` (K per class), `nearest:K`
/// (the K most similar, nearest last), `nearest-first:K`, `per-class:K` (K
/// most similar of each class, nearest last).
impl std::str::FromStr for Demonstrations {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Demonstrations::None);
        }
        let usage = || format!("{s:?}: expected none, fixed:K, nearest:K, nearest-first:K or per-class:K (K ≥ 1)");
        let (kind, k) = s.split_once(':').ok_or_else(usage)?;
        let k: usize = k.parse().ok().filter(|&k| k >= 1).ok_or_else(usage)?;
        let retrieved = |balanced, nearest_last| Demonstrations::Retrieved { count: k, balanced, nearest_last };
        Ok(match kind {
            "fixed" => Demonstrations::Fixed { per_class: k },
            "nearest" => retrieved(false, true),
            "nearest-first" => retrieved(false, false),
            "per-class" => retrieved(true, true),
            _ => return Err(usage()),
        })
    }
}

impl Demonstrations {
    pub fn is_retrieved(&self) -> bool {
        matches!(self, Demonstrations::Retrieved { .. })
    }
}

/// `k` training examples per class, seeded, interleaved by class.
pub fn fixed(train: &[Example], num_classes: usize, k: usize, seed: u64) -> Vec<Example> {
    let picked = stratified_sample(train.to_vec(), num_classes, k * num_classes, seed);
    let mut by_class: Vec<Vec<Example>> = vec![Vec::new(); num_classes];
    for e in picked {
        by_class[e.label].push(e);
    }
    (0..k).flat_map(|i| by_class.iter().filter_map(move |c| c.get(i).cloned())).collect()
}

/// Nearest-neighbour search over the training split's embeddings, one index
/// per class (so that a balanced pick never runs short of a class).
pub struct Retriever {
    /// Per class: its index and the training rows it holds.
    classes: Vec<(KnnClassifier, Vec<usize>)>,
    train: Vec<Example>,
}

impl Retriever {
    /// `embeddings` row for row with `train`.
    pub fn new(train: &[Example], embeddings: &Embeddings, num_classes: usize) -> Result<Self> {
        anyhow::ensure!(train.len() == embeddings.len(), "one embedding per training example");
        let mut classes = Vec::with_capacity(num_classes);
        for class in 0..num_classes {
            let rows: Vec<usize> = (0..train.len()).filter(|&i| train[i].label == class).collect();
            let data = rows.iter().flat_map(|&i| embeddings.row(i).iter().copied()).collect();
            let subset = Embeddings { dim: embeddings.dim, data };
            classes.push((KnnClassifier::new(&subset, vec![class; rows.len()], num_classes)?, rows));
        }
        Ok(Retriever { classes, train: train.to_vec() })
    }

    /// The demonstrations for each query (its embedding), in prompt order.
    pub fn retrieve(
        &self,
        queries: &Embeddings,
        count: usize,
        balanced: bool,
        nearest_last: bool,
    ) -> Result<Vec<Vec<Example>>> {
        // Per query: (similarity, training row), from every class's index.
        let mut found: Vec<Vec<(f32, usize)>> = vec![Vec::new(); queries.len()];
        for (index, rows) in &self.classes {
            if index.is_empty() {
                continue;
            }
            for (q, neighbours) in index.neighbours(queries, count)?.into_iter().enumerate() {
                found[q].extend(neighbours.iter().map(|n: &Neighbour| (n.similarity, rows[n.index as usize])));
            }
        }
        Ok(found
            .into_iter()
            .map(|mut candidates| {
                // Most similar first; ties to the lower training row.
                candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                if !balanced {
                    candidates.truncate(count);
                }
                if nearest_last {
                    candidates.reverse();
                }
                candidates.into_iter().map(|(_, row)| self.train[row].clone()).collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demonstrations_are_named_on_the_command_line() {
        let parsed: Vec<Demonstrations> = ["none", "fixed:2", "nearest:4", "nearest-first:4", "per-class:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            parsed,
            [
                Demonstrations::None,
                Demonstrations::Fixed { per_class: 2 },
                Demonstrations::Retrieved { count: 4, balanced: false, nearest_last: true },
                Demonstrations::Retrieved { count: 4, balanced: false, nearest_last: false },
                Demonstrations::Retrieved { count: 1, balanced: true, nearest_last: true },
            ]
        );
        for bad in ["fixed", "fixed:0", "nearest:x", "random:3"] {
            assert!(bad.parse::<Demonstrations>().unwrap_err().contains("expected none"), "{bad}");
        }
    }

    fn example(i: usize, label: usize) -> Example {
        Example::new(i, label, format!("t{i}"), String::new())
    }

    /// Unit vectors at angles: training row i at angle i/10, query at 0.
    fn at_angles(angles: &[f32]) -> Embeddings {
        Embeddings { dim: 2, data: angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect() }
    }

    #[test]
    fn retrieval_orders_by_similarity_and_balances_on_request() {
        let train: Vec<Example> = [0, 0, 1, 1, 2].iter().enumerate().map(|(i, &l)| example(i, l)).collect();
        let emb = at_angles(&[0.0, 0.1, 0.2, 0.3, 1.5]);
        let r = Retriever::new(&train, &emb, 3).unwrap();
        let query = at_angles(&[0.05]);
        let rows = |d: &[Example]| d.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(rows(&r.retrieve(&query, 3, false, false).unwrap()[0]), [0, 1, 2]);
        assert_eq!(rows(&r.retrieve(&query, 3, false, true).unwrap()[0]), [2, 1, 0]);
        // One per class: the far class-2 row comes too.
        assert_eq!(rows(&r.retrieve(&query, 1, true, false).unwrap()[0]), [0, 2, 4]);
        assert_eq!(rows(&r.retrieve(&query, 1, true, true).unwrap()[0]), [4, 2, 0]);
    }

    #[test]
    fn fixed_demonstrations_are_seeded_and_interleaved_by_class() {
        let train: Vec<Example> = (0..40).map(|i| example(i, i % 4)).collect();
        let a = fixed(&train, 4, 2, 7);
        assert_eq!(a, fixed(&train, 4, 2, 7));
        assert_eq!(a.iter().map(|e| e.label).collect::<Vec<_>>(), [0, 1, 2, 3, 0, 1, 2, 3]);
    }
}
