//! A Llama-family decoder (SmolLM2, Llama, ...) on candle, trainable and
//! fast on CPU: fused attention, SwiGLU, RMSNorm and linear ops with
//! hand-written backward passes, a classification head on the last real
//! token, prefix caching for the LLM's prompts, and loading from GGUF or
//! Hugging Face files and export back to the Hugging Face layout.
//!
//! - [`model`]: the network ([`Llama`]), its configuration and parameters;
//! - [`attention`] and [`ops`]: the fused CPU kernels with their backward passes;
//! - [`load`]: weights, configuration and tokenizer from GGUF or Hugging Face files.

pub mod attention;
pub mod load;
pub mod model;
pub mod ops;
mod tree_attention;

pub use load::{default_model, load, LoadedModel, WeightFormat};
pub use model::{Llama, LlamaConfig, PrefixCache, Segment, Trainable};
