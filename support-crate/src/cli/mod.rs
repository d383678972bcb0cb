//! The `slm-vs-llm` command: the notebooks' experiments without Jupyter.
//! Each experiment command builds one method from its flags and runs it
//! through [`method::run`], the same call the notebooks make.

pub mod args;
pub mod bench;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use args::DataArgs;
use args::{
    AllArgs, BaselineArgs, CascadeArgs, CostsArgs, CurveArgs, EdaArgs, FinetuneArgs, KnnArgs, LlmArgs, PredictArgs,
    ReportArgs,
};

use crate::method::{self, Fitted, Method, RunContext, RunOptions, TrainingSet};
use crate::methods::{finetune, Methods};
use crate::paths::{self, Profile};
use crate::present::eda::{self, Eda, LengthUnit};
use crate::{Dataset, Split};

/// Fine-tuned small language model vs. generic LLM vs. embeddings + K-NN vs.
/// TF-IDF, on AG News or your own labelled texts.
///
/// Logging follows RUST_LOG (default: info), e.g. RUST_LOG=debug.
#[derive(Parser, Debug)]
#[command(name = "slm-vs-llm", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Explore the dataset: class balance, lengths, distinctive words, text
    /// quirks and duplicates (the leakage check). Prints the tables and
    /// writes the numbers to results/eda.json and the plots beside it.
    Eda(EdaArgs),
    /// Embeddings + K-nearest neighbours: embed every split with a sentence
    /// embedder (cached on disk), choose k and the vote on validation, then
    /// predict test once. Writes results/knn.json and results/knn.predictions.csv.
    Knn(KnnArgs),
    /// Fine-tune a small language model (default SmolLM2-135M-Instruct) as a
    /// classifier: train on train, validate during training, save the
    /// classifier (a Hugging Face LlamaForSequenceClassification directory),
    /// evaluate on test. Re-running the same command resumes an interrupted
    /// run from its checkpoint. Writes results/finetune_slm.json and
    /// results/finetune_slm.predictions.csv.
    Finetune(FinetuneArgs),
    /// A generic LLM with structured output: over an OpenAI-compatible server
    /// (OPENAI_BASE_URL: OpenAI, Ollama, vLLM, llama.cpp's server) or, with
    /// none set, the embedded GGUF model in-process, which scores every
    /// label. The demonstrations (none, fixed ones from train, or the most
    /// similar training texts) and the calibration of the label distribution
    /// are chosen on validation, then test is asked once. Answers are cached,
    /// so a re-run or an interrupted run costs nothing twice. Writes
    /// results/llm_<model>.json and its predictions.
    Llm(LlmArgs),
    /// The classic baseline: TF-IDF over word unigrams and bigrams and a
    /// multinomial logistic regression (L-BFGS), its regularisation chosen on
    /// validation. Writes results/baseline_tfidf.json and its predictions.
    Baseline(BaselineArgs),
    /// Every experiment in order — eda, then every method of the table
    /// (--methods; by default tfidf, knn, finetune, setfit, llm) — then the report. Resumes through the caches and
    /// checkpoints; --smoke runs it all on a small sample in minutes (results
    /// then go to data/smoke/, the committed results and the README are left alone).
    All(AllArgs),
    /// How many labels does each method need? Every method at a range of
    /// label budgets per class (nested, seeded, stratified subsets of train;
    /// validation of budget/4 per class from the validation split), scored
    /// on test: TF-IDF and K-NN on all of it, the trained methods (fine-tuned
    /// SLM, SetFit) and the prompted LLM on a fixed seeded sample. Every point is cached (data/cache/curve): an
    /// interrupted curve resumes, a finished one re-runs in seconds. Writes
    /// results/curve.json and results/curve.csv; `report` draws it.
    Curve(CurveArgs),
    /// One cost sheet from one machine: every method fitted at a few label
    /// budgets (one seed) and timed answering test, back to back in one
    /// process with empty caches, so no time is reused from another run or
    /// machine. Writes results/costs.json and results/costs.csv (the curve's
    /// columns); `report` prices every method and budget from it.
    Costs(CostsArgs),
    /// Two methods in a cascade: the first answers when its confidence clears
    /// a threshold chosen on validation, the second answers the rest.
    /// Reports accuracy against the share escalated, on validation and test,
    /// and the cost per 1,000 items. Writes results/cascade_<first>_<then>.json;
    /// `report` draws the frontier.
    Cascade(CascadeArgs),
    /// The comparison: read every run record in results/, write the charts to
    /// assets/ (accuracy with intervals as PNG and SVG, per-class F1, accuracy
    /// against speed, reliability, cost at volume, and the learning curve and
    /// cascades when results/ has them) and the README's sections between
    /// their markers.
    Report(ReportArgs),
    /// Classify texts with a classifier saved by `finetune`: prints the class
    /// and the probability of every class.
    Predict(PredictArgs),
    /// Two runs item by item on the test items both answered (e.g. one
    /// method in f32 and int8, or two methods): the accuracy difference with
    /// its 95% paired-bootstrap interval, McNemar's exact test, and how often
    /// they give the same label. A difference whose interval covers 0 is a tie.
    /// A run is a record, or a cell of a learning curve (its seeds paired by
    /// seed), also of two curves on the same test items: before and after a change.
    Compare {
        /// The first run: a record, e.g. results/knn.json (its
        /// .predictions.csv beside it), or a curve's cell, e.g.
        /// results/curve.json#finetune@32 (or #knn@all, the full-data point).
        first: Compared,
        /// The second run, named the same way.
        second: Compared,
    },
    /// Benchmarks: throughput against the Python reference stack and the
    /// hardware limit, measured in one run. Writes results/bench_<name>.json.
    Bench {
        #[command(subcommand)]
        bench: bench::BenchCommand,
    },
    /// Check executed notebooks for error outputs and panics; exits non-zero
    /// if any cell failed.
    CheckNotebook {
        /// Executed .ipynb files.
        #[arg(required = true)]
        notebooks: Vec<PathBuf>,
    },
    /// Check a notebook page as a browser rendered it (scripts/test-html.sh
    /// dumps the DOM with headless Chromium): every chart of the executed
    /// notebook shown as an image with alt text, no error output. Exits
    /// non-zero on any problem.
    CheckPage {
        /// The DOM the browser dumped.
        dom: PathBuf,
        /// The executed .ipynb the page was exported from.
        notebook: PathBuf,
    },
}

