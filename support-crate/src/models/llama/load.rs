//! Weights, configuration and tokenizer of a Llama-family model from
//!
//! - a GGUF file (llama.cpp format, e.g. the SmolLM2 file from
//!   `../shared/models/fetch-models`): tensors dequantised to f32, Q and K
//!   un-permuted from llama.cpp's interleaved rotary layout to the Hugging Face
//!   half-split one, configuration and tokenizer built from the metadata;
//! - a Hugging Face directory (`config.json`, `model.safetensors`,
//!   `tokenizer.json`), including the classifiers this crate saves;
//! - a Hugging Face model id, through hf-hub (honours `HF_HOME`, `HF_HUB_OFFLINE`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::model::LlamaConfig;

pub const DEFAULT_SLM: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

/// A loaded model: f32 weights under Hugging Face names, its configuration
/// and tokenizer, and, for a saved classifier, its label names.
pub struct LoadedModel {
    pub config: LlamaConfig,
    pub weights: HashMap<String, Tensor>,
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
    Ok(LoadedModel { config: hf.llama, weights, tokenizer, labels, source: dir.display().to_string() })
}

/// A llama-architecture GGUF file.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let content =
        gguf_file::Content::read(&mut file).with_context(|| format!("{}: not a GGUF file", path.display()))?;
    let meta = Metadata { content: &content, path };
    let arch = meta.string("general.architecture")?;
    if arch != "llama" {
        bail!("{}: architecture {arch:?}; only llama is supported", path.display());
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
    let mut weights = HashMap::new();
    for name in content.tensor_infos.keys() {
        let Some(hf_name) = hf_name(name) else { continue };
        let t = content
            .tensor(&mut file, name, device)
            .and_then(|q| q.dequantize(device))
            .with_context(|| format!("{}: reading tensor {name}", path.display()))?;
        let t = match hf_name.rsplit('.').nth(1) {
            Some("q_proj") => unpermute(&t, heads)?,
            Some("k_proj") => unpermute(&t, kv_heads)?,
            _ => t,
        };
        weights.insert(hf_name, t);
    }
    let tokenizer = gguf_tokenizer(&meta, tokens)?;
    Ok(LoadedModel { config, weights, tokenizer, labels: None, source: path.display().to_string() })
}

/// llama.cpp tensor names to Hugging Face ones (`None` for tensors a
/// classifier does not use, such as an untied `output.weight`).
fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, name) = rest.split_once('.')?;
    let hf = match name {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// llama.cpp's converter stores Q/K rows permuted for its interleaved rotary
/// embedding: `w.reshape(heads, 2, d/2, in).swapaxes(1, 2)`. This undoes it.
pub fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / heads / 2;
    Ok(w.reshape((heads, half, 2, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))?)
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

/// A `tokenizers` tokenizer from GGUF metadata (`tokenizer.ggml.model = gpt2`:
/// byte-level BPE). The pre-tokenizer depends on `tokenizer.ggml.pre`:
/// SmolLM2 (`smollm`) splits digits one by one before the byte-level split,
/// which generic GGUF conversions miss.
fn gguf_tokenizer(meta: &Metadata, tokens: Vec<String>) -> Result<Tokenizer> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence};
    use tokenizers::AddedToken;

    let kind = meta.string("tokenizer.ggml.model")?;
    if kind != "gpt2" {
        bail!("{}: tokenizer model {kind:?}; only byte-level BPE (gpt2) is supported", meta.path.display());
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
        other => {
            if !matches!(other, "" | "default" | "gpt2") {
                tracing::warn!("GGUF pre-tokenizer {other:?} is not known here; using plain byte-level splitting");
            }
            tokenizer.with_pre_tokenizer(Some(byte_level));
        }
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
