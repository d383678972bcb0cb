//! Where things live, found at run time: the project root, and under it the
//! data, model, cache, checkpoint and results directories; and the run
//! profile (full or smoke) that decides which of them a run writes to.

use std::path::{Path, PathBuf};

/// How big a run is. A smoke run is a minute-scale end-to-end check on a
/// small stratified sample; it writes under `data/smoke/` so it never
/// touches the committed results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Full,
    Smoke,
}

impl Profile {
    /// Smoke when asked (a `--smoke` flag) or when `SMOKE` is set to a true value.
    pub fn from_env_or(smoke_flag: bool) -> Self {
        if smoke_flag || smoke_env() {
            Profile::Smoke
        } else {
            Profile::Full
        }
    }

    /// The profile `SMOKE` asks for (what the notebooks use).
    pub fn from_env() -> Self {
        Self::from_env_or(false)
    }

    pub fn is_smoke(self) -> bool {
        self == Profile::Smoke
    }
}

fn smoke_env() -> bool {
    std::env::var("SMOKE").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no"))
}

/// The project root: `SLM_PROJECT_DIR` if set, else the nearest ancestor of
/// the current directory holding this project's `support-crate/`, else the
/// current directory (an installed binary run in the user's own folder).
pub fn project_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLM_PROJECT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors().find(|dir| dir.join("support-crate/Cargo.toml").is_file()).map(Path::to_path_buf).unwrap_or(cwd)
}

/// `data/` under the project root: data sets, models, caches, checkpoints.
/// `path` relative to the project root when it lies inside it (what a
/// notebook or a record shows: no machine-specific absolute paths), else as is.
pub fn relative(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let root = project_root();
    let root = root.canonicalize().unwrap_or(root);
    let full = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match full.strip_prefix(&root) {
        Ok(inside) => inside.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

pub fn data_dir() -> PathBuf {
    project_root().join("data")
}

/// The models fetched by `scripts/setup.sh` (`data/models`).
pub fn models_dir() -> PathBuf {
    data_dir().join("models")
}

/// The on-disk caches: `SLM_CACHE_DIR`, else `data/cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("SLM_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => data_dir().join("cache"),
    }
}

/// Where run records go: `results/`, or `data/smoke/results` for a smoke run.
pub fn results_dir(profile: Profile) -> PathBuf {
    match profile {
        Profile::Full => project_root().join("results"),
        Profile::Smoke => data_dir().join("smoke/results"),
    }
}

/// Where runs on your own data go, so they never replace the committed AG
/// News results: `data/runs/<train file stem>[/smoke]`.
pub fn own_data_dir(train: &Path, profile: Profile) -> PathBuf {
    let stem = train.file_stem().map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    let dir = data_dir().join("runs").join(slug(&stem));
    if profile.is_smoke() {
        dir.join("smoke")
    } else {
        dir
    }
}

/// Where the report's charts go: `assets/`, or `data/smoke/assets`.
pub fn assets_dir(profile: Profile) -> PathBuf {
    match profile {
        Profile::Full => project_root().join("assets"),
        Profile::Smoke => data_dir().join("smoke/assets"),
    }
}

/// The fine-tuned classifier and its checkpoint (`data/finetuned/<name>`,
/// `-smoke` appended for smoke runs so the two never share a checkpoint).
pub fn finetuned_dir(name: &str, profile: Profile) -> PathBuf {
    let name = if profile.is_smoke() { format!("{name}-smoke") } else { name.to_string() };
    data_dir().join("finetuned").join(name)
}

/// A file-name form of a name: ASCII letters and digits lower-cased, every
/// other character `_` ("SmolLM2-135M-Instruct.Q4_1" → "smollm2_135m_instruct_q4_1").
pub fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_root_is_found_from_a_subdirectory() {
        // Tests run in support-crate/, one level below the root.
        let root = project_root();
        assert!(root.join("support-crate/Cargo.toml").is_file(), "{}", root.display());
        assert_eq!(results_dir(Profile::Full), root.join("results"));
        assert_eq!(finetuned_dir("x", Profile::Smoke), root.join("data/finetuned/x-smoke"));
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("sentence-transformers/all-MiniLM-L6-v2"), "sentence_transformers_all_minilm_l6_v2");
        assert_eq!(slug("SmolLM2-135M-Instruct.Q4_1"), "smollm2_135m_instruct_q4_1");
    }
}
