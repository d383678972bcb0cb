//! Weights, configuration and tokenizer of a Llama-family model from
//!
//! - a GGUF file (llama.cpp format, e.g. the SmolLM2 file from
//!   `../shared/models/fetch-models`): tensors dequantised to f32, or the
//!   weight matrices kept in their quantised blocks when the f32 copy would
//!   not fit a memory budget ([`WeightFormat`]); Q and K un-permuted from
//!   llama.cpp's interleaved rotary layout to the Hugging Face half-split
//!   one; configuration and tokenizer built from the metadata;
//! - a Hugging Face directory (`config.json`, `model.safetensors`,
//!   `tokenizer.json`), including the classifiers this crate saves;
//! - a Hugging Face model id, through hf-hub (honours `HF_HOME`, `HF_HUB_OFFLINE`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::model::LlamaConfig;

pub const DEFAULT_SLM: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

/// A loaded model: f32 weights under Hugging Face names, its configuration
/// and tokenizer, and, for a saved classifier, its label names.
pub struct LoadedModel {
    pub config: LlamaConfig,
    pub weights: HashMap<String, Tensor>,
    /// Matrices kept in their GGUF blocks (empty unless asked for): inference only.
    pub quantized: HashMap<String, QTensor>,
    pub tokenizer: Tokenizer,
    /// `id2label` of a saved classifier, in label order.
    pub labels: Option<Vec<String>>,
    /// Where it came from (path or hub id), for results files.
    pub source: String,
}

/// The project's GGUF copy of SmolLM2-135M-Instruct (`data/models`, fetched
/// by `scripts/setup.sh`) when present, else its Hugging Face id.
pub fn default_model() -> String {
    match project_gguf() {
        Some(p) => p.canonicalize().unwrap_or(p).display().to_string(),
        None => DEFAULT_SLM.to_string(),
    }
}

/// The project's SmolLM2-135M-Instruct GGUF in `data/models`, if fetched.
pub fn project_gguf() -> Option<PathBuf> {
    find_gguf(&crate::paths::models_dir().join("SmolLM2-135M-Instruct"))
}

fn find_gguf(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    files.into_iter().next()
}

/// Loads `model`: a `.gguf` file, a directory (Hugging Face layout, or one
/// holding a `.gguf`), or a Hugging Face id.
pub fn load(model: &str, device: &Device) -> Result<LoadedModel> {
    let path = Path::new(model);
    if path.is_file() {
        return load_gguf(path, device);
    }
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return load_hf_dir(path, device);
        }
        if let Some(gguf) = find_gguf(path) {
            return load_gguf(&gguf, device);
        }
        bail!("{}: neither a Hugging Face model directory (config.json) nor one holding a .gguf file", path.display());
    }
    let files =
        crate::hub::model_files(model, &["config.json", "tokenizer.json", "model.safetensors"]).with_context(|| {
            format!(
                "cannot get model {model}. `bash scripts/setup.sh` fetches SmolLM2-135M-Instruct (GGUF) to \
                 data/models; or pass --model with a .gguf file or a Hugging Face directory"
            )
        })?;
    let dir = files[0].parent().context("hub file without a directory")?;
    load_hf_dir(dir, device).map(|mut m| {
        m.source = model.to_string();
        m
    })
}

#[derive(Deserialize)]
struct HfConfig {
    #[serde(flatten)]
    llama: LlamaConfig,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    id2label: Option<HashMap<String, String>>,
}

