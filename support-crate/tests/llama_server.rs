//! The client against a real OpenAI-compatible server: llama.cpp's server
//! (llama-cpp-python) serving the SmolLM2 GGUF on loopback, started and
//! stopped by scripts/test-llama-server.sh, which sets SLM_LLAMA_SERVER_URL.
//! Its 0.3 release rejects `response_format.type = "json_schema"` with 422:
//! the client must discover the `json_object` + schema dialect by itself,
//! and every answer must be valid JSON with a label from the enum, its
//! labels scored from the server's `top_logprobs`.
//! Skipped without the variable, unless SLM_REQUIRE_LLAMA_SERVER=1.

use std::sync::Arc;
use std::time::Duration;

use slm_vs_llm::data::Task;
use slm_vs_llm::methods::llm::openai::{ClientConfig, Dialect, Endpoint, OpenAiClient};
use slm_vs_llm::methods::llm::prompt::{answer_schema, zero_shot};

#[test]
fn classifies_through_a_real_llama_cpp_server() {
    let Ok(url) = std::env::var("SLM_LLAMA_SERVER_URL") else {
        assert!(std::env::var_os("SLM_REQUIRE_LLAMA_SERVER").is_none(), "SLM_LLAMA_SERVER_URL is not set");
        eprintln!("skipped: no SLM_LLAMA_SERVER_URL (scripts/test-llama-server.sh starts a server and sets it)");
        return;
    };
    let labels: Vec<String> = ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec();
    let endpoint = Endpoint { base_url: url, model: "SmolLM2-135M-Instruct".into(), api_key: None };
    let config = ClientConfig { timeout: Duration::from_secs(120), concurrency: 1, ..Default::default() };
    let client = Arc::new(OpenAiClient::new(endpoint, config).unwrap());
    let texts = [
        "Sharapova wins Wimbledon final. The 17-year-old Russian beat Serena Williams in straight sets.",
        "Oil prices hit record high. Crude rose above $50 a barrel as supply worries grew.",
        "NASA probe sends first pictures from Saturn. The Cassini spacecraft entered orbit on Wednesday.",
        "Peace talks resume in the Middle East. Diplomats met in Cairo to discuss a ceasefire.",
    ];
    let questions = texts.iter().map(|t| zero_shot(&Task::ag_news(), t, &labels)).collect();
    let answers =
        client.ask_all(questions, &answer_schema(&labels, false), &labels, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(answers.len(), texts.len());
    assert_eq!(client.dialect(), Some(Dialect::JsonObjectWithSchema), "dialect discovered");
    for (text, a) in texts.iter().zip(&answers) {
        assert!(a.error.is_none(), "{text}: {:?} ({:?})", a.error, a.content);
        assert!(a.label.is_some() && a.usage.prompt_tokens > 0, "{text}: {a:?}");
        // llama.cpp's server returns `top_logprobs`: every label gets a score.
        let scores = a.label_log_probs.as_ref().unwrap_or_else(|| panic!("{text}: no label scores: {a:?}"));
        assert!(scores.len() == labels.len() && scores.iter().all(|s| s.is_finite() && *s <= 1e-4), "{scores:?}");
        eprintln!("{:<10} {text} (label log-probabilities {scores:?})", labels[a.label.unwrap()]);
    }
    assert_eq!(client.label_scoring(), "4 answers scored from the top-20 logprobs");
}
