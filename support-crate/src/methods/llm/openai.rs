//! A chat-completions client for any OpenAI-compatible server (OpenAI,
//! Ollama, vLLM, llama.cpp's server), asking for an answer constrained to a
//! JSON schema.
//!
//! - Structured output: `response_format: {type: "json_schema", ...}`; a
//!   server that rejects it (llama-cpp-python's server: 422 in early 0.3
//!   releases, a 500 naming `response_format` in 0.3.16) is asked
//!   again in the next dialect — `{type: "json_object", schema}`, then plain
//!   JSON mode — and the dialect that worked is kept for the endpoint.
//!   Every answer is validated here whatever the server promised.
//! - Label scores: `logprobs` with `top_logprobs` are asked for, and each
//!   label's probability is read off them ([`super::logprobs`]); a server
//!   that rejects the parameters is asked without them, and a run says why
//!   its answers carry no scores.
//! - Resilience: a request timeout; retries with exponential backoff and
//!   jitter on timeouts, dropped connections, 429 (honouring `Retry-After`)
//!   and 5xx; a concurrency limit. An item that still fails is an error in
//!   its answer, never a lost item.
//! - Cost: token usage and latency per request; successful responses are
//!   cached on disk by model, messages and parameters, so a re-run or an
//!   interrupted run pays for nothing twice.
//! - Secrets: the key comes from `OPENAI_API_KEY` and is never printed,
//!   logged or cached (`Secret`'s `Debug` is redacted).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::logprobs::{self, TokenLogprob};
use super::prompt::{parse_answer, AnswerError, Message};
use crate::cache::RecordCache;

pub use super::endpoint::{redact_url, Endpoint, Secret};

/// How the server is asked for structured output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dialect {
    /// OpenAI's `{type: "json_schema", json_schema: {name, strict, schema}}`.
    JsonSchema,
    /// `{type: "json_object", schema}` (llama.cpp's server, older vLLM).
    JsonObjectWithSchema,
    /// `{type: "json_object"}`: JSON mode, the schema only in the prompt.
    JsonObject,
}

impl Dialect {
    const FALLBACKS: [Dialect; 3] = [Dialect::JsonSchema, Dialect::JsonObjectWithSchema, Dialect::JsonObject];

    fn response_format(self, schema: &Value) -> Value {
        match self {
            Dialect::JsonSchema => {
                json!({"type": "json_schema", "json_schema": {"name": "classification", "strict": true, "schema": schema}})
            }
            Dialect::JsonObjectWithSchema => json!({"type": "json_object", "schema": schema}),
            Dialect::JsonObject => json!({"type": "json_object"}),
        }
    }
}

/// Timeouts, retries and parallelism.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest wait a `Retry-After` header may ask for (a longer one is cut, with a warning).
    pub max_retry_after: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub max_tokens: u32,
    pub temperature: f64,
    /// Most likely tokens asked for at each position, to score every label
    /// (OpenAI allows 0-20); `None`: the answer alone.
    pub top_logprobs: Option<u8>,
    /// Successful responses are cached here (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(60),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            concurrency: 4,
            max_tokens: 64,
            temperature: 0.0,
            top_logprobs: Some(20),
            cache_dir: None,
        }
    }
}

/// Tokens a request used, as the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What one item got: a label index, or the reason it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub label: Option<usize>,
    /// The model's text, when there was one.
    pub content: Option<String>,
    pub error: Option<AnswerError>,
    /// The log-probability of each label's whole answer, where the backend
    /// scored every label (the embedded model's label scoring).
    pub label_log_probs: Option<Vec<f32>>,
    pub usage: Usage,
    /// Wall time of the request that produced the answer (also when it is
    /// served from the cache now).
    pub latency_seconds: f64,
    /// The share of a run's wall time this answer cost: latency ÷ requests
    /// in flight (server), the forward pass ÷ the items packed in it (embedded).
    pub compute_seconds: f64,
    pub attempts: u32,
    pub cached: bool,
}

/// The successful part of a response, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    pub content: Option<String>,
    pub refusal: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Usage,
    /// As [`Answer::latency_seconds`] and [`Answer::compute_seconds`], kept
    /// so that a cached answer still reports what it cost.
    #[serde(default)]
    pub latency_seconds: f64,
    #[serde(default)]
    pub compute_seconds: f64,
    /// As [`Answer::label_log_probs`].
    #[serde(default)]
    pub label_log_probs: Option<Vec<f32>>,
    /// The response's token logprobs, read into `label_log_probs` before caching.
    #[serde(skip)]
    pub tokens: Option<Vec<TokenLogprob>>,
}

