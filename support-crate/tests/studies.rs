//! The learning curve and the cascade end to end on synthetic data: a curve
//! resumes from its cached points and re-measures only what is missing; a
//! cascade's threshold depends on validation alone (shuffling the test
//! labels leaves it where it was).

mod common;

use std::sync::Once;

use slm_vs_llm::method::RunContext;
use slm_vs_llm::methods::tfidf::{TfidfBaseline, TfidfConfig};
use slm_vs_llm::methods::Methods;
use slm_vs_llm::studies::cascade::{self, CascadeItems};
use slm_vs_llm::studies::curve::{self, CurveConfig};
use slm_vs_llm::Profile;

/// The caches of this test binary go to a directory of their own.
fn private_cache() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_var("SLM_CACHE_DIR", dir);
    });
}

fn ctx() -> RunContext {
    RunContext { profile: Profile::Full, seed: 42, progress: false }
}

#[test]
fn a_curve_resumes_from_its_cached_points() {
    private_cache();
    let ds = common::mixed_words_dataset();
    let config = CurveConfig {
        arms: vec!["tfidf".into()],
        budgets: vec![2, 8, 32],
        trained_budgets: vec![],
        trained_max_seeds: 1,
        prompted_budgets: vec![],
        distilled_budgets: vec![],
        sampled_test_items: 30,
        seed: 42,
        max_seeds: None,
    };
    let results = tempfile::tempdir().unwrap();
    let methods = Methods::standard();
    let first = curve::run(&config, &methods, &ds, Some(results.path()), &ctx(), "test").unwrap();
    assert_eq!(first.points.len(), 5 + 5 + 5 + 1, "5 seeds at each budget up to 128, one on all of train");
    assert!(first.points.iter().all(|p| p.source == "measured" && p.test_items == 90));
    let at_2: Vec<f64> = first.points.iter().filter(|p| p.labels_per_class == 2).map(|p| p.accuracy).collect();
    let all = first.points.iter().find(|p| p.all).unwrap();
    assert_eq!((all.labels_per_class, all.train_items), (100, 300));
    assert!(
        at_2.iter().sum::<f64>() / 5.0 < all.accuracy,
        "2 labels per class ({at_2:?}) do worse than all of train ({})",
        all.accuracy
    );

    // A finished curve is read back, not re-measured.
    let again = curve::run(&config, &methods, &ds, Some(results.path()), &ctx(), "test").unwrap();
    assert_eq!(again.points, first.points);

    // An interrupted one measures only what is missing.
    let dir = curve::cache_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 16, "one file per point: {files:?}");
    let lost = files.iter().find(|f| f.to_string_lossy().contains("tfidf-8-s43")).unwrap();
    std::fs::remove_file(lost).unwrap();
    let resumed = curve::run(&config, &methods, &ds, Some(results.path()), &ctx(), "test").unwrap();
    let remeasured: Vec<_> = resumed.points.iter().zip(&first.points).filter(|(a, b)| a.seconds != b.seconds).collect();
    assert_eq!(remeasured.len(), 1, "only the lost point is measured again");
    assert_eq!((remeasured[0].0.labels_per_class, remeasured[0].0.seed), (8, 43));
    assert_eq!(remeasured[0].0.accuracy, remeasured[0].1.accuracy, "seeded: the same result");

    let (json, csv) = curve::write(results.path(), &resumed).unwrap();
    assert_eq!(curve::read(&json).unwrap().points, resumed.points);
    assert_eq!(std::fs::read_to_string(csv).unwrap().lines().count(), 17);
}

#[test]
fn a_cascade_chooses_its_threshold_on_validation_only() {
    private_cache();
    let weak = TfidfBaseline::new(TfidfConfig { cs: vec![0.05], ..TfidfConfig::default() });
    let strong = TfidfBaseline::default();
    let items = CascadeItems { validation: 60, test: None };
    let ds = common::mixed_words_dataset();
    let r = cascade::run(&weak, &strong, &ds, items, &ctx(), "test").unwrap();
    let chosen = cascade::choose(&r.validation_curve).unwrap();
    assert_eq!(r.threshold, chosen.threshold);
    assert_eq!(r.test.threshold, r.threshold);
    let ends = |curve: &[cascade::Operating]| (curve.first().unwrap().escalated, curve.last().unwrap().escalated);
    assert_eq!(ends(&r.test_curve), (0.0, 1.0), "from keeping every item to escalating all");
    assert_eq!(r.test_curve.last().unwrap().accuracy, r.then.accuracy, "escalating all is the second alone");
    assert!((r.test_metrics.accuracy - r.test.accuracy).abs() < 1e-12);

    // The test labels cannot move the threshold.
    let mut shuffled = common::mixed_words_dataset();
    let labels: Vec<usize> = shuffled.test.iter().map(|e| e.label).collect();
    for (e, label) in shuffled.test.iter_mut().zip(labels.iter().rev()) {
        e.label = *label;
    }
    let r2 = cascade::run(&weak, &strong, &shuffled, items, &ctx(), "test").unwrap();
    assert_eq!(r2.threshold, r.threshold);
    assert_eq!(r2.validation_curve, r.validation_curve);
    assert_ne!(r2.test.accuracy, r.test.accuracy, "the test score does move");
}
