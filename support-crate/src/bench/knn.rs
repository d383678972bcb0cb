//! The K-NN search against the time of its matrix product alone.

use super::*;

/// K-NN search time against the time of its matrix product alone.
#[derive(Debug, Clone, Serialize)]
pub struct KnnBench {
    pub queries: usize,
    pub train: usize,
    pub dim: usize,
    pub k: usize,
    /// `queries × train` similarity products only, as one matmul per chunk.
    pub matmul_seconds: f64,
    pub matmul_gflops: f64,
    /// Products, top-k and vote: what a prediction costs.
    pub search_seconds: f64,
    /// search / matmul; the target is at most 1.5.
    pub ratio: f64,
}

/// Best of `repeats` timings of the full search and of its matmul.
pub fn knn(train: &Embeddings, queries: &Embeddings, k: usize, repeats: usize) -> Result<KnnBench> {
    let knn = KnnClassifier::new(train, vec![0; train.len()], 1)?;
    let train_t = Tensor::from_slice(&train.data, (train.len(), train.dim), &Device::Cpu)?.t()?;
    let q = Tensor::from_slice(&queries.data, (queries.len(), queries.dim), &Device::Cpu)?;
    let best = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut best = f64::MAX;
        for _ in 0..repeats.max(1) {
            let start = Instant::now();
            f()?;
            best = best.min(start.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let chunk = 512;
    let matmul_seconds = best(&mut || {
        for start in (0..queries.len()).step_by(chunk) {
            let len = chunk.min(queries.len() - start);
            let scores = q.narrow(0, start, len)?.matmul(&train_t)?;
            std::hint::black_box(scores);
        }
        Ok(())
    })?;
    let search_seconds = best(&mut || {
        let n = knn.neighbours(queries, k)?;
        std::hint::black_box(n.iter().map(|n| knn.vote(n, k, Vote::Majority)).sum::<usize>());
        Ok(())
    })?;
    let flops = 2.0 * queries.len() as f64 * train.len() as f64 * train.dim as f64;
    Ok(KnnBench {
        queries: queries.len(),
        train: train.len(),
        dim: train.dim,
        k,
        matmul_seconds,
        matmul_gflops: flops / matmul_seconds / 1e9,
        search_seconds,
        ratio: search_seconds / matmul_seconds,
    })
}
