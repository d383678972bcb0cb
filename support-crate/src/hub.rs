//! Models from the Hugging Face Hub or a local directory, following the
//! Hub's conventions (`HF_HOME` for the cache, `HF_HUB_OFFLINE` for no
//! network), and the project's own copies in `data/models`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// True when `HF_HUB_OFFLINE` asks for no network access (Hugging Face convention).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The project's copy of a model (`data/models/<name>`, fetched by
/// `scripts/setup.sh`) when it holds `file`, else the Hugging Face id.
pub fn local_or_hub(name: &str, file: &str, hub_id: &str) -> String {
    let local = crate::paths::models_dir().join(name);
    if local.join(file).is_file() {
        local.canonicalize().unwrap_or(local).display().to_string()
    } else {
        hub_id.to_string()
    }
}

/// The files of a Hugging Face model: from a local directory, else from
/// the hf-hub cache or a download.
pub fn model_files(model: &str, files: &[&str]) -> Result<Vec<PathBuf>> {
    let dir = Path::new(model);
    if dir.is_dir() {
        return files
            .iter()
            .map(|f| {
                let p = dir.join(f);
                if p.is_file() {
                    Ok(p)
                } else {
                    bail!("{}: missing {f}; a model directory needs {}", dir.display(), files.join(", "))
                }
            })
            .collect();
    }
    if model.starts_with('/') || model.starts_with('.') {
        bail!("model directory {model} not found. {HOW_TO_FETCH_MODELS} Online, give a Hugging Face id instead.");
    }
    use hf_hub::{api::sync::ApiBuilder, Cache, Repo};
    let repo = Repo::model(model.to_string());
    if offline() {
        let cache = Cache::from_env().repo(repo);
        return files
            .iter()
            .map(|f| {
                cache.get(f).with_context(|| {
                    format!("HF_HUB_OFFLINE is set and {model}/{f} is not in the hf-hub cache. {HOW_TO_FETCH_MODELS}")
                })
            })
            .collect();
    }
    let api = ApiBuilder::from_env().with_progress(true).build()?.repo(repo);
    files
        .iter()
        .map(|f| {
            api.get(f).with_context(|| {
                format!("downloading {model}/{f} from the Hugging Face Hub failed (no network?). {HOW_TO_FETCH_MODELS}")
            })
        })
        .collect()
}

/// The one command that puts the default models where the project finds
/// them without a network, appended to every "model not found" error.
pub const HOW_TO_FETCH_MODELS: &str = "`bash scripts/setup.sh` fetches SmolLM2-135M-Instruct and \
all-MiniLM-L6-v2 to data/models (from ../shared/models/fetch-models where that exists), or pass a local model \
directory or file with --model / --gguf.";