/// Parses the command line and runs the command with the table of methods
/// this project compares.
pub fn main() -> Result<()> {
    // Show whole tables in the terminal unless the user configured polars otherwise.
    for (key, value) in [("POLARS_FMT_MAX_ROWS", "40"), ("POLARS_FMT_STR_LEN", "80"), ("POLARS_FMT_MAX_COLS", "20")] {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, value);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    run(std::env::args_os(), &Methods::standard())
}

/// Runs a command line (its first item the program's name) with the table
/// `methods`: the methods `all` runs, the curve's arms and the cascade's
/// choices are that table's.
pub fn run<I, T>(args: I, methods: &Methods) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let names = methods.names();
    let choices = || clap::builder::PossibleValuesParser::new(names.clone());
    let command = Cli::command()
        .mut_subcommand("cascade", |c| {
            c.mut_arg("first", |a| a.value_parser(choices())).mut_arg("then", |a| a.value_parser(choices()))
        })
        .mut_subcommand("all", |c| c.mut_arg("methods", |a| a.value_parser(choices())))
        .mut_subcommand("curve", |c| c.mut_arg("arms", |a| a.value_parser(choices())));
    let cli = Cli::from_arg_matches(&command.get_matches_from(args)).map_err(|e| e.format(&mut Cli::command()))?;
    match cli.command {
        Command::Eda(args) => run_eda(&args.data, &args.out.out),
        Command::Knn(args) => run_and_report(&args.method(), &args.data.load()?, &args.data, &args.out.out),
        Command::Finetune(args) => run_finetune(&args),
        Command::Baseline(args) => run_and_report(&args.method(), &args.data.load()?, &args.data, &args.out.out),
        Command::Llm(args) => run_and_report(&args.method(), &args.data.load()?, &args.data, &args.out.out),
        Command::Curve(args) => run_curve(&args, methods),
        Command::Costs(args) => run_costs(&args, methods),
        Command::Cascade(args) => run_cascade(&args, methods),
        Command::Report(args) => run_report(&args, methods),
        Command::All(args) => run_all(&args.data, &args.methods, methods),
        Command::Predict(args) => run_predict(&args),
        Command::Compare { first, second } => compare_runs(&first, &second),
        Command::Bench { bench } => bench::run_bench(&bench),
        Command::CheckNotebook { notebooks } => check_notebooks(&notebooks),
        Command::CheckPage { dom, notebook } => check_page(&dom, &notebook),
    }
}