/// A Hugging Face directory: `config.json`, `model.safetensors`, `tokenizer.json`.
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let hf: HfConfig =
        serde_json::from_str(&text).with_context(|| format!("{}: not a Llama config", config_path.display()))?;
    if let Some(t) = hf.model_type.as_deref().filter(|t| *t != "llama") {
        bail!("{}: model_type {t:?}; only Llama-family models are supported", config_path.display());
    }
    let weights_path = dir.join("model.safetensors");
    let weights = candle_core::safetensors::load(&weights_path, device)
        .with_context(|| format!("reading {}", weights_path.display()))?;
    let weights = weights.into_iter().map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?))).collect::<Result<_>>()?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer =
        Tokenizer::from_file(&tokenizer_path).map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
    let labels = match hf.id2label {
        None => None,
        Some(map) => Some(
            (0..map.len())
                .map(|i| {
                    map.get(&i.to_string())
                        .cloned()
                        .with_context(|| format!("{}: id2label lacks {i}", config_path.display()))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let source = dir.display().to_string();
    Ok(LoadedModel { config: hf.llama, weights, quantized: HashMap::new(), tokenizer, labels, source })
}

/// How a GGUF file's weight matrices are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// f32 when that copy fits the memory budget, else quantised.
    #[default]
    Auto,
    /// Dequantised to f32: the fastest matmuls on CPU for prompt processing,
    /// 4 bytes a weight.
    F32,
    /// Kept in the file's quantised blocks, about 0.5-1 byte a weight, and
    /// dequantised a slice at a time during a pass; inference only.
    Quantized,
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightFormat::Auto => "auto",
            WeightFormat::F32 => "f32",
            WeightFormat::Quantized => "quantized",
        })
    }
}

/// Half of the memory available now (`MemAvailable`), or 8 GiB where it cannot be read.
pub fn default_memory_budget() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    available.map_or(8 << 30, |bytes| bytes / 2)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// A llama-architecture GGUF file, dequantised to f32.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel> {
    load_gguf_with(path, device, WeightFormat::F32, u64::MAX)
}

/// A llama-architecture GGUF file, its matrices in `format`: `Auto` keeps
/// them quantised when their f32 copy would take more than `budget` bytes.
/// The choice is logged.
pub fn load_gguf_with(path: &Path, device: &Device, format: WeightFormat, budget: u64) -> Result<LoadedModel> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let content =
        gguf_file::Content::read(&mut file).with_context(|| format!("{}: not a GGUF file", path.display()))?;
    let meta = Metadata { content: &content, path };
    let arch = meta.string("general.architecture")?;
    if arch != "llama" {
        bail!(
            "{}: architecture {arch:?} is not supported: only llama (SmolLM2, Llama 2/3.x, Mistral 7B in llama.cpp's \
             llama layout); qwen2 needs attention biases, which this model does not have",
            path.display()
        );
    }
    let heads = meta.u32("llama.attention.head_count")? as usize;
    let kv_heads = meta.u32("llama.attention.head_count_kv").map(|v| v as usize).unwrap_or(heads);
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let mut config = LlamaConfig {
        vocab_size: tokens.len(),
        hidden_size: meta.u32("llama.embedding_length")? as usize,
        intermediate_size: meta.u32("llama.feed_forward_length")? as usize,
        num_hidden_layers: meta.u32("llama.block_count")? as usize,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        rope_theta: meta.f32("llama.rope.freq_base").map(f64::from).unwrap_or(10_000.0),
        rms_norm_eps: meta.f32("llama.attention.layer_norm_rms_epsilon")? as f64,
        max_position_embeddings: meta.u32("llama.context_length").map(|v| v as usize).unwrap_or(2048),
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
    };
    config.max_position_embeddings = config.max_position_embeddings.min(8192);
    let used: Vec<(&String, String)> =
        content.tensor_infos.keys().filter_map(|name| Some((name, hf_name(name)?))).collect();
    let f32_bytes: u64 = used.iter().map(|(n, _)| 4 * content.tensor_infos[*n].shape.elem_count() as u64).sum();
    let file_bytes: u64 = used
        .iter()
        .map(|(n, _)| {
            let info = &content.tensor_infos[*n];
            (info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size()) as u64
        })
        .sum();
    let quantize = match format {
        WeightFormat::F32 => false,
        WeightFormat::Quantized => true,
        WeightFormat::Auto => f32_bytes > budget,
    };
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    if quantize {
        tracing::info!(
            "{file_name}: weight matrices kept quantised ({:.2} GiB; in f32 {:.2} GiB, memory budget {:.2} GiB, \
             --weights {format})",
            gib(file_bytes),
            gib(f32_bytes),
            gib(budget.min(u64::MAX / 2))
        );
        if file_bytes > budget {
            tracing::warn!("{file_name}: even quantised, {:.2} GiB is over the memory budget", gib(file_bytes));
        }
    } else {
        tracing::info!("{file_name}: weights dequantised to f32 ({:.2} GiB, --weights {format})", gib(f32_bytes));
    }
    let mut weights = HashMap::new();
    let mut quantized = HashMap::new();
    for (name, hf_name) in used {
        let q = content
            .tensor(&mut file, name, device)
            .with_context(|| format!("{}: reading tensor {name}", path.display()))?;
        let rope_heads = match hf_name.rsplit('.').nth(1) {
            Some("q_proj") => Some(heads),
            Some("k_proj") => Some(kv_heads),
            _ => None,
        };
        let is_float = matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        if quantize && q.shape().rank() == 2 && !is_float {
            let q = match rope_heads {
                Some(h) => unpermute_rows(&q, h)?,
                None => q,
            };
            quantized.insert(hf_name, q);
            continue;
        }
        let t = q.dequantize(device).with_context(|| format!("{}: dequantising {name}", path.display()))?;
        let t = match rope_heads {
            Some(h) => unpermute(&t, h)?,
            None => t,
        };
        weights.insert(hf_name, t);
    }
    let tokenizer = gguf_tokenizer(&meta, tokens)?;
    Ok(LoadedModel { config, weights, quantized, tokenizer, labels: None, source: path.display().to_string() })
}

