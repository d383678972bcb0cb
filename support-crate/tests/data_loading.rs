//! Loading real-format files written by the tests: every bad input gives an
//! error naming the file and line, never a panic.

use std::path::{Path, PathBuf};

use slm_vs_llm::data::{load, DataConfig, DataError, Source};
use tempfile::TempDir;

const GOOD_ROWS: &str =
    "\"3\",\"Fears for T N pension after talks\",\"Unions representing workers at Turner   Newall say...\"\n\
\"4\",\"Space race\",\"A second\\team of rocketeers competing for the  #36;10 million prize\"\n\
\"1\",\"Talks\",\"Leaders doesn #39;t agree, says  quot;nothing quot;\"\n\
\"2\",\"Goal\",\"Sven \"\"the coach\"\" wins\"\n";

fn ag_news_dir(train: &[u8], test: &[u8]) -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("train.csv"), train).unwrap();
    std::fs::write(dir.path().join("test.csv"), test).unwrap();
    dir
}

fn many_rows(n: usize) -> String {
    (0..n).map(|i| format!("\"{}\",\"Title {i}\",\"Body number {i} with some words\"\n", i % 4 + 1)).collect()
}

fn load_dir(dir: &Path) -> Result<slm_vs_llm::Dataset, DataError> {
    load(&Source::in_directory(dir, None)?, &DataConfig::default())
}

fn malformed(err: DataError) -> (PathBuf, u64, String) {
    match err {
        DataError::Malformed { path, line, problem } => (path, line, problem),
        other => panic!("expected a Malformed error, got {other:?}"),
    }
}

#[test]
fn loads_the_csv_release_and_normalises_text() {
    let dir = ag_news_dir(many_rows(200).as_bytes(), GOOD_ROWS.as_bytes());
    let ds = load_dir(dir.path()).unwrap();
    assert_eq!(ds.labels, ["World", "Sports", "Business", "Sci/Tech"]);
    assert_eq!(ds.train.len() + ds.validation.len(), 200);
    assert_eq!(ds.validation.len(), 10);
    assert_eq!(ds.test.len(), 4);
    let t = &ds.test;
    assert_eq!((t[0].index, t[0].label), (0, 2));
    assert_eq!(t[0].text, "Fears for T N pension after talks. Unions representing workers at Turner Newall say...");
    assert_eq!(t[1].text, "Space race. A second team of rocketeers competing for the $10 million prize");
    assert_eq!(t[2].text, "Talks. Leaders doesn't agree, says \"nothing\"");
    assert_eq!(t[3].body, "Sven \"the coach\" wins");
    assert_eq!(t[1].raw_text(), "Space race A second\\team of rocketeers competing for the  #36;10 million prize");
}

#[test]
fn train_file_name_is_configurable_and_subset_is_found() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("train_subset.csv"), many_rows(40)).unwrap();
    std::fs::write(dir.path().join("test.csv"), GOOD_ROWS).unwrap();
    let source = Source::in_directory(dir.path(), None).unwrap();
    assert!(matches!(&source, Source::AgNewsCsv { train_file, .. } if train_file == "train_subset.csv"));
    let err = Source::in_directory(dir.path(), Some("other.csv")).and_then(|s| load(&s, &DataConfig::default()));
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("other.csv") && msg.contains("file not found"), "{msg}");
}

#[test]
fn wrong_column_count_names_file_and_line() {
    let test = format!("{GOOD_ROWS}\"1\",\"only two fields\"\n");
    let dir = ag_news_dir(many_rows(8).as_bytes(), test.as_bytes());
    let (path, line, problem) = malformed(load_dir(dir.path()).unwrap_err());
    assert!(path.ends_with("test.csv"));
    assert_eq!(line, 5);
    assert!(problem.contains("expected 3 fields") && problem.contains("found 2"), "{problem}");
}

#[test]
fn label_outside_range() {
    let test = format!("{GOOD_ROWS}\"5\",\"t\",\"d\"\n");
    let dir = ag_news_dir(many_rows(8).as_bytes(), test.as_bytes());
    let err = load_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("test.csv:5:") && msg.contains("1, 2, 3 or 4") && msg.contains("\"5\""), "{msg}");
}

#[test]
fn broken_quoting() {
    let train = format!("\"1\",\"unterminated,\"body\n{}", many_rows(3));
    let dir = ag_news_dir(train.as_bytes(), GOOD_ROWS.as_bytes());
    let err = load_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("train.csv:1:"), "{msg}");
}

