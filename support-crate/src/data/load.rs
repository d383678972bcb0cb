//! Reading datasets from disk or the Hugging Face Hub.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::{DataType, ParquetReader, SerReader};

use super::{
    stratified_sample, stratified_split, DataConfig, DataError, Dataset, Example, Task, AG_NEWS_LABELS,
    HOW_TO_GET_AG_NEWS,
};

pub const AG_NEWS_HUB_REPO: &str = "fancyzhx/ag_news";
/// The hub revision the parquet files are read from. The dataset has not
/// changed since its parquet conversion; override with `AG_NEWS_HUB_REVISION`.
pub const AG_NEWS_HUB_REVISION: &str = "main";
const HUB_TRAIN: &str = "data/train-00000-of-00001.parquet";
const HUB_TEST: &str = "data/test-00000-of-00001.parquet";

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The original AG News CSV release: no header, `"class","title","description"`,
    /// class 1..4. `train_file` is `train.csv` in the release.
    AgNewsCsv { dir: PathBuf, train_file: String },
    /// The Hugging Face AG News parquet files (`text`, `label` 0..3) in `dir` or `dir/data`.
    AgNewsParquet { dir: PathBuf },
    /// AG News downloaded (and cached) with hf-hub.
    AgNewsHub { repo: String, revision: String },
    /// Any CSV (with a header) or parquet file with a text and a label column.
    /// The label is a class name or an integer index; without a test file a
    /// seeded stratified `test_fraction` of train becomes test.
    Custom {
        train: PathBuf,
        test: Option<PathBuf>,
        text_column: String,
        label_column: String,
        /// Names for integer labels (index i is `label_names[i]`), or the
        /// allowed names; by default the distinct labels, sorted.
        label_names: Option<Vec<String>>,
    },
}

impl Source {
    /// The data the notebooks run on, from one environment variable:
    /// `SLM_DATA` set to a CSV or parquet file with `text` and `label`
    /// columns (a seeded stratified share becomes test; the task from its
    /// `<stem>.task.json` beside it), or to an AG News directory; unset,
    /// AG News as [`Source::locate`] finds it.
    pub fn from_env() -> Result<Source, DataError> {
        match std::env::var_os("SLM_DATA").filter(|v| !v.is_empty()).map(PathBuf::from) {
            Some(dir) if dir.is_dir() => Self::in_directory(&dir, None),
            Some(file) if file.is_file() => Ok(Source::Custom {
                train: file,
                test: None,
                text_column: "text".into(),
                label_column: "label".into(),
                label_names: None,
            }),
            Some(missing) => Err(DataError::MissingFile {
                path: missing,
                hint: "SLM_DATA names a CSV or parquet file with text and label columns, or an AG News directory"
                    .into(),
            }),
            None => Self::locate(None, None),
        }
    }

    /// The AG News source a user means: `data_dir`, else `AG_NEWS_DIR`, else the
    /// project's `data/ag_news` if it holds the data, else the Hugging Face Hub.
    /// `train_file` overrides the CSV train file name (default `train.csv`,
    /// falling back to `train_subset.csv`).
    pub fn locate(data_dir: Option<&Path>, train_file: Option<&str>) -> Result<Source, DataError> {
        let env_dir = std::env::var_os("AG_NEWS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = data_dir.map(Path::to_path_buf).or(env_dir) {
            return Self::in_directory(&dir, train_file);
        }
        let project_dir = crate::paths::data_dir().join("ag_news");
        if project_dir.join("test.csv").is_file() || parquet_dir(&project_dir).is_some() {
            let project_dir = project_dir.canonicalize().unwrap_or(project_dir);
            return Self::in_directory(&project_dir, train_file);
        }
        let revision = std::env::var("AG_NEWS_HUB_REVISION").unwrap_or_else(|_| AG_NEWS_HUB_REVISION.into());
        Ok(Source::AgNewsHub { repo: AG_NEWS_HUB_REPO.into(), revision })
    }

