//! One record per experiment run: `results/<name>.json` (versioned schema)
//! and `results/<name>.predictions.csv`, from which anyone can recompute
//! every metric. The predictions file starts with `index,label,prediction`;
//! since schema version 2 one score column per class follows (the header
//! names the class; the record's `scores` says what the scores are).
//! Version 1 files, without scores, are still read. Version 3 added the typed
//! fields a reader matches records by (`kind`, `endpoint`, the timings, the
//! API's price); older records get them from what they held at read time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::metrics::{evaluate, Bootstrap, Metrics, Throughput};

/// Version of the JSON layout written; readers accept it and the older ones.
pub const SCHEMA_VERSION: u32 = 3;
/// Versions this program reads: 1 has no scores, 1 and 2 no typed kind.
const READABLE_VERSIONS: std::ops::RangeInclusive<u64> = 1..=3;

/// Sizes of the data an experiment used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSizes {
    pub source: String,
    /// The task's name (e.g. "AG News"), for captions.
    #[serde(default)]
    pub task: String,
    pub labels: Vec<String>,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

impl DataSizes {
    pub fn of(ds: &Dataset) -> Self {
        DataSizes {
            source: ds.source.clone(),
            task: ds.task.name.clone(),
            labels: ds.labels.clone(),
            train: ds.train.len(),
            validation: ds.validation.len(),
            test: ds.test.len(),
        }
    }
}

/// The machine a run was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    /// The CPU kind where the model name does not say it: "Zen 3, AVX2",
    /// "AVX-512 VNNI". Empty in records made before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
}

impl Hardware {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Hardware {
            kind: cpu_kind(&cpuinfo),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }

    /// e.g. "AMD EPYC (Zen 3, AVX2), 2 cores, 7.7 GiB".
    pub fn summary(&self) -> String {
        let kind = if self.kind.is_empty() { String::new() } else { format!(" ({})", self.kind) };
        format!("{}{kind}, {} cores, {} GiB", self.cpu, self.cores, self.memory_gib)
    }
}

/// The microarchitecture of an AMD CPU (from its family and model: cloud
/// machines often report only "AMD EPYC") and the widest vector unit the
/// kernels use: the two things a speed depends on.
fn cpu_kind(cpuinfo: &str) -> String {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
    let amd = field("vendor_id").as_deref() == Some("AuthenticAMD");
    let zen = match (amd, number("cpu family"), number("model")) {
        (true, Some(23), _) => Some("Zen/Zen 2"),
        (true, Some(25), Some(m)) if m < 0x10 || (0x20..0x60).contains(&m) => Some("Zen 3"),
        (true, Some(25), Some(_)) => Some("Zen 4"),
        (true, Some(26), _) => Some("Zen 5"),
        _ => None,
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd = if has("avx512f") && has("avx512_vnni") {
        "AVX-512 VNNI"
    } else if has("avx512f") {
        "AVX-512"
    } else if has("avx2") {
        "AVX2"
    } else {
        ""
    };
    zen.into_iter().chain((!simd.is_empty()).then_some(simd)).collect::<Vec<_>>().join(", ")
}

/// Everything about one run of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    /// File stem under `results/`, e.g. "knn".
    pub experiment: String,
    /// The method's line in the table of methods, e.g. "knn".
    #[serde(default)]
    pub kind: String,
    /// The server that answered (without credentials); `None`: this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Human name of the method, e.g. "embeddings + K-NN".
    pub method: String,
    /// The model, e.g. "sentence-transformers/all-MiniLM-L6-v2".
    pub model: String,
    /// The command that reproduces the run.
    pub command: String,
    /// Hyper-parameters and choices, as the experiment defines them.
    pub config: serde_json::Value,
    /// Every seed used, by purpose.
    pub seeds: BTreeMap<String, u64>,
    pub data: DataSizes,
    pub hardware: Hardware,
    pub timings: Timings,
    /// What a paid API charged per 1,000 test items, in US dollars (`None`: no API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_cost_per_1000_usd: Option<f64>,
    /// What the predictions file's score columns are (empty: none, schema version 1).
    #[serde(default)]
    pub scores: String,
    /// Test metrics.
    pub metrics: Metrics,
    /// Method-specific numbers (tokens, cost, truncations, ...).
    #[serde(default)]
    pub extra: serde_json::Value,
    /// xxh3-64 (hex) of the predictions file written with this record, so a
    /// record is never read beside predictions of another run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions_xxh3: Option<String>,
}