#[test]
fn a_stray_quote_or_an_open_quote_is_an_error_not_a_merged_row() {
    // A lone quote inside a quoted field.
    let test = format!("{GOOD_ROWS}\"1\",\"Title with a \"stray quote\",\"body\"\n");
    let dir = ag_news_dir(many_rows(8).as_bytes(), test.as_bytes());
    let msg = load_dir(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("test.csv:5:") && msg.contains("stray"), "{msg}");
    // A quote left open on the last line (it used to become an extra row).
    let test = format!("{GOOD_ROWS}\"1\",\"Title\",\"body never closed\n");
    let dir = ag_news_dir(many_rows(8).as_bytes(), test.as_bytes());
    let msg = load_dir(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("test.csv:5:") && msg.contains("not closed"), "{msg}");
    // Windows line ends are fine.
    let dir = ag_news_dir(many_rows(8).replace('\n', "\r\n").as_bytes(), GOOD_ROWS.as_bytes());
    let ds = load_dir(dir.path()).unwrap();
    assert_eq!(ds.train.len() + ds.validation.len(), 8);
}

#[test]
fn invalid_utf8() {
    let mut test = GOOD_ROWS.as_bytes().to_vec();
    test.extend_from_slice(b"\"2\",\"bad \xff byte\",\"d\"\n");
    let dir = ag_news_dir(many_rows(8).as_bytes(), &test);
    let (_, line, problem) = malformed(load_dir(dir.path()).unwrap_err());
    assert_eq!(line, 5);
    assert!(problem.contains("field 2 is not valid UTF-8"), "{problem}");
}

#[test]
fn empty_file() {
    let dir = ag_news_dir(b"", GOOD_ROWS.as_bytes());
    let err = load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("train.csv: the file is empty"), "{err}");
}

#[test]
fn missing_file_and_wrong_directory_say_how_to_get_the_data() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("test.csv"), GOOD_ROWS).unwrap();
    let msg = load_dir(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("train.csv: file not found") && msg.contains("AG_NEWS_DIR"), "{msg}");

    let empty = TempDir::new().unwrap();
    let msg = Source::in_directory(empty.path(), None).unwrap_err().to_string();
    assert!(msg.contains("holds neither test.csv"), "{msg}");
    let msg = Source::in_directory(&empty.path().join("nope"), None).unwrap_err().to_string();
    assert!(msg.contains("directory not found") && msg.contains("--data-dir"), "{msg}");
}

#[test]
fn splits_are_seeded_and_smoke_samples_are_stratified() {
    let dir = ag_news_dir(many_rows(4000).as_bytes(), many_rows(800).as_bytes());
    let source = Source::in_directory(dir.path(), None).unwrap();
    let a = load(&source, &DataConfig::for_profile(slm_vs_llm::Profile::Smoke)).unwrap();
    let b = load(&source, &DataConfig::for_profile(slm_vs_llm::Profile::Smoke)).unwrap();
    assert_eq!(a.validation, b.validation);
    assert_eq!(a.train.len() + a.validation.len(), 2000);
    assert_eq!(a.test.len(), 400);
    assert_eq!(a.class_counts(slm_vs_llm::Split::Test), vec![100; 4]);
    let other = load(&source, &DataConfig { seed: 7, ..DataConfig::for_profile(slm_vs_llm::Profile::Smoke) }).unwrap();
    assert_ne!(a.validation, other.validation);
    // No example is in two splits.
    let mut ids: Vec<usize> = a.train.iter().chain(&a.validation).map(|e| e.index).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2000);
}

fn write_parquet(path: &Path, texts: &[&str], labels: polars::prelude::Series) {
    use polars::prelude::*;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("text".into(), texts),
        Column::from(labels.with_name("label".into())),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut df).unwrap();
}