    /// The AG News files in `dir`: the CSV release or the parquet files.
    pub fn in_directory(dir: &Path, train_file: Option<&str>) -> Result<Source, DataError> {
        if !dir.is_dir() {
            let problem = if dir.exists() { "is not a directory" } else { "directory not found" };
            return Err(DataError::BadDirectory {
                path: dir.into(),
                problem: problem.into(),
                hint: HOW_TO_GET_AG_NEWS.into(),
            });
        }
        if dir.join("test.csv").is_file() {
            let train_file = match train_file {
                Some(name) => name.to_string(),
                None if !dir.join("train.csv").is_file() && dir.join("train_subset.csv").is_file() => {
                    "train_subset.csv".into()
                }
                None => "train.csv".into(),
            };
            return Ok(Source::AgNewsCsv { dir: dir.into(), train_file });
        }
        if let Some(dir) = parquet_dir(dir) {
            return Ok(Source::AgNewsParquet { dir });
        }
        Err(DataError::BadDirectory {
            path: dir.into(),
            problem: "holds neither test.csv (CSV release) nor test-00000-of-00001.parquet (Hugging Face)".into(),
            hint: HOW_TO_GET_AG_NEWS.into(),
        })
    }

    /// The run records a notebook reads for this data: your own file's runs
    /// under `data/runs/<file>[/smoke]/results` (as `slm-vs-llm all --train`
    /// writes them); for AG News the committed `results/`, whatever the
    /// profile (the Comparison notebook computes nothing).
    pub fn results_dir(&self, profile: crate::paths::Profile) -> PathBuf {
        match self {
            Source::Custom { train, .. } => crate::paths::own_data_dir(train, profile).join("results"),
            _ => crate::paths::results_dir(crate::paths::Profile::Full),
        }
    }

    /// A short description for reports.
    /// What the data is, for logs, notebooks and records; paths inside the
    /// project are shown relative to it (no machine-specific prefix).
    /// What the data are for: AG News's own description, or for your own
    /// file its `<stem>.task.json` (else a task named after the file).
    pub fn task(&self) -> Result<Task, DataError> {
        match self {
            Source::Custom { train, .. } => Task::of_file(train),
            _ => Ok(Task::ag_news()),
        }
    }

    pub fn describe(&self) -> String {
        use crate::paths::relative;
        match self {
            Source::AgNewsCsv { dir, train_file } => format!("AG News CSV {} ({train_file}, test.csv)", relative(dir)),
            Source::AgNewsParquet { dir } => format!("AG News parquet {}", relative(dir)),
            Source::AgNewsHub { repo, revision } => format!("hf-hub dataset {repo}@{revision}"),
            Source::Custom { train, test, .. } => match test {
                Some(test) => format!("{} + {}", relative(train), relative(test)),
                None => relative(train),
            },
        }
    }
}

fn parquet_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("data")].into_iter().find(|d| d.join("test-00000-of-00001.parquet").is_file())
}

/// Load `source` and make the splits `config` asks for.
pub fn load(source: &Source, config: &DataConfig) -> Result<Dataset, DataError> {
    let (labels, train, test) = match source {
        Source::AgNewsCsv { dir, train_file } => {
            (ag_news_labels(), read_ag_news_csv(&dir.join(train_file))?, read_ag_news_csv(&dir.join("test.csv"))?)
        }
        Source::AgNewsParquet { dir } => {
            let read = |name: &str| read_ag_news_parquet(&dir.join(name));
            (ag_news_labels(), read("train-00000-of-00001.parquet")?, read("test-00000-of-00001.parquet")?)
        }
        Source::AgNewsHub { repo, revision } => {
            let train = hub_file(repo, revision, HUB_TRAIN)?;
            let test = hub_file(repo, revision, HUB_TEST)?;
            (ag_news_labels(), read_ag_news_parquet(&train)?, read_ag_news_parquet(&test)?)
        }
        Source::Custom { train, test, text_column, label_column, label_names } => {
            let columns = Columns { text: text_column, label: label_column };
            let train_rows = read_table(train, &columns)?;
            let test_rows = test.as_ref().map(|t| read_table(t, &columns).map(|rows| (t, rows))).transpose()?;
            let labels = LabelSet::new(label_names.clone(), &train_rows, train)?;
            let train_examples = labels.examples(train, train_rows)?;
            match test_rows {
                Some((path, rows)) => {
                    let test_examples = labels.examples(path, rows)?;
                    (labels.names, train_examples, test_examples)
                }
                None => {
                    let seed = config.seed ^ 0x7e57;
                    let (train, test) =
                        stratified_split(train_examples, labels.names.len(), config.test_fraction, seed);
                    (labels.names, train, test)
                }
            }
        }
    };
    let k = labels.len();
    let test = match config.max_test {
        Some(n) => stratified_sample(test, k, n, config.seed ^ 0x5a),
        None => test,
    };
    let train = match config.max_train {
        Some(n) => stratified_sample(train, k, n, config.seed ^ 0x7a),
        None => train,
    };
    let (train, validation) = stratified_split(train, k, config.validation_fraction, config.seed);
    let task = source.task()?;
    if let Source::Custom { train, .. } = source {
        task.check(&labels, &Task::path_beside(train))?;
    }
    Ok(Dataset { source: source.describe(), task, labels, train, validation, test, seed: config.seed })
}