/// Whole-model tensors: llama.cpp's name and the Hugging Face one.
const MODEL_TENSORS: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Per-layer tensors (`blk.{i}.` / `model.layers.{i}.`): llama.cpp's name and the Hugging Face one.
const LAYER_TENSORS: [(&str, &str); 9] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// llama.cpp tensor names to Hugging Face ones (`None` for tensors the model
/// does not use, such as precomputed rotary tables).
fn hf_name(gguf: &str) -> Option<String> {
    if let Some((_, hf)) = MODEL_TENSORS.iter().find(|(g, _)| *g == gguf) {
        return Some(hf.to_string());
    }
    let (layer, name) = gguf.strip_prefix("blk.")?.split_once('.')?;
    let (_, hf) = LAYER_TENSORS.iter().find(|(g, _)| *g == name)?;
    Some(format!("model.layers.{layer}.{hf}"))
}

/// The inverse of [`hf_name`]: the name llama.cpp's converter gives a
/// Hugging Face tensor (for tests and exports).
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((gguf, _)) = MODEL_TENSORS.iter().find(|(_, h)| *h == hf) {
        return Some(gguf.to_string());
    }
    let (layer, name) = hf.strip_prefix("model.layers.")?.split_once('.')?;
    let (gguf, _) = LAYER_TENSORS.iter().find(|(_, h)| *h == name)?;
    Some(format!("blk.{layer}.{gguf}"))
}

/// llama.cpp's converter stores Q/K rows permuted for its interleaved rotary
/// embedding: `w.reshape(heads, 2, d/2, in).swapaxes(1, 2)`. This undoes it.
pub fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / heads / 2;
    Ok(w.reshape((heads, half, 2, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))?)
}

/// [`unpermute`] on a quantised matrix: whole rows (each a run of blocks
/// along the input dimension) are moved, nothing is requantised.
pub fn unpermute_rows(q: &QTensor, heads: usize) -> Result<QTensor> {
    let (out, inp) = q.shape().dims2()?;
    let dtype = q.dtype();
    let row_bytes = inp / dtype.block_size() * dtype.type_size();
    let data = q.data()?;
    let half = out / heads / 2;
    let mut rows = Vec::with_capacity(data.len());
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..half {
                let old = h * 2 * half + i * 2 + j;
                rows.extend_from_slice(&data[old * row_bytes..(old + 1) * row_bytes]);
            }
        }
    }
    Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, &rows, vec![out, inp], &q.device())?)
}

