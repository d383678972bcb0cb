//! Every committed result can be recomputed from its predictions file.

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