/// The command as typed, for the results record.
/// The command as run, for records: URLs without their credentials (a
/// `--base-url http://user:secret@host/v1` would otherwise be stored).
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| redact_arg(&a)).collect();
    format!("slm-vs-llm {}", args.join(" "))
}

fn redact_arg(arg: &str) -> String {
    if !arg.contains("://") {
        return arg.to_string();
    }
    match arg.split_once('=').filter(|(flag, _)| flag.starts_with("--")) {
        Some((flag, url)) => format!("{flag}={}", crate::methods::llm::openai::redact_url(url)),
        None => crate::methods::llm::openai::redact_url(arg),
    }
}

fn context(data: &DataArgs) -> RunContext {
    RunContext { profile: data.profile(), seed: data.seed, progress: true }
}

fn options(method: &dyn Method, data: &DataArgs) -> RunOptions {
    RunOptions { context: context(data), test_items: method.test_items(), command: command_line() }
}

/// Runs one method through [`method::run`], prints what it chose and how it
/// scored, and writes its record.
fn run_and_report(method: &dyn Method, ds: &Dataset, data: &DataArgs, out: &Option<PathBuf>) -> Result<()> {
    let run = method::run(method, ds, &options(method, data))?;
    let r = &run.record;
    println!("{}: {}", r.method, run.fitted.summary());
    println!("{} ({}): test {}", r.method, r.model, r.metrics.summary());
    println!("{}", r.metrics.per_class_table()?);
    let path = run.write(&data.results_dir(out))?;
    println!("Wrote {}", path.display());
    Ok(())
}

/// What `compare` compares: a run's record or a cell of a learning curve.
#[derive(Debug, Clone)]
pub enum Compared {
    Run(PathBuf),
    Cell(crate::studies::curve::CurveCell),
}

impl std::str::FromStr for Compared {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match crate::studies::curve::CurveCell::parse(text) {
            Some(cell) => Ok(Compared::Cell(cell?)),
            None => Ok(Compared::Run(text.into())),
        }
    }
}

impl std::fmt::Display for Compared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compared::Run(path) => write!(f, "{}", path.display()),
            Compared::Cell(cell) => write!(f, "{}#{}", cell.path.display(), cell.name()),
        }
    }
}

fn compare_runs(first: &Compared, second: &Compared) -> Result<()> {
    let compared = match (first, second) {
        (Compared::Run(a), Compared::Run(b)) => crate::paired::compare_saved(a, b)?,
        (Compared::Cell(a), Compared::Cell(b)) => crate::studies::curve::compare_cells(a, b)?,
        _ => bail!(
            "{first} and {second}: compare a record with a record, or a curve's cell with a curve's cell \
             (a curve's points are scored on its own test sample)"
        ),
    };
    let d = &compared.difference;
    println!("{}", d.sentence(&first.to_string(), &second.to_string()));
    let answered = d.items * d.seeds;
    let over_seeds = if d.seeds > 1 {
        format!(" answers ({} items × {} seeds)", crate::plot::thousands(d.items as u64), d.seeds)
    } else {
        " items".to_string()
    };
    println!(
        "accuracy {:.2}% against {:.2}%{}; only the first right on {} items, only the second on {}",
        100.0 * d.accuracy[0],
        100.0 * d.accuracy[1],
        if d.seeds > 1 { " (means over the seeds)" } else { "" },
        d.only_first_right,
        d.only_second_right
    );
    println!(
        "the same answer on {} of {}{over_seeds}, {:.2}%",
        crate::plot::thousands(compared.same_answer as u64),
        crate::plot::thousands(answered as u64),
        100.0 * compared.same_answer as f64 / answered as f64
    );
    Ok(())
}

