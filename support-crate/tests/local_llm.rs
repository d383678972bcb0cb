//! The embedded LLM on the real SmolLM2-135M-Instruct GGUF: the chat template
//! from the file, answers always inside the schema, packing and the shared
//! prefix not changing any answer, the cache, and a too-long prompt recorded
//! as that item's error. Needs data/models (scripts/setup.sh); with
//! SLM_REQUIRE_MODELS=1 their absence is a failure, not a skip.

use std::path::PathBuf;

use slm_vs_llm::methods::llm::local::LocalLlm;
use slm_vs_llm::methods::llm::prompt::{answer_schema, few_shot, zero_shot, AnswerError, Message};
use slm_vs_llm::Example;

mod common;

fn gguf() -> Option<PathBuf> {
    common::real_model_file("SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn labels() -> Vec<String> {
    ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec()
}

const TEXTS: [&str; 8] = [
    "Yankees beat Red Sox 5-3 as Rivera closes out the ninth inning at Fenway.",
    "Oil prices climb to record high as OPEC weighs output cut; airline shares fall.",
    "NASA's Cassini probe sends back new images of Saturn's moon Titan.",
    "UN Security Council meets on Darfur as refugees flee into Chad.",
    "Microsoft releases security patch for Windows XP after worm spreads.",
    "Federer advances to US Open semifinal with straight-sets win.",
    "Wal-Mart reports quarterly profit up 12 percent on strong sales.",
    "Iraqi officials say elections will go ahead in January despite violence.",
];

fn questions() -> Vec<Vec<Message>> {
    let shots: Vec<Example> = [
        ("Israeli troops raid Gaza camp; talks with Egypt stall.", 0),
        ("Lakers trade Shaq to Miami Heat for three players.", 1),
        ("Stocks end higher as Intel earnings beat forecasts.", 2),
        ("Google unveils desktop search tool for PC files.", 3),
    ]
    .iter()
    .enumerate()
    .map(|(index, (t, l))| Example { index, label: *l, title: String::new(), body: t.to_string(), text: t.to_string() })
    .collect();
    TEXTS.iter().map(|t| few_shot(t, &labels(), &shots)).collect()
}

#[test]
fn prompt_is_the_ggufs_chat_template() {
    let Some(path) = gguf() else { return };
    let llm = LocalLlm::load(&path, None).expect("loads");
    let prompt = llm.prompt(&[Message::system("Be brief."), Message::user("Hi")]).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system message the template adds SmolLM2's own.
    let prompt = llm.prompt(&[Message::user("Hi")]).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "{prompt}");
}

#[test]
fn answers_are_valid_and_independent_of_packing_and_cache() {
    let Some(path) = gguf() else { return };
    let cache = tempfile::tempdir().unwrap();
    let mut llm = LocalLlm::load(&path, Some(cache.path())).expect("loads");
    let schema = answer_schema(&labels(), false);
    let bar = indicatif::ProgressBar::hidden();

    llm.pack_tokens = 1; // one item per forward pass
    let alone = llm.ask_all(&questions(), &schema, &labels(), &bar).unwrap();
    for (a, text) in alone.iter().zip(TEXTS) {
        assert!(a.error.is_none(), "{text}: {:?}", a.error);
        let label = a.label.expect("a label");
        assert_eq!(a.content.as_deref(), Some(format!("{{\"label\":\"{}\"}}", labels()[label]).as_str()));
        assert!(a.usage.prompt_tokens > 100 && a.usage.completion_tokens > 0);
        assert!(!a.cached);
    }

    let fresh = tempfile::tempdir().unwrap();
    let mut packed_llm = LocalLlm::load(&path, Some(fresh.path())).expect("loads");
    packed_llm.pack_tokens = 10_000; // all items in one forward pass
    let packed = packed_llm.ask_all(&questions(), &schema, &labels(), &bar).unwrap();
    let labels_of =
        |answers: &[slm_vs_llm::methods::llm::openai::Answer]| answers.iter().map(|a| a.label).collect::<Vec<_>>();
    assert_eq!(labels_of(&packed), labels_of(&alone));

    // Asked again: every answer from the cache, unchanged.
    let again = llm.ask_all(&questions(), &schema, &labels(), &bar).unwrap();
    assert!(again.iter().all(|a| a.cached));
    assert_eq!(labels_of(&again), labels_of(&alone));

    // Zero-shot prompts share less; the answers are still valid.
    let zero: Vec<Vec<Message>> = TEXTS.iter().map(|t| zero_shot(t, &labels())).collect();
    assert!(llm.ask_all(&zero, &schema, &labels(), &bar).unwrap().iter().all(|a| a.label.is_some()));
}

#[test]
fn a_prompt_longer_than_the_context_is_that_items_error() {
    let Some(path) = gguf() else { return };
    let llm = LocalLlm::load(&path, None).expect("loads");
    let long = "news ".repeat(9000);
    let questions = vec![zero_shot(TEXTS[0], &labels()), zero_shot(&long, &labels())];
    let answers =
        llm.ask_all(&questions, &answer_schema(&labels(), false), &labels(), &indicatif::ProgressBar::hidden());
    let answers = answers.unwrap();
    assert!(answers[0].label.is_some());
    assert!(matches!(&answers[1].error, Some(AnswerError::Request(e)) if e.contains("context")), "{:?}", answers[1]);
    // A rationale is a server feature: asked of the embedded model, a clear error.
    let err =
        llm.ask_all(&questions[..1], &answer_schema(&labels(), true), &labels(), &indicatif::ProgressBar::hidden());
    assert!(err.unwrap_err().to_string().contains("rationale"));
}
