//! The LLM's numbers as tables for the notebooks: answers, the sweep,
//! label scores, next-token candidates, cost.

use super::*;

/// Labels for a few texts asked with the chosen prompting: text, label, the
/// answer, each label's probability where the backend scores labels, latency.
pub fn classify_table(fitted: &FittedLlm, texts: &[&str]) -> Result<DataFrame> {
    let answers = fitted.ask(texts, false)?;
    let labels = &fitted.prompts.labels;
    let read: Vec<(Option<usize>, Option<Vec<f64>>)> = answers.iter().map(|a| fitted.read(a)).collect();
    let name = |l: Option<usize>| l.map_or_else(|| "(no answer)".to_string(), |l| labels[l].clone());
    let mut columns = vec![
        Column::new("text".into(), texts.to_vec()),
        Column::new("label".into(), read.iter().map(|(l, _)| name(*l)).collect::<Vec<_>>()),
        Column::new("answer".into(), answers.iter().map(shown_answer).collect::<Vec<_>>()),
    ];
    if read.iter().all(|(_, d)| d.is_some()) {
        for (c, label) in labels.iter().enumerate() {
            let p: Vec<f64> = read.iter().map(|(_, d)| d.as_ref().map_or(f64::NAN, |d| round(d[c], 3))).collect();
            columns.push(Column::new(format!("p({label})").into(), p));
        }
    }
    columns
        .push(Column::new("seconds".into(), answers.iter().map(|a| round(a.latency_seconds, 3)).collect::<Vec<_>>()));
    Ok(DataFrame::new_infer_height(columns)?)
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

impl FittedLlm {
    /// Validation accuracy of each prompting, with the lowest class recall and the speed.
    pub fn sweep_table(&self) -> Result<DataFrame> {
        let col = |f: &dyn Fn(&VariantScore) -> f64| self.sweep.iter().map(f).collect::<Vec<_>>();
        Ok(DataFrame::new_infer_height(vec![
            Column::new(
                "demonstrations".into(),
                self.sweep.iter().map(|s| s.prompting.demonstrations.to_string()).collect::<Vec<_>>(),
            ),
            Column::new(
                "calibration".into(),
                self.sweep.iter().map(|s| s.prompting.calibration.to_string()).collect::<Vec<_>>(),
            ),
            Column::new("accuracy %".into(), col(&|s| round(100.0 * s.accuracy, 1))),
            Column::new("lowest class recall %".into(), col(&|s| round(100.0 * s.min_recall, 1))),
            Column::new("invalid".into(), self.sweep.iter().map(|s| s.invalid as u64).collect::<Vec<_>>()),
            Column::new("prompt tokens / item".into(), col(&|s| s.prompt_tokens_per_item.round())),
            Column::new("items/s".into(), col(&|s| round(s.items_per_second, 1))),
            Column::new(
                "chosen".into(),
                self.sweep.iter().map(|s| if s.prompting == self.chosen { "✓" } else { "" }).collect::<Vec<_>>(),
            ),
        ])?)
    }

    /// Each prompting's recall per class on validation: where a bias sends a class's items elsewhere.
    pub fn recall_table(&self) -> Result<DataFrame> {
        let mut columns = vec![Column::new(
            "prompting".into(),
            self.sweep.iter().map(|s| s.prompting.to_string()).collect::<Vec<_>>(),
        )];
        for (c, label) in self.prompts.labels.iter().enumerate() {
            let recall: Vec<f64> = self.sweep.iter().map(|s| round(100.0 * s.recall[c], 1)).collect();
            columns.push(Column::new(format!("{label} recall %").into(), recall));
        }
        Ok(DataFrame::new_infer_height(columns)?)
    }

    /// For one text: each label's probability as the model gives it, the
    /// prior divided out, and the calibrated probability.
    pub fn calibration_table(&self, text: &str) -> Result<DataFrame> {
        let answer = self.ask(&[text], false)?.remove(0);
        let Some(log_probs) = &answer.label_log_probs else {
            bail!("this backend gives no label scores: {}", shown_answer(&answer));
        };
        let raw = calibration::distribution(log_probs);
        let prior = self.prior.clone().unwrap_or_else(|| vec![f64::NAN; raw.len()]);
        let calibrated = match &self.prior {
            Some(prior) => calibration::calibrate(&raw, prior),
            None => raw.clone(),
        };
        Ok(DataFrame::new_infer_height(vec![
            Column::new("label".into(), self.prompts.labels.clone()),
            Column::new("log p(answer)".into(), log_probs.iter().map(|&l| round(f64::from(l), 2)).collect::<Vec<_>>()),
            Column::new("p model".into(), raw.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
            Column::new("prior".into(), prior.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
            Column::new("p calibrated".into(), calibrated.iter().map(|&p| round(p, 3)).collect::<Vec<_>>()),
        ])?)
    }
}

/// Each label's whole-answer log-probability for one question (embedded
/// model), and the distribution over labels it gives.
pub fn label_scores_table(llm: &local::LocalLlm, messages: &[Message], labels: &[String]) -> Result<DataFrame> {
    let schema = answer_schema(labels, false);
    let answer = llm.ask_all(&[messages.to_vec()], &schema, labels, Decoding::LabelScores, &ProgressBar::hidden())?;
    let answer = answer.into_iter().next().expect("one answer");
    let Some(log_probs) = answer.label_log_probs else {
        bail!("no label scores: {}", answer.error.map(|e| e.to_string()).unwrap_or_default());
    };
    let candidates = llm.candidates(labels)?;
    let p = calibration::distribution(&log_probs);
    Ok(DataFrame::new_infer_height(vec![
        Column::new("label".into(), labels.to_vec()),
        Column::new("answer tokens".into(), candidates.iter().map(|c| c.len() as u64).collect::<Vec<_>>()),
        Column::new("log p(answer)".into(), log_probs.iter().map(|&l| round(f64::from(l), 2)).collect::<Vec<_>>()),
        Column::new("p among labels".into(), p.iter().map(|&x| round(x, 3)).collect::<Vec<_>>()),
    ])?)
}

/// Demonstrations in prompt order: label and text.
pub fn demonstrations_table(shown: &[Example], labels: &[String]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new("position".into(), (1..=shown.len() as u64).collect::<Vec<_>>()),
        Column::new("label".into(), shown.iter().map(|e| labels[e.label].clone()).collect::<Vec<_>>()),
        Column::new("text".into(), shown.iter().map(|e| e.text.clone()).collect::<Vec<_>>()),
    ])?)
}

