//! slm-vs-llm: a fine-tuned small language model against a generic LLM,
//! embeddings + K-NN and a TF-IDF baseline on text classification.
//!
//! The layout follows the experiment pipeline:
//!
//! - core: [`data`] (load, clean, split), [`method`] (the interface every
//!   method implements, and [`method::run`], which fits one, predicts test
//!   and makes its record), [`metrics`], [`paired`] (two methods on the
//!   same items), [`results`] (records and
//!   predictions on disk), [`cache`] (the append-only cache of embeddings
//!   and LLM answers), [`paths`] (the project's directories, the run
//!   profile) and [`hub`] (models from the Hugging Face Hub or disk);
//! - [`models`]: the networks (Llama, BERT), with no knowledge of experiments;
//! - [`methods`]: one folder per method, and the list of them;
//! - [`studies`]: the learning curve and the cascade, built on [`method`];
//! - [`present`]: tables, charts, the report and the notebook display;
//! - [`cli`]: the `slm-vs-llm` command; [`bench`]: the benchmarks.
//!
//! The notebooks in `notebooks/` and the `slm-vs-llm` command call the same
//! functions, so they produce the same numbers.

pub mod bench;
pub mod cache;
pub mod cli;
pub mod costs;
pub mod data;
pub mod hub;
pub mod kernels;
pub mod method;
pub mod methods;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod paired;
pub mod paths;
pub mod plot;
pub mod present;
pub mod progress;
pub mod results;
pub mod studies;

pub use data::{Dataset, Example, Split};
pub use method::{Method, MethodRun, RunContext, RunOptions};
pub use paths::Profile;
/// The tensor and data-frame crates, for notebooks (which only `:dep` this crate).
pub use {candle_core, polars, serde_json};
