//! The embedded LLM: a llama-family GGUF run in-process on candle, used when
//! no endpoint is configured.
//!
//! The weights are dequantised to f32 at load (for SmolLM2-135M: 0.5 GB):
//! answering is prompt processing, many tokens per forward pass, where f32
//! matmuls run 2-4x faster per token than candle's Q4_1 kernels on these
//! CPUs (`examples/quantized_vs_f32.rs`); quantised kernels win only for
//! one-token decoding, which constrained answers barely need.
//!
//! The prompt is the GGUF's own chat template, and the answer's fixed JSON
//! (`{"label":"`, byte for byte as the demonstrations show it) is forced.
//! Then one of two [`Decoding`]s:
//!
//! - **label scoring** (the default): the log-probability of every whole
//!   answer `<label>"}`, all its tokens, in one forward pass over the item
//!   and its candidate answers packed as branches. The answer is the most
//!   likely label, and the four log-probabilities are the scores that
//!   calibration and confidences use.
//! - **constrained greedy decoding**: at each step only tokens that keep the
//!   text a prefix of `<label>"}` for some label are allowed, and the most
//!   likely one is taken. Once a single label remains, the rest of the JSON
//!   is forced without running the model (jump-forward decoding).
//!
//! Either way the answer text is rebuilt from the chosen label, not sampled
//! text. The keys and values of the prompt prefix that all questions share
//! (instructions, fixed demonstrations) are computed once and reused for
//! every item, and several items' own tokens are packed into one forward
//! pass.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokenizers::Tokenizer;

use super::openai::{answer_from, open_answer_cache, Answer, Completion, Usage};
use super::prompt::{AnswerError, Message};
use crate::cache::RecordCache;
use crate::kernels::Precision;
use crate::models::llama::{self, Llama, PrefixCache, WeightFormat};

/// What every answer starts with; the model chooses only the label. Written
/// as `serde_json` writes the demonstrations' answers, so the model is shown
/// and forced into the same format.
pub const ANSWER_PREFIX: &str = "{\"label\":\"";

/// Tokens per forward pass by default: with 4 retrieved examples (about
/// 340 tokens of each item's own), 1,024 ran 11% faster than 512 on the
/// 2-core Xeon (int8; 2,048 no faster): more rows per product and more
/// continuations to share the cores in attention, whose cost no longer grows
/// with the pass (each item sees only its own keys). Rows are quantised and
/// attended independently, so the answers do not depend on it.
pub const PACK_TOKENS: usize = 1024;

/// How the embedded model turns its next-token distributions into a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// The log-probability of every whole label; the most likely one wins.
    #[default]
    LabelScores,
    /// Token by token, the most likely token that keeps a label possible.
    ConstrainedGreedy,
}

impl std::fmt::Display for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoding::LabelScores => "label scoring",
            Decoding::ConstrainedGreedy => "constrained greedy decoding",
        })
    }
}

/// Tokens (as text) with their probabilities, most likely first.
pub type TokenProbs = Vec<(String, f32)>;

/// What the model decided for one item.
struct Decided {
    label: usize,
    /// Each label's log-probability (label scoring only).
    log_probs: Option<Vec<f32>>,
}

