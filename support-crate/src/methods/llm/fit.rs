//! Choosing the prompting on validation: every demonstration variant asked
//! once, each calibration scored on the same answers, and the comparison of
//! label scoring with constrained greedy decoding.

use super::*;

pub(super) fn ask(
    backend: &Backend,
    questions: Vec<Vec<Message>>,
    labels: &[String],
    decoding: Decoding,
    progress: bool,
    what: &str,
) -> Result<Vec<Answer>> {
    let schema = answer_schema(labels, false);
    let bar = crate::progress::bar(questions.len() as u64, what, progress);
    let answers = backend.ask_all(questions, &schema, labels, decoding, &bar);
    bar.finish_and_clear();
    answers
}

/// The label each answer gives under `prior` (none: the answer's own), and
/// its distribution over labels when the answer carries label scores and
/// `decoding` reads them (constrained greedy decoding takes the answer as it is).
pub(super) fn read_answer(
    answer: &Answer,
    prior: Option<&[f64]>,
    decoding: Decoding,
) -> (Option<usize>, Option<Vec<f64>>) {
    match (&answer.label_log_probs, answer.error.is_none() && decoding == Decoding::LabelScores) {
        (Some(log_probs), true) => {
            let mut p = calibration::distribution(log_probs);
            if let Some(prior) = prior {
                p = calibration::calibrate(&p, prior);
            }
            (Some(calibration::argmax(&p)), Some(p))
        }
        _ => (answer.label, None),
    }
}

/// Accuracy and each class's recall of `predicted` on `examples`.
fn accuracy_and_recall(examples: &[Example], predicted: &[Option<usize>], classes: usize) -> (f64, Vec<f64>) {
    let mut right = vec![0usize; classes];
    let mut total = vec![0usize; classes];
    for (e, p) in examples.iter().zip(predicted) {
        total[e.label] += 1;
        right[e.label] += usize::from(*p == Some(e.label));
    }
    let accuracy = right.iter().sum::<usize>() as f64 / examples.len().max(1) as f64;
    let recall =
        (0..classes).map(|c| if total[c] > 0 { right[c] as f64 / total[c] as f64 } else { f64::NAN }).collect();
    (accuracy, recall)
}

impl Llm {
    /// Opens the backend and chooses the prompting on validation.
    pub fn fit_llm(&self, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        self.fit_on(Backend::open(&self.backend)?, data, ctx)
    }