fn run_finetune(args: &FinetuneArgs) -> Result<()> {
    let method = args.method();
    let ds = args.data.load()?;
    if args.validation_only {
        let fitted = method.fit_classifier(&TrainingSet::of(&ds), &context(&args.data))?;
        println!("{}", fitted.summary());
        return Ok(());
    }
    run_and_report(&method, &ds, &args.data, &args.out.out)?;
    println!("Classifier: {}", method.classifier_dir(&ds.task, args.data.profile()).display());
    Ok(())
}

fn run_curve(args: &CurveArgs, methods: &Methods) -> Result<()> {
    use crate::studies::curve;
    let ds = args.data.load()?;
    let config = args.config(methods)?;
    let results = args.data.results_dir(&args.out);
    let started = std::time::Instant::now();
    let mut curve =
        curve::run(&config, methods, &ds, Some(&args.data.results_dir(&None)), &context(&args.data), &command_line())?;
    let compute_seconds = curve.compute_seconds;
    let existing = results.join("curve.json");
    if existing.is_file() {
        // The cells this run did not measure (other arms, other budgets) stay;
        // a run of every arm on another grid (or over an unreadable file) starts the curve afresh.
        let every_arm = config.arms.len() == methods.iter().count();
        match curve::read(&existing).and_then(|base| curve::merge(base, curve.clone(), methods)) {
            Ok(merged) => {
                curve = merged;
                println!("Replaced the points of {:?} this run measured in {}", config.arms, existing.display());
            }
            Err(e) if every_arm => println!("A new curve: not merged into {} ({e:#})", existing.display()),
            Err(e) => return Err(e),
        }
    }
    println!("{}", crate::present::curve::table(&curve, methods));
    let (json, csv) = curve::write(&results, &curve)?;
    println!(
        "{} points, {:.1} min of computing ({:.1} min in this run). Wrote {} and {}",
        curve.points.len(),
        compute_seconds / 60.0,
        started.elapsed().as_secs_f64() / 60.0,
        json.display(),
        csv.display()
    );
    Ok(())
}

fn run_costs(args: &CostsArgs, methods: &Methods) -> Result<()> {
    use crate::studies::curve;
    let ds = args.data.load()?;
    let config = args.config(methods)?;
    // A cache of its own, empty at the start: every embedding, answer and
    // training is done (and timed) here. Kept while the sheet is unfinished,
    // so an interrupted run resumes on the same machine.
    let scratch = paths::cache_dir().join("cost-sheet");
    std::env::set_var("SLM_CACHE_DIR", &scratch);
    let sheet = curve::run(&config, methods, &ds, None, &context(&args.data), &command_line())?;
    println!("{}", crate::present::curve::table(&sheet, methods));
    let (json, csv) = curve::write_as(&args.data.results_dir(&args.out), "costs", &sheet)?;
    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    println!(
        "{} points, {:.1} min of computing on {}. Wrote {} and {}",
        sheet.points.len(),
        sheet.compute_seconds / 60.0,
        sheet.hardware.summary(),
        json.display(),
        csv.display()
    );
    Ok(())
}