fn ag_news_labels() -> Vec<String> {
    AG_NEWS_LABELS.iter().map(|s| s.to_string()).collect()
}

fn open(path: &Path, what: &str) -> Result<File, DataError> {
    match File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(DataError::MissingFile { path: path.into(), hint: format!("Expected {what}. {HOW_TO_GET_AG_NEWS}") })
        }
        Err(e) => Err(DataError::Io { path: path.into(), source: e }),
    }
}

fn check_not_empty(path: &Path, file: &File, expected: &str) -> Result<(), DataError> {
    let len = file.metadata().map_err(|e| DataError::Io { path: path.into(), source: e })?.len();
    if len == 0 {
        return Err(DataError::Empty { path: path.into(), expected: expected.into() });
    }
    Ok(())
}

const AG_NEWS_CSV_FORMAT: &str = "rows of 3 double-quoted fields: \"class index 1-4\",\"title\",\"description\"";

/// Read one file of the AG News CSV release. The format is strict (one
/// record per line, every field quoted, `""` for a quote inside a field), and
/// so is the reader: a stray quote inside a field or a quote left open is an
/// error naming the line, never a silently merged or extra row.
pub(crate) fn read_ag_news_csv(path: &Path) -> Result<Vec<Example>, DataError> {
    let mut file = open(path, &format!("an AG News CSV file ({AG_NEWS_CSV_FORMAT})"))?;
    check_not_empty(path, &file, AG_NEWS_CSV_FORMAT)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| DataError::Io { path: path.into(), source })?;
    // The newline that ends the last record does not start another.
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let mut examples = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let malformed = |problem: String| DataError::Malformed { path: path.into(), line, problem };
        let text = std::str::from_utf8(raw).map_err(|e| {
            let field = 1 + raw[..e.valid_up_to()].windows(3).filter(|w| w == b"\",\"").count();
            malformed(format!("field {field} is not valid UTF-8 ({e})"))
        })?;
        let fields = quoted_fields(text).map_err(|e| malformed(format!("{e}; expected {AG_NEWS_CSV_FORMAT}")))?;
        let [class, title, body]: [String; 3] = fields.try_into().map_err(|f: Vec<String>| {
            malformed(format!("expected 3 fields ({AG_NEWS_CSV_FORMAT}), found {}", f.len()))
        })?;
        let label = match class.trim().parse::<usize>() {
            Ok(c @ 1..=4) => c - 1,
            _ => return Err(malformed(format!("class index must be 1, 2, 3 or 4, found {class:?}"))),
        };
        examples.push(Example::new(examples.len(), label, title, body));
    }
    Ok(examples)
}

/// The fields of one line in which every field is double-quoted and a quote
/// inside a field is written `""`.
fn quoted_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        match chars.next() {
            Some((_, '"')) => {}
            Some((at, c)) => return Err(format!("a field must start with \", found {c:?} at column {}", at + 1)),
            None => return Err("an empty line".into()),
        }
        let mut field = String::new();
        loop {
            match chars.next() {
                Some((_, '"')) if chars.peek().map(|&(_, c)| c) == Some('"') => {
                    chars.next();
                    field.push('"');
                }
                Some((_, '"')) => break,
                Some((_, c)) => field.push(c),
                None => return Err(format!("field {} is not closed: a \" is missing", fields.len() + 1)),
            }
        }
        fields.push(field);
        match chars.next() {
            None => return Ok(fields),
            Some((_, ',')) => {}
            Some((at, c)) => {
                return Err(format!(
                    "a stray \" in field {}: {c:?} follows a closing quote at column {}",
                    fields.len(),
                    at + 1
                ))
            }
        }
    }
}