/// Used when a GGUF carries no chat template.
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + \
                      '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// The project's SmolLM2-135M-Instruct GGUF (`data/models`, fetched by
/// `scripts/setup.sh`), if present.
pub fn default_model() -> Option<PathBuf> {
    llama::load::project_gguf()
}

pub struct LocalLlm {
    model: Llama,
    /// Tokens of several items run in one forward pass (larger matmuls).
    pub pack_tokens: usize,
    tokenizer: Tokenizer,
    template: minijinja::Environment<'static>,
    /// The bytes each token stands for (`None`: special tokens, never allowed in an answer).
    token_bytes: Vec<Option<Vec<u8>>>,
    /// The texts of the BOS and EOS tokens, for templates that print them.
    bos_token: String,
    eos_token: String,
    name: String,
    path: PathBuf,
    /// Whether the matrices stayed quantised (see [`WeightFormat`]).
    quantized: bool,
    /// The arithmetic of the blocks' matmuls ([`LocalLlm::with_precision`]).
    precision: Precision,
    cache: Option<Mutex<RecordCache>>,
}

impl LocalLlm {
    /// Loads a GGUF file, in f32 when that fits half the available memory;
    /// answers are cached in `cache_dir` when given.
    pub fn load(path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        Self::load_with(path, cache_dir, WeightFormat::Auto, llama::load::default_memory_budget())
    }

    /// As [`LocalLlm::load`], the matrices in `format` (`Auto`: quantised
    /// when their f32 copy would take more than `budget` bytes).
    pub fn load_with(path: &Path, cache_dir: Option<&Path>, format: WeightFormat, budget: u64) -> Result<Self> {
        let mut file = std::fs::File::open(path).with_context(|| {
            format!("opening {} (`bash scripts/setup.sh` fetches SmolLM2-135M-Instruct to data/models)", path.display())
        })?;
        let content =
            gguf_file::Content::read(&mut file).with_context(|| format!("{}: not a GGUF file", path.display()))?;
        let template = content.metadata.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned();
        let loaded = llama::load::load_gguf_with(path, &Device::Cpu, format, budget)?;
        let model = Llama::from_quantized(loaded.config, loaded.weights, loaded.quantized)
            .with_context(|| format!("{}: building the model", path.display()))?;
        let quantized = model.is_quantized();
        let tokenizer = loaded.tokenizer;
        let token_text = |key: &str| {
            let id = content.metadata.get(key).and_then(|v| v.to_u32().ok());
            id.and_then(|id| tokenizer.id_to_token(id)).unwrap_or_default()
        };
        let (bos_token, eos_token) =
            (token_text("tokenizer.ggml.bos_token_id"), token_text("tokenizer.ggml.eos_token_id"));
        let template = template.unwrap_or_else(|| {
            tracing::warn!("{}: no chat template in the GGUF; using ChatML", path.display());
            CHATML.to_string()
        });
        let mut env = minijinja::Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", template).with_context(|| format!("{}: its chat template", path.display()))?;
        let token_bytes = (0..tokenizer.get_vocab_size(true) as u32)
            .map(|id| {
                let token = tokenizer.id_to_token(id)?;
                if tokenizer.get_added_vocabulary().is_special_token(&token) {
                    return None;
                }
                byte_level_bytes(&token)
            })
            .collect();
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let cache = match cache_dir {
            Some(dir) => Some(Mutex::new(open_answer_cache(dir, &format!("local-{name}"))?)),
            None => None,
        };
        Ok(LocalLlm {
            model,
            pack_tokens: PACK_TOKENS,
            tokenizer,
            template: env,
            token_bytes,
            bos_token,
            eos_token,
            name,
            path: path.to_path_buf(),
            quantized,
            precision: Precision::F32,
            cache,
        })
    }

    /// The same model with the blocks' matmuls in `precision` (resolved for
    /// this CPU): int8 requantises the f32 matrices per block of 64 inputs for
    /// the int8 kernels (AVX-512 VNNI, AVX2 or portable, chosen at run
    /// time). The embedding, the norms and the output head stay f32.
    /// `Auto` leaves weights kept quantised as they are (a model too large
    /// for its f32 copy); int8 asked for by name then is an error.
    pub fn with_precision(self, precision: Precision) -> Result<Self> {
        if precision == Precision::Auto && self.quantized {
            return Ok(self);
        }
        let precision = precision.resolve();
        if precision == self.precision {
            return Ok(self);
        }
        if self.quantized {
            bail!(
                "{}: int8 arithmetic needs the f32 weights, but they were kept quantised (use --weights f32, or a \
                 larger --memory-budget-gib)",
                self.path.display()
            );
        }
        if !self.precision.is_f32() {
            bail!("{}: already in {}", self.path.display(), self.precision.name());
        }
        Ok(LocalLlm { model: self.model.with_precision(precision)?, precision, ..self })
    }

    /// The arithmetic of the blocks' matmuls.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model's name (the GGUF file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the weight matrices stayed quantised.
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    /// The chat template applied to `messages`, ready for the assistant's turn.
    pub fn prompt(&self, messages: &[Message]) -> Result<String> {
        let template = self.template.get_template("chat")?;
        let rendered = template
            .render(minijinja::context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .context("applying the chat template")?;
        Ok(rendered)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, false).map_err(anyhow::Error::msg)?.get_ids().to_vec())
    }

    fn cache_key(&self, messages: &[Message], labels: &[String], decoding: Decoding) -> String {
        let mut key = json!({
            "model": self.name,
            "messages": messages,
            "answer_prefix": ANSWER_PREFIX,
            "decoding": decoding,
            "labels": labels,
        });
        // Quantised matmuls give slightly different answers: cached apart (f32 keys unchanged).
        if self.quantized {
            key["weights"] = json!("quantized");
        } else if !self.precision.is_f32() {
            // The scheme's name, so that a change to it asks anew.
            key["weights"] = json!(crate::kernels::int8::SCHEME);
        }
        key.to_string()
    }

    /// The rendered prompt with the forced answer prefix: the exact text the model continues.
    pub fn prompt_text(&self, messages: &[Message]) -> Result<String> {
        Ok(self.prompt(messages)? + ANSWER_PREFIX)
    }

    /// Answers every question (label-only schema), reusing the key/value
    /// cache of the prompt prefix they share. Never drops an item: a failure
    /// is recorded in its answer.
    pub fn ask_all(
        &self,
        questions: &[Vec<Message>],
        schema: &Value,
        labels: &[String],
        decoding: Decoding,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Answer>> {
        if schema["properties"].get("rationale").is_some() {
            bail!("the embedded model answers only {{\"label\": ...}}; the rationale field needs an endpoint");
        }
        let mut answers: Vec<Option<Answer>> = questions
            .iter()
            .map(|q| {
                let cache = self.cache.as_ref()?.lock().expect("cache lock");
                let hit =
                    cache.get_json::<Completion>(crate::cache::key(self.cache_key(q, labels, decoding).as_bytes()))?;
                Some(answer_from(hit, labels, 1, true))
            })
            .collect();
        progress.inc(answers.iter().filter(|a| a.is_some()).count() as u64);
        let mut prompts = Vec::new();
        for (i, q) in questions.iter().enumerate() {
            if answers[i].is_none() {
                prompts.push((i, self.encode(&self.prompt_text(q)?)?));
            }
        }
        let prefix = self.model.prefix_cache(&shared_prefix(prompts.iter().map(|(_, ids)| ids.as_slice())))?;
        let forced = self.encode(ANSWER_PREFIX)?.len() as u64;
        let candidates = self.candidates(labels)?;
        let per_item = match decoding {
            Decoding::LabelScores => candidates.iter().map(|c| c.len() - 1).sum(),
            Decoding::ConstrainedGreedy => 0,
        };
        for pack in packs(&prompts, prefix.tokens().len(), self.pack_tokens, per_item) {
            let started = Instant::now();
            let suffixes: Vec<&[u32]> = pack.iter().map(|(_, ids)| &ids[prefix.tokens().len()..]).collect();
            let decided = match decoding {
                Decoding::LabelScores => self.score(&prefix, &suffixes, &candidates),
                Decoding::ConstrainedGreedy => self.decide(&prefix, &suffixes, labels),
            };
            let latency = started.elapsed().as_secs_f64();
            let share = latency / pack.len() as f64;
            for ((i, ids), result) in pack.iter().zip(decided) {
                let question = &questions[*i];
                answers[*i] = Some(match result {
                    Ok(decided) => {
                        let usage = Usage {
                            prompt_tokens: ids.len() as u64 - forced,
                            completion_tokens: candidates[decided.label].len() as u64,
                        };
                        let completion = Completion {
                            content: Some(json!({ "label": labels[decided.label] }).to_string()),
                            refusal: None,
                            finish_reason: Some("stop".into()),
                            usage,
                            latency_seconds: latency,
                            compute_seconds: share,
                            label_log_probs: decided.log_probs,
                            tokens: None,
                        };
                        if let Some(cache) = &self.cache {
                            let key = self.cache_key(question, labels, decoding);
                            if let Err(e) = cache
                                .lock()
                                .expect("cache lock")
                                .insert_json(crate::cache::key(key.as_bytes()), &completion)
                            {
                                tracing::warn!("could not cache an answer: {e:#}");
                            }
                        }
                        answer_from(completion, labels, 1, false)
                    }
                    Err(e) => Answer {
                        label: None,
                        content: None,
                        error: Some(AnswerError::Request(format!("{e:#}"))),
                        label_log_probs: None,
                        usage: Usage::default(),
                        latency_seconds: latency,
                        compute_seconds: share,
                        attempts: 1,
                        cached: false,
                    },
                });
            }
            // An interrupted run keeps every pack answered so far.
            if let Some(cache) = &self.cache {
                if let Err(e) = cache.lock().expect("cache lock").flush() {
                    tracing::warn!("could not write the answer cache: {e:#}");
                }
            }
            progress.inc(pack.len() as u64);
        }
        Ok(answers.into_iter().map(|a| a.expect("every question answered")).collect())
    }

    /// The `n` most likely next tokens after `messages` and the forced answer
    /// prefix: over the whole vocabulary (what the model would say freely),
    /// and among the tokens that begin some label (what the schema lets it
    /// say), renormalised there. Token text and probability.
    pub fn next_tokens(&self, messages: &[Message], labels: &[String], n: usize) -> Result<(TokenProbs, TokenProbs)> {
        let ids = self.encode(&self.prompt_text(messages)?)?;
        let (last, context) = ids.split_last().context("an empty prompt")?;
        let prefix = self.model.prefix_cache(context)?;
        let logits = self.model.continuation_logits(&prefix, &[&[*last]])?.squeeze(0)?.to_vec1::<f32>()?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let p: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = p.iter().sum();
        let choice = LabelChoice::new(labels);
        let allowed: Vec<usize> = (0..p.len())
            .filter(|&id| self.token_bytes.get(id).and_then(|b| b.as_deref()).is_some_and(|b| choice.allows(b)))
            .collect();
        let allowed_total: f32 = allowed.iter().map(|&id| p[id]).sum();
        let text = |id: usize| match self.token_bytes.get(id).and_then(|b| b.as_deref()) {
            Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
            None => self.tokenizer.id_to_token(id as u32).unwrap_or_default(),
        };
        let top = |ids: Vec<usize>, norm: f32| {
            let mut ids = ids;
            ids.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            ids.into_iter().take(n).map(|id| (text(id), p[id] / norm)).collect::<Vec<_>>()
        };
        Ok((top((0..p.len()).collect(), total), top(allowed, allowed_total)))
    }

    /// Each label's answer past the forced prefix, `<label>"}`, as tokens.
    pub fn candidates(&self, labels: &[String]) -> Result<Vec<Vec<u32>>> {
        labels.iter().map(|l| self.encode(&answer_rest(l))).collect()
    }

    /// The log-probability of each label's whole answer after each
    /// continuation of the cached prefix (each ending in [`ANSWER_PREFIX`]),
    /// packed into one forward pass; an item that does not fit the context
    /// gets an error of its own.
    fn score(&self, prefix: &PrefixCache, suffixes: &[&[u32]], candidates: &[Vec<u32>]) -> Vec<Result<Decided>> {
        let max = self.model.config.max_position_embeddings;
        let longest = candidates.iter().map(Vec::len).max().unwrap_or(0);
        let fits = |s: &[u32]| prefix.tokens().len() + s.len() + longest <= max;
        let runnable: Vec<&[u32]> = suffixes.iter().copied().filter(|s| fits(s)).collect();
        let mut scored = match self.model.candidate_log_probs(prefix, &runnable, candidates) {
            Ok(scores) => scores.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => runnable.iter().map(|_| Err(anyhow::anyhow!("forward pass failed: {e}"))).collect(),
        }
        .into_iter();
        suffixes
            .iter()
            .map(|s| {
                if !fits(s) {
                    let needed = prefix.tokens().len() + s.len() + longest;
                    bail!("the prompt needs {needed} tokens; the model's context is {max}");
                }
                let log_probs: Vec<f32> = scored.next().expect("one score row per runnable item")?;
                let label = crate::method::argmax(&log_probs);
                Ok(Decided { label, log_probs: Some(log_probs) })
            })
            .collect()
    }

    /// The answers for continuations of the cached prefix (each ending in
    /// [`ANSWER_PREFIX`]), decoded together; a failure stays with its item.
    fn decide(&self, prefix: &PrefixCache, suffixes: &[&[u32]], labels: &[String]) -> Vec<Result<Decided>> {
        let max = self.model.config.max_position_embeddings;
        let mut results: Vec<Option<Result<Decided>>> = suffixes
            .iter()
            .map(|s| {
                let needed = prefix.tokens().len() + s.len() + labels.iter().map(|l| l.len()).max().unwrap_or(0) + 2;
                (needed > max)
                    .then(|| Err(anyhow::anyhow!("the prompt needs {needed} tokens; the model's context is {max}")))
            })
            .collect();
        // Items still deciding: their tokens so far, and the labels still possible.
        let mut open: Vec<(usize, Vec<u32>, LabelChoice)> = (0..suffixes.len())
            .filter(|&i| results[i].is_none())
            .map(|i| (i, suffixes[i].to_vec(), LabelChoice::new(labels)))
            .collect();
        while !open.is_empty() {
            let rows: Vec<&[u32]> = open.iter().map(|(_, ids, _)| ids.as_slice()).collect();
            let scores = match self.model.continuation_logits(prefix, &rows).and_then(|l| l.to_vec2::<f32>()) {
                Ok(s) => s,
                Err(e) => {
                    for (i, _, _) in open.drain(..) {
                        results[i] = Some(Err(anyhow::anyhow!("forward pass failed: {e}")));
                    }
                    break;
                }
            };
            let mut still_open = Vec::new();
            for ((i, mut ids, mut choice), scores) in open.into_iter().zip(scores) {
                let Some(token) = choice.best_token(&scores, &self.token_bytes) else {
                    results[i] = Some(Err(anyhow::anyhow!("no token continues any label")));
                    continue;
                };
                choice.advance(self.token_bytes[token as usize].as_deref().unwrap_or_default());
                match choice.decided() {
                    Some(label) => results[i] = Some(Ok(Decided { label, log_probs: None })),
                    None => {
                        ids.push(token);
                        still_open.push((i, ids, choice));
                    }
                }
            }
            open = still_open;
        }
        results.into_iter().map(|r| r.expect("every item decided")).collect()
    }
}

/// The longest token prefix common to all prompts, leaving at least one
/// token of each to run.
fn shared_prefix<'a>(mut prompts: impl Iterator<Item = &'a [u32]>) -> Vec<u32> {
    let Some(first) = prompts.next() else { return Vec::new() };
    let mut shared = first.len().saturating_sub(1);
    for ids in prompts {
        let common = first.iter().zip(ids).take_while(|(a, b)| a == b).count();
        shared = shared.min(common).min(ids.len().saturating_sub(1));
    }
    first[..shared].to_vec()
}