#[test]
fn loads_hugging_face_parquet_files() {
    use polars::prelude::{NamedFrom, Series};
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let texts: Vec<String> =
        (0..40).map(|i| format!("Headline {i} Wall St. Bears Claw Back\\band of ultra-cynics")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let labels = Series::new("label".into(), (0..40).map(|i| (i % 4) as i64).collect::<Vec<_>>());
    write_parquet(&dir.path().join("data/train-00000-of-00001.parquet"), &texts, labels.clone());
    write_parquet(&dir.path().join("data/test-00000-of-00001.parquet"), &texts[..8], labels.slice(0, 8));
    let ds = load_dir(dir.path()).unwrap();
    assert_eq!(ds.test.len(), 8);
    assert_eq!(ds.test[1].label, 1);
    assert_eq!(ds.test[0].text, "Headline 0 Wall St. Bears Claw Back band of ultra-cynics");
    assert_eq!(ds.train.len() + ds.validation.len(), 40);

    let bad = Series::new("label".into(), vec![0i64, 9]);
    write_parquet(&dir.path().join("data/test-00000-of-00001.parquet"), &texts[..2], bad);
    let msg = load_dir(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("test-00000-of-00001.parquet") && msg.contains("row 1") && msg.contains("0..3"), "{msg}");
}

#[test]
fn custom_csv_with_label_names_any_number_of_classes() {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("id,utterance,intent\n");
    for i in 0..60 {
        let intent = ["billing", "refund", "login"][i % 3];
        csv.push_str(&format!("{i},\"I need help with {intent}, case {i}\",{intent}\n"));
    }
    let train = dir.path().join("intents.csv");
    std::fs::write(&train, &csv).unwrap();
    let custom = |test: Option<PathBuf>, label_column: &str| Source::Custom {
        train: train.clone(),
        test,
        text_column: "utterance".into(),
        label_column: label_column.into(),
        label_names: None,
    };
    let ds = load(&custom(None, "intent"), &DataConfig::default()).unwrap();
    assert_eq!(ds.labels, ["billing", "login", "refund"]);
    assert_eq!(ds.test.len(), 12);
    assert_eq!(ds.train.len() + ds.validation.len() + ds.test.len(), 60);

    let test = dir.path().join("test.csv");
    std::fs::write(&test, "id,utterance,intent\n1,hello,billing\n2,bye,cancel\n").unwrap();
    let (path, line, problem) = malformed(load(&custom(Some(test), "intent"), &DataConfig::default()).unwrap_err());
    assert!(path.ends_with("test.csv"));
    assert_eq!(line, 3);
    assert!(problem.contains("unknown label \"cancel\""), "{problem}");

    let msg = load(&custom(None, "label"), &DataConfig::default()).unwrap_err().to_string();
    assert!(msg.contains("intents.csv:1:") && msg.contains("no column \"label\""), "{msg}");
}

#[test]
fn custom_integer_labels_with_names() {
    let dir = TempDir::new().unwrap();
    let ds = custom(&dir, &["0", "1"], Some(&["negative", "positive"])).unwrap();
    assert_eq!(ds.labels, ["negative", "positive"]);
    assert!(ds.train.iter().all(|e| e.label == e.index % 2));
}

/// The real AG News (data/ag_news, copied there by scripts/setup.sh): after
/// normalize no row holds markup or a numeric entity, and the only bare
/// entity-shaped words left are English words that are also entity names.
#[test]
fn real_ag_news_is_clean_after_normalize() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/ag_news");
    if !dir.join("test.csv").is_file() {
        assert!(std::env::var_os("SLM_REQUIRE_MODELS").is_none(), "{} is missing: run scripts/setup.sh", dir.display());
        eprintln!("skipped: {} not found (run scripts/setup.sh)", dir.display());
        return;
    }
    let ds = load_dir(&dir).unwrap();
    let english = ["race;", "it;", "range;", "real;", "models;"];
    let mut left = Vec::new();
    for e in ds.train.iter().chain(&ds.validation).chain(&ds.test) {
        let q = slm_vs_llm::data::Quirks::of(&e.text);
        assert!(!q.markup && !q.backslash_break && !q.escaped_dollar, "{}", e.text);
        if q.lost_ampersand_entity {
            let word = e.text.split(' ').find(|w| english.contains(w)).unwrap_or_else(|| panic!("{}", e.text));
            left.push(word.to_string());
        }
        // The one entity-shaped string left is a typo in the source ("&nsbp;").
        assert!(!q.html_entity || e.text.contains("&nsbp;"), "{}", e.text);
    }
    assert!(left.len() <= english.len(), "{left:?}");
}

fn custom(dir: &TempDir, labels: &[&str], names: Option<&[&str]>) -> Result<slm_vs_llm::Dataset, DataError> {
    let mut csv = String::from("text,label\n");
    for i in 0..40 {
        csv.push_str(&format!("sentence {i},{}\n", labels[i % labels.len()]));
    }
    let train = dir.path().join("custom.csv");
    std::fs::write(&train, csv).unwrap();
    let source = Source::Custom {
        train,
        test: None,
        text_column: "text".into(),
        label_column: "label".into(),
        label_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
    };
    load(&source, &DataConfig::default())
}

#[test]
fn integer_labels_make_one_class_per_value_and_bad_label_sets_are_refused() {
    let dir = TempDir::new().unwrap();
    // 1..4 is four classes, not five with a phantom class 0.
    let ds = custom(&dir, &["1", "2", "3", "4"], None).unwrap();
    assert_eq!(ds.labels, ["1", "2", "3", "4"]);
    // A huge value is a class like any other: no allocation up to it, no panic.
    let ds = custom(&dir, &["7", "18446744073709551615"], None).unwrap();
    assert_eq!(ds.labels, ["7", "18446744073709551615"]);
    let one = custom(&dir, &["1"], None).unwrap_err().to_string();
    assert!(one.contains("at least 2 classes"), "{one}");
    let repeated = custom(&dir, &["a", "b"], Some(&["a", "a"])).unwrap_err().to_string();
    assert!(repeated.contains("repeat"), "{repeated}");
    // Integer labels index the given names from 0.
    let out_of_range = custom(&dir, &["1", "2"], Some(&["neg", "pos"])).unwrap_err().to_string();
    assert!(out_of_range.contains("from 0 to 1"), "{out_of_range}");
}
