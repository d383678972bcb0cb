//! The SLM: fine-tuning steps and batched inference against PyTorch + transformers.

use super::*;

/// Fine-tuning and inference throughput of the SLM classifier, and of
/// PyTorch + transformers on the same weights and token ids, in interleaved rounds.
#[derive(Debug, Clone, Serialize)]
pub struct SlmBench {
    pub model: String,
    pub frozen_layers: usize,
    pub trainable_params: usize,
    pub train_batch: usize,
    pub train_seq_len: usize,
    /// Timed steps per round and side.
    pub train_steps: usize,
    /// Training tokens/s in each round: `candle`, `PyTorch`.
    pub train: Rounds,
    /// Median over the rounds.
    pub rust_train_tokens_per_second: f64,
    pub rust_train_peak_memory_mib: Option<f64>,
    pub infer_rows: usize,
    pub infer_batch: usize,
    /// Inference texts/s in each round: `f32`, `int8`, `PyTorch`.
    pub infer: Rounds,
    /// Median over the rounds.
    pub rust_infer_rows_per_second: f64,
    /// The same inference with the blocks' matmuls in int8.
    pub int8_infer: LowPrecisionInfer,
    /// PyTorch's own reports (JSON) from the last round.
    pub python_train: Option<serde_json::Value>,
    pub python_infer: Option<serde_json::Value>,
    /// Rust / PyTorch, > 1 means faster.
    pub train_ratio: Option<Ratio>,
    pub infer_ratio: Option<Ratio>,
}

/// Classifier inference in int8, against f32 and PyTorch.
#[derive(Debug, Clone, Serialize)]
pub struct LowPrecisionInfer {
    pub kernel: String,
    /// Median over the rounds.
    pub rows_per_second: f64,
    /// int8 / f32 throughput.
    pub speedup: Ratio,
    /// int8 throughput / PyTorch's.
    pub ratio: Option<Ratio>,
    /// Share of texts whose most probable class is the f32 model's.
    pub same_predictions: f64,
    /// Largest difference of a class probability from f32's.
    pub max_probability_difference: f64,
}

/// What `slm` measures and how.
#[derive(Debug, Clone)]
pub struct SlmBenchConfig {
    pub frozen_layers: usize,
    pub batch: usize,
    pub seq_len: usize,
    /// Timed training steps per round and side.
    pub steps: usize,
    pub infer_batch: usize,
    pub rounds: usize,
}