/// The answer past the forced prefix: the label as a JSON string's content, then `"}`.
fn answer_rest(label: &str) -> String {
    let quoted = serde_json::to_string(label).expect("a string serialises");
    format!("{}}}", &quoted[1..])
}

/// Consecutive prompts grouped so that each group's own tokens (past the
/// shared prefix, plus `per_item` more each) stay within `budget` (a longer
/// prompt goes alone).
fn packs<T>(prompts: &[(usize, Vec<T>)], shared: usize, budget: usize, per_item: usize) -> Vec<&[(usize, Vec<T>)]> {
    let mut groups = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, (_, ids)) in prompts.iter().enumerate() {
        let own = ids.len() - shared + per_item;
        if i > start && tokens + own > budget {
            groups.push(&prompts[start..i]);
            (start, tokens) = (i, 0);
        }
        tokens += own;
    }
    if start < prompts.len() {
        groups.push(&prompts[start..]);
    }
    groups
}

/// The labels still possible while decoding, each as the bytes left to
/// produce: the rest of its JSON string (escaped) and the closing `"}`.
#[derive(Debug, Clone)]
pub struct LabelChoice {
    remaining: Vec<(usize, Vec<u8>)>,
}

impl LabelChoice {
    pub fn new(labels: &[String]) -> Self {
        let remaining = labels.iter().enumerate().map(|(i, l)| (i, answer_rest(l).into_bytes())).collect();
        LabelChoice { remaining }
    }

