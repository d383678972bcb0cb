//! The small language model: a Llama fine-tuned as a sequence classifier.
//!
//! - [`model`]: a trainable Llama with a classification head;
//! - [`load`]: weights, configuration and tokenizer from GGUF or Hugging Face files;
//! - [`train`]: the fine-tuning loop (fused AdamW, schedule, checkpoints);
//! - [`classifier`]: batching, evaluation, saving and loading a fine-tuned classifier.

pub mod load;
pub mod model;

pub use load::{default_model, load, LoadedModel};
pub use model::{Llama, LlamaConfig, Trainable};