/// The answer cache of `model` in `dir`: successful completions by a hash
/// of what determines them (model, messages, parameters); nothing secret.
pub(crate) fn open_answer_cache(dir: &std::path::Path, model: &str) -> Result<RecordCache> {
    RecordCache::open(&dir.join(format!("{}.cache", crate::paths::slug(model))), &format!("LLM answers of {model}"))
}

pub struct OpenAiClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    config: ClientConfig,
    dialect: Mutex<Option<Dialect>>,
    discovery: tokio::sync::Mutex<()>,
    cache: Option<Mutex<RecordCache>>,
    /// Set when the server refused the requests themselves (401, 403, 404):
    /// nothing more is asked, and the run fails.
    refused: Mutex<Option<String>>,
    /// Items given up on without any response from the server (connection
    /// refused or lost, timeouts).
    unreachable: std::sync::atomic::AtomicUsize,
    /// Items in a row that got no response at all, and, once there were
    /// [`OUTAGE_ITEMS`] of them, why the run stopped asking.
    silent_in_a_row: std::sync::atomic::AtomicUsize,
    outage: Mutex<Option<String>>,
    /// Set when the server rejected `logprobs`: asked without them since.
    logprobs_rejected: Mutex<Option<String>>,
    /// Answers with label scores, and why the others have none.
    scoring: Mutex<ScoringTally>,
    /// The model the server says it serves (`GET /models`), asked once per
    /// client: a llama.cpp server answers under any model name, so swapping
    /// the GGUF behind it must not reuse the old model's cached answers.
    served_model: tokio::sync::OnceCell<Option<String>>,
}

#[derive(Debug, Default)]
struct ScoringTally {
    scored: usize,
    unscored: std::collections::BTreeMap<String, usize>,
}

/// Longest response body read; a larger one is an error, not a memory hog.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Largest share of a run's requests that may fail (after their retries) and
/// still count as answers that were wrong; above it the run is an error.
pub const MAX_FAILED_SHARE: f64 = 0.5;
/// Items in a row without any response (after their retries) that end the
/// run: the server is down, and waiting out every remaining item's retries
/// would only delay the error.
pub const OUTAGE_ITEMS: usize = 8;

enum Failure {
    /// Worth another try (429, 5xx, a malformed response), after at least this long.
    Retry(String, Option<Duration>),
    /// No response at all (timeout, connection refused or lost): worth another try.
    NoResponse(String),
    /// The server does not speak this dialect of structured output.
    Dialect(String),
    /// The server rejects `logprobs`/`top_logprobs`.
    Logprobs(String),
    /// Final for this item (another 4xx).
    Fatal(String),
    /// The server refuses the requests themselves (401, 403, 404: a wrong key,
    /// base URL or model): final for the whole run.
    Refused(String),
}

