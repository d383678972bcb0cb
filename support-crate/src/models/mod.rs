//! The networks, with no knowledge of experiments: the Llama decoder (the
//! fine-tuned SLM and the in-process LLM) and the BERT sentence embedder.

pub mod bert;
pub mod bert_train;
pub mod embedder;
pub mod llama;
mod train_ops;

pub use embedder::{Embedder, Embeddings};
