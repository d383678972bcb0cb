//! A model that is not on disk and cannot be downloaded is reported with the
//! command that fetches it, not only the network's error.

#[test]
fn a_model_that_cannot_be_had_names_the_command_that_fetches_it() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HOME", cache.path());
    // Nothing listens here: the download fails at once, as without a network.
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
    std::env::remove_var("HF_HUB_OFFLINE");
    let err = slm_vs_llm::hub::model_files("sentence-transformers/all-MiniLM-L6-v2", &["config.json"]).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("bash scripts/setup.sh") && message.contains("no network?"), "{message}");

    let err = slm_vs_llm::hub::model_files("./no/such/model", &["config.json"]).unwrap_err();
    assert!(format!("{err:#}").contains("bash scripts/setup.sh"), "{err:#}");

    std::env::set_var("HF_HUB_OFFLINE", "1");
    let err = slm_vs_llm::hub::model_files("sentence-transformers/all-MiniLM-L6-v2", &["config.json"]).unwrap_err();
    assert!(format!("{err:#}").contains("bash scripts/setup.sh"), "{err:#}");
}
