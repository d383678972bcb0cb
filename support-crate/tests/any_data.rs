//! Any labelled CSV runs through every command: 2 to 20 classes, integer or
//! text labels, a task described beside the data; bad input is an error that
//! names the file, line and column. (The methods here are TF-IDF only: the
//! others need model weights and minutes; `scripts/test.sh` runs them all on
//! the SpamAssassin corpus.)

use std::path::Path;

use slm_vs_llm::methods::Methods;

/// `classes` topics of distinctive words, each row two words of its class
/// and one of another (so nothing is perfect).
fn write_csv(path: &Path, classes: usize, rows: usize, integer_labels: bool) {
    let mut csv = String::from("id,text,label\n");
    for i in 0..rows {
        let c = i % classes;
        let other = (c + 1 + i % 3) % classes;
        let label = if integer_labels { c.to_string() } else { format!("topic {c}") };
        csv.push_str(&format!("{i},\"w{c}a w{c}b{} w{other}c n{i}\",{label}\n", i % 4));
    }
    std::fs::write(path, csv).unwrap();
}

fn run(args: &[&str], methods: &Methods) -> anyhow::Result<()> {
    slm_vs_llm::cli::run(std::iter::once("slm-vs-llm").chain(args.iter().copied()), methods)
}

#[test]
fn two_and_twenty_classes_with_text_or_integer_labels_run_through_every_command() {
    let project = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_PROJECT_DIR", project.path());
    std::env::set_var("SLM_CACHE_DIR", project.path().join("cache"));
    let standard = Methods::standard();
    let tfidf = Methods::new(vec![*standard.get("tfidf").unwrap()]);
    for (classes, integer_labels) in [(2, false), (20, true)] {
        let name = format!("c{classes}");
        let csv = project.path().join(format!("{name}.csv"));
        write_csv(&csv, classes, 60 * classes, integer_labels);
        std::fs::write(
            project.path().join(format!("{name}.task.json")),
            format!(r#"{{"name": "Synthetic {classes}", "items": "notes", "label_kind": "topic"}}"#),
        )
        .unwrap();
        let csv = csv.to_str().unwrap();
        let out = project.path().join(format!("out-{name}"));
        let out = out.to_str().unwrap();
        for args in [
            vec!["eda", "--smoke", "--train", csv],
            vec!["baseline", "--smoke", "--train", csv],
            vec!["all", "--smoke", "--train", csv],
            vec!["curve", "--smoke", "--train", csv, "--budgets", "2,4", "--out", out],
            vec!["cascade", "--smoke", "--train", csv, "--first", "tfidf", "--then", "tfidf", "--out", out],
        ] {
            run(&args, &tfidf).unwrap_or_else(|e| panic!("{classes} classes, {}: {e:#}", args.join(" ")));
        }
        let results = project.path().join(format!("data/runs/{name}/smoke/results"));
        let records = slm_vs_llm::results::read_all(&results).unwrap();
        let record = &records[0].1;
        assert_eq!(
            (record.data.labels.len(), record.data.task.as_str()),
            (classes, format!("Synthetic {classes}").as_str())
        );
        let chart =
            std::fs::read_to_string(results.with_file_name("assets").join("text_classification_average_accuracy.svg"))
                .unwrap();
        assert!(chart.contains(&format!("Synthetic {classes} test accuracy")) && !chart.contains("AG News"));
        let curve = slm_vs_llm::studies::curve::read(&Path::new(out).join("curve.json")).unwrap();
        assert_eq!(curve.num_classes, classes);
    }
    assert!(!project.path().join("results").exists() && !project.path().join("README.md").exists());
}

#[test]
fn bad_input_is_an_error_naming_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let tfidf = Methods::new(vec![*Methods::standard().get("tfidf").unwrap()]);
    let check = |name: &str, body: &str, extra: &[&str], expected: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let path = path.to_str().unwrap();
        let mut args = vec!["baseline", "--smoke", "--train", path];
        args.extend(extra);
        let err = format!("{:#}", run(&args, &tfidf).unwrap_err());
        for want in expected {
            assert!(err.contains(want), "{name}: {want:?} not in {err}");
        }
    };
    let rows = |n: usize, label: &str| (0..n).map(|i| format!("text {i},{label}\n")).collect::<String>();
    check("one_class.csv", &format!("text,label\n{}", rows(20, "a")), &[], &["one_class.csv", "at least 2 classes"]);
    check(
        "empty_text.csv",
        &format!("text,label\n{}\" \",b\n", rows(20, "a")),
        &[],
        &["empty_text.csv:22", "\"text\" is empty"],
    );
    let test = dir.path().join("test_unknown.csv");
    std::fs::write(&test, "text,label\nx,a\ny,c\n").unwrap();
    check(
        "train_ab.csv",
        &format!("text,label\n{}{}", rows(20, "a"), rows(20, "b")),
        &["--test", test.to_str().unwrap()],
        &["test_unknown.csv:3", "unknown label \"c\""],
    );
    let task = dir.path().join("typo.task.json");
    std::fs::write(&task, r#"{"name": "x", "descriptions": {"aa": "the a class"}}"#).unwrap();
    check("typo.csv", &format!("text,label\n{}{}", rows(20, "a"), rows(20, "b")), &[], &["typo.task.json", "\"aa\""]);
}

#[test]
fn a_budget_larger_than_a_class_names_the_class() {
    let project = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_CACHE_DIR", project.path().join("cache"));
    let csv = project.path().join("small.csv");
    write_csv(&csv, 3, 60, false);
    let tfidf = Methods::new(vec![*Methods::standard().get("tfidf").unwrap()]);
    let out = project.path().join("out");
    let args =
        ["curve", "--smoke", "--train", csv.to_str().unwrap(), "--budgets", "50", "--out", out.to_str().unwrap()];
    let err = format!("{:#}", run(&args, &tfidf).unwrap_err());
    assert!(err.contains("class \"topic 0\"") && err.contains("asks for 50 per class"), "{err}");
}