/// The most likely next tokens after the forced answer prefix, before and
/// after the schema's mask (see [`local::LocalLlm::next_tokens`]).
pub fn next_token_table(llm: &local::LocalLlm, messages: &[Message], labels: &[String], n: usize) -> Result<DataFrame> {
    let (free, allowed) = llm.next_tokens(messages, labels, n)?;
    let rows = free.len().max(allowed.len());
    let cell = |v: &[(String, f32)], i: usize| v.get(i).map(|(t, _)| t.clone()).unwrap_or_default();
    let prob = |v: &[(String, f32)], i: usize| v.get(i).map_or(f64::NAN, |(_, p)| round(f64::from(*p), 4));
    Ok(DataFrame::new_infer_height(vec![
        Column::new("rank".into(), (1..=rows as u64).collect::<Vec<_>>()),
        Column::new("any token".into(), (0..rows).map(|i| cell(&free, i)).collect::<Vec<_>>()),
        Column::new("p".into(), (0..rows).map(|i| prob(&free, i)).collect::<Vec<_>>()),
        Column::new("allowed token".into(), (0..rows).map(|i| cell(&allowed, i)).collect::<Vec<_>>()),
        Column::new("p among allowed".into(), (0..rows).map(|i| prob(&allowed, i)).collect::<Vec<_>>()),
    ])?)
}

/// The model's text, or the error that replaced it.
fn shown_answer(a: &Answer) -> String {
    match (&a.error, &a.content) {
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.clone(),
        (None, None) => String::new(),
    }
}

/// Latency, throughput, tokens and cost of an LLM run's test answers, one row.
pub fn cost_table(record: &RunRecord) -> Result<DataFrame> {
    let x = &record.extra;
    let f = |key: &str| x.get(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    let n = record.metrics.items.max(1) as f64;
    let rate = record.items_per_second();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("model".into(), [record.model.clone()]),
        Column::new("where".into(), [x.get("endpoint").and_then(|v| v.as_str()).unwrap_or_default().to_string()]),
        Column::new("items".into(), [record.metrics.items as u64]),
        Column::new("items/s".into(), [(100.0 * rate).round() / 100.0]),
        Column::new("latency mean s".into(), [(1000.0 * f("latency_mean_seconds")).round() / 1000.0]),
        Column::new("latency p95 s".into(), [(1000.0 * f("latency_p95_seconds")).round() / 1000.0]),
        Column::new("tokens in / item".into(), [(f("tokens_in") / n).round()]),
        Column::new("tokens out / item".into(), [(f("tokens_out") / n * 10.0).round() / 10.0]),
        Column::new("USD / 1000 items".into(), [record.api_cost_per_1000()]),
        Column::new("cached answers".into(), [f("cached_answers") as u64]),
    ])?)
}
