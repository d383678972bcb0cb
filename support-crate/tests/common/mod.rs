//! Shared by the test binaries: the real weights in data/models (fetched by
//! scripts/setup.sh), and a small synthetic task.
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::PathBuf;

use slm_vs_llm::data::Example;
use slm_vs_llm::Dataset;

const WORDS: [&[&str]; 3] = [
    &["goal", "match", "team", "league", "coach"],
    &["stock", "market", "shares", "profit", "bank"],
    &["chip", "software", "phone", "laptop", "code"],
];

/// Three classes whose texts mix their class words with another class's, so
/// small budgets err: 300 train, 60 validation, 90 test items.
pub fn mixed_words_dataset() -> Dataset {
    let make = |offset: usize, n: usize| -> Vec<Example> {
        (0..n)
            .map(|i| {
                let label = i % 3;
                let (w, other) = (WORDS[label], WORDS[(label + 1 + i % 2) % 3]);
                let text = format!(
                    "{} {} {} {} item{}",
                    w[i % 5],
                    other[(i / 3) % 5],
                    w[(i / 7) % 5],
                    other[i % 4],
                    i + offset
                );
                Example::new(i + offset, label, String::new(), text)
            })
            .collect()
    };
    Dataset {
        source: "synthetic".into(),
        task: slm_vs_llm::data::Task::named("synthetic"),
        labels: vec!["sports".into(), "business".into(), "tech".into()],
        train: make(0, 300),
        validation: make(1000, 60),
        test: make(2000, 90),
        seed: 7,
    }
}

/// `data/models/<relative>` if that file exists; otherwise the test is
/// skipped (`None`, with a message), or fails when SLM_REQUIRE_MODELS is set.
pub fn real_model_file(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models").join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(std::env::var_os("SLM_REQUIRE_MODELS").is_none(), "{} is missing: run scripts/setup.sh", path.display());
    eprintln!("skipped: {} not found (run scripts/setup.sh)", path.display());
    None
}