/// What a run's phases took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Predicting the test items, end to end (answers from a cache count
    /// with what they cost when computed).
    pub test_inference: Throughput,
    /// Producing the classifier: fitting, fine-tuning, or embedding the
    /// training texts for K-NN (`items`: training examples processed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Throughput>,
}

impl RunRecord {
    /// Training time in seconds, where the method trains.
    pub fn train_seconds(&self) -> Option<f64> {
        self.timings.training.map(|t| t.seconds)
    }

    /// Test items classified per second, end to end.
    pub fn items_per_second(&self) -> f64 {
        self.timings.test_inference.items_per_second
    }

    /// An API's price for 1,000 classifications (0 on your own machine).
    pub fn api_cost_per_1000(&self) -> f64 {
        self.api_cost_per_1000_usd.unwrap_or(0.0)
    }
}

/// Whether a file in a results directory is a run record (not the EDA, a
/// benchmark, the curve or a cascade).
fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".json")
        && name != "eda.json"
        && name != "curve.json"
        && name != "costs.json"
        && !name.starts_with("bench_")
        && !name.starts_with("cascade_")
}

/// Every run record in `dir`, each checked against its predictions, sorted
/// by test accuracy (best first). An unreadable record is an error naming
/// the file, never silently left out.
pub fn read_all(dir: &Path) -> Result<Vec<(PathBuf, RunRecord)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_record_file(p))
        .collect();
    paths.sort();
    let mut records = paths.into_iter().map(|p| read_run(&p).map(|(r, _)| (p, r))).collect::<Result<Vec<_>>>()?;
    if records.is_empty() {
        bail!("no run records (*.json) in {}: run an experiment first (e.g. `slm-vs-llm all`)", dir.display());
    }
    records.sort_by(|a, b| b.1.metrics.accuracy.total_cmp(&a.1.metrics.accuracy));
    Ok(records)
}

/// One evaluated test item: `index` is the 0-based row of the original test file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub index: usize,
    pub label: usize,
    /// None when the method gave no valid answer.
    pub prediction: Option<usize>,
    /// One score per class, where the method gave them.
    pub scores: Option<Vec<f32>>,
}

pub fn json_path(dir: &Path, experiment: &str) -> PathBuf {
    dir.join(format!("{experiment}.json"))
}

pub fn predictions_path(dir: &Path, experiment: &str) -> PathBuf {
    dir.join(format!("{experiment}.predictions.csv"))
}

/// Writes the record and its predictions under `dir`: both to temporary
/// files first, then renamed into place, predictions before the record,
/// which holds the predictions' checksum. An interruption leaves the old
/// pair, or new predictions that the old record's checksum rejects — never
/// a pair that reads as consistent but is not.
pub fn write(dir: &Path, record: &RunRecord, predictions: &[Prediction]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let csv = predictions_csv(&record.data.labels, predictions)?;
    let record = RunRecord {
        predictions_xxh3: Some(checksum(csv.as_bytes())),
        config: project_relative(record.config.clone()),
        ..record.clone()
    };
    let csv_path = predictions_path(dir, &record.experiment);
    let json_path = json_path(dir, &record.experiment);
    let csv_tmp = write_temporary(&csv_path, csv.as_bytes())?;
    let json_tmp = write_temporary(&json_path, (serde_json::to_string_pretty(&record)? + "\n").as_bytes())?;
    std::fs::rename(&csv_tmp, &csv_path).with_context(|| format!("replacing {}", csv_path.display()))?;
    std::fs::rename(&json_tmp, &json_path).with_context(|| format!("replacing {}", json_path.display()))
}

/// Every absolute path in `config` that lies inside the project, relative to
/// it: a committed record names `data/models/...`, not the machine that ran it.
pub(crate) fn project_relative(config: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match config {
        Value::String(s) if Path::new(&s).is_absolute() => Value::String(crate::paths::relative(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(project_relative).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, project_relative(v))).collect()),
        other => other,
    }
}

fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// `bytes` in `<path>.tmp`, synced to disk; returns that path.
/// Writes `bytes` to `path` whole or not at all: to `<path>.tmp` first
/// (synced), then renamed over it. An interrupted write leaves the old file.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temporary(path, bytes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn write_temporary(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let tmp = PathBuf::from(name);
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    Ok(tmp)
}