    fn allows(&self, bytes: &[u8]) -> bool {
        !bytes.is_empty() && self.remaining.iter().any(|(_, r)| r.starts_with(bytes))
    }

    /// The highest-scoring token that keeps some label possible.
    pub fn best_token(&self, scores: &[f32], token_bytes: &[Option<Vec<u8>>]) -> Option<u32> {
        let mut best: Option<(u32, f32)> = None;
        for (id, bytes) in token_bytes.iter().enumerate() {
            let Some(bytes) = bytes else { continue };
            let Some(&score) = scores.get(id) else { break };
            if best.is_none_or(|(_, s)| score > s) && self.allows(bytes) {
                best = Some((id as u32, score));
            }
        }
        best.map(|(id, _)| id)
    }

    /// Consumes a token's bytes.
    pub fn advance(&mut self, bytes: &[u8]) {
        self.remaining.retain(|(_, r)| r.starts_with(bytes));
        for (_, r) in &mut self.remaining {
            r.drain(..bytes.len());
        }
    }

    /// The label, once only one is possible.
    pub fn decided(&self) -> Option<usize> {
        match self.remaining.as_slice() {
            [(label, _)] => Some(*label),
            _ => None,
        }
    }
}

/// The bytes of a byte-level BPE token (GPT-2's printable-character mapping),
/// or `None` if the token is not byte-level text.
fn byte_level_bytes(token: &str) -> Option<Vec<u8>> {
    token.chars().map(byte_of_char).collect()
}

/// Inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in order.
fn byte_of_char(c: char) -> Option<u8> {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let code = c as u32;
    if printable(code) {
        return Some(code as u8);
    }
    let shifted = code.checked_sub(0x100)?;
    (0u32..256).filter(|&b| !printable(b)).nth(shifted as usize).map(|b| b as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec()
    }

    #[test]
    fn byte_level_mapping_inverts_gpt2() {
        assert_eq!(byte_level_bytes("Ġthe"), Some(b" the".to_vec()));
        assert_eq!(byte_level_bytes("Ċ"), Some(b"\n".to_vec()));
        assert_eq!(byte_level_bytes("Sports"), Some(b"Sports".to_vec()));
        assert_eq!(byte_of_char('Ā'), Some(0));
        assert_eq!(byte_of_char('ĭ'), Some(0x8B));
        assert_eq!(byte_of_char('Ń'), Some(0xAD));
        assert_eq!(byte_level_bytes("<|im_end|>").map(|b| b.len()), Some(10));
        assert_eq!(byte_level_bytes("世"), None);
    }

    #[test]
    fn the_choice_follows_the_scores_among_allowed_tokens() {
        let vocab: Vec<Option<Vec<u8>>> = ["S", "Sports", "Sci", "/", "Tech\"}", "World", "xyz", "\"}", "Business\"}"]
            .iter()
            .map(|t| Some(t.as_bytes().to_vec()))
            .collect();
        let mut choice = LabelChoice::new(&labels());
        // "xyz" scores highest but continues no label; "S" is next and keeps two open.
        let token = choice.best_token(&[0.6, 0.5, 0.1, 0.0, 0.0, 0.2, 9.0, 0.0, 0.0, 0.0], &vocab).unwrap();
        assert_eq!(vocab[token as usize].as_deref(), Some(&b"S"[..]));
        choice.advance(b"S");
        assert_eq!(choice.decided(), None);
        // After "S" the rest is "ports\"}" or "ci/Tech\"}": no token of this toy vocabulary fits.
        assert_eq!(choice.best_token(&[1.0; 9], &vocab), None);

        let mut choice = LabelChoice::new(&labels());
        choice.advance(b"Sci");
        assert_eq!(choice.decided(), Some(3));
        let mut choice = LabelChoice::new(&labels());
        choice.advance(b"Business\"}");
        assert_eq!(choice.decided(), Some(2));
    }

    #[test]
    fn prompts_share_their_common_prefix_and_pack_by_budget() {
        let prompts = [vec![1u32, 2, 3, 4], vec![1, 2, 3, 5, 6], vec![1, 2, 9]];
        assert_eq!(shared_prefix(prompts.iter().map(|p| p.as_slice())), vec![1, 2]);
        assert_eq!(shared_prefix([&[1u32, 2][..], &[1, 2]].into_iter()), vec![1]);
        assert!(shared_prefix(std::iter::empty()).is_empty());

        let items: Vec<(usize, Vec<u32>)> =
            [5, 3, 4, 9, 1].iter().enumerate().map(|(i, &n)| (i, vec![0; n + 2])).collect();
        let sizes: Vec<Vec<usize>> =
            packs(&items, 2, 8, 0).iter().map(|g| g.iter().map(|(i, _)| *i).collect()).collect();
        assert_eq!(sizes, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
        let sizes: Vec<Vec<usize>> =
            packs(&items, 2, 10, 0).iter().map(|g| g.iter().map(|(i, _)| *i).collect()).collect();
        assert_eq!(sizes, vec![vec![0, 1], vec![2], vec![3, 4]]);
        // One more token per item (the label branches of label scoring) splits the last pack.
        let sizes: Vec<Vec<usize>> =
            packs(&items, 2, 10, 1).iter().map(|g| g.iter().map(|(i, _)| *i).collect()).collect();
        assert_eq!(sizes, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    #[test]
    fn labels_are_json_escaped() {
        let mut choice = LabelChoice::new(&["say \"hi\"".to_string(), "other".to_string()]);
        assert!(choice.allows(b"say \\\"hi"));
        choice.advance(b"say");
        assert_eq!(choice.decided(), Some(0));
    }
}
