//! The embedded LLM against llama.cpp's server on the same GGUF.

use super::*;

#[derive(Debug, Serialize)]
pub struct LlmSide {
    pub items_per_second: f64,
    pub seconds: f64,
    pub accuracy: f64,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct LlmBench {
    pub items: usize,
    pub prompt_variant: String,
    pub embedded: LlmSide,
    pub server: Option<LlmSide>,
    pub server_url: Option<String>,
    pub server_concurrency: Option<usize>,
    /// Items on which both gave the same label.
    pub agreement: Option<f64>,
    /// Embedded items/s ÷ server items/s: > 1 means the embedded classifier is faster.
    pub ratio: Option<f64>,
}

/// The embedded constrained classifier against an OpenAI-compatible server
/// (llama.cpp's, serving the same GGUF) on the same few-shot prompts of a
/// seeded stratified test sample; no response cache on either side.
pub fn llm(
    ds: &crate::data::Dataset,
    local: &crate::methods::llm::local::LocalLlm,
    server: Option<&std::sync::Arc<crate::methods::llm::openai::OpenAiClient>>,
    items: usize,
    seed: u64,
) -> Result<LlmBench> {
    use crate::methods::llm::prompt::answer_schema;
    use crate::methods::llm::{messages, shots, Decoding};
    // Greedy decoding, as the server decodes: the same work on both sides.
    let decoding = Decoding::ConstrainedGreedy;
    let sample = crate::data::stratified_sample(ds.test.clone(), ds.num_classes(), items, seed);
    let examples = shots(&ds.train, ds.num_classes(), 1, seed);
    let questions: Vec<_> = sample.iter().map(|e| messages(&ds.task, &e.text, &ds.labels, &examples)).collect();
    let schema = answer_schema(&ds.labels, false);
    let side = |answers: &[crate::methods::llm::openai::Answer], seconds: f64| LlmSide {
        items_per_second: sample.len() as f64 / seconds,
        seconds,
        accuracy: answers.iter().zip(&sample).filter(|(a, e)| a.label == Some(e.label)).count() as f64
            / sample.len().max(1) as f64,
        errors: answers.iter().filter(|a| a.error.is_some()).count(),
    };
    let hidden = indicatif::ProgressBar::hidden();
    let start = Instant::now();
    let local_answers = local.ask_all(&questions, &schema, &ds.labels, decoding, &hidden)?;
    let embedded = side(&local_answers, start.elapsed().as_secs_f64());
    let (server_side, agreement, url, concurrency) = match server {
        None => (None, None, None, None),
        Some(client) => {
            let start = Instant::now();
            let answers = client.ask_all(questions.clone(), &schema, &ds.labels, &hidden)?;
            let s = side(&answers, start.elapsed().as_secs_f64());
            let same = answers.iter().zip(&local_answers).filter(|(a, b)| a.label.is_some() && a.label == b.label);
            let agreement = same.count() as f64 / sample.len().max(1) as f64;
            (Some(s), Some(agreement), Some(client.endpoint().display_url()), Some(client.concurrency()))
        }
    };
    Ok(LlmBench {
        items: sample.len(),
        prompt_variant: "1 fixed demonstration per class, constrained greedy decoding".to_string(),
        ratio: server_side.as_ref().map(|s| embedded.items_per_second / s.items_per_second),
        embedded,
        server: server_side,
        server_url: url,
        server_concurrency: concurrency,
        agreement,
    })
}