/// A record with its predictions, checked against each other: the
/// predictions file exists, matches the record's checksum (records since
/// it was added) and has one row per evaluated item.
pub fn read_run(json: &Path) -> Result<(RunRecord, Vec<Prediction>)> {
    let record = read_record(json)?;
    let dir = json.parent().unwrap_or(Path::new("."));
    let csv_path = predictions_path(dir, &record.experiment);
    let bytes = std::fs::read(&csv_path)
        .with_context(|| format!("{}: its predictions file {} is missing", json.display(), csv_path.display()))?;
    if let Some(expected) = &record.predictions_xxh3 {
        if checksum(&bytes) != *expected {
            bail!(
                "{}: does not belong to {} (checksum differs): re-run the experiment",
                csv_path.display(),
                json.display()
            );
        }
    }
    let predictions = read_predictions(&csv_path)?;
    if predictions.len() != record.metrics.items {
        bail!(
            "{}: {} predictions for {} evaluated items in {}",
            csv_path.display(),
            predictions.len(),
            record.metrics.items,
            json.display()
        );
    }
    Ok((record, predictions))
}

/// `index,label,prediction,<class>...`: an empty prediction is no valid
/// answer, empty scores are none.
fn predictions_csv(labels: &[String], predictions: &[Prediction]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["index", "label", "prediction"].into_iter().chain(labels.iter().map(String::as_str)))?;
    for p in predictions {
        let mut row =
            vec![p.index.to_string(), p.label.to_string(), p.prediction.map(|x| x.to_string()).unwrap_or_default()];
        match &p.scores {
            Some(scores) if scores.len() == labels.len() => row.extend(scores.iter().map(|s| s.to_string())),
            Some(scores) => bail!("item {}: {} scores for {} classes", p.index, scores.len(), labels.len()),
            None => row.extend(labels.iter().map(|_| String::new())),
        }
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?)
}

/// Read a record, refusing unknown schema versions and missing fields.
pub fn read_record(path: &Path) -> Result<RunRecord> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if READABLE_VERSIONS.contains(&v) => {}
        Some(v) => bail!(
            "{}: schema version {v}, this program reads versions {}-{}",
            path.display(),
            READABLE_VERSIONS.start(),
            READABLE_VERSIONS.end()
        ),
        None => bail!("{}: no schema_version field; not a results file", path.display()),
    }
    let value = upgrade(value);
    serde_json::from_value(value).with_context(|| format!("{}: missing or malformed fields", path.display()))
}

/// A version 1 or 2 record with the typed fields of version 3, from what it
/// held: the kind from the file stem the four original methods wrote, the
/// server and the API's price from the LLM's `extra`. Its version stays what
/// the file says.
fn upgrade(mut value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if value.get("schema_version").and_then(Value::as_u64).is_some_and(|v| v >= 3) {
        return value;
    }
    let Some(record) = value.as_object_mut() else { return value };
    let experiment = record.get("experiment").and_then(Value::as_str).unwrap_or_default();
    let kind = match experiment {
        "knn" => "knn",
        "finetune_slm" => "finetune",
        "baseline_tfidf" => "tfidf",
        e if e.starts_with("llm_") => "llm",
        _ => "",
    };
    record.insert("kind".into(), kind.into());
    if let Some(data) = record.get_mut("data").and_then(Value::as_object_mut) {
        let ag_news = data.get("source").and_then(Value::as_str).is_some_and(|s| s.starts_with("AG News"));
        if ag_news && !data.contains_key("task") {
            data.insert("task".into(), "AG News".into());
        }
    }
    let extra = record.get("extra").cloned().unwrap_or(Value::Null);
    if let Some(url) = extra.get("endpoint").and_then(Value::as_str).filter(|u| u.contains("://")) {
        record.insert("endpoint".into(), url.into());
    }
    if let Some(cost) = extra.get("cost_per_1000_items_usd").and_then(Value::as_f64).filter(|&c| c > 0.0) {
        record.insert("api_cost_per_1000_usd".into(), cost.into());
    }
    value
}

