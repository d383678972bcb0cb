//! The tables every method shares: per-class scores and the confusion
//! matrix of an evaluation (methods of `Metrics`, kept here with the other
//! views), a run's wrong answers with the scores behind them, and its
//! invalid answers with the reason.

use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::{Column, DataFrame};
use serde::Serialize;

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
    pub fn confusion_chart(&self, title: &str) -> Result<crate::plot::Svg> {
        let labels: Vec<String> = self.per_class.iter().map(|c| c.label.clone()).collect();
        crate::plot::confusion_heatmap(title, &labels, &self.confusion, &self.invalid_per_class)
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

/// Settings as a two-column table in alphabetical order, nested fields with
/// dotted names (`train.learning_rate`), `None` as empty: a configuration a
/// reader can scan.
pub fn settings_table(settings: &impl Serialize) -> Result<DataFrame> {
    fn flatten(prefix: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, v) in fields {
                    let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                    flatten(&key, v, rows);
                }
            }
            serde_json::Value::String(s) => rows.push((prefix.to_string(), s.clone())),
            serde_json::Value::Null => rows.push((prefix.to_string(), String::new())),
            other => rows.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    flatten("", &serde_json::to_value(settings)?, &mut rows);
    Ok(DataFrame::new_infer_height(vec![
        Column::new("setting".into(), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
        Column::new("value".into(), rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()),
    ])?)
}

/// A small CSV file with a header row as a table: columns whose every value
/// is a number become numbers, the rest text.
pub fn csv_table(path: &Path) -> Result<DataFrame> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), line + 2))?;
        if record.len() != header.len() {
            bail!("{}: line {} has {} fields, the header {}", path.display(), line + 2, record.len(), header.len());
        }
        for (column, value) in cells.iter_mut().zip(record.iter()) {
            column.push(value.to_string());
        }
    }
    let columns = header
        .iter()
        .zip(cells)
        .map(|(name, values)| match values.iter().map(|v| v.parse::<f64>()).collect::<Result<Vec<f64>, _>>() {
            Ok(numbers) => Column::new(name.into(), numbers),
            Err(_) => Column::new(name.into(), values),
        })
        .collect();
    Ok(DataFrame::new_infer_height(columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_flatten_with_dotted_names() {
        #[derive(Serialize)]
        struct Inner {
            rate: f64,
        }
        #[derive(Serialize)]
        struct Settings {
            model: String,
            train: Inner,
            limit: Option<usize>,
        }
        let df = settings_table(&Settings { model: "m".into(), train: Inner { rate: 2e-4 }, limit: None }).unwrap();
        let strings = |name: &str| {
            let column = df.column(name).unwrap().str().unwrap().clone();
            (0..column.len()).map(|i| column.get(i).unwrap_or_default().to_string()).collect::<Vec<_>>()
        };
        let (names, values) = (strings("setting"), strings("value"));
        assert_eq!(names, ["limit", "model", "train.rate"]);
        assert_eq!(values, ["", "m", "0.0002"]);
    }

    #[test]
    fn csv_table_types_columns_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        std::fs::write(&path, "layers,note\n26,fast\n18,chosen\n").unwrap();
        let df = csv_table(&path).unwrap();
        assert_eq!(df.column("layers").unwrap().f64().unwrap().get(1), Some(18.0));
        assert_eq!(df.column("note").unwrap().str().unwrap().get(0), Some("fast"));
        std::fs::write(&path, "layers,note\n26,fast,extra\n").unwrap();
        let err = format!("{:#}", csv_table(&path).unwrap_err());
        assert!(err.contains("sweep.csv") && err.contains("line 2"), "{err}");
    }
}