/// Field `i` of a record as text, or what is wrong with it.
fn utf8_field(record: &csv::ByteRecord, i: usize) -> Result<String, String> {
    std::str::from_utf8(&record[i]).map(str::to_string).map_err(|e| format!("field {} is not valid UTF-8 ({e})", i + 1))
}

fn csv_error(path: &Path, line: u64, e: csv::Error) -> DataError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io { path: path.into(), source },
        kind => DataError::Malformed { path: path.into(), line, problem: format!("unreadable CSV: {kind:?}") },
    }
}

/// Read a Hugging Face AG News parquet file (`text`, `label` 0..3).
fn read_ag_news_parquet(path: &Path) -> Result<Vec<Example>, DataError> {
    let rows = read_parquet(path, &Columns { text: "text", label: "label" })?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match row.label.parse::<usize>() {
            Ok(label @ 0..=3) => Ok(Example::new(i, label, String::new(), row.text)),
            _ => Err(DataError::Invalid {
                path: path.into(),
                problem: format!("row {i}: label must be 0..3, found {:?}", row.label),
            }),
        })
        .collect()
}

struct Columns<'a> {
    text: &'a str,
    label: &'a str,
}

/// A text and its label as written in the file, with the line it came from.
struct Row {
    line: u64,
    text: String,
    label: String,
}

fn read_table(path: &Path, columns: &Columns) -> Result<Vec<Row>, DataError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => read_parquet(path, columns),
        _ => read_csv_table(path, columns),
    }
}

fn read_csv_table(path: &Path, columns: &Columns) -> Result<Vec<Row>, DataError> {
    let expected =
        format!("a CSV file with a header row naming the columns {:?} and {:?}", columns.text, columns.label);
    let file = open(path, &expected)?;
    check_not_empty(path, &file, &expected)?;
    let delimiter = if path.extension().is_some_and(|e| e == "tsv") { b'\t' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(file);
    let header = reader.byte_headers().map_err(|e| csv_error(path, 1, e))?.clone();
    let find = |name: &str| {
        header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| DataError::Malformed {
            path: path.into(),
            line: 1,
            problem: format!(
                "no column {name:?} in the header (found {}); expected {expected}",
                header.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(", ")
            ),
        })
    };
    let (text_col, label_col) = (find(columns.text)?, find(columns.label)?);
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let start_line = reader.position().line();
        if !reader.read_byte_record(&mut record).map_err(|e| csv_error(path, start_line, e))? {
            break;
        }
        let line = record.position().map_or(start_line, |p| p.line());
        let malformed = |problem: String| DataError::Malformed { path: path.into(), line, problem };
        if record.len() != header.len() {
            return Err(malformed(format!("expected {} fields like the header, found {}", header.len(), record.len())));
        }
        let field = |i: usize| utf8_field(&record, i).map_err(malformed);
        let row = Row { line, text: field(text_col)?, label: field(label_col)?.trim().to_string() };
        for (column, value) in [(columns.text, &row.text), (columns.label, &row.label)] {
            if value.trim().is_empty() {
                return Err(malformed(format!("column {column:?} is empty")));
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DataError::Empty { path: path.into(), expected: format!("{expected}, and data rows") });
    }
    Ok(rows)
}

fn read_parquet(path: &Path, columns: &Columns) -> Result<Vec<Row>, DataError> {
    let file = open(path, &format!("a parquet file with columns {:?} and {:?}", columns.text, columns.label))?;
    let invalid = |problem: String| DataError::Invalid { path: path.into(), problem };
    let df = ParquetReader::new(file).finish().map_err(|e| invalid(format!("not a readable parquet file: {e}")))?;
    let column_as_strings = |name: &str| -> Result<Vec<Option<String>>, DataError> {
        let column =
            df.column(name).map_err(|_| invalid(format!("no column {name:?} (found {:?})", df.get_column_names())))?;
        let strings = column
            .as_materialized_series()
            .cast(&DataType::String)
            .map_err(|e| invalid(format!("column {name:?} cannot be read as text: {e}")))?;
        let strings = strings.str().map_err(|e| invalid(e.to_string()))?;
        Ok(strings.iter().map(|s| s.map(str::to_string)).collect())
    };
    let texts = column_as_strings(columns.text)?;
    let labels = column_as_strings(columns.label)?;
    if texts.is_empty() {
        return Err(DataError::Empty { path: path.into(), expected: "data rows".into() });
    }
    texts
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (text, label))| match (text, label) {
            (Some(text), Some(label)) if !text.trim().is_empty() && !label.trim().is_empty() => {
                Ok(Row { line: i as u64, text, label: label.trim().to_string() })
            }
            _ => Err(invalid(format!("row {i}: column {:?} or {:?} is missing or empty", columns.text, columns.label))),
        })
        .collect()
}

