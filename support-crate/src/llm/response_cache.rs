//! An append-only on-disk cache of successful LLM responses: one JSON line
//! per response, keyed by a hash of model, messages and parameters. A line
//! cut short by an interruption ends the usable part (the file is truncated
//! there); nothing in it is secret — keys never reach it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::openai::Completion;
use crate::cache::text_hash;

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    completion: Completion,
}

pub struct ResponseCache {
    path: PathBuf,
    entries: HashMap<String, Completion>,
    file: File,
}

impl ResponseCache {
    /// Opens (or creates) the cache of `model` in `dir`.
    pub fn open(dir: &Path, model: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let slug: String = model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{slug}.jsonl"));
        let mut entries = HashMap::new();
        let mut good_bytes = 0u64;
        if path.exists() {
            let reader = BufReader::new(File::open(&path).with_context(|| format!("opening {}", path.display()))?);
            for line in reader.split(b'\n') {
                let line = line?;
                match serde_json::from_slice::<Line>(&line) {
                    Ok(l) => {
                        entries.insert(l.key, l.completion);
                        good_bytes += line.len() as u64 + 1;
                    }
                    Err(_) => {
                        tracing::warn!("{}: dropping a damaged entry and what follows it", path.display());
                        break;
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if file.metadata()?.len() > good_bytes {
            file.set_len(good_bytes)?;
        }
        Ok(ResponseCache { path, entries, file })
    }

    fn hash(key: &str) -> String {
        format!("{:032x}", text_hash(key))
    }

    pub fn get(&self, key: &str) -> Option<&Completion> {
        self.entries.get(&Self::hash(key))
    }

    pub fn put(&mut self, key: &str, completion: &Completion) -> Result<()> {
        let line = Line { key: Self::hash(key), completion: completion.clone() };
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        self.file.write_all(&bytes).with_context(|| format!("writing {}", self.path.display()))?;
        self.entries.insert(line.key, line.completion);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::Usage;

    #[test]
    fn survives_reopening_and_a_cut_short_line() {
        let dir = tempfile::tempdir().unwrap();
        let c = Completion {
            content: Some("{\"label\":\"World\"}".into()),
            refusal: None,
            finish_reason: Some("stop".into()),
            usage: Usage { prompt_tokens: 10, completion_tokens: 5 },
            latency_seconds: 0.4,
            compute_seconds: 0.1,
        };
        {
            let mut cache = ResponseCache::open(dir.path(), "m/x").unwrap();
            cache.put("a", &c).unwrap();
            cache.put("b", &c).unwrap();
        }
        let path = dir.path().join("m_x.jsonl");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&path, bytes).unwrap();
        let mut cache = ResponseCache::open(dir.path(), "m/x").unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("a").unwrap().content, c.content);
        assert!(cache.get("b").is_none());
        cache.put("b", &c).unwrap();
        assert_eq!(ResponseCache::open(dir.path(), "m/x").unwrap().len(), 2);
    }
}
