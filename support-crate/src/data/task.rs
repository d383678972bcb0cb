//! What is being classified, described once: the LLM's instructions, the
//! charts' captions, the report and the fine-tuned classifier's name all
//! read it. AG News is one such description; your own data gets one from a
//! `<train file stem>.task.json` beside the data, from flags, or a plain one
//! named after the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DataError;

/// A classification task in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its name on charts and in the report, e.g. "AG News".
    pub name: String,
    /// What the items are, plural, e.g. "news articles".
    #[serde(default = "default_items")]
    pub items: String,
    /// What a label says about an item, e.g. "topic".
    #[serde(default = "default_label_kind")]
    pub label_kind: String,
    /// One line per class, by class name; a class without one is shown by its name alone.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

fn default_items() -> String {
    "texts".into()
}

fn default_label_kind() -> String {
    "label".into()
}

impl Task {
    /// AG News topic classification: 4 classes of news articles.
    pub fn ag_news() -> Self {
        let descriptions = [
            ("World", "international news, politics, conflicts, diplomacy"),
            ("Sports", "sport events, teams, athletes, results"),
            ("Business", "companies, markets, economy, finance, earnings"),
            ("Sci/Tech", "science, technology, computing, the internet, space, health research"),
        ];
        Task {
            name: "AG News".into(),
            items: "news articles".into(),
            label_kind: "topic".into(),
            descriptions: descriptions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// A task known only by its name: texts and their labels.
    pub fn named(name: &str) -> Self {
        Task {
            name: name.into(),
            items: default_items(),
            label_kind: default_label_kind(),
            descriptions: BTreeMap::new(),
        }
    }

    /// The description file of a data file: `<stem>.task.json` beside it.
    pub fn path_beside(data: &Path) -> PathBuf {
        let stem = data.file_stem().map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
        data.with_file_name(format!("{stem}.task.json"))
    }

    /// The task of a data file: its `<stem>.task.json` where there is one,
    /// else a task named after the file.
    pub fn of_file(data: &Path) -> Result<Self, DataError> {
        let beside = Self::path_beside(data);
        if beside.is_file() {
            return Self::read(&beside);
        }
        let stem = data.file_stem().map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
        Ok(Self::named(&stem))
    }

    /// A task file: JSON with `name`, and optionally `items`, `label_kind`
    /// and `descriptions` (class name to one line).
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.into(), source })?;
        serde_json::from_str(&text).map_err(|e| DataError::Malformed {
            path: path.into(),
            line: e.line() as u64,
            problem: format!(
                "{e}; a task file is JSON: {{\"name\": \"...\", \"items\": \"support tickets\", \"label_kind\": \
                 \"intent\", \"descriptions\": {{\"<class>\": \"one line\"}}}}"
            ),
        })
    }

    /// Label descriptions from a text file, one `class: description` a line
    /// (blank lines and lines starting with `#` skipped).
    pub fn read_descriptions(path: &Path) -> Result<BTreeMap<String, String>, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.into(), source })?;
        let mut descriptions = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((class, description)) = line.split_once(':') else {
                return Err(DataError::Malformed {
                    path: path.into(),
                    line: i as u64 + 1,
                    problem: "expected `class: description`".into(),
                });
            };
            descriptions.insert(class.trim().to_string(), description.trim().to_string());
        }
        Ok(descriptions)
    }

    /// Every described class is one of `labels` (a typo would leave a class
    /// undescribed and describe none).
    pub fn check(&self, labels: &[String], origin: &Path) -> Result<(), DataError> {
        let unknown: Vec<&String> = self.descriptions.keys().filter(|k| !labels.contains(k)).collect();
        if !unknown.is_empty() {
            return Err(DataError::Invalid {
                path: origin.into(),
                problem: format!("describes {unknown:?}, which are not classes of the data (the classes: {labels:?})"),
            });
        }
        Ok(())
    }

    /// A file-name form of the name: "AG News" → "ag-news".
    pub fn slug(&self) -> String {
        crate::paths::slug(&self.name)
    }

    /// One line per class, in label order: "- World: international news, ..." or "- spam".
    pub fn label_lines(&self, labels: &[String]) -> Vec<String> {
        labels
            .iter()
            .map(|l| match self.descriptions.get(l).filter(|d| !d.is_empty()) {
                Some(d) => format!("- {l}: {d}"),
                None => format!("- {l}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_file_beside_the_data_describes_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("tickets.csv");
        assert_eq!(Task::of_file(&data).unwrap(), Task::named("tickets"));
        std::fs::write(
            Task::path_beside(&data),
            r#"{"name": "Helpdesk", "items": "support tickets", "label_kind": "team", "descriptions": {"billing": "invoices"}}"#,
        )
        .unwrap();
        let task = Task::of_file(&data).unwrap();
        assert_eq!((task.name.as_str(), task.items.as_str()), ("Helpdesk", "support tickets"));
        let labels = vec!["billing".to_string(), "network".to_string()];
        assert_eq!(task.label_lines(&labels), ["- billing: invoices", "- network"]);
        assert!(task.check(&labels, &data).is_ok());
        let err = task.check(&["bills".to_string()], &data).unwrap_err().to_string();
        assert!(err.contains("\"billing\"") && err.contains("bills"), "{err}");
        std::fs::write(Task::path_beside(&data), "{\"name\": 3}").unwrap();
        let err = Task::of_file(&data).unwrap_err().to_string();
        assert!(err.contains("tickets.task.json:1"), "{err}");
    }

    #[test]
    fn descriptions_are_read_one_a_line_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.txt");
        std::fs::write(&path, "# teams\nbilling: invoices, refunds\n\nnetwork: outages\n").unwrap();
        let d = Task::read_descriptions(&path).unwrap();
        assert_eq!(d["billing"], "invoices, refunds");
        std::fs::write(&path, "billing: x\nnetwork outages\n").unwrap();
        assert!(Task::read_descriptions(&path).unwrap_err().to_string().contains("labels.txt:2"));
    }
}
