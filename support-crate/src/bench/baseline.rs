//! TF-IDF + logistic regression against scikit-learn.

use super::*;

/// The TF-IDF + logistic regression baseline against scikit-learn's
/// `TfidfVectorizer` + `LogisticRegression` on the same split and settings.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineBench {
    pub c: f64,
    pub min_df: usize,
    /// Fits + predictions per second of each side in each round: `Rust`, `scikit-learn`.
    pub rounds: Rounds,
    /// The rest is from the last round.
    pub rust_features: usize,
    pub rust_accuracy: f64,
    pub rust_fit_seconds: f64,
    /// L-BFGS iterations of the fit (scikit-learn's are in `python`).
    pub rust_iterations: usize,
    pub rust_predict_seconds: f64,
    pub python: Option<serde_json::Value>,
    /// Rust accuracy − scikit-learn accuracy, in points.
    pub accuracy_difference_points: Option<f64>,
    /// scikit-learn (fit + predict) time / Rust time: > 1 means Rust is faster.
    pub speed_ratio: Option<Ratio>,
}

/// What one Rust fit + predict of the baseline gave.
struct BaselineRun {
    features: usize,
    accuracy: f64,
    fit_seconds: f64,
    iterations: usize,
    predict_seconds: f64,
}

/// `rounds` interleaved rounds of the Rust baseline's fit + predict and, with
/// `python`, scikit-learn's through `benches/python/bench_baseline.py`.
pub fn baseline(
    ds: &crate::data::Dataset,
    c: f64,
    min_df: usize,
    rounds: usize,
    python: Option<&Path>,
) -> Result<BaselineBench> {
    use crate::methods::tfidf::{LogisticRegression, Tfidf, TfidfConfig};
    let (train, test) = (crate::data::texts(&ds.train), crate::data::texts(&ds.test));
    let train_y = crate::data::labels(&ds.train);
    // scikit-learn's defaults on both sides: tol 1e-4, and max_iter as bench_baseline.py sets it.
    let tol = TfidfConfig::default().tol;
    let mut last = None;
    let mut rust = || -> Result<f64> {
        let start = Instant::now();
        let (tfidf, x_train) = Tfidf::fit_transform(&train, min_df);
        let model = LogisticRegression::fit(&x_train, &train_y, ds.num_classes(), tfidf.len(), c, 1000, tol);
        let fit_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let predictions = model.predict(&tfidf.transform(&test));
        let predict_seconds = start.elapsed().as_secs_f64();
        let correct = predictions.iter().zip(&ds.test).filter(|(p, e)| **p == e.label).count();
        let run = BaselineRun {
            features: tfidf.len(),
            accuracy: correct as f64 / ds.test.len() as f64,
            fit_seconds,
            iterations: model.iterations,
            predict_seconds,
        };
        last = Some(run);
        Ok(1.0 / (fit_seconds + predict_seconds))
    };
    let mut python_report = None;
    let rounds = in_temp_dir(|dir| {
        let data = dir.join("data.json");
        fn pairs(split: &[crate::data::Example]) -> Vec<(&str, usize)> {
            split.iter().map(|e| (e.text.as_str(), e.label)).collect()
        }
        if python.is_some() {
            let json = serde_json::json!({"train": pairs(&ds.train), "test": pairs(&ds.test)});
            std::fs::write(&data, serde_json::to_string(&json)?)?;
        }
        let mut sklearn = python.map(|py| {
            let (data, report) = (&data, &mut python_report);
            move || -> Result<f64> {
                let args = [data.to_str().unwrap_or_default(), &c.to_string(), &min_df.to_string()];
                let out = python_json(py, "bench_baseline.py", &args)?;
                let seconds = out["fit_seconds"].as_f64().zip(out["predict_seconds"].as_f64()).map(|(f, p)| f + p);
                *report = Some(out);
                seconds.map(|s| 1.0 / s).context("bench_baseline.py gave no fit_seconds or predict_seconds")
            }
        });
        let mut sides: Vec<Measure> = vec![("Rust", &mut rust)];
        if let Some(run) = sklearn.as_mut() {
            sides.push(("scikit-learn", run));
        }
        Rounds::run(rounds, &mut sides)
    })?;
    let run = last.context("the Rust side never ran")?;
    let accuracy_difference_points =
        python_report.as_ref().and_then(|p| p["accuracy"].as_f64()).map(|a| 100.0 * (run.accuracy - a));
    Ok(BaselineBench {
        c,
        min_df,
        speed_ratio: python.map(|_| rounds.ratio(0, 1)),
        rounds,
        rust_features: run.features,
        rust_accuracy: run.accuracy,
        rust_fit_seconds: run.fit_seconds,
        rust_iterations: run.iterations,
        rust_predict_seconds: run.predict_seconds,
        python: python_report,
        accuracy_difference_points,
    })
}
