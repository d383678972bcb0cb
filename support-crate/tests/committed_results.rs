//! Every committed result can be recomputed from its predictions file, and
//! the README shows exactly the committed results.

use std::path::Path;

use slm_vs_llm::results::{predictions_path, read_predictions, read_record, recompute};

#[test]
fn committed_metrics_match_their_predictions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let predictions = predictions_path(&dir, stem);
        if !predictions.is_file() {
            continue;
        }
        let record = read_record(&path).unwrap();
        let preds = read_predictions(&predictions).unwrap();
        assert_eq!(preds.len(), record.data.test, "{stem}: one prediction per test item");
        let mut indices: Vec<usize> = preds.iter().map(|p| p.index).collect();
        indices.sort_unstable();
        indices.dedup();
        assert_eq!(indices.len(), preds.len(), "{stem}: a test item is predicted twice");
        assert_eq!(recompute(&record, &preds), record.metrics, "{stem}: metrics differ from its predictions");
        checked += 1;
    }
    eprintln!("checked {checked} committed results");
}

/// The README's results table is exactly what `slm-vs-llm report` makes of
/// the committed results: it cannot drift from them.
#[test]
fn readme_table_is_generated_from_the_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let records = slm_vs_llm::present::report::load_records(&root.join("results")).unwrap();
    let table = slm_vs_llm::present::report::markdown_table(&records);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        slm_vs_llm::present::report::replace_table(&readme, &table).unwrap(),
        readme,
        "README.md's results table is stale: run `cargo run --release -- report`"
    );
}
