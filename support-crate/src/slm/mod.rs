//! The small language model: a Llama fine-tuned as a sequence classifier.
//!
//! - [`model`]: a trainable Llama with a classification head;
//! - [`load`]: weights, configuration and tokenizer from GGUF or Hugging Face files;
//! - [`batch`]: tokenisation, truncation, length-bucketed batches;
//! - [`optim`]: fused in-place AdamW, clipping, the learning-rate schedule;
//! - [`train`]: the fine-tuning loop with validation and checkpoints;
//! - [`classifier`]: batching, evaluation, saving and loading a fine-tuned classifier.

pub mod attention;
pub mod batch;
pub mod classifier;
pub mod experiment;
pub mod load;
pub mod model;
pub mod ops;
pub mod optim;
pub mod train;

pub use load::{default_model, load, LoadedModel};
pub use model::{Llama, LlamaConfig, PrefixCache, Trainable};
