//! The LLM's prompt and calibration sweep against a scripted answerer: no
//! model, no server, every answer known. The sweep must pick what validation
//! supports, count failed answers as wrong, and refuse (not panic) when no
//! prompting can be scored.

use std::sync::atomic::{AtomicUsize, Ordering};

use slm_vs_llm::data::{Example, Task};
use slm_vs_llm::method::{Fitted, RunContext, TrainingSet};
use slm_vs_llm::methods::llm::local::Decoding;
use slm_vs_llm::methods::llm::openai::{Answer, Usage};
use slm_vs_llm::methods::llm::prompt::{AnswerError, Message};
use slm_vs_llm::methods::llm::{Answerer, Backend, Calibration, Demonstrations, Llm};
use slm_vs_llm::Profile;

const WORDS: [&str; 3] = ["goal", "shares", "chip"];

/// Knows each text's class from its word but leans towards class 0: the
/// true class gets 0.4, class 0 another 0.35. Uncalibrated it answers class
/// 0 for everything; dividing out the prior recovers the truth. With
/// `scores` false it gives labels only, as a server without logprobs does;
/// `fail_every` n-th question fails.
struct Scripted {
    scores: bool,
    fail_every: usize,
    asked: AtomicUsize,
}

impl Answerer for Scripted {
    fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        _schema: &serde_json::Value,
        labels: &[String],
        _decoding: Decoding,
        _progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<Vec<Answer>> {
        Ok(questions
            .iter()
            .map(|q| {
                let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
                let text = &q.last().expect("a question").content;
                let truth = WORDS.iter().position(|w| text.contains(w));
                let mut p = vec![0.25 / (labels.len() - 1) as f64; labels.len()];
                if let Some(t) = truth {
                    p[t] += 0.4;
                }
                p[0] += 0.45;
                let label = slm_vs_llm::metrics::argmax(&p);
                let failed = self.fail_every > 0 && n.is_multiple_of(self.fail_every);
                Answer {
                    label: (!failed).then_some(label),
                    content: Some(format!("{{\"label\": \"{}\"}}", labels[label])),
                    error: failed.then(|| AnswerError::Request("timed out".into())),
                    label_log_probs: (self.scores && !failed).then(|| p.iter().map(|x| x.ln() as f32).collect()),
                    usage: Usage { prompt_tokens: 10, completion_tokens: 3 },
                    latency_seconds: 0.0,
                    compute_seconds: 0.0,
                    attempts: 1,
                    cached: false,
                }
            })
            .collect())
    }

    fn model(&self) -> String {
        "scripted".into()
    }

    fn endpoint(&self) -> String {
        "in this test".into()
    }

    fn in_process(&self) -> bool {
        true
    }

    fn label_scoring(&self) -> String {
        "scripted".into()
    }

    fn dialect(&self) -> Option<String> {
        None
    }
}

fn examples(offset: usize, n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| Example::new(offset + i, i % 3, String::new(), format!("{} item{}", WORDS[i % 3], offset + i)))
        .collect()
}

fn backend(scores: bool, fail_every: usize) -> Backend {
    Backend::Custom(Box::new(Scripted { scores, fail_every, asked: AtomicUsize::new(0) }))
}

fn ctx() -> RunContext {
    RunContext { profile: Profile::Smoke, seed: 7, progress: false }
}

/// The sweep of `demonstrations` × `calibrations` on 60 validation items, asking `backend`.
fn fit(
    demonstrations: Vec<Demonstrations>,
    calibrations: Vec<Calibration>,
    backend: Backend,
) -> anyhow::Result<slm_vs_llm::methods::llm::FittedLlm> {
    let (train, validation) = (examples(0, 30), examples(100, 60));
    let labels: Vec<String> = ["sports", "business", "tech"].map(String::from).to_vec();
    let task = Task::named("synthetic");
    let data = TrainingSet { train: &train, validation: &validation, labels: &labels, task: &task, unlabelled: &[] };
    let mut llm = Llm::for_profile(Profile::Smoke);
    llm.config.demonstrations = demonstrations;
    llm.config.calibrations = calibrations;
    llm.config.compare_greedy = false;
    llm.config.validation_items = 60;
    llm.fit_on(backend, &data, &ctx())
}

#[test]
fn the_sweep_chooses_the_calibration_that_validation_supports() {
    let fitted = fit(
        vec![Demonstrations::None, Demonstrations::Fixed { per_class: 1 }],
        vec![Calibration::None, Calibration::ValidationPrior],
        backend(true, 0),
    )
    .unwrap();
    assert_eq!(fitted.chosen.calibration, Calibration::ValidationPrior);
    assert_eq!(fitted.chosen.demonstrations, Demonstrations::None, "equal accuracy: the cheaper prompt");
    let score = |c: Calibration| {
        fitted.sweep.iter().find(|s| s.prompting.calibration == c && s.prompting.demonstrations == Demonstrations::None)
    };
    assert!((score(Calibration::None).unwrap().accuracy - 1.0 / 3.0).abs() < 1e-9, "uncalibrated: always class 0");
    assert_eq!(score(Calibration::ValidationPrior).unwrap().accuracy, 1.0);
    let summary = fitted.summary();
    assert!(summary.contains("scripted") && summary.contains("validation-prior"), "{summary}");

    // Test answers read with the chosen prior; a failed one is unanswered, with its reason.
    let texts = ["goal item900", "chip item901", "shares item902"];
    let predicted = fitted.predict(&texts, &ctx()).unwrap();
    let answers: Vec<Option<usize>> = predicted.outputs.iter().map(|o| o.label).collect();
    assert_eq!(answers, [Some(0), Some(2), Some(1)]);
}

#[test]
fn failed_answers_count_as_wrong_in_the_sweep() {
    let fitted =
        fit(vec![Demonstrations::None], vec![Calibration::None, Calibration::ValidationPrior], backend(true, 4))
            .unwrap();
    let chosen = fitted.sweep.iter().find(|s| s.prompting == fitted.chosen).unwrap();
    assert!((chosen.accuracy - 0.75).abs() < 1e-9, "every 4th answer failed: {}", chosen.accuracy);
}

#[test]
fn a_sweep_with_nothing_to_score_is_an_error_not_a_panic() {
    // Zero-shot with content-free calibration only, from answers without label scores.
    let err =
        fit(vec![Demonstrations::None], vec![Calibration::ContentFree], backend(false, 0)).err().expect("refused");
    assert!(format!("{err:#}").contains("no prompting could be scored"), "{err:#}");
}

#[test]
fn the_zero_shot_arm_writes_a_record_of_its_own() {
    let (train, validation) = (examples(0, 30), examples(100, 60));
    let labels: Vec<String> = ["sports", "business", "tech"].map(String::from).to_vec();
    let task = Task::named("synthetic");
    let data = TrainingSet { train: &train, validation: &validation, labels: &labels, task: &task, unlabelled: &[] };
    let zero_shot = Llm::zero_shot(Profile::Smoke);
    let fitted = zero_shot.fit_on(backend(true, 0), &data, &ctx()).unwrap();
    let with_labels = fit(vec![Demonstrations::None], vec![Calibration::None], backend(true, 0)).unwrap();
    assert_eq!(fitted.identity().experiment, "zero_shot_scripted");
    assert_eq!(with_labels.identity().experiment, "llm_scripted", "not the same file as the zero-shot arm's");
}