/// The inverse of [`unpermute`]: Hugging Face layout to llama.cpp's (for tests and exports).
pub fn permute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / heads / 2;
    Ok(w.reshape((heads, 2, half, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))?)
}

struct Metadata<'a> {
    content: &'a gguf_file::Content,
    path: &'a Path,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Result<&gguf_file::Value> {
        self.content.metadata.get(key).with_context(|| format!("{}: GGUF metadata lacks {key}", self.path.display()))
    }
    fn u32(&self, key: &str) -> Result<u32> {
        Ok(self.get(key)?.to_u32()?)
    }
    fn f32(&self, key: &str) -> Result<f32> {
        Ok(self.get(key)?.to_f32()?)
    }
    fn string(&self, key: &str) -> Result<String> {
        Ok(self.get(key)?.to_string()?.clone())
    }
    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.get(key)?.to_vec()?.iter().map(|v| Ok(v.to_string()?.clone())).collect()
    }
}

/// Llama 3's pre-tokenizer pattern (its `tokenizer.json`, llama.cpp's `llama-bpe`).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A `tokenizers` tokenizer from GGUF metadata (`tokenizer.ggml.model = gpt2`:
/// byte-level BPE). The pre-tokenizer depends on `tokenizer.ggml.pre`:
/// SmolLM2 (`smollm`) splits digits one by one before the byte-level split,
/// which generic GGUF conversions miss.
fn gguf_tokenizer(meta: &Metadata, tokens: Vec<String>) -> Result<Tokenizer> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence};
    use tokenizers::AddedToken;
    use tokenizers::SplitDelimiterBehavior;

    let kind = meta.string("tokenizer.ggml.model")?;
    if kind != "gpt2" {
        bail!(
            "{}: tokenizer model {kind:?} is not supported (\"llama\" is SentencePiece, as in Mistral 7B and \
             Llama 2); only byte-level BPE (\"gpt2\": SmolLM2, Llama 3.x) is",
            meta.path.display()
        );
    }
    let merges: Vec<(String, String)> = meta
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect::<Option<_>>()
        .with_context(|| format!("{}: a merge without a space", meta.path.display()))?;
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: building the BPE tokenizer: {e}", meta.path.display()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = meta.string("tokenizer.ggml.pre").unwrap_or_default();
    match pre.as_str() {
        "smollm" => {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![Digits::new(true).into(), byte_level.into()])));
        }
        "llama-bpe" => {
            // Llama 3's tokenizer.json: split by this pattern, then byte-level without its own regex.
            let split = Split::new(SplitPattern::Regex(LLAMA3_PATTERN.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| anyhow::anyhow!("the Llama 3 pre-tokenizer pattern: {e}"))?;
            let bytes = ByteLevel::new(false, true, false);
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![split.into(), bytes.into()])));
        }
        "" | "default" | "gpt2" => {
            tokenizer.with_pre_tokenizer(Some(byte_level));
        }
        other => bail!(
            "{}: GGUF pre-tokenizer {other:?} is not supported (supported: smollm, llama-bpe, gpt2/default); \
             splitting text another way would give the model token ids it was not trained on",
            meta.path.display()
        ),
    }
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.with_post_processor(Some(ByteLevel::new(false, true, true)));
    // Control tokens (type 3) such as <|im_start|> are matched whole.
    if let Ok(types) = meta.get("tokenizer.ggml.token_type").and_then(|v| Ok(v.to_vec()?.clone())) {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| t.to_i32().is_ok_and(|t| t == 3))
            .map(|(_, tok)| AddedToken::from(tok.clone(), true))
            .collect();
        tokenizer.add_special_tokens(special).map_err(|e| anyhow::anyhow!("adding special tokens: {e}"))?;
    }
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::llama::model::{random_weights, Llama};
    use candle_core::quantized::gguf_file::Value;

    /// A tiny model whose matrices hold whole Q8_0 blocks (32 columns).
    fn config(tied: bool) -> LlamaConfig {
        LlamaConfig { hidden_size: 64, intermediate_size: 96, tie_word_embeddings: tied, ..LlamaConfig::tiny() }
    }

    /// Random weights under Hugging Face names (with `lm_head.weight` when untied).
    fn hf_weights(cfg: &LlamaConfig) -> HashMap<String, Tensor> {
        let mut w = random_weights(cfg, 7, &Device::Cpu).unwrap();
        if !cfg.tie_word_embeddings {
            let head = crate::models::llama::model::seeded_normal(&[64, 64], 0.2, 99, &Device::Cpu).unwrap();
            w.insert("lm_head.weight".into(), head);
        }
        w
    }

    /// Writes `weights` as a llama.cpp GGUF: names and Q/K layout as llama.cpp's
    /// converter writes them, matrices in `dtype`, a 64-token byte-level vocabulary.
    fn write_gguf(
        path: &Path,
        cfg: &LlamaConfig,
        weights: &HashMap<String, Tensor>,
        dtype: GgmlDType,
        meta: &[(&str, Value)],
    ) {
        let tensors: Vec<(String, QTensor)> = weights
            .iter()
            .map(|(name, t)| {
                let t = if name.ends_with("q_proj.weight") {
                    permute(t, cfg.num_attention_heads).unwrap()
                } else if name.ends_with("k_proj.weight") {
                    permute(t, cfg.num_key_value_heads).unwrap()
                } else {
                    t.clone()
                };
                let dtype = if t.rank() == 2 { dtype } else { GgmlDType::F32 };
                (gguf_name(name).unwrap(), QTensor::quantize(&t, dtype).unwrap())
            })
            .collect();
        // Byte-level tokens: 63 printable characters and one merge of the first two.
        let mut tokens: Vec<Value> = (33u8..96).map(|b| Value::String((b as char).to_string())).collect();
        tokens.push(Value::String("!\"".into()));
        let base = [
            ("general.architecture", Value::String("llama".into())),
            ("llama.attention.head_count", Value::U32(cfg.num_attention_heads as u32)),
            ("llama.attention.head_count_kv", Value::U32(cfg.num_key_value_heads as u32)),
            ("llama.embedding_length", Value::U32(cfg.hidden_size as u32)),
            ("llama.feed_forward_length", Value::U32(cfg.intermediate_size as u32)),
            ("llama.block_count", Value::U32(cfg.num_hidden_layers as u32)),
            ("llama.rope.freq_base", Value::F32(cfg.rope_theta as f32)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(cfg.rms_norm_eps as f32)),
            ("llama.context_length", Value::U32(cfg.max_position_embeddings as u32)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            ("tokenizer.ggml.tokens", Value::Array(tokens)),
            ("tokenizer.ggml.merges", Value::Array(vec![Value::String("! \"".into())])),
        ];
        let mut metadata: Vec<(&str, &Value)> =
            base.iter().filter(|(k, _)| !meta.iter().any(|(m, _)| m == k)).map(|(k, v)| (*k, v)).collect();
        metadata.extend(meta.iter().map(|(k, v)| (*k, v)));
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
        let mut file = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut file, &metadata, &tensors).unwrap();
    }

    fn logits(model: &Llama) -> Vec<f32> {
        let ids = Tensor::new(&[[3u32, 17, 42, 5, 9, 60, 1, 33]], &Device::Cpu).unwrap();
        model.lm_logits(&ids, &[8]).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    }

    fn model(path: &Path, format: WeightFormat, budget: u64) -> Llama {
        let loaded = load_gguf_with(path, &Device::Cpu, format, budget).unwrap();
        Llama::from_quantized(loaded.config, loaded.weights, loaded.quantized).unwrap()
    }

    #[test]
    fn quantised_matrices_give_the_f32_models_logits() {
        for tied in [true, false] {
            let cfg = config(tied);
            let weights = hf_weights(&cfg);
            let reference = logits(
                &Llama::from_weights(cfg.clone(), weights.clone(), None, crate::models::llama::Trainable::NONE, 0)
                    .unwrap(),
            );
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tiny.gguf");
            write_gguf(&path, &cfg, &weights, GgmlDType::Q8_0, &[]);
            let f32_model = model(&path, WeightFormat::F32, u64::MAX);
            let quantized = model(&path, WeightFormat::Quantized, u64::MAX);
            assert!(!f32_model.is_quantized() && quantized.is_quantized());
            // Q8_0 weights (and, in QMatMul, Q8_0 activations) against the original f32 weights.
            let (f, q) = (logits(&f32_model), logits(&quantized));
            assert!(cosine(&f, &reference) > 0.999, "tied {tied}: f32 path {}", cosine(&f, &reference));
            assert!(cosine(&q, &reference) > 0.999, "tied {tied}: quantised path {}", cosine(&q, &reference));
        }
    }

    #[test]
    fn auto_keeps_the_weights_quantised_when_f32_would_not_fit_the_budget() {
        let cfg = config(true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_gguf(&path, &cfg, &hf_weights(&cfg), GgmlDType::Q8_0, &[]);
        assert!(!model(&path, WeightFormat::Auto, 1 << 30).is_quantized());
        assert!(model(&path, WeightFormat::Auto, 1 << 10).is_quantized());
    }

    #[test]
    fn quantised_rows_are_unpermuted_like_f32_ones() {
        let w = crate::models::llama::model::seeded_normal(&[16, 64], 1.0, 3, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let by_rows = unpermute_rows(&q, 2).unwrap().dequantize(&Device::Cpu).unwrap();
        let by_tensor = unpermute(&q.dequantize(&Device::Cpu).unwrap(), 2).unwrap();
        let diff = (by_rows - by_tensor).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn unsupported_files_say_what_is_unsupported() {
        let cfg = config(true);
        let weights = hf_weights(&cfg);
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (("general.architecture", Value::String("qwen2".into())), "\"qwen2\" is not supported"),
            (("tokenizer.ggml.pre", Value::String("tekken".into())), "pre-tokenizer \"tekken\" is not supported"),
            (("tokenizer.ggml.model", Value::String("llama".into())), "SentencePiece"),
        ];
        for (i, (meta, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("bad{i}.gguf"));
            write_gguf(&path, &cfg, &weights, GgmlDType::Q8_0, &[meta]);
            let err = format!("{:#}", load_gguf(&path, &Device::Cpu).err().expect("an error"));
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn llama3_text_is_split_as_llama3_splits_it() {
        let cfg = config(true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llama3.gguf");
        write_gguf(
            &path,
            &cfg,
            &hf_weights(&cfg),
            GgmlDType::Q8_0,
            &[("tokenizer.ggml.pre", Value::String("llama-bpe".into()))],
        );
        let loaded = load_gguf(&path, &Device::Cpu).unwrap();
        let pre = loaded.tokenizer.get_pre_tokenizer().unwrap();
        use tokenizers::PreTokenizer;
        let mut text = tokenizers::PreTokenizedString::from("Hello 12345 world's");
        pre.pre_tokenize(&mut text).unwrap();
        let pieces: Vec<String> = text
            .get_splits(tokenizers::OffsetReferential::Original, tokenizers::OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .collect();
        // Digits in runs of at most three; the space joins the next word (byte-level "Ġ").
        assert_eq!(pieces, ["Hello", "Ġ", "123", "45", "Ġworld", "'s"]);
    }
}
