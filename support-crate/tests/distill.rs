//! Distillation end to end on synthetic data, through the learning curve: a
//! teacher fitted on the budget labels a pool drawn from the rest of train
//! (as texts: the pool's labels only score the teacher afterwards), and a
//! student learns from the gold labels and the answers it is surest of.

mod common;

use slm_vs_llm::method::{Method, RunContext, TrainingSet};
use slm_vs_llm::methods::distill::{Distill, DistillConfig};
use slm_vs_llm::methods::tfidf::{TfidfBaseline, TfidfConfig};
use slm_vs_llm::methods::{CurvePlan, MethodKind, Methods};
use slm_vs_llm::studies::curve::{self, CurveConfig};
use slm_vs_llm::Profile;

fn distill(pool: usize) -> Distill {
    // A weak teacher (strong regularisation) so that its labels are partly wrong.
    let teacher = TfidfBaseline::new(TfidfConfig { cs: vec![0.05], ..TfidfConfig::default() });
    Distill::new(
        "distill-tfidf-tfidf",
        Box::new(teacher),
        Box::new(TfidfBaseline::default()),
        DistillConfig { pool, keep_shares: vec![1.0, 0.5] },
    )
}

fn methods() -> Methods {
    Methods::new(vec![MethodKind {
        name: "distill-tfidf-tfidf",
        title: "TF-IDF taught by TF-IDF",
        color: 0,
        in_all: false,
        curve: CurvePlan::Distilled,
        build: |_| Box::new(distill(120)),
    }])
}

fn config() -> CurveConfig {
    CurveConfig {
        arms: vec!["distill-tfidf-tfidf".into()],
        budgets: vec![],
        trained_budgets: vec![],
        trained_max_seeds: 2,
        prompted_budgets: vec![],
        distilled_budgets: vec![4, 16],
        sampled_test_items: 90,
        seed: 42,
        max_seeds: None,
    }
}

fn ctx() -> RunContext {
    RunContext { profile: Profile::Full, seed: 42, progress: false }
}

#[test]
fn a_distillation_on_the_curve_labels_a_pool_drawn_from_train_outside_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_CACHE_DIR", dir.path());
    let ds = common::mixed_words_dataset();
    let results = tempfile::tempdir().unwrap();
    let first = curve::run(&config(), &methods(), &ds, Some(results.path()), &ctx(), "test").unwrap();
    assert_eq!(first.points.len(), 4, "2 budgets x 2 seeds");
    for p in &first.points {
        let t = p.teacher.as_ref().expect("a distillation's point names its teacher");
        assert_eq!(t.pool_items, 120);
        assert!(t.kept_items == 120 || t.kept_items == 60, "{t:?}");
        assert_eq!(p.train_items, 3 * p.labels_per_class, "the budget counts gold labels only");
        assert!((0.0..=1.0).contains(&t.pool_accuracy) && t.pool_accuracy > 1.0 / 3.0, "{t:?}");
        assert!(p.chosen.contains("kept"), "{}", p.chosen);
    }

    // Its own table: one row per budget; the teacher alone is not on this curve.
    let table = slm_vs_llm::present::curve::distillation_table(&first, &methods()).unwrap();
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| TF-IDF taught by TF-IDF")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].starts_with("| TF-IDF taught by TF-IDF | 4 |") && rows[0].contains("| – |"), "{table}");

    // Seeded: the same points again, from the cache or measured anew.
    let again_cache = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_CACHE_DIR", again_cache.path());
    let again = curve::run(&config(), &methods(), &ds, Some(results.path()), &ctx(), "test").unwrap();
    for (a, b) in first.points.iter().zip(&again.points) {
        let (ta, tb) = (a.teacher.as_ref().unwrap(), b.teacher.as_ref().unwrap());
        assert_eq!((a.accuracy, &a.chosen), (b.accuracy, &b.chosen));
        assert_eq!((ta.pool_accuracy, ta.kept_items), (tb.pool_accuracy, tb.kept_items));
    }
}

#[test]
fn the_student_learns_from_the_gold_labels_and_the_answers_it_kept() {
    let ds = common::mixed_words_dataset();
    let gold = slm_vs_llm::data::per_class_subset(&ds.train, 3, 5, 42);
    let pool: Vec<String> = ds.train.iter().skip(200).map(|e| e.text.clone()).collect();
    let data = TrainingSet { train: &gold, unlabelled: &pool, ..TrainingSet::of(&ds) };
    let fitted = distill(100).fit_distill(&data, &ctx()).unwrap();
    assert_eq!((fitted.answered, fitted.pool_answers.len()), (100, 100), "TF-IDF answers every text");
    assert_eq!(fitted.sweep.iter().map(|k| k.kept).collect::<Vec<_>>(), vec![100, 50]);
    assert_eq!(fitted.kept.len(), fitted.chosen.kept);
    use slm_vs_llm::method::Fitted;
    assert_eq!(fitted.trained_on(), 15 + fitted.chosen.kept);
    // The kept answers are the most confident ones.
    let least_kept = fitted.kept.iter().map(|&i| fitted.pool_confidence[i].unwrap()).fold(f32::INFINITY, f32::min);
    let dropped = (0..100).filter(|i| !fitted.kept.contains(i)).map(|i| fitted.pool_confidence[i].unwrap());
    assert!(dropped.clone().all(|c| c <= least_kept), "kept down to {least_kept}");
    let texts: Vec<&str> = ds.test.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(fitted.predict(&texts, &ctx()).unwrap().outputs.len(), 90);
}

#[test]
fn a_distillation_without_unlabelled_texts_says_where_they_come_from() {
    let ds = common::mixed_words_dataset();
    let err = distill(50).fit(&TrainingSet::of(&ds), &ctx()).err().expect("no pool, no distillation").to_string();
    assert!(err.contains("unlabelled texts"), "{err}");
}
