//! The generic LLM with structured outputs.
//!
//! - [`openai`]: a client for any OpenAI-compatible server, with schema
//!   dialect fallback, retries, a concurrency limit and a response cache;
//! - [`prompt`]: messages, the answer's JSON schema, validation of answers;
//! - [`response_cache`]: the on-disk cache of successful responses.

pub mod experiment;
pub mod openai;
pub mod prompt;
pub mod response_cache;
