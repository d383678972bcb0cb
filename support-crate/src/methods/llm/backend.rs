//! Where the LLM's answers come from: an OpenAI-compatible server, the
//! embedded GGUF model in-process, or anything else that implements
//! [`Answerer`] (a scripted one in the tests of the prompt sweep).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::local::{Decoding, LocalLlm};
use super::openai::{Answer, OpenAiClient};
use super::prompt::Message;
use crate::kernels::Precision;
use crate::models::llama::WeightFormat;

/// What answers the LLM's questions. The prompt and calibration sweep
/// sees only this.
pub trait Answerer: Send + Sync {
    /// Answers every question; failures are recorded in the answers, never
    /// dropped. `decoding` applies where the answerer scores labels itself.
    fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        schema: &serde_json::Value,
        labels: &[String],
        decoding: Decoding,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>>;

    /// The model's name as results name it.
    fn model(&self) -> String;

    /// Where it runs: a server's base URL (without credentials), or a description of this machine's run.
    fn endpoint(&self) -> String;

    /// Whether it runs in this process (else a server answers).
    fn in_process(&self) -> bool;

    /// How labels were scored.
    fn label_scoring(&self) -> String;

    /// How structured output was obtained.
    fn dialect(&self) -> Option<String>;
}

impl Answerer for Arc<OpenAiClient> {
    fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        schema: &serde_json::Value,
        labels: &[String],
        _decoding: Decoding,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        OpenAiClient::ask_all(self, questions, schema, labels, progress)
    }

    fn model(&self) -> String {
        OpenAiClient::endpoint(self).model.clone()
    }

    fn endpoint(&self) -> String {
        OpenAiClient::endpoint(self).display_url()
    }

    fn in_process(&self) -> bool {
        false
    }

    fn label_scoring(&self) -> String {
        OpenAiClient::label_scoring(self)
    }

    fn dialect(&self) -> Option<String> {
        OpenAiClient::dialect(self).map(|d| format!("{d:?}"))
    }
}

impl Answerer for LocalLlm {
    fn ask_all(
        &self,
        questions: Vec<Vec<Message>>,
        schema: &serde_json::Value,
        labels: &[String],
        decoding: Decoding,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        LocalLlm::ask_all(self, &questions, schema, labels, decoding, progress)
    }

    fn model(&self) -> String {
        self.name().to_string()
    }

    fn endpoint(&self) -> String {
        let file = self.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let weights = if self.is_quantized() {
            "quantised weights".to_string()
        } else {
            format!("{} weights", self.precision().name())
        };
        format!("in-process (candle, {file}, {weights})")
    }

    fn in_process(&self) -> bool {
        true
    }

    fn label_scoring(&self) -> String {
        "every whole label's log-probability, in-process".into()
    }

    fn dialect(&self) -> Option<String> {
        Some("constrained to the labels in-process".into())
    }
}

/// Where the answers come from.
pub enum Backend {
    /// An OpenAI-compatible server.
    Server(Arc<OpenAiClient>),
    /// The embedded GGUF model, decoding constrained to the schema.
    Local(Box<LocalLlm>),
    /// Any other answerer.
    Custom(Box<dyn Answerer>),
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
    /// The arithmetic of the embedded model's matmuls (int8 needs f32
    /// weights). Default auto: int8 where the CPU has an integer kernel;
    /// on all 7,600 AG News test items it gives f32's label on 99% of them
    /// at 1.6-2.8x the speed (README).
    pub precision: Precision,
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
            pack_tokens: super::local::PACK_TOKENS,
            weights: WeightFormat::Auto,
            precision: Precision::Auto,
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
        let mut llm = LocalLlm::load_with(&gguf, config.cache_dir.as_deref(), config.weights, budget)?
            .with_precision(config.precision)?;
        llm.pack_tokens = config.pack_tokens;
        Ok(Backend::Local(Box::new(llm)))
    }

    fn answerer(&self) -> &dyn Answerer {
        match self {
            Backend::Server(client) => client,
            Backend::Local(llm) => llm.as_ref(),
            Backend::Custom(answerer) => answerer.as_ref(),
        }
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
        self.answerer().ask_all(questions, schema, labels, decoding, progress)
    }

    /// The model's name as results name it.
    pub fn model(&self) -> String {
        self.answerer().model()
    }

    /// The server's base URL, or where the embedded model ran.
    pub fn endpoint(&self) -> String {
        self.answerer().endpoint()
    }

    /// Whether the answers are computed in this process (else a server's).
    pub fn in_process(&self) -> bool {
        self.answerer().in_process()
    }

    /// How labels were scored: the embedded model's whole-label
    /// log-probabilities, or what the server's logprobs gave.
    pub fn label_scoring(&self) -> String {
        self.answerer().label_scoring()
    }

    /// How structured output was obtained.
    pub fn dialect(&self) -> Option<String> {
        self.answerer().dialect()
    }
}
