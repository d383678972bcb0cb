//! Contrastive tuning shown step by step (the K-NN notebook's SetFit
//! section): the pairs it learns from, the loss going down, and what it did
//! to the embedding space.

use anyhow::Result;
use polars::prelude::{Column, DataFrame};

use super::{ContrastiveLog, Pair};
use crate::data::Example;
use crate::models::Embeddings;
use crate::plot::{LineChart, Svg};

/// The first `rows` pairs in training order: both texts, their classes and
/// the cosine the loss pulls the pair towards.
pub fn pairs_table(pairs: &[Pair], examples: &[Example], names: &[String], rows: usize) -> Result<DataFrame> {
    let shown = &pairs[..rows.min(pairs.len())];
    let text = |i: usize| examples[i].text.clone();
    let class = |i: usize| names[examples[i].label].clone();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("target cosine".into(), shown.iter().map(|p| p.target()).collect::<Vec<_>>()),
        Column::new("class a".into(), shown.iter().map(|p| class(p.a)).collect::<Vec<_>>()),
        Column::new("text a".into(), shown.iter().map(|p| text(p.a)).collect::<Vec<_>>()),
        Column::new("class b".into(), shown.iter().map(|p| class(p.b)).collect::<Vec<_>>()),
        Column::new("text b".into(), shown.iter().map(|p| text(p.b)).collect::<Vec<_>>()),
    ])?)
}

/// The pair loss of every step (mean over a centred window of `window` steps).
pub fn loss_chart(log: &ContrastiveLog, window: usize) -> Result<Svg> {
    let losses = &log.losses;
    let smoothed = (0..losses.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(window / 2), (i + window / 2 + 1).min(losses.len()));
            ((i + 1) as f64, losses[lo..hi].iter().map(|&x| x as f64).sum::<f64>() / (hi - lo) as f64)
        })
        .collect();
    LineChart {
        title: "Pair loss during contrastive tuning",
        x_label: "optimiser step",
        y_label: "mean squared error of the cosine",
        series: vec![(format!("loss (mean of {window} steps)"), smoothed)],
        markers: vec![],
    }
    .render((760, 320))
}

/// How far apart the classes sit: the mean cosine of two texts of the same
/// class and of two texts of different classes (unit-length embeddings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    pub same_class: f64,
    pub other_class: f64,
}

impl Separation {
    pub fn of(embeddings: &Embeddings, labels: &[usize]) -> Self {
        let (mut same, mut other) = ((0.0, 0usize), (0.0, 0usize));
        for i in 0..embeddings.len() {
            for j in i + 1..embeddings.len() {
                let cosine: f32 = embeddings.row(i).iter().zip(embeddings.row(j)).map(|(a, b)| a * b).sum();
                let sum = if labels[i] == labels[j] { &mut same } else { &mut other };
                sum.0 += cosine as f64;
                sum.1 += 1;
            }
        }
        Separation { same_class: same.0 / same.1.max(1) as f64, other_class: other.0 / other.1.max(1) as f64 }
    }

    /// Same-class minus other-class cosine: what contrastive tuning widens.
    pub fn gap(&self) -> f64 {
        self.same_class - self.other_class
    }
}

/// The `k` examples nearest to a query under two embeddings of the same texts
/// (before and after tuning): rank, then class and cosine under each.
pub fn neighbours_table(
    query: (&[f32], &[f32]),
    examples: (&Embeddings, &Embeddings),
    classes: &[usize],
    names: &[String],
    k: usize,
) -> Result<DataFrame> {
    let nearest = |q: &[f32], e: &Embeddings| -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> =
            (0..e.len()).map(|i| (i, e.row(i).iter().zip(q).map(|(a, b)| a * b).sum())).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored
    };
    let (before, after) = (nearest(query.0, examples.0), nearest(query.1, examples.1));
    let class = |list: &[(usize, f32)]| list.iter().map(|&(i, _)| names[classes[i]].clone()).collect::<Vec<_>>();
    let cosine = |list: &[(usize, f32)]| list.iter().map(|&(_, c)| c).collect::<Vec<_>>();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("rank".into(), (1..=before.len() as u32).collect::<Vec<_>>()),
        Column::new("before: class".into(), class(&before)),
        Column::new("before: cosine".into(), cosine(&before)),
        Column::new("after: class".into(), class(&after)),
        Column::new("after: cosine".into(), cosine(&after)),
    ])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(rows: &[[f32; 2]]) -> Embeddings {
        let data = rows.iter().flat_map(|r| {
            let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
            [r[0] / n, r[1] / n]
        });
        Embeddings { dim: 2, data: data.collect() }
    }

    #[test]
    fn separation_is_the_mean_cosine_within_and_across_classes() {
        let e = unit(&[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        let s = Separation::of(&e, &[0, 0, 1]);
        assert_eq!((s.same_class, s.other_class, s.gap()), (1.0, 0.0, 1.0));
    }

    #[test]
    fn neighbours_are_ranked_by_cosine_under_each_embedding() {
        let before = unit(&[[1.0, 0.0], [0.0, 1.0]]);
        let after = unit(&[[0.0, 1.0], [1.0, 0.0]]);
        let names = vec!["a".to_string(), "b".to_string()];
        let t = neighbours_table((&[1.0, 0.0], &[1.0, 0.0]), (&before, &after), &[0, 1], &names, 2).unwrap();
        let classes = |c: &str| {
            let column = t.column(c).unwrap().str().unwrap().clone();
            (0..column.len()).map(|i| column.get(i).unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(classes("before: class"), vec!["a", "b"]);
        assert_eq!(classes("after: class"), vec!["b", "a"]);
    }
}