impl OpenAiClient {
    pub fn new(endpoint: Endpoint, config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder().timeout(config.timeout).build().context("building the HTTP client")?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(Mutex::new(open_answer_cache(dir, &endpoint.model)?)),
            None => None,
        };
        Ok(OpenAiClient {
            http,
            endpoint,
            config,
            dialect: Mutex::new(None),
            discovery: tokio::sync::Mutex::new(()),
            cache,
            refused: Mutex::new(None),
            unreachable: Default::default(),
            silent_in_a_row: Default::default(),
            outage: Mutex::new(None),
            logprobs_rejected: Mutex::new(None),
            scoring: Default::default(),
            served_model: Default::default(),
        })
    }

    /// The model the server serves, when it says: the requested name when it
    /// lists it, else the one model it lists (a llama.cpp server); `None` when
    /// it lists several others or does not answer `GET /models`.
    pub async fn served_model(&self) -> Option<String> {
        self.served_model.get_or_init(|| self.ask_served_model()).await.clone()
    }

    async fn ask_served_model(&self) -> Option<String> {
        let url = format!("{}/models", self.endpoint.base_url);
        let mut request = self.http.get(&url).timeout(self.config.timeout.min(Duration::from_secs(10)));
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.ok().filter(|r| r.status().is_success())?;
        let listing: Value = response.json().await.ok()?;
        let ids: Vec<&str> = listing["data"].as_array()?.iter().filter_map(|m| m["id"].as_str()).collect();
        let served = match ids.as_slice() {
            ids if ids.contains(&self.endpoint.model.as_str()) => self.endpoint.model.clone(),
            [only] => only.to_string(),
            _ => return None,
        };
        if served != self.endpoint.model {
            tracing::info!("{} serves {served} (asked for {})", self.endpoint.display_url(), self.endpoint.model);
        }
        Some(served)
    }

    /// Requests in flight at once.
    pub fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The structured-output dialect found to work, once a request succeeded.
    pub fn dialect(&self) -> Option<Dialect> {
        *self.dialect.lock().expect("dialect lock")
    }

    fn body(&self, messages: &[Message], schema: &Value, dialect: Dialect) -> Value {
        let mut body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "response_format": dialect.response_format(schema),
        });
        if let (Some(n), None) = (self.config.top_logprobs, &*self.logprobs_rejected.lock().expect("logprobs lock")) {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(n);
        }
        body
    }

    /// How the answers' labels were scored, and why some were not.
    pub fn label_scoring(&self) -> String {
        let Some(n) = self.config.top_logprobs else {
            return "not asked (the answer alone)".into();
        };
        if let Some(rejected) = &*self.logprobs_rejected.lock().expect("logprobs lock") {
            return format!("none: the server rejected logprobs ({rejected}); the answer alone");
        }
        let tally = self.scoring.lock().expect("scoring lock");
        let mut s = format!("{} answers scored from the top-{n} logprobs", tally.scored);
        for (reason, count) in &tally.unscored {
            s.push_str(&format!("; {count} without scores: {reason}"));
        }
        s
    }

    /// Fills in `completion.label_log_probs` from its token logprobs and counts why it could not.
    fn score_labels(&self, completion: &mut Completion, labels: &[String]) {
        if self.config.top_logprobs.is_none() {
            return;
        }
        let why = match (&completion.content, completion.tokens.take()) {
            (_, None) => Some("the server returned no logprobs".to_string()),
            (None, Some(_)) => Some("no answer text".to_string()),
            (Some(content), Some(tokens)) => match logprobs::label_log_probs(content, &tokens, labels) {
                Ok(scores) => {
                    completion.label_log_probs = Some(scores);
                    None
                }
                Err(e) => Some(format!("{e:?}")),
            },
        };
        let mut tally = self.scoring.lock().expect("scoring lock");
        match why {
            None => tally.scored += 1,
            Some(why) => *tally.unscored.entry(why).or_default() += 1,
        }
    }

    /// Counts a cached answer as [`Self::score_labels`] counted it when it was asked.
    fn count_cached(&self, completion: &Completion) {
        if self.config.top_logprobs.is_none() {
            return;
        }
        let mut tally = self.scoring.lock().expect("scoring lock");
        match completion.label_log_probs {
            Some(_) => tally.scored += 1,
            None => *tally.unscored.entry("cached without scores".into()).or_default() += 1,
        }
    }

    /// The cache key: everything that determines the answer, the server (by
    /// its URL without credentials) and the model it says it serves included:
    /// another server, or another GGUF behind the same one, answers anew. Not
    /// the dialect or the key.
    fn cache_key(&self, messages: &[Message], schema: &Value, served_model: Option<&str>) -> String {
        let mut key = json!({
            "endpoint": self.endpoint.display_url(),
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "top_logprobs": self.config.top_logprobs,
            "schema": schema,
        });
        // Only a model other than the one asked for changes the key (answers
        // cached before the server was asked stay valid).
        if let Some(served) = served_model.filter(|served| *served != self.endpoint.model) {
            key["served_model"] = json!(served);
        }
        key.to_string()
    }

    async fn send(&self, body: &Value) -> std::result::Result<Completion, Failure> {
        let url = format!("{}/chat/completions", self.endpoint.base_url);
        let mut request = self.http.post(&url).json(body);
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key.expose());
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(Failure::NoResponse(format!("timed out after {:?}", self.config.timeout)))
            }
            Err(e) => return Err(Failure::NoResponse(format!("request failed: {}", without_url(&e)))),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite())
            .map(|s| {
                let asked = Duration::from_secs_f64(s.clamp(0.0, 1e6));
                let cap = self.config.max_retry_after;
                if asked > cap {
                    tracing::warn!("the server asked to wait {asked:?} (Retry-After); waiting {cap:?}");
                }
                asked.min(cap)
            });
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RESPONSE_BYTES {
                        return Err(Failure::Retry(format!("response larger than {MAX_RESPONSE_BYTES} bytes"), None));
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(Failure::NoResponse("timed out reading the response".into())),
                Err(e) => {
                    return Err(Failure::NoResponse(format!(
                        "connection lost reading the response: {}",
                        without_url(&e)
                    )))
                }
            }
        }
        // A server may echo the key in an error: it must not reach a log, an error or the cache.
        let text = self.scrub(&String::from_utf8_lossy(&body));
        let snippet: String = text.chars().take(300).collect();
        if !status.is_success()
            && status.as_u16() != 429
            && snippet.contains("logprobs")
            && !snippet.contains("response_format")
        {
            return Err(Failure::Logprobs(format!("{status}: {snippet}")));
        }
        // A server that does not know this response_format says so in a 400 or 422 — or,
        // llama-cpp-python 0.3.16, a 500 whose body names the field: not worth retrying.
        if !status.is_success() && status.as_u16() != 429 && snippet.contains("response_format") {
            return Err(Failure::Dialect(format!("{status}: {snippet}")));
        }
        if status.as_u16() == 429 {
            return Err(Failure::Retry(format!("rate limited (429): {snippet}"), retry_after));
        }
        if status.is_server_error() {
            return Err(Failure::Retry(format!("server error {status}: {snippet}"), retry_after));
        }
        if matches!(status.as_u16(), 400 | 422)
            && (snippet.contains("response_format") || snippet.contains("json_schema") || snippet.contains("schema"))
        {
            return Err(Failure::Dialect(format!("{status}: {snippet}")));
        }
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Err(Failure::Refused(format!("HTTP {status}: {snippet}")));
        }
        if !status.is_success() {
            return Err(Failure::Fatal(format!("HTTP {status}: {snippet}")));
        }
        parse_completion(&text).map_err(|e| Failure::Retry(format!("malformed response: {e}: {snippet}"), None))
    }

    /// Asks one question, with retries and dialect fallback. Never fails: the
    /// answer carries the error.
    pub async fn ask(&self, messages: &[Message], schema: &Value, labels: &[String]) -> Answer {
        let served_model = self.served_model().await;
        let key = self.cache_key(messages, schema, served_model.as_deref());
        if let Some(cache) = &self.cache {
            if let Some(hit) =
                cache.lock().expect("cache lock").get_json::<Completion>(crate::cache::key(key.as_bytes()))
            {
                self.count_cached(&hit);
                return answer_from(hit, labels, 0, true);
            }
        }
        if let Some(refusal) = self.refusal().or_else(|| self.outage()) {
            return failed_answer(refusal, 0);
        }
        // Until a dialect is known, one request at a time finds it: the others
        // wait rather than each being rejected by the same server. The lock is
        // let go while this request waits to retry, so one failing item does
        // not hold up the rest.
        let mut discovering = match self.dialect() {
            Some(_) => None,
            None => Some(self.discovery.lock().await),
        };
        let mut attempts = 0;
        let mut last_error = String::new();
        let mut dialects: Vec<Dialect> = match self.dialect() {
            Some(d) => vec![d],
            None => Dialect::FALLBACKS.to_vec(),
        };
        let mut retries = 0;
        let mut reached = false;
        while !dialects.is_empty() {
            let dialect = dialects[0];
            attempts += 1;
            let started = Instant::now();
            let body = self.body(messages, schema, dialect);
            match self.send(&body).await {
                Ok(mut completion) => {
                    *self.dialect.lock().expect("dialect lock") = Some(dialect);
                    self.silent_in_a_row.store(0, std::sync::atomic::Ordering::Relaxed);
                    completion.latency_seconds = started.elapsed().as_secs_f64();
                    completion.compute_seconds = completion.latency_seconds / self.config.concurrency.max(1) as f64;
                    self.score_labels(&mut completion, labels);
                    if let Some(cache) = &self.cache {
                        if let Err(e) = cache
                            .lock()
                            .expect("cache lock")
                            .insert_json(crate::cache::key(key.as_bytes()), &completion)
                        {
                            tracing::warn!("could not cache a response: {e:#}");
                        }
                    }
                    return answer_from(completion, labels, attempts, false);
                }
                Err(Failure::Logprobs(e)) if body.get("logprobs").is_some() => {
                    tracing::warn!("the server rejected logprobs, asking without them (no label scores): {e}");
                    self.logprobs_rejected.lock().expect("logprobs lock").get_or_insert(e);
                }
                Err(Failure::Logprobs(e) | Failure::Fatal(e)) => {
                    (last_error, reached) = (e, true);
                    break;
                }
                Err(Failure::Dialect(e)) => {
                    tracing::info!(?dialect, "the server rejected this structured-output dialect: {e}");
                    last_error = e;
                    dialects.remove(0);
                }
                Err(failure @ (Failure::Retry(..) | Failure::NoResponse(_))) => {
                    let wait = match failure {
                        Failure::Retry(e, wait) => {
                            (last_error, reached) = (e, true);
                            wait
                        }
                        Failure::NoResponse(e) => {
                            last_error = e;
                            None
                        }
                        _ => unreachable!(),
                    };
                    if retries >= self.config.max_retries {
                        break;
                    }
                    retries += 1;
                    let delay = wait.unwrap_or_else(|| backoff(&self.config, retries));
                    tracing::debug!(retry = retries, ?delay, "retrying: {last_error}");
                    drop(discovering.take());
                    if delay >= Duration::from_secs(5) {
                        tracing::info!("waiting {delay:.1?} before retrying: {last_error}");
                    }
                    tokio::time::sleep(delay).await;
                    if let Some(refusal) = self.refusal().or_else(|| self.outage()) {
                        return failed_answer(refusal, attempts);
                    }
                    if self.dialect().is_none() {
                        discovering = Some(self.discovery.lock().await);
                    }
                    dialects = match self.dialect() {
                        Some(d) => vec![d],
                        None => dialects,
                    };
                }
                Err(Failure::Refused(e)) => {
                    tracing::error!("the server refused the request: {e}");
                    self.refused.lock().expect("refusal lock").get_or_insert(e.clone());
                    return failed_answer(e, attempts);
                }
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        if reached {
            self.silent_in_a_row.store(0, Relaxed);
        } else {
            self.unreachable.fetch_add(1, Relaxed);
            if self.silent_in_a_row.fetch_add(1, Relaxed) + 1 >= OUTAGE_ITEMS {
                let mut outage = self.outage.lock().expect("outage lock");
                if outage.is_none() {
                    let reason = format!("no response for {OUTAGE_ITEMS} items in a row (last error: {last_error})");
                    tracing::error!(
                        "{} stopped responding: {reason}; asking nothing more",
                        self.endpoint.display_url()
                    );
                    *outage = Some(reason);
                }
            }
        }
        tracing::warn!(attempts, "no answer after {retries} retries: {last_error}");
        failed_answer(last_error, attempts)
    }

    /// Why the server refused the requests, once it has.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().expect("refusal lock").clone()
    }

    /// Why the run stopped asking a server that stopped responding, once it has.
    pub fn outage(&self) -> Option<String> {
        self.outage.lock().expect("outage lock").clone()
    }

    /// `text` with the API key, if any, replaced by `***`.
    fn scrub(&self, text: &str) -> String {
        match &self.endpoint.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
            _ => text.to_string(),
        }
    }

    /// Asks every question, at most `concurrency` at once; answers in input order.
    pub fn ask_all(
        self: &Arc<Self>,
        questions: Vec<Vec<Message>>,
        schema: &Value,
        labels: &[String],
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let limit = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let unreachable_before = self.unreachable.load(std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(async {
            let mut handles = Vec::with_capacity(questions.len());
            for messages in questions {
                let (client, limit, schema, labels) = (self.clone(), limit.clone(), schema.clone(), labels.to_vec());
                let progress = progress.clone();
                handles.push(tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await.expect("semaphore open");
                    let answer = client.ask(&messages, &schema, &labels).await;
                    progress.inc(1);
                    answer
                }));
            }
            let mut answers = Vec::with_capacity(handles.len());
            for h in handles {
                answers.push(h.await.context("a request task panicked")?);
            }
            let unreachable = self.unreachable.load(std::sync::atomic::Ordering::Relaxed) - unreachable_before;
            self.check_answers(&answers, unreachable)?;
            Ok(answers)
        })
    }

    /// A run in which the server refused the requests (401, 403, 404), or in
    /// which most items never reached it (a dead or vanished server), is an
    /// error, not a table of invalid answers: the caller stops and writes no
    /// results, and a re-run asks only what is not cached yet.
    fn check_answers(&self, answers: &[Answer], unreachable: usize) -> Result<()> {
        let display = self.endpoint.display_url();
        if let Some(refusal) = self.refusal() {
            anyhow::bail!(
                "{display} refused the requests ({refusal}); check OPENAI_API_KEY, OPENAI_BASE_URL and the model name ({})",
                self.endpoint.model
            );
        }
        let received = answers.iter().filter(|a| !matches!(a.error, Some(AnswerError::Request(_)))).count();
        if let Some(outage) = self.outage() {
            anyhow::bail!(
                "{display} stopped responding mid-run ({outage}); is the server up? The {received} answers \
                 received are cached: a re-run asks only the rest"
            );
        }
        let asked = answers.iter().filter(|a| !a.cached).count();
        let last = answers.iter().rev().find_map(|a| match &a.error {
            Some(AnswerError::Request(e)) => Some(e.as_str()),
            _ => None,
        });
        if unreachable > 0 && 2 * unreachable > asked {
            anyhow::bail!(
                "{unreachable} of the {asked} requests to {display} got no response at all (last error: {}); \
                 is the server up? Answers received so far are cached: a re-run asks only the rest",
                last.unwrap_or("unknown")
            );
        }
        let failed = answers.iter().filter(|a| matches!(a.error, Some(AnswerError::Request(_)))).count();
        if failed > 0 && failed as f64 > MAX_FAILED_SHARE * answers.len() as f64 {
            anyhow::bail!(
                "{failed} of {} requests to {display} failed after their retries, more than {:.0}% (last error: {}; \
                 the log has each one's). Answers received are cached: a re-run asks only the rest",
                answers.len(),
                100.0 * MAX_FAILED_SHARE,
                last.unwrap_or("unknown")
            );
        }
        Ok(())
    }
}

