//! Sentence embeddings through the on-disk cache: a text is embedded once
//! per model and setting, ever; an interrupted run resumes where it stopped.

use std::sync::Mutex;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cache::{text_key, RecordCache};
use crate::models::{Embedder, Embeddings};

/// What embedding a list of texts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedStats {
    pub texts: usize,
    /// Texts longer than `max_tokens`, truncated.
    pub truncated: usize,
    /// Texts found in the cache.
    pub cached: usize,
    /// Seconds spent embedding the texts that were not cached.
    pub seconds: f64,
}

impl EmbedStats {
    /// Texts embedded now (not from the cache).
    pub fn embedded(&self) -> usize {
        self.texts - self.cached
    }

    pub fn add(&mut self, other: EmbedStats) {
        self.texts += other.texts;
        self.truncated += other.truncated;
        self.cached += other.cached;
        self.seconds += other.seconds;
    }
}

/// An embedder with its cache.
pub struct CachedEmbedder {
    pub embedder: Embedder,
    cache: Mutex<RecordCache>,
}

/// Texts embedded between two writes to the cache.
const CHUNK: usize = 1024;

impl CachedEmbedder {
    /// The cache file is per model, width, truncation and precision (all
    /// change the vectors); f32 keeps the name it had before int8 existed.
    pub fn new(embedder: Embedder) -> Result<Self> {
        let c = embedder.config();
        let precision = match c.precision {
            crate::kernels::Precision::Int8 => format!(", {}", crate::kernels::int8::SCHEME),
            _ => String::new(),
        };
        let namespace =
            format!("embeddings of {} (dim {}, max_tokens {}{precision})", c.model, embedder.dim, c.max_tokens);
        let file = format!(
            "{}-{:016x}.cache",
            crate::paths::slug(c.model.rsplit('/').next().unwrap_or(&c.model)),
            crate::cache::key(namespace.as_bytes()) as u64
        );
        let cache = RecordCache::open(&crate::paths::cache_dir().join("embeddings").join(file), &namespace)?;
        Ok(CachedEmbedder { embedder, cache: Mutex::new(cache) })
    }

    /// Embeds `texts`, taking what the cache has and adding the rest to it.
    pub fn embed(&self, texts: &[&str], progress: bool) -> Result<(Embeddings, EmbedStats)> {
        let dim = self.embedder.dim;
        let mut data = vec![0f32; texts.len() * dim];
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().expect("cache lock");
            for (i, t) in texts.iter().enumerate() {
                match cache.get(text_key(t)).filter(|v| v.len() == 4 * dim) {
                    Some(bytes) => {
                        for (x, b) in data[i * dim..(i + 1) * dim].iter_mut().zip(bytes.chunks_exact(4)) {
                            *x = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                        }
                    }
                    None => missing.push(i),
                }
            }
        }
        let mut stats = EmbedStats {
            texts: texts.len(),
            cached: texts.len() - missing.len(),
            truncated: self.embedder.count_truncated(texts)?,
            seconds: 0.0,
        };
        let bar = crate::progress::bar(missing.len() as u64, "embedding", progress);
        let start = std::time::Instant::now();
        for chunk in missing.chunks(CHUNK) {
            let chunk_texts: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let emb = self.embedder.embed(&chunk_texts)?;
            let mut cache = self.cache.lock().expect("cache lock");
            for (j, &i) in chunk.iter().enumerate() {
                data[i * dim..(i + 1) * dim].copy_from_slice(emb.row(j));
                let bytes: Vec<u8> = emb.row(j).iter().flat_map(|x| x.to_le_bytes()).collect();
                cache.insert(text_key(texts[i]), &bytes)?;
            }
            cache.flush()?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((Embeddings { dim, data }, stats))
    }

    /// Seconds per text of the embedder on this machine, measured on up to
    /// 256 of `texts` without the cache.
    pub fn measure_seconds_per_text(&self, texts: &[&str]) -> Result<f64> {
        let sample: Vec<&str> = texts.iter().step_by((texts.len() / 256).max(1)).take(256).copied().collect();
        let start = std::time::Instant::now();
        self.embedder.embed(&sample)?;
        Ok(start.elapsed().as_secs_f64() / sample.len().max(1) as f64)
    }
}