    /// Chooses the prompting on validation, asking `backend`: every
    /// demonstration variant is asked once, and each calibration is scored
    /// on the same answers.
    pub fn fit_on(&self, backend: Backend, data: &TrainingSet, ctx: &RunContext) -> Result<FittedLlm> {
        let config = &self.config;
        if config.demonstrations.is_empty() {
            bail!("no prompt variant to try");
        }
        let classes = data.num_classes();
        let prompts = PromptBuilder::new(config, data, ctx.seed, ctx.progress)?;
        tracing::info!("instructions: {}", prompts.system.replace('\n', " | "));
        let validation = stratified_sample(data.validation.to_vec(), classes, config.validation_items, ctx.seed);
        let texts = crate::data::texts(&validation);
        let mut sweep = Vec::new();
        let mut priors: HashMap<Prompting, Vec<f64>> = HashMap::new();
        for &demonstrations in &config.demonstrations {
            let questions = prompts.questions(&texts, demonstrations)?;
            let answers = ask(&backend, questions, data.labels, config.decoding, ctx.progress, "validation")?;
            let compute: f64 = answers.iter().map(|a| a.compute_seconds).sum();
            let invalid = answers.iter().filter(|a| a.error.is_some()).count();
            let decoding = config.decoding;
            let dists: Vec<Option<Vec<f64>>> = answers.iter().map(|a| read_answer(a, None, decoding).1).collect();
            // Calibration needs every label's score of every answered item (failed items stay wrong).
            let scored = dists.iter().any(Option::is_some)
                && answers.iter().zip(&dists).all(|(a, d)| d.is_some() || a.error.is_some());
            for &calibration in &config.calibrations {
                let (predicted, prior): (Vec<Option<usize>>, Option<Vec<f64>>) = match calibration {
                    Calibration::None => (answers.iter().map(|a| read_answer(a, None, decoding).0).collect(), None),
                    _ if !scored => continue,
                    // A retrieved prompt has no single content-free version.
                    Calibration::ContentFree if demonstrations.is_retrieved() => continue,
                    Calibration::ContentFree => {
                        let Some(prior) = self.content_free_prior(&backend, &prompts, demonstrations, classes)? else {
                            continue;
                        };
                        (answers.iter().map(|a| read_answer(a, Some(&prior), decoding).0).collect(), Some(prior))
                    }
                    Calibration::ValidationPrior => (
                        calibration::cross_fitted_labels(&dists, classes),
                        Some(calibration::mean_distribution(
                            &dists.iter().flatten().cloned().collect::<Vec<_>>(),
                            classes,
                        )),
                    ),
                };
                let prompting = Prompting { demonstrations, calibration };
                if let Some(prior) = prior {
                    priors.insert(prompting, prior);
                }
                let (accuracy, recall) = accuracy_and_recall(&validation, &predicted, classes);
                let min_recall = recall.iter().copied().filter(|r| !r.is_nan()).fold(1.0, f64::min);
                let score = VariantScore {
                    prompting,
                    accuracy,
                    recall,
                    min_recall,
                    invalid,
                    items: validation.len(),
                    items_per_second: answers.len() as f64 / compute.max(f64::EPSILON),
                    prompt_tokens_per_item: answers.iter().map(|a| a.usage.prompt_tokens as f64).sum::<f64>()
                        / answers.len().max(1) as f64,
                };
                tracing::info!(%prompting, accuracy, min_recall, invalid, "validation");
                sweep.push(score);
            }
        }
        let Some(best) = choose_best(&sweep, |s| s.accuracy) else {
            bail!(
                "no prompting could be scored on validation: every calibration of {:?} was skipped (calibrating \
                 needs every label's score, which this backend did not give); add `none` to the calibrations",
                config.demonstrations.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        };
        let chosen = best.prompting;
        let prior = priors.remove(&chosen);
        let greedy = match (config.compare_greedy, config.decoding) {
            (true, Decoding::LabelScores) => {
                self.compare_greedy(&backend, &prompts, chosen.demonstrations, &validation, &texts, ctx)?
            }
            _ => None,
        };
        Ok(FittedLlm {
            kind: self.kind,
            config: config.clone(),
            backend,
            prompts,
            sweep,
            chosen,
            prior,
            greedy,
            trained_on: data.train.len(),
        })
    }

    /// The mean label distribution of the content-free inputs through the
    /// prompt; `None` (with a warning) when one of them got no label scores.
    fn content_free_prior(
        &self,
        backend: &Backend,
        prompts: &PromptBuilder,
        demonstrations: Demonstrations,
        classes: usize,
    ) -> Result<Option<Vec<f64>>> {
        let texts = calibration::CONTENT_FREE_INPUTS.to_vec();
        let decoding = self.config.decoding;
        let answers = ask(backend, prompts.questions(&texts, demonstrations)?, &prompts.labels, decoding, false, "")?;
        let dists: Vec<Vec<f64>> = answers.iter().filter_map(|a| read_answer(a, None, decoding).1).collect();
        if dists.len() < answers.len() {
            tracing::warn!(%demonstrations, "a content-free input got no label scores: no content-free calibration");
            return Ok(None);
        }
        Ok(Some(calibration::mean_distribution(&dists, classes)))
    }

    /// Label scoring against constrained greedy decoding on the same
    /// validation prompts: the embedded model decodes them again; a server's
    /// answers are its constrained decode, compared with the labels its
    /// logprobs score highest (none when they carry no scores).
    fn compare_greedy(
        &self,
        backend: &Backend,
        prompts: &PromptBuilder,
        demonstrations: Demonstrations,
        validation: &[Example],
        texts: &[&str],
        ctx: &RunContext,
    ) -> Result<Option<GreedyComparison>> {
        let questions = prompts.questions(texts, demonstrations)?;
        let labels = &prompts.labels;
        // Answered during the sweep: served from the answer cache when there is one.
        let answers = ask(backend, questions.clone(), labels, Decoding::LabelScores, false, "")?;
        let (scored, greedy): (Vec<Option<usize>>, Vec<Option<usize>>) = if backend.in_process() {
            let greedy = ask(backend, questions, labels, Decoding::ConstrainedGreedy, ctx.progress, "greedy decoding")?;
            (answers.iter().map(|a| a.label).collect(), greedy.iter().map(|a| a.label).collect())
        } else {
            if answers.iter().all(|a| a.label_log_probs.is_none()) {
                return Ok(None);
            }
            let scored = answers.iter().map(|a| read_answer(a, None, Decoding::LabelScores).0).collect();
            (scored, answers.iter().map(|a| a.label).collect())
        };
        let same = scored.iter().zip(&greedy).filter(|(a, b)| a.is_some() && a == b).count();
        Ok(Some(GreedyComparison {
            items: validation.len(),
            agreement: same as f64 / validation.len().max(1) as f64,
            greedy_accuracy: accuracy(validation, &greedy),
            label_scoring_accuracy: accuracy(validation, &scored),
        }))
    }
}
