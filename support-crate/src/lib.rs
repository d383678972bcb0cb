//! slm-vs-llm: a fine-tuned small language model against a generic LLM,
//! embeddings + K-NN and a TF-IDF baseline on text classification.
//!
//! The notebooks in `notebooks/` and the `slm-vs-llm` command call the same
//! functions, so they produce the same numbers.

pub mod baseline;
pub mod bench;
pub mod bert;
pub mod cache;
pub mod data;
pub mod eda;
pub mod embed;
pub mod knn;
pub mod llm;
pub mod metrics;
pub mod notebook;
pub mod plot;
pub mod progress;
pub mod report;
pub mod results;
pub mod slm;

pub use data::{Dataset, Example, Split};
/// The tensor and data-frame crates, for notebooks (which only `:dep` this crate).
pub use {candle_core, polars, serde_json};

/// True when `HF_HUB_OFFLINE` asks for no network access (Hugging Face convention).
pub fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}