/// An answer that is an error.
fn failed_answer(error: String, attempts: u32) -> Answer {
    Answer {
        label: None,
        content: None,
        error: Some(AnswerError::Request(error)),
        label_log_probs: None,
        usage: Usage::default(),
        latency_seconds: 0.0,
        compute_seconds: 0.0,
        attempts,
        cached: false,
    }
}

/// reqwest's error without the URL (which may carry credentials in a user's base URL).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<endpoint>");
    }
    s
}

/// Exponential backoff with full jitter: uniform in [0, min(max, base · 2^retry)].
fn backoff(config: &ClientConfig, retry: u32) -> Duration {
    use rand::Rng;
    let cap = config.backoff_base.as_secs_f64() * 2f64.powi(retry as i32 - 1);
    let cap = cap.min(config.backoff_max.as_secs_f64());
    Duration::from_secs_f64(rand::rng().random_range(0.5 * cap..=cap))
}

fn parse_completion(text: &str) -> std::result::Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let choice = v["choices"].get(0).ok_or("no choices")?;
    let message = &choice["message"];
    let usage = Usage {
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    };
    Ok(Completion {
        content: message["content"].as_str().map(str::to_string),
        refusal: message["refusal"].as_str().map(str::to_string),
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        usage,
        latency_seconds: 0.0,
        compute_seconds: 0.0,
        label_log_probs: None,
        tokens: logprobs::parse(choice),
    })
}

