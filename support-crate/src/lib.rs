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

/// Makes mimalloc (the binaries' global allocator) keep freed pages instead
/// of returning them to the OS, unless `MIMALLOC_PURGE_DELAY` says otherwise:
/// candle frees and reallocates large buffers every op, and re-faulting fresh
/// pages cost ~10% of inference. Call it first thing in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no memory is touched.
        // 15 is mi_option_purge_delay (mimalloc v2 and v3); −1 never purges.
        unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    }
}

/// True when `HF_HUB_OFFLINE` asks for no network access (Hugging Face convention).
pub fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}