fn run_cascade(args: &CascadeArgs, methods: &Methods) -> Result<()> {
    use crate::studies::cascade;
    let profile = args.data.profile();
    let ds = args.data.load()?;
    let (first, then) = ((methods.get(&args.first)?.build)(profile), (methods.get(&args.then)?.build)(profile));
    let smoke = profile.is_smoke();
    let items = cascade::CascadeItems {
        validation: args.validation_items.unwrap_or(if smoke { 24 } else { 400 }),
        test: args.test_items.or(if smoke { Some(40) } else { None }),
    };
    let record = cascade::run(first.as_ref(), then.as_ref(), &ds, items, &context(&args.data), &command_line())?;
    // Priced at this run's own times: the cost sheet prices it in `report`.
    println!("{}", crate::present::cascade::summary(&record, &Default::default()));
    let path = cascade::write(&args.data.results_dir(&args.out.out), &record)?;
    println!("Wrote {}", path.display());
    Ok(())
}

fn run_report(args: &ReportArgs, methods: &Methods) -> Result<()> {
    let results = args.results.clone().unwrap_or_else(|| paths::results_dir(Profile::Full));
    let assets = args.assets.clone().unwrap_or_else(|| paths::assets_dir(Profile::Full));
    let readme = args.readme.clone().unwrap_or_else(|| paths::project_root().join("README.md"));
    let mut prices = crate::present::break_even::price_table()?;
    if let Some(usd) = args.label_price {
        if !(usd.is_finite() && usd >= 0.0) {
            bail!("--label-price {usd}: a price in US dollars, 0 or more");
        }
        prices.label.usd = usd;
    }
    let table = crate::present::report::write(&results, &assets, Some(&readme), methods, &prices)?;
    print!("{table}");
    println!("Wrote the charts to {} and the table to {}", assets.display(), readme.display());
    Ok(())
}

fn run_all(data: &DataArgs, only: &[String], table: &Methods) -> Result<()> {
    let profile = data.profile();
    let results = data.results_dir(&None);
    let assets = data.assets_dir();
    let methods = match only {
        [] => table.for_all(profile),
        names => names.iter().map(|name| Ok((table.get(name)?.build)(profile))).collect::<Result<Vec<_>>>()?,
    };
    let steps = methods.len() + 2;
    let mut times = Vec::new();
    let started = std::time::Instant::now();
    let mut timed = |name: &str, step: usize, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        println!("\n=== [{step}/{steps}] {name} ===");
        let t = std::time::Instant::now();
        f().with_context(|| format!("step {name} failed; re-run `slm-vs-llm all` to resume"))?;
        times.push((name.to_string(), t.elapsed().as_secs_f64()));
        Ok(())
    };
    timed("eda", 1, &mut || run_eda(data, &Some(results.clone())))?;
    let ds = data.load()?;
    for (i, method) in methods.iter().enumerate() {
        timed(method.name(), i + 2, &mut || {
            run_and_report(method.as_ref(), &ds, data, &Some(results.clone())).map(drop)
        })?;
    }
    println!("\n=== [{steps}/{steps}] report ===");
    let readme = paths::project_root().join("README.md");
    let written = crate::present::report::write(
        &results,
        &assets,
        (!profile.is_smoke()).then_some(readme.as_path()),
        table,
        &crate::present::break_even::price_table()?,
    )?;
    println!("\nWall time per step:");
    for (name, seconds) in &times {
        println!("  {name:<10} {:>8.1} min", seconds / 60.0);
    }
    println!("  {:<10} {:>8.1} min\n", "total", started.elapsed().as_secs_f64() / 60.0);
    print!("{written}");
    println!("\nResults in {}, charts in {}", results.display(), assets.display());
    Ok(())
}

fn run_predict(args: &PredictArgs) -> Result<()> {
    let dir = args.model.clone().unwrap_or_else(|| {
        finetune::Finetune::for_profile(Profile::Full).classifier_dir(&crate::data::Task::ag_news(), Profile::Full)
    });
    let classifier = finetune::load_classifier(&dir)?;
    let texts: Vec<String> = args.texts.iter().map(|t| crate::data::normalize(t)).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, probs) in texts.iter().zip(classifier.predict(&texts)?) {
        let best = method::argmax(&probs);
        let all: Vec<String> = classifier.labels.iter().zip(&probs).map(|(l, p)| format!("{l} {p:.3}")).collect();
        println!("{}\t{}\t{}", classifier.labels[best], all.join("  "), text);
    }
    Ok(())
}

