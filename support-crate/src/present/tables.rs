//! The tables every method shares: per-class scores and the confusion
//! matrix of an evaluation (methods of `Metrics`, kept here with the other
//! views), a run's wrong answers with the scores behind them, and its
//! invalid answers with the reason.

use anyhow::Result;
use polars::prelude::{Column, DataFrame};

use crate::method::MethodRun;
use crate::metrics::{ClassScores, Metrics};

impl Metrics {
    /// Precision, recall, F1 and support per class.
    pub fn per_class_table(&self) -> Result<DataFrame> {
        let pct = |f: fn(&ClassScores) -> f64| {
            self.per_class.iter().map(|c| (1000.0 * f(c)).round() / 10.0).collect::<Vec<_>>()
        };
        Ok(DataFrame::new_infer_height(vec![
            Column::new("class".into(), self.per_class.iter().map(|c| c.label.clone()).collect::<Vec<_>>()),
            Column::new("precision %".into(), pct(|c| c.precision)),
            Column::new("recall %".into(), pct(|c| c.recall)),
            Column::new("F1 %".into(), pct(|c| c.f1)),
            Column::new("support".into(), self.per_class.iter().map(|c| c.support as u64).collect::<Vec<_>>()),
        ])?)
    }

    /// The confusion matrix as a heat map.
    pub fn confusion_chart(&self, title: &str) -> Result<super::plot::Svg> {
        let labels: Vec<String> = self.per_class.iter().map(|c| c.label.clone()).collect();
        super::plot::confusion_heatmap(title, &labels, &self.confusion, &self.invalid_per_class)
    }
}

/// "World 0.81, Sports 0.02, ...", or "(none)".
pub fn format_scores(labels: &[String], scores: Option<&[f32]>) -> String {
    match scores {
        Some(s) => labels.iter().zip(s).map(|(l, p)| format!("{l} {p:.2}")).collect::<Vec<_>>().join(", "),
        None => "(none)".into(),
    }
}

/// Up to `rows` wrongly answered test items (valid answers only): the text,
/// the true and the predicted class, the scores, and a column of the
/// method's own evidence when `evidence` gives one (e.g. K-NN's neighbours),
/// called with the position in `run.test`.
pub fn error_table(
    run: &MethodRun,
    labels: &[String],
    rows: usize,
    evidence: Option<(&str, &dyn Fn(usize) -> String)>,
) -> Result<DataFrame> {
    let wrong: Vec<usize> = (0..run.test.len())
        .filter(|&i| run.outputs[i].label.is_some_and(|p| p != run.test[i].label))
        .take(rows)
        .collect();
    let name = |c: usize| labels[c].clone();
    let mut columns = vec![
        Column::new("test row".into(), wrong.iter().map(|&i| run.test[i].index as u64).collect::<Vec<_>>()),
        Column::new("text".into(), wrong.iter().map(|&i| run.test[i].text.clone()).collect::<Vec<_>>()),
        Column::new("true".into(), wrong.iter().map(|&i| name(run.test[i].label)).collect::<Vec<_>>()),
        Column::new(
            "predicted".into(),
            wrong.iter().map(|&i| name(run.outputs[i].label.unwrap_or_default())).collect::<Vec<_>>(),
        ),
        Column::new(
            "scores".into(),
            wrong.iter().map(|&i| format_scores(labels, run.outputs[i].scores.as_deref())).collect::<Vec<_>>(),
        ),
    ];
    if let Some((title, evidence)) = evidence {
        columns.push(Column::new(title.into(), wrong.iter().map(|&i| evidence(i)).collect::<Vec<_>>()));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Up to `rows` test items without a valid answer, with the reason.
pub fn invalid_table(run: &MethodRun, labels: &[String], rows: usize) -> Result<DataFrame> {
    let bad: Vec<usize> = (0..run.test.len()).filter(|&i| run.outputs[i].label.is_none()).take(rows).collect();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("test row".into(), bad.iter().map(|&i| run.test[i].index as u64).collect::<Vec<_>>()),
        Column::new("text".into(), bad.iter().map(|&i| run.test[i].text.clone()).collect::<Vec<_>>()),
        Column::new("true".into(), bad.iter().map(|&i| labels[run.test[i].label].clone()).collect::<Vec<_>>()),
        Column::new(
            "reason".into(),
            bad.iter().map(|&i| run.outputs[i].error.clone().unwrap_or_default()).collect::<Vec<_>>(),
        ),
    ])?)
}
