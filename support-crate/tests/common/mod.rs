//! Shared by the tests that need the real weights in data/models (fetched by
//! scripts/setup.sh).

use std::path::PathBuf;

/// `data/models/<relative>` if that file exists; otherwise the test is
/// skipped (`None`, with a message), or fails when SLM_REQUIRE_MODELS is set.
pub fn real_model_file(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models").join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(std::env::var_os("SLM_REQUIRE_MODELS").is_none(), "{} is missing: run scripts/setup.sh", path.display());
    eprintln!("skipped: {} not found (run scripts/setup.sh)", path.display());
    None
}