/// Read a predictions file: `index,label,prediction` (prediction may be
/// empty), then a score column per class (version 2) or none (version 1).
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header = reader.headers().with_context(|| format!("{}: no header", path.display()))?.clone();
    if header.len() < 3 || header.iter().take(3).collect::<Vec<_>>() != ["index", "label", "prediction"] {
        bail!("{}: header must start with index,label,prediction, found {:?}", path.display(), header);
    }
    let classes = header.len() - 3;
    reader
        .records()
        .map(|record| {
            let record = record.with_context(|| format!("{}: unreadable row", path.display()))?;
            let line = record.position().map_or(0, |p| p.line());
            let number = |i: usize| -> Result<usize> {
                record[i]
                    .parse()
                    .with_context(|| format!("{}:{line}: field {} is not a class index", path.display(), i + 1))
            };
            let prediction = if record[2].is_empty() { None } else { Some(number(2)?) };
            let scores = if classes == 0 || record.iter().skip(3).all(str::is_empty) {
                None
            } else {
                let scores: Result<Vec<f32>> = (3..3 + classes)
                    .map(|i| {
                        record[i]
                            .parse()
                            .with_context(|| format!("{}:{line}: field {} is not a score", path.display(), i + 1))
                    })
                    .collect();
                Some(scores?)
            };
            Ok(Prediction { index: number(0)?, label: number(1)?, prediction, scores })
        })
        .collect()
}

