//! The generic LLM with structured outputs.
//!
//! - [`openai`]: a client for any OpenAI-compatible server, with schema
//!   dialect fallback, retries, a concurrency limit and a response cache;
//! - [`local`]: the embedded default, a GGUF run in-process with decoding
//!   constrained to the schema;
//! - [`prompt`]: messages, the answer's JSON schema, validation of answers;
//! - [`response_cache`]: the on-disk cache of successful responses.

pub mod experiment;
pub mod local;
pub mod openai;
pub mod prompt;
pub mod response_cache;
