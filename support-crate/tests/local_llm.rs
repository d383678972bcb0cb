//! The embedded LLM on the real SmolLM2-135M-Instruct GGUF: the chat template
//! from the file, answers always inside the schema under both decodings,
//! packing and the shared prefix not changing any answer, label scores that
//! agree with the label, the cache, and a too-long prompt recorded as that
//! item's error. Needs data/models (scripts/setup.sh); with
//! SLM_REQUIRE_MODELS=1 their absence is a failure, not a skip.

use std::path::PathBuf;

use slm_vs_llm::data::Task;
use slm_vs_llm::methods::llm::local::{Decoding, LocalLlm, ANSWER_PREFIX};
use slm_vs_llm::methods::llm::prompt::{answer_schema, few_shot, zero_shot, AnswerError, Message};
use slm_vs_llm::Example;

mod common;

fn gguf() -> Option<PathBuf> {
    common::real_model_file("SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The real AG News in data/ag_news; `None` (a skip) when it is absent,
/// a failure when SLM_REQUIRE_MODELS is set.
fn real_ag_news() -> Option<slm_vs_llm::Dataset> {
    use slm_vs_llm::data::{load, DataConfig, Source};
    let data_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/ag_news");
    let Ok(source) = Source::in_directory(&data_dir, None) else {
        assert!(std::env::var_os("SLM_REQUIRE_MODELS").is_none(), "no AG News in {}", data_dir.display());
        return None;
    };
    Some(load(&source, &DataConfig::default()).expect("AG News loads"))
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
    TEXTS.iter().map(|t| few_shot(&Task::ag_news(), t, &labels(), &shots)).collect()
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
fn the_forced_answer_prefix_is_the_demonstrations_format() {
    let Some(path) = gguf() else { return };
    let llm = LocalLlm::load(&path, None).expect("loads");
    let prompt = llm.prompt_text(&questions()[0]).unwrap();
    // The demonstrations' answers begin exactly as the forced prefix.
    assert!(prompt.contains(&format!("{ANSWER_PREFIX}Sports\"}}")), "{prompt}");
    assert!(prompt.ends_with(&format!("<|im_start|>assistant\n{ANSWER_PREFIX}")), "{prompt}");
}

#[test]
fn answers_are_valid_and_independent_of_packing_and_cache() {
    for decoding in [Decoding::LabelScores, Decoding::ConstrainedGreedy] {
        check_decoding(decoding);
    }
}

fn check_decoding(decoding: Decoding) {
    let Some(path) = gguf() else { return };
    let cache = tempfile::tempdir().unwrap();
    let mut llm = LocalLlm::load(&path, Some(cache.path())).expect("loads");
    let schema = answer_schema(&labels(), false);
    let bar = indicatif::ProgressBar::hidden();

    llm.pack_tokens = 1; // one item per forward pass
    let alone = llm.ask_all(&questions(), &schema, &labels(), decoding, &bar).unwrap();
    for (a, text) in alone.iter().zip(TEXTS) {
        assert!(a.error.is_none(), "{text}: {:?}", a.error);
        let label = a.label.expect("a label");
        assert_eq!(a.content.as_deref(), Some(format!("{{\"label\":\"{}\"}}", labels()[label]).as_str()));
        assert!(a.usage.prompt_tokens > 100 && a.usage.completion_tokens > 0);
        assert!(!a.cached);
        match decoding {
            Decoding::LabelScores => {
                let lp = a.label_log_probs.as_ref().expect("label scores");
                assert_eq!(lp.len(), 4);
                assert!(lp.iter().all(|&l| l < 0.0 && l.is_finite()), "{lp:?}");
                assert!(lp.iter().all(|&l| l <= lp[label]), "the label is the most likely: {lp:?}");
            }
            Decoding::ConstrainedGreedy => assert!(a.label_log_probs.is_none()),
        }
    }

    let fresh = tempfile::tempdir().unwrap();
    let mut packed_llm = LocalLlm::load(&path, Some(fresh.path())).expect("loads");
    packed_llm.pack_tokens = 10_000; // all items in one forward pass
    let packed = packed_llm.ask_all(&questions(), &schema, &labels(), decoding, &bar).unwrap();
    let labels_of =
        |answers: &[slm_vs_llm::methods::llm::openai::Answer]| answers.iter().map(|a| a.label).collect::<Vec<_>>();
    assert_eq!(labels_of(&packed), labels_of(&alone));
    for (p, a) in packed.iter().zip(&alone) {
        if let (Some(p), Some(a)) = (&p.label_log_probs, &a.label_log_probs) {
            assert!(p.iter().zip(a).all(|(x, y)| (x - y).abs() < 1e-3), "{p:?} vs {a:?}");
        }
    }

    // Asked again: every answer from the cache, unchanged, scores included.
    let again = llm.ask_all(&questions(), &schema, &labels(), decoding, &bar).unwrap();
    assert!(again.iter().all(|a| a.cached));
    assert_eq!(labels_of(&again), labels_of(&alone));
    assert_eq!(
        again.iter().map(|a| a.label_log_probs.clone()).collect::<Vec<_>>(),
        alone.iter().map(|a| a.label_log_probs.clone()).collect::<Vec<_>>()
    );

    // Zero-shot prompts share less; the answers are still valid.
    let zero: Vec<Vec<Message>> = TEXTS.iter().map(|t| zero_shot(&Task::ag_news(), t, &labels())).collect();
    assert!(llm.ask_all(&zero, &schema, &labels(), decoding, &bar).unwrap().iter().all(|a| a.label.is_some()));
}

#[test]
fn a_prompt_longer_than_the_context_is_that_items_error() {
    let Some(path) = gguf() else { return };
    let llm = LocalLlm::load(&path, None).expect("loads");
    let long = "news ".repeat(9000);
    let questions =
        vec![zero_shot(&Task::ag_news(), TEXTS[0], &labels()), zero_shot(&Task::ag_news(), &long, &labels())];
    let bar = indicatif::ProgressBar::hidden();
    for decoding in [Decoding::LabelScores, Decoding::ConstrainedGreedy] {
        let answers = llm.ask_all(&questions, &answer_schema(&labels(), false), &labels(), decoding, &bar).unwrap();
        assert!(answers[0].label.is_some());
        assert!(
            matches!(&answers[1].error, Some(AnswerError::Request(e)) if e.contains("context")),
            "{:?}",
            answers[1]
        );
    }
    // A rationale is a server feature: asked of the embedded model, a clear error.
    let err = llm.ask_all(&questions[..1], &answer_schema(&labels(), true), &labels(), Decoding::LabelScores, &bar);
    assert!(err.unwrap_err().to_string().contains("rationale"));
}

#[test]
fn retrieved_demonstrations_come_from_train_only_and_are_seeded() {
    use slm_vs_llm::method::TrainingSet;
    use slm_vs_llm::methods::llm::{Demonstrations, LlmConfig, PromptBuilder};
    let Some(weights) = common::real_model_file("all-MiniLM-L6-v2/model.safetensors") else { return };
    let example = |index: usize, label: usize, text: &str| Example {
        index,
        label,
        title: String::new(),
        body: text.to_string(),
        text: text.to_string(),
    };
    let train: Vec<Example> =
        TEXTS.iter().enumerate().map(|(i, t)| example(i, [1, 2, 3, 0, 3, 1, 2, 0][i], t)).collect();
    let validation = vec![example(100, 1, "Lakers beat the Celtics in overtime.")];
    // The test items are near-copies of training texts: only the training rows may come back.
    let test = ["Yankees beat Red Sox 5-3 at Fenway.", "OPEC weighs output cut as oil climbs."];
    let labels = labels();
    let task = Task::ag_news();
    let data = TrainingSet { train: &train, validation: &validation, labels: &labels, task: &task, unlabelled: &[] };
    let mut config = LlmConfig::for_profile(slm_vs_llm::Profile::Smoke);
    config.embed.model = weights.parent().unwrap().display().to_string();
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("SLM_CACHE_DIR", cache.path());
    let prompts = PromptBuilder::new(&config, &data, 42, false).unwrap();
    let nearest_last = Demonstrations::Retrieved { count: 3, balanced: false, nearest_last: true };
    let shown = prompts.demonstrations_for(&test, nearest_last).unwrap();
    for (t, demos) in test.iter().zip(&shown) {
        assert_eq!(demos.len(), 3);
        assert!(demos.iter().all(|d| train.contains(d)), "{t}: {demos:?}");
        assert!(demos.iter().all(|d| !test.contains(&d.text.as_str())));
    }
    // The nearest comes last, next to the question: the Yankees headline for the baseball item.
    assert_eq!(shown[0].last().unwrap().index, 0);
    assert_eq!(shown[1].last().unwrap().index, 1);
    assert_eq!(prompts.demonstrations_for(&test, nearest_last).unwrap(), shown, "deterministic");
    let per_class = Demonstrations::Retrieved { count: 1, balanced: true, nearest_last: false };
    let balanced = prompts.demonstrations_for(&test, per_class).unwrap();
    for demos in &balanced {
        let mut classes: Vec<usize> = demos.iter().map(|d| d.label).collect();
        classes.sort();
        assert_eq!(classes, [0, 1, 2, 3]);
    }
    assert_eq!(balanced[0][0].index, 0, "nearest first");
}

/// The real Q4_1 file with its matrices kept quantised (candle's QMatMul),
/// and dequantised then requantised for the int8 kernels, against the same
/// file dequantised to f32: the same labels on at least 98% (quantised) and
/// 95% (int8) of validation items (zero-shot, label scoring).
/// `SLM_AGREEMENT_ITEMS` sets how many (default 200).
#[test]
fn quantised_and_int8_weights_give_the_f32_labels() {
    use slm_vs_llm::data::stratified_sample;
    use slm_vs_llm::kernels::Precision;
    use slm_vs_llm::models::llama::WeightFormat;
    let Some(path) = gguf() else { return };
    let Some(data) = real_ag_news() else { return };
    let n = std::env::var("SLM_AGREEMENT_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let items = stratified_sample(data.validation.clone(), data.labels.len(), n, 42);
    let questions: Vec<Vec<Message>> =
        items.iter().map(|e| zero_shot(&Task::ag_news(), &e.text, &data.labels)).collect();
    let schema = answer_schema(&data.labels, false);
    let answer = |format: WeightFormat, precision: Precision| {
        let llm = LocalLlm::load_with(&path, None, format, u64::MAX).expect("loads").with_precision(precision).unwrap();
        assert_eq!(llm.is_quantized(), format == WeightFormat::Quantized);
        let started = std::time::Instant::now();
        let answers = llm
            .ask_all(&questions, &schema, &data.labels, Decoding::LabelScores, &indicatif::ProgressBar::hidden())
            .unwrap();
        let rate = answers.len() as f64 / started.elapsed().as_secs_f64();
        (answers.into_iter().map(|a| a.label).collect::<Vec<_>>(), rate)
    };
    let (dense, dense_rate) = answer(WeightFormat::F32, Precision::F32);
    let (quantized, quantized_rate) = answer(WeightFormat::Quantized, Precision::F32);
    assert!(dense.iter().chain(&quantized).all(Option::is_some), "an item without a label");
    let same = dense.iter().zip(&quantized).filter(|(a, b)| a == b).count();
    eprintln!(
        "quantised vs f32: {same} of {} labels agree; {quantized_rate:.1} vs {dense_rate:.1} items/s",
        items.len()
    );
    assert!(same as f64 >= 0.98 * items.len() as f64, "only {same} of {} labels agree", items.len());

    // The f32 matrices requantised for the int8 kernels (this CPU's fastest).
    // Zero-shot answers have small margins between labels: 97 of the first
    // 100 items agree (95 with one weight scale per row instead of per block).
    let (int8, int8_rate) = answer(WeightFormat::F32, Precision::Int8);
    let same = dense.iter().zip(&int8).filter(|(a, b)| a == b).count();
    eprintln!("int8 vs f32: {same} of {} labels agree; {int8_rate:.1} vs {dense_rate:.1} items/s", items.len());
    assert!(same as f64 >= 0.95 * items.len() as f64, "only {same} of {} int8 labels agree", items.len());
    let kept = LocalLlm::load_with(&path, None, WeightFormat::Quantized, u64::MAX).unwrap();
    let err = kept.with_precision(Precision::Int8).err().expect("int8 needs f32 weights").to_string();
    assert!(err.contains("--weights f32"), "{err}");
    // The default (auto) keeps a model held quantised as it is.
    let kept = LocalLlm::load_with(&path, None, WeightFormat::Quantized, u64::MAX).unwrap();
    let kept = kept.with_precision(Precision::Auto).expect("auto keeps the quantised weights");
    assert!(kept.is_quantized() && kept.precision().is_f32());
}

/// The chosen prompt (the 4 nearest training texts as demonstrations, nearest
/// last) in int8 against f32, on validation items: 99 of the first 100 give
/// the same label (on all 7,600 test items 99.25% do, README); the bound is
/// 98%, since f32's own sums differ a little between CPU kinds. Retrieval
/// searches a 2,000-text training sample (the study searches all of train)
/// to keep the test near a minute. `SLM_AGREEMENT_ITEMS` sets how many items.
#[test]
fn int8_gives_the_f32_labels_with_the_chosen_prompt() {
    use slm_vs_llm::data::stratified_sample;
    use slm_vs_llm::kernels::Precision;
    use slm_vs_llm::method::TrainingSet;
    use slm_vs_llm::methods::llm::{Demonstrations, LlmConfig, PromptBuilder};
    use slm_vs_llm::models::llama::WeightFormat;
    let Some(path) = gguf() else { return };
    let Some(embedder) = common::real_model_file("all-MiniLM-L6-v2/model.safetensors") else { return };
    let Some(data) = real_ag_news() else { return };
    let n = std::env::var("SLM_AGREEMENT_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let classes = data.labels.len();
    let items = stratified_sample(data.validation.clone(), classes, n, 42);
    let train = stratified_sample(data.train.clone(), classes, 2000, 42);
    // No SLM_CACHE_DIR of its own: the variable is process-wide and another test here sets it.
    let mut config = LlmConfig::for_profile(slm_vs_llm::Profile::Full);
    config.embed.model = embedder.parent().unwrap().display().to_string();
    let nearest = Demonstrations::Retrieved { count: 4, balanced: false, nearest_last: true };
    config.demonstrations = vec![nearest];
    let set = TrainingSet { train: &train, validation: &[], labels: &data.labels, task: &data.task, unlabelled: &[] };
    let prompts = PromptBuilder::new(&config, &set, 42, false).unwrap();
    let texts: Vec<&str> = items.iter().map(|e| e.text.as_str()).collect();
    let questions = prompts.questions(&texts, nearest).unwrap();
    let schema = answer_schema(&data.labels, false);
    let answer = |precision: Precision| {
        let llm =
            LocalLlm::load_with(&path, None, WeightFormat::F32, u64::MAX).unwrap().with_precision(precision).unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let answers = llm.ask_all(&questions, &schema, &data.labels, Decoding::LabelScores, &bar).unwrap();
        answers.into_iter().map(|a| a.label.expect("every item answered")).collect::<Vec<_>>()
    };
    let (f32_labels, int8_labels) = (answer(Precision::F32), answer(Precision::Int8));
    let same = f32_labels.iter().zip(&int8_labels).filter(|(a, b)| a == b).count();
    let right = |labels: &[usize]| items.iter().zip(labels).filter(|(e, l)| e.label == **l).count();
    eprintln!(
        "nearest:4, int8 vs f32: {same} of {n} labels agree; right: int8 {}, f32 {}",
        right(&int8_labels),
        right(&f32_labels)
    );
    assert!(same as f64 >= 0.98 * n as f64, "only {same} of {n} int8 labels agree");
}