/// Training: `steps` AdamW steps on `batch` × `seq_len` rows cut from the
/// token stream of `texts` (no padding). Inference: the texts themselves,
/// length-sorted, `infer_batch` at a time. With `python`, the same on
/// PyTorch through `benches/python/bench_slm.py`, with the weights written
/// as a Hugging Face directory. Each is measured in `rounds` interleaved rounds.
pub fn slm(model: &str, texts: &[&str], config: &SlmBenchConfig, python: Option<&Path>) -> Result<SlmBench> {
    use crate::methods::finetune::batch::encode_all;
    use crate::methods::finetune::classifier::{predict_probs, Classifier};
    use crate::models::llama::{Llama, Trainable};
    use crate::optim::{AdamW, AdamWConfig};
    let SlmBenchConfig { frozen_layers, batch, seq_len, steps, infer_batch, rounds } = config.clone();

    let loaded = crate::models::llama::load(model, &Device::Cpu)?;
    let pad = loaded.tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
    let encoded = encode_all(&loaded.tokenizer, texts, 128)?;
    let stream: Vec<u32> = encoded.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let rows: Vec<Vec<u32>> = stream.chunks_exact(seq_len).take(batch * steps.max(1)).map(<[u32]>::to_vec).collect();
    if rows.len() < batch {
        bail!("{} texts give fewer than {batch} rows of {seq_len} tokens", texts.len());
    }
    let trainable = Trainable { embedding: false, frozen_layers };
    let llama = Llama::from_weights(loaded.config.clone(), loaded.weights, Some(4), trainable, 0)?;
    let classifier = Classifier {
        model: llama,
        tokenizer: loaded.tokenizer,
        labels: (0..4).map(|i| i.to_string()).collect(),
        max_len: 128,
        pad,
    };
    // PyTorch starts from the weights as loaded, before any Rust step.
    in_temp_dir(|dir| {
        let python = python.map(|py| PythonSlm::write(py, dir, &classifier, &rows, &encoded, config)).transpose()?;
        let llama = &classifier.model;
        let params =
            llama.trainable_params().into_iter().map(|p| (p.name.clone(), p.var().cloned().expect("var"))).collect();
        let mut optimiser = AdamW::new(params, AdamWConfig::default());
        let trainable_params = optimiser.num_params();
        let labels = Tensor::new(vec![0u32; batch], &Device::Cpu)?;
        let batches: Vec<Tensor> = rows
            .chunks_exact(batch)
            .map(|b| Tensor::from_vec(b.concat(), (batch, seq_len), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let lengths = vec![seq_len; batch];
        let mut step = |x: &Tensor| -> Result<()> {
            let loss = candle_nn::loss::cross_entropy(&llama.classify(x, &lengths)?, &labels)?;
            optimiser.accumulate(&loss.backward()?, 1.0)?;
            optimiser.step(1e-4, 1.0)?;
            Ok(())
        };
        step(&batches[0])?;
        let tokens = (steps * batch * seq_len) as f64;
        let mut rust_train = || -> Result<f64> {
            let start = Instant::now();
            for i in 0..steps {
                step(&batches[i % batches.len()])?;
            }
            Ok(tokens / start.elapsed().as_secs_f64())
        };
        let mut python_train = None;
        let mut torch_train = python.as_ref().map(|py| {
            let report = &mut python_train;
            move || py.run("train", report, "tokens_per_second")
        });
        let mut sides: Vec<Measure> = vec![("candle", &mut rust_train)];
        if let Some(run) = torch_train.as_mut() {
            sides.push(("PyTorch", run));
        }
        let train = Rounds::run(rounds, &mut sides)?;
        drop(sides);
        let rust_train_peak_memory_mib = crate::results::peak_memory_mib();

        let int8_model = llama.detached()?.with_precision(crate::kernels::Precision::Int8)?;
        let (mut f32_probs, mut int8_probs) = (Vec::new(), Vec::new());
        let infer = |model: &Llama, probs: &mut Vec<Vec<f32>>| -> Result<f64> {
            predict_probs(model, &encoded[..infer_batch.min(encoded.len())], pad, infer_batch, false)?;
            let start = Instant::now();
            *probs = predict_probs(model, &encoded, pad, infer_batch, false)?;
            Ok(encoded.len() as f64 / start.elapsed().as_secs_f64())
        };
        let mut infer_f32 = || infer(llama, &mut f32_probs);
        let mut infer_int8 = || infer(&int8_model, &mut int8_probs);
        let mut python_infer = None;
        let mut torch_infer = python.as_ref().map(|py| {
            let report = &mut python_infer;
            move || py.run("infer", report, "rows_per_second")
        });
        let mut sides: Vec<Measure> = vec![("f32", &mut infer_f32), ("int8", &mut infer_int8)];
        if let Some(run) = torch_infer.as_mut() {
            sides.push(("PyTorch", run));
        }
        let infer = Rounds::run(rounds, &mut sides)?;
        drop(sides);
        let same =
            f32_probs.iter().zip(&int8_probs).filter(|(a, b)| crate::method::argmax(a) == crate::method::argmax(b));
        let max_difference = f32_probs
            .iter()
            .zip(&int8_probs)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64))
            .fold(0.0, f64::max);
        let (f32, low, torch) = (0, 1, 2);
        let int8_infer = LowPrecisionInfer {
            kernel: crate::kernels::int8::Kernel::best().name().into(),
            rows_per_second: infer.median(low),
            speedup: infer.ratio(low, f32),
            ratio: python.as_ref().map(|_| infer.ratio(low, torch)),
            same_predictions: same.count() as f64 / encoded.len().max(1) as f64,
            max_probability_difference: max_difference,
        };
        Ok(SlmBench {
            model: model.to_string(),
            frozen_layers,
            trainable_params,
            train_batch: batch,
            train_seq_len: seq_len,
            train_steps: steps,
            rust_train_tokens_per_second: train.median(0),
            train_ratio: python.as_ref().map(|_| train.ratio(0, 1)),
            train,
            rust_train_peak_memory_mib,
            infer_rows: encoded.len(),
            infer_batch,
            rust_infer_rows_per_second: infer.median(f32),
            infer_ratio: python.as_ref().map(|_| infer.ratio(f32, torch)),
            infer,
            int8_infer,
            python_train,
            python_infer,
        })
    })
}

/// `benches/python/bench_slm.py` with the model and token ids written for it.
struct PythonSlm<'a> {
    python: &'a Path,
    dir: &'a Path,
    config: &'a SlmBenchConfig,
}

impl<'a> PythonSlm<'a> {
    fn write(
        python: &'a Path,
        dir: &'a Path,
        classifier: &crate::methods::finetune::classifier::Classifier,
        rows: &[Vec<u32>],
        encoded: &[crate::methods::finetune::batch::Encoded],
        config: &'a SlmBenchConfig,
    ) -> Result<Self> {
        classifier.save(&dir.join("model"))?;
        std::fs::write(dir.join("train.json"), serde_json::to_string(rows)?)?;
        let mut sorted: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.ids).collect();
        sorted.sort_by_key(|ids| std::cmp::Reverse(ids.len()));
        // The same length-sorted, right-padded batches as the Rust side.
        let padded: Vec<Vec<Vec<u32>>> = sorted
            .chunks(config.infer_batch)
            .map(|c| {
                let longest = c[0].len();
                c.iter()
                    .map(|ids| {
                        ids.iter().copied().chain(std::iter::repeat_n(classifier.pad, longest - ids.len())).collect()
                    })
                    .collect()
            })
            .collect();
        std::fs::write(dir.join("infer.json"), serde_json::to_string(&padded)?)?;
        Ok(Self { python, dir, config })
    }

    /// One run in `mode` (`train` or `infer`): keeps its report, returns its `throughput` field.
    fn run(&self, mode: &str, report: &mut Option<serde_json::Value>, throughput: &str) -> Result<f64> {
        let (steps, batch) = match mode {
            "train" => (self.config.steps, self.config.batch),
            _ => (0, self.config.infer_batch),
        };
        let (model, ids) = (self.dir.join("model"), self.dir.join(format!("{mode}.json")));
        let args = [
            model.to_str().unwrap_or_default(),
            ids.to_str().unwrap_or_default(),
            mode,
            &self.config.frozen_layers.to_string(),
            &steps.to_string(),
            &batch.to_string(),
        ];
        let value = python_json(self.python, "bench_slm.py", &args)?;
        let result = value[throughput].as_f64().with_context(|| format!("bench_slm.py gave no {throughput}"))?;
        *report = Some(value);
        Ok(result)
    }
}