/// Class names of a custom dataset and how its raw labels map to them.
struct LabelSet {
    names: Vec<String>,
    map: LabelMap,
}

enum LabelMap {
    /// Raw labels are the names.
    Names,
    /// Raw labels are 0-based indices into the names given with the data.
    Index,
    /// Raw labels are integers, each distinct value a class (sorted): labels
    /// 1..4 make four classes, not five with a phantom class 0.
    Values(Vec<usize>),
}

impl LabelSet {
    fn new(names: Option<Vec<String>>, rows: &[Row], path: &Path) -> Result<Self, DataError> {
        let invalid = |problem: String| DataError::Invalid { path: path.into(), problem };
        let all_integers = rows.iter().all(|r| r.label.parse::<usize>().is_ok());
        let set = match names {
            Some(names) => {
                let distinct: BTreeSet<&String> = names.iter().collect();
                if distinct.len() < names.len() {
                    return Err(invalid(format!("the label names {names:?} repeat a name")));
                }
                LabelSet { names, map: if all_integers { LabelMap::Index } else { LabelMap::Names } }
            }
            None if all_integers => {
                let values: Vec<usize> =
                    rows.iter().filter_map(|r| r.label.parse().ok()).collect::<BTreeSet<usize>>().into_iter().collect();
                LabelSet { names: values.iter().map(|v| v.to_string()).collect(), map: LabelMap::Values(values) }
            }
            None => {
                let distinct: BTreeSet<&str> = rows.iter().map(|r| r.label.as_str()).collect();
                LabelSet { names: distinct.into_iter().map(str::to_string).collect(), map: LabelMap::Names }
            }
        };
        if set.names.len() < 2 {
            return Err(invalid(format!("needs at least 2 classes, found {:?}", set.names)));
        }
        Ok(set)
    }

    fn examples(&self, path: &Path, rows: Vec<Row>) -> Result<Vec<Example>, DataError> {
        rows.into_iter()
            .enumerate()
            .map(|(index, row)| {
                let label = match &self.map {
                    LabelMap::Names => self.names.iter().position(|n| *n == row.label),
                    LabelMap::Index => row.label.parse::<usize>().ok().filter(|&i| i < self.names.len()),
                    LabelMap::Values(values) => {
                        row.label.parse::<usize>().ok().and_then(|v| values.binary_search(&v).ok())
                    }
                };
                let label = label.ok_or_else(|| DataError::Malformed {
                    path: path.into(),
                    line: row.line,
                    problem: format!("unknown label {:?}; expected {}", row.label, self.expected()),
                })?;
                Ok(Example::new(index, label, String::new(), row.text))
            })
            .collect()
    }

    fn expected(&self) -> String {
        match self.map {
            LabelMap::Index => {
                format!("an index from 0 to {} into the label names {:?}", self.names.len() - 1, self.names)
            }
            LabelMap::Names | LabelMap::Values(_) => format!("one of {:?}", self.names),
        }
    }
}

/// A file of an hf-hub dataset, from the cache when `HF_HUB_OFFLINE` is set.
fn hub_file(repo: &str, revision: &str, file: &str) -> Result<PathBuf, DataError> {
    use hf_hub::{api::sync::ApiBuilder, Cache, Repo, RepoType};
    let hub_error =
        |problem: String| DataError::Hub { repo: repo.into(), revision: revision.into(), file: file.into(), problem };
    let hub_repo = Repo::with_revision(repo.into(), RepoType::Dataset, revision.into());
    if crate::hub::offline() {
        return Cache::from_env().repo(hub_repo).get(file).ok_or_else(|| {
            hub_error(format!("HF_HUB_OFFLINE is set and the file is not in the hf-hub cache. {HOW_TO_GET_AG_NEWS}"))
        });
    }
    let api = ApiBuilder::from_env().with_progress(true).build().map_err(|e| hub_error(e.to_string()))?;
    api.repo(hub_repo).get(file).map_err(|e| hub_error(format!("download failed ({e}). {HOW_TO_GET_AG_NEWS}")))
}