/// `VmHWM` from `/proc/self/status`: the process's peak resident memory (MiB), where the OS reports it.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Recompute the metrics of a predictions file (same bootstrap settings as the record).
pub fn recompute(record: &RunRecord, predictions: &[Prediction]) -> Metrics {
    let labels: Vec<usize> = predictions.iter().map(|p| p.label).collect();
    let preds: Vec<Option<usize>> = predictions.iter().map(|p| p.prediction).collect();
    let bootstrap = Bootstrap { samples: record.metrics.bootstrap_samples, seed: record.metrics.bootstrap_seed };
    evaluate(&labels, &preds, &record.data.labels, bootstrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_kind_names_the_zen_generation_and_the_vector_unit() {
        let cpuinfo = |family: u32, model: u32, flags: &str| {
            format!("vendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu {flags}\n")
        };
        assert_eq!(cpu_kind(&cpuinfo(25, 1, "avx2 fma")), "Zen 3, AVX2");
        assert_eq!(cpu_kind(&cpuinfo(25, 0x11, "avx2 avx512f avx512_vnni")), "Zen 4, AVX-512 VNNI");
        assert_eq!(cpu_kind(&cpuinfo(25, 0x50, "avx2")), "Zen 3, AVX2");
        let intel = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nflags\t\t: avx2 avx512f\n";
        assert_eq!(cpu_kind(intel), "AVX-512");
        assert_eq!(cpu_kind(""), "");
        let hardware = Hardware {
            cpu: "AMD EPYC".into(),
            kind: "Zen 3, AVX2".into(),
            cores: 2,
            memory_gib: 7.7,
            os: "linux".into(),
        };
        assert_eq!(hardware.summary(), "AMD EPYC (Zen 3, AVX2), 2 cores, 7.7 GiB");
        let old: Hardware =
            serde_json::from_str(r#"{"cpu":"AMD EPYC","cores":2,"memory_gib":7.7,"os":"linux"}"#).unwrap();
        assert_eq!(old.summary(), "AMD EPYC, 2 cores, 7.7 GiB", "records made before the kind was kept still read");
    }

    fn record(metrics: Metrics) -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            experiment: "demo".into(),
            kind: "demo".into(),
            endpoint: None,
            method: "demo method".into(),
            model: "none".into(),
            command: "slm-vs-llm demo".into(),
            config: serde_json::json!({"k": 5}),
            seeds: BTreeMap::from([("split".into(), 42)]),
            data: DataSizes {
                source: "synthetic".into(),
                task: "synthetic".into(),
                labels: vec!["a".into(), "b".into()],
                train: 4,
                validation: 1,
                test: 3,
            },
            hardware: Hardware::detect(),
            timings: Timings { test_inference: Throughput::new(2.0, 3), training: None },
            api_cost_per_1000_usd: None,
            scores: "demo probabilities".into(),
            metrics,
            extra: serde_json::Value::Null,
            predictions_xxh3: None,
        }
    }

    #[test]
    fn round_trip_and_recompute() {
        let preds = vec![
            Prediction { index: 5, label: 0, prediction: Some(0), scores: Some(vec![0.75, 0.25]) },
            Prediction { index: 1, label: 1, prediction: None, scores: None },
            Prediction { index: 9, label: 1, prediction: Some(1), scores: Some(vec![0.125, 0.875]) },
        ];
        let names = vec!["a".to_string(), "b".to_string()];
        let metrics = evaluate(&[0, 1, 1], &[Some(0), None, Some(1)], &names, Bootstrap::default());
        let rec = record(metrics);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &rec, &preds).unwrap();
        let csv = std::fs::read_to_string(predictions_path(dir.path(), "demo")).unwrap();
        assert_eq!(csv, "index,label,prediction,a,b\n5,0,0,0.75,0.25\n1,1,,,\n9,1,1,0.125,0.875\n");
        let back = read_record(&json_path(dir.path(), "demo")).unwrap();
        assert_eq!(back, RunRecord { predictions_xxh3: back.predictions_xxh3.clone(), ..rec.clone() });
        assert_eq!(read_run(&json_path(dir.path(), "demo")).unwrap(), (back.clone(), preds.clone()));
        let read = read_predictions(&predictions_path(dir.path(), "demo")).unwrap();
        assert_eq!(read, preds);
        assert_eq!(recompute(&back, &read), rec.metrics);
    }

    #[test]
    fn paths_inside_the_project_are_written_relative_to_it() {
        let root = crate::paths::project_root();
        let model = root.join("data/models/all-MiniLM-L6-v2");
        let config = serde_json::json!({
            "embed": { "model": model.display().to_string(), "batch": 32 },
            "files": [root.join("data/ag_news/test.csv").display().to_string(), "/elsewhere/x.csv", "k"],
        });
        let written = project_relative(config);
        assert_eq!(written["embed"]["model"], "data/models/all-MiniLM-L6-v2");
        assert_eq!(written["embed"]["batch"], 32);
        assert_eq!(written["files"], serde_json::json!(["data/ag_news/test.csv", "/elsewhere/x.csv", "k"]));
    }

    #[test]
    fn a_record_beside_foreign_missing_or_short_predictions_is_refused() {
        let names = vec!["a".to_string(), "b".to_string()];
        let preds = vec![
            Prediction { index: 0, label: 0, prediction: Some(0), scores: None },
            Prediction { index: 1, label: 1, prediction: Some(0), scores: None },
        ];
        let rec = record(evaluate(&[0, 1], &[Some(0), Some(0)], &names, Bootstrap::default()));
        let dir = tempfile::tempdir().unwrap();
        let (json, csv) = (json_path(dir.path(), "demo"), predictions_path(dir.path(), "demo"));
        write(dir.path(), &rec, &preds).unwrap();
        assert!(read_run(&json).is_ok());
        assert!(!dir.path().join("demo.json.tmp").exists());
        // Predictions of another run beside this record.
        std::fs::write(&csv, "index,label,prediction,a,b\n0,0,1,,\n1,1,0,,\n").unwrap();
        assert!(format!("{:#}", read_run(&json).unwrap_err()).contains("checksum differs"));
        // Without a checksum (an older record) the item count is still checked.
        let mut old = read_record(&json).unwrap();
        old.predictions_xxh3 = None;
        std::fs::write(&json, serde_json::to_string(&old).unwrap()).unwrap();
        std::fs::write(&csv, "index,label,prediction\n0,0,1\n").unwrap();
        assert!(format!("{:#}", read_run(&json).unwrap_err()).contains("1 predictions for 2 evaluated items"));
        std::fs::remove_file(&csv).unwrap();
        assert!(format!("{:#}", read_run(&json).unwrap_err()).contains("is missing"));
    }

    #[test]
    fn version_1_records_and_predictions_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["a".to_string(), "b".to_string()];
        let mut v1 = serde_json::to_value(record(evaluate(&[0], &[Some(0)], &names, Bootstrap::default()))).unwrap();
        v1["schema_version"] = 1.into();
        v1.as_object_mut().unwrap().remove("scores");
        std::fs::write(json_path(dir.path(), "old"), v1.to_string()).unwrap();
        assert_eq!(read_record(&json_path(dir.path(), "old")).unwrap().scores, "");
        std::fs::write(predictions_path(dir.path(), "old"), "index,label,prediction\n3,0,1\n4,1,\n").unwrap();
        let read = read_predictions(&predictions_path(dir.path(), "old")).unwrap();
        assert_eq!(read[0], Prediction { index: 3, label: 0, prediction: Some(1), scores: None });
        assert_eq!(read[1].prediction, None);
    }

    #[test]
    fn unknown_schema_and_missing_fields_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, r#"{"schema_version": 99}"#).unwrap();
        assert!(read_record(&p).unwrap_err().to_string().contains("schema version 99"));
        std::fs::write(&p, r#"{"schema_version": 2, "experiment": "x"}"#).unwrap();
        assert!(format!("{:#}", read_record(&p).unwrap_err()).contains("missing or malformed"));
        std::fs::write(&p, r#"{"experiment": "x"}"#).unwrap();
        assert!(read_record(&p).unwrap_err().to_string().contains("no schema_version"));
    }
}