fn run_eda(data: &DataArgs, out: &Option<PathBuf>) -> Result<()> {
    let ds = data.load()?;
    let eda = Eda::run(&ds)?;
    println!("Data: {}", ds.source);
    for (title, table) in [
        ("Class balance", &eda.class_balance),
        ("Length of the model input (train)", &eda.lengths),
        ("Most distinctive words per class (log-odds z-score, train)", &eda.distinctive_words),
        ("Text quirks (rows)", &eda.quirks),
        ("Model inputs still entity- or tag-shaped after normalize", &eda.quirks_left),
        ("Duplicates (normalised text; near = word-3-gram Jaccard >= 0.8)", &eda.duplicates),
        ("Near-duplicate pairs", &eda.duplicate_pairs),
    ] {
        println!("\n## {title}\n{table}");
    }
    let out = data.results_dir(out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("eda.json");
    std::fs::write(&json, serde_json::to_string_pretty(&eda.summary)?)
        .with_context(|| format!("writing {}", json.display()))?;
    for (unit, name) in [(LengthUnit::Words, "eda_length_words.svg"), (LengthUnit::Chars, "eda_length_chars.svg")] {
        eda::length_distribution_chart(&ds, Split::Train, unit)?.save(&out.join(name))?;
    }
    println!("\nLeakage check: {}", eda.summary.leakage());
    println!("\nWrote {} and the length plots in {}", json.display(), out.display());
    Ok(())
}

fn check_notebooks(notebooks: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for nb in notebooks {
        let errors = crate::present::notebook::errors_in_executed(nb)?;
        if errors.is_empty() {
            println!("{}: clean", nb.display());
        }
        for e in &errors {
            eprintln!("{}: {e}", nb.display());
        }
        failed += usize::from(!errors.is_empty());
    }
    if failed > 0 {
        bail!("{failed} notebook(s) hold error outputs");
    }
    Ok(())
}

fn check_page(dom: &Path, notebook: &Path) -> Result<()> {
    let page = std::fs::read_to_string(dom).with_context(|| format!("reading {}", dom.display()))?;
    let problems = crate::present::notebook::problems_in_rendered_page(&page, notebook)?;
    for p in &problems {
        eprintln!("{}: {p}", notebook.display());
    }
    if !problems.is_empty() {
        bail!("{} problem(s) on the rendered page of {}", problems.len(), notebook.display());
    }
    println!("{}: rendered page ok", notebook.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("slm-vs-llm").chain(args.iter().copied())).is_ok()
    }

    #[test]
    fn numbers_out_of_range_are_refused_with_a_message_not_a_panic() {
        for bad in ["NaN", "-1", "0", "1e400", "inf"] {
            assert!(!parses(&["llm", "--timeout", bad]), "--timeout {bad}");
        }
        assert!(parses(&["llm", "--timeout", "1e3"]));
        assert!(!parses(&["llm", "--test-items", "0"]));
        assert!(!parses(&["llm", "--concurrency", "0"]));
        assert!(!parses(&["llm", "--price-in", "-0.5"]));
        assert!(parses(&["llm", "--price-in", "0"]));
        assert!(!parses(&["knn", "--ks", "5,0"]));
        assert!(!parses(&["baseline", "--cs", "1,NaN"]));
        assert!(!parses(&["finetune", "--batch-size", "0"]));
        assert!(!parses(&["eda", "--validation-fraction", "1"]));
        assert!(parses(&["eda", "--validation-fraction", "0.1"]));
        let err = Cli::try_parse_from(["slm-vs-llm", "llm", "--timeout", "NaN"]).unwrap_err().to_string();
        assert!(err.contains("not a finite number above 0"), "{err}");
    }
}