/// The answer a completion gives: refused, cut off, or its content validated against the labels.
pub(crate) fn answer_from(c: Completion, labels: &[String], attempts: u32, cached: bool) -> Answer {
    let (label, error) = if let Some(r) = &c.refusal {
        (None, Some(AnswerError::Refused(r.clone())))
    } else if c.finish_reason.as_deref() == Some("length") {
        (None, Some(AnswerError::Truncated(c.content.clone().unwrap_or_default())))
    } else {
        match parse_answer(c.content.as_deref().unwrap_or_default(), labels) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e)),
        }
    };
    Answer {
        label,
        content: c.content,
        error,
        label_log_probs: c.label_log_probs,
        usage: c.usage,
        latency_seconds: c.latency_seconds,
        compute_seconds: c.compute_seconds,
        attempts,
        cached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_before_they_are_shown() {
        assert_eq!(redact_url("http://user:secret@host:8080/v1"), "http://host:8080/v1");
        assert_eq!(redact_url("https://api.example.com/v1?api-key=k#x"), "https://api.example.com/v1");
        assert_eq!(redact_url("http://localhost:11434/v1"), "http://localhost:11434/v1");
        assert_eq!(redact_url("host/v1"), "host/v1");
        let endpoint = Endpoint {
            base_url: "http://user:secret@host/v1".into(),
            model: "m".into(),
            api_key: Some(Secret::new("sk-123".into())),
        };
        let shown = format!("{endpoint:?} {}", endpoint.display_url());
        assert!(!shown.contains("secret") && !shown.contains("sk-123"), "{shown}");
    }
}
